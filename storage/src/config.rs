//! Store configuration: every bound the engine keeps, as a named field with
//! its unit in the name and RocketMQ's default where RocketMQ has one.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::error::{Result, StoreError};
use crate::record::{RecordFormat, MAX_PROPERTIES_BYTES, MAX_TOPIC_BYTES, RECORD_FIXED_BYTES_V6};

/// O_DIRECT block: every commit-log write starts and ends on it.
pub const BLOCK_BYTES: u64 = 4096;

/// How the commit log acknowledges an append. It is part of the append call
/// so that durability is explicit at every call site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// ASYNC_FLUSH: acknowledged once in the shard's memory; the flusher
    /// writes and syncs it within `flush_interval_ms`.
    Buffered,
    /// SYNC_FLUSH: acknowledged only after a write and fdatasync cover it.
    Synced,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `<store>`; the shard keeps everything under `<store>/shard-<k>/`.
    pub root_dir: PathBuf,
    /// Address written as STOREHOST in every record (brokerIP1:listenPort).
    pub store_host: SocketAddr,
    /// `mapedFileSizeCommitLog`. Multiple of 4 KiB.
    pub segment_bytes: u64,
    /// Append RocketMQ's whole-record `__CRC32#` property to every record so
    /// recovery detects damage outside the body (`enabledAppendPropCRC`).
    pub record_crc: bool,
    /// `flushIntervalCommitLog`.
    pub flush_interval_ms: u64,
    /// `syncFlushTimeout`.
    pub sync_flush_timeout_ms: u64,
    /// Largest single write the flusher issues; below the device's max request size.
    pub write_io_bytes: usize,
    /// How many flush writes may be in flight at once.
    pub write_io_depth: usize,
    /// Largest single read issued for cold data.
    pub read_io_bytes: usize,
    /// Appends are refused with `Busy` while this much is waiting for flush.
    pub write_buffer_bytes: u64,
    /// Recent log bytes kept in memory so caught-up readers never touch disk.
    pub tail_cache_bytes: u64,
    /// `maxMessageSize`: limit on one message body.
    pub max_message_bytes: usize,
    /// ConsumeQueue units per file (`mapedFileSizeConsumeQueue` / 20).
    pub cq_entries_per_file: u64,
    /// Most recent units of each consume queue kept in memory.
    pub cq_tail_entries: usize,
    /// Hash slots per index file.
    pub index_slots: u32,
    /// Entries per index file; the active one lives in memory.
    pub index_entries: u32,
    /// How often consume queues are synced and the checkpoint advanced.
    pub checkpoint_interval_ms: u64,
    /// `fileReservedTime`.
    pub file_reserved_hours: u64,
    /// `deleteWhen`: local hours (0-23) at which expired segments are deleted.
    pub delete_when_hours: Vec<u32>,
    /// `diskMaxUsedSpaceRatio`: above it, expired segments go regardless of hour.
    pub disk_max_used_ratio: f64,
    /// Above it, the oldest segments go regardless of age.
    pub disk_force_clean_ratio: f64,
    /// Above it, writes are refused as "disk full".
    pub disk_full_ratio: f64,
    /// How often retention and the disk-usage reading run.
    pub retention_check_interval_ms: u64,
    /// Most segments one retention pass deletes.
    pub retention_max_segments_per_pass: usize,
}

pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 30;
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

impl StoreConfig {
    pub fn new(root_dir: impl Into<PathBuf>, store_host: SocketAddr) -> Self {
        StoreConfig {
            root_dir: root_dir.into(),
            store_host,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            record_crc: true,
            flush_interval_ms: 500,
            sync_flush_timeout_ms: 5_000,
            write_io_bytes: 1 << 20,
            write_io_depth: 8,
            read_io_bytes: 512 << 10,
            write_buffer_bytes: 128 << 20,
            tail_cache_bytes: 256 << 20,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            cq_entries_per_file: 300_000,
            cq_tail_entries: 4096,
            index_slots: 1 << 20,
            index_entries: 4 << 20,
            checkpoint_interval_ms: 1_000,
            file_reserved_hours: 72,
            delete_when_hours: vec![4],
            disk_max_used_ratio: 0.75,
            disk_force_clean_ratio: 0.85,
            disk_full_ratio: 0.90,
            retention_check_interval_ms: 10_000,
            retention_max_segments_per_pass: 10,
        }
    }

    pub fn record_format(&self) -> RecordFormat {
        RecordFormat {
            store_host: self.store_host,
            append_crc: self.record_crc,
        }
    }

    /// Largest record the configuration admits (IPv6 hosts, longest topic,
    /// fullest properties).
    pub fn max_record_bytes(&self) -> u64 {
        (RECORD_FIXED_BYTES_V6 + self.max_message_bytes + MAX_TOPIC_BYTES + MAX_PROPERTIES_BYTES)
            as u64
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |why: String| Err(StoreError::IllegalMessage(format!("store config: {why}")));
        if !self.segment_bytes.is_multiple_of(BLOCK_BYTES) {
            return bad(format!(
                "segment_bytes {} is not a multiple of {BLOCK_BYTES}",
                self.segment_bytes
            ));
        }
        // A segment must hold the largest record plus its end-of-file marker.
        if self.segment_bytes < self.max_record_bytes() + 8 {
            return bad(format!(
                "segment_bytes {} cannot hold the largest record ({} bytes)",
                self.segment_bytes,
                self.max_record_bytes()
            ));
        }
        if self.write_io_bytes == 0 || !(self.write_io_bytes as u64).is_multiple_of(BLOCK_BYTES) {
            return bad(format!(
                "write_io_bytes {} is not a positive multiple of {BLOCK_BYTES}",
                self.write_io_bytes
            ));
        }
        if self.read_io_bytes < 64 << 10 {
            return bad(format!(
                "read_io_bytes {} is below 64 KiB",
                self.read_io_bytes
            ));
        }
        if self.write_io_depth == 0
            || self.cq_entries_per_file == 0
            || self.index_slots == 0
            || self.index_entries == 0
        {
            return bad("write_io_depth, cq_entries_per_file, index_slots and index_entries must be positive".into());
        }
        if self.write_buffer_bytes < self.max_record_bytes() {
            return bad("write_buffer_bytes must hold at least one largest record".into());
        }
        // force_clean above full is allowed: writes stop first, and only
        // other writers on the disk can push usage on to forced deletion.
        if !(0.0..=1.0).contains(&self.disk_max_used_ratio)
            || self.disk_max_used_ratio > self.disk_force_clean_ratio
            || self.disk_force_clean_ratio > 1.0
            || !(0.0..=1.0).contains(&self.disk_full_ratio)
        {
            return bad(
                "disk ratios must satisfy 0 <= max_used <= force_clean <= 1 and 0 <= full <= 1"
                    .into(),
            );
        }
        if self.delete_when_hours.iter().any(|h| *h > 23) {
            return bad("delete_when_hours must be hours 0-23".into());
        }
        Ok(())
    }

    /// Parses RocketMQ's `deleteWhen` ("04", or several as "04;16").
    pub fn parse_delete_when(spec: &str) -> Option<Vec<u32>> {
        spec.split(';')
            .map(|h| h.trim().parse::<u32>().ok().filter(|h| *h < 24))
            .collect()
    }
}
