//! A small send-load driver used until `rocketcore-bench` exists: N
//! connections, each keeping a window of SEND_MESSAGE_V2 requests in flight,
//! for a fixed time; prints msgs/s, latency percentiles from merged HDR
//! histograms, the share of requests the broker forwarded across shards,
//! and (with --broker-pid) the broker's CPU per 100k messages.
//!
//!   cargo run --release --example send_load -- --broker 127.0.0.1:10911 \
//!       [--connections 16] [--window 1] [--size 1024] [--seconds 10] [--broker-pid PID]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use clap::Parser;
use hdrhistogram::Histogram;
use rocketcore::remoting::{FrameDecoder, RemotingCommand};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    broker: SocketAddr,
    #[arg(long, default_value_t = 16)]
    connections: usize,
    #[arg(long, default_value_t = 1)]
    window: usize,
    #[arg(long, default_value_t = 1024)]
    size: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value = "LoadTopic")]
    topic: String,
    #[arg(long, default_value_t = 8)]
    queues: i32,
    #[arg(long)]
    broker_pid: Option<u32>,
}

fn send_cmd(topic: &str, queue: i32, body: &bytes::Bytes) -> RemotingCommand {
    let mut cmd = RemotingCommand::new_request(310);
    for (k, v) in [
        ("a", "load"),
        ("b", topic),
        ("c", "TBW102"),
        ("d", "8"),
        ("f", "0"),
        ("h", "0"),
        ("i", "TAGS\u{1}load\u{2}"),
    ] {
        cmd.set_ext(k, v);
    }
    cmd.set_ext("e", queue);
    cmd.set_ext("g", 0);
    cmd.with_body(body.clone())
}

struct Conn {
    s: TcpStream,
    buf: BytesMut,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Conn {
            s,
            buf: BytesMut::new(),
        }
    }
    fn send(&mut self, cmd: &RemotingCommand) {
        let mut out = BytesMut::new();
        cmd.encode(&mut out).unwrap();
        self.s.write_all(&out).expect("write");
    }
    fn recv(&mut self) -> RemotingCommand {
        let d = FrameDecoder::new();
        let mut chunk = [0u8; 65536];
        loop {
            if let Some(c) = RemotingCommand::decode(&mut self.buf, &d).expect("decode") {
                return c;
            }
            let n = self.s.read(&mut chunk).expect("read");
            assert!(n > 0, "broker closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
    fn call(&mut self, mut cmd: RemotingCommand, opaque: i32) -> RemotingCommand {
        cmd.opaque = opaque;
        self.send(&cmd);
        self.recv()
    }
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn runtime_info(addr: SocketAddr) -> HashMap<String, String> {
    let mut c = Conn::new(addr);
    let r = c.call(RemotingCommand::new_request(28), 1);
    let v: serde_json::Value =
        serde_json::from_slice(r.body.as_deref().unwrap_or(b"{}")).unwrap_or_default();
    v["table"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn main() {
    let a = Args::parse();
    let body = bytes::Bytes::from(vec![b'x'; a.size]);
    // Create the topic up front so every connection sees all queues.
    let mut admin = Conn::new(a.broker);
    let mut create = RemotingCommand::new_request(17);
    for (k, v) in [
        ("topic", a.topic.as_str()),
        ("defaultTopic", "TBW102"),
        ("perm", "6"),
        ("topicFilterType", "SINGLE_TAG"),
        ("order", "false"),
    ] {
        create.set_ext(k, v);
    }
    create.set_ext("readQueueNums", a.queues);
    create.set_ext("writeQueueNums", a.queues);
    assert_eq!(admin.call(create, 1).code, 0, "create topic");
    let before = runtime_info(a.broker);
    let cpu0 = a.broker_pid.and_then(cpu_ticks);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(a.seconds);
    let threads: Vec<_> = (0..a.connections)
        .map(|t| {
            let (addr, topic, body, window, queues) = (
                a.broker,
                a.topic.clone(),
                body.clone(),
                a.window.max(1),
                a.queues,
            );
            std::thread::spawn(move || {
                let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                let mut c = Conn::new(addr);
                let mut sent_at: HashMap<i32, Instant> = HashMap::new();
                let (mut opaque, mut errors) = (1i32, 0u64);
                let mut q = t as i32;
                let mut issue =
                    |c: &mut Conn, sent_at: &mut HashMap<i32, Instant>, opaque: &mut i32| {
                        let mut cmd = send_cmd(&topic, q % queues, &body);
                        q += 1;
                        cmd.opaque = *opaque;
                        sent_at.insert(*opaque, Instant::now());
                        *opaque += 1;
                        c.send(&cmd);
                    };
                for _ in 0..window {
                    issue(&mut c, &mut sent_at, &mut opaque);
                }
                while !sent_at.is_empty() {
                    let r = c.recv();
                    if let Some(t0) = sent_at.remove(&r.opaque) {
                        let _ = h.record(t0.elapsed().as_micros() as u64);
                    }
                    if r.code != 0 {
                        if errors == 0 && t == 0 {
                            eprintln!("first error: code {} {:?}", r.code, r.remark);
                        }
                        errors += 1;
                    }
                    if Instant::now() < deadline {
                        issue(&mut c, &mut sent_at, &mut opaque);
                    }
                }
                (h, errors)
            })
        })
        .collect();
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut errors = 0;
    for t in threads {
        let (h, e) = t.join().unwrap();
        all.add(&h).unwrap();
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    let after = runtime_info(a.broker);
    let delta = |k: &str| {
        let g =
            |m: &HashMap<String, String>| m.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        g(&after) - g(&before)
    };
    let n = all.len();
    println!(
        "size={} connections={} window={} msgs={} errors={} msgs/s={:.0} MB/s={:.1} latency_us p50={} p99={} p99.9={} max={}",
        a.size,
        a.connections,
        a.window,
        n,
        errors,
        n as f64 / secs,
        n as f64 * a.size as f64 / secs / 1e6,
        all.value_at_quantile(0.5),
        all.value_at_quantile(0.99),
        all.value_at_quantile(0.999),
        all.max()
    );
    let (fwd, total) = (
        delta("requestsForwardedToOtherShards"),
        delta("requestsFromClients"),
    );
    if total > 0 {
        println!(
            "forwarded across shards: {:.1}% of {total} client requests",
            100.0 * fwd as f64 / total as f64
        );
    }
    if let (Some(pid), Some(c0)) = (a.broker_pid, cpu0) {
        if let Some(c1) = cpu_ticks(pid) {
            let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
            let cpu = (c1 - c0) as f64 / hz;
            println!(
                "broker CPU: {:.2} s total, {:.3} s per 100k msgs",
                cpu,
                cpu * 100_000.0 / n.max(1) as f64
            );
        }
    }
}
