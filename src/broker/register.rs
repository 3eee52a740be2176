//! Shard 0's registration with the name servers: REGISTER_BROKER (103) with
//! every topic at start-up, every `register_interval_ms` and right after a
//! topic change; UNREGISTER_BROKER (104) at shutdown.

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::broker::shard::Shard;
use crate::net::RemotingClient;
use crate::protocol::RegisterBrokerBody;
use crate::remoting::codes::{request_code as rq, response_code as rs};
use crate::remoting::RemotingCommand;

/// How long one registration call may take.
pub const REGISTER_TIMEOUT: Duration = Duration::from_secs(6);
/// How often a slave without a known master registers again.
const SLAVE_SEARCH_INTERVAL: Duration = Duration::from_secs(3);
/// How often the loop looks for a pending immediate registration.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

fn header(shard: &Shard, code: i32) -> RemotingCommand {
    let cfg = shard.cfg().clone();
    let mut cmd = RemotingCommand::new_request(code);
    cmd.set_ext("brokerName", &cfg.broker_name);
    cmd.set_ext("brokerAddr", cfg.advertised);
    cmd.set_ext("clusterName", &cfg.cluster_name);
    cmd.set_ext("brokerId", cfg.broker_id);
    cmd
}

pub async fn register_once(shard: &Shard, clients: &[RemotingClient]) {
    let Some(owner) = &shard.owner else { return };
    if shard.cfg().broker_id < 0 {
        // Controller mode, before the controller gave this broker an id.
        return;
    }
    let mut wrapper = owner.borrow().topic_wrapper();
    // Java's `DataVersion.nextVersion(epoch)`: name servers refuse a
    // registration whose role epoch is older than the address holding the
    // same brokerId, so a demoted master that has not heard of its
    // demotion cannot take id 0 back.
    wrapper.data_version.state_version = shard.cfg().role_epoch as i64;
    let body = RegisterBrokerBody {
        topic_config_serialize_wrapper: wrapper,
        filter_server_list: Vec::new(),
    };
    let Ok(body) = serde_json::to_vec(&body) else {
        return;
    };
    let crc = rocketcore_storage::record::body_crc(&body);
    for client in clients {
        let mut cmd = header(shard, rq::REGISTER_BROKER);
        let ha = {
            let cfg = shard.cfg();
            std::net::SocketAddr::new(cfg.advertised.ip(), cfg.ha.listen(cfg.listen).port())
        };
        cmd.set_ext("haServerAddr", ha);
        cmd.set_ext("compressed", "false");
        cmd.set_ext("bodyCrc32", crc);
        let cmd = cmd.with_body(body.clone());
        match client.call(cmd, REGISTER_TIMEOUT).await {
            Ok(r) if r.code == rs::SUCCESS => {
                // In controller mode the controller names the master; a
                // name server may still list the one it replaced.
                if shard.is_slave() && !shard.cfg().ha.controller_mode {
                    let fixed = shard.cfg().ha.master_address;
                    let (addr, ha) =
                        crate::broker::ha::metadata::master_from_registration(&r, fixed);
                    shard.set_master(addr, ha);
                }
            }
            Ok(r) => {
                tracing::warn!(namesrv = %client.addr(), code = r.code, remark = ?r.remark, "name server refused registration")
            }
            Err(e) => {
                tracing::warn!(namesrv = %client.addr(), "registering with name server failed: {e}")
            }
        }
    }
}

/// Runs until the task is dropped.
pub async fn register_loop(shard: Rc<Shard>, clients: Rc<Vec<RemotingClient>>) {
    let interval = Duration::from_millis(shard.cfg().register_interval_ms);
    let mut last = Instant::now();
    register_once(&shard, &clients).await;
    loop {
        glommio::timer::sleep(POLL_INTERVAL).await;
        // A slave that has not heard of its master yet asks again soon:
        // the master may simply have registered after it.
        let searching = shard.is_slave()
            && shard.repl.follow.master_addr.get().is_none()
            && last.elapsed() >= SLAVE_SEARCH_INTERVAL;
        if shard.register_now.replace(false) || searching || last.elapsed() >= interval {
            last = Instant::now();
            register_once(&shard, &clients).await;
        }
    }
}

pub async fn unregister(shard: &Shard, clients: &[RemotingClient]) {
    for client in clients {
        let cmd = header(shard, rq::UNREGISTER_BROKER);
        if let Err(e) = client.call(cmd, REGISTER_TIMEOUT).await {
            tracing::warn!(namesrv = %client.addr(), "unregistering from name server failed: {e}");
        }
    }
}
