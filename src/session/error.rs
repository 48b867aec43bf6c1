//! Session failures and the single place that decides what the client sees for each.

use crate::backend::BackendError;
use crate::protocol::ProtocolError;
use thiserror::Error;

/// Why a command or a whole session failed.
#[derive(Debug, Error)]
pub enum SessionError {
    /// The client hung up.
    #[error("client closed the connection")]
    ClientGone,
    /// Writing to or reading from the client failed.
    #[error("client i/o: {0}")]
    ClientIo(#[from] std::io::Error),
    /// The client's bytes broke the protocol.
    #[error("client protocol: {0}")]
    Protocol(#[from] ProtocolError),
    /// Login refused (already answered with ERROR 1045).
    #[error("authentication failed")]
    AuthFailed,
    /// The backend failed after part of a response reached the client, at a point where no
    /// ERR packet can be inserted: the client connection must close.
    #[error("backend failed mid-response: {0}")]
    BackendMidResponse(BackendError),
}
