//! Consumer offsets of the queues one shard owns: (group, topic, queue) →
//! committed offset, persisted to `<store>/config/consumerOffset-<shard>.json`
//! every few seconds and at shutdown. Shard-local.
//!
//! An offset an administrator reset (INVOKE_BROKER_TO_RESET_OFFSET) stays
//! marked until the group's next pull of the queue takes the mark: until
//! then the group's own commits carry the position the reset took away and
//! are not kept. The mark is memory only; the offset is persisted.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How often dirty offsets are written out.
pub const PERSIST_INTERVAL_MS: u64 = 5_000;

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct OffsetFile {
    /// "topic@group" → queueId → offset, as RocketMQ's consumerOffset.json.
    offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// One queue's committed offset.
#[derive(Clone, Copy)]
struct Committed {
    offset: i64,
    /// Reset by an administrator; the consumer has not pulled since.
    reset: bool,
}

pub struct ConsumerOffsets {
    table: HashMap<String, HashMap<String, HashMap<i32, Committed>>>,
    /// Entries marked `reset`, so that a pull pays one comparison while
    /// none waits.
    resets: usize,
    dirty: bool,
    path: PathBuf,
}

impl ConsumerOffsets {
    pub fn load(path: PathBuf) -> Result<ConsumerOffsets, String> {
        let mut table: HashMap<String, HashMap<String, HashMap<i32, Committed>>> = HashMap::new();
        if let Ok(bytes) = std::fs::read(&path) {
            let f: OffsetFile = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} is not valid: {e}", path.display()))?;
            for (key, queues) in f.offset_table {
                let Some((topic, group)) = key.split_once('@') else {
                    continue;
                };
                table.entry(group.to_string()).or_default().insert(
                    topic.to_string(),
                    queues
                        .into_iter()
                        .map(|(q, offset)| {
                            (
                                q,
                                Committed {
                                    offset,
                                    reset: false,
                                },
                            )
                        })
                        .collect(),
                );
            }
        }
        Ok(ConsumerOffsets {
            table,
            resets: 0,
            dirty: false,
            path,
        })
    }

    pub fn get(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        self.table
            .get(group)?
            .get(topic)?
            .get(&queue_id)
            .map(|c| c.offset)
    }

    /// Runs `f` on a queue's entry, created when missing (without
    /// allocating when it exists: commits come with every pull).
    fn update<R>(
        &mut self,
        group: &str,
        topic: &str,
        queue_id: i32,
        f: impl FnOnce(&mut Committed) -> R,
    ) -> R {
        let topics = match self.table.get_mut(group) {
            Some(t) => t,
            None => self.table.entry(group.to_string()).or_default(),
        };
        let queues = match topics.get_mut(topic) {
            Some(q) => q,
            None => topics.entry(topic.to_string()).or_default(),
        };
        // i64::MIN: no commit can equal it, so the first one is kept.
        f(queues.entry(queue_id).or_insert(Committed {
            offset: i64::MIN,
            reset: false,
        }))
    }

    /// A commit by the group's consumer; not kept while a reset of the
    /// queue waits for its pull.
    pub fn set(&mut self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        let changed = self.update(group, topic, queue_id, |c| {
            let keep = !c.reset && c.offset != offset;
            if keep {
                c.offset = offset;
            }
            keep
        });
        self.dirty |= changed;
    }

    /// An administrator's reset: committed at once and marked until the
    /// group's next pull of the queue (`take_reset`).
    pub fn reset(&mut self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        let newly = self.update(group, topic, queue_id, |c| {
            let newly = !c.reset;
            *c = Committed {
                offset,
                reset: true,
            };
            newly
        });
        self.resets += usize::from(newly);
        self.dirty = true;
    }

    /// The reset offset of a queue whose reset the group has not pulled
    /// since, clearing the mark.
    pub fn take_reset(&mut self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        if self.resets == 0 {
            return None;
        }
        let c = self
            .table
            .get_mut(group)?
            .get_mut(topic)?
            .get_mut(&queue_id)
            .filter(|c| c.reset)?;
        c.reset = false;
        self.resets -= 1;
        Some(c.offset)
    }

    /// Every committed offset: (group, topic, queue, offset).
    pub fn each(&self, mut f: impl FnMut(&str, &str, i32, i64)) {
        for (group, topics) in &self.table {
            for (topic, queues) in topics {
                for (q, c) in queues {
                    f(group, topic, *q, c.offset);
                }
            }
        }
    }

    pub fn forget_topic(&mut self, topic: &str) {
        for topics in self.table.values_mut() {
            if let Some(queues) = topics.remove(topic) {
                self.resets -= queues.values().filter(|c| c.reset).count();
                self.dirty = true;
            }
        }
    }

    pub fn forget_group(&mut self, group: &str) {
        if let Some(topics) = self.table.remove(group) {
            self.resets -= topics
                .values()
                .flat_map(|q| q.values())
                .filter(|c| c.reset)
                .count();
            self.dirty = true;
        }
    }

    /// Topics `group` has an offset for here.
    pub fn topics_of(&self, group: &str) -> Vec<String> {
        self.table
            .get(group)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Groups with an offset for `topic` here.
    pub fn groups_of(&self, topic: &str) -> Vec<String> {
        self.table
            .iter()
            .filter(|(_, t)| t.contains_key(topic))
            .map(|(g, _)| g.clone())
            .collect()
    }

    /// The table as `consumerOffset-<k>.json` holds it.
    fn encode(&self) -> Result<Vec<u8>, String> {
        let mut f = OffsetFile::default();
        for (group, topics) in &self.table {
            for (topic, queues) in topics {
                f.offset_table.insert(
                    format!("{topic}@{group}"),
                    queues.iter().map(|(q, c)| (*q, c.offset)).collect(),
                );
            }
        }
        serde_json::to_vec(&f).map_err(|e| e.to_string())
    }

    /// Writes the table if it changed, or always with `force`, through the
    /// file writer: the shard goes on serving meanwhile, and commits that
    /// arrive during the write mark the table dirty again.
    pub async fn persist(cell: &RefCell<ConsumerOffsets>, force: bool) -> Result<(), String> {
        let (path, bytes) = {
            let mut o = cell.borrow_mut();
            if !o.dirty && !force {
                return Ok(());
            }
            o.dirty = false;
            (o.path.clone(), o.encode()?)
        };
        let r = crate::broker::file_writer::global()
            .write(&path, bytes)
            .done()
            .await;
        if r.is_err() {
            cell.borrow_mut().dirty = true;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_persist_and_reload() {
        let dir = std::env::temp_dir().join(format!("rc-offsets-{}", std::process::id()));
        let path = dir.join("consumerOffset-0.json");
        let mut o = ConsumerOffsets::load(path.clone()).unwrap();
        o.set("g1", "T", 0, 12);
        o.set("g1", "T", 3, 7);
        o.set("g2", "U", 1, 1);
        let o = RefCell::new(o);
        futures_lite::future::block_on(ConsumerOffsets::persist(&o, false)).unwrap();
        let back = ConsumerOffsets::load(path).unwrap();
        assert_eq!(back.get("g1", "T", 0), Some(12));
        assert_eq!(back.get("g1", "T", 3), Some(7));
        assert_eq!(back.get("g2", "U", 1), Some(1));
        assert_eq!(back.get("g2", "T", 1), None);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_reset_outranks_commits_until_its_pull() {
        let mut o =
            ConsumerOffsets::load(std::env::temp_dir().join("rc-offsets-unused.json")).unwrap();
        assert_eq!(o.take_reset("g", "T", 0), None);
        o.set("g", "T", 0, 9);
        o.reset("g", "T", 0, 2);
        o.set("g", "T", 0, 9);
        assert_eq!(o.get("g", "T", 0), Some(2));
        assert_eq!(o.take_reset("g", "T", 0), Some(2));
        assert_eq!(o.take_reset("g", "T", 0), None);
        o.set("g", "T", 0, 3);
        assert_eq!(o.get("g", "T", 0), Some(3));
        o.reset("g", "T", 1, 0);
        o.forget_group("g");
        assert_eq!(o.resets, 0);
    }
}
