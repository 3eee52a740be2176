//! The shard count a store was written with, kept in `<store>/config/shards`.
//!
//! Queue ownership is `(javaHash(topic) + queueId) mod shards`, and each
//! shard keeps its queues' log, consume queues and consumer offsets in its
//! own directory. Opened with another count, every queue would be looked for
//! on the wrong shard: empty queues, offsets back at 0, old data unreachable,
//! and nothing reporting it. So the count is recorded on first start and a
//! store only ever opens with it.

use std::path::Path;

const FILE: &str = "shards";

/// The shard count to run `store_dir` with. `requested` is what the flags
/// ask for; `explicit` says whether the user chose it (`--shards`) or it is
/// the default (the cores available, which moves with the host, a CPU quota
/// or affinity). A recorded count wins over a default and refuses an
/// explicit count that differs. A new store records `requested`.
pub fn settle(store_dir: &Path, requested: usize, explicit: bool) -> Result<usize, String> {
    let path = store_dir.join("config").join(FILE);
    let recorded = match std::fs::read_to_string(&path) {
        Ok(text) => Some(parse(&text).map_err(|why| format!("{}: {why}", path.display()))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => shard_dirs(store_dir)?,
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    match recorded {
        Some(n) if n == requested => {}
        Some(n) if !explicit => {
            tracing::info!(
                "store {} was written by {n} shards: running {n}, not the {requested} cores available",
                store_dir.display()
            );
        }
        Some(n) => {
            return Err(format!(
            "store {} was written by {n} shards and cannot be opened with --shards {requested}: \
                 a queue's shard is (hash(topic) + queueId) mod shards, so every queue, its \
                 messages and its consumer offsets would be looked for on the wrong shard. \
                 Start with --shards {n}, or move the queues to a new store",
            store_dir.display()
        ))
        }
        None => {}
    }
    let n = recorded.unwrap_or(requested);
    if recorded.is_none() || !path.exists() {
        write(&path, n)?;
    }
    Ok(n)
}

fn parse(text: &str) -> Result<usize, String> {
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=64).contains(n))
        .ok_or_else(|| {
            format!(
                "expected a shard count from 1 to 64, found {:?}",
                text.trim()
            )
        })
}

/// A store from before the count was recorded: its `shard-<k>` directories
/// say how many shards wrote it (every shard creates its own at start).
fn shard_dirs(store_dir: &Path) -> Result<Option<usize>, String> {
    let entries = match std::fs::read_dir(store_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", store_dir.display())),
    };
    let highest = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            name.to_str()?.strip_prefix("shard-")?.parse::<usize>().ok()
        })
        .max();
    Ok(highest.map(|k| k + 1))
}

fn write(path: &Path, n: usize) -> Result<(), String> {
    let dir = path.parent().expect("config file has a parent");
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    crate::broker::file_writer::write_atomically(path, format!("{n}\n").as_bytes())
        .map_err(|e| format!("recording the shard count in {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_store_records_the_count_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(settle(dir.path(), 3, false), Ok(3));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("config/shards")).unwrap(),
            "3\n"
        );
        // A host with more cores: the default yields to the record.
        assert_eq!(settle(dir.path(), 8, false), Ok(3));
        assert_eq!(settle(dir.path(), 3, true), Ok(3));
        let refused = settle(dir.path(), 2, true).unwrap_err();
        assert!(refused.contains("written by 3 shards"), "{refused}");
        assert!(refused.contains("--shards 3"), "{refused}");
    }

    #[test]
    fn a_store_from_before_the_record_is_counted_by_its_shard_directories() {
        let dir = tempfile::tempdir().unwrap();
        for k in 0..4 {
            std::fs::create_dir_all(dir.path().join(format!("shard-{k}/commitlog"))).unwrap();
        }
        assert!(settle(dir.path(), 2, true).is_err());
        assert_eq!(settle(dir.path(), 2, false), Ok(4));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("config/shards")).unwrap(),
            "4\n"
        );
    }

    #[test]
    fn a_damaged_record_is_an_error_not_a_guess() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::write(dir.path().join("config/shards"), "many").unwrap();
        let e = settle(dir.path(), 2, false).unwrap_err();
        assert!(e.contains("expected a shard count"), "{e}");
    }
}
