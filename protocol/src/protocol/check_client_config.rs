//! Body of CHECK_CLIENT_CONFIG (46), spec §2.4: a consumer asks whether the
//! broker supports its (usually SQL92) subscription before it starts.

use serde::{Deserialize, Serialize};

use super::lenient;
use super::subscription::SubscriptionData;

/// The subscription a consumer wants checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CheckClientConfigBody {
    /// Requesting client.
    #[serde(deserialize_with = "lenient::null_default")]
    pub client_id: String,
    /// Consumer group.
    #[serde(deserialize_with = "lenient::null_default")]
    pub group: String,
    /// Client namespace, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The subscription to check.
    #[serde(deserialize_with = "lenient::null_default")]
    pub subscription_data: SubscriptionData,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_json;

    #[test]
    fn parses_and_round_trips() {
        let json = r#"{"clientId":"c1","group":"cg1","subscriptionData":{"classFilterMode":false,"codeSet":[],"expressionType":"SQL92","subString":"a > 5","subVersion":1,"tagsSet":[],"topic":"T"}}"#;
        let body: CheckClientConfigBody = decode_json(json.as_bytes()).expect("valid");
        assert_eq!(body.namespace, None);
        assert!(!body.subscription_data.is_tag_type());
        assert_eq!(serde_json::to_string(&body).expect("encodes"), json);
        let with_namespace: CheckClientConfigBody =
            decode_json(br#"{"clientId":"c1","group":"cg1","namespace":"ns1"}"#).expect("valid");
        assert_eq!(with_namespace.namespace.as_deref(), Some("ns1"));
    }
}
