//! `ShardStore`: the store one shard owns, and the only entry point the
//! broker uses. It ties the commit log, consume queues, index, checkpoint
//! and the three background tasks (flusher, checkpointer, retention)
//! together. Lives on one glommio executor; `!Send`.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use crate::checkpoint::{Checkpoint, CheckpointFile};
use crate::commit_log::CommitLog;
use crate::config::{Durability, StoreConfig};
use crate::consume_queue::{ConsumeQueue, CqUnit};
use crate::env::{Environment, IoOp};
use crate::error::{Result, StoreError};
use crate::index::Index;
use crate::record::{self, MessageDraft, RecordView};
use crate::recovery::{self, RecoveryReport};
use crate::retention;
use crate::sync::Watermark;
use crate::{from_global, properties, to_global, valid_topic};

/// Most consume-queue units one pull examines (RocketMQ: 16000 bytes of CQ).
pub const PULL_MAX_SCAN_UNITS: usize = 800;
/// A pull never returns more than this many bytes of records.
pub const PULL_MAX_BYTES: usize = 128 << 20;
/// Highest queue id accepted.
pub const MAX_QUEUE_ID: i32 = 65_535;
/// Candidates examined per key query, as a multiple of the requested count.
const QUERY_OVERSCAN: usize = 4;

/// What an append stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub first_queue_offset: i64,
    /// Global physical offset of the first record; the rest follow contiguously.
    pub first_phys: i64,
    /// Global physical offset just past the last record.
    pub end_phys: i64,
    pub count: usize,
    pub store_timestamp_ms: i64,
}

/// The outcome of a queue read, RocketMQ's GetMessageStatus (§8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStatus {
    Found,
    NoMatchedMessage,
    NoMatchedLogicQueue,
    NoMessageInQueue,
    OffsetTooSmall,
    OffsetOverflowOne,
    OffsetOverflowBadly,
    MessageWasRemoving,
    OffsetFoundNull,
}

#[derive(Debug, Clone)]
pub struct QueueRead {
    pub status: ReadStatus,
    /// Stored records, ready to concatenate into a pull response body.
    pub messages: Vec<Bytes>,
    pub next_offset: u64,
    pub min_offset: u64,
    pub max_offset: u64,
}

#[derive(Debug, Clone, Default)]
pub struct StoreStats {
    pub write_pos: u64,
    pub flushed: u64,
    pub min_offset: u64,
    pub cache_start: u64,
    pub cache_bytes: u64,
    pub appended_records: u64,
    pub cache_hit_reads: u64,
    pub disk_reads: u64,
    pub queues: usize,
    pub poisoned: Option<String>,
    /// Set once a consume-queue, index or checkpoint write failed.
    pub checkpoint_poisoned: Option<String>,
}

/// Keeps a record when it accepts the record's properties string.
pub type RecordFilter<'a> = dyn Fn(&[u8]) -> bool + 'a;

type TopicQueues = BTreeMap<i32, Rc<ConsumeQueue>>;

pub struct ShardStore {
    shard: u8,
    cfg: Rc<StoreConfig>,
    env: Rc<dyn Environment>,
    cq_dir: PathBuf,
    pub(crate) log: CommitLog,
    pub(crate) index: Index,
    queues: RefCell<HashMap<Box<str>, TopicQueues>>,
    checkpoint: RefCell<Option<CheckpointFile>>,
    /// Why checkpoints stopped (see `write_checkpoint`).
    checkpoint_poisoned: RefCell<Option<String>>,
    stopping: Cell<bool>,
    /// Advanced to 1 at shutdown; background tasks sleep on it.
    stop: Watermark,
    tasks: RefCell<Vec<glommio::Task<()>>>,
    appended_records: Cell<u64>,
    cache_hit_reads: Cell<u64>,
    disk_reads: Cell<u64>,
    recovery: RefCell<RecoveryReport>,
    epochs: RefCell<crate::epoch::EpochFile>,
}

/// A deadline that never comes, for waits bounded by other means.
fn far_future() -> std::time::Instant {
    std::time::Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// Makes glommio classify the store's device correctly: its io-poll probe
/// reads the first block of the first file it opens, and an empty file
/// answers that read with success, so a device without polling would be
/// taken for one with it and every later read would fail (EOPNOTSUPP).
async fn prime_device_probe(dir: &std::path::Path) -> Result<()> {
    let path = dir.join(".device-probe");
    std::fs::write(&path, vec![0u8; crate::config::BLOCK_BYTES as usize])
        .map_err(|e| StoreError::io(format!("writing {}", path.display()), e))?;
    let opened = glommio::io::DmaFile::open(&path).await;
    let _ = std::fs::remove_file(&path);
    let f = opened.map_err(|e| StoreError::glommio(format!("opening {}", path.display()), e))?;
    let _ = f.close().await;
    Ok(())
}

impl ShardStore {
    /// Opens (recovering) the store of `shard` and starts its background
    /// tasks. Must run on the shard's glommio executor.
    pub async fn open(
        cfg: StoreConfig,
        shard: u8,
        env: Rc<dyn Environment>,
    ) -> Result<Rc<ShardStore>> {
        cfg.validate()?;
        let mut cfg = cfg;
        // glommio opens directories by absolute path only (a relative one
        // fails with EBADF when the new segment's directory is synced).
        cfg.root_dir = std::path::absolute(&cfg.root_dir)
            .map_err(|e| StoreError::io(format!("resolving {}", cfg.root_dir.display()), e))?;
        let cfg = Rc::new(cfg);
        let shard_dir = cfg.root_dir.join(format!("shard-{shard}"));
        std::fs::create_dir_all(&shard_dir)
            .map_err(|e| StoreError::io(format!("creating {}", shard_dir.display()), e))?;
        prime_device_probe(&shard_dir).await?;
        let log =
            CommitLog::open(shard, shard_dir.join("commitlog"), cfg.clone(), env.clone()).await?;
        let log_min = to_global(shard, log.min_offset());
        let index = Index::open(
            shard_dir.join("index"),
            cfg.index_slots,
            cfg.index_entries,
            log_min,
        )
        .await?;
        let checkpoint = CheckpointFile::open(shard_dir.join("checkpoint")).await?;
        let epochs = crate::epoch::EpochFile::open(&shard_dir)?;
        let cq_dir = shard_dir.join("consumequeue");
        let store = Rc::new(ShardStore {
            shard,
            cfg: cfg.clone(),
            env,
            cq_dir,
            log,
            index,
            queues: RefCell::new(HashMap::new()),
            checkpoint: RefCell::new(Some(checkpoint)),
            checkpoint_poisoned: RefCell::new(None),
            stopping: Cell::new(false),
            stop: Watermark::new(0),
            tasks: RefCell::new(Vec::new()),
            appended_records: Cell::new(0),
            cache_hit_reads: Cell::new(0),
            disk_reads: Cell::new(0),
            recovery: RefCell::new(RecoveryReport::default()),
            epochs: RefCell::new(epochs),
        });
        store.load_queues()?;
        let last_cp = store.checkpoint.borrow().as_ref().and_then(|c| c.last());
        let report = recovery::recover(&store, last_cp).await?;
        *store.recovery.borrow_mut() = report;
        // Queues whose first file starts below the live log (retention
        // deleted records of it, or a slave was seeded mid-log) begin at
        // their first live unit, not at the file's start.
        if store.log.min_offset() > 0 {
            let log_min = to_global(shard, store.log.min_offset());
            for q in store.all_queues() {
                q.correct_min(log_min).await?;
            }
        }
        store.write_checkpoint().await?;
        store.start_tasks();
        Ok(store)
    }

    fn load_queues(&self) -> Result<()> {
        let rd = match std::fs::read_dir(&self.cq_dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(StoreError::io(
                    format!("listing {}", self.cq_dir.display()),
                    e,
                ))
            }
        };
        let mut queues = self.queues.borrow_mut();
        for topic_dir in rd.flatten() {
            let Some(topic) = topic_dir.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !valid_topic(&topic) {
                continue;
            }
            let Ok(qrd) = std::fs::read_dir(topic_dir.path()) else {
                continue;
            };
            for qdir in qrd.flatten() {
                let Some(qid) = qdir
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<i32>().ok())
                else {
                    continue;
                };
                let q = ConsumeQueue::open(
                    qdir.path(),
                    self.cfg.cq_entries_per_file,
                    self.cfg.cq_tail_entries,
                )?;
                queues
                    .entry(topic.clone().into_boxed_str())
                    .or_default()
                    .insert(qid, Rc::new(q));
            }
        }
        Ok(())
    }

    pub fn shard(&self) -> u8 {
        self.shard
    }

    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    pub fn recovery_report(&self) -> RecoveryReport {
        self.recovery.borrow().clone()
    }

    pub(crate) fn all_queues(&self) -> Vec<Rc<ConsumeQueue>> {
        self.queues
            .borrow()
            .values()
            .flat_map(|t| t.values().cloned())
            .collect()
    }

    fn queue(&self, topic: &str, queue_id: i32) -> Option<Rc<ConsumeQueue>> {
        self.queues.borrow().get(topic)?.get(&queue_id).cloned()
    }

    pub(crate) fn queue_or_create(&self, topic: &str, queue_id: i32) -> Result<Rc<ConsumeQueue>> {
        if let Some(q) = self.queue(topic, queue_id) {
            return Ok(q);
        }
        let dir = self.cq_dir.join(topic).join(queue_id.to_string());
        let q = Rc::new(ConsumeQueue::open(
            dir,
            self.cfg.cq_entries_per_file,
            self.cfg.cq_tail_entries,
        )?);
        self.queues
            .borrow_mut()
            .entry(topic.into())
            .or_default()
            .insert(queue_id, q.clone());
        Ok(q)
    }

    /// Appends a batch of messages to one queue. With `Durability::Synced`
    /// the future resolves only once a write and fdatasync cover the batch.
    pub async fn append(
        &self,
        topic: &str,
        queue_id: i32,
        drafts: &[MessageDraft<'_>],
        durability: Durability,
    ) -> Result<Appended> {
        if self.stopping.get() {
            return Err(StoreError::ShuttingDown);
        }
        if !valid_topic(topic) {
            return Err(StoreError::IllegalMessage(format!(
                "invalid topic name {topic:?}"
            )));
        }
        if !(0..=MAX_QUEUE_ID).contains(&queue_id) {
            return Err(StoreError::IllegalMessage(format!(
                "queue id {queue_id} out of range"
            )));
        }
        if drafts.is_empty() {
            return Err(StoreError::IllegalMessage("empty batch".into()));
        }
        let fmt = self.cfg.record_format();
        let mut total = 0u64;
        for d in drafts {
            record::check(topic, d, self.cfg.max_message_bytes, &fmt)
                .map_err(StoreError::IllegalMessage)?;
            total += record::encoded_len(topic, d, &fmt) as u64;
        }
        if total + record::BLANK_HEADER_BYTES as u64 > self.cfg.segment_bytes {
            return Err(StoreError::IllegalMessage(format!(
                "batch of {total} bytes does not fit a {}-byte segment",
                self.cfg.segment_bytes
            )));
        }
        let q = self.queue_or_create(topic, queue_id)?;
        let first_queue_offset = q.max() as i64;
        let now = self.env.now_ms();
        let placed = self
            .log
            .append(topic, queue_id, first_queue_offset, drafts, total, now)?;
        let mut pos = placed.first;
        for d in drafts {
            let size = record::encoded_len(topic, d, &fmt) as u64;
            let phys = to_global(self.shard, pos);
            q.push(CqUnit {
                phys,
                size: size as i32,
                tags_code: properties::cq_tags_code(topic.as_bytes(), d.properties),
            });
            self.index.add(
                topic.as_bytes(),
                properties::index_keys(d.properties),
                phys,
                to_global(self.shard, pos + size),
                now,
            );
            pos += size;
        }
        self.appended_records
            .set(self.appended_records.get() + drafts.len() as u64);
        let appended = Appended {
            first_queue_offset,
            first_phys: to_global(self.shard, placed.first),
            end_phys: to_global(self.shard, placed.end),
            count: drafts.len(),
            store_timestamp_ms: now,
        };
        if durability == Durability::Synced {
            match self.log.wait_durable(placed.end).await {
                Ok(()) => {}
                Err(StoreError::FlushTimeout { timeout_ms, .. }) => {
                    return Err(StoreError::FlushTimeout {
                        timeout_ms,
                        appended: Some(appended),
                    })
                }
                Err(e) => return Err(e),
            }
        }
        Ok(appended)
    }

    /// In-shard end of the log: where the next append lands.
    pub fn log_end(&self) -> u64 {
        self.log.write_pos()
    }

    /// Replication (slave side): makes an empty store's log begin at
    /// in-shard `start` (a segment start), where the master's oldest live
    /// segment begins, so that a new slave can follow a master whose
    /// retention has deleted the log's beginning.
    pub async fn seed_empty_at(&self, start: u64) -> Result<()> {
        let empty = self.log.segments().is_empty()
            && self.log.write_pos() == 0
            && self.queues.borrow().is_empty();
        if !empty {
            return Err(StoreError::IllegalMessage(
                "only an empty store can be seeded at another offset".into(),
            ));
        }
        if !start.is_multiple_of(self.cfg.segment_bytes) {
            return Err(StoreError::IllegalMessage(format!(
                "{start} is not a segment start"
            )));
        }
        self.log.resume_at(start).await?;
        self.write_checkpoint().await
    }

    /// In-shard offset where the tail cache starts: older records are
    /// read from the device.
    pub fn cache_start(&self) -> u64 {
        self.log.cache_start()
    }

    /// In-shard start of the live log.
    pub fn log_start(&self) -> u64 {
        self.log.min_offset()
    }

    /// In-shard end of what is written to the segment files (a process
    /// crash keeps it; a power loss may not, until `log_flushed`).
    pub fn log_written(&self) -> u64 {
        self.log.written()
    }

    /// In-shard end of what is synced to the device.
    pub fn log_flushed(&self) -> u64 {
        self.log.flushed()
    }

    /// Replication (master side): the log's bytes from in-shard `pos` for
    /// a slave (see `CommitLog::read_for_replica`).
    pub async fn read_for_replica(&self, pos: u64, max: usize) -> Result<crate::ReplicaRead> {
        self.log.read_for_replica(pos, max).await
    }

    /// Waits up to `timeout` for the written log to grow past in-shard `pos`.
    pub async fn wait_written(&self, pos: u64, timeout: Duration) -> bool {
        if self.log.written() > pos {
            return true;
        }
        glommio::timer::timeout(timeout, async {
            Ok(self.log.wait_written(pos, far_future()).await)
        })
        .await
        .unwrap_or(false)
    }

    /// Replication (slave side): appends the whole records at the front of
    /// `buf`, the master's log bytes from in-shard `at` (this log's end),
    /// at the same offsets, and dispatches their consume-queue units and
    /// index keys as recovery would. Every record is checked as recovery
    /// checks it; a blank end-of-segment marker closes the segment here
    /// too. Consumed bytes are split off `buf`; a trailing partial record
    /// stays for the next call. After a blank marker the log ends at the
    /// segment end, past the bytes consumed: the caller drops the master's
    /// filler up to `log_end()`. `on_queue` hears each queue that grew.
    pub fn append_replicated(
        &self,
        at: u64,
        buf: &mut bytes::BytesMut,
        on_queue: &mut dyn FnMut(&str, i32),
    ) -> Result<usize> {
        if self.stopping.get() {
            return Err(StoreError::ShuttingDown);
        }
        // Checked before anything is taken from `buf`, so a refusal (a full
        // write buffer) leaves it for the next call.
        self.log.check_replicated(at)?;
        let max_record = self.cfg.max_record_bytes() as usize;
        let seg_end = self.log.segment_start(at) + self.cfg.segment_bytes;
        let mut pos = at;
        let mut n = 0usize;
        let mut records = 0u64;
        loop {
            let rest = &buf[n..];
            if rest.len() < record::BLANK_HEADER_BYTES {
                break;
            }
            match record::head(rest) {
                Ok(record::Head::Record(size)) if size <= max_record && rest.len() < size => break,
                Ok(record::Head::Blank(_)) if n == 0 => {
                    self.log.append_replicated(at, Bytes::new())?;
                    let consumed = buf.len().min((seg_end - at) as usize);
                    let _ = buf.split_to(consumed);
                    return Ok(consumed);
                }
                // A blank after records: file the records first.
                Ok(record::Head::Blank(_)) => break,
                _ => {}
            }
            let v = match recovery::validate(
                rest,
                to_global(self.shard, pos),
                max_record,
                self.cfg.record_crc,
            ) {
                recovery::Step::Record(v) => v,
                recovery::Step::Corrupt(why) => {
                    return Err(StoreError::Corruption {
                        location: format!("replicated record at {pos}"),
                        reason: why,
                    })
                }
                recovery::Step::End | recovery::Step::Blank => {
                    return Err(StoreError::Corruption {
                        location: format!("replicated record at {pos}"),
                        reason: "zeros where a record should start".into(),
                    })
                }
            };
            let size = v.total_size();
            if pos + size as u64 > seg_end {
                return Err(StoreError::Corruption {
                    location: format!("replicated record at {pos}"),
                    reason: format!("runs past the segment end {seg_end}"),
                });
            }
            pos += size as u64;
            n += size;
            records += 1;
        }
        if n == 0 {
            return Ok(0);
        }
        let run = buf.split_to(n).freeze();
        self.log.append_replicated(at, run.clone())?;
        let mut pos = at;
        let mut i = 0usize;
        while i < run.len() {
            let v = RecordView::parse(&run[i..]).expect("checked above");
            let size = v.total_size();
            let phys = to_global(self.shard, pos);
            let topic = std::str::from_utf8(v.topic()).unwrap_or_default();
            let q = self.queue_or_create(topic, v.queue_id())?;
            let qo = v.queue_offset() as u64;
            if qo > 0 && q.max() == 0 && q.min() == 0 && self.log.min_offset() > 0 {
                // Seeded mid-log: the queue begins where the master's
                // oldest live record of it is.
                q.start_at(qo);
            }
            if qo >= q.max() {
                q.pad_to(qo);
                q.push(CqUnit {
                    phys,
                    size: size as i32,
                    tags_code: v.tags_code(),
                });
                on_queue(topic, v.queue_id());
            } else {
                tracing::warn!(
                    shard = self.shard,
                    topic,
                    queue = v.queue_id(),
                    "replicated record repeats queue offset {qo} (queue is at {})",
                    q.max()
                );
            }
            self.index.add(
                v.topic(),
                properties::index_keys(v.properties()),
                phys,
                to_global(self.shard, pos + size as u64),
                v.store_timestamp_ms(),
            );
            pos += size as u64;
            i += size;
        }
        self.appended_records
            .set(self.appended_records.get() + records);
        Ok(n)
    }

    pub fn min_offset(&self, topic: &str, queue_id: i32) -> u64 {
        self.queue(topic, queue_id).map_or(0, |q| q.min())
    }

    pub fn max_offset(&self, topic: &str, queue_id: i32) -> u64 {
        self.queue(topic, queue_id).map_or(0, |q| q.max())
    }

    /// Topics that have at least one consume queue here, with their queue ids.
    pub fn queues(&self) -> Vec<(String, Vec<i32>)> {
        self.queues
            .borrow()
            .iter()
            .map(|(t, qs)| (t.to_string(), qs.keys().copied().collect()))
            .collect()
    }

    fn own(&self, phys: i64) -> Option<u64> {
        let (shard, pos) = from_global(phys);
        (shard == self.shard).then_some(pos)
    }

    /// Reads messages of one queue from `offset`: at most `max_msgs`, about
    /// `max_bytes` (the first message always fits), keeping only units whose
    /// tags code is in `tag_codes` when given.
    pub async fn read_queue(
        &self,
        topic: &str,
        queue_id: i32,
        offset: u64,
        max_msgs: usize,
        max_bytes: usize,
        tag_codes: Option<&[i64]>,
    ) -> Result<QueueRead> {
        self.read_queue_filtered(
            topic, queue_id, offset, max_msgs, max_bytes, tag_codes, None,
        )
        .await
    }

    /// `read_queue` that also keeps only records whose properties
    /// `record_filter` accepts (SQL92 subscriptions). Filtered reads go in
    /// rounds, so a selective filter still fills the batch within the scan
    /// limit instead of returning one match per pull.
    #[allow(clippy::too_many_arguments)]
    pub async fn read_queue_filtered(
        &self,
        topic: &str,
        queue_id: i32,
        offset: u64,
        max_msgs: usize,
        max_bytes: usize,
        tag_codes: Option<&[i64]>,
        record_filter: Option<&RecordFilter<'_>>,
    ) -> Result<QueueRead> {
        let mut out = QueueRead {
            status: ReadStatus::NoMatchedLogicQueue,
            messages: Vec::new(),
            next_offset: 0,
            min_offset: 0,
            max_offset: 0,
        };
        let Some(q) = self.queue(topic, queue_id) else {
            return Ok(out);
        };
        let (min, max) = (q.min(), q.max());
        out.min_offset = min;
        out.max_offset = max;
        let (status, next) = match offset {
            _ if max == 0 => (ReadStatus::NoMessageInQueue, 0),
            o if o < min => (ReadStatus::OffsetTooSmall, min),
            o if o == max => (ReadStatus::OffsetOverflowOne, o),
            o if o > max => (ReadStatus::OffsetOverflowBadly, max),
            _ => (ReadStatus::Found, offset),
        };
        out.status = status;
        out.next_offset = next;
        if status != ReadStatus::Found {
            return Ok(out);
        }
        let max_msgs = max_msgs.max(1);
        let max_bytes = max_bytes.clamp(100, PULL_MAX_BYTES);
        let log_min = self.log.min_offset();
        // (in-shard position, size, queue offset) of the records to read.
        let mut wanted: Vec<(u64, u32)> = Vec::new();
        let mut wanted_at: Vec<u64> = Vec::new();
        let mut bytes = 0usize;
        let mut cursor = offset;
        let (mut removed, mut holes, mut missing) = (0usize, 0usize, 0usize);
        let scan_limit = offset + PULL_MAX_SCAN_UNITS.max(max_msgs) as u64;
        'rounds: while cursor < max && cursor < scan_limit {
            wanted.clear();
            wanted_at.clear();
            let mut planned = bytes;
            let mut exhausted = false;
            'scan: while cursor < max && cursor < scan_limit {
                let units = q
                    .read(cursor, (scan_limit.min(max) - cursor) as usize)
                    .await?;
                if units.is_empty() {
                    exhausted = true;
                    break 'scan;
                }
                for u in units {
                    let at = cursor;
                    cursor += 1;
                    let Some(pos) = self.own(u.phys).filter(|_| !u.is_hole()) else {
                        holes += 1;
                        continue;
                    };
                    if pos < log_min {
                        removed += 1;
                        continue;
                    }
                    if tag_codes.is_some_and(|codes| !codes.contains(&u.tags_code)) {
                        continue;
                    }
                    wanted.push((pos, u.size as u32));
                    wanted_at.push(at);
                    planned += u.size as usize;
                    if out.messages.len() + wanted.len() >= max_msgs || planned >= max_bytes {
                        break 'scan;
                    }
                }
            }
            let cache_start = self.log.cache_start();
            for (pos, _) in &wanted {
                if *pos >= cache_start {
                    self.cache_hit_reads.set(self.cache_hit_reads.get() + 1);
                } else {
                    self.disk_reads.set(self.disk_reads.get() + 1);
                }
            }
            let read = self.log.read_many(&wanted).await?;
            for ((rec, at), (pos, size)) in read.into_iter().zip(&wanted_at).zip(&wanted) {
                let Some(rec) = rec else {
                    missing += 1;
                    continue;
                };
                let phys = to_global(self.shard, *pos);
                if !record::matches_unit(&rec, *size, queue_id, *at as i64, phys) {
                    return Err(StoreError::Corruption {
                        location: format!("{topic}/{queue_id} offset {at}"),
                        reason: format!(
                            "its unit names {size} bytes at {phys}, which hold another record"
                        ),
                    });
                }
                if let Some(keep) = record_filter {
                    let props = RecordView::parse(&rec).map_or(&[][..], |v| v.properties());
                    if !keep(props) {
                        continue;
                    }
                }
                bytes += rec.len();
                out.messages.push(rec);
                if out.messages.len() >= max_msgs || bytes >= max_bytes {
                    // Units read past this one were not examined for the
                    // client: the next pull starts right after it.
                    cursor = at + 1;
                    break 'rounds;
                }
            }
            if record_filter.is_none() || exhausted {
                break;
            }
        }
        out.next_offset = cursor;
        out.status = if !out.messages.is_empty() {
            ReadStatus::Found
        } else if removed > 0 || missing > 0 {
            ReadStatus::MessageWasRemoving
        } else if holes > 0 && holes == (cursor - offset) as usize {
            ReadStatus::OffsetFoundNull
        } else {
            ReadStatus::NoMatchedMessage
        };
        Ok(out)
    }

    /// Up to `max` consume-queue units of a queue from `from` (fewer at a
    /// file boundary; none when the queue does not exist here). The staging
    /// services scan their queues with this.
    pub async fn units(
        &self,
        topic: &str,
        queue_id: i32,
        from: u64,
        max: usize,
    ) -> Result<Vec<CqUnit>> {
        match self.queue(topic, queue_id) {
            Some(q) => q.read(from, max).await,
            None => Ok(Vec::new()),
        }
    }

    /// The record at global physical offset `phys`, if it is live here.
    pub async fn read_message(&self, phys: i64) -> Result<Option<Bytes>> {
        let Some(pos) = self.own(phys) else {
            return Ok(None);
        };
        let Some(head) = self.log.read(pos, 8).await? else {
            return Ok(None);
        };
        let size = match record::head(&head) {
            Ok(record::Head::Record(n)) => n,
            _ => return Ok(None),
        };
        let Some(rec) = self.log.read(pos, size).await? else {
            return Ok(None);
        };
        Ok(RecordView::parse(&rec).is_ok().then_some(rec))
    }

    /// Messages of `topic` whose KEYS contain `key` or whose UNIQ_KEY is
    /// `key`, stored within [begin_ms, end_ms], newest first, at most `max`.
    pub async fn query_by_key(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        begin_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Bytes>> {
        let candidates = self
            .index
            .query(
                topic.as_bytes(),
                key.as_bytes(),
                max.saturating_mul(QUERY_OVERSCAN),
                begin_ms,
                end_ms,
            )
            .await?;
        let mut out = Vec::new();
        for phys in candidates {
            if out.len() >= max {
                break;
            }
            let Some(rec) = self.read_message(phys).await? else {
                continue;
            };
            let matches = RecordView::parse(&rec).is_ok_and(|v| {
                v.topic() == topic.as_bytes()
                    && properties::index_keys(v.properties()).any(|k| k == key.as_bytes())
            });
            if matches {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Store time of the message at `offset` in a queue.
    pub async fn store_time(&self, topic: &str, queue_id: i32, offset: u64) -> Result<Option<i64>> {
        let Some(q) = self.queue(topic, queue_id) else {
            return Ok(None);
        };
        let Some(u) = q.unit(offset).await? else {
            return Ok(None);
        };
        if u.is_hole() {
            return Ok(None);
        }
        let Some(rec) = self.read_message(u.phys).await? else {
            return Ok(None);
        };
        Ok(RecordView::parse(&rec).ok().map(|v| v.store_timestamp_ms()))
    }

    /// First queue offset whose message was stored at or after `ts_ms`
    /// (max offset when none was): SEARCH_OFFSET_BY_TIMESTAMP and rewind.
    pub async fn offset_by_time(&self, topic: &str, queue_id: i32, ts_ms: i64) -> Result<u64> {
        let Some(q) = self.queue(topic, queue_id) else {
            return Ok(0);
        };
        let (mut lo, mut hi) = (q.min(), q.max());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.store_time(topic, queue_id, mid).await? {
                Some(t) if t >= ts_ms => hi = mid,
                // Unreadable units (deleted log) count as older.
                _ => lo = mid + 1,
            }
        }
        Ok(lo)
    }

    /// Forgets a topic's consume queues and their files. Its records stay
    /// in the log until retention removes the segments.
    /// Removes a topic's consume queues, at once and for good: a checkpoint
    /// in flight skips them, and `checkpoint_now` afterwards keeps recovery
    /// from rebuilding them out of the topic's records in the log.
    pub fn delete_topic(&self, topic: &str) -> Result<bool> {
        let Some(queues) = self.queues.borrow_mut().remove(topic) else {
            return Ok(false);
        };
        for q in queues.values() {
            q.mark_deleted();
        }
        let dir = self.cq_dir.join(topic);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(StoreError::io(format!("removing {}", dir.display()), e)),
        }
    }

    pub fn stats(&self) -> StoreStats {
        StoreStats {
            write_pos: self.log.write_pos(),
            flushed: self.log.flushed(),
            min_offset: self.log.min_offset(),
            cache_start: self.log.cache_start(),
            cache_bytes: self.log.cache_bytes(),
            appended_records: self.appended_records.get(),
            cache_hit_reads: self.cache_hit_reads.get(),
            disk_reads: self.disk_reads.get(),
            queues: self.queues.borrow().values().map(|t| t.len()).sum(),
            poisoned: self.log.poisoned(),
            checkpoint_poisoned: self.checkpoint_poisoned.borrow().clone(),
        }
    }

    /// Flushes everything appended so far and waits for it to be durable.
    pub async fn flush(&self) -> Result<()> {
        self.log.flush().await.map(|_| ())
    }

    /// Persists consume queues and sealed indexes, then advances the checkpoint.
    /// Makes consume queues and sealed indexes durable, then records how
    /// far they are. A failed write or sync of any of them stops
    /// checkpoints until a restart: after a failed fsync the kernel may
    /// have dropped the dirty pages and a later fsync can succeed without
    /// them (the log's poisoning rule, for derived files). The checkpoint
    /// then stays where it was, and recovery rebuilds everything past it
    /// from the log, which is the truth.
    /// Flushes the log and writes a checkpoint now, so recovery starts past
    /// everything appended so far.
    pub async fn checkpoint_now(&self) -> Result<()> {
        self.log.flush().await?;
        self.write_checkpoint().await
    }

    pub(crate) async fn write_checkpoint(&self) -> Result<()> {
        if let Some(why) = self.checkpoint_poisoned.borrow().clone() {
            return Err(StoreError::Poisoned(why));
        }
        let r = self.try_checkpoint().await;
        match &r {
            // A write that found no space wrote nothing: the next
            // checkpoint tries again, and the checkpoint stays where it was.
            Err(StoreError::DiskFull(why)) => {
                tracing::warn!(shard = self.shard, "checkpoint postponed: {why}");
            }
            Err(e) => {
                let why = format!("checkpoints stopped until restart: {e}");
                tracing::error!(shard = self.shard, "{why}");
                *self.checkpoint_poisoned.borrow_mut() = Some(why);
            }
            Ok(()) => {}
        }
        r
    }

    async fn try_checkpoint(&self) -> Result<()> {
        // Held for the whole checkpoint: one at a time, and none while the
        // tail is being cut (`truncate_tail`).
        let Some(mut file) = self.checkpoint.borrow_mut().take() else {
            return Ok(());
        };
        let r = self.checkpoint_with(&mut file).await;
        *self.checkpoint.borrow_mut() = Some(file);
        r
    }

    async fn checkpoint_with(&self, file: &mut CheckpointFile) -> Result<()> {
        let dispatched = self.log.write_pos();
        let flushed = self.log.flushed();
        assert!(
            flushed <= dispatched,
            "durable mark {flushed} past the log's end {dispatched}"
        );
        for q in self.all_queues() {
            q.persist(&*self.env).await?;
            q.sync(&*self.env).await?;
        }
        self.index.persist(&*self.env).await?;
        let cp = Checkpoint {
            seq: 0,
            log_flushed: flushed,
            cq_durable: dispatched.min(flushed),
            written_at_ms: self.env.now_ms(),
        };
        match self.env.failpoint(IoOp::Checkpoint) {
            Ok(()) => file.write(cp).await,
            Err(e) => Err(StoreError::io("writing the checkpoint", e)),
        }
    }

    /// The master epochs of this shard's log (see `epoch`).
    pub fn epochs(&self) -> Vec<crate::EpochEntry> {
        self.epochs.borrow().entries().to_vec()
    }

    pub fn last_epoch(&self) -> i32 {
        self.epochs.borrow().last_epoch()
    }

    /// Takes a master's epoch history (a slave, after agreeing with it).
    pub fn set_epochs(&self, entries: Vec<crate::EpochEntry>) -> Result<()> {
        self.epochs.borrow_mut().replace(entries)
    }

    /// This log becomes the master's of `epoch`: everything appended so far
    /// is made durable first, so the epoch's start is where the log really
    /// ends after any crash, then the entry is recorded.
    pub async fn begin_epoch(&self, epoch: i32) -> Result<u64> {
        self.log.flush().await?;
        let end = self.log.write_pos();
        self.epochs.borrow_mut().begin(epoch, end)?;
        Ok(end)
    }

    /// Cuts the log back to in-shard `at`, a record boundary: a replica's
    /// tail that its new master never had. Consume queues and the key
    /// index forget what lies past it (stale index entries left in a file
    /// that spans the cut are filtered by `query_by_key`, which checks
    /// every record it returns). The caller guarantees that nothing
    /// appends meanwhile (a slave shard between two streams).
    pub async fn truncate_tail(&self, at: u64) -> Result<()> {
        let end = self.log.write_pos();
        if at >= end {
            return Ok(());
        }
        if at < self.log.min_offset() {
            return Err(StoreError::Corruption {
                location: format!("shard {}", self.shard),
                reason: format!(
                    "cannot cut the log to {at}: it starts at {}",
                    self.log.min_offset()
                ),
            });
        }
        // Everything buffered is written and every queue unit and index
        // persisted, so no later write lands past the cut; the checkpoint
        // file is held so none records an end past `at` between the cuts.
        self.log.flush().await?;
        let mut file = loop {
            if let Some(f) = self.checkpoint.borrow_mut().take() {
                break f;
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
        };
        let r = async {
            self.checkpoint_with(&mut file).await?;
            // Recovery must never start past the cut: a crash between the
            // cuts below would otherwise resume the log beyond its end,
            // with zeros in between, and keep units pointing into them.
            let cp = Checkpoint {
                seq: 0,
                log_flushed: self.log.flushed().min(at),
                cq_durable: at,
                written_at_ms: self.env.now_ms(),
            };
            file.write(cp).await?;
            tracing::warn!(
                shard = self.shard,
                "cutting the log from {end} back to {at}: bytes the new master never had"
            );
            let bound = to_global(self.shard, at);
            self.log.resume_at(at).await?;
            self.env
                .failpoint(IoOp::Truncate)
                .map_err(|e| StoreError::io("cutting the queues", e))?;
            for q in self.all_queues() {
                q.truncate_from(bound).await?;
            }
            self.index.truncate_from(bound).await?;
            self.checkpoint_with(&mut file).await
        }
        .await;
        *self.checkpoint.borrow_mut() = Some(file);
        r
    }

    fn start_tasks(self: &Rc<Self>) {
        let mut tasks = self.tasks.borrow_mut();
        let s = self.clone();
        tasks.push(glommio::spawn_local(async move { s.flusher_loop().await }));
        let s = self.clone();
        tasks.push(glommio::spawn_local(
            async move { s.checkpoint_loop().await },
        ));
        let s = self.clone();
        tasks.push(glommio::spawn_local(
            async move { s.retention_loop().await },
        ));
        let s = self.clone();
        tasks.push(glommio::spawn_local(async move { s.timeout_loop().await }));
        let s = self.clone();
        tasks.push(glommio::spawn_local(async move {
            while !s.stopping.get() {
                let stop = async {
                    let _ = s.stop.wait_for(1, far_future()).await;
                };
                futures_lite::future::or(s.log.allocate_next(), stop).await;
            }
        }));
    }

    async fn flusher_loop(&self) {
        while !self.stopping.get() {
            self.log.wait_for_work().await;
            // Buffered appends can wait for the tasks already runnable to
            // add theirs: one round instead of many small ones, each of
            // which would rewrite the partial last block (measured: -20 %
            // broker CPU per send against writing at once). A synced
            // append is not kept waiting.
            if !self.log.sync_waiting() {
                futures_lite::future::yield_now().await;
            }
            match self.log.flush_round().await {
                Ok(()) | Err(StoreError::DiskFull(_)) => {}
                Err(StoreError::Poisoned(_)) => {
                    // Nothing more can be written; keep the task parked
                    // until shutdown rather than spinning.
                    self.pause(Duration::from_millis(self.cfg.flush_interval_ms))
                        .await;
                }
                Err(e) => tracing::warn!(shard = self.shard, "flush failed: {e}"),
            }
        }
    }

    /// Sleeps for `d`, or less if shutdown begins.
    async fn pause(&self, d: Duration) {
        let _ = glommio::timer::timeout(d, async {
            let _ = self.stop.wait_for(1, far_future()).await;
            Ok(())
        })
        .await;
    }

    /// Ends synced appends' waits at their deadline: a tenth of
    /// `sync_flush_timeout_ms` late at most.
    async fn timeout_loop(&self) {
        let tick = Duration::from_millis((self.cfg.sync_flush_timeout_ms / 10).max(1));
        while !self.stopping.get() {
            self.pause(tick).await;
            self.log.expire_waits();
        }
    }

    async fn checkpoint_loop(&self) {
        let interval = Duration::from_millis(self.cfg.checkpoint_interval_ms);
        while !self.stopping.get() {
            self.pause(interval).await;
            if self.stopping.get() {
                break;
            }
            if let Err(e) = self.write_checkpoint().await {
                tracing::warn!(shard = self.shard, "checkpoint failed: {e}");
            }
        }
    }

    async fn retention_loop(&self) {
        let interval = Duration::from_millis(self.cfg.retention_check_interval_ms);
        while !self.stopping.get() {
            if let Err(e) = retention::run_once(self).await {
                tracing::warn!(shard = self.shard, "retention pass failed: {e}");
            }
            self.pause(interval).await;
        }
    }

    /// Runs one retention pass now (tests, admin).
    pub async fn run_retention(&self) -> Result<usize> {
        retention::run_once(self).await
    }

    pub(crate) fn env(&self) -> &dyn Environment {
        &*self.env
    }

    /// Stops taking writes, flushes and syncs everything, persists consume
    /// queues and the checkpoint, and stops the background tasks.
    pub async fn shutdown(&self) -> Result<()> {
        if self.stopping.replace(true) {
            return Ok(());
        }
        self.stop.advance(1);
        self.log.kick();
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.borrow_mut());
        for t in tasks {
            t.await;
        }
        let flushed = self.log.flush().await;
        let cp = self.write_checkpoint().await;
        flushed.map(|_| ())?;
        cp
    }
}
