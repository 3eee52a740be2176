//! Broker configuration: RocketMQ's `broker.conf` property names, overridden
//! by command-line flags. Every default is RocketMQ's unless noted.

pub use rocketcore_protocol::delay_levels::{parse_delay_levels, DEFAULT_DELAY_LEVELS};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use rocketcore_storage::config::StoreConfig;

/// Where a server serves /metrics: RocketMQ 5's keys.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// `metricsExporterType=PROM`: /metrics on the HTTP port.
    pub prom: bool,
    /// `consoleEnable`: the web console on the HTTP port.
    pub console: bool,
    /// `consoleAdminPassword`: unlocks the console's changes.
    pub admin_password: Option<String>,
    pub host: IpAddr,
    pub port: u16,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            prom: false,
            console: false,
            admin_password: None,
            // RocketMQ binds every address; the page names every topic and
            // group, so loopback unless the operator says otherwise.
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 5557,
        }
    }
}

impl MetricsConfig {
    /// Takes one metrics property: `Ok(false)` when `key` is not one.
    pub fn apply_property(&mut self, key: &str, v: &str) -> Result<bool, String> {
        let bad = |what: &str| format!("{key}={v}: {what}");
        match key {
            "metricsExporterType" => {
                self.prom = match v.to_ascii_uppercase().as_str() {
                    "PROM" => true,
                    "DISABLE" => false,
                    _ => {
                        return Err(bad(
                            "expected PROM or DISABLE (OTLP_GRPC and LOG are not supported)",
                        ))
                    }
                }
            }
            "consoleEnable" => {
                self.console = parse_bool(v).ok_or_else(|| bad("expected true or false"))?
            }
            "consoleAdminPassword" => {
                self.admin_password = Some(v.to_string()).filter(|p| !p.is_empty())
            }
            "metricsPromExporterHost" => {
                self.host = v.parse().map_err(|_| bad("not an IP address"))?
            }
            "metricsPromExporterPort" => {
                self.port = v
                    .parse()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad("not a port"))?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Where the HTTP port listens, when /metrics or the console is on.
    pub fn listen(&self) -> Option<SocketAddr> {
        (self.prom || self.console).then(|| SocketAddr::new(self.host, self.port))
    }
}

/// How appends are acknowledged (`flushDiskType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushDiskType {
    SyncFlush,
    AsyncFlush,
}

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub cluster_name: String,
    pub broker_name: String,
    pub broker_id: i64,
    /// Epoch of the last role change (`ha::role`); 0 before any.
    pub role_epoch: i32,
    /// `controllerAddr`: the controller nodes (controller mode).
    pub controller_addrs: Vec<SocketAddr>,
    pub namesrv_addrs: Vec<SocketAddr>,
    /// Address the broker listens on (`listenPort` sets its port).
    pub listen: SocketAddr,
    /// Address clients are told to use (`brokerIP1` and `listenPort`).
    pub advertised: SocketAddr,
    pub store_dir: PathBuf,
    pub shards: usize,
    /// `shards` was chosen by the user, not defaulted to the cores
    /// available: a store recorded with another count then refuses to open.
    pub shards_explicit: bool,
    pub flush_disk_type: FlushDiskType,
    pub auto_create_topic_enable: bool,
    pub auto_create_subscription_group: bool,
    pub default_topic_queue_nums: u32,
    pub file_reserved_hours: u64,
    pub delete_when: Vec<u32>,
    pub disk_max_used_ratio: f64,
    /// `diskSpaceCleanForciblyRatio`: delete the oldest segments whatever
    /// their age above this usage.
    pub disk_force_clean_ratio: f64,
    /// `diskSpaceWarningLevelRatio`: refuse writes above this usage.
    pub disk_full_ratio: f64,
    pub message_delay_level: String,
    pub max_message_size: usize,
    pub segment_bytes: u64,
    pub flush_interval_ms: u64,
    pub sync_flush_timeout_ms: u64,
    /// How often the broker registers with every name server.
    pub register_interval_ms: u64,
    /// Bind `listenPort - 2` too, for Java clients ≤ 4.4 (VIP channel).
    pub legacy_port: bool,
    /// Pin shard k to CPU k (off in `dev`, where the machine is shared).
    pub pin_cores: bool,
    /// `metricsExporterType`, `metricsPromExporterHost`/`Port`.
    pub metrics: MetricsConfig,
    /// ACL and TLS (`aclEnable`, `aclFile`, `tls.*`).
    pub security: crate::security::SecurityConfig,
    /// Longest timer-message delay accepted (`timerMaxDelaySec`).
    pub timer_max_delay_sec: u64,
    /// Age before a half message is first checked (`transactionTimeOut`).
    pub transaction_timeout_ms: u64,
    /// How often undecided half messages are checked (`transactionCheckInterval`).
    pub transaction_check_interval_ms: u64,
    /// Checks before a half message is discarded (`transactionCheckMax`).
    pub transaction_check_max: u32,
    /// Refuse half messages (`rejectTransactionMessage`).
    pub reject_transaction_message: bool,
    /// Serve SQL92 subscriptions (`enablePropertyFilter`; on by default
    /// here, unlike Java, because it costs nothing unless used).
    pub enable_property_filter: bool,
    /// Keys UPDATE_BROKER_CONFIG changed, as `UPDATES_FILE` holds them.
    pub hot_updates: BTreeMap<String, String>,
    /// Role and replication (`brokerRole`, `haListenPort`, `slaveTimeout`, …).
    pub ha: crate::broker::ha::HaConfig,
    /// `rocketcoreTailCacheBytes`: newest log bytes kept in memory per
    /// shard (the store's default when unset).
    pub tail_cache_bytes: Option<u64>,
}

/// Keys UPDATE_BROKER_CONFIG may change on a running broker: each is read
/// where it is used, not copied at start.
pub const HOT_KEYS: &[&str] = &[
    "autoCreateTopicEnable",
    "autoCreateSubscriptionGroup",
    "rejectTransactionMessage",
    "transactionTimeOut",
    "transactionCheckMax",
    "timerMaxDelaySec",
    "enablePropertyFilter",
];
/// Keys no request may change (Java's default `configBlackList`).
pub const CONFIG_BLACK_LIST: &[&str] = &["configBlackList", "brokerConfigPath"];
/// Hot updates, under the store directory, applied over broker.conf at
/// start so that they outlive a restart.
pub const UPDATES_FILE: &str = "config/brokerConfigUpdates.properties";

pub const DEFAULT_LISTEN_PORT: u16 = 10911;
pub const DEFAULT_REGISTER_INTERVAL_MS: u64 = 30_000;

impl BrokerConfig {
    /// The settings in force under their broker.conf names, for
    /// GET_BROKER_CONFIG. Secrets (ACL credentials) are left out.
    pub fn to_properties(&self) -> BTreeMap<&'static str, String> {
        let flush = match self.flush_disk_type {
            FlushDiskType::SyncFlush => "SYNC_FLUSH",
            FlushDiskType::AsyncFlush => "ASYNC_FLUSH",
        };
        let namesrv: Vec<String> = self.namesrv_addrs.iter().map(|a| a.to_string()).collect();
        let delete_when: Vec<String> = self.delete_when.iter().map(|h| format!("{h:02}")).collect();
        let tls = match self.security.tls.effective_mode() {
            crate::security::TlsMode::Disabled => "disabled",
            crate::security::TlsMode::Permissive => "permissive",
            crate::security::TlsMode::Enforcing => "enforcing",
        };
        BTreeMap::from([
            ("brokerClusterName", self.cluster_name.clone()),
            ("brokerName", self.broker_name.clone()),
            ("brokerId", self.broker_id.to_string()),
            ("brokerRole", self.ha.role.name().to_string()),
            (
                "haListenPort",
                self.ha.listen(self.listen).port().to_string(),
            ),
            ("haSendHeartbeatInterval", self.ha.heartbeat_ms.to_string()),
            (
                "haHousekeepingInterval",
                self.ha.housekeeping_ms.to_string(),
            ),
            ("haTransferBatchSize", self.ha.batch_bytes.to_string()),
            ("haMaxGapNotInSync", self.ha.max_gap_bytes.to_string()),
            ("slaveTimeout", self.ha.slave_timeout_ms.to_string()),
            ("slaveReadEnable", self.ha.slave_read_enable.to_string()),
            ("namesrvAddr", namesrv.join(";")),
            ("listenPort", self.listen.port().to_string()),
            ("brokerIP1", self.advertised.ip().to_string()),
            ("storePathRootDir", self.store_dir.display().to_string()),
            ("flushDiskType", flush.to_string()),
            (
                "autoCreateTopicEnable",
                self.auto_create_topic_enable.to_string(),
            ),
            (
                "autoCreateSubscriptionGroup",
                self.auto_create_subscription_group.to_string(),
            ),
            (
                "defaultTopicQueueNums",
                self.default_topic_queue_nums.to_string(),
            ),
            ("fileReservedTime", self.file_reserved_hours.to_string()),
            ("deleteWhen", delete_when.join(";")),
            (
                "diskMaxUsedSpaceRatio",
                format!("{}", (self.disk_max_used_ratio * 100.0).round()),
            ),
            ("messageDelayLevel", self.message_delay_level.clone()),
            ("maxMessageSize", self.max_message_size.to_string()),
            ("mappedFileSizeCommitLog", self.segment_bytes.to_string()),
            ("flushIntervalCommitLog", self.flush_interval_ms.to_string()),
            ("syncFlushTimeout", self.sync_flush_timeout_ms.to_string()),
            (
                "registerNameServerPeriod",
                self.register_interval_ms.to_string(),
            ),
            ("timerMaxDelaySec", self.timer_max_delay_sec.to_string()),
            (
                "transactionTimeOut",
                self.transaction_timeout_ms.to_string(),
            ),
            (
                "transactionCheckInterval",
                self.transaction_check_interval_ms.to_string(),
            ),
            (
                "transactionCheckMax",
                self.transaction_check_max.to_string(),
            ),
            (
                "rejectTransactionMessage",
                self.reject_transaction_message.to_string(),
            ),
            (
                "enablePropertyFilter",
                self.enable_property_filter.to_string(),
            ),
            ("aclEnable", self.security.acl_enable.to_string()),
            ("tlsMode", tls.to_string()),
            (
                "metricsExporterType",
                if self.metrics.prom { "PROM" } else { "DISABLE" }.to_string(),
            ),
            ("metricsPromExporterHost", self.metrics.host.to_string()),
            ("metricsPromExporterPort", self.metrics.port.to_string()),
            ("consoleEnable", self.metrics.console.to_string()),
            ("shards", self.shards.to_string()),
        ])
    }

    /// Where /metrics is served, when it is.
    pub fn metrics_listen(&self) -> Option<SocketAddr> {
        self.metrics.listen()
    }

    pub fn new(store_dir: PathBuf) -> BrokerConfig {
        let listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_LISTEN_PORT);
        BrokerConfig {
            cluster_name: "DefaultCluster".into(),
            broker_name: "broker-a".into(),
            broker_id: 0,
            role_epoch: 0,
            controller_addrs: Vec::new(),
            namesrv_addrs: Vec::new(),
            listen,
            advertised: SocketAddr::new(
                first_non_loopback_ipv4()
                    .unwrap_or(Ipv4Addr::LOCALHOST)
                    .into(),
                listen.port(),
            ),
            store_dir,
            shards: std::thread::available_parallelism().map_or(1, |n| n.get()),
            shards_explicit: false,
            flush_disk_type: FlushDiskType::AsyncFlush,
            auto_create_topic_enable: true,
            auto_create_subscription_group: true,
            default_topic_queue_nums: 8,
            file_reserved_hours: 72,
            delete_when: vec![4],
            disk_max_used_ratio: 0.75,
            disk_force_clean_ratio: 0.85,
            disk_full_ratio: 0.90,
            message_delay_level: DEFAULT_DELAY_LEVELS.into(),
            max_message_size: 4 * 1024 * 1024,
            segment_bytes: 1 << 30,
            flush_interval_ms: 500,
            sync_flush_timeout_ms: 5_000,
            register_interval_ms: DEFAULT_REGISTER_INTERVAL_MS,
            legacy_port: true,
            pin_cores: true,
            security: Default::default(),
            metrics: MetricsConfig::default(),
            timer_max_delay_sec: 3 * 24 * 3600,
            transaction_timeout_ms: 6_000,
            transaction_check_interval_ms: 60_000,
            transaction_check_max: 15,
            reject_transaction_message: false,
            enable_property_filter: true,
            hot_updates: BTreeMap::new(),
            ha: Default::default(),
            tail_cache_bytes: None,
        }
    }

    /// The delay of each level of `messageDelayLevel`, in ms (level 1 first).
    pub fn delay_levels_ms(&self) -> Result<Vec<u64>, String> {
        parse_delay_levels(&self.message_delay_level)
    }

    /// Applies `broker.conf` properties. Unknown keys are reported, not fatal:
    /// existing files carry many settings that have no meaning here.
    pub fn apply_properties(
        &mut self,
        props: &BTreeMap<String, String>,
    ) -> Result<Vec<String>, String> {
        let mut ignored = Vec::new();
        let mut brokerip1: Option<IpAddr> = None;
        let mut port: Option<u16> = None;
        for (k, v) in props {
            let v = v.trim();
            let bad = |what: &str| format!("broker.conf: {k}={v}: {what}");
            match k.as_str() {
                "brokerClusterName" => self.cluster_name = v.to_string(),
                "brokerName" => self.broker_name = v.to_string(),
                "brokerId" => self.broker_id = v.parse().map_err(|_| bad("not an integer"))?,
                "controllerAddr" => {
                    self.controller_addrs = parse_namesrv_list(v).map_err(|e| bad(&e))?
                }
                "rocketcoreRoleEpoch" => {
                    self.role_epoch = v
                        .parse()
                        .ok()
                        .filter(|e: &i32| *e >= 0)
                        .ok_or_else(|| bad("not an epoch"))?
                }
                "namesrvAddr" => self.namesrv_addrs = parse_namesrv_list(v).map_err(|e| bad(&e))?,
                "listenPort" => port = Some(v.parse().map_err(|_| bad("not a port"))?),
                "brokerIP1" => brokerip1 = Some(v.parse().map_err(|_| bad("not an IP address"))?),
                "storePathRootDir" => self.store_dir = PathBuf::from(v),
                "flushDiskType" => {
                    self.flush_disk_type =
                        parse_flush(v).ok_or_else(|| bad("expected SYNC_FLUSH or ASYNC_FLUSH"))?
                }
                "autoCreateTopicEnable" => {
                    self.auto_create_topic_enable =
                        parse_bool(v).ok_or_else(|| bad("expected true or false"))?
                }
                "autoCreateSubscriptionGroup" => {
                    self.auto_create_subscription_group =
                        parse_bool(v).ok_or_else(|| bad("expected true or false"))?
                }
                "defaultTopicQueueNums" => {
                    self.default_topic_queue_nums = v
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("expected a positive integer"))?
                }
                "fileReservedTime" => {
                    self.file_reserved_hours = v.parse().map_err(|_| bad("expected hours"))?
                }
                "deleteWhen" => {
                    self.delete_when = StoreConfig::parse_delete_when(v)
                        .ok_or_else(|| bad("expected hours like 04 or 04;16"))?
                }
                "diskMaxUsedSpaceRatio" => {
                    let pct: f64 = v.parse().map_err(|_| bad("expected a percentage"))?;
                    if !(1.0..=95.0).contains(&pct) {
                        return Err(bad("expected a percentage between 1 and 95"));
                    }
                    self.disk_max_used_ratio = pct / 100.0;
                }
                // RocketMQ 5's MessageStoreConfig names, in percent; 100
                // turns forced deletion off.
                "diskSpaceCleanForciblyRatio" | "diskSpaceWarningLevelRatio" => {
                    let pct: f64 = v.parse().map_err(|_| bad("expected a percentage"))?;
                    if !(1.0..=100.0).contains(&pct) {
                        return Err(bad("expected a percentage between 1 and 100"));
                    }
                    if k == "diskSpaceCleanForciblyRatio" {
                        self.disk_force_clean_ratio = pct / 100.0;
                    } else {
                        self.disk_full_ratio = pct / 100.0;
                    }
                }
                "messageDelayLevel" => self.message_delay_level = v.to_string(),
                "maxMessageSize" => {
                    self.max_message_size = v
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("expected bytes"))?
                }
                "mapedFileSizeCommitLog" | "mappedFileSizeCommitLog" => {
                    self.segment_bytes = v.parse().map_err(|_| bad("expected bytes"))?
                }
                "flushIntervalCommitLog" => {
                    self.flush_interval_ms = v.parse().map_err(|_| bad("expected ms"))?
                }
                "syncFlushTimeout" => {
                    self.sync_flush_timeout_ms = v.parse().map_err(|_| bad("expected ms"))?
                }
                "timerMaxDelaySec" => {
                    self.timer_max_delay_sec = v
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("expected seconds"))?
                }
                "transactionTimeOut" => {
                    self.transaction_timeout_ms = v.parse().map_err(|_| bad("expected ms"))?
                }
                "transactionCheckInterval" => {
                    self.transaction_check_interval_ms = v
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("expected ms"))?
                }
                "transactionCheckMax" => {
                    self.transaction_check_max = v.parse().map_err(|_| bad("expected a count"))?
                }
                "rejectTransactionMessage" => {
                    self.reject_transaction_message =
                        parse_bool(v).ok_or_else(|| bad("expected true or false"))?
                }
                "enablePropertyFilter" => {
                    self.enable_property_filter =
                        parse_bool(v).ok_or_else(|| bad("expected true or false"))?
                }
                "rocketcoreTailCacheBytes" => {
                    self.tail_cache_bytes = Some(
                        v.parse()
                            .ok()
                            .filter(|n| *n >= 1 << 20)
                            .ok_or_else(|| bad("expected bytes, at least 1048576"))?,
                    )
                }
                "registerNameServerPeriod" => {
                    let ms: u64 = v.parse().map_err(|_| bad("expected ms"))?;
                    self.register_interval_ms = ms.clamp(10_000, 60_000);
                }
                _ if self
                    .metrics
                    .apply_property(k, v)
                    .map_err(|e| format!("broker.conf: {e}"))? => {}
                _ if self
                    .ha
                    .apply_property(k, v)
                    .map_err(|e| format!("broker.conf: {e}"))? => {}
                _ if self
                    .security
                    .apply_property(k, v)
                    .map_err(|e| format!("broker.conf: {e}"))? => {}
                _ => ignored.push(k.clone()),
            }
        }
        if let Some(p) = port {
            self.listen.set_port(p);
            self.advertised.set_port(p);
        }
        if let Some(ip) = brokerip1 {
            self.advertised.set_ip(ip);
        }
        Ok(ignored)
    }

    /// UPDATE_BROKER_CONFIG: this configuration with `props` applied.
    /// Only `HOT_KEYS` change a running broker; a black-listed key is
    /// `Err((true, why))` (Java answers NO_PERMISSION), any other key or a
    /// bad value `Err((false, why))`. Nothing is applied unless all are.
    pub fn with_hot_update(
        &self,
        props: &BTreeMap<String, String>,
    ) -> Result<BrokerConfig, (bool, String)> {
        if props.is_empty() {
            return Err((false, "no key=value line in the request body".into()));
        }
        for k in props.keys() {
            if CONFIG_BLACK_LIST.contains(&k.as_str()) {
                return Err((true, "Can not update config in black list.".into()));
            }
            if !HOT_KEYS.contains(&k.as_str()) {
                return Err((
                    false,
                    format!(
                        "{k} cannot change while the broker runs: set it in broker.conf and restart (hot keys: {})",
                        HOT_KEYS.join(", ")
                    ),
                ));
            }
        }
        let mut next = self.clone();
        next.apply_properties(props).map_err(|e| (false, e))?;
        next.validate().map_err(|e| (false, e))?;
        next.hot_updates
            .extend(props.iter().map(|(k, v)| (k.clone(), v.trim().to_string())));
        Ok(next)
    }

    /// The text of `UPDATES_FILE` for `hot_updates`.
    pub fn hot_updates_file(&self) -> Vec<u8> {
        let mut text =
            String::from("# Set by UPDATE_BROKER_CONFIG; applied over broker.conf at start.\n");
        for (k, v) in &self.hot_updates {
            text.push_str(&format!("{k}={v}\n"));
        }
        text.into_bytes()
    }

    /// Applies the hot updates an earlier run persisted. They were
    /// checked when made; a file edited by hand since is checked again.
    pub fn apply_persisted_updates(&mut self) -> Result<(), String> {
        let path = self.store_dir.join(UPDATES_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        let props = parse_properties(&text);
        *self = self
            .with_hot_update(&props)
            .map_err(|(_, e)| format!("{}: {e}", path.display()))?;
        Ok(())
    }

    /// Applies the role a run-time role change left (`ha::role`): it
    /// overrides broker.conf's brokerRole, brokerId and haMasterAddress.
    pub fn apply_persisted_role(&mut self) -> Result<(), String> {
        let path = self
            .store_dir
            .join("config")
            .join(crate::broker::ha::role::ROLE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        let mut props = parse_properties(&text);
        props.retain(|k, _| {
            matches!(
                k.as_str(),
                "brokerRole" | "brokerId" | "rocketcoreRoleEpoch" | "haMasterAddress"
            )
        });
        if !props.contains_key("haMasterAddress") {
            self.ha.master_address = None;
        }
        self.apply_properties(&props)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(())
    }

    /// The store configuration of one shard.
    pub fn store_config(&self) -> StoreConfig {
        let mut c = StoreConfig::new(&self.store_dir, self.advertised);
        c.segment_bytes = self.segment_bytes;
        c.max_message_bytes = self.max_message_size;
        c.flush_interval_ms = self.flush_interval_ms;
        c.sync_flush_timeout_ms = self.sync_flush_timeout_ms;
        c.file_reserved_hours = self.file_reserved_hours;
        c.delete_when_hours = self.delete_when.clone();
        c.disk_max_used_ratio = self.disk_max_used_ratio;
        c.disk_force_clean_ratio = self.disk_force_clean_ratio.max(self.disk_max_used_ratio);
        c.disk_full_ratio = self.disk_full_ratio;
        if let Some(b) = self.tail_cache_bytes {
            c.tail_cache_bytes = b;
        }
        c
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.shards == 0 || self.shards > 64 {
            return Err(format!("--shards {} is outside 1..=64", self.shards));
        }
        if self.ha.controller_mode && self.controller_addrs.is_empty() {
            return Err("enableControllerMode=true needs controllerAddr".into());
        }
        if !self.ha.controller_mode && self.ha.role.is_slave() && self.broker_id <= 0 {
            return Err(format!(
                "brokerRole=SLAVE needs a brokerId above 0 (got {})",
                self.broker_id
            ));
        }
        if !self.ha.controller_mode && !self.ha.role.is_slave() && self.broker_id != 0 {
            return Err(format!(
                "brokerRole={} is a master, whose brokerId is 0 (got {}); a slave needs brokerRole=SLAVE",
                self.ha.role.name(),
                self.broker_id
            ));
        }
        let ha = self.ha.listen(self.listen);
        if self.ha.serves_slaves()
            && (ha.port() == self.listen.port()
                || (self.legacy_port && ha.port() == self.listen.port().wrapping_sub(2)))
        {
            return Err(format!(
                "haListenPort {} collides with the client ports",
                ha.port()
            ));
        }
        self.store_config().validate().map_err(|e| e.to_string())?;
        self.delay_levels_ms()?;
        if self.legacy_port && self.listen.port() < 3 {
            return Err(format!(
                "listen port {} leaves no room for the legacy port (listenPort - 2)",
                self.listen.port()
            ));
        }
        Ok(())
    }
}

pub fn parse_flush(v: &str) -> Option<FlushDiskType> {
    match v.to_ascii_uppercase().as_str() {
        "SYNC_FLUSH" | "SYNC" => Some(FlushDiskType::SyncFlush),
        "ASYNC_FLUSH" | "ASYNC" => Some(FlushDiskType::AsyncFlush),
        _ => None,
    }
}

pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// `"host:port;host:port"`, as RocketMQ writes name-server lists.
pub fn parse_namesrv_list(v: &str) -> Result<Vec<SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    v.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.to_socket_addrs()
                .map_err(|e| format!("name server address {s:?}: {e}"))?
                .next()
                .ok_or_else(|| format!("name server address {s:?} resolves to nothing"))
        })
        .collect()
}

/// Parses Java properties text (`k=v` or `k: v` lines, `#`/`!` comments).
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let at = l.find(['=', ':'])?;
            Some((l[..at].trim().to_string(), l[at + 1..].trim().to_string()))
        })
        .collect()
}

/// The first non-loopback IPv4 address of this host, as RocketMQ picks
/// `brokerIP1` by default.
pub fn first_non_loopback_ipv4() -> Option<Ipv4Addr> {
    // SAFETY: getifaddrs allocates a list we walk read-only and free once.
    unsafe {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut head) != 0 {
            return None;
        }
        let mut found = None;
        let mut cur = head;
        while !cur.is_null() {
            let ifa = &*cur;
            if !ifa.ifa_addr.is_null() && (*ifa.ifa_addr).sa_family as i32 == libc::AF_INET {
                let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_loopback() && !ip.is_unspecified() {
                    found = Some(ip);
                    break;
                }
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(head);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_it_reports_reads_back_as_the_same_config() {
        let mut cfg = BrokerConfig::new(PathBuf::from("/var/lib/rc"));
        let props: BTreeMap<String, String> = [
            ("brokerName", "broker-x"),
            ("flushDiskType", "SYNC_FLUSH"),
            ("deleteWhen", "04;16"),
            ("diskMaxUsedSpaceRatio", "80"),
            ("metricsExporterType", "PROM"),
            ("namesrvAddr", "127.0.0.1:9876;127.0.0.2:9876"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        cfg.apply_properties(&props).unwrap();
        let reported: BTreeMap<String, String> = cfg
            .to_properties()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let mut again = BrokerConfig::new(PathBuf::from("elsewhere"));
        let ignored = again.apply_properties(&reported).unwrap();
        assert_eq!(ignored, ["shards"], "every other key is a broker.conf key");
        assert_eq!(again.to_properties(), cfg.to_properties());
    }

    #[test]
    fn broker_conf_properties_apply() {
        let text = "# comment\nbrokerClusterName = C1\nbrokerName=b1\nlistenPort=20911\nbrokerIP1=10.1.2.3\nflushDiskType=SYNC_FLUSH\nnamesrvAddr=127.0.0.1:9876;127.0.0.1:9877\ndefaultTopicQueueNums=4\ndeleteWhen=04;16\ndiskMaxUsedSpaceRatio=80\nsomethingElse=1\n";
        let mut c = BrokerConfig::new("/tmp/x".into());
        let ignored = c.apply_properties(&parse_properties(text)).unwrap();
        assert_eq!(ignored, vec!["somethingElse".to_string()]);
        assert_eq!(c.cluster_name, "C1");
        assert_eq!(c.broker_name, "b1");
        assert_eq!(c.listen.port(), 20911);
        assert_eq!(c.advertised, "10.1.2.3:20911".parse().unwrap());
        assert_eq!(c.flush_disk_type, FlushDiskType::SyncFlush);
        assert_eq!(c.namesrv_addrs.len(), 2);
        assert_eq!(c.default_topic_queue_nums, 4);
        assert_eq!(c.delete_when, vec![4, 16]);
        assert!((c.disk_max_used_ratio - 0.8).abs() < 1e-9);
    }

    #[test]
    fn delay_levels_parse_like_java_and_refuse_nonsense() {
        let c = BrokerConfig::new("/tmp/x".into());
        let levels = c.delay_levels_ms().unwrap();
        assert_eq!(levels.len(), 18);
        assert_eq!(levels[1], 5_000);
        assert_eq!(levels[17], 7_200_000);
        assert_eq!(
            parse_delay_levels("2d 1s").unwrap(),
            vec![172_800_000, 1_000]
        );
        for bad in ["", "5", "5x", "s", "5é", "0s", "-1s", "99999999999999999d"] {
            assert!(parse_delay_levels(bad).is_err(), "{bad:?}");
        }
        let mut c = BrokerConfig::new("/tmp/x".into());
        c.apply_properties(&parse_properties(
            "messageDelayLevel=1s 2s\ntransactionCheckInterval=1500\ntransactionTimeOut=1000\nenablePropertyFilter=false\ntimerMaxDelaySec=60",
        ))
        .unwrap();
        assert_eq!(c.delay_levels_ms().unwrap(), vec![1_000, 2_000]);
        assert_eq!(c.transaction_check_interval_ms, 1_500);
        assert_eq!(c.transaction_timeout_ms, 1_000);
        assert!(!c.enable_property_filter);
        assert_eq!(c.timer_max_delay_sec, 60);
        c.message_delay_level = "1q".into();
        assert!(c.validate().unwrap_err().contains("messageDelayLevel"));
    }

    #[test]
    fn bad_values_say_which_key() {
        let mut c = BrokerConfig::new("/tmp/x".into());
        let e = c
            .apply_properties(&parse_properties("listenPort=abc"))
            .unwrap_err();
        assert!(e.contains("listenPort"), "{e}");
        let e = c
            .apply_properties(&parse_properties("brokerRole=BOSS"))
            .unwrap_err();
        assert!(e.contains("brokerRole"), "{e}");
        let e = c
            .apply_properties(&parse_properties("flushDiskType=SOMETIMES"))
            .unwrap_err();
        assert!(e.contains("flushDiskType"), "{e}");
    }

    #[test]
    fn roles_and_ids_go_together_as_in_rocketmq() {
        let mut c = BrokerConfig::new("/tmp/x".into());
        c.apply_properties(&parse_properties(
            "brokerRole=SLAVE\nslaveTimeout=700\nhaListenPort=20000",
        ))
        .unwrap();
        assert!(c.validate().unwrap_err().contains("brokerId"));
        c.broker_id = 1;
        c.validate().unwrap();
        assert_eq!(c.ha.slave_timeout_ms, 700);
        assert_eq!(c.ha.listen(c.listen).port(), 20000);
        assert_eq!(c.to_properties()["brokerRole"], "SLAVE");
        let mut m = BrokerConfig::new("/tmp/x".into());
        m.apply_properties(&parse_properties("brokerRole=SYNC_MASTER\nbrokerId=2"))
            .unwrap();
        assert!(m.validate().unwrap_err().contains("brokerId is 0"));
        // haListenPort defaults to listenPort + 1 and may not take a client port.
        let mut d = BrokerConfig::new("/tmp/x".into());
        assert_eq!(d.ha.listen(d.listen).port(), d.listen.port() + 1);
        d.apply_properties(&parse_properties("haListenPort=10909"))
            .unwrap();
        assert!(d.validate().unwrap_err().contains("haListenPort"));
        for bad in [
            "haTransferBatchSize=10",
            "slaveTimeout=0",
            "haMasterAddress=nowhere",
        ] {
            let e = BrokerConfig::new("/tmp/x".into())
                .apply_properties(&parse_properties(bad))
                .unwrap_err();
            assert!(e.contains(bad.split('=').next().unwrap()), "{e}");
        }
    }
}
