//! Replication settings under RocketMQ's broker.conf names (MessageStoreConfig
//! and BrokerConfig), with Java's defaults.

use std::net::SocketAddr;

/// `brokerRole`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerRole {
    AsyncMaster,
    SyncMaster,
    Slave,
}

impl BrokerRole {
    pub fn name(self) -> &'static str {
        match self {
            BrokerRole::AsyncMaster => "ASYNC_MASTER",
            BrokerRole::SyncMaster => "SYNC_MASTER",
            BrokerRole::Slave => "SLAVE",
        }
    }

    pub fn parse(v: &str) -> Option<BrokerRole> {
        match v {
            "ASYNC_MASTER" => Some(BrokerRole::AsyncMaster),
            "SYNC_MASTER" => Some(BrokerRole::SyncMaster),
            "SLAVE" => Some(BrokerRole::Slave),
            _ => None,
        }
    }

    pub fn is_slave(self) -> bool {
        self == BrokerRole::Slave
    }
}

#[derive(Debug, Clone, Copy)]
pub struct HaConfig {
    pub role: BrokerRole,
    /// `haListenPort`; unset means `listenPort + 1`, as Java sets it.
    pub listen_port: Option<u16>,
    /// `haMasterAddress`: a fixed master HA address instead of the one the
    /// name server gives a slave.
    pub master_address: Option<SocketAddr>,
    /// `haSendHeartbeatInterval`: an idle stream sends a heartbeat (master)
    /// or an ack (slave) this often.
    pub heartbeat_ms: u64,
    /// `haHousekeepingInterval`: a stream silent this long is closed.
    pub housekeeping_ms: u64,
    /// `haTransferBatchSize`: most log bytes per frame.
    pub batch_bytes: usize,
    /// `haMaxGapNotInSync` (4.x `haSlaveFallbehindMax`): a slave further
    /// behind than this does not count for SYNC_MASTER.
    pub max_gap_bytes: u64,
    /// `slaveTimeout`: how long a SYNC_MASTER send waits for a slave.
    pub slave_timeout_ms: u64,
    /// `slaveReadEnable`: the master may tell lagging consumers to pull
    /// from a slave.
    pub slave_read_enable: bool,
    /// How often a slave copies topics, groups and consumer offsets from
    /// its master (Java 4.x: every 10 s).
    pub slave_sync_interval_ms: u64,
    /// A slave's wait between attempts to reach its master.
    pub reconnect_ms: u64,
    /// A master listens on `haListenPort` (always for `rocketcore broker`,
    /// as Java's masters do; in `dev` only with `--replicas`).
    pub accept_slaves: bool,
    /// `enableControllerMode`: roles come from the controller
    /// (`controllerAddr`), which fails a group over by itself.
    pub controller_mode: bool,
    /// `controllerHeartBeatTimeoutMills`: the controller judges this
    /// broker lost after this long without a heartbeat.
    pub controller_timeout_ms: u64,
    /// `brokerHeartbeatInterval`: heartbeats to every controller.
    pub controller_heartbeat_ms: u64,
    /// `syncBrokerMetadataPeriod`: how often the group's master and
    /// in-sync set are read from the controller.
    pub controller_poll_ms: u64,
    /// `checkSyncStateSetPeriod`: how often a master reviews which slaves
    /// are in sync.
    pub sync_set_check_ms: u64,
    /// `haMaxTimeSlaveNotCatchup`: an in-sync slave that has not caught up
    /// for this long leaves the set.
    pub not_catchup_ms: u64,
    /// `brokerElectionPriority`: lower wins a tie between in-sync slaves.
    pub election_priority: i32,
}

impl Default for HaConfig {
    fn default() -> Self {
        HaConfig {
            role: BrokerRole::AsyncMaster,
            listen_port: None,
            master_address: None,
            heartbeat_ms: 5_000,
            housekeeping_ms: 20_000,
            batch_bytes: 32 << 10,
            max_gap_bytes: 256 << 20,
            slave_timeout_ms: 3_000,
            slave_read_enable: false,
            slave_sync_interval_ms: 10_000,
            reconnect_ms: 1_000,
            accept_slaves: true,
            controller_mode: false,
            // Java's is 10 s; 5 s (five missed heartbeats) keeps a
            // failover under 10 s with the other defaults.
            controller_timeout_ms: 5_000,
            controller_heartbeat_ms: 1_000,
            controller_poll_ms: 1_000,
            sync_set_check_ms: 1_000,
            not_catchup_ms: 15_000,
            election_priority: 0,
        }
    }
}

impl HaConfig {
    /// Takes one replication property: `Ok(false)` when `key` is not one.
    pub fn apply_property(&mut self, key: &str, v: &str) -> Result<bool, String> {
        let bad = |what: &str| format!("{key}={v}: {what}");
        let ms = |what: &str| -> Result<u64, String> {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad(what))
        };
        match key {
            "brokerRole" => {
                self.role = BrokerRole::parse(v)
                    .ok_or_else(|| bad("expected ASYNC_MASTER, SYNC_MASTER or SLAVE"))?
            }
            "haListenPort" => {
                self.listen_port = Some(
                    v.parse()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| bad("not a port"))?,
                )
            }
            "haMasterAddress" => {
                self.master_address = if v.is_empty() {
                    None
                } else {
                    Some(v.parse().map_err(|_| bad("expected ip:port"))?)
                }
            }
            "haSendHeartbeatInterval" => self.heartbeat_ms = ms("expected milliseconds")?,
            "haHousekeepingInterval" => self.housekeeping_ms = ms("expected milliseconds")?,
            "haTransferBatchSize" => {
                self.batch_bytes = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (4096..=4 << 20).contains(n))
                    .ok_or_else(|| bad("expected bytes between 4096 and 4194304"))?
            }
            "haMaxGapNotInSync" | "haSlaveFallbehindMax" => {
                self.max_gap_bytes = ms("expected bytes")?
            }
            "slaveTimeout" => self.slave_timeout_ms = ms("expected milliseconds")?,
            "slaveReadEnable" => {
                self.slave_read_enable = super::super::config::parse_bool(v)
                    .ok_or_else(|| bad("expected true or false"))?
            }
            "slaveSyncInterval" => self.slave_sync_interval_ms = ms("expected milliseconds")?,
            "haReconnectInterval" => self.reconnect_ms = ms("expected milliseconds")?,
            "enableControllerMode" => {
                self.controller_mode = super::super::config::parse_bool(v)
                    .ok_or_else(|| bad("expected true or false"))?
            }
            "controllerHeartBeatTimeoutMills" => {
                self.controller_timeout_ms = ms("expected milliseconds")?
            }
            "brokerHeartbeatInterval" => {
                self.controller_heartbeat_ms = ms("expected milliseconds")?
            }
            "syncBrokerMetadataPeriod" => self.controller_poll_ms = ms("expected milliseconds")?,
            "checkSyncStateSetPeriod" => self.sync_set_check_ms = ms("expected milliseconds")?,
            "haMaxTimeSlaveNotCatchup" => self.not_catchup_ms = ms("expected milliseconds")?,
            "brokerElectionPriority" => {
                self.election_priority = v.parse().map_err(|_| bad("expected an integer"))?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whether this broker listens for slaves: a slave does too, since a
    /// role change may make it master; it refuses them until then.
    pub fn serves_slaves(&self) -> bool {
        self.accept_slaves
    }

    /// Where this broker accepts slaves.
    pub fn listen(&self, client_listen: SocketAddr) -> SocketAddr {
        let port = self
            .listen_port
            .unwrap_or_else(|| client_listen.port().wrapping_add(1));
        SocketAddr::new(client_listen.ip(), port)
    }
}
