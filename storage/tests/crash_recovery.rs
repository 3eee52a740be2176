//! Crash recovery: after a crash the store keeps exactly the valid prefix
//! of its log, and the consume queues and key index agree with it, whether
//! the tail was torn off or damaged in place.

mod common;

use std::rc::Rc;

use common::*;
use rocketcore_storage::{Durability, ReadStatus, RecordView, ShardStore, SystemEnvironment};

/// Deterministic xorshift so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const N: u64 = 120;

/// Writes N synced records to queue "Crash"/0 and "crashes" (the executor
/// ends without shutdown). Returns each record's (start, end) in the log.
fn write_then_crash(cfg: rocketcore_storage::StoreConfig) -> Vec<(u64, u64)> {
    run(async move {
        let store = ShardStore::open(cfg, 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        let mut spans = Vec::new();
        for i in 0..N {
            let (b, p) = (body_for(i), props_for(i));
            let a = store
                .append("Crash", 0, &[draft(&b, &p)], Durability::Synced)
                .await
                .unwrap();
            spans.push((a.first_phys as u64, a.end_phys as u64));
        }
        spans
    })
}

/// Reopens the store and checks it holds exactly records 0..kept.
fn check_recovered(cfg: rocketcore_storage::StoreConfig, kept: u64, end: u64) {
    run(async move {
        let store = ShardStore::open(cfg, 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        let report = store.recovery_report();
        assert_eq!(report.end, end, "{report:?}");
        assert_eq!(store.max_offset("Crash", 0), kept, "{report:?}");
        let mut offset = 0;
        let mut seen = 0u64;
        while offset < kept {
            let r = store
                .read_queue("Crash", 0, offset, 32, 1 << 20, None)
                .await
                .unwrap();
            assert_eq!(r.status, ReadStatus::Found);
            for m in &r.messages {
                let v = RecordView::parse(m).unwrap();
                assert_eq!(v.body(), &body_for(seen)[..]);
                assert_eq!(v.queue_offset(), seen as i64);
                seen += 1;
            }
            offset = r.next_offset;
        }
        assert_eq!(seen, kept);
        // The index agrees: kept keys are found, lost ones are not.
        if kept > 0 {
            let k = kept - 1;
            let found = store
                .query_by_key("Crash", &format!("key-{k}"), 4, 0, i64::MAX)
                .await
                .unwrap();
            assert_eq!(found.len(), 1, "key-{k}");
        }
        if kept < N {
            let found = store
                .query_by_key("Crash", &format!("key-{kept}"), 4, 0, i64::MAX)
                .await
                .unwrap();
            assert!(found.is_empty(), "a lost record is still indexed");
        }
        // The store keeps working: the next append takes the next offset.
        let (b, p) = (body_for(kept), props_for(kept));
        let a = store
            .append("Crash", 0, &[draft(&b, &p)], Durability::Synced)
            .await
            .unwrap();
        assert_eq!(a.first_queue_offset as u64, kept);
        assert_eq!(a.first_phys as u64, end);
        store.shutdown().await.unwrap();
    });
}

#[test]
fn torn_tail_keeps_exactly_the_records_before_the_cut() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..6 {
        let dir = store_dir("torn");
        let cfg = small_config(dir.path());
        let spans = write_then_crash(cfg.clone());
        let total = spans.last().unwrap().1;
        // Cut within the last half of the log, anywhere, even mid-header.
        let cut = total / 2 + rng.below(total / 2);
        let seg_start = cut - cut % SEGMENT_BYTES;
        let file = commitlog_dir(dir.path()).join(format!("{seg_start:020}"));
        let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        f.set_len(cut - seg_start).unwrap();
        drop(f);
        for later in segment_files(dir.path()) {
            if later > file {
                std::fs::remove_file(later).unwrap();
            }
        }
        let kept = spans.iter().filter(|(_, e)| *e <= cut).count() as u64;
        let end = if kept == 0 {
            0
        } else {
            spans[kept as usize - 1].1
        };
        eprintln!("round {round}: cut at {cut}, keeping {kept} records");
        check_recovered(cfg, kept, end);
    }
}

#[test]
fn damaged_bytes_cut_the_log_at_the_damaged_record() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    for round in 0..8 {
        let dir = store_dir("flip");
        let mut cfg = small_config(dir.path());
        // A checkpoint far behind the damage, so the scan covers it.
        cfg.checkpoint_interval_ms = 3_600_000;
        let spans = write_then_crash(cfg.clone());
        let total = spans.last().unwrap().1;
        let at = total / 2 + rng.below(total / 2);
        let (victim, (start, _)) = spans
            .iter()
            .enumerate()
            .find(|(_, (s, e))| *s <= at && at < *e)
            .map(|(i, s)| (i as u64, *s))
            .unwrap();
        let seg_start = at - at % SEGMENT_BYTES;
        let path = commitlog_dir(dir.path()).join(format!("{seg_start:020}"));
        let mut bytes = std::fs::read(&path).unwrap();
        let i = (at - seg_start) as usize;
        bytes[i] ^= 1 << rng.below(8);
        std::fs::write(&path, &bytes).unwrap();
        eprintln!("round {round}: flipped byte {at} inside record {victim}");
        check_recovered(cfg, victim, start);
    }
}

#[test]
fn clean_restart_keeps_everything_and_continues_offsets() {
    let dir = store_dir("clean");
    let cfg = small_config(dir.path());
    let cfg2 = cfg.clone();
    let end = run(async move {
        let store = ShardStore::open(cfg, 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        let mut end = 0;
        for i in 0..N {
            let (b, p) = (body_for(i), props_for(i));
            end = store
                .append("Crash", 0, &[draft(&b, &p)], Durability::Buffered)
                .await
                .unwrap()
                .end_phys;
        }
        store.shutdown().await.unwrap();
        end as u64
    });
    check_recovered(cfg2.clone(), N, end);
    // After a clean shutdown the checkpoint covers the log: nothing to rebuild.
    run(async move {
        let store = ShardStore::open(cfg2, 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        let r = store.recovery_report();
        assert_eq!(r.units_rebuilt, 0, "{r:?}");
        assert!(r.truncated.is_none());
        store.shutdown().await.unwrap();
    });
}

/// A backlog larger than a flush round: rounds used to end at a fixed byte
/// count, inside a record, and the checkpoint made from the durable mark
/// could then point recovery at the middle of a record. Every durable mark
/// the store shows while working through such a backlog must be the start
/// of a record or the end of the log.
#[test]
fn the_durable_mark_only_ever_holds_record_boundaries() {
    let dir = store_dir("boundaries");
    let mut cfg = small_config(dir.path());
    // Rounds of a quarter of this: 256 KiB, well below the backlog.
    cfg.write_buffer_bytes = 1 << 20;
    cfg.max_message_bytes = 8 << 10;
    // One segment for the whole backlog: segment ends are boundaries anyway.
    cfg.segment_bytes = 4 << 20;
    run(async move {
        let store = Rc::new(
            ShardStore::open(cfg, 0, Rc::new(SystemEnvironment))
                .await
                .unwrap(),
        );
        let mut starts = std::collections::BTreeSet::new();
        // About 900 KiB of records of uneven size, appended without yielding.
        for i in 0..800u64 {
            let mut body = body_for(i);
            body.resize(900 + (i * 131 % 400) as usize, b'x');
            let a = store
                .append("B", 0, &[draft(&body, b"")], Durability::Buffered)
                .await
                .unwrap();
            starts.insert(rocketcore_storage::from_global(a.first_phys).1);
        }
        let end = store.stats().write_pos;
        let sampler = {
            let store = store.clone();
            glommio::spawn_local(async move {
                let mut seen = std::collections::BTreeSet::new();
                while store.stats().flushed < end {
                    seen.insert(store.stats().flushed);
                    glommio::timer::sleep(std::time::Duration::from_micros(200)).await;
                }
                seen
            })
        };
        // A synced append makes every round sync, so the mark moves round
        // by round through the backlog.
        store
            .append("B", 0, &[draft(b"last", b"")], Durability::Synced)
            .await
            .unwrap();
        let seen = sampler.await;
        assert!(seen.len() > 2, "the backlog took {} rounds", seen.len());
        for mark in seen {
            assert!(
                mark == 0 || mark == end || starts.contains(&mark),
                "durable mark {mark} is inside a record"
            );
        }
        store.shutdown().await.unwrap();
    });
}

/// Writes a checkpoint slot the way the store does (magic, seq, log flushed,
/// cq durable, time, CRC-32 of those), into both slots.
fn forge_checkpoint(root: &std::path::Path, flushed: u64, cq_durable: u64) {
    let mut slot = vec![0u8; 512];
    slot[0..4].copy_from_slice(&0x5243_4350u32.to_le_bytes());
    slot[4..12].copy_from_slice(&1_000_000u64.to_le_bytes());
    slot[12..20].copy_from_slice(&flushed.to_le_bytes());
    slot[20..28].copy_from_slice(&cq_durable.to_le_bytes());
    slot[28..36].copy_from_slice(&0i64.to_le_bytes());
    let crc = crc32fast::hash(&slot[..36]);
    slot[36..40].copy_from_slice(&crc.to_le_bytes());
    let both = [slot.clone(), slot].concat();
    std::fs::write(root.join("shard-0").join("checkpoint"), both).unwrap();
}

/// A checkpoint that points into the middle of a record (as one written by
/// a version that cut flush rounds anywhere could): recovery must not cut
/// the log there but find the records from the segment's start.
#[test]
fn a_checkpoint_inside_a_record_does_not_cut_the_log() {
    let dir = store_dir("mid-record-checkpoint");
    let mut cfg = small_config(dir.path());
    // Sealed indexes keep recovery from starting at the log's beginning.
    cfg.index_entries = 8;
    let reopen = cfg.clone();
    let (starts, end) = run(async move {
        let store = ShardStore::open(cfg, 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        let mut starts = Vec::new();
        for i in 0..40u64 {
            let (b, p) = (body_for(i), props_for(i));
            let a = store
                .append("M", 0, &[draft(&b, &p)], Durability::Synced)
                .await
                .unwrap();
            starts.push(rocketcore_storage::from_global(a.first_phys).1);
        }
        let end = store.stats().write_pos;
        store.shutdown().await.unwrap();
        (starts, end)
    });
    // Inside record 5's body: bytes that are no record header.
    let inside = starts[5] + 100;
    forge_checkpoint(dir.path(), end, inside);
    run(async move {
        let store = ShardStore::open(reopen, 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        let report = store.recovery_report();
        assert!(report.truncated.is_none(), "{report:?}");
        assert_eq!(report.end, end, "{report:?}");
        assert_eq!(report.lost_synced_bytes, 0);
        let r = store
            .read_queue("M", 0, 0, 64, 1 << 20, None)
            .await
            .unwrap();
        assert_eq!(r.messages.len(), 40);
        for (i, m) in r.messages.iter().enumerate() {
            assert_eq!(
                RecordView::parse(m).unwrap().body(),
                &body_for(i as u64)[..]
            );
        }
        store.shutdown().await.unwrap();
    });
}

/// A topic deleted while a checkpoint is writing consume queues: the
/// checkpoint used to recreate the deleted queue's directory, and every
/// later start brought the queue back. Deleting at every point of a
/// checkpoint in turn, then restarting (after the checkpoint the broker
/// makes right after a deletion), the topic stays gone and the other stays.
#[test]
fn a_topic_deleted_during_a_checkpoint_stays_deleted() {
    for steps in 0..40u64 {
        let dir = store_dir("delete-topic");
        let mut cfg = small_config(dir.path());
        cfg.checkpoint_interval_ms = 600_000;
        let reopen = cfg.clone();
        let root = dir.path().to_path_buf();
        run(async move {
            let store = Rc::new(
                ShardStore::open(cfg, 0, Rc::new(SystemEnvironment))
                    .await
                    .unwrap(),
            );
            for i in 0..20u64 {
                let (b, p) = (body_for(i), props_for(i));
                for topic in ["Gone", "Kept"] {
                    store
                        .append(
                            topic,
                            (i % 4) as i32,
                            &[draft(&b, &p)],
                            Durability::Buffered,
                        )
                        .await
                        .unwrap();
                }
            }
            let in_flight = {
                let store = store.clone();
                glommio::spawn_local(async move { store.checkpoint_now().await })
            };
            // Timers, not yields: the checkpoint moves on I/O completions.
            glommio::timer::sleep(std::time::Duration::from_micros(150 * steps)).await;
            assert!(store.delete_topic("Gone").unwrap());
            in_flight.await.unwrap();
            store.checkpoint_now().await.unwrap();
            // Then a crash: no shutdown.
        });
        assert!(
            !root.join("shard-0/consumequeue/Gone").exists(),
            "{} µs in: the deleted topic's queues were written again",
            150 * steps
        );
        run(async move {
            let store = ShardStore::open(reopen, 0, Rc::new(SystemEnvironment))
                .await
                .unwrap();
            for q in 0..4 {
                assert_eq!(
                    store.max_offset("Gone", q),
                    0,
                    "{} µs in: queue {q} is back",
                    150 * steps
                );
                assert_eq!(store.max_offset("Kept", q), 5);
            }
        });
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48),
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Whatever bytes follow some valid records in a segment, opening the
    /// store never panics, keeps exactly the valid records, and the store
    /// takes appends and reads afterwards. (`PROPTEST_CASES` for more.)
    #[test]
    fn recovery_over_arbitrary_segment_bytes(
        valid in 0u64..12,
        garbage in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..6000),
    ) {
        let dir = store_dir("arbitrary-segment");
        let cfg = small_config(dir.path());
        let reopen = cfg.clone();
        let spans = run(async move {
            let store = ShardStore::open(cfg, 0, Rc::new(SystemEnvironment)).await.unwrap();
            let mut spans = Vec::new();
            for i in 0..valid {
                let (b, p) = (body_for(i), props_for(i));
                let a = store.append("A", 0, &[draft(&b, &p)], Durability::Synced).await.unwrap();
                spans.push(rocketcore_storage::from_global(a.end_phys).1);
            }
            spans
        });
        let end = spans.last().copied().unwrap_or(0);
        let seg = segment_files(dir.path()).into_iter().next();
        if let Some(seg) = seg {
            use std::io::{Seek, SeekFrom, Write};
            let mut f = std::fs::OpenOptions::new().write(true).open(seg).unwrap();
            f.seek(SeekFrom::Start(end)).unwrap();
            f.write_all(&garbage).unwrap();
        }
        run(async move {
            let store = ShardStore::open(reopen, 0, Rc::new(SystemEnvironment)).await.unwrap();
            let report = store.recovery_report();
            // Every valid record stays, nothing of the garbage does.
            assert_eq!(report.end, end, "{report:?}");
            assert_eq!(store.max_offset("A", 0), spans.len() as u64);
            store.append("A", 0, &[draft(b"after", b"")], Durability::Synced).await.unwrap();
            let r = store.read_queue("A", 0, 0, 64, 1 << 20, None).await.unwrap();
            assert!(!r.messages.is_empty());
            store.shutdown().await.unwrap();
        });
    }
}
