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
///
/// A plain bind is also refused while connections of a process that died
/// linger in TIME-WAIT or FIN-WAIT-2 (they inherited SO_REUSEPORT, not
/// SO_REUSEADDR, from glommio's listener), which would turn every crash into
/// a minute of downtime. So a refused bind is settled by connecting: only a
/// live listener accepts.
pub fn ensure_port_free(addr: std::net::SocketAddr, what: &str) -> Result<(), String> {
    let refused = match std::net::TcpListener::bind(addr) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    if refused.kind() == std::io::ErrorKind::AddrInUse && !listening(addr) {
        tracing::info!(
            "{what} address {addr}: only connections of an earlier process remain; taking it"
        );
        return Ok(());
    }
    Err(format!("{what} address {addr} is not free: {refused}"))
}

/// Whether something accepts TCP connections on `addr` (a wildcard address
/// is probed on loopback).
fn listening(addr: std::net::SocketAddr) -> bool {
    let mut probe = addr;
    if probe.ip().is_unspecified() {
        probe.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    // A local port answers at once (accept or reset); a timeout means a
    // listener too busy to answer, which is still a listener.
    match std::net::TcpStream::connect_timeout(&probe, std::time::Duration::from_secs(1)) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::ConnectionRefused,
    }
}
