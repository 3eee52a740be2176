//! rocketcore-protocol: RocketMQ's wire protocol as plain data, shared by the
//! servers and the load generator so that the load generator links neither
//! the broker nor the store. Frames and headers (`remoting`), JSON bodies
//! (`protocol`), the stored/pulled message layout (`message`), the ACL
//! request signature (`signature`), the delay-level table (`delay_levels`),
//! and a blocking client with TLS (`client`). No async runtime, no files.

pub mod client;
pub mod delay_levels;
pub mod message;
pub mod protocol;
pub mod remoting;
pub mod signature;
