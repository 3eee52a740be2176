//! Controller mode (`enableControllerMode=true`), on shard 0: the broker's
//! side of RocketMQ 5's ReplicasManager. It gets a brokerId from the
//! controller once (kept in `<store>/config/controller-broker-id`),
//! registers its addresses, heartbeats every controller node, and polls
//! its group's replica info: when that names a master of a newer epoch,
//! it changes role (`role.rs`): master if it is the one named, otherwise
//! a slave of it. A group with no master asks for an election. As
//! master it reports which slaves are in sync (every shard connected and
//! within `haMaxGapNotInSync`; one that has not caught up for
//! `haMaxTimeSlaveNotCatchup` leaves) and makes SYNC_MASTER sends wait for
//! all of them.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::role::{Master, RoleChange};
use super::BrokerRole;
use crate::broker::mesh::ShardMsg;
use crate::broker::shard::Shard;
use crate::controller::codes;
use crate::controller::SyncStateSet;
use crate::net::RemotingClient;
use crate::remoting::codes::response_code as rs;
use crate::remoting::RemotingCommand;
use crate::security::Credentials;

const ID_FILE: &str = "controller-broker-id";
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
const TICK: Duration = Duration::from_millis(100);

/// The id an earlier run got from the controller.
pub fn saved_id(store: &Path) -> Result<Option<i64>, String> {
    let path = store.join("config").join(ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) => t
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("{}: not a brokerId", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

/// The group's state as the controller gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReplicaInfo {
    master: Option<(i64, SocketAddr, SocketAddr)>,
    epoch: i32,
    sync_set: SyncStateSet,
}

fn replica_info(r: &RemotingCommand) -> Result<ReplicaInfo, String> {
    let id = r.ext_i64("masterBrokerId").unwrap_or(-1);
    let addr = r.ext_str_opt("masterAddress").unwrap_or("");
    let master = if id >= 0 && !addr.is_empty() {
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| format!("controller named master address {addr:?}"))?;
        let ha = r
            .ext_str_opt("masterHaAddress")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| SocketAddr::new(addr.ip(), addr.port().wrapping_add(1)));
        Some((id, addr, ha))
    } else {
        None
    };
    let sync_set = match r.body.as_deref() {
        Some(b) if !b.is_empty() => {
            serde_json::from_slice(b).map_err(|e| format!("controller's sync state set: {e}"))?
        }
        _ => SyncStateSet::default(),
    };
    Ok(ReplicaInfo {
        master,
        epoch: r.ext_i64("masterEpoch").unwrap_or(0) as i32,
        sync_set,
    })
}

struct Manager {
    shard: Rc<Shard>,
    clients: Vec<Rc<RemotingClient>>,
    /// The client that last answered as leader.
    leader: usize,
    id: i64,
    sync_set: SyncStateSet,
    /// In-sync slaves seen behind, since when.
    behind_since: HashMap<i64, Instant>,
}

impl Manager {
    fn request(&self, code: i32) -> RemotingCommand {
        let cfg = self.shard.cfg();
        let mut cmd = RemotingCommand::new_request(code);
        cmd.set_ext("clusterName", &cfg.cluster_name);
        cmd.set_ext("brokerName", &cfg.broker_name);
        cmd.set_ext("brokerAddr", cfg.advertised);
        cmd
    }

    /// Asks the leader, trying each node once from the last known one.
    async fn ask(&mut self, cmd: RemotingCommand) -> Result<RemotingCommand, String> {
        let mut last = String::from("no controller configured");
        for i in 0..self.clients.len() {
            let k = (self.leader + i) % self.clients.len();
            match self.clients[k].call(cmd.clone(), CALL_TIMEOUT).await {
                Ok(r) if r.code == codes::NOT_LEADER => {
                    last = format!("{} is not the leader", self.clients[k].addr());
                }
                Ok(r) => {
                    self.leader = k;
                    return Ok(r);
                }
                Err(e) => last = format!("{}: {e}", self.clients[k].addr()),
            }
        }
        Err(last)
    }

    async fn obtain_id(&mut self) -> Result<i64, String> {
        let cfg = self.shard.cfg().clone();
        if let Some(id) = saved_id(&cfg.store_dir)? {
            return Ok(id);
        }
        let r = self.ask(self.request(codes::GET_NEXT_BROKER_ID)).await?;
        let next = r
            .ext_i64("nextBrokerId")
            .map_err(|e| format!("GET_NEXT_BROKER_ID: {e}"))?;
        let mut cmd = self.request(codes::APPLY_BROKER_ID);
        cmd.set_ext("appliedBrokerId", next);
        cmd.set_ext(
            "registerCheckCode",
            format!("{};{}", cfg.advertised, crate::protocol::now_ms()),
        );
        let r = self.ask(cmd).await?;
        if r.code != rs::SUCCESS {
            return Err(format!(
                "APPLY_BROKER_ID {next}: {}",
                r.remark.unwrap_or_default()
            ));
        }
        crate::broker::file_writer::global()
            .write(
                &cfg.store_dir.join("config").join(ID_FILE),
                format!("{next}\n").into_bytes(),
            )
            .done()
            .await?;
        tracing::info!(broker_id = next, "the controller gave this broker its id");
        Ok(next)
    }

    async fn register(&mut self) -> Result<ReplicaInfo, String> {
        let cfg = self.shard.cfg().clone();
        let mut cmd = self.request(codes::REGISTER_BROKER);
        cmd.set_ext("brokerId", self.id);
        cmd.set_ext("brokerAddress", cfg.advertised);
        cmd.set_ext(
            "haServerAddr",
            SocketAddr::new(cfg.advertised.ip(), cfg.ha.listen(cfg.listen).port()),
        );
        let r = self.ask(cmd).await?;
        if r.code != rs::SUCCESS {
            return Err(format!("REGISTER_BROKER: {}", r.remark.unwrap_or_default()));
        }
        replica_info(&r)
    }

    async fn heartbeat(&mut self) {
        let cfg = self.shard.cfg().clone();
        let max_offset: u64 = match self.shard.ha_parts().await {
            Ok(parts) => parts.iter().map(|p| p.log_end).sum(),
            Err(_) => return,
        };
        let mut cmd = self.request(codes::BROKER_HEARTBEAT);
        cmd.set_ext("brokerId", self.id);
        cmd.set_ext("epoch", cfg.role_epoch);
        cmd.set_ext("maxOffset", max_offset);
        cmd.set_ext("confirmOffset", max_offset);
        cmd.set_ext("heartbeatTimeoutMills", cfg.ha.controller_timeout_ms);
        cmd.set_ext("electionPriority", cfg.ha.election_priority);
        // Every node, at once: a newly elected leader then knows who
        // lives, and a node that does not answer delays no other.
        for c in &self.clients {
            let (c, cmd) = (c.clone(), cmd.clone());
            glommio::spawn_local(async move {
                let _ = c.call(cmd, CALL_TIMEOUT).await;
            })
            .detach();
        }
    }

    async fn poll(&mut self) -> Result<ReplicaInfo, String> {
        let r = self.ask(self.request(codes::GET_REPLICA_INFO)).await?;
        if r.code != rs::SUCCESS {
            return Err(format!(
                "GET_REPLICA_INFO: {}",
                r.remark.unwrap_or_default()
            ));
        }
        let info = replica_info(&r)?;
        if info.master.is_some() {
            return Ok(info);
        }
        let mut cmd = self.request(codes::ELECT_MASTER);
        cmd.set_ext("brokerId", self.id);
        cmd.set_ext("designateElect", false);
        cmd.set_ext("invokeTime", crate::protocol::now_ms());
        let r = self.ask(cmd).await?;
        replica_info(&r)
    }

    /// Takes the role `info` gives this broker, if its epoch is new.
    async fn follow_info(&mut self, info: ReplicaInfo) {
        let Some((master_id, addr, ha)) = info.master else {
            return;
        };
        let cfg = self.shard.cfg().clone();
        if info.epoch < cfg.role_epoch {
            return;
        }
        let me = master_id == self.id;
        let settled = cfg.role_epoch == info.epoch
            && if me {
                !cfg.ha.role.is_slave()
            } else {
                cfg.ha.role.is_slave() && cfg.ha.master_address == Some(ha)
            };
        if !settled {
            let change = RoleChange {
                epoch: info.epoch,
                follow: (!me).then_some(Master { addr, ha }),
                slave_id: self.id,
                master_role: BrokerRole::SyncMaster,
            };
            if let Err((code, why)) = self.shard.change_role(change).await {
                tracing::warn!(code, "controller's role change not applied: {why}");
                return;
            }
        }
        if me && info.sync_set != self.sync_set {
            self.sync_set = info.sync_set;
            self.publish(&self.sync_set.sync_state_set.clone());
        }
    }

    /// Tells every shard which slaves a SYNC_MASTER send must reach.
    fn publish(&self, set: &BTreeSet<i64>) {
        let others: Vec<i64> = set.iter().copied().filter(|id| *id != self.id).collect();
        for k in 0..self.shard.shards {
            if k == self.shard.id {
                self.shard.repl.set_sync_set(Some(others.clone()));
            } else {
                self.shard
                    .send_to_shard(k, ShardMsg::SyncSet(Some(others.clone())));
            }
        }
    }

    /// As master: which slaves are in sync now; reported when that changed.
    async fn check_sync_set(&mut self) {
        let cfg = self.shard.cfg().clone();
        let Ok(parts) = self.shard.ha_parts().await else {
            return;
        };
        let shards = parts.len();
        let mut seen: HashMap<i64, (usize, bool)> = HashMap::new();
        for p in &parts {
            for (id, _, _, in_sync) in &p.links {
                let e = seen.entry(*id).or_insert((0, true));
                e.0 += 1;
                e.1 &= *in_sync;
            }
        }
        let now = Instant::now();
        let mut next: BTreeSet<i64> = BTreeSet::from([self.id]);
        for (id, (n, in_sync)) in &seen {
            if *n == shards && *in_sync {
                self.behind_since.remove(id);
                next.insert(*id);
            }
        }
        // Members that fell behind stay for a while: a blip must not make
        // the set (and what an election may choose from) shrink.
        for id in &self.sync_set.sync_state_set {
            if next.contains(id) {
                continue;
            }
            let since = *self.behind_since.entry(*id).or_insert(now);
            if now.duration_since(since) < Duration::from_millis(cfg.ha.not_catchup_ms) {
                next.insert(*id);
            }
        }
        if next == self.sync_set.sync_state_set {
            return;
        }
        // While the change is pending, sends wait for the union: a slave
        // the controller may already count must already have every ack.
        let union: BTreeSet<i64> = next.union(&self.sync_set.sync_state_set).copied().collect();
        self.publish(&union);
        let mut cmd = self.request(codes::ALTER_SYNC_STATE_SET);
        cmd.set_ext("masterBrokerId", self.id);
        cmd.set_ext("masterEpoch", cfg.role_epoch);
        cmd.set_ext("invokeTime", crate::protocol::now_ms());
        let body = SyncStateSet {
            sync_state_set: next.clone(),
            sync_state_set_epoch: self.sync_set.sync_state_set_epoch,
        };
        let cmd = cmd.with_body(serde_json::to_vec(&body).unwrap_or_default());
        match self.ask(cmd).await {
            Ok(r) if r.code == rs::SUCCESS => {
                self.sync_set = SyncStateSet {
                    sync_state_set: next,
                    sync_state_set_epoch: r
                        .ext_i64("newSyncStateSetEpoch")
                        .map_or(body.sync_state_set_epoch + 1, |e| e as i32),
                };
                tracing::info!(set = ?self.sync_set.sync_state_set, "in-sync replicas changed");
            }
            Ok(r) => {
                tracing::warn!(code = r.code, remark = ?r.remark, "in-sync set change refused")
            }
            Err(e) => tracing::warn!("in-sync set change: {e}"),
        }
        self.publish(&self.sync_set.sync_state_set.clone());
    }
}

/// Runs on shard 0 until the task is dropped.
pub async fn replicas_loop(
    shard: Rc<Shard>,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    credentials: Option<Credentials>,
) {
    let clients = shard
        .cfg()
        .controller_addrs
        .iter()
        .map(|a| Rc::new(RemotingClient::new(*a, tls.clone(), credentials.clone())))
        .collect();
    let mut m = Manager {
        shard: shard.clone(),
        clients,
        leader: 0,
        id: -1,
        sync_set: SyncStateSet::default(),
        behind_since: HashMap::new(),
    };
    let mut last_error = String::new();
    let mut warn = |why: String| {
        if why != last_error {
            tracing::warn!("controller: {why}");
            last_error = why;
        }
    };
    loop {
        match m.obtain_id().await {
            Ok(id) => {
                m.id = id;
                break;
            }
            Err(e) => warn(e),
        }
        glommio::timer::sleep(Duration::from_secs(1)).await;
    }
    loop {
        match m.register().await {
            Ok(info) => {
                m.follow_info(info).await;
                break;
            }
            Err(e) => warn(e),
        }
        glommio::timer::sleep(Duration::from_secs(1)).await;
    }
    let far = Instant::now() - Duration::from_secs(3600);
    let (mut beat, mut polled, mut checked) = (far, far, far);
    loop {
        glommio::timer::sleep(TICK).await;
        if shard.stopping.get() {
            return;
        }
        let cfg = shard.cfg().clone();
        if beat.elapsed() >= Duration::from_millis(cfg.ha.controller_heartbeat_ms) {
            beat = Instant::now();
            m.heartbeat().await;
        }
        if polled.elapsed() >= Duration::from_millis(cfg.ha.controller_poll_ms) {
            polled = Instant::now();
            match m.poll().await {
                Ok(info) => m.follow_info(info).await,
                Err(e) => warn(e),
            }
        }
        if !shard.is_slave() && checked.elapsed() >= Duration::from_millis(cfg.ha.sync_set_check_ms)
        {
            checked = Instant::now();
            m.check_sync_set().await;
        }
    }
}
