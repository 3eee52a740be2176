//! Request codes (spec §2.1) and response codes (spec §4) as plain `i32`
//! constants.
//!
//! Codes stay plain integers rather than enums: a request can carry any code,
//! including ones this server does not know. An unknown code must still reach the
//! dispatcher so it can be answered with `REQUEST_CODE_NOT_SUPPORTED`. Names follow
//! the Java constant names exactly, misspellings included, so a reader can grep
//! the Java sources and this file with the same word.

/// Declares named code constants together with a `name` lookup for logs.
///
/// The lookup is a `match` over the constants. If two constants share a value,
/// the second pattern is unreachable and the build warns, so the table can never
/// hold duplicates without someone noticing.
macro_rules! code_table {
    ($( $(#[$doc:meta])* $name:ident = $value:expr; )*) => {
        $( $(#[$doc])* pub const $name: i32 = $value; )*

        /// The Java constant name of `code`, or `None` if this table does not
        /// list it. For logs and error messages.
        pub fn name(code: i32) -> Option<&'static str> {
            match code {
                $( $name => Some(stringify!($name)), )*
                _ => None,
            }
        }

        /// Every code in this table with its name, in table order.
        pub const ALL: &[(i32, &str)] = &[ $( ($name, stringify!($name)), )* ];
    };
}

/// Request codes (spec §2.1). The direction and who needs each code are given in
/// the doc comments: C = client, B = broker, N = name server, A = admin tool.
pub mod request_code {
    code_table! {
        /// C→B: send one message, V1 (long) header keys. Go clients use this one.
        SEND_MESSAGE = 10;
        /// C→B: pull messages from one queue.
        PULL_MESSAGE = 11;
        /// A→B: query messages by key or unique key.
        QUERY_MESSAGE = 12;
        /// Defined by Java but unused.
        QUERY_BROKER_OFFSET = 13;
        /// C→B: read a consumer group's committed offset for one queue.
        QUERY_CONSUMER_OFFSET = 14;
        /// C→B: commit a consumer group's offset for one queue (usually oneway).
        UPDATE_CONSUMER_OFFSET = 15;
        /// A→B: create or update a topic.
        UPDATE_AND_CREATE_TOPIC = 17;
        /// A→B (5.x): create or update several topics at once.
        UPDATE_AND_CREATE_TOPIC_LIST = 18;
        /// A→B: all topic configs of a broker.
        GET_ALL_TOPIC_CONFIG = 21;
        /// Rare: topic config list.
        GET_TOPIC_CONFIG_LIST = 22;
        /// Rare: topic name list.
        GET_TOPIC_NAME_LIST = 23;
        /// A→B: change broker configuration at run time.
        UPDATE_BROKER_CONFIG = 25;
        /// A→B: read broker configuration.
        GET_BROKER_CONFIG = 26;
        /// A→B: broker runtime statistics.
        GET_BROKER_RUNTIME_INFO = 28;
        /// C→B: first queue offset at or after a timestamp (CONSUME_FROM_TIMESTAMP).
        SEARCH_OFFSET_BY_TIMESTAMP = 29;
        /// C→B: queue's max (next) offset.
        GET_MAX_OFFSET = 30;
        /// C→B: queue's min offset.
        GET_MIN_OFFSET = 31;
        /// C→B: store time of the oldest message in a queue.
        GET_EARLIEST_MSG_STORETIME = 32;
        /// A→B: read one message by its offsetMsgId.
        VIEW_MESSAGE_BY_ID = 33;
        /// C→B: client heartbeat carrying its producer and consumer groups.
        HEART_BEAT = 34;
        /// C→B: client leaves a group (on shutdown).
        UNREGISTER_CLIENT = 35;
        /// C→B: consumer returns a message for retry or DLQ.
        CONSUMER_SEND_MSG_BACK = 36;
        /// C→B: commit or roll back a half message (oneway).
        END_TRANSACTION = 37;
        /// C→B: client ids of the members of a consumer group.
        GET_CONSUMER_LIST_BY_GROUP = 38;
        /// B→C: ask a producer for a transaction's state (oneway).
        CHECK_TRANSACTION_STATE = 39;
        /// B→C: the membership of a consumer group changed (oneway).
        NOTIFY_CONSUMER_IDS_CHANGED = 40;
        /// C→B: lock queues for an orderly consumer.
        LOCK_BATCH_MQ = 41;
        /// C→B: unlock queues of an orderly consumer.
        UNLOCK_BATCH_MQ = 42;
        /// B→B: all consumer offsets (replication).
        GET_ALL_CONSUMER_OFFSET = 43;
        /// B→B: all delay-queue offsets (replication).
        GET_ALL_DELAY_OFFSET = 45;
        /// C→B: check that the broker supports a consumer's filter config (SQL92).
        CHECK_CLIENT_CONFIG = 46;
        /// A→N: put a KV config item.
        PUT_KV_CONFIG = 100;
        /// A→N: read a KV config item.
        GET_KV_CONFIG = 101;
        /// A→N: delete a KV config item.
        DELETE_KV_CONFIG = 102;
        /// B→N: broker registration (every 30 s).
        REGISTER_BROKER = 103;
        /// B→N: broker deregistration (on shutdown).
        UNREGISTER_BROKER = 104;
        /// C→N: route of a topic.
        GET_ROUTEINFO_BY_TOPIC = 105;
        /// A→N: cluster and broker address table.
        GET_BROKER_CLUSTER_INFO = 106;
        /// A→B: create or update a subscription group.
        UPDATE_AND_CREATE_SUBSCRIPTIONGROUP = 200;
        /// A→B: all subscription group configs.
        GET_ALL_SUBSCRIPTIONGROUP_CONFIG = 201;
        /// A→B: per-queue offsets of a topic.
        GET_TOPIC_STATS_INFO = 202;
        /// A→B: connections of a consumer group.
        GET_CONSUMER_CONNECTION_LIST = 203;
        /// A→B: connections of a producer group.
        GET_PRODUCER_CONNECTION_LIST = 204;
        /// A→N: remove write permission of a broker.
        WIPE_WRITE_PERM_OF_BROKER = 205;
        /// A→N: every topic known to the name server.
        GET_ALL_TOPIC_LIST_FROM_NAMESERVER = 206;
        /// A→B: delete a subscription group.
        DELETE_SUBSCRIPTIONGROUP = 207;
        /// A→B: consumption progress of a group.
        GET_CONSUME_STATS = 208;
        /// A→B: delete a topic on a broker.
        DELETE_TOPIC_IN_BROKER = 215;
        /// A→N: delete a topic from the name server.
        DELETE_TOPIC_IN_NAMESRV = 216;
        /// A→N: register a topic in the name server.
        REGISTER_TOPIC_IN_NAMESRV = 217;
        /// A→N: KV items of a namespace.
        GET_KVLIST_BY_NAMESPACE = 219;
        /// B→C: reset a consumer's offsets.
        RESET_CONSUMER_CLIENT_OFFSET = 220;
        /// B→C: a consumer's offset status.
        GET_CONSUMER_STATUS_FROM_CLIENT = 221;
        /// A→B: reset a group's offsets by timestamp.
        INVOKE_BROKER_TO_RESET_OFFSET = 222;
        /// A→B: ask the broker to collect consumer status.
        INVOKE_BROKER_TO_GET_CONSUMER_STATUS = 223;
        /// A→N: topics of a cluster.
        GET_TOPICS_BY_CLUSTER = 224;
        /// A→B: groups consuming a topic.
        QUERY_TOPIC_CONSUME_BY_WHO = 300;
        /// A→N: system topics.
        GET_SYSTEM_TOPIC_LIST_FROM_NS = 304;
        /// A→B→C: a consumer's running info (forwarded to the client).
        GET_CONSUMER_RUNNING_INFO = 307;
        /// A→B→C: have a consumer consume one message directly.
        CONSUME_MESSAGE_DIRECTLY = 309;
        /// C→B: send one message, V2 (single-letter) header keys. Java default.
        SEND_MESSAGE_V2 = 310;
        /// A→B: consume statistics of a broker.
        GET_BROKER_CONSUME_STATS = 317;
        /// A→N: change name server configuration.
        UPDATE_NAMESRV_CONFIG = 318;
        /// A→N: read name server configuration.
        GET_NAMESRV_CONFIG = 319;
        /// C→B: send a batch of messages (V2 keys).
        SEND_BATCH_MESSAGE = 320;
        /// B→N: has the broker's topic config changed since the last registration.
        QUERY_DATA_VERSION = 322;
        /// C→B: request-reply, reply message with V1 keys.
        SEND_REPLY_MESSAGE = 324;
        /// C→B: request-reply, reply message with V2 keys.
        SEND_REPLY_MESSAGE_V2 = 325;
        /// A→B: every producer the broker knows, by group.
        GET_ALL_PRODUCER_INFO = 328;
        /// B→C: deliver a reply message to the requesting client.
        PUSH_REPLY_MESSAGE_TO_CLIENT = 326;
        /// A→N: give a broker write permission again.
        ADD_WRITE_PERM_OF_BROKER = 327;
        /// A→B (5.x): one topic's config.
        GET_TOPIC_CONFIG = 351;
        /// C→B: pull for the lite pull consumer.
        LITE_PULL_MESSAGE = 361;
        /// B→N (5.x controller mode): broker liveness heartbeat.
        BROKER_HEARTBEAT = 904;
        GET_BROKER_HA_STATUS = 907;
        /// Controller→B (5.x): the group's master changed; become master or
        /// follow the one named.
        NOTIFY_BROKER_ROLE_CHANGED = 1008;
    }

    /// First code of the 5.x POP consumption family (POP_MESSAGE, ACK_MESSAGE,
    /// PEEK, CHANGE_INVISIBLETIME, NOTIFICATION, POLLING_INFO, POP_ROLLBACK,
    /// BATCH_ACK). The spec gives only the range, not each member's value, and the
    /// server does not implement POP, so only the bounds are named.
    pub const POP_FAMILY_FIRST: i32 = 200_050;
    /// Last code of the POP family (inclusive). See [`POP_FAMILY_FIRST`].
    pub const POP_FAMILY_LAST: i32 = 200_151;

    /// Whether `code` belongs to the POP family. These codes do not fit the
    /// binary header's 16-bit code field.
    pub fn is_pop_family(code: i32) -> bool {
        (POP_FAMILY_FIRST..=POP_FAMILY_LAST).contains(&code)
    }
}

/// Response codes (spec §4).
pub mod response_code {
    code_table! {
        /// Success.
        SUCCESS = 0;
        /// Generic failure. Producers retry on another broker.
        SYSTEM_ERROR = 1;
        /// Flow control. 5.x producers retry; 4.x synchronous sends fail without retrying.
        SYSTEM_BUSY = 2;
        /// Unknown request code. Remark: `" request type <code> not supported"`.
        REQUEST_CODE_NOT_SUPPORTED = 3;
        /// Transaction failed.
        TRANSACTION_FAILED = 4;
        /// Send: stored, but the synchronous flush timed out. Clients treat it as a
        /// send result, not an exception.
        FLUSH_DISK_TIMEOUT = 10;
        /// Send: stored, but no slave is available.
        SLAVE_NOT_AVAILABLE = 11;
        /// Send: stored, but slave replication timed out.
        FLUSH_SLAVE_TIMEOUT = 12;
        /// Message too large, bad properties, bad timer, or no key on a compaction topic.
        MESSAGE_ILLEGAL = 13;
        /// Store not writable or shutting down. Producers retry.
        SERVICE_NOT_AVAILABLE = 14;
        /// Version not supported.
        VERSION_NOT_SUPPORTED = 15;
        /// Permission bits forbid the operation (also a 5.x auth failure). Producers retry.
        NO_PERMISSION = 16;
        /// Unknown topic. Producers retry, and this code triggers the TBW102 fallback.
        TOPIC_NOT_EXIST = 17;
        /// The topic already exists.
        TOPIC_EXIST_ALREADY = 18;
        /// Pull: no new message.
        PULL_NOT_FOUND = 19;
        /// Pull: every message was filtered out.
        PULL_RETRY_IMMEDIATELY = 20;
        /// Pull: the requested offset is invalid.
        PULL_OFFSET_MOVED = 21;
        /// No consumer offset, KV item or query result.
        QUERY_NOT_FOUND = 22;
        /// The subscription expression does not parse.
        SUBSCRIPTION_PARSE_FAILED = 23;
        /// Pull without a subscription, and no subscription registered by heartbeat.
        SUBSCRIPTION_NOT_EXIST = 24;
        /// The broker's subVersion is older than the request's.
        SUBSCRIPTION_NOT_LATEST = 25;
        /// The subscription group does not exist.
        SUBSCRIPTION_GROUP_NOT_EXIST = 26;
        /// SQL92 filter data is missing.
        FILTER_DATA_NOT_EXIST = 27;
        /// SQL92 filter data is stale.
        FILTER_DATA_NOT_LATEST = 28;
        /// Bad topic name, bad queueId, …
        INVALID_PARAMETER = 29;
        /// Transaction check answer: commit.
        TRANSACTION_SHOULD_COMMIT = 200;
        /// Transaction check answer: roll back.
        TRANSACTION_SHOULD_ROLLBACK = 201;
        /// Transaction check answer: unknown. The misspelling is Java's.
        TRANSACTION_STATE_UNKNOW = 202;
        /// The transaction's producer group is wrong.
        TRANSACTION_STATE_GROUP_WRONG = 203;
        /// No buyer id. Producers retry.
        NO_BUYER_ID = 204;
        /// Not in the current unit. Producers retry.
        NOT_IN_CURRENT_UNIT = 205;
        /// The consumer is not online.
        CONSUMER_NOT_ONLINE = 206;
        /// Consuming a message timed out.
        CONSUME_MSG_TIMEOUT = 207;
        /// No message.
        NO_MESSAGE = 208;
        /// POP: polling queue full.
        POLLING_FULL = 209;
        /// POP: polling timed out.
        POLLING_TIMEOUT = 210;
        /// The broker does not exist.
        BROKER_NOT_EXIST = 211;
        /// Broker dispatch is not complete.
        BROKER_DISPATCH_NOT_COMPLETE = 212;
        /// Broadcast consumption.
        BROADCAST_CONSUMPTION = 213;
        /// Pull flow control. The client retries after 20 ms instead of 3 s.
        FLOW_CONTROL = 215;
        /// Static topics: this broker does not lead the queue.
        NOT_LEADER_FOR_QUEUE = 501;
        /// END_TRANSACTION after the check-immunity time.
        ILLEGAL_OPERATION = 604;
        /// Server shutting down (5.3.2+). Producers retry.
        GO_AWAY = 1500;
        /// ACL 2.0 admin: no such user.
        USER_NOT_EXIST = 3001;
        /// ACL 2.0 admin: no such policy.
        POLICY_NOT_EXIST = 3002;
    }

    /// First of the controller-mode codes (`CONTROLLER_*`). The spec lists only the
    /// range; this server does not run a controller.
    pub const CONTROLLER_FIRST: i32 = 2000;
    /// Last controller-mode code (inclusive).
    pub const CONTROLLER_LAST: i32 = 2016;

    /// Codes on which a 4.x Java producer's synchronous send retries on another
    /// queue or broker. Any other error code fails the send at once, so returning
    /// e.g. `SYSTEM_BUSY` to a 4.x client loses the retry (spec §4, checklist 13).
    pub const RETRIED_BY_4X_PRODUCERS: &[i32] = &[
        SYSTEM_ERROR,
        SERVICE_NOT_AVAILABLE,
        NO_PERMISSION,
        TOPIC_NOT_EXIST,
        NO_BUYER_ID,
        NOT_IN_CURRENT_UNIT,
    ];

    /// Codes on which a 5.x Java producer's synchronous send retries.
    pub const RETRIED_BY_5X_PRODUCERS: &[i32] = &[
        SYSTEM_ERROR,
        SYSTEM_BUSY,
        SERVICE_NOT_AVAILABLE,
        NO_PERMISSION,
        TOPIC_NOT_EXIST,
        NO_BUYER_ID,
        NOT_IN_CURRENT_UNIT,
        GO_AWAY,
    ];
}

#[cfg(test)]
mod tests {
    use super::{request_code, response_code};

    #[test]
    fn names_resolve_for_listed_codes_only() {
        assert_eq!(request_code::name(310), Some("SEND_MESSAGE_V2"));
        assert_eq!(request_code::name(105), Some("GET_ROUTEINFO_BY_TOPIC"));
        assert_eq!(request_code::name(16), None);
        assert_eq!(response_code::name(17), Some("TOPIC_NOT_EXIST"));
        assert_eq!(response_code::name(202), Some("TRANSACTION_STATE_UNKNOW"));
        assert_eq!(response_code::name(-1000), None);
    }

    #[test]
    fn tables_have_unique_values() {
        for table in [request_code::ALL, response_code::ALL] {
            let mut values: Vec<i32> = table.iter().map(|&(code, _)| code).collect();
            values.sort_unstable();
            let before = values.len();
            values.dedup();
            assert_eq!(before, values.len());
        }
    }

    #[test]
    fn pop_family_lies_outside_the_binary_header_code_range() {
        assert!(request_code::is_pop_family(200_050));
        assert!(request_code::is_pop_family(200_151));
        assert!(!request_code::is_pop_family(310));
        assert!(i16::try_from(request_code::POP_FAMILY_FIRST).is_err());
    }

    #[test]
    fn the_5x_retry_set_extends_the_4x_one() {
        for code in response_code::RETRIED_BY_4X_PRODUCERS {
            assert!(response_code::RETRIED_BY_5X_PRODUCERS.contains(code));
        }
        assert!(response_code::RETRIED_BY_5X_PRODUCERS.contains(&response_code::GO_AWAY));
    }
}
