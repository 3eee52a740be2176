//! A Remoting client for the few calls a server makes itself (a broker
//! registering with a name server): one persistent connection, one request
//! at a time, reconnecting after any failure. A name server drops a broker
//! when its connection closes, so the connection is kept, not re-dialled.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::remoting::{FrameDecoder, RemotingCommand};

pub struct RemotingClient {
    addr: SocketAddr,
    stream: RefCell<Option<TcpStream>>,
    next_opaque: Cell<i32>,
}

impl RemotingClient {
    pub fn new(addr: SocketAddr) -> RemotingClient {
        RemotingClient {
            addr,
            stream: RefCell::new(None),
            next_opaque: Cell::new(1),
        }
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
    async fn write(&self, req: &RemotingCommand) -> std::io::Result<TcpStream> {
        let cached = self.stream.borrow_mut().take();
        let mut stream = match cached {
            Some(s) => s,
            None => {
                let s = TcpStream::connect(self.addr).await?;
                let _ = s.set_nodelay(true);
                s
            }
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
        let stream = self.write(&req).await?;
        *self.stream.borrow_mut() = Some(stream);
        Ok(())
    }
}
