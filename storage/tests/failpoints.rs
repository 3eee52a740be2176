//! Failures of the files derived from the log (consume queues, sealed key
//! indexes, the checkpoint) on a running store, then a restart: the error
//! stops checkpoints for good (a later fsync that succeeds proves nothing
//! about pages a failed one dropped), the log keeps taking appends, reads
//! go on, and the restart rebuilds everything past the last good checkpoint
//! from the log, losing nothing.

mod common;

use std::time::Duration;

use common::*;
use rocketcore_storage::{Durability, IoOp, ReadStatus, ShardStore};

const BEFORE: u64 = 20;
const DURING: u64 = 20;
const AFTER: u64 = 20;

async fn append_range(store: &ShardStore, range: std::ops::Range<u64>) {
    for i in range {
        let (b, p) = (body_for(i), props_for(i));
        store
            .append("F", (i % 2) as i32, &[draft(&b, &p)], Durability::Synced)
            .await
            .unwrap();
    }
}

/// Several checkpoint intervals of small_config.
async fn let_checkpoints_run() {
    glommio::timer::sleep(Duration::from_millis(300)).await;
}

async fn count_queue(store: &ShardStore) -> u64 {
    let mut n = 0;
    for q in 0..2 {
        let mut offset = 0;
        loop {
            let r = store
                .read_queue("F", q, offset, 32, 1 << 20, None)
                .await
                .unwrap();
            if r.status != ReadStatus::Found {
                break;
            }
            n += r.messages.len() as u64;
            offset = r.next_offset;
        }
    }
    n
}

#[test]
fn a_failed_derived_file_write_stops_checkpoints_and_a_restart_loses_nothing() {
    for op in [
        IoOp::CqWrite,
        IoOp::CqSync,
        IoOp::IndexSeal,
        IoOp::Checkpoint,
    ] {
        let dir = store_dir("failpoints");
        let mut cfg = small_config(dir.path());
        // Seal an index every few records, so IndexSeal is reached.
        cfg.index_entries = 16;
        let reopen = cfg.clone();
        let durable_before = run(async move {
            let env = TestEnv::new();
            let store = ShardStore::open(cfg, 0, env.clone()).await.unwrap();
            append_range(&store, 0..BEFORE).await;
            let_checkpoints_run().await;
            let durable_before = store.stats().flushed;
            assert!(store.stats().checkpoint_poisoned.is_none(), "{op:?}");

            env.fail.borrow_mut().push(op);
            append_range(&store, BEFORE..BEFORE + DURING).await;
            let_checkpoints_run().await;
            let why = store.stats().checkpoint_poisoned;
            assert!(why.is_some(), "{op:?}: checkpoints went on after a failure");
            // The fault is gone, but a failed fsync is not undone by a
            // later one: checkpoints stay stopped.
            env.fail.borrow_mut().clear();
            append_range(&store, BEFORE + DURING..BEFORE + DURING + AFTER).await;
            let_checkpoints_run().await;
            assert!(store.stats().checkpoint_poisoned.is_some(), "{op:?}");
            assert!(
                store.stats().poisoned.is_none(),
                "{op:?}: the log was poisoned"
            );
            assert_eq!(count_queue(&store).await, BEFORE + DURING + AFTER, "{op:?}");
            let shut = store.shutdown().await;
            assert!(
                shut.is_err(),
                "{op:?}: shutdown hid the stopped checkpoints"
            );
            durable_before
        });

        run(async move {
            let store = ShardStore::open(reopen, 0, TestEnv::new()).await.unwrap();
            let report = store.recovery_report();
            assert!(
                report.scanned_from <= durable_before,
                "{op:?}: recovery started at {} past the last good checkpoint's {durable_before}",
                report.scanned_from
            );
            assert_eq!(report.lost_synced_bytes, 0, "{op:?}");
            assert_eq!(count_queue(&store).await, BEFORE + DURING + AFTER, "{op:?}");
            for i in [0, BEFORE + 3, BEFORE + DURING + AFTER - 1] {
                let key = format!("key-{i}");
                let hits = store.query_by_key("F", &key, 4, 0, i64::MAX).await.unwrap();
                assert_eq!(hits.len(), 1, "{op:?}: key {key} after restart");
            }
            assert!(store.stats().checkpoint_poisoned.is_none());
            store.shutdown().await.unwrap();
        });
    }
}

/// No space for a consume-queue or index write is not a failed fsync:
/// nothing was written, so the checkpoint waits and goes on once space
/// returns.
#[test]
fn no_space_for_a_derived_file_only_postpones_the_checkpoint() {
    for op in [IoOp::CqWrite, IoOp::IndexSeal] {
        let dir = store_dir("failpoints-enospc");
        let mut cfg = small_config(dir.path());
        cfg.index_entries = 16;
        run(async move {
            let env = TestEnv::new();
            let store = ShardStore::open(cfg, 0, env.clone()).await.unwrap();
            env.no_space.borrow_mut().push(op);
            append_range(&store, 0..BEFORE).await;
            let_checkpoints_run().await;
            assert!(store.stats().checkpoint_poisoned.is_none(), "{op:?}");
            env.no_space.borrow_mut().clear();
            append_range(&store, BEFORE..BEFORE + DURING).await;
            let_checkpoints_run().await;
            assert!(store.stats().checkpoint_poisoned.is_none(), "{op:?}");
            assert_eq!(count_queue(&store).await, BEFORE + DURING, "{op:?}");
            store.shutdown().await.unwrap();
        });
    }
}
