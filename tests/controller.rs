//! Controller mode with real processes on loopback: three `rocketcore
//! controller` nodes (openraft), a name server, and a group of three
//! brokers with `enableControllerMode=true`. The group elects a master by
//! itself; when the master is killed an in-sync slave takes over with
//! every acknowledged message; with a controller node killed too it still
//! fails over; a killed master that comes back rejoins as a slave and
//! ends up with the same log as the master, byte for byte.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::controlled::*;
use common::*;
use rocketcore::remoting::codes::response_code as rs;
use rocketcore::remoting::RemotingCommand;

const TOPIC: &str = "FailoverTopic";

/// One cluster of seven processes at a time: two at once would share two
/// cores between fourteen, and failover times would be the scheduler's.
static ONE_CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());
const QUEUES: i32 = 4;

fn send(addr: SocketAddr, body: &str) -> Option<RemotingCommand> {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    Client::connect(addr)
        .call(send_request(TOPIC, 0, body.as_bytes(), ""))
        .ok()
}

fn bodies(addr: SocketAddr) -> Vec<String> {
    let mut out: Vec<String> = (0..QUEUES)
        .flat_map(|q| pull_all(addr, "reader", TOPIC, q))
        .map(|p| String::from_utf8_lossy(&p.body).into_owned())
        .collect();
    out.sort();
    out
}

/// The acknowledged bodies that `found` does not hold exactly once.
fn not_once<'a>(acked: &'a [String], found: &[String]) -> Vec<&'a String> {
    let mut seen = std::collections::HashMap::new();
    for b in found {
        *seen.entry(b.as_str()).or_insert(0usize) += 1;
    }
    acked
        .iter()
        .filter(|a| seen.get(a.as_str()) != Some(&1))
        .collect()
}

/// Sends to whichever broker of `alive` is master until one acknowledges;
/// how long that took.
fn first_send_on_new_master(c: &Cluster, alive: &[usize], limit: Duration) -> (usize, Duration) {
    let t0 = Instant::now();
    let mut n = 0;
    while t0.elapsed() < limit {
        if let Some(m) = c.master(alive) {
            n += 1;
            if send(c.brokers[m].server.broker, &format!("probe-{n}"))
                .is_some_and(|r| r.code == rs::SUCCESS)
            {
                return (m, t0.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "no new master took a send within {limit:?}\n{}",
        c.describe()
    );
}

#[test]
fn the_group_fails_over_by_itself_and_the_old_master_rejoins_with_the_same_log() {
    let _alone = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = store_dir("controller-failover");
    let mut c = Cluster::start(dir.path());
    let all = [0usize, 1, 2];
    // An election without anyone asking for it: one master, two slaves,
    // both in the in-sync set.
    let first = c.wait_for_group(Duration::from_secs(30));
    let master_addr = c.brokers[first].server.broker;
    assert!(
        wait_for(Duration::from_secs(10), || registered_ids(
            c.ns.namesrv,
            "broker-a"
        )
        .len()
            == 3),
        "{:?}",
        registered_ids(c.ns.namesrv, "broker-a")
    );
    // The admin verbs read the same from any node (followers apply the
    // log a heartbeat later).
    let sync_set_of = |a: SocketAddr| -> serde_json::Value {
        let a = a.to_string();
        admin_json(&["getSyncStateSet", "-a", &a, "-b", "broker-a"])["groups"]["broker-a"].clone()
    };
    for a in &c.controller_addrs {
        let ok = wait_for(Duration::from_secs(5), || {
            let g = sync_set_of(*a);
            g["sync_set"].as_array().map(Vec::len) == Some(3) && g["master_epoch"] == 1
        });
        assert!(ok, "{a}: {}", sync_set_of(*a));
    }
    let r = Client::connect(master_addr)
        .call(create_topic_request(TOPIC, QUEUES as u32))
        .unwrap();
    assert_eq!(r.code, rs::SUCCESS);
    // The master dies under load: every SEND_OK it gave (each waited for
    // both in-sync slaves) is on the one elected, exactly once.
    let load_acked: Acked = Default::default();
    let load = SendLoad::start(
        master_addr,
        TOPIC,
        QUEUES,
        4,
        "m",
        &load_acked,
        Duration::from_secs(30),
    );
    std::thread::sleep(Duration::from_millis(1500));
    c.brokers[first].server.kill9();
    load.stop();
    let mut acked: Vec<String> = load_acked.lock().unwrap().keys().cloned().collect();
    assert!(acked.len() > 50, "too little load: {}", acked.len());
    let alive: Vec<usize> = all.iter().copied().filter(|i| *i != first).collect();
    let (second, took) = first_send_on_new_master(&c, &alive, Duration::from_secs(20));
    eprintln!(
        "failover 1: {} SEND_OKs before the kill; first send on the new master {took:?} after it",
        acked.len()
    );
    let lost = not_once(&acked, &bodies(c.brokers[second].server.broker));
    assert!(
        lost.is_empty(),
        "lost or doubled in the failover: {lost:?}\n{}",
        c.describe()
    );

    // A controller node dies (the leader, for the harder case), then the
    // new master: the last broker still becomes master.
    let leader = c
        .controller_addrs
        .iter()
        .position(|a| metadata(*a).is_some_and(|(l, _)| l))
        .expect("a controller leader");
    if let Some(mut s) = c.controllers[leader].take() {
        s.kill9();
    }
    let third = alive.iter().copied().find(|i| *i != second).unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || {
            ha_status(c.brokers[second].server.broker).is_some_and(|v| v["inSyncSlaveNums"] == 1)
        }),
        "the remaining slave never got in sync with the new master\n{}",
        c.describe()
    );
    // The in-sync set must name it before the master goes.
    std::thread::sleep(Duration::from_secs(2));
    for i in 0..20 {
        let r = send(c.brokers[second].server.broker, &format!("n-{i}")).unwrap();
        assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
        acked.push(format!("n-{i}"));
    }
    c.brokers[second].server.kill9();
    let (m3, took) = first_send_on_new_master(&c, &[third], Duration::from_secs(20));
    assert_eq!(m3, third);
    eprintln!("failover 2 (one controller down): {took:?}");
    let on_third = bodies(c.brokers[third].server.broker);
    for a in &acked {
        assert!(
            on_third.contains(a),
            "{a} lost in the second failover\n{}",
            c.describe()
        );
    }
    for i in 0..10 {
        let r = send(c.brokers[third].server.broker, &format!("t-{i}")).unwrap();
        assert_eq!(r.code, rs::SUCCESS);
    }

    // Both old masters come back: slaves of the third, same log.
    c.restart_broker(first);
    c.restart_broker(second);
    let same = wait_for(Duration::from_secs(30), || {
        let want = log_digests(&c.brokers[third].store);
        log_digests(&c.brokers[first].store) == want
            && log_digests(&c.brokers[second].store) == want
    });
    assert!(
        same,
        "logs differ: {:?} {:?} {:?}\n{}",
        log_digests(&c.brokers[first].store),
        log_digests(&c.brokers[second].store),
        log_digests(&c.brokers[third].store),
        c.describe()
    );
    for i in [first, second] {
        assert_eq!(
            ha_status(c.brokers[i].server.broker).unwrap()["master"],
            false
        );
    }
    assert_eq!(c.master(&all), Some(third));

    // The killed controller node comes back and catches up from its own
    // log and the leader's; garbage on its port closes only that socket.
    let peers_node = leader + 1;
    let args = controller_args(dir.path(), peers_node, &c.peers, c.controller_addrs[leader]);
    c.controllers[leader] = Some(
        Server::process(
            args,
            0,
            c.controller_addrs[leader].port(),
            &dir.path()
                .join(format!("controller-{peers_node}.again.log")),
        )
        .start(),
    );
    let mut junk = std::net::TcpStream::connect(c.controller_addrs[leader]).unwrap();
    use std::io::Write;
    let _ = junk.write_all(&[0xff; 64]);
    let groups = |a: SocketAddr| metadata(a).map(|(_, m)| m["groups"].clone());
    let caught_up = wait_for(Duration::from_secs(20), || {
        let mine = groups(c.controller_addrs[leader]);
        mine.is_some()
            && c.controller_addrs
                .iter()
                .filter(|a| **a != c.controller_addrs[leader])
                .all(|a| groups(*a) == mine)
    });
    assert!(
        caught_up,
        "the restarted controller never caught up\n{}",
        c.describe()
    );
}

/// Repeated kill -9 of whichever broker is master, under load, with the
/// killed one restarted each time: every SEND_OK of every cycle is on the
/// group's master at the end exactly once, and all three logs end equal.
/// `ROCKETCORE_CONTROLLER_KILL_CYCLES` sets the cycles (default 2).
#[test]
fn every_send_ok_survives_repeated_master_kills() {
    let _alone = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let cycles: usize = std::env::var("ROCKETCORE_CONTROLLER_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let dir = store_dir("controller-kills");
    let mut c = Cluster::start(dir.path());
    let mut master = c.wait_for_group(Duration::from_secs(30));
    let r = Client::connect(c.brokers[master].server.broker)
        .call(create_topic_request(TOPIC, QUEUES as u32))
        .unwrap();
    assert_eq!(r.code, rs::SUCCESS);
    let acked: Acked = Default::default();
    let all = [0usize, 1, 2];
    for cycle in 0..cycles {
        let load = SendLoad::start(
            c.brokers[master].server.broker,
            TOPIC,
            QUEUES,
            4,
            &format!("c{cycle}"),
            &acked,
            Duration::from_secs(30),
        );
        std::thread::sleep(Duration::from_millis(1000));
        c.brokers[master].server.kill9();
        load.stop();
        let killed = master;
        let alive: Vec<usize> = all.iter().copied().filter(|i| *i != killed).collect();
        let (next, took) = first_send_on_new_master(&c, &alive, Duration::from_secs(20));
        eprintln!("cycle {cycle}: new master after {took:?}");
        c.restart_broker(killed);
        master = c.wait_for_group(Duration::from_secs(30));
        assert_eq!(master, next, "the master changed again\n{}", c.describe());
    }
    let acked: Vec<String> = acked.lock().unwrap().keys().cloned().collect();
    assert!(
        acked.len() > 50 * cycles,
        "too little load: {}",
        acked.len()
    );
    let missing = not_once(&acked, &bodies(c.brokers[master].server.broker));
    assert!(
        missing.is_empty(),
        "{} of {} SEND_OKs lost or doubled, e.g. {:?}\n{}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)],
        c.describe()
    );
    let same = wait_for(Duration::from_secs(30), || {
        let want = log_digests(&c.brokers[master].store);
        c.brokers.iter().all(|b| log_digests(&b.store) == want)
    });
    assert!(same, "logs differ\n{}", c.describe());
    println!(
        "{cycles} master kills: {} SEND_OKs, all on the last master once",
        acked.len()
    );
}
