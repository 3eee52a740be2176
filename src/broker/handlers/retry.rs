//! CONSUMER_SEND_MSG_BACK (36): a consumer hands back a message it failed
//! to consume. Served on the shard that stores the message (by the shard
//! byte of its offset); the copy then goes through the send path to
//! `%RETRY%<group>` with a delay level, or to `%DLQ%<group>` once the
//! group's reconsume budget is spent (spec §7.6).

use std::rc::Rc;

use rocketcore_storage::properties;
use rocketcore_storage::record::SYSFLAG_CLIENT_MASK;
use rocketcore_storage::RecordView;

use crate::broker::handlers::offset_msg_id;
use crate::broker::mesh::ReqCtx;
use crate::broker::meta::{DLQ_GROUP_TOPIC_PREFIX, RETRY_GROUP_TOPIC_PREFIX};
use crate::broker::schedule::{DELAY, REAL_QID, REAL_TOPIC};
use crate::broker::shard::{response, Shard};
use crate::broker::transaction::TX_MASK;
use crate::remoting::codes::{request_code as rq, response_code as rs};
use crate::remoting::RemotingCommand;

pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
pub const ORIGIN_MESSAGE_ID: &str = "ORIGIN_MESSAGE_ID";
const DLQ_ORIGIN_TOPIC: &str = "DLQ_ORIGIN_TOPIC";
const DLQ_ORIGIN_MESSAGE_ID: &str = "DLQ_ORIGIN_MESSAGE_ID";
/// Requests from clients at or above this version carry their own
/// maxReconsumeTimes (Java's V3_4_9).
const VERSION_WITH_MAX_RECONSUME: i32 = 121;

/// Where a given-back message goes next.
#[derive(Debug, PartialEq, Eq)]
pub enum BackTarget {
    Retry { delay_level: i32 },
    DeadLetter,
}

/// Java's rule: out of budget, or a negative level, means the DLQ;
/// otherwise level `3 + reconsumeTimes` unless the client chose one.
pub fn back_target(reconsume_times: i32, max_reconsume: i32, requested_level: i32) -> BackTarget {
    if reconsume_times >= max_reconsume || requested_level < 0 {
        BackTarget::DeadLetter
    } else if requested_level == 0 {
        BackTarget::Retry {
            delay_level: 3 + reconsume_times,
        }
    } else {
        BackTarget::Retry {
            delay_level: requested_level,
        }
    }
}

impl Shard {
    pub async fn handle_send_back(
        self: &Rc<Self>,
        ctx: ReqCtx,
        cmd: &RemotingCommand,
    ) -> RemotingCommand {
        let header = (|| {
            Ok::<_, crate::remoting::HeaderError>((
                cmd.ext_i64("offset")?,
                cmd.ext_str("group")?,
                cmd.ext_i32_opt("delayLevel")?.unwrap_or(0),
                cmd.ext_i32_opt("maxReconsumeTimes")?,
            ))
        })();
        let (offset, group, level, max_header) = match header {
            Ok(h) => h,
            Err(e) => {
                return response(
                    cmd,
                    rs::SYSTEM_ERROR,
                    format!("bad CONSUMER_SEND_MSG_BACK header: {e}"),
                )
            }
        };
        tracing::debug!(
            offset,
            group,
            level,
            ?max_header,
            version = cmd.version,
            "send back"
        );
        let meta = self.meta();
        let Some(g) = meta.groups.get(group) else {
            return response(
                cmd,
                rs::SUBSCRIPTION_GROUP_NOT_EXIST,
                format!("subscription group [{group}] does not exist"),
            );
        };
        if g.retry_queue_nums == 0 {
            return response(cmd, rs::SUCCESS, None);
        }
        let rec = match self.store.read_message(offset).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                return response(
                    cmd,
                    rs::SYSTEM_ERROR,
                    format!("no message at commit-log offset {offset}"),
                )
            }
            Err(e) => return response(cmd, rs::SYSTEM_ERROR, e.to_string()),
        };
        let v = match RecordView::parse(&rec) {
            Ok(v) => v,
            Err(e) => return response(cmd, rs::SYSTEM_ERROR, e.to_string()),
        };
        let props = v.user_properties();
        let text = |name| properties::get_str(props, name);
        let origin_topic = match text(RETRY_TOPIC) {
            Some(t) => t.to_string(),
            None => String::from_utf8_lossy(v.topic()).into_owned(),
        };
        let origin_id = match text(ORIGIN_MESSAGE_ID)
            .or(cmd.ext_str_opt("originMsgId"))
            .or(text(properties::UNIQ_KEY))
        {
            Some(id) => id.to_string(),
            None => {
                let mut id = String::with_capacity(32);
                offset_msg_id(&mut id, &self.cfg().advertised, offset);
                id
            }
        };
        let max = match max_header {
            Some(m) if cmd.version >= VERSION_WITH_MAX_RECONSUME => m,
            _ => g.retry_max_times,
        };
        let (topic, delay) = match back_target(v.reconsume_times(), max, level) {
            BackTarget::DeadLetter => (format!("{DLQ_GROUP_TOPIC_PREFIX}{group}"), None),
            BackTarget::Retry { delay_level } => (
                format!("{RETRY_GROUP_TOPIC_PREFIX}{group}"),
                Some(delay_level),
            ),
        };
        let mut out = Vec::with_capacity(props.len() + 96);
        properties::copy_without(
            props,
            &mut out,
            &[
                DELAY,
                RETRY_TOPIC,
                ORIGIN_MESSAGE_ID,
                REAL_TOPIC,
                REAL_QID,
                properties::TIMER_OUT_MS,
            ],
        );
        properties::push(&mut out, RETRY_TOPIC, &origin_topic);
        properties::push(&mut out, ORIGIN_MESSAGE_ID, &origin_id);
        match delay {
            Some(level) => properties::push(&mut out, DELAY, &level.to_string()),
            None => {
                properties::push(&mut out, DLQ_ORIGIN_TOPIC, &origin_topic);
                properties::push(&mut out, DLQ_ORIGIN_MESSAGE_ID, &origin_id);
                tracing::info!(
                    group,
                    origin_topic,
                    origin_id,
                    reconsume = v.reconsume_times(),
                    "message moved to the dead-letter queue"
                );
            }
        }
        // The copy is an ordinary send from here on: topic creation, queue
        // choice, the owning shard, delay staging.
        let mut send = RemotingCommand::new_request(rq::SEND_MESSAGE);
        send.version = cmd.version;
        send.set_ext("producerGroup", group);
        send.set_ext("topic", topic.as_str());
        send.set_ext("defaultTopic", "TBW102");
        send.set_ext("defaultTopicQueueNums", 1);
        send.set_ext("queueId", if delay.is_some() { -1 } else { 0 });
        send.set_ext("sysFlag", v.sys_flag() & SYSFLAG_CLIENT_MASK & !TX_MASK);
        send.set_ext("bornTimestamp", v.born_timestamp_ms());
        send.set_ext("flag", v.flag());
        send.set_ext("properties", String::from_utf8_lossy(&out).into_owned());
        send.set_ext("reconsumeTimes", v.reconsume_times().saturating_add(1));
        send.body = Some(bytes::Bytes::copy_from_slice(v.body()));
        // A new send, not a forwarded one: hops counts the forwards of the
        // send itself (a forwarded send trusts that its topic exists).
        let ctx = ReqCtx { hops: 0, ..ctx };
        let Some(reply) = self.handle_send(ctx, send).await else {
            return response(
                cmd,
                rs::SYSTEM_ERROR,
                "the retry copy got no answer".to_string(),
            );
        };
        match reply.code {
            rs::SUCCESS
            | rs::FLUSH_DISK_TIMEOUT
            | rs::FLUSH_SLAVE_TIMEOUT
            | rs::SLAVE_NOT_AVAILABLE => response(cmd, rs::SUCCESS, None),
            code => response(cmd, code, reply.remark),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_schedule_follows_java() {
        assert_eq!(back_target(0, 16, 0), BackTarget::Retry { delay_level: 3 });
        assert_eq!(
            back_target(15, 16, 0),
            BackTarget::Retry { delay_level: 18 }
        );
        assert_eq!(back_target(16, 16, 0), BackTarget::DeadLetter);
        assert_eq!(back_target(0, 1, 0), BackTarget::Retry { delay_level: 3 });
        assert_eq!(back_target(1, 1, 0), BackTarget::DeadLetter);
        assert_eq!(back_target(2, 16, 5), BackTarget::Retry { delay_level: 5 });
        assert_eq!(back_target(0, 16, -1), BackTarget::DeadLetter);
        assert_eq!(back_target(0, 0, 0), BackTarget::DeadLetter);
    }
}
