//! The broker's ACL refuses a send (issue 12): with the credentials given
//! (a wrong secret, or an account without PUB on the topic), one send must
//! fail with the broker's refusal, SYSTEM_ERROR (1) as RocketMQ's ACL 1.0
//! answers, and never succeed. The client retries a refused send (code 1 is
//! in its retry list), so every attempt must be refused.

use std::sync::Arc;
use std::time::Instant;

use rocketmq_client_rust::ClientRuntime;
use rocketmq_client_rust::SendStatus;
use rocketmq_model::common::message::message_single::Message;

use crate::describe;
use crate::producer_group;
use crate::shutdown_bounded;
use crate::start_producer;
use crate::Args;
use crate::Report;
use crate::Scenario;
use crate::SEND_TIMEOUT_MS;

/// What RocketMQ's ACL 1.0 answers a refused request.
const REFUSED: i32 = 1;

pub(crate) async fn run(args: &Args, client_runtime: Arc<ClientRuntime>) -> Report {
    let deadline = Instant::now() + args.timeout;
    let mut producer =
        match start_producer(args, &client_runtime, producer_group(args), deadline).await {
            Ok(producer) => producer,
            Err(error) => return Report::fail(Scenario::AclRefused, error),
        };
    let message = Message::builder()
        .topic(args.topic.as_str())
        .tags(args.tag.as_str())
        .body(b"must be refused".to_vec())
        .build_unchecked();
    let mut problems = Vec::new();
    let outcome = match producer.send_with_timeout(message, SEND_TIMEOUT_MS).await {
        Ok(Some(result)) if result.send_status == SendStatus::SendOk => {
            problems.push(format!("the send was accepted: {result:?}"));
            "accepted".to_string()
        }
        Ok(other) => {
            problems.push(format!("expected a refusal, got {other:?}"));
            "no refusal".to_string()
        }
        Err(error) if error.broker_response_code() == Some(REFUSED) => {
            format!("refused as expected: {}", describe(&error))
        }
        Err(error) => {
            problems.push(format!(
                "expected broker code {REFUSED}, got {:?}: {}",
                error.broker_response_code(),
                describe(&error)
            ));
            "other error".to_string()
        }
    };
    shutdown_bounded("producer", producer.shutdown()).await;
    Report::new(format!("acl-refused: {outcome}"), &problems)
}
