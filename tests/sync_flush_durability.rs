//! Under SYNC_FLUSH, every acknowledged send survives `kill -9` of the
//! broker: after a restart on the same store each acknowledged message is
//! there, exactly once.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
    let acked: Arc<Mutex<HashMap<String, (i32, i64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for t in 0..SENDERS {
        let (acked, stop, addr) = (acked.clone(), stop.clone(), server.broker);
        senders.push(std::thread::spawn(move || {
            let mut c = Client::connect(addr);
            let start = Instant::now();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) && start.elapsed() < LOAD_MAX {
                let body = format!("sender-{t}-msg-{i}");
                let q = ((t as u64 + i) % QUEUES as u64) as i32;
                match c.call(send_request(TOPIC, q, body.as_bytes(), "")) {
                    Ok(r) if r.code == rs::SUCCESS => {
                        let off = r.ext_i64("queueOffset").unwrap();
                        acked.lock().unwrap().insert(body, (q, off));
                    }
                    // The broker died under us: that send was never acknowledged.
                    _ => break,
                }
                i += 1;
            }
        }));
    }
    let start = Instant::now();
    while acked.lock().unwrap().len() < ACKS_BEFORE_KILL && start.elapsed() < LOAD_MAX {
        std::thread::sleep(Duration::from_millis(5));
    }
    // kill -9 in the middle of the load.
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 100,
        "only {} sends were acknowledged",
        acked.len()
    );

    let server = Server::start_dev(&store, &["--shards", "2", "--flush", "sync"]);
    let mut c = Client::connect(server.broker);
    let mut found: HashMap<String, (i32, i64)> = HashMap::new();
    for q in 0..QUEUES {
        let mut offset = 0i64;
        for _ in 0..10_000 {
            let r = c
                .call(pull_request("durability-check", TOPIC, q, offset))
                .unwrap();
            if r.code != rs::SUCCESS {
                break;
            }
            for rec in records(r.body.as_deref().unwrap_or_default()) {
                let body = String::from_utf8(rec.body().to_vec()).unwrap();
                let prev = found.insert(body.clone(), (q, rec.queue_offset()));
                assert!(prev.is_none(), "{body} stored twice");
            }
            offset = r.ext_i64("nextBeginOffset").unwrap();
        }
    }
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
