//! A blocking Remoting connection for tools (the load generator, the admin
//! CLI): requests are written as they are issued and responses read back in
//! any order, matched by opaque, so one connection can keep a window in
//! flight. A [`Link`] says whether to use TLS and sign requests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crate::remoting::{FrameDecoder, RemotingCommand};
use crate::signature::Credentials;
use bytes::BytesMut;

/// How every connection of this process reaches the servers.
#[derive(Clone, Default)]
pub struct Link {
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub credentials: Option<Credentials>,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// How long a response may take before the connection is declared stuck.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
const READ_CHUNK_BYTES: usize = 64 << 10;

pub struct Conn {
    stream: Stream,
    credentials: Option<Credentials>,
    read_buf: BytesMut,
    write_buf: BytesMut,
    chunk: Vec<u8>,
    next_opaque: i32,
}

impl Conn {
    pub fn connect(addr: SocketAddr, link: &Link) -> std::io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(RESPONSE_TIMEOUT))?;
        let stream = match &link.tls {
            None => Stream::Plain(stream),
            Some(config) => {
                let name = super::tls::server_name(addr);
                let session = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(std::io::Error::other)?;
                let mut tls = rustls::StreamOwned::new(session, stream);
                // Handshake now, so a refused or failed handshake is a
                // connect error rather than the first send's.
                while tls.conn.is_handshaking() {
                    tls.conn.complete_io(&mut tls.sock)?;
                }
                Stream::Tls(Box::new(tls))
            }
        };
        Ok(Conn {
            stream,
            credentials: link.credentials.clone(),
            read_buf: BytesMut::with_capacity(READ_CHUNK_BYTES),
            write_buf: BytesMut::new(),
            chunk: vec![0u8; READ_CHUNK_BYTES],
            next_opaque: 1,
        })
    }

    /// Writes `cmd` with a fresh opaque, which is returned.
    pub fn send(&mut self, cmd: &mut RemotingCommand) -> std::io::Result<i32> {
        let opaque = self.next_opaque;
        self.next_opaque = self.next_opaque.wrapping_add(1) & i32::MAX;
        cmd.opaque = opaque;
        if let Some(c) = &self.credentials {
            c.sign(cmd);
        }
        self.write_buf.clear();
        cmd.encode(&mut self.write_buf)
            .map_err(std::io::Error::other)?;
        self.stream.write_all(&self.write_buf)?;
        self.stream.flush()?;
        Ok(opaque)
    }

    /// The next response on this connection (requests from the server,
    /// such as ids-changed notifications, are skipped).
    pub fn recv(&mut self) -> std::io::Result<RemotingCommand> {
        let decoder = FrameDecoder::new();
        loop {
            while let Some(cmd) = RemotingCommand::decode(&mut self.read_buf, &decoder)
                .map_err(std::io::Error::other)?
            {
                if cmd.is_response() {
                    return Ok(cmd);
                }
            }
            let n = self.stream.read(&mut self.chunk)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "broker closed the connection",
                ));
            }
            self.read_buf.extend_from_slice(&self.chunk[..n]);
        }
    }

    /// The socket, when no TLS stands over it: for polling many
    /// connections from one thread.
    pub fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        match &self.stream {
            Stream::Plain(s) => Some(std::os::fd::AsRawFd::as_raw_fd(s)),
            Stream::Tls(_) => None,
        }
    }

    /// The next response if one has arrived, without waiting: frames
    /// already read, then one non-blocking read. `Ok(None)`: nothing yet.
    /// Plain connections only (see [`raw_fd`](Self::raw_fd)).
    pub fn try_recv(&mut self) -> std::io::Result<Option<RemotingCommand>> {
        let decoder = FrameDecoder::new();
        loop {
            while let Some(cmd) = RemotingCommand::decode(&mut self.read_buf, &decoder)
                .map_err(std::io::Error::other)?
            {
                if cmd.is_response() {
                    return Ok(Some(cmd));
                }
            }
            let Stream::Plain(stream) = &self.stream else {
                return Err(std::io::Error::other("try_recv needs a plain connection"));
            };
            let fd = std::os::fd::AsRawFd::as_raw_fd(stream);
            // SAFETY: reads into our own buffer, at most its length.
            let n = unsafe {
                libc::recv(
                    fd,
                    self.chunk.as_mut_ptr().cast(),
                    self.chunk.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                match e.kind() {
                    std::io::ErrorKind::WouldBlock => return Ok(None),
                    std::io::ErrorKind::Interrupted => continue,
                    _ => return Err(e),
                }
            }
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "broker closed the connection",
                ));
            }
            self.read_buf.extend_from_slice(&self.chunk[..n as usize]);
        }
    }

    /// One request, one response.
    pub fn call(&mut self, mut cmd: RemotingCommand) -> std::io::Result<RemotingCommand> {
        let opaque = self.send(&mut cmd)?;
        loop {
            let r = self.recv()?;
            if r.opaque == opaque {
                return Ok(r);
            }
        }
    }
}
