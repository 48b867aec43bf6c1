//! What each statement leaves for operators: a row of the statistics table (by fingerprint,
//! user, schema, shard and destination) and, past `[stats] slow_ms`, a slow-log line.
//!
//! The statement path fills in a [`Note`] as it goes (the route and the response in
//! `Session::finish`, the error paths where they answer); the command handlers call
//! [`Session::observe`] once the client has its answer. After each command the session's pins
//! are reported too: the pinned-sessions gauge, and the transaction's start for the fleet
//! registry's pause acknowledgement.

use super::pin::PinReason;
use super::Session;
use crate::protocol::response::ResponseScanner;
use crate::router::{Role, Route};
use crate::stats::{slowlog, Destination, Sample, Where};
use crate::topology::Backend;
use std::sync::Arc;
use std::time::Instant;

/// Where the current statement went and what it returned.
#[derive(Debug, Default)]
pub struct Note {
    pub dest: Destination,
    /// Index of the shard in the statement's snapshot.
    pub shard: usize,
    pub backend: Option<Arc<Backend>>,
    pub rows_sent: u64,
    pub rows_affected: u64,
    pub error: Option<String>,
    /// When the relayed response ended, read once for both the per-role latency metric and
    /// the statement's statistics row (a clock read is about 90 instructions).
    pub ended: Option<Instant>,
}

impl Note {
    /// Starts a statement answered by Sluice unless the path says otherwise.
    pub fn begin(&mut self, dest: Destination) {
        self.dest = dest;
        self.shard = 0;
        self.backend = None;
        self.rows_sent = 0;
        self.rows_affected = 0;
        self.error = None;
        self.ended = None;
    }

    /// A response relayed from `route`'s backend.
    pub fn relayed(&mut self, route: Route, backend: Option<Arc<Backend>>, scanner: &ResponseScanner, ended: Instant) {
        self.dest = match route.role {
            Role::Primary => Destination::Primary,
            Role::Replica => Destination::Replica,
        };
        self.shard = route.shard;
        self.backend = backend;
        self.rows_sent = scanner.rows;
        self.rows_affected = scanner.oks.iter().map(|o| o.affected_rows).sum();
        self.error = scanner.error.as_ref().map(|e| format!("{} {}", e.code, e.message));
        self.ended = Some(ended);
    }

    /// The statement failed with `message` before or while reaching a backend.
    pub fn failed(&mut self, message: String) {
        self.error = Some(message);
    }
}

impl Session {
    /// Publishes the statement that begins (`statement` holds its text) for
    /// `SHOW SLUICE CLIENTS`, with the session's schema and pins as they stand.
    pub(super) fn statement_began(&self, statement: &[u8], at: Instant) {
        self.ctl.statement_began(statement, at, self.state.want.schema.as_deref(), self.state.pins().bits());
    }

    /// Answers the current statement with `e`, noting the failure.
    pub(super) fn answer_error(&mut self, e: &crate::protocol::err::ErrPacket) {
        self.note.failed(format!("{} {}", e.code, e.message));
        self.client.put_err(self.seq, e);
    }

    /// Counts the statement that just ended (`sql` is its text, `started` when it arrived).
    /// `fingerprint` is the hash the statement's analysis computed, when it ran one.
    pub(super) fn observe(&mut self, sql: &str, fingerprint: Option<u64>, started: Instant) {
        self.ctl.statement_ended();
        let cfg = &self.snap.config.stats;
        if !cfg.enabled {
            return;
        }
        let took = self.note.ended.map_or_else(|| started.elapsed(), |e| e.saturating_duration_since(started));
        let fingerprint = fingerprint.unwrap_or_else(|| crate::sql::fingerprint::hash(sql));
        let shard = self.snap.topology.shard_name(self.note.shard);
        let schema = self.state.want.schema.as_deref();
        let user = self.login.user.name.get_ref().as_str();
        let at = Where { user, schema, shard, dest: self.note.dest };
        let sample = Sample {
            took,
            error: self.note.error.is_some(),
            rows_sent: self.note.rows_sent,
            rows_affected: self.note.rows_affected,
        };
        self.shared.stats.record(fingerprint, &at, || crate::sql::fingerprint::text(sql), sample);
        if cfg.slow_ms > 0 && took.as_millis() as u64 >= cfg.slow_ms {
            self.shared.metrics.slow_statements.inc();
            if let Some(log) = self.shared.slow_log() {
                let mut statement = sql.to_string();
                if statement.len() > cfg.slow_log_max_text {
                    let mut cut = cfg.slow_log_max_text;
                    while !statement.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    statement.truncate(cut);
                }
                let backend = self.note.backend.as_ref();
                let pins = self.state.pins();
                log.log(slowlog::Entry {
                    time: std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as f64 / 1000.0)
                        .unwrap_or(0.0),
                    session: self.ctl.id,
                    user: user.to_string(),
                    schema: schema.map(str::to_string),
                    fingerprint: crate::sql::fingerprint::text(sql),
                    statement,
                    duration_ms: took.as_secs_f64() * 1000.0,
                    destination: self.note.dest.as_str(),
                    shard: shard.to_string(),
                    backend: backend.map(|b| b.addr.clone()),
                    lag_ms: backend.filter(|b| b.role == Role::Replica).and_then(|b| b.health.lag_ms()),
                    pinned: pins.any().then(|| pins.labels()),
                    rows_sent: self.note.rows_sent,
                    rows_affected: self.note.rows_affected,
                    error: self.note.error.clone(),
                });
            }
        }
    }

    /// Updates the pinned-sessions gauge when this session's reasons changed, and publishes
    /// when its transaction began or ended (for [`crate::sessions::Registry::settled_since`]).
    pub(super) fn report_pins(&mut self) {
        let now = self.state.pins();
        if now == self.reported_pins {
            return;
        }
        let in_txn = now.has(PinReason::Transaction);
        if in_txn != self.reported_pins.has(PinReason::Transaction) {
            self.ctl.transaction(in_txn.then_some(self.snap.version));
        }
        let g = &self.shared.metrics.sessions_pinned;
        for r in PinReason::ALL {
            match (self.reported_pins.has(r), now.has(r)) {
                (false, true) => g.with_label_values(&[r.label()]).inc(),
                (true, false) => g.with_label_values(&[r.label()]).dec(),
                _ => {}
            }
        }
        self.reported_pins = now;
    }
}
