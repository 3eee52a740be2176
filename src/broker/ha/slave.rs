//! The slave side of a shard's replication stream: connect to the master's
//! HA address, say which shard and where this log ends, then append every
//! frame's bytes through the store (`ShardStore::append_replicated`: same
//! bytes, same offsets, queues and index rebuilt, held pulls woken) and
//! acknowledge how far the log got. Any disagreement — a frame for another
//! offset, a record that fails its checks, a refusal in the master's
//! answer — closes the link, logged, and the shard tries again after
//! `haReconnectInterval`; nothing that failed a check is stored.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use rocketcore_storage::StoreError;

use super::wire::{self, Ack, Hello, HelloAck, Status, TransferHeader};
use crate::broker::shard::Shard;
use crate::net::Half;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const HELLO_ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest frame body accepted: the master sends at most
/// `haTransferBatchSize` (≤ 4 MiB).
const MAX_FRAME_BODY: usize = 4 << 20;
/// How long to wait for the flusher when the write buffer is full.
const BUSY_PAUSE: Duration = Duration::from_millis(2);

/// Runs on every slave shard until the task is dropped.
pub async fn follow_loop(shard: Rc<Shard>) {
    let mut last_error: Option<String> = None;
    loop {
        let reconnect = Duration::from_millis(shard.cfg().ha.reconnect_ms);
        let addr = match shard.repl.follow.master_ha.get() {
            Some(a) if shard.is_slave() => a,
            _ => {
                glommio::timer::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let r = {
            let _active = Active::new(&shard.repl.follow.active);
            futures_lite::future::or(follow_once(&shard, addr), async {
                let why = super::role::until_master_changes(&shard, addr).await;
                tracing::info!(shard = shard.id, master = %addr, "stops following: {why}");
                Err(Retry::Now)
            })
            .await
        };
        shard.repl.follow.connected.set(false);
        let r = match r {
            Err(Retry::Now) => continue,
            Err(Retry::Later(why)) => Err(why),
            Ok(()) => Ok(()),
        };
        if let Err(why) = r {
            // Once per distinct reason: a master that is down for an hour
            // does not fill the log.
            if last_error.as_deref() != Some(why.as_str()) {
                tracing::warn!(shard = shard.id, master = %addr, "following the master: {why}");
            }
            *shard.repl.follow.last_error.borrow_mut() = Some(why.clone());
            last_error = Some(why);
        }
        glommio::timer::sleep(reconnect).await;
    }
}

async fn timed<T>(
    d: Duration,
    what: &str,
    f: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, String> {
    match glommio::timer::timeout(d, async { Ok(f.await) }).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {} ms", d.as_millis())),
    }
}

/// Why a stream ended: try again at once (the log was just cut or
/// seeded) or after `haReconnectInterval`.
enum Retry {
    Now,
    Later(String),
}

impl From<String> for Retry {
    fn from(why: String) -> Retry {
        Retry::Later(why)
    }
}

/// Marks a stream open for as long as it lives, however it ends.
struct Active<'a>(&'a Cell<bool>);

impl<'a> Active<'a> {
    fn new(c: &'a Cell<bool>) -> Self {
        c.set(true);
        Active(c)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

async fn follow_once(shard: &Rc<Shard>, addr: SocketAddr) -> Result<(), Retry> {
    let cfg = shard.cfg().clone();
    let mut stream = timed(CONNECT_TIMEOUT, "connecting", async {
        TcpStream::connect(addr).await.map_err(std::io::Error::from)
    })
    .await?;
    let _ = stream.set_nodelay(true);
    let start = shard.store.log_end();
    let hello = Hello {
        shard: shard.id as u16,
        shards: shard.shards as u16,
        placement: wire::PLACEMENT_ID,
        segment_bytes: cfg.segment_bytes,
        slave_id: cfg.broker_id,
        slave_max: start,
        last_epoch: shard.store.last_epoch(),
        broker_name: cfg.broker_name.clone(),
    };
    timed(
        HELLO_ACK_TIMEOUT,
        "sending hello",
        stream.write_all(&hello.encode()),
    )
    .await?;
    let mut fixed = [0u8; wire::HELLO_ACK_FIXED_BYTES];
    timed(
        HELLO_ACK_TIMEOUT,
        "reading the master's answer",
        stream.read_exact(&mut fixed),
    )
    .await?;
    let (mut answer, epochs) = HelloAck::decode_fixed(&fixed).map_err(|e| e.to_string())?;
    let mut eb = vec![0u8; epochs * 12];
    timed(
        HELLO_ACK_TIMEOUT,
        "reading epochs",
        stream.read_exact(&mut eb),
    )
    .await?;
    answer.decode_epochs(&eb).map_err(|e| e.to_string())?;
    if answer.status == Status::SlaveBehind
        && start == 0
        && shard.store.queues().is_empty()
        && answer.master_min > 0
    {
        // A new slave of a master whose retention deleted the log's
        // beginning: start this log where the master's begins.
        shard
            .store
            .seed_empty_at(answer.master_min)
            .await
            .map_err(|e| format!("starting the log at {}: {e}", answer.master_min))?;
        tracing::info!(
            shard = shard.id,
            at = answer.master_min,
            "empty log seeded where the master's begins"
        );
        return Err(Retry::Now);
    }
    if matches!(answer.status, Status::Ok | Status::SlaveAhead) && !answer.epochs.is_empty() {
        agree_with(shard, start, &answer).await?;
    }
    if answer.status != Status::Ok {
        let mut why = format!("master refused: {}", answer.status.explain());
        if answer.status == Status::SlaveAhead || answer.status == Status::SlaveBehind {
            why.push_str(&format!(
                " (this shard's log ends at {start}; the master's spans {}..{})",
                answer.master_min, answer.master_max
            ));
        }
        return Err(why.into());
    }
    tracing::info!(shard = shard.id, master = %addr, from = start, master_end = answer.master_max, "following the master");
    shard.repl.follow.connected.set(true);
    shard.repl.follow.master_end.set(answer.master_max);
    *shard.repl.follow.last_error.borrow_mut() = None;
    let stream = Rc::new(std::cell::RefCell::new(stream));
    let stream_end = Rc::new(Cell::new(start));
    let reader = apply_loop(shard, Half(stream.clone()), start, stream_end.clone());
    let acks = ack_loop(shard, Half(stream), stream_end);
    Ok(futures_lite::future::or(reader, acks).await?)
}

/// Before a stream starts: where this log and the master's agree, by
/// their epochs. A tail past that point was written by a master the new
/// one replaced; it is cut and the stream restarts from the cut. With
/// nothing to cut, this log takes the master's epoch history.
async fn agree_with(shard: &Rc<Shard>, end: u64, answer: &HelloAck) -> Result<(), Retry> {
    let local = shard.store.epochs();
    let Some(at) =
        rocketcore_storage::consistent_point(&local, end, &answer.epochs, answer.master_max)
    else {
        return Err(Retry::Later(format!(
            "this log's epochs {local:?} share none with the master's {:?}: not following",
            answer.epochs
        )));
    };
    if at < end {
        shard
            .store
            .truncate_tail(at)
            .await
            .map_err(|e| format!("cutting the log back to {at}: {e}"))?;
        tracing::warn!(
            shard = shard.id,
            from = end,
            to = at,
            "cut the tail the new master never had"
        );
        return Err(Retry::Now);
    }
    if answer.status == Status::Ok {
        shard
            .store
            .set_epochs(answer.epochs.clone())
            .map_err(|e| format!("recording the master's epochs: {e}"))?;
    }
    Ok(())
}

/// Reads frames and appends their bytes.
async fn apply_loop(
    shard: &Rc<Shard>,
    mut input: Half<TcpStream>,
    start: u64,
    stream_end: Rc<Cell<u64>>,
) -> Result<(), String> {
    let housekeeping = Duration::from_millis(shard.cfg().ha.housekeeping_ms);
    // Bytes of the stream not yet appended: a record cut by a frame end.
    let mut pending = BytesMut::new();
    let mut stream_pos = start;
    loop {
        let mut hb = [0u8; wire::TRANSFER_HEADER_BYTES];
        timed(
            housekeeping,
            "reading from the master",
            input.read_exact(&mut hb),
        )
        .await?;
        let h = TransferHeader::decode(&hb, MAX_FRAME_BODY).map_err(|e| e.to_string())?;
        if h.offset != stream_pos {
            return Err(format!(
                "master pushed offset {} where the stream is at {stream_pos}",
                h.offset
            ));
        }
        shard.repl.follow.master_end.set(h.confirm);
        if h.body_len == 0 {
            continue;
        }
        let at = pending.len();
        pending.resize(at + h.body_len as usize, 0);
        timed(
            housekeeping,
            "reading from the master",
            input.read_exact(&mut pending[at..]),
        )
        .await?;
        stream_pos += h.body_len as u64;
        apply(shard, &mut pending, stream_pos).await?;
        stream_end.set(stream_pos);
    }
}

/// Appends the whole records in `pending`, which ends at stream offset
/// `stream_pos`; a partial last record stays.
async fn apply(shard: &Rc<Shard>, pending: &mut BytesMut, stream_pos: u64) -> Result<(), String> {
    loop {
        let local = shard.store.log_end();
        let pend_at = stream_pos - pending.len() as u64;
        if pend_at < local {
            // The master's filler after a blank end-of-segment marker:
            // this log already ends the segment there.
            let skip = ((local - pend_at) as usize).min(pending.len());
            let _ = pending.split_to(skip);
        }
        if pending.is_empty() {
            return Ok(());
        }
        let at = stream_pos - pending.len() as u64;
        // Per record: wake its queue's held pulls (no allocation); only a
        // queue the metadata does not know yet is remembered, to be
        // recorded once the append is done.
        let meta = shard.meta();
        let mut unknown: Vec<(String, u32)> = Vec::new();
        let r = shard.store.append_replicated(at, pending, &mut |topic, q| {
            shard.polls.notify(topic, q);
            let known = meta
                .topic(topic)
                .is_some_and(|t| (q as u32) < t.read_queue_nums);
            if !known
                && !rocketcore_storage::properties::is_staging_topic(topic)
                && !unknown.iter().any(|(t, n)| t == topic && *n > q as u32)
            {
                unknown.push((topic.to_string(), q as u32 + 1));
            }
        });
        for (topic, queues) in unknown {
            shard.provisional_topic(&topic, queues);
        }
        match r {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(StoreError::Busy { .. }) => glommio::timer::sleep(BUSY_PAUSE).await,
            Err(e) => return Err(format!("storing replicated bytes at {at}: {e}")),
        }
    }
}

/// Reports how far this shard's log is written to its files (what a
/// crash of this process keeps): as soon as that moves, and every
/// heartbeat interval when idle, since the master closes a link silent for
/// its housekeeping time. Never past the stream: the log's end jumps to the
/// segment end at a blank marker before the master has sent the filler.
async fn ack_loop(
    shard: &Rc<Shard>,
    mut out: Half<TcpStream>,
    stream_end: Rc<Cell<u64>>,
) -> Result<(), String> {
    let heartbeat = Duration::from_millis(shard.cfg().ha.heartbeat_ms);
    let mut last: Option<(Ack, std::time::Instant)> = None;
    loop {
        let written = shard.store.log_written().min(stream_end.get());
        let prev = last.map(|(a, _)| a);
        let now = Ack {
            written: written.max(prev.map_or(0, |a| a.written)),
            flushed: shard
                .store
                .log_flushed()
                .min(written)
                .max(prev.map_or(0, |a| a.flushed)),
        };
        let due = last.is_none_or(|(a, at)| a != now || at.elapsed() >= heartbeat);
        if due {
            timed(heartbeat, "acknowledging", out.write_all(&now.encode())).await?;
            last = Some((now, std::time::Instant::now()));
        }
        if shard.store.log_written() > now.written {
            // Written past the stream (a segment closed here before the
            // master's filler arrived): the stream will catch up soon.
            glommio::timer::sleep(Duration::from_millis(1)).await;
        } else {
            shard.store.wait_written(now.written, heartbeat).await;
        }
    }
}
