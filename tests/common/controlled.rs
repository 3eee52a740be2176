//! A controller-mode broker group on loopback for tests: three
//! `rocketcore controller` nodes, a name server and three brokers with
//! `enableControllerMode=true` (short heartbeat timeouts), each its own
//! process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use rocketcore::remoting::RemotingCommand;

pub struct Node {
    pub server: Server,
    pub args: Vec<String>,
    pub port: u16,
    pub store: PathBuf,
}

pub struct Cluster {
    pub dir: PathBuf,
    pub ns: Server,
    pub controllers: Vec<Option<Server>>,
    pub controller_addrs: Vec<SocketAddr>,
    pub peers: String,
    pub brokers: Vec<Node>,
}

pub fn controller_args(dir: &Path, id: usize, peers: &str, listen: SocketAddr) -> Vec<String> {
    vec![
        "controller".into(),
        "--id".into(),
        id.to_string(),
        "--peers".into(),
        peers.into(),
        "--listen".into(),
        listen.to_string(),
        "--dir".into(),
        dir.join(format!("controller-{id}")).display().to_string(),
    ]
}

impl Cluster {
    pub fn start(dir: &Path) -> Cluster {
        let (ns, ns_addr) = start_namesrv(dir);
        let ns_port = ns.namesrv.port();
        let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let raft_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let peers = raft_ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let controller_addrs: Vec<SocketAddr> = client_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}").parse().unwrap())
            .collect();
        let controllers = (0..3)
            .map(|i| {
                Some(
                    Server::process(
                        controller_args(dir, i + 1, &peers, controller_addrs[i]),
                        0,
                        client_ports[i],
                        &dir.join(format!("controller-{}.log", i + 1)),
                    )
                    .start(),
                )
            })
            .collect();
        let controller_list = controller_addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(";");
        let brokers = (0..3)
            .map(|i| {
                let (_, port) = free_ports();
                let ha = free_port();
                let store = dir.join(format!("broker-{i}"));
                let sets = [
                    "enableControllerMode=true".to_string(),
                    format!("controllerAddr={controller_list}"),
                    "controllerHeartBeatTimeoutMills=3000".to_string(),
                    "brokerHeartbeatInterval=500".to_string(),
                    "syncBrokerMetadataPeriod=500".to_string(),
                    "checkSyncStateSetPeriod=500".to_string(),
                    "haMaxTimeSlaveNotCatchup=3000".to_string(),
                ];
                let args = replica_broker_args(&ns_addr, port, ha, &store, sets);
                let server =
                    Server::process(&args, ns_port, port, &dir.join(format!("broker-{i}.log")))
                        .start();
                Node {
                    server,
                    args,
                    port,
                    store,
                }
            })
            .collect();
        Cluster {
            dir: dir.to_path_buf(),
            ns,
            controllers,
            controller_addrs,
            peers,
            brokers,
        }
    }

    pub fn restart_broker(&mut self, i: usize) {
        let b = &self.brokers[i];
        let log = self.dir.join(format!(
            "broker-{i}.{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let server = Server::process(&b.args, self.ns.namesrv.port(), b.port, &log).start();
        self.brokers[i].server = server;
    }

    /// The broker that says it is master, if exactly one alive does.
    pub fn master(&self, alive: &[usize]) -> Option<usize> {
        let masters: Vec<usize> = alive
            .iter()
            .copied()
            .filter(|i| {
                ha_status(self.brokers[*i].server.broker).is_some_and(|v| v["master"] == true)
            })
            .collect();
        (masters.len() == 1).then(|| masters[0])
    }

    /// Waits for a master whose two slaves are in sync on every shard and
    /// in the controller's in-sync set (only then does a SEND_OK wait for
    /// both, so that either can take over); returns its index.
    pub fn wait_for_group(&self, limit: Duration) -> usize {
        let all = [0usize, 1, 2];
        let ready = wait_for(limit, || {
            let Some(m) = self.master(&all) else {
                return false;
            };
            ha_status(self.brokers[m].server.broker).is_some_and(|v| v["inSyncSlaveNums"] == 2)
                && self
                    .controller_addrs
                    .iter()
                    .filter_map(|a| metadata(*a))
                    .any(|(leader, meta)| {
                        leader
                            && meta["groups"]["broker-a"]["sync_set"]
                                .as_array()
                                .map(Vec::len)
                                == Some(3)
                    })
        });
        assert!(
            ready,
            "no master with two in-sync slaves\n{}",
            self.describe()
        );
        self.master(&all).expect("a master")
    }

    pub fn describe(&self) -> String {
        let mut s = self.ns.describe();
        for c in self.controllers.iter().flatten() {
            s.push('\n');
            s.push_str(&c.describe());
        }
        for b in &self.brokers {
            s.push('\n');
            s.push_str(&b.server.describe());
        }
        s
    }
}

/// CONTROLLER_GET_METADATA_INFO (1005) from one controller node.
pub fn metadata(addr: SocketAddr) -> Option<(bool, serde_json::Value)> {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    let r = Client::connect(addr)
        .call(RemotingCommand::new_request(1005))
        .ok()?;
    let leader = r.ext_str_opt("isLeader") == Some("true");
    Some((leader, serde_json::from_slice(r.body.as_deref()?).ok()?))
}
