//! Delay-level, timer and transactional messages against the real binary,
//! through restarts: what is staged stays invisible until due or committed,
//! survives SIGTERM and SIGKILL, is delivered once afterwards, and bad
//! decisions are refused without changing anything.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{
    create_topic_request, pull_request, records, send_request, store_dir, Client, Server,
};
use rocketcore::remoting::codes::request_code::CHECK_TRANSACTION_STATE;
use rocketcore::remoting::codes::response_code as rs;
use rocketcore::remoting::RemotingCommand;

/// Level 2 is 3 s here: long enough to restart the broker before it is due.
const LEVELS: &str = "messageDelayLevel=1s 3s 10s";

fn props(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}\u{1}{v}\u{2}"))
        .collect()
}

/// Bodies visible in queue 0 of `topic` (pulled from offset 0).
fn visible(client: &mut Client, topic: &str) -> Vec<String> {
    let reply = client.call(pull_request("reader", topic, 0, 0)).unwrap();
    match reply.body.as_deref() {
        Some(body) if reply.code == rs::SUCCESS => records(body)
            .iter()
            .map(|r| String::from_utf8_lossy(r.body()).into_owned())
            .collect(),
        _ => Vec::new(),
    }
}

/// Waits (bounded) until `want` bodies are visible; returns what was seen.
fn await_visible(client: &mut Client, topic: &str, want: usize, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    loop {
        let seen = visible(client, topic);
        if seen.len() >= want || Instant::now() > deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn heartbeat_as_producer(client: &mut Client, group: &str) {
    let mut hb = RemotingCommand::new_request(34);
    let body = format!(
        r#"{{"clientID":"staged-test@1","producerDataSet":[{{"groupName":"{group}"}}],"consumerDataSet":[]}}"#
    );
    hb = hb.with_body(body.into_bytes());
    let reply = client.call(hb).unwrap();
    assert_eq!(reply.code, rs::SUCCESS, "heartbeat: {:?}", reply.remark);
}

fn end_transaction(check: &RemotingCommand, group: &str, decision: i32) -> RemotingCommand {
    let mut cmd = RemotingCommand::new_request(37);
    cmd.set_ext("producerGroup", group);
    for k in [
        "tranStateTableOffset",
        "commitLogOffset",
        "msgId",
        "transactionId",
    ] {
        cmd.set_ext(k, check.ext_str(k).unwrap());
    }
    cmd.set_ext("commitOrRollback", decision);
    cmd.set_ext("fromTransactionCheck", "true");
    cmd
}

fn half_request(topic: &str, body: &str, group: &str, uniq: &str) -> RemotingCommand {
    let mut cmd = send_request(
        topic,
        0,
        body.as_bytes(),
        &props(&[("TRAN_MSG", "true"), ("PGROUP", group), ("UNIQ_KEY", uniq)]),
    );
    cmd.set_ext("a", group);
    cmd.set_ext("f", 4); // PREPARED
    cmd
}

#[test]
fn staged_messages_survive_restarts_and_are_delivered_once() {
    let dir = store_dir("staged-restart");
    let args = [
        "--shards",
        "2",
        "--set",
        LEVELS,
        "--set",
        "transactionTimeOut=500",
        "--set",
        "transactionCheckInterval=300",
    ];
    let topic = "Staged";
    let mut server = Server::start_dev(dir.path(), &args);
    let mut c = Client::connect(server.broker);
    assert_eq!(
        c.call(create_topic_request(topic, 1)).unwrap().code,
        rs::SUCCESS
    );
    let sent_at = Instant::now();
    for (body, p) in [
        ("plain", props(&[])),
        ("delayed", props(&[("DELAY", "2")])),
        ("timer", props(&[("TIMER_DELAY_MS", "2500")])),
    ] {
        let reply = c.call(send_request(topic, 0, body.as_bytes(), &p)).unwrap();
        assert_eq!(reply.code, rs::SUCCESS, "{body}: {:?}", reply.remark);
        assert_eq!(reply.ext_str("queueId").unwrap(), "0");
    }
    let half = c
        .call(half_request(topic, "half", "pg", "UNIQ-HALF-1"))
        .unwrap();
    assert_eq!(half.code, rs::SUCCESS, "{:?}", half.remark);
    assert_eq!(half.ext_str("transactionId").unwrap(), "UNIQ-HALF-1");
    assert_eq!(visible(&mut c, topic), vec!["plain"]);

    // SIGTERM before anything is due; nothing may be lost or shown early.
    assert_eq!(server.terminate(), Some(0), "{}", server.describe());
    assert!(
        sent_at.elapsed() < Duration::from_millis(2500),
        "restart came too late to prove anything"
    );
    let mut server = Server::start_dev(dir.path(), &args);
    let mut c = Client::connect(server.broker);
    let mut producer = Client::connect(server.broker);
    heartbeat_as_producer(&mut producer, "pg");
    let check = producer
        .next_request(CHECK_TRANSACTION_STATE, Duration::from_secs(10))
        .expect("a transaction check for the half message after the restart");
    assert_eq!(check.ext_str("msgId").unwrap(), "UNIQ-HALF-1");
    assert_eq!(check.ext_str("transactionId").unwrap(), "UNIQ-HALF-1");
    let body = check.body.clone().expect("check body");
    let rec = &records(&body)[0];
    assert_eq!(
        rec.topic(),
        topic.as_bytes(),
        "the check shows the real topic"
    );
    assert_eq!(rec.body(), b"half");
    producer
        .send_oneway(end_transaction(&check, "pg", 8))
        .unwrap();

    let seen = await_visible(&mut c, topic, 4, Duration::from_secs(10));
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for b in &seen {
        *counts.entry(b.as_str()).or_default() += 1;
    }
    assert_eq!(
        counts,
        HashMap::from([("plain", 1), ("delayed", 1), ("timer", 1), ("half", 1)]),
        "{}",
        server.describe()
    );
    assert!(
        sent_at.elapsed() >= Duration::from_millis(2500),
        "delivered before due"
    );

    // A decision for a message already decided changes nothing.
    let mut again = end_transaction(&check, "pg", 12);
    again.set_ext("fromTransactionCheck", "false");
    let reply = c.call(again).unwrap();
    assert_eq!(reply.code, rs::SYSTEM_ERROR);
    assert!(
        reply.remark.as_deref().unwrap_or("").contains("already"),
        "{:?}",
        reply.remark
    );

    // SIGKILL: progress may be replayed at most, never lost; with nothing
    // pending and progress flushed, nothing comes back twice either.
    std::thread::sleep(Duration::from_millis(1500));
    server.kill9();
    let server = Server::start_dev(dir.path(), &args);
    let mut c = Client::connect(server.broker);
    let mut producer = Client::connect(server.broker);
    heartbeat_as_producer(&mut producer, "pg");
    assert!(
        producer
            .next_request(CHECK_TRANSACTION_STATE, Duration::from_secs(2))
            .is_none(),
        "a decided half message was checked again"
    );
    assert_eq!(visible(&mut c, topic).len(), 4, "{}", server.describe());
}

#[test]
fn transaction_decisions_are_validated_and_final() {
    let dir = store_dir("tx-decisions");
    let server = Server::start_dev(dir.path(), &["--set", "transactionCheckInterval=60000"]);
    let topic = "TxTopic";
    let mut c = Client::connect(server.broker);
    assert_eq!(
        c.call(create_topic_request(topic, 1)).unwrap().code,
        rs::SUCCESS
    );
    let mut halves = Vec::new();
    for (i, body) in ["commit-me", "roll-me-back", "stay"].iter().enumerate() {
        let r = c
            .call(half_request(topic, body, "txg", &format!("U{i}")))
            .unwrap();
        assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
        halves.push(r);
    }
    let end = |r: &RemotingCommand, uniq: &str, group: &str, decision: i32| {
        let mut cmd = RemotingCommand::new_request(37);
        cmd.set_ext("producerGroup", group);
        cmd.set_ext("tranStateTableOffset", r.ext_str("queueOffset").unwrap());
        let msg_id = r.ext_str("msgId").unwrap();
        let phys = i64::from_str_radix(&msg_id[16..], 16).unwrap();
        cmd.set_ext("commitLogOffset", phys);
        cmd.set_ext("commitOrRollback", decision);
        cmd.set_ext("msgId", uniq);
        cmd
    };
    // Wrong group, unknown decision value: refused, nothing changes.
    let r = c.call(end(&halves[0], "U0", "other", 8)).unwrap();
    assert_eq!(r.code, rs::SYSTEM_ERROR);
    assert!(r.remark.unwrap().contains("does not match"));
    let r = c.call(end(&halves[0], "U0", "txg", 5)).unwrap();
    assert_eq!(r.code, rs::SYSTEM_ERROR);
    // UNKNOWN: no answer, no change.
    c.send_oneway(end(&halves[2], "U2", "txg", 0)).unwrap();
    assert!(visible(&mut c, topic).is_empty());
    assert_eq!(
        c.call(end(&halves[0], "U0", "txg", 8)).unwrap().code,
        rs::SUCCESS
    );
    assert_eq!(
        c.call(end(&halves[1], "U1", "txg", 12)).unwrap().code,
        rs::SUCCESS
    );
    // Decided once: a second decision either way is refused.
    for decision in [8, 12] {
        let r = c.call(end(&halves[1], "U1", "txg", decision)).unwrap();
        assert_eq!(r.code, rs::SYSTEM_ERROR, "{:?}", r.remark);
    }
    // A half offset that was never staged.
    let mut bogus = end(&halves[0], "U0", "txg", 8);
    bogus.set_ext("tranStateTableOffset", 999);
    assert_eq!(c.call(bogus).unwrap().code, rs::SYSTEM_ERROR);
    let reply = c.call(pull_request("reader", topic, 0, 0)).unwrap();
    let body = reply.body.expect("the committed message");
    let recs = records(&body);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].body(), b"commit-me");
    assert_eq!(
        recs[0].sys_flag() & 0xC,
        0x8,
        "stored as a committed transaction message"
    );
    let commit_phys = {
        let msg_id = halves[0].ext_str("msgId").unwrap();
        i64::from_str_radix(&msg_id[16..], 16).unwrap()
    };
    assert_eq!(recs[0].prepared_transaction_offset(), commit_phys);
    let p = rocketcore_storage::properties::get(recs[0].properties(), "TRAN_MSG");
    assert!(p.is_none(), "TRAN_MSG is cleared on commit");
}

#[test]
fn undecided_half_messages_are_checked_at_most_the_configured_times() {
    let dir = store_dir("tx-check-max");
    let args = [
        "--set",
        "transactionTimeOut=0",
        "--set",
        "transactionCheckInterval=200",
        "--set",
        "transactionCheckMax=2",
    ];
    let mut server = Server::start_dev(dir.path(), &args);
    let mut producer = Client::connect(server.broker);
    heartbeat_as_producer(&mut producer, "silent");
    assert_eq!(
        producer
            .call(create_topic_request("Silent", 1))
            .unwrap()
            .code,
        rs::SUCCESS
    );
    let r = producer
        .call(half_request("Silent", "never", "silent", "S1"))
        .unwrap();
    assert_eq!(r.code, rs::SUCCESS);
    let mut checks = 0;
    while producer
        .next_request(CHECK_TRANSACTION_STATE, Duration::from_secs(2))
        .is_some()
    {
        checks += 1;
        assert!(checks <= 2, "checked more than transactionCheckMax times");
    }
    assert_eq!(checks, 2);
    // Given up for good: not checked again after a restart either.
    assert_eq!(server.terminate(), Some(0));
    let server = Server::start_dev(dir.path(), &args);
    let mut producer = Client::connect(server.broker);
    heartbeat_as_producer(&mut producer, "silent");
    assert!(producer
        .next_request(CHECK_TRANSACTION_STATE, Duration::from_secs(1))
        .is_none());
    assert!(visible(&mut producer, "Silent").is_empty());
}

#[test]
fn timers_refuse_what_is_too_far_and_deliver_the_past_at_once() {
    let dir = store_dir("timer-limits");
    let server = Server::start_dev(dir.path(), &["--set", "timerMaxDelaySec=60"]);
    let mut c = Client::connect(server.broker);
    assert_eq!(
        c.call(create_topic_request("Timers", 1)).unwrap().code,
        rs::SUCCESS
    );
    let r = c
        .call(send_request(
            "Timers",
            0,
            b"far",
            &props(&[("TIMER_DELAY_SEC", "61")]),
        ))
        .unwrap();
    assert_eq!(r.code, rs::MESSAGE_ILLEGAL);
    assert!(r.remark.unwrap().contains("timerMaxDelaySec"));
    let r = c
        .call(send_request(
            "Timers",
            0,
            b"bad",
            &props(&[("TIMER_DELIVER_MS", "soon")]),
        ))
        .unwrap();
    assert_eq!(r.code, rs::MESSAGE_ILLEGAL);
    let r = c
        .call(send_request(
            "Timers",
            0,
            b"past",
            &props(&[("TIMER_DELIVER_MS", "1000")]),
        ))
        .unwrap();
    assert_eq!(r.code, rs::SUCCESS);
    assert_eq!(visible(&mut c, "Timers"), vec!["past"]);
    // Batches cannot carry delays.
    let mut batch = Vec::new();
    let p = props(&[("DELAY", "1")]);
    let total = 20 + 2 + 1 + p.len();
    for v in [total as i32, 0, 0, 0] {
        batch.extend_from_slice(&v.to_be_bytes());
    }
    batch.extend_from_slice(&1i32.to_be_bytes());
    batch.push(b'x');
    batch.extend_from_slice(&(p.len() as i16).to_be_bytes());
    batch.extend_from_slice(p.as_bytes());
    let mut cmd = send_request("Timers", 0, &batch, "");
    cmd.code = 320;
    let r = c.call(cmd).unwrap();
    assert_eq!(r.code, rs::MESSAGE_ILLEGAL, "{:?}", r.remark);
}

#[test]
fn sql92_subscriptions_filter_pulls_and_bad_ones_are_refused() {
    let dir = store_dir("sql92");
    let server = Server::start_dev(dir.path(), &[]);
    let mut c = Client::connect(server.broker);
    assert_eq!(
        c.call(create_topic_request("Sql", 1)).unwrap().code,
        rs::SUCCESS
    );
    for i in 0..20 {
        let p = props(&[
            ("a", &i.to_string()),
            ("b", if i % 2 == 0 { "x" } else { "y" }),
        ]);
        let r = c
            .call(send_request("Sql", 0, format!("m{i}").as_bytes(), &p))
            .unwrap();
        assert_eq!(r.code, rs::SUCCESS);
    }
    let mut pull = pull_request("sqlg", "Sql", 0, 0);
    pull.set_ext("expressionType", "SQL92");
    pull.set_ext("subscription", "a >= 10 AND b = 'x'");
    let r = c.call(pull).unwrap();
    assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
    let body = r.body.unwrap();
    let got: Vec<_> = records(&body)
        .iter()
        .map(|v| String::from_utf8_lossy(v.body()).into_owned())
        .collect();
    assert_eq!(got, ["m10", "m12", "m14", "m16", "m18"]);

    let mut bad = pull_request("sqlg", "Sql", 0, 0);
    bad.set_ext("expressionType", "SQL92");
    bad.set_ext("subscription", "a >");
    let r = c.call(bad).unwrap();
    assert_eq!(r.code, rs::SUBSCRIPTION_PARSE_FAILED);

    let mut hb = RemotingCommand::new_request(34);
    hb = hb.with_body(
        br#"{"clientID":"sql@1","producerDataSet":[],"consumerDataSet":[{"groupName":"sqlg","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET","unitMode":false,"subscriptionDataSet":[{"topic":"Sql","subString":"a IN (1,","expressionType":"SQL92","tagsSet":[],"codeSet":[],"subVersion":1,"classFilterMode":false}]}]}"#.to_vec(),
    );
    let r = c.call(hb).unwrap();
    assert_eq!(r.code, rs::SUBSCRIPTION_PARSE_FAILED);
    assert!(r.remark.unwrap().contains("Sql"));

    let mut check = RemotingCommand::new_request(46);
    check = check.with_body(
        br#"{"group":"sqlg","subscriptionData":{"topic":"Sql","subString":"b = 'x' AND","expressionType":"SQL92"}}"#.to_vec(),
    );
    assert_eq!(c.call(check).unwrap().code, rs::SUBSCRIPTION_PARSE_FAILED);
    let mut check = RemotingCommand::new_request(46);
    check = check.with_body(
        br#"{"group":"sqlg","subscriptionData":{"topic":"Sql","subString":"b = 'x'","expressionType":"SQL92"}}"#.to_vec(),
    );
    assert_eq!(c.call(check).unwrap().code, rs::SUCCESS);
}

#[test]
fn group_switches_refuse_pulls_with_no_permission() {
    let dir = store_dir("group-switches");
    let server = Server::start_dev(dir.path(), &[]);
    let mut c = Client::connect(server.broker);
    assert_eq!(
        c.call(create_topic_request("Groups", 1)).unwrap().code,
        rs::SUCCESS
    );
    for (group, settings) in [
        ("no_broadcast", r#""consumeBroadcastEnable":false"#),
        ("disabled", r#""consumeEnable":false"#),
    ] {
        let body = format!(r#"{{"groupName":"{group}",{settings}}}"#);
        let r = c
            .call(RemotingCommand::new_request(200).with_body(body.into_bytes()))
            .unwrap();
        assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
        let hb = format!(
            r#"{{"clientID":"{group}@1","producerDataSet":[],"consumerDataSet":[{{"groupName":"{group}","consumeType":"CONSUME_PASSIVELY","messageModel":"BROADCASTING","consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET","unitMode":false,"subscriptionDataSet":[{{"topic":"Groups","subString":"*","expressionType":"TAG","tagsSet":[],"codeSet":[],"subVersion":1,"classFilterMode":false}}]}}]}}"#
        );
        let r = c
            .call(RemotingCommand::new_request(34).with_body(hb.into_bytes()))
            .unwrap();
        assert_eq!(r.code, rs::SUCCESS);
        let r = c.call(pull_request(group, "Groups", 0, 0)).unwrap();
        assert_eq!(r.code, rs::NO_PERMISSION, "{group}: {:?}", r.remark);
        assert!(r.remark.unwrap().contains(group));
    }
}
