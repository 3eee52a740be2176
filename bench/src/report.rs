//! Results of a rocketcore-bench run: `summary.json`, `.hgrm` files, an SVG
//! chart, the final text report, A/B comparison and the per-second line.
//!
//! All latency histograms hold MICROSECONDS.
//!
//! Correctness rule: every percentile here is computed from a MERGED
//! histogram. Each connection/worker records into its own histogram; the
//! caller merges them with `Histogram::add` into one histogram per metric
//! (and per interval for the progress line) and only then calls these
//! functions. Percentiles are never averaged or otherwise combined: the mean
//! of per-connection p99s is not the p99 of the run (a single slow connection
//! would vanish in it), while a merged histogram gives the exact distribution
//! of all samples at the histogram's precision. The same holds when combining
//! runs: merge histograms, never summaries.
//!
//! Units: "MB" is 10^6 bytes everywhere (summary, report, progress line);
//! `mb_per_sec` in [`RunSummary`] is expected in the same unit, see [`rate`].
//!
//! `.hgrm` writing lives in `hgrm.rs` and the chart in `svg.rs`; both are
//! re-exported here so callers need only `report::*`.

use hdrhistogram::Histogram;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

pub use crate::hgrm::{hgrm_string, write_hgrm};
pub use crate::svg::{svg_string, write_svg};

/// Bytes per MB in every figure this module prints or expects.
pub const BYTES_PER_MB: f64 = 1_000_000.0;

/// The machine a run was measured on: without it two results can't be
/// compared honestly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    pub cpu_model: String,
    pub cores: usize,
    pub memory_bytes: u64,
    pub kernel: String,
    pub hostname: String,
}

/// Percentiles of one merged histogram, in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramSummary {
    pub name: String,
    pub count: u64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub mean_us: f64,
    pub p50_us: u64,
    pub p75_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub p9999_us: u64,
    pub max_us: u64,
}

/// One run's results; serialized as `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// "produce" | "consume" | "e2e"
    pub workload: String,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub host: HostInfo,
    pub started_at_unix_ms: i64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub duration_secs: f64,
    pub msgs: u64,
    pub bytes: u64,
    pub errors: u64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub msgs_per_sec: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub mb_per_sec: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub bench_cpu_secs: f64,
    /// CPU seconds the `--broker-pid` processes used over the same window
    /// as `bench_cpu_secs`, summed; absent when no pid was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_cpu_secs: Option<f64>,
    pub histograms: Vec<HistogramSummary>,
}

/// serde_json writes a non-finite f64 as `null` but refuses to read `null`
/// back into an f64; read it as NaN so such a file still loads (and prints
/// as "—") instead of making `load_summary` fail.
fn f64_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// `amount / secs`, or 0 for a zero/negative/non-finite duration, so rates
/// in a summary are always finite. For MB/s pass `bytes as f64 / BYTES_PER_MB`.
pub fn rate(amount: f64, secs: f64) -> f64 {
    if secs > 0.0 && secs.is_finite() && amount.is_finite() {
        amount / secs
    } else {
        0.0
    }
}

/// Milliseconds since the Unix epoch now, for `started_at_unix_ms`.
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Host and process
// ---------------------------------------------------------------------------

/// Describes this machine from /proc and uname(2). Never panics: anything
/// unreadable becomes "unknown" / 0.
pub fn host_info() -> HostInfo {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let (sysname, release, nodename) = uname();

    let kernel = match (sysname, release) {
        (Some(s), Some(r)) => format!("{s} {r}"),
        (None, Some(r)) => r,
        _ => std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".to_string()),
    };
    let hostname = nodename
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|s| s.trim().to_string())
                .ok()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());

    HostInfo {
        cpu_model: parse_cpu_model(&cpuinfo).unwrap_or_else(|| "unknown".to_string()),
        cores: online_cpus(&cpuinfo),
        memory_bytes: parse_mem_total(&meminfo).unwrap_or_else(phys_mem_sysconf),
        kernel,
        hostname,
    }
}

/// The CPU model from /proc/cpuinfo text. x86 has "model name"; arm64 often
/// only has "Hardware" or nothing; others use "cpu model"/"Processor"/"cpu".
fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    for key in ["model name", "Hardware", "cpu model", "Processor", "cpu"] {
        for line in cpuinfo.lines() {
            if let Some((k, v)) = line.split_once(':') {
                let v = v.trim();
                if k.trim() == key && !v.is_empty() {
                    // Collapse runs of spaces some vendors pad the name with.
                    return Some(v.split_whitespace().collect::<Vec<_>>().join(" "));
                }
            }
        }
    }
    None
}

/// MemTotal from /proc/meminfo text, in bytes.
fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut it = line["MemTotal:".len()..].split_whitespace();
    let n: u64 = it.next()?.parse().ok()?;
    let mult = match it.next() {
        Some("kB") | Some("KB") | Some("kb") => 1024,
        Some("mB") | Some("MB") => 1024 * 1024,
        None => 1,
        Some(_) => 1024,
    };
    n.checked_mul(mult)
}

fn phys_mem_sysconf() -> u64 {
    // SAFETY: sysconf has no preconditions; it returns -1 on error.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages > 0 && page > 0 {
        (pages as u64).saturating_mul(page as u64)
    } else {
        0
    }
}

/// Logical CPUs online on the host (not this process's affinity mask: the
/// host line describes the machine; the bench's own share is in its params).
fn online_cpus(cpuinfo: &str) -> usize {
    // SAFETY: sysconf has no preconditions; it returns -1 on error.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        return n as usize;
    }
    let listed = cpuinfo
        .lines()
        .filter(|l| l.split(':').next().map(str::trim) == Some("processor"))
        .count();
    if listed > 0 {
        return listed;
    }
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// (sysname, release, nodename) from uname(2), each None if unavailable.
fn uname() -> (Option<String>, Option<String>, Option<String>) {
    // SAFETY: utsname is plain old data (arrays of c_char), so all-zero is a
    // valid value, and uname only writes into the struct we own.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return (None, None, None);
    }
    (
        c_chars(&u.sysname),
        c_chars(&u.release),
        c_chars(&u.nodename),
    )
}

/// A NUL-terminated c_char array as a String, bounded by the array so a
/// missing terminator can't read past it.
fn c_chars(field: &[libc::c_char]) -> Option<String> {
    let bytes: Vec<u8> = field
        .iter()
        .map(|c| u8::from_ne_bytes(c.to_ne_bytes()))
        .take_while(|&b| b != 0)
        .collect();
    let s = String::from_utf8_lossy(&bytes).trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// User + system CPU seconds used so far by this whole process (all
/// threads), from getrusage(RUSAGE_SELF); 0 if the call fails. Take it at the
/// start and end of the measured window and subtract.
pub fn process_cpu_secs() -> f64 {
    // SAFETY: rusage is plain old data; getrusage writes only into it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// User + system CPU seconds process `pid` has used, from
/// `/proc/<pid>/stat`; None when it cannot be read (no such process).
pub fn pid_cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu_ticks(&stat).map(|ticks| ticks as f64 / clock_ticks_per_sec())
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line. The
/// command name (field 2) is in parentheses and may hold spaces or
/// parentheses itself, so fields are counted from the last `)`.
fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no memory effects.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// CPU seconds of every one of `pids` so far, summed; None without pids
/// or if one cannot be read.
pub fn pids_cpu_secs(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| pid_cpu_secs(pid)).sum()
}

// ---------------------------------------------------------------------------
// Summaries and files
// ---------------------------------------------------------------------------

/// Percentiles of `h`, which must be the merged histogram of all
/// connections (see the module comment). An empty histogram gives zeros.
pub fn summarize(name: &str, h: &Histogram<u64>) -> HistogramSummary {
    let q = |q: f64| {
        if h.is_empty() {
            0
        } else {
            h.value_at_quantile(q)
        }
    };
    HistogramSummary {
        name: name.to_string(),
        count: h.len(),
        mean_us: h.mean(),
        p50_us: q(0.50),
        p75_us: q(0.75),
        p95_us: q(0.95),
        p99_us: q(0.99),
        p999_us: q(0.999),
        p9999_us: q(0.9999),
        max_us: if h.is_empty() { 0 } else { h.max() },
    }
}

/// File stem for a histogram name: ASCII letters, digits, '-' and '_' kept,
/// anything else (path separators, dots, spaces) becomes '_', so a name can
/// never escape `dir` or hide a file.
fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "histogram".to_string()
    } else {
        s
    }
}

/// Creates `dir` and writes `summary.json` (pretty), one `<name>.hgrm` per
/// histogram (name sanitized; a clash gets `_2`, `_3`, ...), and
/// `latency.svg` with all series. Returns the paths written, in that order.
///
/// `hists` must be merged histograms, and should be the ones `summary`'s
/// `histograms` were computed from: the files and the JSON then agree.
pub fn write_results(
    dir: &Path,
    summary: &RunSummary,
    hists: &[(&str, &Histogram<u64>)],
) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();

    let json_path = dir.join("summary.json");
    let mut json = serde_json::to_string_pretty(summary).map_err(io::Error::other)?;
    json.push('\n');
    std::fs::write(&json_path, json)?;
    written.push(json_path);

    let mut used = HashSet::new();
    for (name, h) in hists {
        let base = sanitize(name);
        let mut stem = base.clone();
        let mut k = 2;
        while !used.insert(stem.clone()) {
            stem = format!("{base}_{k}");
            k += 1;
        }
        let p = dir.join(format!("{stem}.hgrm"));
        write_hgrm(&p, h)?;
        written.push(p);
    }

    let svg_path = dir.join("latency.svg");
    let title = format!(
        "rocketcore-bench {} — {} msgs/s, {} — latency by percentile",
        summary.workload,
        fmt_f(summary.msgs_per_sec, 0),
        fmt_utc(summary.started_at_unix_ms)
    );
    write_svg(&svg_path, &title, hists)?;
    written.push(svg_path);
    Ok(written)
}

/// Reads a `summary.json` written by [`write_results`].
pub fn load_summary(path: &Path) -> Result<RunSummary, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a bench summary: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------

/// A latency in µs with its unit: "850µs", "1.234ms", "12.35ms", "123.4ms",
/// "12.35s".
pub fn fmt_latency(us: u64) -> String {
    if us < 1000 {
        return format!("{us}µs");
    }
    let ms = us as f64 / 1000.0;
    if ms < 9.9995 {
        format!("{ms:.3}ms")
    } else if ms < 99.995 {
        format!("{ms:.2}ms")
    } else if ms < 9_999.95 {
        format!("{ms:.1}ms")
    } else {
        format!("{:.2}s", ms / 1000.0)
    }
}

/// Compact ms with about two significant digits, for the progress line:
/// "0.041ms", "0.41ms", "1.3ms", "10ms", "123ms".
fn fmt_ms_compact(us: u64) -> String {
    let ms = us as f64 / 1000.0;
    // Thresholds sit at the rounding boundaries so 9.96 prints "10", not "10.0".
    if ms >= 9.95 {
        format!("{ms:.0}ms")
    } else if ms >= 0.995 {
        format!("{ms:.1}ms")
    } else if ms >= 0.0995 {
        format!("{ms:.2}ms")
    } else {
        format!("{ms:.3}ms")
    }
}

/// A float with `prec` decimals, or "—" if it is not finite.
fn fmt_f(v: f64, prec: usize) -> String {
    if v.is_finite() {
        format!("{v:.prec$}")
    } else {
        "—".to_string()
    }
}

/// An integer with thousands separators: 1234567 -> "1,234,567".
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// "B/A" as "1.23x", or "—" when undefined (A is 0 or either is not finite).
fn fmt_ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && a != 0.0 {
        format!("{:.2}x", b / a)
    } else {
        "—".to_string()
    }
}

/// Unix ms as "YYYY-MM-DD hh:mm:ss UTC".
fn fmt_utc(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = rocketcore_protocol::protocol::civil::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// A JSON param value without quotes around strings.
fn param_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn host_text(h: &HostInfo) -> String {
    format!(
        "{} | {} cores | {:.1} GiB | {} | {}",
        h.cpu_model,
        h.cores,
        h.memory_bytes as f64 / (1024.0 * 1024.0 * 1024.0),
        h.kernel,
        h.hostname
    )
}

/// Bench CPU seconds per 100k messages: what the load generator itself
/// cost, to tell a broker limit from a client limit.
fn cpu_per_100k(s: &RunSummary) -> f64 {
    if s.msgs == 0 {
        f64::NAN
    } else {
        s.bench_cpu_secs * 100_000.0 / s.msgs as f64
    }
}

/// Broker CPU µs per message, when `--broker-pid` measured it.
fn broker_us_per_msg(s: &RunSummary) -> f64 {
    match s.broker_cpu_secs {
        Some(secs) if s.msgs > 0 => secs * 1e6 / s.msgs as f64,
        _ => f64::NAN,
    }
}

/// The percentile columns shared by the report and the comparison.
fn percentile_cols(h: &HistogramSummary) -> [(&'static str, u64); 7] {
    [
        ("p50", h.p50_us),
        ("p75", h.p75_us),
        ("p95", h.p95_us),
        ("p99", h.p99_us),
        ("p99.9", h.p999_us),
        ("p99.99", h.p9999_us),
        ("max", h.max_us),
    ]
}

/// The multi-line report printed at the end of a run.
pub fn final_report_text(s: &RunSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "rocketcore-bench {} — {} s, started {}",
        s.workload,
        fmt_f(s.duration_secs, 2),
        fmt_utc(s.started_at_unix_ms)
    );
    let _ = writeln!(out, "host:       {}", host_text(&s.host));
    if !s.params.is_empty() {
        let params: Vec<String> = s
            .params
            .iter()
            .map(|(k, v)| format!("{k}={}", param_text(v)))
            .collect();
        let _ = writeln!(out, "params:     {}", params.join(" "));
    }
    let _ = writeln!(
        out,
        "messages:   {} ({} MB), errors: {}",
        group(s.msgs),
        fmt_f(s.bytes as f64 / BYTES_PER_MB, 1),
        group(s.errors)
    );
    let _ = writeln!(
        out,
        "throughput: {} msgs/s, {} MB/s",
        fmt_f(s.msgs_per_sec, 0),
        fmt_f(s.mb_per_sec, 1)
    );
    let _ = writeln!(
        out,
        "bench CPU:  {} s ({} CPU s per 100k msgs)",
        fmt_f(s.bench_cpu_secs, 2),
        fmt_f(cpu_per_100k(s), 3)
    );
    if let Some(secs) = s.broker_cpu_secs {
        let _ = writeln!(
            out,
            "broker CPU: {} s ({} µs per msg)",
            fmt_f(secs, 2),
            fmt_f(broker_us_per_msg(s), 2)
        );
    }

    if !s.histograms.is_empty() {
        let name_w = s
            .histograms
            .iter()
            .map(|h| h.name.chars().count())
            .max()
            .unwrap_or(0)
            .max("latency".len());
        let _ = writeln!(out);
        let _ = write!(out, "{:<name_w$} {:>11}", "latency", "count");
        for (label, _) in percentile_cols(&s.histograms[0]) {
            let _ = write!(out, " {label:>9}");
        }
        let _ = writeln!(out);
        for h in &s.histograms {
            let _ = write!(out, "{:<name_w$} {:>11}", h.name, group(h.count));
            if h.count == 0 {
                let _ = writeln!(out, "  (no samples)");
                continue;
            }
            for (_, us) in percentile_cols(h) {
                let _ = write!(out, " {:>9}", fmt_latency(us));
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(
            out,
            "(percentiles of histograms merged over all connections)"
        );
    }
    out
}

/// A side-by-side comparison of two runs: metric | A | B | B/A.
///
/// Histograms are matched by name; those present in only one run are listed
/// at the end. Differences in workload, params or host are printed first,
/// because a ratio between unlike runs is easy to misread.
pub fn compare_text(a: &RunSummary, b: &RunSummary) -> String {
    // (metric, A text, B text, ratio text)
    let mut rows: Vec<[String; 4]> = Vec::new();
    let mut num = |name: &str, x: f64, y: f64, prec: usize| {
        rows.push([
            name.to_string(),
            fmt_f(x, prec),
            fmt_f(y, prec),
            fmt_ratio(x, y),
        ]);
    };
    num("msgs/s", a.msgs_per_sec, b.msgs_per_sec, 0);
    num("MB/s", a.mb_per_sec, b.mb_per_sec, 1);
    num("msgs", a.msgs as f64, b.msgs as f64, 0);
    num("errors", a.errors as f64, b.errors as f64, 0);
    num("duration s", a.duration_secs, b.duration_secs, 2);
    num("bench CPU s", a.bench_cpu_secs, b.bench_cpu_secs, 2);
    num("CPU s/100k msgs", cpu_per_100k(a), cpu_per_100k(b), 3);
    if a.broker_cpu_secs.is_some() || b.broker_cpu_secs.is_some() {
        num(
            "broker µs/msg",
            broker_us_per_msg(a),
            broker_us_per_msg(b),
            2,
        );
    }

    let mut only: Vec<String> = Vec::new();
    for ha in &a.histograms {
        let Some(hb) = b.histograms.iter().find(|h| h.name == ha.name) else {
            only.push(format!("{} (A only)", ha.name));
            continue;
        };
        rows.push([
            format!("{} count", ha.name),
            ha.count.to_string(),
            hb.count.to_string(),
            fmt_ratio(ha.count as f64, hb.count as f64),
        ]);
        let (ca, cb) = (percentile_cols(ha), percentile_cols(hb));
        for ((label, ua), (_, ub)) in ca.iter().zip(cb.iter()) {
            // An empty histogram's zeros are not latencies: no ratio.
            let defined = ha.count > 0 && hb.count > 0;
            rows.push([
                format!("{} {label}", ha.name),
                if ha.count > 0 {
                    fmt_latency(*ua)
                } else {
                    "—".into()
                },
                if hb.count > 0 {
                    fmt_latency(*ub)
                } else {
                    "—".into()
                },
                if defined {
                    fmt_ratio(*ua as f64, *ub as f64)
                } else {
                    "—".into()
                },
            ]);
        }
    }
    for hb in &b.histograms {
        if !a.histograms.iter().any(|h| h.name == hb.name) {
            only.push(format!("{} (B only)", hb.name));
        }
    }

    let mut out = String::new();
    for (tag, s) in [("A", a), ("B", b)] {
        let _ = writeln!(
            out,
            "{tag}: {} — {} s, started {}, {}",
            s.workload,
            fmt_f(s.duration_secs, 2),
            fmt_utc(s.started_at_unix_ms),
            s.host.hostname
        );
    }
    if a.workload != b.workload {
        let _ = writeln!(
            out,
            "note: different workloads ({} vs {})",
            a.workload, b.workload
        );
    }
    let mut keys: Vec<&String> = a.params.keys().chain(b.params.keys()).collect();
    keys.sort();
    keys.dedup();
    let diffs: Vec<String> = keys
        .into_iter()
        .filter(|k| a.params.get(*k) != b.params.get(*k))
        .map(|k| {
            let show = |v: Option<&serde_json::Value>| v.map_or("(unset)".into(), param_text);
            format!(
                "{k}: {} vs {}",
                show(a.params.get(k)),
                show(b.params.get(k))
            )
        })
        .collect();
    if !diffs.is_empty() {
        let _ = writeln!(out, "note: params differ: {}", diffs.join(", "));
    }
    if a.host != b.host {
        let _ = writeln!(out, "note: hosts differ:");
        let _ = writeln!(out, "  A {}", host_text(&a.host));
        let _ = writeln!(out, "  B {}", host_text(&b.host));
    }
    let _ = writeln!(out);

    let header = [
        "metric".to_string(),
        "A".to_string(),
        "B".to_string(),
        "B/A".to_string(),
    ];
    let mut w = [0usize; 4];
    for r in std::iter::once(&header).chain(rows.iter()) {
        for (i, cell) in r.iter().enumerate() {
            w[i] = w[i].max(cell.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(rows.iter()) {
        let _ = writeln!(
            out,
            "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3]
        );
    }
    if !only.is_empty() {
        let _ = writeln!(out, "not compared: {}", only.join(", "));
    }
    out
}

/// One per-second progress line, e.g.
/// `t=  3s  msgs/s=12345  MB/s=12.3  errors=0  p50=0.41ms p99=1.3ms p99.9=2.9ms max=10ms`.
///
/// `interval_hist` is the merged histogram of this interval only (all
/// connections' interval histograms added, then reset); empty prints "-".
pub fn progress_line(
    elapsed_secs: f64,
    msgs_per_sec: f64,
    mb_per_sec: f64,
    errors: u64,
    interval_hist: &Histogram<u64>,
) -> String {
    let lat = |q: f64| {
        if interval_hist.is_empty() {
            "-".to_string()
        } else {
            fmt_ms_compact(interval_hist.value_at_quantile(q))
        }
    };
    let max = if interval_hist.is_empty() {
        "-".to_string()
    } else {
        fmt_ms_compact(interval_hist.max())
    };
    format!(
        "t={:>3}s  msgs/s={}  MB/s={}  errors={}  p50={} p99={} p99.9={} max={}",
        fmt_f(elapsed_secs, 0),
        fmt_f(msgs_per_sec, 0),
        fmt_f(mb_per_sec, 1),
        errors,
        lat(0.5),
        lat(0.99),
        lat(0.999),
        max
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_ticks_count_fields_after_the_command_name() {
        let stat =
            "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 9 0 42 0 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(1234 + 567));
        assert_eq!(parse_stat_cpu_ticks("4242 (x) S 1"), None);
        assert!(pid_cpu_secs(std::process::id()).is_some_and(|s| s >= 0.0));
        assert_eq!(pids_cpu_secs(&[]), None);
    }

    fn hist(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in values {
            h.record(v).unwrap();
        }
        h
    }

    fn host() -> HostInfo {
        HostInfo {
            cpu_model: "Test CPU".into(),
            cores: 2,
            memory_bytes: 24 << 30,
            kernel: "Linux 6.1.0".into(),
            hostname: "bench-a".into(),
        }
    }

    fn run(msgs_per_sec: f64, send: &Histogram<u64>) -> RunSummary {
        let mut params = serde_json::Map::new();
        params.insert("size".into(), serde_json::json!(1024));
        params.insert("topic".into(), serde_json::json!("BenchTopic"));
        RunSummary {
            workload: "produce".into(),
            params,
            host: host(),
            started_at_unix_ms: 1_700_000_000_000,
            duration_secs: 10.0,
            msgs: (msgs_per_sec * 10.0) as u64,
            bytes: (msgs_per_sec * 10.0) as u64 * 1024,
            errors: 0,
            msgs_per_sec,
            mb_per_sec: msgs_per_sec * 1024.0 / BYTES_PER_MB,
            bench_cpu_secs: 4.0,
            broker_cpu_secs: None,
            histograms: vec![summarize("send", send)],
        }
    }

    #[test]
    fn summarize_uniform_distribution() {
        // 1..=100_000 µs once each: p_x ≈ x * 1000 µs, within the
        // histogram's 3-significant-digit precision (0.1%).
        let h = hist(1..=100_000);
        let s = summarize("send", &h);
        assert_eq!(s.name, "send");
        assert_eq!(s.count, 100_000);
        assert!((s.mean_us - 50_000.5).abs() / 50_000.5 < 0.001);
        let near = |got: u64, want: f64| {
            assert!(
                (got as f64 - want).abs() <= want * 0.001 + 1.0,
                "got {got}, want ≈{want}"
            )
        };
        near(s.p50_us, 50_000.0);
        near(s.p75_us, 75_000.0);
        near(s.p95_us, 95_000.0);
        near(s.p99_us, 99_000.0);
        near(s.p999_us, 99_900.0);
        near(s.p9999_us, 99_990.0);
        near(s.max_us, 100_000.0);
        assert!(s.p50_us <= s.p75_us && s.p75_us <= s.p95_us && s.p95_us <= s.p99_us);
        assert!(s.p99_us <= s.p999_us && s.p999_us <= s.p9999_us && s.p9999_us <= s.max_us);
    }

    #[test]
    fn summarize_tail_and_merged_histograms() {
        // 99% fast (100 µs) and 1% slow (50 ms): p99 is fast, p99.9 slow.
        let mut fast = hist(std::iter::repeat_n(100, 9_900));
        let slow = hist(std::iter::repeat_n(50_000, 100));
        // The merged histogram is what gets summarized; averaging the two
        // inputs' p99.9 (100 µs and 50 ms) would give a meaningless 25 ms.
        fast.add(&slow).unwrap();
        let s = summarize("e2e", &fast);
        assert_eq!(s.count, 10_000);
        assert_eq!(s.p50_us, 100);
        assert_eq!(s.p99_us, 100);
        assert!(s.p999_us >= 50_000 && s.p999_us <= 50_050);
        assert!(s.max_us >= 50_000 && s.max_us <= 50_050);
    }

    #[test]
    fn summarize_empty_is_zero() {
        let s = summarize("none", &hist([]));
        assert_eq!(s.count, 0);
        assert_eq!((s.p50_us, s.p99_us, s.max_us), (0, 0, 0));
        assert_eq!(s.mean_us, 0.0);
    }

    #[test]
    fn run_summary_json_round_trip_and_keys() {
        let s = run(12_345.0, &hist(1..=1000));
        let json = serde_json::to_string_pretty(&s).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        for k in [
            "workload",
            "params",
            "host",
            "started_at_unix_ms",
            "duration_secs",
            "msgs",
            "bytes",
            "errors",
            "msgs_per_sec",
            "mb_per_sec",
            "bench_cpu_secs",
            "histograms",
        ] {
            assert!(v.get(k).is_some(), "missing key {k}");
        }
        let h0 = &v["histograms"][0];
        for k in [
            "name", "count", "mean_us", "p50_us", "p75_us", "p95_us", "p99_us", "p999_us",
            "p9999_us", "max_us",
        ] {
            assert!(h0.get(k).is_some(), "missing histogram key {k}");
        }
        for k in ["cpu_model", "cores", "memory_bytes", "kernel", "hostname"] {
            assert!(v["host"].get(k).is_some(), "missing host key {k}");
        }
        let back: RunSummary = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn non_finite_floats_still_load() {
        // serde_json writes NaN as null; loading must not fail on it.
        let mut s = run(1.0, &hist([5]));
        s.msgs_per_sec = f64::NAN;
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"msgs_per_sec\":null"));
        let back: RunSummary = serde_json::from_str(&json).unwrap();
        assert!(back.msgs_per_sec.is_nan());
        assert!(final_report_text(&back).contains("— msgs/s"));
    }

    #[test]
    fn write_results_and_load_summary() {
        let dir = std::env::temp_dir().join(format!("report-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let send = hist(1..=1000);
        let other = hist([]);
        let s = run(100.0, &send);
        let files = write_results(
            &dir.join("nested"),
            &s,
            &[("send", &send), ("../evil name", &other), ("send", &other)],
        )
        .unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "summary.json",
                "send.hgrm",
                "___evil_name.hgrm",
                "send_2.hgrm",
                "latency.svg"
            ]
        );
        for f in &files {
            assert!(f.starts_with(dir.join("nested")), "{f:?} escaped dir");
            assert!(f.is_file());
        }
        assert_eq!(load_summary(&files[0]).unwrap(), s);
        assert!(load_summary(&dir.join("missing.json")).is_err());
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "{\"workload\": 1}").unwrap();
        assert!(load_summary(&bad).unwrap_err().contains("bad.json"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn final_report_has_totals_and_percentiles() {
        let send = hist(
            std::iter::repeat_n(410, 990)
                .chain([1300; 9])
                .chain([10_000]),
        );
        let mut s = run(12_345.0, &send);
        s.histograms.push(summarize("pull", &hist([])));
        let text = final_report_text(&s);
        assert!(text.contains("rocketcore-bench produce"));
        assert!(text.contains("2023-11-14 22:13:20 UTC"), "{text}");
        assert!(
            text.contains("messages:   123,450 (126.4 MB), errors: 0"),
            "{text}"
        );
        assert!(
            text.contains("throughput: 12345 msgs/s, 12.6 MB/s"),
            "{text}"
        );
        // 4 s over 123,450 msgs = 3.240 CPU s per 100k.
        assert!(
            text.contains("bench CPU:  4.00 s (3.240 CPU s per 100k msgs)"),
            "{text}"
        );
        for col in ["p50", "p75", "p95", "p99", "p99.9", "p99.99", "max"] {
            assert!(text.contains(col), "missing {col}");
        }
        assert!(text.contains("410µs"), "{text}");
        assert!(text.contains("10.01ms"), "{text}");
        assert!(text.contains("(no samples)"));
        assert!(text.contains("size=1024 topic=BenchTopic"));
    }

    #[test]
    fn compare_text_ratios() {
        let a = run(10_000.0, &hist(std::iter::repeat_n(1000, 100)));
        let mut b = run(12_300.0, &hist(std::iter::repeat_n(2000, 100)));
        b.params.insert("size".into(), serde_json::json!(4096));
        b.histograms.push(summarize("pull", &hist([5])));
        let text = compare_text(&a, &b);
        let row = |metric: &str| -> Vec<String> {
            text.lines()
                // The metric column is padded, so "send p99" is followed by a
                // space while "send p99.9" is not a match.
                .find(|l| l.starts_with(&format!("{metric} ")))
                .unwrap_or_else(|| panic!("no row {metric} in\n{text}"))
                .split("  ")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        assert_eq!(row("msgs/s"), ["msgs/s", "10000", "12300", "1.23x"]);
        assert_eq!(row("MB/s")[3], "1.23x");
        // 0 errors on both sides: the ratio is undefined.
        assert_eq!(row("errors"), ["errors", "0", "0", "—"]);
        assert_eq!(row("bench CPU s"), ["bench CPU s", "4.00", "4.00", "1.00x"]);
        assert_eq!(row("send p99"), ["send p99", "1.000ms", "2.000ms", "2.00x"]);
        assert_eq!(row("send max")[3], "2.00x");
        assert!(text.contains("pull (B only)"));
        assert!(text.contains("size: 1024 vs 4096"));
        assert!(!text.contains("pull p50"));
        assert_eq!(fmt_ratio(0.0, 5.0), "—");
        assert_eq!(fmt_ratio(f64::NAN, 5.0), "—");
        assert_eq!(fmt_ratio(2.0, 1.0), "0.50x");
    }

    #[test]
    fn progress_line_format() {
        // p50 0.41 ms, p99 1.3 ms, p99.9 2.9 ms, max 10 ms.
        let h = hist(
            std::iter::repeat_n(410, 980)
                .chain(std::iter::repeat_n(1300, 15))
                .chain(std::iter::repeat_n(2900, 4))
                .chain([10_000]),
        );
        assert_eq!(
            progress_line(3.0, 12_345.0, 12.34, 0, &h),
            "t=  3s  msgs/s=12345  MB/s=12.3  errors=0  p50=0.41ms p99=1.3ms p99.9=2.9ms max=10ms"
        );
        assert_eq!(
            progress_line(120.0, 0.0, 0.0, 7, &hist([])),
            "t=120s  msgs/s=0  MB/s=0.0  errors=7  p50=- p99=- p99.9=- max=-"
        );
        assert_eq!(fmt_ms_compact(41), "0.041ms");
        assert_eq!(fmt_ms_compact(9_960), "10ms");
        assert_eq!(fmt_ms_compact(123_000), "123ms");
    }

    #[test]
    fn latency_units() {
        assert_eq!(fmt_latency(0), "0µs");
        assert_eq!(fmt_latency(999), "999µs");
        assert_eq!(fmt_latency(1234), "1.234ms");
        assert_eq!(fmt_latency(12_345), "12.35ms");
        assert_eq!(fmt_latency(123_456), "123.5ms");
        assert_eq!(fmt_latency(12_345_678), "12.35s");
        assert_eq!(group(0), "0");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(fmt_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn host_parsing_and_live_host() {
        let cpu = "processor\t: 0\nmodel name\t: Intel(R)  Xeon(R) CPU @ 2.20GHz\n";
        assert_eq!(
            parse_cpu_model(cpu).as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
        );
        assert_eq!(parse_cpu_model("processor : 0\n"), None);
        assert_eq!(
            parse_mem_total("MemTotal:       24576000 kB\nMemFree: 1 kB\n"),
            Some(24_576_000 * 1024)
        );
        assert_eq!(parse_mem_total("garbage"), None);
        let h = host_info();
        assert!(h.cores >= 1);
        assert!(!h.kernel.is_empty() && !h.hostname.is_empty());
        let t0 = process_cpu_secs();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(process_cpu_secs() >= t0 && t0 >= 0.0);
    }
}
