//! `extFields`, the "custom header" of a command (spec §1.8), and typed access to
//! it.
//!
//! Every request and response type has its own set of header fields. On the wire
//! they are a flat string → string map whose keys are the Java field names and
//! whose values are Java `toString()` output. The getters here turn one value
//! back into the type the handler expects, and the errors name the field that
//! was missing or bad, so a handler can put that error in a response remark.
//!
//! Empty values count as absent. The binary header cannot carry an empty string
//! (length 0 reads back as null), and the C++ client fills `AccessKey` and
//! `Signature` with `""` when ACL is off. Treating `""` as absent makes JSON and
//! binary requests behave the same. The raw map is still available for the rare
//! code that needs the exact value.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::command::RemotingCommand;

/// The `extFields` map.
///
/// A `BTreeMap`, so that keys come out in the alphabetical order that Java's
/// fastjson writes. Encoded headers are then deterministic and match Java's byte
/// for byte.
pub type ExtFields = BTreeMap<String, String>;

/// At most this many characters of a bad value are quoted in a [`HeaderError`].
/// Values come from clients and can be megabytes long, and errors end up in logs
/// and response remarks.
pub const MAX_ERROR_VALUE_PREVIEW_CHARS: usize = 64;

/// A header field that a handler needs is missing or does not parse.
///
/// These errors are about request content, not framing: the connection stays
/// open and the handler answers with an error code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderError {
    /// The field is absent or empty.
    #[error("header field `{field}` is missing")]
    Missing {
        /// Java field name, as used on the wire.
        field: &'static str,
    },
    /// The field is present but its value is not of the expected type.
    #[error("header field `{field}` must be {expected}, got {value:?}")]
    Invalid {
        /// Java field name, as used on the wire.
        field: &'static str,
        /// What the value should have been, e.g. "a 32-bit integer".
        expected: &'static str,
        /// The start of the value as received (see [`MAX_ERROR_VALUE_PREVIEW_CHARS`]).
        value: String,
    },
}

impl HeaderError {
    fn invalid(field: &'static str, expected: &'static str, value: &str) -> HeaderError {
        let mut preview: String = value.chars().take(MAX_ERROR_VALUE_PREVIEW_CHARS).collect();
        if preview.len() < value.len() {
            preview.push('…');
        }
        HeaderError::Invalid {
            field,
            expected,
            value: preview,
        }
    }
}

/// Parses a number the way Java's `Integer.parseInt`/`Long.parseLong` do:
/// optional sign, decimal digits, nothing else (no spaces).
fn parse_number<T: FromStr>(
    field: &'static str,
    expected: &'static str,
    value: &str,
) -> Result<T, HeaderError> {
    value
        .parse()
        .map_err(|_| HeaderError::invalid(field, expected, value))
}

/// Java's `Boolean.parseBoolean`: `"true"` in any case is true, anything else
/// is false. Being stricter would reject requests that Java brokers accept.
fn parse_bool(value: &str) -> bool {
    value.eq_ignore_ascii_case("true")
}

const EXPECTED_I32: &str = "a 32-bit decimal integer";
const EXPECTED_I64: &str = "a 64-bit decimal integer";

impl RemotingCommand {
    /// The value of `field`, or `None` if it is absent or empty.
    pub fn ext_str_opt(&self, field: &str) -> Option<&str> {
        self.ext_fields
            .as_ref()?
            .get(field)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    /// The value of the mandatory field `field`.
    pub fn ext_str(&self, field: &'static str) -> Result<&str, HeaderError> {
        self.ext_str_opt(field)
            .ok_or(HeaderError::Missing { field })
    }

    /// The optional `Integer` field `field`: `Ok(None)` if absent or empty, an
    /// error if present but not a 32-bit decimal integer.
    ///
    /// Java would log a bad value and treat it as null. Here it is an error,
    /// because falling back to a default (e.g. "all queues" for a missing
    /// `queueId`) on garbage input is worse than refusing the request.
    pub fn ext_i32_opt(&self, field: &'static str) -> Result<Option<i32>, HeaderError> {
        self.ext_str_opt(field)
            .map(|value| parse_number(field, EXPECTED_I32, value))
            .transpose()
    }

    /// The mandatory `int`/`Integer` field `field`.
    pub fn ext_i32(&self, field: &'static str) -> Result<i32, HeaderError> {
        self.ext_i32_opt(field)?
            .ok_or(HeaderError::Missing { field })
    }

    /// The optional `Long` field `field`. See [`ext_i32_opt`](Self::ext_i32_opt).
    pub fn ext_i64_opt(&self, field: &'static str) -> Result<Option<i64>, HeaderError> {
        self.ext_str_opt(field)
            .map(|value| parse_number(field, EXPECTED_I64, value))
            .transpose()
    }

    /// The mandatory `long`/`Long` field `field`.
    pub fn ext_i64(&self, field: &'static str) -> Result<i64, HeaderError> {
        self.ext_i64_opt(field)?
            .ok_or(HeaderError::Missing { field })
    }

    /// The optional `Boolean` field `field`, with Java's rule: `"true"` in any
    /// case is true, any other non-empty value is false.
    pub fn ext_bool_opt(&self, field: &str) -> Option<bool> {
        self.ext_str_opt(field).map(parse_bool)
    }

    /// The mandatory `boolean`/`Boolean` field `field`.
    pub fn ext_bool(&self, field: &'static str) -> Result<bool, HeaderError> {
        self.ext_bool_opt(field)
            .ok_or(HeaderError::Missing { field })
    }

    /// Sets `field` to `value` formatted with `Display`. Integers and booleans
    /// then read exactly as Java's `toString()` writes them.
    pub fn set_ext(&mut self, field: impl Into<String>, value: impl fmt::Display) {
        self.ext_fields_mut()
            .insert(field.into(), value.to_string());
    }

    /// Builder form of [`set_ext`](Self::set_ext).
    pub fn with_ext(
        mut self,
        field: impl Into<String>,
        value: impl fmt::Display,
    ) -> RemotingCommand {
        self.set_ext(field, value);
        self
    }

    /// The ext-field map, created empty if there was none. A present but empty map
    /// is encoded as `"extFields":{}`. Send responses need that: Java clients read
    /// `MSG_REGION` from the map without a null check (spec §13 item 9).
    pub fn ext_fields_mut(&mut self) -> &mut ExtFields {
        self.ext_fields.get_or_insert_with(ExtFields::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command_with(fields: &[(&str, &str)]) -> RemotingCommand {
        let mut command = RemotingCommand::new_request(0);
        for (field, value) in fields {
            command.set_ext(*field, value);
        }
        command
    }

    #[test]
    fn typed_getters_parse_java_to_string_output() {
        let command = command_with(&[
            ("queueId", "3"),
            ("queueOffset", "-1"),
            ("bornTimestamp", "1700000000000"),
            ("unitMode", "FALSE"),
            ("batch", "True"),
            ("topic", "T"),
        ]);
        assert_eq!(command.ext_i32("queueId"), Ok(3));
        assert_eq!(command.ext_i64("queueOffset"), Ok(-1));
        assert_eq!(command.ext_i64("bornTimestamp"), Ok(1_700_000_000_000));
        assert_eq!(command.ext_bool("unitMode"), Ok(false));
        assert_eq!(command.ext_bool("batch"), Ok(true));
        assert_eq!(command.ext_str("topic"), Ok("T"));
    }

    #[test]
    fn missing_fields_are_named() {
        let command = command_with(&[]);
        assert_eq!(
            command.ext_str("topic"),
            Err(HeaderError::Missing { field: "topic" })
        );
        assert_eq!(
            command.ext_i32("queueId"),
            Err(HeaderError::Missing { field: "queueId" })
        );
        assert_eq!(command.ext_i32_opt("queueId"), Ok(None));
        assert_eq!(command.ext_bool_opt("unitMode"), None);
        assert_eq!(
            command
                .ext_bool("unitMode")
                .map_err(|error| error.to_string()),
            Err("header field `unitMode` is missing".to_owned())
        );
    }

    #[test]
    fn bad_numbers_name_the_field_and_quote_the_value() {
        let command = command_with(&[
            ("queueId", "3.0"),
            ("offset", " 5"),
            ("maxMsgNums", "2147483648"),
        ]);
        assert_eq!(
            command.ext_i32("queueId"),
            Err(HeaderError::Invalid {
                field: "queueId",
                expected: EXPECTED_I32,
                value: "3.0".to_owned()
            })
        );
        assert!(command.ext_i64_opt("offset").is_err());
        assert!(command.ext_i32("maxMsgNums").is_err());
        assert_eq!(command.ext_i64("maxMsgNums"), Ok(2_147_483_648));
        assert_eq!(
            command
                .ext_i32("queueId")
                .map_err(|error| error.to_string()),
            Err("header field `queueId` must be a 32-bit decimal integer, got \"3.0\"".to_owned())
        );
    }

    #[test]
    fn quoted_values_are_bounded() {
        let long_value = "x".repeat(10_000);
        let command = command_with(&[("queueId", &long_value)]);
        let Err(HeaderError::Invalid { value, .. }) = command.ext_i32("queueId") else {
            panic!("expected an invalid-value error");
        };
        assert_eq!(value.chars().count(), MAX_ERROR_VALUE_PREVIEW_CHARS + 1);
    }

    #[test]
    fn empty_values_count_as_absent() {
        // What the C++ client sends when ACL is off.
        let command = command_with(&[("AccessKey", ""), ("Signature", ""), ("queueId", "")]);
        assert_eq!(command.ext_str_opt("AccessKey"), None);
        assert_eq!(
            command.ext_str("Signature"),
            Err(HeaderError::Missing { field: "Signature" })
        );
        assert_eq!(command.ext_i32_opt("queueId"), Ok(None));
        assert_eq!(command.ext_fields.as_ref().map(ExtFields::len), Some(3));
    }

    #[test]
    fn setters_write_java_style_values() {
        let command = RemotingCommand::new_request(0)
            .with_ext("queueId", 7)
            .with_ext("committed", true)
            .with_ext("offset", -1i64);
        let fields = command.ext_fields.expect("fields were set");
        assert_eq!(fields["queueId"], "7");
        assert_eq!(fields["committed"], "true");
        assert_eq!(fields["offset"], "-1");
    }
}
