//! How shards reach each other: which shard owns a queue, and the messages
//! that cross between shards over `flume` channels. A request that must run
//! on another shard travels whole (its body is a `Bytes`, moved, not
//! copied) and its reply comes back to the shard that forwarded it.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Poll, Waker};

use crate::broker::meta::MetaSnapshot;
use crate::remoting::RemotingCommand;

/// Bound on each shard's inbox. A full inbox makes senders wait: shards
/// push back on each other instead of buffering without limit.
pub const INBOX_MESSAGES: usize = 65_536;

/// Forwarded requests and their replies for one other shard, gathered while
/// this executor runs its ready tasks and sent as one [`ShardMsg::Batch`].
/// Requests cut from one socket read are forwarded by tasks that all run
/// before the flusher (woken by the first) does, so a burst costs one
/// channel lock and at most one cross-core wake-up instead of one each.
#[derive(Default)]
pub struct Outbox {
    queue: RefCell<Vec<ShardMsg>>,
    flusher: RefCell<Option<Waker>>,
}

impl Outbox {
    pub fn push(&self, msg: ShardMsg) {
        self.queue.borrow_mut().push(msg);
        if let Some(flusher) = self.flusher.borrow_mut().take() {
            flusher.wake();
        }
    }

    /// Everything pushed since the last call, waiting until there is some.
    pub async fn take(&self) -> ShardMsg {
        std::future::poll_fn(|cx| {
            let mut queue = self.queue.borrow_mut();
            match queue.len() {
                0 => {
                    *self.flusher.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
                1 => Poll::Ready(queue.pop().expect("one message")),
                _ => Poll::Ready(ShardMsg::Batch(std::mem::take(&mut *queue))),
            }
        })
        .await
    }
}

/// The shard that owns queue (topic, queue_id): a stable function, so every
/// shard and every restart agrees. Consecutive queues of a topic land on
/// consecutive shards, spreading a topic over all of them.
pub fn owner_shard(topic: &str, queue_id: i32, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    let h = rocketcore_storage::properties::java_string_hash(topic.as_bytes()) as u32 as u64;
    ((h + queue_id.max(0) as u64) % shards as u64) as usize
}

/// Where a request came from: the connection and the shard serving it.
#[derive(Debug, Clone, Copy)]
pub struct ReqCtx {
    pub conn_id: u64,
    pub conn_shard: usize,
    pub peer: SocketAddr,
    /// Shard-to-shard forwards this request has taken so far.
    pub hops: u8,
}

pub enum ShardMsg {
    /// Run `cmd` here. `pinned` means: do not route it again (scatter
    /// requests that every shard answers for itself).
    Request {
        ctx: ReqCtx,
        cmd: RemotingCommand,
        pinned: bool,
        from: usize,
        token: u64,
    },
    /// The answer to a request this shard forwarded.
    Reply {
        token: u64,
        cmd: Option<RemotingCommand>,
    },
    /// Requests and replies gathered by an [`Outbox`], in the order pushed.
    Batch(Vec<ShardMsg>),
    /// New metadata from shard 0.
    Meta(Arc<MetaSnapshot>),
    /// A configuration changed by UPDATE_BROKER_CONFIG.
    Config(Arc<super::config::BrokerConfig>),
    /// Send a server-initiated command on one of this shard's connections.
    ToConn { conn_id: u64, cmd: RemotingCommand },
    /// Send a request on one of this shard's connections and hand back the
    /// client's answer (or why there is none).
    AskConn {
        conn_id: u64,
        cmd: RemotingCommand,
        reply: flume::Sender<Result<RemotingCommand, super::shard::AskFailed>>,
    },
    /// A connection closed on some shard (to shard 0: drop its registrations).
    ConnClosed { conn_id: u64 },
    /// To shard 0: send this transaction check to a live producer of `group`.
    CheckProducer { group: String, cmd: RemotingCommand },
    /// Answer with this shard's metrics.
    Snapshot {
        reply: flume::Sender<super::metrics::Snapshot>,
    },
    /// A slave's replication socket that another shard accepted: the
    /// Hello named this shard.
    HaLink {
        fd: std::os::fd::OwnedFd,
        hello: super::ha::wire::Hello,
        peer: SocketAddr,
    },
    /// From a slave's shard 0: where its master is (client address, HA
    /// address), as the name server said at registration.
    HaMaster {
        addr: Option<SocketAddr>,
        ha: Option<SocketAddr>,
    },
    /// From a slave's shard 0: consumer offsets copied from the master for
    /// queues this shard owns.
    SyncOffsets(Vec<super::ha::metadata::OffsetEntry>),
    /// To a slave's shard 0: replicated records name a topic (or a queue)
    /// the copied metadata does not have yet.
    ProvisionalTopic { topic: String, queues: u32 },
    /// From shard 0: this broker's role changed (`ha::role`); answer when
    /// this shard has applied it.
    Role {
        cfg: Arc<super::config::BrokerConfig>,
        reply: flume::Sender<Result<(), String>>,
    },
    /// From a master's shard 0 (controller mode): the slaves, by id, whose
    /// acks a SYNC_MASTER send needs (`None`: any one slave's, classic).
    SyncSet(Option<Vec<i64>>),
    /// Shut down.
    Stop,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_stable_and_spreads_queues() {
        let owners: Vec<usize> = (0..8).map(|q| owner_shard("TopicTest", q, 4)).collect();
        assert_eq!(
            owners,
            (0..8)
                .map(|q| owner_shard("TopicTest", q, 4))
                .collect::<Vec<_>>()
        );
        for s in 0..4 {
            assert_eq!(owners.iter().filter(|o| **o == s).count(), 2, "{owners:?}");
        }
        assert_eq!(owner_shard("x", 5, 1), 0);
    }
}
