//! A new push consumer gets its messages in seconds (issue 14).
//!
//! A probe message creates the topic. Then `--count` rounds (default 5),
//! one after another, each with a push consumer on a new group (from the
//! first offset) that is not waited for:
//!
//! 1. [`SEND_AFTER`] after its `start()` was called, a plain message is sent;
//!    it must arrive within [`PLAIN_WITHIN_MS`] of its send;
//! 2. right after, a message with delay level 2 (5 s); it must arrive no
//!    earlier than [`LEVEL_2_MS`] and within [`DELAYED_WITHIN_MS`] of its
//!    send.
//!
//! A broker that answers GET_CONSUMER_LIST_BY_GROUP (38) before it knows the
//! group's heartbeat leaves the consumer without queues until its next
//! rebalance, 20 s later; a held pull that is not woken by the re-stored
//! delayed message holds until its suspend time ends. Either fails a round.

use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use rocketmq_client_rust::ClientRuntime;
use rocketmq_model::common::message::message_single::Message;

use crate::await_route;
use crate::lock;
use crate::new_run_id;
use crate::now_ms;
use crate::producer_group;
use crate::send;
use crate::shutdown_bounded;
use crate::start_keyed_consumer;
use crate::start_producer;
use crate::wait_then_settle;
use crate::Args;
use crate::Report;
use crate::Scenario;

/// From the consumer's `start()` call to the plain send.
const SEND_AFTER: Duration = Duration::from_secs(1);
const PLAIN_WITHIN_MS: u64 = 3_000;
/// Delay level 2 of the default `messageDelayLevel`.
const LEVEL_2_MS: u64 = 5_000;
const DELAYED_WITHIN_MS: u64 = 7_000;
/// Arrival is stamped by the listener; a send's time is taken just before
/// the call, so a message can look this much early without being so.
const CLOCK_SLACK_MS: u64 = 50;

pub(crate) async fn run(args: &Args, client_runtime: Arc<ClientRuntime>) -> Report {
    let deadline = Instant::now() + args.timeout;
    let run_id = new_run_id();
    let mut problems = Vec::new();
    let mut rounds = Vec::new();

    let mut producer =
        match start_producer(args, &client_runtime, producer_group(args), deadline).await {
            Ok(producer) => producer,
            Err(error) => return Report::fail(Scenario::NewConsumer, error),
        };
    let message = |key: &str, body: &[u8]| {
        Message::builder()
            .topic(args.topic.as_str())
            .tags(args.tag.as_str())
            .key(key)
            .body(body.to_vec())
    };
    let probe_key = format!("{run_id}-probe");
    if let Err(error) = send(&producer, message(&probe_key, b"probe").build_unchecked()).await {
        shutdown_bounded("producer", producer.shutdown()).await;
        return Report::fail(Scenario::NewConsumer, format!("send {probe_key}: {error}"));
    }
    if let Err(error) = await_route(&mut producer, &args.topic, deadline).await {
        shutdown_bounded("producer", producer.shutdown()).await;
        return Report::fail(Scenario::NewConsumer, error);
    }

    for round in 0..args.count {
        let mut round_args = args.clone();
        round_args.group = format!("{}_r{round}", args.group);
        let start_called = Instant::now();
        let (mut consumer, inbox) =
            match start_keyed_consumer(&round_args, &client_runtime, deadline).await {
                Ok(c) => c,
                Err(error) => {
                    problems.push(format!("round {round}: {error}"));
                    break;
                }
            };
        tokio::time::sleep(SEND_AFTER.saturating_sub(start_called.elapsed())).await;

        let plain_key = format!("{run_id}-plain-{round}");
        let delayed_key = format!("{run_id}-delayed-{round}");
        let plain_sent = now_ms();
        let mut sent = Vec::new();
        match send(&producer, message(&plain_key, b"at once").build_unchecked()).await {
            Ok(_) => sent.push((plain_key.clone(), plain_sent, PLAIN_WITHIN_MS)),
            Err(error) => problems.push(format!("round {round}: send {plain_key}: {error}")),
        }
        let delayed_sent = now_ms();
        let delayed = message(&delayed_key, b"later")
            .delay_level(2)
            .build_unchecked();
        match send(&producer, delayed).await {
            Ok(_) => sent.push((delayed_key.clone(), delayed_sent, DELAYED_WITHIN_MS)),
            Err(error) => problems.push(format!("round {round}: send {delayed_key}: {error}")),
        }
        // Waits past the limit, so that a late arrival is measured, not
        // only reported missing.
        let wait_until = Instant::now() + Duration::from_millis(DELAYED_WITHIN_MS + 3_000);
        wait_then_settle(wait_until.min(deadline), Duration::ZERO, || {
            let inbox = lock(&inbox);
            sent.iter().all(|(key, _, _)| inbox.has(key))
        })
        .await;
        shutdown_bounded("consumer", consumer.shutdown()).await;

        let inbox = lock(&inbox);
        let mut waited = Vec::new();
        for (key, at, within) in &sent {
            let Some(first) = inbox.by_key.get(key).and_then(|d| d.first()) else {
                problems.push(format!("round {round}: {key} never arrived"));
                waited.push("-".to_string());
                continue;
            };
            let ms = first.arrived_ms.saturating_sub(*at);
            waited.push(format!("{ms} ms"));
            if ms > *within {
                problems.push(format!(
                    "round {round}: {key} arrived {ms} ms after its send (at most {within})"
                ));
            }
            if key == &delayed_key && first.arrived_ms + CLOCK_SLACK_MS < at + LEVEL_2_MS {
                problems.push(format!(
                    "round {round}: {key} arrived {ms} ms after its send, before level 2's {LEVEL_2_MS} ms"
                ));
            }
        }
        rounds.push(format!("[{}]", waited.join(", ")));
    }
    shutdown_bounded("producer", producer.shutdown()).await;

    let summary = format!(
        "new-consumer: topic={} groups={}_r0..{} plain (at most {PLAIN_WITHIN_MS} ms) and delay \
         level 2 ({LEVEL_2_MS}..{DELAYED_WITHIN_MS} ms) after their send, per round: {}",
        args.topic,
        args.group,
        args.count.saturating_sub(1),
        rounds.join(" "),
    );
    Report::new(summary, &problems)
}
