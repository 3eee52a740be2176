//! `rocketcore admin <verb>`: mqadmin's verbs over the Remoting protocol, to
//! the name server and the brokers it names, so it works against any
//! RocketMQ cluster. Tables are shaped like mqadmin's; `--json` prints one
//! JSON value instead. Connections use TLS and sign requests as the flags
//! say (`net::blocking`).

mod verbs;

pub use verbs::{Verb, WRITE_VERBS};

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use crate::net::blocking::{Conn, Link};
use crate::protocol::{decode_json, ClusterInfo, TopicRouteData};
use crate::remoting::codes::{request_code as rq, response_code as rs};
use crate::remoting::RemotingCommand;

#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Name server, host:port (default: $NAMESRV_ADDR, else 127.0.0.1:9876).
    #[arg(short = 'n', long = "namesrvAddr", global = true)]
    pub namesrv: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Connect with TLS.
    #[arg(long, global = true)]
    pub tls: bool,
    /// With --tls: verify servers against these CA certificates (PEM);
    /// without it any certificate is accepted.
    #[arg(long, global = true, requires = "tls")]
    pub tls_ca: Option<PathBuf>,
    /// Sign every request with this ACL access key (needs --secret-key).
    #[arg(long, global = true, requires = "secret_key")]
    pub access_key: Option<String>,
    #[arg(long, global = true, requires = "access_key")]
    pub secret_key: Option<String>,
    #[command(subcommand)]
    pub verb: verbs::Verb,
}

/// What every verb talks through.
pub struct Session {
    namesrv: SocketAddr,
    link: Link,
    /// What the verb printed, as JSON and as text; the caller shows one.
    out: RefCell<Vec<(Value, String)>>,
}

pub type Result<T> = std::result::Result<T, String>;

impl Session {
    pub fn new(namesrv: SocketAddr, link: Link) -> Session {
        Session {
            namesrv,
            link,
            out: RefCell::new(Vec::new()),
        }
    }

    /// Keeps a verb's result for `take_output`.
    pub fn print(&self, value: Value, text: String) {
        self.out.borrow_mut().push((value, text));
    }

    /// What the verbs run so far produced, oldest first.
    pub fn take_output(&self) -> Vec<(Value, String)> {
        std::mem::take(&mut self.out.borrow_mut())
    }

    pub fn call(&self, addr: SocketAddr, cmd: RemotingCommand) -> Result<RemotingCommand> {
        let mut c = Conn::connect(addr, &self.link).map_err(|e| format!("{addr}: {e}"))?;
        c.call(cmd).map_err(|e| format!("{addr}: {e}"))
    }

    /// `call`, and anything but SUCCESS is an error naming its code.
    pub fn expect_ok(&self, addr: SocketAddr, cmd: RemotingCommand) -> Result<RemotingCommand> {
        let code = cmd.code;
        let r = self.call(addr, cmd)?;
        if r.code != rs::SUCCESS {
            return Err(format!(
                "{addr}: request {code} answered {} {}",
                r.code,
                r.remark.as_deref().unwrap_or("")
            ));
        }
        Ok(r)
    }

    pub fn namesrv_addr(&self) -> SocketAddr {
        self.namesrv
    }

    pub fn namesrv_ok(&self, cmd: RemotingCommand) -> Result<RemotingCommand> {
        self.expect_ok(self.namesrv, cmd)
    }

    pub fn cluster_info(&self) -> Result<ClusterInfo> {
        let r = self.namesrv_ok(RemotingCommand::new_request(rq::GET_BROKER_CLUSTER_INFO))?;
        decode_json(r.body.as_deref().unwrap_or(b"")).map_err(|e| e.to_string())
    }

    pub fn route(&self, topic: &str) -> Result<TopicRouteData> {
        let mut cmd = RemotingCommand::new_request(rq::GET_ROUTEINFO_BY_TOPIC);
        cmd.set_ext("topic", topic);
        let r = self.namesrv_ok(cmd)?;
        decode_json(r.body.as_deref().unwrap_or(b"")).map_err(|e| e.to_string())
    }

    /// Sends what `request` builds to each master `-b` or `-c` names;
    /// every one must succeed. Their addresses, in order.
    pub fn on_masters(
        &self,
        broker: Option<SocketAddr>,
        cluster: Option<&str>,
        request: impl Fn() -> RemotingCommand,
    ) -> Result<Vec<SocketAddr>> {
        let mut done = Vec::new();
        for (_, addr) in self.masters(broker, cluster)? {
            self.expect_ok(addr, request())?;
            done.push(addr);
        }
        Ok(done)
    }

    /// The master addresses `-b` names (one) or `-c` names (every master of
    /// the cluster), by broker name.
    pub fn masters(
        &self,
        broker: Option<SocketAddr>,
        cluster: Option<&str>,
    ) -> Result<Vec<(String, SocketAddr)>> {
        let info = self.cluster_info()?;
        let mut out = Vec::new();
        for (name, data) in &info.broker_addr_table {
            let Some(addr) = data.broker_addrs.get(&0) else {
                continue;
            };
            let Ok(addr) = addr.parse::<SocketAddr>() else {
                continue;
            };
            let in_cluster = cluster.is_none_or(|c| data.cluster == c);
            let is_broker = broker.is_none_or(|b| b == addr);
            if in_cluster && is_broker {
                out.push((name.clone(), addr));
            }
        }
        if let Some(b) = broker {
            if out.is_empty() {
                // A broker the name server does not list is still addressable.
                out.push((b.to_string(), b));
            }
        } else if out.is_empty() {
            return Err(match cluster {
                Some(c) => format!("no master broker in cluster {c}"),
                None => "the name server lists no master broker".into(),
            });
        }
        Ok(out)
    }
}

/// Runs one verb; its output goes to stdout.
pub fn run(args: AdminArgs) -> Result<()> {
    let namesrv = args
        .namesrv
        .or_else(|| std::env::var("NAMESRV_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:9876".into());
    // mqadmin takes "a:9876;b:9876"; one name server answers for all.
    let first = namesrv.split(';').next().unwrap_or("").trim();
    let namesrv: SocketAddr = first
        .parse()
        .map_err(|_| format!("name server {first:?}: expected host:port with an IP address"))?;
    let tls = if args.tls {
        Some(crate::security::tls::build_client_config(
            args.tls_ca.as_deref(),
        )?)
    } else {
        None
    };
    let credentials = match (args.access_key, args.secret_key) {
        (Some(access_key), Some(secret_key)) => Some(crate::security::Credentials {
            access_key,
            secret_key,
        }),
        _ => None,
    };
    let session = Session::new(namesrv, Link { tls, credentials });
    let result = run_verb(&session, args.verb);
    for (value, text) in session.take_output() {
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        } else {
            println!("{text}");
        }
    }
    result
}

/// Runs one verb; what it prints is kept in `session` (`take_output`).
pub fn run_verb(session: &Session, verb: Verb) -> Result<()> {
    verbs::run(session, verb)
}

/// Left-aligned columns, as mqadmin's `%-Ns` formats print them.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  ", w = *w));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_align_columns() {
        let t = super::table(
            &["#Topic", "#QID"],
            &[
                vec!["a".into(), "0".into()],
                vec!["longer-name".into(), "12".into()],
            ],
        );
        assert_eq!(t, "#Topic       #QID\na            0\nlonger-name  12");
    }
}
