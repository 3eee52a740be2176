//! One (topic, queueId)'s consume queue: the array of 20-byte units (§7.1)
//! mapping logical queue offsets to commit-log records, in files of
//! `cq_entries_per_file` units, plus an in-memory tail of the newest units.
//!
//! Shard-local. Units are dispatched at append time into the tail; the
//! checkpoint task writes them to the files (buffered I/O: these are small
//! metadata writes) and syncs them before the checkpoint claims them.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::rc::Rc;

use glommio::io::{BufferedFile, OpenOptions};

use crate::commit_log::{list_numbered, segment_name};
use crate::env::{Environment, IoOp};
use crate::error::{derived_write_error, whole_write, Result, StoreError};

pub const CQ_UNIT_BYTES: u64 = 20;
/// Most units one read returns (one pull scans at most ~800).
pub const CQ_MAX_UNITS_PER_READ: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CqUnit {
    /// Global physical offset of the record.
    pub phys: i64,
    pub size: i32,
    pub tags_code: i64,
}

impl CqUnit {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.phys.to_be_bytes());
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.tags_code.to_be_bytes());
    }

    fn decode(b: &[u8]) -> CqUnit {
        let mut p = [0u8; 8];
        p.copy_from_slice(&b[0..8]);
        let mut t = [0u8; 8];
        t.copy_from_slice(&b[12..20]);
        CqUnit {
            phys: i64::from_be_bytes(p),
            size: i32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            tags_code: i64::from_be_bytes(t),
        }
    }

    /// A unit never written (a hole) or zeroed by a torn write.
    pub fn is_hole(&self) -> bool {
        self.size <= 0
    }
}

struct CqState {
    min: u64,
    max: u64,
    tail_start: u64,
    tail: Vec<u8>,
    /// Units below this are in the files (maybe not yet synced).
    written: u64,
    files: BTreeMap<u64, Rc<BufferedFile>>,
    /// File indexes written since the last sync.
    dirty: BTreeSet<u64>,
    /// File indexes present on disk.
    on_disk: BTreeSet<u64>,
}

pub(crate) struct ConsumeQueue {
    dir: PathBuf,
    per_file: u64,
    tail_cap: usize,
    state: RefCell<CqState>,
    /// Set when its topic is deleted: a checkpoint still holding the queue
    /// must not write it (that would recreate its directory and revive the
    /// queue at the next start).
    deleted: std::cell::Cell<bool>,
}

impl ConsumeQueue {
    /// Opens the queue under `dir`, creating nothing until the first write.
    /// The last file's length (whole units) gives the max offset.
    pub(crate) fn open(dir: PathBuf, per_file: u64, tail_cap: usize) -> Result<ConsumeQueue> {
        let file_bytes = per_file * CQ_UNIT_BYTES;
        let mut on_disk = BTreeSet::new();
        let (mut min, mut max) = (0, 0);
        let files = list_numbered(&dir)?;
        for (i, (start, path)) in files.iter().enumerate() {
            if start % file_bytes != 0 {
                return Err(StoreError::Corruption {
                    location: path.display().to_string(),
                    reason: format!("consume queue file is not on a {file_bytes}-byte boundary"),
                });
            }
            let k = start / file_bytes;
            on_disk.insert(k);
            if i == 0 {
                min = k * per_file;
            }
            if i == files.len() - 1 {
                let len = std::fs::metadata(path)
                    .map_err(|e| StoreError::io(format!("stat {}", path.display()), e))?
                    .len();
                max = k * per_file + (len / CQ_UNIT_BYTES).min(per_file);
            }
        }
        Ok(ConsumeQueue {
            dir,
            per_file,
            tail_cap: tail_cap.max(1),
            state: RefCell::new(CqState {
                min,
                max,
                tail_start: max,
                tail: Vec::new(),
                written: max,
                files: BTreeMap::new(),
                dirty: BTreeSet::new(),
                on_disk,
            }),
            deleted: std::cell::Cell::new(false),
        })
    }

    pub(crate) fn min(&self) -> u64 {
        self.state.borrow().min
    }

    pub(crate) fn max(&self) -> u64 {
        self.state.borrow().max
    }

    /// Adds the unit for offset `max()`.
    pub(crate) fn push(&self, unit: CqUnit) {
        let mut st = self.state.borrow_mut();
        unit.encode(&mut st.tail);
        st.max += 1;
        let cap = self.tail_cap as u64;
        if st.max - st.tail_start > 2 * cap {
            let drop_to = (st.max - cap).min(st.written);
            if drop_to > st.tail_start {
                let n = ((drop_to - st.tail_start) * CQ_UNIT_BYTES) as usize;
                st.tail.drain(..n);
                st.tail_start = drop_to;
            }
        }
    }

    /// A queue that never held a unit starts at `offset` instead of 0 (a
    /// slave seeded from a master whose log no longer starts at 0): no
    /// holes below it in memory; the file's unwritten start reads as holes,
    /// which `correct_min` steps over after a restart.
    pub(crate) fn start_at(&self, offset: u64) {
        let mut st = self.state.borrow_mut();
        debug_assert!(st.max == 0 && st.min == 0);
        st.min = offset;
        st.max = offset;
        st.tail_start = offset;
        st.written = offset;
        st.tail.clear();
    }

    /// Fills holes up to `offset` (recovery found a record past the end).
    pub(crate) fn pad_to(&self, offset: u64) {
        let hole = CqUnit {
            phys: 0,
            size: 0,
            tags_code: 0,
        };
        while self.max() < offset {
            self.push(hole);
        }
    }

    fn file_name(&self, k: u64) -> PathBuf {
        self.dir
            .join(segment_name(k * self.per_file * CQ_UNIT_BYTES))
    }

    async fn file(&self, k: u64, create: bool) -> Result<Option<Rc<BufferedFile>>> {
        if create && self.deleted.get() {
            return Ok(None);
        }
        {
            let st = self.state.borrow();
            if let Some(f) = st.files.get(&k) {
                return Ok(Some(f.clone()));
            }
            if !create && !st.on_disk.contains(&k) {
                return Ok(None);
            }
        }
        let path = self.file_name(k);
        if create {
            std::fs::create_dir_all(&self.dir)
                .map_err(|e| StoreError::io(format!("creating {}", self.dir.display()), e))?;
        }
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .buffered_open(&path)
            .await
            .map_err(|e| StoreError::glommio(format!("opening {}", path.display()), e))?;
        let f = Rc::new(f);
        let mut st = self.state.borrow_mut();
        st.on_disk.insert(k);
        Ok(Some(st.files.entry(k).or_insert(f).clone()))
    }

    /// Up to `max_units` units from `from`, stopping at a file boundary.
    pub(crate) async fn read(&self, from: u64, max_units: usize) -> Result<Vec<CqUnit>> {
        let max_units = max_units.min(CQ_MAX_UNITS_PER_READ);
        let (k, n) = {
            let st = self.state.borrow();
            if from < st.min || from >= st.max || max_units == 0 {
                return Ok(Vec::new());
            }
            if from >= st.tail_start {
                let n = ((st.max - from) as usize).min(max_units);
                let at = ((from - st.tail_start) * CQ_UNIT_BYTES) as usize;
                return Ok(st.tail[at..at + n * CQ_UNIT_BYTES as usize]
                    .chunks_exact(CQ_UNIT_BYTES as usize)
                    .map(CqUnit::decode)
                    .collect());
            }
            let k = from / self.per_file;
            let file_end = (k + 1) * self.per_file;
            let n = (st.tail_start.min(file_end) - from).min(max_units as u64);
            (k, n as usize)
        };
        let Some(f) = self.file(k, false).await? else {
            return Ok(Vec::new());
        };
        let pos = (from - k * self.per_file) * CQ_UNIT_BYTES;
        let r = f
            .read_at(pos, n * CQ_UNIT_BYTES as usize)
            .await
            .map_err(|e| {
                StoreError::glommio(format!("reading {}", self.file_name(k).display()), e)
            })?;
        Ok(r.chunks_exact(CQ_UNIT_BYTES as usize)
            .map(CqUnit::decode)
            .collect())
    }

    pub(crate) async fn unit(&self, offset: u64) -> Result<Option<CqUnit>> {
        Ok(self.read(offset, 1).await?.into_iter().next())
    }

    /// Writes every unit not yet in a file. Returns the offset written up to.
    pub(crate) async fn persist(&self, env: &dyn Environment) -> Result<u64> {
        match self.persist_units(env).await {
            // Its directory went from under a write in flight.
            Err(_) if self.deleted.get() => Ok(self.state.borrow().written),
            r => r,
        }
    }

    async fn persist_units(&self, env: &dyn Environment) -> Result<u64> {
        loop {
            if self.deleted.get() {
                return Ok(self.state.borrow().written);
            }
            let (k, pos, data, upto) = {
                let st = self.state.borrow();
                if st.written >= st.max {
                    return Ok(st.written);
                }
                let k = st.written / self.per_file;
                let upto = st.max.min((k + 1) * self.per_file);
                let at = ((st.written - st.tail_start) * CQ_UNIT_BYTES) as usize;
                let to = ((upto - st.tail_start) * CQ_UNIT_BYTES) as usize;
                let pos = (st.written - k * self.per_file) * CQ_UNIT_BYTES;
                (k, pos, st.tail[at..to].to_vec(), upto)
            };
            let f = self
                .file(k, true)
                .await?
                .ok_or_else(|| StoreError::Corruption {
                    location: self.file_name(k).display().to_string(),
                    reason: "consume queue file could not be created".into(),
                })?;
            let written = match env.failpoint(IoOp::CqWrite) {
                Ok(()) => {
                    let wanted = data.len();
                    f.write_at(data, pos)
                        .await
                        .map_err(std::io::Error::from)
                        .and_then(|n| whole_write(n, wanted))
                }
                Err(e) => Err(e),
            };
            written.map_err(|e| {
                derived_write_error(format!("writing {}", self.file_name(k).display()), e)
            })?;
            let mut st = self.state.borrow_mut();
            st.written = upto;
            st.dirty.insert(k);
        }
    }

    /// Its topic is gone: nothing of it is written from now on.
    pub(crate) fn mark_deleted(&self) {
        self.deleted.set(true);
    }

    /// Syncs the files written since the last sync. A file stays dirty
    /// until its sync succeeds (the caller must still not trust a later
    /// success: see `ShardStore::write_checkpoint`).
    pub(crate) async fn sync(&self, env: &dyn Environment) -> Result<()> {
        match self.sync_files(env).await {
            Err(_) if self.deleted.get() => Ok(()),
            r => r,
        }
    }

    async fn sync_files(&self, env: &dyn Environment) -> Result<()> {
        let dirty: Vec<u64> = self.state.borrow().dirty.iter().copied().collect();
        for k in dirty {
            if self.deleted.get() {
                return Ok(());
            }
            if let Some(f) = self.file(k, false).await? {
                let synced = match env.failpoint(IoOp::CqSync) {
                    Ok(()) => f.fdatasync().await.map_err(std::io::Error::from),
                    Err(e) => Err(e),
                };
                synced.map_err(|e| {
                    StoreError::io(format!("syncing {}", self.file_name(k).display()), e)
                })?;
            }
            self.state.borrow_mut().dirty.remove(&k);
        }
        Ok(())
    }

    /// Drops trailing units that point at or past `bound` (global), or are
    /// holes: recovery replays those from the log, and a replica's cut
    /// (`ShardStore::truncate_tail`) drops them for good. Every unit must be
    /// persisted first: the in-memory tail is dropped whole.
    pub(crate) async fn truncate_from(&self, bound: i64) -> Result<()> {
        let original = self.max();
        let mut max = original;
        let floor = self.min();
        'scan: while max > floor {
            let k = (max - 1) / self.per_file;
            let mut from = (k * self.per_file)
                .max(floor)
                .max(max.saturating_sub(CQ_MAX_UNITS_PER_READ as u64));
            // One read answers from the in-memory tail or from one file,
            // never both: a step must not straddle where the tail starts.
            let tail_start = self.state.borrow().tail_start;
            if tail_start < max {
                from = from.max(tail_start);
            }
            let units = self.read(from, (max - from) as usize).await?;
            if units.len() as u64 != max - from {
                break;
            }
            for u in units.iter().rev() {
                if u.phys < bound && !u.is_hole() {
                    break 'scan;
                }
                max -= 1;
            }
        }
        if max == original {
            return Ok(());
        }
        let last_kept = max.checked_sub(1).map(|m| m / self.per_file);
        let on_disk: Vec<u64> = self.state.borrow().on_disk.iter().copied().collect();
        for k in on_disk {
            if last_kept.is_none_or(|l| k > l) {
                let path = self.file_name(k);
                std::fs::remove_file(&path)
                    .map_err(|e| StoreError::io(format!("removing {}", path.display()), e))?;
                let mut st = self.state.borrow_mut();
                st.on_disk.remove(&k);
                st.files.remove(&k);
            } else if Some(k) == last_kept {
                if let Some(f) = self.file(k, false).await? {
                    f.truncate((max - k * self.per_file) * CQ_UNIT_BYTES)
                        .await
                        .map_err(|e| StoreError::glommio("truncating consume queue", e))?;
                    f.fdatasync()
                        .await
                        .map_err(|e| StoreError::glommio("syncing consume queue", e))?;
                }
            }
        }
        let mut st = self.state.borrow_mut();
        st.max = max;
        st.min = st.min.min(max);
        st.written = max;
        st.tail_start = max;
        st.tail.clear();
        Ok(())
    }

    /// Moves the min offset past units whose records were deleted (below
    /// `log_min`, global) and removes files wholly below it.
    pub(crate) async fn correct_min(&self, log_min: i64) -> Result<()> {
        let (mut lo, hi) = (self.min(), self.max());
        if lo >= hi {
            return Ok(());
        }
        match self.unit(lo).await? {
            Some(u) if u.phys >= log_min => return Ok(()),
            _ => {}
        }
        // First unit whose record is still live.
        let mut h = hi;
        while lo < h {
            let mid = lo + (h - lo) / 2;
            match self.unit(mid).await? {
                Some(u) if u.phys >= log_min => h = mid,
                _ => lo = mid + 1,
            }
        }
        let new_min = lo;
        let first_kept_file = new_min / self.per_file;
        let doomed: Vec<u64> = self
            .state
            .borrow()
            .on_disk
            .iter()
            .copied()
            .filter(|k| *k < first_kept_file)
            .collect();
        {
            let mut st = self.state.borrow_mut();
            st.min = new_min;
            for k in &doomed {
                st.on_disk.remove(k);
                st.files.remove(k);
                st.dirty.remove(k);
            }
        }
        for k in doomed {
            let _ = std::fs::remove_file(self.file_name(k));
        }
        Ok(())
    }
}
