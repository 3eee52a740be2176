//! A SYNC_MASTER acknowledges only what its slave has; after the master is
//! killed, a consumer reads every acknowledged message from the slave.
//!
//! 1. A `DefaultMQProducer` sends `--count` messages; each must be SEND_OK.
//! 2. The program creates `<--handoff>/ready` and waits for
//!    `<--handoff>/killed`: meanwhile the runner (`tests/rust_client.rs`)
//!    kills the master with SIGKILL and waits until the name server lists
//!    only the slave.
//! 3. A `DefaultMQPushConsumer` on a new group, started now (so its first
//!    route has the slave only), must get every acknowledged message.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use rocketmq_client_rust::ClientRuntime;
use rocketmq_model::common::message::message_single::Message;

use crate::lock;
use crate::new_run_id;
use crate::producer_group;
use crate::send;
use crate::shutdown_bounded;
use crate::start_keyed_consumer;
use crate::start_producer;
use crate::wait_then_settle;
use crate::Args;
use crate::Report;
use crate::Scenario;

pub(crate) async fn run(args: &Args, client_runtime: Arc<ClientRuntime>) -> Report {
    let deadline = Instant::now() + args.timeout;
    let Some(handoff) = args.handoff.as_deref().map(Path::new) else {
        return Report::fail(Scenario::Failover, "--handoff is required".into());
    };
    let run_id = new_run_id();
    let mut producer =
        match start_producer(args, &client_runtime, producer_group(args), deadline).await {
            Ok(producer) => producer,
            Err(error) => return Report::fail(Scenario::Failover, error),
        };
    let mut problems = Vec::new();
    let mut acked = Vec::new();
    for seq in 0..args.count {
        let key = format!("{run_id}-{seq}");
        let message = Message::builder()
            .topic(args.topic.as_str())
            .tags(args.tag.as_str())
            .key(key.as_str())
            .body(format!("replicated {seq}").into_bytes())
            .build_unchecked();
        match send(&producer, message).await {
            Ok(_) => acked.push(key),
            Err(error) => problems.push(format!("send {key}: {error}")),
        }
    }
    shutdown_bounded("producer", producer.shutdown()).await;
    if !problems.is_empty() {
        return Report::new(
            format!("failover: {} sends failed", problems.len()),
            &problems,
        );
    }
    if let Err(e) = std::fs::write(handoff.join("ready"), b"") {
        return Report::fail(
            Scenario::Failover,
            format!("writing the hand-off file: {e}"),
        );
    }
    while !handoff.join("killed").exists() {
        if Instant::now() >= deadline {
            return Report::fail(Scenario::Failover, "the master was never killed".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (mut consumer, inbox) = match start_keyed_consumer(args, &client_runtime, deadline).await {
        Ok(c) => c,
        Err(error) => return Report::fail(Scenario::Failover, error),
    };
    let started = Instant::now();
    let all = wait_then_settle(deadline, Duration::from_millis(500), || {
        let inbox = lock(&inbox);
        acked.iter().all(|k| inbox.has(k))
    })
    .await;
    shutdown_bounded("consumer", consumer.shutdown()).await;
    let inbox = lock(&inbox);
    let missing: Vec<&String> = acked.iter().filter(|k| !inbox.has(k)).collect();
    if !all {
        problems.push(format!(
            "{} of {} acknowledged messages never came from the slave, e.g. {:?}",
            missing.len(),
            acked.len(),
            &missing[..missing.len().min(5)]
        ));
    }
    Report::new(
        format!(
            "failover: {} acknowledged by the SYNC_MASTER, {} read from the slave in {:.1}s",
            acked.len(),
            acked.len() - missing.len(),
            started.elapsed().as_secs_f64()
        ),
        &problems,
    )
}
