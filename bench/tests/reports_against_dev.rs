//! A 3-second produce and a 3-second e2e run against `rocketcore dev`
//! write complete, well-formed reports (never timings: those are measured,
//! not asserted), and bad parameters are refused before any load is sent.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Server;

fn bench() -> &'static str {
    env!("CARGO_BIN_EXE_rocketcore-bench")
}

/// The server binary sits next to the bench in the same target directory;
/// build it if this package's tests run alone.
fn server_binary() -> PathBuf {
    let path = Path::new(bench()).with_file_name("rocketcore");
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "rocketcore", "--bin", "rocketcore"])
            .status()
            .expect("cargo build");
        assert!(status.success(), "building the rocketcore binary failed");
    }
    path
}

/// A `rocketcore dev` on free loopback ports, killed when dropped; with its
/// name server address.
fn start_dev(store: &Path) -> (Server, String) {
    let server = Server::dev(store).binary(server_binary()).start();
    let ns = server.namesrv.to_string();
    (server, ns)
}

fn run_bench(args: &[&str]) -> std::process::Output {
    // A run without --out writes results/ under its working directory:
    // the build's scratch space, not the source tree.
    let _ = std::fs::create_dir_all(env!("CARGO_TARGET_TMPDIR"));
    Command::new(bench())
        .args(args)
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .output()
        .unwrap()
}

fn check_results(dir: &Path, workload: &str, hists: &[&str]) {
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["workload"], workload);
    for k in [
        "msgs_per_sec",
        "mb_per_sec",
        "errors",
        "bench_cpu_secs",
        "duration_secs",
    ] {
        assert!(summary[k].is_number(), "summary lacks {k}: {summary}");
    }
    assert!(
        summary["msgs"].as_u64().unwrap() > 0,
        "no messages in {workload}"
    );
    assert_eq!(summary["errors"].as_u64(), Some(0));
    for k in ["cpu_model", "cores", "memory_bytes", "kernel"] {
        assert!(!summary["host"][k].is_null(), "host lacks {k}");
    }
    let names: Vec<&str> = summary["histograms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    for want in hists {
        assert!(
            names.contains(want),
            "{workload} lacks histogram {want}: {names:?}"
        );
        let h = summary["histograms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == *want)
            .unwrap();
        for k in ["p50_us", "p99_us", "p999_us", "max_us"] {
            assert!(h[k].is_u64(), "{want} lacks {k}");
        }
        assert!(
            h["p50_us"].as_u64() <= h["p99_us"].as_u64()
                && h["p99_us"].as_u64() <= h["max_us"].as_u64()
        );
        let hgrm = std::fs::read_to_string(dir.join(format!("{want}.hgrm"))).unwrap();
        assert!(
            hgrm.contains("Percentile") && hgrm.contains("#[Max"),
            "{want}.hgrm is not a percentile distribution"
        );
    }
    let svg = std::fs::read_to_string(dir.join("latency.svg")).unwrap();
    assert!(svg.trim_start().starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(!svg.contains("NaN") && !svg.contains("inf"));
}

#[test]
fn produce_and_e2e_write_complete_reports_and_compare_reads_them() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (server, ns) = start_dev(&dir.path().join("store"));
    let produce_out = dir.path().join("produce");
    let pid = server.pid().to_string();
    let out = run_bench(&[
        "produce",
        "--namesrv",
        &ns,
        "--topic",
        "BenchReports",
        "--connections",
        "4",
        "--duration",
        "3s",
        "--broker-pid",
        &pid,
        "--out",
        produce_out.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "produce failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().filter(|l| l.contains("msgs/s")).count() >= 2,
        "no per-second progress lines:\n{stdout}"
    );
    check_results(&produce_out, "produce", &["send", "publish_delay"]);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(produce_out.join("summary.json")).unwrap()).unwrap();
    let broker_cpu = summary["broker_cpu_secs"].as_f64();
    assert!(
        broker_cpu.is_some_and(|s| s > 0.0),
        "a broker that stored messages used no CPU? {broker_cpu:?}"
    );
    assert!(stdout.contains("broker CPU:"), "{stdout}");

    let e2e_out = dir.path().join("e2e");
    let out = run_bench(&[
        "e2e",
        "--namesrv",
        &ns,
        "--topic",
        "BenchE2e",
        "--connections",
        "2",
        "--rate",
        "2000",
        "--duration",
        "3s",
        "--out",
        e2e_out.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "e2e failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_results(&e2e_out, "e2e", &["send", "publish_delay", "e2e"]);

    let out = run_bench(&[
        "compare",
        produce_out.join("summary.json").to_str().unwrap(),
        e2e_out.join("summary.json").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("msgs/s") && table.contains('x'),
        "compare table:\n{table}"
    );
}

#[test]
fn bad_parameters_are_refused_before_any_load() {
    // Nothing listens on port 1: a refusal must come before any connection.
    for args in [
        &["produce", "--namesrv", "127.0.0.1:1", "--size", "0"][..],
        &["produce", "--namesrv", "127.0.0.1:1", "--rate", "-3"],
        &[
            "produce",
            "--namesrv",
            "127.0.0.1:1",
            "--duration",
            "3s",
            "--messages",
            "5",
        ],
        &["e2e", "--namesrv", "127.0.0.1:1", "--size", "4"],
        &["produce", "--namesrv", "127.0.0.1:1", "--duration", "soon"],
    ] {
        let out = run_bench(args);
        assert!(!out.status.success(), "{args:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("127.0.0.1:1:"),
            "{args:?} tried to connect before validating: {err}"
        );
    }
}

/// The bench over TLS (verifying the broker's certificate against the CA
/// `rocketcore tls-certs` made) with signed requests, against a broker that
/// enforces both; the same run without credentials is refused.
#[test]
fn produce_over_tls_with_acl_credentials() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let certs = dir.path().join("certs");
    common::make_certificates(&server_binary(), &certs);
    let acl = dir.path().join("plain_acl.yml");
    std::fs::write(
        &acl,
        "accounts:\n  - {accessKey: benchadmin, secretKey: bench-secret, admin: true}\n",
    )
    .unwrap();
    let set = |kv: String| ["--set".to_string(), kv];
    let args: Vec<String> = [
        format!("tls.server.certPath={}", certs.join("server.pem").display()),
        format!("tls.server.keyPath={}", certs.join("server.key").display()),
        "tlsMode=enforcing".to_string(),
        "aclEnable=true".to_string(),
        format!("aclFile={}", acl.display()),
        r#"innerClientAuthenticationCredentials={"accessKey":"benchadmin","secretKey":"bench-secret"}"#
            .to_string(),
    ]
    .into_iter()
    .flat_map(set)
    .collect();
    let server = Server::dev(&dir.path().join("store"))
        .binary(server_binary())
        .args(&args)
        .start();
    let ns = server.namesrv.to_string();
    let ca = certs.join("ca.pem");
    let out_dir = dir.path().join("tls");
    let base = [
        "produce",
        "--namesrv",
        &ns,
        "--topic",
        "BenchTls",
        "--connections",
        "2",
        "--duration",
        "2s",
        "--tls",
        "--tls-ca",
        ca.to_str().unwrap(),
    ];
    let mut signed = base.to_vec();
    signed.extend([
        "--access-key",
        "benchadmin",
        "--secret-key",
        "bench-secret",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let out = run_bench(&signed);
    assert!(
        out.status.success(),
        "produce over TLS failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_results(&out_dir, "produce", &["send"]);

    // Unsigned: a new topic cannot even be created.
    let mut unsigned = base.to_vec();
    unsigned[4] = "BenchTlsUnsigned";
    let out = run_bench(&unsigned);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("AclException"),
        "{err}"
    );
    // Plain TCP to an enforcing name server: refused.
    let out = run_bench(&["produce", "--namesrv", &ns, "--duration", "1s"]);
    assert!(!out.status.success());
}

fn messages_in(metrics: std::net::SocketAddr, topic: &str) -> f64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(metrics).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).unwrap();
    let body = page.split_once("\r\n\r\n").unwrap().1;
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == "rocketmq_messages_in_total")
        .find(|s| s.labels.get("topic") == Some(topic))
        .map_or(0.0, |s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

/// /metrics scraped while the bench produces: the stored-messages counter
/// only grows, and ends at the number of messages the bench had acked.
#[test]
fn metrics_scraped_during_a_run_count_every_message() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server::dev(&dir.path().join("store"))
        .binary(server_binary())
        .args([
            "--set".to_string(),
            "metricsExporterType=PROM".to_string(),
            "--set".to_string(),
            format!("metricsPromExporterPort={port}"),
        ])
        .start();
    let metrics: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let out_dir = dir.path().join("run");
    let mut bench = Command::new(bench())
        .args(["produce", "--namesrv", &server.namesrv.to_string()])
        .args([
            "--topic",
            "BenchMetrics",
            "--connections",
            "4",
            "--duration",
            "3s",
        ])
        .args(["--out", out_dir.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = vec![];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while bench.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the bench did not end"
        );
        seen.push(messages_in(metrics, "BenchMetrics"));
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    assert!(bench.wait().unwrap().success());
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "the counter went back: {seen:?}"
    );
    assert!(
        seen.iter().any(|v| *v > 0.0),
        "no scrape during the run saw a message: {seen:?}"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["errors"], 0);
    let acked = summary["msgs"].as_f64().unwrap();
    assert_eq!(messages_in(metrics, "BenchMetrics"), acked);
}
