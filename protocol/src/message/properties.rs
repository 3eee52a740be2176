//! RocketMQ's message properties string (`name \x01 value \x02` pairs) and
//! the Java `String.hashCode` that turns a TAGS value into a tags code.
//! Everything here borrows from the caller's bytes: the append path reads
//! TAGS, KEYS and UNIQ_KEY without allocating.

pub const NAME_VALUE_SEPARATOR: u8 = 1;
pub const PROPERTY_SEPARATOR: u8 = 2;

pub const TAGS: &str = "TAGS";
pub const KEYS: &str = "KEYS";
pub const UNIQ_KEY: &str = "UNIQ_KEY";
/// Due time (ms since the epoch) of a staged delay-level or timer message.
pub const TIMER_OUT_MS: &str = "TIMER_OUT_MS";
/// On a transaction-op record: the half-queue offset it decides.
pub const TRAN_PREPARED_QUEUE_OFFSET: &str = "TRAN_PREPARED_QUEUE_OFFSET";

/// Where delay-level messages wait (queue = level − 1).
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
/// Where timer messages wait (queue 0).
pub const TIMER_TOPIC: &str = "rmq_sys_wheel_timer";
/// Where transactional half messages wait (queue 0).
pub const TRANS_HALF_TOPIC: &str = "RMQ_SYS_TRANS_HALF_TOPIC";
/// Commit/rollback decisions on half messages (queue 0).
pub const TRANS_OP_TOPIC: &str = "RMQ_SYS_TRANS_OP_HALF_TOPIC";

/// The broker's own staging queues: never in the topic table.
pub fn is_staging_topic(topic: &str) -> bool {
    matches!(
        topic,
        SCHEDULE_TOPIC | TIMER_TOPIC | TRANS_HALF_TOPIC | TRANS_OP_TOPIC
    )
}

/// Iterates (name, value) pairs in order. Follows the Java parser: split on
/// 0x02, ignore segments shorter than 3 bytes, split each at the first 0x01
/// that is neither its first nor its last byte, skip segments without one.
pub fn iter(props: &[u8]) -> impl DoubleEndedIterator<Item = (&[u8], &[u8])> {
    props
        .split(|b| *b == PROPERTY_SEPARATOR)
        .filter(|seg| seg.len() >= 3)
        .filter_map(|seg| {
            let inner = &seg[1..seg.len() - 1];
            let at = inner.iter().position(|b| *b == NAME_VALUE_SEPARATOR)? + 1;
            Some((&seg[..at], &seg[at + 1..]))
        })
}

/// The value of `name`; the last occurrence wins, as in Java. Searched from
/// the end, so the scan stops at that occurrence.
pub fn get<'a>(props: &'a [u8], name: &str) -> Option<&'a [u8]> {
    iter(props)
        .rev()
        .find(|(n, _)| *n == name.as_bytes())
        .map(|(_, v)| v)
}

/// The value of `name` as text; None when absent or not UTF-8.
pub fn get_str<'a>(props: &'a [u8], name: &str) -> Option<&'a str> {
    get(props, name).and_then(|v| std::str::from_utf8(v).ok())
}

/// The value of `name` as an integer (surrounding whitespace ignored);
/// None when absent or not a number.
pub fn get_number(props: &[u8], name: &str) -> Option<i64> {
    get_str(props, name)?.trim().parse().ok()
}

/// Appends one `name \x01 value \x02` pair.
pub fn push(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.push(NAME_VALUE_SEPARATOR);
    out.extend_from_slice(value.as_bytes());
    out.push(PROPERTY_SEPARATOR);
}

/// Java `String.hashCode` over the UTF-16 code units of `s`. Invalid UTF-8
/// is hashed as Java would after a lossy decode (U+FFFD per bad sequence).
pub fn java_string_hash(s: &[u8]) -> i32 {
    let mut h: i32 = 0;
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                h = h.wrapping_mul(31).wrapping_add(*u as i32);
            }
        }
        if !chunk.invalid().is_empty() {
            h = h.wrapping_mul(31).wrapping_add(0xFFFD);
        }
    }
    h
}

/// The consume-queue tags code of a message: hash of TAGS, 0 when absent or empty.
pub fn tags_code(props: &[u8]) -> i64 {
    match get(props, TAGS) {
        Some(t) if !t.is_empty() => java_string_hash(t) as i64,
        _ => 0,
    }
}

/// The consume-queue code of a record. Ordinary topics keep the tags hash;
/// the staging topics keep the number their services scan by (due time,
/// decided half offset), so those scans, and their rebuild after a restart,
/// read 20-byte units instead of records. Recovery recomputes it from the
/// record, so it must depend on nothing else.
pub fn cq_tags_code(topic: &[u8], props: &[u8]) -> i64 {
    let number = |name| get_number(props, name).unwrap_or(0);
    if topic == SCHEDULE_TOPIC.as_bytes() || topic == TIMER_TOPIC.as_bytes() {
        number(TIMER_OUT_MS)
    } else if topic == TRANS_OP_TOPIC.as_bytes() {
        number(TRAN_PREPARED_QUEUE_OFFSET)
    } else {
        tags_code(props)
    }
}

/// Copies `props` into `out` without the pairs named in `drop`.
/// Malformed segments are dropped too, as Java's parser ignores them.
pub fn copy_without(props: &[u8], out: &mut Vec<u8>, drop: &[&str]) {
    for (n, v) in iter(props) {
        if !drop.iter().any(|d| d.as_bytes() == n) {
            out.extend_from_slice(n);
            out.push(NAME_VALUE_SEPARATOR);
            out.extend_from_slice(v);
            out.push(PROPERTY_SEPARATOR);
        }
    }
}

/// What the key index files a message under: its KEYS and its UNIQ_KEY.
/// Append, recovery and queries must agree on this, so it is said once.
pub fn index_keys(props: &[u8]) -> impl Iterator<Item = &[u8]> {
    keys(props).chain(get(props, UNIQ_KEY))
}

/// The business keys of a message (KEYS split on spaces), for the index.
pub fn keys(props: &[u8]) -> impl Iterator<Item = &[u8]> {
    get(props, KEYS)
        .unwrap_or(&[])
        .split(|b| *b == b' ')
        .filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_hash_examples() {
        assert_eq!(java_string_hash(b"TagA"), 2598919);
        assert_eq!(java_string_hash(b"TagB"), 2598920);
        assert_eq!(java_string_hash(b"*"), 42);
        assert_eq!(java_string_hash("中文".as_bytes()), 646394);
        // Outside the BMP a character hashes as its two surrogates.
        assert_eq!(
            java_string_hash("😀".as_bytes()),
            0xD83Di32.wrapping_mul(31).wrapping_add(0xDE00)
        );
    }

    #[test]
    fn parse_follows_java_rules() {
        let p = b"TAGS\x01TagA\x02KEYS\x01k1 k2\x02\x01x\x02ab\x02TAGS\x01TagB\x02V\x01a\x01b\x02";
        assert_eq!(get(p, "TAGS"), Some(&b"TagB"[..]));
        assert_eq!(get(p, "V"), Some(&b"a\x01b"[..]));
        assert_eq!(get(p, "missing"), None);
        assert_eq!(keys(p).collect::<Vec<_>>(), vec![&b"k1"[..], &b"k2"[..]]);
        assert_eq!(tags_code(p), 2598920);
        assert_eq!(tags_code(b""), 0);
        assert_eq!(tags_code(b"TAGS\x01\x02"), 0);
    }

    #[test]
    fn staging_topics_are_indexed_by_their_number() {
        let p = b"TAGS\x01TagA\x02TIMER_OUT_MS\x011700000000123\x02TRAN_PREPARED_QUEUE_OFFSET\x0142\x02";
        assert_eq!(
            cq_tags_code(SCHEDULE_TOPIC.as_bytes(), p),
            1_700_000_000_123
        );
        assert_eq!(cq_tags_code(TIMER_TOPIC.as_bytes(), p), 1_700_000_000_123);
        assert_eq!(cq_tags_code(TRANS_OP_TOPIC.as_bytes(), p), 42);
        assert_eq!(cq_tags_code(b"Plain", p), 2598919);
        assert_eq!(
            cq_tags_code(TIMER_TOPIC.as_bytes(), b"TIMER_OUT_MS\x01soon\x02"),
            0
        );
    }

    #[test]
    fn copy_without_drops_only_the_named_pairs() {
        let mut out = Vec::new();
        copy_without(b"A\x011\x02DELAY\x013\x02B\x012\x02", &mut out, &["DELAY"]);
        assert_eq!(out, b"A\x011\x02B\x012\x02");
    }

    proptest! {
        #[test]
        fn push_then_get_round_trips(
            pairs in proptest::collection::vec(("[A-Za-z_]{1,12}", "[ -~]{1,20}"), 0..8)
        ) {
            let mut out = Vec::new();
            for (n, v) in &pairs {
                push(&mut out, n, v);
            }
            for (n, _) in &pairs {
                let last = pairs.iter().rfind(|(m, _)| m == n).unwrap();
                prop_assert_eq!(get(&out, n), Some(last.1.as_bytes()));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = iter(&bytes).count();
            let _ = tags_code(&bytes);
            let _ = keys(&bytes).count();
            let _ = java_string_hash(&bytes);
        }
    }
}
