//! `MessageQueue` (spec §5.6): the (topic, broker name, queue id) triple that
//! names one queue inside many bodies.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::lenient;

/// One queue of a topic on one broker (name).
///
/// Fields are declared in JSON key order; ordering follows Java's
/// `compareTo` (topic, then broker name, then queue id), so it is implemented
/// by hand rather than derived from the declaration order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MessageQueue {
    /// Broker name.
    #[serde(deserialize_with = "lenient::null_default")]
    pub broker_name: String,
    /// Queue id within the topic on that broker.
    #[serde(deserialize_with = "lenient::int")]
    pub queue_id: i32,
    /// Topic.
    #[serde(deserialize_with = "lenient::null_default")]
    pub topic: String,
}

impl MessageQueue {
    /// Queue `queue_id` of `topic` on `broker_name`.
    pub fn new(
        topic: impl Into<String>,
        broker_name: impl Into<String>,
        queue_id: i32,
    ) -> MessageQueue {
        MessageQueue {
            broker_name: broker_name.into(),
            queue_id,
            topic: topic.into(),
        }
    }
}

impl Ord for MessageQueue {
    fn cmp(&self, other: &MessageQueue) -> Ordering {
        self.topic
            .cmp(&other.topic)
            .then_with(|| self.broker_name.cmp(&other.broker_name))
            .then_with(|| self.queue_id.cmp(&other.queue_id))
    }
}

impl PartialOrd for MessageQueue {
    fn partial_cmp(&self, other: &MessageQueue) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_json;

    #[test]
    fn spec_example_round_trips_and_orders_like_java() {
        let json = r#"{"brokerName":"broker-a","queueId":0,"topic":"TopicTest"}"#;
        let queue: MessageQueue = decode_json(json.as_bytes()).expect("spec example");
        assert_eq!(queue, MessageQueue::new("TopicTest", "broker-a", 0));
        assert_eq!(serde_json::to_string(&queue).expect("encodes"), json);

        let mut queues = [
            MessageQueue::new("B", "a", 0),
            MessageQueue::new("A", "b", 0),
            MessageQueue::new("A", "a", 2),
            MessageQueue::new("A", "a", 1),
        ];
        queues.sort();
        assert_eq!(
            queues,
            [
                MessageQueue::new("A", "a", 1),
                MessageQueue::new("A", "a", 2),
                MessageQueue::new("A", "b", 0),
                MessageQueue::new("B", "a", 0),
            ]
        );
    }
}
