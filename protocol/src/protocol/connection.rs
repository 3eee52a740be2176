//! Connection listings of GET_CONSUMER_CONNECTION_LIST (203) and
//! GET_PRODUCER_CONNECTION_LIST (204), spec §5.9.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::lenient;
use super::subscription::SubscriptionData;

/// One client connection of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Connection {
    /// `ip:port` of the peer socket.
    #[serde(deserialize_with = "lenient::null_default")]
    pub client_addr: String,
    /// Client id from the heartbeat.
    #[serde(deserialize_with = "lenient::null_default")]
    pub client_id: String,
    /// Language enum name (`JAVA`, `GO`, `CPP`, …).
    #[serde(deserialize_with = "lenient::null_default")]
    pub language: String,
    /// Client version ordinal.
    #[serde(deserialize_with = "lenient::int")]
    pub version: i32,
}

/// Body of GET_CONSUMER_CONNECTION_LIST: a group's members and subscriptions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerConnection {
    /// Member connections.
    #[serde(deserialize_with = "lenient::null_default")]
    pub connection_set: Vec<Connection>,
    /// Group's ConsumeFromWhere.
    #[serde(deserialize_with = "lenient::null_default")]
    pub consume_from_where: String,
    /// Group's consume type.
    #[serde(deserialize_with = "lenient::null_default")]
    pub consume_type: String,
    /// Group's message model.
    #[serde(deserialize_with = "lenient::null_default")]
    pub message_model: String,
    /// Topic → subscription.
    #[serde(deserialize_with = "lenient::null_default")]
    pub subscription_table: BTreeMap<String, SubscriptionData>,
}

/// Body of GET_PRODUCER_CONNECTION_LIST.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProducerConnection {
    /// Member connections.
    #[serde(deserialize_with = "lenient::null_default")]
    pub connection_set: Vec<Connection>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_json;

    #[test]
    fn spec_example_round_trips_byte_for_byte() {
        let json = r#"{"connectionSet":[{"clientAddr":"192.168.1.20:53412","clientId":"192.168.1.20@4242#8123456789012","language":"JAVA","version":479}],"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","subscriptionTable":{"TopicTest":{"classFilterMode":false,"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":1715551234000,"tagsSet":[],"topic":"TopicTest"}}}"#;
        let consumer: ConsumerConnection = decode_json(json.as_bytes()).expect("spec example");
        assert_eq!(consumer.connection_set[0].version, 479);
        assert!(consumer.subscription_table["TopicTest"].is_tag_all());
        assert_eq!(serde_json::to_string(&consumer).expect("encodes"), json);

        let producer = ProducerConnection {
            connection_set: consumer.connection_set.clone(),
        };
        let json = serde_json::to_string(&producer).expect("encodes");
        assert!(
            json.starts_with(r#"{"connectionSet":[{"clientAddr":"#),
            "{json}"
        );
    }
}
