//! Queue-lock bodies of LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42), spec §5.7,
//! used by orderly consumers.

use serde::{Deserialize, Serialize};

use super::lenient;
use super::message_queue::MessageQueue;

/// Body of LOCK_BATCH_MQ: the queues a client wants to lock.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LockBatchRequestBody {
    /// Requesting client.
    #[serde(deserialize_with = "lenient::null_default")]
    pub client_id: String,
    /// Consumer group.
    #[serde(deserialize_with = "lenient::null_default")]
    pub consumer_group: String,
    /// Queues to lock.
    #[serde(deserialize_with = "lenient::null_default")]
    pub mq_set: Vec<MessageQueue>,
    /// Proxy/broker-internal flag; false from clients.
    #[serde(deserialize_with = "lenient::boolean")]
    pub only_this_broker: bool,
}

/// Body of UNLOCK_BATCH_MQ: the same fields as the lock request.
pub type UnlockBatchRequestBody = LockBatchRequestBody;

/// Response body of LOCK_BATCH_MQ: the queues this client now holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LockBatchResponseBody {
    /// Locked queues. The key is Java's getter name, `lockOKMQSet`.
    #[serde(rename = "lockOKMQSet", deserialize_with = "lenient::null_default")]
    pub lock_ok_mq_set: Vec<MessageQueue>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_json;

    #[test]
    fn spec_examples_round_trip_byte_for_byte() {
        let request = r#"{"clientId":"192.168.1.20@4242#8123456789012","consumerGroup":"cg1","mqSet":[{"brokerName":"broker-a","queueId":0,"topic":"TopicTest"},{"brokerName":"broker-a","queueId":1,"topic":"TopicTest"}],"onlyThisBroker":false}"#;
        let lock: LockBatchRequestBody = decode_json(request.as_bytes()).expect("spec example");
        assert_eq!(lock.mq_set.len(), 2);
        assert_eq!(
            lock.mq_set[1],
            MessageQueue::new("TopicTest", "broker-a", 1)
        );
        assert_eq!(serde_json::to_string(&lock).expect("encodes"), request);
        let unlock: UnlockBatchRequestBody = decode_json(request.as_bytes()).expect("same shape");
        assert_eq!(serde_json::to_string(&unlock).expect("encodes"), request);

        let response =
            r#"{"lockOKMQSet":[{"brokerName":"broker-a","queueId":0,"topic":"TopicTest"}]}"#;
        let locked: LockBatchResponseBody = decode_json(response.as_bytes()).expect("spec example");
        assert_eq!(serde_json::to_string(&locked).expect("encodes"), response);
    }
}
