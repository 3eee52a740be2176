//! The master side of a shard's replication stream. Every shard accepts on
//! `haListenPort` (SO_REUSEPORT, like the client port), reads the slave's
//! Hello and, when the Hello names another shard, hands the socket to that
//! shard over the mesh; the shard that owns the log then streams it: frames
//! of at most `haTransferBatchSize` bytes cut from the tail cache (zero
//! copy) or read from the segment files, of what is written to the files
//! only (a process crash of the master then never leaves a slave holding
//! records the master lost), while the slave's acks raise the
//! offset SYNC_MASTER sends wait for. An ack for bytes never sent, an ack
//! that goes backwards or any malformed input closes that link with the
//! reason logged; it cannot make a send count as replicated.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use super::wire::{self, Ack, Hello, HelloAck, Status, TransferHeader};
use super::SlaveLink;
use crate::broker::mesh::ShardMsg;
use crate::broker::shard::Shard;
use crate::net::Half;
use rocketcore_storage::ReplicaRead;

/// How long a connecting slave may take to send its Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of frames gathered into one write.
const WRITE_GATHER_BYTES: usize = 256 << 10;

pub async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    let peer = stream.peer_addr().ok();
                    if let Err(why) = handshake(&shard, stream).await {
                        tracing::warn!(shard = shard.id, ?peer, "replication link closed: {why}");
                    }
                })
                .detach();
            }
            Err(e) => {
                tracing::warn!(shard = shard.id, "HA accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn read_exact_timeout(
    s: &mut (impl futures_lite::AsyncRead + Unpin),
    buf: &mut [u8],
    timeout: Duration,
    what: &str,
) -> Result<(), String> {
    match glommio::timer::timeout(timeout, async { Ok(s.read_exact(buf).await) }).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("reading {what}: {e}")),
        Err(_) => Err(format!("no {what} within {} ms", timeout.as_millis())),
    }
}

async fn handshake(shard: &Rc<Shard>, mut stream: TcpStream) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().map_err(|e| e.to_string())?;
    let mut fixed = [0u8; wire::HELLO_FIXED_BYTES];
    read_exact_timeout(&mut stream, &mut fixed, HELLO_TIMEOUT, "hello").await?;
    let (version, name_len) = Hello::check_fixed(&fixed).map_err(|e| e.to_string())?;
    if version != wire::VERSION {
        let _ = stream
            .write_all(&HelloAck::refusal(Status::BadVersion).encode())
            .await;
        return Err(format!("replication protocol version {version}"));
    }
    let mut name = vec![0u8; name_len];
    read_exact_timeout(&mut stream, &mut name, HELLO_TIMEOUT, "hello").await?;
    let hello = Hello::decode(&fixed, &name).map_err(|e| e.to_string())?;
    let target = hello.shard as usize;
    if target != shard.id && target < shard.shards && hello.shards as usize == shard.shards {
        // The slave sends nothing more until it hears back, so no bytes
        // are left behind in this shard's socket.
        // SAFETY: dup returns a fresh descriptor that nothing else owns.
        let fd = unsafe { libc::dup(stream.as_raw_fd()) };
        if fd < 0 {
            return Err(format!(
                "duplicating the socket for shard {target}: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: `fd` was just created and is owned here alone.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        shard
            .mesh_send(target, ShardMsg::HaLink { fd, hello, peer })
            .await
            .map_err(|_| format!("shard {target} is stopping"))?;
        return Ok(());
    }
    serve_slave(shard, stream, hello, peer).await
}

/// Takes a socket another shard accepted (see `handshake`).
pub async fn adopt(shard: Rc<Shard>, fd: OwnedFd, hello: Hello, peer: std::net::SocketAddr) {
    use std::os::fd::IntoRawFd;
    // SAFETY: the descriptor is a connected TCP socket owned by `fd`.
    let stream = unsafe { TcpStream::from_raw_fd(fd.into_raw_fd()) };
    if let Err(why) = serve_slave(&shard, stream, hello, peer).await {
        tracing::warn!(shard = shard.id, %peer, "replication link closed: {why}");
    }
}

fn judge(shard: &Shard, hello: &Hello) -> Status {
    let cfg = shard.cfg().clone();
    if shard.is_slave() {
        return Status::NotMaster;
    }
    if hello.shards as usize != shard.shards {
        return Status::ShardMismatch;
    }
    if hello.placement != wire::PLACEMENT_ID {
        return Status::PlacementMismatch;
    }
    if hello.segment_bytes != cfg.segment_bytes {
        return Status::SegmentMismatch;
    }
    if hello.broker_name != cfg.broker_name {
        return Status::NameMismatch;
    }
    if shard.repl.has_slave(hello.slave_id) {
        return Status::DuplicateSlave;
    }
    if hello.last_epoch > shard.store.last_epoch() {
        // The slave followed a newer master: this one is stale.
        return Status::Fenced;
    }
    if hello.slave_max > shard.store.log_end() {
        return Status::SlaveAhead;
    }
    if hello.slave_max < shard.store.log_start() {
        return Status::SlaveBehind;
    }
    Status::Ok
}

async fn serve_slave(
    shard: &Rc<Shard>,
    mut stream: TcpStream,
    hello: Hello,
    peer: std::net::SocketAddr,
) -> Result<(), String> {
    let status = judge(shard, &hello);
    let ack = HelloAck {
        status,
        master_min: shard.store.log_start(),
        master_max: shard.store.log_end(),
        master_epoch: shard.store.last_epoch(),
        // What a slave needs to find where its log and this one agree
        // (also when it is ahead: it may hold a tail to cut).
        epochs: match status {
            Status::Ok | Status::SlaveAhead => shard.store.epochs(),
            _ => Vec::new(),
        },
    };
    stream
        .write_all(&ack.encode())
        .await
        .map_err(|e| format!("answering the hello: {e}"))?;
    if status != Status::Ok {
        return Err(format!(
            "refused slave {} ({}): {}",
            hello.slave_id,
            hello.broker_name,
            status.explain()
        ));
    }
    let link = Rc::new(SlaveLink {
        slave_id: hello.slave_id,
        peer,
        sent: std::cell::Cell::new(hello.slave_max),
        acked: std::cell::Cell::new(hello.slave_max),
        flushed: std::cell::Cell::new(0),
    });
    shard.repl.add_link(link.clone());
    shard.repl.on_ack(hello.slave_max);
    tracing::info!(
        shard = shard.id,
        %peer,
        slave = hello.slave_id,
        from = hello.slave_max,
        "slave connected"
    );
    let stream = Rc::new(std::cell::RefCell::new(stream));
    let sender = send_loop(shard, Half(stream.clone()), &link);
    let reader = ack_loop(shard, Half(stream), &link);
    let demoted = super::role::until_demoted(shard);
    let r = futures_lite::future::or(futures_lite::future::or(sender, reader), demoted).await;
    shard.repl.remove_link(&link);
    r
}

/// Streams the log from the slave's offset, heartbeating when idle.
async fn send_loop(
    shard: &Rc<Shard>,
    mut out: Half<TcpStream>,
    link: &SlaveLink,
) -> Result<(), String> {
    let (batch, heartbeat) = {
        let cfg = shard.cfg();
        (
            cfg.ha.batch_bytes,
            Duration::from_millis(cfg.ha.heartbeat_ms),
        )
    };
    let mut buf: Vec<u8> = Vec::with_capacity(WRITE_GATHER_BYTES + batch);
    let mut next = link.sent.get();
    loop {
        buf.clear();
        while buf.len() < WRITE_GATHER_BYTES {
            let bytes = match shard
                .store
                .read_for_replica(next, batch)
                .await
                .map_err(|e| format!("reading the log at {next}: {e}"))?
            {
                ReplicaRead::Bytes(b) => b,
                ReplicaRead::Gone { min } => {
                    return Err(format!(
                        "the log below {min} was deleted before the slave got it"
                    ))
                }
                ReplicaRead::Ahead { end } => {
                    return Err(format!("stream at {next} is past the log end {end}"))
                }
            };
            if bytes.is_empty() {
                break;
            }
            push_frame(&mut buf, next, &bytes, shard.store.log_written());
            next += bytes.len() as u64;
        }
        if buf.is_empty() {
            if shard.store.wait_written(next, heartbeat).await {
                continue;
            }
            push_frame(&mut buf, next, &[], shard.store.log_written());
        }
        // Set first: the slave may ack the start of a write before all of
        // it has left.
        link.sent.set(next);
        out.write_all(&buf)
            .await
            .map_err(|e| format!("sending to the slave: {e}"))?;
    }
}

fn push_frame(buf: &mut Vec<u8>, offset: u64, body: &[u8], confirm: u64) {
    let mut h = [0u8; wire::TRANSFER_HEADER_BYTES];
    TransferHeader {
        body_len: body.len() as u32,
        offset,
        epoch: 0,
        epoch_start: 0,
        confirm,
    }
    .encode(&mut h);
    buf.extend_from_slice(&h);
    buf.extend_from_slice(body);
}

/// Reads the slave's acks; a silent, lying or malformed slave ends the link.
async fn ack_loop(
    shard: &Rc<Shard>,
    mut input: Half<TcpStream>,
    link: &SlaveLink,
) -> Result<(), String> {
    let housekeeping = Duration::from_millis(shard.cfg().ha.housekeeping_ms);
    let mut b = [0u8; wire::ACK_BYTES];
    loop {
        read_exact_timeout(&mut input, &mut b, housekeeping, "ack").await?;
        let ack = Ack::decode(&b).map_err(|e| e.to_string())?;
        if ack.written > link.sent.get() {
            return Err(format!(
                "slave acknowledged {} but only {} was sent",
                ack.written,
                link.sent.get()
            ));
        }
        if ack.written < link.acked.get() || ack.flushed < link.flushed.get() {
            return Err(format!(
                "slave's ack went backwards ({}/{} after {}/{})",
                ack.written,
                ack.flushed,
                link.acked.get(),
                link.flushed.get()
            ));
        }
        link.acked.set(ack.written);
        link.flushed.set(ack.flushed);
        shard.repl.on_ack(ack.written);
    }
}
