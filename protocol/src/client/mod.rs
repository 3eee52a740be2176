//! What a tool needs to talk to a server with blocking sockets: the
//! pipelined connection and the TLS client configuration.

pub mod blocking;
pub mod tls;
