//! `rocketcore controller`: RocketMQ 5's controller for automatic failover
//! (`shared/spec/replication.md` §4, §6.8), its own process, on tokio.
//!
//! It owns, per broker group, the replicas' ids, the master, the master
//! epoch and the in-sync replica set (`state.rs`), replicated over the
//! controller nodes with openraft (`raft.rs`); no consensus of its own.
//! Brokers speak the Remoting protocol to it: they apply for an id,
//! register, heartbeat every node, and poll the group's replica info;
//! a master reports its in-sync set. The leader watches heartbeats and,
//! when a master's stop, elects the best alive in-sync replica with a new
//! epoch. Brokers learn the outcome from their next poll and change role
//! (`broker::ha::role`).

pub mod codes;
pub mod raft;
pub mod state;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use openraft::BasicNode;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::remoting::codes::response_code as rs;
use crate::remoting::{FrameDecoder, RemotingCommand};
use raft::{LogStore, Network, NodeId, Raft, StateMachine};
use state::{Event, Group, Liveness, Metadata, Outcome};

/// A replica whose heartbeat timeout this node never heard is judged
/// after this long (Java's `controllerHeartBeatTimeoutMills` default, twice
/// rocketcore's broker default).
const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the leader looks for groups whose master stopped.
const SCAN_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct ControllerConfig {
    pub id: NodeId,
    /// Every node's Raft address, this one's included.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Where brokers and admin tools reach this node.
    pub listen: SocketAddr,
    pub dir: PathBuf,
}

/// `1=127.0.0.1:9880,2=…`: node id → Raft address.
pub fn parse_peers(s: &str) -> Result<BTreeMap<NodeId, SocketAddr>, String> {
    let mut out = BTreeMap::new();
    for part in s.split([',', ';']).map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| format!("--peers {part:?}: expected id=host:port"))?;
        let id: NodeId = id
            .trim()
            .parse()
            .map_err(|_| format!("--peers {part:?}: the id is not a number"))?;
        let addr: SocketAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("--peers {part:?}: not host:port"))?;
        if out.insert(id, addr).is_some() {
            return Err(format!("--peers names node {id} twice"));
        }
    }
    if out.is_empty() {
        return Err("--peers names no node".into());
    }
    Ok(out)
}

/// What the leader heard from a replica.
#[derive(Debug, Clone, Copy)]
struct Heard {
    at: Instant,
    timeout: Duration,
    live: Liveness,
}

struct Controller {
    cfg: ControllerConfig,
    raft: Raft,
    meta: Arc<Mutex<Metadata>>,
    /// Heartbeats, by (brokerName, brokerId). Brokers heartbeat every
    /// node, so a new leader knows at once who is alive.
    heard: Mutex<HashMap<(String, i64), Heard>>,
    started: Instant,
}

/// Runs a controller node until `stop` resolves.
pub fn run(
    cfg: ControllerConfig,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the controller's runtime: {e}"))?;
    rt.block_on(serve(cfg, stop))
}

async fn serve(
    cfg: ControllerConfig,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let raft_addr = *cfg
        .peers
        .get(&cfg.id)
        .ok_or_else(|| format!("--peers does not name this node ({})", cfg.id))?;
    std::fs::create_dir_all(&cfg.dir)
        .map_err(|e| format!("creating {}: {e}", cfg.dir.display()))?;
    let log = LogStore::open(&cfg.dir)?;
    let sm = StateMachine::open(&cfg.dir)?;
    let meta = sm.meta.clone();
    let raft_cfg = openraft::Config {
        cluster_name: "rocketcore-controller".into(),
        heartbeat_interval: 150,
        election_timeout_min: 600,
        election_timeout_max: 1200,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(500),
        max_in_snapshot_log_to_keep: 100,
        ..Default::default()
    };
    let raft_cfg = Arc::new(raft_cfg.validate().map_err(|e| e.to_string())?);
    let raft = Raft::new(cfg.id, raft_cfg, Network, log, sm)
        .await
        .map_err(|e| format!("starting Raft: {e}"))?;
    let peer_listener = tokio::net::TcpListener::bind(raft_addr)
        .await
        .map_err(|e| format!("binding the Raft port {raft_addr}: {e}"))?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("binding {}: {e}", cfg.listen))?;
    tokio::spawn(raft::serve_peers(peer_listener, raft.clone()));
    // Every node proposes the same initial membership; the first to be
    // elected makes it, the others are told it exists already.
    let members: BTreeMap<NodeId, BasicNode> = cfg
        .peers
        .iter()
        .map(|(id, a)| (*id, BasicNode::new(a.to_string())))
        .collect();
    if let Err(e) = raft.initialize(members).await {
        tracing::debug!("controller membership: {e}");
    }
    let ctl = Arc::new(Controller {
        cfg: cfg.clone(),
        raft: raft.clone(),
        meta,
        heard: Mutex::new(HashMap::new()),
        started: Instant::now(),
    });
    tokio::spawn(elect_loop(ctl.clone()));
    let accept = {
        let ctl = ctl.clone();
        async move {
            loop {
                match listener.accept().await {
                    Ok((s, peer)) => {
                        let _ = s.set_nodelay(true);
                        tokio::spawn(serve_conn(ctl.clone(), s, peer));
                    }
                    Err(e) => {
                        tracing::warn!("controller accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
    };
    println!(
        "ready: controller={} raft={raft_addr} id={}",
        cfg.listen, cfg.id
    );
    tokio::select! {
        _ = accept => {}
        _ = stop => {}
    }
    let _ = raft.shutdown().await;
    Ok(())
}

async fn serve_conn(ctl: Arc<Controller>, mut s: tokio::net::TcpStream, peer: SocketAddr) {
    let decoder = FrameDecoder::new();
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        loop {
            match RemotingCommand::decode(&mut buf, &decoder) {
                Ok(Some(cmd)) => {
                    let oneway = cmd.is_oneway();
                    let reply = ctl.handle(&cmd).await.reply_to(&cmd);
                    if oneway {
                        continue;
                    }
                    let mut out = BytesMut::new();
                    if reply.encode(&mut out).is_err() || s.write_all(&out).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%peer, "controller: closing a connection: {e}");
                    return;
                }
            }
        }
        match s.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// The body of replica info: Java's SyncStateSet.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SyncStateSet {
    pub sync_state_set: BTreeSet<i64>,
    pub sync_state_set_epoch: i32,
}

fn answer(code: i32, remark: Option<String>) -> RemotingCommand {
    RemotingCommand::new_response(code, remark)
}

/// A response carrying a group's master and in-sync set.
fn group_info(code: i32, remark: Option<String>, g: Option<&Group>) -> RemotingCommand {
    let mut r = answer(code, remark);
    if let Some(g) = g {
        let master = g.master.and_then(|m| g.replicas.get(&m).map(|r| (m, r)));
        r.set_ext("masterBrokerId", master.map_or(-1, |(id, _)| id));
        r.set_ext("masterAddress", master.map_or("", |(_, r)| r.addr.as_str()));
        r.set_ext(
            "masterHaAddress",
            master.map_or("", |(_, r)| r.ha_addr.as_str()),
        );
        r.set_ext("masterEpoch", g.master_epoch);
        r.set_ext("syncStateSetEpoch", g.sync_set_epoch);
        let body = SyncStateSet {
            sync_state_set: g.sync_set.clone(),
            sync_state_set_epoch: g.sync_set_epoch,
        };
        r = r.with_body(serde_json::to_vec(&body).unwrap_or_default());
    }
    r
}

impl Controller {
    fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.cfg.id)
    }

    fn group(&self, name: &str) -> Option<Group> {
        self.meta
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .groups
            .get(name)
            .cloned()
    }

    fn alive(&self, name: &str, id: i64) -> Option<Liveness> {
        let heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        heard
            .get(&(name.to_string(), id))
            .filter(|h| h.at.elapsed() < h.timeout)
            .map(|h| h.live)
    }

    /// Whether a master with no recent heartbeat is to be judged lost:
    /// its timeout passed, or this node never heard it and has been up
    /// for the default timeout.
    fn lost(&self, name: &str, id: i64) -> bool {
        let heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        match heard.get(&(name.to_string(), id)) {
            Some(h) => h.at.elapsed() >= h.timeout,
            None => self.started.elapsed() >= DEFAULT_HEARTBEAT_TIMEOUT,
        }
    }

    async fn propose(&self, ev: Event) -> Outcome {
        match self.raft.client_write(ev).await {
            Ok(r) => r.data,
            Err(openraft::error::RaftError::APIError(
                openraft::error::ClientWriteError::ForwardToLeader(_),
            )) => Outcome {
                code: codes::NOT_LEADER,
                remark: Some("this controller is not the leader".into()),
                group: None,
            },
            Err(e) => Outcome {
                code: rs::SYSTEM_ERROR,
                remark: Some(format!("the controller could not commit: {e}")),
                group: None,
            },
        }
    }

    /// `master` (None: no one alive) for group `name`, if its epoch is
    /// still `expect_epoch` when the proposal is applied.
    async fn elect(&self, name: &str, master: Option<i64>, expect_epoch: i32) -> Outcome {
        self.propose(Event::ElectMaster {
            name: name.to_string(),
            master,
            expect_epoch,
        })
        .await
    }

    async fn handle(&self, cmd: &RemotingCommand) -> RemotingCommand {
        match self.try_handle(cmd).await {
            Ok(r) => r,
            Err(why) => answer(codes::INVALID_REQUEST, Some(why)),
        }
    }

    async fn try_handle(&self, cmd: &RemotingCommand) -> Result<RemotingCommand, String> {
        let s = |k: &'static str| {
            cmd.ext_str(k)
                .map(str::to_string)
                .map_err(|e| e.to_string())
        };
        let n = |k: &'static str| cmd.ext_i64(k).map_err(|e| e.to_string());
        if cmd.code == codes::BROKER_HEARTBEAT {
            let live = Liveness {
                epoch: n("epoch").unwrap_or(0) as i32,
                max_offset: n("maxOffset").unwrap_or(0),
                priority: n("electionPriority").unwrap_or(0) as i32,
            };
            let timeout = n("heartbeatTimeoutMills")
                .ok()
                .filter(|t| *t > 0)
                .map_or(DEFAULT_HEARTBEAT_TIMEOUT, |t| {
                    Duration::from_millis(t as u64)
                });
            self.heard.lock().unwrap_or_else(|e| e.into_inner()).insert(
                (s("brokerName")?, n("brokerId")?),
                Heard {
                    at: Instant::now(),
                    timeout,
                    live,
                },
            );
            return Ok(answer(rs::SUCCESS, None));
        }
        if cmd.code == codes::GET_METADATA_INFO {
            let m = self.raft.metrics().borrow().clone();
            let mut r = answer(rs::SUCCESS, None);
            r.set_ext(
                "controllerLeaderId",
                m.current_leader.map_or(-1, |l| l as i64),
            );
            r.set_ext("isLeader", self.is_leader());
            r.set_ext("term", m.current_term);
            let meta = self.meta.lock().unwrap_or_else(|e| e.into_inner()).clone();
            return Ok(r.with_body(serde_json::to_vec(&meta).unwrap_or_default()));
        }
        if !self.is_leader() {
            return Ok(answer(
                codes::NOT_LEADER,
                Some("this controller is not the leader; ask another".into()),
            ));
        }
        match cmd.code {
            codes::GET_NEXT_BROKER_ID => {
                let name = s("brokerName")?;
                let next = self.group(&name).map_or(1, |g| g.next_id());
                let mut r = answer(rs::SUCCESS, None);
                r.set_ext("nextBrokerId", next);
                Ok(r)
            }
            codes::APPLY_BROKER_ID => {
                // registerCheckCode is `address;timestamp`.
                let code = s("registerCheckCode")?;
                let addr = code.split(';').next().unwrap_or("").to_string();
                let o = self
                    .propose(Event::ApplyBrokerId {
                        cluster: s("clusterName")?,
                        name: s("brokerName")?,
                        id: n("appliedBrokerId")?,
                        addr,
                    })
                    .await;
                Ok(answer(o.code, o.remark))
            }
            codes::REGISTER_BROKER => {
                let o = self
                    .propose(Event::Register {
                        name: s("brokerName")?,
                        id: n("brokerId")?,
                        addr: s("brokerAddress")?,
                        ha_addr: cmd.ext_str_opt("haServerAddr").unwrap_or("").to_string(),
                    })
                    .await;
                Ok(group_info(o.code, o.remark, o.group.as_ref()))
            }
            codes::GET_REPLICA_INFO => {
                let name = s("brokerName")?;
                match self.group(&name) {
                    Some(g) => Ok(group_info(rs::SUCCESS, None, Some(&g))),
                    None => Ok(answer(
                        codes::BROKER_METADATA_NOT_EXIST,
                        Some(format!("no broker group {name}")),
                    )),
                }
            }
            codes::ELECT_MASTER => {
                let name = s("brokerName")?;
                let asking = n("brokerId").ok().filter(|id| *id > 0);
                let Some(g) = self.group(&name) else {
                    return Ok(answer(
                        codes::BROKER_METADATA_NOT_EXIST,
                        Some(format!("no broker group {name}")),
                    ));
                };
                let pick = state::pick_master(&g, &|id| self.alive(&name, id), asking);
                match pick {
                    None if g.master.is_some() => Ok(group_info(
                        codes::MASTER_STILL_EXIST,
                        Some("the group's master is alive".into()),
                        Some(&g),
                    )),
                    None => Ok(group_info(
                        codes::ELECT_MASTER_FAILED,
                        Some("no in-sync replica is alive".into()),
                        Some(&g),
                    )),
                    Some(id) => {
                        let o = self.elect(&name, Some(id), g.master_epoch).await;
                        tracing::info!(group = name, master = id, code = o.code, "election");
                        Ok(group_info(o.code, o.remark, o.group.as_ref()))
                    }
                }
            }
            codes::ALTER_SYNC_STATE_SET => {
                let name = s("brokerName")?;
                let body: SyncStateSet = cmd
                    .body
                    .as_deref()
                    .map(serde_json::from_slice)
                    .transpose()
                    .map_err(|e| format!("sync state set body: {e}"))?
                    .ok_or("a sync state set body is required")?;
                let master = n("masterBrokerId")?;
                // Liveness is the leader's knowledge: checked here, before
                // proposing; the state machine checks the rest.
                if let Some(dead) = body
                    .sync_state_set
                    .iter()
                    .find(|id| **id != master && self.alive(&name, **id).is_none())
                {
                    return Ok(answer(
                        codes::BROKER_NOT_ALIVE,
                        Some(format!("brokerId {dead} of {name} is not alive")),
                    ));
                }
                let o = self
                    .propose(Event::AlterSyncStateSet {
                        name,
                        master,
                        master_epoch: n("masterEpoch")? as i32,
                        set: body.sync_state_set,
                        set_epoch: body.sync_state_set_epoch,
                    })
                    .await;
                let mut r = answer(o.code, o.remark);
                if let Some(g) = &o.group {
                    r.set_ext("newSyncStateSetEpoch", g.sync_set_epoch);
                }
                Ok(r)
            }
            _ => Ok(RemotingCommand::not_supported_reply(cmd)),
        }
    }
}

/// On the leader: groups whose master stopped heartbeating get the best
/// alive in-sync replica as master, with a new epoch.
async fn elect_loop(ctl: Arc<Controller>) {
    loop {
        tokio::time::sleep(SCAN_INTERVAL).await;
        if !ctl.is_leader() {
            continue;
        }
        let groups: Vec<(String, Group)> = ctl
            .meta
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .groups
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (name, g) in groups {
            // A master that heartbeats stays. A group whose master was lost
            // with no one to replace it takes the first in-sync replica back.
            let due = match g.master {
                Some(m) => ctl.lost(&name, m),
                None => g.master_epoch > 0,
            };
            if !due {
                continue;
            }
            let pick = state::pick_master(&g, &|id| ctl.alive(&name, id), None);
            if pick.is_none() && g.master.is_none() {
                continue;
            }
            let o = ctl.elect(&name, pick, g.master_epoch).await;
            tracing::warn!(group = name, lost = ?g.master, elected = ?pick, code = o.code, "election");
        }
    }
}
