//! Master/slave replication, RocketMQ's classic HA
//! (`shared/spec/replication.md`): each master shard streams its own commit
//! log to the same shard of every slave over `haListenPort` (`master.rs`);
//! each slave shard appends those bytes verbatim at the same offsets and
//! rebuilds its queues and index from them (`slave.rs`); a slave's shard 0
//! copies topics, groups and consumer offsets from its master
//! (`metadata.rs`). This file owns one shard's replication state: the
//! links of a master shard, the acknowledged offset SYNC_MASTER sends wait
//! for, and a slave shard's view of its master.

pub mod config;
pub mod controller;
pub mod master;
pub mod metadata;
pub mod role;
pub mod slave;
pub mod wire;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rocketcore_storage::{WaitError, Watermark};

pub use config::{BrokerRole, HaConfig};

use crate::remoting::codes::request_code as rq;

/// Requests a slave refuses with SERVICE_NOT_AVAILABLE, as Java 4.x does:
/// everything that writes messages or metadata, which only the master
/// may. Offset commits are kept (clients commit to a slave while the
/// master is away).
pub fn refused_on_slave(code: i32) -> bool {
    matches!(
        code,
        rq::SEND_MESSAGE
            | rq::SEND_MESSAGE_V2
            | rq::SEND_BATCH_MESSAGE
            | rq::CONSUMER_SEND_MSG_BACK
            | rq::END_TRANSACTION
            | rq::UPDATE_AND_CREATE_TOPIC
            | rq::DELETE_TOPIC_IN_BROKER
            | rq::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP
            | rq::DELETE_SUBSCRIPTIONGROUP
            | rq::INVOKE_BROKER_TO_RESET_OFFSET
    )
}

/// One slave streaming from this master shard.
pub struct SlaveLink {
    pub slave_id: i64,
    pub peer: SocketAddr,
    /// In-shard end of the bytes sent on this link.
    pub sent: Cell<u64>,
    /// What the slave last acknowledged as appended.
    pub acked: Cell<u64>,
    pub flushed: Cell<u64>,
}

/// A slave shard's view of its master.
#[derive(Default)]
pub struct Follow {
    /// The master's HA address (`haMasterAddress`, or from registration).
    pub master_ha: Cell<Option<SocketAddr>>,
    /// The master's client address, from registration (metadata sync).
    pub master_addr: Cell<Option<SocketAddr>>,
    pub connected: Cell<bool>,
    /// A stream is open (from connect to close): a shard becoming master
    /// waits for it to end before it records its epoch.
    pub active: Cell<bool>,
    /// The master's log end as of its last frame.
    pub master_end: Cell<u64>,
    /// Why the last attempt to follow failed, for logs and runtime info.
    pub last_error: RefCell<Option<String>>,
}

/// How a SYNC_MASTER send's wait for a slave ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaveAck {
    Acked,
    /// No slave connected, or none within `haMaxGapNotInSync`.
    NotAvailable,
    TimedOut,
}

#[derive(Default)]
pub struct Replication {
    pub links: RefCell<Vec<Rc<SlaveLink>>>,
    /// Highest append end any slave of this shard acknowledged (Java's
    /// `push2SlaveMaxOffset`: a max over connections, so any one slave
    /// counts). SYNC_MASTER sends wait on it.
    pub acked: Watermark,
    pub follow: Follow,
    /// Controller mode: the in-sync slaves (ids) every SYNC_MASTER send
    /// must reach (Java's `allAckInSyncStateSet`), so that whichever of
    /// them the controller elects holds every acknowledged message.
    /// `None` (classic mode): any one slave's ack counts.
    pub sync_set: RefCell<Option<Vec<i64>>>,
}

impl Replication {
    /// Whether a connected slave is close enough for a send ending at `end`
    /// to wait for it (Java's `isSlaveOK`, but judged per link: a slave
    /// that reconnected far behind does not count because another once
    /// acknowledged more).
    pub fn slave_ok(&self, end: u64, max_gap: u64) -> bool {
        self.links
            .borrow()
            .iter()
            .any(|l| end.saturating_sub(l.acked.get()) < max_gap)
    }

    /// Waits until a slave has the bytes up to in-shard `end`.
    pub async fn wait_slave(&self, end: u64, cfg: &HaConfig) -> SlaveAck {
        if self
            .sync_set
            .borrow()
            .as_ref()
            .is_some_and(|s| s.is_empty())
        {
            // In sync with no slave: the master alone decides.
            return SlaveAck::Acked;
        }
        if !self.slave_ok(end, cfg.max_gap_bytes) {
            return SlaveAck::NotAvailable;
        }
        let deadline = Instant::now() + Duration::from_millis(cfg.slave_timeout_ms);
        match self.acked.wait_for(end, deadline).await {
            Ok(()) => SlaveAck::Acked,
            Err(WaitError::TimedOut) | Err(WaitError::Failed(_)) => SlaveAck::TimedOut,
        }
    }

    pub fn on_ack(&self, written: u64) {
        let v = match &*self.sync_set.borrow() {
            None => written,
            // The least any in-sync slave has; a member with no link
            // holds the mark where it is (RocketMQ #6662).
            Some(set) => {
                let links = self.links.borrow();
                let mut least = u64::MAX;
                for id in set {
                    match links
                        .iter()
                        .filter(|l| l.slave_id == *id)
                        .map(|l| l.acked.get())
                        .max()
                    {
                        Some(a) => least = least.min(a),
                        None => return,
                    }
                }
                least
            }
        };
        if v != u64::MAX && v > self.acked.get() {
            self.acked.advance(v);
        }
    }

    pub fn set_sync_set(&self, set: Option<Vec<i64>>) {
        *self.sync_set.borrow_mut() = set;
        self.on_ack(0);
    }

    pub fn add_link(&self, link: Rc<SlaveLink>) {
        self.links.borrow_mut().push(link);
    }

    pub fn remove_link(&self, link: &Rc<SlaveLink>) {
        self.links.borrow_mut().retain(|l| !Rc::ptr_eq(l, link));
    }

    pub fn has_slave(&self, slave_id: i64) -> bool {
        self.links.borrow().iter().any(|l| l.slave_id == slave_id)
    }

    /// Bytes the furthest-behind slave lacks, per link: (slave id, lag).
    pub fn lags(&self, log_end: u64) -> Vec<(i64, u64)> {
        self.links
            .borrow()
            .iter()
            .map(|l| (l.slave_id, log_end.saturating_sub(l.acked.get())))
            .collect()
    }

    /// Ends SYNC_MASTER waits past their deadline; runs on a timer of
    /// its own, so a wait costs no timer.
    pub async fn expire_loop(self: Rc<Self>, slave_timeout_ms: u64) {
        let tick = Duration::from_millis((slave_timeout_ms / 20).clamp(5, 200));
        loop {
            glommio::timer::sleep(tick).await;
            self.acked.expire(Instant::now());
        }
    }
}

/// One shard's part of GET_BROKER_HA_STATUS (907).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ShardHaStatus {
    pub log_end: u64,
    pub log_flushed: u64,
    /// Master: (slave id, slave address, acked, in sync).
    pub links: Vec<(i64, String, u64, bool)>,
    /// Slave: following its master now.
    pub connected: bool,
    pub master_end: u64,
    pub last_error: Option<String>,
}

impl Replication {
    pub fn shard_status(
        &self,
        store: &rocketcore_storage::ShardStore,
        max_gap: u64,
    ) -> ShardHaStatus {
        let end = store.log_end();
        ShardHaStatus {
            log_end: end,
            log_flushed: store.log_flushed(),
            links: self
                .links
                .borrow()
                .iter()
                .map(|l| {
                    let acked = l.acked.get();
                    (
                        l.slave_id,
                        l.peer.to_string(),
                        acked,
                        end.saturating_sub(acked) < max_gap,
                    )
                })
                .collect(),
            connected: self.follow.connected.get(),
            master_end: self.follow.master_end.get(),
            last_error: self.follow.last_error.borrow().clone(),
        }
    }
}

/// Java's HARuntimeInfo from every shard's part: per slave, offsets and
/// lag summed over shards, in sync only when every shard is.
pub fn merge_status(
    is_master: bool,
    master_addr: Option<SocketAddr>,
    parts: &[ShardHaStatus],
) -> serde_json::Value {
    let end: u64 = parts.iter().map(|p| p.log_end).sum();
    let mut slaves: std::collections::BTreeMap<i64, (String, u64, u64, usize, bool)> =
        Default::default();
    for p in parts {
        for (id, addr, acked, in_sync) in &p.links {
            let e = slaves.entry(*id).or_insert((addr.clone(), 0, 0, 0, true));
            e.1 += acked;
            e.2 += p.log_end.saturating_sub(*acked);
            e.3 += 1;
            e.4 &= *in_sync;
        }
    }
    let shards = parts.len();
    let connections: Vec<serde_json::Value> = slaves
        .iter()
        .map(|(id, (addr, acked, diff, n, in_sync))| {
            serde_json::json!({
                "addr": addr,
                "slaveBrokerId": id,
                "slaveAckOffset": acked,
                "diff": diff,
                "inSync": *in_sync && *n == shards,
                "shardsConnected": n,
            })
        })
        .collect();
    let in_sync = connections.iter().filter(|c| c["inSync"] == true).count();
    let mut v = serde_json::json!({
        "master": is_master,
        "masterCommitLogMaxOffset": end,
        "inSyncSlaveNums": in_sync,
        "haConnectionInfo": connections,
    });
    if !is_master {
        v["haClientRuntimeInfo"] = serde_json::json!({
            "masterAddr": master_addr.map(|a| a.to_string()).unwrap_or_default(),
            "maxOffset": end,
            "masterFlushOffset": parts.iter().map(|p| p.master_end).sum::<u64>(),
            "isActivated": parts.iter().all(|p| p.connected),
            "lastError": parts.iter().find_map(|p| p.last_error.clone()).or_else(|| {
                master_addr.is_none().then(|| "the name servers have not named a master yet".to_string())
            }),
        });
    }
    v
}
