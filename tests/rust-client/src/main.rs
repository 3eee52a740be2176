//! Compatibility checks of a RocketMQ name server + broker with the crates.io
//! Rust client (`rocketmq-client-rust`), one scenario per run (`--scenario`):
//!
//! - `produce-consume` (default, `produce_consume.rs`): a `DefaultMQProducer`
//!   sends `--count` messages, a `DefaultMQPushConsumer` must get each back
//!   once and intact.
//! - `transaction` (`transaction.rs`): a `TransactionMQProducer` whose local
//!   transactions commit, roll back, or stay unknown until the broker's
//!   check-back commits them.
//! - `timer` (`timer.rs`): messages with a delivery time must arrive at it.
//! - `sql92` (`sql92.rs`): a push consumer with an SQL92 selector must get
//!   exactly the matching messages.
//! - `new-consumer` (`new_consumer.rs`): push consumers on new groups, not
//!   waited for, must get a plain message within 3 s and a delay-level-2
//!   message within 5-7 s.
//! - `failover` (`failover.rs`): sends acknowledged by a SYNC_MASTER are
//!   all read from its slave after the runner kills the master.
//! - `acl-refused` (`acl_refused.rs`): a send with the given credentials
//!   must be refused by the broker's ACL.
//!
//! Every scenario connects with TLS under `--tls` and signs its requests
//! (the client's `AclClientRPCHook`) under `--access-key`/`--secret-key`.
//!
//! This file holds what the scenarios share: arguments, the client runtime,
//! the watchdog, logging, and small client helpers. Exit code 0 only when the
//! scenario's checks pass; 1 on a failed check or client error; 2 on bad
//! arguments; 3 when the watchdog had to kill the process. The summary goes to
//! stdout; the client's own log lines go to stderr.

mod acl_refused;
mod admin_read;
mod failover;
mod new_consumer;
mod produce_consume;
mod sql92;
mod timer;
mod transaction;

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::net::TcpStream;
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;
use std::time::SystemTime;

use rocketmq_client_rust::AclClientRPCHook;
use rocketmq_client_rust::ClientConfig;
use rocketmq_client_rust::ClientError;
use rocketmq_client_rust::ClientResult;
use rocketmq_client_rust::ClientRpcHook;
use rocketmq_client_rust::ClientRuntime;
use rocketmq_client_rust::ClientRuntimeConfig;
use rocketmq_client_rust::ConsumeConcurrentlyContext;
use rocketmq_client_rust::ConsumeConcurrentlyStatus;
use rocketmq_client_rust::DefaultMQProducer;
use rocketmq_client_rust::DefaultMQPushConsumer;
// Trait in scope for `register_message_listener_concurrently` (no inherent method).
use rocketmq_client_rust::MQPushConsumer;
use rocketmq_client_rust::MessageSelector;
use rocketmq_client_rust::SendStatus;
use rocketmq_client_rust::SessionCredentials;
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_protocol::protocol::heartbeat::message_model::MessageModel;
use rocketmq_runtime::RuntimeConfig;
use rocketmq_runtime::RuntimeOwner;

const USAGE: &str = "\
usage: rocketcore-rust-client-check --namesrv HOST:PORT --topic TOPIC --group GROUP
                                    [--scenario NAME] [--count N] [--timeout-secs S]
                                    [--tag TAG] [--consume-threads K]
                                    [--allow-redelivery] [--default-runtime]
                                    [--timer-delay-ms D] [--log FILTER]

  --namesrv HOST:PORT   name server address
  --topic TOPIC         topic to produce to and consume from (auto-created by the
                        broker from TBW102 if it does not exist)
  --group GROUP         consumer group (use a new one per run); the producer group
                        is GROUP_producer
  --scenario NAME       what to check (default produce-consume):
                          produce-consume  send --count messages, consume each
                                           back once and intact
                          transaction      transactional producer: --count
                                           messages each committed, rolled back,
                                           and left unknown then committed by the
                                           broker's check-back
                          timer            --count messages with a delivery time
                                           --timer-delay-ms ahead, plus a control
                                           message without one
                          sql92            --count messages with properties a and
                                           b, consumed with the SQL92 selector
                                           \"a >= 10 AND b = 'x'\"
                          new-consumer     --count rounds of a push consumer on
                                           a new group: a plain message 1 s after
                                           its start within 3 s, a delay level 2
                                           message within 5-7 s
  --count N             messages to send; default 200 (produce-consume), 3 per
                        outcome (transaction), 5 (timer), 20 (sql92, at least 11),
                        5 rounds (new-consumer)
  --timeout-secs S      budget for the whole run (default 120 for produce-consume,
                        90 for new-consumer, 60 otherwise)
  --tag TAG             tag set on every message (default TagA)
  --consume-threads K   push consumer listener concurrency (default 8)
  --allow-redelivery    do not fail when a message is delivered more than once,
                        or only after a failed attempt (via the %RETRY% topic)
  --default-runtime     keep the client's default runtime sizing and listener
                        concurrency (20), to reproduce runtime.capacity.exhausted
                        rejections on small machines; ignores --consume-threads
  --timer-delay-ms D    timer scenario: how far ahead the delivery time is
                        (default 3000)
  --log FILTER          client log filter for stderr (default warn)
  --access-key AK       sign every request (ACL) with this access key
  --secret-key SK       ... and this secret
  --tls                 connect with TLS
  --tls-ca FILE         with --tls: verify servers against this CA (PEM);
                        without it any certificate is accepted";

/// Timeout of one send (the client's default `sendMsgTimeout`); the client
/// retries a failed send twice within it.
pub(crate) const SEND_TIMEOUT_MS: u64 = 3_000;
/// Bound on each graceful shutdown step, so a broker that stops answering
/// cannot hang the program after the verdict is known.
pub(crate) const SHUTDOWN_STEP: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    ProduceConsume,
    Transaction,
    Timer,
    Sql92,
    NewConsumer,
    AclRefused,
    AdminRead,
    Failover,
}

impl Scenario {
    const ALL: [Scenario; 8] = [
        Scenario::ProduceConsume,
        Scenario::Transaction,
        Scenario::Timer,
        Scenario::Sql92,
        Scenario::NewConsumer,
        Scenario::AclRefused,
        Scenario::AdminRead,
        Scenario::Failover,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::ProduceConsume => "produce-consume",
            Scenario::Transaction => "transaction",
            Scenario::Timer => "timer",
            Scenario::Sql92 => "sql92",
            Scenario::NewConsumer => "new-consumer",
            Scenario::AclRefused => "acl-refused",
            Scenario::AdminRead => "admin-read",
            Scenario::Failover => "failover",
        }
    }

    fn default_count(self) -> usize {
        match self {
            Scenario::ProduceConsume => 200,
            Scenario::Transaction => 3,
            Scenario::Timer => 5,
            Scenario::Sql92 => 20,
            Scenario::NewConsumer => 5,
            Scenario::AclRefused => 1,
            Scenario::AdminRead => 20,
            Scenario::Failover => 50,
        }
    }

    fn default_timeout(self) -> Duration {
        match self {
            // Sized for 200 messages through a cold client on a loaded machine.
            Scenario::ProduceConsume => Duration::from_secs(120),
            Scenario::Transaction
            | Scenario::Timer
            | Scenario::Sql92
            | Scenario::AclRefused
            | Scenario::AdminRead
            | Scenario::Failover => Duration::from_secs(60),
            // Up to about 11 s a round, five rounds.
            Scenario::NewConsumer => Duration::from_secs(90),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Args {
    pub(crate) scenario: Scenario,
    pub(crate) namesrv: String,
    pub(crate) topic: String,
    pub(crate) group: String,
    pub(crate) count: usize,
    pub(crate) timeout: Duration,
    pub(crate) tag: String,
    pub(crate) consume_threads: u32,
    pub(crate) allow_redelivery: bool,
    pub(crate) default_runtime: bool,
    pub(crate) timer_delay: Duration,
    pub(crate) log: String,
    pub(crate) access_key: Option<String>,
    pub(crate) secret_key: Option<String>,
    pub(crate) tls: bool,
    pub(crate) tls_ca: Option<String>,
    /// `failover`: where the runner and the program signal each other.
    pub(crate) handoff: Option<String>,
}

impl Args {
    fn parse(mut argv: impl Iterator<Item = String>) -> Result<Self, String> {
        let (mut namesrv, mut topic, mut group) = (None, None, None);
        let (mut count, mut timeout) = (None, None);
        let mut args = Args {
            scenario: Scenario::ProduceConsume,
            namesrv: String::new(),
            topic: String::new(),
            group: String::new(),
            count: 0,
            timeout: Duration::ZERO,
            tag: "TagA".to_string(),
            consume_threads: 8,
            allow_redelivery: false,
            default_runtime: false,
            timer_delay: Duration::from_millis(3_000),
            log: "warn".to_string(),
            access_key: None,
            secret_key: None,
            tls: false,
            tls_ca: None,
            handoff: None,
        };
        while let Some(flag) = argv.next() {
            if flag == "--allow-redelivery" {
                args.allow_redelivery = true;
                continue;
            }
            if flag == "--default-runtime" {
                args.default_runtime = true;
                continue;
            }
            if flag == "--tls" {
                args.tls = true;
                continue;
            }
            if flag == "-h" || flag == "--help" {
                return Err(String::new());
            }
            let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = |what: &str| -> Result<u64, String> {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("{what} must be a non-negative integer, got {value:?}"))
            };
            match flag.as_str() {
                "--scenario" => {
                    args.scenario = Scenario::ALL
                        .into_iter()
                        .find(|s| s.name() == value)
                        .ok_or_else(|| {
                            let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
                            format!("unknown scenario {value:?} (one of {})", names.join(", "))
                        })?
                }
                "--namesrv" => namesrv = Some(value.clone()),
                "--topic" => topic = Some(value.clone()),
                "--group" => group = Some(value.clone()),
                "--count" => count = Some(number("--count")? as usize),
                "--timeout-secs" => timeout = Some(Duration::from_secs(number("--timeout-secs")?)),
                "--tag" => args.tag = value.clone(),
                "--consume-threads" => {
                    args.consume_threads = u32::try_from(number("--consume-threads")?)
                        .ok()
                        .filter(|k| (1..=64).contains(k))
                        .ok_or("--consume-threads must be between 1 and 64")?
                }
                "--timer-delay-ms" => {
                    args.timer_delay = Duration::from_millis(number("--timer-delay-ms")?)
                }
                "--log" => args.log = value.clone(),
                "--access-key" => args.access_key = Some(value.clone()),
                "--secret-key" => args.secret_key = Some(value.clone()),
                "--tls-ca" => args.tls_ca = Some(value.clone()),
                "--handoff" => args.handoff = Some(value.clone()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        args.namesrv = namesrv.ok_or("--namesrv is required")?;
        args.topic = topic.ok_or("--topic is required")?;
        args.group = group.ok_or("--group is required")?;
        args.count = count.unwrap_or(args.scenario.default_count());
        args.timeout = timeout.unwrap_or(args.scenario.default_timeout());
        if args.count == 0 {
            return Err("--count must be at least 1".to_string());
        }
        if args.scenario == Scenario::Sql92 && args.count < 11 {
            return Err(
                "--count must be at least 11 for sql92 (a=10 is the first match)".to_string(),
            );
        }
        if args.access_key.is_some() != args.secret_key.is_some() {
            return Err("--access-key and --secret-key go together".to_string());
        }
        if args.tls_ca.is_some() && !args.tls {
            return Err("--tls-ca needs --tls".to_string());
        }
        if args.timeout.is_zero() {
            return Err("--timeout-secs must be at least 1".to_string());
        }
        Ok(args)
    }
}

/// What a scenario hands back: the lines to print (a summary, then details)
/// and the verdict. Printed only after the client has shut down, so that the
/// client's shutdown warnings do not end up in the middle of it.
pub(crate) struct Report {
    pub(crate) lines: Vec<String>,
    pub(crate) passed: bool,
}

impl Report {
    /// A one-line summary, then one line per problem (the first 20); passes
    /// when there are no problems.
    pub(crate) fn new(summary: String, problems: &[String]) -> Self {
        let mut lines = vec![summary];
        lines.extend(problems.iter().take(20).map(|p| format!("  problem: {p}")));
        if problems.len() > 20 {
            lines.push(format!("  ... and {} more problems", problems.len() - 20));
        }
        Report {
            lines,
            passed: problems.is_empty(),
        }
    }

    pub(crate) fn fail(scenario: Scenario, error: String) -> Self {
        Report::new(format!("{}: could not run", scenario.name()), &[error])
    }
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    // Last line of defence for a hang inside the client (shutdown paths
    // included): every step below is bounded, but the caller (CI) must never
    // wait on this process for longer than the budget plus a grace period.
    let hard_limit = args.timeout + Duration::from_secs(60);
    std::thread::spawn(move || {
        std::thread::sleep(hard_limit);
        eprintln!(
            "error: watchdog: still running {}s after start, giving up",
            hard_limit.as_secs()
        );
        std::process::exit(3);
    });

    // Checked before the client starts so that "nothing listens there" is
    // reported as such, instead of as a send failure after the client's own
    // retries.
    if let Err(message) = preflight(&args.namesrv) {
        eprintln!("error: {message}");
        println!("RESULT: FAIL (name server unreachable)");
        return ExitCode::from(1);
    }

    let logging = install_logging(&args.log);

    let config = if args.default_runtime {
        RuntimeConfig::default()
    } else {
        runtime_config()
    };
    let owner = match RuntimeOwner::plan(config)
        .map_err(|violation| format!("{violation:?}"))
        .and_then(|plan| plan.build().map_err(|error| format!("{error:?}")))
    {
        Ok(owner) => owner,
        Err(error) => {
            eprintln!("error: cannot create the client runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let client_runtime = match ClientRuntime::try_new(
        owner.root_context().component("client"),
        ClientRuntimeConfig {
            shutdown_timeout: SHUTDOWN_STEP,
            ..ClientRuntimeConfig::default()
        },
        // Telemetry export is not needed; logs go through `install_logging`.
        rocketmq_client_rust::TelemetryHandle::noop(),
    ) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!(
                "error: cannot create the client runtime: {}",
                describe(&error)
            );
            return ExitCode::from(1);
        }
    };

    let runtime = Arc::clone(&client_runtime);
    let report = owner.block_on(async {
        match args.scenario {
            Scenario::ProduceConsume => produce_consume::run(&args, runtime).await,
            Scenario::Transaction => transaction::run(&args, runtime).await,
            Scenario::Timer => timer::run(&args, runtime).await,
            Scenario::Sql92 => sql92::run(&args, runtime).await,
            Scenario::NewConsumer => new_consumer::run(&args, runtime).await,
            Scenario::AclRefused => acl_refused::run(&args, runtime).await,
            Scenario::AdminRead => admin_read::run(&args, runtime).await,
            Scenario::Failover => failover::run(&args, runtime).await,
        }
    });

    // Tear down in the client's order: pooled client instances and their
    // tasks first, then the runtime owner. Unhealthy reports are only
    // reported: the verdict is about the messages, not about shutdown.
    let client_report = owner.block_on(client_runtime.shutdown());
    if !client_report.is_healthy() {
        eprintln!(
            "warning: client runtime shutdown not clean: {}",
            client_report.to_json()
        );
    }
    drop(client_runtime);
    if let Err(error) = owner.shutdown_runtime_blocking_with_timeout(SHUTDOWN_STEP) {
        eprintln!("warning: runtime shutdown: {error:?}");
    }
    if let Some(logging) = logging {
        let _ = logging.shutdown();
    }

    for line in &report.lines {
        println!("{line}");
    }
    println!("RESULT: {}", if report.passed { "PASS" } else { "FAIL" });
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Runtime sizing. With the defaults on a 2-core machine the client's
/// metadata-io blocking lane admits 4 running + 16 queued closures
/// (`RuntimeConfig::for_parallelism`: 2 x cores and 8 x cores), but the push
/// consumer runs every listener call on that lane with up to
/// `consume_thread_min` (default 20) calls in flight (and the transactional
/// producer runs its local-transaction and check-back listeners there too).
/// Under load the lane rejects calls with `runtime.capacity.exhausted` (or
/// times them out after the lane's 5 s queue timeout); the client counts a
/// rejected call as a failed consumption and sends the message back to the
/// %RETRY% topic. So: make the lane wider and deeper than the consumer can ever
/// fill (see `--consume-threads`, capped at 64), and give the blocking pool the
/// threads to back it.
fn runtime_config() -> RuntimeConfig {
    let parallelism = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut config = RuntimeConfig::for_parallelism("rocketcore-client-check", parallelism);
    let metadata_io = &mut config.blocking_lane_policies.metadata_io;
    metadata_io.max_concurrency = 64;
    metadata_io.max_queue_depth = 1024;
    metadata_io.queue_timeout = Duration::from_secs(60);
    // The global blocking budget caps every lane; 128 leaves the other two
    // lanes their defaults. Valid by construction (3..=512), hence expect.
    config
        .with_max_blocking_threads(128)
        .expect("128 blocking threads is within the runtime's supported range")
}

fn install_logging(filter: &str) -> Option<rocketmq_observability::TelemetryRuntimeGuard> {
    let mut config = rocketmq_observability::TelemetryBootstrapConfig::default();
    config.logging.filter = filter.to_string();
    // Plain text: the output usually ends up in a test log, not a terminal.
    config.logging.console.ansi = false;
    match rocketmq_observability::install_global(&config) {
        Ok(guard) => Some(guard),
        Err(error) => {
            eprintln!("warning: client logging not installed: {error}");
            None
        }
    }
}

fn preflight(namesrv: &str) -> Result<(), String> {
    let addrs: Vec<SocketAddr> = namesrv
        .to_socket_addrs()
        .map_err(|error| format!("bad --namesrv {namesrv:?}: {error}"))?
        .collect();
    let mut last_error = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
            Ok(_) => return Ok(()),
            Err(error) => last_error = Some(error),
        }
    }
    Err(match last_error {
        Some(error) => format!("cannot connect to the name server at {namesrv}: {error}"),
        None => format!("--namesrv {namesrv:?} resolves to no address"),
    })
}

/// A run id for every body and key: leftovers of an earlier run on the same
/// topic are recognisable (and counted as "foreign", not as failures).
pub(crate) fn new_run_id() -> String {
    format!("{:x}-{}", now_ms(), std::process::id())
}

/// Wall-clock milliseconds, the clock the broker uses for delivery times.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// Distinct and recognisable bodies, with a few non-UTF-8 bytes at the end so
/// that a server mangling binary bodies (e.g. through a string) gets caught.
pub(crate) fn body_for(run_id: &str, seq: usize) -> Vec<u8> {
    let mut body = format!("rocketcore rust-client check run={run_id} seq={seq:06} ").into_bytes();
    body.extend_from_slice(&[0x00, 0xff, 0xfe, (seq % 251) as u8]);
    body
}

pub(crate) fn abbreviate<T: ToString>(items: &[T]) -> String {
    let shown: Vec<String> = items.iter().take(20).map(T::to_string).collect();
    if items.len() > shown.len() {
        format!("{}, ...", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// A client error as text for a person debugging the server. The client's
/// `Display` is only "code: generic message" and its `Debug` redacts most
/// context, so add what is safe to show: the diagnostic fields (the broker's
/// response code and address, the operation) and the chain of causes, which
/// is where e.g. a route body that failed to parse says why.
pub(crate) fn describe(error: &ClientError) -> String {
    let mut text = error.to_string();
    if let Ok(view) = error.diagnostic_view() {
        let fields: Vec<String> = view
            .fields()
            .map(|field| format!("{}={:?}", field.name(), field.value()))
            .filter(|field| !field.ends_with("=<redacted>"))
            .collect();
        if !fields.is_empty() {
            text.push_str(&format!(" [{}]", fields.join(", ")));
        }
    }
    // `**error` is the client's inner error; its sources are the causes.
    let mut cause = std::error::Error::source(&**error);
    while let Some(source) = cause {
        text.push_str(&format!("; caused by: {source}"));
        cause = source.source();
    }
    text
}

/// Runs a client call that has no deadline of its own (start, subscribe)
/// within the run's deadline.
pub(crate) async fn bounded<T>(
    deadline: Instant,
    future: impl std::future::Future<Output = ClientResult<T>>,
) -> Result<T, String> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(remaining, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(describe(&error)),
        Err(_) => Err("timed out (run deadline)".to_string()),
    }
}

pub(crate) async fn shutdown_bounded(what: &str, future: impl std::future::Future<Output = ()>) {
    if tokio::time::timeout(SHUTDOWN_STEP, future).await.is_err() {
        eprintln!(
            "warning: {what} shutdown did not finish within {}s",
            SHUTDOWN_STEP.as_secs()
        );
    }
}

/// Polls `done` until it holds or the deadline passes; once it holds, keeps
/// the consumer running for `settle` more, so that late duplicates and
/// messages that must never come get their chance to show up. Returns whether
/// `done` held.
pub(crate) async fn wait_then_settle(
    deadline: Instant,
    settle: Duration,
    mut done: impl FnMut() -> bool,
) -> bool {
    loop {
        if done() {
            tokio::time::sleep(settle).await;
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The TLS settings of `--tls`/`--tls-ca`, when given.
pub(crate) fn tls_config(args: &Args) -> Option<ClientConfig> {
    if !args.tls {
        return None;
    }
    let builder = ClientConfig::builder()
        .namesrv_addr(args.namesrv.clone())
        .enable_tls(true);
    let builder = match &args.tls_ca {
        Some(ca) => builder
            .tls_client_auth_server(true)
            .tls_client_trust_cert_path(ca.clone()),
        None => builder.tls_client_auth_server(false),
    };
    Some(builder.build_unvalidated())
}

/// The signing hook of `--access-key`/`--secret-key`, when given.
pub(crate) fn acl_hook(args: &Args) -> Option<Arc<ClientRpcHook>> {
    let (ak, sk) = (args.access_key.as_ref()?, args.secret_key.as_ref()?);
    let hook: Arc<ClientRpcHook> = Arc::new(AclClientRPCHook::new(SessionCredentials::with_keys(
        ak.as_str(),
        sk.as_str(),
    )));
    Some(hook)
}

pub(crate) async fn start_producer(
    args: &Args,
    client_runtime: &Arc<ClientRuntime>,
    group: String,
    deadline: Instant,
) -> Result<DefaultMQProducer, String> {
    let mut builder = DefaultMQProducer::builder(Arc::clone(client_runtime));
    // First: it replaces the whole configuration.
    if let Some(config) = tls_config(args) {
        builder = builder.client_config(config);
    }
    builder = builder
        .producer_group(group)
        .name_server_addr(args.namesrv.clone())
        .send_msg_timeout(SEND_TIMEOUT_MS as u32);
    if let Some(hook) = acl_hook(args) {
        builder = builder.rpc_hook(hook);
    }
    let mut producer = builder.build();
    bounded(deadline, producer.start())
        .await
        .map_err(|error| format!("producer start failed: {error}"))?;
    Ok(producer)
}

/// Waits until the name server has a route for the topic; how long that took.
///
/// A topic auto-created by a send reaches the name server only with the
/// broker's next registration, and a push consumer started before that finds
/// no route, so it has nothing to pull until its next route poll (30 s) and
/// rebalance (20 s). With many messages sent first (produce-consume) the
/// registration usually wins the race; with a handful it does not.
pub(crate) async fn await_route(
    producer: &mut DefaultMQProducer,
    topic: &str,
    deadline: Instant,
) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let last_error =
            match tokio::time::timeout(remaining, producer.fetch_publish_message_queues(topic))
                .await
            {
                Ok(Ok(queues)) if !queues.is_empty() => return Ok(start.elapsed()),
                Ok(Ok(_)) => "no queues".to_string(),
                Ok(Err(error)) => describe(&error),
                Err(_) => "timed out".to_string(),
            };
        if Instant::now() >= deadline {
            return Err(format!(
                "the name server has no route for {topic} {:.1}s after it was created by a send: {last_error}",
                start.elapsed().as_secs_f64()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn producer_group(args: &Args) -> String {
    format!("{}_producer", args.group)
}

/// Sends one message synchronously; the client-generated message id (property
/// UNIQ_KEY) on success.
pub(crate) async fn send(producer: &DefaultMQProducer, message: Message) -> Result<String, String> {
    match producer.send_with_timeout(message, SEND_TIMEOUT_MS).await {
        Ok(Some(result)) if result.send_status == SendStatus::SendOk => result
            .msg_id
            .map(|id| id.to_string())
            .ok_or_else(|| "send result has no msgId".to_string()),
        Ok(Some(result)) => Err(format!("send status {:?}", result.send_status)),
        Ok(None) => Err("send returned no result".to_string()),
        Err(error) => Err(describe(&error)),
    }
}

/// A `DefaultMQPushConsumer` for a new group that must see what is already
/// stored: CLUSTERING, from the first offset, listener concurrency from the
/// arguments.
pub(crate) fn push_consumer(
    args: &Args,
    client_runtime: &Arc<ClientRuntime>,
) -> DefaultMQPushConsumer {
    let mut builder = DefaultMQPushConsumer::builder(Arc::clone(client_runtime));
    // First: it replaces the whole configuration.
    if let Some(config) = tls_config(args) {
        builder = builder.client_config(config);
    }
    let mut builder = builder
        .rpc_hook(acl_hook(args))
        .consumer_group(args.group.clone())
        .name_server_addr(args.namesrv.clone())
        .message_model(MessageModel::Clustering)
        // The group is new and the messages are already stored: from the last
        // offset it would wait for messages that never come. (A Java broker
        // would also start a new group at 0 while the queue's first message is
        // still in memory; this does not rely on that.)
        .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
        // Give in-flight listener calls a moment to finish at shutdown instead
        // of aborting them at once (the default, 0 ms, logs warnings).
        .await_termination_millis_when_shutdown(1_000);
    if !args.default_runtime {
        // Listener concurrency; never above the runtime's metadata-io lane
        // capacity (see runtime_config), so no listener call is rejected.
        builder = builder
            .consume_thread_min(args.consume_threads)
            .consume_thread_max(args.consume_threads);
    }
    builder.build()
}

/// Subscribes (`*`, or the given selector), registers a listener that hands
/// every message to `record` and reports success, and starts the consumer.
pub(crate) async fn start_consumer(
    consumer: &mut DefaultMQPushConsumer,
    topic: &str,
    selector: Option<MessageSelector>,
    deadline: Instant,
    record: impl Fn(&MessageExt) + Send + Sync + 'static,
) -> Result<(), String> {
    let started = async {
        match selector {
            Some(selector) => {
                consumer
                    .subscribe_with_selector(topic, Some(selector))
                    .await?
            }
            None => consumer.subscribe(topic, "*").await?,
        }
        consumer.register_message_listener_concurrently(
            move |msgs: &[&MessageExt],
                  _context: &ConsumeConcurrentlyContext|
                  -> ClientResult<ConsumeConcurrentlyStatus> {
                for msg in msgs {
                    record(msg);
                }
                Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
            },
        );
        consumer.start().await
    };
    bounded(deadline, started)
        .await
        .map_err(|error| format!("push consumer start failed: {error}"))
}

/// One delivery to a listener, copied out of the client's `MessageExt`.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) topic: String,
    pub(crate) tags: Option<String>,
    pub(crate) body: Vec<u8>,
    pub(crate) uniq_key: Option<String>,
    pub(crate) properties: HashMap<String, String>,
    pub(crate) reconsume_times: i32,
    pub(crate) queue_id: i32,
    pub(crate) queue_offset: i64,
    /// Wall-clock time the listener saw it.
    pub(crate) arrived_ms: u64,
}

impl Received {
    fn from_message(msg: &MessageExt) -> Self {
        let inner = msg.message_inner();
        Received {
            topic: msg.topic().to_string(),
            tags: inner.tags().map(str::to_string),
            body: inner.body_slice().to_vec(),
            uniq_key: inner.property("UNIQ_KEY").map(str::to_string),
            properties: msg
                .properties()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            reconsume_times: msg.reconsume_times(),
            queue_id: msg.queue_id(),
            queue_offset: msg.queue_offset(),
            arrived_ms: now_ms(),
        }
    }

    pub(crate) fn place(&self) -> String {
        format!(
            "queue {} offset {} reconsumeTimes {}",
            self.queue_id, self.queue_offset, self.reconsume_times
        )
    }
}

/// A push consumer on `args.group` (new, from the first offset) that
/// records every delivery by key; shut down already if it fails to start.
pub(crate) async fn start_keyed_consumer(
    args: &Args,
    client_runtime: &Arc<ClientRuntime>,
    deadline: Instant,
) -> Result<(DefaultMQPushConsumer, Arc<Mutex<KeyedInbox>>), String> {
    let inbox = KeyedInbox::shared();
    let mut consumer = push_consumer(args, client_runtime);
    if let Err(error) = start_consumer(
        &mut consumer,
        &args.topic,
        None,
        deadline,
        KeyedInbox::recorder(&inbox),
    )
    .await
    {
        shutdown_bounded("consumer", consumer.shutdown()).await;
        return Err(error);
    }
    Ok((consumer, inbox))
}

/// Deliveries by message key (the first of KEYS; "" when a message has none).
/// Shared between the listener (which the client runs on its blocking pool)
/// and the task that polls it.
#[derive(Default)]
pub(crate) struct KeyedInbox {
    pub(crate) by_key: BTreeMap<String, Vec<Received>>,
    pub(crate) deliveries: usize,
}

impl KeyedInbox {
    pub(crate) fn shared() -> Arc<Mutex<KeyedInbox>> {
        Arc::new(Mutex::new(KeyedInbox::default()))
    }

    /// The listener side: a closure for [`start_consumer`].
    pub(crate) fn recorder(
        inbox: &Arc<Mutex<KeyedInbox>>,
    ) -> impl Fn(&MessageExt) + Send + Sync + 'static {
        let inbox = Arc::clone(inbox);
        move |msg: &MessageExt| {
            let key = msg
                .message_inner()
                .keys()
                .and_then(|keys| keys.into_iter().next())
                .unwrap_or_default();
            let received = Received::from_message(msg);
            let mut inbox = lock(&inbox);
            inbox.deliveries += 1;
            inbox.by_key.entry(key).or_default().push(received);
        }
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.by_key.contains_key(key)
    }

    /// Keys that are not from this run.
    pub(crate) fn foreign(&self, run_id: &str) -> usize {
        self.by_key
            .keys()
            .filter(|key| !key.starts_with(run_id))
            .count()
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// What was sent under one key, to compare deliveries against.
pub(crate) struct Expected<'a> {
    pub(crate) key: &'a str,
    pub(crate) body: &'a [u8],
    pub(crate) msg_id: &'a str,
    pub(crate) properties: &'a [(&'a str, String)],
}

/// Problems with the deliveries of one message that had to arrive: more than
/// one delivery or a delivery after a failed attempt (unless
/// `--allow-redelivery`), or a delivery that differs from what was sent.
pub(crate) fn delivery_problems(
    args: &Args,
    sent: &Expected,
    deliveries: &[Received],
) -> Vec<String> {
    let mut problems = Vec::new();
    let places = || {
        deliveries
            .iter()
            .map(Received::place)
            .collect::<Vec<_>>()
            .join("; ")
    };
    if !args.allow_redelivery {
        if deliveries.len() > 1 {
            problems.push(format!(
                "{} delivered {} times: {}",
                sent.key,
                deliveries.len(),
                places()
            ));
        }
        if deliveries.iter().any(|d| d.reconsume_times > 0) {
            problems.push(format!(
                "{} redelivered after a failed attempt: {}",
                sent.key,
                places()
            ));
        }
    }
    for got in deliveries {
        let mut diffs = Vec::new();
        if got.topic != args.topic {
            diffs.push(format!("topic {:?} != {:?}", got.topic, args.topic));
        }
        if got.tags.as_deref() != Some(args.tag.as_str()) {
            diffs.push(format!("tags {:?} != {:?}", got.tags, args.tag));
        }
        if got.body != sent.body {
            diffs.push(format!(
                "body {:?} != {:?}",
                String::from_utf8_lossy(&got.body),
                String::from_utf8_lossy(sent.body)
            ));
        }
        if got.uniq_key.as_deref() != Some(sent.msg_id) {
            diffs.push(format!(
                "UNIQ_KEY {:?} != msgId {:?}",
                got.uniq_key, sent.msg_id
            ));
        }
        for (name, value) in sent.properties {
            if got.properties.get(*name) != Some(value) {
                diffs.push(format!(
                    "property {name} {:?} != {value:?}",
                    got.properties.get(*name)
                ));
            }
        }
        if !diffs.is_empty() {
            problems.push(format!(
                "{} arrived altered ({}): {}",
                sent.key,
                got.place(),
                diffs.join(", ")
            ));
        }
    }
    problems
}
