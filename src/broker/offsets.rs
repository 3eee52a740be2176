//! Consumer offsets of the queues one shard owns: (group, topic, queue) →
//! committed offset, persisted to `<store>/config/consumerOffset-<shard>.json`
//! every few seconds and at shutdown. Shard-local.

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

    /// Groups with an offset for `topic` here.
    pub fn groups_of(&self, topic: &str) -> Vec<String> {
        self.table
            .iter()
            .filter(|(_, t)| t.contains_key(topic))
            .map(|(g, _)| g.clone())
            .collect()
    }

    /// Writes the table if it changed (temp file, sync, rename).
    pub fn persist(&mut self) -> Result<(), String> {
        if !self.dirty {
            return Ok(());
        }
        let mut f = OffsetFile::default();
        for (group, topics) in &self.table {
            for (topic, queues) in topics {
                f.offset_table.insert(
                    format!("{topic}@{group}"),
                    queues.iter().map(|(q, o)| (*q, *o)).collect(),
                );
            }
        }
        let bytes = serde_json::to_vec(&f).map_err(|e| e.to_string())?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        crate::broker::meta::write_atomically(&self.path, &bytes)
            .map_err(|e| format!("writing {}: {e}", self.path.display()))?;
        self.dirty = false;
        Ok(())
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
        o.persist().unwrap();
        let back = ConsumerOffsets::load(path).unwrap();
        assert_eq!(back.get("g1", "T", 0), Some(12));
        assert_eq!(back.get("g1", "T", 3), Some(7));
        assert_eq!(back.get("g2", "U", 1), Some(1));
        assert_eq!(back.get("g2", "T", 1), None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
