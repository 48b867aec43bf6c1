//! Backend-side failures.

use crate::protocol::err::ErrPacket;
use crate::protocol::ProtocolError;
use thiserror::Error;

/// A backend connection could not be made or used.
#[derive(Debug, Error)]
pub enum BackendError {
    /// TCP connect failed (refused, unreachable).
    #[error("connect failed: {0}")]
    Connect(std::io::Error),
    /// Connect plus handshake took longer than `connect_timeout_ms`.
    #[error("connect timed out after {0} ms")]
    ConnectTimeout(u64),
    /// The backend refused the login.
    #[error("backend refused login: {0}")]
    Auth(ErrPacket),
    /// The backend asked for something Sluice cannot do during login.
    #[error("cannot log in: {0}")]
    Unsupported(String),
    /// A statement Sluice sent itself (state replay, health check) failed.
    #[error("backend error: {0}")]
    Server(ErrPacket),
    /// The byte stream broke.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The statement passed its deadline and the backend did not answer the kill in time.
    #[error("no answer within {0} ms of the statement's deadline (the statement was killed)")]
    Deadline(u64),
}

impl BackendError {
    /// True when the connection that raised it cannot be used again.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, BackendError::Server(_))
    }
}
