//! Shared scaffolding for the integration tests that start the real
//! `rocketcore` binary: free loopback ports, a server guard that always
//! kills what it started, and a minimal blocking Remoting client built on
//! the crate's own codec.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rocketcore::remoting::{FrameDecoder, RemotingCommand};

/// How long a server may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one request may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Two free loopback ports for a name server and a broker, the broker's
/// `port - 2` (legacy channel) free as well.
pub fn free_ports() -> (u16, u16) {
    for _ in 0..100 {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let b = TcpListener::bind("127.0.0.1:0").unwrap();
        let broker = b.local_addr().unwrap().port();
        if broker < 1026 {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", broker - 2)).is_ok() {
            return (a.local_addr().unwrap().port(), broker);
        }
    }
    panic!("no free port pair found");
}

pub fn store_dir(name: &str) -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix(name)
        .tempdir_in(base)
        .unwrap()
}

/// A running `rocketcore dev`; killed when dropped.
pub struct Server {
    child: Option<Child>,
    pub namesrv: SocketAddr,
    pub broker: SocketAddr,
    pub store: PathBuf,
    log: PathBuf,
}

impl Server {
    pub fn start_dev(store: &Path, extra: &[&str]) -> Server {
        let (ns, br) = free_ports();
        Self::start_dev_on(store, ns, br, extra)
    }

    pub fn start_dev_on(store: &Path, ns: u16, br: u16, extra: &[&str]) -> Server {
        let namesrv: SocketAddr = format!("127.0.0.1:{ns}").parse().unwrap();
        let broker: SocketAddr = format!("127.0.0.1:{br}").parse().unwrap();
        let log = store.with_extension(format!("{br}.log"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_rocketcore"))
            .arg("dev")
            .arg("--namesrv-listen")
            .arg(namesrv.to_string())
            .arg("--listen")
            .arg(broker.to_string())
            .arg("--store")
            .arg(store)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting rocketcore");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("ready: ") {
                    let _ = tx.send(line);
                }
            }
        });
        let server = Server {
            child: Some(child),
            namesrv,
            broker,
            store: store.to_path_buf(),
            log,
        };
        if rx.recv_timeout(READY_TIMEOUT).is_err() {
            let log = server.log_tail();
            drop(server);
            panic!("rocketcore did not become ready within {READY_TIMEOUT:?}; log:\n{log}");
        }
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// SIGKILL, no cleanup: a crash.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (bounded) for a clean exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = c.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A blocking Remoting client: one connection, one request at a time.
pub struct Client {
    stream: TcpStream,
    buf: BytesMut,
    next_opaque: i32,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, CALL_TIMEOUT).expect("connect");
        stream.set_read_timeout(Some(CALL_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: BytesMut::new(),
            next_opaque: 1,
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn call(&mut self, mut cmd: RemotingCommand) -> std::io::Result<RemotingCommand> {
        cmd.opaque = self.next_opaque;
        self.next_opaque += 1;
        let mut out = BytesMut::new();
        cmd.encode(&mut out).map_err(std::io::Error::other)?;
        self.stream.write_all(&out)?;
        self.read_response(cmd.opaque)
    }

    pub fn read_response(&mut self, opaque: i32) -> std::io::Result<RemotingCommand> {
        let decoder = FrameDecoder::new();
        let deadline = Instant::now() + CALL_TIMEOUT;
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            while let Some(c) =
                RemotingCommand::decode(&mut self.buf, &decoder).map_err(std::io::Error::other)?
            {
                if c.is_response() && c.opaque == opaque {
                    return Ok(c);
                }
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no response",
                ));
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// True once the server has closed this connection (within the timeout).
    pub fn closed_by_peer(&mut self) -> bool {
        let mut chunk = [0u8; 1024];
        let deadline = Instant::now() + CALL_TIMEOUT;
        while Instant::now() < deadline {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return false
                }
                Err(_) => return true,
            }
        }
        false
    }
}

/// A SEND_MESSAGE_V2 request.
pub fn send_request(topic: &str, queue_id: i32, body: &[u8], props: &str) -> RemotingCommand {
    let mut cmd = RemotingCommand::new_request(310);
    for (k, v) in [
        ("a", "test-producer"),
        ("b", topic),
        ("c", "TBW102"),
        ("d", "4"),
        ("f", "0"),
        ("h", "0"),
        ("i", props),
    ] {
        cmd.set_ext(k, v);
    }
    cmd.set_ext("e", queue_id);
    cmd.set_ext("g", 1_700_000_000_000i64);
    cmd.with_body(body.to_vec())
}

/// UPDATE_AND_CREATE_TOPIC with `queues` read and write queues, perm 6.
pub fn create_topic_request(topic: &str, queues: u32) -> RemotingCommand {
    let mut cmd = RemotingCommand::new_request(17);
    for (k, v) in [
        ("topic", topic),
        ("defaultTopic", "TBW102"),
        ("perm", "6"),
        ("topicFilterType", "SINGLE_TAG"),
        ("order", "false"),
    ] {
        cmd.set_ext(k, v);
    }
    cmd.set_ext("readQueueNums", queues);
    cmd.set_ext("writeQueueNums", queues);
    cmd
}

/// A PULL_MESSAGE that brings its own subscription ("*"), no holding.
pub fn pull_request(group: &str, topic: &str, queue_id: i32, offset: i64) -> RemotingCommand {
    let mut cmd = RemotingCommand::new_request(11);
    cmd.set_ext("consumerGroup", group);
    cmd.set_ext("topic", topic);
    cmd.set_ext("queueId", queue_id);
    cmd.set_ext("queueOffset", offset);
    cmd.set_ext("maxMsgNums", 32);
    cmd.set_ext("sysFlag", 4);
    cmd.set_ext("commitOffset", 0);
    cmd.set_ext("suspendTimeoutMillis", 0);
    cmd.set_ext("subscription", "*");
    cmd.set_ext("subVersion", 0);
    cmd
}

/// Splits a pull body into records (TOTALSIZE-prefixed).
pub fn records(body: &[u8]) -> Vec<rocketcore_storage::RecordView<'_>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= body.len() {
        let n = i32::from_be_bytes(body[at..at + 4].try_into().unwrap()) as usize;
        out.push(
            rocketcore_storage::RecordView::parse(&body[at..at + n]).expect("well-formed record"),
        );
        at += n;
    }
    out
}
