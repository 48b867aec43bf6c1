//! Packet framing: the 4-byte header (3-byte length, 1-byte sequence id) and the 16 MiB split.
//!
//! A *frame* is one physical packet as it crosses the wire; a *packet* is the logical payload a
//! command or response field occupies, which spans several frames when it is 0xFFFFFF bytes or
//! more (the last frame is shorter than 0xFFFFFF, so an exact multiple ends with an empty frame).
//!
//! The reader owns its buffer and only consumes a frame once all of it has arrived, so a read
//! that is cancelled inside `select!` loses nothing. Sizes are checked against the connection's
//! `max_allowed_packet` from the header, before any payload is buffered.

use super::error::ProtocolError;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest payload one frame can carry.
pub const MAX_FRAME: usize = 0xFF_FFFF;

/// One physical packet.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Sequence id from the header.
    pub seq: u8,
    /// The frame's payload (without header).
    pub payload: Bytes,
}

impl Frame {
    /// True when another frame of the same logical packet follows this one.
    pub fn continues(&self) -> bool {
        self.payload.len() == MAX_FRAME
    }
}

/// One logical packet: the payloads of its frames joined.
#[derive(Debug, Clone)]
pub struct Packet {
    /// Sequence id of the last frame.
    pub seq: u8,
    /// The joined payload.
    pub payload: Bytes,
}

/// Reads frames and packets from a byte stream, owning the read buffer.
#[derive(Debug)]
pub struct PacketReader {
    buf: BytesMut,
    max_packet: usize,
    reserve: usize,
    /// The largest frame split off since the buffer was last replaced: a split frame keeps
    /// the allocation it was read into alive, and the buffer's own (remaining) capacity no
    /// longer shows how large that is.
    largest: usize,
    /// How long the rest of a started packet may take to arrive (clients after login); `None`
    /// waits as long as the peer takes (backends: a slow statement may leave a frame half
    /// written in the server's buffer while it computes the next rows).
    stall: Option<std::time::Duration>,
}

impl PacketReader {
    /// A reader that refuses logical packets larger than `max_packet` bytes and keeps
    /// `reserve` bytes of free space before each read, so one system call takes a whole burst
    /// of small packets (a full `BytesMut` would otherwise grow 64 bytes at a time). Nothing is
    /// allocated until the first read, so an idle connection costs only what it last used.
    pub fn new(max_packet: usize, reserve: usize) -> Self {
        PacketReader { buf: BytesMut::new(), max_packet, reserve, largest: 0, stall: None }
    }

    /// Changes the packet-size limit (keeping anything already buffered).
    pub fn set_max_packet(&mut self, max_packet: usize) {
        self.max_packet = max_packet;
    }

    /// Bounds how long the rest of a packet may take once its first byte arrived.
    pub fn set_stall_limit(&mut self, limit: Option<std::time::Duration>) {
        self.stall = limit;
    }

    /// Drops a buffer that is empty but holds more than `keep` bytes of capacity, so the memory
    /// of one large packet is not kept for the rest of the connection.
    pub fn shrink_if_idle(&mut self, keep: usize) {
        if self.buf.is_empty() && (self.buf.capacity() > keep || self.largest > keep) {
            self.buf = BytesMut::new();
            self.largest = 0;
        }
    }

    /// Everything buffered and not returned yet, taken out (the bytes that followed a TLS
    /// switch request belong to the TLS handshake, not to this reader).
    pub fn take_buffered(&mut self) -> bytes::Bytes {
        self.buf.split().freeze()
    }

    /// True when bytes are buffered that have not been returned yet: the peer has already sent
    /// more, so a writer may hold its flush.
    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Splits one complete frame off the buffer, if one has fully arrived.
    ///
    /// `already` is how much of the current logical packet was read before; the limit applies
    /// to the sum, and is checked from the header alone.
    pub fn try_frame(&mut self, already: usize) -> Result<Option<Frame>, ProtocolError> {
        let Some(len) = frame_len_at(&self.buf, 0) else { return Ok(None) };
        if already + len > self.max_packet {
            return Err(ProtocolError::TooLarge { size: already + len, limit: self.max_packet });
        }
        if self.buf.len() < 4 + len {
            self.buf.reserve(4 + len - self.buf.len());
            return Ok(None);
        }
        let seq = self.buf[3];
        self.buf.advance(4);
        self.largest = self.largest.max(len);
        let payload = self.buf.split_to(len).freeze();
        Ok(Some(Frame { seq, payload }))
    }

    /// One read from the stream into the buffer; 0 means end of stream.
    async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> std::io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < self.reserve / 4 {
            // Reclaims the buffer in place once earlier frames were dropped.
            self.buf.reserve(self.reserve);
        }
        r.read_buf(&mut self.buf).await
    }

    /// One read that continues a started packet: under the stall limit, if there is one.
    ///
    /// # Performance
    /// Only a packet split across reads sets up a timer; whole packets never get here.
    async fn fill_rest<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<usize, ProtocolError> {
        match self.stall {
            None => Ok(self.fill(r).await?),
            Some(limit) => match tokio::time::timeout(limit, self.fill(r)).await {
                Ok(n) => Ok(n?),
                Err(_) => Err(ProtocolError::Stalled(limit)),
            },
        }
    }

    /// Reads until at least one complete frame is buffered at the front, without consuming it
    /// (the relay's path: it walks frames in place with [`frame_len_at`] and [`buf_mut`](Self::buf_mut)).
    pub async fn fill_frame<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<(), ProtocolError> {
        loop {
            if let Some(len) = frame_len_at(&self.buf, 0) {
                if 4 + len <= self.buf.len() {
                    return Ok(());
                }
                self.buf.reserve(4 + len - self.buf.len());
            }
            if self.fill(r).await? == 0 {
                return Err(ProtocolError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    /// The raw read buffer: whole and partial frames, headers included.
    pub fn buf_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Reads bytes until one complete frame is buffered. End of stream is an error here: the
    /// caller expected a frame.
    pub async fn read_frame<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
        already: usize,
    ) -> Result<Frame, ProtocolError> {
        loop {
            if let Some(f) = self.try_frame(already)? {
                return Ok(f);
            }
            let n = if already > 0 || !self.buf.is_empty() { self.fill_rest(r).await? } else { self.fill(r).await? };
            if n == 0 {
                return Err(ProtocolError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    /// Reads one logical packet, joining continuation frames. Returns `Ok(None)` if the stream
    /// ended cleanly before the first byte of a packet (the peer hung up between packets).
    pub async fn read_packet<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<Option<Packet>, ProtocolError> {
        let first = loop {
            if let Some(f) = self.try_frame(0)? {
                break f;
            }
            let n = if self.buf.is_empty() { self.fill(r).await? } else { self.fill_rest(r).await? };
            if n == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(ProtocolError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        };
        if !first.continues() {
            return Ok(Some(Packet { seq: first.seq, payload: first.payload }));
        }
        let mut joined = BytesMut::from(&first.payload[..]);
        let mut seq = first.seq;
        loop {
            let f = self.read_frame(r, joined.len()).await?;
            if f.seq != seq.wrapping_add(1) {
                return Err(ProtocolError::OutOfOrder { expected: seq.wrapping_add(1), got: f.seq });
            }
            seq = f.seq;
            joined.extend_from_slice(&f.payload);
            if !f.continues() {
                return Ok(Some(Packet { seq, payload: joined.freeze() }));
            }
        }
    }
}

/// The payload length of the frame whose header starts at `off`, if the header is there.
pub fn frame_len_at(buf: &[u8], off: usize) -> Option<usize> {
    let h = buf.get(off..off + 4)?;
    Some(u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize)
}

/// Appends a frame header.
pub fn put_header(out: &mut BytesMut, len: usize, seq: u8) {
    debug_assert!(len <= MAX_FRAME);
    out.put_uint_le(len as u64, 3);
    out.put_u8(seq);
}

/// Appends `payload` as one logical packet starting at sequence `seq`, split into frames (with
/// an empty trailing frame after an exact multiple of 0xFFFFFF). Returns the next sequence id.
pub fn put_packet(out: &mut BytesMut, mut seq: u8, payload: &[u8]) -> u8 {
    out.reserve(payload.len() + 4 * (payload.len() / MAX_FRAME + 1));
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_FRAME);
        put_header(out, n, seq);
        out.put_slice(&rest[..n]);
        seq = seq.wrapping_add(1);
        rest = &rest[n..];
        if n < MAX_FRAME {
            return seq;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    async fn read_all(bytes: Vec<u8>, max: usize) -> Result<Option<Packet>, ProtocolError> {
        let mut r = PacketReader::new(max, 4096);
        let mut src = &bytes[..];
        r.read_packet(&mut src).await
    }

    /// With a stall limit, a packet whose rest does not come in time fails with `Stalled`;
    /// a long silence between whole packets, or a packet whose rest comes in time, does not.
    #[tokio::test]
    async fn a_started_packet_must_be_finished_within_the_stall_limit() {
        use tokio::io::AsyncWriteExt;
        let limit = std::time::Duration::from_millis(500);
        let (mut peer, mut ours) = tokio::io::duplex(1024);
        let mut r = PacketReader::new(1 << 20, 256);
        r.set_stall_limit(Some(limit));
        // A pause before a packet is not a stall.
        let writer = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(800)).await;
            peer.write_all(&[3, 0, 0, 0, b'a']).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            peer.write_all(b"bc").await.unwrap();
            peer.write_all(&[10, 0, 0, 0, b'x']).await.unwrap();
            peer
        });
        let p = r.read_packet(&mut ours).await.unwrap().unwrap();
        assert_eq!(&p.payload[..], b"abc");
        let _peer = writer.await.unwrap();
        match r.read_packet(&mut ours).await {
            Err(ProtocolError::Stalled(d)) => assert_eq!(d, limit),
            other => panic!("expected a stall, got {other:?}"),
        }
    }

    /// A large packet split off the buffer keeps its allocation behind the buffer's small
    /// remaining capacity; once idle the reader lets it go all the same.
    #[test]
    fn an_idle_reader_gives_back_the_allocation_of_a_large_packet() {
        let mut bytes = BytesMut::new();
        put_packet(&mut bytes, 0, &vec![7u8; 1 << 20]);
        let mut r = PacketReader::new(1 << 24, 4096);
        r.buf = bytes;
        let f = r.try_frame(0).unwrap().unwrap();
        assert_eq!(f.payload.len(), 1 << 20);
        assert!(r.buf.capacity() < 64 << 10, "the remainder looks small: {}", r.buf.capacity());
        drop(f);
        r.shrink_if_idle(64 << 10);
        assert_eq!(r.buf.capacity(), 0, "the buffer was replaced");
        // Small packets alone do not make it reallocate.
        let mut small = BytesMut::new();
        put_packet(&mut small, 0, b"select 1");
        r.buf = small;
        r.try_frame(0).unwrap().unwrap();
        r.buf.reserve(1024);
        let cap = r.buf.capacity();
        r.shrink_if_idle(64 << 10);
        assert_eq!(r.buf.capacity(), cap);
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().build().unwrap()
    }

    #[test]
    fn exact_multiple_of_max_frame_gets_empty_trailer() {
        let payload = vec![7u8; MAX_FRAME];
        let mut out = BytesMut::new();
        let next = put_packet(&mut out, 0, &payload);
        assert_eq!(next, 2);
        assert_eq!(out.len(), 4 + MAX_FRAME + 4);
        assert_eq!(&out[out.len() - 4..], &[0, 0, 0, 1]);
        let p = rt().block_on(read_all(out.to_vec(), 64 << 20)).unwrap().unwrap();
        assert_eq!(p.payload.len(), MAX_FRAME);
        assert_eq!(p.seq, 1);
    }

    #[test]
    fn one_byte_over_max_frame_splits_in_two() {
        let payload = vec![1u8; MAX_FRAME + 1];
        let mut out = BytesMut::new();
        assert_eq!(put_packet(&mut out, 3, &payload), 5);
        assert_eq!(out.len(), 4 + MAX_FRAME + 4 + 1);
        let p = rt().block_on(read_all(out.to_vec(), 64 << 20)).unwrap().unwrap();
        assert_eq!(p.payload.len(), MAX_FRAME + 1);
    }

    #[test]
    fn limit_is_enforced_from_the_header() {
        let mut out = BytesMut::new();
        put_header(&mut out, 1000, 0);
        // Only the header arrived: the limit must trip without waiting for the payload.
        let e = rt().block_on(read_all(out.to_vec(), 999)).unwrap_err();
        assert!(matches!(e, ProtocolError::TooLarge { size: 1000, limit: 999 }));
    }

    #[test]
    fn clean_eof_between_packets_is_none_but_mid_packet_is_error() {
        assert!(rt().block_on(read_all(vec![], 100)).unwrap().is_none());
        assert!(rt().block_on(read_all(vec![5, 0, 0, 0, 1], 100)).is_err());
    }

    #[test]
    fn out_of_order_continuation_is_rejected() {
        let mut out = BytesMut::new();
        put_header(&mut out, MAX_FRAME, 0);
        out.extend_from_slice(&vec![0u8; MAX_FRAME]);
        put_header(&mut out, 0, 5);
        assert!(matches!(
            rt().block_on(read_all(out.to_vec(), 64 << 20)),
            Err(ProtocolError::OutOfOrder { expected: 1, got: 5 })
        ));
    }

    proptest! {
        #[test]
        fn split_join_round_trip(len in 0usize..70_000, seq in any::<u8>()) {
            // Use a small frame size by construction: payloads under MAX_FRAME stay one frame.
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut out = BytesMut::new();
            let next = put_packet(&mut out, seq, &payload);
            prop_assert_eq!(next, seq.wrapping_add(1));
            let p = rt().block_on(read_all(out.to_vec(), 1 << 20)).unwrap().unwrap();
            prop_assert_eq!(&p.payload[..], &payload[..]);
        }
    }
}
