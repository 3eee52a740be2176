//! Appends and every way of reading back: by queue with tags and limits,
//! by physical offset, by key, by time; across segment roll-overs, from
//! the tail cache and from disk; and the refusals for bad input.

mod common;

use std::rc::Rc;

use common::*;
use rocketcore_storage::{
    properties, Durability, ReadStatus, RecordView, ShardStore, StoreError, SystemEnvironment,
};

#[test]
fn record_filters_fill_the_batch_across_rounds_and_resume_after_the_last_match() {
    let dir = store_dir("filtered");
    let cfg = small_config(dir.path());
    run(async move {
        let store = ShardStore::open(cfg, 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        for i in 0..100u64 {
            let b = body_for(i);
            let mut p = Vec::new();
            properties::push(&mut p, "n", &i.to_string());
            store
                .append("F", 0, &[draft(&b, &p)], Durability::Buffered)
                .await
                .unwrap();
        }
        let tenth = |props: &[u8]| {
            properties::get(props, "n")
                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
                .is_some_and(|n| n % 10 == 3)
        };
        // Every round reads at most as many records as are still missing,
        // so one pull needs several rounds to find 4 matches.
        let r = store
            .read_queue_filtered("F", 0, 0, 4, 1 << 20, None, Some(&tenth))
            .await
            .unwrap();
        assert_eq!(r.status, ReadStatus::Found);
        let got: Vec<i64> = r
            .messages
            .iter()
            .map(|m| RecordView::parse(m).unwrap().queue_offset())
            .collect();
        assert_eq!(got, vec![3, 13, 23, 33]);
        assert_eq!(r.next_offset, 34);
        let r = store
            .read_queue_filtered("F", 0, 94, 4, 1 << 20, None, Some(&tenth))
            .await
            .unwrap();
        assert_eq!(r.status, ReadStatus::NoMatchedMessage);
        assert!(r.messages.is_empty());
        assert_eq!(r.next_offset, 100);
        let units = store.units("F", 0, 98, 10).await.unwrap();
        assert_eq!(units.len(), 2);
        assert!(store.units("Nope", 0, 0, 10).await.unwrap().is_empty());
        store.shutdown().await.unwrap();
    });
}

#[test]
fn queue_reads_follow_offsets_tags_and_limits() {
    let dir = store_dir("reads");
    let cfg = small_config(dir.path());
    run(async move {
        let store = ShardStore::open(cfg, 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        for i in 0..30u64 {
            let (b, p) = (body_for(i), props_for(i));
            let a = store
                .append("TopicA", 1, &[draft(&b, &p)], Durability::Buffered)
                .await
                .unwrap();
            assert_eq!(a.first_queue_offset, i as i64);
            assert_eq!(a.count, 1);
        }
        assert_eq!(
            (store.min_offset("TopicA", 1), store.max_offset("TopicA", 1)),
            (0, 30)
        );

        let r = store
            .read_queue("TopicA", 1, 5, 4, 1 << 20, None)
            .await
            .unwrap();
        assert_eq!(r.status, ReadStatus::Found);
        assert_eq!(r.messages.len(), 4);
        assert_eq!(r.next_offset, 9);
        for (k, m) in r.messages.iter().enumerate() {
            let v = RecordView::parse(m).unwrap();
            let i = 5 + k as u64;
            assert_eq!(v.body(), &body_for(i)[..]);
            assert_eq!(v.queue_offset(), i as i64);
            assert_eq!(v.queue_id(), 1);
            assert_eq!(v.topic(), b"TopicA");
            assert_eq!(
                properties::get(v.properties(), "KEYS"),
                Some(format!("key-{i} all").as_bytes())
            );
        }

        // Tag filter: only TagA (every third message).
        let tag_a = [properties::java_string_hash(b"TagA") as i64];
        let r = store
            .read_queue("TopicA", 1, 0, 32, 1 << 20, Some(&tag_a))
            .await
            .unwrap();
        let got: Vec<i64> = r
            .messages
            .iter()
            .map(|m| RecordView::parse(m).unwrap().queue_offset())
            .collect();
        assert_eq!(got, (0..30).step_by(3).collect::<Vec<i64>>());
        assert_eq!(r.next_offset, 30);
        let none = [12345i64];
        let r = store
            .read_queue("TopicA", 1, 0, 32, 1 << 20, Some(&none))
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.messages.len(), r.next_offset),
            (ReadStatus::NoMatchedMessage, 0, 30)
        );

        // Byte limit: the first message always fits, then stop once over.
        let r = store
            .read_queue("TopicA", 1, 0, 32, 150, None)
            .await
            .unwrap();
        assert!(
            !r.messages.is_empty() && r.messages.len() < 3,
            "got {}",
            r.messages.len()
        );

        // Offsets outside the queue.
        let r = store
            .read_queue("TopicA", 1, 30, 8, 1 << 20, None)
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.next_offset),
            (ReadStatus::OffsetOverflowOne, 30)
        );
        let r = store
            .read_queue("TopicA", 1, 31, 8, 1 << 20, None)
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.next_offset),
            (ReadStatus::OffsetOverflowBadly, 30)
        );
        let r = store
            .read_queue("TopicA", 2, 0, 8, 1 << 20, None)
            .await
            .unwrap();
        assert_eq!(r.status, ReadStatus::NoMatchedLogicQueue);
        store.shutdown().await.unwrap();
    });
}

#[test]
fn batches_get_consecutive_offsets_and_synced_appends_are_flushed() {
    let dir = store_dir("batch");
    let cfg = small_config(dir.path());
    run(async move {
        let store = ShardStore::open(cfg, 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        let bodies: Vec<Vec<u8>> = (0..10).map(body_for).collect();
        let props: Vec<Vec<u8>> = (0..10).map(props_for).collect();
        let drafts: Vec<_> = bodies
            .iter()
            .zip(&props)
            .map(|(b, p)| draft(b, p))
            .collect();
        let a = store
            .append("Batch", 0, &drafts, Durability::Synced)
            .await
            .unwrap();
        assert_eq!((a.first_queue_offset, a.count), (0, 10));
        assert!(
            store.stats().flushed as i64 >= a.end_phys,
            "synced append returned before flush"
        );
        let b = store
            .append("Batch", 0, &drafts[..3], Durability::Buffered)
            .await
            .unwrap();
        assert_eq!(b.first_queue_offset, 10);
        assert_eq!(b.first_phys, a.end_phys, "records are contiguous");
        // Every record of the batch is addressable by its own physical offset.
        let r = store
            .read_queue("Batch", 0, 0, 13, 1 << 20, None)
            .await
            .unwrap();
        assert_eq!(r.messages.len(), 13);
        for m in &r.messages {
            let v = RecordView::parse(m).unwrap();
            let again = store
                .read_message(v.physical_offset())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&again[..], &m[..]);
        }
        store.shutdown().await.unwrap();
    });
}

#[test]
fn roll_over_keeps_records_whole_and_cold_reads_come_from_disk() {
    let dir = store_dir("roll");
    let cfg = small_config(dir.path());
    let root = dir.path().to_path_buf();
    run(async move {
        let store = ShardStore::open(cfg, 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        let big = vec![7u8; 20_000];
        let n = 60u64; // ~1.2 MiB over 256 KiB segments
        let mut phys = Vec::new();
        for i in 0..n {
            let mut body = big.clone();
            body[..8].copy_from_slice(&i.to_be_bytes());
            let a = append_buffered(&store, "Roll", 0, draft(&body, b"")).await;
            phys.push(a.first_phys);
            // No record straddles a segment boundary.
            let seg = SEGMENT_BYTES as i64;
            assert_eq!(
                a.first_phys / seg,
                (a.end_phys - 1) / seg,
                "record {i} straddles segments"
            );
        }
        store.flush().await.unwrap();
        assert!(segment_files(&root).len() >= 5, "expected several segments");
        let stats = store.stats();
        assert!(stats.cache_bytes <= 64 << 10 || stats.cache_start > 0);

        let mut seen = 0;
        let mut offset = 0;
        while offset < n {
            let r = store
                .read_queue("Roll", 0, offset, 7, 1 << 20, None)
                .await
                .unwrap();
            assert_eq!(r.status, ReadStatus::Found);
            for m in &r.messages {
                let v = RecordView::parse(m).unwrap();
                v.verify_crc().unwrap();
                assert_eq!(&v.body()[..8], &(seen as u64).to_be_bytes());
                assert_eq!(v.physical_offset(), phys[seen]);
                seen += 1;
            }
            offset = r.next_offset;
        }
        assert_eq!(seen as u64, n);
        let stats = store.stats();
        assert!(stats.disk_reads > 0, "old records should come from disk");
        assert!(
            stats.cache_hit_reads > 0,
            "recent records should come from the tail cache"
        );
        store.shutdown().await.unwrap();
    });
}

#[test]
fn messages_are_found_by_key_unique_key_offset_and_time() {
    let dir = store_dir("lookup");
    let cfg = small_config(dir.path());
    run(async move {
        let store = ShardStore::open(cfg, 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        let mut times = Vec::new();
        // 450 messages with 3 keys each fill several 200-entry index files.
        for i in 0..150u64 {
            let (b, p) = (body_for(i), props_for(i));
            let a = store
                .append(
                    "Keys",
                    (i % 3) as i32,
                    &[draft(&b, &p)],
                    Durability::Buffered,
                )
                .await
                .unwrap();
            times.push(a.store_timestamp_ms);
            if i == 75 {
                glommio::timer::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        // Let the checkpoint task write sealed index files.
        glommio::timer::sleep(std::time::Duration::from_millis(200)).await;
        for i in [0u64, 1, 74, 149] {
            let found = store
                .query_by_key("Keys", &format!("key-{i}"), 10, 0, i64::MAX)
                .await
                .unwrap();
            assert_eq!(found.len(), 1, "key-{i}");
            assert_eq!(
                RecordView::parse(&found[0]).unwrap().body(),
                &body_for(i)[..]
            );
            let uniq = store
                .query_by_key("Keys", &format!("U{i:031}"), 10, 0, i64::MAX)
                .await
                .unwrap();
            assert_eq!(uniq.len(), 1);
        }
        let all = store
            .query_by_key("Keys", "all", 1000, 0, i64::MAX)
            .await
            .unwrap();
        assert_eq!(all.len(), 150);
        assert!(store
            .query_by_key("Other", "all", 10, 0, i64::MAX)
            .await
            .unwrap()
            .is_empty());
        assert!(store
            .query_by_key("Keys", "key-1", 10, 0, times[0] - 1)
            .await
            .unwrap()
            .is_empty());

        // Rewind by time on queue 0 (messages 0, 3, 6, ...).
        let t = times[78];
        let off = store.offset_by_time("Keys", 0, t).await.unwrap();
        assert_eq!(
            off, 26,
            "first message of queue 0 stored at or after the pause"
        );
        assert_eq!(store.offset_by_time("Keys", 0, 0).await.unwrap(), 0);
        assert_eq!(store.offset_by_time("Keys", 0, i64::MAX).await.unwrap(), 50);
        store.shutdown().await.unwrap();
    });
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let dir = store_dir("bad");
    let cfg = small_config(dir.path());
    run(async move {
        let store = ShardStore::open(cfg, 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        let ok = draft(b"x", b"");
        for topic in ["", "a/b", "..", &"t".repeat(128)] {
            let e = store
                .append(topic, 0, &[ok], Durability::Buffered)
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::IllegalMessage(_)), "{topic:?}: {e}");
        }
        let e = store
            .append("T", -1, &[ok], Durability::Buffered)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::IllegalMessage(_)));
        let huge = vec![0u8; (64 << 10) + 1];
        let e = store
            .append("T", 0, &[draft(&huge, b"")], Durability::Buffered)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::IllegalMessage(_)), "{e}");
        let e = store
            .append("T", 0, &[], Durability::Buffered)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::IllegalMessage(_)));
        assert_eq!(store.max_offset("T", 0), 0);
        assert_eq!(store.stats().write_pos, 0, "nothing reached the log");
        assert!(store.read_message(12345).await.unwrap().is_none());
        assert!(store.read_message(-1).await.unwrap().is_none());
        store.shutdown().await.unwrap();
    });
}
