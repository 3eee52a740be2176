//! Under SYNC_FLUSH, every acknowledged send survives `kill -9` of the
//! broker: after a restart on the same store each acknowledged message is
//! there, exactly once. Under ASYNC_FLUSH a process crash loses at most the
//! write round in flight: sends acknowledged a moment before the kill are
//! there too, however long the fdatasync interval.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use rocketcore::remoting::codes::response_code as rs;

const TOPIC: &str = "DurableTopic";
const QUEUES: i32 = 4;
const SENDERS: usize = 4;
const ACKS_BEFORE_KILL: usize = 1_500;
const LOAD_MAX: Duration = Duration::from_secs(30);

#[test]
fn acknowledged_sends_survive_kill_9_under_sync_flush() {
    let dir = store_dir("durability");
    let store = dir.path().join("store");
    let mut server = Server::start_dev(&store, &["--shards", "2", "--flush", "sync"]);
    // Create the topic with a known queue count.
    let mut admin = Client::connect(server.broker);
    let create = create_topic_request(TOPIC, QUEUES as u32);
    assert_eq!(admin.call(create).unwrap().code, rs::SUCCESS);

    // body -> (queue, offset) for every acknowledged send.
    let acked = Acked::default();
    let load = SendLoad::start(
        server.broker,
        TOPIC,
        QUEUES,
        SENDERS,
        "sender",
        &acked,
        LOAD_MAX,
    );
    let start = Instant::now();
    while acked.lock().unwrap().len() < ACKS_BEFORE_KILL && start.elapsed() < LOAD_MAX {
        std::thread::sleep(Duration::from_millis(5));
    }
    // kill -9 in the middle of the load.
    server.kill9();
    load.stop();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 100,
        "only {} sends were acknowledged",
        acked.len()
    );

    let server = Server::start_dev(&store, &["--shards", "2", "--flush", "sync"]);
    let found = read_back(&server);
    for (body, at) in &acked {
        assert_eq!(
            found.get(body),
            Some(at),
            "acknowledged {body} at {at:?} is missing after kill -9"
        );
    }
    eprintln!(
        "{} acknowledged before kill -9, {} recovered",
        acked.len(),
        found.len()
    );
}

/// Every record of TOPIC's queues as body -> (queue, offset); a body stored
/// twice fails the test.
fn read_back(server: &Server) -> HashMap<String, (i32, i64)> {
    let mut found = HashMap::new();
    for q in 0..QUEUES {
        for rec in pull_all(server.broker, "durability-check", TOPIC, q) {
            let body = String::from_utf8(rec.body).unwrap();
            let prev = found.insert(body.clone(), (q, rec.queue_offset));
            assert!(prev.is_none(), "{body} stored twice");
        }
    }
    found
}

/// ASYNC_FLUSH with an fdatasync interval far longer than the test: the
/// acknowledged sends are in the file (written, not yet synced) when the
/// process dies, so a restart finds them all.
#[test]
fn acknowledged_sends_survive_kill_9_under_async_flush() {
    const SENDS: usize = 200;
    let dir = store_dir("async-durability");
    let store = dir.path().join("store");
    let args = [
        "--shards",
        "2",
        "--flush",
        "async",
        "--set",
        "flushIntervalCommitLog=600000",
    ];
    let mut server = Server::start_dev(&store, &args);
    let mut c = Client::connect(server.broker);
    let create = create_topic_request(TOPIC, QUEUES as u32);
    assert_eq!(c.call(create).unwrap().code, rs::SUCCESS);
    let mut acked = HashMap::new();
    for i in 0..SENDS {
        let body = format!("async-msg-{i}");
        let q = (i % QUEUES as usize) as i32;
        let r = c.call(send_request(TOPIC, q, body.as_bytes(), "")).unwrap();
        assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
        acked.insert(body, (q, r.ext_i64("queueOffset").unwrap()));
    }
    // The writes go out microseconds after each append; this leaves a
    // loaded machine ample time for the last round.
    std::thread::sleep(Duration::from_millis(300));
    server.kill9();

    let server = Server::start_dev(&store, &args);
    let found = read_back(&server);
    let lost: Vec<&String> = acked
        .iter()
        .filter(|(body, at)| found.get(*body) != Some(at))
        .map(|(body, _)| body)
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {SENDS} acknowledged sends lost by kill -9: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}
