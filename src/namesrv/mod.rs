//! The name server as pure logic (spec §2.2, §10.4): route tables and the
//! answer to every request a name server receives. No sockets, no async, no
//! clock: the network layer owns one [`NamesrvState`], passes each request
//! with the id of its connection and the current time, and calls
//! [`on_connection_closed`] and (every [`BROKER_SCAN_INTERVAL_MS`])
//! [`scan_inactive`].
//!
//! * [`state`]: the tables and the operations on them.
//! * [`kv`]: the KV config store.
//! * [`process`](mod@process): request decoding, dispatch and responses.

pub mod kv;
pub mod process;
pub mod state;

pub use process::{on_connection_closed, process, scan_inactive};
pub use state::{NamesrvConfig, NamesrvState};

/// A broker silent (no REGISTER_BROKER, no QUERY_DATA_VERSION) for longer than
/// this is removed, unless its registration asked for another timeout
/// (`heartbeatTimeoutMillis`). Java's default.
pub const BROKER_EXPIRE_MS: i64 = 120_000;

/// How often the network layer should call [`scan_inactive`] (Java 4.x:
/// 10 s). Routes already leave out brokers past their timeout, so this only
/// bounds how long stale entries stay in the cluster table.
pub const BROKER_SCAN_INTERVAL_MS: u64 = 10_000;

/// KV namespace holding each ordered topic's `"brokerA:4;brokerB:8"` queue
/// layout, which becomes `orderTopicConf` in routes.
pub const NAMESPACE_ORDER_TOPIC_CONFIG: &str = "ORDER_TOPIC_CONFIG";

#[cfg(test)]
mod tests;
