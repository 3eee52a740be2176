//! Crash recovery: from the checkpoint, scan the commit log validating every
//! record (length, magic, field consistency, body CRC, physical offset),
//! truncate a torn or corrupt tail, and rebuild consume queues and the
//! active index past what the checkpoint and sealed index files cover.

use crate::checkpoint::Checkpoint;
use crate::consume_queue::CqUnit;
use crate::error::{Result, StoreError};
use crate::record::{self, Head, RecordView};
use crate::store::ShardStore;
use crate::{properties, to_global, valid_topic};

/// Bytes read per step of the scan (a larger record is read whole).
const SCAN_READ_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// In-shard offset the scan started from.
    pub scanned_from: u64,
    /// In-shard offset where the log now ends.
    pub end: u64,
    /// Records validated by the scan.
    pub records_scanned: u64,
    /// Units re-added to consume queues.
    pub units_rebuilt: u64,
    /// Where and why the log was cut, if it was.
    pub truncated: Option<(u64, String)>,
    /// Bytes the checkpoint had recorded as synced but the scan could not
    /// keep: non-zero means acknowledged data was lost to corruption.
    pub lost_synced_bytes: u64,
}

pub(crate) enum Step<'a> {
    /// A valid record, already parsed.
    Record(RecordView<'a>),
    /// Jump to the next segment.
    Blank,
    End,
    Corrupt(String),
}

pub(crate) fn validate(
    buf: &[u8],
    expect_phys: i64,
    max_record: usize,
    crc_required: bool,
) -> Step<'_> {
    let size = match record::head(buf) {
        Ok(Head::Empty) => return Step::End,
        Ok(Head::Blank(_)) => return Step::Blank,
        Ok(Head::Record(n)) if n <= max_record => n,
        Ok(Head::Record(n)) => {
            return Step::Corrupt(format!("record size {n} exceeds the largest possible"))
        }
        Err(e) => return Step::Corrupt(e.to_string()),
    };
    if buf.len() < size {
        return Step::Corrupt(format!("record of {size} bytes runs past the segment"));
    }
    let v = match RecordView::parse(buf) {
        Ok(v) => v,
        Err(e) => return Step::Corrupt(e.to_string()),
    };
    if let Err(e) = v
        .verify_crc()
        .and_then(|_| v.verify_record_crc(crc_required))
    {
        return Step::Corrupt(e.to_string());
    }
    if v.physical_offset() != expect_phys {
        return Step::Corrupt(format!(
            "record says it lives at {} (stale data from an earlier write?)",
            v.physical_offset()
        ));
    }
    let topic_ok = std::str::from_utf8(v.topic()).is_ok_and(valid_topic);
    if !topic_ok || v.queue_id() < 0 || v.queue_offset() < 0 {
        return Step::Corrupt("record names an impossible queue".into());
    }
    Step::Record(v)
}

pub(crate) async fn recover(store: &ShardStore, cp: Option<Checkpoint>) -> Result<RecoveryReport> {
    let log = &store.log;
    let shard = log.shard();
    let log_min = log.min_offset();
    let segment_bytes = log.segment_bytes();
    let cq_durable = cp.map_or(log_min, |c| c.cq_durable).max(log_min);
    let index_durable = crate::from_global(store.index.durable_end()).1.max(log_min);
    let start = cq_durable.min(index_durable);
    for q in store.all_queues() {
        q.truncate_from(to_global(shard, cq_durable)).await?;
    }

    let mut report = RecoveryReport {
        scanned_from: start,
        ..Default::default()
    };
    let max_record = store.config().max_record_bytes() as usize;
    let crc_required = store.config().record_crc;
    let mut pos = start;
    let mut rescanned = false;
    // Scan window: `buf` holds log bytes [buf_at, buf_at + buf.len()).
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_at = pos;
    loop {
        let Some(seg) = log.segment_for(pos) else {
            break;
        };
        let seg_end = seg.start + segment_bytes;
        // Make sure the window holds the head at `pos` and, when that is a
        // plausible record, all of it: at most one read for the head and
        // one for a record larger than a scan step.
        for _ in 0..2 {
            let need = needed_bytes(&buf, buf_at, pos, max_record);
            let have = if pos >= buf_at {
                (buf_at + buf.len() as u64).saturating_sub(pos)
            } else {
                0
            };
            if have >= need as u64 {
                break;
            }
            let len = ((seg_end - pos) as usize).min(SCAN_READ_BYTES.max(need));
            let r =
                seg.file.read_at(pos - seg.start, len).await.map_err(|e| {
                    StoreError::glommio(format!("reading {}", seg.path.display()), e)
                })?;
            buf.clear();
            buf.extend_from_slice(&r);
            buf_at = pos;
        }
        if pos < buf_at || ((pos - buf_at) as usize) + record::BLANK_HEADER_BYTES > buf.len() {
            break;
        }
        let at = (pos - buf_at) as usize;
        match validate(&buf[at..], to_global(shard, pos), max_record, crc_required) {
            Step::End => break,
            Step::Blank => {
                pos = seg_end;
                buf.clear();
                buf_at = pos;
            }
            // The checkpoint names the start of a record (the flusher
            // only ends rounds on one); if none is there, trust the log over
            // the checkpoint and scan its segment from the start, which is
            // always a record boundary, instead of cutting the log.
            Step::Corrupt(why) if pos == start && !rescanned && pos != log.segment_start(pos) => {
                tracing::error!(
                    shard,
                    "recovery: no record where the checkpoint points ({pos}: {why}); scanning the segment from its start"
                );
                rescanned = true;
                pos = log.segment_start(pos);
                report.scanned_from = pos;
                buf.clear();
                buf_at = pos;
            }
            Step::Corrupt(why) => {
                report.truncated = Some((pos, why));
                break;
            }
            Step::Record(v) => {
                let size = v.total_size();
                report.records_scanned += 1;
                let phys = to_global(shard, pos);
                let topic = std::str::from_utf8(v.topic()).unwrap_or_default();
                if pos >= cq_durable {
                    let q = store.queue_or_create(topic, v.queue_id())?;
                    let qo = v.queue_offset() as u64;
                    if qo >= q.max() {
                        if qo > q.max() {
                            tracing::warn!(
                                shard,
                                topic,
                                queue = v.queue_id(),
                                "consume queue gap {}..{qo}: filled with holes",
                                q.max()
                            );
                            q.pad_to(qo);
                        }
                        q.push(CqUnit {
                            phys,
                            size: size as i32,
                            tags_code: v.tags_code(),
                        });
                        report.units_rebuilt += 1;
                    }
                }
                if pos >= index_durable {
                    store.index.add(
                        v.topic(),
                        properties::index_keys(v.properties()),
                        phys,
                        to_global(shard, pos + size as u64),
                        v.store_timestamp_ms(),
                    );
                }
                pos += size as u64;
            }
        }
    }

    if let Some((at, why)) = &report.truncated {
        tracing::warn!(shard, "recovery truncates the commit log at {at}: {why}");
        if *at < cq_durable {
            for q in store.all_queues() {
                q.truncate_from(to_global(shard, *at)).await?;
            }
        }
    }
    if let Some(c) = cp {
        if c.log_flushed > pos {
            report.lost_synced_bytes = c.log_flushed - pos;
            tracing::error!(
                shard,
                "recovery lost {} bytes the checkpoint recorded as synced (corruption below the flushed offset)",
                report.lost_synced_bytes
            );
        }
    }
    report.end = pos;
    assert!(pos >= report.scanned_from, "recovery ended before it began");
    log.resume_at(pos).await?;
    assert_eq!(
        log.write_pos(),
        pos,
        "the log does not resume where recovery ended"
    );
    tracing::info!(shard, ?report, "recovered");
    Ok(report)
}

/// Bytes the scan window must hold from `pos` before judging it.
fn needed_bytes(buf: &[u8], buf_at: u64, pos: u64, max_record: usize) -> usize {
    let head_bytes = record::BLANK_HEADER_BYTES;
    if pos < buf_at {
        return head_bytes;
    }
    match buf.get((pos - buf_at) as usize..).map(record::head) {
        Some(Ok(Head::Record(n))) if n <= max_record => n,
        _ => head_bytes,
    }
}
