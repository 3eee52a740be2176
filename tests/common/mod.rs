//! Shared scaffolding for the integration tests that start the real
//! `rocketcore` binary: free loopback ports, a server guard that always
//! stops what it started (also when the test panics) and can say what went
//! wrong, and a minimal blocking Remoting client built on the crate's own
//! codec.
#![allow(dead_code)]

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rocketcore::remoting::{FrameDecoder, RemotingCommand};

pub mod controlled;

/// How long a server may take to print its ready line (default).
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGTERM before it is killed
/// (default).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one request may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts to start a server on fresh ports when the last one failed
/// because a port was taken between our probe and the server's bind.
const START_ATTEMPTS: u32 = 3;

/// Ports handed out by this process, so that parallel tests never get the
/// same ones (the kernel may reuse a port as soon as our probe closes it).
fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

fn bind_loopback(port: u16) -> Option<TcpListener> {
    TcpListener::bind(("127.0.0.1", port)).ok()
}

/// (name server port, broker port) with broker port − 2 (the legacy "VIP"
/// port the server also binds) free as well; all three distinct and new to
/// this process. They are released before the server binds them, so another
/// process could take one in between; `ServerBuilder::start` retries then.
pub fn free_ports() -> (u16, u16) {
    let mut taken = handed_out().lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..500 {
        let Some(ns) = bind_loopback(0) else { continue };
        let Some(broker) = bind_loopback(0) else {
            continue;
        };
        let ns_port = ns.local_addr().map(|a| a.port()).unwrap_or(0);
        let broker_port = broker.local_addr().map(|a| a.port()).unwrap_or(0);
        if ns_port == 0 || broker_port < 1026 {
            continue;
        }
        let vip_port = broker_port - 2;
        if [ns_port, broker_port, vip_port]
            .iter()
            .any(|p| taken.contains(p))
            || vip_port == ns_port
        {
            continue;
        }
        // Held until all three were checked, so they are free right now.
        if bind_loopback(vip_port).is_none() {
            continue;
        }
        taken.extend([ns_port, broker_port, vip_port]);
        return (ns_port, broker_port);
    }
    panic!("could not find free loopback ports");
}

/// One free loopback port (for an HTTP port or a helper process).
pub fn free_port() -> u16 {
    let mut taken = handed_out().lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..500 {
        let Some(port) = bind_loopback(0)
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port())
        else {
            continue;
        };
        // Never one already handed out: a server may not have bound it yet.
        if taken.insert(port) {
            return port;
        }
    }
    panic!("could not find a free loopback port")
}

pub fn store_dir(name: &str) -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix(name)
        .tempdir_in(base)
        .unwrap()
}

/// The last `lines` lines of `text`.
pub fn tail_lines(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The last `lines` lines of a text file (at most its last 256 KiB read).
pub fn tail_of_file(path: &Path, lines: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return format!("(cannot open {})", path.display());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(256 * 1024)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    tail_lines(&String::from_utf8_lossy(&buf), lines)
}

/// How to start a `rocketcore dev`: [`Server::dev`] gives the defaults
/// (this package's binary, free ports, stderr to `<store>.<broker port>.log`,
/// [`READY_TIMEOUT`], SIGKILL on drop), [`ServerBuilder::start`] starts it.
pub struct ServerBuilder {
    binary: PathBuf,
    store: PathBuf,
    args: Vec<OsString>,
    ports: Option<(u16, u16)>,
    log: Option<PathBuf>,
    ready_timeout: Duration,
    stop_timeout: Duration,
    stop_on_drop: bool,
    /// A command line of its own instead of `dev …` (see `Server::process`).
    raw: Option<Vec<OsString>>,
}

impl ServerBuilder {
    /// Another executable with the same command-line contract (e.g. a
    /// release build) instead of the `rocketcore` built with the tests.
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.binary = binary.into();
        self
    }

    /// Extra arguments after `dev --namesrv-listen … --listen … --store …`.
    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// These ports instead of free ones (then there is a single attempt).
    pub fn ports(mut self, namesrv: u16, broker: u16) -> Self {
        self.ports = Some((namesrv, broker));
        self
    }

    /// The file the server's stderr goes to (created or truncated).
    pub fn log(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = Some(path.into());
        self
    }

    /// How long the server may take to print its `ready:` line.
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// How long [`Server::stop`] (and a drop after
    /// [`ServerBuilder::stop_on_drop`]) waits after SIGTERM before SIGKILL.
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// On drop, SIGTERM (the server's clean shutdown path) and SIGKILL only
    /// after the stop timeout, instead of SIGKILL at once.
    pub fn stop_on_drop(mut self) -> Self {
        self.stop_on_drop = true;
        self
    }

    /// Starts the server and waits for its `ready:` line; panics with the
    /// command line, the reason, its stdout and the tail of its stderr if it
    /// does not become ready. On free ports it tries again (on new ones) when
    /// the server reports an address in use.
    pub fn start(self) -> Server {
        let attempts = if self.ports.is_some() {
            1
        } else {
            START_ATTEMPTS
        };
        let mut attempt = 1;
        loop {
            let (ns, br) = self.ports.unwrap_or_else(free_ports);
            let (mut server, ready) = self.spawn(ns, br);
            let Err(why) = server.wait_ready(ready, self.ready_timeout) else {
                return server;
            };
            server.kill9();
            let port_taken = tail_of_file(&server.log, 200)
                .to_ascii_lowercase()
                .contains("in use");
            if attempt >= attempts || !port_taken {
                panic!(
                    "rocketcore dev did not become ready (attempt {attempt} of {attempts}): {why}\n{}",
                    server.describe()
                );
            }
            attempt += 1;
        }
    }

    fn spawn(&self, ns: u16, br: u16) -> (Server, Receiver<String>) {
        let namesrv: SocketAddr = format!("127.0.0.1:{ns}").parse().unwrap();
        let broker: SocketAddr = format!("127.0.0.1:{br}").parse().unwrap();
        let log = self
            .log
            .clone()
            .unwrap_or_else(|| self.store.with_extension(format!("{br}.log")));
        let stderr = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let mut command = Command::new(&self.binary);
        if let Some(raw) = &self.raw {
            command.args(raw);
        } else {
            command
                .arg("dev")
                .arg("--namesrv-listen")
                .arg(namesrv.to_string())
                .arg("--listen")
                .arg(broker.to_string())
                .arg("--store")
                .arg(&self.store)
                // How full the host's disk is must not decide what a test
                // keeps (RocketMQ's 85 % forced deletion, 90 % refused
                // writes): a build machine's disk often is. Tests of a full
                // disk set their own ratios, which come later and win.
                .args(["--set", "diskSpaceWarningLevelRatio=100"])
                .args(["--set", "diskSpaceCleanForciblyRatio=100"])
                .args(["--set", "diskMaxUsedSpaceRatio=95"])
                .args(&self.args);
        }
        let command_line = std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        // Keep draining stdout after `ready:` so that the server never
        // blocks on a full pipe; keep the lines for failure reports.
        let pipe = child.stdout.take().expect("piped stdout");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&stdout);
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let ready = line.starts_with("ready: ").then(|| line.clone());
                lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                if let Some(line) = ready {
                    let _ = ready_tx.send(line);
                }
            }
        });
        let server = Server {
            child,
            exited: None,
            namesrv,
            broker,
            store: self.store.clone(),
            log,
            command_line,
            ready_line: String::new(),
            stdout,
            stop_timeout: self.stop_timeout,
            stop_on_drop: self.stop_on_drop,
        };
        (server, ready_rx)
    }
}

/// A running `rocketcore dev`; stopped when dropped (SIGKILL, or SIGTERM
/// first after [`ServerBuilder::stop_on_drop`]), also when the test panics.
pub struct Server {
    child: Child,
    exited: Option<ExitStatus>,
    pub namesrv: SocketAddr,
    pub broker: SocketAddr,
    pub store: PathBuf,
    log: PathBuf,
    command_line: String,
    ready_line: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stop_timeout: Duration,
    stop_on_drop: bool,
}

impl Server {
    /// Options for a `rocketcore dev` on `store`; see [`ServerBuilder`].
    pub fn dev(store: &Path) -> ServerBuilder {
        ServerBuilder {
            // Absent when another package (the bench) includes this file:
            // it must then name the binary with `.binary(..)`.
            binary: PathBuf::from(option_env!("CARGO_BIN_EXE_rocketcore").unwrap_or("rocketcore")),
            store: store.to_path_buf(),
            args: Vec::new(),
            ports: None,
            log: None,
            ready_timeout: READY_TIMEOUT,
            stop_timeout: STOP_TIMEOUT,
            stop_on_drop: false,
            raw: None,
        }
    }

    /// `rocketcore <args>` as given (a lone `namesrv` or `broker`), with
    /// `namesrv`/`broker` naming its addresses for the test; stderr goes
    /// to `log`.
    pub fn process<S: AsRef<OsStr>>(
        args: impl IntoIterator<Item = S>,
        namesrv: u16,
        broker: u16,
        log: &Path,
    ) -> ServerBuilder {
        let mut b = Self::dev(log);
        b.raw = Some(
            args.into_iter()
                .map(|a| a.as_ref().to_os_string())
                .collect(),
        );
        b.ports = Some((namesrv, broker));
        b.log = Some(log.to_path_buf());
        b
    }

    pub fn start_dev(store: &Path, extra: &[&str]) -> Server {
        Self::dev(store).args(extra).start()
    }

    pub fn start_dev_on(store: &Path, ns: u16, br: u16, extra: &[&str]) -> Server {
        Self::dev(store).ports(ns, br).args(extra).start()
    }

    fn wait_ready(&mut self, ready: Receiver<String>, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            match ready.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    self.ready_line = line;
                    return Ok(());
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // The server is exiting: give it a moment, for its status.
                    let _ = self.wait_for_exit(Duration::from_secs(5));
                    return Err("stdout closed before a `ready:` line".into());
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = Some(status);
                return Err(format!("exited with {status} before a `ready:` line"));
            }
            if Instant::now() >= deadline {
                return Err(format!("no `ready:` line within {timeout:?}"));
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The `ready: …` line the server printed.
    pub fn ready_line(&self) -> &str {
        &self.ready_line
    }

    /// The file with the server's stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn log_tail(&self) -> String {
        tail_of_file(&self.log, 40)
    }

    /// The exit status, once the server is known to have exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.exited
    }

    /// For failure reports: command line, exit status, stdout and the tail
    /// of stderr.
    pub fn describe(&self) -> String {
        let stdout = self.stdout.lock().map(|l| l.join("\n")).unwrap_or_default();
        let exit = self
            .exited
            .map_or_else(|| "still running".to_string(), |s| s.to_string());
        format!(
            "--- {} ({exit}) stdout ---\n{stdout}\n--- its stderr, {} (last 200 lines) ---\n{}",
            self.command_line,
            self.log.display(),
            tail_of_file(&self.log, 200)
        )
    }

    /// SIGKILL, no cleanup: a crash.
    pub fn kill9(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within the stop timeout.
    /// Returns the exit status of a graceful (or earlier) exit, None if it
    /// had to be killed.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if let Some(status) = self.exited {
            return Some(status);
        }
        if let Ok(Some(status)) = self.child.try_wait() {
            self.exited = Some(status);
            return Some(status);
        }
        // SAFETY: kill(2) on the pid of our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        if let Some(status) = self.wait_for_exit(self.stop_timeout) {
            return Some(status);
        }
        self.kill9();
        None
    }

    /// [`Server::stop`], returning the exit code of a clean exit.
    pub fn terminate(&mut self) -> Option<i32> {
        self.stop().and_then(|s| s.code())
    }

    fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = Some(status);
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.stop_on_drop {
            self.stop();
        } else {
            self.kill9();
        }
    }
}

/// Runs `<binary> tls-certs` to write a CA and a server certificate for
/// 127.0.0.1 into `dir`, as a user would.
pub fn make_certificates(binary: &Path, dir: &Path) {
    let out = Command::new(binary)
        .args(["tls-certs", "--dir"])
        .arg(dir)
        .args(["--host", "127.0.0.1"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
    assert!(
        out.status.success(),
        "tls-certs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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

    /// Another handle on the connection, to write from a second thread.
    pub fn stream_clone(&self) -> TcpStream {
        self.stream.try_clone().expect("clone the stream")
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn call(&mut self, cmd: RemotingCommand) -> std::io::Result<RemotingCommand> {
        let opaque = self.write(cmd)?;
        self.read_response(opaque)
    }

    pub fn read_response(&mut self, opaque: i32) -> std::io::Result<RemotingCommand> {
        self.read_until(CALL_TIMEOUT, |c| c.is_response() && c.opaque == opaque)?
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::TimedOut, "no response"))
    }

    /// The next `n` responses, in the order they arrive (pipelined requests
    /// to different shards may be answered out of order).
    pub fn read_responses(&mut self, n: usize) -> std::io::Result<Vec<RemotingCommand>> {
        (0..n)
            .map(|_| {
                self.read_until(CALL_TIMEOUT, |c| c.is_response())?
                    .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::TimedOut, "no response"))
            })
            .collect()
    }

    /// Sends a oneway request (no answer is read).
    pub fn send_oneway(&mut self, mut cmd: RemotingCommand) -> std::io::Result<()> {
        cmd.mark_oneway();
        self.write(cmd).map(drop)
    }

    /// The next server-initiated request with `code` on this connection,
    /// waiting at most `limit`; other frames are dropped.
    pub fn next_request(&mut self, code: i32, limit: Duration) -> Option<RemotingCommand> {
        self.read_until(limit, |c| !c.is_response() && c.code == code)
            .ok()
            .flatten()
    }

    /// Gives `cmd` the next opaque and writes it; returns the opaque.
    fn write(&mut self, mut cmd: RemotingCommand) -> std::io::Result<i32> {
        cmd.opaque = self.next_opaque;
        self.next_opaque += 1;
        let mut out = BytesMut::new();
        cmd.encode(&mut out).map_err(std::io::Error::other)?;
        self.stream.write_all(&out)?;
        Ok(cmd.opaque)
    }

    /// Reads frames until one satisfies `want` (the others are dropped);
    /// Ok(None) when `limit` passes first.
    fn read_until(
        &mut self,
        limit: Duration,
        want: impl Fn(&RemotingCommand) -> bool,
    ) -> std::io::Result<Option<RemotingCommand>> {
        let decoder = FrameDecoder::new();
        let deadline = Instant::now() + limit;
        let mut chunk = vec![0u8; 64 << 10];
        let found = 'read: loop {
            while let Some(c) =
                RemotingCommand::decode(&mut self.buf, &decoder).map_err(std::io::Error::other)?
            {
                if want(&c) {
                    break 'read Ok(Some(c));
                }
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break Ok(None);
            };
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    break Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "connection closed",
                    ))
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => break Err(e),
            }
        };
        self.stream.set_read_timeout(Some(CALL_TIMEOUT))?;
        found
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
    rocketcore_storage::record::split(body).expect("well-formed records")
}

/// Busy loops on every core, as a parallel build beside the broker would
/// keep them; for tests that must hold under CPU contention. Each loop ends
/// when this is dropped or after `limit`, whichever comes first, so a test
/// that dies without unwinding cannot leave them spinning.
pub struct CpuLoad {
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl CpuLoad {
    pub fn start(limit: Duration) -> CpuLoad {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let end = Instant::now() + limit;
                    let mut x = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < end {
                        for i in 0..100_000u64 {
                            x = std::hint::black_box(x.wrapping_mul(6364136223846793005) ^ i);
                        }
                    }
                })
            })
            .collect();
        CpuLoad { stop, threads }
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One record as a pull returned it, owned.
pub struct Pulled {
    pub topic: Vec<u8>,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub body: Vec<u8>,
}

/// Every record of `topic`'s queue `queue_id` from offset 0, pulled with
/// `group` until the queue has no more (PULL_NOT_FOUND); panics on any
/// other answer, and on a `nextBeginOffset` that does not follow the
/// records it came with.
pub fn pull_all(addr: SocketAddr, group: &str, topic: &str, queue_id: i32) -> Vec<Pulled> {
    use rocketcore::remoting::codes::response_code as rs;
    let mut c = Client::connect(addr);
    let mut out = Vec::new();
    let mut offset = 0i64;
    for _ in 0..1_000_000 {
        let r = c
            .call(pull_request(group, topic, queue_id, offset))
            .unwrap();
        if r.code == rs::PULL_NOT_FOUND {
            return out;
        }
        assert_eq!(
            r.code,
            rs::SUCCESS,
            "{topic}/{queue_id} at {offset}: {:?}",
            r.remark
        );
        let recs = records(r.body.as_deref().unwrap_or_default());
        offset = recs.last().map_or(offset, |v| v.queue_offset() + 1);
        out.extend(recs.iter().map(|v| Pulled {
            topic: v.topic().to_vec(),
            queue_id: v.queue_id(),
            queue_offset: v.queue_offset(),
            body: v.body().to_vec(),
        }));
        assert_eq!(r.ext_i64("nextBeginOffset").unwrap(), offset);
    }
    panic!("{topic}/{queue_id}: no end after a million pulls")
}

/// body -> (queue, offset) of every send the broker acknowledged.
pub type Acked = Arc<Mutex<std::collections::HashMap<String, (i32, i64)>>>;

/// Sends from `senders` connections, each round its queues, until stopped,
/// `limit` passes or the broker goes away; records what was acknowledged.
pub struct SendLoad {
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl SendLoad {
    /// Bodies are `<label>-s<sender>-m<n>`, unique per label.
    pub fn start(
        addr: SocketAddr,
        topic: &'static str,
        queues: i32,
        senders: usize,
        label: &str,
        acked: &Acked,
        limit: Duration,
    ) -> SendLoad {
        use rocketcore::remoting::codes::response_code as rs;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..senders)
            .map(|t| {
                let (acked, stop, label) = (acked.clone(), stop.clone(), label.to_string());
                std::thread::spawn(move || {
                    let mut c = Client::connect(addr);
                    let end = Instant::now() + limit;
                    let mut i = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < end {
                        let body = format!("{label}-s{t}-m{i}");
                        let q = ((t as u64 + i) % queues as u64) as i32;
                        match c.call(send_request(topic, q, body.as_bytes(), "")) {
                            Ok(r) if r.code == rs::SUCCESS => {
                                let off = r.ext_i64("queueOffset").unwrap();
                                acked.lock().unwrap().insert(body, (q, off));
                            }
                            // The broker died under us: never acknowledged.
                            _ => break,
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        SendLoad { stop, threads }
    }

    /// Stops the senders and waits for them.
    pub fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
    }
}

/// A `rocketcore namesrv` on a free loopback port, logging to
/// `<dir>/namesrv.log`; its address as text.
pub fn start_namesrv(dir: &Path) -> (Server, String) {
    let (ns_port, _) = free_ports();
    let ns_addr = format!("127.0.0.1:{ns_port}");
    let ns = Server::process(
        ["namesrv", "--listen", &ns_addr],
        ns_port,
        0,
        &dir.join("namesrv.log"),
    )
    .start();
    (ns, ns_addr)
}

/// `rocketcore broker` arguments of a replication test broker: 2 shards,
/// 8 MiB segments, metadata copied every second, the host disk's fullness
/// ignored, its own `haListenPort`, then `sets` (KEY=VALUE).
pub fn replica_broker_args(
    ns_addr: &str,
    port: u16,
    ha_port: u16,
    store: &Path,
    sets: impl IntoIterator<Item = String>,
) -> Vec<String> {
    let mut a: Vec<String> = [
        "broker",
        "--namesrv",
        ns_addr,
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--store",
        &store.display().to_string(),
        "--shards",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for kv in [
        "brokerIP1=127.0.0.1".to_string(),
        format!("haListenPort={ha_port}"),
        "mappedFileSizeCommitLog=8388608".to_string(),
        "slaveSyncInterval=1000".to_string(),
        "registerNameServerPeriod=10000".to_string(),
        "diskSpaceWarningLevelRatio=100".to_string(),
        "diskSpaceCleanForciblyRatio=100".to_string(),
        "diskMaxUsedSpaceRatio=95".to_string(),
    ]
    .into_iter()
    .chain(sets)
    {
        a.push("--set".into());
        a.push(kv);
    }
    a
}

/// A name server, a master and a slave of one broker group, each its own
/// process on loopback, with 2 shards and 8 MiB segments; the slave copies
/// metadata every second.
pub struct ReplicaSet {
    pub ns: Server,
    pub master: Server,
    pub slave: Server,
    pub ha_port: u16,
    dir: PathBuf,
    master_args: Vec<String>,
    slave_args: Vec<String>,
}

impl ReplicaSet {
    pub fn start(
        dir: &Path,
        master_role: &str,
        master_extra: &[&str],
        slave_extra: &[&str],
    ) -> ReplicaSet {
        let (ns, ns_addr) = start_namesrv(dir);
        let ns_port = ns.namesrv.port();
        let (_, master_port) = free_ports();
        let (_, slave_port) = free_ports();
        let ha_port = free_port();
        // Each broker its own: a slave listens for slaves too, for when a
        // role change promotes it.
        let slave_ha_port = free_port();
        let broker = |name: &str, port: u16, ha: u16, role: &str, id: &str, extra: &[&str]| {
            let sets = [format!("brokerRole={role}"), format!("brokerId={id}")]
                .into_iter()
                .chain(extra.iter().map(|s| s.to_string()));
            replica_broker_args(&ns_addr, port, ha, &dir.join(name), sets)
        };
        let master_args = broker(
            "master",
            master_port,
            ha_port,
            master_role,
            "0",
            master_extra,
        );
        let slave_args = broker(
            "slave",
            slave_port,
            slave_ha_port,
            "SLAVE",
            "1",
            slave_extra,
        );
        let master =
            Server::process(&master_args, ns_port, master_port, &dir.join("master.log")).start();
        let slave =
            Server::process(&slave_args, ns_port, slave_port, &dir.join("slave.log")).start();
        ReplicaSet {
            ns,
            master,
            slave,
            ha_port,
            dir: dir.to_path_buf(),
            master_args,
            slave_args,
        }
    }

    /// Starts the master again on its store (after `kill9` or `stop`).
    pub fn restart_master(&mut self) {
        let port = self.master.broker.port();
        self.master = self.broker_again(&self.master_args, port, "master");
    }

    /// Starts the slave again on its store.
    pub fn restart_slave(&mut self) {
        let port = self.slave.broker.port();
        self.slave = self.broker_again(&self.slave_args, port, "slave");
    }

    /// Starts the slave's store again as the group's master
    /// (`brokerRole=ASYNC_MASTER`, `brokerId=0`): a promotion by hand.
    pub fn promote_slave(&mut self) {
        self.slave.stop();
        let args: Vec<String> = self
            .slave_args
            .iter()
            .map(|a| match a.as_str() {
                "brokerRole=SLAVE" => "brokerRole=ASYNC_MASTER".to_string(),
                "brokerId=1" => "brokerId=0".to_string(),
                _ => a.clone(),
            })
            .collect();
        let port = self.slave.broker.port();
        self.slave = self.broker_again(&args, port, "promoted");
    }

    /// A broker on `port` with `args`, logging to a new file.
    fn broker_again(&self, args: &[String], port: u16, label: &str) -> Server {
        let log = self.dir.join(format!("{label}.{}.log", unique_tag()));
        Server::process(args, self.ns.namesrv.port(), port, &log).start()
    }

    /// Every log, for a failure report.
    pub fn describe(&self) -> String {
        format!(
            "{}\n{}\n{}",
            self.ns.describe(),
            self.master.describe(),
            self.slave.describe()
        )
    }
}

fn unique_tag() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Broker ids the name server lists for `broker_name` (GET_BROKER_CLUSTER_INFO).
pub fn registered_ids(namesrv: SocketAddr, broker_name: &str) -> Vec<i64> {
    let Ok(stream) = TcpStream::connect_timeout(&namesrv, CALL_TIMEOUT) else {
        return Vec::new();
    };
    drop(stream);
    let mut c = Client::connect(namesrv);
    let Ok(r) = c.call(RemotingCommand::new_request(106)) else {
        return Vec::new();
    };
    let body = r.body.as_deref().unwrap_or(b"");
    rocketcore::protocol::decode_json::<rocketcore::protocol::ClusterInfo>(body)
        .ok()
        .and_then(|c| {
            c.broker_addr_table
                .get(broker_name)
                .map(|b| b.broker_addrs.keys().copied().collect())
        })
        .unwrap_or_default()
}

/// The address a name server lists for `broker_name` under `id`.
pub fn registered_addr(namesrv: SocketAddr, broker_name: &str, id: i64) -> Option<String> {
    TcpStream::connect_timeout(&namesrv, CALL_TIMEOUT).ok()?;
    let r = Client::connect(namesrv)
        .call(RemotingCommand::new_request(106))
        .ok()?;
    let info: rocketcore::protocol::ClusterInfo =
        rocketcore::protocol::decode_json(r.body.as_deref()?).ok()?;
    info.broker_addr_table
        .get(broker_name)?
        .broker_addrs
        .get(&id)
        .cloned()
}

/// `rocketcore admin <args> --json`, which must succeed; its JSON.
pub fn admin_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(option_env!("CARGO_BIN_EXE_rocketcore").unwrap_or("rocketcore"))
        .arg("admin")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "admin {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// For a client scenario that hands off to the test (`<handoff>/ready`,
/// then `<handoff>/killed`): in a thread, waits for `ready` and for
/// `before`, kills `pid` with SIGKILL, waits for `after` and writes
/// `killed`. Its result is empty, or why it did not get that far.
pub fn kill_on_ready(
    handoff: PathBuf,
    pid: i32,
    limit: Duration,
    before: impl Fn() -> bool + Send + 'static,
    after: impl Fn() -> bool + Send + 'static,
    after_what: &'static str,
) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        if !wait_for(limit, || handoff.join("ready").exists()) {
            return "the client never asked for the kill".to_string();
        }
        if !wait_for(Duration::from_secs(10), &before) {
            return "the name server never had the topic's route".to_string();
        }
        // SAFETY: kill(2) on the test's own child; its Server reaps it.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let t0 = Instant::now();
        if !wait_for(Duration::from_secs(30), &after) {
            return format!("after the kill: {after_what} did not happen");
        }
        println!("{after_what}: {:?} after the kill", t0.elapsed());
        std::fs::write(handoff.join("killed"), b"").unwrap();
        String::new()
    })
}

/// Whether a name server has queues of `topic` (a master registered it).
pub fn has_route(namesrv: SocketAddr, topic: &str) -> bool {
    if TcpStream::connect_timeout(&namesrv, CALL_TIMEOUT).is_err() {
        return false;
    }
    let mut cmd = RemotingCommand::new_request(105);
    cmd.set_ext("topic", topic);
    let Ok(r) = Client::connect(namesrv).call(cmd) else {
        return false;
    };
    r.code == 0
        && r.body.as_deref().is_some_and(|b| {
            rocketcore::protocol::decode_json::<rocketcore::protocol::TopicRouteData>(b)
                .is_ok_and(|d| !d.queue_datas.is_empty())
        })
}

/// Per shard of a 2-shard store: the commit log's bytes (segment files in
/// order, trailing zeros of unwritten space left out), as (length, hash).
/// Equal digests mean byte-equal logs.
pub fn log_digests(store: &Path) -> Vec<(usize, u64)> {
    use std::hash::Hasher;
    (0..2)
        .map(|shard| {
            let dir = store.join(format!("shard-{shard}")).join("commitlog");
            let mut names: Vec<_> = std::fs::read_dir(&dir)
                .map(|rd| rd.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            names.sort();
            let mut all = Vec::new();
            for n in names {
                all.extend(std::fs::read(n).unwrap_or_default());
            }
            let end = all.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
            let mut h = std::collections::hash_map::DefaultHasher::new();
            h.write(&all[..end]);
            (end, h.finish())
        })
        .collect()
}

/// Polls `cond` every 50 ms for at most `limit`.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// A broker's GET_BROKER_HA_STATUS (907) answer, as JSON.
pub fn ha_status(broker: SocketAddr) -> Option<serde_json::Value> {
    TcpStream::connect_timeout(&broker, CALL_TIMEOUT).ok()?;
    let mut c = Client::connect(broker);
    let r = c.call(RemotingCommand::new_request(907)).ok()?;
    serde_json::from_slice(r.body.as_deref()?).ok()
}

impl ReplicaSet {
    /// Waits until the master counts its slave in sync on every shard.
    pub fn wait_in_sync(&self, limit: Duration) {
        let ok = wait_for(limit, || {
            ha_status(self.master.broker).is_some_and(|v| v["inSyncSlaveNums"] == 1)
        });
        assert!(ok, "the slave never got in sync\n{}", self.describe());
    }
}
