//! TLS on the Remoting listeners and on the connections a server opens,
//! with rustls (ring provider). Modes as RocketMQ names them: `disabled`,
//! `permissive` (plain and TLS on one port, told apart by the first byte:
//! 0x16 opens a TLS handshake, no Remoting frame starts with it in
//! practice since that would announce a frame of over 350 MiB) and
//! `enforcing` (TLS only).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use glommio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use rustls::{ClientConfig, ServerConfig};

pub use rocketcore_protocol::client::tls::{build_client_config, server_name};
use rocketcore_protocol::client::tls::{provider, read_certs, read_roots};

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
/// A handshake that takes longer than this is dropped, so half-open TLS
/// connections cannot pile up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disabled,
    Permissive,
    Enforcing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    #[default]
    None,
    Optional,
    Require,
}

/// RocketMQ's `tls.*` properties (also read from `tls.config.file`).
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// `tlsMode` / `tls.server.mode`; unset: permissive when a certificate
    /// is configured, else disabled.
    pub mode: Option<TlsMode>,
    pub cert_path: Option<PathBuf>,
    pub key_path: Option<PathBuf>,
    pub need_client_auth: ClientAuth,
    /// CA certificates that client certificates must chain to.
    pub trust_cert_path: Option<PathBuf>,
    /// `tls.test.mode.enable`: serve a self-signed certificate made at start.
    pub test_mode: bool,
    /// `tls.enable`: connections this server opens use TLS.
    pub client_enable: bool,
    /// `tls.client.authServer`: verify the server's certificate against
    /// `client_trust_cert_path` (Java's default: false, trust anything).
    pub client_auth_server: bool,
    pub client_trust_cert_path: Option<PathBuf>,
}

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    crate::broker::config::parse_bool(v).ok_or_else(|| format!("{key}={v}: expected true or false"))
}

impl TlsSettings {
    /// Takes one `tls.*` property: `Ok(false)` when `key` is not one.
    pub fn apply_property(&mut self, key: &str, v: &str) -> Result<bool, String> {
        match key {
            "tlsMode" | "tls.server.mode" => {
                self.mode = Some(match v.to_ascii_lowercase().as_str() {
                    "disabled" => TlsMode::Disabled,
                    "permissive" => TlsMode::Permissive,
                    "enforcing" => TlsMode::Enforcing,
                    _ => return Err(format!("{key}={v}: expected disabled, permissive or enforcing")),
                })
            }
            "tls.server.certPath" => self.cert_path = Some(PathBuf::from(v)),
            "tls.server.keyPath" => self.key_path = Some(PathBuf::from(v)),
            "tls.server.keyPassword" | "tls.client.keyPassword" if !v.is_empty() => {
                return Err(format!(
                    "{key}: encrypted private keys are not supported; give an unencrypted PKCS#8 or RSA key file"
                ))
            }
            "tls.server.keyPassword" | "tls.client.keyPassword" => {}
            "tls.server.need.client.auth" => {
                self.need_client_auth = match v {
                    "none" => ClientAuth::None,
                    "optional" => ClientAuth::Optional,
                    "require" => ClientAuth::Require,
                    _ => return Err(format!("{key}={v}: expected none, optional or require")),
                }
            }
            "tls.server.trustCertPath" => self.trust_cert_path = Some(PathBuf::from(v)),
            // Java's server verifies client certificates whenever it asks
            // for them; nothing more to set.
            "tls.server.authClient" => {
                parse_bool(key, v)?;
            }
            "tls.test.mode.enable" => self.test_mode = parse_bool(key, v)?,
            "tls.enable" => self.client_enable = parse_bool(key, v)?,
            "tls.client.authServer" => self.client_auth_server = parse_bool(key, v)?,
            "tls.client.trustCertPath" => self.client_trust_cert_path = Some(PathBuf::from(v)),
            "tls.config.file" => {
                let text = std::fs::read_to_string(v).map_err(|e| format!("{key}={v}: {e}"))?;
                for (k, val) in crate::broker::config::parse_properties(&text) {
                    if !self.apply_property(&k, val.trim())? {
                        return Err(format!("{v}: {k} is not a TLS property"));
                    }
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub fn effective_mode(&self) -> TlsMode {
        self.mode
            .unwrap_or(if self.cert_path.is_some() || self.test_mode {
                TlsMode::Permissive
            } else {
                TlsMode::Disabled
            })
    }
}

/// How a server's listeners treat TLS.
pub struct ServerTls {
    mode: TlsMode,
    acceptor: Option<futures_rustls::TlsAcceptor>,
}

/// A connection once its first byte said what it speaks.
pub enum Accepted {
    Plain(TcpStream),
    Tls(Box<futures_rustls::server::TlsStream<TcpStream>>),
}

impl ServerTls {
    pub fn disabled() -> ServerTls {
        ServerTls {
            mode: TlsMode::Disabled,
            acceptor: None,
        }
    }

    pub fn mode(&self) -> TlsMode {
        self.mode
    }

    pub fn load(s: &TlsSettings) -> Result<Arc<ServerTls>, String> {
        let mode = s.effective_mode();
        if mode == TlsMode::Disabled {
            return Ok(Arc::new(ServerTls::disabled()));
        }
        let (certs, key) = match (&s.cert_path, &s.key_path) {
            (Some(c), Some(k)) => {
                let key = PrivateKeyDer::from_pem_file(k)
                    .map_err(|e| format!("reading the private key {}: {e}", k.display()))?;
                (read_certs(c)?, key)
            }
            (None, None) if s.test_mode => {
                tracing::warn!("TLS test mode: serving a self-signed certificate made at start; clients must not verify it");
                let made = rcgen::generate_simple_self_signed(vec![
                    "localhost".to_string(),
                    "127.0.0.1".to_string(),
                    "::1".to_string(),
                ])
                .map_err(|e| format!("making a self-signed certificate: {e}"))?;
                let key = PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
                (vec![made.cert.der().clone()], key)
            }
            _ => {
                return Err(
                    "TLS needs both tls.server.certPath and tls.server.keyPath (or tls.test.mode.enable=true)".into(),
                )
            }
        };
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = match s.need_client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            auth => {
                let path = s.trust_cert_path.as_ref().ok_or(
                    "tls.server.need.client.auth needs tls.server.trustCertPath (the CA of client certificates)",
                )?;
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(read_roots(path)?),
                    provider(),
                );
                let verifier = if auth == ClientAuth::Optional {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                builder.with_client_cert_verifier(
                    verifier
                        .build()
                        .map_err(|e| format!("TLS client verifier: {e}"))?,
                )
            }
        };
        let config = builder
            .with_single_cert(certs, key)
            .map_err(|e| format!("TLS certificate and key: {e}"))?;
        Ok(Arc::new(ServerTls {
            mode,
            acceptor: Some(futures_rustls::TlsAcceptor::from(Arc::new(config))),
        }))
    }

    /// Decides what a new connection speaks. `Err` says why it is closed.
    pub async fn accept(&self, stream: TcpStream) -> Result<Accepted, String> {
        let Some(acceptor) = &self.acceptor else {
            return Ok(Accepted::Plain(stream));
        };
        let mut first = [0u8; 1];
        // Remoting clients speak first, so waiting here costs an idle
        // connection no more than waiting in its reader would.
        match stream.peek(&mut first).await {
            Ok(0) => return Err("closed before sending anything".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("reading: {e}")),
        }
        if first[0] != TLS_HANDSHAKE {
            return match self.mode {
                TlsMode::Enforcing => Err("plain connection refused: tlsMode is enforcing".into()),
                _ => Ok(Accepted::Plain(stream)),
            };
        }
        match glommio::timer::timeout(HANDSHAKE_TIMEOUT, async {
            Ok(acceptor.accept(stream).await)
        })
        .await
        {
            Ok(Ok(tls)) => Ok(Accepted::Tls(Box::new(tls))),
            Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
            Err(_) => Err("TLS handshake timed out".into()),
        }
    }
}

/// The client side for connections a server opens (`tls.enable`).
pub fn client_config(s: &TlsSettings) -> Result<Option<Arc<ClientConfig>>, String> {
    if !s.client_enable {
        return Ok(None);
    }
    let trust = if s.client_auth_server {
        Some(s.client_trust_cert_path.as_deref().ok_or(
            "tls.client.authServer=true needs tls.client.trustCertPath (the CA of the servers' certificates)",
        )?)
    } else {
        None
    };
    build_client_config(trust).map(Some)
}

/// Makes a certificate authority and a server certificate it signs for
/// `hosts` (names or IP addresses), and writes `ca.pem`, `ca.key`,
/// `server.pem` and `server.key` into `dir`: what `tls.server.certPath`,
/// `tls.server.keyPath` and a client's trust path need. Keys are written
/// readable by the owner only.
pub fn write_certificates(dir: &Path, hosts: &[String]) -> Result<Vec<PathBuf>, String> {
    let err = |what: &str, e: rcgen::Error| format!("making the {what}: {e}");
    let ca_key = rcgen::KeyPair::generate().map_err(|e| err("CA key", e))?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| err("CA certificate", e))?;
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "rocketcore CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(|e| err("CA certificate", e))?;
    let ca_pem = ca_cert.pem();
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = rcgen::KeyPair::generate().map_err(|e| err("server key", e))?;
    let mut params =
        rcgen::CertificateParams::new(hosts.to_vec()).map_err(|e| err("server certificate", e))?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        hosts.first().map_or("rocketcore", String::as_str),
    );
    let server_cert = params
        .signed_by(&server_key, &issuer)
        .map_err(|e| err("server certificate", e))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for (name, text, secret) in [
        ("ca.pem", ca_pem, false),
        ("ca.key", ca_key_pem, true),
        ("server.pem", server_cert.pem(), false),
        ("server.key", server_key.serialize_pem(), true),
    ] {
        let path = dir.join(name);
        write_file(&path, text.as_bytes(), secret)
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

fn write_file(path: &Path, bytes: &[u8], secret: bool) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_defaults_follow_the_certificate() {
        let mut s = TlsSettings::default();
        assert_eq!(s.effective_mode(), TlsMode::Disabled);
        s.apply_property("tls.test.mode.enable", "true").unwrap();
        assert_eq!(s.effective_mode(), TlsMode::Permissive);
        s.apply_property("tls.server.mode", "enforcing").unwrap();
        assert_eq!(s.effective_mode(), TlsMode::Enforcing);
        assert!(s.apply_property("tlsMode", "sometimes").is_err());
        assert!(!s.apply_property("listenPort", "1").unwrap());
        assert!(s
            .apply_property("tls.server.keyPassword", "secret")
            .is_err());
    }

    #[test]
    fn a_mode_without_a_certificate_is_refused() {
        let mut s = TlsSettings::default();
        s.apply_property("tlsMode", "enforcing").unwrap();
        let e = ServerTls::load(&s).err().unwrap();
        assert!(e.contains("certPath"), "{e}");
        s.test_mode = true;
        assert_eq!(ServerTls::load(&s).unwrap().mode(), TlsMode::Enforcing);
    }

    #[test]
    fn missing_files_are_named() {
        let mut s = TlsSettings::default();
        s.apply_property("tls.server.certPath", "/nonexistent/cert.pem")
            .unwrap();
        s.apply_property("tls.server.keyPath", "/nonexistent/key.pem")
            .unwrap();
        let e = ServerTls::load(&s).err().unwrap();
        assert!(e.contains("/nonexistent/key.pem"), "{e}");
        assert!(build_client_config(Some(Path::new("/nonexistent/ca.pem"))).is_err());
    }
}
