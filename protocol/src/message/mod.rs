//! A message as RocketMQ lays it out in bytes: the record the commit log
//! stores and a pull body carries (Java's `MessageDecoder`), its properties
//! string, and the topic names that may hold it.

pub mod properties;
pub mod record;

/// Topic names the store accepts (RocketMQ's `^[%|a-zA-Z0-9_-]+$`, ≤ 127
/// bytes); they become directory names, so nothing else gets through.
pub fn valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= record::MAX_TOPIC_BYTES
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'%' | b'|' | b'_' | b'-'))
}
