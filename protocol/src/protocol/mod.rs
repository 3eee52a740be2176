//! JSON bodies of Remoting commands (spec §5) as serde types, and the few
//! bodies that cannot be serde types.
//!
//! This module owns the *shape* of every JSON body the broker and the name
//! server read or write: key names, key order, defaults, and the tolerance
//! needed to read what real Java, Go and C++ clients send. It has no handlers
//! and no state; `broker` and `namesrv` build and interpret these values.
//!
//! Rules every type here follows, and why:
//!
//! * **Keys in alphabetical order.** Java's fastjson writes keys sorted, and the
//!   spec's examples are what a Java server sends. serde writes fields in
//!   declaration order, so fields are declared in the alphabetical order of
//!   their JSON names. Struct literals name their fields, so the order does not
//!   matter to Rust callers.
//! * **Compact output** (`serde_json::to_vec`, or [`encode_json`]). The Go
//!   client parses route data with a hand-written splitter that breaks on
//!   spaces (spec §5.2).
//! * **Tolerant input.** Every type is `#[serde(default)]` (missing keys take
//!   the Java default), unknown keys are ignored, numbers may arrive as strings
//!   and `null` may stand for an empty value ([`lenient`]). Decode through
//!   [`decode_json`], which also accepts fastjson's unquoted numeric map keys
//!   (Quirk A) and a trailing newline (C++).
//! * **Object-keyed maps (Quirk B)** are not JSON, so ConsumeStats,
//!   TopicStatsTable and ResetOffsetBody are written by hand in
//!   [`object_keyed`], and never read.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

pub mod check_client_config;
pub mod civil;
pub mod cluster_info;
pub mod connection;
pub mod data_version;
pub mod heartbeat;
pub mod lenient;
pub mod lock;
pub mod message_queue;
pub mod object_keyed;
pub mod perm;
pub mod register_broker;
pub mod route;
pub mod small_bodies;
pub mod subscription;
pub mod subscription_group;
pub mod topic_config;

pub use check_client_config::CheckClientConfigBody;
pub use cluster_info::ClusterInfo;
pub use connection::{Connection, ConsumerConnection, ProducerConnection};
pub use data_version::{now_ms, DataVersion};
pub use heartbeat::{ConsumerData, HeartbeatData, ProducerData};
pub use lock::{LockBatchRequestBody, LockBatchResponseBody, UnlockBatchRequestBody};
pub use message_queue::MessageQueue;
pub use object_keyed::{
    encode_consume_stats, encode_reset_offset_body, encode_topic_stats, OffsetWrapper, TopicOffset,
};
pub use register_broker::{RegisterBrokerBody, TopicConfigSerializeWrapper};
pub use route::{BrokerData, QueueData, TopicRouteData};
pub use small_bodies::{ConsumerListBody, GroupList, KvTable, TopicList};
pub use subscription::SubscriptionData;
pub use subscription_group::{SubscriptionGroupConfig, SubscriptionGroupWrapper};
pub use topic_config::TopicConfig;

/// A body could not be read (or, in theory, written).
///
/// The `body` fields name the Rust type that was expected, so the message can
/// go straight into a response remark ("RegisterBrokerBody: expected value at
/// line 1 column 1").
#[derive(Debug, Error)]
pub enum BodyError {
    /// The request has no body (or only whitespace) but this request needs one.
    #[error("{body}: the request has no body")]
    Missing {
        /// Expected body type.
        body: &'static str,
    },
    /// The body is not JSON of the expected shape.
    #[error("{body}: {source}")]
    Malformed {
        /// Expected body type.
        body: &'static str,
        /// What serde_json found wrong, with line and column.
        source: serde_json::Error,
    },
    /// A value could not be serialized. Cannot happen for the types in this
    /// module (all map keys are strings or integers), but `serde_json` is
    /// fallible by signature and handlers must not unwrap.
    #[error("{body}: cannot encode: {source}")]
    Encode {
        /// Type being encoded.
        body: &'static str,
        /// serde_json's reason.
        source: serde_json::Error,
    },
}

/// The last path segment of `T`'s name, for error messages.
fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    // Generic parameters would contain `::` too; none of the body types are generic.
    full.rsplit("::").next().unwrap_or(full)
}

/// Reads a JSON body the way fastjson would accept it.
///
/// Beyond `serde_json::from_slice` this accepts unquoted numeric object keys
/// (`{"brokerAddrs":{0:"…"}}`, what Java name servers send to old clients,
/// Quirk A). Trailing whitespace, such as the newline the C++ client appends,
/// is accepted by serde_json itself. An empty or all-whitespace body is
/// [`BodyError::Missing`].
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, BodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Missing {
            body: short_type_name::<T>(),
        });
    }
    let text = quote_bare_numeric_keys(body);
    serde_json::from_slice(&text).map_err(|source| BodyError::Malformed {
        body: short_type_name::<T>(),
        source,
    })
}

/// [`decode_json`] for an optional command body: `None` is
/// [`BodyError::Missing`].
pub fn decode_json_body<T: DeserializeOwned>(body: Option<&[u8]>) -> Result<T, BodyError> {
    match body {
        Some(body) => decode_json(body),
        None => Err(BodyError::Missing {
            body: short_type_name::<T>(),
        }),
    }
}

/// Writes `value` as compact JSON.
pub fn encode_json<T: Serialize>(value: &T) -> Result<Vec<u8>, BodyError> {
    serde_json::to_vec(value).map_err(|source| BodyError::Encode {
        body: short_type_name::<T>(),
        source,
    })
}

fn is_json_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// Puts quotes around object keys that are bare integers (`{0:"a",-1:"b"}` →
/// `{"0":"a","-1":"b"}`), leaving everything else, including string contents,
/// untouched. Borrows the input when there is nothing to fix, which is the
/// normal case.
///
/// A bare integer followed by `:` right after `{` or `,` can only be an object
/// key: in valid JSON a number after `,` inside an array is followed by `,` or
/// `]`, never `:`. So this cannot change the meaning of valid JSON.
fn quote_bare_numeric_keys(input: &[u8]) -> Cow<'_, [u8]> {
    let mut fixed: Option<Vec<u8>> = None;
    let mut copied_up_to = 0;
    let mut in_string = false;
    let mut i = 0;
    while i < input.len() {
        let byte = input[i];
        if in_string {
            match byte {
                // Skip the escaped character, so `\"` does not end the string.
                b'\\' => i += 2,
                b'"' => {
                    in_string = false;
                    i += 1;
                }
                _ => i += 1,
            }
            continue;
        }
        if byte == b'"' {
            in_string = true;
        } else if byte == b'{' || byte == b',' {
            if let Some((start, end)) = bare_integer_key_after(input, i + 1) {
                let out = fixed.get_or_insert_with(|| Vec::with_capacity(input.len() + 16));
                out.extend_from_slice(&input[copied_up_to..start]);
                out.push(b'"');
                out.extend_from_slice(&input[start..end]);
                out.push(b'"');
                copied_up_to = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    match fixed {
        None => Cow::Borrowed(input),
        Some(mut out) => {
            out.extend_from_slice(&input[copied_up_to..]);
            Cow::Owned(out)
        }
    }
}

/// If `input[from..]` is optional whitespace, an integer (`-?[0-9]+`), optional
/// whitespace and `:`, the byte range of the integer.
fn bare_integer_key_after(input: &[u8], from: usize) -> Option<(usize, usize)> {
    let skip_whitespace = |mut at: usize| {
        while input.get(at).copied().is_some_and(is_json_whitespace) {
            at += 1;
        }
        at
    };
    let start = skip_whitespace(from);
    let mut end = start;
    if input.get(end) == Some(&b'-') {
        end += 1;
    }
    let digits_start = end;
    while input.get(end).is_some_and(u8::is_ascii_digit) {
        end += 1;
    }
    if end == digits_start {
        return None;
    }
    (input.get(skip_whitespace(end)) == Some(&b':')).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn bare_numeric_keys_get_quoted_and_nothing_else_changes() {
        let legacy = br#"{"brokerAddrs":{0:"10.0.0.1:10911", 1 :"x,{2:y}", -3:"z"},"n":[1,2]}"#;
        let fixed = quote_bare_numeric_keys(legacy);
        assert_eq!(
            std::str::from_utf8(&fixed).expect("utf8"),
            r#"{"brokerAddrs":{"0":"10.0.0.1:10911", "1" :"x,{2:y}", "-3":"z"},"n":[1,2]}"#
        );
        let standard = br#"{"a":{"0":"b"},"c":[0,1],"d":"{0:1}","e":"\"{0:1}"}"#;
        assert!(matches!(
            quote_bare_numeric_keys(standard),
            Cow::Borrowed(_)
        ));
        // Truncated input must not panic.
        for cut in 0..legacy.len() {
            let _ = quote_bare_numeric_keys(&legacy[..cut]);
        }
        let _ = quote_bare_numeric_keys(br#"{"a\"#);
        let _ = quote_bare_numeric_keys(b"{-:1}");
    }

    #[test]
    fn decode_json_accepts_trailing_newline_and_names_the_type_on_error() {
        let table: KvTable = decode_json(b"{\"table\":{\"k\":\"v\"}}\n").expect("valid");
        assert_eq!(table.table, BTreeMap::from([("k".into(), "v".into())]));

        let error = decode_json::<KvTable>(b"{\"table\":").expect_err("truncated");
        assert!(error.to_string().starts_with("KvTable: "), "{error}");
        assert!(matches!(
            decode_json::<KvTable>(b" \n"),
            Err(BodyError::Missing { body: "KvTable" })
        ));
        assert!(matches!(
            decode_json_body::<KvTable>(None),
            Err(BodyError::Missing { .. })
        ));
        let error = decode_json::<KvTable>(b"{} trailing").expect_err("trailing garbage");
        assert!(matches!(error, BodyError::Malformed { .. }));
    }
}
