//! Timer (scheduled) messages, the 5.x kind with an absolute delivery time.
//!
//! 1. A probe message without a timer creates the topic, and a push consumer
//!    (CLUSTERING, `*`, new group, from the first offset) is started and waits
//!    for it, so that the consumer is live before anything is timed.
//! 2. `--count` messages are sent, each with a delivery time `--timer-delay-ms`
//!    after its own send (`MessageBuilder::deliver_time_ms`, property
//!    TIMER_DELIVER_MS), then one control message without a timer.
//! 3. The control message must arrive within [`CONTROL_MAX_MS`] of its send
//!    (a broker that parks timer messages in the topic's queue and blocks the
//!    queue behind them fails here), and each timer message no earlier than
//!    [`EARLY_MS`] before its due time and no later than [`LATE_MS`] after it.
//!
//! The broker and this program share the host clock; arrival is when the
//! listener sees the message.

use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use rocketmq_client_rust::ClientRuntime;
use rocketmq_model::common::message::message_single::Message;

use crate::abbreviate;
use crate::await_route;
use crate::body_for;
use crate::delivery_problems;
use crate::lock;
use crate::new_run_id;
use crate::now_ms;
use crate::producer_group;
use crate::push_consumer;
use crate::send;
use crate::shutdown_bounded;
use crate::start_consumer;
use crate::start_producer;
use crate::wait_then_settle;
use crate::Args;
use crate::Expected;
use crate::KeyedInbox;
use crate::Report;
use crate::Scenario;

/// How much earlier than its due time a timer message may arrive: clock
/// granularity, not a timer wheel rounding down to its slot.
const EARLY_MS: i64 = 100;
/// How much later than its due time a timer message may arrive.
const LATE_MS: i64 = 1_500;
/// How long after its send the control message may arrive: it does not wait
/// for anything but the consumer's long poll.
const CONTROL_MAX_MS: i64 = 1_000;
/// Listening time after everything arrived, for duplicates (a timer message
/// delivered twice, say by a retried timer slot).
const SETTLE: Duration = Duration::from_secs(2);

struct Sent {
    key: String,
    body: Vec<u8>,
    msg_id: String,
    /// When it was sent (control) or is due (timer), wall-clock ms.
    at_ms: u64,
}

pub(crate) async fn run(args: &Args, client_runtime: Arc<ClientRuntime>) -> Report {
    let deadline = Instant::now() + args.timeout;
    let run_id = new_run_id();
    let mut problems = Vec::new();

    let mut producer =
        match start_producer(args, &client_runtime, producer_group(args), deadline).await {
            Ok(producer) => producer,
            Err(error) => return Report::fail(Scenario::Timer, error),
        };
    let message = |key: &str, body: &[u8]| {
        Message::builder()
            .topic(args.topic.as_str())
            .tags(args.tag.as_str())
            .key(key)
            .body(body.to_vec())
    };

    // ---- probe: topic and consumer up -------------------------------------------
    let probe_key = format!("{run_id}-probe");
    let probe_sent_ms = now_ms();
    if let Err(error) = send(&producer, message(&probe_key, b"probe").build_unchecked()).await {
        shutdown_bounded("producer", producer.shutdown()).await;
        return Report::fail(Scenario::Timer, format!("send {probe_key}: {error}"));
    }
    let route_wait = match await_route(&mut producer, &args.topic, deadline).await {
        Ok(waited) => waited,
        Err(error) => {
            shutdown_bounded("producer", producer.shutdown()).await;
            return Report::fail(Scenario::Timer, error);
        }
    };
    let inbox = KeyedInbox::shared();
    let mut consumer = push_consumer(args, &client_runtime);
    let started = start_consumer(
        &mut consumer,
        &args.topic,
        None,
        deadline,
        KeyedInbox::recorder(&inbox),
    )
    .await;
    let probe_arrived = started.is_ok()
        && wait_then_settle(deadline, Duration::ZERO, || lock(&inbox).has(&probe_key)).await;
    if !probe_arrived {
        shutdown_bounded("consumer", consumer.shutdown()).await;
        shutdown_bounded("producer", producer.shutdown()).await;
        let error = started
            .err()
            .unwrap_or_else(|| format!("the probe message {probe_key} (no timer) never arrived"));
        return Report::fail(Scenario::Timer, error);
    }
    let probe_ms = lock(&inbox).by_key[&probe_key][0]
        .arrived_ms
        .saturating_sub(probe_sent_ms);

    // ---- timers, then the control message --------------------------------------
    let delay_ms = args.timer_delay.as_millis() as u64;
    let mut timers = Vec::new();
    for seq in 0..args.count {
        let key = format!("{run_id}-timer-{seq}");
        let body = body_for(&run_id, seq);
        let due_ms = now_ms() + delay_ms;
        let timed = message(&key, &body)
            .deliver_time_ms(due_ms)
            .build_unchecked();
        match send(&producer, timed).await {
            Ok(msg_id) => timers.push(Sent {
                key,
                body,
                msg_id,
                at_ms: due_ms,
            }),
            Err(error) => problems.push(format!("send {key}: {error}")),
        }
    }
    let control_key = format!("{run_id}-control");
    let control_body = body_for(&run_id, args.count);
    let control_sent_ms = now_ms();
    let control = match send(
        &producer,
        message(&control_key, &control_body).build_unchecked(),
    )
    .await
    {
        Ok(msg_id) => Some(Sent {
            key: control_key,
            body: control_body,
            msg_id,
            at_ms: control_sent_ms,
        }),
        Err(error) => {
            problems.push(format!("send {control_key}: {error}"));
            None
        }
    };
    shutdown_bounded("producer", producer.shutdown()).await;

    // ---- consume -------------------------------------------------------------
    let expected: Vec<&str> = timers
        .iter()
        .chain(control.iter())
        .map(|s| s.key.as_str())
        .collect();
    wait_then_settle(deadline, SETTLE, || {
        let inbox = lock(&inbox);
        expected.iter().all(|key| inbox.has(key))
    })
    .await;
    shutdown_bounded("consumer", consumer.shutdown()).await;

    // ---- verify --------------------------------------------------------------
    let inbox = lock(&inbox);
    let control_latency = control.as_ref().and_then(|sent| {
        let deliveries = inbox.by_key.get(&sent.key)?;
        Some(deliveries[0].arrived_ms as i64 - sent.at_ms as i64)
    });
    if let Some(sent) = &control {
        match control_latency {
            None => problems.push(format!("control message {} never arrived", sent.key)),
            Some(latency) if latency > CONTROL_MAX_MS => problems.push(format!(
                "control message {} arrived {latency} ms after its send (at most {CONTROL_MAX_MS})",
                sent.key
            )),
            Some(_) => {}
        }
    }
    let mut lateness = Vec::new();
    let mut missing = Vec::new();
    for sent in timers.iter().chain(control.iter()) {
        let Some(deliveries) = inbox.by_key.get(&sent.key) else {
            missing.push(sent.key.as_str());
            continue;
        };
        let expected = Expected {
            key: &sent.key,
            body: &sent.body,
            msg_id: &sent.msg_id,
            properties: &[],
        };
        problems.extend(delivery_problems(args, &expected, deliveries));
    }
    for sent in &timers {
        let Some(deliveries) = inbox.by_key.get(&sent.key) else {
            lateness.push("-".to_string());
            continue;
        };
        let late = deliveries[0].arrived_ms as i64 - sent.at_ms as i64;
        lateness.push(format!("{late:+}"));
        if late < -EARLY_MS {
            problems.push(format!(
                "{} arrived {} ms before its delivery time (at most {EARLY_MS} early)",
                sent.key, -late
            ));
        } else if late > LATE_MS {
            problems.push(format!(
                "{} arrived {late} ms after its delivery time (at most {LATE_MS} late)",
                sent.key
            ));
        }
    }
    let timers_arrived = timers.iter().filter(|sent| inbox.has(&sent.key)).count();
    if !missing.is_empty() {
        problems.push(format!(
            "{} messages never arrived: {}",
            missing.len(),
            abbreviate(&missing)
        ));
    }

    let summary = format!(
        "timer: topic={} group={} {}/{} timer messages sent with delivery time +{delay_ms} ms, \
         {} arrived, lateness ms [{}] (allowed -{EARLY_MS}..+{LATE_MS}); control message after {} \
         (at most {CONTROL_MAX_MS} ms); probe after {probe_ms} ms (route after {} ms); \
         {} deliveries, {} keys from other runs",
        args.topic,
        args.group,
        timers.len(),
        args.count,
        timers_arrived,
        lateness.join(", "),
        control_latency.map_or("-".to_string(), |ms| format!("{ms} ms")),
        route_wait.as_millis(),
        inbox.deliveries,
        inbox.foreign(&run_id),
    );
    Report::new(summary, &problems)
}
