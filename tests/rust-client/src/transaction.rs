//! Transactional messages through a `TransactionMQProducer`.
//!
//! For each of `--count` rounds the producer sends three half messages, each
//! with its own key and a `rcFate` property that its `TransactionListener`
//! acts on:
//!
//! - `commit`: the local transaction returns COMMIT_MESSAGE; the message must
//!   be consumed.
//! - `rollback`: it returns ROLLBACK_MESSAGE; the message must never be
//!   consumed.
//! - `unknown`: it returns UNKNOW, so the broker has to ask back
//!   (CHECK_TRANSACTION_STATE); the check listener answers COMMIT_MESSAGE and
//!   the message must then be consumed. The check listener must have been
//!   called at least once for each of these, and never for a commit or
//!   rollback message (that would mean the broker lost the END_TRANSACTION
//!   the producer sent right after the half message). The check's message
//!   must carry the real topic, the UNIQ_KEY and the user properties.
//!
//! A push consumer (CLUSTERING, `*`, new group, from the first offset) then
//! waits for every commit and unknown message and keeps listening for
//! [`SETTLE`] to see that no rolled-back one shows up. The producer stays up
//! until then: it is the one the broker's check-backs go to.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

use rocketmq_client_rust::ClientRuntime;
use rocketmq_client_rust::LocalTransactionState;
use rocketmq_client_rust::SendStatus;
use rocketmq_client_rust::TransactionListener;
use rocketmq_client_rust::TransactionMQProducer;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_model::common::message::MessageTrait;

use crate::abbreviate;
use crate::await_route;
use crate::body_for;
use crate::bounded;
use crate::delivery_problems;
use crate::describe;
use crate::lock;
use crate::new_run_id;
use crate::producer_group;
use crate::shutdown_bounded;
use crate::start_keyed_consumer;
use crate::start_producer;
use crate::wait_then_settle;
use crate::Args;
use crate::Expected;
use crate::Report;
use crate::Scenario;
use crate::SEND_TIMEOUT_MS;

/// User property telling the listener which outcome a message is for.
const FATE: &str = "rcFate";
/// Listening time after every message that must arrive did: a rolled-back
/// message wrongly committed by a check-back would come within a check
/// interval (the test runs the broker with one of 1-2 s).
const SETTLE: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Commit,
    Rollback,
    Unknown,
}

impl Fate {
    const ALL: [Fate; 3] = [Fate::Commit, Fate::Rollback, Fate::Unknown];

    fn name(self) -> &'static str {
        match self {
            Fate::Commit => "commit",
            Fate::Rollback => "rollback",
            Fate::Unknown => "unknown",
        }
    }

    fn parse(name: &str) -> Option<Fate> {
        Fate::ALL.into_iter().find(|fate| fate.name() == name)
    }

    /// What `execute_local_transaction` answers.
    fn local_state(self) -> LocalTransactionState {
        match self {
            Fate::Commit => LocalTransactionState::CommitMessage,
            Fate::Rollback => LocalTransactionState::RollbackMessage,
            Fate::Unknown => LocalTransactionState::Unknown,
        }
    }

    /// What `check_local_transaction` answers. Commit and rollback messages
    /// should never be asked about (their END_TRANSACTION went out at once;
    /// reported as a problem), but if they are, the answer keeps the outcome
    /// they should have had, so that only that problem is reported.
    fn checked_state(self) -> LocalTransactionState {
        match self {
            Fate::Commit | Fate::Unknown => LocalTransactionState::CommitMessage,
            Fate::Rollback => LocalTransactionState::RollbackMessage,
        }
    }

    fn must_arrive(self) -> bool {
        self != Fate::Rollback
    }
}

/// One check-back as the listener saw it.
#[derive(Debug, Clone)]
struct Check {
    topic: String,
    uniq_key: Option<String>,
    fate: Option<String>,
    at: Instant,
}

/// What the transaction listener saw; shared with the client's blocking pool.
#[derive(Default)]
struct TxLog {
    checks: BTreeMap<String, Vec<Check>>,
    /// Check-backs for messages of other runs (answered with rollback).
    foreign_checks: usize,
    problems: Vec<String>,
}

struct Listener {
    run_id: String,
    log: Arc<Mutex<TxLog>>,
}

impl TransactionListener for Listener {
    fn execute_local_transaction(
        &self,
        msg: &dyn MessageTrait,
        _arg: Option<&(dyn std::any::Any + Send + Sync)>,
    ) -> LocalTransactionState {
        match msg.get_properties().get(FATE).and_then(|f| Fate::parse(f)) {
            Some(fate) => fate.local_state(),
            None => {
                lock(&self.log).problems.push(format!(
                    "execute_local_transaction got a message without {FATE}: keys {:?}",
                    msg.get_keys()
                ));
                LocalTransactionState::RollbackMessage
            }
        }
    }

    fn check_local_transaction(&self, msg: &MessageExt) -> LocalTransactionState {
        let inner = msg.message_inner();
        let key = inner
            .keys()
            .and_then(|keys| keys.into_iter().next())
            .unwrap_or_default();
        let mut log = lock(&self.log);
        if !key.starts_with(&self.run_id) {
            log.foreign_checks += 1;
            return LocalTransactionState::RollbackMessage;
        }
        let fate = inner.property(FATE);
        log.checks.entry(key).or_default().push(Check {
            topic: msg.topic().to_string(),
            uniq_key: inner.property("UNIQ_KEY").map(str::to_string),
            fate: fate.map(str::to_string),
            at: Instant::now(),
        });
        match fate.and_then(Fate::parse) {
            Some(fate) => fate.checked_state(),
            // Reported after the run (the check's `fate` is None); UNKNOW
            // keeps the broker asking, which commits nothing.
            None => LocalTransactionState::Unknown,
        }
    }
}

struct Sent {
    fate: Fate,
    key: String,
    body: Vec<u8>,
    msg_id: String,
}

pub(crate) async fn run(args: &Args, client_runtime: Arc<ClientRuntime>) -> Report {
    let deadline = Instant::now() + args.timeout;
    let run_id = new_run_id();
    let log = Arc::new(Mutex::new(TxLog::default()));
    let mut problems = Vec::new();

    // ---- produce -------------------------------------------------------------
    let mut producer = TransactionMQProducer::builder(Arc::clone(&client_runtime))
        .producer_group(producer_group(args))
        .name_server_addr(args.namesrv.clone())
        .send_msg_timeout(SEND_TIMEOUT_MS as u32)
        .transaction_listener(Listener {
            run_id: run_id.clone(),
            log: Arc::clone(&log),
        })
        // Several unknown messages get checked in the same broker round; one
        // worker (the default) would answer them one by one.
        .check_thread_pool_min_size(4)
        .check_thread_pool_max_size(4)
        .build();
    if let Err(error) = bounded(deadline, producer.start()).await {
        return Report::fail(
            Scenario::Transaction,
            format!("transactional producer start failed: {error}"),
        );
    }
    let mut sent: Vec<Sent> = Vec::new();
    let mut send_errors = 0;
    // Interleaved, so that the broker sees commits, rollbacks and pending
    // halves side by side in its queues.
    'rounds: for round in 0..args.count {
        for (index, fate) in Fate::ALL.into_iter().enumerate() {
            if Instant::now() >= deadline {
                problems.push(format!(
                    "deadline passed after sending {} messages",
                    sent.len()
                ));
                break 'rounds;
            }
            let key = format!("{run_id}-{}-{round}", fate.name());
            let body = body_for(&run_id, index * args.count + round);
            match send_in_transaction(&producer, args, fate, &key, &body).await {
                Ok(msg_id) => sent.push(Sent {
                    fate,
                    key,
                    body,
                    msg_id,
                }),
                Err(error) => {
                    problems.push(format!("send {key}: {error}"));
                    send_errors += 1;
                    // Each failure can cost a full send timeout, and the
                    // first ones already tell what is wrong.
                    if send_errors >= 3 {
                        problems.push("stopped sending after 3 failures".to_string());
                        break 'rounds;
                    }
                }
            }
        }
    }
    let sent_at = Instant::now();
    if sent.is_empty() {
        shutdown_bounded("producer", producer.shutdown()).await;
        return Report::new("transaction: nothing was sent".to_string(), &problems);
    }
    // The transactional producer has no public route query; a plain one in a
    // group of its own (check-backs go by producer group) does it.
    let route = match start_producer(
        args,
        &client_runtime,
        format!("{}_route", args.group),
        deadline,
    )
    .await
    {
        Ok(mut router) => {
            let route = await_route(&mut router, &args.topic, deadline).await;
            shutdown_bounded("route producer", router.shutdown()).await;
            route
        }
        Err(error) => Err(error),
    };
    let route_wait = match route {
        Ok(waited) => waited,
        Err(error) => {
            shutdown_bounded("producer", producer.shutdown()).await;
            problems.push(error);
            return Report::new(
                "transaction: no route to consume from".to_string(),
                &problems,
            );
        }
    };

    // ---- consume -------------------------------------------------------------
    let consume_start = Instant::now();
    let started = start_keyed_consumer(args, &client_runtime, deadline).await;
    let (mut consumer, inbox) = match started {
        Ok(c) => c,
        Err(error) => {
            shutdown_bounded("producer", producer.shutdown()).await;
            problems.push(error);
            return Report::new(
                "transaction: the consumer did not start".to_string(),
                &problems,
            );
        }
    };
    let must_arrive: Vec<&str> = sent
        .iter()
        .filter(|s| s.fate.must_arrive())
        .map(|s| s.key.as_str())
        .collect();
    wait_then_settle(deadline, SETTLE, || {
        let inbox = lock(&inbox);
        must_arrive.iter().all(|key| inbox.has(key))
    })
    .await;
    let consume_time = consume_start.elapsed();
    shutdown_bounded("consumer", consumer.shutdown()).await;
    shutdown_bounded("producer", producer.shutdown()).await;

    // ---- verify --------------------------------------------------------------
    let inbox = lock(&inbox);
    let log = lock(&log);
    problems.extend(log.problems.iter().cloned());
    let mut consumed = [0usize; 3];
    let mut sent_by_fate = [0usize; 3];
    let mut missing = Vec::new();
    let mut committed_after = Duration::ZERO;
    for message in &sent {
        let index = message.fate as usize;
        sent_by_fate[index] += 1;
        let deliveries = inbox.by_key.get(&message.key);
        if deliveries.is_some() {
            consumed[index] += 1;
        }
        let checks = log.checks.get(&message.key).map_or(&[][..], Vec::as_slice);
        for check in checks {
            let mut diffs = Vec::new();
            if check.topic != args.topic {
                diffs.push(format!("topic {:?} != {:?}", check.topic, args.topic));
            }
            if check.uniq_key.as_deref() != Some(message.msg_id.as_str()) {
                diffs.push(format!(
                    "UNIQ_KEY {:?} != msgId {:?}",
                    check.uniq_key, message.msg_id
                ));
            }
            if check.fate.as_deref() != Some(message.fate.name()) {
                diffs.push(format!(
                    "{FATE} {:?} != {:?}",
                    check.fate,
                    message.fate.name()
                ));
            }
            if !diffs.is_empty() {
                problems.push(format!(
                    "check-back for {} carried a different message: {}",
                    message.key,
                    diffs.join(", ")
                ));
            }
        }
        match (message.fate, deliveries) {
            (Fate::Rollback, Some(deliveries)) => problems.push(format!(
                "rolled-back {} was delivered: {}",
                message.key,
                deliveries
                    .iter()
                    .map(|d| d.place())
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
            (Fate::Rollback, None) => {}
            (_, None) => missing.push(message.key.as_str()),
            (fate, Some(deliveries)) => {
                let expected = Expected {
                    key: &message.key,
                    body: &message.body,
                    msg_id: &message.msg_id,
                    properties: &[(FATE, fate.name().to_string())],
                };
                problems.extend(delivery_problems(args, &expected, deliveries));
            }
        }
        if message.fate != Fate::Unknown && !checks.is_empty() {
            // Its END_TRANSACTION went out right after the half message, a
            // transactionTimeOut before any check could be due: the broker
            // lost or ignored it. (The check's answer repeats the local
            // state, so the outcome alone would not show this.)
            problems.push(format!(
                "{} was checked back {} times although its local transaction said {}",
                message.key,
                checks.len(),
                message.fate.local_state()
            ));
        }
        if message.fate == Fate::Unknown {
            match checks.first() {
                None => problems.push(format!(
                    "{} (local transaction UNKNOW) was never checked back{}",
                    message.key,
                    if deliveries.is_some() {
                        ", yet it was delivered"
                    } else {
                        ""
                    }
                )),
                Some(first) => {
                    committed_after =
                        committed_after.max(first.at.saturating_duration_since(sent_at))
                }
            }
        }
    }
    if !missing.is_empty() {
        problems.push(format!(
            "{} committed messages never arrived: {}",
            missing.len(),
            abbreviate(&missing)
        ));
    }

    let checks_of = |fate: Fate| -> Vec<usize> {
        sent.iter()
            .filter(|s| s.fate == fate)
            .map(|s| log.checks.get(&s.key).map_or(0, Vec::len))
            .collect()
    };
    let unknown_checks = checks_of(Fate::Unknown);
    let summary = format!(
        "transaction: topic={} group={} sent {}/{} (commit {}, rollback {}, unknown {}); \
         consumed commit {}/{}, unknown {}/{}, rollback {} (must be 0) in {:.2}s (route after {} ms); \
         check-backs per unknown message {:?} (first one at most {:.1}s after the last send), \
         for commit {} and rollback {} messages (must be 0), {} for other runs; \
         {} deliveries, {} keys from other runs",
        args.topic,
        args.group,
        sent.len(),
        3 * args.count,
        sent_by_fate[0],
        sent_by_fate[1],
        sent_by_fate[2],
        consumed[0],
        sent_by_fate[0],
        consumed[2],
        sent_by_fate[2],
        consumed[1],
        consume_time.as_secs_f64(),
        route_wait.as_millis(),
        unknown_checks,
        committed_after.as_secs_f64(),
        checks_of(Fate::Commit).iter().sum::<usize>(),
        checks_of(Fate::Rollback).iter().sum::<usize>(),
        log.foreign_checks,
        inbox.deliveries,
        inbox.foreign(&run_id),
    );
    Report::new(summary, &problems)
}

/// Sends one half message and runs its local transaction; the message id
/// (UNIQ_KEY) once the producer reported the expected local state.
async fn send_in_transaction(
    producer: &TransactionMQProducer,
    args: &Args,
    fate: Fate,
    key: &str,
    body: &[u8],
) -> Result<String, String> {
    let message: Message = Message::builder()
        .topic(args.topic.as_str())
        .tags(args.tag.as_str())
        .key(key)
        .body(body.to_vec())
        .raw_property(FATE, fate.name())
        .and_then(|builder| builder.build())
        .map_err(|error| format!("cannot build the message: {error}"))?;
    // The client bounds the half-message send by the send timeout and the
    // oneway END_TRANSACTION by another; the local transaction is instant.
    let limit = Duration::from_millis(2 * SEND_TIMEOUT_MS + 1_000);
    let result = tokio::time::timeout(
        limit,
        producer.send_message_in_transaction::<(), _>(message, None),
    )
    .await
    .map_err(|_| format!("no result within {}s", limit.as_secs()))?
    .map_err(|error| describe(&error))?;
    let send = result
        .send_result
        .ok_or("transaction send result without a send result")?;
    if send.send_status != SendStatus::SendOk {
        return Err(format!("send status {:?}", send.send_status));
    }
    if result.local_transaction_state != Some(fate.local_state()) {
        return Err(format!(
            "local transaction state {:?}, expected {:?} (the listener did not run?)",
            result.local_transaction_state,
            fate.local_state()
        ));
    }
    send.msg_id
        .map(|id| id.to_string())
        .ok_or_else(|| "send result has no msgId".to_string())
}
