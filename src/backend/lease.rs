//! Taking a connection from a pool for one statement (or one pinned stretch of a session) and
//! making its session state match the client's before anything of the client's runs on it.

use super::conn::ConnState;
use super::error::BackendError;
use super::pool::{PoolHandle, PooledConn};
use crate::protocol::com;
use crate::protocol::response::Expect;
use std::fmt::Write;
use std::sync::Arc;

/// How many stale or unfit pooled connections a checkout discards before giving up.
const CHECKOUT_ATTEMPTS: usize = 4;

/// Why no connection could be had.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The pool had no free connection within `acquire_timeout_ms`: `open` connections, all
    /// `in_use` (the backend is up; the pool is exhausted).
    #[error("timed out waiting for a pooled connection ({in_use} of {open} in use)")]
    Timeout { open: u32, in_use: u32 },
    /// The backend is down: a connect attempt failed while this checkout waited.
    #[error("{0}")]
    Down(String),
    /// A new connection could not be made.
    #[error("{0}")]
    Backend(#[from] BackendError),
}

/// Checks a connection out and brings it to `want`: schema, session variables, and
/// multi-statement mode. A connection the backend closed while idle is discarded and another
/// taken, so a stale pool never costs the client an error.
///
/// `globals_epoch` is the current `SET GLOBAL` epoch: a connection from an earlier one is
/// reset first (COM_RESET_CONNECTION copies the current globals into the session), so a new
/// client session starts from the current globals, as on a server.
pub async fn checkout(pool: &PoolHandle, want: &ConnState, globals_epoch: u64) -> Result<PooledConn, LeaseError> {
    let mut last = None;
    for _ in 0..CHECKOUT_ATTEMPTS {
        let mut conn = get(pool).await?;
        if conn.is_stale() {
            conn.mark_broken();
            continue;
        }
        if conn.globals_epoch < globals_epoch {
            if let Err(e) = conn.reset_to_pool_state().await {
                conn.mark_broken();
                last = Some(e);
                continue;
            }
            conn.globals_epoch = globals_epoch;
        }
        if want.schema.is_none() && conn.state.schema.is_some() {
            // A schema cannot be unselected by a statement: log in again on this connection.
            if let Err(e) = super::connect::clear_schema(&mut conn, &pool.options).await {
                tracing::debug!(error = %e, "COM_CHANGE_USER to leave the schema failed; closing the connection");
                conn.mark_broken();
                last = Some(e);
                continue;
            }
        }
        match reconcile(&mut conn, want).await {
            Ok(()) => return Ok(conn),
            // The server refused the client's own state (an unknown schema, say): the
            // connection is fine and the client must hear the server's error.
            Err(e @ BackendError::Server(_)) => return Err(LeaseError::Backend(e)),
            Err(e) => {
                conn.mark_broken();
                last = Some(e);
            }
        }
    }
    Err(LeaseError::Backend(last.unwrap_or(BackendError::Unsupported("no usable pooled connection".into()))))
}

/// One bb8 checkout that fails fast when the pool has no connection and a connect attempt
/// made while waiting failed: the backend is down, and waiting longer helps nobody.
///
/// # Performance
/// An idle connection is taken at the first poll, before any clock read or timer: the wait
/// and its 20 ms checks are set up only when the pool has none free.
async fn get(h: &PoolHandle) -> Result<PooledConn, LeaseError> {
    let done = |r: Result<PooledConn, bb8::RunError<_>>| match r {
        Ok(c) => Ok(c),
        Err(bb8::RunError::TimedOut) => {
            let s = h.pool.state();
            Err(LeaseError::Timeout { open: s.connections, in_use: s.connections - s.idle_connections })
        }
        Err(bb8::RunError::User(e)) => Err(LeaseError::Backend(e)),
    };
    let get = h.pool.get_owned();
    tokio::pin!(get);
    if let std::task::Poll::Ready(r) = futures_util::poll!(&mut get) {
        return done(r);
    }
    let started = std::time::Instant::now();
    loop {
        tokio::select! {
            biased;
            r = &mut get => return done(r),
            _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {
                if h.pool.state().connections == 0 {
                    if let Some(reason) = h.last_error.since(started) {
                        return Err(LeaseError::Down(reason));
                    }
                }
            }
        }
    }
}

/// Makes a connection's session state equal to `want`, in as few round trips as it takes
/// (none in the common case where nothing differs).
pub async fn reconcile(conn: &mut PooledConn, want: &ConnState) -> Result<(), BackendError> {
    if conn.state.schema != want.schema {
        match &want.schema {
            Some(db) => {
                if !db.is_ascii() && !reads_utf8(&conn.state) {
                    // The server reads COM_INIT_DB's name in the connection's
                    // character_set_client, and the tracked name is UTF-8 (the server's
                    // system character set): under koi8r or latin1 it would name another
                    // database. The SET below puts the session's own character set back.
                    conn.query("SET character_set_client = utf8mb4").await?;
                    Arc::make_mut(&mut conn.state.vars).insert("character_set_client".into(), "utf8mb4".into());
                }
                let mut p = vec![com::INIT_DB];
                p.extend_from_slice(db.as_bytes());
                conn.command(&p, Expect::Simple).await?;
                conn.state.schema = Some(db.clone());
            }
            // A schema cannot be unselected; the caller takes another connection.
            None => return Err(BackendError::Unsupported("connection has a schema selected".into())),
        }
    }
    if let Some(sql) = set_statement(&conn.state, want) {
        conn.query(&sql).await?;
    }
    // The connection now has exactly `want`'s variables (those reset to DEFAULT match a fresh
    // connection again, so they are no longer tracked as differences); sharing the session's
    // map makes the next comparison a pointer comparison.
    if !Arc::ptr_eq(&conn.state.vars, &want.vars) {
        conn.state.vars = want.vars.clone();
    }
    if conn.state.multi_statements != want.multi_statements {
        let opt: u16 = if want.multi_statements { 0 } else { 1 };
        let b = opt.to_le_bytes();
        conn.command(&[com::SET_OPTION, b[0], b[1]], Expect::Simple).await?;
        conn.state.multi_statements = want.multi_statements;
    }
    Ok(())
}

/// True when the connection reads statement text as UTF-8 (character_set_client utf8mb4 or
/// utf8mb3), so a UTF-8 name needs no conversion.
fn reads_utf8(state: &ConnState) -> bool {
    state.vars.get("character_set_client").is_some_and(|c| matches!(c.as_str(), "utf8mb4" | "utf8mb3" | "utf8"))
}

/// One `SET SESSION a = .., b = DEFAULT` that turns `have` into `want`, or `None`.
///
/// # Performance
/// `None` at once when both hold the same map (see [`ConnState::vars`]): the common case of
/// a checkout by a session whose variables equal the connection's last reconcile.
pub fn set_statement(have: &ConnState, want: &ConnState) -> Option<String> {
    if Arc::ptr_eq(&have.vars, &want.vars) {
        return None;
    }
    let mut sql = String::new();
    let mut sep = "SET SESSION ";
    for (k, v) in want.vars.iter() {
        if have.vars.get(k) != Some(v) {
            let _ = write!(sql, "{sep}{k} = {}", literal(v));
            sep = ", ";
        }
    }
    for k in have.vars.keys() {
        if !want.vars.contains_key(k) {
            let _ = write!(sql, "{sep}{k} = DEFAULT");
            sep = ", ";
        }
    }
    (!sql.is_empty()).then_some(sql)
}

/// A value as the server reported it, written back as SQL: numbers bare (numeric variables
/// reject strings), everything else as a quoted string.
fn literal(v: &str) -> String {
    let numeric = !v.is_empty()
        && v.strip_prefix('-').unwrap_or(v).bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && v.bytes().filter(|&b| b == b'.').count() <= 1;
    if numeric {
        return v.to_string();
    }
    crate::sql::string_literal(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(vars: &[(&str, &str)]) -> ConnState {
        ConnState {
            vars: Arc::new(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn nothing_to_do_when_equal() {
        let s = state(&[("time_zone", "+00:00")]);
        assert_eq!(set_statement(&s, &s), None);
        // Equal contents in two allocations: compared entry by entry, still nothing to do.
        assert_eq!(set_statement(&state(&[("time_zone", "+00:00")]), &s), None);
    }

    /// A shared map changed through `Arc::make_mut` is copied first: the state that shared
    /// it keeps its own values, and the difference is found.
    #[test]
    fn a_shared_map_changed_copy_on_write_shows_the_difference() {
        let have = state(&[("time_zone", "+00:00")]);
        let mut want = have.clone();
        assert!(Arc::ptr_eq(&have.vars, &want.vars));
        assert_eq!(set_statement(&have, &want), None);
        Arc::make_mut(&mut want.vars).insert("time_zone".into(), "+02:00".into());
        assert_eq!(have.vars["time_zone"], "+00:00");
        assert_eq!(set_statement(&have, &want).unwrap(), "SET SESSION time_zone = '+02:00'");
    }

    #[test]
    fn sets_differences_and_resets_extras() {
        let have = state(&[("sql_mode", "ANSI"), ("wait_timeout", "100"), ("character_set_client", "utf8mb4")]);
        let want = state(&[("time_zone", "+01:00"), ("character_set_client", "latin1")]);
        assert_eq!(
            set_statement(&have, &want).unwrap(),
            "SET SESSION character_set_client = 'latin1', time_zone = '+01:00', sql_mode = DEFAULT, wait_timeout = DEFAULT"
        );
    }

    #[test]
    fn literals_quote_strings_and_keep_numbers() {
        assert_eq!(literal("100"), "100");
        assert_eq!(literal("-1.5"), "-1.5");
        assert_eq!(literal("1.2.3"), "'1.2.3'");
        assert_eq!(literal("it's\\"), "'it''s\\\\'");
        assert_eq!(literal(""), "''");
        assert_eq!(literal("STRICT_TRANS_TABLES,NO_ZERO_DATE"), "'STRICT_TRANS_TABLES,NO_ZERO_DATE'");
    }
}
