//! rocketcore: RocketMQ-compatible broker and name server.

pub mod admin;
pub mod broker;
pub mod console;
pub mod controller;
pub mod filter;
pub mod namesrv;
pub mod namesrv_server;
pub mod net;
pub mod protocol;
pub mod remoting;
pub mod security;
