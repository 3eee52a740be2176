//! SEND_MESSAGE (10), SEND_MESSAGE_V2 (310), SEND_BATCH_MESSAGE (320):
//! validate, pick the queue, auto-create the topic (on shard 0), move the
//! request to the queue's owner, append there, answer with the offsets.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use bytes::Bytes;
use rocketcore_storage::record::{self, MessageDraft};
use rocketcore_storage::{properties, Durability, StoreError};

use crate::broker::ha::{BrokerRole, SlaveAck};

use crate::broker::config::FlushDiskType;
use crate::broker::mesh::ReqCtx;
use crate::broker::meta::{
    DLQ_GROUP_TOPIC_PREFIX, NOT_ALLOWED_SEND_TOPICS, RETRY_GROUP_TOPIC_PREFIX,
};
use crate::broker::schedule::{self, Staging};
use crate::broker::shard::{response, Shard};
use crate::broker::transaction;
use crate::protocol::{perm, TopicConfig};
use crate::remoting::codes::{request_code as rq, response_code as rs};
use crate::remoting::{HeaderError, RemotingCommand};

/// How long a forwarded send waits for its topic's metadata broadcast.
const META_WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(5);
const META_WAIT_STEPS: usize = 200;

/// Upper bound on the entries of a batch body, for reserving UNIQ_KEY
/// sequence numbers before parsing (every entry is at least 22 bytes).
fn parse_batch_len_hint(body: &Bytes) -> u64 {
    (body.len() / 22).max(1) as u64
}

/// Region Java brokers report by default; Java clients read it (spec §13.9).
const DEFAULT_REGION: &str = "DefaultRegion";

/// The send request header, read with V1 or V2 keys by request code.
#[derive(Debug)]
pub struct SendHeader<'a> {
    pub topic: &'a str,
    pub default_topic: &'a str,
    pub default_topic_queue_nums: i32,
    pub queue_id: i32,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub flag: i32,
    pub properties: &'a str,
    pub reconsume_times: i32,
    /// The body is a batch (§6.6). Always for 320; the C++ client sends
    /// batches as code 10 with `batch=1`.
    pub batch: bool,
    qid_key: &'static str,
}

impl<'a> SendHeader<'a> {
    /// Borrows every string from the request: parsing allocates nothing.
    pub fn parse(cmd: &'a RemotingCommand) -> Result<SendHeader<'a>, HeaderError> {
        let v2 = cmd.code != rq::SEND_MESSAGE;
        let k = |v1: &'static str, v2k: &'static str| if v2 { v2k } else { v1 };
        // Mandatory although unused until transactions need it.
        cmd.ext_str(k("producerGroup", "a"))?;
        Ok(SendHeader {
            topic: cmd.ext_str(k("topic", "b"))?,
            default_topic: cmd.ext_str_opt(k("defaultTopic", "c")).unwrap_or("TBW102"),
            default_topic_queue_nums: cmd
                .ext_i32_opt(k("defaultTopicQueueNums", "d"))?
                .unwrap_or(4),
            queue_id: cmd.ext_i32(k("queueId", "e"))?,
            sys_flag: cmd.ext_i32_opt(k("sysFlag", "f"))?.unwrap_or(0),
            born_timestamp: cmd.ext_i64_opt(k("bornTimestamp", "g"))?.unwrap_or(0),
            flag: cmd.ext_i32_opt(k("flag", "h"))?.unwrap_or(0),
            properties: cmd.ext_str_opt(k("properties", "i")).unwrap_or(""),
            reconsume_times: cmd.ext_i32_opt(k("reconsumeTimes", "j"))?.unwrap_or(0),
            batch: cmd.code == rq::SEND_BATCH_MESSAGE
                || cmd
                    .ext_str_opt(k("batch", "m"))
                    .is_some_and(|b| b == "1" || b.eq_ignore_ascii_case("true")),
            qid_key: k("queueId", "e"),
        })
    }
}

/// offsetMsgId (spec §6.7): hex of store IP, port and physical offset.
pub fn offset_msg_id(out: &mut String, store: &SocketAddr, phys: i64) {
    let (v4, v6);
    let octets: &[u8] = match store.ip() {
        IpAddr::V4(ip) => {
            v4 = ip.octets();
            &v4
        }
        IpAddr::V6(ip) => {
            v6 = ip.octets();
            &v6
        }
    };
    for b in octets {
        let _ = write!(out, "{b:02X}");
    }
    let _ = write!(out, "{:08X}{:016X}", store.port() as i32, phys);
}

/// A broker-made UNIQ_KEY for messages that arrive without one: unique per
/// broker process and shard, 32 hex characters like a client's.
fn generate_uniq_key(shard: usize, seq: u64) -> String {
    let now = crate::broker::shard::now_ms() as u64;
    format!(
        "{:08X}{:04X}{:04X}{:016X}",
        std::process::id(),
        shard as u16,
        (now >> 32) as u16,
        (now << 24) ^ seq
    )
}

fn with_uniq_key(props: &[u8], shard: usize, seq: u64) -> Option<Vec<u8>> {
    match properties::get(props, properties::UNIQ_KEY) {
        Some(v) if !v.is_empty() => None,
        _ => {
            let mut out = props.to_vec();
            properties::push(
                &mut out,
                properties::UNIQ_KEY,
                &generate_uniq_key(shard, seq),
            );
            Some(out)
        }
    }
}

/// Why a batch entry cannot be stored as sent: delay, timer and
/// transactional messages go one at a time, as in Java.
fn batch_refusal(props: &[u8], sys_flag: i32) -> Option<&'static str> {
    if transaction::is_half(props, sys_flag) {
        return Some("transactional messages cannot be sent in a batch");
    }
    schedule::Timing::of(props)
        .asks_to_wait()
        .then_some("delay-level and timer messages cannot be sent in a batch")
}

/// One entry of a batch body (spec §6.6), borrowed from the request body.
pub struct BatchEntry {
    pub flag: i32,
    pub body: Bytes,
    pub properties: Bytes,
}

/// A batch body as the entries are stored. librocketmq (the C++ client)
/// zlib-compresses a whole batch body over its compression threshold and
/// marks the request with the COMPRESSED sysFlag; the entries inside are
/// plain, so they are cut from the inflated body and stored without the
/// flag. The inflated size is bounded by `limit` (maxMessageSize) before
/// anything larger is allocated.
pub fn batch_body(body: Bytes, sys_flag: i32, limit: usize) -> Result<(Bytes, i32), String> {
    if sys_flag & record::SYSFLAG_COMPRESSED == 0 {
        return Ok((body, sys_flag));
    }
    use std::io::Read as _;
    let mut out = Vec::with_capacity((body.len() * 4).min(limit));
    flate2::read::ZlibDecoder::new(&body[..])
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("compressed batch body does not inflate: {e}"))?;
    if out.len() > limit {
        return Err(format!(
            "compressed batch body inflates past maxMessageSize {limit}"
        ));
    }
    Ok((Bytes::from(out), sys_flag & !record::SYSFLAG_COMPRESSED))
}

/// Cuts a batch body into entries without copying. Every length is checked.
pub fn parse_batch(body: &Bytes) -> Result<Vec<BatchEntry>, String> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let b = &body[..];
    let rd_i32 = |at: usize| -> Option<i32> {
        Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    while at < b.len() {
        let _total = rd_i32(at).ok_or("truncated batch entry header")?;
        let flag = rd_i32(at + 12).ok_or("truncated batch entry header")?;
        let body_len = rd_i32(at + 16).ok_or("truncated batch entry header")?;
        if body_len < 0 {
            return Err(format!(
                "batch entry {} has a negative body length",
                out.len()
            ));
        }
        let body_at = at + 20;
        let props_len_at = body_at + body_len as usize;
        let props_len = b
            .get(props_len_at..props_len_at + 2)
            .map(|x| i16::from_be_bytes([x[0], x[1]]))
            .ok_or_else(|| format!("batch entry {} body runs past the request", out.len()))?;
        if props_len < 0 {
            return Err(format!(
                "batch entry {} has a negative properties length",
                out.len()
            ));
        }
        let props_at = props_len_at + 2;
        let end = props_at + props_len as usize;
        if end > b.len() {
            return Err(format!(
                "batch entry {} properties run past the request",
                out.len()
            ));
        }
        out.push(BatchEntry {
            flag,
            body: body.slice(body_at..props_len_at),
            properties: body.slice(props_at..end),
        });
        at = end;
    }
    if out.is_empty() {
        return Err("empty batch".into());
    }
    Ok(out)
}

impl Shard {
    pub async fn handle_send(
        self: &Rc<Self>,
        ctx: ReqCtx,
        mut cmd: RemotingCommand,
    ) -> Option<RemotingCommand> {
        let h = match SendHeader::parse(&cmd) {
            Ok(h) => h,
            Err(e) => {
                return Some(response(
                    &cmd,
                    rs::SYSTEM_ERROR,
                    format!("bad send header: {e}"),
                ))
            }
        };
        if !rocketcore_storage::valid_topic(h.topic) {
            return Some(response(
                &cmd,
                rs::INVALID_PARAMETER,
                format!("the specified topic is invalid: {:?}", h.topic),
            ));
        }
        if NOT_ALLOWED_SEND_TOPICS.contains(&h.topic) {
            return Some(response(
                &cmd,
                rs::NO_PERMISSION,
                format!("sending to topic {} is forbidden", h.topic),
            ));
        }
        let meta = self.meta();
        // Only the queue counts are needed: no per-send copy of the config.
        let (write_queues, read_queues) = match meta.topic(h.topic) {
            Some(t) => (t.write_queue_nums, t.read_queue_nums),
            // Sent here by another shard: the topic exists but its metadata
            // is still on the way; wait for it rather than bounce back.
            None if self.id != 0 && ctx.hops > 0 => match self.await_topic(h.topic).await {
                Some(t) => (t.write_queue_nums, t.read_queue_nums),
                None => {
                    return Some(response(
                        &cmd,
                        rs::SYSTEM_BUSY,
                        format!(
                            "[PC_SYNCHRONIZED] metadata of topic {} has not reached shard {} yet",
                            h.topic, self.id
                        ),
                    ))
                }
            },
            None if self.id != 0 => return self.forward(0, ctx, cmd, false).await,
            None => match self.auto_create_topic(&h) {
                // Durable before the first message to it is acknowledged.
                Ok((t, written)) => match written.done().await {
                    Ok(()) => (t.write_queue_nums, t.read_queue_nums),
                    Err(e) => return Some(response(&cmd, rs::SYSTEM_ERROR, e)),
                },
                Err(reply) => return Some(response(&cmd, reply.0, reply.1)),
            },
        };
        let queues = write_queues.max(read_queues) as i32;
        let qid = if h.queue_id < 0 {
            if write_queues == 0 {
                return Some(response(
                    &cmd,
                    rs::NO_PERMISSION,
                    format!("topic {} has no write queues", h.topic),
                ));
            }
            // Round robin over this shard's sends: the clock's millisecond
            // put a whole burst on one queue.
            let n = self.next_queue.get();
            self.next_queue.set(n.wrapping_add(1));
            (n % write_queues as u64) as i32
        } else {
            h.queue_id
        };
        if qid >= queues {
            return Some(response(
                &cmd,
                rs::INVALID_PARAMETER,
                format!(
                    "queueId {qid} is not below the {queues} queues of topic {}",
                    h.topic
                ),
            ));
        }
        let owner = self.owner_of(h.topic, qid);
        if owner != self.id {
            cmd.set_ext(h.qid_key, qid);
            return self.forward(owner, ctx, cmd, false).await;
        }
        Some(self.append_here(ctx, &cmd, &h, qid).await)
    }

    /// Waits (bounded) for a topic's metadata to arrive by broadcast.
    async fn await_topic(&self, topic: &str) -> Option<TopicConfig> {
        for _ in 0..META_WAIT_STEPS {
            if let Some(t) = self.meta().topic(topic) {
                return Some(t.clone());
            }
            glommio::timer::sleep(META_WAIT_STEP).await;
        }
        None
    }

    /// Shard 0: creates `h.topic` from its default topic, or explains why not.
    fn auto_create_topic(
        &self,
        h: &SendHeader<'_>,
    ) -> Result<(TopicConfig, crate::broker::file_writer::Written), (i32, String)> {
        let Some(owner) = &self.owner else {
            return Err((rs::SYSTEM_ERROR, "topic creation runs on shard 0".into()));
        };
        let mut owner = owner.borrow_mut();
        let not_exist = || {
            (
                rs::TOPIC_NOT_EXIST,
                format!("topic[{}] not exist, apply first please!", h.topic),
            )
        };
        let cfg = if h.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
            TopicConfig::new(h.topic, 1)
        } else if h.topic.starts_with(DLQ_GROUP_TOPIC_PREFIX) {
            // Readable, so an operator can inspect and re-send what died.
            let mut t = TopicConfig::new(h.topic, 1);
            t.perm = perm::PERM_READ | perm::PERM_WRITE;
            t
        } else {
            if !self.cfg().auto_create_topic_enable {
                return Err(not_exist());
            }
            let Some(template) = owner.snap().topic(h.default_topic) else {
                return Err(not_exist());
            };
            if template.perm & perm::PERM_INHERIT == 0 {
                return Err(not_exist());
            }
            let n =
                (h.default_topic_queue_nums.max(1) as u32).min(template.write_queue_nums.max(1));
            TopicConfig::new(h.topic, n)
        };
        let written = owner
            .put_topic(cfg.clone())
            .map_err(|e| (rs::SYSTEM_ERROR, e))?;
        drop(owner);
        tracing::info!(topic = %cfg.topic_name, queues = cfg.write_queue_nums, "auto-created topic");
        self.publish_meta();
        self.register_now.set(true);
        Ok((cfg, written))
    }

    async fn append_here(
        &self,
        ctx: ReqCtx,
        cmd: &RemotingCommand,
        h: &SendHeader<'_>,
        qid: i32,
    ) -> RemotingCommand {
        let mut body = cmd.body.clone().unwrap_or_default();
        let mut sys_flag = h.sys_flag;
        if h.batch {
            match batch_body(body, sys_flag, self.cfg().max_message_size) {
                Ok((b, f)) => (body, sys_flag) = (b, f),
                Err(e) => {
                    return response(cmd, rs::MESSAGE_ILLEGAL, format!("bad batch body: {e}"))
                }
            }
        }
        let props = h.properties.as_bytes();
        // Reserved before the append awaits, so concurrent sends never
        // share a broker-made UNIQ_KEY.
        let seq = self.uniq_seq.get();
        let reserve = if h.batch {
            parse_batch_len_hint(&body)
        } else {
            1
        };
        self.uniq_seq.set(seq + reserve);
        let durable = match self.cfg().flush_disk_type {
            FlushDiskType::SyncFlush if properties::get(props, "WAIT") != Some(b"false") => {
                Durability::Synced
            }
            _ => Durability::Buffered,
        };
        if h.batch {
            return self
                .append_batch(ctx, cmd, h, qid, &body, sys_flag, seq, durable)
                .await;
        }
        let owned = with_uniq_key(props, self.id, seq);
        let props = owned.as_deref().unwrap_or(props);
        let half = transaction::is_half(props, h.sys_flag);
        if half && self.cfg().reject_transaction_message {
            return response(
                cmd,
                rs::NO_PERMISSION,
                "this broker refuses transactional messages (rejectTransactionMessage=true)"
                    .to_string(),
            );
        }
        let staging = if half {
            Staging::Direct
        } else {
            match schedule::classify(
                props,
                crate::broker::shard::now_ms(),
                self.sched.levels_ms(),
                (self.cfg().timer_max_delay_sec as i64).saturating_mul(1000),
            ) {
                Ok(s) => s,
                Err(why) => return response(cmd, rs::MESSAGE_ILLEGAL, why),
            }
        };
        // Half, delayed and timer messages are stored under their staging
        // queue on this shard, with their real queue in the properties.
        let (topic, stage_qid, stored_props, sys_flag) = if half {
            (
                properties::TRANS_HALF_TOPIC,
                0,
                Some(transaction::half_properties(props, h.topic, qid)),
                h.sys_flag & !transaction::TX_MASK,
            )
        } else if let Some((t, q, due)) = schedule::staging_queue(staging) {
            (
                t,
                q,
                Some(schedule::staged_properties(props, h.topic, qid, due)),
                h.sys_flag,
            )
        } else {
            (h.topic, qid, None, h.sys_flag)
        };
        let d = MessageDraft {
            flag: h.flag,
            body: &body[..],
            properties: stored_props.as_deref().unwrap_or(props),
            sys_flag,
            born_timestamp_ms: h.born_timestamp,
            born_host: ctx.peer,
            reconsume_times: h.reconsume_times,
            prepared_transaction_offset: 0,
        };
        let ticket = match staging {
            Staging::Timer { due_ms } => Some(self.sched.timer_staging(due_ms)),
            _ => None,
        };
        let result = self.store.append(topic, stage_qid, &[d], durable).await;
        let (code, appended) = match result {
            Ok(a) => (rs::SUCCESS, a),
            Err(StoreError::FlushTimeout {
                appended: Some(a), ..
            }) => (rs::FLUSH_DISK_TIMEOUT, a),
            Err(e) => {
                if let Some(t) = ticket {
                    self.sched.timer_abandoned(t);
                }
                return response(cmd, store_error_code(&e), e.to_string());
            }
        };
        let code = self.replica_code(code, appended.end_phys, props).await;
        self.stats.put_msgs.set(self.stats.put_msgs.get() + 1);
        self.metrics.stored(h.topic, 1, body.len() as u64);
        if let Some(t) = ticket {
            self.sched.timer_staged(t, appended.first_phys);
        }
        if half {
            self.tx.staged(
                appended.first_queue_offset as u64,
                appended.first_phys,
                props,
                self.cfg().transaction_timeout_ms,
            );
        } else if staging == Staging::Direct {
            self.polls.notify(h.topic, qid);
        }
        let mut msg_id = String::with_capacity(32);
        offset_msg_id(&mut msg_id, &self.cfg().advertised, appended.first_phys);
        let mut reply = self.send_reply(cmd, code, msg_id, qid, appended.first_queue_offset);
        if half {
            if let Some(uniq) = properties::get(props, properties::UNIQ_KEY) {
                reply.set_ext("transactionId", String::from_utf8_lossy(uniq).into_owned());
            }
        }
        reply
    }

    #[allow(clippy::too_many_arguments)]
    async fn append_batch(
        &self,
        ctx: ReqCtx,
        cmd: &RemotingCommand,
        h: &SendHeader<'_>,
        qid: i32,
        body: &Bytes,
        sys_flag: i32,
        seq: u64,
        durable: Durability,
    ) -> RemotingCommand {
        let entries = match parse_batch(body) {
            Ok(e) => e,
            Err(e) => return response(cmd, rs::MESSAGE_ILLEGAL, format!("bad batch body: {e}")),
        };
        let owned: Vec<Option<Vec<u8>>> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| with_uniq_key(&e.properties, self.id, seq + i as u64))
            .collect();
        for (e, o) in entries.iter().zip(&owned) {
            if let Some(why) = batch_refusal(o.as_deref().unwrap_or(&e.properties), sys_flag) {
                return response(cmd, rs::MESSAGE_ILLEGAL, why.to_string());
            }
        }
        let drafts: Vec<MessageDraft<'_>> = entries
            .iter()
            .zip(&owned)
            .map(|(e, o)| MessageDraft {
                flag: e.flag,
                body: &e.body[..],
                properties: o.as_deref().unwrap_or(&e.properties[..]),
                sys_flag,
                born_timestamp_ms: h.born_timestamp,
                born_host: ctx.peer,
                reconsume_times: h.reconsume_times,
                prepared_transaction_offset: 0,
            })
            .collect();
        let fmt = self.store.config().record_format();
        let (code, appended) = match self.store.append(h.topic, qid, &drafts, durable).await {
            Ok(a) => (rs::SUCCESS, a),
            Err(StoreError::FlushTimeout {
                appended: Some(a), ..
            }) => (rs::FLUSH_DISK_TIMEOUT, a),
            Err(e) => return response(cmd, store_error_code(&e), e.to_string()),
        };
        let code = self
            .replica_code(code, appended.end_phys, h.properties.as_bytes())
            .await;
        self.stats
            .put_msgs
            .set(self.stats.put_msgs.get() + appended.count as u64);
        let bytes = drafts.iter().map(|d| d.body.len() as u64).sum();
        self.metrics.stored(h.topic, appended.count as u64, bytes);
        self.polls.notify(h.topic, qid);
        let mut msg_id = String::with_capacity(33 * appended.count);
        let mut phys = appended.first_phys;
        for (i, d) in drafts.iter().enumerate() {
            if i > 0 {
                msg_id.push(',');
            }
            offset_msg_id(&mut msg_id, &self.cfg().advertised, phys);
            phys += record::encoded_len(h.topic, d, &fmt) as i64;
        }
        self.send_reply(cmd, code, msg_id, qid, appended.first_queue_offset)
    }

    /// SYNC_MASTER: the send is answered once a slave has it too, or with
    /// SLAVE_NOT_AVAILABLE / FLUSH_SLAVE_TIMEOUT (the message is stored on
    /// the master either way, and the full send result goes back, as Java
    /// does). A replica status overrides the flush status.
    async fn replica_code(&self, code: i32, end_phys: i64, props: &[u8]) -> i32 {
        if self.cfg().ha.role != BrokerRole::SyncMaster
            || properties::get(props, "WAIT") == Some(b"false")
        {
            return code;
        }
        let ha = self.cfg().ha;
        let (_, end) = rocketcore_storage::from_global(end_phys);
        match self.repl.wait_slave(end, &ha).await {
            SlaveAck::Acked => code,
            SlaveAck::NotAvailable => rs::SLAVE_NOT_AVAILABLE,
            SlaveAck::TimedOut => rs::FLUSH_SLAVE_TIMEOUT,
        }
    }

    fn send_reply(
        &self,
        cmd: &RemotingCommand,
        code: i32,
        msg_id: String,
        qid: i32,
        queue_offset: i64,
    ) -> RemotingCommand {
        let mut reply = response(cmd, code, None);
        reply.set_ext("msgId", msg_id);
        reply.set_ext("queueId", qid);
        reply.set_ext("queueOffset", queue_offset);
        reply.set_ext("MSG_REGION", DEFAULT_REGION);
        reply.set_ext("TRACE_ON", "true");
        reply
    }
}

/// The response code RocketMQ gives for a store failure (spec §2.3).
pub fn store_error_code(e: &StoreError) -> i32 {
    match e {
        StoreError::IllegalMessage(_) => rs::MESSAGE_ILLEGAL,
        StoreError::DiskFull(_) | StoreError::Poisoned(_) | StoreError::ShuttingDown => {
            rs::SERVICE_NOT_AVAILABLE
        }
        StoreError::Busy { .. } => rs::SYSTEM_BUSY,
        StoreError::FlushTimeout { .. } => rs::FLUSH_DISK_TIMEOUT,
        StoreError::Io { .. } | StoreError::Corruption { .. } => rs::SYSTEM_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_msg_id_matches_the_spec_layout() {
        let mut s = String::new();
        offset_msg_id(&mut s, &"192.168.1.10:10911".parse().unwrap(), 0x1234);
        assert_eq!(s, "C0A8010A00002A9F0000000000001234");
        assert_eq!(s.len(), 32);
    }

    #[test]
    fn compressed_batch_bodies_are_inflated_within_the_limit() {
        use std::io::Write as _;
        let mut plain = Vec::new();
        for i in 0..64 {
            let body = format!("small message {i}");
            plain.extend_from_slice(&((22 + body.len()) as i32).to_be_bytes());
            plain.extend_from_slice(&[0; 8]);
            plain.extend_from_slice(&0i32.to_be_bytes());
            plain.extend_from_slice(&(body.len() as i32).to_be_bytes());
            plain.extend_from_slice(body.as_bytes());
            plain.extend_from_slice(&0i16.to_be_bytes());
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(5));
        z.write_all(&plain).unwrap();
        let packed = Bytes::from(z.finish().unwrap());
        // As sent: parsing the compressed bytes as entries fails.
        assert!(parse_batch(&packed).is_err());

        let flags = record::SYSFLAG_COMPRESSED | 0x4;
        let (body, flag) = batch_body(packed.clone(), flags, 1 << 20).unwrap();
        assert_eq!(&body[..], &plain[..]);
        assert_eq!(flag, 0x4, "entries are stored uncompressed");
        assert_eq!(parse_batch(&body).unwrap().len(), 64);

        let (same, flag) = batch_body(Bytes::from(plain.clone()), 0, 10).unwrap();
        assert_eq!(
            (same.len(), flag),
            (plain.len(), 0),
            "uncompressed: untouched"
        );

        let e = batch_body(packed.clone(), flags, plain.len() - 1).unwrap_err();
        assert!(e.contains("maxMessageSize"), "{e}");
        assert!(batch_body(Bytes::from_static(b"not zlib"), flags, 1 << 20).is_err());
        assert!(batch_body(packed.slice(..packed.len() / 2), flags, 1 << 20).is_err());
    }

    #[test]
    fn batch_bodies_are_cut_without_copying_and_checked() {
        let mut b = Vec::new();
        for (body, props) in [(&b"one"[..], &b"KEYS\x01a\x02"[..]), (b"second", b"")] {
            b.extend_from_slice(&((22 + body.len() + props.len()) as i32).to_be_bytes());
            b.extend_from_slice(&0i32.to_be_bytes());
            b.extend_from_slice(&0i32.to_be_bytes());
            b.extend_from_slice(&7i32.to_be_bytes());
            b.extend_from_slice(&(body.len() as i32).to_be_bytes());
            b.extend_from_slice(body);
            b.extend_from_slice(&(props.len() as i16).to_be_bytes());
            b.extend_from_slice(props);
        }
        let bytes = Bytes::from(b.clone());
        let e = parse_batch(&bytes).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(&e[0].body[..], b"one");
        assert_eq!(&e[0].properties[..], b"KEYS\x01a\x02");
        assert_eq!(&e[1].body[..], b"second");
        assert_eq!(e[1].flag, 7);
        for cut in 1..b.len() {
            if cut == 22 + b"one".len() + b"KEYS\x01a\x02".len() {
                continue; // exactly the first entry: valid
            }
            assert!(
                parse_batch(&Bytes::from(b[..cut].to_vec())).is_err(),
                "cut at {cut}"
            );
        }
        assert!(parse_batch(&Bytes::new()).is_err());
    }

    #[test]
    fn batches_refuse_what_must_go_one_at_a_time() {
        assert!(batch_refusal(b"DELAY\x013\x02", 0)
            .unwrap()
            .contains("delay"));
        assert!(batch_refusal(b"DELAY\x010\x02", 0).is_none());
        assert!(batch_refusal(b"TIMER_DELAY_SEC\x013\x02", 0).is_some());
        assert!(batch_refusal(b"TRAN_MSG\x01true\x02", 0)
            .unwrap()
            .contains("transaction"));
        assert!(batch_refusal(b"", 0x4).is_some());
        assert!(batch_refusal(b"TAGS\x01a\x02", 0).is_none());
    }
}
