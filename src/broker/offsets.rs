//! Consumer offsets of the queues one shard owns: (group, topic, queue) →
//! committed offset, persisted to `<store>/config/consumerOffset-<shard>.json`
//! every few seconds and at shutdown. Shard-local.

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

pub struct ConsumerOffsets {
    table: HashMap<String, HashMap<String, HashMap<i32, i64>>>,
    dirty: bool,
    path: PathBuf,
}

impl ConsumerOffsets {
    pub fn load(path: PathBuf) -> Result<ConsumerOffsets, String> {
        let mut table: HashMap<String, HashMap<String, HashMap<i32, i64>>> = HashMap::new();
        if let Ok(bytes) = std::fs::read(&path) {
            let f: OffsetFile = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} is not valid: {e}", path.display()))?;
            for (key, queues) in f.offset_table {
                let Some((topic, group)) = key.split_once('@') else {
                    continue;
                };
                table
                    .entry(group.to_string())
                    .or_default()
                    .insert(topic.to_string(), queues.into_iter().collect());
            }
        }
        Ok(ConsumerOffsets {
            table,
            dirty: false,
            path,
        })
    }

    pub fn get(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        self.table.get(group)?.get(topic)?.get(&queue_id).copied()
    }

    pub fn set(&mut self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        let topics = match self.table.get_mut(group) {
            Some(t) => t,
            None => self.table.entry(group.to_string()).or_default(),
        };
        let queues = match topics.get_mut(topic) {
            Some(q) => q,
            None => topics.entry(topic.to_string()).or_default(),
        };
        if queues.insert(queue_id, offset) != Some(offset) {
            self.dirty = true;
        }
    }

    /// Every committed offset: (group, topic, queue, offset).
    pub fn each(&self, mut f: impl FnMut(&str, &str, i32, i64)) {
        for (group, topics) in &self.table {
            for (topic, queues) in topics {
                for (q, offset) in queues {
                    f(group, topic, *q, *offset);
                }
            }
        }
    }

    pub fn forget_topic(&mut self, topic: &str) {
        for topics in self.table.values_mut() {
            if topics.remove(topic).is_some() {
                self.dirty = true;
            }
        }
    }

    pub fn forget_group(&mut self, group: &str) {
        if self.table.remove(group).is_some() {
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
                    queues.iter().map(|(q, o)| (*q, *o)).collect(),
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
}

/// Offset resets waiting for the group's next pull of a queue
/// (INVOKE_BROKER_TO_RESET_OFFSET): group → topic → queue → offset.
/// Memory only: the reset offset itself is committed and persisted.
#[derive(Default)]
pub struct PendingResets(RefCell<HashMap<String, TopicOffsets>>);

/// topic → queue → offset.
type TopicOffsets = HashMap<String, HashMap<i32, i64>>;

impl PendingResets {
    pub fn set(&self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        self.0
            .borrow_mut()
            .entry(group.to_string())
            .or_default()
            .entry(topic.to_string())
            .or_default()
            .insert(queue_id, offset);
    }

    /// Checked first, so that a pull pays nothing while no reset waits.
    pub fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }

    pub fn get(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        self.0
            .borrow()
            .get(group)?
            .get(topic)?
            .get(&queue_id)
            .copied()
    }

    pub fn take(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        let mut all = self.0.borrow_mut();
        let topics = all.get_mut(group)?;
        let queues = topics.get_mut(topic)?;
        let offset = queues.remove(&queue_id)?;
        if queues.is_empty() {
            topics.remove(topic);
            if topics.is_empty() {
                all.remove(group);
            }
        }
        Some(offset)
    }
}
