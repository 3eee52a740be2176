//! One shard's commit log: the segment files, the in-memory write tail, the
//! group-commit flusher and reads by physical offset.
//!
//! Lives on the shard's executor only (`Rc`, `RefCell`). Offsets here are
//! in-shard; the store adds the shard byte when records leave it.
//!
//! Write path: `append` encodes records into a `BytesMut` chunk and files the
//! batch as one piece of the tail cache; nothing touches the disk. The flusher
//! works in rounds: it copies up to a quarter of the write buffer into
//! 4 KiB-aligned DMA buffers (the one extra copy O_DIRECT costs us) and writes
//! them, advancing `written` (what backpressure and cache eviction go by);
//! then, if a synced append waits or the flush interval has passed, it
//! fdatasyncs and advances the `flushed` watermark synced appenders wait on.
//! Appends that arrive while a sync is in flight are covered by the next one:
//! one sync serves every append queued behind it.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use glommio::io::{DmaFile, OpenOptions};

use crate::config::{StoreConfig, BLOCK_BYTES};
use crate::env::{Environment, IoOp};
use crate::error::{is_no_space, Result, StoreError};
use crate::record::{self, MessageDraft, Placement, BLANK_HEADER_BYTES};
use crate::sync::{Signal, WaitError, Watermark};
use crate::tail_cache::TailCache;

/// Bytes of encoding space allocated at a time for the write tail.
const CHUNK_BYTES: usize = 1 << 20;
/// Zeros that pad a blank end-of-segment marker; shared, never allocated.
static ZEROS: [u8; 1 << 16] = [0; 1 << 16];

pub(crate) fn segment_name(start: u64) -> String {
    format!("{start:020}")
}

pub(crate) fn align_down(v: u64) -> u64 {
    v & !(BLOCK_BYTES - 1)
}

pub(crate) fn align_up(v: u64) -> u64 {
    align_down(v + BLOCK_BYTES - 1)
}

/// Lists `dir`'s files whose names are 20-digit numbers, ascending.
pub(crate) fn list_numbered(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(StoreError::io(format!("listing {}", dir.display()), e)),
    };
    for entry in rd {
        let entry = entry.map_err(|e| StoreError::io(format!("listing {}", dir.display()), e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = name.parse::<u64>() {
                out.push((n, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) struct Segment {
    pub(crate) start: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: Rc<DmaFile>,
}

struct LogState {
    segments: BTreeMap<u64, Rc<Segment>>,
    /// Start of the oldest live segment: nothing below it can be read.
    min_offset: u64,
    /// Next append position.
    write_pos: u64,
    /// Record boundaries past `written`, ascending: every batch's end and
    /// every segment end. Write rounds end only on one, so `written`,
    /// `flushed` and the checkpoint made from them are always places a
    /// record starts (recovery begins there; a cut inside a record or a
    /// blank filler would end the log early or append over a torn record).
    boundaries: VecDeque<u64>,
    current: BytesMut,
    cache: TailCache,
    /// Set by a failed write or sync; never cleared.
    poisoned: Option<String>,
    /// Set while a segment cannot be allocated for lack of space.
    alloc_full: Option<String>,
    /// Set while the disk-usage reading is over the hard ratio.
    usage_full: Option<String>,
}

/// What the flusher found to do in one write round.
struct FlushPlan {
    from: u64,
    to: u64,
    missing: Vec<u64>,
}

pub(crate) struct CommitLog {
    shard: u8,
    dir: PathBuf,
    cfg: Rc<StoreConfig>,
    env: Rc<dyn Environment>,
    state: RefCell<LogState>,
    /// Every byte below it has been written to the device (maybe not
    /// synced). A watermark because replication waits on it: a master
    /// ships, and a slave acknowledges, only bytes in the file, so a process
    /// crash of either never leaves a slave holding what its master lost.
    written: Watermark,
    /// Durable end of the log: every byte below it is written and synced.
    flushed: Watermark,
    /// Segments written since their last fdatasync.
    unsynced: RefCell<Vec<Rc<Segment>>>,
    last_sync: Cell<Instant>,
    /// Raised by appends that want the flusher now.
    kick: Signal,
    /// One flush at a time: a second would evict cache bytes the first is
    /// still copying, and two syncs of the same range buy nothing.
    flush_lock: glommio::sync::Semaphore,
    /// Spare `write_io_bytes` DMA buffers, at most `write_io_depth`.
    dma_pool: RefCell<Vec<glommio::io::DmaBuffer>>,
    /// One segment creation at a time, so the allocator task and a round
    /// that needs a segment now never create the same file twice.
    alloc_lock: glommio::sync::Semaphore,
    /// The next segment, asked of the allocator task by a round.
    alloc_next: Cell<Option<u64>>,
    alloc_wanted: Signal,
}

/// What `read_for_replica` found at an offset.
#[derive(Debug)]
pub enum ReplicaRead {
    /// Log bytes from the offset (empty: nothing there yet).
    Bytes(Bytes),
    /// Below the log's start: retention deleted it.
    Gone { min: u64 },
    /// Past the log's end.
    Ahead { end: u64 },
}

/// Where a batch landed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchPlacement {
    pub(crate) first: u64,
    pub(crate) end: u64,
}

impl CommitLog {
    /// Opens the segments under `dir`; recovery decides where the log ends.
    pub(crate) async fn open(
        shard: u8,
        dir: PathBuf,
        cfg: Rc<StoreConfig>,
        env: Rc<dyn Environment>,
    ) -> Result<CommitLog> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
        let mut segments = BTreeMap::new();
        for (start, path) in list_numbered(&dir)? {
            if start % cfg.segment_bytes != 0 {
                return Err(StoreError::Corruption {
                    location: path.display().to_string(),
                    reason: format!(
                        "segment start is not a multiple of the segment size {}",
                        cfg.segment_bytes
                    ),
                });
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .dma_open(&path)
                .await
                .map_err(|e| StoreError::glommio(format!("opening {}", path.display()), e))?;
            segments.insert(
                start,
                Rc::new(Segment {
                    start,
                    path,
                    file: Rc::new(file),
                }),
            );
        }
        let min_offset = segments.keys().next().copied().unwrap_or(0);
        Ok(CommitLog {
            shard,
            dir,
            cfg,
            env,
            state: RefCell::new(LogState {
                segments,
                min_offset,
                write_pos: min_offset,
                boundaries: VecDeque::new(),
                current: BytesMut::new(),
                cache: TailCache::new(min_offset),
                poisoned: None,
                alloc_full: None,
                usage_full: None,
            }),
            written: Watermark::new(min_offset),
            flushed: Watermark::new(min_offset),
            unsynced: RefCell::new(Vec::new()),
            last_sync: Cell::new(Instant::now()),
            kick: Signal::default(),
            flush_lock: glommio::sync::Semaphore::new(1),
            dma_pool: RefCell::new(Vec::new()),
            alloc_lock: glommio::sync::Semaphore::new(1),
            alloc_next: Cell::new(None),
            alloc_wanted: Signal::default(),
        })
    }

    pub(crate) fn shard(&self) -> u8 {
        self.shard
    }

    pub(crate) fn segment_bytes(&self) -> u64 {
        self.cfg.segment_bytes
    }

    pub(crate) fn segment_start(&self, pos: u64) -> u64 {
        pos - pos % self.cfg.segment_bytes
    }

    pub(crate) fn min_offset(&self) -> u64 {
        self.state.borrow().min_offset
    }

    pub(crate) fn write_pos(&self) -> u64 {
        self.state.borrow().write_pos
    }

    pub(crate) fn flushed(&self) -> u64 {
        self.flushed.get()
    }

    pub(crate) fn cache_start(&self) -> u64 {
        self.state.borrow().cache.start()
    }

    pub(crate) fn cache_bytes(&self) -> u64 {
        self.state.borrow().cache.bytes()
    }

    pub(crate) fn poisoned(&self) -> Option<String> {
        self.state.borrow().poisoned.clone()
    }

    pub(crate) fn segments(&self) -> Vec<Rc<Segment>> {
        self.state.borrow().segments.values().cloned().collect()
    }

    pub(crate) fn segment_for(&self, pos: u64) -> Option<Rc<Segment>> {
        self.state
            .borrow()
            .segments
            .get(&self.segment_start(pos))
            .cloned()
    }

    pub(crate) fn set_usage_full(&self, why: Option<String>) {
        self.state.borrow_mut().usage_full = why;
    }

    /// Refuses writes for the reasons the log knows about.
    fn check_writable(st: &LogState, written: u64, limit: u64) -> Result<()> {
        if let Some(why) = &st.poisoned {
            return Err(StoreError::Poisoned(why.clone()));
        }
        if let Some(why) = st.alloc_full.as_ref().or(st.usage_full.as_ref()) {
            return Err(StoreError::DiskFull(why.clone()));
        }
        let pending = st.write_pos - written;
        if pending >= limit {
            return Err(StoreError::Busy {
                pending_bytes: pending,
                limit_bytes: limit,
            });
        }
        Ok(())
    }

    /// Encodes a batch for one queue into the tail. `total` is the batch's
    /// encoded size, already checked against the segment size. The whole
    /// batch lands in one segment, contiguously, as one cache piece.
    pub(crate) fn append(
        &self,
        topic: &str,
        queue_id: i32,
        first_queue_offset: i64,
        drafts: &[MessageDraft<'_>],
        total: u64,
        store_timestamp_ms: i64,
    ) -> Result<BatchPlacement> {
        let mut guard = self.state.borrow_mut();
        let st = &mut *guard;
        Self::check_writable(st, self.written.get(), self.cfg.write_buffer_bytes)?;
        let seg_end = self.segment_start(st.write_pos) + self.cfg.segment_bytes;
        if st.write_pos + total + BLANK_HEADER_BYTES as u64 > seg_end {
            Self::close_segment(st, seg_end);
        }
        let first = st.write_pos;
        Self::reserve(&mut st.current, total as usize);
        let mut pos = first;
        let fmt = self.cfg.record_format();
        for (i, draft) in drafts.iter().enumerate() {
            let at = Placement {
                queue_id,
                queue_offset: first_queue_offset + i as i64,
                physical_offset: crate::to_global(self.shard, pos),
                store_timestamp_ms,
            };
            pos += record::encode(&mut st.current, topic, draft, &fmt, &at) as u64;
        }
        debug_assert_eq!(pos - first, total);
        st.cache.push(first, st.current.split().freeze());
        st.write_pos = pos;
        st.boundaries.push_back(pos);
        drop(guard);
        // Every append is written promptly, synced or not: under
        // ASYNC_FLUSH a process crash must lose at most the round in flight
        // (the bytes are then in the file, only the fdatasync waits for the
        // interval), as RocketMQ's page-cache store loses nothing. The
        // flusher takes whatever queued up while it was busy as one round.
        self.kick.raise();
        Ok(BatchPlacement { first, end: pos })
    }

    /// Ends the segment at the write position with a blank marker: header
    /// plus shared zeros up to `seg_end`.
    fn close_segment(st: &mut LogState, seg_end: u64) {
        let remaining = seg_end - st.write_pos;
        Self::reserve(&mut st.current, BLANK_HEADER_BYTES);
        record::encode_blank_header(&mut st.current, remaining as usize);
        let at = st.write_pos;
        st.cache.push(at, st.current.split().freeze());
        let mut pos = at + BLANK_HEADER_BYTES as u64;
        while pos < seg_end {
            let n = ((seg_end - pos) as usize).min(ZEROS.len());
            st.cache.push(pos, Bytes::from_static(&ZEROS[..n]));
            pos += n as u64;
        }
        st.write_pos = seg_end;
        st.boundaries.push_back(seg_end);
    }

    /// Replication (slave side): files `run`, whole records the caller has
    /// checked, at `at` (the write position) as one cache piece; or, with
    /// `run` empty, closes the segment with a blank marker as the master's
    /// log did there. Nothing is re-encoded: the bytes and offsets are the
    /// master's.
    pub(crate) fn append_replicated(&self, at: u64, run: Bytes) -> Result<u64> {
        self.check_replicated(at)?;
        let mut guard = self.state.borrow_mut();
        let st = &mut *guard;
        let seg_end = self.segment_start(at) + self.cfg.segment_bytes;
        if run.is_empty() {
            Self::close_segment(st, seg_end);
        } else {
            if at + run.len() as u64 > seg_end {
                return Err(StoreError::IllegalMessage(format!(
                    "replicated records at {at} run past the segment end {seg_end}"
                )));
            }
            let end = at + run.len() as u64;
            st.cache.push(at, run);
            st.write_pos = end;
            st.boundaries.push_back(end);
        }
        let end = st.write_pos;
        drop(guard);
        self.kick.raise();
        Ok(end)
    }

    /// Whether replicated bytes at `at` can be filed now: the log takes
    /// writes and ends there.
    pub(crate) fn check_replicated(&self, at: u64) -> Result<()> {
        let st = self.state.borrow();
        Self::check_writable(&st, self.written.get(), self.cfg.write_buffer_bytes)?;
        if at != st.write_pos {
            return Err(StoreError::IllegalMessage(format!(
                "replicated bytes at {at} do not continue the log at {}",
                st.write_pos
            )));
        }
        Ok(())
    }

    /// Replication (master side): written log bytes from `pos` for a slave,
    /// at most `max`, never across a cache piece or a segment end: a
    /// zero-copy slice of the tail cache, or a DMA read.
    pub(crate) async fn read_for_replica(&self, pos: u64, max: usize) -> Result<ReplicaRead> {
        let written = self.written.get();
        let cold_len = {
            let st = self.state.borrow();
            if pos < st.min_offset {
                return Ok(ReplicaRead::Gone { min: st.min_offset });
            }
            if pos > st.write_pos {
                return Ok(ReplicaRead::Ahead { end: st.write_pos });
            }
            if pos >= written {
                return Ok(ReplicaRead::Bytes(Bytes::new()));
            }
            if pos >= st.cache.start() {
                let (at, piece) = st.cache.piece_at(pos).expect("pos lies in the cache");
                let from = (pos - at) as usize;
                let to = piece.len().min(from + max).min((written - at) as usize);
                return Ok(ReplicaRead::Bytes(piece.slice(from..to)));
            }
            let seg_end = self.segment_start(pos) + self.cfg.segment_bytes;
            (st.cache.start().min(seg_end) - pos).min(max as u64) as usize
        };
        match self.read(pos, cold_len).await? {
            Some(b) => Ok(ReplicaRead::Bytes(b)),
            None => Ok(ReplicaRead::Gone {
                min: self.min_offset(),
            }),
        }
    }

    /// Waits until the written log grows past `pos` or `deadline` passes.
    pub(crate) async fn wait_written(&self, pos: u64, deadline: Instant) -> bool {
        self.written.wait_for(pos + 1, deadline).await.is_ok()
    }

    pub(crate) fn written(&self) -> u64 {
        self.written.get()
    }

    fn reserve(current: &mut BytesMut, n: usize) {
        if current.capacity() - current.len() < n {
            *current = BytesMut::with_capacity(n.max(CHUNK_BYTES));
        }
    }

    /// Waits until `end` is durable, bounded by `sync_flush_timeout_ms`
    /// (enforced by `expire_waits`, not by a timer per append).
    pub(crate) async fn wait_durable(&self, end: u64) -> Result<()> {
        if self.flushed.get() >= end {
            return Ok(());
        }
        self.kick.raise();
        let deadline = Instant::now() + Duration::from_millis(self.cfg.sync_flush_timeout_ms);
        match self.flushed.wait_for(end, deadline).await {
            Ok(()) => Ok(()),
            Err(WaitError::Failed(why)) => Err(StoreError::Poisoned(why)),
            Err(WaitError::TimedOut) => Err(StoreError::FlushTimeout {
                timeout_ms: self.cfg.sync_flush_timeout_ms,
                appended: None,
            }),
        }
    }

    /// Releases synced appends whose wait has run out. Called periodically
    /// by a task of its own, so it works even while a sync hangs.
    pub(crate) fn expire_waits(&self) {
        self.flushed.expire(Instant::now());
    }

    /// Waits for a reason to flush: a kick, or the flush interval.
    pub(crate) async fn wait_for_work(&self) {
        // Under load the kick is nearly always raised already: no timer.
        if self.kick.take() {
            return;
        }
        let interval = Duration::from_millis(self.cfg.flush_interval_ms);
        let _ = glommio::timer::timeout(interval, async {
            self.kick.wait().await;
            Ok(())
        })
        .await;
    }

    /// The allocator task's loop body: waits for a round to ask for the next
    /// segment and creates it. A failure is not fatal: the round that needs
    /// the segment creates it itself (and reports a full disk).
    pub(crate) async fn allocate_next(&self) {
        self.alloc_wanted.wait().await;
        if let Some(start) = self.alloc_next.take() {
            let _ = self.create_segment(start, false).await;
        }
    }

    /// Whether a synced append is waiting for the flusher.
    pub(crate) fn sync_waiting(&self) -> bool {
        self.flushed.has_waiters()
    }

    /// Wakes the flusher (shutdown, tests).
    pub(crate) fn kick(&self) {
        self.kick.raise();
    }

    /// Most bytes one write round takes: a quarter of the write buffer, so
    /// appends keep landing in the rest while a round is on the device.
    fn round_bytes(&self) -> u64 {
        (self.cfg.write_buffer_bytes / 4).max(self.cfg.write_io_bytes as u64)
    }

    /// One flusher round: writes up to `round_bytes` of what is pending, then
    /// syncs if a synced append is waiting or the flush interval has passed
    /// since the last sync. Buffered load thus costs one fdatasync per
    /// interval (its writes go out at once), synced load one per round: a
    /// group commit for every append that queued behind the previous sync.
    /// Asks for another round while anything is unwritten.
    pub(crate) async fn flush_round(&self) -> Result<()> {
        let _permit = self
            .flush_lock
            .acquire_permit(1)
            .await
            .map_err(|e| StoreError::glommio("flush lock", e))?;
        let cap = self.round_bytes();
        let interval = Duration::from_millis(self.cfg.flush_interval_ms);
        let sync_due = self.flushed.has_waiters() || self.last_sync.get().elapsed() >= interval;
        self.round(cap, sync_due).await?;
        let more = self.write_pos() > self.written.get() || self.flushed.has_waiters();
        if more {
            self.kick.raise();
        }
        Ok(())
    }

    /// Writes and syncs everything appended so far. Returns the durable end.
    pub(crate) async fn flush(&self) -> Result<u64> {
        let _permit = self
            .flush_lock
            .acquire_permit(1)
            .await
            .map_err(|e| StoreError::glommio("flush lock", e))?;
        let target = self.write_pos();
        // A round syncs what earlier rounds wrote, so two rounds cover all.
        for _ in 0..3 {
            if self.flushed.get() >= target {
                break;
            }
            self.round(u64::MAX, true).await?;
        }
        Ok(self.flushed.get())
    }

    /// One round: writes up to `cap` pending bytes and, when `sync`, makes
    /// what was already written durable. Under load the two overlap: the
    /// sync of round k runs while round k+1 is being written, so a synced
    /// append waits for about one write or one sync, whichever is longer,
    /// instead of both. With nothing written before, the round syncs its own
    /// writes right after them (a lone synced append pays write + sync once).
    async fn round(&self, cap: u64, sync: bool) -> Result<()> {
        let plan = {
            let st = self.state.borrow();
            if let Some(why) = &st.poisoned {
                return Err(StoreError::Poisoned(why.clone()));
            }
            let written = self.written.get();
            let from = align_down(written);
            let to = Self::round_end(&st.boundaries, written, from.saturating_add(cap));
            let mut missing = Vec::new();
            let mut s = self.segment_start(from);
            while s < to {
                if !st.segments.contains_key(&s) {
                    missing.push(s);
                }
                s += self.cfg.segment_bytes;
            }
            FlushPlan { from, to, missing }
        };
        let already_written = self.written.get();
        let sync_earlier = sync && self.flushed.get() < already_written;
        let to_sync: Vec<Rc<Segment>> = if sync_earlier {
            std::mem::take(&mut *self.unsynced.borrow_mut())
        } else {
            Vec::new()
        };
        let write = async {
            if plan.to <= already_written {
                return Ok(());
            }
            for start in &plan.missing {
                self.create_segment(*start, true).await?;
            }
            self.write_range(plan.from, plan.to)
                .await
                .map_err(|e| self.poison(format!("write failed: {e}")))?;
            // At once, not after the sync this write overlaps: replication
            // streams and SYNC_MASTER sends wait for `written`, and an
            // interval sync under ASYNC_FLUSH would hold them for its
            // whole duration (measured: p99 of SYNC_MASTER sends 19 ms).
            self.written.advance(plan.to);
            Ok(())
        };
        let sync_prior = async {
            if !sync_earlier {
                return Ok(());
            }
            self.sync_segments(to_sync)
                .await
                .map_err(|e| self.poison(format!("fdatasync failed: {e}")))
        };
        let (wrote, synced) = futures_lite::future::zip(write, sync_prior).await;
        synced?;
        if sync_earlier {
            self.last_sync.set(Instant::now());
            self.flushed.advance(already_written);
        }
        wrote?;
        if plan.to > already_written {
            let mut st = self.state.borrow_mut();
            let done = st.boundaries.partition_point(|b| *b <= plan.to);
            st.boundaries.drain(..done);
            st.cache
                .evict(align_down(plan.to), self.cfg.tail_cache_bytes);
        }
        let written = self.written.get();
        if sync && !sync_earlier && self.flushed.get() < written {
            let segments = std::mem::take(&mut *self.unsynced.borrow_mut());
            if let Err(e) = self.sync_segments(segments).await {
                return Err(self.poison(format!("fdatasync failed: {e}")));
            }
            self.last_sync.set(Instant::now());
            self.flushed.advance(written);
        }
        // The next segment is allocated before it is needed, so a roll-over
        // never waits for fallocate; by the allocator task, so the appends
        // queued behind this round do not wait for it either.
        let next = self.segment_start(written) + self.cfg.segment_bytes;
        let wants_next = written - self.segment_start(written) > self.cfg.segment_bytes / 2
            && !self.state.borrow().segments.contains_key(&next);
        if wants_next {
            self.alloc_next.set(Some(next));
            self.alloc_wanted.raise();
        }
        Ok(())
    }

    /// Where a round that may write up to `limit` ends: the last record
    /// boundary at or below it, or the first one past `written` when a
    /// single batch is larger than a round; `written` when nothing waits.
    fn round_end(boundaries: &VecDeque<u64>, written: u64, limit: u64) -> u64 {
        let within = boundaries.partition_point(|b| *b <= limit);
        let end = match within {
            0 => boundaries.front().copied(),
            n => boundaries.get(n - 1).copied(),
        };
        end.unwrap_or(written).max(written)
    }

    /// fdatasyncs `segments`; on failure the unsynced ones stay listed.
    async fn sync_segments(&self, segments: Vec<Rc<Segment>>) -> std::io::Result<()> {
        for (i, seg) in segments.iter().enumerate() {
            let r = match self.env.failpoint(IoOp::Sync) {
                Ok(()) => seg.file.fdatasync().await.map_err(std::io::Error::from),
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                self.unsynced
                    .borrow_mut()
                    .extend(segments[i..].iter().cloned());
                return Err(e);
            }
        }
        Ok(())
    }

    fn poison(&self, why: String) -> StoreError {
        tracing::error!(shard = self.shard, "commit log poisoned: {why}");
        self.state.borrow_mut().poisoned = Some(why.clone());
        self.flushed.fail(why.clone());
        StoreError::Poisoned(why)
    }

    /// Creates and preallocates segment `start`. `needed`: records are
    /// waiting to be written into it, so no space for it refuses writes
    /// (`DiskFull`) until an allocation succeeds; the flusher retries it.
    /// A speculative one failing for lack of space changes nothing: the
    /// current segment still takes appends, and nothing would retry it.
    pub(crate) async fn create_segment(&self, start: u64, needed: bool) -> Result<()> {
        let _permit = self
            .alloc_lock
            .acquire_permit(1)
            .await
            .map_err(|e| StoreError::glommio("segment allocation lock", e))?;
        if self.state.borrow().segments.contains_key(&start) {
            return Ok(());
        }
        let path = self.dir.join(segment_name(start));
        let created = async {
            self.env.failpoint(IoOp::Allocate)?;
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .dma_open(&path)
                .await?;
            file.pre_allocate(self.cfg.segment_bytes, false).await?;
            // The new name must survive a crash as well as its contents.
            let dir = glommio::io::Directory::open(&self.dir).await?;
            dir.sync().await?;
            Ok::<_, std::io::Error>(file)
        }
        .await;
        match created {
            Ok(file) => {
                let mut st = self.state.borrow_mut();
                st.alloc_full = None;
                st.segments.insert(
                    start,
                    Rc::new(Segment {
                        start,
                        path,
                        file: Rc::new(file),
                    }),
                );
                Ok(())
            }
            Err(e) if is_no_space(&e) => {
                let why = format!("cannot allocate segment {}: {e}", path.display());
                tracing::warn!(shard = self.shard, "{why}");
                let _ = std::fs::remove_file(&path);
                if needed {
                    self.state.borrow_mut().alloc_full = Some(why.clone());
                }
                Err(StoreError::DiskFull(why))
            }
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(self.poison(format!("cannot create segment {}: {e}", path.display())))
            }
        }
    }

    /// Writes [from, to) (from aligned) in aligned chunks, several in flight,
    /// and lists the segments touched for the next sync.
    async fn write_range(&self, from: u64, to: u64) -> std::io::Result<()> {
        let io_bytes = self.cfg.write_io_bytes as u64;
        let mut tasks = std::collections::VecDeque::new();
        let mut touched: Vec<Rc<Segment>> = Vec::new();
        let mut first_err: Option<std::io::Error> = None;
        let mut pos = from;
        while pos < to && first_err.is_none() {
            let seg_start = self.segment_start(pos);
            let end = (pos + io_bytes)
                .min(seg_start + self.cfg.segment_bytes)
                .min(to);
            let (seg, buf) = match self.fill_write_buffer(seg_start, pos, end) {
                Ok(x) => x,
                Err(e) => {
                    first_err = Some(e);
                    break;
                }
            };
            if touched.last().map(|s| s.start) != Some(seg.start) {
                touched.push(seg.clone());
            }
            if let Err(e) = self.env.failpoint(IoOp::Write) {
                first_err = Some(e);
                break;
            }
            let file = seg.file.clone();
            let at = pos - seg.start;
            let buf = Rc::new(buf);
            tasks.push_back(glommio::spawn_local(async move {
                let wanted = buf.len();
                let r = file
                    .write_rc_at(buf.clone(), at)
                    .await
                    .map_err(std::io::Error::from)
                    .and_then(|n| crate::error::whole_write(n, wanted));
                (r, Rc::try_unwrap(buf).ok())
            }));
            if tasks.len() >= self.cfg.write_io_depth {
                if let Some(t) = tasks.pop_front() {
                    let (r, buf) = t.await;
                    self.recycle(buf);
                    if let Err(e) = r {
                        first_err = Some(e);
                    }
                }
            }
            pos = end;
        }
        // Every write must finish before we report, even after an error.
        while let Some(t) = tasks.pop_front() {
            let (r, buf) = t.await;
            self.recycle(buf);
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        {
            let mut unsynced = self.unsynced.borrow_mut();
            for seg in touched {
                if !unsynced.iter().any(|s| s.start == seg.start) {
                    unsynced.push(seg);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn recycle(&self, buf: Option<glommio::io::DmaBuffer>) {
        let mut pool = self.dma_pool.borrow_mut();
        if let Some(b) = buf.filter(|b| b.len() == self.cfg.write_io_bytes) {
            if pool.len() < self.cfg.write_io_depth {
                pool.push(b);
            }
        }
    }

    /// An aligned DMA buffer holding log bytes [pos, end), zero-padded to
    /// the next block.
    fn fill_write_buffer(
        &self,
        seg_start: u64,
        pos: u64,
        end: u64,
    ) -> std::io::Result<(Rc<Segment>, glommio::io::DmaBuffer)> {
        let st = self.state.borrow();
        // Before a block is written: whole blocks inside one segment, of
        // bytes that were appended. A violation is a bug that would write
        // garbage over the log; stopping the process is the safe answer.
        assert!(
            pos.is_multiple_of(BLOCK_BYTES)
                && pos >= seg_start
                && end <= seg_start + self.cfg.segment_bytes,
            "write of {pos}..{end} is not block-aligned inside segment {seg_start}"
        );
        assert!(
            end <= st.write_pos,
            "write of {pos}..{end} past the log's end {}",
            st.write_pos
        );
        let seg =
            st.segments.get(&seg_start).cloned().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "segment vanished")
            })?;
        let len = align_up(end - pos) as usize;
        // Full-size buffers are reused: a fresh one costs page faults on
        // every byte, which showed up as a tenth of the flusher's CPU.
        let pooled = (len == self.cfg.write_io_bytes)
            .then(|| self.dma_pool.borrow_mut().pop())
            .flatten();
        let mut buf = pooled.unwrap_or_else(|| seg.file.alloc_dma_buffer(len));
        let data = (end - pos) as usize;
        let got = st.cache.copy_out(pos, &mut buf.as_bytes_mut()[..data]);
        if got != data {
            return Err(std::io::Error::other(format!(
                "tail cache lost bytes {pos}..{end} before they were flushed"
            )));
        }
        buf.as_bytes_mut()[data..].fill(0);
        Ok((seg, buf))
    }

    /// `len` bytes at in-shard `pos`: a zero-copy slice from the tail cache,
    /// or a DMA read. `None` when `pos` is outside the live log.
    pub(crate) async fn read(&self, pos: u64, len: usize) -> Result<Option<Bytes>> {
        let seg = {
            let st = self.state.borrow();
            if pos < st.min_offset || pos + len as u64 > st.write_pos {
                return Ok(None);
            }
            if let Some(b) = st.cache.get(pos, len) {
                return Ok(Some(b));
            }
            match st.segments.get(&self.segment_start(pos)) {
                Some(s) => s.clone(),
                None => return Ok(None),
            }
        };
        let at = pos - seg.start;
        if at + len as u64 > self.cfg.segment_bytes {
            return Ok(None);
        }
        let r = seg
            .file
            .read_at(at, len)
            .await
            .map_err(|e| StoreError::glommio(format!("reading {}", seg.path.display()), e))?;
        if r.len() < len {
            return Ok(None);
        }
        Ok(Some(Bytes::copy_from_slice(&r[..len])))
    }

    /// Reads many records, each given as (in-shard offset, size), ascending.
    /// Cold neighbours are fetched with one DMA read per run of up to
    /// `read_io_bytes`. A record that is gone yields `None` in its place.
    pub(crate) async fn read_many(&self, wanted: &[(u64, u32)]) -> Result<Vec<Option<Bytes>>> {
        let mut out: Vec<Option<Bytes>> = Vec::with_capacity(wanted.len());
        let mut i = 0;
        while i < wanted.len() {
            let (pos, size) = wanted[i];
            let cached = {
                let st = self.state.borrow();
                if pos < st.min_offset || pos + size as u64 > st.write_pos {
                    Some(None)
                } else {
                    st.cache.get(pos, size as usize).map(Some)
                }
            };
            if let Some(hit) = cached {
                out.push(hit);
                i += 1;
                continue;
            }
            // Extend a run of contiguous records in the same segment.
            let seg_start = self.segment_start(pos);
            let mut j = i + 1;
            let mut run_end = pos + size as u64;
            while j < wanted.len() {
                let (p, s) = wanted[j];
                let e = p + s as u64;
                if p != run_end
                    || self.segment_start(p) != seg_start
                    || e - pos > self.cfg.read_io_bytes as u64
                {
                    break;
                }
                run_end = e;
                j += 1;
            }
            match self.read(pos, (run_end - pos) as usize).await? {
                Some(run) => {
                    for &(p, s) in &wanted[i..j] {
                        let from = (p - pos) as usize;
                        out.push(Some(run.slice(from..from + s as usize)));
                    }
                }
                None => out.extend(std::iter::repeat_n(None, j - i)),
            }
            i = j;
        }
        Ok(out)
    }

    /// The log ends at `end` (after recovery, or a cut of a diverged
    /// replica tail). Zeroes what lies past it in its
    /// segment, drops later segments, and reloads the partial last block so
    /// the next flush rewrites it whole.
    pub(crate) async fn resume_at(&self, end: u64) -> Result<()> {
        let later: Vec<Rc<Segment>> = {
            let st = self.state.borrow();
            let keep = self.segment_start(end);
            st.segments
                .range(keep + 1..)
                .map(|(_, s)| s.clone())
                .collect()
        };
        for seg in later {
            tracing::warn!(
                shard = self.shard,
                "recovery drops segment {} past the end of the log",
                seg.path.display()
            );
            self.state.borrow_mut().segments.remove(&seg.start);
            std::fs::remove_file(&seg.path)
                .map_err(|e| StoreError::io(format!("removing {}", seg.path.display()), e))?;
        }
        let block = align_down(end);
        let mut partial = Bytes::new();
        if let Some(seg) = self.segment_for(end) {
            if end > block {
                let r = seg
                    .file
                    .read_at_aligned(block - seg.start, BLOCK_BYTES as usize)
                    .await
                    .map_err(|e| {
                        StoreError::glommio(format!("reading {}", seg.path.display()), e)
                    })?;
                let n = (end - block) as usize;
                if r.len() < n {
                    return Err(StoreError::Corruption {
                        location: seg.path.display().to_string(),
                        reason: format!("segment shorter than the recovered end {end}"),
                    });
                }
                partial = Bytes::copy_from_slice(&r[..n]);
            }
            // Garbage past the end (a torn write) must not survive to confuse
            // a later recovery: rewrite the block and punch out the rest.
            let seg_end = seg.start + self.cfg.segment_bytes;
            let tail_from = align_up(end);
            if end > block {
                let mut buf = seg.file.alloc_dma_buffer(BLOCK_BYTES as usize);
                buf.as_bytes_mut().fill(0);
                buf.as_bytes_mut()[..partial.len()].copy_from_slice(&partial);
                let n = seg
                    .file
                    .write_at(buf, block - seg.start)
                    .await
                    .map_err(|e| StoreError::glommio("rewriting the last block", e))?;
                crate::error::whole_write(n, BLOCK_BYTES as usize)
                    .map_err(|e| StoreError::io("rewriting the last block", e))?;
            }
            if tail_from < seg_end {
                let from = tail_from - seg.start;
                let len = seg_end - tail_from;
                seg.file
                    .deallocate(from, len)
                    .await
                    .map_err(|e| StoreError::glommio("zeroing past the end", e))?;
                seg.file
                    .pre_allocate(self.cfg.segment_bytes, false)
                    .await
                    .map_err(|e| StoreError::glommio("re-allocating the segment", e))?;
            }
            seg.file
                .fdatasync()
                .await
                .map_err(|e| StoreError::glommio("syncing the last segment", e))?;
        }
        let mut st = self.state.borrow_mut();
        st.write_pos = end;
        st.boundaries.clear();
        st.cache = TailCache::new(block);
        st.cache.push(block, partial);
        if st.segments.is_empty() {
            st.min_offset = self.segment_start(end);
        }
        drop(st);
        self.written.reset(end);
        self.flushed.reset(end);
        Ok(())
    }

    /// Removes a whole segment (retention). Never the one being written.
    pub(crate) async fn delete_segment(&self, start: u64) -> Result<bool> {
        let seg = {
            let mut st = self.state.borrow_mut();
            let active = self.segment_start(st.write_pos);
            if start >= active || start + self.cfg.segment_bytes > self.flushed.get() {
                return Ok(false);
            }
            let Some(seg) = st.segments.remove(&start) else {
                return Ok(false);
            };
            st.min_offset = st
                .segments
                .keys()
                .next()
                .copied()
                .unwrap_or(active)
                .max(st.min_offset);
            seg
        };
        std::fs::remove_file(&seg.path)
            .map_err(|e| StoreError::io(format!("removing {}", seg.path.display()), e))?;
        Ok(true)
    }
}
