//! Remoting over TCP on a glommio executor: accepting connections, reading
//! frames, running a handler per request, writing replies; and a small client
//! for the requests a server itself makes (broker → name server).
//!
//! Everything here lives on one executor. A connection is served entirely by
//! the shard that accepted it; handlers decide whether work moves elsewhere.

pub use rocketcore_protocol::client::blocking;
mod client;
mod conn;
pub mod http;
mod server;

pub use client::RemotingClient;
pub use conn::{Conn, MAX_INFLIGHT_REQUESTS_PER_CONN};
pub(crate) use server::Half;
pub use server::{serve, Handler};

/// Fails when another process already listens on `addr`. glommio binds
/// with SO_REUSEPORT (the shards share their port that way), so a second
/// broker or name server on a taken port would bind too and silently get
/// half of the connections; a plain bind without it is refused instead.
///
/// A plain bind is also refused while connections of a process that died
/// linger in TIME-WAIT or FIN-WAIT-2 (they inherited SO_REUSEPORT, not
/// SO_REUSEADDR, from glommio's listener), which would turn every crash into
/// a minute of downtime. So a refused bind is settled by connecting: a
/// refused connection means nothing listens. Right after a kill -9 the dead
/// process's listener itself lingers for a moment (its io_uring, which holds
/// the pending accept, is torn down after the process) and even completes
/// handshakes; a live server keeps doing so, a dead one stops within
/// `ORPHAN_LISTENER_WAIT`.
pub fn ensure_port_free(addr: std::net::SocketAddr, what: &str) -> Result<(), String> {
    let deadline = std::time::Instant::now() + ORPHAN_LISTENER_WAIT;
    loop {
        let refused = match std::net::TcpListener::bind(addr) {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        if refused.kind() != std::io::ErrorKind::AddrInUse {
            return Err(format!("{what} address {addr} is not free: {refused}"));
        }
        match probe(addr) {
            Probe::Refused => {
                tracing::info!(
                    "{what} address {addr}: only connections of an earlier process remain; taking it"
                );
                return Ok(());
            }
            Probe::Accepted if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Probe::Accepted => {
                return Err(format!(
                    "{what} address {addr} is not free: {refused}; another server accepts connections there"
                ))
            }
            Probe::Failed(e) => {
                return Err(format!(
                    "{what} address {addr} is not free: {refused}; connecting to it: {e}"
                ))
            }
        }
    }
}

/// How long a listener that accepts connections may take to vanish before
/// it counts as another live server (seen: under 300 ms after kill -9).
const ORPHAN_LISTENER_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

enum Probe {
    Accepted,
    Refused,
    Failed(std::io::Error),
}

/// Whether something accepts TCP connections on `addr` (a wildcard address
/// is probed on loopback).
fn probe(addr: std::net::SocketAddr) -> Probe {
    let mut target = addr;
    if target.ip().is_unspecified() {
        target.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    // A local port answers at once (accept or reset); a timeout means a
    // listener too busy to answer, which is still a listener.
    match std::net::TcpStream::connect_timeout(&target, std::time::Duration::from_secs(1)) {
        // A connect to a free port in the ephemeral range can, rarely, be
        // given that very port as its source and connect to itself.
        Ok(s) if s.local_addr().ok() == Some(target) => Probe::Refused,
        Ok(_) => Probe::Accepted,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Probe::Refused,
        // The dead process's listener was torn down with our handshake in
        // its queue: ask again (seen right after kill -9).
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ) =>
        {
            Probe::Accepted
        }
        Err(e) => Probe::Failed(e),
    }
}
