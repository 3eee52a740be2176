//! Slave-side appends of a master's log bytes: the bytes arrive in pieces
//! of any size (records cut anywhere, blank markers, cold and cached
//! ranges), land at the master's offsets, rebuild the same queues and
//! index, survive a restart, and bad bytes are refused without a trace.

mod common;

use std::rc::Rc;

use bytes::BytesMut;
use common::*;
use rocketcore_storage::{
    Durability, ReadStatus, ReplicaRead, ShardStore, StoreError, SystemEnvironment,
};

/// Copies everything the master has into the slave, `chunk` bytes at a
/// time, through the same calls the HA stream makes.
async fn replicate(master: &ShardStore, slave: &ShardStore, chunk: usize) -> u64 {
    let mut pending = BytesMut::new();
    let mut stream_pos = slave.log_end();
    let mut woken = 0u64;
    loop {
        let bytes = match master.read_for_replica(stream_pos, chunk).await.unwrap() {
            ReplicaRead::Bytes(b) => b,
            other => panic!("unexpected {other:?}"),
        };
        if bytes.is_empty() {
            break;
        }
        stream_pos += bytes.len() as u64;
        pending.extend_from_slice(&bytes);
        loop {
            let local = slave.log_end();
            let pend_at = stream_pos - pending.len() as u64;
            if pend_at < local {
                let skip = ((local - pend_at) as usize).min(pending.len());
                let _ = pending.split_to(skip);
            }
            if pending.is_empty() {
                break;
            }
            let at = stream_pos - pending.len() as u64;
            let n = match slave.append_replicated(at, &mut pending, &mut |_, _| woken += 1) {
                Ok(n) => n,
                // A full write buffer: the HA client waits for the flusher.
                Err(StoreError::Busy { .. }) => {
                    slave.flush().await.unwrap();
                    continue;
                }
                Err(e) => panic!("{e}"),
            };
            if n == 0 {
                break;
            }
        }
    }
    assert!(pending.is_empty(), "{} bytes left over", pending.len());
    woken
}

fn bytes_len(r: ReplicaRead) -> usize {
    match r {
        ReplicaRead::Bytes(b) => b.len(),
        other => panic!("unexpected {other:?}"),
    }
}

async fn fill(store: &ShardStore, n: u64) {
    for i in 0..n {
        let b = body_for(i);
        let p = props_for(i);
        let topic = if i % 3 == 0 { "RepA" } else { "RepB" };
        let drafts: Vec<_> = (0..(1 + i % 4)).map(|_| draft(&b, &p)).collect();
        store
            .append(topic, (i % 2) as i32, &drafts, Durability::Buffered)
            .await
            .unwrap();
        if i % 100 == 99 {
            store.flush().await.unwrap();
        }
    }
}

async fn same_queues(master: &ShardStore, slave: &ShardStore) {
    for topic in ["RepA", "RepB"] {
        for q in 0..2 {
            assert_eq!(master.max_offset(topic, q), slave.max_offset(topic, q));
            let a = master
                .read_queue(topic, q, 0, 10_000, 64 << 20, None)
                .await
                .unwrap();
            let b = slave
                .read_queue(topic, q, 0, 10_000, 64 << 20, None)
                .await
                .unwrap();
            assert_eq!(a.status, ReadStatus::Found);
            assert_eq!(a.messages, b.messages, "{topic}/{q}");
        }
    }
}

#[test]
fn a_slave_rebuilds_the_masters_log_from_pieces_of_any_size() {
    let mdir = store_dir("rep-master");
    let sdir = store_dir("rep-slave");
    let mcfg = small_config(mdir.path());
    let scfg = small_config(sdir.path());
    run(async move {
        let master = ShardStore::open(mcfg, 1, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        let slave = ShardStore::open(scfg.clone(), 1, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        // Several segments, so blank markers and cold (evicted) ranges are
        // part of the stream.
        fill(&master, 1200).await;
        master.flush().await.unwrap();
        assert!(master.log_end() > 3 * scfg.segment_bytes);
        let woken = replicate(&master, &slave, 777).await;
        assert!(woken > 0);
        assert_eq!(master.log_end(), slave.log_end());
        same_queues(&master, &slave).await;
        // Keys are indexed on the slave too.
        let by_key = slave
            .query_by_key("RepB", "key-1", 10, 0, i64::MAX)
            .await
            .unwrap();
        assert!(!by_key.is_empty());
        // More appends continue the stream with larger pieces.
        fill(&master, 50).await;
        // Only what is written to the files is shipped.
        let at = master.log_written();
        assert_eq!(
            bytes_len(master.read_for_replica(at, 1 << 20).await.unwrap()),
            0
        );
        master.flush().await.unwrap();
        replicate(&master, &slave, 1 << 20).await;
        same_queues(&master, &slave).await;
        slave.shutdown().await.unwrap();
        // A restart recovers exactly the replicated log.
        let slave = ShardStore::open(scfg, 1, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        assert_eq!(master.log_end(), slave.log_end());
        same_queues(&master, &slave).await;
        slave.shutdown().await.unwrap();
        master.shutdown().await.unwrap();
    });
}

#[test]
fn bad_replicated_bytes_are_refused_and_change_nothing() {
    let mdir = store_dir("rep-bad-master");
    let sdir = store_dir("rep-bad-slave");
    let mcfg = small_config(mdir.path());
    let scfg = small_config(sdir.path());
    run(async move {
        let master = ShardStore::open(mcfg, 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        let slave = ShardStore::open(scfg, 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        fill(&master, 5).await;
        master.flush().await.unwrap();
        let mut good = BytesMut::new();
        while let ReplicaRead::Bytes(b) = master
            .read_for_replica(good.len() as u64, 1 << 20)
            .await
            .unwrap()
        {
            if b.is_empty() {
                break;
            }
            good.extend_from_slice(&b);
        }
        let good = good.freeze();
        // A flipped bit in the second record.
        let first = rocketcore_storage::RecordView::parse(&good)
            .unwrap()
            .total_size();
        let mut bad = BytesMut::from(&good[..]);
        bad[first + 40] ^= 0x10;
        let err = slave
            .append_replicated(0, &mut bad, &mut |_, _| {})
            .unwrap_err();
        assert!(matches!(err, StoreError::Corruption { .. }), "{err}");
        assert_eq!(slave.log_end(), 0);
        assert_eq!(slave.max_offset("RepA", 0), 0);
        // Bytes for the wrong place.
        let mut elsewhere = BytesMut::from(&good[..]);
        assert!(slave
            .append_replicated(64, &mut elsewhere, &mut |_, _| {})
            .is_err());
        // Garbage.
        let mut junk = BytesMut::from(&[0xABu8; 300][..]);
        assert!(slave
            .append_replicated(0, &mut junk, &mut |_, _| {})
            .is_err());
        let mut zeros = BytesMut::from(&[0u8; 300][..]);
        assert!(slave
            .append_replicated(0, &mut zeros, &mut |_, _| {})
            .is_err());
        assert_eq!(slave.log_end(), 0);
        // A master offset past the slave's end, or below the master's start.
        assert!(matches!(
            master
                .read_for_replica(master.log_end() + 1, 10)
                .await
                .unwrap(),
            ReplicaRead::Ahead { .. }
        ));
        // The good bytes still go in afterwards.
        let mut ok = BytesMut::from(&good[..]);
        let n = slave.append_replicated(0, &mut ok, &mut |_, _| {}).unwrap();
        assert_eq!(n, good.len());
        assert_eq!(slave.log_end(), master.log_end());
        slave.shutdown().await.unwrap();
        master.shutdown().await.unwrap();
    });
}

#[test]
fn an_empty_slave_is_seeded_where_the_masters_retention_left_the_log() {
    let mdir = store_dir("rep-seed-master");
    let sdir = store_dir("rep-seed-slave");
    let mut mcfg = small_config(mdir.path());
    (
        mcfg.disk_max_used_ratio,
        mcfg.disk_force_clean_ratio,
        mcfg.disk_full_ratio,
    ) = (0.75, 0.85, 0.95);
    let scfg = small_config(sdir.path());
    run(async move {
        let env = TestEnv::new();
        let master = ShardStore::open(mcfg, 0, env.clone()).await.unwrap();
        fill(&master, 1200).await;
        master.flush().await.unwrap();
        // Over the forced-deletion ratio: the oldest segments go.
        env.used_ratio.set(0.90);
        while master.run_retention().await.unwrap() > 0 {}
        let start = master.log_start();
        assert!(start > 0);
        let slave = ShardStore::open(scfg.clone(), 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        slave.seed_empty_at(start).await.unwrap();
        assert_eq!(slave.log_end(), start);
        replicate(&master, &slave, 4096).await;
        assert_eq!(slave.log_end(), master.log_end());
        // The queues begin at the master's first live record of each.
        for topic in ["RepA", "RepB"] {
            for q in 0..2 {
                assert_eq!(slave.max_offset(topic, q), master.max_offset(topic, q));
                let from = slave.min_offset(topic, q);
                assert!(from > 0, "{topic}/{q} starts at 0");
                let a = master
                    .read_queue(topic, q, from, 64, 1 << 20, None)
                    .await
                    .unwrap();
                let b = slave
                    .read_queue(topic, q, from, 64, 1 << 20, None)
                    .await
                    .unwrap();
                assert_eq!(a.status, ReadStatus::Found);
                assert_eq!(a.messages, b.messages);
            }
        }
        // A store with data cannot be seeded again.
        assert!(slave.seed_empty_at(start).await.is_err());
        slave.shutdown().await.unwrap();
        let slave = ShardStore::open(scfg, 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        assert_eq!(slave.log_start(), start);
        for topic in ["RepA", "RepB"] {
            for q in 0..2 {
                let from = slave.min_offset(topic, q);
                let r = slave
                    .read_queue(topic, q, from, 1, 1 << 20, None)
                    .await
                    .unwrap();
                assert_eq!(r.status, ReadStatus::Found, "{topic}/{q} after a restart");
                assert_eq!(from, master.min_offset(topic, q).max(from));
            }
        }
        slave.shutdown().await.unwrap();
        master.shutdown().await.unwrap();
    });
}

/// A promoted slave's log, and an old master with a tail the new one never
/// had: the old master cuts its log at the point the epochs name, takes the
/// new master's bytes from there, and ends up byte-identical, across a
/// restart too.
#[test]
fn a_diverged_tail_is_cut_and_the_new_masters_log_follows() {
    let adir = store_dir("rep-cut-old");
    let bdir = store_dir("rep-cut-new");
    let acfg = small_config(adir.path());
    let bcfg = small_config(bdir.path());
    run(async move {
        let old = ShardStore::open(acfg.clone(), 2, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        let new = ShardStore::open(bcfg, 2, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        assert_eq!(old.begin_epoch(1).await.unwrap(), 0);
        fill(&old, 300).await;
        old.flush().await.unwrap();
        replicate(&old, &new, 4096).await;
        new.set_epochs(old.epochs()).unwrap();
        let shared = new.log_end();
        let shared_max: Vec<u64> = (0..2).map(|q| old.max_offset("RepB", q)).collect();
        // The old master goes on alone (its slave is cut off), past a
        // segment end, then dies; the slave is promoted.
        fill(&old, 400).await;
        old.flush().await.unwrap();
        assert!(old.log_end() > shared + small_config(adir.path()).segment_bytes);
        assert_eq!(new.begin_epoch(2).await.unwrap(), shared);
        fill(&new, 120).await;
        new.flush().await.unwrap();
        // Back as a slave: where do the two agree?
        let cut = rocketcore_storage::consistent_point(
            &old.epochs(),
            old.log_end(),
            &new.epochs(),
            new.log_end(),
        )
        .unwrap();
        assert_eq!(cut, shared);
        old.truncate_tail(cut).await.unwrap();
        assert_eq!(old.log_end(), shared);
        for q in 0..2 {
            assert_eq!(old.max_offset("RepB", q), shared_max[q as usize]);
        }
        old.set_epochs(new.epochs()).unwrap();
        replicate(&new, &old, 1000).await;
        assert_eq!(old.log_end(), new.log_end());
        same_queues(&new, &old).await;
        old.shutdown().await.unwrap();
        let old = ShardStore::open(acfg, 2, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        assert_eq!(old.log_end(), new.log_end());
        assert_eq!(old.epochs(), vec![(1, 0), (2, shared)]);
        same_queues(&new, &old).await;
        // Keys indexed from the cut tail do not answer for the new records.
        let hits = old
            .query_by_key("RepB", "key-1", 64, 0, i64::MAX)
            .await
            .unwrap();
        for rec in hits {
            let v = rocketcore_storage::RecordView::parse(&rec).unwrap();
            assert!(v.physical_offset() < rocketcore_storage::to_global(2, new.log_end()) as i64);
        }
        old.shutdown().await.unwrap();
        new.shutdown().await.unwrap();
    });
}

/// A crash halfway through a cut (the log cut, the queues not yet):
/// recovery ends the log at the cut and keeps no unit past it.
#[test]
fn a_crash_in_the_middle_of_a_cut_recovers_to_the_cut() {
    let dir = store_dir("rep-cut-crash");
    let cfg = small_config(dir.path());
    let reopen = cfg.clone();
    let (at, kept) = run(async move {
        let env = TestEnv::new();
        let store = ShardStore::open(cfg, 0, env.clone()).await.unwrap();
        fill(&store, 200).await;
        store.flush().await.unwrap();
        let at = store.log_end();
        let kept: Vec<u64> = (0..2).map(|q| store.max_offset("RepB", q)).collect();
        fill(&store, 300).await;
        store.checkpoint_now().await.unwrap();
        env.fail
            .borrow_mut()
            .push(rocketcore_storage::IoOp::Truncate);
        assert!(store.truncate_tail(at).await.is_err());
        // Then a crash: no shutdown.
        (at, kept)
    });
    run(async move {
        let store = ShardStore::open(reopen, 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        assert_eq!(store.log_end(), at);
        for q in 0..2 {
            assert_eq!(store.max_offset("RepB", q), kept[q as usize]);
            let r = store
                .read_queue("RepB", q, 0, 10_000, 64 << 20, None)
                .await
                .unwrap();
            assert_eq!(r.messages.len() as u64, kept[q as usize]);
        }
        // Appends go on from the cut.
        fill(&store, 5).await;
        store.flush().await.unwrap();
        assert!(store.log_end() > at);
        store.shutdown().await.unwrap();
    });
}

/// A cut after a restart and after an earlier cut, when the queues' tails
/// in memory are short: it still drops every unit past the cut.
#[test]
fn cuts_after_a_restart_and_after_a_cut_drop_every_unit_past_them() {
    let dir = store_dir("rep-cut-again");
    let mut cfg = small_config(dir.path());
    cfg.cq_entries_per_file = 100_000;
    cfg.cq_tail_entries = 4096;
    let reopen = cfg.clone();
    run(async move {
        let store = ShardStore::open(cfg, 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        fill(&store, 300).await;
        store.shutdown().await.unwrap();
        let store = ShardStore::open(reopen, 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        for round in 0..2 {
            fill(&store, 40).await;
            store.flush().await.unwrap();
            let at = store.log_end();
            let kept: Vec<u64> = (0..2).map(|q| store.max_offset("RepB", q)).collect();
            fill(&store, 60).await;
            store.truncate_tail(at).await.unwrap();
            assert_eq!(store.log_end(), at);
            for q in 0..2 {
                assert_eq!(
                    store.max_offset("RepB", q),
                    kept[q as usize],
                    "round {round}"
                );
                let r = store
                    .read_queue("RepB", q, 0, 10_000, 64 << 20, None)
                    .await
                    .unwrap();
                assert_eq!(r.messages.len() as u64, kept[q as usize], "round {round}");
            }
        }
        store.shutdown().await.unwrap();
    });
}
