//! rocketcore: RocketMQ-compatible broker and name server.
