//! Runs the name server (`crate::namesrv`, pure logic) on its own glommio
//! executor thread: accepts connections, feeds requests to the route table,
//! expires silent brokers and forgets brokers whose connection closed.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use glommio::LocalExecutorBuilder;

use crate::broker::{executor_hint, EXECUTOR_IO_MEMORY_BYTES};
use crate::namesrv::{self, NamesrvState};
use crate::net::{Conn, Handler};
use crate::remoting::RemotingCommand;
use crate::security::{AclView, Security};

struct NamesrvHandler {
    state: RefCell<NamesrvState>,
    /// Requests answered, for /metrics.
    requests: std::cell::Cell<u64>,
    boot_ms: i64,
    /// Set when ACL is on: requests that change state need an admin account.
    acl: Option<AclView>,
    /// What GET_NAMESRV_CONFIG reports.
    config: std::collections::BTreeMap<&'static str, String>,
}

impl NamesrvHandler {
    /// GET/UPDATE_NAMESRV_CONFIG (319/318). Nothing here can change while
    /// the name server runs, so an update is refused, naming the key.
    fn config_request(&self, req: &RemotingCommand) -> Option<RemotingCommand> {
        use crate::remoting::codes::{request_code as rq, response_code as rs};
        let reply = |code, remark: Option<String>| {
            RemotingCommand::new_response(code, remark).reply_to(req)
        };
        match req.code {
            rq::GET_NAMESRV_CONFIG => {
                let mut text = String::new();
                for (k, v) in &self.config {
                    text.push_str(&format!("{k}={v}\n"));
                }
                Some(reply(rs::SUCCESS, None).with_body(text.into_bytes()))
            }
            rq::UPDATE_NAMESRV_CONFIG => {
                let body = String::from_utf8_lossy(req.body.as_deref().unwrap_or(b"")).into_owned();
                let props = crate::broker::config::parse_properties(&body);
                let black = ["configBlackList", "configStorePath", "kvConfigPath"];
                Some(match props.keys().next() {
                    None => reply(rs::SYSTEM_ERROR, Some("no key=value line in the request body".into())),
                    Some(_) if props.keys().any(|k| black.contains(&k.as_str())) => {
                        reply(rs::NO_PERMISSION, Some("Can not update config in black list.".into()))
                    }
                    Some(k) => reply(
                        rs::SYSTEM_ERROR,
                        Some(format!("{k} cannot change while the name server runs: set it in namesrv.conf and restart")),
                    ),
                })
            }
            _ => None,
        }
    }
}

fn config_table(
    listen: SocketAddr,
    security: &Security,
    metrics: Option<SocketAddr>,
) -> std::collections::BTreeMap<&'static str, String> {
    let tls = match security.tls.mode() {
        crate::security::TlsMode::Disabled => "disabled",
        crate::security::TlsMode::Permissive => "permissive",
        crate::security::TlsMode::Enforcing => "enforcing",
    };
    std::collections::BTreeMap::from([
        ("listenPort", listen.port().to_string()),
        ("bindAddress", listen.ip().to_string()),
        ("aclEnable", security.acl.is_some().to_string()),
        ("tlsMode", tls.to_string()),
        (
            "metricsExporterType",
            if metrics.is_some() { "PROM" } else { "DISABLE" }.to_string(),
        ),
        (
            "metricsPromExporterPort",
            metrics.map_or(String::new(), |m| m.port().to_string()),
        ),
        ("rocketcoreVersion", env!("CARGO_PKG_VERSION").to_string()),
    ])
}

impl Handler for NamesrvHandler {
    fn handle(
        self: Rc<Self>,
        conn: Rc<Conn>,
        req: RemotingCommand,
    ) -> impl std::future::Future<Output = Option<RemotingCommand>> {
        self.requests.set(self.requests.get() + 1);
        if let Some(acl) = &self.acl {
            if let Err(why) = acl.with(|a| a.check_namesrv(&req, conn.peer.ip())) {
                return std::future::ready((!req.is_oneway()).then(|| acl.refuse(&req, &why)));
            }
        }
        if let Some(reply) = self.config_request(&req) {
            return std::future::ready(Some(reply));
        }
        let reply = namesrv::process(
            &mut self.state.borrow_mut(),
            conn.id,
            &req,
            crate::protocol::now_ms(),
        );
        std::future::ready(reply)
    }

    fn on_close(&self, conn: &Rc<Conn>) {
        namesrv::on_connection_closed(&mut self.state.borrow_mut(), conn.id);
    }
}

pub struct NamesrvHandle {
    thread: std::thread::JoinHandle<()>,
    stop: flume::Sender<()>,
    pub listen: SocketAddr,
}

impl NamesrvHandle {
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// Starts the name server on `listen` with neither ACL nor TLS; returns
/// once it accepts connections.
pub fn start(listen: SocketAddr) -> Result<NamesrvHandle, String> {
    start_with(listen, Security::none(), Default::default())
}

/// Starts the name server on `listen`, guarded as `security` says, with
/// /metrics on `metrics` when given.
pub fn start_with(
    listen: SocketAddr,
    security: Security,
    http: crate::broker::config::MetricsConfig,
) -> Result<NamesrvHandle, String> {
    let metrics = http.listen();
    crate::net::ensure_port_free(listen, "name server")?;
    if let Some(m) = metrics {
        crate::net::ensure_port_free(m, "name server metrics")?;
    }
    security.warn_if_open("name server", listen);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let (stop_tx, stop_rx) = flume::bounded::<()>(1);
    let thread = std::thread::Builder::new()
        .name("namesrv".into())
        .spawn(move || {
            let ex = match LocalExecutorBuilder::default()
                .name("namesrv")
                .io_memory(EXECUTOR_IO_MEMORY_BYTES)
                .make()
            {
                Ok(ex) => ex,
                Err(e) => {
                    let _ = ready_tx.send(Err(executor_hint(e)));
                    return;
                }
            };
            ex.run(async move {
                let listener = match glommio::net::TcpListener::bind(listen) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("binding name server to {listen}: {e}")));
                        return;
                    }
                };
                let handler = Rc::new(NamesrvHandler {
                    state: RefCell::new(NamesrvState::default()),
                    requests: std::cell::Cell::new(0),
                    boot_ms: crate::protocol::now_ms(),
                    acl: security.acl.clone().map(AclView::new),
                    config: config_table(listen, &security, metrics),
                });
                let http = match metrics {
                    Some(addr) => match glommio::net::TcpListener::bind(addr) {
                        Ok(l) => {
                            let pages = Rc::new(NamesrvPages {
                                handler: handler.clone(),
                                metrics: http.prom,
                                console: http.console.then(|| {
                                    Rc::new(console_for(
                                        listen,
                                        &security,
                                        http.admin_password.clone(),
                                    ))
                                }),
                            });
                            Some(glommio::spawn_local(crate::net::http::serve(l, pages)))
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!(
                                "binding the name server's metrics port {addr}: {e}"
                            )));
                            return;
                        }
                    },
                    None => None,
                };
                let h = handler.clone();
                let scan = glommio::spawn_local(async move {
                    loop {
                        glommio::timer::sleep(Duration::from_millis(
                            namesrv::BROKER_SCAN_INTERVAL_MS,
                        ))
                        .await;
                        let gone = namesrv::scan_inactive(
                            &mut h.state.borrow_mut(),
                            crate::protocol::now_ms(),
                        );
                        for addr in gone {
                            tracing::info!(broker = %addr, "name server expired a silent broker");
                        }
                    }
                });
                let _ = ready_tx.send(Ok(()));
                let stop = async {
                    let _ = stop_rx.recv_async().await;
                };
                crate::net::serve(listener, handler, 0xFFFF, security.tls.clone(), stop).await;
                drop(scan);
                drop(http);
            });
        })
        .map_err(|e| format!("spawning name server thread: {e}"))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(NamesrvHandle {
            thread,
            stop: stop_tx,
            listen,
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err("name server thread exited during start-up".into()),
    }
}

/// What the name server's HTTP port serves.
struct NamesrvPages {
    handler: Rc<NamesrvHandler>,
    metrics: bool,
    console: Option<Rc<crate::console::Console>>,
}

/// The console of a name server talks to that name server, over TLS when
/// it requires TLS, signed with the inner credentials when it has them.
fn console_for(
    listen: SocketAddr,
    security: &Security,
    password: Option<String>,
) -> crate::console::Console {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let tls = match security.tls.mode() {
        crate::security::TlsMode::Enforcing => crate::security::tls::build_client_config(None).ok(),
        _ => None,
    };
    let link = crate::net::blocking::Link {
        tls,
        credentials: security.credentials.clone(),
    };
    crate::console::Console::new(addr, link, password, format!("name server {addr}"))
}

impl crate::net::http::Pages for NamesrvPages {
    fn metrics(self: Rc<Self>) -> Option<impl std::future::Future<Output = String>> {
        let handler = self.handler.clone();
        self.metrics.then(|| handler.metrics_page())
    }

    fn console(&self) -> Option<Rc<crate::console::Console>> {
        self.console.clone()
    }
}

impl NamesrvHandler {
    async fn metrics_page(self: Rc<Self>) -> String {
        let (clusters, brokers, topics) = self.state.borrow().counts();
        let page = NamesrvPage {
            requests: self.requests.get(),
            acl_refused: self.acl.as_ref().map_or(0, |a| a.refused.get()),
            clusters,
            brokers,
            topics,
            uptime_secs: (crate::protocol::now_ms() - self.boot_ms) / 1000,
        };
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(page));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

#[derive(Debug)]
struct NamesrvPage {
    requests: u64,
    acl_refused: u64,
    clusters: usize,
    brokers: usize,
    topics: usize,
    uptime_secs: i64,
}

impl prometheus_client::collector::Collector for NamesrvPage {
    fn encode(
        &self,
        mut e: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use crate::broker::metrics::{counters, gauges};
        let none = || vec![("node_type".to_string(), "namesrv".to_string())];
        counters(
            &mut e,
            "rocketcore_namesrv_requests",
            "Requests answered.",
            vec![(none(), self.requests)],
        )?;
        counters(
            &mut e,
            "rocketcore_acl_denied",
            "Requests the ACL refused.",
            vec![(none(), self.acl_refused)],
        )?;
        gauges(
            &mut e,
            "rocketcore_namesrv_clusters",
            "Clusters known.",
            vec![(none(), self.clusters as i64)],
        )?;
        gauges(
            &mut e,
            "rocketcore_namesrv_brokers",
            "Brokers registered and alive.",
            vec![(none(), self.brokers as i64)],
        )?;
        gauges(
            &mut e,
            "rocketmq_topic_number",
            "Topics with a route.",
            vec![(none(), self.topics as i64)],
        )?;
        gauges(
            &mut e,
            "rocketcore_uptime_seconds",
            "Since the name server started.",
            vec![(none(), self.uptime_secs)],
        )
    }
}
