//! The controller's Raft plumbing on openraft 0.9: the log and vote on
//! disk, the state machine (`state::Metadata`) with JSON snapshots, and
//! the peer RPCs over TCP. Consensus itself is openraft's; this file only
//! stores and carries what it asks for.
//!
//! On disk, in the controller's directory: `raft-log` (one JSON record a
//! line: an entry, or a truncation or purge mark; fsynced before openraft
//! is told an append is durable), `vote.json` and `snapshot.json` (each
//! replaced whole: tmp, fsync, rename).
//!
//! Peer RPC: a connection per peer, reused; each call is a u32 length and a
//! JSON `Rpc`, answered the same way.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::{Cursor, Write};

use crate::broker::file_writer::write_atomically;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{Backoff, RPCOption};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, LogState, RaftLogId, RaftLogReader, RaftNetwork,
    RaftNetworkFactory, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership, Vote,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::state::{Event, Metadata, Outcome};

openraft::declare_raft_types!(
    pub TypeConfig:
        D = Event,
        R = Outcome,
        NodeId = u64,
        Node = BasicNode,
);

pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig>;
type SErr = StorageError<NodeId>;

/// Largest RPC frame accepted from a peer.
const MAX_RPC_BYTES: usize = 64 << 20;

#[derive(Serialize, Deserialize)]
enum LogRecord {
    Entry(Entry<TypeConfig>),
    /// Entries from this index on are gone (a conflicting suffix).
    Truncate(u64),
    /// Entries up to this log id are gone (compacted into a snapshot).
    Purge(LogId<NodeId>),
}

struct LogInner {
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    file: std::fs::File,
}

/// The Raft log and vote. Clones share one log (the reader openraft asks
/// for is a clone).
#[derive(Clone)]
pub struct LogStore {
    dir: PathBuf,
    inner: Arc<Mutex<LogInner>>,
}

impl LogStore {
    pub fn open(dir: &Path) -> Result<LogStore, String> {
        let path = dir.join("raft-log");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        let mut entries = BTreeMap::new();
        let mut last_purged = None;
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            let rec: LogRecord = match serde_json::from_str(line) {
                Ok(r) => r,
                // A torn last line is an append that was never
                // acknowledged; anything else is corruption.
                Err(_) if n + 1 == lines.len() => break,
                Err(e) => return Err(format!("{} line {}: {e}", path.display(), n + 1)),
            };
            match rec {
                LogRecord::Entry(e) => {
                    entries.insert(e.get_log_id().index, e);
                }
                LogRecord::Truncate(from) => {
                    entries.retain(|i, _| *i < from);
                }
                LogRecord::Purge(id) => {
                    entries.retain(|i, _| *i > id.index);
                    last_purged = Some(id);
                }
            }
        }
        let vote = match std::fs::read(dir.join("vote.json")) {
            Ok(b) => Some(serde_json::from_slice(&b).map_err(|e| format!("vote.json: {e}"))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("reading vote.json: {e}")),
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("opening {}: {e}", path.display()))?;
        let store = LogStore {
            dir: dir.to_path_buf(),
            inner: Arc::new(Mutex::new(LogInner {
                entries,
                last_purged,
                vote,
                committed: None,
                file,
            })),
        };
        // Rewritten whole once at start: a torn tail goes, and marks do not
        // pile up across restarts.
        store
            .compact()
            .map_err(|e| format!("rewriting the raft log: {e}"))?;
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn compact(&self) -> std::io::Result<()> {
        let mut inner = self.lock();
        let mut text = String::new();
        if let Some(p) = inner.last_purged {
            text.push_str(&serde_json::to_string(&LogRecord::Purge(p)).unwrap_or_default());
            text.push('\n');
        }
        for e in inner.entries.values() {
            text.push_str(&serde_json::to_string(&LogRecord::Entry(e.clone())).unwrap_or_default());
            text.push('\n');
        }
        let path = self.dir.join("raft-log");
        write_atomically(&path, text.as_bytes())?;
        inner.file = std::fs::OpenOptions::new().append(true).open(&path)?;
        Ok(())
    }

    fn record(inner: &mut LogInner, recs: &[LogRecord]) -> std::io::Result<()> {
        let mut text = String::new();
        for r in recs {
            text.push_str(&serde_json::to_string(r).map_err(std::io::Error::other)?);
            text.push('\n');
        }
        inner.file.write_all(text.as_bytes())?;
        inner.file.sync_data()
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, SErr> {
        Ok(self
            .lock()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, SErr> {
        let inner = self.lock();
        let last = inner
            .entries
            .values()
            .next_back()
            .map(|e| *e.get_log_id())
            .or(inner.last_purged);
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), SErr> {
        let bytes = serde_json::to_vec(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        write_atomically(&self.dir.join("vote.json"), &bytes)
            .map_err(|e| StorageIOError::write_vote(&e))?;
        self.lock().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, SErr> {
        Ok(self.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), SErr> {
        self.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, SErr> {
        Ok(self.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), SErr>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        let recs: Vec<LogRecord> = entries.iter().cloned().map(LogRecord::Entry).collect();
        let mut inner = self.lock();
        let r = LogStore::record(&mut inner, &recs);
        if r.is_ok() {
            for e in entries {
                inner.entries.insert(e.get_log_id().index, e);
            }
        }
        drop(inner);
        let failed = r.as_ref().err().map(StorageIOError::write_logs);
        callback.log_io_completed(r);
        match failed {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), SErr> {
        let mut inner = self.lock();
        LogStore::record(&mut inner, &[LogRecord::Truncate(log_id.index)])
            .map_err(|e| StorageIOError::write_logs(&e))?;
        inner.entries.retain(|i, _| *i < log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), SErr> {
        {
            let mut inner = self.lock();
            LogStore::record(&mut inner, &[LogRecord::Purge(log_id)])
                .map_err(|e| StorageIOError::write_logs(&e))?;
            inner.entries.retain(|i, _| *i > log_id.index);
            inner.last_purged = Some(log_id);
        }
        self.compact().map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }
}

#[derive(Serialize, Deserialize, Default, Clone)]
struct SmImage {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    meta: Metadata,
}

#[derive(Serialize, Deserialize, Clone)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    image: SmImage,
}

struct SmInner {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    snapshot: Option<StoredSnapshot>,
}

/// The state machine: the metadata itself is shared with the request
/// handlers, which read it on the leader.
#[derive(Clone)]
pub struct StateMachine {
    dir: PathBuf,
    pub meta: Arc<Mutex<Metadata>>,
    inner: Arc<Mutex<SmInner>>,
}

impl StateMachine {
    pub fn open(dir: &Path) -> Result<StateMachine, String> {
        let snap: Option<StoredSnapshot> = match std::fs::read(dir.join("snapshot.json")) {
            Ok(b) => Some(serde_json::from_slice(&b).map_err(|e| format!("snapshot.json: {e}"))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("reading snapshot.json: {e}")),
        };
        let image = snap.as_ref().map(|s| s.image.clone()).unwrap_or_default();
        Ok(StateMachine {
            dir: dir.to_path_buf(),
            meta: Arc::new(Mutex::new(image.meta)),
            inner: Arc::new(Mutex::new(SmInner {
                last_applied: image.last_applied,
                membership: image.membership,
                snapshot: snap,
            })),
        })
    }

    fn image(&self) -> SmImage {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        SmImage {
            last_applied: inner.last_applied,
            membership: inner.membership.clone(),
            meta: self.meta.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    fn store_snapshot(&self, s: &StoredSnapshot) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(s).map_err(std::io::Error::other)?;
        write_atomically(&self.dir.join("snapshot.json"), &bytes)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, SErr> {
        let image = self.image();
        let meta = SnapshotMeta {
            last_log_id: image.last_applied,
            last_membership: image.membership.clone(),
            snapshot_id: format!(
                "{}-{}",
                image.last_applied.map_or(0, |l| l.leader_id.term),
                image.last_applied.map_or(0, |l| l.index)
            ),
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            image,
        };
        self.store_snapshot(&stored)
            .map_err(|e| StorageIOError::write_snapshot(Some(stored.meta.signature()), &e))?;
        let bytes = serde_json::to_vec(&stored.image)
            .map_err(|e| StorageIOError::read_state_machine(&e))?;
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .snapshot = Some(stored);
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), SErr> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, SErr>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut meta = self.meta.lock().unwrap_or_else(|e| e.into_inner());
        for e in entries {
            inner.last_applied = Some(e.log_id);
            match e.payload {
                EntryPayload::Blank => out.push(Outcome::default()),
                EntryPayload::Normal(ev) => out.push(meta.apply(&ev)),
                EntryPayload::Membership(m) => {
                    inner.membership = StoredMembership::new(Some(e.log_id), m);
                    out.push(Outcome::default());
                }
            }
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, SErr> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), SErr> {
        let image: SmImage = serde_json::from_slice(snapshot.get_ref())
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            image: image.clone(),
        };
        self.store_snapshot(&stored)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        *self.meta.lock().unwrap_or_else(|e| e.into_inner()) = image.meta;
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.last_applied = meta.last_log_id;
        inner.membership = meta.last_membership.clone();
        inner.snapshot = Some(stored);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, SErr> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Ok(match &inner.snapshot {
            Some(s) => Some(Snapshot {
                meta: s.meta.clone(),
                snapshot: Box::new(Cursor::new(
                    serde_json::to_vec(&s.image)
                        .map_err(|e| StorageIOError::read_snapshot(None, &e))?,
                )),
            }),
            None => None,
        })
    }
}

/// A peer RPC and its answer.
#[derive(Serialize, Deserialize)]
pub enum Rpc {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
}

#[derive(Serialize, Deserialize)]
pub enum RpcReply {
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    Snapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
}

async fn read_frame(s: &mut tokio::net::TcpStream) -> std::io::Result<Vec<u8>> {
    let n = s.read_u32().await? as usize;
    if n > MAX_RPC_BYTES {
        return Err(std::io::Error::other(format!("a {n}-byte frame")));
    }
    let mut b = vec![0u8; n];
    s.read_exact(&mut b).await?;
    Ok(b)
}

async fn write_frame(s: &mut tokio::net::TcpStream, b: &[u8]) -> std::io::Result<()> {
    s.write_u32(b.len() as u32).await?;
    s.write_all(b).await?;
    s.flush().await
}

/// Serves peers' RPCs on `listener` until the task is dropped.
pub async fn serve_peers(listener: tokio::net::TcpListener, raft: Raft) {
    loop {
        let Ok((mut s, peer)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let _ = s.set_nodelay(true);
        let raft = raft.clone();
        tokio::spawn(async move {
            loop {
                let frame = match read_frame(&mut s).await {
                    Ok(f) => f,
                    Err(_) => return,
                };
                let reply = match serde_json::from_slice::<Rpc>(&frame) {
                    Ok(Rpc::Append(r)) => RpcReply::Append(raft.append_entries(r).await),
                    Ok(Rpc::Vote(r)) => RpcReply::Vote(raft.vote(r).await),
                    Ok(Rpc::Snapshot(r)) => RpcReply::Snapshot(raft.install_snapshot(r).await),
                    Err(e) => {
                        tracing::warn!(%peer, "controller peer sent a bad RPC: {e}");
                        return;
                    }
                };
                let Ok(bytes) = serde_json::to_vec(&reply) else {
                    return;
                };
                if write_frame(&mut s, &bytes).await.is_err() {
                    return;
                }
            }
        });
    }
}

pub struct Network;

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerLink;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerLink {
        PeerLink {
            target,
            addr: node.addr.clone(),
            stream: None,
        }
    }
}

pub struct PeerLink {
    target: NodeId,
    addr: String,
    stream: Option<tokio::net::TcpStream>,
}

impl PeerLink {
    async fn call(&mut self, rpc: &Rpc, option: &RPCOption) -> std::io::Result<RpcReply> {
        let bytes = serde_json::to_vec(rpc).map_err(std::io::Error::other)?;
        let ttl = option.hard_ttl();
        let attempt = async {
            if self.stream.is_none() {
                let s = tokio::net::TcpStream::connect(&self.addr).await?;
                let _ = s.set_nodelay(true);
                self.stream = Some(s);
            }
            let Some(s) = self.stream.as_mut() else {
                return Err(std::io::Error::other("not connected"));
            };
            write_frame(s, &bytes).await?;
            let reply = read_frame(s).await?;
            serde_json::from_slice(&reply).map_err(std::io::Error::other)
        };
        let r = match tokio::time::timeout(ttl, attempt).await {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer from {} within {ttl:?}", self.addr),
            )),
        };
        if r.is_err() {
            self.stream = None;
        }
        r
    }
}

/// A peer that cannot be reached (or broke the connection) is
/// `Unreachable`: openraft then waits `backoff` before trying it again,
/// where a `Network` error would have it retry at once, in a loop that
/// takes a core while the peer is down.
fn unreachable<E: std::error::Error>(e: std::io::Error) -> RPCError<NodeId, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&e))
}

impl PeerLink {
    /// The peer's answer to one kind of RPC (`pick`), its refusal as a
    /// remote error, anything else as unreachable. The error type is the
    /// one `RaftNetwork` returns.
    #[allow(clippy::result_large_err)]
    fn answer<T, E: std::error::Error>(
        &self,
        reply: std::io::Result<RpcReply>,
        pick: impl FnOnce(RpcReply) -> Option<Result<T, E>>,
    ) -> Result<T, RPCError<NodeId, BasicNode, E>> {
        match reply.map(pick) {
            Ok(Some(r)) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            Ok(None) => Err(unreachable(std::io::Error::other("mismatched answer"))),
            Err(e) => Err(unreachable(e)),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerLink {
    /// Between attempts to reach a peer that is down: 200 ms, doubling to
    /// 2 s, so a restarted node is caught up within seconds and a node that
    /// stays down costs a log line every 2 s, not a core.
    fn backoff(&self) -> Backoff {
        Backoff::new(
            (0u32..).map(|i| std::time::Duration::from_millis((200u64 << i.min(4)).min(2_000))),
        )
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let reply = self.call(&Rpc::Append(rpc), &option).await;
        self.answer(reply, |r| match r {
            RpcReply::Append(r) => Some(r),
            _ => None,
        })
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let reply = self.call(&Rpc::Snapshot(rpc), &option).await;
        self.answer(reply, |r| match r {
            RpcReply::Snapshot(r) => Some(r),
            _ => None,
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let reply = self.call(&Rpc::Vote(rpc), &option).await;
        self.answer(reply, |r| match r {
            RpcReply::Vote(r) => Some(r),
            _ => None,
        })
    }
}
