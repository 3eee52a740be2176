//! `ClusterInfo` (spec §5.4), the body of GET_BROKER_CLUSTER_INFO: every
//! broker name with its addresses, and every cluster with its broker names.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::lenient;
use super::route::BrokerData;

/// The name server's broker and cluster tables.
///
/// Java writes this with unquoted numeric keys, which Go's `encoding/json`
/// cannot read (issue #3369); this type writes quoted keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterInfo {
    /// Broker name → its addresses.
    #[serde(deserialize_with = "lenient::null_default")]
    pub broker_addr_table: BTreeMap<String, BrokerData>,
    /// Cluster name → broker names.
    #[serde(deserialize_with = "lenient::null_default")]
    pub cluster_addr_table: BTreeMap<String, BTreeSet<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_json;

    const SPEC_CLUSTER_INFO: &str = r#"{"brokerAddrTable":{"broker-a":{"brokerAddrs":{"0":"192.168.1.10:10911"},"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}},"clusterAddrTable":{"DefaultCluster":["broker-a"]}}"#;

    #[test]
    fn spec_example_is_reproduced_byte_for_byte() {
        let info = ClusterInfo {
            broker_addr_table: BTreeMap::from([(
                "broker-a".to_owned(),
                BrokerData {
                    cluster: "DefaultCluster".into(),
                    broker_name: "broker-a".into(),
                    broker_addrs: BTreeMap::from([(0, "192.168.1.10:10911".into())]),
                    enable_acting_master: false,
                },
            )]),
            cluster_addr_table: BTreeMap::from([(
                "DefaultCluster".to_owned(),
                BTreeSet::from(["broker-a".to_owned()]),
            )]),
        };
        assert_eq!(
            serde_json::to_string(&info).expect("encodes"),
            SPEC_CLUSTER_INFO
        );
        let parsed: ClusterInfo = decode_json(SPEC_CLUSTER_INFO.as_bytes()).expect("spec example");
        assert_eq!(parsed, info);
        // What a Java name server sends.
        let legacy: ClusterInfo =
            decode_json(SPEC_CLUSTER_INFO.replace(r#""0":"#, "0:").as_bytes()).expect("legacy");
        assert_eq!(legacy, info);
    }
}
