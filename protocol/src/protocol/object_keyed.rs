//! Bodies whose maps are keyed by a `MessageQueue` *object* (spec §5.8,
//! Quirk B): ConsumeStats (208), TopicStatsTable (202) and ResetOffsetBody
//! (220/222).
//!
//! fastjson writes `Map<MessageQueue, …>` as
//! `{{"brokerName":"b","queueId":0,"topic":"t"}:…}`. That is not JSON, so
//! serde cannot produce it, but it is the only form Java admin tools parse.
//! These encoders write it by hand, byte-identical to the spec's examples;
//! [`decode_offset_table`] reads them back for the admin tools.
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

/// Reads an object-keyed body: the body with `offsetTable` taken out, and
/// the table's entries in the order written. Works on what Java brokers
/// send as well as on what the encoders above write.
pub fn decode_offset_table(
    body: &[u8],
) -> Result<(serde_json::Value, Vec<(MessageQueue, serde_json::Value)>), String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("body is not UTF-8: {e}"))?;
    let json = quote_object_keys(text)?;
    let mut value: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| format!("bad body: {e}"))?;
    let table = value
        .as_object_mut()
        .and_then(|o| o.remove("offsetTable"))
        .unwrap_or(serde_json::Value::Null);
    let mut entries = Vec::new();
    if let serde_json::Value::Object(map) = table {
        for (key, v) in map {
            let queue: MessageQueue =
                serde_json::from_str(&key).map_err(|e| format!("bad queue key {key}: {e}"))?;
            entries.push((queue, v));
        }
    }
    Ok((value, entries))
}

/// Any fastjson body whose maps may have object keys (ConsumerRunningInfo's
/// `mqTable`, say) as a JSON value; such keys become strings.
pub fn parse_lenient(body: &[u8]) -> Result<serde_json::Value, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("body is not UTF-8: {e}"))?;
    serde_json::from_str(&quote_object_keys(text)?).map_err(|e| format!("bad body: {e}"))
}

/// fastjson text with objects as map keys, as JSON: each such key becomes
/// a string holding the key object's text.
fn quote_object_keys(text: &str) -> Result<String, String> {
    // For each open container: is it an object whose next token is a key?
    let mut stack: Vec<bool> = Vec::new();
    let mut out = String::with_capacity(text.len() + 64);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'"' => {
                let end = string_end(bytes, i)?;
                out.push_str(&text[i..end]);
                i = end;
                if let Some(top) = stack.last_mut() {
                    *top = false;
                }
                continue;
            }
            b'{' if stack.last() == Some(&true) => {
                let end = object_end(bytes, i)?;
                out.push_str(&serde_json::to_string(&text[i..end]).unwrap_or_default());
                i = end;
                if let Some(top) = stack.last_mut() {
                    *top = false;
                }
                continue;
            }
            b'{' => stack.push(true),
            b'[' => stack.push(false),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => {
                if let Some(top) = stack.last_mut() {
                    // Inside an object a comma is followed by a key; the
                    // flag of an array is never read.
                    *top = true;
                }
            }
            _ => {}
        }
        out.push(c as char);
        i += 1;
    }
    if !stack.is_empty() {
        return Err("body ends inside an object".into());
    }
    Ok(out)
}

/// The index just past the string that starts at `start`.
fn string_end(bytes: &[u8], start: usize) -> Result<usize, String> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err("body ends inside a string".into())
}

/// The index just past the object that starts at `start`.
fn object_end(bytes: &[u8], start: usize) -> Result<usize, String> {
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i = string_end(bytes, i)?;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err("body ends inside an object key".into())
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

    #[test]
    fn object_keyed_bodies_read_back() {
        let q1 = MessageQueue::new("T\\\"{x}", "broker-a", 1);
        let body = encode_consume_stats(
            1.5,
            &[
                (
                    queue(),
                    OffsetWrapper {
                        broker_offset: 10,
                        consumer_offset: 4,
                        pull_offset: 4,
                        last_timestamp: 7,
                    },
                ),
                (q1.clone(), OffsetWrapper::default()),
            ],
        );
        let (rest, entries) = decode_offset_table(&body).unwrap();
        assert_eq!(rest["consumeTps"], 1.5);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0, queue());
        assert_eq!(entries[0].1["brokerOffset"], 10);
        assert_eq!(entries[0].1["consumerOffset"], 4);
        assert_eq!(entries[1].0, q1);
        let reset = encode_reset_offset_body(&[(queue(), 42)]);
        let (_, entries) = decode_offset_table(&reset).unwrap();
        assert_eq!(entries[0].1, 42);
        for bad in [
            "{\"offsetTable\":{{\"topic\":\"t\"",
            "{\"a\":\"x",
            "{\"offsetTable\":{{\"topic\":1}:1}}",
        ] {
            assert!(decode_offset_table(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
