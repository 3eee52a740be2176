//! The broker's HTTP port (`metricsPromExporterPort`), served on shard 0:
//! `GET /metrics` (Prometheus / OpenMetrics text) and `GET /healthz`.
//! HTTP/1.1 with one request per connection: a scrape every few seconds
//! needs nothing more, and a request line that is slow, oversized or
//! malformed costs one task for at most `REQUEST_TIMEOUT`.

use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use super::shard::Shard;
use super::ShardMsg;

/// Request heads larger than this are refused (431).
const MAX_HEAD_BYTES: usize = 8 << 10;
/// Reading a request and writing its answer must fit in this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a scrape waits for a busy shard's snapshot.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn serve(listener: TcpListener, shard: Rc<Shard>) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    let _ = glommio::timer::timeout(REQUEST_TIMEOUT, async {
                        answer(stream, &shard).await;
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

async fn answer(mut stream: TcpStream, shard: &Rc<Shard>) {
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
                break route(req.method.unwrap_or(""), req.path.unwrap_or(""), shard).await;
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

async fn route(
    method: &str,
    path: &str,
    shard: &Rc<Shard>,
) -> (&'static str, &'static str, String) {
    if method != "GET" {
        return ("405 Method Not Allowed", TEXT, "only GET\n".into());
    }
    match path.split('?').next().unwrap_or("") {
        "/metrics" => ("200 OK", OPENMETRICS, metrics_page(shard).await),
        "/healthz" => ("200 OK", TEXT, "ok\n".into()),
        _ => ("404 Not Found", TEXT, "not found: try /metrics\n".into()),
    }
}

/// Every shard's snapshot, this one's taken here; a shard that does not
/// answer in time is left out of this page (and logged), not waited for.
async fn metrics_page(shard: &Rc<Shard>) -> String {
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
    let cfg = &shard.cfg;
    let node = format!("{}-{}", cfg.broker_name, cfg.broker_id);
    let uptime = (crate::protocol::now_ms() - shard.stats.boot_ms.get()) / 1000;
    super::metrics::encode(snaps, &cfg.cluster_name, &node, uptime)
}
