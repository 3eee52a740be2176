//! Remoting over TCP on a glommio executor: accepting connections, reading
//! frames, running a handler per request, writing replies; and a small client
//! for the requests a server itself makes (broker → name server).
//!
//! Everything here lives on one executor. A connection is served entirely by
//! the shard that accepted it; handlers decide whether work moves elsewhere.

mod client;
mod conn;
mod server;

pub use client::RemotingClient;
pub use conn::{Conn, MAX_INFLIGHT_REQUESTS_PER_CONN};
pub use server::{serve, Handler};
