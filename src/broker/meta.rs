//! Broker metadata: topic configs, subscription groups and the
//! subscriptions consumers registered by heartbeat. Shard 0 owns the
//! authoritative copy (`MetaOwner`) together with the client registry and
//! the queue locks; every shard reads an immutable `MetaSnapshot` replica,
//! replaced wholesale by broadcast when the owner changes anything.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::broker::file_writer::{self, Written};
use crate::protocol::{
    DataVersion, MessageQueue, SubscriptionData, SubscriptionGroupConfig, SubscriptionGroupWrapper,
    TopicConfig, TopicConfigSerializeWrapper,
};

/// The auto-create template topic (spec §7.4).
pub const TBW102: &str = "TBW102";
pub const RETRY_GROUP_TOPIC_PREFIX: &str = "%RETRY%";
pub const DLQ_GROUP_TOPIC_PREFIX: &str = "%DLQ%";
/// Topics clients may not send to directly (spec §7.4).
pub const NOT_ALLOWED_SEND_TOPICS: &[&str] = &[
    "SCHEDULE_TOPIC_XXXX",
    "rmq_sys_wheel_timer",
    "RMQ_SYS_TRANS_HALF_TOPIC",
    "RMQ_SYS_TRANS_OP_HALF_TOPIC",
    "TRANS_CHECK_MAX_TIME_TOPIC",
    "SELF_TEST_TOPIC",
    "OFFSET_MOVED_EVENT",
];
/// A consumer or producer silent this long is dropped (spec §10.4).
pub const CLIENT_EXPIRE_MS: i64 = 120_000;
/// A queue lock not renewed within this long is free (spec §10.4).
pub const LOCK_EXPIRE_MS: i64 = 60_000;

/// A registered subscription with its tag codes computed once.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub data: SubscriptionData,
    /// `None`: every message matches.
    pub tag_codes: Option<Vec<i64>>,
}

impl Subscription {
    pub fn new(data: SubscriptionData) -> Subscription {
        // SQL92 subscriptions filter on properties, not on tag codes.
        let tag_codes = (data.is_tag_type() && !data.is_tag_all()).then(|| data.java_tag_codes());
        Subscription { data, tag_codes }
    }
}

#[derive(Debug, Clone, Default)]
pub struct GroupSubscriptions {
    pub message_model: String,
    pub topics: HashMap<String, Subscription>,
}

/// What every shard reads. Immutable; replaced, never edited in place.
#[derive(Debug, Clone, Default)]
pub struct MetaSnapshot {
    pub version: u64,
    pub topics: HashMap<String, TopicConfig>,
    pub groups: HashMap<String, SubscriptionGroupConfig>,
    pub subscriptions: HashMap<String, GroupSubscriptions>,
}

impl MetaSnapshot {
    pub fn topic(&self, name: &str) -> Option<&TopicConfig> {
        self.topics.get(name)
    }

    pub fn subscription(&self, group: &str, topic: &str) -> Option<&Subscription> {
        self.subscriptions.get(group)?.topics.get(topic)
    }
}

/// A client connection registered under a group.
#[derive(Debug, Clone)]
pub struct Member {
    pub client_id: String,
    pub conn_id: u64,
    pub conn_shard: usize,
    pub peer: SocketAddr,
    pub language: String,
    pub version: i32,
    pub last_seen_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ConsumerGroupInfo {
    pub members: BTreeMap<String, Member>,
    pub consume_type: String,
    pub message_model: String,
    pub consume_from_where: String,
}

/// Shard 0's authoritative metadata and client registry.
pub struct MetaOwner {
    pub snapshot: Arc<MetaSnapshot>,
    pub data_version: DataVersion,
    pub consumers: HashMap<String, ConsumerGroupInfo>,
    pub producers: HashMap<String, BTreeMap<String, Member>>,
    pub locks: HashMap<(String, MessageQueue), (String, i64)>,
    config_dir: PathBuf,
}

impl MetaOwner {
    /// Loads `<store>/config/{topics,subscriptionGroup}.json`.
    pub fn load(store_dir: &Path) -> Result<MetaOwner, String> {
        let config_dir = store_dir.join("config");
        std::fs::create_dir_all(&config_dir)
            .map_err(|e| format!("creating {}: {e}", config_dir.display()))?;
        let mut snap = MetaSnapshot::default();
        let mut data_version = DataVersion::now();
        let topics_path = config_dir.join("topics.json");
        if let Ok(bytes) = std::fs::read(&topics_path) {
            let w: TopicConfigSerializeWrapper = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} is not valid: {e}", topics_path.display()))?;
            data_version = w.data_version;
            snap.topics = w.topic_config_table.into_iter().collect();
        }
        let groups_path = config_dir.join("subscriptionGroup.json");
        if let Ok(bytes) = std::fs::read(&groups_path) {
            let w: SubscriptionGroupWrapper = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} is not valid: {e}", groups_path.display()))?;
            snap.groups = w.subscription_group_table.into_iter().collect();
        }
        Ok(MetaOwner {
            snapshot: Arc::new(snap),
            data_version,
            consumers: HashMap::new(),
            producers: HashMap::new(),
            locks: HashMap::new(),
            config_dir,
        })
    }

    pub fn snap(&self) -> &MetaSnapshot {
        &self.snapshot
    }

    /// A mutable copy of the snapshot; the caller publishes it afterwards.
    pub fn edit(&mut self) -> &mut MetaSnapshot {
        let s = Arc::make_mut(&mut self.snapshot);
        s.version += 1;
        s
    }

    pub fn topic_wrapper(&self) -> TopicConfigSerializeWrapper {
        TopicConfigSerializeWrapper {
            topic_config_table: self
                .snapshot
                .topics
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            data_version: self.data_version,
        }
    }

    /// The edits below apply at once; the returned write makes them
    /// durable off the shard (`file_writer`).
    pub fn put_topic(&mut self, cfg: TopicConfig) -> Result<Written, String> {
        self.edit().topics.insert(cfg.topic_name.clone(), cfg);
        self.data_version.next_version();
        self.persist_topics()
    }

    /// None when there was no such topic.
    pub fn delete_topic(&mut self, topic: &str) -> Result<Option<Written>, String> {
        if self.edit().topics.remove(topic).is_none() {
            return Ok(None);
        }
        self.data_version.next_version();
        self.persist_topics().map(Some)
    }

    fn persist_topics(&self) -> Result<Written, String> {
        let path = self.config_dir.join("topics.json");
        let bytes = serde_json::to_vec(&self.topic_wrapper()).map_err(|e| e.to_string())?;
        Ok(file_writer::global().write(&path, bytes))
    }

    pub fn put_group(&mut self, cfg: SubscriptionGroupConfig) -> Result<Written, String> {
        self.edit().groups.insert(cfg.group_name.clone(), cfg);
        self.persist_groups()
    }

    /// None when there was no such group.
    pub fn delete_group(&mut self, group: &str) -> Result<Option<Written>, String> {
        if self.edit().groups.remove(group).is_none() {
            return Ok(None);
        }
        self.persist_groups().map(Some)
    }

    /// A slave's copy of its master's topics: replaces the table when it
    /// differs (None when it is the same).
    pub fn replace_topics(
        &mut self,
        table: BTreeMap<String, TopicConfig>,
    ) -> Result<Option<Written>, String> {
        if same_table(&self.snapshot.topics, &table) {
            return Ok(None);
        }
        self.edit().topics = table.into_iter().collect();
        self.data_version.next_version();
        self.persist_topics().map(Some)
    }

    /// A slave's copy of its master's subscription groups.
    pub fn replace_groups(
        &mut self,
        table: BTreeMap<String, SubscriptionGroupConfig>,
    ) -> Result<Option<Written>, String> {
        if same_table(&self.snapshot.groups, &table) {
            return Ok(None);
        }
        self.edit().groups = table.into_iter().collect();
        self.persist_groups().map(Some)
    }

    pub fn group_wrapper(&self) -> SubscriptionGroupWrapper {
        SubscriptionGroupWrapper {
            subscription_group_table: self
                .snapshot
                .groups
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            data_version: self.data_version,
            ..Default::default()
        }
    }

    fn persist_groups(&self) -> Result<Written, String> {
        let path = self.config_dir.join("subscriptionGroup.json");
        let bytes = serde_json::to_vec(&self.group_wrapper()).map_err(|e| e.to_string())?;
        Ok(file_writer::global().write(&path, bytes))
    }
}

/// Whether a copied table holds exactly what `current` does.
fn same_table<T: PartialEq>(current: &HashMap<String, T>, copied: &BTreeMap<String, T>) -> bool {
    current.len() == copied.len() && copied.iter().all(|(k, v)| current.get(k) == Some(v))
}
