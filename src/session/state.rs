//! What Sluice keeps of a client's session so that any pooled connection can serve its next
//! statement: the state to replay, and the values (LAST_INSERT_ID(), ROW_COUNT(),
//! FOUND_ROWS()) that would otherwise depend on which connection ran the previous statement.

use super::pin::{PinReason, Pins};
use super::txn::Txn;
use crate::backend::ConnState;
use crate::protocol::ok::StateChange;
use crate::protocol::response::ResponseScanner;
use crate::protocol::status;
use crate::router::{Analysis, Feature};
use crate::topology::gtid::GtidPos;

/// A client session's state.
#[derive(Debug, Clone)]
pub struct SessionState {
    /// Schema, variables and multi-statement mode every connection must have before running
    /// this client's statements; `last_insert_id` is what LAST_INSERT_ID() must return.
    pub want: ConnState,
    /// The state right after login, restored by COM_RESET_CONNECTION.
    pub initial: ConnState,
    /// What ROW_COUNT() returns: affected rows of the last statement, -1 after a result set.
    pub row_count: i64,
    /// What FOUND_ROWS() returns.
    pub found_rows: u64,
    /// Status flags of the last response (see [`SessionState::status`] for what the client is
    /// told).
    server_status: u16,
    /// Why the session keeps its connection, a transaction apart ([`SessionState::pins`]).
    pins: Pins,
    /// The session's transaction: the one record of it.
    txn: Txn,
    /// GTIDs of this session's own writes (session tracking's `last_gtid`): with
    /// `consistency = "session"` its reads go only to replicas that applied them.
    pub written: GtidPos,
    /// A write changed rows outside a transaction and the server reported no `last_gtid`
    /// for it (a MySQL server, or no binary log): read-your-writes cannot be checked on
    /// replicas, so `session` consistency reads from the primary from then on.
    pub untracked_write: bool,
    /// The session's own `wait_timeout` ([`SessionState::idle_limit`]), kept up to date by
    /// [`SessionState::set_var`] so the command loop does not look it up per command.
    idle: Option<std::time::Duration>,
}

impl SessionState {
    /// The state of a fresh login.
    pub fn new(initial: ConnState) -> Self {
        SessionState {
            want: initial.clone(),
            initial,
            row_count: 0,
            found_rows: 0,
            server_status: status::AUTOCOMMIT,
            pins: Pins::default(),
            txn: Txn::Idle,
            written: GtidPos::default(),
            untracked_write: false,
            idle: None,
        }
    }

    /// Records a session variable's new value (from session tracking or a read-back); the
    /// only way `want.vars` changes after login.
    pub fn set_var(&mut self, name: &str, value: &str) {
        if self.want.vars.get(name).map(String::as_str) == Some(value) {
            return;
        }
        std::sync::Arc::make_mut(&mut self.want.vars).insert(name.to_string(), value.to_string());
        if name == "wait_timeout" {
            self.idle = value
                .parse::<f64>()
                .ok()
                .filter(|&secs| secs >= 1.0)
                .map(|secs| std::time::Duration::from_secs_f64(secs.min(31_536_000.0)));
        }
    }

    /// True when the session runs with autocommit off: every statement belongs to a
    /// transaction, so all of them go to the primary.
    /// (The server reports it in every response's status flags, which Sluice keeps.)
    pub fn autocommit_off(&self) -> bool {
        self.server_status & status::AUTOCOMMIT == 0
    }

    /// The status flags for the answers Sluice builds: the last response's, with "in
    /// transaction" as the session's transaction says (a held `BEGIN` is one; the flags a
    /// branch left after Sluice ended an XA transaction are not) and never "more results".
    pub fn status(&self) -> u16 {
        let base = self.server_status & !(status::MORE_RESULTS_EXISTS | status::IN_TRANS);
        if self.txn.client_in_trans() {
            base | status::IN_TRANS
        } else {
            base
        }
    }

    /// Why the session keeps its connection now: the reasons recorded, and its transaction.
    pub fn pins(&self) -> Pins {
        let mut p = self.pins;
        p.set(PinReason::Transaction, self.txn.pins());
        p
    }

    /// Records a reason to keep (or no longer keep) the connection. A transaction is not one
    /// of them: it is the transaction state's ([`SessionState::txn_mut`]).
    pub fn pin(&mut self, reason: PinReason, on: bool) {
        debug_assert!(reason != PinReason::Transaction, "transactions pin through Txn");
        self.pins.set(reason, on);
    }

    /// The connection and everything on it are gone: no reason to keep it, no transaction.
    pub fn unpin_all(&mut self) {
        self.pins = Pins::default();
        self.txn.end();
    }

    /// The session's transaction.
    pub fn txn(&self) -> &Txn {
        &self.txn
    }

    /// The session's transaction, to move it along (see [`Txn`]).
    pub fn txn_mut(&mut self) -> &mut Txn {
        &mut self.txn
    }

    /// The session's `wait_timeout`, when it set one (otherwise Sluice closes no idle client).
    pub fn idle_limit(&self) -> Option<std::time::Duration> {
        self.idle
    }

    /// Back to the login state (COM_RESET_CONNECTION). The session's writes stay known: its
    /// next reads must still see them.
    pub fn reset(&mut self) {
        let written = std::mem::take(&mut self.written);
        let untracked = self.untracked_write;
        *self = SessionState::new(self.initial.clone());
        self.written = written;
        self.untracked_write = untracked;
    }

    /// Learns from a finished response: values, variables, schema, and pin reasons. The
    /// statement's analysis (text protocol only) adds what the backend does not report.
    pub fn absorb(&mut self, r: &ResponseScanner, analysis: Option<&Analysis<'_>>) {
        let mut unexplained_change = false;
        let mut gtid_seen = false;
        let mut changed_rows = false;
        for ok in &r.oks {
            changed_rows |= ok.affected_rows > 0;
            if ok.last_insert_id != 0 {
                self.want.last_insert_id = ok.last_insert_id;
            }
            self.row_count = ok.affected_rows as i64;
            let changes = ok.changes();
            // A "state changed" entry is accounted for only by a plain SET or USE that also
            // reported what it changed; after anything else (a routine, a statement creating
            // session objects) it may mean state Sluice cannot see.
            let plain = analysis.is_none_or(|a| {
                (a.first.eq_ignore_ascii_case("set") || a.first.eq_ignore_ascii_case("use"))
                    && !a.features.has(Feature::Routine)
            });
            // A SET of Sluice's own tracking variables changes nothing that stays: the
            // tracking settings are restored right after it (see `readback`).
            let own_tracking = analysis.is_some_and(|a| a.features.has(Feature::TrackingVar));
            let explained = plain
                && (own_tracking
                    || changes.iter().any(|c| matches!(c, StateChange::SystemVariable(..) | StateChange::Schema(_))));
            for c in changes {
                match c {
                    StateChange::SystemVariable(k, v) if crate::backend::conn::replayable(k) => self.set_var(k, v),
                    StateChange::SystemVariable(k, v) if k == "last_insert_id" || k == "identity" => {
                        if let Ok(id) = v.parse() {
                            self.want.last_insert_id = id;
                        }
                    }
                    StateChange::SystemVariable(k, _) if crate::backend::conn::one_shot(k) => {
                        self.pins.set(PinReason::ConnectionState, true);
                    }
                    StateChange::SystemVariable(k, _) if !crate::backend::conn::valid_name(k) => {
                        // Never written into SQL: the state stays where it is.
                        self.pins.set(PinReason::ConnectionState, true);
                    }
                    StateChange::SystemVariable(k, v) if k == "last_gtid" => {
                        if let Some(pos) = GtidPos::parse(v) {
                            self.written.merge(&pos);
                            gtid_seen = true;
                        }
                    }
                    // The session's own database was dropped: it has none now, which only the
                    // connection it ran on can show (a pooled connection cannot unselect its
                    // schema), so the session stays there.
                    StateChange::Schema(s) if s.is_empty() => {
                        self.want.schema = None;
                        self.pins.set(PinReason::ConnectionState, true);
                    }
                    StateChange::Schema(s) => self.want.schema = Some(s.clone()),
                    StateChange::StateChanged if !explained => unexplained_change = true,
                    _ => {}
                }
            }
        }
        if r.had_result_set {
            self.row_count = -1;
            self.found_rows = r.rows;
        }
        if let Some(s) = r.status {
            self.server_status = s;
        }
        // autocommit=0 itself does not pin: it is a session variable replayed on every
        // connection the session takes, and each transaction it opens pins until COMMIT or
        // ROLLBACK. Between transactions the session is multiplexed.
        let autocommit_off = self.autocommit_off();
        self.txn.after_response(r.status, r.error.is_some(), autocommit_off);
        let in_trans = self.server_status & status::IN_TRANS != 0;
        if changed_rows && !gtid_seen && !in_trans && analysis.is_some_and(|a| a.kind == crate::router::Kind::Write) {
            self.untracked_write = true;
        }
        if let Some(a) = analysis {
            let f = a.features;
            if f.has(Feature::UserVariable) {
                self.pins.set(PinReason::UserVariable, true);
            }
            if f.has(Feature::TempTable) {
                self.pins.set(PinReason::TempTable, true);
            }
            if f.has(Feature::UserLock) {
                self.pins.set(PinReason::UserLock, true);
            }
            if f.has(Feature::LockTables) {
                self.pins.set(PinReason::LockTables, true);
            }
            if f.has(Feature::UnlockTables) {
                self.pins.set(PinReason::LockTables, false);
            }
            if f.has(Feature::ConnectionState) || f.has(Feature::OneShotVar) {
                self.pins.set(PinReason::ConnectionState, true);
            }
            if f.has(Feature::Routine) {
                self.pins.set(PinReason::Routine, true);
            }
            // MariaDB keeps SERVER_STATUS_IN_TRANS through XA END and XA PREPARE, but the XA
            // transaction's lifetime is defined by XA START..COMMIT/ROLLBACK, not by a flag.
            if f.has(Feature::XaStart) && r.error.is_none() {
                self.pins.set(PinReason::Xa, true);
            }
            if f.has(Feature::XaEnd) && r.error.is_none() {
                self.pins.set(PinReason::Xa, false);
            }
        }
        if unexplained_change {
            self.pins.set(PinReason::ConnectionState, true);
        }
    }
}
