//! Request-level tests of the name server: each request code, expiry,
//! connection close, the route JSON shape, and a property test that random
//! requests never panic and never break the table invariants.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::protocol::perm::{PERM_INHERIT, PERM_READ, PERM_WRITE};
use crate::protocol::{
    decode_json, ClusterInfo, DataVersion, KvTable, RegisterBrokerBody, TopicConfig,
    TopicConfigSerializeWrapper, TopicList, TopicRouteData,
};
use crate::remoting::codes::{request_code, response_code};
use crate::remoting::{ExtFields, RemotingCommand};

const T0: i64 = 1_715_551_234_567;
const MASTER: &str = "192.168.1.10:10911";
const SLAVE: &str = "192.168.1.11:10911";
const CLUSTER: &str = "DefaultCluster";

fn request(code: i32, fields: &[(&str, &str)]) -> RemotingCommand {
    let mut req = RemotingCommand::new_request(code);
    req.opaque = 77;
    for (field, value) in fields {
        req.set_ext(*field, value);
    }
    req
}

fn topics(configs: &[TopicConfig], counter: i64) -> TopicConfigSerializeWrapper {
    TopicConfigSerializeWrapper {
        topic_config_table: configs
            .iter()
            .map(|config| (config.topic_name.clone(), config.clone()))
            .collect(),
        data_version: DataVersion {
            counter,
            state_version: 0,
            timestamp: T0,
        },
    }
}

fn register_request(
    name: &str,
    addr: &str,
    id: i64,
    wrapper: TopicConfigSerializeWrapper,
) -> RemotingCommand {
    let body = serde_json::to_vec(&RegisterBrokerBody {
        filter_server_list: vec![],
        topic_config_serialize_wrapper: wrapper,
    })
    .expect("encodes");
    let crc = (crc32fast::hash(&body) & 0x7FFF_FFFF).to_string();
    let id = id.to_string();
    let ha = format!("{addr}-ha");
    request(
        request_code::REGISTER_BROKER,
        &[
            ("brokerName", name),
            ("brokerAddr", addr),
            ("clusterName", CLUSTER),
            ("haServerAddr", &ha),
            ("brokerId", &id),
            ("compressed", "false"),
            ("bodyCrc32", &crc),
        ],
    )
    .with_body(body)
}

fn call(state: &mut NamesrvState, conn: u64, req: &RemotingCommand, now: i64) -> RemotingCommand {
    let response = process(state, conn, req, now).expect("two-way requests get an answer");
    assert!(response.is_response());
    assert_eq!(response.opaque, req.opaque);
    response
}

fn ok(state: &mut NamesrvState, conn: u64, req: &RemotingCommand, now: i64) -> RemotingCommand {
    let response = call(state, conn, req, now);
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
    state.check_invariants().expect("invariants");
    response
}

fn test_topic() -> TopicConfig {
    TopicConfig::new("TopicTest", 4)
}

fn tbw102() -> TopicConfig {
    let mut config = TopicConfig::new("TBW102", 8);
    config.perm = PERM_READ | PERM_WRITE | PERM_INHERIT;
    config
}

/// broker-a: master at MASTER (conn 1), slave at SLAVE (conn 2), hosting
/// TopicTest and TBW102.
fn two_broker_state() -> NamesrvState {
    let mut state = NamesrvState::new();
    let table = topics(&[test_topic(), tbw102()], 1);
    ok(
        &mut state,
        1,
        &register_request("broker-a", MASTER, 0, table.clone()),
        T0,
    );
    ok(
        &mut state,
        2,
        &register_request("broker-a", SLAVE, 1, table),
        T0,
    );
    state
}

fn route(state: &mut NamesrvState, topic: &str, now: i64) -> RemotingCommand {
    call(
        state,
        9,
        &request(request_code::GET_ROUTEINFO_BY_TOPIC, &[("topic", topic)]),
        now,
    )
}

fn body_text(response: &RemotingCommand) -> &str {
    std::str::from_utf8(response.body.as_deref().expect("has a body")).expect("utf8")
}

#[test]
fn route_is_the_spec_example_byte_for_byte() {
    let mut state = two_broker_state();
    let response = route(&mut state, "TopicTest", T0 + 1);
    assert_eq!(response.code, response_code::SUCCESS);
    assert_eq!(
        body_text(&response),
        r#"{"brokerDatas":[{"brokerAddrs":{"0":"192.168.1.10:10911","1":"192.168.1.11:10911"},"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#
    );
    let tbw: TopicRouteData = decode_json(
        route(&mut state, "TBW102", T0)
            .body
            .as_deref()
            .expect("body"),
    )
    .expect("route");
    assert_eq!(tbw.queue_datas[0].perm, 7);
}

#[test]
fn unknown_topic_is_topic_not_exist_without_body() {
    let mut state = two_broker_state();
    let response = route(&mut state, "Nope", T0);
    assert_eq!(response.code, response_code::TOPIC_NOT_EXIST);
    assert_eq!(
        response.remark.as_deref(),
        Some("No topic route info in name server for the topic: Nope")
    );
    assert!(response.body.is_none());
    let missing = call(
        &mut state,
        9,
        &request(request_code::GET_ROUTEINFO_BY_TOPIC, &[]),
        T0,
    );
    assert_eq!(missing.code, response_code::SYSTEM_ERROR);
    assert_eq!(
        missing.remark.as_deref(),
        Some("header field `topic` is missing")
    );
}

#[test]
fn slaves_learn_their_master_and_masters_get_an_empty_header() {
    let mut state = NamesrvState::new();
    let table = topics(&[test_topic(), tbw102()], 1);
    // A slave registering before its master gets no master address.
    let early = ok(
        &mut state,
        2,
        &register_request("broker-a", SLAVE, 1, table.clone()),
        T0,
    );
    assert_eq!(early.ext_fields, Some(ExtFields::new()));
    let master = ok(
        &mut state,
        1,
        &register_request("broker-a", MASTER, 0, table.clone()),
        T0,
    );
    assert_eq!(master.ext_fields, Some(ExtFields::new()));
    assert!(master.body.is_none());
    let slave = ok(
        &mut state,
        2,
        &register_request("broker-a", SLAVE, 1, table),
        T0,
    );
    assert_eq!(slave.ext_str_opt("masterAddr"), Some(MASTER));
    assert_eq!(
        slave.ext_str_opt("haServerAddr"),
        Some("192.168.1.10:10911-ha")
    );
}

#[test]
fn slave_topics_are_ignored_unless_it_is_a_5x_prime_slave() {
    let mut state = NamesrvState::new();
    let table = topics(&[test_topic(), tbw102()], 1);
    // Pre-5.x slave (no enableActingMaster): ignored.
    ok(
        &mut state,
        2,
        &register_request("broker-a", SLAVE, 1, table.clone()),
        T0,
    );
    assert!(state.queue_data("TopicTest", "broker-a").is_none());
    assert_eq!(
        route(&mut state, "TopicTest", T0).code,
        response_code::TOPIC_NOT_EXIST
    );

    // 5.x acting-master prime slave: published read-only.
    let mut req = register_request("broker-a", SLAVE, 1, table.clone());
    req.set_ext("enableActingMaster", "true");
    ok(&mut state, 2, &req, T0);
    assert_eq!(
        state.queue_data("TopicTest", "broker-a").map(|q| q.perm),
        Some(PERM_READ)
    );

    // The master comes back and publishes its own perm.
    let mut changed = table;
    changed.data_version.counter = 2;
    ok(
        &mut state,
        1,
        &register_request("broker-a", MASTER, 0, changed),
        T0,
    );
    assert_eq!(
        state.queue_data("TopicTest", "broker-a").map(|q| q.perm),
        Some(6)
    );
}

#[test]
fn body_crc_is_checked_unless_zero() {
    let mut state = NamesrvState::new();
    let mut req = register_request("broker-a", MASTER, 0, topics(&[test_topic(), tbw102()], 1));
    req.set_ext("bodyCrc32", "12345");
    let response = call(&mut state, 1, &req, T0);
    assert_eq!(response.code, response_code::SYSTEM_ERROR);
    assert_eq!(response.remark.as_deref(), Some("crc32 not match"));
    req.set_ext("bodyCrc32", "0");
    ok(&mut state, 1, &req, T0);
}

#[test]
fn first_registration_with_exactly_one_topic_is_refused_like_java() {
    let mut state = NamesrvState::new();
    let single = register_request("broker-a", MASTER, 0, topics(&[tbw102()], 1));
    let response = call(&mut state, 1, &single, T0);
    assert_eq!(response.code, response_code::SYSTEM_ERROR);
    assert!(response
        .remark
        .as_deref()
        .is_some_and(|remark| remark.starts_with("register broker failed")));
    // Nothing was left behind.
    assert_eq!(state.cluster_info(), ClusterInfo::default());

    // Once known, a single-topic (incremental) registration is fine.
    ok(
        &mut state,
        1,
        &register_request("broker-a", MASTER, 0, topics(&[tbw102(), test_topic()], 1)),
        T0,
    );
    let mut increment = topics(&[TopicConfig::new("NewTopic", 2)], 2);
    increment.data_version.counter = 2;
    ok(
        &mut state,
        1,
        &register_request("broker-a", MASTER, 0, increment),
        T0,
    );
    assert!(state.queue_data("NewTopic", "broker-a").is_some());
    assert!(state.queue_data("TopicTest", "broker-a").is_some());

    // The switch turns the rule off.
    let mut lenient = NamesrvState::with_config(NamesrvConfig {
        refuse_unknown_single_topic_registration: false,
        ..NamesrvConfig::default()
    });
    ok(&mut lenient, 1, &single, T0);
    assert_eq!(
        route(&mut lenient, "TBW102", T0).code,
        response_code::SUCCESS
    );
}

#[test]
fn unchanged_versions_keep_name_server_side_changes() {
    let mut state = two_broker_state();
    let wipe = request(
        request_code::WIPE_WRITE_PERM_OF_BROKER,
        &[("brokerName", "broker-a")],
    );
    let response = ok(&mut state, 9, &wipe, T0);
    assert_eq!(response.ext_str_opt("wipeTopicCount"), Some("2"));
    assert_eq!(
        state.queue_data("TopicTest", "broker-a").map(|q| q.perm),
        Some(4)
    );
    assert_eq!(
        state.queue_data("TBW102", "broker-a").map(|q| q.perm),
        Some(5)
    );

    // Same data version: the wipe stays.
    let same = topics(&[test_topic(), tbw102()], 1);
    ok(
        &mut state,
        1,
        &register_request("broker-a", MASTER, 0, same.clone()),
        T0 + 1,
    );
    assert_eq!(
        state.queue_data("TopicTest", "broker-a").map(|q| q.perm),
        Some(4)
    );

    let add = request(
        request_code::ADD_WRITE_PERM_OF_BROKER,
        &[("brokerName", "broker-a")],
    );
    let response = ok(&mut state, 9, &add, T0);
    assert_eq!(response.ext_str_opt("addTopicCount"), Some("2"));
    // "add" sets read+write exactly, dropping TBW102's inherit bit, as Java.
    assert_eq!(
        state.queue_data("TBW102", "broker-a").map(|q| q.perm),
        Some(6)
    );

    // A new version overwrites.
    let mut newer = same;
    newer.data_version.counter = 2;
    ok(
        &mut state,
        1,
        &register_request("broker-a", MASTER, 0, newer),
        T0 + 2,
    );
    assert_eq!(
        state.queue_data("TBW102", "broker-a").map(|q| q.perm),
        Some(7)
    );

    let unknown = request(
        request_code::WIPE_WRITE_PERM_OF_BROKER,
        &[("brokerName", "nobody")],
    );
    assert_eq!(
        ok(&mut state, 9, &unknown, T0).ext_str_opt("wipeTopicCount"),
        Some("0")
    );
}

#[test]
fn unregister_removes_addresses_then_the_broker_and_its_topics() {
    let mut state = two_broker_state();
    let unregister = |addr: &str, id: &str| {
        request(
            request_code::UNREGISTER_BROKER,
            &[
                ("brokerName", "broker-a"),
                ("brokerAddr", addr),
                ("clusterName", CLUSTER),
                ("brokerId", id),
            ],
        )
    };
    ok(&mut state, 2, &unregister(SLAVE, "1"), T0);
    let route_data: TopicRouteData = decode_json(
        route(&mut state, "TopicTest", T0)
            .body
            .as_deref()
            .expect("body"),
    )
    .expect("route");
    assert_eq!(
        route_data.broker_datas[0].broker_addrs,
        BTreeMap::from([(0, MASTER.to_owned())])
    );
    ok(&mut state, 1, &unregister(MASTER, "0"), T0);
    assert_eq!(
        route(&mut state, "TopicTest", T0).code,
        response_code::TOPIC_NOT_EXIST
    );
    assert_eq!(state.cluster_info(), ClusterInfo::default());
    let missing = call(
        &mut state,
        1,
        &request(
            request_code::UNREGISTER_BROKER,
            &[("brokerName", "broker-a")],
        ),
        T0,
    );
    assert_eq!(missing.code, response_code::SYSTEM_ERROR);
}

#[test]
fn silent_brokers_leave_routes_at_once_and_tables_at_the_next_scan() {
    let mut state = two_broker_state();
    // The slave keeps registering; the master goes silent after T0.
    let table = topics(&[test_topic(), tbw102()], 1);
    ok(
        &mut state,
        2,
        &register_request("broker-a", SLAVE, 1, table),
        T0 + 60_000,
    );

    assert!(scan_inactive(&mut state, T0 + BROKER_EXPIRE_MS).is_empty());
    assert!(state.is_broker_live(MASTER, T0 + BROKER_EXPIRE_MS));
    let late = T0 + BROKER_EXPIRE_MS + 1;
    assert!(!state.is_broker_live(MASTER, late));
    let route_data: TopicRouteData = decode_json(
        route(&mut state, "TopicTest", late)
            .body
            .as_deref()
            .expect("body"),
    )
    .expect("route");
    assert_eq!(
        route_data.broker_datas[0].broker_addrs,
        BTreeMap::from([(1, SLAVE.to_owned())])
    );

    assert_eq!(scan_inactive(&mut state, late), vec![MASTER.to_owned()]);
    state.check_invariants().expect("invariants");
    // The slave alone keeps the broker name and its queue data.
    assert!(state.queue_data("TopicTest", "broker-a").is_some());

    let later = T0 + 60_000 + BROKER_EXPIRE_MS + 1;
    assert_eq!(
        route(&mut state, "TopicTest", later).code,
        response_code::TOPIC_NOT_EXIST
    );
    assert_eq!(scan_inactive(&mut state, later), vec![SLAVE.to_owned()]);
    assert_eq!(state.cluster_info(), ClusterInfo::default());
    assert!(state.queue_data("TopicTest", "broker-a").is_none());
    state.check_invariants().expect("invariants");
}

#[test]
fn heartbeat_timeout_header_overrides_the_default_and_cannot_overflow() {
    let mut state = NamesrvState::new();
    let mut req = register_request("broker-a", MASTER, 0, topics(&[test_topic(), tbw102()], 1));
    req.set_ext("heartbeatTimeoutMillis", "10000");
    ok(&mut state, 1, &req, T0);
    assert_eq!(state.live(MASTER).map(|live| live.timeout_ms), Some(10_000));
    assert!(scan_inactive(&mut state, T0 + 10_000).is_empty());
    assert_eq!(scan_inactive(&mut state, T0 + 10_001).len(), 1);

    req.set_ext("heartbeatTimeoutMillis", i64::MAX.to_string());
    ok(&mut state, 1, &req, T0);
    assert!(scan_inactive(&mut state, i64::MAX).is_empty());
    req.set_ext("heartbeatTimeoutMillis", "-5");
    ok(&mut state, 1, &req, T0);
    assert_eq!(
        state.live(MASTER).map(|live| live.timeout_ms),
        Some(BROKER_EXPIRE_MS)
    );
}

#[test]
fn closing_a_connection_drops_only_brokers_registered_over_it() {
    let mut state = two_broker_state();
    assert!(on_connection_closed(&mut state, 42).is_empty());
    assert_eq!(on_connection_closed(&mut state, 2), vec![SLAVE.to_owned()]);
    assert!(!state.is_broker_live(SLAVE, T0));
    assert!(state.is_broker_live(MASTER, T0));

    // The master re-registers over a new connection; the old one closing
    // later must not remove it.
    let table = topics(&[test_topic(), tbw102()], 1);
    ok(
        &mut state,
        3,
        &register_request("broker-a", MASTER, 0, table),
        T0,
    );
    assert!(on_connection_closed(&mut state, 1).is_empty());
    assert!(state.is_broker_live(MASTER, T0));
    assert_eq!(on_connection_closed(&mut state, 3), vec![MASTER.to_owned()]);
    assert_eq!(state.cluster_info(), ClusterInfo::default());
    assert_eq!(
        route(&mut state, "TopicTest", T0).code,
        response_code::TOPIC_NOT_EXIST
    );
}

#[test]
fn cluster_info_is_the_spec_example_byte_for_byte() {
    let mut state = NamesrvState::new();
    ok(
        &mut state,
        1,
        &register_request("broker-a", MASTER, 0, topics(&[test_topic(), tbw102()], 1)),
        T0,
    );
    let response = ok(
        &mut state,
        9,
        &request(request_code::GET_BROKER_CLUSTER_INFO, &[]),
        T0,
    );
    assert_eq!(
        body_text(&response),
        r#"{"brokerAddrTable":{"broker-a":{"brokerAddrs":{"0":"192.168.1.10:10911"},"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}},"clusterAddrTable":{"DefaultCluster":["broker-a"]}}"#
    );
}

#[test]
fn topic_lists() {
    let mut state = two_broker_state();
    let mut other = register_request(
        "broker-b",
        "10.0.0.3:10911",
        0,
        topics(&[TopicConfig::new("Other", 1), tbw102()], 1),
    );
    other.set_ext("clusterName", "OtherCluster");
    ok(&mut state, 5, &other, T0);

    let all = ok(
        &mut state,
        9,
        &request(request_code::GET_ALL_TOPIC_LIST_FROM_NAMESERVER, &[]),
        T0,
    );
    assert_eq!(
        body_text(&all),
        r#"{"topicList":["Other","TBW102","TopicTest"]}"#
    );

    let by_cluster = ok(
        &mut state,
        9,
        &request(
            request_code::GET_TOPICS_BY_CLUSTER,
            &[("cluster", "OtherCluster")],
        ),
        T0,
    );
    assert_eq!(
        body_text(&by_cluster),
        r#"{"topicList":["Other","TBW102"]}"#
    );
    let unknown = ok(
        &mut state,
        9,
        &request(request_code::GET_TOPICS_BY_CLUSTER, &[("cluster", "Nope")]),
        T0,
    );
    assert_eq!(body_text(&unknown), r#"{"topicList":[]}"#);
    let missing = call(
        &mut state,
        9,
        &request(request_code::GET_TOPICS_BY_CLUSTER, &[]),
        T0,
    );
    assert_eq!(missing.code, response_code::SYSTEM_ERROR);

    let system = ok(
        &mut state,
        9,
        &request(request_code::GET_SYSTEM_TOPIC_LIST_FROM_NS, &[]),
        T0,
    );
    let system: TopicList = decode_json(system.body.as_deref().expect("body")).expect("list");
    assert_eq!(
        system.topic_list,
        ["DefaultCluster", "OtherCluster", "broker-a", "broker-b"]
    );
    assert_eq!(system.broker_addr.as_deref(), Some(MASTER));

    let mut closed = NamesrvState::with_config(NamesrvConfig {
        enable_all_topic_list: false,
        enable_topic_list: false,
        ..NamesrvConfig::default()
    });
    for code in [
        request_code::GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
        request_code::GET_TOPICS_BY_CLUSTER,
    ] {
        let response = call(&mut closed, 9, &request(code, &[("cluster", "c")]), T0);
        assert_eq!(response.code, response_code::SYSTEM_ERROR);
        assert_eq!(response.remark.as_deref(), Some("disable"));
    }
}

#[test]
fn delete_topic_whole_or_per_cluster() {
    let mut state = two_broker_state();
    let mut other = register_request(
        "broker-b",
        "10.0.0.3:10911",
        0,
        topics(&[test_topic(), tbw102()], 1),
    );
    other.set_ext("clusterName", "OtherCluster");
    ok(&mut state, 5, &other, T0);

    let per_cluster = request(
        request_code::DELETE_TOPIC_IN_NAMESRV,
        &[("topic", "TopicTest"), ("clusterName", "OtherCluster")],
    );
    ok(&mut state, 9, &per_cluster, T0);
    assert!(state.queue_data("TopicTest", "broker-b").is_none());
    assert!(state.queue_data("TopicTest", "broker-a").is_some());

    ok(
        &mut state,
        9,
        &request(
            request_code::DELETE_TOPIC_IN_NAMESRV,
            &[("topic", "TBW102")],
        ),
        T0,
    );
    assert_eq!(
        route(&mut state, "TBW102", T0).code,
        response_code::TOPIC_NOT_EXIST
    );
    let missing = call(
        &mut state,
        9,
        &request(request_code::DELETE_TOPIC_IN_NAMESRV, &[]),
        T0,
    );
    assert_eq!(missing.code, response_code::SYSTEM_ERROR);
}

#[test]
fn kv_config_requests() {
    let mut state = NamesrvState::new();
    let get = request(
        request_code::GET_KV_CONFIG,
        &[("namespace", "ns"), ("key", "k")],
    );
    let missing = call(&mut state, 9, &get, T0);
    assert_eq!(missing.code, response_code::QUERY_NOT_FOUND);
    assert_eq!(
        missing.remark.as_deref(),
        Some("No config item, Namespace: ns Key: k")
    );
    let list = request(
        request_code::GET_KVLIST_BY_NAMESPACE,
        &[("namespace", "ns")],
    );
    let missing = call(&mut state, 9, &list, T0);
    assert_eq!(missing.code, response_code::QUERY_NOT_FOUND);
    assert_eq!(
        missing.remark.as_deref(),
        Some("No config item, Namespace: ns")
    );

    let put = request(
        request_code::PUT_KV_CONFIG,
        &[("namespace", "ns"), ("key", "k"), ("value", "v")],
    );
    ok(&mut state, 9, &put, T0);
    assert_eq!(ok(&mut state, 9, &get, T0).ext_str_opt("value"), Some("v"));
    let listed = ok(&mut state, 9, &list, T0);
    assert_eq!(body_text(&listed), r#"{"table":{"k":"v"}}"#);

    ok(
        &mut state,
        9,
        &request(
            request_code::DELETE_KV_CONFIG,
            &[("namespace", "ns"), ("key", "k")],
        ),
        T0,
    );
    assert_eq!(
        call(&mut state, 9, &get, T0).code,
        response_code::QUERY_NOT_FOUND
    );
    assert_eq!(body_text(&ok(&mut state, 9, &list, T0)), r#"{"table":{}}"#);

    let no_value = request(
        request_code::PUT_KV_CONFIG,
        &[("namespace", "ns"), ("key", "k")],
    );
    let response = call(&mut state, 9, &no_value, T0);
    assert_eq!(response.code, response_code::SYSTEM_ERROR);
    assert_eq!(
        response.remark.as_deref(),
        Some("header field `value` is missing")
    );
    let empty_value = request(
        request_code::PUT_KV_CONFIG,
        &[("namespace", "ns"), ("key", "k"), ("value", "")],
    );
    ok(&mut state, 9, &empty_value, T0);
    assert_eq!(state.kv_config("ns", "k"), Some(""));
}

#[test]
fn order_topic_config_reaches_routes_and_brokers() {
    let mut state = NamesrvState::with_config(NamesrvConfig {
        order_message_enable: true,
        ..NamesrvConfig::default()
    });
    let put = request(
        request_code::PUT_KV_CONFIG,
        &[
            ("namespace", NAMESPACE_ORDER_TOPIC_CONFIG),
            ("key", "TopicTest"),
            ("value", "broker-a:4"),
        ],
    );
    ok(&mut state, 9, &put, T0);
    let registered = ok(
        &mut state,
        1,
        &register_request("broker-a", MASTER, 0, topics(&[test_topic(), tbw102()], 1)),
        T0,
    );
    let table: KvTable = decode_json(registered.body.as_deref().expect("body")).expect("kv table");
    assert_eq!(table.table["TopicTest"], "broker-a:4");

    let route_data: TopicRouteData = decode_json(
        route(&mut state, "TopicTest", T0)
            .body
            .as_deref()
            .expect("body"),
    )
    .expect("route");
    assert_eq!(route_data.order_topic_conf.as_deref(), Some("broker-a:4"));
    let tbw: TopicRouteData = decode_json(
        route(&mut state, "TBW102", T0)
            .body
            .as_deref()
            .expect("body"),
    )
    .expect("route");
    assert_eq!(tbw.order_topic_conf, None);

    // Off by default, as in Java.
    let mut plain = NamesrvState::new();
    ok(&mut plain, 9, &put, T0);
    ok(
        &mut plain,
        1,
        &register_request("broker-a", MASTER, 0, topics(&[test_topic(), tbw102()], 1)),
        T0,
    );
    assert!(!body_text(&route(&mut plain, "TopicTest", T0)).contains("orderTopicConf"));
}

#[test]
fn query_data_version() {
    let mut state = two_broker_state();
    let query = |version: &DataVersion| {
        request(
            request_code::QUERY_DATA_VERSION,
            &[
                ("brokerName", "broker-a"),
                ("brokerAddr", MASTER),
                ("clusterName", CLUSTER),
                ("brokerId", "0"),
            ],
        )
        .with_body(serde_json::to_vec(version).expect("encodes"))
    };
    let same = DataVersion {
        counter: 1,
        state_version: 0,
        timestamp: T0,
    };
    let response = ok(&mut state, 1, &query(&same), T0 + 100_000);
    assert_eq!(response.ext_str_opt("changed"), Some("false"));
    assert_eq!(
        body_text(&response),
        r#"{"counter":1,"stateVersion":0,"timestamp":1715551234567}"#
    );
    // The query counted as a sign of life.
    assert!(state.is_broker_live(MASTER, T0 + 100_000 + BROKER_EXPIRE_MS));

    let newer = DataVersion { counter: 2, ..same };
    assert_eq!(
        ok(&mut state, 1, &query(&newer), T0).ext_str_opt("changed"),
        Some("true")
    );

    let mut no_body = query(&same);
    no_body.body = None;
    assert_eq!(
        ok(&mut state, 1, &no_body, T0).ext_str_opt("changed"),
        Some("true")
    );
    let bad_body = query(&same).with_body(&b"{\"counter\":"[..]);
    assert_eq!(
        call(&mut state, 1, &bad_body, T0).code,
        response_code::SYSTEM_ERROR
    );

    let mut unknown = query(&same);
    unknown.set_ext("brokerAddr", "10.9.9.9:1");
    let response = ok(&mut state, 1, &unknown, T0);
    assert_eq!(response.ext_str_opt("changed"), Some("true"));
    assert!(response.body.is_none());
}

#[test]
fn unsupported_oneway_and_stray_responses() {
    let mut state = NamesrvState::new();
    for code in [
        request_code::REGISTER_TOPIC_IN_NAMESRV,
        request_code::HEART_BEAT,
        9999,
        -1,
    ] {
        let response = call(&mut state, 9, &request(code, &[]), T0);
        assert_eq!(response.code, response_code::REQUEST_CODE_NOT_SUPPORTED);
        assert_eq!(
            response.remark,
            Some(format!(" request type {code} not supported"))
        );
    }

    // Oneway: applied, not answered.
    let mut put = request(
        request_code::PUT_KV_CONFIG,
        &[("namespace", "ns"), ("key", "k"), ("value", "v")],
    );
    put.mark_oneway();
    assert!(process(&mut state, 9, &put, T0).is_none());
    assert_eq!(state.kv_config("ns", "k"), Some("v"));
    let mut bad = request(9999, &[]);
    bad.mark_oneway();
    assert!(process(&mut state, 9, &bad, T0).is_none());

    let mut response = request(
        request_code::PUT_KV_CONFIG,
        &[("namespace", "x"), ("key", "y"), ("value", "z")],
    );
    response.mark_response();
    assert!(process(&mut state, 9, &response, T0).is_none());
    assert_eq!(state.kv_config("x", "y"), None);
}

#[test]
fn bad_register_requests_get_clear_errors() {
    let mut state = NamesrvState::new();
    let good = register_request("broker-a", MASTER, 0, topics(&[test_topic(), tbw102()], 1));
    let expect_error = |state: &mut NamesrvState, req: &RemotingCommand, remark: &str| {
        let response = call(state, 1, req, T0);
        assert_eq!(response.code, response_code::SYSTEM_ERROR);
        let actual = response.remark.unwrap_or_default();
        assert!(actual.contains(remark), "{actual:?} lacks {remark:?}");
        assert_eq!(state.cluster_info(), ClusterInfo::default());
    };
    for field in ["brokerName", "brokerAddr", "clusterName", "brokerId"] {
        let mut req = good.clone();
        req.ext_fields_mut().remove(field);
        expect_error(&mut state, &req, field);
    }
    let mut req = good.clone();
    req.set_ext("brokerId", "zero");
    expect_error(&mut state, &req, "brokerId");
    req = good.clone();
    req.set_ext("bodyCrc32", "x");
    expect_error(&mut state, &req, "bodyCrc32");
    req = good.clone();
    req.set_ext("brokerAddr", "1.2.3.4:5,6.7.8.9:10");
    expect_error(&mut state, &req, "brokerAddr");
    req = good.clone();
    req.set_ext("compressed", "true");
    expect_error(&mut state, &req, "compressed");
    req = good
        .clone()
        .with_body(&b"{\"topicConfigSerializeWrapper\":["[..]);
    req.set_ext("bodyCrc32", "0");
    expect_error(&mut state, &req, "RegisterBrokerBody");

    // A missing haServerAddr is tolerated.
    req = good.clone();
    req.ext_fields_mut().remove("haServerAddr");
    ok(&mut state, 1, &req, T0);
}

#[test]
fn registration_without_body_and_from_old_brokers() {
    let mut state = NamesrvState::new();
    let mut bare = register_request("broker-a", MASTER, 0, topics(&[], 0));
    bare.body = None;
    bare.set_ext("bodyCrc32", "0");
    ok(&mut state, 1, &bare, T0);
    assert_eq!(
        state.live(MASTER).map(|live| live.data_version),
        Some(DataVersion::default())
    );

    // Brokers older than V3_0_11 send the bare topic wrapper.
    let wrapper = topics(&[test_topic(), tbw102()], 3);
    let mut old = register_request("broker-b", SLAVE, 0, wrapper.clone());
    old.version = 36;
    old.body = Some(serde_json::to_vec(&wrapper).expect("encodes").into());
    old.set_ext("bodyCrc32", "0");
    ok(&mut state, 2, &old, T0);
    assert!(state.queue_data("TopicTest", "broker-b").is_some());
}

#[test]
fn stale_state_version_is_refused_and_forgotten() {
    let mut state = NamesrvState::new();
    let mut current = topics(&[test_topic(), tbw102()], 1);
    current.data_version.state_version = 5;
    ok(
        &mut state,
        1,
        &register_request("broker-a", MASTER, 0, current),
        T0,
    );
    // Another address claims id 0 with an older role epoch.
    let stale = register_request(
        "broker-a",
        "10.0.0.99:10911",
        0,
        topics(&[test_topic(), tbw102()], 9),
    );
    let response = ok(&mut state, 2, &stale, T0);
    assert!(response.ext_str_opt("masterAddr").is_none());
    assert!(!state.is_broker_live("10.0.0.99:10911", T0));
    let route_data: TopicRouteData = decode_json(
        route(&mut state, "TopicTest", T0)
            .body
            .as_deref()
            .expect("body"),
    )
    .expect("route");
    assert_eq!(route_data.broker_datas[0].broker_addrs[&0], MASTER);
}

#[test]
fn an_address_switching_ids_keeps_only_the_new_id() {
    let mut state = two_broker_state();
    // The slave is promoted: same address, id 0, master gone.
    on_connection_closed(&mut state, 1);
    let mut promoted = topics(&[test_topic(), tbw102()], 2);
    promoted.data_version.state_version = 1;
    ok(
        &mut state,
        2,
        &register_request("broker-a", SLAVE, 0, promoted),
        T0,
    );
    let route_data: TopicRouteData = decode_json(
        route(&mut state, "TopicTest", T0)
            .body
            .as_deref()
            .expect("body"),
    )
    .expect("route");
    assert_eq!(
        route_data.broker_datas[0].broker_addrs,
        BTreeMap::from([(0, SLAVE.to_owned())])
    );
}

#[test]
fn delete_topic_with_broker_registration_option() {
    let mut state = NamesrvState::with_config(NamesrvConfig {
        delete_topic_with_broker_registration: true,
        ..NamesrvConfig::default()
    });
    ok(
        &mut state,
        1,
        &register_request("broker-a", MASTER, 0, topics(&[test_topic(), tbw102()], 1)),
        T0,
    );
    ok(
        &mut state,
        1,
        &register_request(
            "broker-a",
            MASTER,
            0,
            topics(&[tbw102(), TopicConfig::new("X", 1)], 2),
        ),
        T0,
    );
    assert!(state.queue_data("TopicTest", "broker-a").is_none());
    assert!(state.queue_data("X", "broker-a").is_some());
}

// ---- Property test: arbitrary requests ----

const NAMES: &[&str] = &["broker-a", "broker-b", ""];
const ADDRS: &[&str] = &["10.0.0.1:1", "10.0.0.2:2", "10.0.0.3:3", "bad,addr", ""];
const CLUSTERS: &[&str] = &["c1", "c2", ""];
const TOPICS: &[&str] = &["T1", "T2", "TBW102", ""];
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "-1",
    "x",
    "",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
];
const CODES: &[i32] = &[
    request_code::PUT_KV_CONFIG,
    request_code::GET_KV_CONFIG,
    request_code::DELETE_KV_CONFIG,
    request_code::GET_KVLIST_BY_NAMESPACE,
    request_code::REGISTER_BROKER,
    request_code::REGISTER_BROKER,
    request_code::REGISTER_BROKER,
    request_code::UNREGISTER_BROKER,
    request_code::GET_ROUTEINFO_BY_TOPIC,
    request_code::GET_BROKER_CLUSTER_INFO,
    request_code::GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
    request_code::GET_TOPICS_BY_CLUSTER,
    request_code::GET_SYSTEM_TOPIC_LIST_FROM_NS,
    request_code::DELETE_TOPIC_IN_NAMESRV,
    request_code::WIPE_WRITE_PERM_OF_BROKER,
    request_code::ADD_WRITE_PERM_OF_BROKER,
    request_code::QUERY_DATA_VERSION,
    request_code::REGISTER_TOPIC_IN_NAMESRV,
];

#[derive(Debug, Clone)]
enum Op {
    Request {
        code: i32,
        fields: BTreeMap<String, String>,
        body: Option<Vec<u8>>,
        oneway: bool,
        conn: u64,
    },
    Close(u64),
    Scan,
}

fn field_value() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(NAMES).prop_map(str::to_owned),
        proptest::sample::select(ADDRS).prop_map(str::to_owned),
        proptest::sample::select(CLUSTERS).prop_map(str::to_owned),
        proptest::sample::select(TOPICS).prop_map(str::to_owned),
        proptest::sample::select(NUMBERS).prop_map(str::to_owned),
        "[ -~é]{0,8}",
    ]
}

fn field_name() -> impl Strategy<Value = String> {
    proptest::sample::select(
        &[
            "brokerName",
            "brokerAddr",
            "clusterName",
            "haServerAddr",
            "brokerId",
            "bodyCrc32",
            "compressed",
            "heartbeatTimeoutMillis",
            "enableActingMaster",
            "topic",
            "cluster",
            "namespace",
            "key",
            "value",
            "bname",
            "junk",
        ][..],
    )
    .prop_map(str::to_owned)
}

fn topic_config() -> impl Strategy<Value = TopicConfig> {
    (
        proptest::sample::select(TOPICS),
        0u32..20,
        0u32..20,
        0u32..16,
    )
        .prop_map(|(name, read, write, perm)| TopicConfig {
            read_queue_nums: read,
            write_queue_nums: write,
            perm,
            ..TopicConfig::new(name, 0)
        })
}

fn body() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Some),
        (proptest::collection::vec(topic_config(), 0..4), 0i64..3, 0i64..3).prop_map(
            |(configs, counter, state_version)| {
                let mut wrapper = topics(&configs, counter);
                wrapper.data_version.state_version = state_version;
                serde_json::to_vec(&RegisterBrokerBody {
                    filter_server_list: vec![],
                    topic_config_serialize_wrapper: wrapper,
                })
                .ok()
            }
        ),
        Just(Some(br#"{"counter":"1","timestamp":null}"#.to_vec())),
        Just(Some(br#"{"topicConfigSerializeWrapper":{"topicConfigTable":{"T1":{"topicName":"T1","perm":"6"}}},"filterServerList":null}"#.to_vec())),
    ]
}

/// Well-formed requests over small name pools, so that registrations,
/// unregistrations and perm changes really interact (random fields alone
/// rarely make a valid registration).
fn valid_request() -> impl Strategy<Value = (i32, BTreeMap<String, String>, Option<Vec<u8>>)> {
    let names = proptest::sample::select(&NAMES[..2]);
    let addrs = proptest::sample::select(&ADDRS[..3]);
    let clusters = proptest::sample::select(&CLUSTERS[..2]);
    (
        0..6usize,
        names,
        addrs,
        clusters,
        -1i64..3,
        proptest::collection::vec(topic_config(), 0..4),
        (0i64..3, 0i64..2),
        proptest::option::of(prop_oneof![Just(-1i64), Just(1_000i64), Just(i64::MAX)]),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(
            |(
                kind,
                name,
                addr,
                cluster,
                id,
                configs,
                (counter, state_version),
                timeout,
                acting,
            )| {
                let mut fields = BTreeMap::from([
                    ("brokerName".to_owned(), name.to_owned()),
                    ("brokerAddr".to_owned(), addr.to_owned()),
                    ("clusterName".to_owned(), cluster.to_owned()),
                    ("brokerId".to_owned(), id.to_string()),
                ]);
                let mut wrapper = topics(&configs, counter);
                wrapper.data_version.state_version = state_version;
                match kind {
                    0 | 1 => {
                        if let Some(timeout) = timeout {
                            fields.insert("heartbeatTimeoutMillis".into(), timeout.to_string());
                        }
                        if let Some(acting) = acting {
                            fields.insert("enableActingMaster".into(), acting.to_string());
                        }
                        let body = serde_json::to_vec(&RegisterBrokerBody {
                            filter_server_list: vec![],
                            topic_config_serialize_wrapper: wrapper,
                        })
                        .unwrap_or_default();
                        fields.insert(
                            "bodyCrc32".into(),
                            (crc32fast::hash(&body) & 0x7FFF_FFFF).to_string(),
                        );
                        (request_code::REGISTER_BROKER, fields, Some(body))
                    }
                    2 => (request_code::UNREGISTER_BROKER, fields, None),
                    3 => {
                        let code = if acting == Some(true) {
                            request_code::WIPE_WRITE_PERM_OF_BROKER
                        } else {
                            request_code::ADD_WRITE_PERM_OF_BROKER
                        };
                        (code, fields, None)
                    }
                    4 => {
                        let topic = configs
                            .first()
                            .map_or("T1", |config| config.topic_name.as_str());
                        fields.insert("topic".into(), topic.to_owned());
                        (request_code::GET_ROUTEINFO_BY_TOPIC, fields, None)
                    }
                    _ => (
                        request_code::QUERY_DATA_VERSION,
                        fields,
                        serde_json::to_vec(&wrapper.data_version).ok(),
                    ),
                }
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (valid_request(), proptest::bool::weighted(0.1), 0u64..4)
            .prop_map(|((code, fields, body), oneway, conn)| Op::Request { code, fields, body, oneway, conn }),
        8 => (
            prop_oneof![proptest::sample::select(CODES), any::<i32>()],
            proptest::collection::btree_map(field_name(), field_value(), 0..9),
            body(),
            proptest::bool::weighted(0.1),
            0u64..4,
        )
            .prop_map(|(code, fields, body, oneway, conn)| Op::Request { code, fields, body, oneway, conn }),
        1 => (0u64..4).prop_map(Op::Close),
        1 => Just(Op::Scan),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_requests_never_panic_or_break_the_tables(
        ops in proptest::collection::vec(op(), 1..40),
        // Mostly short steps so brokers live long enough to matter, with
        // occasional jumps past the expiry timeout.
        clock_steps in proptest::collection::vec(prop_oneof![9 => 0i64..5_000, 1 => 0i64..200_000], 40),
    ) {
        let mut state = NamesrvState::new();
        let mut now = T0;
        for (index, op) in ops.into_iter().enumerate() {
            now += clock_steps[index % clock_steps.len()];
            match op {
                Op::Request { code, fields, body, oneway, conn } => {
                    let mut req = RemotingCommand::new_request(code);
                    req.opaque = index as i32;
                    req.ext_fields = Some(fields.into_iter().collect());
                    req.body = body.map(Into::into);
                    if oneway {
                        req.mark_oneway();
                    }
                    let reply = process(&mut state, conn, &req, now);
                    if oneway {
                        prop_assert!(reply.is_none());
                    } else {
                        let reply = reply.expect("two-way requests get an answer");
                        prop_assert!(reply.is_response() && !reply.is_oneway());
                        prop_assert_eq!(reply.opaque, req.opaque);
                        if reply.code == response_code::SUCCESS && code == request_code::GET_ROUTEINFO_BY_TOPIC {
                            // SUCCESS always carries a parsable, non-empty route.
                            let route: TopicRouteData = decode_json(reply.body.as_deref().unwrap_or_default())
                                .map_err(|error| TestCaseError::fail(error.to_string()))?;
                            prop_assert!(!route.broker_datas.is_empty());
                        }
                    }
                }
                Op::Close(conn) => {
                    on_connection_closed(&mut state, conn);
                }
                Op::Scan => {
                    scan_inactive(&mut state, now);
                }
            }
            if let Err(broken) = state.check_invariants() {
                return Err(TestCaseError::fail(broken));
            }
        }
    }
}
