//! Retention: which commit-log segments to delete, and when writes must stop
//! because the disk is full. The decision is a pure function of the segments'
//! ages, the hour and the disk reading, so it is tested without waiting.

use std::time::UNIX_EPOCH;

use crate::config::StoreConfig;
use crate::error::Result;
use crate::store::ShardStore;
use crate::to_global;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentAge {
    pub(crate) start: u64,
    pub(crate) modified_ms: i64,
}

/// Segments to delete, oldest first. Only a prefix of the log can go (its
/// min offset must stay a single number), and never `active` or later.
pub(crate) fn plan(
    cfg: &StoreConfig,
    segments: &[SegmentAge],
    active: u64,
    now_ms: i64,
    hour: u32,
    used_ratio: f64,
) -> Vec<u64> {
    let reserved_ms = cfg.file_reserved_hours as i64 * 3_600_000;
    // Strictly above, as RocketMQ compares: a ratio of 1.0 turns it off.
    let time_to_delete =
        cfg.delete_when_hours.contains(&hour) || used_ratio > cfg.disk_max_used_ratio;
    let force = used_ratio > cfg.disk_force_clean_ratio;
    let mut out = Vec::new();
    for s in segments.iter().filter(|s| s.start < active) {
        if out.len() >= cfg.retention_max_segments_per_pass {
            break;
        }
        let expired = now_ms - s.modified_ms >= reserved_ms;
        if force || (expired && time_to_delete) {
            out.push(s.start);
        } else {
            break;
        }
    }
    out
}

/// One pass: read the disk, set or clear "disk full", delete what the plan
/// says, and move consume-queue min offsets and the index past it.
pub(crate) async fn run_once(store: &ShardStore) -> Result<usize> {
    let cfg = store.config();
    let env = store.env();
    let used = env.disk_used_ratio(&cfg.root_dir).unwrap_or_else(|e| {
        tracing::warn!("cannot read disk usage of {}: {e}", cfg.root_dir.display());
        0.0
    });
    store
        .log
        .set_usage_full((used > cfg.disk_full_ratio).then(|| {
            format!(
                "disk {:.1}% used, above the {:.0}% limit",
                used * 100.0,
                cfg.disk_full_ratio * 100.0
            )
        }));
    let ages: Vec<SegmentAge> = store
        .log
        .segments()
        .iter()
        .map(|s| SegmentAge {
            start: s.start,
            modified_ms: std::fs::metadata(&s.path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(i64::MAX, |d| d.as_millis() as i64),
        })
        .collect();
    let active = store.log.segment_start(store.log.write_pos());
    let doomed = plan(cfg, &ages, active, env.now_ms(), env.local_hour(), used);
    let mut deleted = 0;
    for start in doomed {
        if store.log.delete_segment(start).await? {
            tracing::info!(
                shard = store.shard(),
                segment = start,
                disk_used = used,
                "retention deleted segment"
            );
            deleted += 1;
        } else {
            break;
        }
    }
    if deleted > 0 {
        let log_min = to_global(store.shard(), store.log.min_offset());
        for q in store.all_queues() {
            q.correct_min(log_min).await?;
        }
        store.index.expire(log_min);
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> StoreConfig {
        let mut c = StoreConfig::new("/nonexistent", "127.0.0.1:1".parse().unwrap());
        c.file_reserved_hours = 72;
        c.delete_when_hours = vec![4];
        c
    }

    const H: i64 = 3_600_000;

    fn segs(ages_h: &[i64], now: i64) -> Vec<SegmentAge> {
        ages_h
            .iter()
            .enumerate()
            .map(|(i, a)| SegmentAge {
                start: i as u64 * 100,
                modified_ms: now - a * H,
            })
            .collect()
    }

    #[test]
    fn expired_segments_go_only_at_delete_hour() {
        let now = 1_000 * H;
        let s = segs(&[100, 80, 10, 1], now);
        assert_eq!(plan(&cfg(), &s, 300, now, 4, 0.1), vec![0, 100]);
        assert!(plan(&cfg(), &s, 300, now, 5, 0.1).is_empty());
    }

    #[test]
    fn high_usage_deletes_expired_at_any_hour_and_forces_at_85() {
        let now = 1_000 * H;
        let s = segs(&[100, 10, 80, 1], now);
        // Only the expired prefix: the young second segment stops the run.
        assert_eq!(plan(&cfg(), &s, 300, now, 12, 0.80), vec![0]);
        // Forced: everything before the active segment, regardless of age.
        assert_eq!(plan(&cfg(), &s, 300, now, 12, 0.86), vec![0, 100, 200]);
    }

    #[test]
    fn never_the_active_segment_and_bounded_per_pass() {
        let now = 1_000 * H;
        let s = segs(&[100; 20], now);
        assert!(plan(&cfg(), &s, 0, now, 4, 0.95).is_empty());
        let mut c = cfg();
        c.retention_max_segments_per_pass = 3;
        assert_eq!(plan(&c, &s, 1_000, now, 4, 0.1).len(), 3);
    }
}
