//! The small list and table bodies of spec §5.6: `TopicList`, `KvTable`,
//! `GroupList` and `ConsumerListBody`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::lenient;

/// Body of 206, 224 and 304: topic names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicList {
    /// Only in 304 answers: one broker address, so tools know where to ask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_addr: Option<String>,
    /// Topic names.
    #[serde(deserialize_with = "lenient::null_default")]
    pub topic_list: Vec<String>,
}

/// Body of 219, 28 and the REGISTER_BROKER response: string → string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KvTable {
    /// Key → value.
    #[serde(deserialize_with = "lenient::null_default")]
    pub table: BTreeMap<String, String>,
}

/// Body of QUERY_TOPIC_CONSUME_BY_WHO (300): consumer group names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupList {
    /// Group names.
    #[serde(deserialize_with = "lenient::null_default")]
    pub group_list: Vec<String>,
}

/// Body of GET_CONSUMER_LIST_BY_GROUP (38): client ids of a group's members.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerListBody {
    /// Client ids.
    #[serde(deserialize_with = "lenient::null_default")]
    pub consumer_id_list: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_json;

    fn round_trips<T>(json: &str)
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        let value: T = decode_json(json.as_bytes()).expect("spec example");
        assert_eq!(serde_json::to_string(&value).expect("encodes"), json);
    }

    #[test]
    fn spec_examples_round_trip_byte_for_byte() {
        round_trips::<TopicList>(r#"{"topicList":["TopicTest","TBW102"]}"#);
        round_trips::<TopicList>(
            r#"{"brokerAddr":"10.0.0.1:10911","topicList":["DefaultCluster"]}"#,
        );
        round_trips::<KvTable>(r#"{"table":{"k":"v"}}"#);
        round_trips::<GroupList>(r#"{"groupList":["cg1"]}"#);
        round_trips::<ConsumerListBody>(
            r#"{"consumerIdList":["192.168.1.20@4242#8123456789012"]}"#,
        );
    }
}
