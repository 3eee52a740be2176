//! The key index behind QUERY_MESSAGE: message KEYS and UNIQ_KEY, hashed with
//! their topic, mapped to physical offsets with store times for range
//! filtering. Shard-local.
//!
//! Layout of an index file (little-endian, internal to rocketcore):
//! header, then `slots` u32 heads (1-based entry number, 0 = empty), then
//! entries of (hash u64, phys i64, store time i64, previous entry u32). Each
//! slot is a chain, newest first. The active index lives in memory; when
//! full it is sealed: written whole to a temporary name, synced, renamed.
//! A sealed file is therefore complete or absent, and recovery rebuilds the
//! active index from the commit log past the last sealed one.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use glommio::io::{BufferedFile, OpenOptions};

use crate::commit_log::{list_numbered, segment_name};
use crate::error::{Result, StoreError};

const MAGIC: u32 = 0x5243_4958; // "RCIX"
const HEADER_BYTES: usize = 64;
const ENTRY_BYTES: usize = 28;
/// Most chain links one query follows per index file.
pub const MAX_CHAIN_STEPS: usize = 8192;

/// FNV-1a over `topic#key`: the index's own hash, wide enough that chains
/// rarely mix keys (the store still checks every hit against the record).
pub fn key_hash(topic: &[u8], key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic.iter().chain(b"#").chain(key) {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[derive(Debug, Clone, Copy, Default)]
struct Header {
    slots: u32,
    count: u32,
    begin_phys: i64,
    end_phys: i64,
    begin_ts: i64,
    end_ts: i64,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut b = [0u8; HEADER_BYTES];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&self.slots.to_le_bytes());
        b[8..12].copy_from_slice(&self.count.to_le_bytes());
        b[12..20].copy_from_slice(&self.begin_phys.to_le_bytes());
        b[20..28].copy_from_slice(&self.end_phys.to_le_bytes());
        b[28..36].copy_from_slice(&self.begin_ts.to_le_bytes());
        b[36..44].copy_from_slice(&self.end_ts.to_le_bytes());
        let crc = crc32fast::hash(&b[..44]);
        b[44..48].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Header> {
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or([0; 4]));
        let i64_at = |i: usize| i64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        if b.len() < HEADER_BYTES || u32_at(0) != MAGIC || u32_at(44) != crc32fast::hash(&b[..44]) {
            return None;
        }
        Some(Header {
            slots: u32_at(4),
            count: u32_at(8),
            begin_phys: i64_at(12),
            end_phys: i64_at(20),
            begin_ts: i64_at(28),
            end_ts: i64_at(36),
        })
    }

    fn overlaps(&self, begin_ts: i64, end_ts: i64) -> bool {
        self.count > 0 && self.begin_ts <= end_ts && self.end_ts >= begin_ts
    }
}

/// The index being filled, in memory.
struct ActiveIndex {
    header: Header,
    heads: Vec<u32>,
    entries: Vec<u8>,
}

impl ActiveIndex {
    fn new(slots: u32, begin_phys: i64) -> Self {
        ActiveIndex {
            header: Header {
                slots,
                begin_phys,
                end_phys: begin_phys,
                ..Default::default()
            },
            heads: vec![0; slots as usize],
            entries: Vec::new(),
        }
    }

    fn add(&mut self, hash: u64, phys: i64, ts: i64) {
        let slot = (hash % self.header.slots as u64) as usize;
        let prev = self.heads[slot];
        self.entries.extend_from_slice(&hash.to_le_bytes());
        self.entries.extend_from_slice(&phys.to_le_bytes());
        self.entries.extend_from_slice(&ts.to_le_bytes());
        self.entries.extend_from_slice(&prev.to_le_bytes());
        self.header.count += 1;
        self.heads[slot] = self.header.count;
        if self.header.count == 1 {
            self.header.begin_ts = ts;
        }
        self.header.begin_ts = self.header.begin_ts.min(ts);
        self.header.end_ts = self.header.end_ts.max(ts);
    }

    fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_BYTES + self.heads.len() * 4 + self.entries.len());
        out.extend_from_slice(&self.header.encode());
        for h in &self.heads {
            out.extend_from_slice(&h.to_le_bytes());
        }
        out.extend_from_slice(&self.entries);
        out
    }

    fn query(&self, hash: u64, begin_ts: i64, end_ts: i64, max: usize, out: &mut Vec<i64>) {
        let slot = (hash % self.header.slots as u64) as usize;
        let mut next = self.heads[slot];
        let mut steps = 0;
        while next != 0 && out.len() < max && steps < MAX_CHAIN_STEPS {
            let e = decode_entry(&self.entries[(next as usize - 1) * ENTRY_BYTES..][..ENTRY_BYTES]);
            if e.0 == hash && e.2 >= begin_ts && e.2 <= end_ts {
                out.push(e.1);
            }
            next = e.3;
            steps += 1;
        }
    }
}

fn decode_entry(b: &[u8]) -> (u64, i64, i64, u32) {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[0..8]);
    let hash = u64::from_le_bytes(x);
    x.copy_from_slice(&b[8..16]);
    let phys = i64::from_le_bytes(x);
    x.copy_from_slice(&b[16..24]);
    let ts = i64::from_le_bytes(x);
    let prev = u32::from_le_bytes([b[24], b[25], b[26], b[27]]);
    (hash, phys, ts, prev)
}

/// A sealed index as a query sees it: header, the index itself while it is
/// still in memory, file.
type SealedView = (Header, Option<Rc<ActiveIndex>>, Option<Rc<BufferedFile>>);

struct SealedIndex {
    path: PathBuf,
    header: Header,
    /// In memory until written (serialized by the checkpoint task, never by
    /// the append that filled it); then read from `file`.
    pending: Option<Rc<ActiveIndex>>,
    file: Option<Rc<BufferedFile>>,
}

pub(crate) struct Index {
    dir: PathBuf,
    slots: u32,
    capacity: u32,
    active: RefCell<ActiveIndex>,
    sealed: RefCell<Vec<SealedIndex>>,
}

impl Index {
    /// Loads the sealed files under `dir`; the active index starts empty at
    /// the end of the last sealed one, which `durable_end` reports so that
    /// recovery can rebuild it from the log.
    pub(crate) async fn open(
        dir: PathBuf,
        slots: u32,
        capacity: u32,
        log_min: i64,
    ) -> Result<Index> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
        // A temporary file is a seal that did not finish: its entries are in the log.
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().ends_with(".tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let mut sealed = Vec::new();
        for (_, path) in list_numbered(&dir)? {
            let file = OpenOptions::new()
                .read(true)
                .buffered_open(&path)
                .await
                .map_err(|e| StoreError::glommio(format!("opening {}", path.display()), e))?;
            let head = file
                .read_at(0, HEADER_BYTES)
                .await
                .map_err(|e| StoreError::glommio(format!("reading {}", path.display()), e))?;
            match Header::decode(&head) {
                Some(header) if header.end_phys > log_min => sealed.push(SealedIndex {
                    path,
                    header,
                    pending: None,
                    file: Some(Rc::new(file)),
                }),
                Some(_) => {
                    let _ = std::fs::remove_file(&path);
                }
                None => {
                    tracing::warn!("dropping unreadable index file {}", path.display());
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let begin = sealed
            .last()
            .map_or(log_min, |s| s.header.end_phys.max(log_min));
        Ok(Index {
            dir,
            slots,
            capacity,
            active: RefCell::new(ActiveIndex::new(slots, begin)),
            sealed: RefCell::new(sealed),
        })
    }

    /// Log offset (global) below which every record is in a sealed file.
    pub(crate) fn durable_end(&self) -> i64 {
        self.active.borrow().header.begin_phys
    }

    /// Adds the keys of the record at `phys`; `end_phys` is where it ends.
    pub(crate) fn add<'k>(
        &self,
        topic: &[u8],
        keys: impl Iterator<Item = &'k [u8]>,
        phys: i64,
        end_phys: i64,
        ts: i64,
    ) {
        let mut active = self.active.borrow_mut();
        for key in keys {
            if active.header.count >= self.capacity {
                let full = std::mem::replace(&mut *active, ActiveIndex::new(self.slots, phys));
                self.sealed.borrow_mut().push(SealedIndex {
                    path: self.dir.join(segment_name(full.header.begin_phys as u64)),
                    header: full.header,
                    pending: Some(Rc::new(full)),
                    file: None,
                });
            }
            active.add(key_hash(topic, key), phys, ts);
        }
        active.header.end_phys = end_phys;
    }

    /// Forgets what lies at or past `bound` (global): files that begin
    /// there go, a file that spans it ends there (its header rewritten, so
    /// a restart rebuilds the rest from the log). Entries past the bound
    /// inside a kept index stay; queries check every hit against its
    /// record. Only after `persist`: nothing may be pending.
    pub(crate) async fn truncate_from(&self, bound: i64) -> Result<()> {
        let old = std::mem::take(&mut *self.sealed.borrow_mut());
        let mut kept = Vec::with_capacity(old.len());
        let mut failed = None;
        for mut s in old {
            if failed.is_some() || s.pending.is_some() {
                kept.push(s);
                continue;
            }
            if s.header.begin_phys >= bound {
                if let Err(e) = std::fs::remove_file(&s.path) {
                    failed = Some(StoreError::io(format!("removing {}", s.path.display()), e));
                    kept.push(s);
                }
                continue;
            }
            if s.header.end_phys > bound {
                s.header.end_phys = bound;
                if let Err(e) = rewrite_header(&s.path, &s.header).await {
                    failed = Some(e);
                }
            }
            kept.push(s);
        }
        *self.sealed.borrow_mut() = kept;
        if let Some(e) = failed {
            return Err(e);
        }
        let mut active = self.active.borrow_mut();
        if active.header.begin_phys >= bound {
            *active = ActiveIndex::new(self.slots, bound);
        } else if active.header.end_phys > bound {
            active.header.end_phys = bound;
        }
        Ok(())
    }

    /// Writes sealed indexes still in memory: temp file, sync, rename, dir sync.
    pub(crate) async fn persist(&self, env: &dyn crate::env::Environment) -> Result<()> {
        loop {
            let job = self
                .sealed
                .borrow()
                .iter()
                .find_map(|s| s.pending.clone().map(|p| (s.path.clone(), p)));
            // Matched by the index itself, not its path: a path could name
            // two seals only through a bug, and that must not spin here.
            let Some((path, data)) = job else {
                return Ok(());
            };
            let tmp = path.with_extension("tmp");
            env.failpoint(crate::env::IoOp::IndexSeal).map_err(|e| {
                crate::error::derived_write_error(format!("writing {}", tmp.display()), e)
            })?;
            let f = OpenOptions::new()
                .write(true)
                .read(true)
                .create(true)
                .truncate(true)
                .buffered_open(&tmp)
                .await
                .map_err(|e| StoreError::glommio(format!("creating {}", tmp.display()), e))?;
            let bytes = data.serialize();
            let wanted = bytes.len();
            f.write_at(bytes, 0)
                .await
                .map_err(std::io::Error::from)
                .and_then(|n| crate::error::whole_write(n, wanted))
                .map_err(|e| {
                    crate::error::derived_write_error(format!("writing {}", tmp.display()), e)
                })?;
            f.fdatasync()
                .await
                .map_err(|e| StoreError::glommio(format!("syncing {}", tmp.display()), e))?;
            std::fs::rename(&tmp, &path)
                .map_err(|e| StoreError::io(format!("renaming {}", tmp.display()), e))?;
            let dir = glommio::io::Directory::open(&self.dir)
                .await
                .map_err(|e| StoreError::glommio("opening index dir", e))?;
            dir.sync()
                .await
                .map_err(|e| StoreError::glommio("syncing index dir", e))?;
            let mut sealed = self.sealed.borrow_mut();
            if let Some(s) = sealed
                .iter_mut()
                .find(|s| s.pending.as_ref().is_some_and(|p| Rc::ptr_eq(p, &data)))
            {
                s.pending = None;
                s.file = Some(Rc::new(f));
            }
        }
    }

    /// Candidate physical offsets (global) for `key`, newest first. Hash
    /// collisions are possible: the caller checks each record.
    pub(crate) async fn query(
        &self,
        topic: &[u8],
        key: &[u8],
        max: usize,
        begin_ts: i64,
        end_ts: i64,
    ) -> Result<Vec<i64>> {
        let hash = key_hash(topic, key);
        let mut out = Vec::new();
        self.active
            .borrow()
            .query(hash, begin_ts, end_ts, max, &mut out);
        let sealed: Vec<SealedView> = self
            .sealed
            .borrow()
            .iter()
            .rev()
            .filter(|s| s.header.overlaps(begin_ts, end_ts))
            .map(|s| (s.header, s.pending.clone(), s.file.clone()))
            .collect();
        for (header, pending, file) in sealed {
            if out.len() >= max {
                break;
            }
            if let Some(index) = pending {
                index.query(hash, begin_ts, end_ts, max, &mut out);
                continue;
            }
            let slot = (hash % header.slots as u64) as usize;
            let entries_at = HEADER_BYTES + header.slots as usize * 4;
            let read = |pos: usize, len: usize| {
                let file = file.clone();
                async move {
                    match file {
                        Some(f) => f
                            .read_at(pos as u64, len)
                            .await
                            .map(|r| r.to_vec())
                            .map_err(|e| StoreError::glommio("reading index", e)),
                        None => Ok(Vec::new()),
                    }
                }
            };
            let head = read(HEADER_BYTES + slot * 4, 4).await?;
            let Ok(head) = <[u8; 4]>::try_from(head.as_slice()) else {
                continue;
            };
            let mut next = u32::from_le_bytes(head);
            let mut steps = 0;
            while next != 0 && next <= header.count && out.len() < max && steps < MAX_CHAIN_STEPS {
                let b = read(entries_at + (next as usize - 1) * ENTRY_BYTES, ENTRY_BYTES).await?;
                if b.len() < ENTRY_BYTES {
                    break;
                }
                let e = decode_entry(&b);
                if e.0 == hash && e.2 >= begin_ts && e.2 <= end_ts {
                    out.push(e.1);
                }
                next = e.3;
                steps += 1;
            }
        }
        Ok(out)
    }

    /// Drops sealed files whose every record is below `log_min` (global).
    pub(crate) fn expire(&self, log_min: i64) {
        self.sealed.borrow_mut().retain(|s| {
            let keep = s.header.end_phys > log_min || s.pending.is_some();
            if !keep {
                let _ = std::fs::remove_file(&s.path);
            }
            keep
        });
    }
}

async fn rewrite_header(path: &std::path::Path, header: &Header) -> Result<()> {
    let what = |w: &str| format!("{w} {}", path.display());
    let f = OpenOptions::new()
        .write(true)
        .read(true)
        .buffered_open(path)
        .await
        .map_err(|e| StoreError::glommio(what("opening"), e))?;
    let bytes = header.encode().to_vec();
    let n = f
        .write_at(bytes, 0)
        .await
        .map_err(|e| StoreError::glommio(what("writing the header of"), e))?;
    crate::error::whole_write(n, HEADER_BYTES)
        .map_err(|e| StoreError::io(what("writing the header of"), e))?;
    f.fdatasync()
        .await
        .map_err(|e| StoreError::glommio(what("syncing"), e))?;
    let _ = f.close().await;
    Ok(())
}
