//! Clients that misbehave affect only their own connections, and the
//! broker's memory stays within its bounds: a client that never reads its
//! pull replies, a frame dribbled a byte at a time (slowloris), ten
//! thousand idle connections, and hundreds of pipelined pulls asking for a
//! million messages each. Throughout, an ordinary client keeps sending and
//! pulling. The broker's RSS is printed at each step and must stay within
//! a generous bound over its size with the backlog cached (growth without
//! bound is what this catches, not a figure).

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::*;
use rocketcore::remoting::codes::response_code as rs;
use rocketcore::remoting::RemotingCommand;

const TOPIC: &str = "Hostile";
const BACKLOG: usize = 2_000;
const BODY: usize = 16 << 10;
const IDLE_CONNECTIONS: usize = 10_000;
const PIPELINED_PULLS: usize = 500;
/// What misbehaving clients may make the broker hold, by its configured
/// bounds: the replies of one connection's in-flight requests (1024 pulls
/// of at most 256 KiB) plus its outbox bound (32 MiB), and each idle
/// connection's buffers and task (a few KiB; 24 allowed).
const RSS_GROWTH_LIMIT_MIB: u64 = 256 + 32 + ((IDLE_CONNECTIONS as u64 * 24) >> 10);

fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn huge_pull(offset: i64) -> RemotingCommand {
    let mut cmd = pull_request("hostile", TOPIC, 0, offset);
    cmd.set_ext("maxMsgNums", 1_000_000);
    cmd
}

fn encoded(mut cmd: RemotingCommand, opaque: i32) -> BytesMut {
    cmd.opaque = opaque;
    let mut out = BytesMut::new();
    cmd.encode(&mut out).unwrap();
    out
}

/// The ordinary client still gets answers: a send and a pull.
fn canary(c: &mut Client, step: &str) {
    let r = c
        .call(send_request(TOPIC, 1, b"canary", ""))
        .unwrap_or_else(|e| panic!("{step}: canary send: {e}"));
    assert_eq!(r.code, rs::SUCCESS, "{step}: {:?}", r.remark);
    let r = c
        .call(pull_request("canary", TOPIC, 0, 0))
        .unwrap_or_else(|e| panic!("{step}: canary pull: {e}"));
    assert_eq!(r.code, rs::SUCCESS, "{step}: {:?}", r.remark);
}

/// Raises this process's open-file limit to its hard limit (the broker
/// inherits it) and says how many idle connections that leaves room for:
/// each costs a descriptor here and one in the broker.
fn idle_connections_possible() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on this process.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    (lim.rlim_cur as usize)
        .saturating_sub(512)
        .min(IDLE_CONNECTIONS)
}

#[test]
fn hostile_clients_affect_only_their_own_connections() {
    let idle_wanted = idle_connections_possible();
    if idle_wanted < IDLE_CONNECTIONS {
        println!("open-file limit allows {idle_wanted} idle connections, not {IDLE_CONNECTIONS}");
    }
    let dir = store_dir("hostile");
    let server = Server::start_dev(&dir.path().join("store"), &["--shards", "2"]);
    let pid = server.pid();
    let mut c = Client::connect(server.broker);
    assert_eq!(
        c.call(create_topic_request(TOPIC, 2)).unwrap().code,
        rs::SUCCESS
    );
    let body = vec![b'h'; BODY];
    for _ in 0..BACKLOG {
        let r = c.call(send_request(TOPIC, 0, &body, "")).unwrap();
        assert_eq!(r.code, rs::SUCCESS);
    }
    canary(&mut c, "backlog");
    let base = rss_mib(pid);
    println!(
        "rss with a {} MiB backlog: {base} MiB",
        (BACKLOG * BODY) >> 20
    );
    let mut peak = base;

    // 1. A client that sends pulls for the backlog and never reads a reply.
    let mut deaf = TcpStream::connect(server.broker).unwrap();
    deaf.set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut sent = 0;
    for i in 0..5_000 {
        // Its writes block once the broker stops reading it: that is the
        // push-back, and the point where this client gives up.
        if deaf.write_all(&encoded(huge_pull(0), i + 1)).is_err() {
            break;
        }
        sent += 1;
    }
    std::thread::sleep(Duration::from_millis(500));
    canary(&mut c, "a client that does not read");
    let rss = rss_mib(pid);
    peak = peak.max(rss);
    println!("rss with a client not reading ({sent} pulls written): {rss} MiB");

    // 2. Slowloris: half a frame, a byte every 20 ms; others are served
    // meanwhile, and the frame is answered once complete.
    let mut slow = Client::connect(server.broker);
    let frame = encoded(send_request(TOPIC, 1, b"slow", ""), 7);
    let half = frame.len() / 2;
    let dribble_until = Instant::now() + Duration::from_secs(2);
    let mut at = 0;
    while at < half && Instant::now() < dribble_until {
        slow.send_raw(&frame[at..at + 1]).unwrap();
        at += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    canary(&mut c, "a frame dribbled");
    slow.send_raw(&frame[at..]).unwrap();
    let r = slow.read_response(7).unwrap();
    assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);

    // 3. Ten thousand idle connections.
    let idle: Vec<TcpStream> = (0..idle_wanted)
        .map(|i| {
            TcpStream::connect(server.broker).unwrap_or_else(|e| panic!("idle connection {i}: {e}"))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    canary(&mut c, "idle connections");
    let rss = rss_mib(pid);
    peak = peak.max(rss);
    println!("rss with {idle_wanted} idle connections: {rss} MiB");
    drop(idle);

    // 4. Pipelined pulls asking for a million messages each: every one is
    // answered, each within the per-pull limits.
    let mut greedy = Client::connect(server.broker);
    let mut all = BytesMut::new();
    for i in 0..PIPELINED_PULLS {
        all.extend_from_slice(&encoded(huge_pull((i % 60) as i64 * 32), 1_000 + i as i32));
    }
    // Written from another thread while this one reads, so the pipeline
    // is never held up by replies this side has not read yet.
    let mut w = greedy.stream_clone();
    let writer = std::thread::spawn(move || w.write_all(&all));
    for i in 0..PIPELINED_PULLS {
        let r = greedy.read_response(1_000 + i as i32).unwrap();
        assert_eq!(r.code, rs::SUCCESS, "pull {i}: {:?}", r.remark);
        let n = records(r.body.as_deref().unwrap_or_default()).len();
        assert!((1..=32).contains(&n), "pull {i}: {n} messages");
    }
    writer.join().unwrap().unwrap();
    canary(&mut c, "pipelined huge pulls");
    let rss = rss_mib(pid);
    peak = peak.max(rss);
    println!("rss after {PIPELINED_PULLS} pipelined pulls of 1 000 000: {rss} MiB");

    drop(deaf);
    println!(
        "rss peak {peak} MiB, {} MiB over the backlog's",
        peak - base
    );
    assert!(
        peak <= base + RSS_GROWTH_LIMIT_MIB,
        "broker grew from {base} to {peak} MiB"
    );
}
