//! Delay-level and timer messages of one shard: where a send waits
//! (`classify`, `staged_properties`), the delivery loop that re-stores due
//! messages under their real topic, and the persisted progress that makes
//! delivery survive a restart.
//!
//! A delayed message is staged on the shard that owns its real queue, so
//! delivery never crosses shards. Each shard's store has its own
//! SCHEDULE_TOPIC_XXXX queues (level − 1) and `rmq_sys_wheel_timer` queue 0;
//! the consume-queue code of a staged unit is its due time (storage
//! `cq_tags_code`), so scans and restarts read units, not records.
//!
//! Delay levels: every message of a level has the same delay, so its queue is
//! in due order and progress is one offset per level.
//!
//! Timers: any due time, so the queue is not in due order. A hashed timing
//! wheel (`Wheel`) holds (due, offset) of every pending timer message.
//! Progress is a time watermark `done`: every timer message due at or before
//! it has been re-stored and flushed. A send whose due time is not after
//! now is delivered at once, never staged, and `done` never passes now, so a
//! staged message is always due after `done`: after a restart the wheel is
//! rebuilt from the units past `low` (below which all are due by `done`)
//! with a due time after `done`. Both marks are written only after a flush
//! covers the deliveries they count, so a crash can repeat a delivery (at
//! least once) but never lose one.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use rocketcore_storage::properties::{self, SCHEDULE_TOPIC, TIMER_OUT_MS, TIMER_TOPIC};
use rocketcore_storage::{Durability, RecordView, ShardStore};
use serde::{Deserialize, Serialize};

use crate::broker::progress;
use crate::broker::shard::{now_ms, Shard};

/// Wheel resolution and delivery-loop period: the most a message is late
/// under light load. Ticks fall on wall-clock multiples of it, so a message
/// is taken at the first tick at or after its due time, not up to a tick
/// later still.
pub const TICK_MS: i64 = 50;
/// Wheel slots: one turn covers 409.6 s; later entries wait whole turns in
/// their slot (a 3-day timer is looked at ~630 times).
const WHEEL_SLOTS: usize = 8192;
/// Deliveries per level per tick, so one busy level cannot starve the rest.
const LEVEL_BATCH: usize = 512;
/// Progress is written at most this often (after a store flush).
const PERSIST_EVERY_MS: i64 = 1_000;

pub const DELAY: &str = "DELAY";
pub const REAL_TOPIC: &str = "REAL_TOPIC";
pub const REAL_QID: &str = "REAL_QID";
/// What staging adds, and delivery takes away again.
const STAGING_KEYS: &[&str] = &[REAL_TOPIC, REAL_QID, TIMER_OUT_MS];
/// Timer properties a client may set, strongest first (spec §7.5).
const TIMER_DELIVER_MS: &str = "TIMER_DELIVER_MS";
const START_DELIVER_TIME: &str = "__STARTDELIVERTIME";
const TIMER_DELAY_SEC: &str = "TIMER_DELAY_SEC";
const TIMER_DELAY_MS: &str = "TIMER_DELAY_MS";

/// Where a sent message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staging {
    /// Straight to its queue.
    Direct,
    /// SCHEDULE_TOPIC_XXXX queue `level - 1`.
    Delay { level: usize, due_ms: i64 },
    /// `rmq_sys_wheel_timer` queue 0.
    Timer { due_ms: i64 },
}

fn parse_number(name: &str, value: Option<&[u8]>) -> Result<Option<i64>, String> {
    match value {
        None => Ok(None),
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "property {name}={:?} is not an integer",
                    String::from_utf8_lossy(v)
                )
            }),
    }
}

/// The properties that decide where a message waits, found in one pass
/// over the properties (the last occurrence of each wins, as in
/// `properties::get`): a send looks at five names that are usually absent.
#[derive(Debug, Default, Clone, Copy)]
pub struct Timing<'a> {
    delay: Option<&'a [u8]>,
    deliver_ms: Option<&'a [u8]>,
    start_deliver: Option<&'a [u8]>,
    delay_sec: Option<&'a [u8]>,
    delay_ms: Option<&'a [u8]>,
}

impl<'a> Timing<'a> {
    pub fn of(props: &'a [u8]) -> Timing<'a> {
        let mut t = Timing::default();
        for (name, value) in properties::iter(props) {
            let slot = match name {
                b"DELAY" => &mut t.delay,
                b"TIMER_DELIVER_MS" => &mut t.deliver_ms,
                b"__STARTDELIVERTIME" => &mut t.start_deliver,
                b"TIMER_DELAY_SEC" => &mut t.delay_sec,
                b"TIMER_DELAY_MS" => &mut t.delay_ms,
                _ => continue,
            };
            *slot = Some(value);
        }
        t
    }

    /// A positive DELAY level or any timer property.
    pub fn asks_to_wait(&self) -> bool {
        let delayed = self
            .delay
            .and_then(|d| std::str::from_utf8(d).ok()?.trim().parse::<i32>().ok())
            .is_some_and(|d| d > 0);
        delayed
            || self.deliver_ms.is_some()
            || self.start_deliver.is_some()
            || self.delay_sec.is_some()
            || self.delay_ms.is_some()
    }
}

/// Decides where a (non-transactional) message waits. DELAY wins over the
/// timer properties, as in Java; a level above the highest is clamped; a
/// timer due now or earlier is delivered directly; one further out than
/// `max_delay_ms` is refused.
pub fn classify(
    props: &[u8],
    now: i64,
    levels_ms: &[u64],
    max_delay_ms: i64,
) -> Result<Staging, String> {
    let t = Timing::of(props);
    if let Some(level) = parse_number(DELAY, t.delay)?.filter(|l| *l > 0) {
        let level = (level as usize).min(levels_ms.len());
        return Ok(Staging::Delay {
            level,
            due_ms: now + levels_ms[level - 1] as i64,
        });
    }
    let due = if let Some(at) = parse_number(TIMER_DELIVER_MS, t.deliver_ms)? {
        Some(at)
    } else if let Some(at) = parse_number(START_DELIVER_TIME, t.start_deliver)? {
        Some(at)
    } else if let Some(s) = parse_number(TIMER_DELAY_SEC, t.delay_sec)? {
        Some(now.saturating_add(s.saturating_mul(1000)))
    } else {
        parse_number(TIMER_DELAY_MS, t.delay_ms)?.map(|ms| now.saturating_add(ms))
    };
    match due {
        None => Ok(Staging::Direct),
        Some(due) if due <= now => Ok(Staging::Direct),
        Some(due) if due - now > max_delay_ms => Err(format!(
            "timer message due in {} s, beyond timerMaxDelaySec {}",
            (due - now) / 1000,
            max_delay_ms / 1000
        )),
        Some(due) => Ok(Staging::Timer { due_ms: due }),
    }
}

/// The staging topic, queue and due time of a classified message.
pub fn staging_queue(s: Staging) -> Option<(&'static str, i32, i64)> {
    match s {
        Staging::Direct => None,
        Staging::Delay { level, due_ms } => Some((SCHEDULE_TOPIC, level as i32 - 1, due_ms)),
        Staging::Timer { due_ms } => Some((TIMER_TOPIC, 0, due_ms)),
    }
}

/// The properties of a staged copy: the message's own, plus where it really
/// goes and when.
pub fn staged_properties(props: &[u8], topic: &str, queue_id: i32, due_ms: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(props.len() + topic.len() + 64);
    properties::copy_without(props, &mut out, STAGING_KEYS);
    properties::push(&mut out, REAL_TOPIC, topic);
    properties::push(&mut out, REAL_QID, &queue_id.to_string());
    properties::push(&mut out, TIMER_OUT_MS, &due_ms.to_string());
    out
}

/// Re-stores a staged record under its real topic and queue, without the
/// staging properties. Ok(false): the record is gone or not a staged
/// message (skipped, logged); Err: the store refused, try again later.
pub async fn restore_staged(shard: &Shard, phys: i64, drop_delay: bool) -> Result<bool, String> {
    let rec = match shard.store.read_message(phys).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            tracing::warn!(
                shard = shard.id,
                phys,
                "staged message no longer stored; skipped"
            );
            return Ok(false);
        }
        Err(e) => return Err(e.to_string()),
    };
    let Ok(v) = RecordView::parse(&rec) else {
        return Ok(false);
    };
    let props = v.user_properties();
    let topic = properties::get_str(props, REAL_TOPIC);
    let qid = properties::get_number(props, REAL_QID);
    let (Some(topic), Some(qid)) = (topic, qid) else {
        tracing::warn!(
            shard = shard.id,
            phys,
            "staged message without REAL_TOPIC/REAL_QID; skipped"
        );
        return Ok(false);
    };
    let mut out = Vec::with_capacity(props.len());
    let drop: &[&str] = if drop_delay {
        &[REAL_TOPIC, REAL_QID, TIMER_OUT_MS, DELAY]
    } else {
        STAGING_KEYS
    };
    properties::copy_without(props, &mut out, drop);
    shard
        .store
        .append(topic, qid as i32, &[v.redraft(&out)], Durability::Buffered)
        .await
        .map_err(|e| e.to_string())?;
    shard.stats.put_msgs.set(shard.stats.put_msgs.get() + 1);
    shard.polls.notify(topic, qid as i32);
    Ok(true)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    due_ms: i64,
    phys: i64,
}

/// Hashed timing wheel: entry due at `d` sits in slot `ceil(d / TICK) mod
/// SLOTS` and is taken out by the first advance whose tick reaches it, so it
/// is never delivered before it is due.
struct Wheel {
    slots: Vec<Vec<Entry>>,
    /// Last tick advanced to.
    tick: i64,
    /// Taken out of the wheel, not yet delivered, in due order.
    ready: std::collections::VecDeque<Entry>,
}

fn tick_of(due_ms: i64) -> i64 {
    due_ms.div_euclid(TICK_MS) + i64::from(due_ms.rem_euclid(TICK_MS) != 0)
}

impl Wheel {
    fn new(now: i64) -> Wheel {
        Wheel {
            slots: vec![Vec::new(); WHEEL_SLOTS],
            tick: now.div_euclid(TICK_MS),
            ready: Default::default(),
        }
    }

    fn insert(&mut self, e: Entry) {
        let t = tick_of(e.due_ms);
        if t <= self.tick {
            self.ready.push_back(e);
        } else {
            self.slots[t.rem_euclid(WHEEL_SLOTS as i64) as usize].push(e);
        }
    }

    /// Moves every entry due by tick `to` into `ready`.
    fn advance(&mut self, to: i64) {
        if to <= self.tick {
            return;
        }
        let mut taken = Vec::new();
        let mut take = |slot: &mut Vec<Entry>| {
            slot.retain(|e| {
                let due = tick_of(e.due_ms) <= to;
                if due {
                    taken.push(*e);
                }
                !due
            })
        };
        if to - self.tick >= WHEEL_SLOTS as i64 {
            self.slots.iter_mut().for_each(&mut take);
        } else {
            for t in self.tick + 1..=to {
                take(&mut self.slots[t.rem_euclid(WHEEL_SLOTS as i64) as usize]);
            }
        }
        taken.sort_unstable_by_key(|e| e.due_ms);
        self.ready.extend(taken);
        self.tick = to;
    }

    fn earliest_ready(&self) -> Option<i64> {
        self.ready.iter().map(|e| e.due_ms).min()
    }
}

#[derive(Serialize, Deserialize, Default, Clone, PartialEq, Eq, Debug)]
#[serde(rename_all = "camelCase")]
struct ProgressFile {
    /// Level (1-based) → next SCHEDULE_TOPIC_XXXX offset to deliver.
    level_offsets: BTreeMap<usize, u64>,
    /// Timer units below this are all due by `timer_done_ms`.
    timer_low_offset: u64,
    /// Every timer message due at or before this is delivered.
    timer_done_ms: i64,
}

/// One shard's delay-level and timer service.
pub struct Scheduler {
    levels_ms: Vec<u64>,
    level_next: RefCell<Vec<u64>>,
    wheel: RefCell<Wheel>,
    done_ms: Cell<i64>,
    low: Cell<u64>,
    /// Timer stagings whose append is still in flight, by ticket → due:
    /// `done` must not pass them before they reach the wheel.
    in_flight: RefCell<BTreeMap<u64, i64>>,
    next_ticket: Cell<u64>,
    saved: RefCell<ProgressFile>,
    last_persist_ms: Cell<i64>,
    path: PathBuf,
}

impl Scheduler {
    /// Takes `fresh`'s state (a slave that became master rebuilt it from
    /// the log it now owns).
    pub fn adopt(&self, fresh: Scheduler) {
        self.level_next.replace(fresh.level_next.into_inner());
        self.wheel.replace(fresh.wheel.into_inner());
        self.done_ms.set(fresh.done_ms.get());
        self.low.set(fresh.low.get());
        self.in_flight.replace(fresh.in_flight.into_inner());
        self.saved.replace(fresh.saved.into_inner());
    }

    /// Messages staged and not yet delivered: (delay levels, timers).
    pub fn waiting(&self, store: &rocketcore_storage::ShardStore) -> (u64, u64) {
        let next = self.level_next.borrow();
        // Index q is the next offset of queue q (level q + 1).
        let delay = (0..next.len())
            .map(|q| {
                store
                    .max_offset(SCHEDULE_TOPIC, q as i32)
                    .saturating_sub(next[q])
            })
            .sum();
        let wheel = self.wheel.borrow();
        let timers = wheel.slots.iter().map(Vec::len).sum::<usize>() + wheel.ready.len();
        (delay, timers as u64)
    }

    /// Loads the progress of shard `k` and rebuilds the wheel from its timer
    /// queue.
    pub async fn open(
        store: &ShardStore,
        levels_ms: Vec<u64>,
        path: PathBuf,
    ) -> Result<Scheduler, String> {
        let saved: ProgressFile = progress::load(&path)?;
        let level_next = (1..=levels_ms.len())
            .map(|l| {
                let q = l as i32 - 1;
                let at = saved.level_offsets.get(&l).copied().unwrap_or(0);
                at.clamp(
                    store.min_offset(SCHEDULE_TOPIC, q),
                    store.max_offset(SCHEDULE_TOPIC, q),
                )
            })
            .collect();
        let now = now_ms();
        let mut wheel = Wheel::new(now);
        let done = saved.timer_done_ms.min(now);
        let mut reloaded = 0usize;
        progress::scan_units(store, TIMER_TOPIC, 0, saved.timer_low_offset, |_, u| {
            if !u.is_hole() && u.tags_code > done {
                reloaded += 1;
                wheel.insert(Entry {
                    due_ms: u.tags_code,
                    phys: u.phys,
                });
            }
            ControlFlow::Continue(())
        })
        .await
        .map_err(|e| format!("rebuilding the timer wheel: {e}"))?;
        if reloaded > 0 {
            tracing::info!(pending = reloaded, "timer messages reloaded");
        }
        Ok(Scheduler {
            levels_ms,
            level_next: RefCell::new(level_next),
            wheel: RefCell::new(wheel),
            done_ms: Cell::new(done),
            low: Cell::new(saved.timer_low_offset),
            in_flight: RefCell::new(BTreeMap::new()),
            next_ticket: Cell::new(0),
            saved: RefCell::new(saved),
            last_persist_ms: Cell::new(0),
            path,
        })
    }

    /// The progress last made durable, as its file holds it: what a slave
    /// copies (GET_ALL_DELAY_OFFSET), so that a slave started as master
    /// later neither repeats nor skips deliveries.
    pub fn saved_progress(&self) -> serde_json::Value {
        serde_json::to_value(&*self.saved.borrow()).unwrap_or_default()
    }

    /// Where this shard's progress file lives.
    pub fn progress_path(store_dir: &std::path::Path, shard: usize) -> PathBuf {
        store_dir
            .join("config")
            .join(format!("delayOffset-{shard}.json"))
    }

    pub fn levels_ms(&self) -> &[u64] {
        &self.levels_ms
    }

    /// Announces a timer staging about to be appended; pass the ticket to
    /// `timer_staged` or `timer_abandoned`.
    pub fn timer_staging(&self, due_ms: i64) -> u64 {
        let t = self.next_ticket.get();
        self.next_ticket.set(t + 1);
        self.in_flight.borrow_mut().insert(t, due_ms);
        t
    }

    pub fn timer_staged(&self, ticket: u64, phys: i64) {
        if let Some(due_ms) = self.in_flight.borrow_mut().remove(&ticket) {
            self.wheel.borrow_mut().insert(Entry { due_ms, phys });
        }
    }

    pub fn timer_abandoned(&self, ticket: u64) {
        self.in_flight.borrow_mut().remove(&ticket);
    }

    /// The delivery loop: every tick, due delay-level messages, then due
    /// timers; progress is persisted about once a second.
    pub async fn run(shard: Rc<Shard>) {
        loop {
            let to_next_tick = TICK_MS - now_ms().rem_euclid(TICK_MS);
            glommio::timer::sleep(Duration::from_millis(to_next_tick as u64)).await;
            if shard.stopping.get() {
                return;
            }
            // A slave mirrors what the master delivers.
            if shard.is_slave() {
                continue;
            }
            let now = now_ms();
            shard.sched.deliver_levels(&shard, now).await;
            shard.sched.deliver_timers(&shard, now).await;
            if now - shard.sched.last_persist_ms.get() >= PERSIST_EVERY_MS {
                shard.sched.last_persist_ms.set(now);
                if let Err(e) = shard.sched.persist(&shard.store).await {
                    tracing::warn!(shard = shard.id, "persisting delivery progress: {e}");
                }
            }
        }
    }

    async fn deliver_levels(&self, shard: &Shard, now: i64) {
        for l in 0..self.levels_ms.len() {
            let q = l as i32;
            let mut next = self.level_next.borrow()[l];
            next = next.max(shard.store.min_offset(SCHEDULE_TOPIC, q));
            let mut delivered = 0;
            'level: while delivered < LEVEL_BATCH {
                let units = match shard.store.units(SCHEDULE_TOPIC, q, next, 64).await {
                    Ok(u) if !u.is_empty() => u,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(shard = shard.id, level = l + 1, "reading delay queue: {e}");
                        break;
                    }
                };
                for u in units {
                    if !u.is_hole() {
                        if u.tags_code > now {
                            break 'level;
                        }
                        if let Err(e) = restore_staged(shard, u.phys, true).await {
                            tracing::warn!(
                                shard = shard.id,
                                level = l + 1,
                                "delivering a delayed message: {e}; retrying"
                            );
                            break 'level;
                        }
                    }
                    next += 1;
                    delivered += 1;
                }
            }
            self.level_next.borrow_mut()[l] = next;
        }
    }

    async fn deliver_timers(&self, shard: &Shard, now: i64) {
        let to = now.div_euclid(TICK_MS);
        self.wheel.borrow_mut().advance(to);
        loop {
            let Some(e) = self.wheel.borrow_mut().ready.pop_front() else {
                break;
            };
            if let Err(err) = restore_staged(shard, e.phys, false).await {
                tracing::warn!(
                    shard = shard.id,
                    "delivering a timer message: {err}; retrying"
                );
                self.wheel.borrow_mut().ready.push_front(e);
                return;
            }
        }
        // Everything due by tick `to` that was in the wheel is delivered.
        self.done_ms.set(self.done_ms.get().max(to * TICK_MS));
    }

    /// The `done` watermark that may be written now: not past a staging
    /// still in flight or an entry still waiting to be delivered.
    fn safe_done(&self) -> i64 {
        let mut done = self.done_ms.get();
        if let Some(d) = self.in_flight.borrow().values().min() {
            done = done.min(d - 1);
        }
        if let Some(d) = self.wheel.borrow().earliest_ready() {
            done = done.min(d - 1);
        }
        done
    }

    /// Writes the progress file if it changed, after a flush makes every
    /// delivery it counts durable.
    pub async fn persist(&self, store: &ShardStore) -> Result<(), String> {
        let done = self.safe_done();
        // Advance `low` past units all due by `done`.
        let low = progress::scan_units(store, TIMER_TOPIC, 0, self.low.get(), |_, u| {
            if !u.is_hole() && u.tags_code > done {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .await
        .map_err(|e| e.to_string())?;
        self.low.set(low);
        // With no timer staged past `low`, the done mark counts nothing; it
        // stays as saved so that an idle shard does not rewrite the file
        // every second. (Timers staged later are due after it.)
        let done = if low >= store.max_offset(TIMER_TOPIC, 0) {
            self.saved.borrow().timer_done_ms.min(done)
        } else {
            done
        };
        let file = ProgressFile {
            level_offsets: self
                .level_next
                .borrow()
                .iter()
                .enumerate()
                .map(|(l, o)| (l + 1, *o))
                .collect(),
            timer_low_offset: low,
            timer_done_ms: done,
        };
        if *self.saved.borrow() == file {
            return Ok(());
        }
        progress::save_after_flush(store, &self.path, &file).await?;
        *self.saved.borrow_mut() = file;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEVELS: [u64; 3] = [1_000, 5_000, 10_000];

    #[test]
    fn delay_wins_over_timers_and_is_clamped() {
        let now = 1_000_000;
        let c = |p: &[u8]| classify(p, now, &LEVELS, 3_000_000);
        assert_eq!(
            c(b"DELAY\x012\x02TIMER_DELAY_SEC\x019\x02"),
            Ok(Staging::Delay {
                level: 2,
                due_ms: now + 5_000
            })
        );
        assert_eq!(
            c(b"DELAY\x0199\x02"),
            Ok(Staging::Delay {
                level: 3,
                due_ms: now + 10_000
            })
        );
        assert_eq!(c(b"DELAY\x010\x02"), Ok(Staging::Direct));
        assert_eq!(
            c(b"DELAY\x010\x02TIMER_DELAY_MS\x0110\x02"),
            Ok(Staging::Timer { due_ms: now + 10 })
        );
        assert_eq!(c(b"DELAY\x01-1\x02"), Ok(Staging::Direct));
        assert!(c(b"DELAY\x01two\x02").unwrap_err().contains("DELAY"));
        assert_eq!(c(b"TAGS\x01a\x02"), Ok(Staging::Direct));
    }

    #[test]
    fn timer_properties_in_order_of_strength() {
        let now = 1_000_000;
        let c = |p: &[u8]| classify(p, now, &LEVELS, 60_000);
        assert_eq!(
            c(b"TIMER_DELIVER_MS\x011003000\x02TIMER_DELAY_SEC\x019\x02"),
            Ok(Staging::Timer { due_ms: 1_003_000 })
        );
        assert_eq!(
            c(b"__STARTDELIVERTIME\x011002000\x02"),
            Ok(Staging::Timer { due_ms: 1_002_000 })
        );
        assert_eq!(
            c(b"TIMER_DELAY_SEC\x013\x02"),
            Ok(Staging::Timer { due_ms: 1_003_000 })
        );
        assert_eq!(
            c(b"TIMER_DELAY_MS\x01250\x02"),
            Ok(Staging::Timer { due_ms: 1_000_250 })
        );
        // Due now or in the past: delivered at once.
        assert_eq!(c(b"TIMER_DELIVER_MS\x011000000\x02"), Ok(Staging::Direct));
        assert_eq!(c(b"TIMER_DELAY_SEC\x01-5\x02"), Ok(Staging::Direct));
        let far = c(b"TIMER_DELAY_SEC\x0161\x02").unwrap_err();
        assert!(far.contains("timerMaxDelaySec 60"), "{far}");
        assert!(c(b"TIMER_DELAY_MS\x019223372036854775807\x02").is_err());
    }

    #[test]
    fn staged_properties_replace_stale_staging_keys() {
        let p = staged_properties(b"KEYS\x01k\x02REAL_TOPIC\x01old\x02", "Orders", 3, 42);
        assert_eq!(properties::get(&p, REAL_TOPIC), Some(&b"Orders"[..]));
        assert_eq!(properties::get(&p, REAL_QID), Some(&b"3"[..]));
        assert_eq!(properties::get(&p, TIMER_OUT_MS), Some(&b"42"[..]));
        assert_eq!(properties::get(&p, "KEYS"), Some(&b"k"[..]));
        assert_eq!(properties::iter(&p).count(), 4);
        assert_eq!(
            properties::cq_tags_code(TIMER_TOPIC.as_bytes(), &p),
            42,
            "the unit code is the due time"
        );
    }

    #[test]
    fn the_wheel_never_hands_out_early_and_keeps_later_turns() {
        let now = 10_000_000;
        let mut w = Wheel::new(now);
        let turn = WHEEL_SLOTS as i64 * TICK_MS;
        let dues = [
            now + 1,
            now + 100,
            now + 150,
            now + turn + 100,
            now + 3 * turn,
            now - 5_000,
        ];
        for (i, d) in dues.iter().enumerate() {
            w.insert(Entry {
                due_ms: *d,
                phys: i as i64,
            });
        }
        // The entry already due is ready at once.
        assert_eq!(w.ready.iter().map(|e| e.phys).collect::<Vec<_>>(), vec![5]);
        w.ready.clear();
        let mut out = Vec::new();
        let mut t = now;
        while t <= now + 3 * turn + TICK_MS {
            t += TICK_MS;
            w.advance(t.div_euclid(TICK_MS));
            while let Some(e) = w.ready.pop_front() {
                assert!(e.due_ms <= t, "entry due {} handed out at {t}", e.due_ms);
                assert!(t - e.due_ms < TICK_MS, "entry due {} late at {t}", e.due_ms);
                out.push(e.phys);
            }
        }
        assert_eq!(out, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_long_jump_takes_everything_due_in_due_order() {
        let now = 0;
        let mut w = Wheel::new(now);
        for (i, d) in [900_000, 5_000, 2_000_000].iter().enumerate() {
            w.insert(Entry {
                due_ms: *d,
                phys: i as i64,
            });
        }
        w.advance(1_000_000 / TICK_MS);
        let got: Vec<i64> = w.ready.iter().map(|e| e.phys).collect();
        assert_eq!(got, vec![1, 0]);
        assert_eq!(w.earliest_ready(), Some(5_000));
    }
}
