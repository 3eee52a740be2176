//! rocketcore's admin answers, read by the admin API of the rocketmq-rust
//! project (`DefaultMQAdminExt`, feature `admin-read`: the code its
//! `rocketmq-admin-cli` is built on), so they are checked by a decoder we
//! did not write: cluster info (106), runtime info (28), topic list (206)
//! and route (105), topic stats (202), consume stats (208, object-keyed),
//! the groups of a topic (300), consumer connections (203) and the name
//! server's config (319).
//!
//! `--count` messages are sent and consumed by a push consumer; then every
//! figure must agree with what was done.

use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use rocketmq_client_rust::ClientRuntime;
use rocketmq_client_rust::DefaultMQAdminExt;
use rocketmq_client_rust::MQAdminInfrastructureObservationReadExt;
use rocketmq_client_rust::MQAdminReadExt;
use rocketmq_client_rust::MQAdminTopicStatsReadExt;
use rocketmq_model::common::message::message_single::Message;

use crate::await_route;
use crate::describe;
use crate::lock;
use crate::new_run_id;
use crate::producer_group;
use crate::send;
use crate::shutdown_bounded;
use crate::start_keyed_consumer;
use crate::start_producer;
use crate::Args;
use crate::Report;
use crate::Scenario;

pub(crate) async fn run(args: &Args, client_runtime: Arc<ClientRuntime>) -> Report {
    let deadline = Instant::now() + args.timeout;
    let run_id = new_run_id();
    let mut producer =
        match start_producer(args, &client_runtime, producer_group(args), deadline).await {
            Ok(p) => p,
            Err(error) => return Report::fail(Scenario::AdminRead, error),
        };
    let mut problems = Vec::new();
    for i in 0..args.count {
        let message = Message::builder()
            .topic(args.topic.as_str())
            .tags(args.tag.as_str())
            .keys(vec![format!("{run_id}-{i}")])
            .body(format!("admin-read {i}").into_bytes())
            .build_unchecked();
        if let Err(e) = send(&producer, message).await {
            return Report::fail(Scenario::AdminRead, format!("send {i}: {e}"));
        }
    }
    if let Err(e) = await_route(&mut producer, &args.topic, deadline).await {
        return Report::fail(Scenario::AdminRead, e);
    }
    let (mut consumer, inbox) = match start_keyed_consumer(args, &client_runtime, deadline).await {
        Ok(c) => c,
        Err(e) => return Report::fail(Scenario::AdminRead, e),
    };
    while lock(&inbox).by_key.len() < args.count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if lock(&inbox).by_key.len() < args.count {
        problems.push(format!(
            "consumed {} of {} messages",
            lock(&inbox).by_key.len(),
            args.count
        ));
    }

    let mut admin = DefaultMQAdminExt::new(Arc::clone(&client_runtime));
    admin.set_namesrv_addr(args.namesrv.as_str());
    if let Err(e) = admin.start().await {
        return Report::fail(
            Scenario::AdminRead,
            format!("admin start: {}", describe(&e)),
        );
    }
    let summary = match read_all(args, &admin, deadline, &mut problems).await {
        Ok(s) => s,
        Err(e) => {
            problems.push(e);
            String::new()
        }
    };
    admin.shutdown().await;
    shutdown_bounded("consumer", consumer.shutdown()).await;
    shutdown_bounded("producer", producer.shutdown()).await;
    Report::new(format!("admin-read: {summary}"), &problems)
}

async fn read_all(
    args: &Args,
    admin: &DefaultMQAdminExt,
    deadline: Instant,
    problems: &mut Vec<String>,
) -> Result<String, String> {
    let e =
        |what: &str, err: rocketmq_client_rust::ClientError| format!("{what}: {}", describe(&err));
    let cluster = admin
        .examine_broker_cluster_info()
        .await
        .map_err(|x| e("cluster info (106)", x))?;
    let brokers = cluster.broker_addr_table.unwrap_or_default();
    let broker_addr = brokers
        .values()
        .find_map(|b| b.broker_addrs().get(&0).cloned())
        .ok_or("cluster info names no master")?;

    let runtime = admin
        .fetch_broker_runtime_stats(broker_addr.clone())
        .await
        .map_err(|x| e("runtime info (28)", x))?;
    let put: u64 = runtime
        .table
        .get("msgPutTotalTodayNow")
        .and_then(|v| v.as_str().parse().ok())
        .unwrap_or(0);
    if put < args.count as u64 {
        problems.push(format!(
            "runtime info counts {put} messages put, sent {}",
            args.count
        ));
    }
    let disk = runtime
        .table
        .get("commitLogDiskRatio")
        .map(|v| v.as_str().parse::<f64>());
    if !matches!(disk, Some(Ok(r)) if (0.0..=1.0).contains(&r)) {
        problems.push(format!("commitLogDiskRatio is not a ratio: {disk:?}"));
    }

    let topics = admin
        .fetch_all_topic_list()
        .await
        .map_err(|x| e("topic list (206)", x))?;
    if !topics.topic_list.iter().any(|t| t.as_str() == args.topic) {
        problems.push(format!("topic list lacks {}", args.topic));
    }
    let route = admin
        .examine_topic_route_info(args.topic.as_str().into())
        .await
        .map_err(|x| e("route (105)", x))?
        .ok_or("no route")?;
    let queues = route
        .queue_datas
        .first()
        .map_or(0, |q| q.read_queue_nums as usize);

    let stats = admin
        .topic_stats_at(broker_addr.clone(), args.topic.as_str().into())
        .await
        .map_err(|x| e("topic stats (202)", x))?;
    let table = stats.get_offset_table();
    let stored: i64 = table
        .values()
        .map(|o| o.get_max_offset() - o.get_min_offset())
        .sum();
    if table.len() != queues || stored != args.count as i64 {
        problems.push(format!(
            "topic stats: {} queues holding {stored}, expected {queues} holding {}",
            table.len(),
            args.count
        ));
    }
    if table
        .values()
        .any(|o| (o.get_max_offset() > 0) != (o.get_last_update_timestamp() > 0))
    {
        problems.push("topic stats: last-update times do not match the queues".into());
    }

    // The client commits every 5 s: wait for the lag to reach zero.
    let group: cheetah_string::CheetahString = args.group.as_str().into();
    let mut lag = i64::MAX;
    let mut entries = 0;
    while Instant::now() < deadline {
        let consume = admin
            .examine_consume_stats(
                group.clone(),
                Some(args.topic.as_str().into()),
                None,
                None,
                None,
            )
            .await
            .map_err(|x| e("consume stats (208)", x))?;
        entries = consume.offset_table.len();
        lag = consume
            .offset_table
            .values()
            .map(|o| o.get_broker_offset() - o.get_consumer_offset())
            .sum();
        if lag == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if lag != 0 || entries != queues {
        problems.push(format!(
            "consume stats: lag {lag} over {entries} queues, expected 0 over {queues}"
        ));
    }

    let by_who = admin
        .query_topic_consume_by_who(args.topic.as_str().into())
        .await
        .map_err(|x| e("groups of the topic (300)", x))?;
    if !by_who.group_list.iter().any(|g| g.as_str() == args.group) {
        problems.push(format!(
            "groups of the topic lack {}: {:?}",
            args.group, by_who.group_list
        ));
    }

    // Not read here: rocketmq-rust 1.0's ProducerInfo (328) expects
    // snake_case keys (`client_id`), where Java's broker writes camelCase
    // (`clientId`, `remoteIP`) and rocketcore does as Java does.

    let conns = admin
        .examine_consumer_connection_info(group, None)
        .await
        .map_err(|x| e("consumer connections (203)", x))?;
    let languages: Vec<String> = conns
        .get_connection_set()
        .iter()
        .map(|c| format!("{:?}", c.get_language()))
        .collect();
    if languages.is_empty() {
        problems.push("consumer connections: none".into());
    }

    let ns_config = admin
        .nameserver_config_at(args.namesrv.as_str().into())
        .await
        .map_err(|x| format!("name server config (319): {x:?}"))?;
    if !ns_config.keys().any(|k| k.as_str() == "listenPort") {
        problems.push(format!(
            "name server config lacks listenPort: {ns_config:?}"
        ));
    }
    Ok(format!(
        "{} brokers, {put} put, {stored} stored in {queues} queues, lag {lag}, consumers {languages:?}, {} name server keys",
        brokers.len(),
        ns_config.len()
    ))
}
