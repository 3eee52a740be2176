//! Several name servers run independently: a broker registers its topics
//! with each, each answers routes on its own, and a broker that shuts down
//! unregisters from all of them.

mod common;

use std::process::{Command, Stdio};

use common::*;
use rocketcore::protocol::{decode_json, TopicRouteData};
use rocketcore::remoting::codes::response_code as rs;
use rocketcore::remoting::RemotingCommand;

struct Proc(std::process::Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_ready(args: &[String]) -> Proc {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_rocketcore"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("ready: ") {
                let _ = tx.send(());
            }
        }
    });
    let p = Proc(child);
    rx.recv_timeout(READY_TIMEOUT)
        .expect("process did not become ready");
    p
}

fn route(ns: std::net::SocketAddr, topic: &str) -> RemotingCommand {
    let mut c = Client::connect(ns);
    let mut r = RemotingCommand::new_request(105);
    r.set_ext("topic", topic);
    c.call(r).unwrap()
}

#[test]
fn a_broker_registers_with_every_name_server_and_leaves_them_all() {
    let (ns1, br) = free_ports();
    let (ns2, _) = free_ports();
    let _n1 = spawn_ready(&[
        "namesrv".into(),
        "--listen".into(),
        format!("127.0.0.1:{ns1}"),
    ]);
    let _n2 = spawn_ready(&[
        "namesrv".into(),
        "--listen".into(),
        format!("127.0.0.1:{ns2}"),
    ]);
    let dir = store_dir("two-ns");
    let mut broker = spawn_ready(&[
        "broker".into(),
        "--namesrv".into(),
        format!("127.0.0.1:{ns1};127.0.0.1:{ns2}"),
        "--listen".into(),
        format!("127.0.0.1:{br}"),
        "--store".into(),
        dir.path().join("store").display().to_string(),
        "--shards".into(),
        "2".into(),
        // A master listens for slaves too (listenPort + 1 unless set).
        "--set".into(),
        format!("haListenPort={}", free_port()),
    ]);
    for ns in [ns1, ns2] {
        let addr = format!("127.0.0.1:{ns}").parse().unwrap();
        // Registration happens right after start-up; allow it a moment.
        let mut r = route(addr, "TBW102");
        for _ in 0..50 {
            if r.code == rs::SUCCESS {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            r = route(addr, "TBW102");
        }
        assert_eq!(r.code, rs::SUCCESS, "name server {ns}: {:?}", r.remark);
        let data: TopicRouteData = decode_json(r.body.as_deref().unwrap()).unwrap();
        assert_eq!(
            data.broker_datas[0].broker_addrs[&0],
            format!("127.0.0.1:{br}")
        );
        assert_eq!(data.queue_datas[0].perm & 1, 1, "TBW102 keeps INHERIT");
    }
    // A clean shutdown unregisters from both.
    unsafe { libc::kill(broker.0.id() as i32, libc::SIGTERM) };
    let status = broker.0.wait().unwrap();
    assert!(status.success());
    for ns in [ns1, ns2] {
        let r = route(format!("127.0.0.1:{ns}").parse().unwrap(), "TBW102");
        assert_eq!(
            r.code,
            rs::TOPIC_NOT_EXIST,
            "name server {ns} still routes to a stopped broker"
        );
    }
}
