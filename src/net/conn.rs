//! One accepted connection: its identity, its outbound queue and the writer
//! that drains it. Shard-local (`Rc`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use futures_lite::{AsyncWrite, AsyncWriteExt};

use crate::remoting::RemotingCommand;

/// Requests one connection may have in flight before the reader stops
/// reading (TCP then pushes back on the client).
pub const MAX_INFLIGHT_REQUESTS_PER_CONN: usize = 4096;
/// Bodies at least this large are written from their own buffer rather
/// than copied into the batch buffer.
const DIRECT_WRITE_BODY_BYTES: usize = 16 << 10;
/// The batch buffer is flushed once it holds this much.
const WRITE_BATCH_BYTES: usize = 256 << 10;

pub struct Conn {
    pub id: u64,
    pub peer: SocketAddr,
    outbox: RefCell<VecDeque<RemotingCommand>>,
    writer_waker: RefCell<Option<Waker>>,
    closed: Cell<bool>,
    inflight: Cell<usize>,
    reader_waker: RefCell<Option<Waker>>,
}

impl Conn {
    pub(crate) fn new(id: u64, peer: SocketAddr) -> Conn {
        Conn {
            id,
            peer,
            outbox: RefCell::new(VecDeque::new()),
            writer_waker: RefCell::new(None),
            closed: Cell::new(false),
            inflight: Cell::new(0),
            reader_waker: RefCell::new(None),
        }
    }

    /// Queues a command for the writer. False once the connection is closed.
    pub fn send(&self, cmd: RemotingCommand) -> bool {
        if self.closed.get() {
            return false;
        }
        self.outbox.borrow_mut().push_back(cmd);
        if let Some(w) = self.writer_waker.borrow_mut().take() {
            w.wake();
        }
        true
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    pub(crate) fn close(&self) {
        self.closed.set(true);
        if let Some(w) = self.writer_waker.borrow_mut().take() {
            w.wake();
        }
        if let Some(w) = self.reader_waker.borrow_mut().take() {
            w.wake();
        }
    }

    pub(crate) fn begin_request(&self) {
        self.inflight.set(self.inflight.get() + 1);
    }

    pub(crate) fn end_request(&self) {
        self.inflight.set(self.inflight.get().saturating_sub(1));
        if let Some(w) = self.reader_waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Resolves once fewer than the maximum requests are in flight.
    pub(crate) fn room_for_request(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.inflight.get() < MAX_INFLIGHT_REQUESTS_PER_CONN || self.closed.get() {
                Poll::Ready(())
            } else {
                *self.reader_waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }

    fn next_batch(&self) -> NextBatch<'_> {
        NextBatch { conn: self }
    }

    /// Drains the outbox into `w` until the connection closes or a write fails.
    pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(&self, mut w: W) {
        let mut buf = BytesMut::with_capacity(WRITE_BATCH_BYTES);
        while let Some(batch) = self.next_batch().await {
            for cmd in batch {
                let big_body = cmd
                    .body
                    .as_ref()
                    .filter(|b| b.len() >= DIRECT_WRITE_BODY_BYTES);
                let encoded = match big_body {
                    Some(_) => cmd.encode_head(&mut buf),
                    None => cmd.encode(&mut buf),
                };
                if let Err(e) = encoded {
                    tracing::warn!(conn = self.id, "dropping unencodable reply: {e}");
                    continue;
                }
                if let Some(body) = big_body {
                    if w.write_all(&buf).await.is_err() || w.write_all(body).await.is_err() {
                        self.close();
                        return;
                    }
                    buf.clear();
                } else if buf.len() >= WRITE_BATCH_BYTES {
                    if w.write_all(&buf).await.is_err() {
                        self.close();
                        return;
                    }
                    buf.clear();
                }
            }
            if !buf.is_empty() {
                if w.write_all(&buf).await.is_err() {
                    self.close();
                    return;
                }
                buf.clear();
            }
            if w.flush().await.is_err() {
                self.close();
                return;
            }
        }
    }
}

struct NextBatch<'a> {
    conn: &'a Conn,
}

impl Future for NextBatch<'_> {
    type Output = Option<VecDeque<RemotingCommand>>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let conn = self.conn;
        let mut outbox = conn.outbox.borrow_mut();
        if !outbox.is_empty() {
            return Poll::Ready(Some(std::mem::take(&mut *outbox)));
        }
        if conn.closed.get() {
            return Poll::Ready(None);
        }
        *conn.writer_waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}
