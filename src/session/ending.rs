//! How a session ends: the drain at shutdown (when to close, and closing so that the close
//! reaches the client with an answer), and the reset of a pinned connection before another
//! client can have it.

use super::Session;
use crate::protocol::ProtocolError;

/// How long a session idle when the drain begins waits for its client's next command before
/// closing: busy clients send well within it, and their close then leaves with an answer.
const DRAIN_LINGER: std::time::Duration = std::time::Duration::from_millis(50);

impl Session {
    /// Draining, outside a transaction: the command to serve next, or why the session ends
    /// now. The close is sent with an answer whenever it can be: right after a command was
    /// answered (the answer still queued, so the client cannot have sent its next command
    /// yet), the answer and the FIN leave in one segment, and a client that checks its
    /// connection before writing again sees the close instead of sending into it. A command
    /// the client already sent is served first. A session that was idle when the drain began
    /// waits up to [`DRAIN_LINGER`] for a busy client's next command, to close with its
    /// answer; an idle one is then closed as it is.
    pub(super) async fn next_while_draining(
        &mut self,
        answered: bool,
    ) -> Result<Result<Option<crate::protocol::codec::Packet>, ProtocolError>, &'static str> {
        if let Some(p) = self.client.ready_packet() {
            return Ok(p);
        }
        if !answered {
            let ended = self.ctl.ended.clone();
            tokio::select! {
                p = self.client.read_packet() => return Ok(p),
                _ = ended.cancelled() => return Err("killed"),
                _ = tokio::time::sleep(DRAIN_LINGER) => {}
            }
        }
        match self.client.flush_and_hang_up().await {
            Ok(()) => Err("proxy shutting down (between statements, outside a transaction)"),
            Err(e) => Err(self.write_failed(&e)),
        }
    }

    /// Session end (or reset): a pinned connection carries this client's state (open
    /// transaction, locks, temporary tables, variables), so it is reset before another client
    /// can have it, and closed if the reset fails.
    pub(super) async fn close(&mut self) {
        self.abandon_xa().await;
        if let Some(mut c) = self.lease.take() {
            if let Err(e) = c.reset_to_pool_state().await {
                tracing::debug!(error = %e, "reset of a pinned connection failed; closing it");
                c.mark_broken();
            }
        }
        self.state.unpin_all();
        self.report_pins();
    }
}
