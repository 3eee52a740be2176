//! The Remoting protocol codec: the bytes RocketMQ clients, brokers and name
//! servers exchange over TCP (spec `rocketmq-remoting.md` §1, §2.1, §4).
//!
//! This module owns the wire form of a command and nothing else. It has no
//! sockets, no async code and no handlers:
//!
//! * [`frame`]: cutting length-prefixed frames out of a read buffer, and the
//!   frame size limit.
//! * [`header`]: the command header as JSON or as the ROCKETMQ binary form.
//! * [`command`]: [`RemotingCommand`] (header plus zero-copy body), the flag
//!   bits, constructors for requests and replies, whole-frame encode/decode.
//! * [`ext_fields`]: the custom-header map and its typed getters.
//! * [`codes`], [`language`], [`version`]: the numbers the spec defines.
//!
//! Errors are split by what the caller must do. [`FrameError`] and
//! [`HeaderCodecError`] (together [`CodecError`]) mean the peer sent bytes that
//! cannot be trusted: close the connection without answering, as Java does.
//! [`HeaderError`] means a well-formed request lacks a field a handler needs:
//! answer it with an error code and keep the connection.
//!
//! Everything here is plain data with no shard affinity. A connection's
//! shard decodes its commands, and a decoded body can move to the queue's owner
//! shard as a [`bytes::Bytes`] handle without being copied.

pub mod codes;
pub mod command;
pub mod ext_fields;
pub mod frame;
pub mod header;
pub mod language;
pub mod version;

#[cfg(test)]
mod alloc_probe;

pub use command::{CodecError, RemotingCommand, ONEWAY_FLAG, RESPONSE_FLAG};
pub use ext_fields::{ExtFields, HeaderError};
pub use frame::{Frame, FrameDecoder, FrameError, SerializeType, MAX_FRAME_BYTES};
pub use header::HeaderCodecError;
pub use language::LanguageCode;
