//! Compatibility with the crates.io Rust client (`rocketmq-client-rust`).
//!
//! Per scenario: starts `rocketcore dev` on free loopback ports with a fresh
//! store, then builds and runs the standalone program in
//! `tests/rust-client/` with `--scenario`: produce-consume (every message
//! back as sent), transaction (commit, rollback, UNKNOW resolved by
//! check-back), timer (due 3 s ahead, on time) and sql92 (only matching
//! messages). The program exits 0 only when its checks pass. That program is its own cargo project (the client needs a newer
//! toolchain and ~280 crates that rocketcore must not depend on), so this test
//! drives it through cargo. Every step is bounded in time, and the server is
//! stopped whatever happens.
//!
//! The first run compiles the client in release mode into
//! `<target>/rust-client`: about 12 CPU-minutes, so 7 to 13 minutes on a
//! 2-core machine; later runs reuse it and take seconds. Set
//! `ROCKETCORE_SKIP_RUST_CLIENT=1` to skip the test locally; CI must not.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::process::ExitStatus;
use std::process::Stdio;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;
use std::time::Instant;
use std::time::SystemTime;

use common::{tail_lines, Server};

/// Messages produced and expected back.
const COUNT: u32 = 200;
/// The client's own budget for producing + consuming (`--timeout-secs`).
const CLIENT_BUDGET: Duration = Duration::from_secs(120);
/// Cold release build of the client project on a 2-core machine, with margin.
const BUILD_TIMEOUT: Duration = Duration::from_secs(40 * 60);
/// From spawning `rocketcore dev` to its `ready:` line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// SIGTERM to exit before the guard falls back to SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

#[test]
fn rust_client_produces_and_consumes_every_message() {
    run_scenario(
        "produce-consume",
        "RustClientCheck",
        &[],
        &["--count", &COUNT.to_string()],
    );
}

/// Committed and check-back-committed messages are consumed, rolled-back
/// ones never are. Short check timings keep the scenario within its budget.
#[test]
fn rust_client_transactions_commit_rollback_and_check_back() {
    run_scenario(
        "transaction",
        "RustClientTx",
        &[
            "--set",
            "transactionCheckInterval=1500",
            "--set",
            "transactionTimeOut=1000",
        ],
        &[],
    );
}

/// Timer messages 3 s ahead arrive on time, not before.
#[test]
fn rust_client_timer_messages() {
    run_scenario("timer", "RustClientTimer", &[], &[]);
}

/// Issue 14: push consumers on new groups, not waited for, get a plain
/// message within 3 s and a delay-level-2 message within 5-7 s, five rounds.
#[test]
fn rust_client_new_consumer_receives_promptly() {
    run_scenario("new-consumer", "RustClientNewConsumer", &[], &[]);
}

/// The same with busy loops on every core beside the broker and client, the
/// condition issue 14 was seen under.
#[test]
fn rust_client_new_consumer_under_load() {
    run_scenario_with(
        "new-consumer",
        "RustClientNewConsumerLoad",
        &[],
        &[],
        Load::BusyCores,
    );
}

/// An SQL92 subscription receives exactly the matching messages.
#[test]
fn rust_client_sql92_subscription() {
    run_scenario("sql92", "RustClientSql92", &[], &[]);
}

/// Issue 11: the broker's admin answers (cluster, runtime, topic and consume
/// stats, connections, name-server config) read by rocketmq-rust's own
/// admin API, the code its rocketmq-admin-cli is built on.
#[test]
fn rust_client_admin_api_reads_the_broker() {
    run_scenario("admin-read", "RustClientAdminRead", &[], &[]);
}

/// Issue 12: the accounts the ACL tests sign with.
const ACL_FILE: &str = r#"
accounts:
  - accessKey: rustuser01
    secretKey: rust-user-secret
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - RustClientAcl=PUB|SUB
      - RustClientAclReadOnly=SUB
  - accessKey: rustadmin01
    secretKey: rust-admin-secret
    admin: true
"#;

/// Server arguments for ACL with [`ACL_FILE`], written into `dir`.
fn acl_server_args(dir: &Path) -> Vec<String> {
    let file = dir.join("plain_acl.yml");
    fs::write(&file, ACL_FILE).expect("write the ACL file");
    [
        "aclEnable=true".to_string(),
        format!("aclFile={}", file.display()),
        r#"innerClientAuthenticationCredentials={"accessKey":"rustadmin01","secretKey":"rust-admin-secret"}"#.to_string(),
    ]
    .into_iter()
    .flat_map(|kv| ["--set".to_string(), kv])
    .collect()
}

/// Every request signed by the client's `AclClientRPCHook`: 20 messages
/// sent and consumed through an ACL broker.
#[test]
fn rust_client_acl_credentials() {
    let dir = common::store_dir("rust-client-acl");
    let server: Vec<String> = acl_server_args(dir.path());
    let server: Vec<&str> = server.iter().map(String::as_str).collect();
    run_scenario(
        "produce-consume",
        "RustClientAcl",
        &server,
        &[
            "--count",
            "20",
            "--access-key",
            "rustuser01",
            "--secret-key",
            "rust-user-secret",
        ],
    );
}

/// A wrong secret, and an account without PUB on the topic: the send is
/// refused with ACL 1.0's code, on every retry.
#[test]
fn rust_client_acl_refusals() {
    let dir = common::store_dir("rust-client-acl-refused");
    let server: Vec<String> = acl_server_args(dir.path());
    let server: Vec<&str> = server.iter().map(String::as_str).collect();
    run_scenario(
        "acl-refused",
        "RustClientAcl",
        &server,
        &[
            "--access-key",
            "rustuser01",
            "--secret-key",
            "not-the-secret",
        ],
    );
    run_scenario(
        "acl-refused",
        "RustClientAclReadOnly",
        &server,
        &[
            "--access-key",
            "rustuser01",
            "--secret-key",
            "rust-user-secret",
        ],
    );
}

/// TLS with a certificate from `rocketcore tls-certs`, verified by the
/// client against its CA; the broker and name server refuse plain clients.
#[test]
fn rust_client_over_tls() {
    let dir = common::store_dir("rust-client-tls");
    let certs = dir.path().join("certs");
    common::make_certificates(Path::new(env!("CARGO_BIN_EXE_rocketcore")), &certs);
    let cert = format!("tls.server.certPath={}", certs.join("server.pem").display());
    let key = format!("tls.server.keyPath={}", certs.join("server.key").display());
    let ca = certs.join("ca.pem");
    run_scenario(
        "produce-consume",
        "RustClientTls",
        &["--set", &cert, "--set", &key, "--set", "tlsMode=enforcing"],
        &["--count", "20", "--tls", "--tls-ca", ca.to_str().unwrap()],
    );
}

/// Builds the client project (once; cargo serialises concurrent builds),
/// starts a fresh `rocketcore dev` with `server_args`, runs one scenario of
/// the client program against it and checks it passed and that the server
/// exits 0 on SIGTERM.
/// Sends acknowledged by a SYNC_MASTER are all read from its slave after
/// the master is killed with SIGKILL (the program waits for the kill).
#[test]
fn rust_client_sync_master_failover_to_slave() {
    let Some(client) = ClientProject::build() else {
        return;
    };
    let _turn = SCENARIO_TURN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = common::store_dir("rust-client-failover");
    let set = common::ReplicaSet::start(dir.path(), "SYNC_MASTER", &[], &[]);
    set.wait_in_sync(Duration::from_secs(20));
    let handoff = dir.path().join("handoff");
    fs::create_dir_all(&handoff).unwrap();
    let (pid, ns) = (set.master.pid() as i32, set.ns.namesrv);
    let watcher = common::kill_on_ready(
        handoff.clone(),
        pid,
        CLIENT_BUDGET,
        move || common::has_route(ns, "RustFailover"),
        move || common::registered_ids(ns, "broker-a") == [1],
        "the name server dropped the master",
    );
    let handoff_arg = handoff.display().to_string();
    let run = client.run("failover", ns, "RustFailover", &["--handoff", &handoff_arg]);
    let watched = watcher.join().unwrap();
    if !run.succeeded() || !watched.is_empty() {
        panic!("{watched}\n{}\n{}", run.describe("client"), set.describe());
    }
    println!("{}", run.stdout);
}

/// Controller mode: sends acknowledged by the master of a three-broker
/// group are all read from the broker the controller promotes after the
/// master is killed.
#[test]
fn rust_client_controller_failover_to_the_promoted_master() {
    let Some(client) = ClientProject::build() else {
        return;
    };
    let _turn = SCENARIO_TURN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = common::store_dir("rust-client-controller");
    let c = common::controlled::Cluster::start(dir.path());
    let master = c.wait_for_group(Duration::from_secs(30));
    let (pid, ns) = (c.brokers[master].server.pid() as i32, c.ns.namesrv);
    let old = c.brokers[master].server.broker.to_string();
    let handoff = dir.path().join("handoff");
    fs::create_dir_all(&handoff).unwrap();
    let watcher = common::kill_on_ready(
        handoff.clone(),
        pid,
        CLIENT_BUDGET,
        move || common::has_route(ns, "RustCtlFailover"),
        move || common::registered_addr(ns, "broker-a", 0).is_some_and(|a| a != old),
        "another broker registered as master",
    );
    let handoff_arg = handoff.display().to_string();
    let run = client.run(
        "failover",
        ns,
        "RustCtlFailover",
        &["--handoff", &handoff_arg],
    );
    let watched = watcher.join().unwrap();
    if !run.succeeded() || !watched.is_empty() {
        panic!("{watched}\n{}\n{}", run.describe("client"), c.describe());
    }
    println!("{}", run.stdout);
}

fn run_scenario(scenario: &str, topic: &str, server_args: &[&str], client_args: &[&str]) {
    run_scenario_with(scenario, topic, server_args, client_args, Load::None);
}

#[derive(Clone, Copy, PartialEq)]
enum Load {
    None,
    /// `common::CpuLoad` while the scenario runs.
    BusyCores,
}

fn run_scenario_with(
    scenario: &str,
    topic: &str,
    server_args: &[&str],
    client_args: &[&str],
    load: Load,
) {
    let Some(client) = ClientProject::build() else {
        return;
    };
    // One scenario at a time: their timing checks (a timer due in 3 s may
    // be at most 1.5 s late) should not compete with each other for 2 cores.
    let _turn = SCENARIO_TURN.lock().unwrap_or_else(|e| e.into_inner());
    let _load = (load == Load::BusyCores).then(|| common::CpuLoad::start(CLIENT_BUDGET));
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));

    let store = tmp.join(format!(
        "rust-client-store-{scenario}-{}-{}",
        std::process::id(),
        unique()
    ));
    let _ = fs::remove_dir_all(&store);
    fs::create_dir_all(&store).expect("create store dir");
    // On free loopback ports; stopped (SIGTERM, then SIGKILL) on drop.
    let mut server = Server::dev(&store)
        .args(server_args)
        .log(store.with_extension("server-stderr.log"))
        .ready_timeout(READY_TIMEOUT)
        .stop_timeout(STOP_TIMEOUT)
        .stop_on_drop()
        .start();

    let client = client.run(scenario, server.namesrv, topic, client_args);
    if !client.succeeded() {
        panic!(
            "the Rust client's {scenario} scenario failed\n{}\n{}",
            client.describe("client"),
            server.describe()
        );
    }
    println!("{}", client.stdout);

    // Part of the `rocketcore dev` contract: SIGTERM ends it with status 0.
    let status = server.stop();
    assert!(
        status.is_some_and(|s| s.success()),
        "rocketcore dev did not exit 0 on SIGTERM: {status:?}\n{}",
        server.describe()
    );
    // Kept on failure for a look; removed on success.
    let _ = fs::remove_dir_all(&store);
    let _ = fs::remove_file(server.log_path());
}

static SCENARIO_TURN: Mutex<()> = Mutex::new(());

/// The client program's cargo project, built.
struct ClientProject {
    manifest: std::path::PathBuf,
    target_dir: std::path::PathBuf,
}

impl ClientProject {
    /// Builds it (None when `ROCKETCORE_SKIP_RUST_CLIENT=1`). Before any
    /// server starts, so that a server is not left idle (and the client
    /// budget is not eaten) by a cold compile.
    fn build() -> Option<ClientProject> {
        if std::env::var_os("ROCKETCORE_SKIP_RUST_CLIENT").is_some_and(|v| v == "1") {
            eprintln!("skipped: ROCKETCORE_SKIP_RUST_CLIENT=1");
            return None;
        }
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rust-client/Cargo.toml");
        // CARGO_TARGET_TMPDIR is `<target dir>/tmp`, so its parent is the target
        // directory actually in use (it honours CARGO_TARGET_DIR, unlike
        // `<manifest dir>/target`). The client gets its own subdirectory: its
        // dependency graph and toolchain requirements differ from rocketcore's.
        let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("CARGO_TARGET_TMPDIR has a parent")
            .join("rust-client");
        let build = run_bounded(
            cargo()
                .arg("build")
                .arg("--release")
                .arg("--locked")
                .arg("--manifest-path")
                .arg(&manifest)
                .arg("--target-dir")
                .arg(&target_dir),
            BUILD_TIMEOUT,
        );
        assert!(
            build.succeeded(),
            "building the client project failed\n{}",
            build.describe("cargo build")
        );
        Some(ClientProject {
            manifest,
            target_dir,
        })
    }

    /// Runs one scenario on a new group to completion, bounded.
    fn run(
        &self,
        scenario: &str,
        namesrv: std::net::SocketAddr,
        topic: &str,
        client_args: &[&str],
    ) -> Finished {
        let group =
            format!("rust_client_{scenario}_{}_{}", std::process::id(), unique()).replace('-', "_");
        run_bounded(
            cargo()
                .arg("run")
                .arg("--release")
                .arg("--locked")
                .arg("--quiet")
                .arg("--manifest-path")
                .arg(&self.manifest)
                .arg("--target-dir")
                .arg(&self.target_dir)
                .arg("--")
                .args(["--scenario", scenario])
                .args(["--namesrv", &namesrv.to_string()])
                .args(["--topic", topic])
                .args(["--group", &group])
                .args(["--timeout-secs", &CLIENT_BUDGET.as_secs().to_string()])
                .args(client_args),
            // The client's watchdog fires at budget + 60 s; leave room for cargo's
            // freshness check on top of that.
            CLIENT_BUDGET + Duration::from_secs(120),
        )
    }
}

fn cargo() -> Command {
    // The cargo that is running this test, so the same toolchain builds the
    // client; plain `cargo` from PATH otherwise.
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // Cargo sets these for the test process; they describe rocketcore, not the
    // client project, and must not leak into the nested build.
    for var in [
        "CARGO_MANIFEST_DIR",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
    ] {
        command.env_remove(var);
    }
    command
}

fn unique() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

struct Finished {
    status: Option<ExitStatus>,
    timed_out: bool,
    elapsed: Duration,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn succeeded(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }

    fn describe(&self, what: &str) -> String {
        format!(
            "--- {what}: {} after {:.1}s ---\n--- {what} stdout ---\n{}\n--- {what} stderr (last 300 lines) ---\n{}",
            if self.timed_out {
                "killed: timed out".to_string()
            } else {
                format!("exit {:?}", self.status)
            },
            self.elapsed.as_secs_f64(),
            self.stdout,
            tail_lines(&self.stderr, 300)
        )
    }
}

/// Runs a command to completion or kills it at the timeout, capturing output.
fn run_bounded(command: &mut Command, timeout: Duration) -> Finished {
    let start = Instant::now();
    let mut child = command
        // Its own process group, so that a timeout kills cargo together with
        // what it started (rustc, the client binary); those would otherwise
        // live on and hold the output pipes open.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );

    let mut timed_out = false;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if start.elapsed() >= timeout {
            timed_out = true;
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            break child.wait().ok();
        }
        thread::sleep(Duration::from_millis(100));
    };
    Finished {
        status,
        timed_out,
        elapsed: start.elapsed(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}
