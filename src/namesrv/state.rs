//! The name server's route tables (spec §2.2 "Name-server semantics") and
//! the operations on them: registration, removal, expiry and route pickup.
//!
//! Tables, as in Java's `RouteInfoManager`:
//!
//! * cluster name → broker names;
//! * broker name → [`BrokerData`] (cluster, broker id → address);
//! * topic → broker name → [`QueueData`];
//! * broker address → `BrokerLive` (last registration, timeout, topic-table
//!   version, HA address, the connection it registered over);
//! * the KV config store.
//!
//! Invariants every operation keeps (checked by the property tests):
//! every broker name listed under a cluster has a `BrokerData`; every
//! `BrokerData` has at least one address; every address in a `BrokerData` has
//! a liveness entry, so it eventually expires; every topic has queue data of
//! at least one broker name.
//!
//! Liveness is keyed by broker address alone, not by (cluster, address) as in
//! Java. An address is one broker process, and a single key means that
//! removing a broker (expiry, connection close, unregister) always finds every
//! table entry of that address, so no entry can outlive its broker.

use std::collections::{BTreeMap, BTreeSet};

use crate::protocol::perm::{PERM_READ, PERM_WRITE};
use crate::protocol::route::MASTER_ID;
use crate::protocol::{
    BrokerData, ClusterInfo, DataVersion, QueueData, TopicConfigSerializeWrapper, TopicList,
    TopicRouteData,
};

use super::kv::KvConfig;
use super::{BROKER_EXPIRE_MS, NAMESPACE_ORDER_TOPIC_CONFIG};

/// Name-server options. `Default` is Java's `NamesrvConfig` defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamesrvConfig {
    /// Put the `ORDER_TOPIC_CONFIG` KV entry of a topic into its route as
    /// `orderTopicConf` (Java `orderMessageEnable`, default false).
    pub order_message_enable: bool,
    /// Answer GET_ALL_TOPIC_LIST_FROM_NAMESERVER; otherwise SYSTEM_ERROR
    /// "disable" (Java `enableAllTopicList`, default true).
    pub enable_all_topic_list: bool,
    /// Answer GET_TOPICS_BY_CLUSTER; otherwise SYSTEM_ERROR "disable" (Java
    /// `enableTopicList`, default true).
    pub enable_topic_list: bool,
    /// Send the `ORDER_TOPIC_CONFIG` namespace back in REGISTER_BROKER
    /// responses (Java `returnOrderTopicConfigToBroker`, default true).
    pub return_order_topic_config_to_broker: bool,
    /// On registration, drop the broker's queue data of topics it no longer
    /// lists (Java `deleteTopicWithBrokerRegistration`, default false: topics
    /// are removed with DELETE_TOPIC_IN_NAMESRV instead).
    pub delete_topic_with_broker_registration: bool,
    /// Refuse the registration of a broker id not yet known for its broker
    /// name when it carries exactly one topic, with SYSTEM_ERROR
    /// "register broker failed" (Java behaviour, default true). Java brokers
    /// send single-topic registrations as increments after a topic change;
    /// Java refuses them from unknown brokers so a half-known broker never
    /// appears. A broker whose *full* table has exactly one topic is refused
    /// too, until it has two.
    pub refuse_unknown_single_topic_registration: bool,
}

impl Default for NamesrvConfig {
    fn default() -> NamesrvConfig {
        NamesrvConfig {
            order_message_enable: false,
            enable_all_topic_list: true,
            enable_topic_list: true,
            return_order_topic_config_to_broker: true,
            delete_topic_with_broker_registration: false,
            refuse_unknown_single_topic_registration: true,
        }
    }
}

/// The topic a registered config routes: Java keys the route by the
/// config's own name; the map key stands in if a broker left it out.
fn route_topic_name<'a>(key: &'a str, config: &'a crate::protocol::TopicConfig) -> &'a str {
    if config.topic_name.is_empty() {
        key
    } else {
        &config.topic_name
    }
}

/// What the name server knows about one live broker address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BrokerLive {
    /// When the last registration (or QUERY_DATA_VERSION) arrived.
    pub last_update_ms: i64,
    /// Silence after which the broker is expired.
    pub timeout_ms: i64,
    /// Topic-table version of the last registration.
    pub data_version: DataVersion,
    /// Connection the last registration came over; closing it removes the broker.
    pub conn_id: u64,
    /// `ip:haPort`, returned to this broker's slaves.
    pub ha_server_addr: String,
    /// Filter-server addresses (obsolete feature, kept for the route table).
    pub filter_servers: Vec<String>,
}

impl BrokerLive {
    fn is_expired(&self, now_ms: i64) -> bool {
        // Saturating: the timeout can come from a request header.
        self.last_update_ms.saturating_add(self.timeout_ms) < now_ms
    }
}

/// One REGISTER_BROKER request, parsed.
#[derive(Debug, Clone)]
pub(super) struct Registration<'a> {
    pub cluster: &'a str,
    pub broker_addr: &'a str,
    pub broker_name: &'a str,
    pub broker_id: i64,
    pub ha_server_addr: &'a str,
    /// `heartbeatTimeoutMillis`, if sent.
    pub timeout_ms: Option<i64>,
    /// `enableActingMaster`; `None` means a pre-5.x broker.
    pub enable_acting_master: Option<bool>,
    pub topics: TopicConfigSerializeWrapper,
    pub filter_servers: Vec<String>,
    pub conn_id: u64,
    pub now_ms: i64,
}

/// Result of a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RegisterOutcome {
    /// Accepted. For a slave whose master is live: the master's address and
    /// HA address.
    Registered {
        master_addr: Option<String>,
        ha_server_addr: Option<String>,
    },
    /// Refused: see [`NamesrvConfig::refuse_unknown_single_topic_registration`].
    RefusedSingleTopic,
}

/// The name server's whole state. Single-threaded: the network layer owns it
/// and calls [`process`](super::process()) and friends one request at a time.
#[derive(Debug, Clone, Default)]
pub struct NamesrvState {
    config: NamesrvConfig,
    cluster_addr_table: BTreeMap<String, BTreeSet<String>>,
    broker_addr_table: BTreeMap<String, BrokerData>,
    topic_queue_table: BTreeMap<String, BTreeMap<String, QueueData>>,
    broker_live_table: BTreeMap<String, BrokerLive>,
    pub(super) kv: KvConfig,
}

impl NamesrvState {
    /// Empty tables, Java's default options.
    pub fn new() -> NamesrvState {
        NamesrvState::default()
    }

    /// Empty tables with `config`.
    pub fn with_config(config: NamesrvConfig) -> NamesrvState {
        NamesrvState {
            config,
            ..NamesrvState::default()
        }
    }

    /// The options in force.
    /// Clusters, live brokers and topics known, for metrics.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.cluster_addr_table.len(),
            self.broker_live_table.len(),
            self.topic_queue_table.len(),
        )
    }

    pub fn config(&self) -> &NamesrvConfig {
        &self.config
    }

    /// Whether `broker_addr` registered and has not been silent too long.
    pub fn is_broker_live(&self, broker_addr: &str, now_ms: i64) -> bool {
        self.broker_live_table
            .get(broker_addr)
            .is_some_and(|live| !live.is_expired(now_ms))
    }

    /// The KV config value of `namespace`/`key`.
    pub fn kv_config(&self, namespace: &str, key: &str) -> Option<&str> {
        self.kv.get(namespace, key)
    }

    /// The broker and cluster tables (GET_BROKER_CLUSTER_INFO), as stored:
    /// brokers past their timeout stay until the next expiry scan, as in Java.
    pub fn cluster_info(&self) -> ClusterInfo {
        ClusterInfo {
            broker_addr_table: self.broker_addr_table.clone(),
            cluster_addr_table: self.cluster_addr_table.clone(),
        }
    }

    /// The route of `topic` from brokers live at `now_ms`, or `None` if no
    /// live broker hosts it.
    ///
    /// Liveness is checked here, not only by the periodic scan, so a broker
    /// that went silent is left out of routes as soon as its timeout passes
    /// rather than up to one scan interval later. Queue data of broker names
    /// without a live address is left out too: clients could not use it.
    pub fn topic_route(&self, topic: &str, now_ms: i64) -> Option<TopicRouteData> {
        let queues = self.topic_queue_table.get(topic)?;
        let mut route = TopicRouteData::default();
        for (broker_name, queue_data) in queues {
            let Some(broker) = self.broker_addr_table.get(broker_name) else {
                continue;
            };
            let live_addrs: BTreeMap<i64, String> = broker
                .broker_addrs
                .iter()
                .filter(|(_, addr)| self.is_broker_live(addr, now_ms))
                .map(|(id, addr)| (*id, addr.clone()))
                .collect();
            if live_addrs.is_empty() {
                continue;
            }
            for addr in live_addrs.values() {
                if let Some(live) = self.broker_live_table.get(addr) {
                    if !live.filter_servers.is_empty() {
                        route
                            .filter_server_table
                            .insert(addr.clone(), live.filter_servers.clone());
                    }
                }
            }
            route.broker_datas.push(BrokerData {
                broker_addrs: live_addrs,
                ..broker.clone()
            });
            route.queue_datas.push(queue_data.clone());
        }
        if route.broker_datas.is_empty() {
            return None;
        }
        if self.config.order_message_enable {
            route.order_topic_conf = self
                .kv
                .get(NAMESPACE_ORDER_TOPIC_CONFIG, topic)
                .map(str::to_owned);
        }
        Some(route)
    }

    /// Every topic with queue data.
    pub(super) fn all_topics(&self) -> TopicList {
        TopicList {
            broker_addr: None,
            topic_list: self.topic_queue_table.keys().cloned().collect(),
        }
    }

    /// Topics hosted by any broker name of `cluster` (empty for an unknown cluster).
    pub(super) fn topics_of_cluster(&self, cluster: &str) -> TopicList {
        let names = self.cluster_addr_table.get(cluster);
        let topic_list = self
            .topic_queue_table
            .iter()
            .filter(|(_, queues)| {
                names.is_some_and(|names| names.iter().any(|name| queues.contains_key(name)))
            })
            .map(|(topic, _)| topic.clone())
            .collect();
        TopicList {
            broker_addr: None,
            topic_list,
        }
    }

    /// GET_SYSTEM_TOPIC_LIST_FROM_NS: Java brokers create a topic named after
    /// their cluster and one named after their broker name, so the list is all
    /// cluster names and broker names, plus one broker address to query.
    pub(super) fn system_topics(&self) -> TopicList {
        let mut topics = BTreeSet::new();
        for (cluster, names) in &self.cluster_addr_table {
            topics.insert(cluster.clone());
            topics.extend(names.iter().cloned());
        }
        TopicList {
            broker_addr: self
                .broker_addr_table
                .values()
                .find_map(|broker| broker.broker_addrs.values().next().cloned()),
            topic_list: topics.into_iter().collect(),
        }
    }

    /// REGISTER_BROKER, following Java's `RouteInfoManager.registerBroker`.
    pub(super) fn register_broker(&mut self, reg: Registration<'_>) -> RegisterOutcome {
        let known = self.broker_addr_table.get(reg.broker_name);
        let id_known = known.is_some_and(|broker| broker.broker_addrs.contains_key(&reg.broker_id));

        // Another address already holds this broker id. Java refuses a
        // registration whose role epoch (stateVersion) is older than that
        // address's: it is a demoted master that has not noticed yet.
        let stale = known
            .and_then(|broker| broker.broker_addrs.get(&reg.broker_id))
            .filter(|old_addr| *old_addr != reg.broker_addr)
            .and_then(|old_addr| self.broker_live_table.get(old_addr))
            .is_some_and(|old| {
                old.data_version.state_version > reg.topics.data_version.state_version
            });
        if stale {
            // Java answers SUCCESS but forgets the refused address.
            self.remove_broker_addr(reg.broker_addr);
            return RegisterOutcome::Registered {
                master_addr: None,
                ha_server_addr: None,
            };
        }

        // Checked before any table changes, unlike Java, which leaves an empty
        // BrokerData behind when it refuses here.
        if self.config.refuse_unknown_single_topic_registration
            && !id_known
            && reg.topics.topic_config_table.len() == 1
        {
            return RegisterOutcome::RefusedSingleTopic;
        }

        // Whether the topic table changed since this address last registered;
        // decided before the liveness entry is replaced below.
        let version_changed = self
            .broker_live_table
            .get(reg.broker_addr)
            .is_none_or(|live| live.data_version != reg.topics.data_version);

        self.cluster_addr_table
            .entry(reg.cluster.to_owned())
            .or_default()
            .insert(reg.broker_name.to_owned());
        let mut register_first = false;
        let broker = self
            .broker_addr_table
            .entry(reg.broker_name.to_owned())
            .or_insert_with(|| {
                register_first = true;
                BrokerData {
                    cluster: reg.cluster.to_owned(),
                    broker_name: reg.broker_name.to_owned(),
                    ..BrokerData::default()
                }
            });
        let acting_master = reg.enable_acting_master.unwrap_or(false);
        broker.enable_acting_master = acting_master;
        // A slave promoted to master (or the reverse) re-registers the same
        // address under a new id; one address must have one id.
        broker
            .broker_addrs
            .retain(|id, addr| *id == reg.broker_id || addr != reg.broker_addr);
        let previous = broker
            .broker_addrs
            .insert(reg.broker_id, reg.broker_addr.to_owned());
        register_first |= previous.is_none_or(|addr| addr.is_empty());

        let is_master = reg.broker_id == MASTER_ID;
        // 5.x: with the master gone, the lowest-id slave ("prime slave")
        // publishes the topic table, read-only when acting-master mode is on.
        let is_prime_slave = reg.enable_acting_master.is_some()
            && !is_master
            && broker.broker_addrs.keys().next() == Some(&reg.broker_id);

        if is_master || is_prime_slave {
            if self.config.delete_topic_with_broker_registration {
                self.drop_unlisted_topics(reg.broker_name, &reg.topics);
            }
            for (key, topic) in &reg.topics.topic_config_table {
                let name = route_topic_name(key, topic);
                if name.is_empty() {
                    continue;
                }
                let hosted = self
                    .topic_queue_table
                    .get(name)
                    .is_some_and(|queues| queues.contains_key(reg.broker_name));
                if register_first || version_changed || !hosted {
                    let mut perm = topic.perm;
                    if is_prime_slave && acting_master {
                        perm &= !PERM_WRITE;
                    }
                    self.topic_queue_table
                        .entry(name.to_owned())
                        .or_default()
                        .insert(
                            reg.broker_name.to_owned(),
                            QueueData {
                                broker_name: reg.broker_name.to_owned(),
                                perm,
                                read_queue_nums: topic.read_queue_nums,
                                topic_sys_flag: topic.topic_sys_flag,
                                write_queue_nums: topic.write_queue_nums,
                            },
                        );
                }
            }
        }

        self.broker_live_table.insert(
            reg.broker_addr.to_owned(),
            BrokerLive {
                last_update_ms: reg.now_ms,
                timeout_ms: reg
                    .timeout_ms
                    .filter(|ms| *ms > 0)
                    .unwrap_or(BROKER_EXPIRE_MS),
                data_version: reg.topics.data_version,
                conn_id: reg.conn_id,
                ha_server_addr: reg.ha_server_addr.to_owned(),
                filter_servers: reg.filter_servers,
            },
        );

        let mut master_addr = None;
        let mut ha_server_addr = None;
        if !is_master {
            let master = self
                .broker_addr_table
                .get(reg.broker_name)
                .and_then(|broker| broker.broker_addrs.get(&MASTER_ID));
            if let Some(master) = master {
                if let Some(live) = self.broker_live_table.get(master) {
                    master_addr = Some(master.clone());
                    ha_server_addr = Some(live.ha_server_addr.clone());
                }
            }
        }
        RegisterOutcome::Registered {
            master_addr,
            ha_server_addr,
        }
    }

    /// Removes `broker_name`'s queue data of topics missing from `topics`.
    fn drop_unlisted_topics(&mut self, broker_name: &str, topics: &TopicConfigSerializeWrapper) {
        let listed: BTreeSet<&str> = topics
            .topic_config_table
            .iter()
            .map(|(key, config)| route_topic_name(key, config))
            .collect();
        self.topic_queue_table.retain(|topic, queues| {
            if !listed.contains(topic.as_str()) {
                queues.remove(broker_name);
            }
            !queues.is_empty()
        });
    }

    /// Forgets `broker_addr` everywhere: liveness, every broker id it holds,
    /// and, for broker names left without addresses, their cluster membership
    /// and queue data (topics left without queue data disappear). Returns
    /// whether the address was known at all.
    pub(super) fn remove_broker_addr(&mut self, broker_addr: &str) -> bool {
        let was_live = self.broker_live_table.remove(broker_addr).is_some();
        let mut emptied = Vec::new();
        let mut listed = false;
        for (name, broker) in &mut self.broker_addr_table {
            let before = broker.broker_addrs.len();
            broker.broker_addrs.retain(|_, addr| addr != broker_addr);
            listed |= broker.broker_addrs.len() != before;
            if broker.broker_addrs.is_empty() {
                emptied.push(name.clone());
            }
        }
        for name in &emptied {
            self.broker_addr_table.remove(name);
            // A broker name can be listed under more than one cluster if its
            // brokers disagreed on the cluster name; drop it from all.
            self.cluster_addr_table.retain(|_, names| {
                names.remove(name);
                !names.is_empty()
            });
            self.topic_queue_table.retain(|_, queues| {
                queues.remove(name);
                !queues.is_empty()
            });
        }
        was_live || listed
    }

    /// Addresses whose last registration came over connection `conn_id`.
    pub(super) fn addrs_registered_over(&self, conn_id: u64) -> Vec<String> {
        self.broker_live_table
            .iter()
            .filter(|(_, live)| live.conn_id == conn_id)
            .map(|(addr, _)| addr.clone())
            .collect()
    }

    /// Addresses silent for longer than their timeout at `now_ms`.
    pub(super) fn expired_addrs(&self, now_ms: i64) -> Vec<String> {
        self.broker_live_table
            .iter()
            .filter(|(_, live)| live.is_expired(now_ms))
            .map(|(addr, _)| addr.clone())
            .collect()
    }

    /// DELETE_TOPIC_IN_NAMESRV: the whole topic, or only the queue data of
    /// `cluster`'s broker names.
    pub(super) fn delete_topic(&mut self, topic: &str, cluster: Option<&str>) {
        let Some(cluster) = cluster else {
            self.topic_queue_table.remove(topic);
            return;
        };
        let (Some(names), Some(queues)) = (
            self.cluster_addr_table.get(cluster),
            self.topic_queue_table.get_mut(topic),
        ) else {
            return;
        };
        for name in names {
            queues.remove(name);
        }
        if queues.is_empty() {
            self.topic_queue_table.remove(topic);
        }
    }

    /// WIPE_WRITE_PERM_OF_BROKER (`wipe`) / ADD_WRITE_PERM_OF_BROKER: changes
    /// the perm of every queue data of `broker_name`; returns how many.
    ///
    /// As in Java, "add" sets the perm to exactly read+write (dropping any
    /// inherit bit), and the change lasts until the broker registers a new
    /// topic-table version.
    pub(super) fn change_write_perm(&mut self, broker_name: &str, wipe: bool) -> i32 {
        let mut count = 0i32;
        for queues in self.topic_queue_table.values_mut() {
            if let Some(queue_data) = queues.get_mut(broker_name) {
                queue_data.perm = if wipe {
                    queue_data.perm & !PERM_WRITE
                } else {
                    PERM_READ | PERM_WRITE
                };
                count = count.saturating_add(1);
            }
        }
        count
    }

    /// QUERY_DATA_VERSION: whether `version` differs from what `broker_addr`
    /// last registered (true if unknown or `None`), and the stored version.
    /// Counts as a sign of life, as in Java.
    pub(super) fn query_data_version(
        &mut self,
        broker_addr: &str,
        version: Option<&DataVersion>,
        now_ms: i64,
    ) -> (bool, Option<DataVersion>) {
        match self.broker_live_table.get_mut(broker_addr) {
            Some(live) => {
                let changed = version != Some(&live.data_version);
                live.last_update_ms = now_ms;
                (changed, Some(live.data_version))
            }
            None => (true, None),
        }
    }

    /// Checks the invariants listed in the module doc; `Err` names the first
    /// broken one. For tests.
    #[cfg(test)]
    pub(super) fn check_invariants(&self) -> Result<(), String> {
        for (cluster, names) in &self.cluster_addr_table {
            if names.is_empty() {
                return Err(format!("cluster {cluster} has no broker names"));
            }
            for name in names {
                if !self.broker_addr_table.contains_key(name) {
                    return Err(format!("cluster {cluster} lists unknown broker {name}"));
                }
            }
        }
        for (name, broker) in &self.broker_addr_table {
            if broker.broker_addrs.is_empty() {
                return Err(format!("broker {name} has no address"));
            }
            if !self
                .cluster_addr_table
                .values()
                .any(|names| names.contains(name))
            {
                return Err(format!("broker {name} is in no cluster"));
            }
            for addr in broker.broker_addrs.values() {
                if !self.broker_live_table.contains_key(addr) {
                    return Err(format!("address {addr} of {name} can never expire"));
                }
            }
        }
        for (topic, queues) in &self.topic_queue_table {
            if queues.is_empty() {
                return Err(format!("topic {topic} has no queue data"));
            }
        }
        Ok(())
    }

    /// Test access to the topic table.
    #[cfg(test)]
    pub(super) fn queue_data(&self, topic: &str, broker_name: &str) -> Option<&QueueData> {
        self.topic_queue_table.get(topic)?.get(broker_name)
    }

    /// Test access to the liveness table.
    #[cfg(test)]
    pub(super) fn live(&self, broker_addr: &str) -> Option<&BrokerLive> {
        self.broker_live_table.get(broker_addr)
    }
}
