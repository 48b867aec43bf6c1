//! A relay that failed: what the client is told, and whether the session survives it.

use super::relay::RelayError;
use super::{Session, SessionError};
use crate::backend::BackendError;
use crate::protocol::err::ErrPacket;
use crate::protocol::response::ResponseScanner;
use crate::router::Route;

impl Session {
    /// A relay failed: tell the client if the protocol still allows it, drop the connection.
    pub(super) async fn relay_failed(
        &mut self,
        e: RelayError,
        route: Route,
    ) -> Result<Option<ResponseScanner>, SessionError> {
        if let Some(mut c) = self.lease.take() {
            c.mark_broken();
        }
        // Did the connection hold session state (an open transaction, locks, temporary tables,
        // an open cursor)?
        let held = self.state.pins();
        self.state.unpin_all();
        match e {
            RelayError::Client(io) => Err(SessionError::ClientIo(io)),
            RelayError::ClientHungUp => Err(SessionError::ClientGone),
            RelayError::Backend { error, clean, seq } => {
                let snap = &self.snap;
                let shard = snap.topology.shard_name(route.shard);
                self.shared.metrics.backend_errors.with_label_values(&[shard, route.role.as_str()]).inc();
                tracing::warn!(%error, shard = %shard, "backend failed during a statement");
                if !clean {
                    self.note.failed(format!("connection closed mid-response: {error}"));
                    return Err(SessionError::BackendMidResponse(error));
                }
                let err = match error {
                    BackendError::Deadline(grace) => ErrPacket::statement_abandoned(grace),
                    // A KILL CONNECTION of this session ended its backend connection.
                    _ if self.ctl.connection_killed() => ErrPacket::connection_killed(),
                    _ if held.any() => {
                        // The session's state (its transaction, locks, temporary tables) died
                        // with that connection, and carrying on would run the client's next
                        // statements outside the transaction it believes is open. The client
                        // connection ends without an answer, as a server's does when it goes
                        // away: the client reports 2013 (lost connection), which drivers and
                        // pools recognise as a disconnect; an ERR packet (1105) would leave
                        // them taking the connection for alive. The reason is in the log.
                        self.note.failed(format!("lost the connection holding the session's state: {error}"));
                        return Err(SessionError::BackendMidResponse(error));
                    }
                    _ => {
                        let msg = format!("lost connection to the backend during the statement ({error})");
                        ErrPacket::backend_unavailable(route.role.as_str(), shard, &msg)
                    }
                };
                self.note.failed(format!("{} {}", err.code, err.message));
                self.client.put_err(seq, &err);
                if held.any() {
                    // Abandoned past its deadline or killed: the client is told why, and the
                    // connection ends (the state the session held is gone).
                    let _ = self.client.flush().await;
                    return Err(SessionError::BackendMidResponse(error));
                }
                Ok(None)
            }
        }
    }
}
