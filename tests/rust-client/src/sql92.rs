//! Broker-side SQL92 filtering.
//!
//! A producer sends `--count` messages with the user properties `a` = i and
//! `b` = 'x' for even i, 'y' for odd i. A push consumer (CLUSTERING, new
//! group, from the first offset) subscribes with
//! `MessageSelector::by_sql("a >= 10 AND b = 'x'")` and must get exactly the
//! matching messages (a = 10, 12, ...), each once and intact, and none of the
//! others within [`SETTLE`] after the last match arrived. The client does not
//! filter SQL92 subscriptions itself (it only re-filters tags), so whatever the
//! broker hands out reaches the listener.

use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use rocketmq_client_rust::ClientRuntime;
use rocketmq_client_rust::MessageSelector;
use rocketmq_model::common::message::message_single::Message;

use crate::abbreviate;
use crate::await_route;
use crate::body_for;
use crate::delivery_problems;
use crate::lock;
use crate::new_run_id;
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

const SELECTOR: &str = "a >= 10 AND b = 'x'";
/// Listening time after the last match arrived, for non-matching messages
/// the broker might hand out later (from another queue, say).
const SETTLE: Duration = Duration::from_secs(3);

fn matches(a: usize) -> bool {
    a >= 10 && a.is_multiple_of(2)
}

struct Sent {
    a: usize,
    key: String,
    body: Vec<u8>,
    msg_id: String,
    properties: [(&'static str, String); 2],
}

pub(crate) async fn run(args: &Args, client_runtime: Arc<ClientRuntime>) -> Report {
    let deadline = Instant::now() + args.timeout;
    let run_id = new_run_id();
    let mut problems = Vec::new();

    // ---- produce -------------------------------------------------------------
    let mut producer =
        match start_producer(args, &client_runtime, producer_group(args), deadline).await {
            Ok(producer) => producer,
            Err(error) => return Report::fail(Scenario::Sql92, error),
        };
    let mut sent = Vec::new();
    for a in 0..args.count {
        let key = format!("{run_id}-{a}");
        let body = body_for(&run_id, a);
        let properties = [
            ("a", a.to_string()),
            ("b", if a.is_multiple_of(2) { "x" } else { "y" }.to_string()),
        ];
        let message = properties
            .iter()
            .try_fold(
                Message::builder()
                    .topic(args.topic.as_str())
                    .tags(args.tag.as_str())
                    .key(key.as_str())
                    .body(body.clone()),
                |builder, (name, value)| builder.raw_property(*name, value.as_str()),
            )
            .and_then(|builder| builder.build());
        let result = match message {
            Ok(message) => send(&producer, message).await,
            Err(error) => Err(format!("cannot build the message: {error}")),
        };
        match result {
            Ok(msg_id) => sent.push(Sent {
                a,
                key,
                body,
                msg_id,
                properties,
            }),
            Err(error) => {
                problems.push(format!("send {key}: {error}"));
                if problems.len() >= 3 {
                    problems.push("stopped sending after 3 failures".to_string());
                    break;
                }
            }
        }
    }
    let route = if sent.is_empty() {
        None
    } else {
        Some(await_route(&mut producer, &args.topic, deadline).await)
    };
    shutdown_bounded("producer", producer.shutdown()).await;
    let route_wait = match route {
        None => return Report::new("sql92: nothing was sent".to_string(), &problems),
        Some(Err(error)) => return Report::fail(Scenario::Sql92, error),
        Some(Ok(waited)) => waited,
    };

    // ---- consume -------------------------------------------------------------
    let inbox = KeyedInbox::shared();
    let mut consumer = push_consumer(args, &client_runtime);
    let consume_start = Instant::now();
    let started = start_consumer(
        &mut consumer,
        &args.topic,
        Some(MessageSelector::by_sql(SELECTOR)),
        deadline,
        KeyedInbox::recorder(&inbox),
    )
    .await;
    if let Err(error) = started {
        shutdown_bounded("consumer", consumer.shutdown()).await;
        problems.push(error);
        return Report::new(
            format!("sql92: the consumer with selector {SELECTOR:?} did not start"),
            &problems,
        );
    }
    let wanted: Vec<&str> = sent
        .iter()
        .filter(|s| matches(s.a))
        .map(|s| s.key.as_str())
        .collect();
    wait_then_settle(deadline, SETTLE, || {
        let inbox = lock(&inbox);
        wanted.iter().all(|key| inbox.has(key))
    })
    .await;
    let consume_time = consume_start.elapsed();
    shutdown_bounded("consumer", consumer.shutdown()).await;

    // ---- verify --------------------------------------------------------------
    let inbox = lock(&inbox);
    let (mut matched, mut wanted, mut missing, mut unwanted) =
        (Vec::new(), 0, Vec::new(), Vec::new());
    for message in &sent {
        let deliveries = inbox.by_key.get(&message.key);
        match (matches(message.a), deliveries) {
            (true, Some(deliveries)) => {
                wanted += 1;
                matched.push(message.a);
                let expected = Expected {
                    key: &message.key,
                    body: &message.body,
                    msg_id: &message.msg_id,
                    properties: &message.properties,
                };
                problems.extend(delivery_problems(args, &expected, deliveries));
            }
            (true, None) => {
                wanted += 1;
                missing.push(message.a);
            }
            (false, Some(_)) => unwanted.push(message.a),
            (false, None) => {}
        }
    }
    if !missing.is_empty() {
        problems.push(format!(
            "matching messages never arrived: a = {}",
            abbreviate(&missing)
        ));
    }
    if !unwanted.is_empty() {
        problems.push(format!(
            "messages not matching {SELECTOR:?} were delivered: a = {}",
            abbreviate(&unwanted)
        ));
    }

    let summary = format!(
        "sql92: topic={} group={} selector {SELECTOR:?}: sent {}/{}; matching received {}/{wanted} \
         (a = {}); non-matching received {} (must be 0); {} deliveries in {:.2}s (route after {} ms), {} keys from other runs",
        args.topic,
        args.group,
        sent.len(),
        args.count,
        matched.len(),
        abbreviate(&matched),
        unwanted.len(),
        inbox.deliveries,
        consume_time.as_secs_f64(),
        route_wait.as_millis(),
        inbox.foreign(&run_id),
    );
    Report::new(summary, &problems)
}
