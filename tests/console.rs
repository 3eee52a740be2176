//! The web console in a real browser: Debian's Chromium, headless, driven
//! by ChromeDriver over the W3C WebDriver protocol (a few JSON requests,
//! spoken here directly). The test installs both with apt-get when they are
//! missing, loads every page against a `rocketcore dev` with data made by
//! the admin CLI, searches a message by key, resets an offset (refused
//! without the admin password, applied with it), re-sends a dead letter and
//! deletes a topic, checking each effect with the CLI. Screenshots of each
//! page go to `<target>/tmp/console-screenshots/`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Waits for the page to show something end after this long.
const WAIT: Duration = Duration::from_secs(20);
const PASSWORD: &str = "console-test-pw";

/// Installs Chromium and ChromeDriver from Debian's packages if absent.
fn ensure_browser() {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return;
    }
    let install = || {
        Command::new("apt-get")
            .args([
                "install",
                "-y",
                "--no-install-recommends",
                "chromium",
                "chromium-driver",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let updated = Command::new("apt-get")
            .arg("update")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            updated && install(),
            "cannot install Debian's chromium and chromium-driver with apt-get (needs root and Debian's package mirror)"
        );
    }
    assert!(Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists());
}

/// One HTTP/1.1 request with `Connection: close`; the status and the body.
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(payload.as_bytes()).unwrap();
    // Read the head, then as much body as it announces: ChromeDriver keeps
    // the connection open whatever the request says.
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    let split = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed before a response head");
        raw.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap();
    let mut body = raw[split + 4..].to_vec();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let done = match length {
            Some(len) => body.len() >= len,
            None if chunked => body.ends_with(b"0\r\n\r\n"),
            None => false,
        };
        if done {
            break;
        }
        let n = s.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if chunked {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}

/// ChromeDriver and one browser session; both end on drop, and so does
/// every browser process: they share the driver's process group.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    shots: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start(shots: PathBuf) -> Browser {
        let port = common::free_port();
        use std::os::unix::process::CommandExt;
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = common::store_dir("chromium-profile");
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display())]}}}});
        let mut b = Browser {
            driver,
            addr,
            session: String::new(),
            shots,
            _profile: profile,
        };
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["sessionId"].as_str().expect("a session id").to_string();
        std::fs::create_dir_all(&b.shots).unwrap();
        b
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.or_else(|| (method == "POST").then(|| json!({})));
        let (status, raw) = http(self.addr, method, path, body.as_ref());
        let v: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        assert!(status < 300, "webdriver {method} {path}: {status} {v}");
        v["value"].clone()
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    fn open(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({"url": url})));
    }

    fn script(&self, js: &str) -> Value {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({"script": js, "args": []})),
        )
    }

    /// The element `css` names, waiting for it to appear.
    fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let (status, raw) = http(
                self.addr,
                "POST",
                &self.s("/element"),
                Some(&json!({"using": "css selector", "value": css})),
            );
            if status == 200 {
                let v: Value = serde_json::from_slice(&raw).unwrap();
                let id = v["value"]
                    .as_object()
                    .and_then(|o| o.values().next().cloned());
                return id.and_then(|i| i.as_str().map(String::from)).unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "no element {css}: {}",
                self.body_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        self.call("POST", &self.s(&format!("/element/{id}/click")), None);
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.call("POST", &self.s(&format!("/element/{id}/clear")), None);
        self.call(
            "POST",
            &self.s(&format!("/element/{id}/value")),
            Some(json!({"text": text})),
        );
    }

    fn text_of(&self, css: &str) -> String {
        let id = self.find(css);
        self.call("GET", &self.s(&format!("/element/{id}/text")), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn body_text(&self) -> String {
        self.script("return document.body ? document.body.innerText : ''")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until the text of `css` contains `want`.
    fn wait_text(&self, css: &str, want: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let js = format!(
                "const e = document.querySelector({}); return e ? e.innerText : null",
                serde_json::to_string(css).unwrap()
            );
            if let Some(t) = self.script(&js).as_str() {
                if t.contains(want) {
                    return t.to_string();
                }
            }
            assert!(
                Instant::now() < deadline,
                "{css} never showed {want:?}; the page says:\n{}",
                self.body_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn accept_alert(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let (status, _) = http(
                self.addr,
                "POST",
                &self.s("/alert/accept"),
                Some(&json!({})),
            );
            if status == 200 {
                return;
            }
            assert!(Instant::now() < deadline, "no confirm dialog appeared");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&self, name: &str) {
        use base64::Engine;
        let v = self.call("GET", &self.s("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Closing the session shuts the browser down cleanly; a driver
            // that no longer answers must not turn this drop into a panic.
            let (addr, path) = (self.addr, self.s(""));
            let _ = std::panic::catch_unwind(move || http(addr, "DELETE", &path, None));
        }
        // SAFETY: signals the process group this test created for the
        // driver (its id is the driver's pid); nothing else is in it.
        unsafe { libc::kill(-(self.driver.id() as i32), libc::SIGKILL) };
        let _ = self.driver.wait();
    }
}

fn admin(ns: &str, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_rocketcore"))
        .args(["admin", "-n", ns, "--json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn wait_for_route(ns: &str, topic: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let ok = Command::new(env!("CARGO_BIN_EXE_rocketcore"))
            .args(["admin", "-n", ns, "topicRoute", "-t", topic])
            .output()
            .unwrap()
            .status
            .success();
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "no route for {topic}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn console_pages_in_headless_chromium() {
    ensure_browser();
    let store = common::store_dir("console");
    let http_port = common::free_port();
    let server = Server::start_dev(
        store.path(),
        &[
            "--set",
            "consoleEnable=true",
            "--set",
            &format!("consoleAdminPassword={PASSWORD}"),
            "--set",
            &format!("metricsPromExporterPort={http_port}"),
        ],
    );
    let ns = server.namesrv.to_string();
    let base = format!("http://127.0.0.1:{http_port}");
    let http_addr: SocketAddr = format!("127.0.0.1:{http_port}").parse().unwrap();

    // The API refuses what it must refuse, whatever the page does.
    let (status, _) = http(
        http_addr,
        "POST",
        "/api/v1/admin",
        Some(&json!({"args": ["deleteTopic", "-t", "X", "-c", "DefaultCluster"]})),
    );
    assert_eq!(status, 401);
    let (status, body) = http(
        http_addr,
        "POST",
        "/api/v1/admin",
        Some(&json!({"args": ["noSuchVerb"]})),
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let (status, _) = http(
        http_addr,
        "POST",
        "/api/v1/admin",
        Some(&json!({"args": "topicList"})),
    );
    assert_eq!(status, 400);
    let (status, _) = http(http_addr, "GET", "/metrics", None);
    assert_eq!(status, 404, "metrics stay off unless asked for");

    // Data to look at: a topic with three keyed messages, a group that
    // consumed them all, and a dead letter of another group.
    admin(
        &ns,
        &[
            "updateTopic",
            "-t",
            "ConsoleTopic",
            "-c",
            "DefaultCluster",
            "-r",
            "2",
            "-w",
            "2",
        ],
    );
    wait_for_route(&ns, "ConsoleTopic");
    for (i, key) in ["order-1", "order-2", "order-3"].iter().enumerate() {
        let body = format!("console body {i}");
        admin(
            &ns,
            &[
                "sendMessage",
                "-t",
                "ConsoleTopic",
                "-p",
                &body,
                "-k",
                key,
                "-c",
                "TagA",
                "-i",
                "0",
            ],
        );
    }
    admin(
        &ns,
        &[
            "updateSubGroup",
            "-g",
            "ConsoleGroup",
            "-c",
            "DefaultCluster",
        ],
    );
    admin(
        &ns,
        &[
            "resetOffsetByTime",
            "-g",
            "ConsoleGroup",
            "-t",
            "ConsoleTopic",
            "-s",
            "now",
        ],
    );
    admin(
        &ns,
        &["updateSubGroup", "-g", "DlqGroup", "-c", "DefaultCluster"],
    );
    let first = admin(
        &ns,
        &[
            "queryMsgByOffset",
            "-t",
            "ConsoleTopic",
            "-b",
            "broker-a",
            "-i",
            "0",
            "-o",
            "0",
        ],
    );
    let mut c = common::Client::connect(server.broker);
    let mut back = rocketcore::remoting::RemotingCommand::new_request(36);
    back.set_ext("offset", first["commitLogOffset"].as_i64().unwrap());
    back.set_ext("group", "DlqGroup");
    back.set_ext("delayLevel", -1);
    back.set_ext("originTopic", "ConsoleTopic");
    assert_eq!(c.call(back).unwrap().code, 0);
    wait_for_route(&ns, "%DLQ%DlqGroup");

    // An online consumer of ConsoleGroup that answers the broker's
    // GET_CONSUMER_RUNNING_INFO as a client does.
    let mut member = common::Client::connect(server.broker);
    let hb = rocketcore::remoting::RemotingCommand::new_request(34).with_body(
        br#"{"clientID":"console-client@1","producerDataSet":[],"consumerDataSet":[{"groupName":"ConsoleGroup","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","subscriptionDataSet":[],"unitMode":false}]}"#.to_vec(),
    );
    assert_eq!(member.call(hb).unwrap().code, 0);
    let answering = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let responder = {
        let answering = answering.clone();
        std::thread::spawn(move || {
            let info = br#"{"properties":{"consumeType":"CONSUME_PASSIVELY"},"mqTable":{{"brokerName":"broker-a","queueId":0,"topic":"ConsoleTopic"}:{"commitOffset":3}}}"#;
            let until = Instant::now() + Duration::from_secs(120);
            while answering.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < until {
                let Some(asked) = member.next_request(307, Duration::from_millis(200)) else {
                    continue;
                };
                let answer = rocketcore::remoting::RemotingCommand::new_response(0, None)
                    .reply_to(&asked)
                    .with_body(info.to_vec());
                let mut bytes = bytes::BytesMut::new();
                answer.encode(&mut bytes).unwrap();
                member.send_raw(&bytes).unwrap();
            }
        })
    };

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let b = Browser::start(shots.clone());

    // Cluster: the broker, its runtime, and the live chart.
    b.open(&format!("{base}/#cluster"));
    b.wait_text("#brokers", &server.broker.to_string());
    b.wait_text("#node", "broker broker-a");
    b.find("#tps-chart");
    b.click("#brokers tbody tr");
    b.wait_text("#broker-runtime", "msgPutTotalTodayNow");
    b.wait_text("#broker-config", "brokerClusterName");
    // Traffic for the chart: a few samples 2 s apart while messages arrive.
    let sender = {
        let ns = ns.clone();
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(7);
            while Instant::now() < until {
                admin(&ns, &["sendMessage", "-t", "ChartTopic", "-p", "tick"]);
            }
        })
    };
    sender.join().unwrap();
    b.wait_text("#tps", "last 3 samples");
    b.screenshot("cluster");

    // Topics, then the topic's queues.
    b.click("#nav-topics");
    b.wait_text("#topics", "ConsoleTopic");
    let listed = b.text_of("#topics");
    assert!(
        !listed.contains("%DLQ%")
            && !listed.contains("DefaultCluster")
            && !listed.contains("TBW102"),
        "system topics hidden by default: {listed}"
    );
    b.screenshot("topics");
    b.click("#show-system");
    b.wait_text("#topics", "%DLQ%DlqGroup");
    b.open(&format!("{base}/#topic?t=ConsoleTopic"));
    b.wait_text("#page", "3 messages stored");
    b.wait_text("#topic-route", "broker-a");
    b.screenshot("topic");

    // Message search by key, and its detail.
    b.click("#nav-messages");
    b.type_into("#by-key-topic", "ConsoleTopic");
    b.type_into("#by-key-key", "order-2");
    b.click("#by-key button");
    b.wait_text("#messages", "order-2");
    b.wait_text("#message-body", "console body 1");
    b.wait_text("#message-properties", "UNIQ_KEY");
    b.screenshot("messages");

    // Consumer groups; reset ConsoleGroup to the epoch: refused without the
    // password, done with it.
    b.click("#nav-groups");
    b.wait_text("#groups", "ConsoleGroup");
    b.screenshot("groups");
    b.open(&format!("{base}/#group?g=ConsoleGroup"));
    b.wait_text("#group-queues", "ConsoleTopic");
    let progress = [
        "consumerProgress",
        "-g",
        "ConsoleGroup",
        "-t",
        "ConsoleTopic",
    ];
    b.type_into("#reset-offset-raw", "0");
    b.click("#reset-offset button");
    b.wait_text("#status", "wrong or missing admin password");
    let lag = admin(&ns, &progress);
    assert_eq!(
        lag["diffTotal"], 0,
        "a refused reset changed nothing: {lag}"
    );
    b.type_into("#admin-password", PASSWORD);
    b.click("#reset-offset button");
    b.wait_text("#status", "reset 2 queues of ConsoleTopic");
    let lag = admin(&ns, &progress);
    assert_eq!(lag["diffTotal"], 3, "the reset moved the group back: {lag}");
    b.wait_text("#page", "lag 3 messages in 2 queues");
    b.wait_text("#group-connections", "console-client@1");
    b.wait_text(
        "#group-running",
        "console-client@1: 1 queues, CONSUME_PASSIVELY",
    );
    b.screenshot("group");
    answering.store(false, std::sync::atomic::Ordering::Relaxed);
    responder.join().unwrap();

    // Dead letters: browse and re-send.
    b.open(&format!("{base}/#dlq?g=DlqGroup"));
    b.wait_text("#dlq-letters", "ConsoleTopic");
    b.screenshot("dlq");
    b.click("#resend-all");
    b.wait_text("#status", "re-sent 1 message(s) to %RETRY%DlqGroup");
    wait_for_route(&ns, "%RETRY%DlqGroup");
    let again = admin(&ns, &["consumeMessage", "-t", "%RETRY%DlqGroup"]);
    assert_eq!(again[0]["body"], "console body 0", "{again}");

    // Producers and the name server's settings.
    b.click("#nav-producers");
    b.find("#producer-query");
    b.click("#nav-config");
    b.wait_text("#namesrv-config", "listenPort");
    b.screenshot("namesrv");

    // Delete the topic from its page.
    b.open(&format!("{base}/#topic?t=ConsoleTopic"));
    b.wait_text("#page", "3 messages stored");
    b.click("#delete-topic button");
    b.accept_alert();
    b.wait_text("#status", "topic ConsoleTopic deleted");
    let topics = admin(&ns, &["topicList"]);
    assert!(
        !topics
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "ConsoleTopic"),
        "{topics}"
    );
    println!("screenshots in {}", shots.display());
}

/// A name server serves the console too, talking to itself; without a
/// configured password it is read-only.
#[test]
fn name_server_console_is_read_only_without_a_password() {
    let (ns_port, http_port) = (common::free_port(), common::free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_rocketcore"))
        .args(["namesrv", "--listen", &format!("127.0.0.1:{ns_port}")])
        .args(["--set", "consoleEnable=true"])
        .args(["--set", &format!("metricsPromExporterPort={http_port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let deadline = Instant::now() + WAIT;
    let addr: SocketAddr = format!("127.0.0.1:{http_port}").parse().unwrap();
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "no HTTP port");
        if let Ok(Some(s)) = child.try_wait() {
            panic!("name server exited: {s}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _guard = Kill(child);
    let (status, page) = http(addr, "GET", "/", None);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("rocketcore console"));
    let (_, info) = http(addr, "GET", "/api/v1/info", None);
    let info: Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["writable"], false, "{info}");
    assert!(
        info["node"].as_str().unwrap().starts_with("name server"),
        "{info}"
    );
    let (status, body) = http(
        addr,
        "POST",
        "/api/v1/admin",
        Some(&json!({"args": ["getNamesrvConfig"]})),
    );
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["listenPort"], ns_port.to_string(), "{body}");
    let (status, body) = http(
        addr,
        "POST",
        "/api/v1/admin",
        Some(&json!({"args": ["updateKvConfig", "-s", "n", "-k", "k", "-v", "v"]})),
    );
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    // A verb that fails names why, and the port keeps serving.
    let (status, body) = http(
        addr,
        "POST",
        "/api/v1/admin",
        Some(&json!({"args": ["topicRoute", "-t", "Nope"]})),
    );
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    // Bad requests are refused with a reason, and the port keeps serving.
    let (status, _) = http(addr, "GET", "/api/v1/admin", None);
    assert_eq!(status, 405);
    let raw = |request: &str| {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    let big = raw("POST /api/v1/admin HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n");
    assert!(big.starts_with("HTTP/1.1 413"), "{big}");
    let text = raw(
        "POST /api/v1/admin HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}",
    );
    assert!(text.starts_with("HTTP/1.1 415"), "{text}");
    let garbage = raw("\x01\x02 not http\r\n\r\n");
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    let (status, _) = http(addr, "GET", "/healthz", None);
    assert_eq!(status, 200);
}
