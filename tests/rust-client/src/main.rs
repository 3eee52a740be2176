//! Produce-then-consume check of a RocketMQ name server + broker with the
//! crates.io Rust client (`rocketmq-client-rust`).
//!
//! 1. A `DefaultMQProducer` sends `--count` messages to `--topic`, each with a
//!    distinct body and key and the tag `--tag`.
//! 2. A `DefaultMQPushConsumer` (CLUSTERING, subscription `*`, new group
//!    `--group`) consumes until every sent message arrived or the deadline
//!    passes.
//! 3. Every delivery is checked against what was sent (body, topic, tag, key,
//!    message id). Exit code 0 only when all messages arrived intact (and, unless
//!    `--allow-redelivery`, each exactly once and at the first attempt); 1 on a
//!    failed check or client error; 2 on bad arguments; 3 when the watchdog had
//!    to kill the process.
//!
//! The summary goes to stdout; the client's own log lines go to stderr.

use std::collections::HashMap;
use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::net::TcpStream;
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;
use std::time::SystemTime;

use rocketmq_client_rust::ClientError;
use rocketmq_client_rust::ClientResult;
use rocketmq_client_rust::ClientRuntime;
use rocketmq_client_rust::ClientRuntimeConfig;
use rocketmq_client_rust::ConsumeConcurrentlyContext;
use rocketmq_client_rust::ConsumeConcurrentlyStatus;
use rocketmq_client_rust::DefaultMQProducer;
use rocketmq_client_rust::DefaultMQPushConsumer;
// Trait in scope for `register_message_listener_concurrently` (no inherent method).
use rocketmq_client_rust::MQPushConsumer;
use rocketmq_client_rust::SendStatus;
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_protocol::protocol::heartbeat::message_model::MessageModel;
use rocketmq_runtime::RuntimeConfig;
use rocketmq_runtime::RuntimeOwner;

const USAGE: &str = "\
usage: rocketcore-rust-client-check --namesrv HOST:PORT --topic TOPIC --group GROUP
                                    [--count N] [--timeout-secs S] [--tag TAG]
                                    [--consume-threads K] [--allow-redelivery]
                                    [--default-runtime] [--log FILTER]

  --namesrv HOST:PORT   name server address
  --topic TOPIC         topic to produce to and consume from (auto-created by the
                        broker from TBW102 if it does not exist)
  --group GROUP         consumer group (use a new one per run); the producer group
                        is GROUP_producer
  --count N             messages to send and expect back (default 200)
  --timeout-secs S      budget for the whole run, sending + consuming (default 120)
  --tag TAG             tag set on every message (default TagA)
  --consume-threads K   push consumer listener concurrency (default 8)
  --allow-redelivery    do not fail when a message is delivered more than once,
                        or only after a failed attempt (via the %RETRY% topic)
  --default-runtime     keep the client's default runtime sizing and listener
                        concurrency (20), to reproduce runtime.capacity.exhausted
                        rejections on small machines; ignores --consume-threads
  --log FILTER          client log filter for stderr (default warn)";

/// Timeout of one send (the client's default `sendMsgTimeout`); the client
/// retries a failed send twice within it.
const SEND_TIMEOUT_MS: u64 = 3_000;
/// How long to keep listening after the last expected message arrived, so that
/// duplicate deliveries (a broker handing out the same offset twice, say) are seen.
const SETTLE: Duration = Duration::from_secs(1);
/// Bound on each graceful shutdown step, so a broker that stops answering
/// cannot hang the program after the verdict is known.
const SHUTDOWN_STEP: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Args {
    namesrv: String,
    topic: String,
    group: String,
    count: usize,
    timeout: Duration,
    tag: String,
    consume_threads: u32,
    allow_redelivery: bool,
    default_runtime: bool,
    log: String,
}

impl Args {
    fn parse(mut argv: impl Iterator<Item = String>) -> Result<Self, String> {
        let (mut namesrv, mut topic, mut group) = (None, None, None);
        let mut args = Args {
            namesrv: String::new(),
            topic: String::new(),
            group: String::new(),
            count: 200,
            timeout: Duration::from_secs(120),
            tag: "TagA".to_string(),
            consume_threads: 8,
            allow_redelivery: false,
            default_runtime: false,
            log: "warn".to_string(),
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
                "--namesrv" => namesrv = Some(value.clone()),
                "--topic" => topic = Some(value.clone()),
                "--group" => group = Some(value.clone()),
                "--count" => args.count = number("--count")? as usize,
                "--timeout-secs" => args.timeout = Duration::from_secs(number("--timeout-secs")?),
                "--tag" => args.tag = value.clone(),
                "--consume-threads" => {
                    args.consume_threads = u32::try_from(number("--consume-threads")?)
                        .ok()
                        .filter(|k| (1..=64).contains(k))
                        .ok_or("--consume-threads must be between 1 and 64")?
                }
                "--log" => args.log = value.clone(),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        args.namesrv = namesrv.ok_or("--namesrv is required")?;
        args.topic = topic.ok_or("--topic is required")?;
        args.group = group.ok_or("--group is required")?;
        if args.count == 0 {
            return Err("--count must be at least 1".to_string());
        }
        if args.timeout.is_zero() {
            return Err("--timeout-secs must be at least 1".to_string());
        }
        Ok(args)
    }
}

/// One message as sent.
struct Sent {
    seq: usize,
    key: String,
    /// The client-generated unique id (property UNIQ_KEY) from the send result.
    msg_id: String,
}

/// One delivery to the listener, copied out of the client's `MessageExt`.
#[derive(Debug, Clone)]
struct Delivery {
    topic: String,
    tags: Option<String>,
    keys: Option<Vec<String>>,
    uniq_key: Option<String>,
    reconsume_times: i32,
    queue_id: i32,
    queue_offset: i64,
}

/// What the listener saw, keyed by body. Shared between the listener (which the
/// client runs on its blocking pool) and the main task that polls it.
#[derive(Default)]
struct Inbox {
    by_body: HashMap<Vec<u8>, Vec<Delivery>>,
    deliveries: usize,
}

#[derive(Default)]
struct Outcome {
    sent: Vec<(Vec<u8>, Sent)>,
    send_errors: Vec<String>,
    received_distinct: usize,
    problems: Vec<String>,
    duplicates: usize,
    /// Deliveries with reconsumeTimes > 0: the client failed a first attempt
    /// and sent the message back through %RETRY%<group>.
    retried: usize,
    queues: std::collections::BTreeSet<i32>,
    foreign: usize,
    deliveries: usize,
    fatal: Option<String>,
    produce_time: Duration,
    consume_time: Duration,
}

impl Outcome {
    fn passed(&self) -> bool {
        self.fatal.is_none()
            && self.send_errors.is_empty()
            && self.problems.is_empty()
            && self.received_distinct == self.sent.len()
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

    let outcome = owner.block_on(run(&args, Arc::clone(&client_runtime)));

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

    print_summary(&args, &outcome);
    if outcome.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Runtime sizing. With the defaults on a 2-core machine the client's
/// metadata-io blocking lane admits 4 running + 16 queued closures
/// (`RuntimeConfig::for_parallelism`: 2 x cores and 8 x cores), but the push
/// consumer runs every listener call on that lane with up to
/// `consume_thread_min` (default 20) calls in flight. Under load the lane
/// rejects calls with `runtime.capacity.exhausted` (or times them out after the
/// lane's 5 s queue timeout); the client counts a rejected call as a failed
/// consumption and sends the message back to the %RETRY% topic. So: make the
/// lane wider and deeper than the consumer can ever fill (see
/// `--consume-threads`, capped at 64), and give the blocking pool the threads
/// to back it.
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

async fn run(args: &Args, client_runtime: Arc<ClientRuntime>) -> Outcome {
    let start = Instant::now();
    let deadline = start + args.timeout;
    let mut outcome = Outcome::default();

    // A run id in every body and key: leftovers of an earlier run on the same
    // topic are recognisable (and counted as "foreign", not as failures).
    let run_id = format!(
        "{:x}-{}",
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis()),
        std::process::id()
    );

    // ---- produce -------------------------------------------------------------
    let mut producer = DefaultMQProducer::builder(Arc::clone(&client_runtime))
        .producer_group(format!("{}_producer", args.group))
        .name_server_addr(args.namesrv.clone())
        .send_msg_timeout(SEND_TIMEOUT_MS as u32)
        .build();
    if let Err(error) = bounded(deadline, producer.start()).await {
        outcome.fatal = Some(format!("producer start failed: {error}"));
        return outcome;
    }
    let produce_start = Instant::now();
    for seq in 0..args.count {
        if Instant::now() >= deadline {
            outcome
                .send_errors
                .push(format!("deadline passed after sending {seq} messages"));
            break;
        }
        let body = body_for(&run_id, seq);
        let key = format!("{run_id}-{seq}");
        let message = Message::builder()
            .topic(args.topic.as_str())
            .tags(args.tag.as_str())
            .key(key.as_str())
            .body(body.clone())
            .build_unchecked();
        let result = producer.send_with_timeout(message, SEND_TIMEOUT_MS).await;
        let failure = match result {
            Ok(Some(result)) if result.send_status == SendStatus::SendOk => match result.msg_id {
                Some(msg_id) => {
                    outcome.sent.push((
                        body,
                        Sent {
                            seq,
                            key,
                            msg_id: msg_id.to_string(),
                        },
                    ));
                    None
                }
                None => Some("send result has no msgId".to_string()),
            },
            Ok(Some(result)) => Some(format!("send status {:?}", result.send_status)),
            Ok(None) => Some("send returned no result".to_string()),
            Err(error) => Some(describe(&error)),
        };
        if let Some(failure) = failure {
            outcome.send_errors.push(format!("send #{seq}: {failure}"));
            // Each failure can cost a full send timeout with retries, and the
            // first ones already tell what is wrong.
            if outcome.send_errors.len() >= 3 {
                outcome.send_errors.push(format!(
                    "stopped sending after {} failures",
                    outcome.send_errors.len()
                ));
                break;
            }
        }
    }
    outcome.produce_time = produce_start.elapsed();
    shutdown_bounded("producer", producer.shutdown()).await;
    if outcome.sent.is_empty() {
        return outcome;
    }

    // ---- consume -------------------------------------------------------------
    let inbox = Arc::new(Mutex::new(Inbox::default()));
    let listener_inbox = Arc::clone(&inbox);
    let mut builder = DefaultMQPushConsumer::builder(Arc::clone(&client_runtime))
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
    let mut consumer = builder.build();
    let consume_start = Instant::now();
    let started = async {
        consumer.subscribe(args.topic.as_str(), "*").await?;
        consumer.register_message_listener_concurrently(
            move |msgs: &[&MessageExt],
                  _context: &ConsumeConcurrentlyContext|
                  -> ClientResult<ConsumeConcurrentlyStatus> {
                let mut inbox = listener_inbox.lock().unwrap_or_else(|e| e.into_inner());
                for msg in msgs {
                    let inner = msg.message_inner();
                    let delivery = Delivery {
                        topic: msg.topic().to_string(),
                        tags: inner.tags().map(str::to_string),
                        keys: inner.keys(),
                        uniq_key: inner.property("UNIQ_KEY").map(str::to_string),
                        reconsume_times: msg.reconsume_times(),
                        queue_id: msg.queue_id(),
                        queue_offset: msg.queue_offset(),
                    };
                    inbox.deliveries += 1;
                    inbox
                        .by_body
                        .entry(inner.body_slice().to_vec())
                        .or_default()
                        .push(delivery);
                }
                Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
            },
        );
        consumer.start().await
    };
    if let Err(error) = bounded(deadline, started).await {
        outcome.fatal = Some(format!("push consumer start failed: {error}"));
        shutdown_bounded("consumer", consumer.shutdown()).await;
        return outcome;
    }

    let expected: HashSet<&[u8]> = outcome
        .sent
        .iter()
        .map(|(body, _)| body.as_slice())
        .collect();
    let count_arrived = || {
        let inbox = inbox.lock().unwrap_or_else(|e| e.into_inner());
        expected
            .iter()
            .filter(|body| inbox.by_body.contains_key(**body))
            .count()
    };
    loop {
        let arrived = count_arrived();
        if arrived == expected.len() {
            tokio::time::sleep(SETTLE).await;
            break;
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    outcome.consume_time = consume_start.elapsed();
    shutdown_bounded("consumer", consumer.shutdown()).await;

    // ---- verify --------------------------------------------------------------
    let inbox = inbox.lock().unwrap_or_else(|e| e.into_inner());
    outcome.deliveries = inbox.deliveries;
    let mut missing = Vec::new();
    for (body, sent) in &outcome.sent {
        let Some(deliveries) = inbox.by_body.get(body) else {
            missing.push(sent.seq);
            continue;
        };
        outcome.received_distinct += 1;
        let places: Vec<String> = deliveries
            .iter()
            .map(|d| {
                format!(
                    "queue {} offset {} reconsumeTimes {}",
                    d.queue_id, d.queue_offset, d.reconsume_times
                )
            })
            .collect();
        if deliveries.len() > 1 {
            outcome.duplicates += deliveries.len() - 1;
            if !args.allow_redelivery {
                outcome.problems.push(format!(
                    "#{} delivered {} times: {}",
                    sent.seq,
                    deliveries.len(),
                    places.join("; ")
                ));
            }
        }
        let retried = deliveries.iter().filter(|d| d.reconsume_times > 0).count();
        if retried > 0 {
            outcome.retried += retried;
            if !args.allow_redelivery {
                outcome.problems.push(format!(
                    "#{} redelivered after a failed attempt: {}",
                    sent.seq,
                    places.join("; ")
                ));
            }
        }
        for delivery in deliveries {
            outcome.queues.insert(delivery.queue_id);
            let mismatch = Mismatch::check(args, sent, delivery);
            if !mismatch.0.is_empty() {
                outcome.problems.push(format!(
                    "#{} arrived altered: {mismatch} in {delivery:?}",
                    sent.seq
                ));
            }
        }
    }
    outcome.foreign = inbox
        .by_body
        .keys()
        .filter(|body| !expected.contains(body.as_slice()))
        .count();
    if !missing.is_empty() {
        outcome.problems.push(format!(
            "{} of {} messages never arrived (seq {})",
            missing.len(),
            outcome.sent.len(),
            abbreviate(&missing)
        ));
    }
    outcome
}

/// Distinct and recognisable bodies, with a few non-UTF-8 bytes at the end so
/// that a server mangling binary bodies (e.g. through a string) gets caught.
fn body_for(run_id: &str, seq: usize) -> Vec<u8> {
    let mut body = format!("rocketcore rust-client check run={run_id} seq={seq:06} ").into_bytes();
    body.extend_from_slice(&[0x00, 0xff, 0xfe, (seq % 251) as u8]);
    body
}

struct Mismatch(Vec<String>);

impl Mismatch {
    fn check(args: &Args, sent: &Sent, got: &Delivery) -> Self {
        let mut diffs = Vec::new();
        if got.topic != args.topic {
            diffs.push(format!("topic {:?} != {:?}", got.topic, args.topic));
        }
        if got.tags.as_deref() != Some(args.tag.as_str()) {
            diffs.push(format!("tags {:?} != {:?}", got.tags, args.tag));
        }
        if got.keys.as_deref() != Some(std::slice::from_ref(&sent.key)) {
            diffs.push(format!("keys {:?} != [{:?}]", got.keys, sent.key));
        }
        if got.uniq_key.as_deref() != Some(sent.msg_id.as_str()) {
            diffs.push(format!(
                "UNIQ_KEY {:?} != msgId {:?}",
                got.uniq_key, sent.msg_id
            ));
        }
        Self(diffs)
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(", "))
    }
}

fn abbreviate(seqs: &[usize]) -> String {
    let shown: Vec<String> = seqs.iter().take(20).map(usize::to_string).collect();
    if seqs.len() > shown.len() {
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
fn describe(error: &ClientError) -> String {
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
async fn bounded<T>(
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

async fn shutdown_bounded(what: &str, future: impl std::future::Future<Output = ()>) {
    if tokio::time::timeout(SHUTDOWN_STEP, future).await.is_err() {
        eprintln!(
            "warning: {what} shutdown did not finish within {}s",
            SHUTDOWN_STEP.as_secs()
        );
    }
}

fn print_summary(args: &Args, outcome: &Outcome) {
    println!("rust-client check against name server {}", args.namesrv);
    println!(
        "  topic={} group={} tag={} count={}",
        args.topic, args.group, args.tag, args.count
    );
    println!(
        "  sent ok:            {} / {} in {:.2}s",
        outcome.sent.len(),
        args.count,
        outcome.produce_time.as_secs_f64()
    );
    println!(
        "  received distinct:  {} / {} in {:.2}s ({} deliveries, {} duplicates, {} retried, {} from other runs)",
        outcome.received_distinct,
        outcome.sent.len(),
        outcome.consume_time.as_secs_f64(),
        outcome.deliveries,
        outcome.duplicates,
        outcome.retried,
        outcome.foreign
    );
    println!("  queues seen:        {:?}", outcome.queues);
    if let Some(fatal) = &outcome.fatal {
        println!("  error: {fatal}");
    }
    for error in &outcome.send_errors {
        println!("  send error: {error}");
    }
    for problem in outcome.problems.iter().take(20) {
        println!("  problem: {problem}");
    }
    if outcome.problems.len() > 20 {
        println!("  ... and {} more problems", outcome.problems.len() - 20);
    }
    println!("RESULT: {}", if outcome.passed() { "PASS" } else { "FAIL" });
}
