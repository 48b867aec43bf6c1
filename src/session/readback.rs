//! What Sluice reads back (or puts back) on a connection after a statement whose effect on the
//! session the backend does not report, before the connection can go back to the pool:
//!
//! - `SET @@name = ..`: MariaDB's session tracking reports `SET name`, `SET SESSION name` and
//!   `SET @@session.name`, but not the bare `@@name` form, so the values are read back;
//! - `LAST_INSERT_ID(expr)` sets the session's value without any packet saying so;
//! - the `session_track_*` variables are Sluice's: a client's change to them would hide every
//!   later change from Sluice, so Sluice's own values are restored at once;
//! - `SET NAMES` and the connection's character-set variables: the server adjusts the related
//!   ones (`collation_connection` follows `character_set_connection`) without reporting
//!   them, so the four are read back;
//! - `SET max_join_size`: the server sets `sql_big_selects` with it, unreported, so it is read
//!   back (else another connection would get the session's older `sql_big_selects = 1` and
//!   answer a SELECT the server refuses with ERROR 1104: mysql-test's main.select_safe).

use super::state::SessionState;
use crate::backend::conn::{replayable, BackendConn};
use crate::backend::BackendError;
use crate::router::{analysis, Analysis, Feature};
use std::fmt::Write;

/// What `SET NAMES` / `SET CHARACTER SET` and a change of one of them may change on the server.
const CHARSET_VARIABLES: [&str; 4] =
    ["character_set_client", "character_set_connection", "character_set_results", "collation_connection"];

/// Runs the read-backs `a` calls for on `conn` and records what they found in `state` (and
/// in the connection's own state). Only after a statement that succeeded.
pub async fn after_statement(
    conn: &mut BackendConn,
    state: &mut SessionState,
    a: &Analysis<'_>,
) -> Result<(), BackendError> {
    let f = a.features;
    if f.has(Feature::TrackingVar) {
        conn.query(crate::backend::conn::TRACKING).await?;
    }
    // One SELECT reads back every variable the statement may have changed unreported: the
    // `@@name` assignments, and the connection's character-set variables after SET NAMES
    // and friends.
    let mut names: Vec<&str> = Vec::new();
    if f.has(Feature::SysVarAssign) {
        names.extend(analysis::assigned_sysvars(a.sql).into_iter().filter(|n| replayable(n)));
    }
    if f.has(Feature::CharsetAssign) {
        names.extend(CHARSET_VARIABLES);
    }
    if f.has(Feature::JoinSizeAssign) {
        names.push("sql_big_selects");
    }
    names.sort_by_cached_key(|n| n.to_ascii_lowercase());
    names.dedup_by(|x, y| x.eq_ignore_ascii_case(y));
    if !names.is_empty() {
        let mut sql = String::from("SELECT ");
        for (i, n) in names.iter().enumerate() {
            let _ = write!(sql, "{}@@session.{n}", if i == 0 { "" } else { ", " });
        }
        let r = conn.query(&sql).await?;
        if let Some(row) = r.rows.first() {
            // A NULL (character_set_results = NULL: no conversion) is left as session
            // tracking reported it.
            for (n, v) in names.iter().zip(row) {
                if let Some(v) = v {
                    let name = n.to_ascii_lowercase();
                    state.set_var(&name, v);
                    std::sync::Arc::make_mut(&mut conn.state.vars).insert(name, v.clone());
                }
            }
        }
    }
    if f.has(Feature::SetsLastInsertId) {
        let r = conn.query("SELECT LAST_INSERT_ID()").await?;
        if let Some(id) = r.rows.first().and_then(|row| row.first().cloned().flatten()).and_then(|v| v.parse().ok()) {
            state.want.last_insert_id = id;
            conn.state.last_insert_id = id;
        }
    }
    Ok(())
}

/// Keeps the session's `FOUND_ROWS()` what the server would answer after `a`, which
/// succeeded and sent `sent` rows: with `SQL_CALC_FOUND_ROWS` (or an INSERT ... SELECT) and
/// with an offset whose rows found only the server knows (`router::found_rows`) it is read
/// back on `conn`, the connection that ran it, before anyone else can use it. `SELECT
/// FOUND_ROWS()` leaves the connection's warnings as they were (tried on MariaDB 10.11).
pub async fn found_rows(
    conn: &mut BackendConn,
    state: &mut SessionState,
    a: &Analysis<'_>,
    result_set: bool,
    sent: u64,
) {
    let known = match (a.features.has(Feature::CalcFoundRows), result_set) {
        (true, _) => None,
        (false, true) => crate::router::found_rows::known(a.found, sent),
        (false, false) => return,
    };
    match known {
        Some(n) => state.found_rows = n,
        None => {
            if let Ok(r) = conn.query("SELECT FOUND_ROWS()").await {
                let v = r.rows.first().and_then(|row| row.first().cloned().flatten());
                state.found_rows = v.and_then(|v| v.parse().ok()).unwrap_or(0);
            }
        }
    }
}

/// True when [`after_statement`] has anything to do for `a`.
pub fn needed(a: &Analysis<'_>) -> bool {
    let f = a.features;
    f.has(Feature::TrackingVar)
        || f.has(Feature::SysVarAssign)
        || f.has(Feature::SetsLastInsertId)
        || f.has(Feature::CharsetAssign)
        || f.has(Feature::JoinSizeAssign)
}
