//! Transactional messages of one shard: the half messages waiting in its
//! RMQ_SYS_TRANS_HALF_TOPIC queue 0, END_TRANSACTION (37) deciding them,
//! the decisions recorded in RMQ_SYS_TRANS_OP_HALF_TOPIC queue 0, and the
//! check-back loop that asks a live producer of the group about undecided
//! ones (CHECK_TRANSACTION_STATE, 39).
//!
//! A half message is staged on the shard that owns its real queue, so a
//! commit re-stores it without crossing shards; END_TRANSACTION is routed
//! here by the shard byte of its commit-log offset. Every decision (commit,
//! rollback, or giving up after `transactionCheckMax` checks) appends an op
//! record whose consume-queue code is the decided half offset, so after a
//! restart the undecided set is rebuilt from units alone: half units past
//! `halfLow` minus op units past `opLow`. Both marks are written after a
//! flush. Check counts live in memory and start again after a restart.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use rocketcore_storage::properties::{
    self, TRANS_HALF_TOPIC, TRANS_OP_TOPIC, TRAN_PREPARED_QUEUE_OFFSET,
};
use rocketcore_storage::{Durability, MessageDraft, RecordView, ShardStore};
use serde::{Deserialize, Serialize};

use crate::broker::config::FlushDiskType;
use crate::broker::handlers::offset_msg_id;
use crate::broker::mesh::ShardMsg;
use crate::broker::progress;
use crate::broker::schedule::{REAL_QID, REAL_TOPIC};
use crate::broker::shard::{now_ms, response, Shard};
use crate::remoting::codes::{request_code as rq, response_code as rs};
use crate::remoting::RemotingCommand;

pub const TRAN_MSG: &str = "TRAN_MSG";
pub const PGROUP: &str = "PGROUP";
pub const TRANSACTION_ID: &str = "__transactionId__";
const CHECK_IMMUNITY: &str = "CHECK_IMMUNITY_TIME_IN_SECONDS";

/// MessageSysFlag transaction types (bits 2–3).
pub const TX_MASK: i32 = 0xC;
pub const TX_PREPARED: i32 = 0x4;
pub const TX_COMMIT: i32 = 0x8;
pub const TX_ROLLBACK: i32 = 0xC;

/// Whether a send is a half message (spec §9.1).
pub fn is_half(props: &[u8], sys_flag: i32) -> bool {
    sys_flag & TX_MASK == TX_PREPARED
        || properties::get(props, TRAN_MSG).is_some_and(|v| v.eq_ignore_ascii_case(b"true"))
}

/// The properties of a staged half message.
pub fn half_properties(props: &[u8], topic: &str, queue_id: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(props.len() + topic.len() + 80);
    properties::copy_without(props, &mut out, &[REAL_TOPIC, REAL_QID, TRANSACTION_ID]);
    properties::push(&mut out, REAL_TOPIC, topic);
    properties::push(&mut out, REAL_QID, &queue_id.to_string());
    if let Some(uniq) = properties::get_str(props, properties::UNIQ_KEY) {
        properties::push(&mut out, TRANSACTION_ID, uniq);
    }
    out
}

#[derive(Debug, Clone, Copy)]
struct Half {
    phys: i64,
    /// First check not before this.
    check_after_ms: i64,
    checks: u32,
}

#[derive(Serialize, Deserialize, Default, Clone, PartialEq, Eq, Debug)]
#[serde(rename_all = "camelCase")]
struct ProgressFile {
    /// Every half offset below this is decided.
    half_low_offset: u64,
    /// Op units below this decide only half offsets below `half_low_offset`.
    op_low_offset: u64,
}

pub struct Transactions {
    undecided: RefCell<BTreeMap<u64, Half>>,
    /// Decided half offsets at or above the low mark → their op offset.
    decided: RefCell<BTreeMap<u64, u64>>,
    saved: RefCell<ProgressFile>,
    path: PathBuf,
    pub(crate) checks_sent: Cell<u64>,
}

impl Transactions {
    /// Takes `fresh`'s state (see `Scheduler::adopt`).
    pub fn adopt(&self, fresh: Transactions) {
        self.undecided.replace(fresh.undecided.into_inner());
        self.decided.replace(fresh.decided.into_inner());
        self.saved.replace(fresh.saved.into_inner());
    }

    /// Half messages neither committed nor rolled back yet.
    pub fn undecided(&self) -> u64 {
        self.undecided.borrow().len() as u64
    }
}

fn check_after(props: &[u8], stored_ms: i64, timeout_ms: u64) -> i64 {
    let immunity_ms =
        properties::get_number(props, CHECK_IMMUNITY).map_or(0, |s| s.saturating_mul(1000));
    stored_ms + immunity_ms.max(timeout_ms as i64)
}

impl Transactions {
    /// Loads the marks and rebuilds the undecided set from the queues.
    pub async fn open(
        store: &ShardStore,
        path: PathBuf,
        timeout_ms: u64,
    ) -> Result<Transactions, String> {
        let saved: ProgressFile = progress::load(&path)?;
        let err = |e: rocketcore_storage::StoreError| format!("rebuilding transactions: {e}");
        let mut decided = BTreeMap::new();
        progress::scan_units(store, TRANS_OP_TOPIC, 0, saved.op_low_offset, |at, u| {
            if !u.is_hole() && u.tags_code >= saved.half_low_offset as i64 {
                decided.insert(u.tags_code as u64, at);
            }
            ControlFlow::Continue(())
        })
        .await
        .map_err(err)?;
        let mut staged = Vec::new();
        progress::scan_units(
            store,
            TRANS_HALF_TOPIC,
            0,
            saved.half_low_offset,
            |at, u| {
                if !u.is_hole() && !decided.contains_key(&at) {
                    staged.push((at, u.phys));
                }
                ControlFlow::Continue(())
            },
        )
        .await
        .map_err(err)?;
        let mut undecided = BTreeMap::new();
        for (off, phys) in staged {
            let Some(rec) = store.read_message(phys).await.map_err(err)? else {
                continue;
            };
            let Ok(v) = RecordView::parse(&rec) else {
                continue;
            };
            undecided.insert(
                off,
                Half {
                    phys,
                    check_after_ms: check_after(v.properties(), v.store_timestamp_ms(), timeout_ms),
                    checks: 0,
                },
            );
        }
        if !undecided.is_empty() {
            tracing::info!(
                undecided = undecided.len(),
                "undecided half messages reloaded"
            );
        }
        Ok(Transactions {
            undecided: RefCell::new(undecided),
            decided: RefCell::new(decided),
            saved: RefCell::new(saved),
            path,
            checks_sent: Cell::new(0),
        })
    }

    /// Registers a half message just stored at `queue_offset`.
    pub fn staged(&self, queue_offset: u64, phys: i64, props: &[u8], timeout_ms: u64) {
        self.undecided.borrow_mut().insert(
            queue_offset,
            Half {
                phys,
                check_after_ms: check_after(props, now_ms(), timeout_ms),
                checks: 0,
            },
        );
    }

    /// Writes the low marks if they moved, after a flush makes the op
    /// records they skip durable.
    pub async fn persist(&self, store: &ShardStore) -> Result<(), String> {
        let half_low = self
            .undecided
            .borrow()
            .keys()
            .next()
            .copied()
            .unwrap_or_else(|| store.max_offset(TRANS_HALF_TOPIC, 0));
        let op_low = {
            let mut decided = self.decided.borrow_mut();
            *decided = decided.split_off(&half_low);
            decided
                .values()
                .min()
                .copied()
                .unwrap_or_else(|| store.max_offset(TRANS_OP_TOPIC, 0))
        };
        let file = ProgressFile {
            half_low_offset: half_low,
            op_low_offset: op_low,
        };
        if *self.saved.borrow() == file {
            return Ok(());
        }
        progress::save_after_flush(store, &self.path, &file).await?;
        *self.saved.borrow_mut() = file;
        Ok(())
    }

    /// Every `transactionCheckInterval`: check or give up on half messages
    /// older than their check time; persist the marks.
    pub async fn run(shard: Rc<Shard>) {
        let every = Duration::from_millis(shard.cfg().transaction_check_interval_ms);
        loop {
            glommio::timer::sleep(every).await;
            if shard.stopping.get() {
                return;
            }
            // Checks are the master's; a slave only mirrors the outcome.
            if shard.is_slave() {
                continue;
            }
            shard.check_half_messages().await;
            if let Err(e) = shard.tx.persist(&shard.store).await {
                tracing::warn!(shard = shard.id, "persisting transaction marks: {e}");
            }
        }
    }
}

/// END_TRANSACTION request header (spec §9.2).
struct EndHeader<'a> {
    group: &'a str,
    half_offset: i64,
    phys: i64,
    decision: i32,
    from_check: bool,
}

fn parse_end(cmd: &RemotingCommand) -> Result<EndHeader<'_>, String> {
    let e = |e: crate::remoting::HeaderError| e.to_string();
    Ok(EndHeader {
        group: cmd.ext_str("producerGroup").map_err(e)?,
        half_offset: cmd.ext_i64("tranStateTableOffset").map_err(e)?,
        phys: cmd.ext_i64("commitLogOffset").map_err(e)?,
        decision: cmd.ext_i32("commitOrRollback").map_err(e)?,
        from_check: cmd
            .ext_str_opt("fromTransactionCheck")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
    })
}

impl Shard {
    fn tx_durability(&self) -> Durability {
        match self.cfg().flush_disk_type {
            FlushDiskType::SyncFlush => Durability::Synced,
            FlushDiskType::AsyncFlush => Durability::Buffered,
        }
    }

    /// END_TRANSACTION (37). Answers only when the request wants an answer
    /// (clients send it oneway); UNKNOWN changes nothing.
    pub async fn handle_end_transaction(&self, cmd: &RemotingCommand) -> Option<RemotingCommand> {
        let reply = |code, remark: String| {
            if code != rs::SUCCESS {
                tracing::warn!(shard = self.id, "END_TRANSACTION refused: {remark}");
            }
            (!cmd.is_oneway()).then(|| response(cmd, code, (!remark.is_empty()).then_some(remark)))
        };
        let h = match parse_end(cmd) {
            Ok(h) => h,
            Err(e) => return reply(rs::SYSTEM_ERROR, format!("bad END_TRANSACTION header: {e}")),
        };
        let commit = match h.decision {
            TX_COMMIT => true,
            TX_ROLLBACK => false,
            0 => return None,
            other => {
                return reply(
                    rs::SYSTEM_ERROR,
                    format!(
                    "commitOrRollback {other} is none of 8 (commit), 12 (rollback), 0 (unknown)"
                ),
                )
            }
        };
        let off = h.half_offset.max(0) as u64;
        // Taken out before any await: a check answer racing the producer's
        // own decision must not commit twice.
        let half = self.tx.undecided.borrow_mut().remove(&off);
        let Some(half) = half.filter(|x| x.phys == h.phys) else {
            if let Some(x) = half {
                self.tx.undecided.borrow_mut().insert(off, x);
            }
            // Every staged half offset that is not undecided was decided
            // (or given up on); the unit tells whether this one was staged.
            let staged = match self.store.units(TRANS_HALF_TOPIC, 0, off, 1).await {
                Ok(u) => u.first().is_some_and(|u| u.phys == h.phys),
                Err(_) => false,
            };
            let why = if staged {
                "was already committed, rolled back or given up on"
            } else {
                "is not a half message on this broker"
            };
            return reply(
                rs::SYSTEM_ERROR,
                format!(
                    "transaction at half offset {} / commit-log offset {} {why}; nothing changed",
                    h.half_offset, h.phys
                ),
            );
        };
        match self.decide(off, half, commit, Some(h.group)).await {
            Ok(()) => {
                tracing::debug!(
                    shard = self.id,
                    off,
                    commit,
                    from_check = h.from_check,
                    "transaction decided"
                );
                reply(rs::SUCCESS, String::new())
            }
            Err((code, why)) => {
                self.tx.undecided.borrow_mut().insert(off, half);
                reply(code, why)
            }
        }
    }

    /// Commits (re-stores under the real topic) or rolls back a half
    /// message, then records the decision. `group`, when given, must be
    /// the half message's producer group.
    async fn decide(
        &self,
        off: u64,
        half: Half,
        commit: bool,
        group: Option<&str>,
    ) -> Result<(), (i32, String)> {
        let rec = match self.store.read_message(half.phys).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Err((
                    rs::SYSTEM_ERROR,
                    format!("half message at {} is no longer stored", half.phys),
                ))
            }
            Err(e) => return Err((rs::SYSTEM_ERROR, e.to_string())),
        };
        let v = RecordView::parse(&rec).map_err(|e| (rs::SYSTEM_ERROR, e.to_string()))?;
        let props = v.user_properties();
        if let Some(g) = group {
            let pgroup = properties::get(props, PGROUP).unwrap_or_default();
            if pgroup != g.as_bytes() {
                return Err((
                    rs::SYSTEM_ERROR,
                    format!(
                        "producer group {g} does not match the half message's {}",
                        String::from_utf8_lossy(pgroup)
                    ),
                ));
            }
        }
        let durability = self.tx_durability();
        if commit {
            let topic = properties::get_str(props, REAL_TOPIC);
            let qid = properties::get_number(props, REAL_QID).and_then(|q| i32::try_from(q).ok());
            let (Some(topic), Some(qid)) = (topic, qid) else {
                return Err((
                    rs::SYSTEM_ERROR,
                    "half message without REAL_TOPIC/REAL_QID".into(),
                ));
            };
            let mut out = Vec::with_capacity(props.len());
            properties::copy_without(props, &mut out, &[REAL_TOPIC, REAL_QID, TRAN_MSG]);
            let draft = MessageDraft {
                sys_flag: (v.sys_flag() & !TX_MASK) | TX_COMMIT,
                prepared_transaction_offset: half.phys,
                ..v.redraft(&out)
            };
            match self.store.append(topic, qid, &[draft], durability).await {
                Ok(_)
                | Err(rocketcore_storage::StoreError::FlushTimeout {
                    appended: Some(_), ..
                }) => {}
                Err(e) => return Err((crate::broker::store_error_code(&e), e.to_string())),
            }
            self.stats.put_msgs.set(self.stats.put_msgs.get() + 1);
            self.polls.notify(topic, qid);
        }
        self.record_decision(off, if commit { "commit" } else { "rollback" }, durability)
            .await
    }

    async fn record_decision(
        &self,
        off: u64,
        what: &str,
        durability: Durability,
    ) -> Result<(), (i32, String)> {
        let mut props = Vec::with_capacity(64);
        properties::push(&mut props, properties::TAGS, "d");
        properties::push(&mut props, TRAN_PREPARED_QUEUE_OFFSET, &off.to_string());
        properties::push(&mut props, "DECISION", what);
        let body = off.to_string();
        let draft = MessageDraft {
            flag: 0,
            body: body.as_bytes(),
            properties: &props,
            sys_flag: 0,
            born_timestamp_ms: now_ms(),
            born_host: self.cfg().advertised,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
        };
        let appended = match self
            .store
            .append(TRANS_OP_TOPIC, 0, &[draft], durability)
            .await
        {
            Ok(a) => a,
            Err(rocketcore_storage::StoreError::FlushTimeout {
                appended: Some(a), ..
            }) => a,
            Err(e) => return Err((crate::broker::store_error_code(&e), e.to_string())),
        };
        self.tx
            .decided
            .borrow_mut()
            .insert(off, appended.first_queue_offset as u64);
        Ok(())
    }

    /// One pass of the check-back loop.
    async fn check_half_messages(&self) {
        let now = now_ms();
        let due: Vec<(u64, Half)> = self
            .tx
            .undecided
            .borrow()
            .iter()
            .filter(|(_, h)| h.check_after_ms <= now)
            .map(|(o, h)| (*o, *h))
            .collect();
        for (off, mut half) in due {
            half.checks += 1;
            if half.checks > self.cfg().transaction_check_max {
                if self.tx.undecided.borrow_mut().remove(&off).is_none() {
                    continue; // decided meanwhile
                }
                tracing::warn!(
                    shard = self.id,
                    half_offset = off,
                    checks = self.cfg().transaction_check_max,
                    "half message still undecided after the last check; discarded"
                );
                if let Err((_, e)) = self
                    .record_decision(off, "discard", self.tx_durability())
                    .await
                {
                    tracing::warn!(shard = self.id, "recording a discarded half message: {e}");
                    self.tx.undecided.borrow_mut().insert(off, half);
                }
                continue;
            }
            match self.tx.undecided.borrow_mut().get_mut(&off) {
                Some(h) => h.checks = half.checks,
                None => continue,
            }
            if let Err(e) = self.send_check(off, half.phys).await {
                tracing::warn!(
                    shard = self.id,
                    half_offset = off,
                    "transaction check not sent: {e}"
                );
            }
        }
    }

    /// Builds CHECK_TRANSACTION_STATE for one half message and hands it to
    /// shard 0, which knows the producers and their connections.
    async fn send_check(&self, off: u64, phys: i64) -> Result<(), String> {
        let rec = self
            .store
            .read_message(phys)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("half message no longer stored")?;
        let v = RecordView::parse(&rec).map_err(|e| e.to_string())?;
        let props = v.user_properties();
        let text = |name| properties::get_str(props, name);
        let group = text(PGROUP).ok_or("half message without PGROUP")?;
        let topic = text(REAL_TOPIC).ok_or("half message without REAL_TOPIC")?;
        let qid = text(REAL_QID)
            .and_then(|q| q.parse::<i32>().ok())
            .unwrap_or(0);
        let uniq = text(properties::UNIQ_KEY).unwrap_or("");
        let tx_id = text(TRANSACTION_ID).unwrap_or(uniq);
        let mut cmd = RemotingCommand::new_request(rq::CHECK_TRANSACTION_STATE);
        let mut offset_id = String::with_capacity(32);
        offset_msg_id(&mut offset_id, &self.cfg().advertised, phys);
        cmd.set_ext("topic", topic);
        cmd.set_ext("tranStateTableOffset", off as i64);
        cmd.set_ext("commitLogOffset", phys);
        cmd.set_ext("msgId", uniq);
        cmd.set_ext("transactionId", tx_id);
        cmd.set_ext("offsetMsgId", offset_id);
        cmd.set_ext("bname", self.cfg().broker_name.as_str());
        cmd.body = Some(v.rewrite_for(topic, qid).freeze());
        self.tx.checks_sent.set(self.tx.checks_sent.get() + 1);
        let group = group.to_string();
        if self.id == 0 {
            self.check_with_producer(&group, cmd);
        } else {
            self.send_to_shard(0, ShardMsg::CheckProducer { group, cmd });
        }
        Ok(())
    }

    /// Shard 0: sends a transaction check to one live producer of `group`,
    /// spreading checks over the group's producers.
    pub fn check_with_producer(&self, group: &str, cmd: RemotingCommand) {
        let Some(owner) = &self.owner else { return };
        let target = {
            let owner = owner.borrow();
            let Some(members) = owner.producers.get(group).filter(|m| !m.is_empty()) else {
                tracing::debug!(group, "no live producer to check a transaction with");
                return;
            };
            let n = self.tx.checks_sent.get() as usize % members.len();
            members.values().nth(n).map(|m| (m.conn_shard, m.conn_id))
        };
        if let Some((conn_shard, conn_id)) = target {
            self.send_oneway_to(conn_shard, conn_id, cmd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_messages_are_recognised_by_flag_or_property() {
        assert!(is_half(b"", TX_PREPARED));
        assert!(is_half(b"TRAN_MSG\x01true\x02", 0));
        assert!(is_half(b"TRAN_MSG\x01TRUE\x02", 0));
        assert!(!is_half(b"TRAN_MSG\x01false\x02", 0));
        assert!(!is_half(b"", TX_COMMIT));
        assert!(!is_half(b"", 0x1));
    }

    #[test]
    fn half_properties_carry_the_real_queue_and_transaction_id() {
        let p = half_properties(
            b"UNIQ_KEY\x01ABC\x02PGROUP\x01pg\x02REAL_TOPIC\x01stale\x02",
            "Orders",
            2,
        );
        assert_eq!(properties::get(&p, REAL_TOPIC), Some(&b"Orders"[..]));
        assert_eq!(properties::get(&p, REAL_QID), Some(&b"2"[..]));
        assert_eq!(properties::get(&p, TRANSACTION_ID), Some(&b"ABC"[..]));
        assert_eq!(properties::get(&p, PGROUP), Some(&b"pg"[..]));
        assert_eq!(properties::iter(&p).count(), 5);
    }

    #[test]
    fn the_first_check_waits_for_the_longer_of_timeout_and_immunity() {
        assert_eq!(check_after(b"", 1_000, 6_000), 7_000);
        assert_eq!(
            check_after(b"CHECK_IMMUNITY_TIME_IN_SECONDS\x0160\x02", 1_000, 6_000),
            61_000
        );
        assert_eq!(
            check_after(b"CHECK_IMMUNITY_TIME_IN_SECONDS\x012\x02", 1_000, 6_000),
            7_000
        );
        assert_eq!(
            check_after(b"CHECK_IMMUNITY_TIME_IN_SECONDS\x01x\x02", 1_000, 6_000),
            7_000
        );
    }
}
