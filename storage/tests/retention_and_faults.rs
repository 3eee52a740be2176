//! Retention and the write path's failure modes: segments go by age at the
//! delete hour or by disk pressure, consume queues move past them; a full
//! disk stops writes and not reads, then lets writes resume; a failed write
//! or sync poisons the log for writes while reads go on.

mod common;

use common::*;
use rocketcore_storage::{Durability, IoOp, ReadStatus, RecordView, ShardStore, StoreError};

const BODY: usize = 10_000;

/// Fills about `segments` segments of queue "Ret"/0.
async fn fill(store: &ShardStore, segments: u64) -> u64 {
    let per_segment = SEGMENT_BYTES / (BODY as u64 + 200);
    let n = per_segment * segments;
    let body = vec![1u8; BODY];
    for _ in 0..n {
        append_buffered(store, "Ret", 0, draft(&body, b"KEYS\x01k\x02")).await;
    }
    store.flush().await.unwrap();
    n
}

#[test]
fn expired_segments_go_at_the_delete_hour_and_queues_follow() {
    let dir = store_dir("retention");
    let cfg = small_config(dir.path());
    let root = dir.path().to_path_buf();
    run(async move {
        let env = TestEnv::new();
        let store = ShardStore::open(cfg, 0, env.clone()).await.unwrap();
        let n = fill(&store, 5).await;
        let before = segment_files(&root).len();
        assert!(before >= 5);

        // Young segments stay, whatever the hour.
        env.hour.set(4);
        assert_eq!(store.run_retention().await.unwrap(), 0);
        // 73 hours later but not at the delete hour: still nothing.
        env.advance_ms.set(73 * 3_600_000);
        env.hour.set(13);
        assert_eq!(store.run_retention().await.unwrap(), 0);
        // At 04:00 every expired segment but the active one goes.
        env.hour.set(4);
        let deleted = store.run_retention().await.unwrap();
        let left = segment_files(&root).len();
        assert_eq!(left, before - deleted);
        // The active segment, and perhaps the next one, preallocated ahead.
        assert!((1..=2).contains(&left), "{left} segments left");

        let min = store.min_offset("Ret", 0);
        assert!(
            min > 0 && min < n,
            "min offset moved past deleted records: {min}"
        );
        let r = store
            .read_queue("Ret", 0, 0, 8, 1 << 20, None)
            .await
            .unwrap();
        assert_eq!((r.status, r.next_offset), (ReadStatus::OffsetTooSmall, min));
        let r = store
            .read_queue("Ret", 0, min, 8, 1 << 20, None)
            .await
            .unwrap();
        assert_eq!(r.status, ReadStatus::Found);
        assert_eq!(
            RecordView::parse(&r.messages[0]).unwrap().queue_offset() as u64,
            min
        );
        store.shutdown().await.unwrap();
    });
}

#[test]
fn disk_pressure_forces_deletion_and_a_full_disk_stops_only_writes() {
    let dir = store_dir("diskfull");
    let mut cfg = small_config(dir.path());
    (
        cfg.disk_max_used_ratio,
        cfg.disk_force_clean_ratio,
        cfg.disk_full_ratio,
    ) = (0.75, 0.85, 0.90);
    let root = dir.path().to_path_buf();
    run(async move {
        let env = TestEnv::new();
        let store = ShardStore::open(cfg, 0, env.clone()).await.unwrap();
        fill(&store, 4).await;
        let before = segment_files(&root).len();

        // 80%: over diskMaxUsedSpaceRatio, but nothing has expired yet.
        env.used_ratio.set(0.80);
        assert_eq!(store.run_retention().await.unwrap(), 0);
        // 86%: forced, regardless of age.
        env.used_ratio.set(0.86);
        assert!(store.run_retention().await.unwrap() > 0);
        assert!(segment_files(&root).len() < before);

        // 95%: writes are refused as disk full, reads keep working.
        env.used_ratio.set(0.95);
        store.run_retention().await.unwrap();
        let e = store
            .append("Ret", 0, &[draft(b"x", b"")], Durability::Buffered)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::DiskFull(_)), "{e}");
        let min = store.min_offset("Ret", 0);
        let r = store
            .read_queue("Ret", 0, min, 4, 1 << 20, None)
            .await
            .unwrap();
        assert_eq!(r.status, ReadStatus::Found);

        // Space is back: writes resume by themselves at the next pass.
        env.used_ratio.set(0.50);
        store.run_retention().await.unwrap();
        store
            .append("Ret", 0, &[draft(b"x", b"")], Durability::Synced)
            .await
            .unwrap();
        store.shutdown().await.unwrap();
    });
}

#[test]
fn no_space_for_a_new_segment_is_disk_full_until_space_returns() {
    let dir = store_dir("nospace");
    let mut cfg = small_config(dir.path());
    cfg.sync_flush_timeout_ms = 300;
    run(async move {
        let env = TestEnv::new();
        let store = ShardStore::open(cfg, 0, env.clone()).await.unwrap();
        env.no_space.borrow_mut().push(IoOp::Allocate);
        // The first segment cannot be allocated: the synced append waits for
        // a flush that cannot happen, and says so when its wait runs out.
        let e = store
            .append("T", 0, &[draft(b"first", b"")], Durability::Synced)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::FlushTimeout {
                    timeout_ms: 300,
                    appended: Some(_)
                }
            ),
            "{e}"
        );
        let e = store
            .append("T", 0, &[draft(b"second", b"")], Durability::Buffered)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::DiskFull(_)), "{e}");
        assert!(
            store.stats().poisoned.is_none(),
            "no space is not a failed write"
        );
        // Space is back: the flusher's next try allocates, writes resume.
        env.no_space.borrow_mut().clear();
        let mut resumed = false;
        for _ in 0..100 {
            glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            if store
                .append("T", 0, &[draft(b"third", b"")], Durability::Synced)
                .await
                .is_ok()
            {
                resumed = true;
                break;
            }
        }
        assert!(resumed, "writes did not resume");
        let r = store.read_queue("T", 0, 0, 8, 1 << 20, None).await.unwrap();
        let bodies: Vec<Vec<u8>> = r
            .messages
            .iter()
            .map(|m| RecordView::parse(m).unwrap().body().to_vec())
            .collect();
        assert_eq!(
            bodies[0], b"first",
            "the timed-out append was kept and flushed"
        );
        assert_eq!(bodies.last().unwrap(), b"third");
        store.shutdown().await.unwrap();
    });
}

#[test]
fn a_failed_write_or_sync_poisons_writes_but_not_reads() {
    for op in [IoOp::Write, IoOp::Sync] {
        let dir = store_dir("poison");
        let cfg = small_config(dir.path());
        run(async move {
            let env = TestEnv::new();
            let store = ShardStore::open(cfg, 0, env.clone()).await.unwrap();
            for i in 0..10u64 {
                let (b, p) = (body_for(i), props_for(i));
                store
                    .append("P", 0, &[draft(&b, &p)], Durability::Synced)
                    .await
                    .unwrap();
            }
            env.fail.borrow_mut().push(op);
            let e = store
                .append("P", 0, &[draft(b"lost", b"")], Durability::Synced)
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::Poisoned(_)), "{op:?}: {e}");
            // Even with the fault gone, the log stays poisoned: what reached
            // the disk is unknown until recovery re-reads it.
            env.fail.borrow_mut().clear();
            let e = store
                .append("P", 0, &[draft(b"later", b"")], Durability::Buffered)
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::Poisoned(_)), "{op:?}: {e}");
            assert!(store.stats().poisoned.is_some());
            let r = store
                .read_queue("P", 0, 0, 32, 1 << 20, None)
                .await
                .unwrap();
            assert_eq!(r.status, ReadStatus::Found);
            assert!(r.messages.len() >= 10);
            store.shutdown().await.ok();
        });
    }
}
