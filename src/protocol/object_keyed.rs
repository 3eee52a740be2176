//! Bodies whose maps are keyed by a `MessageQueue` *object* (spec §5.8,
//! Quirk B): ConsumeStats (208), TopicStatsTable (202) and ResetOffsetBody
//! (220/222).
//!
//! fastjson writes `Map<MessageQueue, …>` as
//! `{{"brokerName":"b","queueId":0,"topic":"t"}:…}`. That is not JSON, so
//! serde cannot produce it, but it is the only form Java admin tools parse.
//! These encoders write it by hand, byte-identical to the spec's examples.
//! Nothing in the server reads these bodies, so there are no decoders.
//!
//! Entries are written in the order given, and the caller must not repeat a
//! queue (fastjson would keep the last duplicate, other readers may not).

use std::fmt::Write as _;

use super::message_queue::MessageQueue;

/// One queue's consumption progress in ConsumeStats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OffsetWrapper {
    /// Queue max offset (next offset to be written).
    pub broker_offset: i64,
    /// Group's committed offset (0 if none).
    pub consumer_offset: i64,
    /// max(committed offset, next offset of the last pull).
    pub pull_offset: i64,
    /// Store time of message `consumer_offset − 1`, or 0.
    pub last_timestamp: i64,
}

/// One queue's offsets in TopicStatsTable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicOffset {
    /// Smallest available offset.
    pub min_offset: i64,
    /// Next offset to be written.
    pub max_offset: i64,
    /// Store time of message `max_offset − 1`, or 0 if the queue is empty.
    pub last_update_timestamp: i64,
}

/// ConsumeStats: `{"consumeTps":…,"offsetTable":{<queue>:{…},…}}`.
pub fn encode_consume_stats(
    consume_tps: f64,
    entries: &[(MessageQueue, OffsetWrapper)],
) -> Vec<u8> {
    let mut out = String::with_capacity(64 + entries.len() * 160);
    out.push_str("{\"consumeTps\":");
    push_java_double(&mut out, consume_tps);
    out.push_str(",\"offsetTable\":");
    push_offset_table(&mut out, entries, |out, offsets| {
        // Keys alphabetical, as fastjson writes them.
        let _ = write!(
            out,
            "{{\"brokerOffset\":{},\"consumerOffset\":{},\"lastTimestamp\":{},\"pullOffset\":{}}}",
            offsets.broker_offset,
            offsets.consumer_offset,
            offsets.last_timestamp,
            offsets.pull_offset
        );
    });
    out.push('}');
    out.into_bytes()
}

/// TopicStatsTable: `{"offsetTable":{<queue>:{…},…},"topicPutTps":…}`.
pub fn encode_topic_stats(entries: &[(MessageQueue, TopicOffset)], put_tps: f64) -> Vec<u8> {
    let mut out = String::with_capacity(64 + entries.len() * 140);
    out.push_str("{\"offsetTable\":");
    push_offset_table(&mut out, entries, |out, offsets| {
        let _ = write!(
            out,
            "{{\"lastUpdateTimestamp\":{},\"maxOffset\":{},\"minOffset\":{}}}",
            offsets.last_update_timestamp, offsets.max_offset, offsets.min_offset
        );
    });
    out.push_str(",\"topicPutTps\":");
    push_java_double(&mut out, put_tps);
    out.push('}');
    out.into_bytes()
}

/// ResetOffsetBody: `{"offsetTable":{<queue>:<offset>,…}}`.
pub fn encode_reset_offset_body(entries: &[(MessageQueue, i64)]) -> Vec<u8> {
    let mut out = String::with_capacity(32 + entries.len() * 100);
    out.push_str("{\"offsetTable\":");
    push_offset_table(&mut out, entries, |out, offset| {
        let _ = write!(out, "{offset}");
    });
    out.push('}');
    out.into_bytes()
}

/// `{<queue>:<value>,…}`: a map keyed by MessageQueue objects, each key
/// written as fastjson writes a MessageQueue (serde_json gives the same
/// bytes, escapes included), each value by `value`.
fn push_offset_table<V>(
    out: &mut String,
    entries: &[(MessageQueue, V)],
    mut value: impl FnMut(&mut String, &V),
) {
    out.push('{');
    for (index, (queue, v)) in entries.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(queue).unwrap_or_default());
        out.push(':');
        value(out, v);
    }
    out.push('}');
}

/// A double the way fastjson writes one: always with a fraction (`0.0`, not
/// `0`), so Java reads it back as a double. NaN and infinities have no JSON
/// form (fastjson writes `null`, which a Java `double` field cannot take), so
/// they are written as `0.0`: a TPS figure is the only double here.
fn push_java_double(out: &mut String, value: f64) {
    if !value.is_finite() {
        out.push_str("0.0");
        return;
    }
    let start = out.len();
    let _ = write!(out, "{value}");
    if !out[start..].contains(['.', 'e', 'E']) {
        out.push_str(".0");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> MessageQueue {
        MessageQueue::new("TopicTest", "broker-a", 0)
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).expect("utf8")
    }

    #[test]
    fn spec_examples_byte_for_byte() {
        assert_eq!(
            text(encode_consume_stats(
                0.0,
                &[(
                    queue(),
                    OffsetWrapper {
                        broker_offset: 100,
                        consumer_offset: 90,
                        pull_offset: 95,
                        last_timestamp: 1_715_551_234_567,
                    }
                )]
            )),
            r#"{"consumeTps":0.0,"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"TopicTest"}:{"brokerOffset":100,"consumerOffset":90,"lastTimestamp":1715551234567,"pullOffset":95}}}"#
        );
        assert_eq!(
            text(encode_topic_stats(
                &[(
                    queue(),
                    TopicOffset {
                        min_offset: 0,
                        max_offset: 100,
                        last_update_timestamp: 1_715_551_234_567,
                    }
                )],
                0.0
            )),
            r#"{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"TopicTest"}:{"lastUpdateTimestamp":1715551234567,"maxOffset":100,"minOffset":0}},"topicPutTps":0.0}"#
        );
        assert_eq!(
            text(encode_reset_offset_body(&[(queue(), 42)])),
            r#"{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"TopicTest"}:42}}"#
        );
    }

    #[test]
    fn several_entries_empty_tables_and_doubles() {
        let two = [
            (queue(), 1),
            (MessageQueue::new("TopicTest", "broker-a", 1), -1),
        ];
        assert_eq!(
            text(encode_reset_offset_body(&two)),
            r#"{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"TopicTest"}:1,{"brokerName":"broker-a","queueId":1,"topic":"TopicTest"}:-1}}"#
        );
        assert_eq!(text(encode_reset_offset_body(&[])), r#"{"offsetTable":{}}"#);
        assert_eq!(
            text(encode_consume_stats(12.5, &[])),
            r#"{"consumeTps":12.5,"offsetTable":{}}"#
        );
        for (value, expected) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (3.0, "3.0"),
            (0.1, "0.1"),
            (f64::NAN, "0.0"),
            (f64::INFINITY, "0.0"),
        ] {
            let mut out = String::new();
            push_java_double(&mut out, value);
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn names_are_escaped() {
        let odd = MessageQueue::new("a\"b\\c\n\u{1}é", "x", 3);
        let json = text(encode_reset_offset_body(&[(odd.clone(), 7)]));
        assert_eq!(
            json,
            r#"{"offsetTable":{{"brokerName":"x","queueId":3,"topic":"a\"b\\c\n\u0001é"}:7}}"#
        );
        // The key object is exactly what serde_json writes for a MessageQueue.
        let serde_key = serde_json::to_string(&odd).expect("encodes");
        assert!(json.contains(&serde_key), "{json} vs {serde_key}");
    }
}
