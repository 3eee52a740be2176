//! Client registry on shard 0: HEART_BEAT (34), UNREGISTER_CLIENT (35),
//! GET_CONSUMER_LIST_BY_GROUP (38), LOCK/UNLOCK_BATCH_MQ (41/42),
//! CHECK_CLIENT_CONFIG (46), connection lists (203/204), and what happens
//! when a client's connection closes or it goes silent.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::time::Duration;

use crate::broker::mesh::ReqCtx;
use crate::broker::meta::{
    ConsumerGroupInfo, Member, MetaOwner, Subscription, CLIENT_EXPIRE_MS, LOCK_EXPIRE_MS,
    RETRY_GROUP_TOPIC_PREFIX,
};
use crate::broker::shard::{now_ms, response, Shard};
use crate::protocol::subscription::{EXPRESSION_TYPE_SQL92, EXPRESSION_TYPE_TAG};
use crate::protocol::{
    decode_json, CheckClientConfigBody, Connection, ConsumerConnection, ConsumerListBody,
    HeartbeatData, LockBatchRequestBody, LockBatchResponseBody, ProducerConnection,
    SubscriptionGroupConfig, TopicConfig, UnlockBatchRequestBody,
};
use crate::remoting::codes::{request_code as rq, response_code as rs};
use crate::remoting::{version, RemotingCommand};

/// How long after a consumer joins its group is told a second time.
const NOTIFY_AGAIN_AFTER: Duration = Duration::from_millis(1000);

impl Shard {
    fn owner_mut(&self) -> Option<std::cell::RefMut<'_, MetaOwner>> {
        self.owner.as_ref().map(|o| o.borrow_mut())
    }

    pub fn handle_heartbeat(
        self: &Rc<Self>,
        ctx: ReqCtx,
        cmd: &RemotingCommand,
    ) -> RemotingCommand {
        let body = cmd.body.as_deref().unwrap_or(b"{}");
        let hb: HeartbeatData = match decode_json(body) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(peer = %ctx.peer, "bad heartbeat body: {e}: {}", String::from_utf8_lossy(&body[..body.len().min(512)]));
                return response(cmd, rs::SYSTEM_ERROR, format!("bad heartbeat body: {e}"));
            }
        };
        // An expression that cannot be evaluated is refused before anything
        // is registered, so the consumer learns of it at once.
        for c in &hb.consumer_data_set {
            for s in c.subscription_data_set.iter().filter(|s| !s.is_tag_type()) {
                if let Err(why) = self.check_expression(&s.expression_type, &s.sub_string) {
                    return response(
                        cmd,
                        rs::SUBSCRIPTION_PARSE_FAILED,
                        format!("group {} topic {}: {}", c.group_name, s.topic, why.1),
                    );
                }
            }
        }
        let Some(mut owner) = self.owner_mut() else {
            return response(
                cmd,
                rs::SYSTEM_ERROR,
                "heartbeats are served by shard 0".to_string(),
            );
        };
        let now = now_ms();
        let member = Member {
            client_id: hb.client_id.clone(),
            conn_id: ctx.conn_id,
            conn_shard: ctx.conn_shard,
            peer: ctx.peer,
            language: cmd.language.name().to_string(),
            version: cmd.version,
            last_seen_ms: now,
        };
        for p in &hb.producer_data_set {
            owner
                .producers
                .entry(p.group_name.clone())
                .or_default()
                .insert(hb.client_id.clone(), member.clone());
        }
        let mut meta_changed = false;
        let mut notify: Vec<String> = Vec::new();
        for c in &hb.consumer_data_set {
            let group = &c.group_name;
            if !owner.snap().groups.contains_key(group) {
                if !self.cfg().auto_create_subscription_group {
                    continue;
                }
                // Recreated by the next heartbeat if lost: not waited for.
                match owner.put_group(SubscriptionGroupConfig::new(group)) {
                    Ok(w) => w.detach(),
                    Err(e) => tracing::warn!("persisting group {group}: {e}"),
                }
                meta_changed = true;
            }
            let retry = format!("{RETRY_GROUP_TOPIC_PREFIX}{group}");
            if !owner.snap().topics.contains_key(&retry) {
                let queues = owner
                    .snap()
                    .groups
                    .get(group)
                    .map_or(1, |g| g.retry_queue_nums.max(1));
                match owner.put_topic(TopicConfig::new(&retry, queues)) {
                    Ok(w) => w.detach(),
                    Err(e) => tracing::warn!("creating {retry}: {e}"),
                }
                meta_changed = true;
                self.register_now.set(true);
            }
            let info = owner
                .consumers
                .entry(group.clone())
                .or_insert_with(ConsumerGroupInfo::default);
            info.consume_type = c.consume_type.clone();
            info.message_model = c.message_model.clone();
            info.consume_from_where = c.consume_from_where.clone();
            let is_new = match info.members.get(&hb.client_id) {
                Some(m) => m.conn_id != ctx.conn_id,
                None => true,
            };
            info.members.insert(hb.client_id.clone(), member.clone());
            // Subscriptions are per group: the newest heartbeat wins, and a
            // topic keeps the highest subVersion seen (spec §13.15).
            let old = owner
                .snap()
                .subscriptions
                .get(group)
                .cloned()
                .unwrap_or_default();
            let mut subs = crate::broker::meta::GroupSubscriptions {
                message_model: c.message_model.clone(),
                topics: HashMap::new(),
            };
            for s in &c.subscription_data_set {
                let mut data = s.clone();
                if let Some(prev) = old.topics.get(&s.topic) {
                    data.sub_version = data.sub_version.max(prev.data.sub_version);
                }
                subs.topics.insert(s.topic.clone(), Subscription::new(data));
            }
            let changed = old.message_model != subs.message_model
                || old.topics.len() != subs.topics.len()
                || subs.topics.iter().any(|(t, s)| {
                    old.topics.get(t).is_none_or(|o| {
                        o.data.sub_string != s.data.sub_string
                            || o.data.sub_version != s.data.sub_version
                            || o.data.expression_type != s.data.expression_type
                    })
                });
            if changed {
                owner.edit().subscriptions.insert(group.clone(), subs);
                meta_changed = true;
            }
            if (is_new || changed) && !c.message_model.eq_ignore_ascii_case("BROADCASTING") {
                notify.push(group.clone());
            }
        }
        drop(owner);
        if meta_changed {
            self.publish_meta();
        }
        for g in notify {
            self.notify_consumer_ids_changed(&g);
            self.notify_again_later(g);
        }
        let mut r = response(cmd, rs::SUCCESS, None);
        r.version = version::SERVER_VERSION;
        r.set_ext("IS_SUPPORT_HEART_BEAT_V2", "false");
        r.set_ext("IS_SUB_CHANGE", "false");
        r
    }

    /// NOTIFY_CONSUMER_IDS_CHANGED (40), oneway, to every member of `group`,
    /// unless the group turned notifications off
    /// (`notifyConsumerIdsChangedEnable`, as Java honours it).
    pub fn notify_consumer_ids_changed(&self, group: &str) {
        let members: Vec<Member> = match &self.owner {
            Some(o) => {
                let o = o.borrow();
                if o.snap()
                    .groups
                    .get(group)
                    .is_some_and(|g| !g.notify_consumer_ids_changed_enable)
                {
                    return;
                }
                o.consumers
                    .get(group)
                    .map(|i| i.members.values().cloned().collect())
                    .unwrap_or_default()
            }
            None => return,
        };
        for m in members {
            let mut cmd = RemotingCommand::new_request(rq::NOTIFY_CONSUMER_IDS_CHANGED);
            cmd.set_ext("consumerGroup", group);
            self.send_oneway_to(m.conn_shard, m.conn_id, cmd);
        }
    }

    /// Repeats the notice of a join `NOTIFY_AGAIN_AFTER` later (once per
    /// group however many joins come meanwhile). The first notice is sent
    /// while the joining heartbeat is still being answered, and the C++
    /// client (librocketmq 1.2) ignores a notice that reaches it before its
    /// `start()` has returned: a second consumer of one client instance then
    /// got no queues until its 10 s rebalance timer (issue 14). Java's
    /// broker has the same race; the repeat costs each member one extra
    /// rebalance per membership change.
    fn notify_again_later(self: &Rc<Self>, group: String) {
        if !self.notify_pending.borrow_mut().insert(group.clone()) {
            return;
        }
        let me = self.clone();
        glommio::spawn_local(async move {
            glommio::timer::sleep(NOTIFY_AGAIN_AFTER).await;
            me.notify_pending.borrow_mut().remove(&group);
            if !me.stopping.get() {
                me.notify_consumer_ids_changed(&group);
            }
        })
        .detach();
    }

    pub fn handle_unregister_client(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let Ok(client_id) = cmd.ext_str("clientID") else {
            return response(cmd, rs::SYSTEM_ERROR, "missing clientID".to_string());
        };
        let mut changed = Vec::new();
        if let Some(mut owner) = self.owner_mut() {
            if let Some(g) = cmd.ext_str_opt("producerGroup") {
                if let Some(p) = owner.producers.get_mut(g) {
                    p.remove(client_id);
                }
            }
            if let Some(g) = cmd.ext_str_opt("consumerGroup") {
                if let Some(info) = owner.consumers.get_mut(g) {
                    if info.members.remove(client_id).is_some() {
                        changed.push(g.to_string());
                    }
                }
            }
        }
        for g in changed {
            self.notify_consumer_ids_changed(&g);
        }
        response(cmd, rs::SUCCESS, None)
    }

    pub fn handle_consumer_list(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let Ok(group) = cmd.ext_str("consumerGroup") else {
            return response(cmd, rs::SYSTEM_ERROR, "missing consumerGroup".to_string());
        };
        let ids: Vec<String> = self
            .owner
            .as_ref()
            .and_then(|o| {
                o.borrow()
                    .consumers
                    .get(group)
                    .map(|i| i.members.keys().cloned().collect())
            })
            .unwrap_or_default();
        if ids.is_empty() {
            return response(
                cmd,
                rs::SYSTEM_ERROR,
                format!("no consumer for this group, {group}"),
            );
        }
        let body = serde_json::to_vec(&ConsumerListBody {
            consumer_id_list: ids,
        })
        .unwrap_or_default();
        response(cmd, rs::SUCCESS, None).with_body(body)
    }

    pub fn handle_lock(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let req: LockBatchRequestBody = match decode_json(cmd.body.as_deref().unwrap_or(b"{}")) {
            Ok(r) => r,
            Err(e) => return response(cmd, rs::SYSTEM_ERROR, format!("bad lock body: {e}")),
        };
        let now = now_ms();
        let mut ok = Vec::new();
        if let Some(mut owner) = self.owner_mut() {
            for mq in req.mq_set {
                let key = (req.consumer_group.clone(), mq.clone());
                let grant = match owner.locks.get(&key) {
                    None => true,
                    Some((holder, ts)) => holder == &req.client_id || now - ts > LOCK_EXPIRE_MS,
                };
                if grant {
                    owner.locks.insert(key, (req.client_id.clone(), now));
                    ok.push(mq);
                }
            }
        }
        let body =
            serde_json::to_vec(&LockBatchResponseBody { lock_ok_mq_set: ok }).unwrap_or_default();
        response(cmd, rs::SUCCESS, None).with_body(body)
    }

    pub fn handle_unlock(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let req: UnlockBatchRequestBody = match decode_json(cmd.body.as_deref().unwrap_or(b"{}")) {
            Ok(r) => r,
            Err(e) => return response(cmd, rs::SYSTEM_ERROR, format!("bad unlock body: {e}")),
        };
        if let Some(mut owner) = self.owner_mut() {
            for mq in req.mq_set {
                let key = (req.consumer_group.clone(), mq);
                if owner
                    .locks
                    .get(&key)
                    .is_some_and(|(holder, _)| holder == &req.client_id)
                {
                    owner.locks.remove(&key);
                }
            }
        }
        response(cmd, rs::SUCCESS, None)
    }

    pub fn handle_check_client_config(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let req: CheckClientConfigBody = match decode_json(cmd.body.as_deref().unwrap_or(b"{}")) {
            Ok(r) => r,
            Err(e) => return response(cmd, rs::SYSTEM_ERROR, format!("bad body: {e}")),
        };
        let s = &req.subscription_data;
        match self.check_expression(&s.expression_type, &s.sub_string) {
            Ok(()) => response(cmd, rs::SUCCESS, None),
            Err((code, why)) => response(cmd, code, why),
        }
    }

    /// Whether a subscription expression of this type can be served.
    fn check_expression(&self, kind: &str, expr: &str) -> Result<(), (i32, String)> {
        let kind = kind.trim();
        if kind.is_empty() || kind.eq_ignore_ascii_case(EXPRESSION_TYPE_TAG) {
            Ok(())
        } else if kind.eq_ignore_ascii_case(EXPRESSION_TYPE_SQL92) {
            self.sql_filter(expr).map(|_| ())
        } else {
            Err((
                rs::SUBSCRIPTION_PARSE_FAILED,
                format!("expression type {kind} is neither TAG nor SQL92"),
            ))
        }
    }

    pub fn handle_consumer_connections(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let Ok(group) = cmd.ext_str("consumerGroup") else {
            return response(cmd, rs::SYSTEM_ERROR, "missing consumerGroup".to_string());
        };
        let Some(owner) = self.owner.as_ref().map(|o| o.borrow()) else {
            return response(cmd, rs::SYSTEM_ERROR, "served by shard 0".to_string());
        };
        let Some(info) = owner.consumers.get(group).filter(|i| !i.members.is_empty()) else {
            return response(
                cmd,
                rs::CONSUMER_NOT_ONLINE,
                format!("the consumer group[{group}] not online"),
            );
        };
        let body = ConsumerConnection {
            connection_set: info.members.values().map(connection_of).collect(),
            subscription_table: owner
                .snap()
                .subscriptions
                .get(group)
                .map(|s| {
                    s.topics
                        .iter()
                        .map(|(t, s)| (t.clone(), s.data.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            consume_type: info.consume_type.clone(),
            message_model: info.message_model.clone(),
            consume_from_where: info.consume_from_where.clone(),
        };
        response(cmd, rs::SUCCESS, None).with_body(serde_json::to_vec(&body).unwrap_or_default())
    }

    pub fn handle_producer_connections(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let Ok(group) = cmd.ext_str("producerGroup") else {
            return response(cmd, rs::SYSTEM_ERROR, "missing producerGroup".to_string());
        };
        let conns: Vec<Connection> = self
            .owner
            .as_ref()
            .and_then(|o| {
                o.borrow()
                    .producers
                    .get(group)
                    .map(|m| m.values().map(connection_of).collect())
            })
            .unwrap_or_default();
        if conns.is_empty() {
            return response(
                cmd,
                rs::SYSTEM_ERROR,
                format!("the producer group[{group}] not exist"),
            );
        }
        let body = ProducerConnection {
            connection_set: conns,
        };
        response(cmd, rs::SUCCESS, None).with_body(serde_json::to_vec(&body).unwrap_or_default())
    }

    /// GET_ALL_PRODUCER_INFO (328), on shard 0: ProducerTableInfo, every
    /// producer group with its clients.
    pub fn handle_all_producers(&self, cmd: &RemotingCommand) -> RemotingCommand {
        let data: BTreeMap<String, Vec<serde_json::Value>> = self
            .owner
            .as_ref()
            .map(|o| {
                o.borrow()
                    .producers
                    .iter()
                    .map(|(group, members)| {
                        let list = members
                            .values()
                            .map(|m| {
                                serde_json::json!({"clientId": m.client_id, "remoteIP": m.peer.to_string(),
                                    "language": m.language, "version": m.version,
                                    "lastUpdateTimestamp": m.last_seen_ms})
                            })
                            .collect();
                        (group.clone(), list)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let body = serde_json::to_vec(&serde_json::json!({ "data": data })).unwrap_or_default();
        response(cmd, rs::SUCCESS, None).with_body(body)
    }

    /// Shard 0: a connection closed somewhere; drop what was registered on it.
    pub fn on_conn_closed_owner(&self, conn_id: u64) {
        self.drop_members(|m| m.conn_id == conn_id);
    }

    /// Shard 0: drops clients silent for longer than `CLIENT_EXPIRE_MS`.
    pub fn expire_clients(&self) {
        let now = now_ms();
        self.drop_members(|m| now - m.last_seen_ms > CLIENT_EXPIRE_MS);
    }

    fn drop_members(&self, doomed: impl Fn(&Member) -> bool) {
        let mut changed = BTreeSet::new();
        if let Some(mut owner) = self.owner_mut() {
            for (group, info) in owner.consumers.iter_mut() {
                let before = info.members.len();
                info.members.retain(|_, m| !doomed(m));
                if info.members.len() != before {
                    changed.insert(group.clone());
                }
            }
            owner.consumers.retain(|_, i| !i.members.is_empty());
            for p in owner.producers.values_mut() {
                p.retain(|_, m| !doomed(m));
            }
            owner.producers.retain(|_, p| !p.is_empty());
        }
        for g in changed {
            self.notify_consumer_ids_changed(&g);
        }
    }
}

fn connection_of(m: &Member) -> Connection {
    Connection {
        client_id: m.client_id.clone(),
        client_addr: m.peer.to_string(),
        language: m.language.clone(),
        version: m.version,
    }
}
