//! The command line, and the checks that refuse bad parameters before any
//! load is sent.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rocketcore_protocol::delay_levels::{parse_delay_levels, DEFAULT_DELAY_LEVELS};

#[derive(Parser)]
#[command(
    name = "rocketcore-bench",
    version,
    about = "Load generator for RocketMQ-protocol brokers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Send messages as fast as allowed (or at --rate) and measure send latency.
    Produce(LoadArgs),
    /// Pull messages (long polling) and measure consumption.
    Consume(LoadArgs),
    /// Produce and consume at once; latency = receive time - send time.
    E2e(LoadArgs),
    /// Compare two summary.json files side by side.
    Compare { a: PathBuf, b: PathBuf },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Style {
    /// Request/response; `--inflight` requests in flight per connection.
    Sync,
    /// Fire and forget: no responses, latency is the time to write.
    Oneway,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum From {
    Earliest,
    Latest,
}

#[derive(Args, Clone, Debug)]
pub struct LoadArgs {
    /// Name server address.
    #[arg(long)]
    pub namesrv: SocketAddr,
    #[arg(long, default_value = "BenchTopic")]
    pub topic: String,
    /// Spread the load over this many topics, named <topic>-0, <topic>-1, …
    #[arg(long, default_value_t = 1)]
    pub topics: usize,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Connections (each its own client id), spread over the queues.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 1)]
    pub inflight: usize,
    /// Threads that drive the producing connections, each polling its
    /// share of the sockets (default: one per core); 0 gives every
    /// connection a thread of its own, as TLS connections always get.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Messages per send request (SEND_BATCH_MESSAGE when > 1).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Fixed total rate in messages/s (open loop, latency measured from each
    /// send's intended time); default: as fast as possible.
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long to run, e.g. 30s, 2m, 500ms.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many messages instead.
    #[arg(long)]
    pub messages: Option<u64>,
    /// Samples in the first part of the run are not recorded.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub warmup: Duration,
    /// Results folder (default: results/<workload>-<unix time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Queues to create the topic with when it does not exist.
    #[arg(long, default_value_t = 8)]
    pub queues: u32,
    /// Do not create a missing topic (fail instead).
    #[arg(long)]
    pub no_create: bool,
    #[arg(long, value_enum, default_value_t = Style::Sync)]
    pub style: Style,
    /// Tag set on every message.
    #[arg(long, default_value = "bench")]
    pub tag: String,
    /// Give every message a unique KEYS property.
    #[arg(long)]
    pub keys: bool,
    /// Consumer group for consume and e2e.
    #[arg(long, default_value = "rocketcore-bench")]
    pub group: String,
    /// Where consume starts.
    #[arg(long, value_enum, default_value_t = From::Earliest)]
    pub from: From,
    /// Timer messages: each is due at a random point within this long after
    /// it is sent (TIMER_DELIVER_MS), and its body stamp is that due time,
    /// so e2e latency is delivery lateness.
    #[arg(long, value_parser = parse_duration)]
    pub timer_spread: Option<Duration>,
    /// Delay-level messages (DELAY=L); with --level-ms, the body stamp is
    /// the due time, so e2e latency is delivery lateness.
    #[arg(long)]
    pub delay_level: Option<u32>,
    /// The broker's delay of --delay-level in ms (default: RocketMQ's table).
    #[arg(long)]
    pub level_ms: Option<u64>,
    /// Give message k the property bucket=k mod N (for --sql filters).
    #[arg(long)]
    pub buckets: Option<u64>,
    /// Consume with this SQL92 subscription instead of "*".
    #[arg(long)]
    pub sql: Option<String>,
    /// A broker process whose CPU time over the run goes into summary.json
    /// (`broker_cpu_secs`) and the report as µs per message; repeat for
    /// several (a master and its slaves). Linux /proc only.
    #[arg(long)]
    pub broker_pid: Vec<u32>,
    /// Connect with TLS (to name server and brokers).
    #[arg(long)]
    pub tls: bool,
    /// With --tls: verify servers against these CA certificates (PEM);
    /// without it any certificate is accepted.
    #[arg(long, requires = "tls")]
    pub tls_ca: Option<PathBuf>,
    /// Sign every request with this ACL access key (needs --secret-key).
    #[arg(long, requires = "secret_key")]
    pub access_key: Option<String>,
    #[arg(long, requires = "access_key")]
    pub secret_key: Option<String>,
}

/// Messages smaller than this cannot carry the send timestamp e2e needs.
pub const STAMP_BYTES: usize = 8;
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
pub const MAX_CONNECTIONS: usize = 4096;
pub const MAX_INFLIGHT: usize = 65_536;
pub const MAX_BATCH: usize = 1024;
pub const DEFAULT_DURATION: Duration = Duration::from_secs(30);

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mul) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 2m or 500ms"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("{s:?} is not a non-negative duration"));
    }
    Ok(Duration::from_secs_f64(v * mul))
}

impl LoadArgs {
    /// How long the broker holds a message back before delivering it.
    pub fn longest_wait(&self) -> Duration {
        if let Some(spread) = self.timer_spread {
            return spread;
        }
        Duration::from_millis(self.level_delay_ms().unwrap_or(0))
    }

    /// The delay of --delay-level: --level-ms, or RocketMQ's default table.
    pub fn level_delay_ms(&self) -> Option<u64> {
        let level = self.delay_level?;
        self.level_ms.or_else(|| {
            let table = parse_delay_levels(DEFAULT_DELAY_LEVELS).ok()?;
            table
                .get((level as usize).clamp(1, table.len()) - 1)
                .copied()
        })
    }

    /// Refuses parameters that cannot work, with the reason.
    pub fn validate(&self, e2e: bool) -> Result<(), String> {
        if self.size == 0 || self.size > MAX_BODY_BYTES {
            return Err(format!("--size {} must be 1..={MAX_BODY_BYTES}", self.size));
        }
        if e2e && self.size < STAMP_BYTES {
            return Err(format!(
                "--size {} is below the {STAMP_BYTES} bytes e2e needs for its timestamp",
                self.size
            ));
        }
        if self.connections == 0 || self.connections > MAX_CONNECTIONS {
            return Err(format!(
                "--connections {} must be 1..={MAX_CONNECTIONS}",
                self.connections
            ));
        }
        if self.inflight == 0 || self.inflight > MAX_INFLIGHT {
            return Err(format!(
                "--inflight {} must be 1..={MAX_INFLIGHT}",
                self.inflight
            ));
        }
        if self.batch == 0 || self.batch > MAX_BATCH {
            return Err(format!("--batch {} must be 1..={MAX_BATCH}", self.batch));
        }
        if self.batch * (self.size + 64) > MAX_BODY_BYTES {
            return Err(format!(
                "--batch {} x --size {} exceeds the {MAX_BODY_BYTES}-byte request limit",
                self.batch, self.size
            ));
        }
        if let Some(r) = self.rate {
            if !r.is_finite() || r <= 0.0 {
                return Err(format!(
                    "--rate {r} must be a positive number of messages per second"
                ));
            }
        }
        if self.duration.is_some() && self.messages.is_some() {
            return Err("give --duration or --messages, not both".into());
        }
        if self.messages == Some(0) {
            return Err("--messages must be positive".into());
        }
        if self.duration == Some(Duration::ZERO) {
            return Err("--duration must be positive".into());
        }
        if self.topics == 0 || self.topics > 1024 {
            return Err(format!("--topics {} must be 1..=1024", self.topics));
        }
        if self.queues == 0 || self.queues > 1024 {
            return Err(format!("--queues {} must be 1..=1024", self.queues));
        }
        if !rocketcore_protocol::message::valid_topic(&self.topic) {
            return Err(format!(
                "--topic {:?} is not a valid RocketMQ topic name",
                self.topic
            ));
        }
        if (self.timer_spread.is_some() || self.delay_level.is_some()) && self.batch > 1 {
            return Err("delay and timer messages cannot be batched; drop --batch".into());
        }
        if self.timer_spread.is_some() && self.delay_level.is_some() {
            return Err("give --timer-spread or --delay-level, not both".into());
        }
        if let Some(l) = self.delay_level {
            if self.level_ms.is_none() && !(1..=18).contains(&l) {
                return Err(format!(
                    "--delay-level {l} is outside RocketMQ's 1..=18; give --level-ms for other tables"
                ));
            }
        }
        if self.buckets == Some(0) {
            return Err("--buckets must be positive".into());
        }
        if self.style == Style::Oneway && self.batch > 1 {
            return Err("--style oneway sends single messages; drop --batch".into());
        }
        Ok(())
    }

    /// The topic names the load goes to.
    pub fn topic_names(&self) -> Vec<String> {
        if self.topics <= 1 {
            vec![self.topic.clone()]
        } else {
            (0..self.topics)
                .map(|i| format!("{}-{i}", self.topic))
                .collect()
        }
    }

    pub fn run_for(&self) -> Option<Duration> {
        match (self.duration, self.messages) {
            (Some(d), _) => Some(d),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_DURATION),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> LoadArgs {
        LoadArgs {
            namesrv: "127.0.0.1:9876".parse().unwrap(),
            topic: "T".into(),
            topics: 1,
            size: 1024,
            connections: 4,
            inflight: 1,
            threads: None,
            broker_pid: Vec::new(),
            batch: 1,
            rate: None,
            duration: None,
            messages: None,
            warmup: Duration::ZERO,
            out: None,
            queues: 8,
            no_create: false,
            style: Style::Sync,
            tag: "t".into(),
            keys: false,
            group: "g".into(),
            from: From::Earliest,
            timer_spread: None,
            delay_level: None,
            level_ms: None,
            buckets: None,
            sql: None,
            tls: false,
            tls_ca: None,
            access_key: None,
            secret_key: None,
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn bad_parameters_are_refused_with_a_reason() {
        assert!(args().validate(false).is_ok());
        type Case = (Box<dyn Fn(&mut LoadArgs)>, &'static str);
        let cases: Vec<Case> = vec![
            (Box::new(|a| a.size = 0), "--size"),
            (Box::new(|a| a.connections = 0), "--connections"),
            (Box::new(|a| a.inflight = 0), "--inflight"),
            (Box::new(|a| a.rate = Some(-5.0)), "--rate"),
            (Box::new(|a| a.rate = Some(f64::NAN)), "--rate"),
            (
                Box::new(|a| {
                    a.duration = Some(Duration::from_secs(1));
                    a.messages = Some(5)
                }),
                "not both",
            ),
            (Box::new(|a| a.topic = "bad topic".into()), "--topic"),
            (
                Box::new(|a| {
                    a.timer_spread = Some(Duration::from_secs(1));
                    a.batch = 4
                }),
                "cannot be batched",
            ),
            (
                Box::new(|a| {
                    a.timer_spread = Some(Duration::from_secs(1));
                    a.delay_level = Some(1)
                }),
                "not both",
            ),
            (Box::new(|a| a.delay_level = Some(19)), "--delay-level"),
            (Box::new(|a| a.buckets = Some(0)), "--buckets"),
            (
                Box::new(|a| {
                    a.batch = 1024;
                    a.size = 8192
                }),
                "--batch",
            ),
        ];
        for (f, word) in cases {
            let mut a = args();
            f(&mut a);
            let e = a.validate(false).unwrap_err();
            assert!(e.contains(word), "{e}");
        }
        let mut a = args();
        a.size = 4;
        assert!(a.validate(true).unwrap_err().contains("e2e"));
        assert_eq!(args().run_for(), Some(DEFAULT_DURATION));
        let mut a = args();
        a.topics = 3;
        assert_eq!(a.topic_names(), vec!["T-0", "T-1", "T-2"]);
        a.topics = 0;
        assert!(a.validate(false).unwrap_err().contains("--topics"));
    }
}
