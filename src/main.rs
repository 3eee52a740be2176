//! `rocketcore`: the command line. `namesrv`, `broker` and `dev` start
//! servers; each prints one `ready: …` line on stdout once it serves, logs
//! to stderr, and exits 0 after SIGTERM/SIGINT once everything is flushed.
//! A second signal exits at once.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use rocketcore::broker::config::{self, BrokerConfig};

#[derive(Parser)]
#[command(
    name = "rocketcore",
    version,
    about = "A RocketMQ-compatible broker and name server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a name server.
    Namesrv {
        #[arg(long, default_value = "0.0.0.0:9876")]
        listen: SocketAddr,
        /// namesrv.conf: its ACL (aclEnable, aclFile) and TLS (tls.*) keys.
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// A property, e.g. --set aclEnable=true (repeatable; after --config).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Run a broker that registers with the given name servers.
    Broker {
        /// RocketMQ broker.conf (flags below override it).
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// Name servers, "host:port;host:port".
        #[arg(long)]
        namesrv: Option<String>,
        #[arg(long)]
        listen: Option<SocketAddr>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Run a controller node (RocketMQ 5 controller mode: automatic
    /// failover for brokers with enableControllerMode=true).
    Controller {
        /// This node's id in --peers.
        #[arg(long)]
        id: u64,
        /// Every controller node's Raft address: "1=host:port,2=host:port,3=host:port".
        #[arg(long)]
        peers: String,
        /// Where brokers reach this node (their controllerAddr).
        #[arg(long, default_value = "0.0.0.0:9878")]
        listen: SocketAddr,
        /// Directory for the Raft log, vote and snapshot.
        #[arg(long, default_value = "rocketcore-controller")]
        dir: PathBuf,
    },
    /// mqadmin's verbs against a name server and its brokers.
    Admin(rocketcore::admin::AdminArgs),
    /// Write a certificate authority and a server certificate it signs
    /// (ca.pem, ca.key, server.pem, server.key) for TLS.
    TlsCerts {
        /// Directory to write into.
        #[arg(long)]
        dir: PathBuf,
        /// A name or IP address the server certificate is for (repeatable).
        #[arg(long = "host", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
        hosts: Vec<String>,
    },
    /// Name server and broker in one process, on loopback, storing in ./rocketcore-data.
    Dev {
        #[arg(long, default_value = "127.0.0.1:9876")]
        namesrv_listen: SocketAddr,
        #[arg(long, default_value = "127.0.0.1:10911")]
        listen: SocketAddr,
        /// Slaves of the broker, in the same process (0 to 2): slave k
        /// listens on the broker's port + 10·k and stores in
        /// <store>/slave-<k>; the broker is then a SYNC_MASTER unless
        /// --set brokerRole says otherwise.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
        replicas: u8,
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Args)]
struct CommonArgs {
    /// Store root directory.
    #[arg(long)]
    store: Option<PathBuf>,
    /// Shards (executor threads); default: available cores.
    #[arg(long)]
    shards: Option<usize>,
    /// flushDiskType: sync or async.
    #[arg(long, value_parser = ["sync", "async"])]
    flush: Option<String>,
    /// A broker.conf property, e.g. --set transactionCheckInterval=5000
    /// (repeatable; applied after --config).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

fn parse_set(set: &[String]) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut props = std::collections::BTreeMap::new();
    for kv in set {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--set {kv:?}: expected KEY=VALUE"))?;
        props.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(props)
}

/// A name server's settings (security, metrics): namesrv.conf, then `--set`.
fn namesrv_settings(
    config: Option<&PathBuf>,
    set: &[String],
) -> Result<(rocketcore::security::SecurityConfig, config::MetricsConfig), String> {
    let mut sec = rocketcore::security::SecurityConfig::default();
    let mut metrics = config::MetricsConfig::default();
    let mut apply = |props: &std::collections::BTreeMap<String, String>| {
        let mut rest = Vec::new();
        for k in sec.apply_properties(props)? {
            if !metrics.apply_property(&k, props[&k].trim())? {
                rest.push(k);
            }
        }
        Ok::<_, String>(rest)
    };
    if let Some(path) = config {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let ignored = apply(&config::parse_properties(&text))?;
        if !ignored.is_empty() {
            tracing::info!(
                "namesrv.conf keys without effect here: {}",
                ignored.join(", ")
            );
        }
    }
    let unknown = apply(&parse_set(set)?)?;
    if !unknown.is_empty() {
        return Err(format!(
            "--set: unknown name server keys: {}",
            unknown.join(", ")
        ));
    }
    Ok((sec, metrics))
}

impl CommonArgs {
    fn apply(&self, cfg: &mut BrokerConfig) -> Result<(), String> {
        let props = parse_set(&self.set)?;
        let ignored = cfg.apply_properties(&props)?;
        if !ignored.is_empty() {
            return Err(format!(
                "--set: unknown broker.conf keys: {}",
                ignored.join(", ")
            ));
        }
        if let Some(s) = &self.store {
            cfg.store_dir = s.clone();
        }
        if let Some(n) = self.shards {
            cfg.shards = n;
            cfg.shards_explicit = true;
        }
        if let Some(f) = &self.flush {
            cfg.flush_disk_type = config::parse_flush(f).unwrap_or(cfg.flush_disk_type);
        }
        Ok(())
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("ROCKETCORE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        // Its report of a failed write is an eprintln!, which panics when
        // stderr cannot be written: a log file on a full disk killed the
        // shard that logged. A lost log line is the lesser harm.
        .log_internal_errors(false)
        .init();
}

/// A panic anywhere ends the process. Shards do not share state, so a
/// panicked shard would leave a process that looks alive but never
/// answers for its queues; ended, it is restarted by its supervisor and
/// recovery runs. The report goes to stderr as usual, if it can.
fn abort_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::abort();
    }));
}

/// Blocks SIGINT and SIGTERM in this thread and every thread it starts, so
/// that `wait_for_signal` receives them synchronously.
fn block_signals() -> libc::sigset_t {
    // SAFETY: plain libc signal-mask calls on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) -> i32 {
    let mut sig = 0;
    // SAFETY: sigwait writes the signal number into `sig`.
    unsafe { libc::sigwait(set, &mut sig) };
    sig
}

/// After the first signal: a second one ends the process at once.
fn exit_on_second_signal(set: libc::sigset_t) {
    std::thread::spawn(move || {
        let sig = wait_for_signal(&set);
        let _ = writeln!(
            std::io::stderr(),
            "rocketcore: second signal ({sig}), exiting without cleanup"
        );
        std::process::exit(130);
    });
}

fn load_broker_conf(path: &PathBuf, cfg: &mut BrokerConfig) -> Result<(), String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let ignored = cfg.apply_properties(&config::parse_properties(&text))?;
    if !ignored.is_empty() {
        tracing::info!(
            "broker.conf keys without effect here: {}",
            ignored.join(", ")
        );
    }
    Ok(())
}

fn run(cli: Cli) -> Result<(), String> {
    let signals = block_signals();
    match cli.command {
        Command::Admin(args) => rocketcore::admin::run(args),
        Command::Controller {
            id,
            peers,
            listen,
            dir,
        } => {
            let cfg = rocketcore::controller::ControllerConfig {
                id,
                peers: rocketcore::controller::parse_peers(&peers)?,
                listen,
                dir,
            };
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            std::thread::spawn(move || {
                let sig = wait_for_signal(&signals);
                tracing::info!("signal {sig}: stopping");
                exit_on_second_signal(signals);
                let _ = tx.send(());
            });
            rocketcore::controller::run(cfg, async {
                let _ = rx.await;
            })
        }
        Command::TlsCerts { dir, hosts } => {
            for path in rocketcore::security::tls::write_certificates(&dir, &hosts)? {
                println!("wrote {}", path.display());
            }
            Ok(())
        }
        Command::Namesrv {
            listen,
            config: conf,
            set,
        } => {
            let (security, metrics) = namesrv_settings(conf.as_ref(), &set)?;
            let ns = rocketcore::namesrv_server::start_with(listen, security.load()?, metrics)?;
            println!("ready: namesrv={listen}");
            let sig = wait_for_signal(&signals);
            tracing::info!("signal {sig}: stopping");
            exit_on_second_signal(signals);
            ns.stop();
            Ok(())
        }
        Command::Broker {
            config: conf,
            namesrv,
            listen,
            common,
        } => {
            let mut cfg = BrokerConfig::new(PathBuf::from("rocketcore-data"));
            if let Some(p) = &conf {
                load_broker_conf(p, &mut cfg)?;
            }
            if let Some(ns) = namesrv {
                cfg.namesrv_addrs = config::parse_namesrv_list(&ns)?;
            }
            if let Some(l) = listen {
                cfg.listen = l;
                cfg.advertised.set_port(l.port());
                if !l.ip().is_unspecified() && conf.is_none() {
                    cfg.advertised.set_ip(l.ip());
                }
            }
            common.apply(&mut cfg)?;
            if cfg.namesrv_addrs.is_empty() {
                tracing::warn!("no name server given (--namesrv or namesrvAddr): clients will not find this broker");
            }
            let advertised = cfg.advertised;
            let store = cfg.store_dir.clone();
            let broker = rocketcore::broker::start(cfg)?;
            println!(
                "ready: broker={advertised} listen={} shards={} store={}",
                broker.listen,
                broker.shards,
                store.display()
            );
            let sig = wait_for_signal(&signals);
            tracing::info!("signal {sig}: stopping");
            exit_on_second_signal(signals);
            broker.stop()
        }
        Command::Dev {
            namesrv_listen,
            listen,
            replicas,
            common,
        } => {
            let mut cfg = BrokerConfig::new(PathBuf::from("rocketcore-data"));
            cfg.listen = listen;
            cfg.advertised = listen;
            cfg.namesrv_addrs = vec![namesrv_listen];
            cfg.pin_cores = false;
            // Small segments: a dev store should not take a GiB of disk.
            cfg.segment_bytes = 64 << 20;
            if replicas > 0 {
                cfg.ha.role = rocketcore::broker::ha::BrokerRole::SyncMaster;
            } else {
                // A dev broker has no slaves: no port for them.
                cfg.ha.accept_slaves = false;
            }
            common.apply(&mut cfg)?;
            // One process, one set of keys: the name server is guarded as
            // the broker is, and the broker must be able to register.
            if cfg.security.acl_enable && cfg.security.inner_credentials.is_none() {
                return Err("aclEnable=true in dev mode: the name server then admits only admin accounts to registrations; set innerClientAuthenticationCredentials={\"accessKey\":…,\"secretKey\":…} to an admin account of the ACL file".into());
            }
            if cfg.security.tls.effective_mode() != rocketcore::security::TlsMode::Disabled {
                // The broker reaches its own name server over TLS too.
                cfg.security.tls.client_enable = true;
            }
            // The broker's HTTP port (metrics, console) covers dev; one
            // port is enough.
            let ns = rocketcore::namesrv_server::start_with(
                namesrv_listen,
                cfg.security.load()?,
                Default::default(),
            )?;
            let store = cfg.store_dir.clone();
            let slave_cfgs: Vec<BrokerConfig> = (1..=replicas)
                .map(|k| dev_slave(&cfg, k))
                .collect::<Result<_, _>>()?;
            let broker = match rocketcore::broker::start(cfg) {
                Ok(b) => b,
                Err(e) => {
                    ns.stop();
                    return Err(e);
                }
            };
            let mut slaves = Vec::new();
            for scfg in slave_cfgs {
                match rocketcore::broker::start(scfg) {
                    Ok(s) => slaves.push(s),
                    Err(e) => {
                        for s in slaves {
                            let _ = s.stop();
                        }
                        let _ = broker.stop();
                        ns.stop();
                        return Err(e);
                    }
                }
            }
            let slave_addrs: Vec<String> = slaves.iter().map(|s| s.listen.to_string()).collect();
            println!(
                "ready: namesrv={namesrv_listen} broker={listen} shards={} store={}{}",
                broker.shards,
                store.display(),
                if slave_addrs.is_empty() {
                    String::new()
                } else {
                    format!(" slaves={}", slave_addrs.join(","))
                }
            );
            let sig = wait_for_signal(&signals);
            tracing::info!("signal {sig}: stopping");
            exit_on_second_signal(signals);
            let mut r = Ok(());
            for s in slaves {
                if let Err(e) = s.stop() {
                    r = Err(e);
                }
            }
            let b = broker.stop();
            ns.stop();
            r.and(b)
        }
    }
}

/// `dev --replicas`: slave `k` of the dev broker, beside it in the process.
fn dev_slave(master: &BrokerConfig, k: u8) -> Result<BrokerConfig, String> {
    let mut c = master.clone();
    let port = master
        .listen
        .port()
        .checked_add(10 * k as u16)
        .ok_or("--replicas: the broker port leaves no room for slave ports")?;
    c.listen.set_port(port);
    c.advertised.set_port(port);
    // A slave listens for slaves too (a role change may promote it).
    let ha_port = master
        .ha
        .listen(master.listen)
        .port()
        .checked_add(10 * k as u16)
        .ok_or("--replicas: the HA port leaves no room for the slaves' HA ports")?;
    c.ha.listen_port = Some(ha_port);
    c.broker_id = k as i64;
    c.ha.role = rocketcore::broker::ha::BrokerRole::Slave;
    // Straight to the master's HA port: no wait for the name server's word.
    c.ha.master_address = Some(master.ha.listen(master.advertised));
    c.store_dir = master.store_dir.join(format!("slave-{k}"));
    // One HTTP port per process: the master's.
    c.metrics.prom = false;
    c.metrics.console = false;
    Ok(c)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    abort_on_panic();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: it panics when stderr cannot be written.
            let _ = writeln!(std::io::stderr(), "rocketcore: {e}");
            ExitCode::FAILURE
        }
    }
}
