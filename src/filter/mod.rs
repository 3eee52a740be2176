//! Message filters the broker applies at pull time, so a consumer only
//! receives the messages its subscription selects.
//!
//! This module owns the property-based filters: compiling a consumer's
//! expression once, and testing each message's user properties against it
//! without allocating. TAG subscriptions are plain tag-code sets and live
//! with the subscription types in `protocol::subscription`.

mod properties;
pub mod sql92;

pub use properties::{Properties, RawProperties};
pub use sql92::{Sql92Error, Sql92Filter};
