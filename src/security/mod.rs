//! Who may talk to a server: ACL (RocketMQ's `plain_acl.yml`, signed
//! requests) and TLS on the listeners, configured with RocketMQ's property
//! names. Owns the settings, their loading at start, the reloading of the
//! ACL file, and the per-executor view of it that requests are checked
//! against.

pub mod acl;
pub mod addr;
pub mod tls;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

pub use acl::PlainAcl;
pub use rocketcore_protocol::signature::{self, Credentials};
pub use tls::{TlsMode, TlsSettings};

/// How often the ACL file is looked at for changes.
pub const ACL_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// The security settings of a broker or a name server.
#[derive(Debug, Clone, Default)]
pub struct SecurityConfig {
    /// `aclEnable`.
    pub acl_enable: bool,
    /// `aclFile`; default `$ROCKETMQ_HOME/conf/plain_acl.yml`, as in Java.
    pub acl_file: Option<PathBuf>,
    /// `innerClientAuthenticationCredentials`: what a broker signs its
    /// requests to name servers with.
    pub inner_credentials: Option<Credentials>,
    pub tls: TlsSettings,
}

impl SecurityConfig {
    /// Takes one property if it is a security key: `Ok(false)` when it is
    /// not one.
    pub fn apply_property(&mut self, key: &str, value: &str) -> Result<bool, String> {
        let v = value.trim();
        let bad = |what: &str| format!("{key}={v}: {what}");
        match key {
            "aclEnable" => {
                self.acl_enable = crate::broker::config::parse_bool(v)
                    .ok_or_else(|| bad("expected true or false"))?
            }
            "aclFile" | "rocketmq.acl.plain.file" => self.acl_file = Some(PathBuf::from(v)),
            "innerClientAuthenticationCredentials" => {
                self.inner_credentials = Some(parse_credentials(v).map_err(|e| bad(&e))?)
            }
            _ => return self.tls.apply_property(key, v),
        }
        Ok(true)
    }

    /// Applies every security key of `props`; the rest are returned.
    pub fn apply_properties(
        &mut self,
        props: &BTreeMap<String, String>,
    ) -> Result<Vec<String>, String> {
        let mut rest = Vec::new();
        for (k, v) in props {
            if !self.apply_property(k, v)? {
                rest.push(k.clone());
            }
        }
        Ok(rest)
    }

    fn acl_path(&self) -> Result<PathBuf, String> {
        if let Some(p) = &self.acl_file {
            return Ok(p.clone());
        }
        match std::env::var_os("ROCKETMQ_HOME") {
            Some(home) => Ok(Path::new(&home).join("conf").join("plain_acl.yml")),
            None => Err("aclEnable=true needs aclFile=PATH (or ROCKETMQ_HOME, whose conf/plain_acl.yml is read)".into()),
        }
    }

    /// Loads what the settings name: the ACL file (watched from now on)
    /// and the TLS certificate. Any error stops the server from starting.
    pub fn load(&self) -> Result<Security, String> {
        let acl = if self.acl_enable {
            Some(AclSource::open(self.acl_path()?)?)
        } else {
            None
        };
        Ok(Security {
            acl,
            tls: tls::ServerTls::load(&self.tls)?,
            client_tls: tls::client_config(&self.tls)?,
            credentials: self.inner_credentials.clone(),
        })
    }
}

/// `{"accessKey":"…","secretKey":"…"}`, as ACL 2.0 spells it.
fn parse_credentials(text: &str) -> Result<Credentials, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct C {
        access_key: String,
        secret_key: String,
    }
    let c: C = serde_json::from_str(text)
        .map_err(|e| format!("expected {{\"accessKey\":\"…\",\"secretKey\":\"…\"}}: {e}"))?;
    Ok(Credentials {
        access_key: c.access_key,
        secret_key: c.secret_key,
    })
}

/// What a server loaded from its [`SecurityConfig`]; shared by its
/// executors.
#[derive(Clone)]
pub struct Security {
    pub acl: Option<Arc<AclSource>>,
    pub tls: Arc<tls::ServerTls>,
    /// For connections this server opens (broker → name server).
    pub client_tls: Option<Arc<rustls::ClientConfig>>,
    pub credentials: Option<Credentials>,
}

impl Security {
    /// Neither ACL nor TLS.
    pub fn none() -> Security {
        Security {
            acl: None,
            tls: Arc::new(tls::ServerTls::disabled()),
            client_tls: None,
            credentials: None,
        }
    }

    /// Whether anything guards the listeners.
    pub fn guarded(&self) -> bool {
        self.acl.is_some() || self.tls.mode() != TlsMode::Disabled
    }

    /// Warns when `addr` can be reached from other machines with neither
    /// ACL nor TLS.
    pub fn warn_if_open(&self, what: &str, addr: std::net::SocketAddr) {
        if !addr.ip().is_loopback() && !self.guarded() {
            tracing::warn!(
                "{what} listens on {addr}, reachable from other machines, with neither ACL (aclEnable) nor TLS (tlsMode): anyone who can connect may send, consume and administer"
            );
        }
    }
}

/// The ACL file, reloaded when it changes. Executors read it through an
/// [`AclView`]; the lock here is taken only when a new version is picked
/// up, never per request.
pub struct AclSource {
    path: PathBuf,
    current: Mutex<Arc<PlainAcl>>,
    /// Bumped on every successful reload.
    generation: AtomicU64,
    /// Reloads that failed (the previous version stays in force).
    pub failed_reloads: AtomicU64,
}

/// What identifies one version of the file on disk.
fn stamp(path: &Path) -> Option<(std::time::SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn read_acl(path: &Path) -> Result<PlainAcl, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("reading ACL file {}: {e}", path.display()))?;
    PlainAcl::parse(&text).map_err(|e| format!("ACL file {}: {e}", path.display()))
}

impl AclSource {
    /// Reads the file (an error if it is missing or malformed) and starts
    /// watching it.
    pub fn open(path: PathBuf) -> Result<Arc<AclSource>, String> {
        let acl = read_acl(&path)?;
        tracing::info!(
            "ACL on: {} accounts from {}",
            acl.accounts(),
            path.display()
        );
        let first = stamp(&path);
        let source = Arc::new(AclSource {
            path,
            current: Mutex::new(Arc::new(acl)),
            generation: AtomicU64::new(1),
            failed_reloads: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&source);
        std::thread::Builder::new()
            .name("acl-watch".into())
            .spawn(move || watch(weak, first))
            .map_err(|e| format!("starting the ACL file watcher: {e}"))?;
        Ok(source)
    }

    fn reload(&self) {
        match read_acl(&self.path) {
            Ok(acl) => {
                tracing::info!(
                    "ACL reloaded: {} accounts from {}",
                    acl.accounts(),
                    self.path.display()
                );
                *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(acl);
                self.generation.fetch_add(1, Ordering::Release);
            }
            Err(e) => {
                self.failed_reloads.fetch_add(1, Ordering::Relaxed);
                tracing::error!("{e}; the previous ACL stays in force");
            }
        }
    }

    fn snapshot(&self) -> (u64, Arc<PlainAcl>) {
        let generation = self.generation.load(Ordering::Acquire);
        let acl = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        (generation, acl)
    }
}

/// Polls the file's modification time and length until the source is
/// dropped. A write in progress may be read half-done and fail to parse;
/// the next change (the end of that write) reloads it.
fn watch(source: Weak<AclSource>, mut seen: Option<(std::time::SystemTime, u64)>) {
    loop {
        std::thread::sleep(ACL_RELOAD_INTERVAL);
        let Some(source) = source.upgrade() else {
            return;
        };
        let now = stamp(&source.path);
        if now != seen {
            seen = now;
            source.reload();
        }
    }
}

/// One executor's view of the ACL: the version in force, refreshed when
/// the source's generation moves, and this executor's refusal count.
pub struct AclView {
    source: Arc<AclSource>,
    cached: RefCell<(u64, Arc<PlainAcl>)>,
    pub refused: Cell<u64>,
}

impl AclView {
    pub fn new(source: Arc<AclSource>) -> AclView {
        let cached = source.snapshot();
        AclView {
            source,
            cached: RefCell::new(cached),
            refused: Cell::new(0),
        }
    }

    /// Runs `f` on the ACL in force: one atomic load unless the file
    /// changed.
    pub fn with<R>(&self, f: impl FnOnce(&PlainAcl) -> R) -> R {
        let generation = self.source.generation.load(Ordering::Acquire);
        if generation != self.cached.borrow().0 {
            *self.cached.borrow_mut() = self.source.snapshot();
        }
        f(&self.cached.borrow().1)
    }

    /// Counts a refusal and builds its answer: SYSTEM_ERROR with an
    /// `AclException` remark, what RocketMQ's ACL 1.0 answers.
    pub fn refuse(
        &self,
        req: &crate::remoting::RemotingCommand,
        why: &str,
    ) -> crate::remoting::RemotingCommand {
        self.refused.set(self.refused.get() + 1);
        tracing::debug!(code = req.code, "ACL refused a request: {why}");
        let mut reply = crate::remoting::RemotingCommand::new_response(
            crate::remoting::codes::response_code::SYSTEM_ERROR,
            Some(format!("AclException: {why}")),
        );
        reply.opaque = req.opaque;
        reply
    }
}
