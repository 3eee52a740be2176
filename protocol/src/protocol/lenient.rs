//! Field deserializers that accept what fastjson accepts, for use with
//! `#[serde(deserialize_with = "…")]`.
//!
//! Java servers parse bodies with fastjson, which coerces types, and every
//! client was only ever tested against that. So clients send things a strict
//! parser rejects (spec §5.3): the C++ client sends `subVersion` as a string,
//! the Go client sends `codeSet` elements as strings and `null` for empty
//! slices. These helpers accept:
//!
//! * [`int`]: a JSON integer, a float with no fraction, or a string holding an
//!   integer (surrounding whitespace allowed); `null` or `""` is the default.
//! * [`boolean`]: `true`/`false`, the strings `"true"`/`"false"` (any case) and
//!   `"1"`/`"0"`, the numbers 1/0; `null` or `""` is `false`.
//! * [`null_default`]: the field's own type, or `null` for its default.
//! * [`tag_codes`]: an array whose elements are read with the [`int`] rules;
//!   elements that are not numbers at all are dropped instead of failing the
//!   whole body, because tag codes are recomputed from the tags anyway.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Reads an integer that may be written as a string; `null`/`""` → default.
pub fn int<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128> + Default,
{
    match deserializer.deserialize_any(IntVisitor)? {
        Some(value) => T::try_from(value).map_err(|_| {
            de::Error::custom(format_args!(
                "integer {value} is out of range for {}",
                std::any::type_name::<T>()
            ))
        }),
        None => Ok(T::default()),
    }
}

/// Reads a boolean that may be written as a string or 0/1; `null`/`""` → false.
pub fn boolean<'de, D>(deserializer: D) -> Result<bool, D::Error>
where
    D: Deserializer<'de>,
{
    deserializer.deserialize_any(BoolVisitor)
}

/// Reads `T`, or its default for `null`.
pub fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// Reads an array of tag codes (`codeSet`): numbers or numeric strings are
/// kept, anything else (including a non-array value) is dropped.
pub fn tag_codes<'de, D>(deserializer: D) -> Result<Vec<i64>, D::Error>
where
    D: Deserializer<'de>,
{
    deserializer.deserialize_any(TagCodesVisitor)
}

/// Java enums arrive by name from Java and Go, but by number from the C++
/// client (its own enum values). These read either.
pub fn consume_type<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    enum_name(d, &["CONSUME_ACTIVELY", "CONSUME_PASSIVELY", "CONSUME_POP"])
}

/// See [`consume_type`]. C++ and Java agree: BROADCASTING = 0, CLUSTERING = 1.
pub fn message_model<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    enum_name(d, &["BROADCASTING", "CLUSTERING"])
}

/// See [`consume_type`]; the numbers are the C++ client's enum.
pub fn consume_from_where<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    enum_name(
        d,
        &[
            "CONSUME_FROM_LAST_OFFSET",
            "CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST",
            "CONSUME_FROM_MIN_OFFSET",
            "CONSUME_FROM_MAX_OFFSET",
            "CONSUME_FROM_FIRST_OFFSET",
            "CONSUME_FROM_TIMESTAMP",
        ],
    )
}

fn enum_name<'de, D: Deserializer<'de>>(
    d: D,
    names: &'static [&'static str],
) -> Result<String, D::Error> {
    struct V(&'static [&'static str]);
    impl<'de> Visitor<'de> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an enum name or its number")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            usize::try_from(v)
                .ok()
                .and_then(|i| self.0.get(i))
                .map(|s| s.to_string())
                .ok_or_else(|| E::custom(format_args!("enum number {v} is out of range")))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            self.visit_i64(v.min(i64::MAX as u64) as i64)
        }
        fn visit_unit<E: de::Error>(self) -> Result<String, E> {
            Ok(String::new())
        }
    }
    d.deserialize_any(V(names))
}

/// `Some(integer)`, or `None` for null / empty string.
struct IntVisitor;

impl<'de> Visitor<'de> for IntVisitor {
    type Value = Option<i128>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an integer or a string holding one")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Some(i128::from(value)))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Some(i128::from(value)))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        // fastjson truncates `5.0` into an int field; accept only exact values
        // so a real fraction is not silently cut.
        if value.fract() == 0.0 && value.abs() < 9.0e18 {
            Ok(Some(value as i128))
        } else {
            Err(E::invalid_value(de::Unexpected::Float(value), &self))
        }
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        trimmed
            .parse::<i128>()
            .map(Some)
            .map_err(|_| E::invalid_value(de::Unexpected::Str(value), &self))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

struct BoolVisitor;

impl<'de> Visitor<'de> for BoolVisitor {
    type Value = bool;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a boolean, \"true\"/\"false\" or 1/0")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<bool, E> {
        Ok(value)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<bool, E> {
        Ok(value != 0)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<bool, E> {
        Ok(value != 0)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<bool, E> {
        let trimmed = value.trim();
        if trimmed.is_empty() || trimmed == "0" || trimmed.eq_ignore_ascii_case("false") {
            Ok(false)
        } else if trimmed == "1" || trimmed.eq_ignore_ascii_case("true") {
            Ok(true)
        } else {
            Err(E::invalid_value(de::Unexpected::Str(value), &self))
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_none<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// One `codeSet` element: `Some` if it reads as an i64, `None` otherwise.
struct MaybeCode(Option<i64>);

impl<'de> Deserialize<'de> for MaybeCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MaybeCodeVisitor)
    }
}

struct MaybeCodeVisitor;

impl<'de> Visitor<'de> for MaybeCodeVisitor {
    type Value = MaybeCode;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<MaybeCode, E> {
        Ok(MaybeCode(Some(value)))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<MaybeCode, E> {
        Ok(MaybeCode(i64::try_from(value).ok()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<MaybeCode, E> {
        Ok(MaybeCode(
            IntVisitor
                .visit_f64::<E>(value)
                .ok()
                .flatten()
                .and_then(|v| i64::try_from(v).ok()),
        ))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<MaybeCode, E> {
        Ok(MaybeCode(value.trim().parse().ok()))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<MaybeCode, E> {
        Ok(MaybeCode(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<MaybeCode, E> {
        Ok(MaybeCode(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeCode, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(MaybeCode(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeCode, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(MaybeCode(None))
    }
}

struct TagCodesVisitor;

impl<'de> Visitor<'de> for TagCodesVisitor {
    type Value = Vec<i64>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an array of tag codes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<i64>, A::Error> {
        let mut codes = Vec::new();
        while let Some(MaybeCode(code)) = seq.next_element()? {
            codes.extend(code);
        }
        Ok(codes)
    }

    // Anything that is not an array carries no usable codes.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<i64>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Vec::new())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Vec<i64>, E> {
        Ok(Vec::new())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Vec<i64>, E> {
        Ok(Vec::new())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Vec<i64>, E> {
        Ok(Vec::new())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Vec<i64>, E> {
        Ok(Vec::new())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Vec<i64>, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Vec<i64>, E> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Probe {
        #[serde(deserialize_with = "int")]
        long: i64,
        #[serde(deserialize_with = "int")]
        small: u32,
        #[serde(deserialize_with = "boolean")]
        flag: bool,
        #[serde(deserialize_with = "null_default")]
        list: Vec<String>,
        #[serde(deserialize_with = "tag_codes")]
        codes: Vec<i64>,
    }

    fn probe(json: &str) -> Result<Probe, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn numbers_may_be_strings_and_null_means_default() {
        assert_eq!(
            probe(
                r#"{"long":"1715551234000","small":" 7 ","flag":"TRUE","list":null,"codes":null}"#
            )
            .expect("lenient"),
            Probe {
                long: 1_715_551_234_000,
                small: 7,
                flag: true,
                list: vec![],
                codes: vec![],
            }
        );
        assert_eq!(
            probe(r#"{"long":null,"small":"","flag":0}"#).expect("lenient"),
            Probe::default()
        );
        assert_eq!(probe(r#"{"long":5.0,"flag":1}"#).expect("lenient").long, 5);
    }

    #[test]
    fn garbage_numbers_are_errors_but_garbage_codes_are_dropped() {
        assert!(probe(r#"{"long":"12x"}"#).is_err());
        assert!(probe(r#"{"long":1.5}"#).is_err());
        assert!(probe(r#"{"small":-1}"#).is_err());
        assert!(probe(r#"{"small":"4294967296"}"#).is_err());
        assert!(probe(r#"{"flag":"yes"}"#).is_err());
        assert_eq!(
            probe(r#"{"codes":[1,"2",-3,"x",null,{"a":1},[4],3.0,18446744073709551615]}"#)
                .expect("codes never fail")
                .codes,
            vec![1, 2, -3, 3]
        );
        assert_eq!(
            probe(r#"{"codes":"1,2"}"#).expect("lenient").codes,
            Vec::<i64>::new()
        );
        assert_eq!(
            probe(r#"{"codes":{"a":[1]}}"#).expect("lenient").codes,
            Vec::<i64>::new()
        );
    }
}
