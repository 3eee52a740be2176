//! Master/slave replication with real processes on loopback: a name server,
//! a master and a slave, each its own `rocketcore`, 2 shards each. What a
//! SYNC_MASTER answers with and without a slave, what a slave refuses, that
//! logs converge byte for byte across kills of either side, and that
//! garbage on the HA port closes only that connection.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;
use rocketcore::broker::ha::wire::{self, Hello, HelloAck, Status};
use rocketcore::remoting::codes::response_code as rs;

const TOPIC: &str = "RepTopic";
const QUEUES: i32 = 4;

fn create_topic(set: &ReplicaSet) {
    let r = Client::connect(set.master.broker)
        .call(create_topic_request(TOPIC, QUEUES as u32))
        .unwrap();
    assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
    // The slave copies topics every second.
    let copied = wait_for(Duration::from_secs(10), || {
        let r = Client::connect(set.slave.broker)
            .call(pull_request("probe", TOPIC, 0, 0))
            .unwrap();
        r.code != rs::TOPIC_NOT_EXIST
    });
    assert!(
        copied,
        "the slave never copied the topic\n{}",
        set.describe()
    );
}

fn send(addr: SocketAddr, q: i32, body: &str) -> rocketcore::remoting::RemotingCommand {
    Client::connect(addr)
        .call(send_request(TOPIC, q, body.as_bytes(), ""))
        .unwrap()
}

/// Every record of every queue, as (queue, offset, body), from one broker.
fn contents(addr: SocketAddr) -> Vec<(i32, i64, Vec<u8>)> {
    let mut out = Vec::new();
    for q in 0..QUEUES {
        for p in pull_all(addr, "reader", TOPIC, q) {
            out.push((q, p.queue_offset, p.body));
        }
    }
    out
}

fn converged(set: &ReplicaSet) -> bool {
    let (Some(m), Some(s)) = (ha_status(set.master.broker), ha_status(set.slave.broker)) else {
        return false;
    };
    m["masterCommitLogMaxOffset"] == s["masterCommitLogMaxOffset"]
}

#[test]
fn sync_master_answers_by_what_the_slave_has() {
    let dir = store_dir("rep-sync");
    let mut set = ReplicaSet::start(dir.path(), "SYNC_MASTER", &["slaveTimeout=700"], &[]);
    set.wait_in_sync(Duration::from_secs(20));
    create_topic(&set);
    for i in 0..20 {
        let r = send(set.master.broker, i % QUEUES, &format!("ok-{i}"));
        assert_eq!(r.code, rs::SUCCESS, "send {i}: {:?}", r.remark);
    }
    // A stopped slave: the send is stored, the answer says the slave
    // did not confirm it in time, with the whole send result.
    // SAFETY: signals to our own child.
    unsafe { libc::kill(set.slave.pid() as i32, libc::SIGSTOP) };
    let r = send(set.master.broker, 0, "while-stopped");
    unsafe { libc::kill(set.slave.pid() as i32, libc::SIGCONT) };
    assert_eq!(r.code, rs::FLUSH_SLAVE_TIMEOUT, "{:?}", r.remark);
    assert!(r.ext_str_opt("msgId").is_some() && r.ext_i64("queueOffset").is_ok());
    // The slave catches up once it runs again.
    assert!(wait_for(Duration::from_secs(10), || converged(&set)));
    // No slave at all: SLAVE_NOT_AVAILABLE at once, still stored.
    set.slave.kill9();
    assert!(wait_for(Duration::from_secs(10), || {
        ha_status(set.master.broker).is_some_and(|v| v["haConnectionInfo"] == serde_json::json!([]))
    }));
    let r = send(set.master.broker, 1, "alone");
    assert_eq!(r.code, rs::SLAVE_NOT_AVAILABLE, "{:?}", r.remark);
    // WAIT=false sends do not wait for anyone.
    let r = Client::connect(set.master.broker)
        .call(send_request(TOPIC, 1, b"no-wait", "WAIT\u{1}false\u{2}"))
        .unwrap();
    assert_eq!(r.code, rs::SUCCESS);
    // The restarted slave resumes from its own log and gets the rest.
    set.restart_slave();
    set.wait_in_sync(Duration::from_secs(20));
    assert!(wait_for(Duration::from_secs(10), || converged(&set)));
    let master = contents(set.master.broker);
    assert_eq!(master.len(), 23);
    assert_eq!(contents(set.slave.broker), master);
    let r = send(set.master.broker, 2, "after");
    assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
}

#[test]
fn a_slave_refuses_writes_and_serves_reads() {
    let dir = store_dir("rep-slave");
    let set = ReplicaSet::start(dir.path(), "ASYNC_MASTER", &[], &[]);
    set.wait_in_sync(Duration::from_secs(20));
    create_topic(&set);
    let r = send(set.master.broker, 0, "on-master");
    assert_eq!(r.code, rs::SUCCESS);
    let msg_id = r.ext_str("msgId").unwrap().to_string();
    let r = send(set.slave.broker, 0, "on-slave");
    assert_eq!(r.code, rs::SERVICE_NOT_AVAILABLE, "{:?}", r.remark);
    let r = Client::connect(set.slave.broker)
        .call(create_topic_request("Elsewhere", 4))
        .unwrap();
    assert_eq!(r.code, rs::SERVICE_NOT_AVAILABLE);
    assert!(wait_for(Duration::from_secs(10), || contents(
        set.slave.broker
    )
    .len()
        == 1));
    // The message resolves by the id the master gave it.
    let mut view = rocketcore::remoting::RemotingCommand::new_request(33);
    // offsetMsgId: store host (8 bytes) then the physical offset, in hex.
    let phys = i64::from_str_radix(&msg_id[16..32], 16).unwrap();
    view.set_ext("offset", phys);
    let r = Client::connect(set.slave.broker).call(view).unwrap();
    assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
    // Runtime status says who follows whom.
    let s = ha_status(set.slave.broker).unwrap();
    assert_eq!(s["master"], false);
    assert_eq!(s["haClientRuntimeInfo"]["isActivated"], true);
    assert_eq!(
        s["haClientRuntimeInfo"]["masterAddr"],
        set.master.broker.to_string()
    );
}

#[test]
fn logs_converge_after_either_side_is_killed_under_load() {
    let dir = store_dir("rep-kill");
    // SYNC_FLUSH: every acknowledged send is flushed, so none may be lost.
    // (Under ASYNC_FLUSH a kill loses what the last write round had not
    // written yet; the slave never has more than the master's files.)
    let mut set = ReplicaSet::start(
        dir.path(),
        "ASYNC_MASTER",
        &["flushDiskType=SYNC_FLUSH"],
        &[],
    );
    set.wait_in_sync(Duration::from_secs(20));
    create_topic(&set);
    let acked: Acked = Default::default();
    for round in 0..2 {
        let load = SendLoad::start(
            set.master.broker,
            TOPIC,
            QUEUES,
            4,
            &format!("r{round}"),
            &acked,
            Duration::from_secs(20),
        );
        std::thread::sleep(Duration::from_millis(800));
        if round == 0 {
            set.slave.kill9();
            std::thread::sleep(Duration::from_millis(500));
            set.restart_slave();
            std::thread::sleep(Duration::from_millis(800));
            load.stop();
        } else {
            set.master.kill9();
            load.stop();
            set.restart_master();
        }
        set.wait_in_sync(Duration::from_secs(30));
        assert!(
            wait_for(Duration::from_secs(20), || converged(&set)),
            "round {round}: logs differ\n{}",
            set.describe()
        );
    }
    let master = contents(set.master.broker);
    let slave = contents(set.slave.broker);
    assert_eq!(master.len(), slave.len());
    assert!(
        master == slave,
        "the slave's records differ from the master's"
    );
    // Nothing acknowledged was lost by either kill.
    let stored: std::collections::HashSet<&[u8]> = master.iter().map(|(_, _, b)| &b[..]).collect();
    let acked = acked.lock().unwrap();
    assert!(acked.len() > 50, "too little load: {}", acked.len());
    let lost: Vec<&String> = acked
        .keys()
        .filter(|k| !stored.contains(k.as_bytes()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged sends lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

fn hello(shards: u16, slave_max: u64) -> Hello {
    Hello {
        shard: 0,
        shards,
        placement: wire::PLACEMENT_ID,
        segment_bytes: 8 << 20,
        slave_id: 7,
        slave_max,
        last_epoch: -1,
        broker_name: "broker-a".into(),
    }
}

fn answer(ha: SocketAddr, bytes: &[u8]) -> std::io::Result<HelloAck> {
    let mut s = TcpStream::connect(ha)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(bytes)?;
    let mut fixed = [0u8; wire::HELLO_ACK_FIXED_BYTES];
    s.read_exact(&mut fixed)?;
    let (a, n) = HelloAck::decode_fixed(&fixed).map_err(std::io::Error::other)?;
    assert_eq!(n, 0);
    Ok(a)
}

/// The connection is closed by the master within a few seconds.
fn closed(mut s: TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(12))).unwrap();
    let mut b = [0u8; 4096];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

#[test]
fn bad_input_on_the_ha_port_closes_that_link_only() {
    let dir = store_dir("rep-bad");
    let set = ReplicaSet::start(dir.path(), "SYNC_MASTER", &[], &[]);
    set.wait_in_sync(Duration::from_secs(20));
    create_topic(&set);
    let ha: SocketAddr = format!("127.0.0.1:{}", set.ha_port).parse().unwrap();
    // Garbage and a short hello: closed, nothing answered.
    let mut g = TcpStream::connect(ha).unwrap();
    g.write_all(&[0x5a; 200]).unwrap();
    assert!(closed(g));
    let mut g = TcpStream::connect(ha).unwrap();
    g.write_all(&hello(2, 0).encode()[..20]).unwrap();
    drop(g);
    // Refusals say why.
    assert_eq!(
        answer(ha, &hello(3, 0).encode()).unwrap().status,
        Status::ShardMismatch
    );
    assert_eq!(
        answer(ha, &hello(2, 1 << 40).encode()).unwrap().status,
        Status::SlaveAhead
    );
    let mut other = hello(2, 0);
    other.broker_name = "broker-b".into();
    assert_eq!(
        answer(ha, &other.encode()).unwrap().status,
        Status::NameMismatch
    );
    let mut seg = hello(2, 0);
    seg.segment_bytes = 1 << 30;
    assert_eq!(
        answer(ha, &seg.encode()).unwrap().status,
        Status::SegmentMismatch
    );
    let mut dup = hello(2, 0);
    dup.slave_id = 1;
    assert_eq!(
        answer(ha, &dup.encode()).unwrap().status,
        Status::DuplicateSlave
    );
    let mut v = hello(2, 0).encode();
    v[5] = 9;
    assert_eq!(answer(ha, &v).unwrap().status, Status::BadVersion);
    // An impostor that acknowledges bytes it was never sent is cut off and
    // cannot make a SYNC_MASTER send count as replicated.
    let mut s = TcpStream::connect(ha).unwrap();
    s.write_all(&hello(2, 0).encode()).unwrap();
    let mut fixed = [0u8; wire::HELLO_ACK_FIXED_BYTES];
    s.read_exact(&mut fixed).unwrap();
    assert_eq!(HelloAck::decode_fixed(&fixed).unwrap().0.status, Status::Ok);
    s.write_all(
        &wire::Ack {
            written: 1 << 40,
            flushed: 0,
        }
        .encode(),
    )
    .unwrap();
    assert!(closed(s));
    // The real slave is untouched and still counts.
    let r = send(set.master.broker, 0, "after-garbage");
    assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
    assert!(wait_for(Duration::from_secs(10), || converged(&set)));
    assert_eq!(contents(set.slave.broker), contents(set.master.broker));
}

#[test]
fn a_master_sends_consumers_far_behind_to_the_slave_when_slave_reading_is_on() {
    let dir = store_dir("rep-suggest");
    let set = ReplicaSet::start(
        dir.path(),
        "ASYNC_MASTER",
        &["slaveReadEnable=true", "rocketcoreTailCacheBytes=1048576"],
        &[],
    );
    set.wait_in_sync(Duration::from_secs(20));
    create_topic(&set);
    // 3 MiB through queue 0's shard: its first records leave the 1 MiB cache.
    let body = "x".repeat(1024);
    let mut c = Client::connect(set.master.broker);
    for _ in 0..3072 {
        let r = c.call(send_request(TOPIC, 0, body.as_bytes(), "")).unwrap();
        assert_eq!(r.code, rs::SUCCESS);
    }
    let suggest = |offset: i64| {
        let r = Client::connect(set.master.broker)
            .call(pull_request("slowpoke", TOPIC, 0, offset))
            .unwrap();
        assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
        r.ext_i64("suggestWhichBrokerId").unwrap()
    };
    assert_eq!(suggest(0), 1, "a read from the device goes to the slave");
    assert_eq!(suggest(3071), 0, "a read from the tail cache stays");
    // The admin verb shows the link, in sync.
    let v = admin(set.ns.namesrv, &["haStatus", "-c", "DefaultCluster"]);
    let m = &v[set.master.broker.to_string()];
    assert_eq!(m["master"], true);
    assert_eq!(m["haConnectionInfo"][0]["slaveBrokerId"], 1);
    assert_eq!(
        v[set.slave.broker.to_string()]["haClientRuntimeInfo"]["isActivated"],
        true
    );
}

#[test]
fn dev_with_a_replica_runs_a_sync_master_and_its_slave() {
    let dir = store_dir("rep-dev");
    // listenPort + 1, the default, may be any process's ephemeral port here.
    let ha = format!("haListenPort={}", free_port());
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut dev = Server::dev(dir.path())
        .args([
            "--replicas",
            "1",
            "--set",
            &ha,
            "--set",
            "metricsExporterType=PROM",
        ])
        .args([
            "--set",
            &format!("metricsPromExporterPort={}", metrics.port()),
        ])
        .stop_on_drop()
        .start();
    let slave: SocketAddr = dev
        .ready_line()
        .split_whitespace()
        .find_map(|w| w.strip_prefix("slaves="))
        .expect("the ready line names the slave")
        .parse()
        .unwrap();
    assert!(wait_for(Duration::from_secs(20), || {
        ha_status(dev.broker).is_some_and(|v| v["inSyncSlaveNums"] == 1)
    }));
    // The master's page has a lag series for its slave on each shard.
    let page = http_get(metrics, "/metrics");
    for shard in ["0", "1"] {
        let series = format!(
            "rocketcore_ha_slave_lag_bytes{{cluster=\"DefaultCluster\",node_id=\"broker-a-0\",shard=\"{shard}\",slave_broker_id=\"1\"}}"
        );
        assert!(page.contains(&series), "no {series} in\n{page}");
    }
    let r = Client::connect(dev.broker)
        .call(create_topic_request(TOPIC, 4))
        .unwrap();
    assert_eq!(r.code, rs::SUCCESS);
    let r = send(dev.broker, 0, "replicated");
    assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
    assert!(wait_for(Duration::from_secs(10), || contents(slave).len() == 1));
    assert_eq!(ha_status(slave).unwrap()["master"], false);
    assert_eq!(dev.terminate(), Some(0), "{}", dev.describe());
}

#[test]
fn a_slave_started_as_master_goes_on_where_the_master_was() {
    let dir = store_dir("rep-promote");
    let mut set = ReplicaSet::start(dir.path(), "SYNC_MASTER", &[], &[]);
    set.wait_in_sync(Duration::from_secs(20));
    create_topic(&set);
    // Delay level 1 (1 s): delivered by the master into the real queues.
    for i in 0..8 {
        let r = Client::connect(set.master.broker)
            .call(send_request(
                TOPIC,
                i % QUEUES,
                format!("later-{i}").as_bytes(),
                "DELAY\u{1}1\u{2}",
            ))
            .unwrap();
        assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
    }
    assert!(wait_for(Duration::from_secs(10), || contents(
        set.master.broker
    )
    .len()
        == 8));
    // A committed offset, for the slave's copy.
    let mut commit = rocketcore::remoting::RemotingCommand::new_request(15);
    for (k, v) in [
        ("consumerGroup", "G1"),
        ("topic", TOPIC),
        ("queueId", "1"),
        ("commitOffset", "2"),
    ] {
        commit.set_ext(k, v);
    }
    assert_eq!(
        Client::connect(set.master.broker)
            .call(commit)
            .unwrap()
            .code,
        rs::SUCCESS
    );
    // The master persists its delivery progress about once a second and
    // the slave copies it (and the offsets) every second.
    std::thread::sleep(Duration::from_secs(4));
    let before = contents(set.master.broker);
    set.master.kill9();
    set.promote_slave();
    // Nothing delivered again, nothing lost.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(contents(set.slave.broker), before, "{}", set.describe());
    let mut query = rocketcore::remoting::RemotingCommand::new_request(14);
    for (k, v) in [("consumerGroup", "G1"), ("topic", TOPIC), ("queueId", "1")] {
        query.set_ext(k, v);
    }
    let r = Client::connect(set.slave.broker).call(query).unwrap();
    assert_eq!(r.ext_i64("offset").unwrap(), 2);
    let r = send(set.slave.broker, 0, "on-the-new-master");
    assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
}

#[test]
fn a_new_slave_of_a_master_that_deleted_its_oldest_segments_starts_where_the_log_does() {
    let dir = store_dir("rep-seed");
    // 1 MiB segments, deleted as soon as they are full (usage over 5 %).
    let small = [
        "maxMessageSize=65536",
        "mappedFileSizeCommitLog=1048576",
        "fileReservedTime=0",
        "diskMaxUsedSpaceRatio=5",
    ];
    let mut set = ReplicaSet::start(dir.path(), "ASYNC_MASTER", &small, &small);
    set.slave.kill9();
    std::fs::remove_dir_all(dir.path().join("slave")).unwrap();
    let r = Client::connect(set.master.broker)
        .call(create_topic_request(TOPIC, QUEUES as u32))
        .unwrap();
    assert_eq!(r.code, rs::SUCCESS);
    let body = "y".repeat(1000);
    let mut c = Client::connect(set.master.broker);
    for i in 0..6000 {
        let r = c
            .call(send_request(TOPIC, i % QUEUES, body.as_bytes(), ""))
            .unwrap();
        assert_eq!(r.code, rs::SUCCESS);
    }
    let min_of = |addr: SocketAddr, q: i32| {
        let mut m = rocketcore::remoting::RemotingCommand::new_request(31);
        m.set_ext("topic", TOPIC);
        m.set_ext("queueId", q);
        Client::connect(addr)
            .call(m)
            .unwrap()
            .ext_i64("offset")
            .unwrap()
    };
    // Retention runs every 10 s.
    assert!(
        wait_for(Duration::from_secs(30), || min_of(set.master.broker, 0) > 0),
        "the master deleted nothing\n{}",
        set.describe()
    );
    set.restart_slave();
    set.wait_in_sync(Duration::from_secs(30));
    assert!(wait_for(Duration::from_secs(20), || converged(&set)));
    for q in 0..QUEUES {
        let from = min_of(set.slave.broker, q);
        assert!(from >= min_of(set.master.broker, q), "queue {q}");
        let read = |addr| {
            let r = Client::connect(addr)
                .call(pull_request("g", TOPIC, q, from))
                .unwrap();
            assert_eq!(r.code, rs::SUCCESS, "queue {q} from {from}: {:?}", r.remark);
            r.body.unwrap()
        };
        assert_eq!(read(set.slave.broker), read(set.master.broker), "queue {q}");
    }
}

/// A plain HTTP/1.1 GET; the body.
fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// SEND_OK from a SYNC_MASTER means the slave has it: checked at every one
/// of several kill -9s of the master under load
/// (`ROCKETCORE_HA_KILL_CYCLES`, default 3), each message once.
#[test]
fn every_sync_master_ack_is_on_the_slave_at_every_kill() {
    let cycles: usize = std::env::var("ROCKETCORE_HA_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = store_dir("rep-killcycles");
    let mut set = ReplicaSet::start(dir.path(), "SYNC_MASTER", &[], &[]);
    set.wait_in_sync(Duration::from_secs(20));
    create_topic(&set);
    let acked: Acked = Default::default();
    for cycle in 0..cycles {
        let load = SendLoad::start(
            set.master.broker,
            TOPIC,
            QUEUES,
            4,
            &format!("c{cycle}"),
            &acked,
            Duration::from_secs(20),
        );
        std::thread::sleep(Duration::from_millis(700));
        set.master.kill9();
        load.stop();
        let on_slave = contents(set.slave.broker);
        let mut seen: std::collections::HashMap<&[u8], usize> = Default::default();
        for (_, _, body) in &on_slave {
            *seen.entry(&body[..]).or_default() += 1;
        }
        let acked_now = acked.lock().unwrap();
        let missing: Vec<&String> = acked_now
            .keys()
            .filter(|k| !seen.contains_key(k.as_bytes()))
            .collect();
        assert!(
            missing.is_empty(),
            "cycle {cycle}: {} SEND_OKs not on the slave, e.g. {:?}\n{}",
            missing.len(),
            &missing[..missing.len().min(5)],
            set.describe()
        );
        let twice = seen.values().filter(|n| **n > 1).count();
        assert_eq!(twice, 0, "cycle {cycle}: records stored twice on the slave");
        drop(acked_now);
        set.restart_master();
        set.wait_in_sync(Duration::from_secs(30));
        assert!(
            wait_for(Duration::from_secs(20), || converged(&set)),
            "cycle {cycle}\n{}",
            set.describe()
        );
    }
    let total = acked.lock().unwrap().len();
    assert!(total > 100, "too little load: {total}");
    println!("{cycles} kills of the SYNC_MASTER: {total} SEND_OKs, all on the slave, none twice");
}

fn admin(ns: SocketAddr, args: &[&str]) -> serde_json::Value {
    let ns = ns.to_string();
    let mut all = args.to_vec();
    all.extend(["-n", &ns]);
    admin_json(&all)
}

fn registered_addr(ns: SocketAddr, id: i64) -> Option<String> {
    common::registered_addr(ns, "broker-a", id)
}

/// A slave promoted at run time while its ASYNC master is down; the old
/// master comes back with records the new one never had, is told to follow
/// it, cuts that tail (the epochs say where) and converges byte for byte.
#[test]
fn a_switch_at_run_time_cuts_the_old_masters_diverged_tail() {
    let dir = store_dir("rep-switch");
    let mut set = ReplicaSet::start(dir.path(), "ASYNC_MASTER", &[], &[]);
    set.wait_in_sync(Duration::from_secs(20));
    create_topic(&set);
    let (m, s, ns) = (set.master.broker, set.slave.broker, set.ns.namesrv);
    for i in 0..40 {
        assert_eq!(
            send(m, i % QUEUES, &format!("shared-{i}")).code,
            rs::SUCCESS
        );
    }
    assert!(wait_for(Duration::from_secs(10), || converged(&set)));
    // The slave dies; the master acknowledges what no slave will have.
    set.slave.kill9();
    for i in 0..30 {
        assert_eq!(send(m, i % QUEUES, &format!("lost-{i}")).code, rs::SUCCESS);
    }
    set.master.kill9();
    set.restart_slave();
    // The slave takes over, telling the old master (down) when it can.
    let switch = || {
        let (s, m) = (s.to_string(), m.to_string());
        admin(
            ns,
            &["haSwitch", "-b", &s, "-m", &m, "--role", "ASYNC_MASTER"],
        )
    };
    let v = switch();
    assert_eq!(v["epoch"], 1, "{v}");
    assert_eq!(ha_status(s).unwrap()["master"], true);
    for i in 0..20 {
        let r = send(s, i % QUEUES, &format!("new-{i}"));
        assert_eq!(r.code, rs::SUCCESS, "{:?}\n{}", r.remark, set.describe());
    }
    assert!(wait_for(Duration::from_secs(10), || registered_addr(ns, 0)
        == Some(s.to_string())));
    // The old master returns as it was configured, a master of epoch 0:
    // the name server keeps the newer master under id 0.
    set.restart_master();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(registered_addr(ns, 0), Some(s.to_string()));
    let v = switch();
    assert_eq!(v["epoch"], 2, "{v}");
    let same = wait_for(Duration::from_secs(20), || {
        log_digests(&dir.path().join("master")) == log_digests(&dir.path().join("slave"))
    });
    assert!(
        same,
        "logs differ: {:?} vs {:?}\n{}",
        log_digests(&dir.path().join("master")),
        log_digests(&dir.path().join("slave")),
        set.describe()
    );
    let bodies = |addr| -> Vec<String> {
        let mut b: Vec<String> = contents(addr)
            .into_iter()
            .map(|(_, _, body)| String::from_utf8_lossy(&body).into_owned())
            .collect();
        b.sort();
        b
    };
    let on_new = bodies(s);
    assert_eq!(on_new.len(), 60, "{on_new:?}");
    assert!(on_new.iter().all(|b| !b.starts_with("lost-")));
    assert_eq!(
        bodies(m),
        on_new,
        "the old master serves what the new one has"
    );
    assert_eq!(ha_status(m).unwrap()["master"], false);
    // Id 1 was the promoted slave's: the old master takes it.
    assert!(wait_for(Duration::from_secs(10), || registered_addr(ns, 1)
        == Some(m.to_string())));
    // The roles survive restarts of both.
    set.master.kill9();
    set.restart_master();
    let r = send(s, 0, "after-restart");
    assert_eq!(r.code, rs::SUCCESS);
    assert_eq!(send(m, 0, "refused").code, rs::SERVICE_NOT_AVAILABLE);
    assert!(wait_for(Duration::from_secs(20), || {
        log_digests(&dir.path().join("master")) == log_digests(&dir.path().join("slave"))
    }));
}
