//! Accept loop and per-connection reader. Each request runs as its own task
//! so a held pull never blocks the requests behind it on the connection.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite};
use glommio::net::{TcpListener, TcpStream};

use super::conn::Conn;
use crate::remoting::{FrameDecoder, RemotingCommand, SerializeType};
use crate::security::tls::{Accepted, ServerTls};

/// Bytes read from a socket per read call.
const READ_CHUNK_BYTES: usize = 64 << 10;
/// What a connection's read buffers start with.
const FIRST_READ_BYTES: usize = 4 << 10;

/// What a server does with requests. Lives on one executor.
pub trait Handler: 'static {
    /// Answers `req` (None: no answer, e.g. for oneway requests).
    fn handle(
        self: Rc<Self>,
        conn: Rc<Conn>,
        req: RemotingCommand,
    ) -> impl Future<Output = Option<RemotingCommand>>;
    /// The connection is gone; drop whatever was registered through it.
    fn on_close(&self, _conn: &Rc<Conn>) {}
}

thread_local! {
    static NEXT_CONN_ID: Cell<u64> = const { Cell::new(1) };
}

/// Connection ids are unique per process: the shard index is in the top bits.
pub(crate) fn next_conn_id(shard_tag: u64) -> u64 {
    NEXT_CONN_ID.with(|n| {
        let id = n.get();
        n.set(id + 1);
        (shard_tag << 48) | id
    })
}

/// Accepts connections on `listener` until `stop` resolves; `tls` decides
/// what each connection may speak.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Rc<H>,
    shard_tag: u64,
    tls: Arc<ServerTls>,
    stop: impl Future<Output = ()>,
) {
    let accept = async {
        loop {
            match listener.accept().await {
                Ok(stream) => {
                    let handler = handler.clone();
                    let tls = tls.clone();
                    glommio::spawn_local(connection(stream, handler, shard_tag, tls)).detach();
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    };
    futures_lite::future::or(accept, stop).await;
}

async fn connection<H: Handler>(
    stream: TcpStream,
    handler: Rc<H>,
    shard_tag: u64,
    tls: Arc<ServerTls>,
) {
    let _ = stream.set_nodelay(true);
    let Ok(peer) = stream.peer_addr() else { return };
    match tls.accept(stream).await {
        Ok(Accepted::Plain(s)) => {
            let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
            run_connection(s, Some(fd), peer, handler, shard_tag).await
        }
        Ok(Accepted::Tls(s)) => run_connection(*s, None, peer, handler, shard_tag).await,
        Err(why) => tracing::info!(%peer, "connection closed: {why}"),
    }
}

async fn run_connection<H: Handler, S: AsyncRead + AsyncWrite + Unpin + 'static>(
    stream: S,
    fd: Option<std::os::fd::RawFd>,
    peer: SocketAddr,
    handler: Rc<H>,
    shard_tag: u64,
) {
    let conn = Rc::new(Conn::new(next_conn_id(shard_tag), peer));
    let stream = Rc::new(RefCell::new(stream));
    let writer = {
        let conn = conn.clone();
        let w = Half(stream.clone());
        glommio::spawn_local(async move { conn.write_loop(w, fd).await })
    };
    read_loop(&conn, Half(stream), &handler).await;
    conn.close();
    handler.on_close(&conn);
    // A peer that stopped reading would hold the writer (and the outbox)
    // forever: give it a bounded time, then drop both.
    let drain = std::time::Duration::from_millis(super::conn::CLOSE_DRAIN_TIMEOUT_MS);
    let _ = glommio::timer::timeout(drain, async {
        writer.await;
        Ok(())
    })
    .await;
}

async fn read_loop<H: Handler, S: AsyncRead + Unpin>(
    conn: &Rc<Conn>,
    mut r: Half<S>,
    handler: &Rc<H>,
) {
    let decoder = FrameDecoder::new();
    // Both buffers start small and grow to READ_CHUNK_BYTES once a read
    // fills the scratch: an idle connection (there may be tens of
    // thousands) then costs a few KiB, not 128.
    let mut buf = BytesMut::with_capacity(FIRST_READ_BYTES);
    // Reads land in a scratch buffer zeroed once, then only the bytes read
    // are appended: zero-filling fresh buffer space for every read cost
    // more than this copy for small requests.
    let mut scratch = vec![0u8; FIRST_READ_BYTES];
    loop {
        loop {
            match RemotingCommand::decode_typed(&mut buf, &decoder) {
                Ok(Some((cmd, header_type))) => dispatch(conn, handler, cmd, header_type).await,
                Ok(None) => break,
                Err(e) => {
                    tracing::info!(conn = conn.id, peer = %conn.peer, "closing connection: {e}");
                    return;
                }
            }
        }
        if conn.is_closed() {
            return;
        }
        match r.read(&mut scratch).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                buf.extend_from_slice(&scratch[..n]);
                if n == scratch.len() && scratch.len() < READ_CHUNK_BYTES {
                    scratch.resize(READ_CHUNK_BYTES, 0);
                }
            }
        }
    }
}

/// Runs one request as its own task. The reply's header uses the request's
/// encoding: a client that writes ROCKETMQ binary headers reads them too,
/// and they cost less to write than JSON.
async fn dispatch<H: Handler>(
    conn: &Rc<Conn>,
    handler: &Rc<H>,
    cmd: RemotingCommand,
    header_type: SerializeType,
) {
    if cmd.is_response() {
        // An answer to a request the server sent (consumer running info);
        // anything else answers something never asked and is ignored.
        conn.complete(cmd);
        return;
    }
    conn.room_for_request().await;
    conn.begin_request();
    let conn = conn.clone();
    let handler = handler.clone();
    glommio::spawn_local(async move {
        let oneway = cmd.is_oneway();
        let reply = handler.handle(conn.clone(), cmd).await;
        match (reply, oneway) {
            (Some(reply), false) => conn.send_reply_as(reply, header_type),
            _ => conn.end_request(),
        }
    })
    .detach();
}

/// One side of a shared stream. Reads and writes use separate io_uring
/// sources in glommio, so a reader and a writer can be pending at once; the
/// `RefCell` is only borrowed inside a poll. A TLS stream keeps that
/// property: rustls reads only the socket when asked for plaintext and
/// writes only when given some (or flushed), so each half still waits on
/// its own source.
pub(crate) struct Half<S>(pub(crate) Rc<RefCell<S>>);

impl<S: AsyncRead + Unpin> AsyncRead for Half<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Half<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_flush(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_close(cx)
    }
}
