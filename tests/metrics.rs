//! `/metrics` of a real `rocketcore dev`, read with a Prometheus text
//! parser: the counters move by exactly what was sent and pulled, lag and
//! latency series are there, and the port answers nothing but GET.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{Client, Server};

/// One HTTP request; (status line, body).
fn http(addr: SocketAddr, request: &str) -> (String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").expect("an HTTP response");
    (head.lines().next().unwrap().to_string(), body.to_string())
}

fn scrape(addr: SocketAddr) -> prometheus_parse::Scrape {
    let (status, body) = http(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("a Prometheus text page")
}

/// The value of `name` whose labels include all of `want`.
fn value(scrape: &prometheus_parse::Scrape, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| want.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

#[test]
fn metrics_count_what_was_sent_and_pulled() {
    let store = common::store_dir("metrics");
    let port = common::free_port();
    let server = Server::dev(store.path())
        .args([
            "--set",
            "metricsExporterType=PROM",
            "--set",
            &format!("metricsPromExporterPort={port}"),
        ])
        .start();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    let mut c = Client::connect(server.broker);
    assert_eq!(
        c.call(common::create_topic_request("Metered", 2))
            .unwrap()
            .code,
        0
    );
    let body = b"twelve bytes";
    for i in 0..50 {
        let r = c
            .call(common::send_request("Metered", i % 2, body, ""))
            .unwrap();
        assert_eq!(r.code, 0, "{:?}", r.remark);
    }
    let mut pulled = 0;
    for q in 0..2 {
        let r = c
            .call(common::pull_request("MeterGroup", "Metered", q, 0))
            .unwrap();
        pulled += common::records(r.body.as_deref().unwrap()).len();
    }
    assert_eq!(pulled, 50);
    let mut commit = rocketcore::remoting::RemotingCommand::new_request(15);
    for (k, v) in [
        ("consumerGroup", "MeterGroup"),
        ("topic", "Metered"),
        ("queueId", "0"),
        ("commitOffset", "5"),
    ] {
        commit.set_ext(k, v);
    }
    assert_eq!(c.call(commit).unwrap().code, 0);

    // Two delay-level messages (level 4, 30 s) wait in the schedule.
    for _ in 0..2 {
        let r = c
            .call(common::send_request("Delayed", 0, body, "DELAY\u{1}4\u{2}"))
            .unwrap();
        assert_eq!(r.code, 0, "{:?}", r.remark);
    }

    let m = scrape(addr);
    let staged: f64 = m
        .samples
        .iter()
        .filter(|s| {
            s.metric == "rocketcore_staged_messages" && s.labels.get("kind") == Some("delay")
        })
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) => v,
            _ => 0.0,
        })
        .sum();
    assert_eq!(staged, 2.0, "delay-level messages waiting");
    assert!(value(&m, "rocketcore_disk_total_bytes", &[]).is_some_and(|v| v > 0.0));
    let topic = [("topic", "Metered")];
    assert_eq!(value(&m, "rocketmq_messages_in_total", &topic), Some(50.0));
    assert_eq!(
        value(&m, "rocketmq_throughput_in_total", &topic),
        Some(50.0 * body.len() as f64)
    );
    let out = [("topic", "Metered"), ("consumer_group", "MeterGroup")];
    assert_eq!(value(&m, "rocketmq_messages_out_total", &out), Some(50.0));
    // Queue 0 holds 25 and the group committed 5 of them; queue 1 nothing.
    assert_eq!(
        value(&m, "rocketmq_consumer_lag_messages", &out),
        Some(20.0)
    );
    let sends = m
        .samples
        .iter()
        .find(|s| s.metric == "rocketcore_request_latency_seconds")
        .expect("a send latency histogram");
    let prometheus_parse::Value::Histogram(buckets) = &sends.value else {
        panic!("not a histogram: {:?}", sends.value);
    };
    let inf = buckets
        .iter()
        .find(|b| b.less_than == f64::INFINITY)
        .unwrap();
    // The 50 sends and the 2 delayed ones.
    assert_eq!(inf.count, 52.0, "{buckets:?}");
    let conns: f64 = m
        .samples
        .iter()
        .filter(|s| s.metric == "rocketcore_connections")
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) => v,
            _ => 0.0,
        })
        .sum();
    assert!(conns >= 1.0, "no connection counted");
    assert!(m
        .samples
        .iter()
        .any(|s| s.metric == "rocketcore_uptime_seconds"));
    assert!(m
        .samples
        .iter()
        .all(|s| s.labels.get("cluster") == Some("DefaultCluster")));

    let (status, _) = http(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert!(status.contains("405"), "{status}");
    let (status, _) = http(addr, "GET /nothing HTTP/1.1\r\n\r\n");
    assert!(status.contains("404"), "{status}");
    let (status, _) = http(addr, "garbage\r\n\r\n");
    assert!(status.contains("400"), "{status}");
    let (status, body) = http(addr, "GET /healthz HTTP/1.1\r\n\r\n");
    assert!(status.contains("200") && body == "ok\n");
}

#[test]
fn a_name_server_serves_its_own_metrics() {
    use std::io::BufRead;
    let (ns_port, metrics_port) = (common::free_port(), common::free_port());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rocketcore"))
        .args(["namesrv", "--listen", &format!("127.0.0.1:{ns_port}")])
        .args(["--set", "metricsExporterType=PROM"])
        .args(["--set", &format!("metricsPromExporterPort={metrics_port}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let _ = std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
    let result = std::panic::catch_unwind(|| {
        assert!(line.starts_with("ready:"), "{line:?}");
        let ns: SocketAddr = format!("127.0.0.1:{ns_port}").parse().unwrap();
        let mut c = Client::connect(ns);
        for _ in 0..3 {
            let mut route = rocketcore::remoting::RemotingCommand::new_request(105);
            route.set_ext("topic", "Nowhere");
            c.call(route).unwrap();
        }
        let m = scrape(format!("127.0.0.1:{metrics_port}").parse().unwrap());
        assert_eq!(
            value(&m, "rocketcore_namesrv_requests_total", &[]),
            Some(3.0)
        );
        assert_eq!(value(&m, "rocketcore_namesrv_brokers", &[]), Some(0.0));
        assert_eq!(value(&m, "rocketmq_topic_number", &[]), Some(0.0));
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
