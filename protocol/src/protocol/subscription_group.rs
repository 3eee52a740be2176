//! `SubscriptionGroupConfig` (spec §2.6): a consumer group's broker-side
//! settings, and `SubscriptionGroupWrapper`, the body of
//! GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::data_version::DataVersion;
use super::lenient;

/// One consumer group's settings. `Default` and [`new`](Self::new) give
/// Java's defaults, which is also what a broker auto-creates on first use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionGroupConfig {
    /// 5.x group attributes.
    #[serde(deserialize_with = "lenient::null_default")]
    pub attributes: BTreeMap<String, String>,
    /// Broker id consumers should pull from (0 = master).
    #[serde(deserialize_with = "lenient::int")]
    pub broker_id: i64,
    /// Broadcast consumption allowed.
    #[serde(deserialize_with = "lenient::boolean")]
    pub consume_broadcast_enable: bool,
    /// Consumption allowed at all.
    #[serde(deserialize_with = "lenient::boolean")]
    pub consume_enable: bool,
    /// A new group may start from the queue's min offset.
    #[serde(deserialize_with = "lenient::boolean")]
    pub consume_from_min_enable: bool,
    /// Orderly consumption.
    #[serde(deserialize_with = "lenient::boolean")]
    pub consume_message_orderly: bool,
    /// Minutes before a message being consumed counts as failed.
    #[serde(deserialize_with = "lenient::int")]
    pub consume_timeout_minute: i64,
    /// Group name.
    #[serde(deserialize_with = "lenient::null_default")]
    pub group_name: String,
    /// Group system flags.
    #[serde(deserialize_with = "lenient::int")]
    pub group_sys_flag: u32,
    /// Send NOTIFY_CONSUMER_IDS_CHANGED on membership changes.
    #[serde(deserialize_with = "lenient::boolean")]
    pub notify_consumer_ids_changed_enable: bool,
    /// Deliveries before a message goes to the DLQ.
    #[serde(deserialize_with = "lenient::int")]
    pub retry_max_times: i32,
    /// Queues of the group's `%RETRY%` topic.
    #[serde(deserialize_with = "lenient::int")]
    pub retry_queue_nums: u32,
    /// Broker id to suggest when consumption is slow (a slave).
    #[serde(deserialize_with = "lenient::int")]
    pub which_broker_when_consume_slowly: i64,
}

impl Default for SubscriptionGroupConfig {
    fn default() -> SubscriptionGroupConfig {
        SubscriptionGroupConfig {
            attributes: BTreeMap::new(),
            broker_id: 0,
            consume_broadcast_enable: true,
            consume_enable: true,
            consume_from_min_enable: true,
            consume_message_orderly: false,
            consume_timeout_minute: 15,
            group_name: String::new(),
            group_sys_flag: 0,
            notify_consumer_ids_changed_enable: true,
            retry_max_times: 16,
            retry_queue_nums: 1,
            which_broker_when_consume_slowly: 1,
        }
    }
}

impl SubscriptionGroupConfig {
    /// Group `name` with Java's defaults.
    pub fn new(name: impl Into<String>) -> SubscriptionGroupConfig {
        SubscriptionGroupConfig {
            group_name: name.into(),
            ..SubscriptionGroupConfig::default()
        }
    }
}

/// Body of GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionGroupWrapper {
    /// Version of the group table.
    #[serde(deserialize_with = "lenient::null_default")]
    pub data_version: DataVersion,
    /// 5.x: group → topic → forbidden bits. Always empty here; written because
    /// 5.x tools expect the key.
    #[serde(deserialize_with = "lenient::null_default")]
    pub forbidden_table: BTreeMap<String, BTreeMap<String, i32>>,
    /// Group name → settings.
    #[serde(deserialize_with = "lenient::null_default")]
    pub subscription_group_table: BTreeMap<String, SubscriptionGroupConfig>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_json;

    #[test]
    fn defaults_are_javas_and_round_trip() {
        let config = SubscriptionGroupConfig::new("cg1");
        let json = serde_json::to_string(&config).expect("encodes");
        assert_eq!(
            json,
            r#"{"attributes":{},"brokerId":0,"consumeBroadcastEnable":true,"consumeEnable":true,"consumeFromMinEnable":true,"consumeMessageOrderly":false,"consumeTimeoutMinute":15,"groupName":"cg1","groupSysFlag":0,"notifyConsumerIdsChangedEnable":true,"retryMaxTimes":16,"retryQueueNums":1,"whichBrokerWhenConsumeSlowly":1}"#
        );
        let parsed: SubscriptionGroupConfig = decode_json(
            br#"{"groupName":"cg1","groupRetryPolicy":{"type":"CUSTOMIZED"},"subscriptionDataSet":null}"#,
        )
        .expect("5.x extras ignored");
        assert_eq!(parsed, config);
    }

    #[test]
    fn wrapper_shape() {
        let wrapper = SubscriptionGroupWrapper {
            data_version: DataVersion {
                counter: 1,
                state_version: 0,
                timestamp: 2,
            },
            forbidden_table: BTreeMap::new(),
            subscription_group_table: BTreeMap::new(),
        };
        assert_eq!(
            serde_json::to_string(&wrapper).expect("encodes"),
            r#"{"dataVersion":{"counter":1,"stateVersion":0,"timestamp":2},"forbiddenTable":{},"subscriptionGroupTable":{}}"#
        );
    }
}
