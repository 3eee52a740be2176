//! A slave's copy of its master's metadata (Java's SlaveSynchronize), run
//! by shard 0 every `slaveSyncInterval`: topic configs (21) and
//! subscription groups (201) replace the slave's tables when they differ,
//! and consumer offsets (43) overwrite the slave's entries for the same
//! queues (local-only entries stay, as in Java). So a consumer that moves
//! to the slave when the master dies resumes where it had committed.
//! Offsets committed on the slave while the master is away are overwritten
//! by the master's when it returns (Java's behaviour, issue #1094).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use crate::broker::mesh::ShardMsg;
use crate::broker::shard::Shard;
use crate::net::RemotingClient;
use crate::protocol::{SubscriptionGroupWrapper, TopicConfigSerializeWrapper};
use crate::remoting::codes::{request_code as rq, response_code as rs};
use crate::remoting::RemotingCommand;
use crate::security::Credentials;

const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// One queue's committed offset, as the master reports it.
pub type OffsetEntry = (String, String, i32, i64);

pub async fn sync_loop(
    shard: Rc<Shard>,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    credentials: Option<Credentials>,
) {
    let mut client: Option<RemotingClient> = None;
    // Java's first run is 3 s after start; the interval then.
    let first = shard.cfg().ha.slave_sync_interval_ms.min(3_000);
    glommio::timer::sleep(Duration::from_millis(first)).await;
    loop {
        let interval = Duration::from_millis(shard.cfg().ha.slave_sync_interval_ms);
        let following = shard
            .is_slave()
            .then(|| shard.repl.follow.master_addr.get());
        if let Some(Some(addr)) = following {
            if client.as_ref().map(|c| c.addr()) != Some(addr) {
                client = Some(RemotingClient::new(addr, tls.clone(), credentials.clone()));
            }
            if let Some(c) = &client {
                if let Err(why) = sync_all(&shard, c).await {
                    tracing::warn!(master = %addr, "copying metadata from the master: {why}");
                }
            }
        }
        glommio::timer::sleep(interval).await;
    }
}

async fn call(client: &RemotingClient, code: i32) -> Result<bytes::Bytes, String> {
    let r = client
        .call(RemotingCommand::new_request(code), CALL_TIMEOUT)
        .await
        .map_err(|e| format!("request {code}: {e}"))?;
    if r.code != rs::SUCCESS {
        return Err(format!(
            "request {code} answered {}: {}",
            r.code,
            r.remark.unwrap_or_default()
        ));
    }
    Ok(r.body.unwrap_or_default())
}

pub async fn sync_all(shard: &Rc<Shard>, client: &RemotingClient) -> Result<(), String> {
    let Some(owner) = &shard.owner else {
        return Ok(());
    };
    let topics: TopicConfigSerializeWrapper =
        serde_json::from_slice(&call(client, rq::GET_ALL_TOPIC_CONFIG).await?)
            .map_err(|e| format!("topic configs: {e}"))?;
    let groups: SubscriptionGroupWrapper =
        serde_json::from_slice(&call(client, rq::GET_ALL_SUBSCRIPTIONGROUP_CONFIG).await?)
            .map_err(|e| format!("subscription groups: {e}"))?;
    let offsets = decode_offsets(&call(client, rq::GET_ALL_CONSUMER_OFFSET).await?)?;
    let delay: serde_json::Value =
        serde_json::from_slice(&call(client, rq::GET_ALL_DELAY_OFFSET).await?)
            .map_err(|e| format!("delay offsets: {e}"))?;
    // Kept in the files only: a slave delivers nothing, but started as the
    // master later it must go on where the master was.
    if let Some(parts) = delay["rocketcoreShards"].as_array() {
        if parts.len() == shard.shards {
            let store_dir = shard.cfg().store_dir.clone();
            for (k, p) in parts.iter().enumerate() {
                let path = crate::broker::schedule::Scheduler::progress_path(&store_dir, k);
                let bytes = serde_json::to_vec_pretty(p).map_err(|e| e.to_string())?;
                // Equal bytes are not written again.
                drop(crate::broker::file_writer::global().write(&path, bytes));
            }
        }
    }
    let changed = {
        let mut o = owner.borrow_mut();
        let t = o.replace_topics(topics.topic_config_table)?;
        let g = o.replace_groups(groups.subscription_group_table)?;
        t.is_some() || g.is_some()
    };
    if changed {
        shard.publish_meta();
        shard.register_now.set(true);
    }
    let mut per_shard: Vec<Vec<OffsetEntry>> = vec![Vec::new(); shard.shards];
    for e in offsets {
        let k = shard.owner_of(&e.1, e.2);
        per_shard[k].push(e);
    }
    for (k, entries) in per_shard.into_iter().enumerate() {
        if entries.is_empty() {
            continue;
        }
        if k == shard.id {
            shard.apply_synced_offsets(entries);
        } else {
            let _ = shard.mesh_send(k, ShardMsg::SyncOffsets(entries)).await;
        }
    }
    Ok(())
}

/// GET_ALL_CONSUMER_OFFSET's body: `{"offsetTable":{"topic@group":{0:12}}}`,
/// with Java's unquoted integer keys or quoted ones.
pub fn decode_offsets(body: &[u8]) -> Result<Vec<OffsetEntry>, String> {
    let v: serde_json::Value =
        crate::protocol::decode_json(body).map_err(|e| format!("consumer offsets: {e}"))?;
    let table = v
        .get("offsetTable")
        .and_then(|t| t.as_object())
        .ok_or("consumer offsets: no offsetTable")?;
    let mut out = Vec::new();
    for (key, queues) in table {
        let Some((topic, group)) = key.split_once('@') else {
            continue;
        };
        let Some(queues) = queues.as_object() else {
            continue;
        };
        for (q, off) in queues {
            if let (Ok(q), Some(off)) = (q.parse::<i32>(), off.as_i64()) {
                out.push((group.to_string(), topic.to_string(), q, off));
            }
        }
    }
    Ok(out)
}

/// The body of GET_ALL_CONSUMER_OFFSET from entries gathered on every shard.
pub fn encode_offsets(entries: &[OffsetEntry]) -> Vec<u8> {
    let mut table: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
    for (group, topic, q, off) in entries {
        table
            .entry(format!("{topic}@{group}"))
            .or_default()
            .insert(*q, *off);
    }
    serde_json::to_vec(&serde_json::json!({ "offsetTable": table })).unwrap_or_default()
}

/// Where a slave's HA stream and metadata sync go, from a registration
/// answer (`masterAddr`, `haServerAddr`) unless `haMasterAddress` is set.
pub fn master_from_registration(
    r: &RemotingCommand,
    fixed_ha: Option<SocketAddr>,
) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let parse = |k: &str| r.ext_str_opt(k).and_then(|v| v.parse::<SocketAddr>().ok());
    (
        parse("masterAddr"),
        fixed_ha.or_else(|| parse("haServerAddr")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_and_read_java_keys() {
        let e = vec![
            ("g1".to_string(), "T".to_string(), 0, 5),
            ("g1".to_string(), "T".to_string(), 3, 9),
            ("g2".to_string(), "U".to_string(), 1, 0),
        ];
        let mut back = decode_offsets(&encode_offsets(&e)).unwrap();
        back.sort();
        assert_eq!(back, e);
        let java = br#"{"offsetTable":{"T@g1":{0:5,3:9}}}"#;
        assert_eq!(decode_offsets(java).unwrap().len(), 2);
        assert!(decode_offsets(b"{}").is_err());
    }
}
