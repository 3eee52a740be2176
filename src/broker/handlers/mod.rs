//! Request handlers, one module per request family. Each is an `impl Shard`
//! block: it runs on the shard the dispatcher chose.

mod admin;
mod clients;
mod offsets;
mod pull;
mod retry;
mod send;
mod stats;

pub use send::{batch_body, offset_msg_id, parse_batch, store_error_code};
