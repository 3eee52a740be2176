//! The control-plane file writer: one thread, not a shard, that replaces
//! small files (topic and group configs, consumer offsets, delivery and
//! transaction marks) atomically and durably.
//!
//! Those writes are a create, a write, an fdatasync, a rename and a
//! directory fsync: milliseconds to tens of milliseconds while the disk is
//! busy with the commit log. Done with `std::fs` on a shard they stopped
//! every connection and queue of that shard meanwhile (the review's R4). A
//! shard now hands the bytes over a `flume` channel and, where an answer
//! must wait for durability, awaits the result; the shard keeps serving.
//!
//! Jobs for one path that queue up are merged (the newest bytes win, every
//! waiter gets the result) and bytes equal to what the path last received
//! are not written again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

enum Job {
    Write {
        path: PathBuf,
        bytes: Vec<u8>,
        done: flume::Sender<Result<(), String>>,
    },
    /// Answers once every job sent before it is done.
    Barrier(flume::Sender<()>),
}

/// Completion of one write.
#[must_use = "a write's result says whether the file is durable"]
pub struct Written(flume::Receiver<Result<(), String>>);

impl Written {
    /// Waits without blocking the executor.
    pub async fn done(self) -> Result<(), String> {
        self.0
            .recv_async()
            .await
            .unwrap_or_else(|_| Err("the file writer stopped".into()))
    }

    /// Waits on a thread that is no executor (start-up, shutdown).
    pub fn wait(self) -> Result<(), String> {
        self.0
            .recv()
            .unwrap_or_else(|_| Err("the file writer stopped".into()))
    }

    /// Lets the write finish on its own; a failure is logged by the writer.
    pub fn detach(self) {}
}

pub struct FileWriter {
    jobs: flume::Sender<Job>,
}

/// The process's writer, started on first use.
pub fn global() -> &'static FileWriter {
    static WRITER: OnceLock<FileWriter> = OnceLock::new();
    WRITER.get_or_init(FileWriter::start)
}

impl FileWriter {
    fn start() -> FileWriter {
        let (jobs, rx) = flume::unbounded();
        std::thread::Builder::new()
            .name("file-writer".into())
            .spawn(move || run(rx))
            .expect("spawning the file writer thread");
        FileWriter { jobs }
    }

    /// Replaces `path` with `bytes` (temp file, sync, rename, directory
    /// sync), creating its directory if needed.
    pub fn write(&self, path: &Path, bytes: Vec<u8>) -> Written {
        let (done, rx) = flume::bounded(1);
        let job = Job::Write {
            path: path.to_path_buf(),
            bytes,
            done,
        };
        if let Err(flume::SendError(Job::Write { done, .. })) = self.jobs.send(job) {
            let _ = done.send(Err("the file writer stopped".into()));
        }
        Written(rx)
    }

    /// Blocks until every write sent before this call is done.
    pub fn barrier(&self) {
        let (tx, rx) = flume::bounded(1);
        if self.jobs.send(Job::Barrier(tx)).is_ok() {
            let _ = rx.recv();
        }
    }
}

type Waiter = flume::Sender<Result<(), String>>;

fn run(rx: flume::Receiver<Job>) {
    let mut last: HashMap<PathBuf, Vec<u8>> = HashMap::new();
    while let Ok(first) = rx.recv() {
        // Everything queued now is one batch: later bytes for a path
        // replace earlier ones, and barriers answer after the batch.
        let mut pending: Vec<(PathBuf, Vec<u8>, Vec<Waiter>)> = Vec::new();
        let mut barriers = Vec::new();
        for job in std::iter::once(first).chain(rx.try_iter()) {
            match job {
                Job::Write { path, bytes, done } => {
                    match pending.iter_mut().find(|(p, _, _)| *p == path) {
                        Some(slot) => {
                            slot.1 = bytes;
                            slot.2.push(done);
                        }
                        None => pending.push((path, bytes, vec![done])),
                    }
                }
                Job::Barrier(tx) => barriers.push(tx),
            }
        }
        for (path, bytes, waiters) in pending {
            let result = if last.get(&path) == Some(&bytes) {
                Ok(())
            } else {
                write_atomically(&path, &bytes)
                    .map_err(|e| format!("writing {}: {e}", path.display()))
            };
            match &result {
                Ok(()) => {
                    last.insert(path, bytes);
                }
                Err(e) => {
                    tracing::error!("{e}");
                    last.remove(&path);
                }
            }
            for w in waiters {
                let _ = w.send(result.clone());
            }
        }
        for b in barriers {
            let _ = b.send(());
        }
    }
}

/// Temp file, write, fdatasync, rename over `path`, fsync the directory: a
/// reader after a crash finds the old file or the new one, whole.
pub(crate) fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_data()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_files_and_report_failures() {
        let dir = tempfile::tempdir().unwrap();
        let w = FileWriter::start();
        let path = dir.path().join("sub/a.json");
        w.write(&path, b"one".to_vec()).wait().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        let first = w.write(&path, b"two".to_vec());
        let second = w.write(&path, b"three".to_vec());
        first.wait().unwrap();
        second.wait().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"three");
        // Unchanged bytes are not written again: a file removed behind the
        // writer's back stays removed.
        std::fs::remove_file(&path).unwrap();
        w.write(&path, b"three".to_vec()).wait().unwrap();
        assert!(!path.exists());
        // A directory where the file should go: an error, reported.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(w.write(&blocked, b"x".to_vec()).wait().is_err());
        w.barrier();
    }
}
