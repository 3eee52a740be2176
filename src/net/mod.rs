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

/// Fails when another process already listens on `addr`. glommio binds
/// with SO_REUSEPORT (the shards share their port that way), so a second
/// broker or name server on a taken port would bind too and silently get
/// half of the connections; a plain bind without it is refused instead.
pub fn ensure_port_free(addr: std::net::SocketAddr, what: &str) -> Result<(), String> {
    std::net::TcpListener::bind(addr)
        .map(drop)
        .map_err(|e| format!("{what} address {addr} is not free: {e}"))
}
