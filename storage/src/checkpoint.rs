//! The shard's checkpoint: what was known durable when it was written. Two
//! 512-byte slots written alternately, each with a sequence number and CRC,
//! so a torn write leaves the previous one readable.

use std::path::PathBuf;

use glommio::io::{BufferedFile, OpenOptions};

use crate::error::{Result, StoreError};

const SLOT_BYTES: u64 = 512;
const MAGIC: u32 = 0x5243_4350; // "RCCP"

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: u64,
    /// In-shard offset up to which the commit log was written and synced.
    pub log_flushed: u64,
    /// In-shard offset below which every record's consume-queue unit is synced.
    pub cq_durable: u64,
    pub written_at_ms: i64,
}

impl Checkpoint {
    fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; SLOT_BYTES as usize];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..12].copy_from_slice(&self.seq.to_le_bytes());
        b[12..20].copy_from_slice(&self.log_flushed.to_le_bytes());
        b[20..28].copy_from_slice(&self.cq_durable.to_le_bytes());
        b[28..36].copy_from_slice(&self.written_at_ms.to_le_bytes());
        let crc = crc32fast::hash(&b[..36]);
        b[36..40].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Checkpoint> {
        if b.len() < 40 {
            return None;
        }
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        let magic = u32::from_le_bytes(b[0..4].try_into().ok()?);
        let crc = u32::from_le_bytes(b[36..40].try_into().ok()?);
        if magic != MAGIC || crc != crc32fast::hash(&b[..36]) {
            return None;
        }
        Some(Checkpoint {
            seq: u64_at(4),
            log_flushed: u64_at(12),
            cq_durable: u64_at(20),
            written_at_ms: u64_at(28) as i64,
        })
    }
}

pub(crate) struct CheckpointFile {
    path: PathBuf,
    file: BufferedFile,
    last: Option<Checkpoint>,
}

impl CheckpointFile {
    pub(crate) async fn open(path: PathBuf) -> Result<CheckpointFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .buffered_open(&path)
            .await
            .map_err(|e| StoreError::glommio(format!("opening {}", path.display()), e))?;
        let data = file
            .read_at(0, 2 * SLOT_BYTES as usize)
            .await
            .map_err(|e| StoreError::glommio(format!("reading {}", path.display()), e))?;
        let slot = |i: usize| {
            let from = i * SLOT_BYTES as usize;
            data.get(from..from + SLOT_BYTES as usize)
                .and_then(Checkpoint::decode)
        };
        let last = [slot(0), slot(1)]
            .into_iter()
            .flatten()
            .max_by_key(|c| c.seq);
        Ok(CheckpointFile { path, file, last })
    }

    pub(crate) fn last(&self) -> Option<Checkpoint> {
        self.last
    }

    pub(crate) async fn write(&mut self, mut cp: Checkpoint) -> Result<()> {
        cp.seq = self.last.map_or(1, |c| c.seq + 1);
        let at = (cp.seq % 2) * SLOT_BYTES;
        let slot = cp.encode();
        let wanted = slot.len();
        self.file
            .write_at(slot, at)
            .await
            .map_err(std::io::Error::from)
            .and_then(|n| crate::error::whole_write(n, wanted))
            .map_err(|e| StoreError::io(format!("writing {}", self.path.display()), e))?;
        self.file
            .fdatasync()
            .await
            .map_err(|e| StoreError::glommio(format!("syncing {}", self.path.display()), e))?;
        self.last = Some(cp);
        Ok(())
    }
}
