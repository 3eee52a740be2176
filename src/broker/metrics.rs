//! Broker metrics. Each shard counts for itself on the hot path (plain
//! `Cell`s and shard-local maps: no atomics, no locks); a scrape asks every
//! shard for a [`Snapshot`] over the shard mesh, sums them and encodes the
//! page with `prometheus-client` (OpenMetrics text, which Prometheus reads).
//! Names follow RocketMQ 5's where they exist.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use super::mesh::ShardMsg;
use super::shard::Shard;

/// How long a scrape waits for a busy shard's snapshot.
const SNAPSHOT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Latency buckets: 16 µs doubling up to about 8.4 s, then +Inf.
pub const LATENCY_BUCKETS: usize = 20;
const FIRST_BUCKET_US: u64 = 16;

/// A latency histogram one shard writes.
#[derive(Default)]
pub struct Latency {
    counts: [Cell<u64>; LATENCY_BUCKETS + 1],
    sum_us: Cell<u64>,
}

impl Latency {
    pub fn record(&self, us: u64) {
        // Bucket k holds values ≤ 16·2^k µs; the last one everything above.
        let k = if us <= FIRST_BUCKET_US {
            0
        } else {
            (64 - ((us - 1) / FIRST_BUCKET_US).leading_zeros()) as usize
        };
        let c = &self.counts[k.min(LATENCY_BUCKETS)];
        c.set(c.get() + 1);
        self.sum_us.set(self.sum_us.get() + us);
    }

    fn snapshot(&self) -> LatencySnapshot {
        LatencySnapshot {
            counts: std::array::from_fn(|i| self.counts[i].get()),
            sum_us: self.sum_us.get(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct LatencySnapshot {
    counts: [u64; LATENCY_BUCKETS + 1],
    sum_us: u64,
}

impl LatencySnapshot {
    fn add(&mut self, o: &LatencySnapshot) {
        for (a, b) in self.counts.iter_mut().zip(o.counts) {
            *a += b;
        }
        self.sum_us += o.sum_us;
    }
}

/// Messages and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flow {
    pub msgs: u64,
    pub bytes: u64,
}

impl Flow {
    fn add(&mut self, o: Flow) {
        self.msgs += o.msgs;
        self.bytes += o.bytes;
    }
}

/// Consumer group → what its pulls returned.
type ByGroup = HashMap<Box<str>, Flow>;

/// What one shard counts beyond `ShardStats`.
#[derive(Default)]
pub struct ShardMetrics {
    topic_in: RefCell<HashMap<Box<str>, Flow>>,
    /// Topic → consumer group → flow.
    topic_out: RefCell<HashMap<Box<str>, ByGroup>>,
    pub send_latency: Latency,
    pub pull_latency: Latency,
}

impl ShardMetrics {
    /// Stored messages of `topic`. Allocates only for a topic's first.
    pub fn stored(&self, topic: &str, msgs: u64, bytes: u64) {
        let mut m = self.topic_in.borrow_mut();
        let f = match m.get_mut(topic) {
            Some(f) => f,
            None => m.entry(topic.into()).or_default(),
        };
        f.add(Flow { msgs, bytes });
    }

    /// Messages a pull of `group` returned from `topic`.
    pub fn pulled(&self, topic: &str, group: &str, msgs: u64, bytes: u64) {
        let mut m = self.topic_out.borrow_mut();
        let groups = match m.get_mut(topic) {
            Some(g) => g,
            None => m.entry(topic.into()).or_default(),
        };
        let f = match groups.get_mut(group) {
            Some(f) => f,
            None => groups.entry(group.into()).or_default(),
        };
        f.add(Flow { msgs, bytes });
    }
}

/// One shard's counters at one moment; sent across shards.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub connections: u64,
    pub held_pulls: u64,
    pub requests: u64,
    pub forwarded: u64,
    pub stored_bytes: u64,
    pub flush_behind_bytes: u64,
    pub cache_hit_reads: u64,
    pub disk_reads: u64,
    pub acl_refused: u64,
    /// Staged, not yet delivered: delay-level and timer messages, and
    /// half messages not yet decided.
    pub staged_delay: u64,
    pub staged_timer: u64,
    pub half_undecided: u64,
    pub topic_in: BTreeMap<String, Flow>,
    pub topic_out: BTreeMap<(String, String), Flow>,
    /// (topic, group) → messages not yet committed.
    pub lag: BTreeMap<(String, String), u64>,
    pub send_latency: LatencySnapshot,
    pub pull_latency: LatencySnapshot,
    pub shard: usize,
    /// Master: (slave id, bytes of this shard's log it has not acknowledged).
    pub slave_lag: Vec<(i64, u64)>,
    /// Slave: whether this shard follows its master now, and how many
    /// bytes behind the master's last frame it is.
    pub following: Option<(bool, u64)>,
}

impl Shard {
    pub fn metrics_snapshot(&self) -> Snapshot {
        let st = self.store.stats();
        let mut lag = BTreeMap::new();
        self.offsets
            .borrow()
            .each(|group, topic, queue_id, committed| {
                let max = self.store.max_offset(topic, queue_id) as i64;
                *lag.entry((topic.to_string(), group.to_string()))
                    .or_insert(0u64) += (max - committed).max(0) as u64;
            });
        let (staged_delay, staged_timer) = self.sched.waiting(&self.store);
        Snapshot {
            shard: self.id,
            connections: self.connection_count() as u64,
            held_pulls: self.polls.held() as u64,
            requests: self.stats.client_requests.get(),
            forwarded: self.stats.forwarded.get(),
            stored_bytes: st.write_pos.saturating_sub(st.min_offset),
            flush_behind_bytes: st.write_pos.saturating_sub(st.flushed),
            cache_hit_reads: st.cache_hit_reads,
            disk_reads: st.disk_reads,
            acl_refused: self.acl.as_ref().map_or(0, |a| a.refused.get()),
            staged_delay,
            staged_timer,
            half_undecided: self.tx.undecided(),
            topic_in: self
                .metrics
                .topic_in
                .borrow()
                .iter()
                .map(|(t, f)| (t.to_string(), *f))
                .collect(),
            topic_out: self
                .metrics
                .topic_out
                .borrow()
                .iter()
                .flat_map(|(t, groups)| {
                    groups
                        .iter()
                        .map(|(g, f)| ((t.to_string(), g.to_string()), *f))
                })
                .collect(),
            lag,
            send_latency: self.metrics.send_latency.snapshot(),
            pull_latency: self.metrics.pull_latency.snapshot(),
            slave_lag: self.repl.lags(self.store.log_end()),
            following: self.is_slave().then(|| {
                let f = &self.repl.follow;
                (
                    f.connected.get(),
                    f.master_end.get().saturating_sub(self.store.log_end()),
                )
            }),
        }
    }
}

/// Every shard's snapshot, this one's taken here; a shard that does not
/// answer in time is left out of this page (and logged), not waited for.
pub async fn page(shard: &Shard) -> String {
    let mut snaps = vec![shard.metrics_snapshot()];
    for k in 0..shard.shards {
        if k == shard.id {
            continue;
        }
        let (tx, rx) = flume::bounded(1);
        if shard
            .mesh_send(k, ShardMsg::Snapshot { reply: tx })
            .await
            .is_err()
        {
            continue;
        }
        let got = futures_lite::future::or(async { rx.recv_async().await.ok() }, async {
            glommio::timer::sleep(SNAPSHOT_TIMEOUT).await;
            None
        })
        .await;
        match got {
            Some(s) => snaps.push(s),
            None => tracing::warn!(shard = k, "metrics: no snapshot from shard {k} in time"),
        }
    }
    let cfg = shard.cfg().clone();
    let node = format!("{}-{}", cfg.broker_name, cfg.broker_id);
    let uptime = (crate::protocol::now_ms() - shard.stats.boot_ms.get()) / 1000;
    let disk = rocketcore_storage::env::disk_space(&cfg.store_dir).ok();
    encode(snaps, &cfg.cluster_name, &node, uptime, disk)
}

/// What the broker's HTTP port (on shard 0) serves.
pub struct BrokerPages {
    pub shard: std::rc::Rc<Shard>,
    pub metrics: bool,
    pub console: Option<std::rc::Rc<crate::console::Console>>,
}

impl crate::net::http::Pages for BrokerPages {
    fn metrics(self: std::rc::Rc<Self>) -> Option<impl std::future::Future<Output = String>> {
        let shard = self.shard.clone();
        self.metrics.then_some(async move { page(&shard).await })
    }

    fn console(&self) -> Option<std::rc::Rc<crate::console::Console>> {
        self.console.clone()
    }
}

/// Every shard's snapshot, summed where series are not per shard.
#[derive(Debug)]
struct Page {
    labels: Vec<(String, String)>,
    shards: Vec<Snapshot>,
    topic_in: BTreeMap<String, Flow>,
    topic_out: BTreeMap<(String, String), Flow>,
    lag: BTreeMap<(String, String), u64>,
    send_latency: LatencySnapshot,
    pull_latency: LatencySnapshot,
    uptime_secs: i64,
    /// (total, available) bytes of the store's filesystem.
    disk: Option<(u64, u64)>,
}

/// The page for `shards` (one snapshot each), with constant labels
/// `cluster` and `node_id` on every series.
pub fn encode(
    shards: Vec<Snapshot>,
    cluster: &str,
    node_id: &str,
    uptime_secs: i64,
    disk: Option<(u64, u64)>,
) -> String {
    let mut page = Page {
        labels: vec![
            ("cluster".into(), cluster.into()),
            ("node_id".into(), node_id.into()),
        ],
        shards: Vec::new(),
        topic_in: BTreeMap::new(),
        topic_out: BTreeMap::new(),
        lag: BTreeMap::new(),
        send_latency: LatencySnapshot::default(),
        pull_latency: LatencySnapshot::default(),
        uptime_secs,
        disk,
    };
    for s in &shards {
        for (t, f) in &s.topic_in {
            page.topic_in.entry(t.clone()).or_default().add(*f);
        }
        for (k, f) in &s.topic_out {
            page.topic_out.entry(k.clone()).or_default().add(*f);
        }
        for (k, n) in &s.lag {
            *page.lag.entry(k.clone()).or_default() += n;
        }
        page.send_latency.add(&s.send_latency);
        page.pull_latency.add(&s.pull_latency);
    }
    page.shards = shards;
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(page));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

pub(crate) type Labels = Vec<(String, String)>;

impl Page {
    fn with(&self, extra: &[(&str, &str)]) -> Labels {
        let mut l = self.labels.clone();
        l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        l
    }

    fn per_shard(&self, value: impl Fn(&Snapshot) -> u64) -> Vec<(Labels, u64)> {
        self.shards
            .iter()
            .map(|s| (self.with(&[("shard", &s.shard.to_string())]), value(s)))
            .collect()
    }
}

pub(crate) fn counters(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: Vec<(Labels, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in series {
        ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

pub(crate) fn gauges(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: Vec<(Labels, i64)>,
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in series {
        ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn histogram(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    labels: Labels,
    h: &LatencySnapshot,
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
    let mut buckets = Vec::with_capacity(LATENCY_BUCKETS + 1);
    for (k, count) in h.counts.iter().enumerate() {
        let upper = if k == LATENCY_BUCKETS {
            f64::INFINITY
        } else {
            (FIRST_BUCKET_US << k) as f64 / 1e6
        };
        buckets.push((upper, *count));
    }
    let count = h.counts.iter().sum();
    m.encode_family(&labels)?.encode_histogram::<Labels>(
        h.sum_us as f64 / 1e6,
        count,
        &buckets,
        None,
    )
}

impl prometheus_client::collector::Collector for Page {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let by_topic = |f: fn(&Flow) -> u64| -> Vec<(Labels, u64)> {
            self.topic_in
                .iter()
                .map(|(t, flow)| (self.with(&[("topic", t)]), f(flow)))
                .collect()
        };
        let by_group = |f: fn(&Flow) -> u64| -> Vec<(Labels, u64)> {
            self.topic_out
                .iter()
                .map(|((t, g), flow)| (self.with(&[("topic", t), ("consumer_group", g)]), f(flow)))
                .collect()
        };
        counters(
            &mut e,
            "rocketmq_messages_in",
            "Messages stored.",
            by_topic(|f| f.msgs),
        )?;
        counters(
            &mut e,
            "rocketmq_throughput_in",
            "Message bytes stored.",
            by_topic(|f| f.bytes),
        )?;
        counters(
            &mut e,
            "rocketmq_messages_out",
            "Messages returned by pulls.",
            by_group(|f| f.msgs),
        )?;
        counters(
            &mut e,
            "rocketmq_throughput_out",
            "Message bytes returned by pulls.",
            by_group(|f| f.bytes),
        )?;
        let lag = self
            .lag
            .iter()
            .map(|((t, g), n)| (self.with(&[("topic", t), ("consumer_group", g)]), *n as i64))
            .collect();
        gauges(
            &mut e,
            "rocketmq_consumer_lag_messages",
            "Messages of the topic the group has not committed.",
            lag,
        )?;
        histogram(
            &mut e,
            "rocketcore_request_latency_seconds",
            "Send requests, from decoded to answered.",
            self.with(&[("request", "send")]),
            &self.send_latency,
        )?;
        histogram(
            &mut e,
            "rocketcore_pull_latency_seconds",
            "Pull requests, from decoded to answered, holding included.",
            self.with(&[("request", "pull")]),
            &self.pull_latency,
        )?;
        counters(
            &mut e,
            "rocketcore_requests",
            "Requests read from client connections.",
            self.per_shard(|s| s.requests),
        )?;
        counters(
            &mut e,
            "rocketcore_cross_shard_requests",
            "Requests moved to the shard owning their queue.",
            self.per_shard(|s| s.forwarded),
        )?;
        counters(
            &mut e,
            "rocketcore_tail_cache_hit_reads",
            "Reads served from the tail cache.",
            self.per_shard(|s| s.cache_hit_reads),
        )?;
        counters(
            &mut e,
            "rocketcore_disk_reads",
            "Reads that went to disk.",
            self.per_shard(|s| s.disk_reads),
        )?;
        let slave_lag = self
            .shards
            .iter()
            .flat_map(|s| {
                s.slave_lag.iter().map(|(id, lag)| {
                    let labels = self.with(&[
                        ("shard", &s.shard.to_string()),
                        ("slave_broker_id", &id.to_string()),
                    ]);
                    (labels, *lag as i64)
                })
            })
            .collect();
        gauges(
            &mut e,
            "rocketcore_ha_slave_lag_bytes",
            "Master: bytes of the shard's log a connected slave has not acknowledged.",
            slave_lag,
        )?;
        let following: Vec<&Snapshot> = self
            .shards
            .iter()
            .filter(|s| s.following.is_some())
            .collect();
        if !following.is_empty() {
            let series = |f: fn((bool, u64)) -> i64| -> Vec<(Labels, i64)> {
                following
                    .iter()
                    .filter_map(|s| {
                        let v = f(s.following?);
                        Some((self.with(&[("shard", &s.shard.to_string())]), v))
                    })
                    .collect()
            };
            gauges(
                &mut e,
                "rocketcore_ha_following",
                "Slave: 1 while the shard streams from its master.",
                series(|(c, _)| c as i64),
            )?;
            gauges(
                &mut e,
                "rocketcore_ha_behind_master_bytes",
                "Slave: bytes between the master's log end (as of its last frame) and this shard's.",
                series(|(_, b)| b as i64),
            )?;
        }
        counters(
            &mut e,
            "rocketcore_acl_denied",
            "Requests the ACL refused.",
            self.per_shard(|s| s.acl_refused),
        )?;
        let as_gauge = |v: Vec<(Labels, u64)>| v.into_iter().map(|(l, n)| (l, n as i64)).collect();
        gauges(
            &mut e,
            "rocketcore_connections",
            "Open client connections.",
            as_gauge(self.per_shard(|s| s.connections)),
        )?;
        gauges(
            &mut e,
            "rocketcore_held_pulls",
            "Pulls waiting for messages.",
            as_gauge(self.per_shard(|s| s.held_pulls)),
        )?;
        gauges(
            &mut e,
            "rocketmq_storage_size",
            "Commit-log bytes kept.",
            as_gauge(self.per_shard(|s| s.stored_bytes)),
        )?;
        gauges(
            &mut e,
            "rocketmq_storage_flush_behind_bytes",
            "Written but not yet durable.",
            as_gauge(self.per_shard(|s| s.flush_behind_bytes)),
        )?;
        let staged = self
            .shards
            .iter()
            .flat_map(|s| {
                let shard = s.shard.to_string();
                [
                    ("delay", s.staged_delay),
                    ("timer", s.staged_timer),
                    ("half", s.half_undecided),
                ]
                .map(|(kind, n)| (self.with(&[("shard", &shard), ("kind", kind)]), n as i64))
            })
            .collect();
        gauges(
            &mut e,
            "rocketcore_staged_messages",
            "Waiting for delivery: delay-level and timer messages; half messages not yet decided.",
            staged,
        )?;
        if let Some((total, available)) = self.disk {
            gauges(
                &mut e,
                "rocketcore_disk_total_bytes",
                "Size of the store's filesystem.",
                vec![(self.labels.clone(), total as i64)],
            )?;
            gauges(
                &mut e,
                "rocketcore_disk_free_bytes",
                "Free bytes of the store's filesystem, as unprivileged users see them.",
                vec![(self.labels.clone(), available as i64)],
            )?;
        }
        gauges(
            &mut e,
            "rocketcore_uptime_seconds",
            "Since the broker started.",
            vec![(self.labels.clone(), self.uptime_secs)],
        )?;
        gauges(
            &mut e,
            "rocketcore_build_info",
            "Always 1.",
            vec![(self.with(&[("version", env!("CARGO_PKG_VERSION"))]), 1)],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_hold_what_their_bound_says() {
        let h = Latency::default();
        for us in [1, 16, 17, 32, 33, 1_000_000, u64::MAX / 2] {
            h.record(us);
        }
        let s = h.snapshot();
        assert_eq!(s.counts[0], 2, "1 and 16 µs");
        assert_eq!(s.counts[1], 2, "17 and 32 µs");
        assert_eq!(s.counts[2], 1, "33 µs");
        // 1 s is in the bucket bounded by 16·2^16 µs = 1.048576 s.
        assert_eq!(s.counts[16], 1);
        assert_eq!(s.counts[LATENCY_BUCKETS], 1, "overflow");
    }

    #[test]
    fn pages_sum_topics_over_shards() {
        let mut a = Snapshot::default();
        a.topic_in.insert("T".into(), Flow { msgs: 2, bytes: 20 });
        let mut b = Snapshot {
            shard: 1,
            ..Default::default()
        };
        b.topic_in.insert("T".into(), Flow { msgs: 3, bytes: 30 });
        b.lag.insert(("T".into(), "G".into()), 7);
        b.staged_timer = 4;
        let page = encode(vec![a, b], "C", "broker-a", 5, Some((1000, 400)));
        assert!(page.contains(
            r#"rocketcore_staged_messages{cluster="C",node_id="broker-a",shard="1",kind="timer"} 4"#
        ));
        assert!(page.contains(r#"rocketcore_disk_free_bytes{cluster="C",node_id="broker-a"} 400"#));
        assert!(
            page.contains(
                r#"rocketmq_messages_in_total{cluster="C",node_id="broker-a",topic="T"} 5"#
            ),
            "{page}"
        );
        assert!(page.contains(
            r#"rocketmq_throughput_in_total{cluster="C",node_id="broker-a",topic="T"} 50"#
        ));
        assert!(page.contains(r#"rocketmq_consumer_lag_messages{cluster="C",node_id="broker-a",topic="T",consumer_group="G"} 7"#));
        assert!(
            page.contains(r#"rocketcore_connections{cluster="C",node_id="broker-a",shard="1"} 0"#)
        );
        assert!(page.trim_end().ends_with("# EOF"));
    }
}
