//! rocketcore: RocketMQ-compatible broker and name server.

pub mod admin;
pub mod broker;
pub mod console;
pub mod controller;
pub mod filter;
pub mod namesrv;
pub mod namesrv_server;
pub mod net;
pub mod security;

// The wire protocol lives in its own crate (the load generator shares it);
// these keep its modules at the paths the servers use.
pub use rocketcore_protocol::{protocol, remoting};
