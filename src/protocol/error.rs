//! Errors raised while decoding or framing MySQL packets.

use thiserror::Error;

/// A packet could not be framed or decoded. Any of these means the byte stream can no longer be
/// trusted, so the caller closes the connection it came from.
#[derive(Debug, Error)]
pub enum ProtocolError {
    /// The packet ended before a field it promised.
    #[error("truncated packet: needed {needed} more bytes while reading {what}")]
    Truncated { what: &'static str, needed: usize },
    /// A logical packet is larger than `max_allowed_packet`; refused before buffering it.
    #[error("packet of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// A field held a value the protocol does not allow here.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The peer sent a packet with an unexpected sequence id.
    #[error("packets out of order: expected sequence {expected}, got {got}")]
    OutOfOrder { expected: u8, got: u8 },
    /// The peer started a packet and did not send the rest of it in time.
    #[error("the rest of a packet did not arrive within {0:?}")]
    Stalled(std::time::Duration),
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
