//! The broker: `--shards N` glommio executors, each owning a shard of the
//! message queues with its own store, listeners and connections (see
//! `docs/ARCHITECTURE.md`). This module starts and stops them.

pub mod config;
pub mod file_writer;
pub mod ha;
mod handlers;
mod long_poll;
pub mod mesh;
pub mod meta;
pub mod metrics;
mod offsets;
mod progress;
mod register;
mod reply_slot;
pub mod schedule;
pub mod shard;
mod shard_count;
mod transaction;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};
use rocketcore_storage::{ShardStore, SystemEnvironment};

use crate::broker::config::BrokerConfig;
use crate::broker::mesh::{ShardMsg, INBOX_MESSAGES};
use crate::broker::meta::{MetaOwner, TBW102};
use crate::broker::offsets::{ConsumerOffsets, PERSIST_INTERVAL_MS};
use crate::broker::shard::Shard;
use crate::net::RemotingClient;
use crate::protocol::{perm, TopicConfig};
use crate::security::{AclView, Security};

pub use handlers::{batch_body, offset_msg_id, parse_batch, store_error_code};

/// Memory each executor registers with io_uring. glommio's default (10 MiB)
/// exceeds the common 8 MiB RLIMIT_MEMLOCK on its own.
pub const EXECUTOR_IO_MEMORY_BYTES: usize = 1 << 20;
/// How often shard 0 drops silent clients (spec §10.4).
const CLIENT_SCAN_INTERVAL: Duration = Duration::from_secs(10);
/// How often forwards past their deadline are ended: one sweep instead of
/// a timer per forward, so a forward may wait up to this much longer.
const FORWARD_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// io_uring rings per glommio executor; each has the executor's I/O
/// memory registered, and io_uring charges every registration.
const RINGS_PER_EXECUTOR: usize = 3;

/// The one-line explanation for an executor that will not start.
pub fn executor_hint(e: impl std::fmt::Display) -> String {
    format!(
        "cannot start a glommio executor: {e}. rocketcore needs io_uring (kernel 5.8+, sysctl kernel.io_uring_disabled=0, \
         not blocked by a container seccomp profile) and locked memory for its rings (ulimit -l of at least {} KiB per \
         executor: one per shard, one for the name server; see tuning/README.md)",
        RINGS_PER_EXECUTOR * EXECUTOR_IO_MEMORY_BYTES / 1024
    )
}

pub struct BrokerHandle {
    threads: Vec<std::thread::JoinHandle<Result<(), String>>>,
    senders: Vec<flume::Sender<ShardMsg>>,
    pub listen: SocketAddr,
    /// The shard count running: the store's recorded one (`shard_count`).
    pub shards: usize,
}

impl BrokerHandle {
    /// Asks every shard to flush, persist, unregister and stop; waits.
    pub fn stop(self) -> Result<(), String> {
        let r = self.stop_shards();
        // Whatever a shard handed the file writer without waiting.
        file_writer::global().barrier();
        r
    }

    fn stop_shards(self) -> Result<(), String> {
        for tx in &self.senders {
            let _ = tx.send(ShardMsg::Stop);
        }
        let mut first_err = None;
        for t in self.threads {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert("a shard thread panicked".to_string());
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Starts the broker's shards and returns once all of them serve (or one
/// failed to start, in which case the others are stopped).
pub fn start(mut cfg: BrokerConfig) -> Result<BrokerHandle, String> {
    cfg.apply_persisted_updates()?;
    cfg.apply_persisted_role()?;
    if cfg.ha.controller_mode {
        // The controller says who is master: every broker starts as a
        // slave of no one, under the id the controller gave it (none yet:
        // it does not register with the name servers until it has one).
        cfg.ha.role = ha::BrokerRole::Slave;
        cfg.ha.master_address = None;
        cfg.broker_id = ha::controller::saved_id(&cfg.store_dir)?.unwrap_or(-1);
    }
    cfg.validate()?;
    crate::net::ensure_port_free(cfg.listen, "broker listen")?;
    if cfg.legacy_port {
        let mut legacy = cfg.listen;
        legacy.set_port(cfg.listen.port() - 2);
        crate::net::ensure_port_free(legacy, "broker legacy (listenPort - 2)")?;
    }
    if let Some(addr) = cfg.metrics_listen() {
        crate::net::ensure_port_free(addr, "metrics (metricsPromExporterPort)")?;
    }
    if cfg.ha.serves_slaves() {
        crate::net::ensure_port_free(cfg.ha.listen(cfg.listen), "replication (haListenPort)")?;
    }
    std::fs::create_dir_all(&cfg.store_dir)
        .map_err(|e| format!("creating store dir {}: {e}", cfg.store_dir.display()))?;
    cfg.shards = shard_count::settle(&cfg.store_dir, cfg.shards, cfg.shards_explicit)?;
    let mut owner = MetaOwner::load(&cfg.store_dir)?;
    if cfg.auto_create_topic_enable && owner.snap().topic(TBW102).is_none() {
        let mut t = TopicConfig::new(TBW102, cfg.default_topic_queue_nums);
        t.perm = perm::PERM_READ | perm::PERM_WRITE | perm::PERM_INHERIT;
        owner.put_topic(t)?.wait()?;
    }
    // The system topics Java brokers keep: tools address the broker and
    // the cluster by them, and name servers refuse a first registration
    // that carries a single topic.
    for name in [
        "SELF_TEST_TOPIC",
        cfg.broker_name.as_str(),
        cfg.cluster_name.as_str(),
    ] {
        if rocketcore_storage::valid_topic(name) && owner.snap().topic(name).is_none() {
            owner.put_topic(TopicConfig::new(name, 1))?.wait()?;
        }
    }
    let security = cfg.security.load()?;
    security.warn_if_open("broker", cfg.listen);
    let snapshot = owner.snapshot.clone();
    let cfg = Arc::new(cfg);
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..cfg.shards)
        .map(|_| flume::bounded(INBOX_MESSAGES))
        .unzip();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let mut owner = Some(owner);
    let mut threads = Vec::new();
    for (k, inbox) in receivers.into_iter().enumerate() {
        let cfg = cfg.clone();
        let mesh = senders.clone();
        let snapshot = snapshot.clone();
        let owner = if k == 0 { owner.take() } else { None };
        let ready = ready_tx.clone();
        let security = security.clone();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let placement = if cfg.pin_cores {
            Placement::Fixed(k % cpus)
        } else {
            Placement::Unbound
        };
        let t = std::thread::Builder::new()
            .name(format!("shard-{k}"))
            .spawn(move || {
                let ex = match LocalExecutorBuilder::new(placement)
                    .name(&format!("shard-{k}"))
                    .io_memory(EXECUTOR_IO_MEMORY_BYTES)
                    .make()
                {
                    Ok(ex) => ex,
                    Err(e) => {
                        let msg = executor_hint(e);
                        let _ = ready.send(Err(msg.clone()));
                        return Err(msg);
                    }
                };
                ex.run(run_shard(
                    k, cfg, mesh, inbox, snapshot, owner, security, ready,
                ))
            })
            .map_err(|e| format!("spawning shard thread: {e}"))?;
        threads.push(t);
    }
    drop(ready_tx);
    let listen = cfg.listen;
    let handle = BrokerHandle {
        threads,
        senders,
        listen,
        shards: cfg.shards,
    };
    for _ in 0..cfg.shards {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = handle.stop();
                return Err(e);
            }
            Err(_) => {
                let e = handle
                    .stop()
                    .err()
                    .unwrap_or_else(|| "a shard exited during start-up".into());
                return Err(e);
            }
        }
    }
    Ok(handle)
}

// Each argument is one thing a shard is born with; a struct would only
// rename them.
#[allow(clippy::too_many_arguments)]
async fn run_shard(
    k: usize,
    cfg: Arc<BrokerConfig>,
    mesh: Vec<flume::Sender<ShardMsg>>,
    inbox: flume::Receiver<ShardMsg>,
    snapshot: Arc<meta::MetaSnapshot>,
    owner: Option<MetaOwner>,
    security: Security,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) -> Result<(), String> {
    let started = async {
        let store = ShardStore::open(cfg.store_config(), k as u8, Rc::new(SystemEnvironment))
            .await
            .map_err(|e| format!("shard {k}: opening the store: {e}"))?;
        let offsets = ConsumerOffsets::load(
            cfg.store_dir
                .join("config")
                .join(format!("consumerOffset-{k}.json")),
        )?;
        let config_dir = cfg.store_dir.join("config");
        let sched = schedule::Scheduler::open(
            &store,
            cfg.delay_levels_ms()?,
            schedule::Scheduler::progress_path(&cfg.store_dir, k),
        )
        .await
        .map_err(|e| format!("shard {k}: {e}"))?;
        let tx = transaction::Transactions::open(
            &store,
            config_dir.join(format!("transaction-{k}.json")),
            cfg.transaction_timeout_ms,
        )
        .await
        .map_err(|e| format!("shard {k}: {e}"))?;
        let mut shard = Shard::new(
            k,
            cfg.clone(),
            store,
            mesh,
            snapshot,
            owner,
            offsets,
            sched,
            tx,
        );
        shard.acl = security.acl.clone().map(AclView::new);
        let shard = Rc::new(shard);
        let mut listeners = vec![glommio::net::TcpListener::bind(cfg.listen)
            .map_err(|e| format!("binding {}: {e}", cfg.listen))?];
        if cfg.legacy_port {
            let mut legacy = cfg.listen;
            legacy.set_port(cfg.listen.port() - 2);
            listeners.push(
                glommio::net::TcpListener::bind(legacy)
                    .map_err(|e| format!("binding legacy port {legacy}: {e}"))?,
            );
        }
        let ha = if !cfg.ha.serves_slaves() {
            None
        } else {
            let addr = cfg.ha.listen(cfg.listen);
            Some(
                glommio::net::TcpListener::bind(addr)
                    .map_err(|e| format!("binding the replication port {addr}: {e}"))?,
            )
        };
        let metrics = match cfg.metrics_listen().filter(|_| k == 0) {
            Some(addr) => Some(
                glommio::net::TcpListener::bind(addr)
                    .map_err(|e| format!("binding the metrics port {addr}: {e}"))?,
            ),
            None => None,
        };
        Ok::<_, String>((shard, listeners, metrics, ha))
    };
    let (shard, listeners, metrics, ha) = match started.await {
        Ok(x) => x,
        Err(e) => {
            let _ = ready.send(Err(e.clone()));
            return Err(e);
        }
    };
    let mut tasks = Vec::new();
    for l in listeners {
        let s = shard.clone();
        tasks.push(glommio::spawn_local(crate::net::serve(
            l,
            s,
            k as u64,
            security.tls.clone(),
            futures_lite::future::pending(),
        )));
    }
    if let Some(l) = metrics {
        let cfg = shard.cfg().clone();
        // The console reaches the cluster as this broker reaches its name
        // servers: same TLS, same credentials.
        let console = match (cfg.metrics.console, cfg.namesrv_addrs.first()) {
            (true, Some(ns)) => Some(Rc::new(crate::console::Console::new(
                *ns,
                crate::net::blocking::Link {
                    tls: security.client_tls.clone(),
                    credentials: security.credentials.clone(),
                },
                cfg.metrics.admin_password.clone(),
                format!("broker {} ({})", cfg.broker_name, cfg.advertised),
            ))),
            (true, None) => {
                tracing::warn!("consoleEnable=true but no namesrvAddr: the console is off");
                None
            }
            _ => None,
        };
        let pages = Rc::new(metrics::BrokerPages {
            shard: shard.clone(),
            metrics: cfg.metrics.prom,
            console,
        });
        tasks.push(glommio::spawn_local(crate::net::http::serve(l, pages)));
    }
    for target in (0..shard.shards).filter(|&target| target != k) {
        tasks.push(glommio::spawn_local(shard.clone().flush_mesh(target)));
    }
    let s = shard.clone();
    tasks.push(glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(FORWARD_SWEEP_INTERVAL).await;
            s.expire_forwards(std::time::Instant::now());
        }
    }));
    let s = shard.clone();
    tasks.push(glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(Duration::from_millis(PERSIST_INTERVAL_MS)).await;
            if let Err(e) = ConsumerOffsets::persist(&s.offsets, false).await {
                tracing::warn!(shard = s.id, "persisting consumer offsets: {e}");
            }
        }
    }));
    if let Some(l) = ha {
        tasks.push(glommio::spawn_local(ha::master::accept_loop(
            shard.clone(),
            l,
        )));
        tasks.push(glommio::spawn_local(
            shard.repl.clone().expire_loop(cfg.ha.slave_timeout_ms),
        ));
    }
    // Every role's loops run; each idles while the broker's current role
    // is not its own, since a role change (`ha::role`) may come at any time.
    // Delivery of staged messages and transaction checks are the master's:
    // a slave only mirrors what they store.
    if let Some(fixed) = cfg.ha.master_address.filter(|_| cfg.ha.role.is_slave()) {
        shard.repl.follow.master_ha.set(Some(fixed));
    }
    tasks.push(glommio::spawn_local(ha::slave::follow_loop(shard.clone())));
    if k == 0 && cfg.ha.controller_mode {
        tasks.push(glommio::spawn_local(ha::controller::replicas_loop(
            shard.clone(),
            security.client_tls.clone(),
            security.credentials.clone(),
        )));
    }
    if k == 0 {
        tasks.push(glommio::spawn_local(ha::metadata::sync_loop(
            shard.clone(),
            security.client_tls.clone(),
            security.credentials.clone(),
        )));
    }
    tasks.push(glommio::spawn_local(schedule::Scheduler::run(
        shard.clone(),
    )));
    tasks.push(glommio::spawn_local(transaction::Transactions::run(
        shard.clone(),
    )));
    let clients: Rc<Vec<RemotingClient>> = Rc::new(
        cfg.namesrv_addrs
            .iter()
            .map(|a| {
                RemotingClient::new(
                    *a,
                    security.client_tls.clone(),
                    security.credentials.clone(),
                )
            })
            .collect(),
    );
    if k == 0 {
        tasks.push(glommio::spawn_local(register::register_loop(
            shard.clone(),
            clients.clone(),
        )));
        let s = shard.clone();
        tasks.push(glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(CLIENT_SCAN_INTERVAL).await;
                s.expire_clients();
            }
        }));
    }
    let _ = ready.send(Ok(()));
    shard.clone().inbox_loop(inbox).await;
    // Stopping: no new connections or timers, no more offset commits (they
    // would be acknowledged and then lost), then make everything durable.
    shard.stopping.set(true);
    drop(tasks);
    if k == 0 {
        register::unregister(&shard, &clients).await;
    }
    let mut result = ConsumerOffsets::persist(&shard.offsets, true).await;
    // Progress marks last: they may only count what the store has flushed.
    // A slave's are the master's, copied; its own services never ran.
    if !shard.is_slave() {
        if let Err(e) = shard.sched.persist(&shard.store).await {
            result = Err(format!("shard {k}: delivery progress: {e}"));
        }
        if let Err(e) = shard.tx.persist(&shard.store).await {
            result = Err(format!("shard {k}: transaction marks: {e}"));
        }
    }
    if let Err(e) = shard.store.shutdown().await {
        result = Err(format!("shard {k}: store shutdown: {e}"));
    }
    result
}
