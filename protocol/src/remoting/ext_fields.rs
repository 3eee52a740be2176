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

use std::fmt::{self, Write as _};
use std::str::FromStr;

use thiserror::Error;

use super::command::RemotingCommand;

/// The `extFields` map: every key and value in one `String`, plus a key-sorted
/// index of where each pair sits in it.
///
/// A send header carries 13-16 fields. As a map of owned strings that was
/// about 30 allocations per request, decoded on one shard and freed on
/// another; here decoding a header costs two (the text and the index), and
/// building a response none once those two have grown. Keys iterate in
/// alphabetical order, the order Java's fastjson writes, so encoded headers
/// are deterministic and match Java's byte for byte.
#[derive(Clone, Default)]
pub struct ExtFields {
    /// Each pair as its key followed at once by its value; no separators,
    /// since the index holds the lengths.
    text: String,
    /// Sorted by key, no duplicate keys.
    index: Vec<Pair>,
}

/// Where one pair lives in [`ExtFields::text`]: the key at
/// `start..start + key_len`, the value right after it.
#[derive(Clone, Copy, Debug)]
struct Pair {
    start: u32,
    key_len: u32,
    value_len: u32,
}

impl Pair {
    fn key<'a>(&self, text: &'a str) -> &'a str {
        let start = self.start as usize;
        &text[start..start + self.key_len as usize]
    }

    fn value<'a>(&self, text: &'a str) -> &'a str {
        let start = (self.start + self.key_len) as usize;
        &text[start..start + self.value_len as usize]
    }

    fn end(&self) -> usize {
        (self.start + self.key_len + self.value_len) as usize
    }
}

/// Byte order of two short keys, by a plain loop: for the one- to
/// twenty-byte keys of headers that beats a call to `memcmp`.
fn compare(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// Text offsets are u32: a header is part of a frame, and frames are at most
/// 16 MiB (`frame::MAX_FRAME_BYTES`).
fn offset(at: usize) -> u32 {
    u32::try_from(at).expect("extFields text stays under 4 GiB: frames are at most 16 MiB")
}

impl ExtFields {
    /// An empty map; nothing is allocated until the first insert.
    pub const fn new() -> ExtFields {
        ExtFields {
            text: String::new(),
            index: Vec::new(),
        }
    }

    /// An empty map with room for `pairs` pairs of `text_bytes` bytes in all.
    pub fn with_capacity(pairs: usize, text_bytes: usize) -> ExtFields {
        ExtFields {
            text: String::with_capacity(text_bytes),
            index: Vec::with_capacity(pairs),
        }
    }

    /// How many pairs the map holds.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Bytes of key and value text in all.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// Whether the map holds no pairs.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Where `key` is, by a linear scan that compares lengths first: headers
    /// hold a dozen pairs with one-letter keys (send V2), where this beats a
    /// binary search whose every step is a `memcmp` call.
    fn position(&self, key: &str) -> Option<usize> {
        let (text, key) = (self.text.as_bytes(), key.as_bytes());
        self.index.iter().position(|pair| {
            let start = pair.start as usize;
            pair.key_len as usize == key.len()
                && text[start..start + key.len()]
                    .iter()
                    .zip(key)
                    .all(|(a, b)| a == b)
        })
    }

    /// Where `key` is, or where it would go to keep the index sorted.
    /// Keys usually arrive in order (Java and this crate write them sorted),
    /// so the end is tried first.
    fn find(&self, key: &str) -> Result<usize, usize> {
        let text = self.text.as_bytes();
        let key_of = |pair: &Pair| &text[pair.start as usize..(pair.start + pair.key_len) as usize];
        match self.index.last() {
            None => return Err(0),
            Some(last) if compare(key_of(last), key.as_bytes()).is_lt() => {
                return Err(self.index.len())
            }
            Some(_) => {}
        }
        self.index
            .binary_search_by(|pair| compare(key_of(pair), key.as_bytes()))
    }

    /// The value of `key`, empty values included.
    pub fn get(&self, key: &str) -> Option<&str> {
        let at = self.position(key)?;
        Some(self.index[at].value(&self.text))
    }

    /// Whether `key` is present, with any value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// The pairs in key order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            text: &self.text,
            pairs: self.index.iter(),
        }
    }

    /// Sets `key` to `value`, replacing an earlier value.
    pub fn insert(&mut self, key: impl AsRef<str>, value: impl AsRef<str>) {
        let (key, value) = (key.as_ref(), value.as_ref());
        match self.find(key) {
            Ok(at) => self.replace_value(at, value),
            Err(at) => {
                let start = self.text.len();
                self.text.push_str(key);
                self.text.push_str(value);
                self.index_tail(at, start, key.len());
            }
        }
    }

    /// Sets `key` to `value` formatted with `Display`, written straight into
    /// the map's text.
    pub fn insert_display(&mut self, key: &str, value: impl fmt::Display) {
        let at = match self.find(key) {
            // Dropped and written anew at the end: formatting in place would
            // need the new value's length first. The slot it leaves is
            // where the key sorts.
            Ok(at) => {
                let pair = self.index.remove(at);
                self.splice(pair.start as usize, pair.end(), "", None);
                at
            }
            Err(at) => at,
        };
        let start = self.text.len();
        self.text.push_str(key);
        let _ = write!(self.text, "{value}");
        self.index_tail(at, start, key.len());
    }

    /// Indexes the text from `start` to its end, a key of `key_len` bytes
    /// and its value, as the pair at position `at`.
    fn index_tail(&mut self, at: usize, start: usize, key_len: usize) {
        self.index.insert(
            at,
            Pair {
                start: offset(start),
                key_len: offset(key_len),
                value_len: offset(self.text.len() - start - key_len),
            },
        );
    }

    /// Appends the key of a pair being decoded; [`finish_pair`](Self::finish_pair)
    /// or [`abandon_pair`](Self::abandon_pair) must follow. Decoders write
    /// straight into the map this way, with no string of their own.
    pub(crate) fn text_mut(&mut self) -> &mut String {
        &mut self.text
    }

    /// Takes the text appended since `start` as one pair whose key is its
    /// first `key_len` bytes. A repeated key keeps its last value, as in Java.
    pub(crate) fn finish_pair(&mut self, start: usize, key_len: usize) {
        let key_end = start + key_len;
        match self.find(&self.text[start..key_end]) {
            Err(at) => self.index_tail(at, start, key_len),
            Ok(at) => {
                let value = self.text[key_end..].to_owned();
                self.text.truncate(start);
                self.replace_value(at, &value);
            }
        }
    }

    /// Drops the text appended since `start` (a pair with a null value).
    pub(crate) fn abandon_pair(&mut self, start: usize) {
        self.text.truncate(start);
    }

    /// Removes `key`; whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        let Ok(at) = self.find(key) else {
            return false;
        };
        let pair = self.index.remove(at);
        self.splice(pair.start as usize, pair.end(), "", None);
        true
    }

    /// Keeps only the pairs for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        let mut kept = ExtFields::with_capacity(self.len(), self.text.len());
        for (key, value) in self.iter() {
            if keep(key, value) {
                kept.insert(key, value);
            }
        }
        *self = kept;
    }

    fn replace_value(&mut self, at: usize, value: &str) {
        let pair = self.index[at];
        let value_start = (pair.start + pair.key_len) as usize;
        self.splice(value_start, pair.end(), value, Some(at));
        self.index[at].value_len = offset(value.len());
    }

    /// Replaces `text[from..to]` with `with` and moves every other pair that
    /// starts at or after `to`, so the text never holds dead bytes. (Pairs are
    /// written whole and in order, so no other pair starts inside the range.)
    fn splice(&mut self, from: usize, to: usize, with: &str, changed: Option<usize>) {
        self.text.replace_range(from..to, with);
        let (removed, added) = (offset(to - from), offset(with.len()));
        for (at, pair) in self.index.iter_mut().enumerate() {
            if Some(at) != changed && pair.start as usize >= to {
                pair.start = pair.start - removed + added;
            }
        }
    }
}

impl PartialEq for ExtFields {
    fn eq(&self, other: &ExtFields) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for ExtFields {}

impl fmt::Debug for ExtFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl std::ops::Index<&str> for ExtFields {
    type Output = str;

    fn index(&self, key: &str) -> &str {
        self.get(key).expect("no such extFields key")
    }
}

/// The pairs of an [`ExtFields`] in key order, as `(key, value)`.
pub struct Iter<'a> {
    text: &'a str,
    pairs: std::slice::Iter<'a, Pair>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let pair = self.pairs.next()?;
        Some((pair.key(self.text), pair.value(self.text)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.pairs.size_hint()
    }
}

impl<'a> IntoIterator for &'a ExtFields {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for ExtFields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> ExtFields {
        let mut fields = ExtFields::new();
        for (key, value) in pairs {
            fields.insert(key, value);
        }
        fields
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> From<[(K, V); N]> for ExtFields {
    fn from(pairs: [(K, V); N]) -> ExtFields {
        pairs.into_iter().collect()
    }
}

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
    pub fn set_ext(&mut self, field: impl AsRef<str>, value: impl fmt::Display) {
        self.ext_fields_mut().insert_display(field.as_ref(), value);
    }

    /// Builder form of [`set_ext`](Self::set_ext).
    pub fn with_ext(mut self, field: impl AsRef<str>, value: impl fmt::Display) -> RemotingCommand {
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
    use proptest::prelude::*;

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
        assert_eq!(&fields["queueId"], "7");
        assert_eq!(&fields["committed"], "true");
        assert_eq!(&fields["offset"], "-1");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(String, String),
        InsertDisplay(String, i64),
        Remove(String),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few, short keys, so that replacing and removing present keys is common.
        let key = "[a-d]{0,2}";
        prop_oneof![
            (key, ".{0,6}").prop_map(|(k, v)| Op::Insert(k, v)),
            (key, any::<i64>()).prop_map(|(k, v)| Op::InsertDisplay(k, v)),
            key.prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// Whatever mix of inserts, replacements and removals, the map reads
        /// exactly as a `BTreeMap` given the same operations.
        #[test]
        fn behaves_as_a_sorted_map(ops in proptest::collection::vec(op(), 0..40)) {
            let mut fields = ExtFields::new();
            let mut model = std::collections::BTreeMap::<String, String>::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        fields.insert(&k, &v);
                        model.insert(k, v);
                    }
                    Op::InsertDisplay(k, v) => {
                        fields.insert_display(&k, v);
                        model.insert(k, v.to_string());
                    }
                    Op::Remove(k) => {
                        prop_assert_eq!(fields.remove(&k), model.remove(&k).is_some());
                    }
                }
                let expected: Vec<(&str, &str)> =
                    model.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                prop_assert_eq!(fields.iter().collect::<Vec<_>>(), expected);
                prop_assert_eq!(fields.len(), model.len());
                let live: usize = model.iter().map(|(k, v)| k.len() + v.len()).sum();
                prop_assert_eq!(fields.text_len(), live, "no dead text is kept");
                for k in ["", "a", "ab", "d"] {
                    prop_assert_eq!(fields.get(k), model.get(k).map(String::as_str));
                }
            }
        }
    }
}
