//! rocketcore-bench: a load generator for any RocketMQ-protocol broker.
//! Speaks Remoting directly (the project's codec), discovers routes through
//! the name server, and reports latency from merged HDR histograms.

pub mod args;
pub mod client;
pub mod hgrm;
pub mod mux;
pub mod report;
pub mod route;
pub mod run;
pub mod svg;
pub mod workload;
