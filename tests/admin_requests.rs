//! Admin and lookup requests against a two-shard broker: topic create, list
//! and delete; query by key and view by offsetMsgId (scattered over shards);
//! offsets by time; consumer offsets; runtime info.

mod common;

use common::*;
use rocketcore::protocol::{decode_json, KvTable, TopicConfigSerializeWrapper};
use rocketcore::remoting::codes::response_code as rs;
use rocketcore::remoting::RemotingCommand;

fn req(code: i32, ext: &[(&str, &str)]) -> RemotingCommand {
    let mut c = RemotingCommand::new_request(code);
    for (k, v) in ext {
        c.set_ext(*k, *v);
    }
    c
}

#[test]
fn topics_keys_ids_and_offsets_over_two_shards() {
    let dir = store_dir("admin");
    let server = Server::start_dev(&dir.path().join("store"), &["--shards", "2"]);
    let mut c = Client::connect(server.broker);
    let create = create_topic_request("AdminTopic", 4);
    assert_eq!(c.call(create).unwrap().code, rs::SUCCESS);
    let bad = req(
        17,
        &[
            ("topic", "bad topic"),
            ("readQueueNums", "4"),
            ("writeQueueNums", "4"),
            ("perm", "6"),
        ],
    );
    assert_eq!(c.call(bad).unwrap().code, rs::INVALID_PARAMETER);

    let r = c.call(req(21, &[])).unwrap();
    let all: TopicConfigSerializeWrapper = decode_json(r.body.as_deref().unwrap()).unwrap();
    assert_eq!(all.topic_config_table["AdminTopic"].write_queue_nums, 4);
    assert!(all.topic_config_table.contains_key("TBW102"));

    // One message per queue (both shards), each with its own key.
    let mut msg_ids = Vec::new();
    for q in 0..4 {
        let props = format!("KEYS\u{1}order-{q}\u{2}TAGS\u{1}T{q}\u{2}");
        let r = c
            .call(send_request(
                "AdminTopic",
                q,
                format!("body-{q}").as_bytes(),
                &props,
            ))
            .unwrap();
        assert_eq!(r.code, rs::SUCCESS);
        assert_eq!(r.ext_i32("queueId").unwrap(), q);
        msg_ids.push(r.ext_str("msgId").unwrap().to_string());
    }

    // Query by key finds the message whichever shard stored it.
    for q in 0..4 {
        let key = format!("order-{q}");
        let r = c
            .call(req(
                12,
                &[
                    ("topic", "AdminTopic"),
                    ("key", &key),
                    ("maxNum", "32"),
                    ("beginTimestamp", "0"),
                    ("endTimestamp", &i64::MAX.to_string()),
                ],
            ))
            .unwrap();
        assert_eq!(r.code, rs::SUCCESS, "{key}");
        let recs = records(r.body.as_deref().unwrap());
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].body(), format!("body-{q}").as_bytes());
    }
    let r = c
        .call(req(
            12,
            &[
                ("topic", "AdminTopic"),
                ("key", "nope"),
                ("maxNum", "32"),
                ("beginTimestamp", "0"),
                ("endTimestamp", &i64::MAX.to_string()),
            ],
        ))
        .unwrap();
    assert_eq!(r.code, rs::QUERY_NOT_FOUND);

    // View by offsetMsgId: the last 16 hex digits are the physical offset.
    for (q, id) in msg_ids.iter().enumerate() {
        assert_eq!(id.len(), 32);
        let phys = i64::from_str_radix(&id[16..], 16).unwrap();
        let r = c.call(req(33, &[("offset", &phys.to_string())])).unwrap();
        assert_eq!(r.code, rs::SUCCESS);
        assert_eq!(
            records(r.body.as_deref().unwrap())[0].body(),
            format!("body-{q}").as_bytes()
        );
    }

    // Offsets: max, min, by time, consumer offsets.
    let r = c
        .call(req(30, &[("topic", "AdminTopic"), ("queueId", "2")]))
        .unwrap();
    assert_eq!(r.ext_i64("offset").unwrap(), 1);
    let r = c
        .call(req(31, &[("topic", "AdminTopic"), ("queueId", "2")]))
        .unwrap();
    assert_eq!(r.ext_i64("offset").unwrap(), 0);
    let r = c
        .call(req(
            29,
            &[
                ("topic", "AdminTopic"),
                ("queueId", "2"),
                ("timestamp", "0"),
            ],
        ))
        .unwrap();
    assert_eq!(r.ext_i64("offset").unwrap(), 0);
    let r = c
        .call(req(
            29,
            &[
                ("topic", "AdminTopic"),
                ("queueId", "2"),
                ("timestamp", &i64::MAX.to_string()),
            ],
        ))
        .unwrap();
    assert_eq!(r.ext_i64("offset").unwrap(), 1);
    let r = c
        .call(req(
            14,
            &[
                ("consumerGroup", "admin-g"),
                ("topic", "AdminTopic"),
                ("queueId", "3"),
                ("setZeroIfNotFound", "false"),
            ],
        ))
        .unwrap();
    assert_eq!(r.code, rs::QUERY_NOT_FOUND);
    assert_eq!(
        c.call(req(
            15,
            &[
                ("consumerGroup", "admin-g"),
                ("topic", "AdminTopic"),
                ("queueId", "3"),
                ("commitOffset", "1")
            ]
        ))
        .unwrap()
        .code,
        rs::SUCCESS
    );
    let r = c
        .call(req(
            14,
            &[
                ("consumerGroup", "admin-g"),
                ("topic", "AdminTopic"),
                ("queueId", "3"),
            ],
        ))
        .unwrap();
    assert_eq!((r.code, r.ext_i64("offset").unwrap()), (rs::SUCCESS, 1));

    // Runtime info sums every shard.
    let r = c.call(req(28, &[])).unwrap();
    let kv: KvTable = decode_json(r.body.as_deref().unwrap()).unwrap();
    assert_eq!(kv.table["shards"], "2");
    let clients: u64 = kv.table["requestsFromClients"].parse().unwrap();
    let forwarded: u64 = kv.table["requestsForwardedToOtherShards"].parse().unwrap();
    assert!(clients >= 20, "client requests counted: {clients}");
    assert!(
        forwarded > 0,
        "two shards and four queues: some requests cross shards"
    );
    assert!(kv.table["msgPutTotalTodayNow"].parse::<u64>().unwrap() >= 4);

    // No consumers in the group: the Java answer.
    let r = c.call(req(38, &[("consumerGroup", "admin-g")])).unwrap();
    assert_eq!(r.code, rs::SYSTEM_ERROR);

    // Delete: gone from the config and from every shard's queues.
    assert_eq!(
        c.call(req(215, &[("topic", "AdminTopic")])).unwrap().code,
        rs::SUCCESS
    );
    let r = c.call(req(21, &[])).unwrap();
    let all: TopicConfigSerializeWrapper = decode_json(r.body.as_deref().unwrap()).unwrap();
    assert!(!all.topic_config_table.contains_key("AdminTopic"));
    let r = c.call(pull_request("admin-g", "AdminTopic", 0, 0)).unwrap();
    assert_eq!(r.code, rs::TOPIC_NOT_EXIST);
}

/// Sends that leave the queue to the broker (queueId -1) go round the
/// topic's queues; the clock's millisecond used to put a burst on one.
#[test]
fn sends_without_a_queue_go_round_the_queues() {
    let dir = store_dir("round-robin");
    let server = Server::start_dev(&dir.path().join("store"), &["--shards", "2"]);
    let mut c = Client::connect(server.broker);
    assert_eq!(
        c.call(create_topic_request("RoundTopic", 4)).unwrap().code,
        rs::SUCCESS
    );
    // A burst: all eight written at once, then the answers read.
    let mut burst = bytes::BytesMut::new();
    for i in 0..8 {
        let mut cmd = send_request("RoundTopic", -1, format!("m{i}").as_bytes(), "");
        cmd.opaque = 1_000 + i;
        cmd.encode(&mut burst).unwrap();
    }
    c.send_raw(&burst).unwrap();
    let mut per_queue = [0; 4];
    for r in c.read_responses(8).unwrap() {
        assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
        per_queue[r.ext_i64("queueId").unwrap() as usize] += 1;
    }
    assert_eq!(per_queue, [2, 2, 2, 2]);
}

/// Topic stats (202), consume stats (208) and reset offset (222) gather the
/// queues of both shards into Java's object-keyed bodies; a reset moves the
/// group's next pull and outranks the consumer's stale commits until then.
#[test]
fn stats_and_offset_reset_over_two_shards() {
    use rocketcore::protocol::object_keyed::decode_offset_table;
    let dir = store_dir("admin-stats");
    let server = Server::start_dev(&dir.path().join("store"), &["--shards", "2"]);
    let mut c = Client::connect(server.broker);
    assert_eq!(
        c.call(create_topic_request("StatsTopic", 4)).unwrap().code,
        rs::SUCCESS
    );
    for q in 0..4 {
        for i in 0..=q {
            let body = format!("m{q}-{i}");
            let r = c
                .call(send_request("StatsTopic", q, body.as_bytes(), ""))
                .unwrap();
            assert_eq!(r.code, rs::SUCCESS);
        }
    }
    let r = c.call(req(202, &[("topic", "StatsTopic")])).unwrap();
    assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
    let (rest, queues) = decode_offset_table(r.body.as_deref().unwrap()).unwrap();
    assert_eq!(rest["topicPutTps"], 0.0);
    let max: Vec<i64> = queues
        .iter()
        .map(|(_, v)| v["maxOffset"].as_i64().unwrap())
        .collect();
    assert_eq!(max, [1, 2, 3, 4]);
    assert!(queues
        .iter()
        .all(|(_, v)| v["lastUpdateTimestamp"].as_i64().unwrap() > 0));
    assert_eq!(
        c.call(req(202, &[("topic", "NoSuchTopic")])).unwrap().code,
        rs::TOPIC_NOT_EXIST
    );

    // The group committed 1 on every queue.
    for q in 0..4 {
        let qs = q.to_string();
        let commit = req(
            15,
            &[
                ("consumerGroup", "StatsGroup"),
                ("topic", "StatsTopic"),
                ("queueId", &qs),
                ("commitOffset", "1"),
            ],
        );
        assert_eq!(c.call(commit).unwrap().code, rs::SUCCESS);
    }
    let r = c
        .call(req(208, &[("consumerGroup", "StatsGroup")]))
        .unwrap();
    assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
    let (_, queues) = decode_offset_table(r.body.as_deref().unwrap()).unwrap();
    let lag: Vec<i64> = queues
        .iter()
        .map(|(_, v)| v["brokerOffset"].as_i64().unwrap() - v["consumerOffset"].as_i64().unwrap())
        .collect();
    assert_eq!(lag, [0, 1, 2, 3]);
    assert_eq!(
        c.call(req(208, &[("consumerGroup", "NoSuchGroup")]))
            .unwrap()
            .code,
        rs::CONSUMER_NOT_ONLINE
    );

    // Who consumes the topic (300), and its settings (351).
    let r = c.call(req(300, &[("topic", "StatsTopic")])).unwrap();
    assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
    let groups: serde_json::Value = serde_json::from_slice(r.body.as_deref().unwrap()).unwrap();
    assert_eq!(groups["groupList"], serde_json::json!(["StatsGroup"]));
    let r = c.call(req(351, &[("topic", "StatsTopic")])).unwrap();
    assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
    let cfg: serde_json::Value = serde_json::from_slice(r.body.as_deref().unwrap()).unwrap();
    assert_eq!(cfg["topicName"], "StatsTopic");
    assert_eq!(cfg["readQueueNums"], 4);
    assert_eq!(
        c.call(req(351, &[("topic", "NoSuchTopic")])).unwrap().code,
        rs::TOPIC_NOT_EXIST
    );

    // Back to the start of every queue.
    let reset = req(
        222,
        &[
            ("topic", "StatsTopic"),
            ("group", "StatsGroup"),
            ("timestamp", "0"),
            ("isForce", "true"),
            ("queueId", "-1"),
        ],
    );
    let r = c.call(reset).unwrap();
    assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
    let (_, queues) = decode_offset_table(r.body.as_deref().unwrap()).unwrap();
    assert_eq!(queues.len(), 4);
    assert!(queues.iter().all(|(_, v)| *v == 0), "{queues:?}");
    // A consumer still at 1 commits its old position: the reset stands.
    let commit = req(
        15,
        &[
            ("consumerGroup", "StatsGroup"),
            ("topic", "StatsTopic"),
            ("queueId", "3"),
            ("commitOffset", "1"),
        ],
    );
    assert_eq!(c.call(commit).unwrap().code, rs::SUCCESS);
    let query = || {
        req(
            14,
            &[
                ("consumerGroup", "StatsGroup"),
                ("topic", "StatsTopic"),
                ("queueId", "3"),
            ],
        )
    };
    assert_eq!(c.call(query()).unwrap().ext_i64("offset").unwrap(), 0);
    // Its next pull is told to move to 0; the one after reads from there.
    let r = c
        .call(pull_request("StatsGroup", "StatsTopic", 3, 1))
        .unwrap();
    assert_eq!(r.code, rs::PULL_OFFSET_MOVED, "{:?}", r.remark);
    assert_eq!(r.ext_i64("nextBeginOffset").unwrap(), 0);
    let r = c
        .call(pull_request("StatsGroup", "StatsTopic", 3, 0))
        .unwrap();
    assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
    // Commits count again once the reset was delivered.
    let commit = req(
        15,
        &[
            ("consumerGroup", "StatsGroup"),
            ("topic", "StatsTopic"),
            ("queueId", "3"),
            ("commitOffset", "2"),
        ],
    );
    assert_eq!(c.call(commit).unwrap().code, rs::SUCCESS);
    assert_eq!(c.call(query()).unwrap().ext_i64("offset").unwrap(), 2);
    // Without force a reset only moves back: to the end changes nothing.
    let forward = req(
        222,
        &[
            ("topic", "StatsTopic"),
            ("group", "StatsGroup"),
            ("timestamp", "-1"),
            ("isForce", "false"),
            ("queueId", "3"),
        ],
    );
    let r = c.call(forward).unwrap();
    let (_, queues) = decode_offset_table(r.body.as_deref().unwrap()).unwrap();
    assert_eq!(queues.len(), 1);
    assert_eq!(queues[0].1, 2);
}

/// GET_CONSUMER_RUNNING_INFO (307) is relayed to the consumer's own
/// connection, on whichever shard holds it, and its answer relayed back;
/// a client that is not online or does not answer is named in the reply.
#[test]
fn consumer_running_info_is_asked_of_the_client() {
    let dir = store_dir("admin-running-info");
    let server = Server::start_dev(&dir.path().join("store"), &["--shards", "2"]);
    let mut consumer = Client::connect(server.broker);
    let hb = RemotingCommand::new_request(34).with_body(
        br#"{"clientID":"run-test@1","producerDataSet":[],"consumerDataSet":[{"groupName":"RunGroup","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","subscriptionDataSet":[],"unitMode":false}]}"#.to_vec(),
    );
    assert_eq!(consumer.call(hb).unwrap().code, rs::SUCCESS);
    let ask = |client: &str| {
        req(
            307,
            &[
                ("consumerGroup", "RunGroup"),
                ("clientId", client),
                ("jstackEnable", "false"),
            ],
        )
    };
    let mut admin = Client::connect(server.broker);
    let r = admin.call(ask("nobody@1")).unwrap();
    assert_eq!(r.code, rs::SYSTEM_ERROR);
    assert!(
        r.remark.as_deref().unwrap_or("").contains("not online"),
        "{:?}",
        r.remark
    );

    let info = br#"{"properties":{"consumeType":"CONSUME_PASSIVELY"},"mqTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:{"commitOffset":3}}}"#;
    let broker = server.broker;
    let asker =
        std::thread::spawn(move || Client::connect(broker).call(ask("run-test@1")).unwrap());
    let asked = consumer
        .next_request(307, std::time::Duration::from_secs(10))
        .expect("the broker asks the consumer");
    assert_eq!(asked.ext_str("clientId").unwrap(), "run-test@1");
    let answer = RemotingCommand::new_response(rs::SUCCESS, None)
        .reply_to(&asked)
        .with_body(info.to_vec());
    let mut bytes = bytes::BytesMut::new();
    answer.encode(&mut bytes).unwrap();
    consumer.send_raw(&bytes).unwrap();
    let r = asker.join().unwrap();
    assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
    assert_eq!(r.body.as_deref(), Some(&info[..]));

    // Asked and not answered: the broker gives up and says so.
    let asker =
        std::thread::spawn(move || Client::connect(broker).call(ask("run-test@1")).unwrap());
    assert!(consumer
        .next_request(307, std::time::Duration::from_secs(10))
        .is_some());
    let r = asker.join().unwrap();
    assert_eq!(r.code, rs::CONSUME_MSG_TIMEOUT, "{:?}", r.remark);
}
