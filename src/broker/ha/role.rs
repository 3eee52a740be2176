//! Role changes at run time: a slave becomes its group's master, or a
//! master (or a slave of another master) becomes a slave, without a
//! restart. NOTIFY_BROKER_ROLE_CHANGED (1008), which RocketMQ 5's
//! controller sends a broker after an election, carries the change; the
//! admin verb `haSwitch` sends it by hand.
//!
//! Shard 0 owns the change: it checks the epoch (never backwards), writes
//! the new role to `<store>/config/role.properties` (a restart keeps it),
//! then has every shard apply it. A shard becoming master stops following,
//! records `<epoch, log end>` in its epoch file once its last replicated
//! bytes are durable, and rebuilds its delay and transaction state from
//! the log it now owns; a shard becoming slave drops its slave links and
//! follows the new master, cutting first whatever tail the epochs show
//! the new master never had (`slave.rs`). Shard 0 then registers with the
//! name servers under the new brokerId.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::BrokerRole;
use crate::broker::config::BrokerConfig;
use crate::broker::mesh::ShardMsg;
use crate::broker::shard::{response, Shard};
use crate::remoting::codes::response_code as rs;
use crate::remoting::RemotingCommand;

/// File in the config directory that a role change writes.
pub const ROLE_FILE: &str = "role.properties";
/// How long a shard becoming master waits for its stream to stop.
const FOLLOW_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// CONTROLLER_FENCED_MASTER_EPOCH: the change names an older epoch.
const FENCED_MASTER_EPOCH: i32 = 2000;

/// What a broker is told to become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleChange {
    pub epoch: i32,
    /// None: become master. Some: follow this master.
    pub follow: Option<Master>,
    /// The brokerId to register with as a slave.
    pub slave_id: i64,
    /// The role to take as master (SYNC_MASTER unless the change says).
    pub master_role: BrokerRole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Master {
    pub addr: SocketAddr,
    pub ha: SocketAddr,
}

/// Reads NOTIFY_BROKER_ROLE_CHANGED's header: `masterAddress`,
/// `masterEpoch`, and rocketcore's `masterHaAddress` (default: the master's
/// port + 1, the default haListenPort), `brokerId` (the id to take as a
/// slave; default: the current one when it is a slave's) and `brokerRole`
/// (the master's: SYNC_MASTER, as RocketMQ 5's controller mode makes it,
/// unless ASYNC_MASTER is asked for).
pub fn parse_change(cmd: &RemotingCommand, me: &BrokerConfig) -> Result<RoleChange, String> {
    let addr: SocketAddr = cmd
        .ext_str("masterAddress")
        .map_err(|e| e.to_string())?
        .parse()
        .map_err(|_| "masterAddress is not an ip:port".to_string())?;
    let epoch = cmd.ext_i64("masterEpoch").map_err(|e| e.to_string())?;
    let epoch = i32::try_from(epoch)
        .ok()
        .filter(|e| *e > 0)
        .ok_or_else(|| format!("masterEpoch {epoch} is not a positive 32-bit epoch"))?;
    let ha = match cmd.ext_str_opt("masterHaAddress") {
        Some(a) => a
            .parse()
            .map_err(|_| "masterHaAddress is not an ip:port".to_string())?,
        None => SocketAddr::new(addr.ip(), addr.port().wrapping_add(1)),
    };
    let slave_id = match cmd.ext_str_opt("brokerId") {
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| "brokerId is not an integer".to_string())?,
        None => me.broker_id,
    };
    let master_role = match cmd.ext_str_opt("brokerRole") {
        None => BrokerRole::SyncMaster,
        Some(r) => BrokerRole::parse(r)
            .filter(|r| !r.is_slave())
            .ok_or_else(|| format!("brokerRole {r} is not a master's role"))?,
    };
    let follow = (addr != me.advertised).then_some(Master { addr, ha });
    if follow.is_some() && slave_id <= 0 {
        return Err(format!(
            "this broker would become a slave of {addr} but has no slave brokerId: pass brokerId (> 0)"
        ));
    }
    Ok(RoleChange {
        epoch,
        follow,
        slave_id,
        master_role,
    })
}

/// The configuration a change leads to.
fn next_config(cfg: &BrokerConfig, change: &RoleChange) -> BrokerConfig {
    let mut next = cfg.clone();
    match change.follow {
        None => {
            next.broker_id = 0;
            if next.ha.role.is_slave() {
                next.ha.role = change.master_role;
            }
            next.ha.master_address = None;
        }
        Some(m) => {
            next.broker_id = change.slave_id;
            next.ha.role = BrokerRole::Slave;
            next.ha.master_address = Some(m.ha);
        }
    }
    next.role_epoch = change.epoch;
    next
}

/// The role file's text: applied over broker.conf at the next start.
pub fn role_file(cfg: &BrokerConfig) -> Vec<u8> {
    let mut text = String::from("# Set by a role change (NOTIFY_BROKER_ROLE_CHANGED).\n");
    text.push_str(&format!("brokerRole={}\n", cfg.ha.role.name()));
    text.push_str(&format!("brokerId={}\n", cfg.broker_id));
    text.push_str(&format!("rocketcoreRoleEpoch={}\n", cfg.role_epoch));
    if let Some(m) = cfg.ha.master_address {
        text.push_str(&format!("haMasterAddress={m}\n"));
    }
    text.into_bytes()
}

impl Shard {
    /// NOTIFY_BROKER_ROLE_CHANGED (1008), on shard 0.
    pub async fn handle_role_change(self: &Rc<Self>, cmd: &RemotingCommand) -> RemotingCommand {
        let change = match parse_change(cmd, &self.cfg()) {
            Ok(c) => c,
            Err(why) => return response(cmd, rs::INVALID_PARAMETER, why),
        };
        match self.change_role(change).await {
            Ok(()) => response(cmd, rs::SUCCESS, None),
            Err((code, why)) => response(cmd, code, why),
        }
    }

    /// Shard 0: checks, persists and applies a change on every shard.
    pub async fn change_role(self: &Rc<Self>, change: RoleChange) -> Result<(), (i32, String)> {
        let cfg = self.cfg().clone();
        let same = cfg.role_epoch == change.epoch
            && match change.follow {
                None => !cfg.ha.role.is_slave(),
                Some(m) => cfg.ha.role.is_slave() && cfg.ha.master_address == Some(m.ha),
            };
        if same {
            return Ok(());
        }
        // The same epoch again is the controller confirming a role this
        // broker lost by restarting (it always starts as a slave).
        if change.epoch < cfg.role_epoch {
            return Err((
                FENCED_MASTER_EPOCH,
                format!(
                    "epoch {} is older than this broker's {}",
                    change.epoch, cfg.role_epoch
                ),
            ));
        }
        if self.config_updating.replace(true) {
            return Err((
                rs::SYSTEM_ERROR,
                "a configuration or role change is in progress; try again".into(),
            ));
        }
        let r = self.apply_everywhere(&cfg, change).await;
        self.config_updating.set(false);
        r.map_err(|why| (rs::SYSTEM_ERROR, why))
    }

    async fn apply_everywhere(
        self: &Rc<Self>,
        cfg: &BrokerConfig,
        change: RoleChange,
    ) -> Result<(), String> {
        let next = Arc::new(next_config(cfg, &change));
        crate::broker::file_writer::global()
            .write(
                &next.store_dir.join("config").join(ROLE_FILE),
                role_file(&next),
            )
            .done()
            .await?;
        tracing::warn!(
            epoch = change.epoch,
            role = next.ha.role.name(),
            broker_id = next.broker_id,
            master = ?change.follow.map(|m| m.addr),
            "role change"
        );
        let mut replies = Vec::new();
        for k in 1..self.shards {
            let (tx, rx) = flume::bounded(1);
            self.mesh_send(
                k,
                ShardMsg::Role {
                    cfg: next.clone(),
                    reply: tx,
                },
            )
            .await
            .map_err(|_| format!("shard {k} is stopping"))?;
            replies.push(rx);
        }
        let mut result = self.apply_role(next.clone()).await;
        for (k, rx) in replies.into_iter().enumerate() {
            let r = rx
                .recv_async()
                .await
                .unwrap_or_else(|_| Err(format!("shard {} stopped", k + 1)));
            if let Err(e) = r {
                result = Err(format!("shard {}: {e}", k + 1));
            }
        }
        let (addr, ha) = match change.follow {
            Some(m) => (Some(m.addr), Some(m.ha)),
            None => (None, None),
        };
        self.set_master(addr, ha);
        self.register_now.set(true);
        result
    }

    /// One shard's part of a role change.
    pub async fn apply_role(self: &Rc<Self>, next: Arc<BrokerConfig>) -> Result<(), String> {
        let to_master = !next.ha.role.is_slave();
        self.set_cfg(next.clone());
        if !to_master {
            // Links notice the role and close; SYNC_MASTER waits in flight
            // end at their deadline (FLUSH_SLAVE_TIMEOUT).
            self.repl.follow.master_ha.set(next.ha.master_address);
            self.repl.set_sync_set(None);
            return Ok(());
        }
        self.repl.follow.master_ha.set(None);
        self.repl.follow.master_addr.set(None);
        let deadline = Instant::now() + FOLLOW_STOP_TIMEOUT;
        while self.repl.follow.active.get() {
            if Instant::now() > deadline {
                return Err("the replication stream did not stop".into());
            }
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
        if self.store.last_epoch() < next.role_epoch {
            let at = self
                .store
                .begin_epoch(next.role_epoch)
                .await
                .map_err(|e| format!("recording epoch {}: {e}", next.role_epoch))?;
            tracing::info!(shard = self.id, epoch = next.role_epoch, at, "epoch begins");
        }
        self.reload_master_services(&next).await
    }

    /// Delay and transaction state, rebuilt from the log and the progress
    /// the master's last copy left (a slave never ran them).
    async fn reload_master_services(&self, cfg: &BrokerConfig) -> Result<(), String> {
        let sched = crate::broker::schedule::Scheduler::open(
            &self.store,
            cfg.delay_levels_ms()?,
            crate::broker::schedule::Scheduler::progress_path(&cfg.store_dir, self.id),
        )
        .await?;
        self.sched.adopt(sched);
        let tx = crate::broker::transaction::Transactions::open(
            &self.store,
            cfg.store_dir
                .join("config")
                .join(format!("transaction-{}.json", self.id)),
            cfg.transaction_timeout_ms,
        )
        .await?;
        self.tx.adopt(tx);
        Ok(())
    }
}

/// Ends when this broker stops being a master: a master's link to a
/// slave then closes.
pub async fn until_demoted(shard: &Shard) -> Result<(), String> {
    loop {
        glommio::timer::sleep(Duration::from_millis(100)).await;
        if shard.is_slave() {
            return Err("this broker is no longer the master".into());
        }
    }
}

/// Ends when a slave must stop following `master`: it became master, or
/// it was told to follow another one.
pub async fn until_master_changes(shard: &Shard, master: SocketAddr) -> &'static str {
    loop {
        glommio::timer::sleep(Duration::from_millis(100)).await;
        if !shard.is_slave() {
            return "this broker became master";
        }
        if shard.repl.follow.master_ha.get() != Some(master) {
            return "the group has a new master";
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(fields: &[(&str, &str)]) -> RemotingCommand {
        let mut c = RemotingCommand::new_request(1008);
        for (k, v) in fields {
            c.set_ext(*k, *v);
        }
        c
    }

    #[test]
    fn a_change_names_the_master_and_the_epoch() {
        let mut me = BrokerConfig::new("store".into());
        me.advertised = "127.0.0.1:10911".parse().unwrap();
        me.broker_id = 1;
        let c = parse_change(
            &cmd(&[("masterAddress", "127.0.0.1:10911"), ("masterEpoch", "3")]),
            &me,
        )
        .unwrap();
        assert_eq!(c.follow, None);
        assert_eq!(c.epoch, 3);
        let c = parse_change(
            &cmd(&[("masterAddress", "127.0.0.1:20911"), ("masterEpoch", "4")]),
            &me,
        )
        .unwrap();
        assert_eq!(
            c.follow.map(|m| m.ha),
            Some("127.0.0.1:20912".parse().unwrap())
        );
        assert_eq!(c.slave_id, 1);
        let next = next_config(&me, &c);
        assert!(next.ha.role.is_slave());
        assert_eq!(next.role_epoch, 4);
        let text = String::from_utf8(role_file(&next)).unwrap();
        assert!(
            text.contains("brokerRole=SLAVE\n")
                && text.contains("haMasterAddress=127.0.0.1:20912\n")
        );
    }

    #[test]
    fn bad_changes_are_refused() {
        let mut me = BrokerConfig::new("store".into());
        me.advertised = "127.0.0.1:10911".parse().unwrap();
        me.broker_id = 0;
        let no_id = cmd(&[("masterAddress", "127.0.0.1:20911"), ("masterEpoch", "2")]);
        assert!(parse_change(&no_id, &me).unwrap_err().contains("brokerId"));
        for bad in [
            cmd(&[("masterAddress", "nowhere"), ("masterEpoch", "2")]),
            cmd(&[("masterAddress", "127.0.0.1:1"), ("masterEpoch", "0")]),
            cmd(&[
                ("masterAddress", "127.0.0.1:1"),
                ("masterEpoch", "99999999999"),
            ]),
            cmd(&[("masterEpoch", "2")]),
        ] {
            assert!(parse_change(&bad, &me).is_err());
        }
    }
}
