//! Primitive wire types: fixed-width little-endian integers, length-encoded integers and strings.
//!
//! Decoding goes through [`Reader`], which never panics: every read checks the remaining length
//! first and returns [`ProtocolError::Truncated`], because these bytes come from clients and
//! backends we do not trust.

use super::error::ProtocolError;
use bytes::{BufMut, BytesMut};

/// A checked cursor over one packet's payload.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the first byte of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when every byte was read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        if self.remaining() < n {
            return Err(ProtocolError::Truncated { what, needed: n - self.remaining() });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Takes everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, ProtocolError> {
        Ok(self.take(1, what)?[0])
    }

    /// Two bytes, little-endian.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, ProtocolError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    /// Three bytes, little-endian.
    pub fn u24(&mut self, what: &'static str) -> Result<u32, ProtocolError> {
        let b = self.take(3, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], 0]))
    }

    /// Four bytes, little-endian.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, ProtocolError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Eight bytes, little-endian.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, ProtocolError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A length-encoded integer. `None` is the NULL marker (0xFB).
    pub fn lenenc_opt(&mut self, what: &'static str) -> Result<Option<u64>, ProtocolError> {
        let first = self.u8(what)?;
        Ok(match first {
            0xFB => None,
            0xFC => Some(self.u16(what)? as u64),
            0xFD => Some(self.u24(what)? as u64),
            0xFE => Some(self.u64(what)?),
            0xFF => return Err(ProtocolError::Malformed("0xFF is not a length-encoded integer")),
            n => Some(n as u64),
        })
    }

    /// A length-encoded integer that may not be NULL.
    pub fn lenenc(&mut self, what: &'static str) -> Result<u64, ProtocolError> {
        self.lenenc_opt(what)?.ok_or(ProtocolError::Malformed("unexpected NULL length"))
    }

    /// A length-encoded string.
    pub fn lenenc_bytes(&mut self, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        let n = self.lenenc(what)?;
        let n = usize::try_from(n).map_err(|_| ProtocolError::Malformed("length overflows"))?;
        self.take(n, what)
    }

    /// A NUL-terminated string (the NUL is consumed, not returned). A missing NUL takes the rest,
    /// which is how servers and clients treat a last field that lost its terminator.
    pub fn nul_bytes(&mut self) -> &'a [u8] {
        let rest = &self.buf[self.pos..];
        match rest.iter().position(|&b| b == 0) {
            Some(i) => {
                self.pos += i + 1;
                &rest[..i]
            }
            None => {
                self.pos = self.buf.len();
                rest
            }
        }
    }
}

/// Appends a length-encoded integer.
pub fn put_lenenc(out: &mut BytesMut, n: u64) {
    if n < 251 {
        out.put_u8(n as u8);
    } else if n < 1 << 16 {
        out.put_u8(0xFC);
        out.put_u16_le(n as u16);
    } else if n < 1 << 24 {
        out.put_u8(0xFD);
        out.put_uint_le(n, 3);
    } else {
        out.put_u8(0xFE);
        out.put_u64_le(n);
    }
}

/// Appends a length-encoded string.
pub fn put_lenenc_bytes(out: &mut BytesMut, s: &[u8]) {
    put_lenenc(out, s.len() as u64);
    out.put_slice(s);
}

/// Appends a NUL-terminated string.
pub fn put_nul_bytes(out: &mut BytesMut, s: &[u8]) {
    out.put_slice(s);
    out.put_u8(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_round_trips_at_every_width_boundary() {
        for n in [0u64, 250, 251, 65535, 65536, (1 << 24) - 1, 1 << 24, u64::MAX] {
            let mut b = BytesMut::new();
            put_lenenc(&mut b, n);
            let mut r = Reader::new(&b);
            assert_eq!(r.lenenc("n").unwrap(), n);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn truncated_reads_are_errors_not_panics() {
        let mut r = Reader::new(&[0xFD, 1]);
        assert!(matches!(r.lenenc("x"), Err(ProtocolError::Truncated { .. })));
        let mut r = Reader::new(&[5, b'a']);
        assert!(r.lenenc_bytes("s").is_err());
        assert!(Reader::new(&[]).u8("b").is_err());
    }

    #[test]
    fn nul_string_without_terminator_takes_rest() {
        let mut r = Reader::new(b"abc\0def");
        assert_eq!(r.nul_bytes(), b"abc");
        assert_eq!(r.nul_bytes(), b"def");
        assert!(r.is_empty());
    }
}
