//! The `version` header field (spec §1.7): the ordinal of the sender's release in
//! Java's `MQVersion.Version` enum. It is not a semantic version number.
//!
//! Peers act on the version in a few places. The name server picks the route
//! JSON dialect from the request's version (≥ [`V4_9_4`] means standard JSON).
//! Clients remember the version in a broker's heartbeat response as the broker
//! version, and consumers refuse SQL92 pulls from a broker older than
//! [`V4_1_0_SNAPSHOT`]. The broker honours `maxReconsumeTimes` only from
//! [`V3_4_9`] on.

/// V3_0_11. Older register-broker requests use an older body format.
pub const V3_0_11: i32 = 37;
/// V3_4_9. From here on the broker honours the client's `maxReconsumeTimes`.
pub const V3_4_9: i32 = 121;
/// V4_0_0.
pub const V4_0_0: i32 = 213;
/// V4_1_0_SNAPSHOT. Consumers refuse SQL92 pulls from a broker that reports less.
pub const V4_1_0_SNAPSHOT: i32 = 232;
/// V4_5_0.
pub const V4_5_0: i32 = 313;
/// V4_5_2. The Go client always sends this value.
pub const V4_5_2: i32 = 317;
/// V4_6_1.
pub const V4_6_1: i32 = 335;
/// V4_9_3.
pub const V4_9_3: i32 = 399;
/// V4_9_4. From here on the name server sends standard route JSON.
pub const V4_9_4: i32 = 401;
/// V4_9_7.
pub const V4_9_7: i32 = 407;
/// V5_0_0.
pub const V5_0_0: i32 = 413;
/// V5_1_0.
pub const V5_1_0: i32 = 433;
/// V5_2_0.
pub const V5_2_0: i32 = 453;
/// V5_3_0.
pub const V5_3_0: i32 = 473;
/// V5_3_1. A shutting-down 5.3.2+ server answers newer clients with `GO_AWAY`.
pub const V5_3_1: i32 = 475;
/// V5_3_3, the spec's reference release.
pub const V5_3_3: i32 = 479;

/// The version this server puts in every command it sends. Clients store it as
/// the broker version, so it must be a real modern release: anything below
/// [`V4_1_0_SNAPSHOT`] stops SQL92 consumers. The spec's reference release is used
/// because the spec's examples show exactly that Java server's output.
pub const SERVER_VERSION: i32 = V5_3_3;

// Checked at compile time: lowering SERVER_VERSION below a client gate, or
// past what the binary header's i16 version field holds, fails the build.
const _: () = assert!(SERVER_VERSION >= V4_1_0_SNAPSHOT);
const _: () = assert!(SERVER_VERSION >= V4_9_4);
const _: () = assert!(SERVER_VERSION <= i16::MAX as i32);
