//! Acknowledged synced appends survive SIGKILL. The test binary runs itself
//! as a child that appends with synced durability from many tasks and
//! prints each acknowledgement; the parent kills it mid-load, reopens the
//! store, and finds every acknowledged record, each exactly once.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::*;
use rocketcore_storage::{Durability, RecordView, ShardStore, SystemEnvironment};

const CHILD_ENV: &str = "ROCKETCORE_STORAGE_KILL_CHILD_DIR";
const APPENDERS: u64 = 16;
/// The child stops by itself after this long if nobody kills it.
const CHILD_MAX_SECONDS: u64 = 30;
const ACKS_BEFORE_KILL: usize = 2_000;

fn child(dir: std::path::PathBuf) {
    let cfg = small_config(&dir);
    run(async move {
        let store = ShardStore::open(cfg, 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(CHILD_MAX_SECONDS);
        let mut tasks = Vec::new();
        for t in 0..APPENDERS {
            let store = store.clone();
            tasks.push(glommio::spawn_local(async move {
                let mut seq = t;
                while Instant::now() < deadline {
                    let body = format!("seq-{seq}").into_bytes();
                    let props = format!("KEYS\x01k{seq}\x02").into_bytes();
                    let a = store
                        .append(
                            "Kill",
                            (seq % 4) as i32,
                            &[draft(&body, &props)],
                            Durability::Synced,
                        )
                        .await
                        .unwrap();
                    // Printed only after the append is durable.
                    println!("ack {seq} {} {}", seq % 4, a.first_queue_offset);
                    seq += APPENDERS;
                }
            }));
        }
        for t in tasks {
            t.await;
        }
    });
}

#[test]
fn acknowledged_synced_appends_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(dir.into());
        return;
    }
    let dir = store_dir("kill");
    let mut proc = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "acknowledged_synced_appends_survive_sigkill",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = proc.stdout.take().unwrap();
    let mut acked: Vec<(u64, i32, u64)> = Vec::new();
    let start = Instant::now();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let mut f = line.split_whitespace();
        if f.next() != Some("ack") {
            continue;
        }
        let n: Vec<u64> = f.filter_map(|x| x.parse().ok()).collect();
        acked.push((n[0], n[1] as i32, n[2]));
        if acked.len() >= ACKS_BEFORE_KILL || start.elapsed() > Duration::from_secs(20) {
            break;
        }
    }
    // SIGKILL mid-load: the child is still appending.
    unsafe { libc::kill(proc.id() as i32, libc::SIGKILL) };
    let status = proc.wait().unwrap();
    assert!(!status.success(), "child should have been killed");
    assert!(
        acked.len() >= 100,
        "child acknowledged only {} appends",
        acked.len()
    );

    let cfg = small_config(dir.path());
    run(async move {
        let store = ShardStore::open(cfg, 0, Rc::new(SystemEnvironment))
            .await
            .unwrap();
        let mut seen_seqs = HashSet::new();
        let mut at_offset = std::collections::HashMap::new();
        for q in 0..4 {
            let mut offset = 0;
            let max = store.max_offset("Kill", q);
            while offset < max {
                let r = store
                    .read_queue("Kill", q, offset, 64, 1 << 20, None)
                    .await
                    .unwrap();
                for m in &r.messages {
                    let v = RecordView::parse(m).unwrap();
                    let seq: u64 = std::str::from_utf8(v.body()).unwrap()[4..].parse().unwrap();
                    assert!(seen_seqs.insert(seq), "seq {seq} stored twice");
                    at_offset.insert((q, v.queue_offset() as u64), seq);
                }
                offset = r.next_offset;
            }
        }
        for (seq, q, off) in &acked {
            assert_eq!(
                at_offset.get(&(*q, *off)),
                Some(seq),
                "acknowledged seq {seq} lost"
            );
        }
        eprintln!(
            "{} acknowledged, {} recovered, report {:?}",
            acked.len(),
            seen_seqs.len(),
            store.recovery_report()
        );
        store.shutdown().await.unwrap();
    });
}
