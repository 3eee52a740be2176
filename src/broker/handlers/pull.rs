//! PULL_MESSAGE (11) and LITE_PULL_MESSAGE (361) on the shard that owns the
//! queue: subscription lookup, the read, the offset corrections of spec §8.2,
//! long polling (§8.3), and the committed offset that rides along.

use std::borrow::Cow;
use std::rc::Rc;
use std::time::Duration;

use rocketcore_storage::{ReadStatus, RecordFilter};

use crate::broker::mesh::ReqCtx;
use crate::broker::shard::{response, Shard};
use crate::filter::{RawProperties, Sql92Filter};
use crate::protocol::perm;
use crate::protocol::subscription::{tag_codes_of, EXPRESSION_TYPE_SQL92, EXPRESSION_TYPE_TAG};
use crate::remoting::codes::response_code as rs;
use crate::remoting::RemotingCommand;

const FLAG_COMMIT_OFFSET: i32 = 0x1;
const FLAG_SUSPEND: i32 = 0x2;
const FLAG_SUBSCRIPTION: i32 = 0x4;
/// Longest hold granted, whatever the client asks: the Java client gives up
/// on a pull after 30 s (spec §8.3).
pub const MAX_HOLD_MS: i64 = 20_000;
/// Messages and bytes one pull returns at most, as Java's in-memory limits.
pub const PULL_MAX_MSGS: usize = 32;
pub const PULL_DEFAULT_MAX_BYTES: usize = 256 << 10;

/// The pull header, borrowing its strings from the request.
struct PullHeader<'a> {
    group: &'a str,
    topic: &'a str,
    queue_id: i32,
    queue_offset: i64,
    max_msgs: i32,
    sys_flag: i32,
    commit_offset: i64,
    suspend_ms: i64,
    subscription: Option<&'a str>,
    sub_version: i64,
    expression_type: &'a str,
    max_bytes: Option<i32>,
}

impl<'a> PullHeader<'a> {
    fn parse(cmd: &'a RemotingCommand) -> Result<PullHeader<'a>, String> {
        let e = |x: crate::remoting::HeaderError| x.to_string();
        Ok(PullHeader {
            group: cmd.ext_str("consumerGroup").map_err(e)?,
            topic: cmd.ext_str("topic").map_err(e)?,
            queue_id: cmd.ext_i32("queueId").map_err(e)?,
            queue_offset: cmd.ext_i64("queueOffset").map_err(e)?,
            max_msgs: cmd.ext_i32_opt("maxMsgNums").map_err(e)?.unwrap_or(32),
            sys_flag: cmd.ext_i32_opt("sysFlag").map_err(e)?.unwrap_or(0),
            commit_offset: cmd.ext_i64_opt("commitOffset").map_err(e)?.unwrap_or(0),
            suspend_ms: cmd
                .ext_i64_opt("suspendTimeoutMillis")
                .map_err(e)?
                .unwrap_or(0),
            subscription: cmd.ext_str_opt("subscription"),
            sub_version: cmd.ext_i64_opt("subVersion").map_err(e)?.unwrap_or(0),
            expression_type: cmd.ext_str_opt("expressionType").unwrap_or("TAG"),
            max_bytes: cmd.ext_i32_opt("maxMsgBytes").map_err(e)?,
        })
    }
}

fn status_name(s: ReadStatus) -> &'static str {
    match s {
        ReadStatus::Found => "FOUND",
        ReadStatus::NoMatchedMessage => "NO_MATCHED_MESSAGE",
        ReadStatus::NoMatchedLogicQueue => "NO_MATCHED_LOGIC_QUEUE",
        ReadStatus::NoMessageInQueue => "NO_MESSAGE_IN_QUEUE",
        ReadStatus::OffsetTooSmall => "OFFSET_TOO_SMALL",
        ReadStatus::OffsetOverflowOne => "OFFSET_OVERFLOW_ONE",
        ReadStatus::OffsetOverflowBadly => "OFFSET_OVERFLOW_BADLY",
        ReadStatus::MessageWasRemoving => "MESSAGE_WAS_REMOVING",
        ReadStatus::OffsetFoundNull => "OFFSET_FOUND_NULL",
    }
}

/// Compiled expressions kept per shard; past this the cache starts over.
const SQL_CACHE_ENTRIES: usize = 1024;

impl Shard {
    /// The compiled SQL92 filter for `expr`, from the shard's cache; the
    /// response code and reason when it cannot be used.
    pub fn sql_filter(&self, expr: &str) -> Result<Rc<Sql92Filter>, (i32, String)> {
        if !self.cfg().enable_property_filter {
            return Err((
                rs::SYSTEM_ERROR,
                "SQL92 filtering is off on this broker (enablePropertyFilter=false)".to_string(),
            ));
        }
        if let Some(f) = self.sql_cache.borrow().get(expr) {
            return Ok(f.clone());
        }
        let f = Rc::new(
            Sql92Filter::compile(expr)
                .map_err(|e| (rs::SUBSCRIPTION_PARSE_FAILED, e.to_string()))?,
        );
        let mut cache = self.sql_cache.borrow_mut();
        if cache.len() >= SQL_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(expr.into(), f.clone());
        Ok(f)
    }

    pub async fn handle_pull(
        self: &Rc<Self>,
        _ctx: ReqCtx,
        cmd: RemotingCommand,
    ) -> Option<RemotingCommand> {
        let h = match PullHeader::parse(&cmd) {
            Ok(h) => h,
            Err(e) => {
                return Some(response(
                    &cmd,
                    rs::SYSTEM_ERROR,
                    format!("bad pull header: {e}"),
                ))
            }
        };
        let meta = self.meta();
        if let Some(g) = meta.groups.get(h.group) {
            if !g.consume_enable {
                return Some(response(
                    &cmd,
                    rs::NO_PERMISSION,
                    format!(
                        "consumer group {} may not consume (consumeEnable=false)",
                        h.group
                    ),
                ));
            }
            let broadcasting = meta
                .subscriptions
                .get(h.group)
                .is_some_and(|s| s.message_model == "BROADCASTING");
            if broadcasting && !g.consume_broadcast_enable {
                return Some(response(
                    &cmd,
                    rs::NO_PERMISSION,
                    format!(
                        "consumer group {} may not consume in broadcasting mode (consumeBroadcastEnable=false)",
                        h.group
                    ),
                ));
            }
        } else if !self.cfg().auto_create_subscription_group {
            return Some(response(
                &cmd,
                rs::SUBSCRIPTION_GROUP_NOT_EXIST,
                format!("subscription group {} does not exist", h.group),
            ));
        }
        let Some(topic) = meta.topic(h.topic) else {
            return Some(response(
                &cmd,
                rs::TOPIC_NOT_EXIST,
                format!("topic[{}] not exist, apply first please!", h.topic),
            ));
        };
        if topic.perm & perm::PERM_READ == 0 {
            return Some(response(
                &cmd,
                rs::NO_PERMISSION,
                format!("the topic[{}] pulling message is forbidden", h.topic),
            ));
        }
        if h.queue_id < 0 || h.queue_id >= topic.read_queue_nums as i32 {
            return Some(response(
                &cmd,
                rs::INVALID_PARAMETER,
                format!(
                    "queueId {} is not below readQueueNums {} of {}",
                    h.queue_id, topic.read_queue_nums, h.topic
                ),
            ));
        }
        // What the read filters by: tag codes (None: every tag) and, for
        // SQL92 subscriptions, the compiled expression.
        let mut sql = None;
        let tags: Option<Cow<'_, [i64]>> = if h.sys_flag & FLAG_SUBSCRIPTION != 0 {
            if h.expression_type
                .eq_ignore_ascii_case(EXPRESSION_TYPE_SQL92)
            {
                match self.sql_filter(h.subscription.unwrap_or("")) {
                    Ok(f) => sql = Some(f),
                    Err((code, why)) => return Some(response(&cmd, code, why)),
                }
                None
            } else if h.expression_type.eq_ignore_ascii_case(EXPRESSION_TYPE_TAG) {
                tag_codes_of(h.subscription.unwrap_or("*")).map(Cow::Owned)
            } else {
                return Some(response(
                    &cmd,
                    rs::SUBSCRIPTION_PARSE_FAILED,
                    format!(
                        "expression type {} is neither TAG nor SQL92",
                        h.expression_type
                    ),
                ));
            }
        } else {
            let Some(sub) = meta.subscription(h.group, h.topic) else {
                return Some(response(
                    &cmd,
                    rs::SUBSCRIPTION_NOT_EXIST,
                    format!(
                        "the consumer's subscription not exist, group: {} topic: {}",
                        h.group, h.topic
                    ),
                ));
            };
            if sub.data.sub_version < h.sub_version {
                return Some(response(
                    &cmd,
                    rs::SUBSCRIPTION_NOT_LATEST,
                    "the consumer's subscription not latest".to_string(),
                ));
            }
            if !sub.data.is_tag_type() {
                match self.sql_filter(&sub.data.sub_string) {
                    Ok(f) => sql = Some(f),
                    Err((code, why)) => return Some(response(&cmd, code, why)),
                }
            }
            // Borrowed from the metadata snapshot this request holds.
            sub.tag_codes.as_deref().map(Cow::Borrowed)
        };
        // A reset by an administrator overrides what the consumer holds:
        // it is told to move, and its commit of the old position is not kept.
        let reset = self
            .offsets
            .borrow_mut()
            .take_reset(h.group, h.topic, h.queue_id);
        if let Some(target) = reset.filter(|t| *t != h.queue_offset) {
            let mut r = response(
                &cmd,
                rs::PULL_OFFSET_MOVED,
                "offset reset by an administrator".to_string(),
            );
            r.set_ext("suggestWhichBrokerId", 0);
            r.set_ext("nextBeginOffset", target);
            r.set_ext("minOffset", self.store.min_offset(h.topic, h.queue_id));
            r.set_ext("maxOffset", self.store.max_offset(h.topic, h.queue_id));
            return Some(r);
        }
        // A slave keeps no offset a pull carries (Java 4.x): the master's
        // copy is the one that counts, and the Rust client sends them to
        // slaves too.
        if reset.is_none()
            && !self.is_slave()
            && h.sys_flag & FLAG_COMMIT_OFFSET != 0
            && h.commit_offset >= 0
            && !self.stopping.get()
        {
            self.offsets
                .borrow_mut()
                .set(h.group, h.topic, h.queue_id, h.commit_offset);
        }
        let max_msgs = (h.max_msgs.max(1) as usize).min(PULL_MAX_MSGS);
        // Capped at Java's in-memory transfer limit (§8.2.6): a client asking
        // for more must not get a reply over the 16 MiB frame limit.
        let max_bytes = h
            .max_bytes
            .filter(|b| *b > 0)
            .map_or(PULL_DEFAULT_MAX_BYTES, |b| {
                (b as usize).min(PULL_DEFAULT_MAX_BYTES)
            });
        let hold = (h.sys_flag & FLAG_SUSPEND != 0 && h.suspend_ms > 0)
            .then(|| Duration::from_millis(h.suspend_ms.min(MAX_HOLD_MS) as u64));
        let deadline = hold.map(|d| std::time::Instant::now() + d);
        loop {
            // An append while the read below is suspended notifies nobody
            // (this pull is not waiting yet); comparing the queue's end
            // before the read and before the wait catches it.
            // Only a pull that may hold needs it: no lookup on the others.
            let end_before_read = deadline.map(|_| self.store.max_offset(h.topic, h.queue_id));
            let reply = self
                .read_for_pull(
                    &cmd,
                    &h,
                    tags.as_deref(),
                    sql.as_deref(),
                    max_msgs,
                    max_bytes,
                )
                .await;
            let not_found = reply.code == rs::PULL_NOT_FOUND;
            let Some(deadline) = deadline.filter(|_| not_found) else {
                return Some(reply);
            };
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Some(reply);
            }
            if Some(self.store.max_offset(h.topic, h.queue_id)) != end_before_read {
                continue;
            }
            if !self.polls.wait(h.topic, h.queue_id, left).await {
                // Hold time over: answer with what a re-read finds.
                return Some(
                    self.read_for_pull(
                        &cmd,
                        &h,
                        tags.as_deref(),
                        sql.as_deref(),
                        max_msgs,
                        max_bytes,
                    )
                    .await,
                );
            }
        }
    }

    /// Java's rule with `slaveReadEnable`: a consumer far behind is told
    /// to pull from its group's `whichBrokerWhenConsumeSlowly` (a slave), so
    /// its catch-up reads do not compete with the master's writes; else
    /// from the group's `brokerId`. "Far behind" means the records come
    /// from the device, not the tail cache (Java compares with a share of
    /// RAM, which means nothing under O_DIRECT). Only while a slave is
    /// connected to this shard.
    fn suggest_broker(&self, group: &str, read: &rocketcore_storage::QueueRead) -> i64 {
        if !self.cfg().ha.slave_read_enable
            || self.is_slave()
            || self.repl.links.borrow().is_empty()
        {
            return 0;
        }
        let meta = self.meta();
        let (normal, slowly) = meta.groups.get(group).map_or((0, 1), |g| {
            (g.broker_id, g.which_broker_when_consume_slowly)
        });
        let far = read
            .messages
            .first()
            .and_then(|m| rocketcore_storage::RecordView::parse(m).ok())
            .is_some_and(|v| {
                rocketcore_storage::from_global(v.physical_offset()).1 < self.store.cache_start()
            });
        if far {
            slowly
        } else {
            normal
        }
    }

    async fn read_for_pull(
        &self,
        cmd: &RemotingCommand,
        h: &PullHeader<'_>,
        tags: Option<&[i64]>,
        sql: Option<&Sql92Filter>,
        max_msgs: usize,
        max_bytes: usize,
    ) -> RemotingCommand {
        let offset = h.queue_offset.max(0) as u64;
        let keep = sql.map(|f| move |props: &[u8]| f.matches(&RawProperties(props)));
        let read = match self
            .store
            .read_queue_filtered(
                h.topic,
                h.queue_id,
                offset,
                max_msgs,
                max_bytes,
                tags,
                keep.as_ref().map(|k| k as &RecordFilter<'_>),
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return response(cmd, rs::SYSTEM_ERROR, format!("read failed: {e}")),
        };
        let (code, next) = match read.status {
            ReadStatus::Found => (rs::SUCCESS, read.next_offset as i64),
            ReadStatus::NoMatchedLogicQueue | ReadStatus::NoMessageInQueue => (
                if h.queue_offset != 0 {
                    rs::PULL_OFFSET_MOVED
                } else {
                    rs::PULL_NOT_FOUND
                },
                0,
            ),
            ReadStatus::OffsetTooSmall | ReadStatus::OffsetOverflowBadly => {
                (rs::PULL_OFFSET_MOVED, read.next_offset as i64)
            }
            ReadStatus::OffsetOverflowOne => (rs::PULL_NOT_FOUND, h.queue_offset),
            ReadStatus::NoMatchedMessage | ReadStatus::MessageWasRemoving => {
                (rs::PULL_RETRY_IMMEDIATELY, read.next_offset as i64)
            }
            ReadStatus::OffsetFoundNull => (rs::PULL_NOT_FOUND, read.next_offset as i64),
        };
        let mut reply = response(cmd, code, status_name(read.status).to_string());
        reply.set_ext("suggestWhichBrokerId", self.suggest_broker(h.group, &read));
        reply.set_ext("nextBeginOffset", next);
        reply.set_ext("minOffset", read.min_offset);
        reply.set_ext("maxOffset", read.max_offset);
        if !read.messages.is_empty() {
            let len: usize = read.messages.iter().map(|m| m.len()).sum();
            self.stats
                .get_msgs
                .set(self.stats.get_msgs.get() + read.messages.len() as u64);
            self.metrics
                .pulled(h.topic, h.group, read.messages.len() as u64, len as u64);
            // Not joined: the connection writes the records where they lie.
            reply.body_parts = read.messages;
        }
        reply
    }
}
