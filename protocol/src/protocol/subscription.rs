//! `SubscriptionData` (spec §5.3, §7.2, §8.5): one consumer group's
//! subscription to one topic, and the tag-code arithmetic the broker filters
//! with.
//!
//! Clients send tag codes (`codeSet`), but they cannot be trusted: Go hashes
//! UTF-8 bytes instead of UTF-16 units and sends the codes as strings, C++
//! may send none or garbage. So the broker recomputes them from the tags with
//! Java's `String.hashCode` ([`SubscriptionData::java_tag_codes`]) and ignores
//! `codeSet` except to echo it.

use crate::message::properties::java_string_hash;
use serde::{Deserialize, Serialize};

use super::lenient;

/// Subscription expression meaning "every message" (also: empty).
pub const SUB_ALL: &str = "*";
/// `expressionType` of tag subscriptions (the default).
pub const EXPRESSION_TYPE_TAG: &str = "TAG";
/// `expressionType` of SQL92 property filters.
pub const EXPRESSION_TYPE_SQL92: &str = "SQL92";
/// Separator between tags in a TAG expression.
const TAG_SEPARATOR: &str = "||";

/// A subscription of one group to one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionData {
    /// Obsolete class-filter feature; always false.
    #[serde(deserialize_with = "lenient::boolean")]
    pub class_filter_mode: bool,
    /// Tag codes as the client computed them. Not trusted: see the module doc.
    /// Elements that are not numbers are dropped on input.
    #[serde(deserialize_with = "lenient::tag_codes")]
    pub code_set: Vec<i64>,
    /// `TAG` (default, also when absent or empty) or `SQL92`.
    #[serde(deserialize_with = "lenient::null_default")]
    pub expression_type: String,
    /// The expression: `*`, `TagA || TagB`, or SQL92 text.
    #[serde(deserialize_with = "lenient::null_default")]
    pub sub_string: String,
    /// Client ms timestamp of the subscription; a pull carrying a newer one
    /// than the broker knows gets SUBSCRIPTION_NOT_LATEST. C++ sends a string.
    #[serde(deserialize_with = "lenient::int")]
    pub sub_version: i64,
    /// The tags of a TAG expression (empty for `*`). C++ omits it when empty.
    #[serde(deserialize_with = "lenient::null_default")]
    pub tags_set: Vec<String>,
    /// Topic.
    #[serde(deserialize_with = "lenient::null_default")]
    pub topic: String,
}

impl Default for SubscriptionData {
    fn default() -> SubscriptionData {
        SubscriptionData {
            class_filter_mode: false,
            code_set: Vec::new(),
            expression_type: EXPRESSION_TYPE_TAG.to_owned(),
            sub_string: String::new(),
            sub_version: 0,
            tags_set: Vec::new(),
            topic: String::new(),
        }
    }
}

/// Java's `String.trim`: strips chars ≤ U+0020 at both ends (not Unicode
/// whitespace), so tags compare equal to what a Java client computed.
fn java_trim(text: &str) -> &str {
    text.trim_matches(|c: char| c <= ' ')
}

/// Whether a TAG expression selects every message.
fn is_all_expression(expression: &str) -> bool {
    let trimmed = java_trim(expression);
    trimmed.is_empty() || trimmed == SUB_ALL
}

/// Tags trimmed, empties dropped, duplicates dropped (Java keeps them in a
/// set).
fn unique_tags<'a>(tags: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for tag in tags.map(java_trim) {
        if !tag.is_empty() && !out.contains(&tag) {
            out.push(tag);
        }
    }
    out
}

/// The tags of a TAG expression: split on `||`, then as `unique_tags`.
fn split_tags(expression: &str) -> Vec<&str> {
    unique_tags(expression.split(TAG_SEPARATOR))
}

/// The tag codes a pull carrying its own TAG expression filters by, as
/// `SubscriptionData::parse_tags(..).java_tag_codes()` gives them but
/// without building the subscription; None when it selects every message.
pub fn tag_codes_of(expression: &str) -> Option<Vec<i64>> {
    (!is_all_expression(expression))
        .then(|| split_tags(expression).into_iter().map(tag_code).collect())
}

/// Java `String.hashCode` of a tag, sign-extended as the consume queue stores it.
fn tag_code(tag: &str) -> i64 {
    i64::from(java_string_hash(tag.as_bytes()))
}

impl SubscriptionData {
    /// A TAG subscription of `topic` parsed from `expression`, as Java's
    /// `FilterAPI.build` makes it for a pull that carries its subscription.
    /// `sub_version` is 0: the caller takes it from the request.
    pub fn parse_tags(topic: &str, expression: &str) -> SubscriptionData {
        let mut data = SubscriptionData {
            topic: topic.to_owned(),
            ..SubscriptionData::default()
        };
        if is_all_expression(expression) {
            data.sub_string = SUB_ALL.to_owned();
        } else {
            data.sub_string = expression.to_owned();
            let tags = split_tags(expression);
            data.code_set = tags.iter().map(|tag| tag_code(tag)).collect();
            data.tags_set = tags.into_iter().map(str::to_owned).collect();
        }
        data
    }

    /// Whether this is a TAG subscription (`expressionType` absent, empty or
    /// `TAG` in any case), as opposed to SQL92.
    pub fn is_tag_type(&self) -> bool {
        let kind = java_trim(&self.expression_type);
        kind.is_empty() || kind.eq_ignore_ascii_case(EXPRESSION_TYPE_TAG)
    }

    /// Whether this TAG subscription selects every message (`*` or empty
    /// expression). False for SQL92 subscriptions.
    ///
    /// Decided from `subString` alone, as Java, Go and C++ all build it: they
    /// leave `tagsSet` empty for `*`.
    pub fn is_tag_all(&self) -> bool {
        self.is_tag_type() && is_all_expression(&self.sub_string)
    }

    /// The Java tag codes a consume-queue entry must carry to match, recomputed
    /// from `tagsSet`, or, if that is empty, from `subString`; the client's
    /// `codeSet` is ignored. Empty for "all" ([`is_tag_all`](Self::is_tag_all))
    /// and for SQL92 subscriptions; for a TAG expression without tags (`"||"`)
    /// it is empty too, and then nothing matches, as in Java.
    pub fn java_tag_codes(&self) -> Vec<i64> {
        if !self.is_tag_type() || self.is_tag_all() {
            return Vec::new();
        }
        let mut tags = unique_tags(self.tags_set.iter().map(String::as_str));
        if tags.is_empty() {
            tags = split_tags(&self.sub_string);
        }
        tags.into_iter().map(tag_code).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_json;

    #[test]
    fn tag_codes_are_recomputed_with_javas_hash() {
        let data = SubscriptionData::parse_tags("TopicTest", "TagA || TagB");
        assert_eq!(data.java_tag_codes(), vec![2_598_919, 2_598_920]);
        assert_eq!(data.code_set, vec![2_598_919, 2_598_920]);
        assert_eq!(data.tags_set, vec!["TagA", "TagB"]);
        assert_eq!(data.sub_string, "TagA || TagB");
        assert!(!data.is_tag_all());

        // The client's codes are ignored; tags win, then subString.
        let lying = SubscriptionData {
            code_set: vec![1, 2, 3],
            tags_set: vec![" TagB ".into(), "TagB".into(), String::new()],
            sub_string: "TagA".into(),
            ..SubscriptionData::default()
        };
        assert_eq!(lying.java_tag_codes(), vec![2_598_920]);
        let from_expression = SubscriptionData {
            code_set: vec![-1_887_180_642],
            sub_string: "中文||  ||TagA||TagA".into(),
            ..SubscriptionData::default()
        };
        assert_eq!(from_expression.java_tag_codes(), vec![646_394, 2_598_919]);
    }

    #[test]
    fn star_and_empty_mean_all_and_sql_has_no_tag_codes() {
        for expression in ["*", "", " * ", "  "] {
            let data = SubscriptionData::parse_tags("T", expression);
            assert!(data.is_tag_all(), "{expression:?}");
            assert_eq!(data.sub_string, "*");
            assert!(data.java_tag_codes().is_empty());
            assert!(data.tags_set.is_empty());
        }
        let nothing = SubscriptionData::parse_tags("T", "||");
        assert!(!nothing.is_tag_all());
        assert!(nothing.java_tag_codes().is_empty());

        // A pull's own expression filters exactly as the subscription would.
        for expression in ["*", "", "||", "TagA", " TagA || TagB ||TagA", "中文"] {
            let data = SubscriptionData::parse_tags("T", expression);
            let expected = (!data.is_tag_all()).then(|| data.java_tag_codes());
            assert_eq!(tag_codes_of(expression), expected, "{expression:?}");
        }

        let sql = SubscriptionData {
            expression_type: "SQL92".into(),
            sub_string: "a > 5".into(),
            ..SubscriptionData::default()
        };
        assert!(!sql.is_tag_type() && !sql.is_tag_all());
        assert!(sql.java_tag_codes().is_empty());
        let untyped = SubscriptionData {
            expression_type: String::new(),
            sub_string: "*".into(),
            ..SubscriptionData::default()
        };
        assert!(untyped.is_tag_all());
    }

    #[test]
    fn cpp_and_go_quirks_parse() {
        // C++ 1.x: no expressionType/classFilterMode, no empty arrays, string subVersion.
        let cpp: SubscriptionData =
            decode_json(br#"{"topic":"T","subString":"*","subVersion":"1715551234000"}"#)
                .expect("C++ form");
        assert_eq!(cpp.sub_version, 1_715_551_234_000);
        assert_eq!(cpp.expression_type, "TAG");
        assert!(cpp.is_tag_all());
        // Go: codes as strings (UTF-8 hash), null for empty sets.
        let go: SubscriptionData = decode_json(
            br#"{"topic":"T","subString":"TagA","tagsSet":["TagA"],"codeSet":["2598919"],"subVersion":0,"expressionType":"TAG","classFilterMode":false}"#,
        )
        .expect("Go form");
        assert_eq!(go.code_set, vec![2_598_919]);
        let go_nulls: SubscriptionData =
            decode_json(br#"{"topic":"T","subString":"*","tagsSet":null,"codeSet":null}"#)
                .expect("Go nulls");
        assert!(go_nulls.tags_set.is_empty() && go_nulls.code_set.is_empty());
    }
}
