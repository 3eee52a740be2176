//! What the store reads from the world besides its files: the clock, the
//! disk's fill level, and failpoints on the write path. Tests swap in their
//! own `Environment` to drive retention, disk-full and I/O-error paths.

use std::io;
use std::path::Path;

/// A write-path operation a failpoint can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    /// A commit-log block write.
    Write,
    /// A commit-log fdatasync.
    Sync,
    /// Creating and preallocating a segment.
    Allocate,
    /// Writing consume-queue units to their file.
    CqWrite,
    /// A consume-queue fdatasync.
    CqSync,
    /// Writing and syncing a sealed key index.
    IndexSeal,
    /// Writing and syncing a checkpoint slot.
    Checkpoint,
    /// Between cutting a replica's log and cutting its queues
    /// (`truncate_tail`): a crash there must still recover cleanly.
    Truncate,
}

pub trait Environment {
    fn now_ms(&self) -> i64;
    /// Local hour of day, 0-23 (RocketMQ's `deleteWhen` is local time).
    fn local_hour(&self) -> u32;
    /// Fraction of the filesystem holding `path` that is in use, 0.0-1.0.
    fn disk_used_ratio(&self, path: &Path) -> io::Result<f64>;
    /// Called before each write-path operation; an error is treated as if
    /// the operation itself had failed with it.
    fn failpoint(&self, _op: IoOp) -> io::Result<()> {
        Ok(())
    }
}

/// The real machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemEnvironment;

impl Environment for SystemEnvironment {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }

    fn local_hour(&self) -> u32 {
        let now = (self.now_ms() / 1000) as libc::time_t;
        // SAFETY: localtime_r writes only into the `tm` we pass.
        unsafe {
            let mut tm: libc::tm = std::mem::zeroed();
            if libc::localtime_r(&now, &mut tm).is_null() {
                return ((now / 3600) % 24) as u32;
            }
            tm.tm_hour as u32
        }
    }

    fn disk_used_ratio(&self, path: &Path) -> io::Result<f64> {
        let (total, available) = disk_space(path)?;
        if total == 0 {
            return Ok(0.0);
        }
        // Count what unprivileged users cannot use as used, like `df`.
        Ok(1.0 - available as f64 / total as f64)
    }
}

/// (total, available to unprivileged users) bytes of the filesystem
/// holding `path`.
pub fn disk_space(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs writes only into the struct we pass.
    let st = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return Err(io::Error::last_os_error());
        }
        st
    };
    let block = st.f_frsize as u64;
    Ok((st.f_blocks as u64 * block, st.f_bavail as u64 * block))
}
