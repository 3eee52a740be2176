//! A Remoting client for the few calls a server makes itself (a broker
//! registering with a name server): one persistent connection, one request
//! at a time, reconnecting after any failure. A name server drops a broker
//! when its connection closes, so the connection is kept, not re-dialled.
//! With `tls.enable` the connection is TLS; with credentials every request
//! is signed.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::remoting::{FrameDecoder, RemotingCommand};
use crate::security::Credentials;

pub struct RemotingClient {
    addr: SocketAddr,
    stream: RefCell<Option<Stream>>,
    next_opaque: Cell<i32>,
    tls: Option<futures_rustls::TlsConnector>,
    credentials: Option<Credentials>,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<futures_rustls::client::TlsStream<TcpStream>>),
}

impl RemotingClient {
    pub fn new(
        addr: SocketAddr,
        tls: Option<Arc<rustls::ClientConfig>>,
        credentials: Option<Credentials>,
    ) -> RemotingClient {
        RemotingClient {
            addr,
            stream: RefCell::new(None),
            next_opaque: Cell::new(1),
            tls: tls.map(futures_rustls::TlsConnector::from),
            credentials,
        }
    }

    async fn connect(&self) -> std::io::Result<Stream> {
        let s = TcpStream::connect(self.addr).await?;
        let _ = s.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return Ok(Stream::Plain(s));
        };
        let name = crate::security::tls::server_name(self.addr);
        Ok(Stream::Tls(Box::new(tls.connect(name, s).await?)))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `req` and waits for its response, within `timeout`.
    pub async fn call(
        &self,
        mut req: RemotingCommand,
        timeout: Duration,
    ) -> std::io::Result<RemotingCommand> {
        let opaque = self.next_opaque.get();
        self.next_opaque.set(opaque.wrapping_add(1) & i32::MAX);
        req.opaque = opaque;
        if let Some(c) = &self.credentials {
            c.sign(&mut req);
        }
        let r = glommio::timer::timeout(timeout, async {
            self.exchange(&req)
                .await
                .map_err(glommio::GlommioError::IoError)
        })
        .await;
        if r.is_err() {
            // The stream may hold half a frame: start clean next time.
            self.stream.borrow_mut().take();
        }
        r.map_err(std::io::Error::from)
    }

    /// Writes `req` on the kept connection (connecting first if there is
    /// none) and hands the stream back; it is kept again only by callers
    /// that leave it in a clean state.
    async fn write(&self, req: &RemotingCommand) -> std::io::Result<Stream> {
        let cached = self.stream.borrow_mut().take();
        let mut stream = match cached {
            Some(s) => s,
            None => self.connect().await?,
        };
        let mut out = BytesMut::new();
        req.encode(&mut out).map_err(std::io::Error::other)?;
        stream.write_all(&out).await?;
        stream.flush().await?;
        Ok(stream)
    }

    async fn exchange(&self, req: &RemotingCommand) -> std::io::Result<RemotingCommand> {
        let mut stream = self.write(req).await?;
        let decoder = FrameDecoder::new();
        let mut buf = BytesMut::new();
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            while let Some(cmd) =
                RemotingCommand::decode(&mut buf, &decoder).map_err(std::io::Error::other)?
            {
                if cmd.is_response() && cmd.opaque == req.opaque {
                    *self.stream.borrow_mut() = Some(stream);
                    return Ok(cmd);
                }
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "peer closed the connection",
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends `req` without waiting for anything (oneway).
    pub async fn send_oneway(&self, mut req: RemotingCommand) -> std::io::Result<()> {
        req.mark_oneway();
        if let Some(c) = &self.credentials {
            c.sign(&mut req);
        }
        let stream = self.write(&req).await?;
        *self.stream.borrow_mut() = Some(stream);
        Ok(())
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_close(cx),
        }
    }
}
