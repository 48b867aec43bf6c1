//! Prepared statements (COM_STMT_*). A session with an open prepared statement is pinned to
//! the connection it was prepared on, so statement ids pass through unchanged.

use super::super::error::SessionError;
use super::super::pin::PinReason;
use super::super::Session;
use crate::protocol::err::ErrPacket;
use crate::protocol::response::Expect;
use crate::router::analyze;
use bytes::Bytes;

/// COM_STMT_PREPARE: prepare on the session's connection and pin it.
pub(in crate::session) async fn stmt_prepare(s: &mut Session, payload: Bytes) -> Result<(), SessionError> {
    let sql = String::from_utf8_lossy(&payload[1..]).into_owned();
    let analysis = analyze(&sql);
    // Pin before running, so the connection stays whatever the response says.
    let was_open = s.state.open_statements;
    s.state.pins.set(PinReason::PreparedStatement, true);
    let done = s.execute(payload, Expect::Prepare, Some(&analysis)).await?;
    if let Some(ok) = done.as_ref().and_then(|r| r.prepared) {
        let _ = ok.statement_id;
        s.state.open_statements = was_open + 1;
    }
    s.state.pins.set(PinReason::PreparedStatement, s.state.open_statements > 0);
    s.release();
    Ok(())
}

/// COM_STMT_EXECUTE / FETCH / RESET (with a response) and SEND_LONG_DATA (without): these only
/// make sense on the connection the statement was prepared on.
pub(in crate::session) async fn stmt_on_pinned(
    s: &mut Session,
    payload: Bytes,
    expect: Option<Expect>,
) -> Result<(), SessionError> {
    if s.state.open_statements == 0 || s.lease.is_none() {
        if expect.is_some() {
            let id = statement_id(&payload);
            s.client.put_err(1, &ErrPacket::unknown_statement(id, command_name(payload[0])));
        }
        return Ok(());
    }
    match expect {
        Some(e) => {
            s.execute(payload, e, None).await?;
        }
        None => {
            if let Some(conn) = s.lease.as_mut() {
                if conn.send_command(&payload).await.is_err() {
                    conn.mark_broken();
                }
            }
        }
    }
    Ok(())
}

/// COM_STMT_CLOSE: forwarded (no response); the last close unpins.
pub(in crate::session) async fn stmt_close(s: &mut Session, payload: Bytes) -> Result<(), SessionError> {
    if let Some(conn) = s.lease.as_mut() {
        if conn.send_command(&payload).await.is_err() {
            conn.mark_broken();
        }
        s.state.open_statements = s.state.open_statements.saturating_sub(1);
        s.state.pins.set(PinReason::PreparedStatement, s.state.open_statements > 0);
        s.release();
    }
    Ok(())
}

fn statement_id(payload: &[u8]) -> u32 {
    payload.get(1..5).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0)
}

fn command_name(cmd: u8) -> &'static str {
    match cmd {
        crate::protocol::com::STMT_EXECUTE => "mysqld_stmt_execute",
        crate::protocol::com::STMT_FETCH => "mysqld_stmt_fetch",
        _ => "mysqld_stmt_reset",
    }
}
