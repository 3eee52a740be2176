//! One accepted connection: its identity, its outbound queue and the writer
//! that drains it. Shard-local (`Rc`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncWrite, AsyncWriteExt};

use crate::remoting::{RemotingCommand, SerializeType};

/// Requests one connection may have in flight, counted until their reply
/// has been handed to the socket, before the reader stops reading (TCP then
/// pushes back on the client). With pull replies of at most 256 KiB this
/// bounds what one connection can make the broker hold.
pub const MAX_INFLIGHT_REQUESTS_PER_CONN: usize = 1024;
/// The reader also pauses while this many reply bytes wait to be written.
pub const MAX_OUTBOX_BYTES: usize = 32 << 20;
/// A connection whose peer stopped reading gets this long to drain after
/// it closed, then is dropped with whatever is left.
pub const CLOSE_DRAIN_TIMEOUT_MS: u64 = 5_000;
/// Commands the server initiates (NOTIFY_CONSUMER_IDS_CHANGED,
/// CHECK_TRANSACTION_STATE) that may wait for one connection; more are
/// dropped. They are not bounded by the reader's pause as replies are, and
/// a peer that stops reading would otherwise collect them without end.
/// Dropping one is safe: clients rebalance on their own timer and the
/// broker asks about a transaction again at its next check.
pub const MAX_QUEUED_SERVER_COMMANDS: usize = 256;
/// Bodies at least this large are written from their own buffer rather
/// than copied into the batch buffer.
const DIRECT_WRITE_BODY_BYTES: usize = 16 << 10;
/// The batch buffer is flushed once it holds this much.
const WRITE_BATCH_BYTES: usize = 256 << 10;

pub struct Conn {
    pub id: u64,
    pub peer: SocketAddr,
    /// Commands to write; `true` marks a reply that ends an in-flight
    /// request, and each goes out with its header in the given encoding.
    outbox: RefCell<VecDeque<(RemotingCommand, bool, SerializeType)>>,
    outbox_bytes: Cell<usize>,
    writer_waker: RefCell<Option<Waker>>,
    closed: Cell<bool>,
    inflight: Cell<usize>,
    reader_waker: RefCell<Option<Waker>>,
    /// Server-initiated commands in the outbox.
    queued_server_commands: Cell<usize>,
    /// Requests the server sent on this connection that wait for the
    /// client's answer, by opaque (GET_CONSUMER_RUNNING_INFO).
    awaiting: RefCell<std::collections::HashMap<i32, flume::Sender<RemotingCommand>>>,
    /// Set by the handler the first time it records the connection, so it
    /// does not look it up again on every request.
    pub registered: Cell<bool>,
}

impl Conn {
    pub(crate) fn new(id: u64, peer: SocketAddr) -> Conn {
        Conn {
            id,
            peer,
            outbox: RefCell::new(VecDeque::new()),
            outbox_bytes: Cell::new(0),
            writer_waker: RefCell::new(None),
            closed: Cell::new(false),
            registered: Cell::new(false),
            inflight: Cell::new(0),
            reader_waker: RefCell::new(None),
            queued_server_commands: Cell::new(0),
            awaiting: RefCell::new(std::collections::HashMap::new()),
        }
    }

    /// Queues a command the server initiates (not a reply). False once the
    /// connection is closed, or when `MAX_QUEUED_SERVER_COMMANDS` already
    /// wait (the command is dropped).
    pub fn send(&self, cmd: RemotingCommand) -> bool {
        let queued = self.queued_server_commands.get();
        if queued >= MAX_QUEUED_SERVER_COMMANDS {
            tracing::debug!(
                conn = self.id,
                code = cmd.code,
                "peer not reading: command dropped"
            );
            return false;
        }
        let sent = self.enqueue(cmd, false, SerializeType::Json);
        if sent {
            self.queued_server_commands.set(queued + 1);
        }
        sent
    }

    /// Sends `cmd` (its opaque set by the caller) and returns where its
    /// answer will arrive. The caller must `forget` the opaque when it
    /// stops waiting, answered or not.
    pub fn request(&self, cmd: RemotingCommand) -> Option<flume::Receiver<RemotingCommand>> {
        let (tx, rx) = flume::bounded(1);
        let opaque = cmd.opaque;
        self.awaiting.borrow_mut().insert(opaque, tx);
        if !self.send(cmd) {
            self.awaiting.borrow_mut().remove(&opaque);
            return None;
        }
        Some(rx)
    }

    pub fn forget(&self, opaque: i32) {
        self.awaiting.borrow_mut().remove(&opaque);
    }

    /// Hands a response from the peer to the request that waits for it;
    /// false when nothing does (a late or unasked-for answer, dropped).
    pub(crate) fn complete(&self, cmd: RemotingCommand) -> bool {
        match self.awaiting.borrow_mut().remove(&cmd.opaque) {
            Some(tx) => tx.try_send(cmd).is_ok(),
            None => false,
        }
    }

    /// Queues the reply to a request; the request stays in flight until the
    /// writer has taken it.
    /// Its header goes out in `header_type`.
    pub(crate) fn send_reply_as(&self, cmd: RemotingCommand, header_type: SerializeType) {
        if !self.enqueue(cmd, true, header_type) {
            self.end_request();
        }
    }

    fn command_bytes(cmd: &RemotingCommand) -> usize {
        // Header size is small and bounded; the body dominates.
        256 + cmd.body_len()
    }

    fn enqueue(
        &self,
        cmd: RemotingCommand,
        ends_request: bool,
        header_type: SerializeType,
    ) -> bool {
        if self.closed.get() {
            return false;
        }
        self.outbox_bytes
            .set(self.outbox_bytes.get() + Self::command_bytes(&cmd));
        self.outbox
            .borrow_mut()
            .push_back((cmd, ends_request, header_type));
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
            let room = self.inflight.get() < MAX_INFLIGHT_REQUESTS_PER_CONN
                && self.outbox_bytes.get() < MAX_OUTBOX_BYTES;
            if room || self.closed.get() {
                Poll::Ready(())
            } else {
                *self.reader_waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }

    /// Swaps the outbox's queued replies into `batch` (which must be
    /// empty); false once the connection is closed. Swapping keeps both
    /// queues' capacity, so a steady stream of replies allocates nothing.
    fn next_batch<'a>(
        &'a self,
        batch: &'a mut VecDeque<(RemotingCommand, bool, SerializeType)>,
    ) -> NextBatch<'a> {
        NextBatch { conn: self, batch }
    }

    /// Drains the outbox into `w` until the connection closes or a write fails.
    /// `fd` is the socket under `w` when nothing (TLS) stands between them:
    /// large bodies then go out with one vectored send, straight from the
    /// pieces they were read in.
    pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(&self, mut w: W, fd: Option<RawFd>) {
        let mut buf = BytesMut::with_capacity(WRITE_BATCH_BYTES);
        let mut batch = VecDeque::new();
        while self.next_batch(&mut batch).await {
            for (cmd, ends_request, header_type) in batch.drain(..) {
                self.outbox_bytes.set(
                    self.outbox_bytes
                        .get()
                        .saturating_sub(Self::command_bytes(&cmd)),
                );
                if ends_request {
                    self.end_request();
                } else {
                    self.queued_server_commands
                        .set(self.queued_server_commands.get().saturating_sub(1));
                }
                // Through TLS every byte is copied into records anyway, so
                // bodies join the batch buffer like small replies do.
                let big_body = fd.is_some() && cmd.body_len() >= DIRECT_WRITE_BODY_BYTES;
                let encoded = match big_body {
                    true => cmd.encode_head_in(header_type, &mut buf),
                    false => cmd.encode_as(header_type, &mut buf),
                };
                if let Err(e) = encoded {
                    // Never leave the peer waiting for an answer that will
                    // not come: say why instead (same opaque).
                    tracing::warn!(conn = self.id, "reply cannot be encoded: {e}");
                    let mut err = RemotingCommand::new_response(
                        crate::remoting::codes::response_code::SYSTEM_ERROR,
                        Some(format!("reply cannot be encoded: {e}")),
                    );
                    err.opaque = cmd.opaque;
                    err.flag = cmd.flag;
                    let _ = err.encode(&mut buf);
                    continue;
                }
                if big_body {
                    let pieces = Pieces {
                        first: [&buf[..], cmd.body.as_deref().unwrap_or_default()],
                        rest: &cmd.body_parts,
                    };
                    if write_pieces(&mut w, fd, &pieces).await.is_err() {
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

/// Most pieces handed to one `sendmsg` (Linux's IOV_MAX is 1024).
const MAX_IOVECS: usize = 64;

/// The byte slices of one reply in wire order, read by index: the head and
/// `body`, then each of `body_parts`, so nothing is gathered to write them.
struct Pieces<'a> {
    first: [&'a [u8]; 2],
    rest: &'a [Bytes],
}

impl Pieces<'_> {
    fn len(&self) -> usize {
        self.first.len() + self.rest.len()
    }

    fn get(&self, at: usize) -> &[u8] {
        match self.first.get(at) {
            Some(piece) => piece,
            None => &self.rest[at - self.first.len()],
        }
    }
}

/// Writes `pieces` in order. On a bare socket, as many as fit go out with
/// non-blocking vectored sends; once the socket is full the rest goes
/// through `w`, which waits for room. Only the writer task writes a
/// connection, so the two paths cannot interleave.
async fn write_pieces<W: AsyncWrite + Unpin>(
    w: &mut W,
    fd: Option<RawFd>,
    pieces: &Pieces<'_>,
) -> std::io::Result<()> {
    // Where the unsent bytes start: a piece and an offset into it.
    let (mut at, mut skip) = (0, 0);
    if let Some(fd) = fd {
        while at < pieces.len() {
            let mut iov: [libc::iovec; MAX_IOVECS] = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; MAX_IOVECS];
            let mut count = 0;
            for (k, piece) in (at..pieces.len()).map(|k| (k, pieces.get(k))) {
                if count == MAX_IOVECS {
                    break;
                }
                let piece = if k == at { &piece[skip..] } else { piece };
                if !piece.is_empty() {
                    iov[count] = libc::iovec {
                        iov_base: piece.as_ptr() as *mut libc::c_void,
                        iov_len: piece.len(),
                    };
                    count += 1;
                }
            }
            if count == 0 {
                break;
            }
            // SAFETY: msghdr is plain data; the iovecs point into `pieces`,
            // which outlive the call and are only read by it.
            let sent = unsafe {
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_iov = iov.as_mut_ptr();
                msg.msg_iovlen = count as _;
                libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
            };
            if sent < 0 {
                let e = std::io::Error::last_os_error();
                match e.kind() {
                    std::io::ErrorKind::Interrupted => continue,
                    std::io::ErrorKind::WouldBlock => break,
                    _ => return Err(e),
                }
            }
            let mut sent = sent as usize;
            while at < pieces.len() {
                let left = pieces.get(at).len() - skip;
                if sent < left {
                    skip += sent;
                    break;
                }
                sent -= left;
                (at, skip) = (at + 1, 0);
            }
        }
    }
    for k in at..pieces.len() {
        let piece = pieces.get(k);
        w.write_all(if k == at { &piece[skip..] } else { piece })
            .await?;
    }
    Ok(())
}

struct NextBatch<'a> {
    conn: &'a Conn,
    batch: &'a mut VecDeque<(RemotingCommand, bool, SerializeType)>,
}

impl Future for NextBatch<'_> {
    type Output = bool;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let conn = self.conn;
        let mut outbox = conn.outbox.borrow_mut();
        if !outbox.is_empty() {
            std::mem::swap(&mut *outbox, self.batch);
            return Poll::Ready(true);
        }
        if conn.closed.get() {
            return Poll::Ready(false);
        }
        *conn.writer_waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pieces arrive whole and in order, through the vectored sends while
    /// the socket takes them and through the writer once it is full: the
    /// reader starts late, so the send buffer fills part way.
    #[test]
    fn pieces_arrive_in_order_whether_sent_vectored_or_through_the_writer() {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let (tx, mut rx) = std::os::unix::net::UnixStream::pair().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        // Uneven pieces, more of them than one sendmsg takes, some empty.
        let mut pieces = Vec::new();
        let mut at = 0;
        for k in 0.. {
            let len = (k * 7919) % 40_000;
            let end = (at + len).min(data.len());
            pieces.push(&data[at..end]);
            at = end;
            if at == data.len() {
                break;
            }
        }
        assert!(pieces.len() > MAX_IOVECS);
        let rest: Vec<Bytes> = pieces.iter().map(|p| Bytes::copy_from_slice(p)).collect();
        let pieces = Pieces {
            first: [&[], &[]],
            rest: &rest,
        };
        let reader = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let mut got = Vec::new();
            rx.read_to_end(&mut got).unwrap();
            got
        });
        let fd = tx.as_raw_fd();
        let mut w = futures_lite::io::AssertAsync::new(&tx);
        futures_lite::future::block_on(write_pieces(&mut w, Some(fd), &pieces)).unwrap();
        drop(tx);
        assert!(
            reader.join().unwrap() == data,
            "bytes lost, repeated or reordered"
        );
    }

    #[test]
    fn commands_for_a_peer_that_does_not_read_are_bounded() {
        let conn = Conn::new(1, "127.0.0.1:1".parse().unwrap());
        let sent = (0..10_000)
            .filter(|_| conn.send(RemotingCommand::new_request(40)))
            .count();
        assert_eq!(sent, MAX_QUEUED_SERVER_COMMANDS);
        assert_eq!(conn.outbox.borrow().len(), MAX_QUEUED_SERVER_COMMANDS);
        // Replies are not refused: they are bounded by the reader's pause.
        conn.begin_request();
        conn.send_reply_as(RemotingCommand::new_response(0, None), SerializeType::Json);
        assert_eq!(conn.outbox.borrow().len(), MAX_QUEUED_SERVER_COMMANDS + 1);
    }
}
