//! Session failures and the single place that decides what the client sees for each.

use crate::backend::fanout::FanoutError;
use crate::backend::lease::LeaseError;
use crate::backend::BackendError;
use crate::protocol::err::ErrPacket;
use crate::protocol::ProtocolError;
use crate::router::decide::Refusal;
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
    /// The backend failed after part of a response reached the client at a point where no ERR
    /// packet can be inserted, or it took the session's state (a transaction) with it: the
    /// client connection must close.
    #[error("backend failed mid-response: {0}")]
    BackendMidResponse(BackendError),
}

/// Runs a statement of Sluice's own on a shard primary's connection. A server's error comes
/// back as the server sent it; any other failure as 1105 naming the shard, and the connection
/// is marked broken (its state is unknown).
pub async fn own_query(
    conn: &mut crate::backend::BackendConn,
    sql: &str,
    shard: &str,
) -> Result<crate::backend::conn::QueryResult, ErrPacket> {
    match conn.query(sql).await {
        Ok(r) => Ok(r),
        Err(BackendError::Server(e)) => Err(e),
        Err(e) => {
            conn.mark_broken();
            Err(ErrPacket::backend_unavailable("primary", shard, &e.to_string()))
        }
    }
}

/// What a client sees when a statement on several shards failed: a server's error as the
/// server sent it, anything else as 1105 naming the shard; over the scatter caps, 1235 with
/// `over_budget` (which names the caps).
pub fn fanout_error_to_client(e: FanoutError, acquire_ms: u64, over_budget: &str) -> ErrPacket {
    match e {
        FanoutError::Lease { shard, error } => lease_error_to_client(error, "primary", &shard, acquire_ms),
        FanoutError::Backend { error: BackendError::Server(e), .. } => e,
        FanoutError::Backend { shard, error } => ErrPacket::backend_unavailable("primary", &shard, &error.to_string()),
        FanoutError::Lost { shard } => {
            ErrPacket::new(1105, "HY000", format!("Sluice: the read on shard '{shard}' ended without an answer"))
        }
        FanoutError::OverBudget => ErrPacket::unsupported(over_budget),
    }
}

/// What a client sees when no backend connection could be had for its statement: the server's
/// own error when the server refused the client's state (an unknown schema), otherwise 1105
/// naming the role and shard (never the address) and the reason.
pub fn lease_error_to_client(e: LeaseError, role: &str, shard: &str, acquire_ms: u64) -> ErrPacket {
    match e {
        LeaseError::Backend(BackendError::Server(err)) => err,
        LeaseError::Backend(BackendError::Auth(err)) => {
            ErrPacket::backend_unavailable(role, shard, &format!("login refused: {}", err.message))
        }
        LeaseError::Timeout { open, in_use } => ErrPacket::new(
            1105,
            "HY000",
            format!(
                "Sluice: no free connection to the {role} of shard '{shard}' within {acquire_ms} ms \
                 ([pool] acquire_timeout_ms): {in_use} of {open} connections in use ([pool] max_size); \
                 the backend is up, the pool is exhausted"
            ),
        ),
        LeaseError::Down(reason) => ErrPacket::backend_unavailable(role, shard, &reason),
        LeaseError::Backend(other) => ErrPacket::backend_unavailable(role, shard, &other.to_string()),
    }
}

/// What a client sees for a statement the decision refused (nothing was sent anywhere).
pub fn refusal_to_client(r: &Refusal) -> ErrPacket {
    match r {
        Refusal::WrongConsistency(v) => ErrPacket::wrong_value("sluice_consistency", v),
        Refusal::KillInPrepared => ErrPacket::unsupported_in_prepared("KILL through Sluice"),
        Refusal::Sharding(what) | Refusal::Transaction(what) => ErrPacket::unsupported(what),
        Refusal::WritesPaused => ErrPacket::writes_paused(),
        Refusal::TopologyChanged => ErrPacket::topology_changed(),
    }
}
