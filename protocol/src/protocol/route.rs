//! Topic routes (spec §5.2): `QueueData`, `BrokerData` and `TopicRouteData`,
//! the body of GET_ROUTEINFO_BY_TOPIC and the only thing producers and
//! consumers ask the name server for.
//!
//! Output is always the standard form: compact, numeric `brokerAddrs` keys
//! quoted (`{"0":"…"}`), `brokerAddrs` and `filterServerTable` always present.
//! Every client parses it, including Go's hand-written splitter, which panics
//! if `brokerAddrs` is missing and breaks on spaces. Input accepts quoted and
//! unquoted keys when read through [`decode_json`](super::decode_json).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::lenient;

/// Broker id of a master. Clients send to, and build publish queues from, the
/// address under this id only.
pub const MASTER_ID: i64 = 0;

/// The queues one broker (name) hosts for a topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueueData {
    /// Broker name (shared by a master and its slaves).
    #[serde(deserialize_with = "lenient::null_default")]
    pub broker_name: String,
    /// Permission bits ([`super::perm`]).
    #[serde(deserialize_with = "lenient::int")]
    pub perm: u32,
    /// Queues consumers read: ids `0..read_queue_nums`.
    #[serde(deserialize_with = "lenient::int")]
    pub read_queue_nums: u32,
    /// Topic system flags. Before 4.9.0 the key was `topicSynFlag` (sic); Go
    /// still reads that name, but clients use it only to detect changes.
    #[serde(alias = "topicSynFlag", deserialize_with = "lenient::int")]
    pub topic_sys_flag: u32,
    /// Queues producers write: ids `0..write_queue_nums`.
    #[serde(deserialize_with = "lenient::int")]
    pub write_queue_nums: u32,
}

/// The addresses of one broker name: its master (id 0) and slaves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BrokerData {
    /// Broker id → `ip:port`. serde_json writes integer keys quoted and reads
    /// quoted keys back as integers.
    #[serde(deserialize_with = "lenient::null_default")]
    pub broker_addrs: BTreeMap<i64, String>,
    /// Broker name.
    #[serde(deserialize_with = "lenient::null_default")]
    pub broker_name: String,
    /// Cluster the broker belongs to.
    #[serde(deserialize_with = "lenient::null_default")]
    pub cluster: String,
    /// 5.x slave-acting-master mode.
    #[serde(deserialize_with = "lenient::boolean")]
    pub enable_acting_master: bool,
}

/// Route of one topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicRouteData {
    /// One entry per broker name referenced by `queue_datas`.
    #[serde(deserialize_with = "lenient::null_default")]
    pub broker_datas: Vec<BrokerData>,
    /// Broker address → filter-server addresses. Always `{}` in practice, but
    /// always written: clients index it without a null check.
    #[serde(deserialize_with = "lenient::null_default")]
    pub filter_server_table: BTreeMap<String, Vec<String>>,
    /// `"brokerA:4;brokerB:8"` for ordered topics; when present it replaces
    /// the publish queue list. Omitted when `None`, as fastjson omits nulls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_topic_conf: Option<String>,
    /// One entry per broker name hosting the topic.
    #[serde(deserialize_with = "lenient::null_default")]
    pub queue_datas: Vec<QueueData>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_json;

    const SPEC_ROUTE: &str = r#"{"brokerDatas":[{"brokerAddrs":{"0":"192.168.1.10:10911","1":"192.168.1.11:10911"},"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#;

    fn spec_route() -> TopicRouteData {
        TopicRouteData {
            broker_datas: vec![BrokerData {
                cluster: "DefaultCluster".into(),
                broker_name: "broker-a".into(),
                broker_addrs: BTreeMap::from([
                    (0, "192.168.1.10:10911".into()),
                    (1, "192.168.1.11:10911".into()),
                ]),
                enable_acting_master: false,
            }],
            filter_server_table: BTreeMap::new(),
            order_topic_conf: None,
            queue_datas: vec![QueueData {
                broker_name: "broker-a".into(),
                perm: 6,
                read_queue_nums: 4,
                topic_sys_flag: 0,
                write_queue_nums: 4,
            }],
        }
    }

    #[test]
    fn spec_example_is_reproduced_byte_for_byte() {
        assert_eq!(
            serde_json::to_string(&spec_route()).expect("encodes"),
            SPEC_ROUTE
        );
        let parsed: TopicRouteData = decode_json(SPEC_ROUTE.as_bytes()).expect("spec example");
        assert_eq!(parsed, spec_route());
    }

    #[test]
    fn legacy_unquoted_keys_and_old_flag_name_parse() {
        let legacy = SPEC_ROUTE
            .replace(r#""0":"#, "0:")
            .replace(r#""1":"#, "1:")
            .replace("topicSysFlag", "topicSynFlag");
        let parsed: TopicRouteData = decode_json(legacy.as_bytes()).expect("legacy form");
        assert_eq!(parsed, spec_route());
    }

    #[test]
    fn empty_maps_are_still_written_and_order_conf_only_when_set() {
        let mut route = TopicRouteData {
            broker_datas: vec![BrokerData::default()],
            ..TopicRouteData::default()
        };
        let json = serde_json::to_string(&route).expect("encodes");
        assert!(json.contains(r#""brokerAddrs":{}"#), "{json}");
        assert!(json.contains(r#""filterServerTable":{}"#), "{json}");
        assert!(!json.contains("orderTopicConf"), "{json}");
        route.order_topic_conf = Some("broker-a:4".into());
        let json = serde_json::to_string(&route).expect("encodes");
        assert!(
            json.contains(r#""orderTopicConf":"broker-a:4","queueDatas""#),
            "{json}"
        );
    }
}
