//! Runs a workload end to end: resolve routes, start connections, print a
//! progress line per second, merge histograms, write the results folder.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::args::LoadArgs;
use crate::report::{self, RunSummary};
use crate::route::{self, Mq};
use crate::workload::{self, Control, WorkerResult, INTERRUPTED};

/// How long e2e consumers keep draining after the producers stop.
const E2E_DRAIN: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Produce,
    Consume,
    E2e,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Produce => "produce",
            Kind::Consume => "consume",
            Kind::E2e => "e2e",
        }
    }
}

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Ctrl-C ends the run cleanly: workers finish what is in flight and the
/// report is still written.
pub fn install_ctrl_c() {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
}

/// Groups queues by broker so each connection talks to one broker.
fn assign(mqs: &[Mq], connections: usize) -> Vec<Vec<Mq>> {
    let mut out: Vec<Vec<Mq>> = vec![Vec::new(); connections];
    for (i, mq) in mqs.iter().enumerate() {
        out[i % connections].push(mq.clone());
    }
    // More connections than queues: share queues round-robin.
    for i in 0..connections {
        if out[i].is_empty() {
            out[i].push(mqs[i % mqs.len()].clone());
        }
        let broker = out[i][0].broker;
        out[i].retain(|m| m.broker == broker);
    }
    out
}

fn params(args: &LoadArgs, kind: Kind) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: serde_json::Value| {
        m.insert(k.to_string(), v);
    };
    put("workload", kind.name().into());
    put("namesrv", args.namesrv.to_string().into());
    put("topic", args.topic.clone().into());
    put("topics", args.topics.into());
    put("size", args.size.into());
    put("connections", args.connections.into());
    put("inflight", args.inflight.into());
    put("batch", args.batch.into());
    put(
        "rate",
        args.rate.map_or(serde_json::Value::Null, |r| r.into()),
    );
    put(
        "duration_secs",
        args.run_for()
            .map_or(serde_json::Value::Null, |d| d.as_secs_f64().into()),
    );
    put(
        "messages",
        args.messages.map_or(serde_json::Value::Null, |m| m.into()),
    );
    put("warmup_secs", args.warmup.as_secs_f64().into());
    put("style", format!("{:?}", args.style).to_lowercase().into());
    m
}

pub fn run(kind: Kind, args: LoadArgs) -> Result<PathBuf, String> {
    crate::client::set_link(link(&args)?);
    args.validate(kind == Kind::E2e)?;
    let create = !args.no_create && kind != Kind::Consume;
    let mut mqs = Vec::new();
    for topic in args.topic_names() {
        mqs.extend(route::resolve(args.namesrv, &topic, args.queues, create)?);
    }
    install_ctrl_c();
    let started_at_unix_ms = report::now_unix_ms();
    let out_dir = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("results").join(format!("{}-{}", kind.name(), started_at_unix_ms / 1000))
    });
    let cpu0 = report::process_cpu_secs();
    let broker_cpu0 = report::pids_cpu_secs(&args.broker_pid);
    if !args.broker_pid.is_empty() && broker_cpu0.is_none() {
        return Err(format!(
            "--broker-pid {:?}: no such process (its /proc/<pid>/stat cannot be read)",
            args.broker_pid
        ));
    }
    let ctl = Arc::new(Control::new(&args));
    let args = Arc::new(args);
    let producers = if kind == Kind::Consume {
        0
    } else {
        args.connections
    };
    let consumers = if kind == Kind::Produce {
        0
    } else {
        args.connections.min(mqs.len())
    };
    let intervals = workload::new_intervals(producers + consumers);
    let per_conn_rate = args
        .rate
        .map(|r| r / args.batch as f64 / producers.max(1) as f64);

    let mut handles = Vec::new();
    // Consumers first, so e2e consumers are in place before the first send.
    for (i, mine) in assign(&mqs, consumers.max(1))
        .into_iter()
        .enumerate()
        .take(consumers)
    {
        let (args, ctl, iv) = (args.clone(), ctl.clone(), intervals.clone());
        let e2e = kind == Kind::E2e;
        handles.push((
            false,
            std::thread::spawn(move || {
                vec![workload::consume_worker(
                    &args,
                    &mine,
                    &ctl,
                    &iv[producers + i],
                    e2e,
                )]
            }),
        ));
    }
    let assigned: Vec<(usize, Vec<Mq>)> = assign(&mqs, producers.max(1))
        .into_iter()
        .enumerate()
        .take(producers)
        .collect();
    // TLS sockets cannot be polled from a shared thread.
    let threads = match args.tls {
        true => 0,
        false => args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
    };
    if threads == 0 {
        for (i, mine) in assigned {
            let (args, ctl, iv) = (args.clone(), ctl.clone(), intervals.clone());
            handles.push((
                true,
                std::thread::spawn(move || {
                    vec![workload::produce_worker(
                        &args,
                        i,
                        &mine,
                        &ctl,
                        &iv[i],
                        per_conn_rate,
                    )]
                }),
            ));
        }
    } else {
        let mut groups: Vec<Vec<(usize, Vec<Mq>)>> = vec![Vec::new(); threads.min(producers)];
        for (n, worker) in assigned.into_iter().enumerate() {
            let at = n % groups.len();
            groups[at].push(worker);
        }
        for group in groups {
            let (args, ctl, iv) = (args.clone(), ctl.clone(), intervals.clone());
            handles.push((
                true,
                std::thread::spawn(move || {
                    crate::mux::produce_group(&args, &group, &ctl, &iv, per_conn_rate)
                }),
            ));
        }
    }

    // Progress: one line per second from the merged interval histograms.
    let mut last = Instant::now();
    let mut producers_done_at: Option<Instant> = None;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let all_done = handles.iter().all(|(_, h)| h.is_finished());
        let producers_done = handles
            .iter()
            .filter(|(p, _)| *p)
            .all(|(_, h)| h.is_finished());
        if kind == Kind::E2e && producers_done && producers > 0 {
            let at = *producers_done_at.get_or_insert_with(Instant::now);
            if at.elapsed() >= E2E_DRAIN + args.longest_wait()
                || INTERRUPTED.load(Ordering::Relaxed)
            {
                ctl.stop.store(true, Ordering::Relaxed);
            }
        }
        if last.elapsed() >= Duration::from_secs(1) || all_done {
            let secs = last.elapsed().as_secs_f64();
            last = Instant::now();
            let iv = workload::drain_intervals(&intervals);
            println!(
                "{}",
                report::progress_line(
                    ctl.start.elapsed().as_secs_f64(),
                    iv.msgs as f64 / secs,
                    iv.bytes as f64 / secs / 1e6,
                    iv.errors,
                    &iv.hist
                )
            );
        }
        if all_done {
            break;
        }
    }
    let elapsed = ctl
        .start
        .elapsed()
        .saturating_sub(args.warmup)
        .as_secs_f64()
        .max(1e-9);
    let mut merged: Vec<(&'static str, Histogram<u64>)> = Vec::new();
    let (mut msgs, mut bytes, mut errors) = (0u64, 0u64, 0u64);
    let mut first_error = None;
    let mut results = Vec::new();
    for (is_producer, h) in handles {
        let rs: Vec<WorkerResult> = h
            .join()
            .map_err(|_| "a worker thread panicked".to_string())?;
        results.extend(rs.into_iter().map(|r| (is_producer, r)));
    }
    for (is_producer, r) in results {
        // Throughput counts the primary side: sends, or receives for consume.
        if is_producer || kind == Kind::Consume {
            msgs += r.msgs;
            bytes += r.bytes;
        }
        errors += r.errors;
        if first_error.is_none() {
            first_error = r.first_error;
        }
        for (name, hist) in r.hists {
            match merged.iter_mut().find(|(n, _)| *n == name) {
                Some((_, m)) => {
                    let _ = m.add(&hist);
                }
                None => merged.push((name, hist)),
            }
        }
    }
    if let Some(e) = &first_error {
        eprintln!("first error: {e}");
    }
    // Report order: what the user asked about first.
    let order = ["send", "publish_delay", "e2e", "pull"];
    merged.sort_by_key(|(n, _)| order.iter().position(|o| o == n).unwrap_or(order.len()));
    let summary = RunSummary {
        workload: kind.name().to_string(),
        params: params(&args, kind),
        host: report::host_info(),
        started_at_unix_ms,
        duration_secs: elapsed,
        msgs,
        bytes,
        errors,
        msgs_per_sec: report::rate(msgs as f64, elapsed),
        mb_per_sec: report::rate(bytes as f64 / report::BYTES_PER_MB, elapsed),
        bench_cpu_secs: report::process_cpu_secs() - cpu0,
        broker_cpu_secs: broker_cpu0
            .zip(report::pids_cpu_secs(&args.broker_pid))
            .map(|(before, after)| after - before),
        histograms: merged
            .iter()
            .map(|(n, h)| report::summarize(n, h))
            .collect(),
    };
    let series: Vec<(&str, &Histogram<u64>)> = merged.iter().map(|(n, h)| (*n, h)).collect();
    let files = report::write_results(&out_dir, &summary, &series)
        .map_err(|e| format!("writing {}: {e}", out_dir.display()))?;
    println!("{}", report::final_report_text(&summary));
    for f in files {
        println!("wrote {}", f.display());
    }
    Ok(out_dir)
}

fn link(args: &LoadArgs) -> Result<crate::client::Link, String> {
    let tls = if args.tls {
        Some(rocketcore_protocol::client::tls::build_client_config(
            args.tls_ca.as_deref(),
        )?)
    } else {
        None
    };
    let credentials = match (&args.access_key, &args.secret_key) {
        (Some(a), Some(s)) => Some(rocketcore_protocol::signature::Credentials {
            access_key: a.clone(),
            secret_key: s.clone(),
        }),
        _ => None,
    };
    Ok(crate::client::Link { tls, credentials })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mq(b: &str, q: i32) -> Mq {
        Mq {
            topic: "t".into(),
            broker: b.parse().unwrap(),
            queue_id: q,
        }
    }

    #[test]
    fn queues_spread_over_connections_one_broker_each() {
        let mqs: Vec<Mq> = (0..8).map(|q| mq("127.0.0.1:1", q)).collect();
        let a = assign(&mqs, 3);
        assert_eq!(a.iter().map(|v| v.len()).sum::<usize>(), 8);
        let a = assign(&mqs, 20);
        assert!(a.iter().all(|v| v.len() == 1));
        let mixed = vec![mq("127.0.0.1:1", 0), mq("127.0.0.1:2", 0)];
        let a = assign(&mixed, 1);
        assert_eq!(a[0].len(), 1, "one broker per connection");
    }
}
