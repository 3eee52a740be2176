//! One broker shard: the runtime state a glommio executor owns (its store,
//! its connections, its consumer offsets and held pulls, its metadata
//! replica; on shard 0 also the metadata owner) and the request dispatcher
//! that either serves a request here or forwards it to the owning shard.
//!
//! Lives on its executor only (`Rc`, `RefCell`); other shards are reached
//! through `flume` channels.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use rocketcore_storage::ShardStore;

use crate::broker::config::BrokerConfig;
use crate::broker::long_poll::LongPolls;
use crate::broker::mesh::{owner_shard, ReqCtx, ShardMsg};
use crate::broker::meta::{MetaOwner, MetaSnapshot};
use crate::broker::offsets::ConsumerOffsets;
use crate::broker::reply_slot::{Outcome, ReplySlot};
use crate::broker::schedule::Scheduler;
use crate::broker::transaction::Transactions;
use crate::filter::Sql92Filter;
use crate::net::{Conn, Handler};
use crate::remoting::codes::{request_code as rq, response_code as rs};
use crate::remoting::RemotingCommand;

/// A forwarded request not answered within this long fails with
/// SYSTEM_ERROR. Longer than the longest pull hold plus slack.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(40);
/// Why a request the broker sent a client got no answer.
#[derive(Debug)]
pub enum AskFailed {
    /// The connection, or the shard holding it, is gone.
    Unreachable(String),
    /// Sent, and not answered within `ASK_CLIENT_TIMEOUT`.
    Timeout,
}

impl std::fmt::Display for AskFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AskFailed::Unreachable(why) => f.write_str(why),
            AskFailed::Timeout => write!(
                f,
                "the client did not answer in {}s",
                ASK_CLIENT_TIMEOUT.as_secs()
            ),
        }
    }
}

/// How long a client may take to answer a request the broker relays to it
/// (Java's default for GET_CONSUMER_RUNNING_INFO).
pub const ASK_CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Shard {
    pub id: usize,
    pub shards: usize,
    /// Replaced whole by UPDATE_BROKER_CONFIG (`ShardMsg::Config`).
    cfg: RefCell<Arc<BrokerConfig>>,
    /// Shard 0: an UPDATE_BROKER_CONFIG is being persisted.
    pub config_updating: Cell<bool>,
    pub store: Rc<ShardStore>,
    mesh: Vec<flume::Sender<ShardMsg>>,
    meta: RefCell<Arc<MetaSnapshot>>,
    /// Shard 0 only.
    pub owner: Option<RefCell<MetaOwner>>,
    /// Forwards awaiting their reply, by token. Tokens rise and every
    /// forward waits as long, so the oldest deadlines come first.
    pending: RefCell<std::collections::BTreeMap<u64, Rc<ReplySlot>>>,
    /// Per other shard: forwards and replies to send on the next flush.
    outboxes: Vec<Rc<super::mesh::Outbox>>,
    next_token: Cell<u64>,
    next_opaque: Cell<i32>,
    conns: RefCell<HashMap<u64, Weak<Conn>>>,
    pub offsets: RefCell<ConsumerOffsets>,
    pub polls: LongPolls,
    pub stats: ShardStats,
    /// Set when shard 0 must re-register with the name servers now.
    pub register_now: Cell<bool>,
    /// Sequence for broker-made UNIQ_KEYs, reserved before any await.
    pub uniq_seq: Cell<u64>,
    /// Set at shutdown, before offsets are persisted for the last time.
    pub stopping: Cell<bool>,
    pub sched: Scheduler,
    pub tx: Transactions,
    /// Compiled SQL92 expressions by source text, so pulls do not parse.
    pub sql_cache: RefCell<HashMap<Box<str>, Rc<Sql92Filter>>>,
    /// Queue choice for sends that leave it to the broker (`queueId < 0`).
    pub next_queue: Cell<u64>,
    /// Shard 0: groups whose join notice is to be repeated.
    pub notify_pending: RefCell<std::collections::HashSet<String>>,
    /// Set when ACL is on: every client request is checked against it.
    pub acl: Option<crate::security::AclView>,
    pub metrics: super::metrics::ShardMetrics,
    /// Replication: this shard's slave links (master) or its view of the
    /// master (slave).
    pub repl: Rc<super::ha::Replication>,
}

#[derive(Default)]
pub struct ShardStats {
    pub put_msgs: Cell<u64>,
    pub get_msgs: Cell<u64>,
    /// Requests this shard sent to another shard.
    pub forwarded: Cell<u64>,
    /// Requests read from this shard's client connections.
    pub client_requests: Cell<u64>,
    pub boot_ms: Cell<i64>,
}

/// Builds a response to `req` with `code` and an optional remark.
pub fn response(
    req: &RemotingCommand,
    code: i32,
    remark: impl Into<Option<String>>,
) -> RemotingCommand {
    RemotingCommand::new_response(code, remark.into()).reply_to(req)
}

pub use crate::protocol::now_ms;

impl Shard {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: usize,
        cfg: Arc<BrokerConfig>,
        store: Rc<ShardStore>,
        mesh: Vec<flume::Sender<ShardMsg>>,
        meta: Arc<MetaSnapshot>,
        owner: Option<MetaOwner>,
        offsets: ConsumerOffsets,
        sched: Scheduler,
        tx: Transactions,
    ) -> Shard {
        let shards = mesh.len();
        let stats = ShardStats::default();
        stats.boot_ms.set(now_ms());
        Shard {
            id,
            shards,
            cfg: RefCell::new(cfg),
            config_updating: Cell::new(false),
            store,
            mesh,
            meta: RefCell::new(meta),
            owner: owner.map(RefCell::new),
            pending: RefCell::new(std::collections::BTreeMap::new()),
            outboxes: (0..shards).map(|_| Rc::default()).collect(),
            next_token: Cell::new(1),
            next_opaque: Cell::new(1),
            conns: RefCell::new(HashMap::new()),
            offsets: RefCell::new(offsets),
            polls: LongPolls::default(),
            stats,
            register_now: Cell::new(false),
            uniq_seq: Cell::new(0),
            stopping: Cell::new(false),
            sched,
            tx,
            sql_cache: RefCell::new(HashMap::new()),
            next_queue: Cell::new(0),
            notify_pending: RefCell::new(std::collections::HashSet::new()),
            acl: None,
            metrics: Default::default(),
            repl: Default::default(),
        }
    }

    /// Client connections this shard serves.
    pub fn connection_count(&self) -> usize {
        self.conns.borrow().len()
    }

    /// Puts `msg` in shard `k`'s inbox (waiting while it is full).
    pub async fn mesh_send(&self, k: usize, msg: ShardMsg) -> Result<(), ()> {
        self.mesh[k].send_async(msg).await.map_err(drop)
    }

    pub fn meta(&self) -> Arc<MetaSnapshot> {
        self.meta.borrow().clone()
    }

    pub fn owner_of(&self, topic: &str, queue_id: i32) -> usize {
        owner_shard(topic, queue_id, self.shards)
    }

    /// The configuration in force. Never hold it across an await: an
    /// update replaces it between tasks.
    pub fn cfg(&self) -> std::cell::Ref<'_, Arc<BrokerConfig>> {
        self.cfg.borrow()
    }

    pub fn set_cfg(&self, cfg: Arc<BrokerConfig>) {
        *self.cfg.borrow_mut() = cfg;
    }

    /// Serves `cmd` here, or forwards it to the shard that owns it.
    pub async fn process(
        self: &Rc<Self>,
        ctx: ReqCtx,
        cmd: RemotingCommand,
        pinned: bool,
    ) -> Option<RemotingCommand> {
        if self.is_slave() && super::ha::refused_on_slave(cmd.code) {
            return (!cmd.is_oneway()).then(|| {
                response(
                    &cmd,
                    rs::SERVICE_NOT_AVAILABLE,
                    "service not available now. It may be caused by one of the following reasons: \
                     the broker's disk is full, messages are put to the slave, message store has been shut down, etc."
                        .to_string(),
                )
            });
        }
        match self.route(&cmd, pinned) {
            Some(target) if target != self.id => self.forward(target, ctx, cmd, false).await,
            _ => self.serve(ctx, cmd, pinned).await,
        }
    }

    /// Which shard must serve `cmd`; None when any shard can.
    fn route(&self, cmd: &RemotingCommand, pinned: bool) -> Option<usize> {
        if pinned || self.shards == 1 {
            return None;
        }
        let queue_target = |topic_key: &str, qid_key: &str| {
            let topic = cmd.ext_str_opt(topic_key)?;
            let qid = cmd.ext_str_opt(qid_key)?.trim().parse::<i32>().ok()?;
            (qid >= 0).then(|| self.owner_of(topic, qid))
        };
        match cmd.code {
            // Sends are routed inside the send handler: it may have to pick
            // the queue or create the topic first.
            rq::PULL_MESSAGE
            | rq::LITE_PULL_MESSAGE
            | rq::QUERY_CONSUMER_OFFSET
            | rq::UPDATE_CONSUMER_OFFSET
            | rq::GET_MAX_OFFSET
            | rq::GET_MIN_OFFSET
            | rq::SEARCH_OFFSET_BY_TIMESTAMP
            | rq::GET_EARLIEST_MSG_STORETIME => queue_target("topic", "queueId"),
            rq::HEART_BEAT
            | rq::UNREGISTER_CLIENT
            | rq::GET_CONSUMER_LIST_BY_GROUP
            | rq::LOCK_BATCH_MQ
            | rq::UNLOCK_BATCH_MQ
            | rq::UPDATE_AND_CREATE_TOPIC
            | rq::DELETE_TOPIC_IN_BROKER
            | rq::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP
            | rq::GET_ALL_SUBSCRIPTIONGROUP_CONFIG
            | rq::DELETE_SUBSCRIPTIONGROUP
            | rq::GET_CONSUMER_CONNECTION_LIST
            | rq::GET_PRODUCER_CONNECTION_LIST
            | rq::UPDATE_BROKER_CONFIG
            | rq::NOTIFY_BROKER_ROLE_CHANGED
            | rq::GET_CONSUMER_RUNNING_INFO
            | rq::GET_ALL_PRODUCER_INFO => Some(0),
            // By the shard byte of the commit-log offset they name.
            rq::VIEW_MESSAGE_BY_ID | rq::CONSUMER_SEND_MSG_BACK => {
                let off = cmd.ext_str_opt("offset")?.trim().parse::<i64>().ok()?;
                let (shard, _) = rocketcore_storage::from_global(off);
                Some((shard as usize).min(self.shards - 1))
            }
            rq::END_TRANSACTION => {
                let off = cmd
                    .ext_str_opt("commitLogOffset")?
                    .trim()
                    .parse::<i64>()
                    .ok()?;
                let (shard, _) = rocketcore_storage::from_global(off);
                Some((shard as usize).min(self.shards - 1))
            }
            _ => None,
        }
    }

    async fn serve(
        self: &Rc<Self>,
        ctx: ReqCtx,
        cmd: RemotingCommand,
        pinned: bool,
    ) -> Option<RemotingCommand> {
        match cmd.code {
            rq::SEND_MESSAGE | rq::SEND_MESSAGE_V2 | rq::SEND_BATCH_MESSAGE => {
                self.handle_send(ctx, cmd).await
            }
            rq::PULL_MESSAGE | rq::LITE_PULL_MESSAGE => self.handle_pull(ctx, cmd).await,
            rq::QUERY_CONSUMER_OFFSET => Some(self.handle_query_consumer_offset(&cmd)),
            rq::UPDATE_CONSUMER_OFFSET => Some(self.handle_update_consumer_offset(&cmd)),
            rq::GET_MAX_OFFSET => Some(self.handle_get_max_offset(&cmd)),
            rq::GET_MIN_OFFSET => Some(self.handle_get_min_offset(&cmd)),
            rq::SEARCH_OFFSET_BY_TIMESTAMP => Some(self.handle_search_offset(&cmd).await),
            rq::GET_EARLIEST_MSG_STORETIME => Some(self.handle_earliest_store_time(&cmd).await),
            rq::HEART_BEAT => Some(self.handle_heartbeat(ctx, &cmd)),
            rq::UNREGISTER_CLIENT => Some(self.handle_unregister_client(&cmd)),
            rq::GET_CONSUMER_LIST_BY_GROUP => Some(self.handle_consumer_list(&cmd)),
            rq::LOCK_BATCH_MQ => Some(self.handle_lock(&cmd)),
            rq::UNLOCK_BATCH_MQ => Some(self.handle_unlock(&cmd)),
            rq::CHECK_CLIENT_CONFIG => Some(self.handle_check_client_config(&cmd)),
            rq::UPDATE_AND_CREATE_TOPIC => Some(self.handle_create_topic(&cmd).await),
            rq::DELETE_TOPIC_IN_BROKER => Some(self.handle_delete_topic(&cmd).await),
            rq::GET_ALL_TOPIC_CONFIG => Some(self.handle_all_topic_config(&cmd)),
            rq::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP => Some(self.handle_create_group(&cmd).await),
            rq::GET_ALL_SUBSCRIPTIONGROUP_CONFIG => Some(self.handle_all_groups(&cmd)),
            rq::DELETE_SUBSCRIPTIONGROUP => Some(self.handle_delete_group(&cmd).await),
            rq::GET_CONSUMER_CONNECTION_LIST => Some(self.handle_consumer_connections(&cmd)),
            rq::GET_PRODUCER_CONNECTION_LIST => Some(self.handle_producer_connections(&cmd)),
            rq::QUERY_MESSAGE if pinned => Some(self.handle_query_message_local(&cmd).await),
            rq::QUERY_MESSAGE => Some(self.handle_query_message(ctx, cmd).await),
            rq::VIEW_MESSAGE_BY_ID => Some(self.handle_view_message(&cmd).await),
            rq::END_TRANSACTION => self.handle_end_transaction(&cmd).await,
            rq::CONSUMER_SEND_MSG_BACK => Some(self.handle_send_back(ctx, &cmd).await),
            rq::GET_BROKER_RUNTIME_INFO if pinned => Some(self.handle_runtime_info_local(&cmd)),
            rq::GET_BROKER_RUNTIME_INFO => Some(self.handle_runtime_info(ctx, cmd).await),
            rq::GET_BROKER_CONFIG => Some(self.handle_broker_config(&cmd)),
            rq::GET_TOPIC_STATS_INFO
            | rq::GET_CONSUME_STATS
            | rq::INVOKE_BROKER_TO_RESET_OFFSET
            | rq::QUERY_TOPIC_CONSUME_BY_WHO
            | rq::GET_ALL_CONSUMER_OFFSET
            | rq::GET_BROKER_HA_STATUS
            | rq::GET_ALL_DELAY_OFFSET
                if pinned =>
            {
                self.serve_pinned_part(cmd).await
            }
            rq::GET_TOPIC_STATS_INFO => Some(self.handle_topic_stats(ctx, &cmd).await),
            rq::GET_CONSUME_STATS => Some(self.handle_consume_stats(ctx, &cmd).await),
            rq::INVOKE_BROKER_TO_RESET_OFFSET => Some(self.handle_reset_offset(ctx, &cmd).await),
            rq::UPDATE_BROKER_CONFIG => Some(self.handle_update_config(&cmd).await),
            rq::NOTIFY_BROKER_ROLE_CHANGED => Some(self.handle_role_change(&cmd).await),
            rq::GET_CONSUMER_RUNNING_INFO => Some(self.handle_consumer_running_info(&cmd).await),
            rq::QUERY_TOPIC_CONSUME_BY_WHO => Some(self.handle_consumed_by(ctx, &cmd).await),
            rq::GET_ALL_CONSUMER_OFFSET => Some(self.handle_all_consumer_offsets(ctx, &cmd).await),
            rq::GET_BROKER_HA_STATUS => Some(self.handle_ha_status(ctx, &cmd).await),
            rq::GET_ALL_DELAY_OFFSET => Some(self.handle_all_delay_offsets(ctx, &cmd).await),
            rq::GET_TOPIC_CONFIG => Some(self.handle_topic_config(&cmd)),
            rq::GET_ALL_PRODUCER_INFO => Some(self.handle_all_producers(&cmd)),
            rq::GET_BROKER_CONSUME_STATS => Some(self.handle_broker_consume_stats(ctx, &cmd).await),
            _ => Some(RemotingCommand::not_supported_reply(&cmd)),
        }
    }

    /// Sends `cmd` to shard `target` and waits for its reply.
    pub async fn forward(
        self: &Rc<Self>,
        target: usize,
        ctx: ReqCtx,
        cmd: RemotingCommand,
        pinned: bool,
    ) -> Option<RemotingCommand> {
        self.stats.forwarded.set(self.stats.forwarded.get() + 1);
        let oneway = cmd.is_oneway();
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        let slot = Rc::new(ReplySlot::new(std::time::Instant::now() + FORWARD_TIMEOUT));
        let error_reply = response(&cmd, rs::SYSTEM_ERROR, None);
        self.pending.borrow_mut().insert(token, slot.clone());
        let ctx = ReqCtx {
            hops: ctx.hops.saturating_add(1),
            ..ctx
        };
        self.outboxes[target].push(ShardMsg::Request {
            ctx,
            cmd,
            pinned,
            from: self.id,
            token,
        });
        let outcome = slot.wait().await;
        self.pending.borrow_mut().remove(&token);
        match outcome {
            Outcome::Reply(reply) => reply,
            Outcome::Undelivered => {
                (!oneway).then(|| error_reply.with_remark("shard is shutting down"))
            }
            // The owner may still act on it (a send may be stored): say so,
            // so that a client does not take it for a refusal.
            Outcome::TimedOut => (!oneway).then(|| {
                error_reply.with_remark(format!(
                    "shard {target} did not answer in {}s; the request may still have taken effect",
                    FORWARD_TIMEOUT.as_secs()
                ))
            }),
        }
    }

    /// Ends the forwards whose owner has not answered in [`FORWARD_TIMEOUT`].
    pub fn expire_forwards(&self, now: std::time::Instant) {
        let mut pending = self.pending.borrow_mut();
        while let Some(entry) = pending.first_entry() {
            if entry.get().deadline > now {
                break;
            }
            entry.remove().fill(Outcome::TimedOut);
        }
    }

    /// Sends what forwards and replies gathered for shard `target`, batch
    /// by batch, until the shard stops.
    pub async fn flush_mesh(self: Rc<Self>, target: usize) {
        let outbox = self.outboxes[target].clone();
        loop {
            let batch = outbox.take().await;
            if let Err(flume::SendError(batch)) = self.mesh[target].send_async(batch).await {
                self.undelivered(batch);
            }
        }
    }

    fn undelivered(&self, msg: ShardMsg) {
        match msg {
            ShardMsg::Batch(batch) => batch.into_iter().for_each(|m| self.undelivered(m)),
            ShardMsg::Request { token, .. } => {
                if let Some(slot) = self.pending.borrow_mut().remove(&token) {
                    slot.fill(Outcome::Undelivered);
                }
            }
            _ => {}
        }
    }

    /// Runs the shard's inbox until Stop.
    pub async fn inbox_loop(self: Rc<Self>, inbox: flume::Receiver<ShardMsg>) {
        while let Ok(msg) = inbox.recv_async().await {
            if !self.on_msg(msg) {
                break;
            }
        }
    }

    /// Acts on one inbox message; false on Stop.
    fn on_msg(self: &Rc<Self>, msg: ShardMsg) -> bool {
        match msg {
            ShardMsg::Batch(batch) => {
                for msg in batch {
                    if !self.on_msg(msg) {
                        return false;
                    }
                }
            }
            ShardMsg::Request {
                ctx,
                cmd,
                pinned,
                from,
                token,
            } => {
                let me = self.clone();
                glommio::spawn_local(async move {
                    let reply = me.process(ctx, cmd, pinned).await;
                    me.outboxes[from].push(ShardMsg::Reply { token, cmd: reply });
                })
                .detach();
            }
            ShardMsg::Reply { token, cmd } => {
                if let Some(slot) = self.pending.borrow_mut().remove(&token) {
                    slot.fill(Outcome::Reply(cmd));
                }
            }
            ShardMsg::Meta(snapshot) => self.apply_meta(snapshot),
            ShardMsg::Config(cfg) => self.set_cfg(cfg),
            ShardMsg::ToConn { conn_id, cmd } => {
                self.send_to_conn(conn_id, cmd);
            }
            ShardMsg::AskConn {
                conn_id,
                cmd,
                reply,
            } => {
                let me = self.clone();
                glommio::spawn_local(async move {
                    let _ = reply.send(me.ask_conn(conn_id, cmd).await);
                })
                .detach();
            }
            ShardMsg::ConnClosed { conn_id } => self.on_conn_closed_owner(conn_id),
            ShardMsg::CheckProducer { group, cmd } => self.check_with_producer(&group, cmd),
            ShardMsg::Snapshot { reply } => {
                let _ = reply.send(self.metrics_snapshot());
            }
            ShardMsg::HaLink { fd, hello, peer } => {
                glommio::spawn_local(super::ha::master::adopt(self.clone(), fd, hello, peer))
                    .detach();
            }
            ShardMsg::HaMaster { addr, ha } => self.set_master(addr, ha),
            ShardMsg::SyncSet(set) => self.repl.set_sync_set(set),
            ShardMsg::Role { cfg, reply } => {
                let me = self.clone();
                glommio::spawn_local(async move {
                    let _ = reply.send(me.apply_role(cfg).await);
                })
                .detach();
            }
            ShardMsg::SyncOffsets(entries) => self.apply_synced_offsets(entries),
            ShardMsg::ProvisionalTopic { topic, queues } => self.provisional_topic(&topic, queues),
            ShardMsg::Stop => return false,
        }
        true
    }

    fn apply_meta(&self, snapshot: Arc<MetaSnapshot>) {
        // A snapshot delayed behind a newer one must not undo it (it would
        // look as if topics created since had been deleted).
        if snapshot.version < self.meta.borrow().version {
            return;
        }
        let old = self.meta.replace(snapshot.clone());
        // Topics that disappeared lose their queues on this shard too.
        let mut deleted = false;
        for topic in old
            .topics
            .keys()
            .filter(|t| !snapshot.topics.contains_key(*t))
        {
            match self.store.delete_topic(topic) {
                Ok(had_queues) => deleted |= had_queues,
                Err(e) => tracing::warn!(shard = self.id, topic, "deleting topic data: {e}"),
            }
            self.offsets.borrow_mut().forget_topic(topic);
        }
        if deleted {
            // Without it, recovery after a crash would rebuild the deleted
            // queues from their records past the last checkpoint.
            let store = self.store.clone();
            let shard = self.id;
            glommio::spawn_local(async move {
                if let Err(e) = store.checkpoint_now().await {
                    tracing::warn!(shard, "checkpoint after deleting topics: {e}");
                }
            })
            .detach();
        }
    }

    /// Shard 0: publishes the owner's snapshot to every shard (itself first).
    pub fn publish_meta(&self) {
        let Some(owner) = &self.owner else { return };
        let snap = owner.borrow().snapshot.clone();
        self.apply_meta(snap.clone());
        for (i, tx) in self.mesh.iter().enumerate() {
            if i != self.id {
                // A full inbox only delays the update; never block the owner.
                if tx.try_send(ShardMsg::Meta(snap.clone())).is_err() {
                    let tx = tx.clone();
                    let snap = snap.clone();
                    glommio::spawn_local(async move {
                        let _ = tx.send_async(ShardMsg::Meta(snap)).await;
                    })
                    .detach();
                }
            }
        }
    }

    /// Sends a server-initiated oneway command to a client connection,
    /// wherever it lives.
    pub fn send_oneway_to(&self, conn_shard: usize, conn_id: u64, mut cmd: RemotingCommand) {
        cmd.mark_oneway();
        if conn_shard == self.id {
            self.send_to_conn(conn_id, cmd);
        } else if let Some(tx) = self.mesh.get(conn_shard) {
            let _ = tx.try_send(ShardMsg::ToConn { conn_id, cmd });
        }
    }

    fn send_to_conn(&self, conn_id: u64, mut cmd: RemotingCommand) {
        let conn = self.conns.borrow().get(&conn_id).and_then(Weak::upgrade);
        if let Some(conn) = conn {
            let opaque = self.next_opaque.get();
            self.next_opaque.set(opaque.wrapping_add(1) & i32::MAX);
            cmd.opaque = opaque;
            conn.send(cmd);
        }
    }

    /// Sends request `cmd` to a client on one of this shard's connections
    /// and waits `ASK_CLIENT_TIMEOUT` for its answer.
    pub async fn ask_conn(
        &self,
        conn_id: u64,
        mut cmd: RemotingCommand,
    ) -> Result<RemotingCommand, AskFailed> {
        let closed = || AskFailed::Unreachable("the client's connection is closed".into());
        let conn = self
            .conns
            .borrow()
            .get(&conn_id)
            .and_then(Weak::upgrade)
            .ok_or_else(closed)?;
        let opaque = self.next_opaque.get();
        self.next_opaque.set(opaque.wrapping_add(1) & i32::MAX);
        cmd.opaque = opaque;
        let rx = conn.request(cmd).ok_or_else(closed)?;
        let answer =
            glommio::timer::timeout(ASK_CLIENT_TIMEOUT, async { Ok(rx.recv_async().await) }).await;
        conn.forget(opaque);
        match answer {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(closed()),
            Err(_) => Err(AskFailed::Timeout),
        }
    }

    /// Whether this broker is a slave (`brokerRole=SLAVE`).
    pub fn is_slave(&self) -> bool {
        self.cfg().ha.role.is_slave()
    }

    /// A slave learns where its master is; shard 0 tells the others.
    pub fn set_master(&self, addr: Option<SocketAddr>, ha: Option<SocketAddr>) {
        let f = &self.repl.follow;
        f.master_addr.set(addr);
        if ha.is_some() && f.master_ha.get() != ha {
            tracing::info!(shard = self.id, master = ?addr, ha = ?ha, "master's HA address");
            f.master_ha.set(ha);
        }
        if self.id == 0 {
            for k in 1..self.shards {
                self.send_to_shard(k, ShardMsg::HaMaster { addr, ha });
            }
        }
    }

    /// A slave keeps replicated records of a topic readable before (or,
    /// when the master died first, without) the next metadata copy: the
    /// topic gets a config with at least the queues seen. The master's
    /// table replaces it at the next copy.
    pub fn provisional_topic(&self, topic: &str, queues: u32) {
        let Some(owner) = &self.owner else {
            self.send_to_shard(
                0,
                ShardMsg::ProvisionalTopic {
                    topic: topic.to_string(),
                    queues,
                },
            );
            return;
        };
        let queues = queues.max(self.cfg().default_topic_queue_nums);
        let known = owner
            .borrow()
            .snap()
            .topic(topic)
            .map(|t| t.read_queue_nums);
        if known.is_some_and(|n| n >= queues) {
            return;
        }
        let mut cfg = match owner.borrow().snap().topic(topic) {
            Some(t) => t.clone(),
            None => crate::protocol::TopicConfig::new(topic, queues),
        };
        cfg.read_queue_nums = cfg.read_queue_nums.max(queues);
        cfg.write_queue_nums = cfg.write_queue_nums.max(queues);
        tracing::info!(
            topic,
            queues,
            "replicated records name a topic not copied yet"
        );
        if let Err(e) = owner.borrow_mut().put_topic(cfg) {
            tracing::warn!(topic, "recording a replicated topic: {e}");
            return;
        }
        self.publish_meta();
    }

    /// Consumer offsets copied from the master overwrite this shard's
    /// entries for the same queues.
    pub fn apply_synced_offsets(&self, entries: Vec<super::ha::metadata::OffsetEntry>) {
        let mut offsets = self.offsets.borrow_mut();
        for (group, topic, q, off) in entries {
            if offsets.get(&group, &topic, q) != Some(off) {
                offsets.set(&group, &topic, q, off);
            }
        }
    }

    pub fn send_to_shard(&self, shard: usize, msg: ShardMsg) {
        if let Some(tx) = self.mesh.get(shard) {
            let _ = tx.try_send(msg);
        }
    }

    pub fn shard_senders(&self) -> &[flume::Sender<ShardMsg>] {
        &self.mesh
    }
}

impl Handler for Shard {
    async fn handle(
        self: Rc<Self>,
        conn: Rc<Conn>,
        req: RemotingCommand,
    ) -> Option<RemotingCommand> {
        self.stats
            .client_requests
            .set(self.stats.client_requests.get() + 1);
        if conn.is_closed() {
            // Registering now would outlive the close already reported.
            return None;
        }
        if let Some(acl) = &self.acl {
            // Checked where the request arrived, before it moves to the
            // shard that owns its queue.
            if let Err(why) = acl.with(|a| a.check_broker(&req, conn.peer.ip())) {
                return (!req.is_oneway()).then(|| acl.refuse(&req, &why));
            }
        }
        if !conn.registered.replace(true) {
            self.conns
                .borrow_mut()
                .insert(conn.id, Rc::downgrade(&conn));
        }
        let ctx = ReqCtx {
            conn_id: conn.id,
            conn_shard: self.id,
            peer: conn.peer,
            hops: 0,
        };
        let latency = match req.code {
            rq::SEND_MESSAGE | rq::SEND_MESSAGE_V2 | rq::SEND_BATCH_MESSAGE => {
                Some(&self.metrics.send_latency)
            }
            rq::PULL_MESSAGE | rq::LITE_PULL_MESSAGE => Some(&self.metrics.pull_latency),
            _ => None,
        };
        let debug = tracing::enabled!(tracing::Level::DEBUG);
        if latency.is_none() && !debug {
            return self.process(ctx, req, false).await;
        }
        let (code, opaque) = (req.code, req.opaque);
        let started = std::time::Instant::now();
        let reply = self.process(ctx, req, false).await;
        let us = started.elapsed().as_micros() as u64;
        if let Some(latency) = latency {
            latency.record(us);
        }
        if debug {
            // Request by request, for following one client's conversation.
            tracing::debug!(
                shard = self.id,
                conn = conn.id,
                code,
                opaque,
                reply = reply.as_ref().map(|r| r.code),
                remark = reply.as_ref().and_then(|r| r.remark.as_deref()),
                us,
                "request"
            );
        }
        reply
    }

    fn on_close(&self, conn: &Rc<Conn>) {
        self.conns.borrow_mut().remove(&conn.id);
        if self.id == 0 {
            self.on_conn_closed_owner(conn.id);
        } else {
            // Must arrive even when shard 0's inbox is momentarily full, or
            // the consumer stays registered until it expires.
            let tx = self.mesh[0].clone();
            let conn_id = conn.id;
            glommio::spawn_local(async move {
                let _ = tx.send_async(ShardMsg::ConnClosed { conn_id }).await;
            })
            .detach();
        }
    }
}
