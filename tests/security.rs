//! ACL and TLS against a real `rocketcore dev`: signed requests admitted
//! with the permission they need and refused with the reason otherwise,
//! the ACL file reloaded while running, TLS enforcing and permissive on one
//! port, certificates from files verified by a client, and settings that
//! cannot work refused at start.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::{Client, Server};
use rocketcore::remoting::{FrameDecoder, RemotingCommand};
use rocketcore::security::Credentials;

const USER: (&str, &str) = ("RocketMQ", "12345678");
const ADMIN: (&str, &str) = ("rocketadmin", "87654321");

const ACL: &str = r#"
globalWhiteRemoteAddresses:
accounts:
  - accessKey: RocketMQ
    secretKey: "12345678"
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - Open=PUB|SUB
      - ReadOnly=SUB
      - Closed=DENY
    groupPerms:
      - Banned=DENY
  - accessKey: rocketadmin
    secretKey: "87654321"
    admin: true
"#;

fn creds((access_key, secret_key): (&str, &str)) -> Credentials {
    Credentials {
        access_key: access_key.into(),
        secret_key: secret_key.into(),
    }
}

fn signed(mut cmd: RemotingCommand, who: (&str, &str)) -> RemotingCommand {
    creds(who).sign(&mut cmd);
    cmd
}

fn acl_args(file: &Path) -> Vec<String> {
    vec![
        "--set".into(),
        "aclEnable=true".into(),
        "--set".into(),
        format!("aclFile={}", file.display()),
        "--set".into(),
        format!(
            r#"innerClientAuthenticationCredentials={{"accessKey":"{}","secretKey":"{}"}}"#,
            ADMIN.0, ADMIN.1
        ),
    ]
}

fn start_with_acl(store: &Path) -> (Server, std::path::PathBuf) {
    let file = store.join("plain_acl.yml");
    std::fs::write(&file, ACL).unwrap();
    let server = Server::dev(store).args(acl_args(&file)).start();
    (server, file)
}

fn create(c: &mut Client, topic: &str, who: (&str, &str)) -> RemotingCommand {
    c.call(signed(common::create_topic_request(topic, 2), who))
        .unwrap()
}

fn send(c: &mut Client, topic: &str, who: (&str, &str)) -> RemotingCommand {
    c.call(signed(common::send_request(topic, 0, b"hello", ""), who))
        .unwrap()
}

fn refused(r: &RemotingCommand, why: &str) {
    assert_eq!(
        r.code, 1,
        "expected a refusal, got {} {:?}",
        r.code, r.remark
    );
    let remark = r.remark.as_deref().unwrap_or("");
    assert!(
        remark.starts_with("AclException") && remark.contains(why),
        "remark {remark:?} lacks {why:?}"
    );
}

fn runtime_value(c: &mut Client, key: &str, who: (&str, &str)) -> i64 {
    let r = c
        .call(signed(RemotingCommand::new_request(28), who))
        .unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
    let v: serde_json::Value = serde_json::from_slice(r.body.as_deref().unwrap()).unwrap();
    v["table"][key].as_str().unwrap().parse().unwrap()
}

#[test]
fn acl_admits_what_each_account_may_do_and_refuses_the_rest_with_the_reason() {
    let store = common::store_dir("acl-perms");
    let (server, _) = start_with_acl(store.path());
    let mut c = Client::connect(server.broker);

    // Topic changes are for admins.
    refused(&create(&mut c, "Open", USER), "needs an admin account");
    for t in ["Open", "ReadOnly", "Closed", "Unlisted"] {
        let r = create(&mut c, t, ADMIN);
        assert_eq!(r.code, 0, "{t}: {:?}", r.remark);
    }

    let ok = send(&mut c, "Open", USER);
    assert_eq!(ok.code, 0, "{:?}", ok.remark);
    refused(
        &send(&mut c, "ReadOnly", USER),
        "no PUB permission on topic ReadOnly",
    );
    refused(
        &send(&mut c, "Closed", USER),
        "no PUB permission on topic Closed",
    );
    refused(
        &send(&mut c, "Unlisted", USER),
        "no PUB permission on topic Unlisted",
    );
    refused(
        &send(&mut c, "Open", (USER.0, "wrong-secret")),
        "signature mismatch",
    );
    refused(
        &send(&mut c, "Open", ("Stranger", "12345678")),
        "no account",
    );
    refused(
        &c.call(common::send_request("Open", 0, b"hello", ""))
            .unwrap(),
        "not signed",
    );
    // A signed request changed on the way fails its signature.
    let mut tampered = signed(common::send_request("Open", 0, b"hello", ""), USER);
    tampered.body = Some(bytes::Bytes::from_static(b"HELLO"));
    refused(&c.call(tampered).unwrap(), "signature mismatch");

    // Pulls need SUB on the topic and on the group.
    let pull = |c: &mut Client, topic: &str, group: &str| {
        c.call(signed(common::pull_request(group, topic, 0, 0), USER))
            .unwrap()
    };
    let r = pull(&mut c, "Open", "Readers");
    assert_eq!(r.code, 0, "pull: {} {:?}", r.code, r.remark);
    assert_eq!(common::records(r.body.as_deref().unwrap()).len(), 1);
    let r = pull(&mut c, "ReadOnly", "Readers");
    assert_ne!(r.code, 1, "SUB suffices to pull: {:?}", r.remark);
    refused(
        &pull(&mut c, "Closed", "Readers"),
        "no SUB permission on topic Closed",
    );
    refused(
        &pull(&mut c, "Open", "Banned"),
        "no SUB permission on group Banned",
    );

    // Every refusal above was counted (summed over the shards).
    assert_eq!(runtime_value(&mut c, "aclRefused", ADMIN), 10);

    // The name server: reads are open, changes need an admin.
    let mut ns = Client::connect(server.namesrv);
    let mut route = RemotingCommand::new_request(105);
    route.set_ext("topic", "TBW102");
    assert_eq!(ns.call(route).unwrap().code, 0, "unsigned route lookup");
    let mut kv = RemotingCommand::new_request(100);
    kv.set_ext("namespace", "ns");
    kv.set_ext("key", "k");
    kv.set_ext("value", "v");
    refused(
        &ns.call(signed(kv.clone(), USER)).unwrap(),
        "needs an admin account",
    );
    refused(&ns.call(kv.clone()).unwrap(), "not signed");
    assert_eq!(ns.call(signed(kv, ADMIN)).unwrap().code, 0);
}

#[test]
fn acl_file_changes_take_effect_while_running_and_a_bad_file_keeps_the_last_good_one() {
    let store = common::store_dir("acl-reload");
    let (server, file) = start_with_acl(store.path());
    let mut c = Client::connect(server.broker);
    assert_eq!(create(&mut c, "ReadOnly", ADMIN).code, 0);
    refused(&send(&mut c, "ReadOnly", USER), "no PUB permission");

    std::fs::write(&file, ACL.replace("ReadOnly=SUB", "ReadOnly=PUB|SUB")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = send(&mut c, "ReadOnly", USER);
        if r.code == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "reload not seen: {:?}", r.remark);
        std::thread::sleep(Duration::from_millis(200));
    }

    std::fs::write(&file, "accounts: [ {accessKey: short").unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !server
        .log_tail()
        .contains("the previous ACL stays in force")
    {
        assert!(
            Instant::now() < deadline,
            "bad file not reported:\n{}",
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        send(&mut c, "ReadOnly", USER).code,
        0,
        "the last good ACL holds"
    );
}

/// A blocking TLS Remoting client.
struct TlsClient {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    buf: BytesMut,
}

impl TlsClient {
    fn connect(addr: SocketAddr, ca: Option<&Path>) -> std::io::Result<TlsClient> {
        let config = rocketcore::security::tls::build_client_config(ca).unwrap();
        let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))?;
        let name = rocketcore::security::tls::server_name(addr);
        let conn = rustls::ClientConnection::new(Arc::clone(&config), name).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, sock);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        Ok(TlsClient {
            tls,
            buf: BytesMut::new(),
        })
    }

    fn call(&mut self, mut cmd: RemotingCommand) -> std::io::Result<RemotingCommand> {
        cmd.opaque = 7;
        let mut out = BytesMut::new();
        cmd.encode(&mut out).unwrap();
        self.tls.write_all(&out)?;
        self.tls.flush()?;
        let decoder = FrameDecoder::new();
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            if let Some(r) =
                RemotingCommand::decode(&mut self.buf, &decoder).map_err(std::io::Error::other)?
            {
                return Ok(r);
            }
            let n = self.tls.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn tls_args(mode: &str) -> Vec<String> {
    vec![
        "--set".into(),
        "tls.test.mode.enable=true".into(),
        "--set".into(),
        format!("tlsMode={mode}"),
    ]
}

/// Whether a plain client gets an answer to a route lookup.
fn plain_answered(addr: SocketAddr) -> bool {
    let mut c = Client::connect(addr);
    let mut route = RemotingCommand::new_request(105);
    route.set_ext("topic", "TBW102");
    c.call(route).is_ok()
}

#[test]
fn tls_enforcing_serves_only_tls_and_permissive_serves_both_on_one_port() {
    let store = common::store_dir("tls-enforcing");
    let server = Server::dev(store.path())
        .args(tls_args("enforcing"))
        .start();
    assert!(
        !plain_answered(server.broker),
        "plain client served by an enforcing broker"
    );
    assert!(
        !plain_answered(server.namesrv),
        "plain client served by an enforcing name server"
    );
    // The broker registers over TLS with its name server (right after
    // start-up, not before its ready line: allow it a moment).
    let lookup = || {
        let mut ns = TlsClient::connect(server.namesrv, None).unwrap();
        let mut route = RemotingCommand::new_request(105);
        route.set_ext("topic", "TBW102");
        ns.call(route).unwrap()
    };
    common::wait_for(Duration::from_secs(10), || lookup().code == 0);
    let r = lookup();
    assert_eq!(r.code, 0, "route over TLS: {:?}", r.remark);
    let mut b = TlsClient::connect(server.broker, None).unwrap();
    assert_eq!(
        b.call(common::create_topic_request("T", 1)).unwrap().code,
        0
    );
    let r = b
        .call(common::send_request("T", 0, b"over tls", ""))
        .unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
    let r = b.call(common::pull_request("g", "T", 0, 0)).unwrap();
    let got = common::records(r.body.as_deref().unwrap());
    assert_eq!(got.len(), 1);
    assert!(server.log_tail().contains("plain connection refused"));
    drop(store);

    let store = common::store_dir("tls-permissive");
    let server = Server::dev(store.path())
        .args(tls_args("permissive"))
        .start();
    assert!(plain_answered(server.broker));
    let mut b = TlsClient::connect(server.broker, None).unwrap();
    assert_eq!(
        b.call(common::create_topic_request("T", 1)).unwrap().code,
        0
    );
}

#[test]
fn certificates_from_files_are_served_and_verified_by_the_client() {
    let store = common::store_dir("tls-files");
    let dir = store.path().join("certs");
    // A CA and a server certificate it signed for 127.0.0.1, made by the
    // command users have for it.
    common::make_certificates(Path::new(env!("CARGO_BIN_EXE_rocketcore")), &dir);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.join("server.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o077,
        0,
        "the private key is readable by others: {mode:o}"
    );
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    std::fs::write(dir.join("other-ca.pem"), other.cert.pem()).unwrap();

    let server = Server::dev(store.path())
        .args([
            "--set".to_string(),
            format!("tls.server.certPath={}", dir.join("server.pem").display()),
            "--set".to_string(),
            format!("tls.server.keyPath={}", dir.join("server.key").display()),
            "--set".to_string(),
            "tlsMode=enforcing".to_string(),
        ])
        .start();
    let mut b = TlsClient::connect(server.broker, Some(&dir.join("ca.pem"))).unwrap();
    assert_eq!(
        b.call(common::create_topic_request("T", 1)).unwrap().code,
        0
    );
    let e = TlsClient::connect(server.broker, Some(&dir.join("other-ca.pem")))
        .err()
        .expect("a certificate from another CA must not verify");
    assert!(e.to_string().contains("certificate"), "{e}");
    drop(server);

    // Client certificates required: a client without one is not served.
    let store = common::store_dir("tls-client-auth");
    let server = Server::dev(store.path())
        .args([
            "--set".to_string(),
            format!("tls.server.certPath={}", dir.join("server.pem").display()),
            "--set".to_string(),
            format!("tls.server.keyPath={}", dir.join("server.key").display()),
            "--set".to_string(),
            "tls.server.need.client.auth=require".to_string(),
            "--set".to_string(),
            format!("tls.server.trustCertPath={}", dir.join("ca.pem").display()),
        ])
        .start();
    let served = TlsClient::connect(server.broker, Some(&dir.join("ca.pem")))
        .and_then(|mut c| c.call(common::create_topic_request("T", 1)));
    assert!(served.is_err(), "served without a client certificate");
    assert!(
        server.log_tail().contains("TLS handshake failed"),
        "{}",
        server.log_tail()
    );
}

#[test]
fn settings_that_cannot_work_stop_the_start_with_the_reason() {
    let store = common::store_dir("security-refusals");
    let acl = store.path().join("acl.yml");
    std::fs::write(&acl, "accounts: [{accessKey: short, secretKey: x}]").unwrap();
    let missing = store.path().join("missing.yml");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (acl_args(&missing), "reading ACL file"),
        (acl_args(&acl), "at least 7 characters"),
        (
            vec![
                "--set".into(),
                "aclEnable=true".into(),
                "--set".into(),
                format!("aclFile={}", missing.display()),
            ],
            "innerClientAuthenticationCredentials",
        ),
        (
            vec!["--set".into(), "tlsMode=enforcing".into()],
            "tls.server.certPath",
        ),
        (
            vec!["--set".into(), "tlsMode=sometimes".into()],
            "expected disabled, permissive or enforcing",
        ),
    ];
    for (args, why) in cases {
        let (ns, br) = common::free_ports();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rocketcore"))
            .arg("dev")
            .args(["--store", store.path().join("data").to_str().unwrap()])
            .args(["--namesrv-listen", &format!("127.0.0.1:{ns}")])
            .args(["--listen", &format!("127.0.0.1:{br}")])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
}

/// Starts `rocketcore namesrv` with `args`, waits for its `ready:` line
/// and returns what it logged by then.
fn namesrv_start_log(args: &[&str]) -> String {
    use std::io::BufRead;
    let dir = common::store_dir("namesrv-log");
    let log = dir.path().join("namesrv.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rocketcore"))
        .arg("namesrv")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let got = std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        got.is_ok() && line.starts_with("ready:"),
        "no ready line: {line:?}"
    );
    std::fs::read_to_string(&log).unwrap()
}

#[test]
fn a_server_reachable_from_other_machines_without_acl_or_tls_says_so() {
    const WARNING: &str = "reachable from other machines, with neither ACL";
    let (ns, _) = common::free_ports();
    let open = namesrv_start_log(&["--listen", &format!("0.0.0.0:{ns}")]);
    assert!(open.contains(WARNING), "{open}");
    let (ns, _) = common::free_ports();
    let guarded = namesrv_start_log(&[
        "--listen",
        &format!("0.0.0.0:{ns}"),
        "--set",
        "tls.test.mode.enable=true",
    ]);
    assert!(!guarded.contains(WARNING), "{guarded}");
    let (ns, _) = common::free_ports();
    let local = namesrv_start_log(&["--listen", &format!("127.0.0.1:{ns}")]);
    assert!(!local.contains(WARNING), "{local}");
}
