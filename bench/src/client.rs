//! How the load generator connects: every connection of the process the
//! same way (TLS, signing), set once from the command line.

use std::net::SocketAddr;
use std::sync::OnceLock;

pub use rocketcore_protocol::client::blocking::{Conn, Link};

/// Set once from the command line, before any connection: every worker
/// and lookup connects the same way, so it is not threaded through them.
static LINK: OnceLock<Link> = OnceLock::new();

pub fn set_link(link: Link) {
    let _ = LINK.set(link);
}

pub fn connect(addr: SocketAddr) -> std::io::Result<Conn> {
    Conn::connect(addr, LINK.get_or_init(Link::default))
}
