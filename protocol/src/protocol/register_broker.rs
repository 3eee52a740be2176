//! What a broker tells the name server about its topics (spec §5.5):
//! `TopicConfigSerializeWrapper` (also the body of GET_ALL_TOPIC_CONFIG) and
//! `RegisterBrokerBody` (the body of REGISTER_BROKER).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};

use super::data_version::DataVersion;
use super::lenient;
use super::topic_config::TopicConfig;

/// A broker's topic table and its version.
///
/// Serializes in the 5.x `TopicConfigAndMappingSerializeWrapper` shape, which
/// adds `mappingDataVersion` and two empty static-topic maps: 5.x clients and
/// name servers read that shape, 4.x ones ignore the extra keys. Reading
/// accepts both shapes (the extra keys are ignored: static topics are not
/// supported).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfigSerializeWrapper {
    /// Topic name → config.
    #[serde(deserialize_with = "lenient::null_default")]
    pub topic_config_table: BTreeMap<String, TopicConfig>,
    /// Version of the table.
    #[serde(deserialize_with = "lenient::null_default")]
    pub data_version: DataVersion,
}

/// The wire form, keys in fastjson order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WrapperWire<'a> {
    data_version: &'a DataVersion,
    mapping_data_version: DataVersion,
    topic_config_table: &'a BTreeMap<String, TopicConfig>,
    topic_queue_mapping_detail_map: Empty,
    topic_queue_mapping_info_map: Empty,
}

/// Serializes as `{}`.
struct Empty;

impl Serialize for Empty {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(std::iter::empty::<((), ())>())
    }
}

impl Serialize for TopicConfigSerializeWrapper {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WrapperWire {
            data_version: &self.data_version,
            // There are no static topics, so the mapping table never changes.
            // Java stamps it when the broker starts; reusing the topic table's
            // timestamp keeps the output deterministic and matches the
            // spec's example.
            mapping_data_version: DataVersion {
                timestamp: self.data_version.timestamp,
                ..DataVersion::default()
            },
            topic_config_table: &self.topic_config_table,
            topic_queue_mapping_detail_map: Empty,
            topic_queue_mapping_info_map: Empty,
        }
        .serialize(serializer)
    }
}

/// Body of REGISTER_BROKER (103) when `compressed=false`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RegisterBrokerBody {
    /// Filter-server addresses (an obsolete feature; brokers send `[]`).
    #[serde(deserialize_with = "lenient::null_default")]
    pub filter_server_list: Vec<String>,
    /// The broker's topics.
    #[serde(deserialize_with = "lenient::null_default")]
    pub topic_config_serialize_wrapper: TopicConfigSerializeWrapper,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_json;

    const SPEC_REGISTER_BODY: &str = r#"{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":1,"stateVersion":0,"timestamp":1715551234567},"mappingDataVersion":{"counter":0,"stateVersion":0,"timestamp":1715551234567},"topicConfigTable":{"TopicTest":{"attributes":{},"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"TopicTest","topicSysFlag":0,"writeQueueNums":4}},"topicQueueMappingDetailMap":{},"topicQueueMappingInfoMap":{}}}"#;

    fn spec_body() -> RegisterBrokerBody {
        RegisterBrokerBody {
            filter_server_list: vec![],
            topic_config_serialize_wrapper: TopicConfigSerializeWrapper {
                topic_config_table: BTreeMap::from([(
                    "TopicTest".to_owned(),
                    TopicConfig::new("TopicTest", 4),
                )]),
                data_version: DataVersion {
                    counter: 1,
                    state_version: 0,
                    timestamp: 1_715_551_234_567,
                },
            },
        }
    }

    #[test]
    fn spec_example_parses_and_is_reproduced_byte_for_byte() {
        let body: RegisterBrokerBody =
            decode_json(SPEC_REGISTER_BODY.as_bytes()).expect("spec example");
        assert_eq!(body, spec_body());
        assert_eq!(
            serde_json::to_string(&spec_body()).expect("encodes"),
            SPEC_REGISTER_BODY
        );
    }

    #[test]
    fn the_4x_wrapper_shape_is_read_too() {
        let json = r#"{"dataVersion":{"counter":2,"timestamp":5},"topicConfigTable":{"T":{"topicName":"T"}}}"#;
        let wrapper: TopicConfigSerializeWrapper = decode_json(json.as_bytes()).expect("4.x shape");
        assert_eq!(wrapper.data_version.counter, 2);
        assert_eq!(wrapper.topic_config_table["T"].read_queue_nums, 16);
        let empty: RegisterBrokerBody = decode_json(b"{}").expect("empty object");
        assert_eq!(empty, RegisterBrokerBody::default());
    }
}
