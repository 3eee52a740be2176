//! `rocketcore admin` against a real `rocketcore dev`: each verb's table and
//! JSON, errors that name the problem, and the same verbs over TLS with
//! signed requests against a broker that enforces both.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::Server;

fn admin(ns: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rocketcore"))
        .arg("admin")
        .args(["-n", ns])
        .args(args)
        .output()
        .unwrap()
}

/// Stdout of a verb that must succeed.
fn ok(ns: &str, args: &[&str]) -> String {
    let out = admin(ns, args);
    assert!(
        out.status.success(),
        "admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(ns: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(ns, &all)).unwrap()
}

/// Stderr of a verb that must fail.
fn fails(ns: &str, args: &[&str]) -> String {
    let out = admin(ns, args);
    assert!(!out.status.success(), "admin {args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

fn wait_for_route(ns: &str, topic: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !admin(ns, &["topicRoute", "-t", topic]).status.success() {
        assert!(std::time::Instant::now() < deadline, "no route for {topic}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn every_verb_answers_against_dev() {
    let store = common::store_dir("admin-verbs");
    let server = Server::start_dev(store.path(), &[]);
    let ns = server.namesrv.to_string();
    let broker = server.broker.to_string();

    let clusters = ok(&ns, &["clusterList"]);
    assert!(clusters.starts_with("#Cluster Name"), "{clusters}");
    assert!(
        clusters.contains("DefaultCluster") && clusters.contains(&broker),
        "{clusters}"
    );

    let created = ok(
        &ns,
        &[
            "updateTopic",
            "-t",
            "AdminTopic",
            "-c",
            "DefaultCluster",
            "-r",
            "3",
            "-w",
            "3",
        ],
    );
    assert!(
        created.contains(&format!("create topic to {broker} success.")),
        "{created}"
    );
    wait_for_route(&ns, "AdminTopic");
    assert!(ok(&ns, &["topicList"]).lines().any(|l| l == "AdminTopic"));
    let route = json(&ns, &["topicRoute", "-t", "AdminTopic"]);
    assert_eq!(route["queueDatas"][0]["readQueueNums"], 3, "{route}");

    // Three messages with one key into queue 1.
    let mut ids = Vec::new();
    for i in 0..3 {
        let sent = json(
            &ns,
            &[
                "sendMessage",
                "-t",
                "AdminTopic",
                "-p",
                &format!("body {i}"),
                "-k",
                "order-7",
                "-c",
                "TagA",
                "-i",
                "1",
            ],
        );
        assert_eq!(sent["sendResult"], "SEND_OK", "{sent}");
        assert_eq!(sent["queueId"], "1");
        ids.push(sent["msgId"].as_str().unwrap().to_string());
    }
    let status = json(&ns, &["topicStatus", "-t", "AdminTopic"]);
    let queues = status.as_array().unwrap();
    assert_eq!(queues.len(), 3);
    assert_eq!(queues[1]["maxOffset"], 3, "{status}");
    assert_eq!(queues[0]["maxOffset"], 0, "{status}");
    assert!(queues[1]["lastUpdateTimestamp"].as_i64().unwrap() > 1_600_000_000_000);
    assert_eq!(queues[0]["lastUpdateTimestamp"], 0, "{status}");
    let text = ok(&ns, &["topicStatus", "-t", "AdminTopic"]);
    assert!(text.starts_with("#Broker Name"), "{text}");
    assert!(text.contains("#Last Updated"), "{text}");

    let found = json(&ns, &["queryMsgByKey", "-t", "AdminTopic", "-k", "order-7"]);
    let mut bodies: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["body 0", "body 1", "body 2"]);
    let uniq = found[0]["properties"]["UNIQ_KEY"]
        .as_str()
        .unwrap()
        .to_string();
    let by_uniq = json(
        &ns,
        &["queryMsgByUniqueKey", "-i", &uniq, "-t", "AdminTopic"],
    );
    assert_eq!(by_uniq.as_array().unwrap().len(), 1, "{by_uniq}");
    assert_eq!(by_uniq[0]["body"], found[0]["body"], "{by_uniq}");
    let e = fails(
        &ns,
        &["queryMsgByUniqueKey", "-i", "NOSUCHKEY", "-t", "AdminTopic"],
    );
    assert!(
        e.contains("no message of topic AdminTopic has message id NOSUCHKEY"),
        "{e}"
    );
    let all = json(&ns, &["printMsg", "-t", "AdminTopic", "-b", "0"]);
    assert_eq!(all.as_array().unwrap().len(), 3, "{all}");
    let none = json(&ns, &["printMsg", "-t", "AdminTopic", "-e", "1"]);
    assert_eq!(none.as_array().unwrap().len(), 0, "{none}");
    let text = ok(&ns, &["printMsg", "-t", "AdminTopic"]);
    assert!(text.contains("BODY: \"body 1\""), "{text}");
    let one = ok(&ns, &["queryMsgById", "-i", &ids[2]]);
    assert!(one.contains("Message Body        : body 2"), "{one}");
    assert!(one.contains("Keys                : [order-7]"), "{one}");
    assert!(one.contains("Queue Offset        : 2"), "{one}");

    // A group that committed offset 1 on queue 1 (pull with commit flag
    // then an explicit commit) lags 2 there and 0 elsewhere.
    let mut c = common::Client::connect(server.broker);
    let mut commit = rocketcore::remoting::RemotingCommand::new_request(15);
    for (k, v) in [
        ("consumerGroup", "LagGroup"),
        ("topic", "AdminTopic"),
        ("queueId", "1"),
        ("commitOffset", "1"),
    ] {
        commit.set_ext(k, v);
    }
    assert_eq!(c.call(commit).unwrap().code, 0);
    let lag = json(
        &ns,
        &["consumerProgress", "-g", "LagGroup", "-t", "AdminTopic"],
    );
    assert_eq!(lag["diffTotal"], 2, "{lag}");
    assert_eq!(lag["queues"][1]["consumerOffset"], 1, "{lag}");
    assert_eq!(lag["queues"][1]["brokerOffset"], 3, "{lag}");
    let text = ok(
        &ns,
        &["consumerProgress", "-g", "LagGroup", "-t", "AdminTopic"],
    );
    assert!(
        text.starts_with("#Topic")
            && text.contains("#LastTime")
            && text.contains("Consume Diff Total: 2\n"),
        "{text}"
    );
    // Without -t: every topic the group has offsets for (GET_CONSUME_STATS).
    let lag = json(&ns, &["consumerProgress", "-g", "LagGroup"]);
    assert_eq!(lag["diffTotal"], 2, "{lag}");
    assert!(
        lag["queues"][1]["lastTimestamp"].as_i64().unwrap() > 0,
        "{lag}"
    );
    let e = fails(&ns, &["consumerProgress", "-g", "NobodyHere"]);
    assert!(e.contains("group NobodyHere has no consume stats"), "{e}");
    // Every configured group of the broker at once (GET_BROKER_CONSUME_STATS).
    ok(
        &ns,
        &["updateSubGroup", "-g", "LagGroup", "-c", "DefaultCluster"],
    );
    let all = json(&ns, &["brokerConsumeStats", "-b", &broker]);
    assert_eq!(all["totalDiff"], 2, "{all}");
    assert!(
        all["queues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["group"] == "LagGroup" && q["queueId"] == 1 && q["diff"] == 2),
        "{all}"
    );
    assert!(ok(&ns, &["brokerConsumeStats", "-b", &broker]).contains("Diff Total: 2"));
    let orderly = json(&ns, &["brokerConsumeStats", "-b", &broker, "-o", "true"]);
    assert_eq!(orderly["queues"].as_array().unwrap().len(), 0, "{orderly}");
    // Producers by group (GET_ALL_PRODUCER_INFO), from a heartbeat.
    let hb = rocketcore::remoting::RemotingCommand::new_request(34).with_body(
        br#"{"clientID":"admin-producer@1","producerDataSet":[{"groupName":"AdminProducers"}],"consumerDataSet":[]}"#.to_vec(),
    );
    assert_eq!(c.call(hb).unwrap().code, 0);
    let producers = json(&ns, &["producer", "-b", &broker]);
    assert_eq!(
        producers["AdminProducers"][0]["clientId"], "admin-producer@1",
        "{producers}"
    );
    assert!(
        ok(&ns, &["producer", "-b", &broker]).contains("producer group (AdminProducers) instance")
    );

    // Reset by time: to now (nothing ahead), then to the epoch (all ahead);
    // then copied to another group.
    ok(
        &ns,
        &[
            "resetOffsetByTime",
            "-g",
            "LagGroup",
            "-t",
            "AdminTopic",
            "-s",
            "now",
        ],
    );
    let lag = json(
        &ns,
        &["consumerProgress", "-g", "LagGroup", "-t", "AdminTopic"],
    );
    assert_eq!(lag["diffTotal"], 0, "{lag}");
    let reset = json(
        &ns,
        &[
            "resetOffsetByTime",
            "-g",
            "LagGroup",
            "-t",
            "AdminTopic",
            "-s",
            "1970-01-01#00:00:00:000",
        ],
    );
    assert_eq!(reset["queues"][1]["offset"], 0, "{reset}");
    let lag = json(
        &ns,
        &["consumerProgress", "-g", "LagGroup", "-t", "AdminTopic"],
    );
    assert_eq!(lag["diffTotal"], 3, "{lag}");
    ok(
        &ns,
        &[
            "resetOffsetByTime",
            "-g",
            "LagGroup",
            "-t",
            "AdminTopic",
            "-s",
            "now",
        ],
    );
    let cloned = ok(
        &ns,
        &[
            "cloneGroupOffset",
            "-s",
            "LagGroup",
            "-d",
            "CopyGroup",
            "-t",
            "AdminTopic",
        ],
    );
    assert!(cloned.contains("clone group offset success"), "{cloned}");
    let lag = json(
        &ns,
        &["consumerProgress", "-g", "CopyGroup", "-t", "AdminTopic"],
    );
    assert_eq!(lag["queues"][1]["consumerOffset"], 3, "{lag}");

    // Reading without consuming.
    let at = json(
        &ns,
        &[
            "queryMsgByOffset",
            "-t",
            "AdminTopic",
            "-b",
            "broker-a",
            "-i",
            "1",
            "-o",
            "1",
        ],
    );
    assert_eq!(at["body"], "body 1", "{at}");
    let e = fails(
        &ns,
        &[
            "queryMsgByOffset",
            "-t",
            "AdminTopic",
            "-b",
            "broker-a",
            "-i",
            "1",
            "-o",
            "9",
        ],
    );
    assert!(e.contains("no message at offset 9"), "{e}");
    let some = json(&ns, &["consumeMessage", "-t", "AdminTopic", "-c", "2"]);
    assert_eq!(some.as_array().unwrap().len(), 2, "{some}");

    // Write permission in the name server's routes.
    let wiped = ok(&ns, &["wipeWritePerm", "-b", "broker-a"]);
    assert!(
        wiped.contains("wipe write perm of broker[broker-a]"),
        "{wiped}"
    );
    let route = json(&ns, &["topicRoute", "-t", "AdminTopic"]);
    assert_eq!(
        route["queueDatas"][0]["perm"].as_u64().unwrap() & 2,
        0,
        "{route}"
    );
    ok(&ns, &["addWritePerm", "-b", "broker-a"]);
    let route = json(&ns, &["topicRoute", "-t", "AdminTopic"]);
    assert_eq!(
        route["queueDatas"][0]["perm"].as_u64().unwrap() & 2,
        2,
        "{route}"
    );

    // A dead letter, sent back to its group.
    ok(
        &ns,
        &["updateSubGroup", "-g", "DlqGroup", "-c", "DefaultCluster"],
    );
    let at = json(
        &ns,
        &[
            "queryMsgByOffset",
            "-t",
            "AdminTopic",
            "-b",
            "broker-a",
            "-i",
            "1",
            "-o",
            "0",
        ],
    );
    let mut back = rocketcore::remoting::RemotingCommand::new_request(36);
    back.set_ext("offset", at["commitLogOffset"].as_i64().unwrap());
    back.set_ext("group", "DlqGroup");
    back.set_ext("delayLevel", -1);
    back.set_ext("originTopic", "AdminTopic");
    let r = c.call(back).unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
    wait_for_route(&ns, "%DLQ%DlqGroup");
    let e = fails(
        &ns,
        &["resendDlqMessage", "-g", "DlqGroup", "-i", "NOSUCHID"],
    );
    assert!(e.contains("no dead letter with message id NOSUCHID"), "{e}");
    let resent = json(&ns, &["resendDlqMessage", "-g", "DlqGroup"]);
    assert_eq!(resent.as_array().unwrap().len(), 1, "{resent}");
    assert_eq!(resent[0]["originTopic"], "AdminTopic", "{resent}");
    wait_for_route(&ns, "%RETRY%DlqGroup");
    let again = json(&ns, &["consumeMessage", "-t", "%RETRY%DlqGroup"]);
    assert_eq!(again[0]["body"], "body 0", "{again}");
    assert_eq!(
        again[0]["properties"]["RETRY_TOPIC"], "AdminTopic",
        "{again}"
    );
    assert_eq!(again[0]["keys"], "order-7", "{again}");

    let conf = json(&ns, &["getBrokerConfig", "-b", &broker]);
    assert_eq!(
        conf["broker-a"]["brokerClusterName"], "DefaultCluster",
        "{conf}"
    );
    assert_eq!(
        conf["broker-a"]["listenPort"],
        server.broker.port().to_string()
    );
    assert_eq!(conf["broker-a"]["aclEnable"], "false");
    let text = ok(&ns, &["getBrokerConfig", "-c", "DefaultCluster"]);
    assert!(
        text.contains(&format!("============{broker}============")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("flushDiskType") && l.ends_with("ASYNC_FLUSH")),
        "{text}"
    );

    let status = json(&ns, &["brokerStatus", "-b", &broker]);
    // Three sends, the dead letter and its re-send.
    assert_eq!(status[&broker]["msgPutTotalTodayNow"], "5", "{status}");

    let group = ok(
        &ns,
        &[
            "updateSubGroup",
            "-g",
            "AdminGroup",
            "-c",
            "DefaultCluster",
            "-r",
            "3",
        ],
    );
    assert!(
        group.contains("success") && group.contains("\"retryMaxTimes\":3"),
        "{group}"
    );
    ok(&ns, &["deleteSubGroup", "-g", "AdminGroup", "-b", &broker]);

    ok(
        &ns,
        &[
            "updateKvConfig",
            "-s",
            "ORDER_TOPIC_CONFIG",
            "-k",
            "AdminTopic",
            "-v",
            "broker-a:3",
        ],
    );
    ok(
        &ns,
        &[
            "deleteKvConfig",
            "-s",
            "ORDER_TOPIC_CONFIG",
            "-k",
            "AdminTopic",
        ],
    );

    // Settings: a hot key changes and outlives a restart; others are refused.
    let updated = ok(
        &ns,
        &[
            "updateBrokerConfig",
            "-k",
            "rejectTransactionMessage",
            "-v",
            "true",
            "-b",
            &broker,
        ],
    );
    assert!(
        updated.contains(&format!("update broker config success, {broker}")),
        "{updated}"
    );
    let conf = json(&ns, &["getBrokerConfig", "-b", &broker]);
    assert_eq!(
        conf["broker-a"]["rejectTransactionMessage"], "true",
        "{conf}"
    );
    let e = fails(
        &ns,
        &[
            "updateBrokerConfig",
            "-k",
            "listenPort",
            "-v",
            "1",
            "-c",
            "DefaultCluster",
        ],
    );
    assert!(
        e.contains("listenPort cannot change while the broker runs"),
        "{e}"
    );
    let e = fails(
        &ns,
        &[
            "updateBrokerConfig",
            "-k",
            "brokerConfigPath",
            "-v",
            "/x",
            "-b",
            &broker,
        ],
    );
    assert!(e.contains("answered 16") && e.contains("black list"), "{e}");
    let e = fails(
        &ns,
        &[
            "updateBrokerConfig",
            "-k",
            "transactionCheckMax",
            "-v",
            "lots",
            "-b",
            &broker,
        ],
    );
    assert!(e.contains("transactionCheckMax"), "{e}");
    let nsconf = json(&ns, &["getNamesrvConfig"]);
    assert_eq!(
        nsconf["listenPort"],
        server.namesrv.port().to_string(),
        "{nsconf}"
    );
    let e = fails(&ns, &["updateNamesrvConfig", "-k", "listenPort", "-v", "1"]);
    assert!(
        e.contains("cannot change while the name server runs"),
        "{e}"
    );

    let e = fails(&ns, &["consumerConnection", "-g", "NobodyHere"]);
    assert!(e.contains("no consumer of group NobodyHere"), "{e}");
    let e = fails(&ns, &["queryMsgById", "-i", "not-an-id"]);
    assert!(e.contains("not an offset message id"), "{e}");
    let e = fails(&ns, &["topicRoute", "-t", "NoSuchTopic"]);
    assert!(e.contains("answered 17"), "{e}");
    let e = fails("127.0.0.1:1", &["clusterList"]);
    assert!(e.contains("127.0.0.1:1"), "{e}");

    ok(
        &ns,
        &["deleteTopic", "-t", "AdminTopic", "-c", "DefaultCluster"],
    );
    assert!(!ok(&ns, &["topicList"]).lines().any(|l| l == "AdminTopic"));

    drop(server);
    let server = Server::start_dev(store.path(), &[]);
    let ns = server.namesrv.to_string();
    let conf = json(&ns, &["getBrokerConfig", "-b", &server.broker.to_string()]);
    assert_eq!(
        conf["broker-a"]["rejectTransactionMessage"], "true",
        "{conf}"
    );
}

#[test]
fn verbs_work_over_tls_with_signed_requests() {
    let store = common::store_dir("admin-secure");
    let certs = store.path().join("certs");
    common::make_certificates(Path::new(env!("CARGO_BIN_EXE_rocketcore")), &certs);
    let acl = store.path().join("plain_acl.yml");
    std::fs::write(
        &acl,
        "accounts:\n  - {accessKey: adminuser, secretKey: admin-secret, admin: true}\n  - {accessKey: plainuser, secretKey: plain-secret}\n",
    )
    .unwrap();
    let pem = |name: &str| certs.join(name).display().to_string();
    let server = Server::dev(&store.path().join("data"))
        .args([
            "--set".to_string(),
            format!("tls.server.certPath={}", pem("server.pem")),
            "--set".to_string(),
            format!("tls.server.keyPath={}", pem("server.key")),
            "--set".to_string(),
            "tlsMode=enforcing".to_string(),
            "--set".to_string(),
            "aclEnable=true".to_string(),
            "--set".to_string(),
            format!("aclFile={}", acl.display()),
            "--set".to_string(),
            r#"innerClientAuthenticationCredentials={"accessKey":"adminuser","secretKey":"admin-secret"}"#.to_string(),
        ])
        .start();
    let ns = server.namesrv.to_string();
    let ca = pem("ca.pem");
    let secure = |who: (&str, &str), args: &[&str]| {
        let mut all = vec![
            "--tls",
            "--tls-ca",
            &ca,
            "--access-key",
            who.0,
            "--secret-key",
            who.1,
        ];
        all.extend_from_slice(args);
        admin(&ns, &all)
    };
    let out = secure(
        ("adminuser", "admin-secret"),
        &["updateTopic", "-t", "Secure", "-c", "DefaultCluster"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = secure(("adminuser", "admin-secret"), &["clusterList"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("DefaultCluster"));

    // A signed non-admin account, a wrong secret, no TLS: refused with why.
    let out = secure(
        ("plainuser", "plain-secret"),
        &["updateTopic", "-t", "Other", "-c", "DefaultCluster"],
    );
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && e.contains("needs an admin account"),
        "{e}"
    );
    let out = secure(
        ("adminuser", "wrong-secret"),
        &["updateTopic", "-t", "Other", "-c", "DefaultCluster"],
    );
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && e.contains("signature mismatch"),
        "{e}"
    );
    let e = fails(&ns, &["clusterList"]);
    assert!(!e.is_empty());
}
