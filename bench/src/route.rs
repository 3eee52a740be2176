//! Finding where a topic lives: the name server's route (105), creating the
//! topic on every master broker when asked (17), and the list of message
//! queues a workload spreads over.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rocketcore_protocol::protocol::{decode_json, perm, TopicRouteData};
use rocketcore_protocol::remoting::codes::{request_code as rq, response_code as rs};
use rocketcore_protocol::remoting::RemotingCommand;

/// One message queue: which broker, which queue id.
#[derive(Debug, Clone)]
pub struct Mq {
    pub topic: String,
    pub broker: SocketAddr,
    pub queue_id: i32,
}

fn route(namesrv: SocketAddr, topic: &str) -> Result<Option<TopicRouteData>, String> {
    let mut c =
        crate::client::connect(namesrv).map_err(|e| format!("name server {namesrv}: {e}"))?;
    let mut req = RemotingCommand::new_request(rq::GET_ROUTEINFO_BY_TOPIC);
    req.set_ext("topic", topic);
    let r = c
        .call(req)
        .map_err(|e| format!("name server {namesrv}: {e}"))?;
    match r.code {
        rs::SUCCESS => {
            let body = r.body.as_deref().unwrap_or_default();
            decode_json(body)
                .map(Some)
                .map_err(|e| format!("route of {topic}: {e}"))
        }
        rs::TOPIC_NOT_EXIST => Ok(None),
        code => Err(format!(
            "route of {topic}: code {code} {}",
            r.remark.unwrap_or_default()
        )),
    }
}

fn masters(route: &TopicRouteData) -> Vec<(String, SocketAddr)> {
    route
        .broker_datas
        .iter()
        .filter_map(|b| Some((b.broker_name.clone(), b.broker_addrs.get(&0)?.parse().ok()?)))
        .collect()
}

/// The writable queues of `topic`, creating it with `queues` queues on every
/// master broker first when it does not exist and `create` is set.
pub fn resolve(
    namesrv: SocketAddr,
    topic: &str,
    queues: u32,
    create: bool,
) -> Result<Vec<Mq>, String> {
    let mut r = route(namesrv, topic)?;
    if r.is_none() && create {
        let template =
            route(namesrv, "TBW102")?.ok_or("the name server knows no broker (no TBW102 route)")?;
        for (name, addr) in masters(&template) {
            let mut c = crate::client::connect(addr).map_err(|e| format!("broker {addr}: {e}"))?;
            let mut req = RemotingCommand::new_request(rq::UPDATE_AND_CREATE_TOPIC);
            for (k, v) in [
                ("topic", topic),
                ("defaultTopic", "TBW102"),
                ("perm", "6"),
                ("topicFilterType", "SINGLE_TAG"),
                ("order", "false"),
            ] {
                req.set_ext(k, v);
            }
            req.set_ext("readQueueNums", queues);
            req.set_ext("writeQueueNums", queues);
            let resp = c.call(req).map_err(|e| format!("broker {addr}: {e}"))?;
            if resp.code != rs::SUCCESS {
                return Err(format!(
                    "creating {topic} on {name}: code {} {}",
                    resp.code,
                    resp.remark.unwrap_or_default()
                ));
            }
        }
        // The broker re-registers at once; wait (bounded) for the route.
        let deadline = Instant::now() + Duration::from_secs(10);
        while r.is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            r = route(namesrv, topic)?;
        }
    }
    let r = r.ok_or_else(|| format!("topic {topic} has no route (create it, or pass --create)"))?;
    let addrs = masters(&r);
    let mut out = Vec::new();
    for q in &r.queue_datas {
        if q.perm & perm::PERM_WRITE == 0 {
            continue;
        }
        let Some((_, addr)) = addrs.iter().find(|(n, _)| n == &q.broker_name) else {
            continue;
        };
        for id in 0..q.write_queue_nums as i32 {
            out.push(Mq {
                topic: topic.to_string(),
                broker: *addr,
                queue_id: id,
            });
        }
    }
    if out.is_empty() {
        return Err(format!(
            "topic {topic} has no writable queue on a master broker"
        ));
    }
    Ok(out)
}
