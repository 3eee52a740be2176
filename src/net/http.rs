//! A server's HTTP port (`metricsPromExporterPort`): `GET /metrics`
//! (Prometheus / OpenMetrics text), `GET /healthz`, and the web console
//! (`crate::console`) with its JSON API. HTTP/1.1 with one request per
//! connection: a scrape every few seconds and a console's clicks need
//! nothing more, and a request that is slow, oversized or malformed costs
//! one task for a bounded time.

use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use crate::console::Console;

/// What a server shows on its HTTP port.
pub trait Pages: 'static {
    /// The /metrics page, OpenMetrics text; None when metrics are off.
    fn metrics(self: Rc<Self>) -> Option<impl Future<Output = String>>;
    /// The console, when it is on.
    fn console(&self) -> Option<Rc<Console>>;
}

/// Request heads larger than this are refused (431).
const MAX_HEAD_BYTES: usize = 8 << 10;
/// Request bodies larger than this are refused (413): console requests
/// are a verb and its flags.
const MAX_BODY_BYTES: usize = 64 << 10;
/// Reading a request must fit in this.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Answering it must fit in this: a console verb may wait for brokers
/// that do not answer (connect timeouts of a few seconds each).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn serve<P: Pages>(listener: TcpListener, pages: Rc<P>) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let pages = pages.clone();
                glommio::spawn_local(async move {
                    let _ = glommio::timer::timeout(READ_TIMEOUT + ANSWER_TIMEOUT, async {
                        answer(stream, &pages).await;
                        Ok(())
                    })
                    .await;
                })
                .detach();
            }
            Err(e) => {
                tracing::warn!("http port: accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// One parsed request.
pub struct Request {
    pub method: String,
    /// Without the query string.
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response: status line text, content type, body.
pub struct Response {
    pub status: &'static str,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: &'static str, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type,
            body: body.into(),
        }
    }

    pub fn text(status: &'static str, body: impl Into<String>) -> Self {
        Response::new(status, TEXT, body.into())
    }
}

async fn read_request(stream: &mut TcpStream) -> Result<Request, Response> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                return Err(Response::text("400 Bad Request", "incomplete request\n"))
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let head_len = match req.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_BYTES => continue,
            Ok(httparse::Status::Partial) => {
                return Err(Response::text(
                    "431 Request Header Fields Too Large",
                    "request head too large\n",
                ))
            }
            Err(e) => {
                return Err(Response::text(
                    "400 Bad Request",
                    format!("bad request: {e}\n"),
                ))
            }
        };
        let headers: Vec<(String, String)> = req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).trim().to_string(),
                )
            })
            .collect();
        let length = match headers.iter().find(|(k, _)| k == "content-length") {
            None => 0,
            Some((_, v)) => v
                .parse::<usize>()
                .map_err(|_| Response::text("400 Bad Request", "bad Content-Length\n"))?,
        };
        if length > MAX_BODY_BYTES {
            return Err(Response::text(
                "413 Payload Too Large",
                "request body too large\n",
            ));
        }
        let method = req.method.unwrap_or("").to_string();
        let path = req
            .path
            .unwrap_or("")
            .split('?')
            .next()
            .unwrap_or("")
            .to_string();
        let mut body = buf.split_off(head_len);
        while body.len() < length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    return Err(Response::text("400 Bad Request", "incomplete body\n"))
                }
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
        body.truncate(length);
        return Ok(Request {
            method,
            path,
            headers,
            body,
        });
    }
}

async fn answer<P: Pages>(mut stream: TcpStream, pages: &Rc<P>) {
    let read =
        glommio::timer::timeout(READ_TIMEOUT, async { Ok(read_request(&mut stream).await) }).await;
    let response = match read {
        Err(_) => return,
        Ok(Err(response)) => response,
        Ok(Ok(req)) => route(req, pages).await,
    };
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len(),
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&response.body).await;
    let _ = stream.flush().await;
}

pub const TEXT: &str = "text/plain; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn route<P: Pages>(req: Request, pages: &Rc<P>) -> Response {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/metrics") => match pages.clone().metrics() {
            Some(page) => Response::new("200 OK", OPENMETRICS, page.await),
            None => Response::text(
                "404 Not Found",
                "metrics are off: set metricsExporterType=PROM\n",
            ),
        },
        ("GET", "/healthz") => Response::text("200 OK", "ok\n"),
        _ => match pages.console() {
            Some(console) => console.answer(req).await,
            None if req.method != "GET" => Response::text("405 Method Not Allowed", "only GET\n"),
            None => Response::text("404 Not Found", "not found: try /metrics\n"),
        },
    }
}
