//! The client side of a session's socket: Sluice as the server. Owns the read buffer and a
//! write buffer that collects a whole response before one `write`.

use crate::protocol::codec::{put_header, put_packet, Packet, PacketReader};
use crate::protocol::err::ErrPacket;
use crate::protocol::ok::OkPacket;
use crate::protocol::{caps, ProtocolError};
use crate::tls::ClientStream;
use bytes::BytesMut;
use std::net::SocketAddr;
use tokio::io::AsyncWriteExt;

/// Buffered writes are flushed once they pass this size, even mid-response.
pub const FLUSH_AT: usize = 64 * 1024;

/// Read-buffer headroom per client: commands are small, and idle clients should cost little.
const CLIENT_READ_RESERVE: usize = 2 * 1024;

/// A read buffer that grew past this (a large statement) is released once it is empty, so a
/// client that goes idle after a big statement keeps only a small one.
const KEEP_READ_BUFFER: usize = 64 * 1024;

/// The largest packet a client may send before it has authenticated: a handshake response
/// with connection attributes fits in a few KiB, so an unauthenticated socket cannot make
/// Sluice buffer `max_allowed_packet` bytes.
pub const PRE_AUTH_MAX_PACKET: usize = 16 * 1024;

/// A write buffer that grew past this (a large result) is released after the flush, so a
/// client that goes idle keeps only a small one.
const KEEP_WRITE_BUFFER: usize = 16 * 1024;

/// A client connection.
#[derive(Debug)]
pub struct ClientConn {
    stream: ClientStream,
    reader: PacketReader,
    out: BytesMut,
    /// Capabilities both sides agreed on (after the handshake).
    pub caps: u32,
    /// How long one flush may wait for the client to take the bytes.
    write_timeout: std::time::Duration,
    /// How long a started packet may take to complete (after login).
    read_timeout: std::time::Duration,
    /// Where the client connects from.
    pub peer: SocketAddr,
    /// Bytes written to the client so far: whether any part of an answer has left.
    flushed: u64,
    /// A copy of what is queued from some point on (an answer the cache may keep).
    recording: Option<Recording>,
}

/// What [`ClientConn::record`] keeps.
#[derive(Debug)]
struct Recording {
    kept: BytesMut,
    /// Where the recorded part starts in the write buffer.
    from: usize,
    limit: usize,
    /// Past `limit` (or a failed write): nothing will be returned.
    abandoned: bool,
}

impl ClientConn {
    /// Wraps an accepted socket (TCP, or Sluice's Unix socket).
    pub fn new(stream: ClientStream, peer: SocketAddr, max_packet: usize) -> Self {
        ClientConn {
            stream,
            reader: PacketReader::new(max_packet, CLIENT_READ_RESERVE),
            out: BytesMut::new(),
            caps: 0,
            peer,
            recording: None,
            write_timeout: std::time::Duration::from_secs(30),
            read_timeout: std::time::Duration::from_secs(30),
            flushed: 0,
        }
    }

    /// Switches to TLS after the client's SSL request. Bytes the client sent after the request
    /// (its ClientHello may share the segment) go to the TLS handshake.
    pub async fn start_tls(&mut self, acceptor: &tokio_rustls::TlsAcceptor) -> std::io::Result<()> {
        let early = self.reader.take_buffered();
        self.stream.start_tls(acceptor, early).await
    }

    /// True once the connection runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// On Sluice's Unix socket: local, secure transport as a server counts it, never TLS.
    pub fn is_unix(&self) -> bool {
        self.stream.is_unix()
    }

    /// TLS protocol version and cipher suite, when the connection runs over TLS.
    pub fn tls_summary(&self) -> Option<(String, String)> {
        self.stream.tls_summary()
    }

    /// True when the client negotiated `cap`.
    pub fn has(&self, cap: u32) -> bool {
        self.caps & cap != 0
    }

    /// CLIENT_DEPRECATE_EOF.
    pub fn deprecate_eof(&self) -> bool {
        self.has(caps::DEPRECATE_EOF)
    }

    /// CLIENT_SESSION_TRACK.
    pub fn session_track(&self) -> bool {
        self.has(caps::SESSION_TRACK)
    }

    /// How a result set Sluice builds ends for this client, with `status`.
    pub fn framing(&self, status: u16) -> crate::protocol::resultset::Framing {
        crate::protocol::resultset::Framing {
            status,
            deprecate_eof: self.deprecate_eof(),
            session_track: self.session_track(),
        }
    }

    /// Reads the next logical packet; `Ok(None)` when the client hung up.
    pub async fn read_packet(&mut self) -> Result<Option<Packet>, ProtocolError> {
        self.reader.shrink_if_idle(KEEP_READ_BUFFER);
        self.reader.read_packet(&mut self.stream).await
    }

    /// A command the client has already sent, read without waiting: `None` when nothing
    /// complete is there yet. For the drain, which serves what a client sent before closing it.
    pub fn ready_packet(&mut self) -> Option<Result<Option<Packet>, ProtocolError>> {
        use futures_util::FutureExt;
        self.read_packet().now_or_never()
    }

    /// Sends what is queued and closes Sluice's side (a TLS close alert, then FIN) in one go,
    /// before anything slower the session's end does. The socket is corked meanwhile, so the
    /// last answer and the FIN leave in the same segment: a client that checks its connection
    /// before writing again (Go's driver, pools that validate) sees the end together with the
    /// answer instead of sending its next command into a closing socket.
    pub async fn flush_and_hang_up(&mut self) -> std::io::Result<()> {
        if let Some(tcp) = self.stream.tcp() {
            let _ = rustix::net::sockopt::set_tcp_cork(tcp, true);
        }
        self.flush().await?;
        let _ = tokio::time::timeout(self.write_timeout, self.stream.shutdown()).await;
        Ok(())
    }

    /// Completes when the client has closed its side of the connection (or the socket failed).
    /// Bytes the client already sent (a pipelined command) are not read, and mean it is still
    /// there: then this never completes. Over TLS the bytes may be a close alert, so only the
    /// end of the TCP stream counts as hanging up.
    ///
    /// # Performance
    /// `poll_peek` waits in the socket's own reader slot (a waker stored, nothing to
    /// unregister when the wait ends), not in a readiness future's waiter list.
    pub async fn hung_up(&self) {
        if let crate::tls::Stream::Unix(u) = &self.stream {
            return unix_hung_up(u).await;
        }
        let mut probe = [0u8; 1];
        let mut buf = tokio::io::ReadBuf::new(&mut probe);
        let Some(tcp) = self.stream.tcp() else { return std::future::pending().await };
        match std::future::poll_fn(|cx| tcp.poll_peek(cx, &mut buf)).await {
            Ok(0) | Err(_) => {}
            Ok(_) => std::future::pending().await,
        }
    }

    /// Sets how long one flush may wait for the client (`[proxy] client_write_timeout_ms`).
    pub fn set_write_timeout(&mut self, limit: std::time::Duration) {
        self.write_timeout = limit;
    }

    /// Sets how long the rest of a started packet may take (`[proxy] client_read_timeout_ms`).
    pub fn set_read_timeout(&mut self, limit: std::time::Duration) {
        self.reader.set_stall_limit(Some(limit));
        self.read_timeout = limit;
    }

    /// How long the rest of a started packet, or the next LOCAL INFILE packet, may take.
    pub fn read_timeout(&self) -> std::time::Duration {
        self.read_timeout
    }

    /// Changes the largest packet the client may send (small before authentication).
    pub fn set_max_packet(&mut self, max_packet: usize) {
        self.reader.set_max_packet(max_packet);
    }

    /// Queues a logical packet; returns the next sequence id.
    pub fn put(&mut self, seq: u8, payload: &[u8]) -> u8 {
        put_packet(&mut self.out, seq, payload)
    }

    /// Queues one physical frame as it came from a backend, with a new sequence id.
    pub fn put_frame(&mut self, seq: u8, payload: &[u8]) {
        self.out.reserve(payload.len() + 4);
        put_header(&mut self.out, payload.len(), seq);
        self.out.extend_from_slice(payload);
    }

    /// Queues bytes that are already framed (runs of relayed frames).
    pub fn extend(&mut self, framed: &[u8]) {
        self.out.extend_from_slice(framed);
    }

    /// Queues an OK, encoded for this client's capabilities.
    pub fn put_ok(&mut self, seq: u8, ok: &OkPacket) -> u8 {
        let b = ok.encode(self.session_track());
        self.put(seq, &b)
    }

    /// Queues an ERR.
    pub fn put_err(&mut self, seq: u8, e: &ErrPacket) -> u8 {
        let b = e.encode();
        self.put(seq, &b)
    }

    /// Starts keeping a copy of everything queued from now on, up to `limit` bytes.
    pub fn record(&mut self, limit: usize) {
        let from = self.out.len();
        self.recording = Some(Recording { kept: BytesMut::new(), from, limit, abandoned: false });
    }

    /// Ends the recording: the bytes queued since [`ClientConn::record`], or `None` when they
    /// passed the limit or a write failed.
    pub fn take_recording(&mut self) -> Option<bytes::Bytes> {
        self.keep_recorded();
        let r = self.recording.take()?;
        (!r.abandoned).then(|| r.kept.freeze())
    }

    /// Copies the recorded part of the write buffer before it is written out.
    fn keep_recorded(&mut self) {
        let Some(r) = self.recording.as_mut() else { return };
        let part = &self.out[r.from.min(self.out.len())..];
        if r.abandoned || r.kept.len() + part.len() > r.limit {
            r.abandoned = true;
            r.kept = BytesMut::new();
        } else {
            r.kept.extend_from_slice(part);
        }
        r.from = self.out.len();
    }

    /// Drops what was queued after the first `len` bytes (an answer to a command that must
    /// not have one).
    pub fn truncate(&mut self, len: usize) {
        self.out.truncate(len);
        if let Some(r) = self.recording.as_mut().filter(|r| r.from > len) {
            r.abandoned = true;
        }
    }

    /// Bytes queued and not yet written.
    pub fn pending(&self) -> usize {
        self.out.len()
    }

    /// Bytes written to the client so far; compared before and after a response, it says
    /// whether any part of that response has reached the client.
    pub fn flushed(&self) -> u64 {
        self.flushed
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        // Clear text: one non-blocking write first (the system call write_all would make
        // anyway); only what the socket does not take at once waits, under a deadline, so
        // the common case sets up no timer.
        let mut done = 0;
        let first = match &self.stream {
            crate::tls::Stream::Plain(tcp) => Some(tcp.try_write(&self.out)),
            crate::tls::Stream::Unix(u) => Some(u.try_write(&self.out)),
            _ => None,
        };
        if let Some(first) = first {
            match first {
                Ok(n) => done = n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    self.out.clear();
                    if let Some(r) = self.recording.as_mut() {
                        r.abandoned = true;
                    }
                    return Err(e);
                }
            }
        }
        if done == self.out.len() {
            self.written();
            return Ok(());
        }
        // A client that stopped reading must not hold the session (and its backend
        // connection) forever: the rest of the write has a deadline.
        let (stream, out) = (&mut self.stream, &self.out[done..]);
        let write = async move {
            stream.write_all(out).await?;
            if stream.is_tls() {
                // TLS records may still sit in the session's buffer.
                stream.flush().await?;
            }
            Ok(())
        };
        let r = match tokio::time::timeout(self.write_timeout, write).await {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client did not read within client_write_timeout_ms",
            )),
        };
        self.written();
        r
    }

    /// Empties the write buffer after a flush; one that grew past [`KEEP_WRITE_BUFFER`] is
    /// released.
    fn written(&mut self) {
        self.keep_recorded();
        if let Some(r) = self.recording.as_mut() {
            r.from = 0;
        }
        self.flushed += self.out.len() as u64;
        self.out.clear();
        if self.out.capacity() > KEEP_WRITE_BUFFER {
            self.out = BytesMut::new();
        }
    }
}

/// [`ClientConn::hung_up`] on a Unix socket, which tokio cannot peek: waits until it is
/// readable, then peeks one byte with MSG_PEEK (nothing is consumed).
async fn unix_hung_up(u: &tokio::net::UnixStream) {
    use rustix::net::{recv, RecvFlags};
    loop {
        if u.readable().await.is_err() {
            return;
        }
        let mut probe = [0u8; 1];
        match u.try_io(tokio::io::Interest::READABLE, || {
            recv(u, &mut probe, RecvFlags::PEEK | RecvFlags::DONTWAIT).map(|(n, _)| n).map_err(std::io::Error::from)
        }) {
            Ok(0) => return,
            Ok(_) => return std::future::pending().await,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        }
    }
}
