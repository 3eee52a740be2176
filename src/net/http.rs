//! A server's HTTP port (`metricsPromExporterPort`): `GET /metrics`
//! (Prometheus / OpenMetrics text) and `GET /healthz`. HTTP/1.1 with one
//! request per connection: a scrape every few seconds needs nothing more,
//! and a request that is slow, oversized or malformed costs one task for at
//! most `REQUEST_TIMEOUT`.

use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

/// What a server shows on its HTTP port.
pub trait Pages: 'static {
    /// The /metrics page, OpenMetrics text.
    fn metrics(self: Rc<Self>) -> impl Future<Output = String>;
}

/// Request heads larger than this are refused (431).
const MAX_HEAD_BYTES: usize = 8 << 10;
/// Reading a request and writing its answer must fit in this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
pub async fn serve<P: Pages>(listener: TcpListener, pages: Rc<P>) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let pages = pages.clone();
                glommio::spawn_local(async move {
                    let _ = glommio::timer::timeout(REQUEST_TIMEOUT, async {
                        answer(stream, &pages).await;
                        Ok(())
                    })
                    .await;
                })
                .detach();
            }
            Err(e) => {
                tracing::warn!("metrics port: accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn answer<P: Pages>(mut stream: TcpStream, pages: &Rc<P>) {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let (status, content_type, body) = loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {
                break route(req.method.unwrap_or(""), req.path.unwrap_or(""), pages).await;
            }
            Ok(httparse::Status::Partial) if head.len() < MAX_HEAD_BYTES => continue,
            Ok(httparse::Status::Partial) => {
                break (
                    "431 Request Header Fields Too Large",
                    TEXT,
                    "request head too large\n".into(),
                )
            }
            Err(e) => break ("400 Bad Request", TEXT, format!("bad request: {e}\n")),
        }
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.flush().await;
}

const TEXT: &str = "text/plain; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn route<P: Pages>(
    method: &str,
    path: &str,
    pages: &Rc<P>,
) -> (&'static str, &'static str, String) {
    if method != "GET" {
        return ("405 Method Not Allowed", TEXT, "only GET\n".into());
    }
    match path.split('?').next().unwrap_or("") {
        "/metrics" => ("200 OK", OPENMETRICS, pages.clone().metrics().await),
        "/healthz" => ("200 OK", TEXT, "ok\n".into()),
        _ => ("404 Not Found", TEXT, "not found: try /metrics\n".into()),
    }
}
