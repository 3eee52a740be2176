//! `TopicConfig` (spec §5.5): one topic's queue counts, permissions and
//! attributes, as a broker registers it with the name server and as admin
//! tools read it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::lenient;
use super::perm::PERM_READ_WRITE;

/// Java's default queue count for a topic created without one.
pub const DEFAULT_QUEUE_NUMS: u32 = 16;
/// `topicFilterType` of ordinary topics.
pub const SINGLE_TAG: &str = "SINGLE_TAG";
/// `topicFilterType` of topics whose messages carry several tags.
pub const MULTI_TAG: &str = "MULTI_TAG";

/// One topic's configuration.
///
/// Fields are declared in JSON key order (alphabetical, like fastjson).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfig {
    /// 5.x attributes, e.g. `{"message.type":"NORMAL"}`.
    #[serde(deserialize_with = "lenient::null_default")]
    pub attributes: BTreeMap<String, String>,
    /// Ordered topic.
    #[serde(deserialize_with = "lenient::boolean")]
    pub order: bool,
    /// Permission bits ([`super::perm`]).
    #[serde(deserialize_with = "lenient::int")]
    pub perm: u32,
    /// Queues consumers read.
    #[serde(deserialize_with = "lenient::int")]
    pub read_queue_nums: u32,
    /// `SINGLE_TAG` or `MULTI_TAG`.
    #[serde(deserialize_with = "lenient::null_default")]
    pub topic_filter_type: String,
    /// Topic name.
    #[serde(deserialize_with = "lenient::null_default")]
    pub topic_name: String,
    /// Topic system flags (unit/unit-sub bits); 0 for ordinary topics.
    #[serde(deserialize_with = "lenient::int")]
    pub topic_sys_flag: u32,
    /// Queues producers write.
    #[serde(deserialize_with = "lenient::int")]
    pub write_queue_nums: u32,
}

impl TopicConfig {
    /// An ordinary read-write topic with `queues` read and write queues.
    pub fn new(name: impl Into<String>, queues: u32) -> TopicConfig {
        TopicConfig {
            topic_name: name.into(),
            read_queue_nums: queues,
            write_queue_nums: queues,
            ..TopicConfig::default()
        }
    }
}

/// Java's field initialisers: 16/16 queues, perm 6, `SINGLE_TAG`.
impl Default for TopicConfig {
    fn default() -> TopicConfig {
        TopicConfig {
            attributes: BTreeMap::new(),
            order: false,
            perm: PERM_READ_WRITE,
            read_queue_nums: DEFAULT_QUEUE_NUMS,
            topic_filter_type: SINGLE_TAG.to_owned(),
            topic_name: String::new(),
            topic_sys_flag: 0,
            write_queue_nums: DEFAULT_QUEUE_NUMS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_json;

    const SPEC_TOPIC_CONFIG: &str = r#"{"attributes":{},"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"TopicTest","topicSysFlag":0,"writeQueueNums":4}"#;

    #[test]
    fn spec_example_round_trips_byte_for_byte() {
        let config: TopicConfig = decode_json(SPEC_TOPIC_CONFIG.as_bytes()).expect("spec example");
        assert_eq!(config, TopicConfig::new("TopicTest", 4));
        assert_eq!(
            serde_json::to_string(&config).expect("encodes"),
            SPEC_TOPIC_CONFIG
        );
    }

    #[test]
    fn missing_keys_take_java_defaults_and_unknown_keys_are_ignored() {
        let config: TopicConfig =
            decode_json(br#"{"topicName":"T","topicMessageType":"NORMAL","perm":"7"}"#)
                .expect("tolerant");
        assert_eq!(config.read_queue_nums, 16);
        assert_eq!(config.write_queue_nums, 16);
        assert_eq!(config.perm, 7);
        assert_eq!(config.topic_filter_type, "SINGLE_TAG");
    }
}
