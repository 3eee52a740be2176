//! RocketMQ's request signature (ACL 1.0 and 2.0 alike): Base64 of
//! HMAC-SHA1 keyed with the secret, over the values of the extFields sorted
//! by key, `Signature` left out, followed by the body.
//!
//! The server rebuilds the content from the fields as received, whatever set
//! the client sent, so every client's extra keys (`OnsChannel`,
//! `SecurityToken`, …) are covered without knowing them.

use base64::Engine as _;
use hmac::{Hmac, Mac};

use crate::remoting::ExtFields;

/// An access key and its secret, for the requests a server makes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

impl Credentials {
    /// Adds `AccessKey` and `Signature` to a request about to be sent.
    pub fn sign(&self, req: &mut crate::remoting::RemotingCommand) {
        let body = req.body.clone();
        let version = req.version;
        let fields = req.ext_fields_mut();
        fields.insert(ACCESS_KEY, &self.access_key);
        fields.remove(SIGNATURE);
        let sig = sign(
            &self.secret_key,
            fields,
            version,
            body.as_deref().unwrap_or(&[]),
        );
        fields.insert(SIGNATURE, sig);
    }
}

type HmacSha1 = Hmac<sha1::Sha1>;

/// The extFields key carrying the signature.
pub const SIGNATURE: &str = "Signature";
/// The extFields key naming the account.
pub const ACCESS_KEY: &str = "AccessKey";
/// Added by clients before 4.9.3 after they had signed (Java drops it from
/// the content for request versions up to V4_9_3).
const UNIQUE_KEY_QUERY: &str = "_UNIQUE_KEY_QUERY";
/// Java clients add these after signing when zone settings are used.
const ADDED_AFTER_SIGNING: [&str; 2] = ["__ZONE_NAME", "__ZONE_MODE"];
/// `MQVersion` ordinal of 4.9.3.
const V4_9_3: i32 = 399;

/// Whether `key` is part of the signed content of a request of `version`.
fn signed(key: &str, version: i32) -> bool {
    key != SIGNATURE
        && !ADDED_AFTER_SIGNING.contains(&key)
        && !(key == UNIQUE_KEY_QUERY && version <= V4_9_3)
}

fn mac(secret: &str, fields: &ExtFields, version: i32, body: &[u8]) -> HmacSha1 {
    // Any key length is valid for HMAC.
    let mut mac = HmacSha1::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    // A BTreeMap iterates in byte order, which is Java's String order for
    // every key a client sends (ASCII field names).
    for (k, v) in fields {
        if signed(k, version) {
            mac.update(v.as_bytes());
        }
    }
    mac.update(body);
    mac
}

/// The `Signature` a client with `secret` puts on a request.
pub fn sign(secret: &str, fields: &ExtFields, version: i32, body: &[u8]) -> String {
    let tag = mac(secret, fields, version, body).finalize().into_bytes();
    base64::engine::general_purpose::STANDARD.encode(tag)
}

/// Whether `signature` (as received, Base64) is what `secret` gives for
/// this request. The comparison takes the same time wherever it differs.
pub fn verify(
    secret: &str,
    fields: &ExtFields,
    version: i32,
    body: &[u8],
    signature: &str,
) -> bool {
    let Ok(tag) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    mac(secret, fields, version, body)
        .verify_slice(&tag)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> ExtFields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // The expected values were computed with Python's hmac and base64
    // modules, not with this code.
    #[test]
    fn matches_independent_vectors() {
        let f = fields(&[("topic", "T"), ("AccessKey", "ak")]);
        assert_eq!(sign("sk", &f, 0, b""), "vX6jW2Q9g11lvMjNC+gReuZ8fTQ=");
        assert_eq!(sign("sk", &f, 0, b"hello"), "BeXirCGb9JKM1s2jjMnmXJPeYLY=");
        let send = fields(&[
            ("AccessKey", "RocketMQ"),
            ("a", "TopicTest"),
            ("b", "DefaultCluster"),
            ("c", "TBW102"),
            ("d", "4"),
            ("e", "-1"),
            ("f", "0"),
            ("g", "1700000000000"),
            ("h", "0"),
            ("i", "UNIQ_KEY\u{1}ABC\u{2}WAIT\u{1}true\u{2}"),
            ("j", "0"),
            ("k", "false"),
            ("m", "false"),
        ]);
        assert_eq!(
            sign("12345678", &send, 0, b"hello body"),
            "QFm9l0ZS8MtNyc41cV/EUgajgKQ="
        );
        let utf8 = fields(&[
            ("AccessKey", "RocketMQ"),
            ("OnsChannel", "ALIYUN"),
            ("topic", "T\u{e9}st"),
        ]);
        assert_eq!(
            sign("12345678", &utf8, 0, b""),
            "XCcoSDwS9UsleLQjwZRy/MQ1T58="
        );
    }

    #[test]
    fn the_signature_field_itself_is_not_signed() {
        let mut f = fields(&[("topic", "T"), ("AccessKey", "ak")]);
        f.insert(SIGNATURE, "vX6jW2Q9g11lvMjNC+gReuZ8fTQ=");
        assert!(verify("sk", &f, 0, b"", "vX6jW2Q9g11lvMjNC+gReuZ8fTQ="));
    }

    #[test]
    fn any_change_fails_verification() {
        let f = fields(&[("topic", "T"), ("AccessKey", "ak")]);
        let good = sign("sk", &f, 0, b"hello");
        assert!(verify("sk", &f, 0, b"hello", &good));
        assert!(!verify("sk2", &f, 0, b"hello", &good));
        assert!(!verify("sk", &f, 0, b"hellO", &good));
        let other = fields(&[("topic", "U"), ("AccessKey", "ak")]);
        assert!(!verify("sk", &other, 0, b"hello", &good));
        assert!(!verify("sk", &f, 0, b"hello", "not base64!"));
        assert!(!verify("sk", &f, 0, b"hello", ""));
    }

    #[test]
    fn unique_key_query_is_left_out_for_old_clients_only() {
        let base = fields(&[("topic", "T"), ("AccessKey", "ak")]);
        let sig = sign("sk", &base, 0, b"");
        let mut with = base.clone();
        with.insert(UNIQUE_KEY_QUERY, "true");
        assert!(verify("sk", &with, 333, b"", &sig));
        assert!(!verify("sk", &with, 400, b"", &sig));
        with.insert("__ZONE_NAME", "z");
        assert!(verify("sk", &with, 333, b"", &sig));
    }
}
