//! The default scenario: produce, then consume everything back.
//!
//! 1. A `DefaultMQProducer` sends `--count` messages to `--topic`, each with a
//!    distinct body and key and the tag `--tag`.
//! 2. A `DefaultMQPushConsumer` (CLUSTERING, subscription `*`, new group
//!    `--group`) consumes until every sent message arrived or the deadline
//!    passes.
//! 3. Every delivery is checked against what was sent (body, topic, tag, key,
//!    message id). Passes only when all messages arrived intact (and, unless
//!    `--allow-redelivery`, each exactly once and at the first attempt).

use std::collections::BTreeSet;
use std::collections::HashMap;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

use rocketmq_client_rust::ClientRuntime;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message;

use crate::abbreviate;
use crate::body_for;
use crate::lock;
use crate::new_run_id;
use crate::producer_group;
use crate::push_consumer;
use crate::send;
use crate::shutdown_bounded;
use crate::start_consumer;
use crate::start_producer;
use crate::Args;
use crate::Report;

/// How long to keep listening after the last expected message arrived, so that
/// duplicate deliveries (a broker handing out the same offset twice, say) are seen.
const SETTLE: Duration = Duration::from_secs(1);

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
    queues: BTreeSet<i32>,
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

pub(crate) async fn run(args: &Args, client_runtime: Arc<ClientRuntime>) -> Report {
    let outcome = check(args, client_runtime).await;
    summary(args, &outcome)
}

async fn check(args: &Args, client_runtime: Arc<ClientRuntime>) -> Outcome {
    let start = Instant::now();
    let deadline = start + args.timeout;
    let mut outcome = Outcome::default();
    let run_id = new_run_id();

    // ---- produce -------------------------------------------------------------
    let mut producer =
        match start_producer(args, &client_runtime, producer_group(args), deadline).await {
            Ok(producer) => producer,
            Err(error) => {
                outcome.fatal = Some(error);
                return outcome;
            }
        };
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
        match send(&producer, message).await {
            Ok(msg_id) => outcome.sent.push((body, Sent { seq, key, msg_id })),
            Err(failure) => {
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
    }
    outcome.produce_time = produce_start.elapsed();
    shutdown_bounded("producer", producer.shutdown()).await;
    if outcome.sent.is_empty() {
        return outcome;
    }

    // ---- consume -------------------------------------------------------------
    let inbox = Arc::new(Mutex::new(Inbox::default()));
    let listener_inbox = Arc::clone(&inbox);
    let mut consumer = push_consumer(args, &client_runtime);
    let consume_start = Instant::now();
    let record = move |msg: &MessageExt| {
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
        let mut inbox = lock(&listener_inbox);
        inbox.deliveries += 1;
        inbox
            .by_body
            .entry(inner.body_slice().to_vec())
            .or_default()
            .push(delivery);
    };
    if let Err(error) = start_consumer(&mut consumer, &args.topic, None, deadline, record).await {
        outcome.fatal = Some(error);
        shutdown_bounded("consumer", consumer.shutdown()).await;
        return outcome;
    }

    let expected: HashSet<&[u8]> = outcome
        .sent
        .iter()
        .map(|(body, _)| body.as_slice())
        .collect();
    let count_arrived = || {
        let inbox = lock(&inbox);
        expected
            .iter()
            .filter(|body| inbox.by_body.contains_key(**body))
            .count()
    };
    crate::wait_then_settle(deadline, SETTLE, || count_arrived() == expected.len()).await;
    outcome.consume_time = consume_start.elapsed();
    shutdown_bounded("consumer", consumer.shutdown()).await;

    // ---- verify --------------------------------------------------------------
    let inbox = lock(&inbox);
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

fn summary(args: &Args, outcome: &Outcome) -> Report {
    let mut lines = vec![
        format!("rust-client check against name server {}", args.namesrv),
        format!(
            "  topic={} group={} tag={} count={}",
            args.topic, args.group, args.tag, args.count
        ),
        format!(
            "  sent ok:            {} / {} in {:.2}s",
            outcome.sent.len(),
            args.count,
            outcome.produce_time.as_secs_f64()
        ),
        format!(
            "  received distinct:  {} / {} in {:.2}s ({} deliveries, {} duplicates, {} retried, {} from other runs)",
            outcome.received_distinct,
            outcome.sent.len(),
            outcome.consume_time.as_secs_f64(),
            outcome.deliveries,
            outcome.duplicates,
            outcome.retried,
            outcome.foreign
        ),
        format!("  queues seen:        {:?}", outcome.queues),
    ];
    if let Some(fatal) = &outcome.fatal {
        lines.push(format!("  error: {fatal}"));
    }
    for error in &outcome.send_errors {
        lines.push(format!("  send error: {error}"));
    }
    for problem in outcome.problems.iter().take(20) {
        lines.push(format!("  problem: {problem}"));
    }
    if outcome.problems.len() > 20 {
        lines.push(format!(
            "  ... and {} more problems",
            outcome.problems.len() - 20
        ));
    }
    Report {
        lines,
        passed: outcome.passed(),
    }
}
