//! The kill loop: `kill -9` of a SYNC_FLUSH broker under load, at a random
//! moment, again and again on one store. After every restart each send the
//! broker acknowledged (in this cycle or any before) must be readable
//! exactly once, at the queue offset it was acknowledged with, and every
//! consume queue must agree with the log (contiguous offsets, each unit
//! pointing at a record of its own topic and queue).
//!
//! CI runs `KILL_CYCLES_CI` cycles. A longer campaign:
//! `ROCKETCORE_KILL_CYCLES=100 cargo test --release --test kill_loop -- --nocapture`
//! (`ROCKETCORE_KILL_SEED` repeats a run). It prints cycles, acknowledged,
//! recovered and lost; lost must be 0.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use rocketcore::remoting::codes::response_code as rs;

const TOPIC: &str = "KillLoop";
const QUEUES: i32 = 4;
const SENDERS: usize = 4;
const KILL_CYCLES_CI: usize = 4;
/// Load runs this long (at random within) before the kill.
const LOAD_MIN_MS: u64 = 150;
const LOAD_MAX_MS: u64 = 900;

/// Deterministic xorshift, seeded per run and printed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

/// Reads every queue from 0 and checks it against the log's own record
/// fields; returns body -> (queue, offset).
fn read_all(server: &Server, cycle: usize) -> HashMap<String, (i32, i64)> {
    let mut found = HashMap::new();
    for q in 0..QUEUES {
        for (at, rec) in pull_all(server.broker, "kill-loop-check", TOPIC, q)
            .into_iter()
            .enumerate()
        {
            // The consume queue agrees with the log: its unit led to a
            // record of this queue, at exactly the next offset.
            assert_eq!(rec.topic, TOPIC.as_bytes(), "cycle {cycle}");
            assert_eq!(rec.queue_id, q, "cycle {cycle}");
            assert_eq!(
                rec.queue_offset, at as i64,
                "cycle {cycle}: queue {q} has a gap"
            );
            let body = String::from_utf8(rec.body).unwrap();
            let prev = found.insert(body.clone(), (q, rec.queue_offset));
            assert!(prev.is_none(), "cycle {cycle}: {body} stored twice");
        }
    }
    found
}

#[test]
fn acknowledged_sends_survive_repeated_kill_9() {
    let cycles = env_number("ROCKETCORE_KILL_CYCLES").map_or(KILL_CYCLES_CI, |n| n as usize);
    let seed = env_number("ROCKETCORE_KILL_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1
    });
    println!("kill loop: {cycles} cycles, seed {seed}");
    let mut rng = Rng(seed);
    let dir = store_dir("kill-loop");
    let store = dir.path().join("store");
    let args = ["--shards", "2", "--flush", "sync"];
    // body -> (queue, offset) of every acknowledged send so far.
    let acked = Acked::default();
    let started = Instant::now();
    let mut recovered = 0;
    for cycle in 0..cycles {
        let mut server = Server::start_dev(&store, &args);
        if cycle == 0 {
            let mut admin = Client::connect(server.broker);
            let create = create_topic_request(TOPIC, QUEUES as u32);
            assert_eq!(admin.call(create).unwrap().code, rs::SUCCESS);
        } else {
            // Everything acknowledged before the last kill is back.
            let found = read_all(&server, cycle);
            recovered = found.len();
            let acked = acked.lock().unwrap();
            let lost: Vec<_> = acked
                .iter()
                .filter(|(body, at)| found.get(*body) != Some(at))
                .map(|(body, at)| format!("{body} at {at:?}: {:?}", found.get(body)))
                .collect();
            assert!(
                lost.is_empty(),
                "cycle {cycle} (seed {seed}): {} of {} acknowledged sends lost: {:?}",
                lost.len(),
                acked.len(),
                &lost[..lost.len().min(5)]
            );
        }
        let load = SendLoad::start(
            server.broker,
            TOPIC,
            QUEUES,
            SENDERS,
            &format!("c{cycle}"),
            &acked,
            Duration::from_secs(30),
        );
        std::thread::sleep(Duration::from_millis(rng.between(LOAD_MIN_MS, LOAD_MAX_MS)));
        server.kill9();
        load.stop();
    }
    // One last restart to check the final kill.
    let server = Server::start_dev(&store, &args);
    let found = read_all(&server, cycles);
    let acked = acked.lock().unwrap();
    let lost = acked
        .iter()
        .filter(|(body, at)| found.get(*body) != Some(at))
        .count();
    println!(
        "kill loop: {cycles} cycles in {:.1?}, {} acknowledged, {} stored after the last restart \
         (before it: {recovered}), {lost} lost",
        started.elapsed(),
        acked.len(),
        found.len()
    );
    assert_eq!(lost, 0, "seed {seed}: acknowledged sends lost");
    assert!(
        acked.len() >= cycles * 10,
        "too few sends acknowledged to mean anything"
    );
}
