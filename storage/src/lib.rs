//! rocketcore-storage: the store one broker shard owns.
//!
//! A shard's store is a commit log of RocketMQ stored-message records in
//! O_DIRECT segments with group commit, a consume queue per (topic, queueId),
//! a key index, a checkpoint, crash recovery and retention. It runs on one
//! glommio executor and is `!Send` by construction; nothing in it is shared
//! with other shards. It has no networking: the broker drives it.
//!
//! Physical offsets that leave the store are global: `(shard << 56) | offset`.

mod checkpoint;
mod commit_log;
pub mod config;
mod consume_queue;
pub mod env;
pub mod epoch;
pub mod error;
mod index;
mod recovery;
mod retention;
mod store;
pub mod sync;
mod tail_cache;

pub use checkpoint::Checkpoint;
pub use commit_log::ReplicaRead;
pub use config::{Durability, StoreConfig};
pub use consume_queue::CqUnit;
pub use env::{Environment, IoOp, SystemEnvironment};
pub use epoch::{consistent_point, EpochEntry};
pub use error::{Result, StoreError};
pub use record::{MessageDraft, RecordView};
pub use recovery::RecoveryReport;
pub use rocketcore_protocol::message::{properties, record, valid_topic};
pub use store::{Appended, QueueRead, ReadStatus, RecordFilter, ShardStore, StoreStats};
pub use sync::{WaitError, Watermark};

/// Bits of a global physical offset that hold the in-shard offset.
pub const SHARD_OFFSET_BITS: u32 = 56;
const IN_SHARD_MASK: u64 = (1 << SHARD_OFFSET_BITS) - 1;

/// The global physical offset clients see for in-shard offset `pos`.
pub fn to_global(shard: u8, pos: u64) -> i64 {
    (((shard as u64) << SHARD_OFFSET_BITS) | (pos & IN_SHARD_MASK)) as i64
}

/// Splits a global physical offset into (shard, in-shard offset).
pub fn from_global(phys: i64) -> (u8, u64) {
    let p = phys as u64;
    ((p >> SHARD_OFFSET_BITS) as u8, p & IN_SHARD_MASK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_offsets_round_trip() {
        assert_eq!(from_global(to_global(3, 12345)), (3, 12345));
        assert_eq!(to_global(0, 7), 7);
        assert_eq!(
            from_global(to_global(255, IN_SHARD_MASK)),
            (255, IN_SHARD_MASK)
        );
    }

    #[test]
    fn topic_names() {
        assert!(valid_topic("%RETRY%group-1_a|b"));
        assert!(!valid_topic(""));
        assert!(!valid_topic("../etc"));
        assert!(!valid_topic("a/b"));
        assert!(!valid_topic(&"x".repeat(128)));
    }
}
