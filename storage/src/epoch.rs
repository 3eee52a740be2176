//! A shard's master epochs: which master wrote which stretch of the log.
//!
//! Each entry is `(epoch, start)`: from in-shard offset `start` up to the
//! next entry's start (the last runs to the log's end) the bytes were
//! written by the master of that epoch. A broker appends an entry when it
//! becomes master; a slave takes its master's entries. Two replicas whose
//! lists share an entry with the same start agree on every byte below the
//! end of that epoch on both sides (RocketMQ 5's `EpochFileCache`), which
//! is how a slave finds how much of its tail to cut before following a new
//! master.
//!
//! The file is text, one `epoch start` pair a line, replaced whole (tmp,
//! fsync, rename, fsync of the directory): it changes once per failover.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};

/// An epoch and the in-shard offset it starts at.
pub type EpochEntry = (i32, u64);

/// Most entries a file may hold; more is corruption, not history.
pub const MAX_EPOCH_ENTRIES: usize = 1024;

#[derive(Debug)]
pub struct EpochFile {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl EpochFile {
    /// Reads `<shard_dir>/epoch`; a missing file is an empty history.
    pub fn open(shard_dir: &Path) -> Result<EpochFile> {
        let path = shard_dir.join("epoch");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(StoreError::io(format!("reading {}", path.display()), e)),
        };
        let entries = parse(&text).map_err(|reason| StoreError::Corruption {
            location: path.display().to_string(),
            reason,
        })?;
        Ok(EpochFile { path, entries })
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn last_epoch(&self) -> i32 {
        self.entries.last().map_or(0, |e| e.0)
    }

    /// Replaces the history (a slave taking its master's, or an entry
    /// appended on promotion) and makes it durable before returning.
    pub fn replace(&mut self, entries: Vec<EpochEntry>) -> Result<()> {
        check(&entries).map_err(|reason| StoreError::Corruption {
            location: self.path.display().to_string(),
            reason,
        })?;
        if entries == self.entries {
            return Ok(());
        }
        let mut text = String::new();
        for (e, s) in &entries {
            text.push_str(&format!("{e} {s}\n"));
        }
        let tmp = self.path.with_extension("tmp");
        let io = |what: &str, e| StoreError::io(format!("{what} {}", tmp.display()), e);
        let mut f = std::fs::File::create(&tmp).map_err(|e| io("creating", e))?;
        f.write_all(text.as_bytes()).map_err(|e| io("writing", e))?;
        f.sync_all().map_err(|e| io("syncing", e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| io("renaming", e))?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io("syncing the directory of", e))?;
        }
        self.entries = entries;
        Ok(())
    }

    /// Starts `epoch` at `start`: entries at or past `start` are dropped
    /// (epochs that wrote nothing here, or whose bytes were cut).
    pub fn begin(&mut self, epoch: i32, start: u64) -> Result<()> {
        let mut next: Vec<EpochEntry> = self
            .entries
            .iter()
            .copied()
            .filter(|&(_, s)| s < start)
            .collect();
        if next.last().is_some_and(|&(e, _)| e >= epoch) {
            return Err(StoreError::Corruption {
                location: self.path.display().to_string(),
                reason: format!("epoch {epoch} is not newer than the last one recorded"),
            });
        }
        next.push((epoch, start));
        self.replace(next)
    }
}

fn parse(text: &str) -> std::result::Result<Vec<EpochEntry>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_ascii_whitespace();
        let (Some(e), Some(s), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("line {}: expected `epoch start`", n + 1));
        };
        let e: i32 = e
            .parse()
            .map_err(|_| format!("line {}: bad epoch", n + 1))?;
        let s: u64 = s
            .parse()
            .map_err(|_| format!("line {}: bad start offset", n + 1))?;
        out.push((e, s));
    }
    check(&out)?;
    Ok(out)
}

/// Epochs rise strictly and starts never fall.
fn check(entries: &[EpochEntry]) -> std::result::Result<(), String> {
    if entries.len() > MAX_EPOCH_ENTRIES {
        return Err(format!(
            "{} epochs (at most {MAX_EPOCH_ENTRIES})",
            entries.len()
        ));
    }
    for w in entries.windows(2) {
        if w[1].0 <= w[0].0 || w[1].1 < w[0].1 {
            return Err(format!(
                "epoch {} at {} follows epoch {} at {}",
                w[1].0, w[1].1, w[0].0, w[0].1
            ));
        }
    }
    if entries.iter().any(|&(e, _)| e <= 0) {
        return Err("epochs start at 1".into());
    }
    Ok(())
}

/// The end of each entry's stretch: the next start, the last one `end`.
/// Entries starting past `end` (announced but not yet received) are left
/// out.
fn spans(entries: &[EpochEntry], end: u64) -> Vec<(i32, u64, u64)> {
    let live: Vec<EpochEntry> = entries.iter().copied().filter(|&(_, s)| s <= end).collect();
    live.iter()
        .enumerate()
        .map(|(i, &(e, s))| {
            let to = live.get(i + 1).map_or(end, |n| n.1).min(end);
            (e, s, to)
        })
        .collect()
}

/// Where a replica whose log ends at `local_end` agrees with a master
/// whose log ends at `master_end`: everything below the returned offset is
/// the same on both; bytes past it are the replica's own and must go.
/// `None`: no common epoch, so no safe point is known.
///
/// An empty local log agrees at its end. A log with no epochs (written
/// before epochs were kept, or by classic replication) agrees with a
/// master that has none either, or whose first epoch starts at or after
/// the local end.
pub fn consistent_point(
    local: &[EpochEntry],
    local_end: u64,
    master: &[EpochEntry],
    master_end: u64,
) -> Option<u64> {
    let mine = spans(local, local_end);
    let theirs = spans(master, master_end);
    if mine.is_empty() {
        return match theirs.first() {
            None => Some(local_end.min(master_end)),
            Some(&(_, s, _)) => Some(local_end.min(s)),
        };
    }
    for &(e, s, to) in mine.iter().rev() {
        if let Some(&(_, _, their_to)) = theirs.iter().find(|&&(me, ms, _)| me == e && ms == s) {
            return Some(to.min(their_to));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_history_agrees_at_the_shorter_end() {
        let h = [(1, 0), (2, 100)];
        assert_eq!(consistent_point(&h, 150, &h, 400), Some(150));
        assert_eq!(consistent_point(&h, 400, &h, 150), Some(150));
    }

    #[test]
    fn old_master_cuts_what_it_wrote_after_the_new_one_took_over() {
        // Old master wrote epoch 2 up to 500; the slave had 0..300 of it
        // when it was promoted with epoch 3 at 300.
        let old = [(1, 0), (2, 100)];
        let new = [(1, 0), (2, 100), (3, 300)];
        assert_eq!(consistent_point(&old, 500, &new, 900), Some(300));
    }

    #[test]
    fn unknown_epochs_are_skipped_until_a_shared_one() {
        let local = [(1, 0), (4, 200)];
        let master = [(1, 0), (3, 150)];
        assert_eq!(consistent_point(&local, 250, &master, 400), Some(150));
        assert_eq!(consistent_point(&[(7, 0)], 10, &master, 400), None);
    }

    #[test]
    fn empty_and_epochless_logs() {
        assert_eq!(consistent_point(&[], 0, &[(1, 0)], 50), Some(0));
        assert_eq!(consistent_point(&[], 80, &[], 50), Some(50));
        // Classic-mode data below the master's first epoch is shared.
        assert_eq!(consistent_point(&[], 80, &[(1, 60)], 500), Some(60));
    }

    #[test]
    fn file_round_trip_and_begin_drops_later_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = EpochFile::open(dir.path()).unwrap();
        assert!(f.entries().is_empty());
        f.begin(1, 0).unwrap();
        f.begin(2, 100).unwrap();
        f.begin(3, 80).unwrap();
        assert_eq!(f.entries(), &[(1, 0), (3, 80)]);
        assert!(f.begin(3, 90).is_err(), "an epoch is not reused");
        let again = EpochFile::open(dir.path()).unwrap();
        assert_eq!(again.entries(), &[(1, 0), (3, 80)]);
        assert_eq!(again.last_epoch(), 3);
    }

    #[test]
    fn corrupt_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("epoch"), "2 10\n1 20\n").unwrap();
        assert!(EpochFile::open(dir.path()).is_err());
        std::fs::write(dir.path().join("epoch"), "x y\n").unwrap();
        assert!(EpochFile::open(dir.path()).is_err());
    }
}
