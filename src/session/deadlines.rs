//! The session's deadlines, read from the command's snapshot and the login: how long it may
//! sit idle between commands (in or out of a transaction), how long a statement may run, and
//! what a write that timed out means.

use super::Session;

impl Session {
    /// Why the session ends after a failed write to its client; a client that stopped
    /// reading is counted.
    pub(super) fn write_failed(&self, e: &std::io::Error) -> &'static str {
        if e.kind() == std::io::ErrorKind::TimedOut {
            self.shared.metrics.client_timeouts[3].inc();
            "the client did not read within client_write_timeout_ms"
        } else {
            "client connection lost"
        }
    }

    /// The running statement's deadline: the user's `max_statement_time_ms`, else the
    /// proxy's; none when 0.
    pub(super) fn statement_limit(&self) -> Option<std::time::Duration> {
        let ms = self.login.user.max_statement_time_ms.unwrap_or(self.snap.config.proxy.max_statement_time_ms);
        (ms > 0).then(|| std::time::Duration::from_millis(ms))
    }

    /// How long the session may sit idle before its next command, and whether that limit is
    /// the one for an open transaction. The shortest of: the session's own
    /// `SET wait_timeout = n` (honoured as a server does: pooled backend connections run with
    /// their own setting, so the server cannot do it for the client), `[proxy] idle_timeout_s`,
    /// and, while a transaction holds the connection, `idle_in_transaction_timeout_s`.
    pub(super) fn idle_limit(&self) -> Option<(std::time::Duration, bool)> {
        let p = &self.snap.config.proxy;
        let secs = |s: u64| (s > 0).then(|| std::time::Duration::from_secs(s));
        let idle = [self.state.idle_limit(), secs(p.idle_timeout_s)].into_iter().flatten().min();
        let in_txn = secs(p.idle_in_transaction_timeout_s).filter(|_| self.state.txn().pins());
        match (idle, in_txn) {
            (Some(i), Some(t)) if t < i => Some((t, true)),
            (None, Some(t)) => Some((t, true)),
            (i, _) => i.map(|i| (i, false)),
        }
    }
}
