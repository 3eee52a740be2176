//! `HeartbeatData` (spec §5.3), the body of HEART_BEAT: a client's producer
//! groups and consumer groups with their subscriptions.
//!
//! Read from three client families with different habits; see
//! [`lenient`] and [`SubscriptionData`] for what is tolerated.

use serde::{Deserialize, Serialize};

use super::lenient;
use super::subscription::SubscriptionData;

/// Body of HEART_BEAT (34).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HeartbeatData {
    /// `clientIP@instanceName[@unitName]`. The key is `clientID` in every
    /// client; `clientId` is accepted too.
    #[serde(
        rename = "clientID",
        alias = "clientId",
        deserialize_with = "lenient::null_default"
    )]
    pub client_id: String,
    /// Consumer groups of this client. C++ omits the key when empty.
    #[serde(deserialize_with = "lenient::null_default")]
    pub consumer_data_set: Vec<ConsumerData>,
    /// 5.x heartbeat v2: 0 = classic heartbeat.
    #[serde(deserialize_with = "lenient::int")]
    pub heartbeat_fingerprint: i64,
    /// Producer groups of this client (Java always lists `CLIENT_INNER_PRODUCER`).
    #[serde(deserialize_with = "lenient::null_default")]
    pub producer_data_set: Vec<ProducerData>,
    /// 5.x heartbeat v2: subscriptions left out, keep the previous ones.
    #[serde(deserialize_with = "lenient::boolean")]
    pub without_sub: bool,
}

/// A producer group of the client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProducerData {
    /// Producer group.
    #[serde(deserialize_with = "lenient::null_default")]
    pub group_name: String,
}

/// A consumer group of the client and its subscriptions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerData {
    /// `CONSUME_FROM_LAST_OFFSET`, `CONSUME_FROM_FIRST_OFFSET`,
    /// `CONSUME_FROM_TIMESTAMP`, …
    #[serde(deserialize_with = "lenient::consume_from_where")]
    pub consume_from_where: String,
    /// `CONSUME_PASSIVELY` (push), `CONSUME_ACTIVELY` (pull) or `CONSUME_POP`.
    #[serde(deserialize_with = "lenient::consume_type")]
    pub consume_type: String,
    /// Consumer group.
    #[serde(deserialize_with = "lenient::null_default")]
    pub group_name: String,
    /// `CLUSTERING` or `BROADCASTING`.
    #[serde(deserialize_with = "lenient::message_model")]
    pub message_model: String,
    /// One per subscribed topic (including `%RETRY%<group>` for clustering).
    #[serde(deserialize_with = "lenient::null_default")]
    pub subscription_data_set: Vec<SubscriptionData>,
    /// Unit mode; C++ omits it.
    #[serde(deserialize_with = "lenient::boolean")]
    pub unit_mode: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_json;

    #[test]
    fn cpp_heartbeat_with_numeric_enums_parses() {
        let body = br#"{"clientID":"10247-127.0.0.1@DEFAULT","consumerDataSet":[{"consumeFromWhere":0,"consumeType":1,"groupName":"g","messageModel":1,"subscriptionDataSet":[{"subString":"*","subVersion":"1795269381049","topic":"%RETRY%g"}]}],"producerDataSet":[{"groupName":"p"}]}"#;
        let hb: HeartbeatData = decode_json(body).unwrap();
        let c = &hb.consumer_data_set[0];
        assert_eq!(c.consume_from_where, "CONSUME_FROM_LAST_OFFSET");
        assert_eq!(c.consume_type, "CONSUME_PASSIVELY");
        assert_eq!(c.message_model, "CLUSTERING");
        assert_eq!(c.subscription_data_set[0].sub_version, 1795269381049);
        let b: HeartbeatData =
            decode_json(br#"{"consumerDataSet":[{"messageModel":0,"consumeFromWhere":4}]}"#)
                .unwrap();
        assert_eq!(b.consumer_data_set[0].message_model, "BROADCASTING");
        assert_eq!(
            b.consumer_data_set[0].consume_from_where,
            "CONSUME_FROM_FIRST_OFFSET"
        );
        assert!(
            decode_json::<HeartbeatData>(br#"{"consumerDataSet":[{"messageModel":9}]}"#).is_err()
        );
    }

    const SPEC_HEARTBEAT: &str = r#"{"clientID":"192.168.1.20@4242#8123456789012","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","consumeType":"CONSUME_PASSIVELY","groupName":"cg1","messageModel":"CLUSTERING","subscriptionDataSet":[{"classFilterMode":false,"codeSet":[2598919,2598920],"expressionType":"TAG","subString":"TagA || TagB","subVersion":1715551234000,"tagsSet":["TagA","TagB"],"topic":"TopicTest"},{"classFilterMode":false,"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":1715551234001,"tagsSet":[],"topic":"%RETRY%cg1"}],"unitMode":false}],"heartbeatFingerprint":0,"producerDataSet":[{"groupName":"CLIENT_INNER_PRODUCER"}],"withoutSub":false}"#;

    #[test]
    fn spec_example_round_trips_byte_for_byte() {
        let heartbeat: HeartbeatData =
            decode_json(SPEC_HEARTBEAT.as_bytes()).expect("spec example");
        assert_eq!(heartbeat.client_id, "192.168.1.20@4242#8123456789012");
        let consumer = &heartbeat.consumer_data_set[0];
        assert_eq!(consumer.group_name, "cg1");
        let subscription = &consumer.subscription_data_set[0];
        assert_eq!(subscription.java_tag_codes(), subscription.code_set);
        assert!(consumer.subscription_data_set[1].is_tag_all());
        assert_eq!(
            heartbeat.producer_data_set,
            vec![ProducerData {
                group_name: "CLIENT_INNER_PRODUCER".into()
            }]
        );
        assert_eq!(
            serde_json::to_string(&heartbeat).expect("encodes"),
            SPEC_HEARTBEAT
        );
    }

    #[test]
    fn cpp_heartbeat_parses() {
        // C++ 1.x: empty arrays absent, no unitMode/classFilterMode/expressionType,
        // subVersion as a string, trailing newline.
        let json = "{\"clientID\":\"10.0.0.5@9876\",\"consumerDataSet\":[{\"consumeFromWhere\":\"CONSUME_FROM_LAST_OFFSET\",\"consumeType\":\"CONSUME_PASSIVELY\",\"groupName\":\"cg\",\"messageModel\":\"CLUSTERING\",\"subscriptionDataSet\":[{\"subString\":\"TagA||TagB\",\"subVersion\":\"1715551234000\",\"tagsSet\":[\"TagA\",\"TagB\"],\"codeSet\":[\"garbage\",12],\"topic\":\"T\"},{\"subString\":\"*\",\"subVersion\":\"1715551234000\",\"topic\":\"%RETRY%cg\"}]}]}\n";
        let heartbeat: HeartbeatData = decode_json(json.as_bytes()).expect("C++ form");
        assert!(heartbeat.producer_data_set.is_empty());
        let consumer = &heartbeat.consumer_data_set[0];
        assert!(!consumer.unit_mode);
        let tagged = &consumer.subscription_data_set[0];
        assert_eq!(tagged.sub_version, 1_715_551_234_000);
        assert_eq!(tagged.java_tag_codes(), vec![2_598_919, 2_598_920]);
        assert!(consumer.subscription_data_set[1].is_tag_all());
    }

    #[test]
    fn go_heartbeat_parses() {
        // Go: no fingerprint/withoutSub, codes as strings, null for empty sets.
        let json = r#"{"clientID":"10.0.0.6@1234","producerDataSet":null,"consumerDataSet":[{"groupName":"cg","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET","subscriptionDataSet":[{"classFilterMode":false,"topic":"T","subString":"中文","tagsSet":["中文"],"codeSet":["-1887180642"],"subVersion":1715551234000,"expressionType":"TAG"}],"unitMode":false}]}"#;
        let heartbeat: HeartbeatData = decode_json(json.as_bytes()).expect("Go form");
        assert_eq!(heartbeat.heartbeat_fingerprint, 0);
        assert!(!heartbeat.without_sub);
        let subscription = &heartbeat.consumer_data_set[0].subscription_data_set[0];
        assert_eq!(subscription.code_set, vec![-1_887_180_642]);
        assert_eq!(subscription.java_tag_codes(), vec![646_394]);
    }
}
