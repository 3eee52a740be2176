//! Read access to a message's user properties, as the filters see them.
//!
//! Filters only ever look properties up by name, so they take anything that
//! can answer that question: a decoded map in tests and tools, or the raw
//! bytes straight from the commit log on the pull path, where decoding into
//! a map per message would allocate.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// Property lookup by name.
pub trait Properties {
    /// The value of property `key`, or `None` when the message lacks it.
    fn get(&self, key: &str) -> Option<&str>;
}

impl<S: BuildHasher> Properties for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
}

impl Properties for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

impl<P: Properties + ?Sized> Properties for &P {
    fn get(&self, key: &str) -> Option<&str> {
        P::get(self, key)
    }
}

/// Zero-allocation lookup over RocketMQ's raw properties encoding,
/// `key\x01value\x02key\x01value\x02…`.
///
/// Follows Java's `MessageDecoder.string2messageProperties` (through
/// `rocketcore_storage::properties::get`, which the rest of the broker also
/// uses, so filters and tag codes agree on what a message carries): the
/// trailing `\x02` may be missing, pairs with an empty key or value are
/// skipped (so an empty value reads as absent), and when a key repeats the
/// last pair wins. A value that is not valid UTF-8 reads as absent; Java
/// would see U+FFFD replacement characters instead, which no expression
/// written in a RocketMQ client can match exactly anyway.
#[derive(Debug, Clone, Copy)]
pub struct RawProperties<'a>(pub &'a [u8]);

impl Properties for RawProperties<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        rocketcore_storage::properties::get_str(self.0, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(bytes: &[u8], key: &str) -> Option<String> {
        RawProperties(bytes).get(key).map(str::to_owned)
    }

    #[test]
    fn raw_properties_decode_like_java() {
        let props = b"a\x011\x02bb\x01two\x02";
        assert_eq!(raw(props, "a").as_deref(), Some("1"));
        assert_eq!(raw(props, "bb").as_deref(), Some("two"));
        assert_eq!(raw(props, "b"), None);
        assert_eq!(raw(props, "c"), None);
        // Missing trailing separator.
        assert_eq!(raw(b"a\x011\x02k\x01last", "k").as_deref(), Some("last"));
        // Empty input, lone separators.
        assert_eq!(raw(b"", "a"), None);
        assert_eq!(raw(b"\x02\x02\x01\x01", "a"), None);
        // Empty value and empty key are skipped, as Java drops them.
        assert_eq!(raw(b"a\x01\x02", "a"), None);
        assert_eq!(raw(b"\x01v\x02", ""), None);
        // Last occurrence wins.
        assert_eq!(raw(b"a\x011\x02a\x012\x02", "a").as_deref(), Some("2"));
        // The value runs to the next \x02 and may contain \x01.
        assert_eq!(raw(b"a\x01x\x01y\x02", "a").as_deref(), Some("x\x01y"));
        // Multi-byte UTF-8 survives; invalid UTF-8 reads as absent.
        assert_eq!(raw("k\x01é€\x02".as_bytes(), "k").as_deref(), Some("é€"));
        assert_eq!(raw(b"k\x01\xff\xfe\x02", "k"), None);
        assert_eq!(raw(b"\xff\x01v\x02k\x01ok", "k").as_deref(), Some("ok"));
        // Segment without a separator is ignored, not merged with the next.
        assert_eq!(raw(b"abc\x02k\x01v", "abc"), None);
    }

    #[test]
    fn maps_and_references_are_properties() {
        let mut map = HashMap::new();
        map.insert("a".to_owned(), "1".to_owned());
        assert_eq!(Properties::get(&map, "a"), Some("1"));
        assert_eq!(Properties::get(&&map, "b"), None);
        let tree: BTreeMap<String, String> = map.into_iter().collect();
        assert_eq!(Properties::get(&tree, "a"), Some("1"));
    }
}
