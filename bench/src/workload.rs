//! The workloads. Every connection has its own socket and its own
//! histograms; at the end the histograms are merged (never averaged).
//! Producing connections share a few threads that poll them (`mux`), or
//! get a thread each (`--threads 0`, and always with TLS); consuming
//! connections get a thread each.
//!
//! Fixed rate is open loop: send k of a connection has an intended time
//! `start + k / rate`, and its latency is measured from that intended time,
//! so a stall that delays later sends shows up in their latency instead of
//! being hidden (coordinated-omission correction). "publish delay" records
//! how late each send left against its intended time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use hdrhistogram::Histogram;
use rocketcore_protocol::remoting::codes::{request_code as rq, response_code as rs};
use rocketcore_protocol::remoting::RemotingCommand;

use crate::args::{From, LoadArgs, Style, STAMP_BYTES};
use crate::client::Conn;
use crate::route::Mq;
use rocketcore_protocol::message::record::RecordView;

/// Highest latency the histograms track: one hour in microseconds.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Consumers hold pulls this long so a stop is noticed quickly.
const PULL_HOLD_MS: i64 = 1_000;
const PULL_BATCH: i32 = 32;

pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// Set by Ctrl-C: every worker finishes what it has in flight and stops.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Counters of one interval, taken by the reporter once a second.
pub struct Interval {
    pub msgs: u64,
    pub bytes: u64,
    pub errors: u64,
    pub hist: Histogram<u64>,
}

impl Default for Interval {
    fn default() -> Self {
        Interval {
            msgs: 0,
            bytes: 0,
            errors: 0,
            hist: new_hist(),
        }
    }
}

/// What one worker measured over the whole run.
pub struct WorkerResult {
    pub msgs: u64,
    pub bytes: u64,
    pub errors: u64,
    pub hists: HashMap<&'static str, Histogram<u64>>,
    pub first_error: Option<String>,
}

/// Shared run control.
pub struct Control {
    pub start: Instant,
    pub recording_from: Instant,
    pub deadline: Option<Instant>,
    pub budget: Option<u64>,
    pub issued: AtomicU64,
    pub consumed: AtomicU64,
    pub stop: AtomicBool,
}

impl Control {
    pub fn new(args: &LoadArgs) -> Control {
        let start = Instant::now();
        Control {
            start,
            recording_from: start + args.warmup,
            deadline: args.run_for().map(|d| start + args.warmup + d),
            budget: args.messages,
            issued: AtomicU64::new(0),
            consumed: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
            || INTERRUPTED.load(Ordering::Relaxed)
            || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Claims `n` messages of the budget; false once it is spent.
    fn claim(&self, n: u64) -> bool {
        match self.budget {
            None => true,
            Some(b) => self.issued.fetch_add(n, Ordering::Relaxed) < b,
        }
    }

    fn recording(&self, at: Instant) -> bool {
        at >= self.recording_from
    }
}

fn now_unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn record(h: &mut Histogram<u64>, us: u64) {
    let _ = h.record(us.clamp(1, MAX_LATENCY_US));
}

/// The message body: send time (µs since the epoch) then filler. Stamped
/// per send so e2e latency has microsecond resolution.
fn stamp(template: &mut BytesMut, at_us: Option<u64>) -> Bytes {
    stamp_in_place(template, at_us);
    Bytes::copy_from_slice(template)
}

fn stamp_in_place(template: &mut BytesMut, at_us: Option<u64>) {
    let now = at_us.unwrap_or_else(now_unix_us);
    let n = STAMP_BYTES.min(template.len());
    template[..n].copy_from_slice(&now.to_be_bytes()[..n]);
}

/// Writes the message's properties into `p` (reused, so a send allocates
/// nothing for them); returns the time (µs) its body stamp should carry
/// instead of now when it is due later.
fn properties(args: &LoadArgs, seq: u64, worker: usize, p: &mut String) -> Option<u64> {
    use std::fmt::Write as _;
    p.clear();
    let _ = write!(p, "TAGS\u{1}{}\u{2}", args.tag);
    if args.keys {
        let _ = write!(p, "KEYS\u{1}bench-{worker}-{seq}\u{2}");
    }
    if let Some(n) = args.buckets {
        let _ = write!(p, "bucket\u{1}{}\u{2}", seq % n);
    }
    let mut due_us = None;
    if let Some(spread) = args.timer_spread {
        // A cheap spread over [0, spread): multiplicative hashing of seq and
        // worker, so every connection covers the whole window.
        let h = (seq ^ ((worker as u64) << 40)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let offset_us = (h >> 11) % (spread.as_micros().max(1) as u64);
        let due = now_unix_us() + offset_us;
        let _ = write!(p, "TIMER_DELIVER_MS\u{1}{}\u{2}", due / 1000);
        due_us = Some(due / 1000 * 1000);
    }
    if let (Some(level), Some(ms)) = (args.delay_level, args.level_delay_ms()) {
        let _ = write!(p, "DELAY\u{1}{level}\u{2}");
        due_us = Some(now_unix_us() + ms * 1000);
    }
    due_us
}

/// The send request of one queue, built once per worker: each send only
/// rewrites what changes (`refresh_send`), so its header costs no
/// allocations.
fn send_request(args: &LoadArgs, mq: &Mq) -> RemotingCommand {
    let mut cmd = RemotingCommand::new_request(if args.batch > 1 {
        rq::SEND_BATCH_MESSAGE
    } else {
        rq::SEND_MESSAGE_V2
    });
    for (k, v) in [
        ("a", "rocketcore-bench"),
        ("b", mq.topic.as_str()),
        ("c", "TBW102"),
        ("d", "8"),
        ("f", "0"),
        ("h", "0"),
    ] {
        cmd.set_ext(k, v);
    }
    cmd.set_ext("e", mq.queue_id);
    cmd.set_ext("g", 0);
    if args.batch > 1 {
        cmd.set_ext("m", "true");
    } else {
        cmd.set_ext("i", "");
    }
    if args.style == Style::Oneway {
        cmd.mark_oneway();
    }
    cmd
}

/// Sets the born time, the properties (single sends) and the body.
fn refresh_send(cmd: &mut RemotingCommand, body: Bytes, props: &str) {
    let ext = cmd.ext_fields_mut();
    if ext.contains_key("g") {
        ext.insert_display("g", now_unix_us() / 1000);
    }
    if ext.contains_key("i") {
        ext.insert("i", props);
    }
    cmd.body = Some(body);
}

/// Appends a UNIQ_KEY property as a real client does (Java's and C++'s
/// producers give every message one): 32 hex characters, unique per
/// process, connection and message.
fn push_uniq_key(p: &mut String, worker: usize, seq: u64) {
    use std::fmt::Write as _;
    let _ = write!(
        p,
        "UNIQ_KEY\u{1}{:08X}{:04X}{:020X}\u{2}",
        std::process::id(),
        worker as u16,
        seq
    );
}

/// A batch body (spec §6.6) of `n` stamped messages, message `i` with
/// `props` and UNIQ_KEY `seq + i`.
fn batch_body(
    template: &mut BytesMut,
    n: usize,
    props: &str,
    worker: usize,
    seq: u64,
    entry_props: &mut String,
) -> Bytes {
    let mut out = BytesMut::with_capacity(n * (template.len() + props.len() + 64));
    for i in 0..n {
        stamp_in_place(template, None);
        entry_props.clear();
        entry_props.push_str(props);
        push_uniq_key(entry_props, worker, seq + i as u64);
        out.put_i32((22 + template.len() + entry_props.len()) as i32);
        out.put_i32(0);
        out.put_i32(0);
        out.put_i32(0);
        out.put_i32(template.len() as i32);
        out.put_slice(template);
        out.put_i16(entry_props.len() as i16);
        out.put_slice(entry_props.as_bytes());
    }
    out.freeze()
}

/// The open-loop schedule of one connection: send k is due at
/// `start + k / rate`, whatever happened to earlier sends; without a rate,
/// each send is due when it is issued (closed loop, maximum rate).
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    pub start: Instant,
    pub rate: Option<f64>,
}

impl Pacer {
    pub fn intended(&self, k: u64, now: Instant) -> Instant {
        match self.rate {
            Some(r) => self.start + Duration::from_secs_f64(k as f64 / r),
            None => now,
        }
    }
}

/// An empty result and the worker's connection to the broker of its
/// queues, or a result that records why it could not connect.
fn start_worker(mqs: &[Mq]) -> Result<(WorkerResult, Conn), WorkerResult> {
    let mut res = WorkerResult {
        msgs: 0,
        bytes: 0,
        errors: 0,
        hists: HashMap::new(),
        first_error: None,
    };
    match crate::client::connect(mqs[0].broker) {
        Ok(c) => Ok((res, c)),
        Err(e) => {
            res.errors += 1;
            res.first_error = Some(format!("connect {}: {e}", mqs[0].broker));
            Err(res)
        }
    }
}

/// One producing connection: its socket, its window of requests in flight
/// and its histograms. Driven by a thread of its own ([`produce_worker`]) or
/// with others from one thread (`mux`).
pub struct Producer<'a> {
    args: &'a LoadArgs,
    worker: usize,
    ctl: &'a Control,
    interval: &'a Mutex<Interval>,
    pub conn: Conn,
    res: WorkerResult,
    send_h: Histogram<u64>,
    delay_h: Histogram<u64>,
    template: BytesMut,
    requests: Vec<RemotingCommand>,
    props: String,
    /// One batch entry's properties, rebuilt per entry.
    entry_props: String,
    window: usize,
    /// Opaque → intended send time, for the requests awaiting a response.
    pending: HashMap<i32, Instant>,
    k: u64,
    seq: u64,
    mq_i: usize,
    pacer: Pacer,
    exhausted: bool,
    failed: bool,
}

impl<'a> Producer<'a> {
    pub fn new(
        args: &'a LoadArgs,
        worker: usize,
        mqs: &[Mq],
        ctl: &'a Control,
        interval: &'a Mutex<Interval>,
        per_conn_rate: Option<f64>,
    ) -> Result<Producer<'a>, WorkerResult> {
        let (res, conn) = start_worker(mqs)?;
        let window = if args.style == Style::Oneway {
            1
        } else {
            args.inflight
        };
        Ok(Producer {
            args,
            worker,
            ctl,
            interval,
            conn,
            res,
            send_h: new_hist(),
            delay_h: new_hist(),
            template: BytesMut::from(&vec![b'x'; args.size][..]),
            requests: mqs.iter().map(|mq| send_request(args, mq)).collect(),
            props: String::new(),
            entry_props: String::new(),
            window,
            pending: HashMap::with_capacity(window),
            k: 0,
            seq: 0,
            mq_i: worker % mqs.len(),
            pacer: Pacer {
                start: ctl.start,
                rate: per_conn_rate,
            },
            exhausted: false,
            failed: false,
        })
    }

    /// Sends until the window is full, the budget is spent or the next send
    /// is not due yet; then, if nothing is in flight, when that send is due.
    pub fn fill(&mut self) -> Option<Instant> {
        let args = self.args;
        let per_msg = args.batch as u64;
        while !self.exhausted && !self.failed && self.pending.len() < self.window {
            if self.ctl.stopping() {
                return None;
            }
            let now = Instant::now();
            let intended = self.pacer.intended(self.k, now);
            if intended > now {
                return self.pending.is_empty().then_some(intended);
            }
            if !self.ctl.claim(per_msg) {
                self.exhausted = true;
                break;
            }
            self.k += 1;
            let at = self.mq_i;
            self.mq_i = (self.mq_i + 1) % self.requests.len();
            let cmd = &mut self.requests[at];
            let due_us = properties(args, self.seq, self.worker, &mut self.props);
            let body = if args.batch > 1 {
                batch_body(
                    &mut self.template,
                    args.batch,
                    &self.props,
                    self.worker,
                    self.seq,
                    &mut self.entry_props,
                )
            } else {
                push_uniq_key(&mut self.props, self.worker, self.seq);
                stamp(&mut self.template, due_us)
            };
            self.seq += per_msg;
            refresh_send(cmd, body, &self.props);
            let sent = Instant::now();
            let opaque = match self.conn.send(cmd) {
                Ok(o) => o,
                Err(e) => {
                    self.res.errors += 1;
                    self.fail(format!("send: {e}"));
                    return None;
                }
            };
            if self.ctl.recording(sent) {
                record(
                    &mut self.delay_h,
                    sent.saturating_duration_since(intended).as_micros() as u64,
                );
            }
            if args.style == Style::Oneway {
                let done = Instant::now();
                account(
                    &mut self.res,
                    &mut self.send_h,
                    self.interval,
                    self.ctl,
                    done,
                    intended,
                    per_msg,
                    args.size,
                    true,
                );
            } else {
                self.pending.insert(opaque, intended);
            }
        }
        None
    }

    /// Accounts for one response.
    pub fn on_response(&mut self, r: RemotingCommand) {
        let Some(intended) = self.pending.remove(&r.opaque) else {
            return;
        };
        let ok = r.code == rs::SUCCESS;
        if !ok {
            self.res.first_error.get_or_insert(format!(
                "send answered code {} {}",
                r.code,
                r.remark.as_deref().unwrap_or_default()
            ));
        }
        account(
            &mut self.res,
            &mut self.send_h,
            self.interval,
            self.ctl,
            Instant::now(),
            intended,
            self.args.batch as u64,
            self.args.size,
            ok,
        );
    }

    /// Ends the connection's run on a send or receive error: what is in
    /// flight counts as failed.
    pub fn fail(&mut self, why: String) {
        self.res.errors += self.pending.len() as u64;
        self.res.first_error.get_or_insert(why);
        self.pending.clear();
        self.failed = true;
    }

    /// Responses still awaited.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Nothing more to send and nothing in flight.
    pub fn done(&self) -> bool {
        self.done_if_stopping(self.ctl.stopping())
    }

    /// [`done`](Self::done) with the run's stop state already read, for a
    /// loop that asks it of many connections at once.
    pub fn done_if_stopping(&self, stopping: bool) -> bool {
        self.pending.is_empty() && (self.exhausted || self.failed || stopping)
    }

    pub fn finish(self) -> WorkerResult {
        finish(self.res, self.send_h, self.delay_h)
    }
}

/// One producing connection on a thread of its own (what TLS connections
/// use, since they cannot be polled from a shared thread).
pub fn produce_worker(
    args: &LoadArgs,
    worker: usize,
    mqs: &[Mq],
    ctl: &Control,
    interval: &Mutex<Interval>,
    per_conn_rate: Option<f64>,
) -> WorkerResult {
    let mut p = match Producer::new(args, worker, mqs, ctl, interval, per_conn_rate) {
        Ok(p) => p,
        Err(res) => return res,
    };
    loop {
        let due = p.fill();
        if p.done() {
            break;
        }
        if p.in_flight() == 0 {
            if let Some(due) = due {
                let wait = due.saturating_duration_since(Instant::now());
                std::thread::sleep(wait.min(Duration::from_millis(50)));
            }
            continue;
        }
        match p.conn.recv() {
            Ok(r) => p.on_response(r),
            Err(e) => p.fail(format!("receive: {e}")),
        }
    }
    p.finish()
}

#[allow(clippy::too_many_arguments)]
fn account(
    res: &mut WorkerResult,
    h: &mut Histogram<u64>,
    interval: &Mutex<Interval>,
    ctl: &Control,
    done: Instant,
    intended: Instant,
    msgs: u64,
    size: usize,
    ok: bool,
) {
    let us = done.saturating_duration_since(intended).as_micros() as u64;
    let bytes = msgs * size as u64;
    let mut iv = interval.lock().unwrap_or_else(|p| p.into_inner());
    if ok {
        iv.msgs += msgs;
        iv.bytes += bytes;
        record(&mut iv.hist, us);
    } else {
        iv.errors += 1;
    }
    drop(iv);
    if !ctl.recording(done) {
        return;
    }
    if ok {
        res.msgs += msgs;
        res.bytes += bytes;
        record(h, us);
    } else {
        res.errors += 1;
    }
}

fn finish(mut res: WorkerResult, send_h: Histogram<u64>, delay_h: Histogram<u64>) -> WorkerResult {
    res.hists.insert("send", send_h);
    res.hists.insert("publish_delay", delay_h);
    res
}

fn pull_request(args: &LoadArgs, mq: &Mq, offset: i64) -> RemotingCommand {
    let queue_id = mq.queue_id;
    let mut cmd = RemotingCommand::new_request(rq::PULL_MESSAGE);
    cmd.set_ext("consumerGroup", &args.group);
    cmd.set_ext("topic", &mq.topic);
    cmd.set_ext("queueId", queue_id);
    cmd.set_ext("queueOffset", offset);
    cmd.set_ext("maxMsgNums", PULL_BATCH);
    // SUSPEND | SUBSCRIPTION: long-poll, and bring our own "*" subscription
    // so no heartbeat registration is needed.
    cmd.set_ext("sysFlag", 0x2 | 0x4);
    cmd.set_ext("commitOffset", 0);
    cmd.set_ext("suspendTimeoutMillis", PULL_HOLD_MS);
    match &args.sql {
        Some(expr) => {
            cmd.set_ext("subscription", expr.as_str());
            cmd.set_ext("expressionType", "SQL92");
        }
        None => cmd.set_ext("subscription", "*"),
    }
    cmd.set_ext("subVersion", 0);
    cmd
}

/// Walks the records of a pull body: (body, born timestamp ms).
fn for_each_record(body: &[u8], mut f: impl FnMut(&[u8], i64)) {
    let mut rest = body;
    // Like the clients: stop at the first record that does not decode.
    while let Ok(v) = RecordView::parse(rest) {
        f(v.body(), v.born_timestamp_ms());
        rest = &rest[v.total_size()..];
    }
}

/// One consuming connection over `mqs` (all on one broker), one pull in
/// flight per queue.
pub fn consume_worker(
    args: &LoadArgs,
    mqs: &[Mq],
    ctl: &Control,
    interval: &Mutex<Interval>,
    e2e: bool,
) -> WorkerResult {
    let mut e2e_h = new_hist();
    let mut pull_h = new_hist();
    let (mut res, mut conn) = match start_worker(mqs) {
        Ok(x) => x,
        Err(res) => return res,
    };
    // Offsets by position in `mqs` (queues of several topics share ids).
    let mut offsets: Vec<i64> = Vec::with_capacity(mqs.len());
    for mq in mqs {
        let start = match args.from {
            From::Earliest => 0,
            From::Latest => {
                let mut req = RemotingCommand::new_request(rq::GET_MAX_OFFSET);
                req.set_ext("topic", &mq.topic);
                req.set_ext("queueId", mq.queue_id);
                match conn.call(req) {
                    Ok(r) => r.ext_i64("offset").unwrap_or(0),
                    Err(e) => {
                        res.first_error.get_or_insert(format!("max offset: {e}"));
                        0
                    }
                }
            }
        };
        offsets.push(start);
    }
    let mut pending: HashMap<i32, (usize, Instant)> = HashMap::new();
    let issue = |conn: &mut Conn,
                 q: usize,
                 off: i64,
                 pending: &mut HashMap<i32, (usize, Instant)>|
     -> std::io::Result<()> {
        let mut cmd = pull_request(args, &mqs[q], off);
        let o = conn.send(&mut cmd)?;
        pending.insert(o, (q, Instant::now()));
        Ok(())
    };
    for (q, off) in offsets.iter().enumerate() {
        if let Err(e) = issue(&mut conn, q, *off, &mut pending) {
            res.first_error.get_or_insert(format!("pull: {e}"));
            return finish_consume(res, e2e_h, pull_h, e2e);
        }
    }
    while !pending.is_empty() {
        let r = match conn.recv() {
            Ok(r) => r,
            Err(e) => {
                res.errors += 1;
                res.first_error.get_or_insert(format!("pull response: {e}"));
                break;
            }
        };
        let Some((q, sent)) = pending.remove(&r.opaque) else {
            continue;
        };
        let now = Instant::now();
        let recording = ctl.recording(now);
        if recording {
            record(
                &mut pull_h,
                now.saturating_duration_since(sent).as_micros() as u64,
            );
        }
        match r.code {
            rs::SUCCESS
            | rs::PULL_NOT_FOUND
            | rs::PULL_RETRY_IMMEDIATELY
            | rs::PULL_OFFSET_MOVED => {}
            code => {
                res.errors += 1;
                res.first_error.get_or_insert(format!(
                    "pull answered code {code} {}",
                    r.remark.as_deref().unwrap_or_default()
                ));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if let Ok(next) = r.ext_i64("nextBeginOffset") {
            offsets[q] = next;
        }
        if let Some(body) = r.body.as_deref().filter(|_| r.code == rs::SUCCESS) {
            let now_us = now_unix_us();
            let mut n = 0u64;
            let mut bytes = 0u64;
            let mut iv = interval.lock().unwrap_or_else(|p| p.into_inner());
            for_each_record(body, |b, born_ms| {
                n += 1;
                bytes += b.len() as u64;
                if e2e {
                    let sent_us = if b.len() >= STAMP_BYTES {
                        u64::from_be_bytes(b[..STAMP_BYTES].try_into().unwrap_or([0; 8]))
                    } else {
                        born_ms.max(0) as u64 * 1000
                    };
                    let us = now_us.saturating_sub(sent_us);
                    record(&mut iv.hist, us);
                    if recording {
                        record(&mut e2e_h, us);
                    }
                }
            });
            iv.msgs += n;
            iv.bytes += bytes;
            drop(iv);
            if recording {
                res.msgs += n;
                res.bytes += bytes;
            }
            ctl.consumed.fetch_add(n, Ordering::Relaxed);
        }
        let budget_spent = !e2e
            && ctl
                .budget
                .is_some_and(|b| ctl.consumed.load(Ordering::Relaxed) >= b);
        if budget_spent {
            ctl.stop.store(true, Ordering::Relaxed);
        }
        if !ctl.stopping() {
            if let Err(e) = issue(&mut conn, q, offsets[q], &mut pending) {
                res.first_error.get_or_insert(format!("pull: {e}"));
                break;
            }
        }
    }
    finish_consume(res, e2e_h, pull_h, e2e)
}

fn finish_consume(
    mut res: WorkerResult,
    e2e_h: Histogram<u64>,
    pull_h: Histogram<u64>,
    e2e: bool,
) -> WorkerResult {
    if e2e {
        res.hists.insert("e2e", e2e_h);
    }
    res.hists.insert("pull", pull_h);
    res
}

/// Shares the run's intervals with the progress reporter.
pub type Intervals = Arc<Vec<Mutex<Interval>>>;

pub fn new_intervals(n: usize) -> Intervals {
    Arc::new((0..n).map(|_| Mutex::new(Interval::default())).collect())
}

/// Takes and merges every worker's interval counters.
pub fn drain_intervals(intervals: &Intervals) -> Interval {
    let mut total = Interval::default();
    for m in intervals.iter() {
        let mut iv = m.lock().unwrap_or_else(|p| p.into_inner());
        let taken = std::mem::take(&mut *iv);
        total.msgs += taken.msgs;
        total.bytes += taken.bytes;
        total.errors += taken.errors;
        let _ = total.hist.add(&taken.hist);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_bodies_carry_their_stamps_and_lengths() {
        let mut t = BytesMut::from(&[b'x'; 16][..]);
        let mut scratch = String::new();
        let b = batch_body(&mut t, 3, "TAGS\u{1}a\u{2}", 7, 100, &mut scratch);
        // Properties: the tag (7 bytes) and UNIQ_KEY, 9 + 32 + 1 bytes.
        let props = 7 + 42;
        assert_eq!(b.len(), 3 * (22 + 16 + props));
        let total = i32::from_be_bytes(b[0..4].try_into().unwrap());
        assert_eq!(total, 22 + 16 + props as i32);
        let body_len = i32::from_be_bytes(b[16..20].try_into().unwrap());
        assert_eq!(body_len, 16);
        let stamp = u64::from_be_bytes(b[20..28].try_into().unwrap());
        assert!(stamp > 1_600_000_000_000_000, "a µs timestamp: {stamp}");
        // Every entry has a UNIQ_KEY of its own.
        let keys: std::collections::HashSet<&[u8]> = (0..3)
            .map(|i| {
                let entry = &b[i * (22 + 16 + props)..(i + 1) * (22 + 16 + props)];
                &entry[entry.len() - 33..entry.len() - 1]
            })
            .collect();
        assert_eq!(keys.len(), 3);
    }

    #[test]
    fn pacer_schedules_sends_independently_of_progress() {
        let start = Instant::now();
        let p = Pacer {
            start,
            rate: Some(1000.0),
        };
        assert_eq!(p.intended(0, start), start);
        assert_eq!(p.intended(500, start), start + Duration::from_millis(500));
        // Late by a second: the schedule does not move, so the stall is
        // charged to the sends it delayed (coordinated-omission correction).
        let late = start + Duration::from_secs(2);
        assert_eq!(p.intended(1000, late), start + Duration::from_secs(1));
        let free = Pacer { start, rate: None };
        assert_eq!(free.intended(123, late), late);
    }

    #[test]
    fn record_walk_stops_at_damage() {
        let mut seen = 0;
        for_each_record(&[0, 0, 0, 200, 1, 2, 3], |_, _| seen += 1);
        for_each_record(&[], |_, _| seen += 1);
        assert_eq!(seen, 0);
    }

    #[test]
    fn message_budget_is_claimed_once() {
        let ctl = Control {
            start: Instant::now(),
            recording_from: Instant::now(),
            deadline: None,
            budget: Some(10),
            issued: AtomicU64::new(0),
            consumed: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        };
        let granted = (0..20).filter(|_| ctl.claim(1)).count();
        assert_eq!(granted, 10);
    }

    #[test]
    fn intervals_merge_histograms_rather_than_averaging() {
        let iv = new_intervals(2);
        {
            let mut a = iv[0].lock().unwrap();
            for _ in 0..99 {
                a.hist.record(100).unwrap();
            }
            a.msgs = 99;
        }
        {
            let mut b = iv[1].lock().unwrap();
            b.hist.record(10_000).unwrap();
            b.msgs = 1;
        }
        let merged = drain_intervals(&iv);
        assert_eq!(merged.msgs, 100);
        assert_eq!(merged.hist.len(), 100);
        // Averaging the two p99s would give ~5 ms; the merged p99 is 100 µs.
        assert!(merged.hist.value_at_quantile(0.99) <= 101);
        assert!(merged.hist.max() >= 10_000);
        assert_eq!(drain_intervals(&iv).msgs, 0, "drained");
    }
}
