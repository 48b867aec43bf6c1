//! Prepared statements (COM_STMT_*), multiplexed: a client's statement belongs to the session,
//! not to a backend connection. The client gets Sluice's own statement ids; each backend
//! connection prepares a statement the first time one of its sessions executes it there (and
//! keeps a data statement for the next session, see `backend::stmts`; any other is closed
//! there once it ran). The session is pinned only while a
//! cursor is open or long data is being sent, which live on one backend statement.

use super::super::error::{refusal_to_client, SessionError};
use super::super::pin::PinReason;
use super::super::Session;
use crate::backend::stmts::kept_for_reuse;
use crate::backend::BackendError;
use crate::protocol::err::ErrPacket;
use crate::protocol::ok::OkPacket;
use crate::protocol::response::{Expect, ResponseScanner};
use crate::protocol::stmt::{
    execute_is_readable, learn_types, param_value, rewrite_execute, with_statement_id, ParamValue, CURSOR_FLAGS,
};
use crate::router::analysis::SessionValue;
use crate::router::decide::Rules;
use crate::router::decide::TargetShard;
use crate::router::kill::Kill;
use crate::router::prepared::{self, Prepare, StmtShard};
use crate::router::Analysis;
use crate::sharding::KeyValue;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;

/// A statement the client prepared.
#[derive(Debug)]
struct ClientStmt {
    /// The statement's bytes as the client sent them (never re-encoded: a latin1 'ä' stays one
    /// byte when it is prepared again on another connection).
    sql: Bytes,
    /// What the statement's text analysis found (without its first word), kept so executes
    /// do not lex it again.
    analysis: Analysis<'static>,
    params: u16,
    /// Sharded statements: where executes go.
    shard: Option<StmtShard>,
    /// Parameter types last sent by the client (2 bytes each).
    types: Option<Vec<u8>>,
    /// Answered by Sluice at each execute (`SELECT FOUND_ROWS()` and the like).
    local: Option<Vec<(SessionValue, String)>>,
    /// A KILL, carried out by Sluice at each execute (never prepared on a backend).
    kill: Option<Kill>,
    /// Stays prepared on the backend connections it ran on for later sessions
    /// ([`kept_for_reuse`]); otherwise closed there once it ran.
    reuse: bool,
}

/// The session's prepared statements.
#[derive(Debug, Default)]
pub(in crate::session) struct Statements {
    by_id: HashMap<u32, ClientStmt>,
    next_id: u32,
}

impl Statements {
    /// Forgets every statement (COM_RESET_CONNECTION, COM_CHANGE_USER).
    pub(in crate::session) fn clear(&mut self) {
        self.by_id.clear();
    }
}

/// COM_STMT_PREPARE: prepared on the connection the session gets now, so the client receives
/// the real PREPARE_OK and definitions, with Sluice's statement id.
pub(in crate::session) async fn stmt_prepare(s: &mut Session, payload: Bytes) -> Result<(), SessionError> {
    let max = s.snap.config.proxy.max_prepared_statements;
    if s.stmts.by_id.len() >= max {
        s.client.put_err(s.seq, &ErrPacket::too_many_statements(max));
        return Ok(());
    }
    let sql: Arc<str> = String::from_utf8_lossy(&payload[1..]).into();
    let decided = {
        let snap = &s.snap;
        prepared::prepare(&sql, s.ctl.id, &Rules::of(&snap.topology, snap.version))
    };
    let Prepare { analysis, preparing, rewrite, shard, prepare_on: target, local, kill } = match decided {
        Ok(p) => p,
        Err(refusal) => {
            s.client.put_err(s.seq, &refusal_to_client(&refusal));
            return Ok(());
        }
    };
    if let Some(k) = kill {
        prepare_kill(s, payload, Analysis { first: "", sql: "", ..analysis }, k);
        return Ok(());
    }
    let payload = match rewrite {
        Some(text) => Bytes::from([&[crate::protocol::com::STMT_PREPARE][..], text.as_bytes()].concat()),
        None => payload,
    };
    s.stmts.next_id = s.stmts.next_id.wrapping_add(1).max(1);
    let id = s.stmts.next_id;
    s.prepare_as = Some(id);
    // Hold the connection until the backend statement is recorded on it.
    let was = s.state.pins().has(PinReason::PreparedStatement);
    s.state.pin(PinReason::PreparedStatement, true);
    let queued = s.client.pending();
    let mut done = s.execute(payload.clone(), Expect::Prepare, Some(&preparing), target).await;
    let full = |d: &Result<Option<crate::protocol::response::ResponseScanner>, SessionError>| matches!(d, Ok(Some(r)) if r.error.as_ref().is_some_and(|e| e.code == 1461));
    if full(&done) && s.lease.as_ref().is_some_and(|c| !c.stmts.is_empty()) {
        // The server's max_prepared_stmt_count is reached, partly by statements Sluice keeps
        // prepared on this connection for reuse: close those and try once more, so the
        // client never sees the limit Sluice's cache caused.
        s.client.truncate(queued);
        let evicted = match s.lease.as_mut() {
            Some(conn) => conn.evict_statements().await,
            None => Ok(()),
        };
        if evicted.is_ok() {
            s.prepare_as = Some(id);
            done = s.execute(payload.clone(), Expect::Prepare, Some(&preparing), target).await;
        } else if let Some(conn) = s.lease.as_mut() {
            conn.mark_broken();
        }
    }
    let done = done?;
    s.state.pin(PinReason::PreparedStatement, was);
    if done.as_ref().is_some_and(|r| r.warnings > 0) && !s.state.pins().any() {
        // The prepare raised warnings, and the connection goes back to the pool below: keep
        // what SHOW WARNINGS would show (the relay did not, the session being held for the
        // prepare then).
        if let Some(conn) = s.lease.as_mut() {
            s.warnings = conn.query("SHOW WARNINGS").await.ok().map(super::Warnings::from_server);
        }
    }
    let reuse = kept_for_reuse(analysis.first);
    if let (Some(ok), Some(conn)) = (done.as_ref().and_then(|r| r.prepared), s.lease.as_mut()) {
        let key = conn.stmt_key(&payload[1..]);
        let kept = match reuse {
            true => conn.remember_statement(key, ok.statement_id).await,
            // Prepared again where it runs.
            false => {
                conn.send_command(&[&[crate::protocol::com::STMT_CLOSE][..], &ok.statement_id.to_le_bytes()].concat())
                    .await
            }
        };
        if kept.is_err() {
            conn.mark_broken();
        }
        s.stmts.by_id.insert(
            id,
            ClientStmt {
                analysis: Analysis { first: "", sql: "", ..analysis },
                shard,
                sql: payload.slice(1..),
                params: ok.params,
                types: None,
                local,
                kill: None,
                reuse,
            },
        );
    }
    s.release();
    Ok(())
}

/// COM_STMT_PREPARE of a KILL: Sluice's own PREPARE_OK (no columns, no parameters), so no
/// backend ever holds a KILL whose id would name one of its threads.
fn prepare_kill(s: &mut Session, payload: Bytes, analysis: Analysis<'static>, k: Kill) {
    s.stmts.next_id = s.stmts.next_id.wrapping_add(1).max(1);
    let id = s.stmts.next_id;
    let mut ok = vec![0u8];
    ok.extend_from_slice(&id.to_le_bytes());
    // Columns 0, parameters 0, the filler byte, warnings 0.
    ok.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0]);
    s.client.put(s.seq, &ok);
    let stmt = ClientStmt {
        sql: payload.slice(1..),
        analysis,
        params: 0,
        shard: None,
        types: None,
        local: None,
        kill: Some(k),
        reuse: false,
    };
    s.stmts.by_id.insert(id, stmt);
}

/// Takes a connection for statement `id` and makes sure the statement is prepared on it.
/// Returns the backend id, or `None` after answering the client with an error.
/// A statement that opens a cursor stays on the primary: the session is held until the cursor
/// closes, and its other statements (writes among them) run there meanwhile.
async fn on_backend(
    s: &mut Session,
    id: u32,
    what: &str,
    cursor: bool,
    target: Option<TargetShard>,
) -> Result<Option<u32>, SessionError> {
    let Some((sql, analysis, reuse)) = s.stmts.by_id.get(&id).map(|st| (st.sql.clone(), st.analysis, st.reuse)) else {
        s.client.put_err(s.seq, &ErrPacket::unknown_statement(id, what));
        return Ok(None);
    };
    let route = match s.plan(Some(&analysis).filter(|_| !cursor), target, None) {
        Ok(r) => r,
        Err(e) => {
            s.client.put_err(s.seq, &e);
            return Ok(None);
        }
    };
    if let Err(e) = s.ensure_lease(route).await {
        s.client.put_err(s.seq, &e);
        return Ok(None);
    }
    let conn = s.lease.as_mut().expect("ensure_lease sets the lease");
    match conn.prepared(&sql, reuse).await {
        Ok(bid) => Ok(Some(bid)),
        Err(BackendError::Server(e)) => {
            s.client.put_err(s.seq, &e);
            s.release();
            Ok(None)
        }
        Err(e) => {
            conn.mark_broken();
            let msg = format!("could not prepare the statement on the backend: {e}");
            let shard = s.snap.topology.shard_name(route.shard).to_string();
            s.client.put_err(s.seq, &ErrPacket::backend_unavailable(route.role.as_str(), &shard, &msg));
            s.lease = None;
            Ok(None)
        }
    }
}

/// COM_STMT_EXECUTE: on whatever connection the session gets, with the statement id and the
/// parameter types rewritten for it.
pub(in crate::session) async fn stmt_execute(
    s: &mut Session,
    id: u32,
    flags: u8,
    payload: Bytes,
) -> Result<(), SessionError> {
    let started = std::time::Instant::now();
    s.note.begin(crate::stats::Destination::Primary);
    if let Some(sql) = s.stmts.by_id.get(&id).map(|st| st.sql.clone()) {
        s.statement_began(&sql, started);
    }
    let r = execute_statement(s, id, flags, payload).await;
    if let Some((sql, a)) = s.stmts.by_id.get(&id).map(|st| (st.sql.clone(), st.analysis)) {
        let text = String::from_utf8_lossy(&sql);
        super::cached::after_statement(s, &text, a.kind, a.features.has(crate::router::Feature::Routine));
        s.observe(&text, Some(a.fingerprint), started);
    }
    r
}

/// COM_STMT_EXECUTE, on the shard its parameters pick.
async fn execute_statement(s: &mut Session, id: u32, flags: u8, payload: Bytes) -> Result<(), SessionError> {
    let cursor = flags & CURSOR_FLAGS != 0;
    if let Some(values) = s.stmts.by_id.get(&id).and_then(|st| st.local.clone()) {
        // Without a cursor, as a server may answer a cursor request: the rows follow at once
        // and the status has no CURSOR_EXISTS.
        s.note.begin(crate::stats::Destination::Sluice);
        s.warnings = None;
        super::values::answer(s, &values, true);
        return Ok(());
    }
    if let Some(k) = s.stmts.by_id.get(&id).and_then(|st| st.kill) {
        s.note.begin(crate::stats::Destination::Sluice);
        s.warnings = None;
        return super::kill::kill_statement(s, k).await;
    }
    let mut target = None;
    if let Some(st) = s.stmts.by_id.get(&id) {
        if let Some(shard) = st.shard {
            // The key is read where the client sent it (with the types this statement was
            // last bound with if it omits them); the rewrite for the backend comes later.
            let (params, types) = (st.params, st.types.as_deref());
            let chosen = if execute_is_readable(&payload, params, types) {
                let key = |n| match param_value(&payload, params, types, n) {
                    Some(ParamValue::Int(v)) => Some(KeyValue::Int(v)),
                    Some(ParamValue::Bytes(b)) => Some(KeyValue::Bytes(b)),
                    _ => None,
                };
                let snap = &s.snap;
                let rules = Rules::of(&snap.topology, snap.version);
                prepared::execute_shard(shard, st.analysis.kind, &String::from_utf8_lossy(&st.sql), key, &rules)
                    .map_err(|r| refusal_to_client(&r))
            } else {
                Err(ErrPacket::unsupported("a malformed COM_STMT_EXECUTE"))
            };
            let entered = match chosen {
                Ok(t) => s.enter_shard(t.index).await.map(|()| t),
                Err(e) => Err(e),
            };
            match entered {
                Ok(t) => target = Some(t),
                Err(e) => {
                    s.answer_error(&e);
                    return Ok(());
                }
            }
        }
    }
    let caching = s.snap.cache_rules.is_some();
    if let Some(st) = s.stmts.by_id.get_mut(&id).filter(|st| caching && st.params > 0) {
        // An execute answered from the cache never reaches `rewrite_execute`: the types it
        // binds must still be remembered for the executes that omit them (without a cache,
        // `rewrite_execute` alone learns them).
        let _ = learn_types(&payload, st.params, &mut st.types);
    }
    let cacheable = match s.stmts.by_id.get(&id) {
        Some(st) if !cursor && payload.len() >= 10 => {
            // The types are in the block when the execute binds them anew; otherwise the ones
            // remembered apply, and they are part of what the values mean.
            let bound_anew = payload.get(10 + usize::from(st.params).div_ceil(8)) == Some(&1);
            let types = if st.params == 0 || bound_anew { None } else { st.types.as_deref() };
            super::cached::cacheable_execute(s, &st.sql, &st.analysis, st.shard.is_some(), &payload[5..], types)
        }
        _ => None,
    };
    let Some(c) = cacheable else { return execute_on_target(s, payload, id, cursor, target).await.map(|_| ()) };
    let analysis = s.stmts.by_id.get(&id).map(|st| st.analysis).unwrap_or_default();
    match super::cached::begin(s, c, &analysis).await {
        super::cached::Step::Served => Ok(()),
        super::cached::Step::Run(run) => {
            let done = execute_on_target(s, payload, id, cursor, target).await;
            super::cached::end(s, run, &done);
            done.map(|_| ())
        }
    }
}

/// Runs the execute on the backend the session gets; the scanner of a completed response,
/// `None` when the client was answered with an error.
async fn execute_on_target(
    s: &mut Session,
    payload: Bytes,
    id: u32,
    cursor: bool,
    target: Option<TargetShard>,
) -> Result<Option<ResponseScanner>, SessionError> {
    let Some(bid) = on_backend(s, id, "mysqld_stmt_execute", cursor, target).await? else { return Ok(None) };
    let st = s.stmts.by_id.get_mut(&id).expect("on_backend found it");
    let rewritten = match rewrite_execute(&payload, st.params, bid, &mut st.types) {
        Ok(p) => p,
        Err(e) => {
            // As a server does: the command is refused, the session goes on.
            tracing::debug!(error = %e, "malformed COM_STMT_EXECUTE");
            s.release();
            s.answer_error(&ErrPacket::wrong_arguments("mysqld_stmt_execute"));
            return Ok(None);
        }
    };
    // A placeholder offset: FOUND_ROWS() follows from the value this execute binds.
    let (params, types) = (st.params, st.types.as_deref());
    let found = st.analysis.found.bound(|n| match param_value(&payload, params, types, n) {
        Some(ParamValue::Int(v)) => Some(v),
        _ => None,
    });
    // The `@@name` assignments are read back after it ran: they are named in its text.
    let text = st
        .analysis
        .features
        .has(crate::router::Feature::SysVarAssign)
        .then(|| String::from_utf8_lossy(&st.sql).into_owned());
    let analysis = Analysis { found, sql: text.as_deref().unwrap_or(""), ..st.analysis };
    if cursor {
        // Rows stay on this backend statement until fetched: stay on this connection.
        s.state.pin(PinReason::PreparedStatement, true);
    }
    let expect = if cursor { Expect::CursorResults } else { Expect::Results };
    let done = s.execute(Bytes::from(rewritten), expect, Some(&analysis), target).await?;
    let cursor_open = cursor
        && done.as_ref().and_then(|r| r.status).is_some_and(|st| st & crate::protocol::status::CURSOR_EXISTS != 0);
    if !cursor_open && s.state.pins().has(PinReason::PreparedStatement) {
        // Long data was consumed by this execute, and no cursor stays open.
        s.state.pin(PinReason::PreparedStatement, false);
        s.release();
    }
    Ok(done)
}

/// COM_STMT_FETCH: only where the cursor is.
pub(in crate::session) async fn stmt_fetch(s: &mut Session, id: u32, payload: Bytes) -> Result<(), SessionError> {
    if !s.stmts.by_id.contains_key(&id) {
        s.client.put_err(s.seq, &ErrPacket::unknown_statement(id, "mysqld_stmt_fetch"));
        return Ok(());
    }
    let bid = match (s.stmts.by_id.get(&id), s.lease.as_ref()) {
        (Some(st), Some(conn)) if s.state.pins().has(PinReason::PreparedStatement) => conn.prepared_id(&st.sql),
        _ => None,
    };
    let Some(bid) = bid else {
        s.client.put_err(s.seq, &ErrPacket::new(1421, "HY000", "The statement has no open cursor"));
        return Ok(());
    };
    s.execute(Bytes::from(with_statement_id(&payload, bid)), Expect::Fetch, None, None).await?;
    Ok(())
}

/// COM_STMT_SEND_LONG_DATA: accumulates on one backend statement, so the session is pinned
/// until the execute that consumes it.
pub(in crate::session) async fn stmt_long_data(s: &mut Session, id: u32, payload: Bytes) -> Result<(), SessionError> {
    // No response is allowed for this command, whatever goes wrong: a statement Sluice does
    // not know is ignored (the execute that follows fails with "unknown statement"), and
    // nothing is pinned for it.
    if !s.stmts.by_id.contains_key(&id) {
        return Ok(());
    }
    s.state.pin(PinReason::PreparedStatement, true);
    let queued = s.client.pending();
    let Some(bid) = on_backend(s, id, "mysqld_stmt_send_long_data", false, None).await? else {
        // The backend refused to prepare it: nothing may reach the client for this command.
        s.client.truncate(queued);
        s.state.pin(PinReason::PreparedStatement, false);
        return Ok(());
    };
    if let Some(conn) = s.lease.as_mut() {
        if conn.send_command(&with_statement_id(&payload, bid)).await.is_err() {
            conn.mark_broken();
        }
    }
    Ok(())
}

/// COM_STMT_RESET: clears long data and closes a cursor, on the pinned connection; otherwise
/// there is nothing on any backend to reset.
pub(in crate::session) async fn stmt_reset(s: &mut Session, id: u32, payload: Bytes) -> Result<(), SessionError> {
    let Some(sql) = s.stmts.by_id.get(&id).map(|st| st.sql.clone()) else {
        s.client.put_err(s.seq, &ErrPacket::unknown_statement(id, "mysqld_stmt_reset"));
        return Ok(());
    };
    let bid =
        s.lease.as_ref().filter(|_| s.state.pins().has(PinReason::PreparedStatement)).and_then(|c| c.prepared_id(&sql));
    match bid {
        Some(bid) => {
            s.execute(Bytes::from(with_statement_id(&payload, bid)), Expect::Simple, None, None).await?;
            s.state.pin(PinReason::PreparedStatement, false);
            s.release();
        }
        None => {
            let ok = OkPacket::with_status(s.state.status());
            s.client.put_ok(s.seq, &ok);
        }
    }
    Ok(())
}

/// COM_STMT_CLOSE: no response. A data statement stays prepared on its connection for the
/// next session that runs the same SQL, with an open cursor or pending long data on it reset
/// first; any other statement still prepared there (held by a cursor or long data) is
/// closed. The pin ends.
pub(in crate::session) async fn stmt_close(s: &mut Session, id: u32) {
    let Some(st) = s.stmts.by_id.remove(&id) else { return };
    if !s.state.pins().has(PinReason::PreparedStatement) {
        return;
    }
    if let Some(conn) = s.lease.as_mut().filter(|_| !st.reuse) {
        if conn.forget_statement(&st.sql).await.is_err() {
            conn.mark_broken();
        }
    } else if let Some(conn) = s.lease.as_mut() {
        if let Some(bid) = conn.prepared_id(&st.sql) {
            let mut p = vec![crate::protocol::com::STMT_RESET];
            p.extend_from_slice(&bid.to_le_bytes());
            if conn.command(&p, Expect::Simple).await.is_err() {
                conn.mark_broken();
            }
        }
    }
    s.state.pin(PinReason::PreparedStatement, false);
    s.release();
}
