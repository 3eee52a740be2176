//! Append benchmark for one shard's `ShardStore`.
//!
//! For every (durability, appenders) case it opens a fresh store on a real
//! disk, lets N concurrent appender tasks append single-message batches for a
//! fixed time, and reports records/s, body and commit-log MB/s, append latency
//! percentiles (merged HDR histograms), `Busy` backpressure retries, errors,
//! process CPU time per 100k records and commit-log bytes per message. A
//! summary compares the log write rate and synced latency with this
//! machine's measured disk figures.
//!
//! Run:
//!   cargo run --release -p rocketcore-storage --example append_bench -- \
//!       [--dir PATH] [--size 1024] [--appenders 1,16,256] \
//!       [--durability buffered,synced] [--seconds 5] [--segment-mib 1024]

use std::cell::Cell;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use glommio::LocalExecutorBuilder;
use hdrhistogram::Histogram;
use rocketcore_storage::{
    Durability, MessageDraft, ShardStore, StoreConfig, StoreError, SystemEnvironment,
};

// This machine's disk as fio measured it (reference figures). The bench
// reports against them so a number means something without a second run:
// sequential O_DIRECT 1 MiB writes at queue depth 8 ...
const DISK_SEQ_WRITE_MB_S: f64 = 1550.0;
// ... and a 4 KiB write followed by fdatasync, the floor under one synced
// append that has nobody to share its group commit with.
const DISK_SYNC_P50_US: f64 = 79.0;
const DISK_SYNC_P99_US: f64 = 204.0;

const TOPIC: &str = "BenchTopic";
const PROPERTIES: &[u8] = b"TAGS\x01TagA\x02";
const QUEUES: usize = 8;
const BUSY_BACKOFF: Duration = Duration::from_micros(100);
// A hung flush or shutdown should end the case with a message, not the bench.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
// Anything slower than this is a stall worth seeing as "max", not a clamp.
const HIST_MAX_US: u64 = 120_000_000;
const SAMPLE_EVERY: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Buffered,
    Synced,
}

impl Mode {
    fn durability(self) -> Durability {
        match self {
            Mode::Buffered => Durability::Buffered,
            Mode::Synced => Durability::Synced,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mode::Buffered => "buffered",
            Mode::Synced => "synced",
        }
    }
}

#[derive(Debug, Parser)]
#[command(about = "Append throughput and latency of one ShardStore")]
struct Args {
    /// Parent directory for the store (default: ./target/bench-store). A fresh
    /// subdirectory is made in it and removed at the end.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Concurrent appender tasks, one case per value.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    appenders: Vec<usize>,
    /// Durability modes, one case per value.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "buffered,synced"
    )]
    durability: Vec<Mode>,
    /// Seconds of appending per case.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Commit-log segment size in MiB.
    #[arg(long, default_value_t = 1024)]
    segment_mib: u64,
}

/// What one appender task saw.
struct TaskOutcome {
    hist: Histogram<u64>,
    records: u64,
    busy: u64,
    errors: u64,
    first_error: Option<String>,
    /// Log bytes of one record, as the store placed it.
    record_bytes: Option<u64>,
}

/// Store-side observations taken while the appenders run.
#[derive(Default)]
struct Sampled {
    max_pending: u64,
    longest_append_stall: Duration,
    longest_flush_stall: Duration,
}

struct CaseResult {
    mode: Mode,
    appenders: usize,
    record_bytes: Option<u64>,
    elapsed: Duration,
    drain: Duration,
    records: u64,
    body_bytes: u64,
    log_bytes: u64,
    dev_write_bytes: Option<u64>,
    hist: Histogram<u64>,
    busy: u64,
    errors: u64,
    first_error: Option<String>,
    cpu_user: f64,
    cpu_sys: f64,
    sampled: Sampled,
    /// Things that are not append errors but make the numbers suspect.
    anomalies: Vec<String>,
}

impl CaseResult {
    fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64()
    }
    fn rec_per_s(&self) -> f64 {
        self.records as f64 / self.secs()
    }
    fn body_mb_s(&self) -> f64 {
        self.body_bytes as f64 / 1e6 / self.secs()
    }
    fn log_mb_s(&self) -> f64 {
        self.log_bytes as f64 / 1e6 / self.secs()
    }
    /// Buffered appends are acknowledged before they reach the disk, so the
    /// log rate over the append window alone can exceed what the disk took;
    /// counting the final flush gives the rate at which bytes became durable.
    fn durable_log_mb_s(&self) -> f64 {
        self.log_bytes as f64 / 1e6 / (self.elapsed + self.drain).as_secs_f64()
    }
    fn cpu_per_100k(&self) -> f64 {
        if self.records == 0 {
            return f64::NAN;
        }
        (self.cpu_user + self.cpu_sys) * 100_000.0 / self.records as f64
    }
    fn per_msg(&self, bytes: u64) -> f64 {
        if self.records == 0 {
            return f64::NAN;
        }
        bytes as f64 / self.records as f64
    }
    fn q(&self, quantile: f64) -> u64 {
        self.hist.value_at_quantile(quantile)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// (user, system) CPU seconds of the whole process: the executor thread
/// does the encoding and the flushing, and the io_uring workers that run
/// fdatasync are billed here too, which is what the store costs.
fn cpu_seconds() -> (f64, f64) {
    // SAFETY: getrusage only writes into the struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut ru) != 0 {
            return (f64::NAN, f64::NAN);
        }
        ru
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime), secs(ru.ru_stime))
}

/// Bytes this process sent to the block layer. `write_pos` counts the log
/// once; this also sees partial blocks rewritten by every group commit and
/// the consume-queue, index and checkpoint writes, i.e. write amplification.
fn process_write_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("static histogram bounds are valid")
}

async fn appender(
    store: Rc<ShardStore>,
    index: usize,
    size: usize,
    durability: Durability,
    deadline: Instant,
) -> TaskOutcome {
    // Non-constant bytes so the body CRC is not computed over a trivial input.
    let body: Vec<u8> = (0..size).map(|i| (i * 31 + index) as u8).collect();
    let born_host: SocketAddr = ([127, 0, 0, 1], 5555).into();
    let queue_id = (index % QUEUES) as i32;
    let mut out = TaskOutcome {
        hist: new_hist(),
        records: 0,
        busy: 0,
        errors: 0,
        first_error: None,
        record_bytes: None,
    };
    while Instant::now() < deadline {
        let draft = MessageDraft {
            flag: 0,
            body: &body,
            properties: PROPERTIES,
            sys_flag: 0,
            born_timestamp_ms: now_ms(),
            born_host,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
        };
        let started = Instant::now();
        match store.append(TOPIC, queue_id, &[draft], durability).await {
            Ok(appended) => {
                out.hist
                    .saturating_record(started.elapsed().as_micros() as u64);
                out.records += appended.count as u64;
                out.record_bytes
                    .get_or_insert((appended.end_phys - appended.first_phys) as u64);
            }
            // Backpressure is the store working as designed; timing the
            // refusal would make a saturated store look fast.
            Err(StoreError::Busy { .. }) => {
                out.busy += 1;
                glommio::timer::sleep(BUSY_BACKOFF).await;
                continue;
            }
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert_with(|| e.to_string());
                // A poisoned log fails every call at once; do not spin on it.
                glommio::timer::sleep(BUSY_BACKOFF).await;
                continue;
            }
        }
        // A buffered append never awaits, so without this one task would
        // keep the executor until Busy; a broker's connection tasks await
        // the network between requests, and so do these.
        futures_lite::future::yield_now().await;
    }
    out
}

/// Watches the store for stalls that averages would hide.
async fn sampler(store: Rc<ShardStore>, done: Rc<Cell<bool>>) -> Sampled {
    let mut s = Sampled::default();
    let first = store.stats();
    let (mut last_write, mut last_flushed) = (first.write_pos, first.flushed);
    let (mut write_moved, mut flush_moved) = (Instant::now(), Instant::now());
    while !done.get() {
        glommio::timer::sleep(SAMPLE_EVERY).await;
        let st = store.stats();
        let now = Instant::now();
        s.max_pending = s.max_pending.max(st.write_pos - st.flushed);
        if st.write_pos != last_write {
            last_write = st.write_pos;
            write_moved = now;
        }
        s.longest_append_stall = s.longest_append_stall.max(now - write_moved);
        if st.flushed != last_flushed || st.flushed == st.write_pos {
            last_flushed = st.flushed;
            flush_moved = now;
        }
        s.longest_flush_stall = s.longest_flush_stall.max(now - flush_moved);
    }
    s
}

async fn run_case(
    root: &Path,
    args: &Args,
    mode: Mode,
    appenders: usize,
) -> Result<CaseResult, String> {
    let mut cfg = StoreConfig::new(root, "127.0.0.1:10911".parse().unwrap());
    cfg.segment_bytes = args.segment_mib << 20;
    let store = ShardStore::open(cfg, 0, Rc::new(SystemEnvironment))
        .await
        .map_err(|e| format!("open failed: {e}"))?;
    let before = store.stats();
    let dev_before = process_write_bytes();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.seconds);

    let done = Rc::new(Cell::new(false));
    let sampler_task = glommio::spawn_local(sampler(store.clone(), done.clone()));
    let tasks: Vec<_> = (0..appenders)
        .map(|i| {
            glommio::spawn_local(appender(
                store.clone(),
                i,
                args.size,
                mode.durability(),
                deadline,
            ))
        })
        .collect();
    let mut outcomes = Vec::with_capacity(appenders);
    for t in tasks {
        outcomes.push(t.await);
    }
    let elapsed = started.elapsed();
    done.set(true);
    let sampled = sampler_task.await;

    let mut anomalies = Vec::new();
    let drain_started = Instant::now();
    match glommio::timer::timeout(DRAIN_TIMEOUT, async { Ok(store.flush().await) }).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => anomalies.push(format!("flush failed: {e}")),
        Err(_) => anomalies.push(format!("flush did not finish in {DRAIN_TIMEOUT:?}")),
    }
    let drain = drain_started.elapsed();
    let cpu_after = cpu_seconds();
    let (cpu_user, cpu_sys) = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
    let after = store.stats();
    let dev_write_bytes = dev_before.zip(process_write_bytes()).map(|(b, a)| a - b);
    if after.flushed != after.write_pos {
        anomalies.push(format!(
            "after flush, flushed {} != write_pos {}",
            after.flushed, after.write_pos
        ));
    }
    if let Some(why) = &after.poisoned {
        anomalies.push(format!("log poisoned: {why}"));
    }
    match glommio::timer::timeout(DRAIN_TIMEOUT, async { Ok(store.shutdown().await) }).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => anomalies.push(format!("shutdown failed: {e}")),
        Err(_) => anomalies.push(format!("shutdown did not finish in {DRAIN_TIMEOUT:?}")),
    }

    // Merging the histograms keeps every sample; averaging per-task
    // percentiles would not be a percentile of anything.
    let mut hist = new_hist();
    let (mut records, mut busy, mut errors, mut first_error) = (0, 0, 0, None);
    let mut record_bytes = None;
    for o in outcomes {
        hist.add(&o.hist)
            .map_err(|e| format!("merging histograms: {e:?}"))?;
        records += o.records;
        busy += o.busy;
        errors += o.errors;
        if first_error.is_none() {
            first_error = o.first_error;
        }
        record_bytes = record_bytes.or(o.record_bytes);
    }
    let stored = after.appended_records - before.appended_records;
    if stored != records {
        anomalies.push(format!(
            "store counted {stored} appended records, appenders counted {records}"
        ));
    }
    Ok(CaseResult {
        mode,
        appenders,
        record_bytes,
        elapsed,
        drain,
        records,
        body_bytes: records * args.size as u64,
        log_bytes: after.write_pos - before.write_pos,
        dev_write_bytes,
        hist,
        busy,
        errors,
        first_error,
        cpu_user,
        cpu_sys,
        sampled,
        anomalies,
    })
}

fn print_case(r: &CaseResult) {
    println!(
        "{:<8} appenders={:<4} rec/s={:>9.0} body MB/s={:>7.1} log MB/s={:>7.1} \
         lat µs p50={} p99={} p99.9={} max={} busy={} errors={} \
         cpu s/100k rec={:.3} (usr {:.2}s sys {:.2}s) log B/msg={:.1} drain={:.0}ms",
        r.mode.name(),
        r.appenders,
        r.rec_per_s(),
        r.body_mb_s(),
        r.log_mb_s(),
        r.q(0.5),
        r.q(0.99),
        r.q(0.999),
        r.hist.max(),
        r.busy,
        r.errors,
        r.cpu_per_100k(),
        r.cpu_user,
        r.cpu_sys,
        r.per_msg(r.log_bytes),
        r.drain.as_secs_f64() * 1e3,
    );
    if let Some(e) = &r.first_error {
        println!("         first error: {e}");
    }
    for a in &r.anomalies {
        println!("         ANOMALY: {a}");
    }
}

fn print_summary(results: &[CaseResult], args: &Args) {
    println!();
    println!(
        "summary: body {} B, record {} B on the log, {} s per case, {} MiB segments",
        args.size,
        results
            .iter()
            .find_map(|r| r.record_bytes)
            .map_or("?".to_string(), |b| b.to_string()),
        args.seconds,
        args.segment_mib
    );
    println!(
        "{:<8} {:>5} {:>10} {:>8} {:>8} {:>8} {:>7} {:>6} {:>6} {:>7} {:>8} {:>8} {:>6} {:>8} {:>8} {:>9} {:>8} {:>8}",
        "mode",
        "apps",
        "rec/s",
        "bodyMB/s",
        "logMB/s",
        "durMB/s",
        "%1550",
        "p50",
        "p99",
        "p99.9",
        "max",
        "busy",
        "errs",
        "cpu/100k",
        "logB/msg",
        "devwrB/msg",
        "maxpendMB",
        "stall ms"
    );
    for r in results {
        let dev = r
            .dev_write_bytes
            .map_or("n/a".to_string(), |b| format!("{:.1}", r.per_msg(b)));
        let stall = r
            .sampled
            .longest_append_stall
            .max(r.sampled.longest_flush_stall);
        println!(
            "{:<8} {:>5} {:>10.0} {:>8.1} {:>8.1} {:>8.1} {:>6.1}% {:>6} {:>6} {:>7} {:>8} {:>8} {:>6} {:>8.3} {:>8.1} {:>9} {:>8.1} {:>8.0}",
            r.mode.name(),
            r.appenders,
            r.rec_per_s(),
            r.body_mb_s(),
            r.log_mb_s(),
            r.durable_log_mb_s(),
            r.durable_log_mb_s() / DISK_SEQ_WRITE_MB_S * 100.0,
            r.q(0.5),
            r.q(0.99),
            r.q(0.999),
            r.hist.max(),
            r.busy,
            r.errors,
            r.cpu_per_100k(),
            r.per_msg(r.log_bytes),
            dev,
            r.sampled.max_pending as f64 / (1 << 20) as f64,
            stall.as_secs_f64() * 1e3,
        );
    }
    println!(
        "  latencies in µs (0 = under 1 µs); logMB/s over the append window, durMB/s also counts the final \
         flush; %1550 = durMB/s vs {DISK_SEQ_WRITE_MB_S} MB/s O_DIRECT 1 MiB fio qd 8; \
         devwrB/msg = all bytes the process wrote to the block layer (/proc/self/io) per \
         record; stall = longest stretch with no append or no flush progress while bytes \
         were pending (sampled every {SAMPLE_EVERY:?})"
    );
    let synced: Vec<_> = results.iter().filter(|r| r.mode == Mode::Synced).collect();
    if !synced.is_empty() {
        println!(
            "synced latency vs 4 KiB write+fdatasync (p50 {DISK_SYNC_P50_US} µs, p99 \
             {DISK_SYNC_P99_US} µs):"
        );
        for r in synced {
            println!(
                "  appenders={:<4} p50 {} µs = {:.2}x   p99 {} µs = {:.2}x",
                r.appenders,
                r.q(0.5),
                r.q(0.5) as f64 / DISK_SYNC_P50_US,
                r.q(0.99),
                r.q(0.99) as f64 / DISK_SYNC_P99_US,
            );
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.appenders.contains(&0) || args.seconds <= 0.0 {
        return Err("--appenders must be positive and --seconds above zero".into());
    }
    // Not /tmp: it may be tmpfs, which refuses O_DIRECT.
    let parent = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/bench-store"));
    std::fs::create_dir_all(&parent)?;
    let root = tempfile::Builder::new()
        .prefix("append-bench-")
        .tempdir_in(&parent)?;
    println!("store under {}", root.path().display());

    let mut results = Vec::new();
    for &mode in &args.durability {
        for &appenders in &args.appenders {
            let case_dir = root.path().join(format!("{}-{appenders}", mode.name()));
            // A fresh executor per case so no task, timer or buffer of an
            // earlier case competes with this one.
            let ex = LocalExecutorBuilder::default()
                .io_memory(1 << 20)
                .make()
                .map_err(|e| format!("glommio executor: {e}"))?;
            let outcome = ex.run(run_case(&case_dir, &args, mode, appenders));
            drop(ex);
            // Segments are preallocated, so old cases would eat the disk.
            let _ = std::fs::remove_dir_all(&case_dir);
            match outcome {
                Ok(r) => {
                    print_case(&r);
                    results.push(r);
                }
                Err(e) => println!("{:<8} appenders={appenders:<4} FAILED: {e}", mode.name()),
            }
        }
    }
    print_summary(&results, &args);
    root.close()?;
    Ok(())
}
