//! The process contract: SIGTERM flushes and exits 0 with everything kept;
//! an executor that cannot start (no locked memory) exits non-zero with a
//! one-line reason that says what to fix; ports another server holds are
//! refused rather than shared.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use common::*;
use rocketcore::remoting::codes::response_code as rs;
use rocketcore::remoting::RemotingCommand;

#[test]
fn sigterm_flushes_and_exits_zero_and_a_restart_keeps_everything() {
    let dir = store_dir("lifecycle");
    let store = dir.path().join("store");
    let mut server = Server::start_dev(&store, &["--shards", "2"]);
    let mut c = Client::connect(server.broker);
    for i in 0..50 {
        // Buffered (ASYNC_FLUSH): only the shutdown flush makes these durable.
        let r = c
            .call(send_request(
                "LifecycleTopic",
                i % 4,
                format!("m{i}").as_bytes(),
                "",
            ))
            .unwrap();
        assert_eq!(r.code, rs::SUCCESS);
    }
    let mut commit = RemotingCommand::new_request(15);
    for (k, v) in [
        ("consumerGroup", "g1"),
        ("topic", "LifecycleTopic"),
        ("queueId", "1"),
        ("commitOffset", "7"),
    ] {
        commit.set_ext(k, v);
    }
    assert_eq!(c.call(commit).unwrap().code, rs::SUCCESS);
    assert_eq!(server.terminate(), Some(0), "log:\n{}", server.log_tail());

    let server = Server::start_dev(&store, &["--shards", "2"]);
    let mut c = Client::connect(server.broker);
    let mut total = 0;
    for q in 0..4 {
        let r = c
            .call(pull_request("lifecycle-check", "LifecycleTopic", q, 0))
            .unwrap();
        assert_eq!(r.code, rs::SUCCESS, "queue {q}: {:?}", r.remark);
        total += records(r.body.as_deref().unwrap()).len();
    }
    assert_eq!(total, 50);
    let mut query = RemotingCommand::new_request(14);
    for (k, v) in [
        ("consumerGroup", "g1"),
        ("topic", "LifecycleTopic"),
        ("queueId", "1"),
    ] {
        query.set_ext(k, v);
    }
    let r = c.call(query).unwrap();
    assert_eq!(
        (r.code, r.ext_i64("offset").ok()),
        (rs::SUCCESS, Some(7)),
        "consumer offset survived"
    );
}

#[test]
fn no_locked_memory_exits_nonzero_with_a_reason() {
    let dir = store_dir("memlock");
    let (ns, br) = free_ports();
    let mut cmd = dev_command(ns, br, &dir.path().join("store"));
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("ulimit -l"), "stderr: {stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ready:"));
}

#[test]
fn a_second_server_on_taken_ports_refuses_to_start() {
    let dir = store_dir("taken-ports");
    let first = Server::start_dev(&dir.path().join("a"), &[]);
    let (other_ns, other_broker) = free_ports();
    for (ns, br, what) in [
        (first.namesrv.port(), other_broker, "name server"),
        (other_ns, first.broker.port(), "broker listen"),
    ] {
        let out = dev_command(ns, br, &dir.path().join("b")).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: started anyway");
        assert!(
            stderr.contains(what) && stderr.contains("not free"),
            "{what}: {stderr}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("ready:"));
    }
    // The first server still serves.
    let mut c = Client::connect(first.broker);
    let r = c
        .call(common::create_topic_request("StillMine", 1))
        .unwrap();
    assert_eq!(r.code, rs::SUCCESS);
}

/// A crash leaves the dead process's connections behind (FIN-WAIT-2 while
/// their clients keep them open, TIME-WAIT once closed); the port check must
/// not take them for a live server, or every crash is a minute of downtime.
#[test]
fn a_restart_right_after_kill_9_with_clients_connected_is_ready_at_once() {
    let dir = store_dir("restart-after-kill");
    let store = dir.path().join("store");
    let (ns, br) = free_ports();
    let mut server = Server::start_dev_on(&store, ns, br, &["--shards", "2"]);
    let mut clients: Vec<Client> = (0..4).map(|_| Client::connect(server.broker)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let r = c
            .call(send_request("RestartTopic", i as i32, b"before", ""))
            .unwrap();
        assert_eq!(r.code, rs::SUCCESS);
    }
    let mut ns_client = Client::connect(server.namesrv);
    let mut route = RemotingCommand::new_request(105);
    route.set_ext("topic", "RestartTopic");
    ns_client.call(route).unwrap();
    // Some closed before the crash (TIME-WAIT on the server side), the rest
    // stay open through it.
    clients.truncate(2);
    std::thread::sleep(std::time::Duration::from_millis(100));
    server.kill9();

    let restarted = std::time::Instant::now();
    let server = Server::dev(&store)
        .ports(ns, br)
        .args(["--shards", "2"])
        .ready_timeout(std::time::Duration::from_secs(10))
        .start();
    let took = restarted.elapsed();
    assert!(
        !server.log_tail().contains("not free"),
        "{}",
        server.log_tail()
    );
    let mut c = Client::connect(server.broker);
    let r = c
        .call(send_request("RestartTopic", 0, b"after", ""))
        .unwrap();
    assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
    println!("ready {took:?} after kill -9");
    drop((clients, ns_client));
}

/// The shard count is the store's: an explicit other count is refused with
/// a reason, a defaulted one (the cores, which move with the host) yields.
#[test]
fn a_store_opens_only_with_the_shard_count_that_wrote_it() {
    let dir = store_dir("shard-count");
    let store = dir.path().join("store");
    let mut server = Server::start_dev(&store, &["--shards", "1"]);
    let mut c = Client::connect(server.broker);
    for q in 0..4 {
        let r = c
            .call(send_request("ShardCountTopic", q, b"kept", ""))
            .unwrap();
        assert_eq!(r.code, rs::SUCCESS);
    }
    assert_eq!(server.terminate(), Some(0));

    let (ns, br) = free_ports();
    let out = dev_command(ns, br, &store)
        .args(["--shards", "2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with another shard count");
    assert!(
        stderr.contains("written by 1 shards") && stderr.contains("--shards 1"),
        "{stderr}"
    );

    // No --shards: the default (this host's cores) gives way to the record.
    let server = Server::start_dev(&store, &[]);
    assert!(
        server.ready_line().contains("shards=1"),
        "{}",
        server.ready_line()
    );
    let mut c = Client::connect(server.broker);
    for q in 0..4 {
        let r = c
            .call(pull_request("shard-count-check", "ShardCountTopic", q, 0))
            .unwrap();
        assert_eq!(r.code, rs::SUCCESS, "queue {q}: {:?}", r.remark);
        assert_eq!(records(r.body.as_deref().unwrap()).len(), 1, "queue {q}");
    }
}

/// An idle broker rewrites none of its control files (each rewrite is an
/// fsync; the delay/timer marks used to be written every second on every
/// shard).
#[test]
fn an_idle_broker_rewrites_no_files() {
    let dir = store_dir("idle-files");
    let store = dir.path().join("store");
    let server = Server::start_dev(&store, &["--shards", "2"]);
    let mut c = Client::connect(server.broker);
    let r = c.call(send_request("IdleTopic", 0, b"one", "")).unwrap();
    assert_eq!(r.code, rs::SUCCESS);
    let modified = || -> Vec<(String, std::time::SystemTime)> {
        let mut v: Vec<_> = std::fs::read_dir(store.join("config"))
            .unwrap()
            .flatten()
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                (name, e.metadata().unwrap().modified().unwrap())
            })
            .collect();
        v.sort();
        v
    };
    // Past the first round of periodic writes (progress marks, offsets).
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    let before = modified();
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    assert_eq!(modified(), before, "files rewritten while idle");
    drop(server);
}

/// `rocketcore dev` on the given loopback ports, output captured.
fn dev_command(ns: u16, br: u16, store: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rocketcore"));
    cmd.args([
        "dev",
        "--namesrv-listen",
        &format!("127.0.0.1:{ns}"),
        "--listen",
        &format!("127.0.0.1:{br}"),
        "--store",
    ])
    .arg(store)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

/// A control file that cannot be written: the change is answered with an
/// error naming the file, the broker keeps serving, and after a restart the
/// store is as the last successful write left it.
#[test]
fn a_config_file_that_cannot_be_written_is_reported_and_loses_nothing_else() {
    let dir = store_dir("config-write-fails");
    let store = dir.path().join("store");
    let mut server = Server::start_dev(&store, &["--shards", "2"]);
    let mut c = Client::connect(server.broker);
    assert_eq!(
        c.call(common::create_topic_request("SavedTopic", 2))
            .unwrap()
            .code,
        rs::SUCCESS
    );
    let r = c.call(send_request("SavedTopic", 0, b"kept", "")).unwrap();
    assert_eq!(r.code, rs::SUCCESS);
    // topics.json is replaced through topics.tmp; a directory in its
    // place makes every later write fail, and leaves topics.json as it was.
    let blocker = store.join("config").join("topics.tmp");
    std::fs::create_dir_all(blocker.join("in-the-way")).unwrap();
    let r = c
        .call(common::create_topic_request("UnsavedTopic", 2))
        .unwrap();
    assert_eq!(r.code, rs::SYSTEM_ERROR, "{:?}", r.remark);
    let remark = r.remark.unwrap_or_default();
    assert!(
        remark.contains("not saved") && remark.contains("topics.json"),
        "{remark}"
    );
    // Still serving.
    let r = c.call(send_request("SavedTopic", 1, b"more", "")).unwrap();
    assert_eq!(r.code, rs::SUCCESS);
    assert_eq!(server.terminate(), Some(0), "{}", server.log_tail());

    // The operator clears the way; the broker starts with what was saved.
    std::fs::remove_dir_all(&blocker).unwrap();
    let server = Server::start_dev(&store, &["--shards", "2"]);
    let mut c = Client::connect(server.broker);
    let r = c
        .call(pull_request("config-check", "SavedTopic", 0, 0))
        .unwrap();
    assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
    assert_eq!(records(r.body.as_deref().unwrap()).len(), 1);
}

/// A store whose log cannot be read at start refuses to start and says
/// which file, rather than starting with part of the log.
#[test]
fn a_log_segment_that_cannot_be_opened_stops_the_start_with_its_name() {
    let dir = store_dir("unreadable-segment");
    let store = dir.path().join("store");
    let mut server = Server::start_dev(&store, &["--shards", "1"]);
    let mut c = Client::connect(server.broker);
    let r = c.call(send_request("SegTopic", 0, b"x", "")).unwrap();
    assert_eq!(r.code, rs::SUCCESS);
    assert_eq!(server.terminate(), Some(0));
    let log_dir = store.join("shard-0").join("commitlog");
    let seg = std::fs::read_dir(&log_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .min()
        .unwrap();
    std::fs::remove_file(&seg).unwrap();
    std::fs::create_dir(&seg).unwrap();
    let (ns, br) = free_ports();
    let out = dev_command(ns, br, &store)
        .args(["--shards", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started without its log segment");
    let name = seg.file_name().unwrap().to_string_lossy().into_owned();
    assert!(stderr.contains(&name), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ready:"));
}
