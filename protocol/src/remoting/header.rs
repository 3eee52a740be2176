//! The command header in its two encodings: JSON (spec §1.4) and the compact
//! ROCKETMQ binary form (spec §1.5).
//!
//! Decoding accepts what real clients send, not only what Java sends. Keys may
//! come in any order. `remark`, `extFields` and `serializeTypeCurrentRPC` may be
//! missing or null, and unknown keys are ignored. `language` may be a name or a
//! number. extFields values may be numbers or booleans instead of strings; they
//! are turned into strings the way Java's `toString()` would write them. Text
//! may be followed by whitespace (C++ ends its JSON with `\n`).
//!
//! Encoding JSON reproduces the output of a Java server: keys in alphabetical
//! order, null members left out, no whitespace, `serializeTypeCurrentRPC`
//! present.
//!
//! Both decoders check every length against the bytes actually present before
//! allocating anything for it, and build error messages without quoting
//! client-sized text.

use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use thiserror::Error;

use super::command::RemotingCommand;
use super::ext_fields::ExtFields;
use super::frame::SerializeType;
use super::language::LanguageCode;

/// Size of the fixed part of a binary header: code, language, version, opaque,
/// flag, remark length and ext-fields length.
pub const BINARY_HEADER_FIXED_BYTES: usize = 2 + 1 + 2 + 4 + 4 + 4 + 4;

/// Longest ext-field key the binary header can carry (its length is an i16).
pub const MAX_BINARY_KEY_BYTES: usize = i16::MAX as usize;

/// Value Java writes for `serializeTypeCurrentRPC`. Receivers ignore it, but it is
/// part of Java's exact output.
const SERIALIZE_TYPE_CURRENT_RPC: &str = "JSON";

/// Why a header could not be decoded or encoded. A header that does not decode
/// leaves the stream in sync (the frame was cut correctly), but Java closes the
/// connection on any decode error and clients expect no answer. Do the same.
#[derive(Debug, Error)]
pub enum HeaderCodecError {
    /// The JSON header is not valid JSON or lacks `code`.
    #[error("malformed JSON header: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON header is valid JSON but not an object.
    #[error("JSON header is not an object")]
    JsonNotAnObject,
    /// A binary header field runs past the end of the header.
    #[error("binary header truncated: `{field}` needs {needed} bytes, {available} left")]
    Truncated {
        /// Which field was being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the header (or in the ext-fields area).
        available: usize,
    },
    /// A binary header length field is negative.
    #[error("binary header field `{field}` has negative length {length}")]
    NegativeLength {
        /// Which length field.
        field: &'static str,
        /// The value as read.
        length: i32,
    },
    /// Encoding: the binary header's code field is an i16.
    #[error("code {code} does not fit the binary header's 16-bit code field; use JSON")]
    CodeNotRepresentable {
        /// The code that does not fit.
        code: i32,
    },
    /// Encoding: the binary header's version field is an i16.
    #[error("version {version} does not fit the binary header's 16-bit version field; use JSON")]
    VersionNotRepresentable {
        /// The version that does not fit.
        version: i32,
    },
    /// Encoding: a binary header length field would overflow.
    #[error("binary header field `{field}` of {length} bytes is longer than its length field allows ({max})")]
    TooLongForBinary {
        /// Which field.
        field: &'static str,
        /// Its length in bytes.
        length: usize,
        /// What the length field can hold.
        max: usize,
    },
}

/// Decodes a header in the given encoding. The returned command has no body.
pub fn decode(
    serialize_type: SerializeType,
    header: &[u8],
) -> Result<RemotingCommand, HeaderCodecError> {
    match serialize_type {
        SerializeType::Json => decode_json(header),
        SerializeType::RocketMq => decode_binary(header),
    }
}

/// Appends the header of `command` to `out` in the given encoding. The body is not
/// written. On error `out` may hold a partial header; the caller truncates.
pub fn encode(
    serialize_type: SerializeType,
    command: &RemotingCommand,
    out: &mut BytesMut,
) -> Result<(), HeaderCodecError> {
    match serialize_type {
        SerializeType::Json => encode_json(command, out),
        SerializeType::RocketMq => encode_binary(command, out),
    }
}

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct JsonHeaderIn {
    #[serde(deserialize_with = "required_i32")]
    code: i32,
    #[serde(default = "unstated_language", deserialize_with = "lenient_language")]
    language: LanguageCode,
    #[serde(default, deserialize_with = "optional_i32")]
    version: Option<i32>,
    #[serde(default, deserialize_with = "optional_i32")]
    opaque: Option<i32>,
    #[serde(default, deserialize_with = "optional_i32")]
    flag: Option<i32>,
    #[serde(default, deserialize_with = "lenient_text")]
    remark: Option<String>,
    #[serde(default, rename = "extFields", deserialize_with = "lenient_ext_fields")]
    ext_fields: Option<ExtFields>,
}

/// A header without `language` says nothing about its sender.
fn unstated_language() -> LanguageCode {
    LanguageCode::Other
}

/// Decodes a JSON header. The returned command has no body.
pub fn decode_json(header: &[u8]) -> Result<RemotingCommand, HeaderCodecError> {
    // Checked up front: serde's "invalid type" error for a top-level string would
    // quote the whole string, which a client can make megabytes long.
    if header.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
        return Err(HeaderCodecError::JsonNotAnObject);
    }
    let parsed: JsonHeaderIn = serde_json::from_slice(header)?;
    Ok(RemotingCommand {
        code: parsed.code,
        language: parsed.language,
        version: parsed.version.unwrap_or_default(),
        opaque: parsed.opaque.unwrap_or_default(),
        flag: parsed.flag.unwrap_or_default(),
        remark: parsed.remark,
        ext_fields: parsed.ext_fields,
        body: None,
        body_parts: Vec::new(),
    })
}

/// Appends the JSON header of `command` to `out`, in Java's exact output form:
/// keys in alphabetical order (fastjson sorts), null members left out, no
/// whitespace. Written by hand, since every response passes through here and
/// its shape never varies; strings are escaped as serde_json escapes them.
pub fn encode_json(command: &RemotingCommand, out: &mut BytesMut) -> Result<(), HeaderCodecError> {
    let mut number = itoa::Buffer::new();
    out.reserve(
        128 + command
            .ext_fields
            .as_ref()
            .map_or(0, |f| 6 * f.len() + f.text_len()),
    );
    out.put_slice(b"{\"code\":");
    out.put_slice(number.format(command.code).as_bytes());
    if let Some(fields) = &command.ext_fields {
        out.put_slice(b",\"extFields\":{");
        for (at, (key, value)) in fields.iter().enumerate() {
            if at > 0 {
                out.put_u8(b',');
            }
            put_json_str(out, key);
            out.put_u8(b':');
            put_json_str(out, value);
        }
        out.put_u8(b'}');
    }
    out.put_slice(b",\"flag\":");
    out.put_slice(number.format(command.flag).as_bytes());
    out.put_slice(b",\"language\":\"");
    out.put_slice(command.language.name().as_bytes());
    out.put_slice(b"\",\"opaque\":");
    out.put_slice(number.format(command.opaque).as_bytes());
    if let Some(remark) = &command.remark {
        out.put_slice(b",\"remark\":");
        put_json_str(out, remark);
    }
    out.put_slice(b",\"serializeTypeCurrentRPC\":\"");
    out.put_slice(SERIALIZE_TYPE_CURRENT_RPC.as_bytes());
    out.put_slice(b"\",\"version\":");
    out.put_slice(number.format(command.version).as_bytes());
    out.put_u8(b'}');
    Ok(())
}

/// A JSON string as serde_json writes it: `"` and `\\` escaped, control
/// characters as their short escapes or `\u00XX`, everything else (non-ASCII
/// included) as it is.
fn put_json_str(out: &mut BytesMut, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    out.put_u8(b'"');
    let mut clean_from = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let short: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.put_slice(&bytes[clean_from..at]);
        clean_from = at + 1;
        if short.is_empty() {
            out.put_slice(b"\\u00");
            out.put_u8(HEX[usize::from(byte >> 4)]);
            out.put_u8(HEX[usize::from(byte & 0xf)]);
        } else {
            out.put_slice(short);
        }
    }
    out.put_slice(&bytes[clean_from..]);
    out.put_u8(b'"');
}

/// Accepts an i32 given as a JSON number or a decimal string (fastjson coerces
/// strings, so some clients may rely on it). Null means "not given".
struct LenientI32;

impl<'de> Visitor<'de> for LenientI32 {
    type Value = Option<i32>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a 32-bit integer")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        i32::try_from(value)
            .map(Some)
            .map_err(|_| E::invalid_value(Unexpected::Signed(value), &self))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        i32::try_from(value)
            .map(Some)
            .map_err(|_| E::invalid_value(Unexpected::Unsigned(value), &self))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        value.parse().map(Some).map_err(|_| {
            E::invalid_value(
                Unexpected::Other("a string that is not a 32-bit integer"),
                &self,
            )
        })
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

fn optional_i32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i32>, D::Error> {
    deserializer.deserialize_any(LenientI32)
}

fn required_i32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    deserializer
        .deserialize_any(LenientI32)?
        .ok_or_else(|| de::Error::invalid_type(Unexpected::Unit, &LenientI32))
}

/// Accepts a language as its name or its byte code. Anything unknown becomes
/// `OTHER`: the field is informational and not worth dropping a client over.
struct LenientLanguage;

impl<'de> Visitor<'de> for LenientLanguage {
    type Value = LanguageCode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a language name or code")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(LanguageCode::from_name_lenient(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(u8::try_from(value).map_or(LanguageCode::Other, LanguageCode::from_code_lenient))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(u8::try_from(value).map_or(LanguageCode::Other, LanguageCode::from_code_lenient))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(unstated_language())
    }
}

fn lenient_language<'de, D: Deserializer<'de>>(deserializer: D) -> Result<LanguageCode, D::Error> {
    deserializer.deserialize_any(LenientLanguage)
}

/// Accepts any JSON value as text, the way Java's `toString()` would have
/// written it: strings as they are, numbers in decimal, booleans as
/// `true`/`false`, objects and arrays as compact JSON. Null means "not given".
struct LenientText;

impl<'de> Visitor<'de> for LenientText {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Some(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
        Ok(Some(value))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
        Ok(Some(value.to_string()))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Some(value.to_string()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Some(value.to_string()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        // serde_json's float formatting keeps a fraction (`1.0`, as Java's
        // Double.toString does), where Rust's Display would write `1`.
        Ok(Some(serde_json::Number::from_f64(value).map_or_else(
            || value.to_string(),
            |number| number.to_string(),
        )))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let value = serde_json::Value::deserialize(MapAccessDeserializer::new(map))?;
        Ok(Some(value.to_string()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let value = serde_json::Value::deserialize(SeqAccessDeserializer::new(seq))?;
        Ok(Some(value.to_string()))
    }
}

fn lenient_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    deserializer.deserialize_any(LenientText)
}

/// Appends one extFields key to the map's text; its value is the key's length.
struct AppendKey<'a>(&'a mut String);

impl<'de> de::DeserializeSeed<'de> for AppendKey<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for AppendKey<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a header field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<usize, E> {
        self.0.push_str(key);
        Ok(key.len())
    }
}

/// Appends one extFields value to the map's text, read as [`LenientText`]
/// reads it; its value is false for null (the pair is dropped, as Java drops
/// null header fields). Strings and integers, all that real clients send, go
/// straight into the text.
struct AppendValue<'a>(&'a mut String);

impl<'de> de::DeserializeSeed<'de> for AppendValue<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl AppendValue<'_> {
    fn push(self, text: Option<String>) -> bool {
        text.map(|text| self.0.push_str(&text)).is_some()
    }
}

impl<'de> Visitor<'de> for AppendValue<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<bool, E> {
        self.0.push_str(value);
        Ok(true)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<bool, E> {
        self.0.push_str(if value { "true" } else { "false" });
        Ok(true)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<bool, E> {
        self.0.push_str(itoa::Buffer::new().format(value));
        Ok(true)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<bool, E> {
        self.0.push_str(itoa::Buffer::new().format(value));
        Ok(true)
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<bool, E> {
        Ok(self.push(LenientText.visit_f64(value)?))
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        Ok(self.push(LenientText.visit_map(map)?))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        Ok(self.push(LenientText.visit_seq(seq)?))
    }
}

/// Accepts extFields as an object (values read with [`AppendValue`]) or null.
struct LenientExtFields;

impl<'de> Visitor<'de> for LenientExtFields {
    type Value = Option<ExtFields>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of header fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // Sized for a send header, the most common request.
        let mut fields = ExtFields::with_capacity(16, 512);
        loop {
            let start = fields.text_mut().len();
            let Some(key_len) = map.next_key_seed(AppendKey(fields.text_mut()))? else {
                break;
            };
            if map.next_value_seed(AppendValue(fields.text_mut()))? {
                fields.finish_pair(start, key_len);
            } else {
                fields.abandon_pair(start);
            }
        }
        Ok(Some(fields))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    // serde's default would quote the string in the error.
    fn visit_str<E: de::Error>(self, _value: &str) -> Result<Self::Value, E> {
        Err(E::invalid_type(Unexpected::Other("a string"), &self))
    }
}

fn lenient_ext_fields<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ExtFields>, D::Error> {
    deserializer.deserialize_any(LenientExtFields)
}

// ---------------------------------------------------------------------------
// ROCKETMQ binary
// ---------------------------------------------------------------------------

/// Reads big-endian fields off the front of a header, checking each length
/// against what is left before touching or allocating anything.
struct BinaryReader<'a> {
    rest: &'a [u8],
}

impl<'a> BinaryReader<'a> {
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], HeaderCodecError> {
        let (head, rest) =
            self.rest
                .split_first_chunk::<N>()
                .ok_or(HeaderCodecError::Truncated {
                    field,
                    needed: N,
                    available: self.rest.len(),
                })?;
        self.rest = rest;
        Ok(*head)
    }

    fn bytes(&mut self, length: usize, field: &'static str) -> Result<&'a [u8], HeaderCodecError> {
        if length > self.rest.len() {
            return Err(HeaderCodecError::Truncated {
                field,
                needed: length,
                available: self.rest.len(),
            });
        }
        let (head, rest) = self.rest.split_at(length);
        self.rest = rest;
        Ok(head)
    }

    fn length(length: i32, field: &'static str) -> Result<usize, HeaderCodecError> {
        usize::try_from(length).map_err(|_| HeaderCodecError::NegativeLength { field, length })
    }

    /// Bytes with an i32 length in front.
    fn bytes_i32(
        &mut self,
        length_field: &'static str,
        field: &'static str,
    ) -> Result<&'a [u8], HeaderCodecError> {
        let length =
            BinaryReader::length(i32::from_be_bytes(self.array(length_field)?), length_field)?;
        self.bytes(length, field)
    }

    /// Bytes with an i16 length in front.
    fn bytes_i16(
        &mut self,
        length_field: &'static str,
        field: &'static str,
    ) -> Result<&'a [u8], HeaderCodecError> {
        let length = i16::from_be_bytes(self.array(length_field)?);
        let length = BinaryReader::length(i32::from(length), length_field)?;
        self.bytes(length, field)
    }

    /// A string with an i32 length in front. Length 0 means null (Java writes
    /// null and "" the same way). Invalid UTF-8 is replaced, as Java's
    /// `new String(bytes, UTF_8)` does.
    fn text_i32(
        &mut self,
        length_field: &'static str,
        field: &'static str,
    ) -> Result<Option<String>, HeaderCodecError> {
        let bytes = self.bytes_i32(length_field, field)?;
        Ok((!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes).into_owned()))
    }
}

/// Decodes a ROCKETMQ binary header. The returned command has no body.
///
/// Wire rules kept from Java: a zero-length remark, key or value reads as
/// absent; a repeated key keeps its last value; `extLen == 0` means no
/// extFields at all. Bytes after the ext-fields area are ignored, as Java
/// ignores them.
pub fn decode_binary(header: &[u8]) -> Result<RemotingCommand, HeaderCodecError> {
    let mut reader = BinaryReader { rest: header };
    let code = i16::from_be_bytes(reader.array("code")?);
    let [language] = reader.array("language")?;
    let version = i16::from_be_bytes(reader.array("version")?);
    let opaque = i32::from_be_bytes(reader.array("opaque")?);
    let flag = i32::from_be_bytes(reader.array("flag")?);
    let remark = reader.text_i32("remarkLen", "remark")?;

    let ext_length = BinaryReader::length(i32::from_be_bytes(reader.array("extLen")?), "extLen")?;
    let mut ext_reader = BinaryReader {
        rest: reader.bytes(ext_length, "extFields")?,
    };
    let mut ext_fields = None;
    // Every entry consumes at least its 6 length bytes, so this loop ends.
    while !ext_reader.rest.is_empty() {
        let key = ext_reader.bytes_i16("ext key length", "ext key")?;
        let value = ext_reader.bytes_i32("ext value length", "ext value")?;
        let fields = ext_fields.get_or_insert_with(|| ExtFields::with_capacity(16, ext_length));
        if !key.is_empty() && !value.is_empty() {
            fields.insert(String::from_utf8_lossy(key), String::from_utf8_lossy(value));
        }
    }

    Ok(RemotingCommand {
        code: i32::from(code),
        language: LanguageCode::from_code_lenient(language),
        version: i32::from(version),
        opaque,
        flag,
        remark,
        ext_fields,
        body: None,
        body_parts: Vec::new(),
    })
}

fn binary_length_i32(field: &'static str, length: usize) -> Result<i32, HeaderCodecError> {
    i32::try_from(length).map_err(|_| HeaderCodecError::TooLongForBinary {
        field,
        length,
        max: i32::MAX as usize,
    })
}

/// Appends the ROCKETMQ binary header of `command` to `out`.
///
/// Fails on a code or version outside i16 (Java would truncate silently and send
/// a different code). Empty keys and values are not written: the receiver would
/// read them as absent anyway.
pub fn encode_binary(
    command: &RemotingCommand,
    out: &mut BytesMut,
) -> Result<(), HeaderCodecError> {
    let code = i16::try_from(command.code)
        .map_err(|_| HeaderCodecError::CodeNotRepresentable { code: command.code })?;
    let version =
        i16::try_from(command.version).map_err(|_| HeaderCodecError::VersionNotRepresentable {
            version: command.version,
        })?;
    let remark = command.remark.as_deref().unwrap_or_default();

    out.reserve(BINARY_HEADER_FIXED_BYTES + remark.len());
    out.put_i16(code);
    out.put_u8(command.language.code());
    out.put_i16(version);
    out.put_i32(command.opaque);
    out.put_i32(command.flag);
    out.put_i32(binary_length_i32("remark", remark.len())?);
    out.put_slice(remark.as_bytes());

    let ext_length_at = out.len();
    out.put_i32(0);
    let entries = command
        .ext_fields
        .iter()
        .flatten()
        .filter(|(key, value)| !key.is_empty() && !value.is_empty());
    for (key, value) in entries {
        let key_length =
            i16::try_from(key.len()).map_err(|_| HeaderCodecError::TooLongForBinary {
                field: "ext key",
                length: key.len(),
                max: MAX_BINARY_KEY_BYTES,
            })?;
        out.put_i16(key_length);
        out.put_slice(key.as_bytes());
        out.put_i32(binary_length_i32("ext value", value.len())?);
        out.put_slice(value.as_bytes());
    }
    let ext_length = binary_length_i32("extFields", out.len() - ext_length_at - 4)?;
    out[ext_length_at..ext_length_at + 4].copy_from_slice(&ext_length.to_be_bytes());
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::remoting::alloc_probe::largest_allocation_during;
    use crate::remoting::command::{ONEWAY_FLAG, RESPONSE_FLAG};
    use crate::remoting::version;
    use proptest::prelude::*;

    /// Cases per property test.
    const CASES: u32 = 1024;

    /// The route request of spec §1.4 / Appendix A, byte for byte.
    pub(crate) const SPEC_ROUTE_REQUEST_JSON: &str = r#"{"code":105,"extFields":{"topic":"T"},"flag":0,"language":"JAVA","opaque":1,"serializeTypeCurrentRPC":"JSON","version":479}"#;

    /// The §1.5 worked example: the same request as a binary header (33 bytes).
    const SPEC_ROUTE_REQUEST_BINARY: [u8; 33] = [
        0x00, 0x69, // code 105
        0x00, // language JAVA
        0x01, 0xDF, // version 479
        0x00, 0x00, 0x00, 0x01, // opaque 1
        0x00, 0x00, 0x00, 0x00, // flag 0
        0x00, 0x00, 0x00, 0x00, // remarkLen 0
        0x00, 0x00, 0x00, 0x0C, // extLen 12
        0x00, 0x05, b't', b'o', b'p', b'i', b'c', // key "topic"
        0x00, 0x00, 0x00, 0x01, b'T', // value "T"
    ];

    pub(crate) fn spec_route_request() -> RemotingCommand {
        RemotingCommand {
            code: 105,
            language: LanguageCode::Java,
            version: 479,
            opaque: 1,
            flag: 0,
            remark: None,
            ext_fields: Some(ExtFields::from([("topic".to_owned(), "T".to_owned())])),
            body: None,
            body_parts: Vec::new(),
        }
    }

    fn json_of(command: &RemotingCommand) -> String {
        let mut out = BytesMut::new();
        encode_json(command, &mut out).expect("JSON encoding of plain data");
        String::from_utf8(out.to_vec()).expect("serde_json writes UTF-8")
    }

    fn decode_json_str(text: &str) -> RemotingCommand {
        decode_json(text.as_bytes()).expect("valid header")
    }

    #[test]
    fn spec_route_request_json_round_trips_byte_for_byte() {
        assert_eq!(SPEC_ROUTE_REQUEST_JSON.len(), 123);
        assert_eq!(
            decode_json_str(SPEC_ROUTE_REQUEST_JSON),
            spec_route_request()
        );
        assert_eq!(json_of(&spec_route_request()), SPEC_ROUTE_REQUEST_JSON);
    }

    #[test]
    fn responses_match_java_output() {
        let response = RemotingCommand::new_response(0, None).reply_to(&spec_route_request());
        assert_eq!(
            json_of(&response),
            r#"{"code":0,"flag":1,"language":"JAVA","opaque":1,"serializeTypeCurrentRPC":"JSON","version":479}"#
        );
        let with_remark = RemotingCommand::new_response(17, Some("No topic route info".to_owned()))
            .reply_to(&spec_route_request())
            .with_ext("b", 2)
            .with_ext("a", 1);
        assert_eq!(
            json_of(&with_remark),
            r#"{"code":17,"extFields":{"a":"1","b":"2"},"flag":1,"language":"JAVA","opaque":1,"remark":"No topic route info","serializeTypeCurrentRPC":"JSON","version":479}"#
        );
    }

    #[test]
    fn an_empty_ext_map_is_sent_as_an_empty_object() {
        let mut response = RemotingCommand::new_response(0, None);
        response.ext_fields_mut();
        assert!(json_of(&response).contains(r#""extFields":{}"#));
    }

    #[test]
    fn control_characters_are_escaped_and_non_ascii_is_raw() {
        let command = RemotingCommand::new_request(310).with_ext("i", "KEYS\u{1}k\u{2}TAGS\u{1}é");
        let json = json_of(&command);
        assert!(
            json.contains(r#""i":"KEYS\u0001k\u0002TAGS\u0001é""#),
            "{json}"
        );
        assert_eq!(decode_json_str(&json), command);
    }

    #[test]
    fn go_client_header_in_struct_order() {
        let command = decode_json_str(
            r#"{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"topic":"T"}}"#,
        );
        assert_eq!(command.code, 105);
        assert_eq!(command.language, LanguageCode::Go);
        assert_eq!(command.version, version::V4_5_2);
        assert_eq!(command.remark.as_deref(), Some(""));
        assert_eq!(command.ext_str("topic"), Ok("T"));
    }

    #[test]
    fn cpp_client_header_with_empty_acl_keys_and_trailing_newline() {
        let command = decode_json_str(
            "{\"code\":34,\"extFields\":{\"AccessKey\":\"\",\"Signature\":\"\",\"OnsChannel\":\"\"},\"flag\":0,\"language\":\"CPP\",\"opaque\":7,\"remark\":\"\",\"version\":0}\n",
        );
        assert_eq!(command.language, LanguageCode::Cpp);
        assert_eq!(command.opaque, 7);
        assert_eq!(command.ext_str_opt("AccessKey"), None);
        assert_eq!(command.ext_str_opt("Signature"), None);
    }

    #[test]
    fn numeric_and_boolean_ext_values_become_java_strings() {
        let command = decode_json_str(
            r#"{"code":15,"extFields":{"queueId":3,"commitOffset":1700000000000,"offset":-1,"unitMode":false,"ratio":1.0,"nested":{"b":[1,true]},"gone":null,"topic":"T"},"flag":2,"language":"JAVA","opaque":9,"version":479}"#,
        );
        let fields = command.ext_fields.as_ref().expect("extFields given");
        assert_eq!(&fields["queueId"], "3");
        assert_eq!(&fields["commitOffset"], "1700000000000");
        assert_eq!(&fields["offset"], "-1");
        assert_eq!(&fields["unitMode"], "false");
        assert_eq!(&fields["ratio"], "1.0");
        assert_eq!(&fields["nested"], r#"{"b":[1,true]}"#);
        assert!(!fields.contains_key("gone"));
        assert_eq!(command.ext_i32("queueId"), Ok(3));
        assert_eq!(command.ext_i64("commitOffset"), Ok(1_700_000_000_000));
        assert_eq!(command.ext_bool("unitMode"), Ok(false));
        assert!(command.is_oneway());
    }

    #[test]
    fn missing_optional_keys_null_remark_and_unknown_keys_are_accepted() {
        let command = decode_json_str(
            r#"{"opaque":4,"remark":null,"extFields":null,"futureKey":{"x":[1,2]},"code":11,"flag":1}"#,
        );
        assert_eq!(command.code, 11);
        assert_eq!(command.opaque, 4);
        assert!(command.is_response());
        assert_eq!(command.remark, None);
        assert_eq!(command.ext_fields, None);
        assert_eq!(command.language, LanguageCode::Other);
        assert_eq!(command.version, 0);
    }

    #[test]
    fn language_may_be_a_name_a_number_or_unknown() {
        for (language, expected) in [
            (r#""GO""#, LanguageCode::Go),
            (r#""rust""#, LanguageCode::Rust),
            ("9", LanguageCode::Go),
            ("13", LanguageCode::NodeJs),
            (r#""KOTLIN""#, LanguageCode::Other),
            ("99", LanguageCode::Other),
            ("-1", LanguageCode::Other),
            ("null", LanguageCode::Other),
        ] {
            let command = decode_json_str(&format!(r#"{{"code":1,"language":{language}}}"#));
            assert_eq!(command.language, expected, "language {language}");
        }
    }

    #[test]
    fn numbers_given_as_strings_are_accepted() {
        let command = decode_json_str(r#"{"code":"105","opaque":"-3","flag":"0","version":"479"}"#);
        assert_eq!(
            (command.code, command.opaque, command.version),
            (105, -3, 479)
        );
    }

    #[test]
    fn malformed_json_headers_are_errors() {
        for bad in [
            "",
            "   ",
            "[]",
            "\"a string\"",
            "{",
            r#"{"flag":0}"#,
            r#"{"code":null}"#,
            r#"{"code":1.5}"#,
            r#"{"code":2147483648}"#,
            r#"{"code":"abc"}"#,
            r#"{"code":1,"extFields":"topic=T"}"#,
            r#"{"code":1,"extFields":[1]}"#,
            r#"{"code":1} trailing"#,
        ] {
            assert!(decode_json(bad.as_bytes()).is_err(), "accepted {bad:?}");
        }
        let missing_code = decode_json(br#"{"flag":0}"#).map_err(|error| error.to_string());
        assert!(matches!(missing_code, Err(message) if message.contains("missing field `code`")));
    }

    #[test]
    fn deep_nesting_never_exhausts_the_stack() {
        const DEPTH: usize = 100_000;
        let nested = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
        // Values that are kept are built recursively; serde_json's depth limit
        // turns them into an error long before the stack runs out.
        for (before, after) in [
            (r#"{"code":1,"extFields":{"k":"#, "}}"),
            (r#"{"code":1,"remark":"#, "}"),
        ] {
            let json = format!("{before}{nested}{after}");
            assert!(
                decode_json(json.as_bytes()).is_err(),
                "accepted nesting after {before}"
            );
        }
        // Values of unknown keys are skipped without recursion, so any depth is
        // harmless there and the header stays usable.
        let json = format!(r#"{{"code":1,"unknown":{nested}}}"#);
        assert_eq!(
            decode_json(json.as_bytes())
                .expect("unknown key skipped")
                .code,
            1
        );
    }

    #[test]
    fn spec_binary_example_decodes_and_encodes_byte_for_byte() {
        assert_eq!(
            decode_binary(&SPEC_ROUTE_REQUEST_BINARY).expect("valid"),
            spec_route_request()
        );
        let mut out = BytesMut::new();
        encode_binary(&spec_route_request(), &mut out).expect("representable");
        assert_eq!(&out[..], &SPEC_ROUTE_REQUEST_BINARY);
    }

    fn binary_header(remark: &[u8], entries: &[(&[u8], &[u8])]) -> BytesMut {
        let mut out = BytesMut::new();
        out.put_i16(34);
        out.put_u8(LanguageCode::Go.code());
        out.put_i16(317);
        out.put_i32(5);
        out.put_i32(RESPONSE_FLAG | ONEWAY_FLAG);
        out.put_i32(remark.len() as i32);
        out.put_slice(remark);
        let ext: usize = entries
            .iter()
            .map(|(key, value)| 6 + key.len() + value.len())
            .sum();
        out.put_i32(ext as i32);
        for (key, value) in entries {
            out.put_i16(key.len() as i16);
            out.put_slice(key);
            out.put_i32(value.len() as i32);
            out.put_slice(value);
        }
        out
    }

    #[test]
    fn binary_zero_lengths_read_as_absent_and_repeated_keys_keep_the_last_value() {
        let header = binary_header(
            b"",
            &[(b"a", b"1"), (b"empty", b""), (b"", b"x"), (b"a", b"2")],
        );
        let command = decode_binary(&header).expect("valid");
        assert_eq!(command.remark, None);
        assert_eq!(
            command.ext_fields,
            Some(ExtFields::from([("a".to_owned(), "2".to_owned())]))
        );
        assert_eq!(command.language, LanguageCode::Go);
        assert!(command.is_response() && command.is_oneway());

        let no_ext = decode_binary(&binary_header(b"oops", &[])).expect("valid");
        assert_eq!(no_ext.remark.as_deref(), Some("oops"));
        assert_eq!(no_ext.ext_fields, None);
    }

    #[test]
    fn binary_trailing_bytes_are_ignored_and_bad_utf8_is_replaced() {
        let mut header = binary_header(b"\xFFok", &[(b"k", b"v")]);
        header.put_slice(b"trailing");
        let command = decode_binary(&header).expect("valid");
        assert_eq!(command.remark.as_deref(), Some("\u{FFFD}ok"));
        assert_eq!(command.ext_str("k"), Ok("v"));
    }

    #[test]
    fn binary_lengths_are_checked_before_allocating() {
        let mut huge_remark = BytesMut::from(&SPEC_ROUTE_REQUEST_BINARY[..13]);
        huge_remark.put_i32(i32::MAX);
        huge_remark.put_slice(&[0; 64]);
        let (result, largest) = largest_allocation_during(|| decode_binary(&huge_remark));
        assert!(matches!(
            result,
            Err(HeaderCodecError::Truncated { field: "remark", needed, available: 64 }) if needed == i32::MAX as usize
        ));
        assert!(largest < 1024, "allocated {largest} bytes");

        let mut negative_remark = BytesMut::from(&SPEC_ROUTE_REQUEST_BINARY[..13]);
        negative_remark.put_i32(-1);
        assert!(matches!(
            decode_binary(&negative_remark),
            Err(HeaderCodecError::NegativeLength {
                field: "remarkLen",
                length: -1
            })
        ));

        let mut long_ext = BytesMut::from(&SPEC_ROUTE_REQUEST_BINARY[..]);
        long_ext[20] = 13; // extLen 13, one more byte than present
        assert!(matches!(
            decode_binary(&long_ext),
            Err(HeaderCodecError::Truncated {
                field: "extFields",
                ..
            })
        ));

        let mut entry_overruns_area = BytesMut::from(&SPEC_ROUTE_REQUEST_BINARY[..]);
        entry_overruns_area[20] = 11; // the value's last byte falls outside extLen
        entry_overruns_area.truncate(32);
        assert!(matches!(
            decode_binary(&entry_overruns_area),
            Err(HeaderCodecError::Truncated {
                field: "ext value",
                ..
            })
        ));

        let mut negative_key = BytesMut::from(&SPEC_ROUTE_REQUEST_BINARY[..]);
        negative_key[21] = 0xFF;
        assert!(matches!(
            decode_binary(&negative_key),
            Err(HeaderCodecError::NegativeLength {
                field: "ext key length",
                ..
            })
        ));

        for cut in 0..BINARY_HEADER_FIXED_BYTES {
            assert!(
                decode_binary(&SPEC_ROUTE_REQUEST_BINARY[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn binary_encoding_refuses_values_it_cannot_carry() {
        let mut out = BytesMut::new();
        let pop =
            RemotingCommand::new_request(crate::remoting::codes::request_code::POP_FAMILY_FIRST);
        assert!(matches!(
            encode_binary(&pop, &mut out),
            Err(HeaderCodecError::CodeNotRepresentable { code: 200_050 })
        ));
        let mut odd_version = RemotingCommand::new_request(10);
        odd_version.version = 40_000;
        assert!(matches!(
            encode_binary(&odd_version, &mut out),
            Err(HeaderCodecError::VersionNotRepresentable { version: 40_000 })
        ));
        let long_key =
            RemotingCommand::new_request(10).with_ext("k".repeat(MAX_BINARY_KEY_BYTES + 1), 1);
        assert!(matches!(
            encode_binary(&long_key, &mut out),
            Err(HeaderCodecError::TooLongForBinary {
                field: "ext key",
                ..
            })
        ));
    }

    fn language_strategy() -> impl Strategy<Value = LanguageCode> {
        proptest::sample::select(LanguageCode::ALL.to_vec())
    }

    prop_compose! {
        fn header_strategy(code: std::ops::RangeInclusive<i32>, version: std::ops::RangeInclusive<i32>)(
            code in code,
            language in language_strategy(),
            version in version,
            opaque in any::<i32>(),
            flag in any::<i32>(),
            remark in proptest::option::of(any::<String>()),
            ext_fields in proptest::option::of(proptest::collection::btree_map(any::<String>(), any::<String>(), 0..8)),
        ) -> RemotingCommand {
            let ext_fields = ext_fields.map(|map| map.into_iter().collect());
            RemotingCommand { code, language, version, opaque, flag, remark, ext_fields, body: None, body_parts: Vec::new() }
        }
    }

    /// What a command reads back as after a trip through the binary header: the
    /// encoding has no way to say "empty".
    pub(crate) fn as_binary_reads_it(mut command: RemotingCommand) -> RemotingCommand {
        command.remark = command.remark.filter(|remark| !remark.is_empty());
        if let Some(fields) = command.ext_fields.as_mut() {
            fields.retain(|key, value| !key.is_empty() && !value.is_empty());
        }
        command.ext_fields = command.ext_fields.filter(|fields| !fields.is_empty());
        command
    }

    /// Inputs that get past the first checks often: mostly-valid binary headers
    /// with random damage, mixed with random bytes.
    fn binary_input_strategy() -> impl Strategy<Value = Vec<u8>> {
        let damaged = (
            proptest::collection::vec(any::<u8>(), BINARY_HEADER_FIXED_BYTES..80),
            any::<i32>(),
            any::<i32>(),
        )
            .prop_map(|(mut bytes, remark_length, ext_length)| {
                bytes[13..17].copy_from_slice(&(remark_length & 0x3F).to_be_bytes());
                if ext_length % 2 == 0 {
                    bytes[17..21].copy_from_slice(&ext_length.to_be_bytes());
                }
                bytes
            });
        prop_oneof![proptest::collection::vec(any::<u8>(), 0..120), damaged]
    }

    proptest! {
        // Cheap cases; more of them make the never-panic properties worth more.
        #![proptest_config(ProptestConfig::with_cases(CASES))]
        #[test]
        fn json_header_round_trips(command in header_strategy(i32::MIN..=i32::MAX, i32::MIN..=i32::MAX)) {
            let mut out = BytesMut::new();
            encode_json(&command, &mut out).expect("JSON encoding of plain data");
            prop_assert_eq!(decode_json(&out).expect("own output decodes"), command);
        }

        /// The hand-written encoder writes what serde_json writes for the same
        /// object with sorted keys, escapes included.
        #[test]
        fn json_header_is_what_serde_json_writes(command in header_strategy(i32::MIN..=i32::MAX, i32::MIN..=i32::MAX)) {
            let mut out = BytesMut::new();
            encode_json(&command, &mut out).expect("JSON encoding of plain data");
            let mut object = serde_json::Map::new();
            object.insert("code".into(), command.code.into());
            if let Some(fields) = &command.ext_fields {
                let fields: serde_json::Map<String, serde_json::Value> =
                    fields.iter().map(|(k, v)| (k.to_owned(), v.into())).collect();
                object.insert("extFields".into(), fields.into());
            }
            object.insert("flag".into(), command.flag.into());
            object.insert("language".into(), command.language.name().into());
            object.insert("opaque".into(), command.opaque.into());
            if let Some(remark) = &command.remark {
                object.insert("remark".into(), remark.as_str().into());
            }
            object.insert("serializeTypeCurrentRPC".into(), SERIALIZE_TYPE_CURRENT_RPC.into());
            object.insert("version".into(), command.version.into());
            let expected = serde_json::to_string(&object).expect("plain data");
            prop_assert_eq!(std::str::from_utf8(&out).expect("UTF-8"), expected);
        }

        #[test]
        fn binary_header_round_trips(
            command in header_strategy(i16::MIN.into()..=i16::MAX.into(), i16::MIN.into()..=i16::MAX.into()),
        ) {
            let mut out = BytesMut::new();
            encode_binary(&command, &mut out).expect("fits the binary header");
            prop_assert_eq!(decode_binary(&out).expect("own output decodes"), as_binary_reads_it(command));
        }

        #[test]
        fn arbitrary_binary_headers_never_panic_or_over_allocate(input in binary_input_strategy()) {
            let (result, largest) = largest_allocation_during(|| decode_binary(&input));
            // Decoded strings are copies of input bytes (at most 3 bytes of
            // replacement character per bad byte); map nodes are fixed-size.
            prop_assert!(largest <= 3 * input.len() + 1024, "allocated {} for {} input bytes", largest, input.len());
            drop(result);
        }

        #[test]
        fn arbitrary_json_headers_never_panic_or_over_allocate(
            input in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..200),
                "\\{\"code\":[0-9]{1,12},\"extFields\":\\{(\"[a-z]{0,3}\":(\"[^\"]{0,8}\"|[0-9.e+-]{1,6}|true|null|\\[\\]|\\{\\}),?){0,6}\\},\"language\":(\"[A-Z_]{0,8}\"|[0-9-]{1,4})\\}\\s?"
                    .prop_map(String::into_bytes),
            ],
        ) {
            let (result, largest) = largest_allocation_during(|| decode_json(&input));
            prop_assert!(largest <= 2 * input.len() + 4096, "allocated {} for {} input bytes", largest, input.len());
            drop(result);
        }
    }
}
