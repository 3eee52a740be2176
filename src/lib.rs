//! rocketcore: RocketMQ-compatible broker and name server.

pub mod remoting;
