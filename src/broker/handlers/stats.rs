//! Admin requests that span shards or clients: topic stats (202), consume
//! stats (208, and 317 for every group), reset offset (222) and the groups
//! of a topic (300) scatter a pinned copy to every shard, which answers for
//! the queues it owns in a plain JSON list; the shard the client reached
//! merges the lists into Java's object-keyed bodies. Also one topic's
//! config (351), the configuration update (25), and consumer running info
//! (307), relayed to the client.
//!
//! A reset commits the new offset marked as a reset (`ConsumerOffsets`):
//! the group's next pull of that queue is answered PULL_OFFSET_MOVED to
//! it, which every client obeys, and until then the group's own commits of
//! that queue do not overwrite it.

use std::rc::Rc;
use std::sync::Arc;

use crate::broker::config::{parse_properties, UPDATES_FILE};
use crate::broker::mesh::{ReqCtx, ShardMsg};
use crate::broker::shard::{response, AskFailed, Shard};
use crate::protocol::message_queue::MessageQueue;
use crate::protocol::object_keyed::{
    encode_consume_stats, encode_reset_offset_body, encode_topic_stats, OffsetWrapper, TopicOffset,
};
use crate::remoting::codes::response_code as rs;
use crate::remoting::RemotingCommand;

/// Internal header on a scatter copy: which part of the work this shard does.
const PHASE: &str = "rocketcorePhase";

/// One queue's figures as a shard reports them to the merging shard.
type Row = (String, i32, [i64; 4]);

impl Shard {
    /// Sends a pinned copy of `cmd` (with `phase`) to every shard, this
    /// one included, and returns each body that came back.
    async fn scatter(
        self: &Rc<Self>,
        ctx: ReqCtx,
        cmd: &RemotingCommand,
        phase: &str,
    ) -> Result<Vec<Vec<u8>>, String> {
        let mut out = Vec::with_capacity(self.shards);
        for s in 0..self.shards {
            let mut part = cmd.clone();
            part.set_ext(PHASE, phase);
            let reply = if s == self.id {
                Box::pin(self.serve_pinned_part(part)).await
            } else {
                self.forward(s, ctx, part, true).await
            };
            match reply {
                Some(r) if r.code == rs::SUCCESS => {
                    out.push(r.body.map(|b| b.to_vec()).unwrap_or_default())
                }
                Some(r) => {
                    return Err(r
                        .remark
                        .unwrap_or_else(|| format!("shard {s} answered {}", r.code)))
                }
                None => return Err(format!("shard {s} did not answer")),
            }
        }
        Ok(out)
    }

    /// `scatter`, each shard's JSON answer decoded as `T`.
    async fn scatter_parsed<T: serde::de::DeserializeOwned>(
        self: &Rc<Self>,
        ctx: ReqCtx,
        cmd: &RemotingCommand,
        phase: &str,
    ) -> Result<Vec<T>, String> {
        self.scatter(ctx, cmd, phase)
            .await?
            .iter()
            .map(|p| {
                serde_json::from_slice(p).map_err(|e| format!("a shard's {phase} answer: {e}"))
            })
            .collect()
    }

    /// The work one shard does for a scattered request.
    pub async fn serve_pinned_part(
        self: &Rc<Self>,
        cmd: RemotingCommand,
    ) -> Option<RemotingCommand> {
        use crate::remoting::codes::request_code as rq;
        let body = match (cmd.code, cmd.ext_str_opt(PHASE).unwrap_or("")) {
            (rq::GET_TOPIC_STATS_INFO, _) => self.local_topic_stats(&cmd).await,
            (rq::GET_CONSUME_STATS, "topics") => self.local_group_topics(&cmd),
            (rq::GET_CONSUME_STATS, _) => self.local_consume_stats(&cmd).await,
            (rq::INVOKE_BROKER_TO_RESET_OFFSET, _) => self.local_reset_offset(&cmd).await,
            (rq::GET_BROKER_HA_STATUS, _) => {
                let gap = self.cfg().ha.max_gap_bytes;
                serde_json::to_vec(&self.repl.shard_status(&self.store, gap))
                    .map_err(|e| e.to_string())
            }
            (rq::GET_ALL_DELAY_OFFSET, _) => {
                serde_json::to_vec(&self.sched.saved_progress()).map_err(|e| e.to_string())
            }
            (rq::GET_ALL_CONSUMER_OFFSET, _) => {
                let mut entries = Vec::new();
                self.offsets.borrow().each(|group, topic, q, off| {
                    entries.push((group.to_string(), topic.to_string(), q, off))
                });
                serde_json::to_vec(&entries).map_err(|e| e.to_string())
            }
            (rq::QUERY_TOPIC_CONSUME_BY_WHO, _) => cmd
                .ext_str("topic")
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    serde_json::to_vec(&self.offsets.borrow().groups_of(t))
                        .map_err(|e| e.to_string())
                }),
            _ => return Some(RemotingCommand::not_supported_reply(&cmd)),
        };
        Some(match body {
            Ok(b) => response(&cmd, rs::SUCCESS, None).with_body(b),
            Err(e) => response(&cmd, rs::SYSTEM_ERROR, e),
        })
    }

    /// GET_ALL_CONSUMER_OFFSET (43): every shard's committed offsets, in
    /// Java's ConsumerOffsetSerializeWrapper (what a slave copies).
    pub async fn handle_all_consumer_offsets(
        self: &Rc<Self>,
        ctx: ReqCtx,
        cmd: &RemotingCommand,
    ) -> RemotingCommand {
        type Entries = Vec<crate::broker::ha::metadata::OffsetEntry>;
        let all: Vec<_> = match self.scatter_parsed::<Entries>(ctx, cmd, "offsets").await {
            Ok(parts) => parts.into_iter().flatten().collect(),
            Err(e) => return response(cmd, rs::SYSTEM_ERROR, e),
        };
        response(cmd, rs::SUCCESS, None)
            .with_body(crate::broker::ha::metadata::encode_offsets(&all))
    }

    /// GET_ALL_DELAY_OFFSET (45): every shard's delivery progress, in
    /// shard order under `rocketcoreShards` (a slave with the same shards
    /// copies each), and Java's `offsetTable` (level → next offset) summed
    /// over shards for tools that read it.
    pub async fn handle_all_delay_offsets(
        self: &Rc<Self>,
        ctx: ReqCtx,
        cmd: &RemotingCommand,
    ) -> RemotingCommand {
        let shards = match self
            .scatter_parsed::<serde_json::Value>(ctx, cmd, "delay")
            .await
        {
            Ok(parts) => parts,
            Err(e) => return response(cmd, rs::SYSTEM_ERROR, e),
        };
        let mut table: std::collections::BTreeMap<String, u64> = Default::default();
        for v in &shards {
            for (level, off) in v["levelOffsets"].as_object().into_iter().flatten() {
                *table.entry(level.clone()).or_default() += off.as_u64().unwrap_or(0);
            }
        }
        let body = serde_json::json!({ "offsetTable": table, "rocketcoreShards": shards });
        response(cmd, rs::SUCCESS, None).with_body(serde_json::to_vec(&body).unwrap_or_default())
    }

    /// Every shard's replication status (shard 0's own view of the broker,
    /// for the controller's heartbeats and in-sync set).
    pub async fn ha_parts(
        self: &Rc<Self>,
    ) -> Result<Vec<crate::broker::ha::ShardHaStatus>, String> {
        let ctx = ReqCtx {
            conn_id: 0,
            conn_shard: self.id,
            peer: self.cfg().advertised,
            hops: 0,
        };
        let cmd = RemotingCommand::new_request(
            crate::remoting::codes::request_code::GET_BROKER_HA_STATUS,
        );
        self.scatter_parsed(ctx, &cmd, "ha").await
    }

    /// GET_BROKER_HA_STATUS (907): Java's HARuntimeInfo, merged over shards.
    pub async fn handle_ha_status(
        self: &Rc<Self>,
        ctx: ReqCtx,
        cmd: &RemotingCommand,
    ) -> RemotingCommand {
        type Part = crate::broker::ha::ShardHaStatus;
        let status = match self.scatter_parsed::<Part>(ctx, cmd, "ha").await {
            Ok(parts) => parts,
            Err(e) => return response(cmd, rs::SYSTEM_ERROR, e),
        };
        let mut v = crate::broker::ha::merge_status(
            !self.is_slave(),
            self.repl.follow.master_addr.get(),
            &status,
        );
        // rocketcore's additions, for role changes (`haSwitch`).
        let cfg = self.cfg();
        v["brokerId"] = cfg.broker_id.into();
        v["epoch"] = cfg.role_epoch.max(self.store.last_epoch()).into();
        v["haServerAddr"] =
            std::net::SocketAddr::new(cfg.advertised.ip(), cfg.ha.listen(cfg.listen).port())
                .to_string()
                .into();
        response(cmd, rs::SUCCESS, None).with_body(serde_json::to_vec(&v).unwrap_or_default())
    }

    /// Queues `0..count` of `topic` that this shard owns.
    fn owned<'a>(&'a self, topic: &'a str, count: u32) -> impl Iterator<Item = i32> + 'a {
        (0..count as i32).filter(move |q| self.shards == 1 || self.owner_of(topic, *q) == self.id)
    }

    /// Store time of the message at `offset`, 0 when there is none.
    async fn stored_at(&self, topic: &str, q: i32, offset: Option<u64>) -> i64 {
        match offset {
            Some(o) => self
                .store
                .store_time(topic, q, o)
                .await
                .ok()
                .flatten()
                .unwrap_or(0),
            None => 0,
        }
    }

    fn queue(&self, topic: &str, queue_id: i32) -> MessageQueue {
        MessageQueue::new(topic, self.cfg().broker_name.as_str(), queue_id)
    }

    /// GET_TOPIC_STATS_INFO (202).
    pub async fn handle_topic_stats(
        self: &Rc<Self>,
        ctx: ReqCtx,
        cmd: &RemotingCommand,
    ) -> RemotingCommand {
        let Ok(topic) = cmd.ext_str("topic") else {
            return response(cmd, rs::SYSTEM_ERROR, "missing topic".to_string());
        };
        let rows = match self.topic_rows(ctx, cmd, topic).await {
            Ok(r) => r,
            Err(reply) => return reply,
        };
        let entries: Vec<_> = rows
            .into_iter()
            .map(|(t, q, [min, max, last, _])| {
                (
                    self.queue(&t, q),
                    TopicOffset {
                        min_offset: min,
                        max_offset: max,
                        last_update_timestamp: last,
                    },
                )
            })
            .collect();
        response(cmd, rs::SUCCESS, None).with_body(encode_topic_stats(&entries, 0.0))
    }

    async fn local_topic_stats(&self, cmd: &RemotingCommand) -> Result<Vec<u8>, String> {
        let topic = cmd.ext_str("topic").map_err(|e| e.to_string())?;
        let Some(cfg) = self.meta().topic(topic).cloned() else {
            return rows_body(&[]);
        };
        let mut rows = Vec::new();
        for q in self.owned(topic, cfg.read_queue_nums.max(cfg.write_queue_nums)) {
            let min = self.store.min_offset(topic, q);
            let max = self.store.max_offset(topic, q);
            let last = self.stored_at(topic, q, (max > min).then(|| max - 1)).await;
            rows.push((topic.to_string(), q, [min as i64, max as i64, last, 0]));
        }
        rows_body(&rows)
    }

    /// `gather_rows` for a request about `topic`; the error reply when the
    /// topic is unknown or a shard failed.
    async fn topic_rows(
        self: &Rc<Self>,
        ctx: ReqCtx,
        cmd: &RemotingCommand,
        topic: &str,
    ) -> Result<Vec<Row>, RemotingCommand> {
        if self.meta().topic(topic).is_none() {
            return Err(response(
                cmd,
                rs::TOPIC_NOT_EXIST,
                format!("topic[{topic}] not exist"),
            ));
        }
        self.gather_rows(ctx, cmd, "")
            .await
            .map_err(|e| response(cmd, rs::SYSTEM_ERROR, e))
    }

    async fn gather_rows(
        self: &Rc<Self>,
        ctx: ReqCtx,
        cmd: &RemotingCommand,
        phase: &str,
    ) -> Result<Vec<Row>, String> {
        let mut rows = Vec::new();
        for body in self.scatter(ctx, cmd, phase).await? {
            let part: Vec<Row> =
                serde_json::from_slice(&body).map_err(|e| format!("bad shard reply: {e}"))?;
            rows.extend(part);
        }
        rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        Ok(rows)
    }

    /// GET_CONSUME_STATS (208): every queue of each topic the group has
    /// offsets or a subscription for (or of the topics the request names).
    pub async fn handle_consume_stats(
        self: &Rc<Self>,
        ctx: ReqCtx,
        cmd: &RemotingCommand,
    ) -> RemotingCommand {
        let Ok(group) = cmd.ext_str("consumerGroup") else {
            return response(cmd, rs::SYSTEM_ERROR, "missing consumerGroup".to_string());
        };
        let named: Vec<String> = cmd
            .ext_str_opt("topic")
            .into_iter()
            .chain(
                cmd.ext_str_opt("topicList")
                    .into_iter()
                    .flat_map(|l| l.split(';')),
            )
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect();
        match self.consume_entries(ctx, group, named).await {
            Ok(entries) if entries.is_empty() => response(
                cmd,
                rs::CONSUMER_NOT_ONLINE,
                format!("group {group} has no offsets and no subscription on this broker"),
            ),
            Ok(entries) => {
                response(cmd, rs::SUCCESS, None).with_body(encode_consume_stats(0.0, &entries))
            }
            Err(e) => response(cmd, rs::SYSTEM_ERROR, e),
        }
    }

    /// Every queue of `topics` (when empty: of each topic the group has
    /// offsets for on any shard or a subscription to) with the group's
    /// progress, in topic and queue order.
    async fn consume_entries(
        self: &Rc<Self>,
        ctx: ReqCtx,
        group: &str,
        topics: Vec<String>,
    ) -> Result<Vec<(MessageQueue, OffsetWrapper)>, String> {
        use crate::remoting::codes::request_code as rq;
        let mut ask = RemotingCommand::new_request(rq::GET_CONSUME_STATS);
        ask.set_ext("consumerGroup", group);
        let topics = if topics.is_empty() {
            let mut all = std::collections::BTreeSet::new();
            for b in self.scatter(ctx, &ask, "topics").await? {
                all.extend(serde_json::from_slice::<Vec<String>>(&b).unwrap_or_default());
            }
            if let Some(subs) = self.meta().subscriptions.get(group) {
                all.extend(subs.topics.keys().cloned());
            }
            all.into_iter().collect::<Vec<_>>()
        } else {
            topics
        };
        let meta = self.meta();
        let topics: Vec<String> = topics
            .into_iter()
            .filter(|t| meta.topic(t).is_some())
            .collect();
        drop(meta);
        if topics.is_empty() {
            return Ok(Vec::new());
        }
        ask.set_ext("topicList", topics.join(";"));
        let rows = self.gather_rows(ctx, &ask, "stats").await?;
        Ok(rows
            .into_iter()
            .map(|(t, q, [broker, consumer, pull, last])| {
                (
                    self.queue(&t, q),
                    OffsetWrapper {
                        broker_offset: broker,
                        consumer_offset: consumer,
                        pull_offset: pull,
                        last_timestamp: last,
                    },
                )
            })
            .collect())
    }

    /// GET_BROKER_CONSUME_STATS (317): ConsumeStatsList, one ConsumeStats
    /// per (group, topic) for every subscription group of this broker.
    /// `isOrder=true` keeps only groups configured `consumeMessageOrderly`,
    /// as Java filters.
    pub async fn handle_broker_consume_stats(
        self: &Rc<Self>,
        ctx: ReqCtx,
        cmd: &RemotingCommand,
    ) -> RemotingCommand {
        let only_orderly = cmd.ext_bool_opt("isOrder").unwrap_or(false);
        let groups: Vec<String> = {
            let meta = self.meta();
            let mut g: Vec<String> = meta
                .groups
                .iter()
                .filter(|(_, cfg)| !only_orderly || cfg.consume_message_orderly)
                .map(|(name, _)| name.clone())
                .collect();
            g.sort();
            g
        };
        let (mut total_diff, mut total_inflight) = (0i64, 0i64);
        let mut lists = Vec::new();
        for group in &groups {
            let entries = match self.consume_entries(ctx, group, Vec::new()).await {
                Ok(e) => e,
                Err(e) => return response(cmd, rs::SYSTEM_ERROR, e),
            };
            if entries.is_empty() {
                continue;
            }
            // One ConsumeStats per topic, as Java builds them.
            let mut per_topic = Vec::new();
            for queues in entries.chunk_by(|a, b| a.0.topic == b.0.topic) {
                for (_, o) in queues {
                    total_diff += (o.broker_offset - o.consumer_offset).max(0);
                    total_inflight += (o.pull_offset - o.consumer_offset).max(0);
                }
                per_topic
                    .push(String::from_utf8(encode_consume_stats(0.0, queues)).unwrap_or_default());
            }
            let key = serde_json::to_string(group).unwrap_or_default();
            lists.push(format!("{{{key}:[{}]}}", per_topic.join(",")));
        }
        let body = format!(
            "{{\"brokerAddr\":{},\"consumeStatsList\":[{}],\"totalDiff\":{total_diff},\"totalInflightDiff\":{total_inflight}}}",
            serde_json::to_string(&self.cfg().advertised.to_string()).unwrap_or_default(),
            lists.join(",")
        );
        response(cmd, rs::SUCCESS, None).with_body(body.into_bytes())
    }

    fn local_group_topics(&self, cmd: &RemotingCommand) -> Result<Vec<u8>, String> {
        let group = cmd.ext_str("consumerGroup").map_err(|e| e.to_string())?;
        serde_json::to_vec(&self.offsets.borrow().topics_of(group)).map_err(|e| e.to_string())
    }

    async fn local_consume_stats(&self, cmd: &RemotingCommand) -> Result<Vec<u8>, String> {
        let group = cmd.ext_str("consumerGroup").map_err(|e| e.to_string())?;
        let topics = cmd.ext_str("topicList").map_err(|e| e.to_string())?;
        let mut rows = Vec::new();
        for topic in topics.split(';') {
            let Some(cfg) = self.meta().topic(topic).cloned() else {
                continue;
            };
            for q in self.owned(topic, cfg.read_queue_nums) {
                let broker = self.store.max_offset(topic, q) as i64;
                let consumer = self.offsets.borrow().get(group, topic, q).unwrap_or(0);
                let last = self
                    .stored_at(topic, q, (consumer > 0).then(|| consumer as u64 - 1))
                    .await;
                rows.push((topic.to_string(), q, [broker, consumer, consumer, last]));
            }
        }
        rows_body(&rows)
    }

    /// INVOKE_BROKER_TO_RESET_OFFSET (222), served the 5.x way: the broker
    /// moves the committed offsets itself and the group's consumers learn
    /// of it from their next pull.
    pub async fn handle_reset_offset(
        self: &Rc<Self>,
        ctx: ReqCtx,
        cmd: &RemotingCommand,
    ) -> RemotingCommand {
        let parsed = (|| {
            Ok::<_, crate::remoting::HeaderError>((
                cmd.ext_str("topic")?,
                cmd.ext_str("group")?,
                cmd.ext_i64("timestamp")?,
            ))
        })();
        let (topic, group, _) = match parsed {
            Ok(x) => x,
            Err(e) => return response(cmd, rs::SYSTEM_ERROR, format!("bad header: {e}")),
        };
        let rows = match self.topic_rows(ctx, cmd, topic).await {
            Ok(r) => r,
            Err(reply) => return reply,
        };
        tracing::info!(group, topic, queues = rows.len(), "consumer offsets reset");
        let entries: Vec<_> = rows
            .into_iter()
            .map(|(t, q, [offset, ..])| (self.queue(&t, q), offset))
            .collect();
        response(cmd, rs::SUCCESS, None).with_body(encode_reset_offset_body(&entries))
    }

    async fn local_reset_offset(&self, cmd: &RemotingCommand) -> Result<Vec<u8>, String> {
        let e = |x: crate::remoting::HeaderError| x.to_string();
        let topic = cmd.ext_str("topic").map_err(e)?;
        let group = cmd.ext_str("group").map_err(e)?;
        let ts = cmd.ext_i64("timestamp").map_err(e)?;
        let force = cmd.ext_bool_opt("isForce").unwrap_or(true);
        let only = cmd.ext_i32_opt("queueId").map_err(e)?.filter(|q| *q >= 0);
        let explicit = cmd.ext_i64_opt("offset").map_err(e)?.filter(|o| *o >= 0);
        let Some(cfg) = self.meta().topic(topic).cloned() else {
            return rows_body(&[]);
        };
        let mut rows = Vec::new();
        for q in self.owned(topic, cfg.read_queue_nums) {
            if only.is_some_and(|o| o != q) {
                continue;
            }
            let min = self.store.min_offset(topic, q) as i64;
            let max = self.store.max_offset(topic, q) as i64;
            let target = match explicit {
                Some(o) => o.clamp(min, max),
                None if ts < 0 => max,
                None => self
                    .store
                    .offset_by_time(topic, q, ts)
                    .await
                    .map_err(|e| e.to_string())? as i64,
            };
            let current = self.offsets.borrow().get(group, topic, q);
            // Without force a reset only moves a group back, as Java's does.
            let target = match current {
                Some(c) if !force && target >= c => c,
                _ => target,
            };
            self.offsets.borrow_mut().reset(group, topic, q, target);
            rows.push((topic.to_string(), q, [target, 0, 0, 0]));
        }
        rows_body(&rows)
    }

    /// QUERY_TOPIC_CONSUME_BY_WHO (300): groups subscribed to the topic or
    /// holding an offset of it on any shard.
    pub async fn handle_consumed_by(
        self: &Rc<Self>,
        ctx: ReqCtx,
        cmd: &RemotingCommand,
    ) -> RemotingCommand {
        let Ok(topic) = cmd.ext_str("topic") else {
            return response(cmd, rs::SYSTEM_ERROR, "missing topic".to_string());
        };
        let mut groups = std::collections::BTreeSet::new();
        for (group, subs) in &self.meta().subscriptions {
            if subs.topics.contains_key(topic) {
                groups.insert(group.clone());
            }
        }
        match self.scatter(ctx, cmd, "").await {
            Ok(bodies) => {
                for b in bodies {
                    groups.extend(serde_json::from_slice::<Vec<String>>(&b).unwrap_or_default());
                }
            }
            Err(e) => return response(cmd, rs::SYSTEM_ERROR, e),
        }
        let body = crate::protocol::GroupList {
            group_list: groups.into_iter().collect(),
        };
        response(cmd, rs::SUCCESS, None).with_body(serde_json::to_vec(&body).unwrap_or_default())
    }

    /// GET_TOPIC_CONFIG (351): one topic's settings; TOPIC_NOT_EXIST when
    /// this broker has none.
    pub fn handle_topic_config(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let Ok(topic) = cmd.ext_str("topic") else {
            return response(cmd, rs::SYSTEM_ERROR, "missing topic".to_string());
        };
        match self.meta().topic(topic) {
            Some(cfg) => response(cmd, rs::SUCCESS, None)
                .with_body(serde_json::to_vec(cfg).unwrap_or_default()),
            None => response(
                cmd,
                rs::TOPIC_NOT_EXIST,
                format!("No topic in this broker. topic: {topic}"),
            ),
        }
    }

    /// UPDATE_BROKER_CONFIG (25), on shard 0: check, persist, then hand the
    /// new configuration to every shard.
    pub async fn handle_update_config(&self, cmd: &RemotingCommand) -> RemotingCommand {
        // One at a time: each builds on the configuration the last one made.
        if self.config_updating.replace(true) {
            return response(
                cmd,
                rs::SYSTEM_ERROR,
                "another broker config update is in progress; try again".to_string(),
            );
        }
        let reply = self.update_config(cmd).await;
        self.config_updating.set(false);
        reply
    }

    async fn update_config(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let text = String::from_utf8_lossy(cmd.body.as_deref().unwrap_or(b"")).into_owned();
        let props = parse_properties(&text);
        let next = match self.cfg().with_hot_update(&props) {
            Ok(n) => Arc::new(n),
            Err((true, why)) => return response(cmd, rs::NO_PERMISSION, why),
            Err((false, why)) => return response(cmd, rs::SYSTEM_ERROR, why),
        };
        let written = crate::broker::file_writer::global()
            .write(&next.store_dir.join(UPDATES_FILE), next.hot_updates_file())
            .done()
            .await;
        if let Err(e) = written {
            return response(cmd, rs::SYSTEM_ERROR, e);
        }
        for (i, tx) in self.shard_senders().iter().enumerate() {
            if i != self.id && tx.send_async(ShardMsg::Config(next.clone())).await.is_err() {
                return response(cmd, rs::SYSTEM_ERROR, format!("shard {i} is shutting down"));
            }
        }
        let keys: Vec<&str> = props.keys().map(String::as_str).collect();
        tracing::info!(keys = keys.join(","), "broker configuration updated");
        self.set_cfg(next);
        response(cmd, rs::SUCCESS, None)
    }
}

impl Shard {
    /// GET_CONSUMER_RUNNING_INFO (307), on shard 0: asks the consumer
    /// itself, on whichever shard holds its connection, and relays its
    /// answer (ConsumerRunningInfo) unchanged.
    pub async fn handle_consumer_running_info(
        self: &Rc<Self>,
        cmd: &RemotingCommand,
    ) -> RemotingCommand {
        use crate::remoting::codes::request_code as rq;
        let parsed = (|| {
            Ok::<_, crate::remoting::HeaderError>((
                cmd.ext_str("consumerGroup")?,
                cmd.ext_str("clientId")?,
            ))
        })();
        let (group, client) = match parsed {
            Ok(x) => x,
            Err(e) => return response(cmd, rs::SYSTEM_ERROR, format!("bad header: {e}")),
        };
        let member = self.owner.as_ref().and_then(|o| {
            let o = o.borrow();
            o.consumers.get(group)?.members.get(client).cloned()
        });
        let Some(member) = member else {
            return response(
                cmd,
                rs::SYSTEM_ERROR,
                format!("The Consumer <{group}> <{client}> not online"),
            );
        };
        let mut ask = RemotingCommand::new_request(rq::GET_CONSUMER_RUNNING_INFO);
        ask.set_ext("consumerGroup", group);
        ask.set_ext("clientId", client);
        ask.set_ext(
            "jstackEnable",
            cmd.ext_bool_opt("jstackEnable").unwrap_or(false),
        );
        let answer = if member.conn_shard == self.id {
            self.ask_conn(member.conn_id, ask).await
        } else {
            let (tx, rx) = flume::bounded(1);
            let msg = ShardMsg::AskConn {
                conn_id: member.conn_id,
                cmd: ask,
                reply: tx,
            };
            match self.shard_senders().get(member.conn_shard) {
                Some(s) if s.send_async(msg).await.is_ok() => rx
                    .recv_async()
                    .await
                    .unwrap_or_else(|_| Err(AskFailed::Unreachable("shard stopped".into()))),
                _ => Err(AskFailed::Unreachable(format!(
                    "shard {} is not running",
                    member.conn_shard
                ))),
            }
        };
        match answer {
            Ok(r) => {
                let mut out = response(cmd, r.code, r.remark);
                out.body = r.body;
                out
            }
            Err(why @ AskFailed::Timeout) => {
                response(cmd, rs::CONSUME_MSG_TIMEOUT, why.to_string())
            }
            Err(why @ AskFailed::Unreachable(_)) => response(
                cmd,
                rs::SYSTEM_ERROR,
                format!("The Consumer <{group}> <{client}> not online: {why}"),
            ),
        }
    }
}

fn rows_body(rows: &[Row]) -> Result<Vec<u8>, String> {
    serde_json::to_vec(rows).map_err(|e| e.to_string())
}
