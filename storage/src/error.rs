//! The store's one error type. Each variant maps to one answer the broker
//! gives a client, so callers match on the kind, never on message text.

use std::io;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O call failed outside the write path (open, read, list).
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: io::Error,
    },

    /// A write or fdatasync of the commit log failed earlier: what reached the
    /// disk is unknown, so the log refuses writes until the process restarts
    /// and recovery re-establishes the truth. Reads keep working.
    #[error("commit log is poisoned and refuses writes: {0}")]
    Poisoned(String),

    /// The store's disk is full (or over the configured hard ratio). Writes
    /// resume by themselves once space is freed; reads keep working.
    #[error("disk full: {0}")]
    DiskFull(String),

    /// A synced append was stored (`appended` says where) but its fdatasync
    /// did not finish within `timeout_ms`; it may still become durable.
    /// RocketMQ answers FLUSH_DISK_TIMEOUT with the full send result.
    #[error("flush did not complete within {timeout_ms} ms")]
    FlushTimeout {
        timeout_ms: u64,
        appended: Option<crate::store::Appended>,
    },

    /// Too many bytes are waiting to be flushed; the caller should back off
    /// (the broker answers SYSTEM_BUSY).
    #[error("write buffer full: {pending_bytes} bytes waiting for flush (limit {limit_bytes})")]
    Busy {
        pending_bytes: u64,
        limit_bytes: u64,
    },

    /// The message itself is unacceptable (size, topic, properties).
    #[error("illegal message: {0}")]
    IllegalMessage(String),

    /// Bytes on disk do not describe what they should.
    #[error("corrupt data at {location}: {reason}")]
    Corruption { location: String, reason: String },

    /// The store is shutting down and takes no more writes.
    #[error("store is shutting down")]
    ShuttingDown,
}

impl StoreError {
    pub(crate) fn io(op: impl Into<String>, source: io::Error) -> Self {
        StoreError::Io {
            op: op.into(),
            source,
        }
    }

    /// glommio wraps io errors in its own type; keep the OS error so ENOSPC
    /// and friends stay recognisable.
    pub(crate) fn glommio(op: impl Into<String>, err: glommio::GlommioError<()>) -> Self {
        StoreError::io(op, io::Error::from(err))
    }
}

/// A write that reported fewer bytes than it was given. The kernel does
/// that when the disk fills up mid-write (the next call would say ENOSPC);
/// glommio hands the count back instead of failing, and taking it for a
/// whole write loses the rest silently.
pub(crate) fn whole_write(written: usize, wanted: usize) -> io::Result<()> {
    if written >= wanted {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::StorageFull,
        format!("short write: {written} of {wanted} bytes"),
    ))
}

/// A failed write of a file derived from the log: `DiskFull` when it
/// found no space (nothing was written, so writing again later is safe),
/// `Io` otherwise.
pub(crate) fn derived_write_error(op: String, err: io::Error) -> StoreError {
    if is_no_space(&err) {
        StoreError::DiskFull(format!("{op}: {err}"))
    } else {
        StoreError::io(op, err)
    }
}

/// True when an I/O error means "no space left", which is recoverable by
/// freeing space, unlike other write errors.
pub(crate) fn is_no_space(err: &io::Error) -> bool {
    // glommio rebuilds errors from their kind, so the raw errno may be gone.
    matches!(
        err.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || matches!(err.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}
