//! `KILL [QUERY | CONNECTION] id` and COM_PROCESS_KILL, answered by Sluice: the id is a
//! Sluice connection id (the handshake's, and what `CONNECTION_ID()` returns through Sluice),
//! mapped to the session it names and the backend thread running that session's statement at
//! this moment (see `crate::sessions`).
//!
//! Only the same Sluice user may kill a session (ERROR 1095 otherwise); an unknown id gets
//! ERROR 1094. KILL QUERY of a session between statements does nothing, as on a server whose
//! connection is idle. KILL CONNECTION interrupts the running statement and ends the session.

use super::super::error::SessionError;
use super::super::Session;
use crate::protocol::err::ErrPacket;
use crate::protocol::ok::OkPacket;
use crate::router::kill::{Kill, Target};
use crate::sessions::{Killed, Scope};

/// Carries out a recognised KILL statement.
pub(in crate::session) async fn kill_statement(s: &mut Session, k: Kill) -> Result<(), SessionError> {
    match k {
        Kill::Unsupported(what) => {
            s.client.put_err(s.seq, &ErrPacket::unsupported(what));
            Ok(())
        }
        Kill::Session { connection, target } => {
            let id = match target {
                Target::Id(id) => id,
                Target::Own => u64::from(s.ctl.id),
            };
            kill(s, id, connection).await
        }
    }
}

/// COM_PROCESS_KILL of connection `id`: always KILL CONNECTION.
pub(in crate::session) async fn process_kill(s: &mut Session, id: u32) -> Result<(), SessionError> {
    kill(s, u64::from(id), true).await
}

async fn kill(s: &mut Session, id: u64, connection: bool) -> Result<(), SessionError> {
    let target = u32::try_from(id).ok().and_then(|id| s.shared.sessions.get(id));
    let Some(target) = target else {
        s.client.put_err(s.seq, &ErrPacket::unknown_thread(id));
        return Ok(());
    };
    if !target.is_user(s.login.user.name.get_ref()) {
        s.client.put_err(s.seq, &ErrPacket::not_owner(id));
        return Ok(());
    }
    let status = s.state.status();
    if target.id == s.ctl.id {
        // The session's own statement is this KILL: nothing else runs. KILL CONNECTION of
        // oneself ends the session, as a server does.
        if connection {
            s.client.put_err(s.seq, &ErrPacket::connection_killed());
            s.ctl.end_session();
        } else {
            s.client.put_ok(s.seq, &OkPacket::with_status(status));
        }
        return Ok(());
    }
    let timeout = s.snap.config.pool.connect_timeout_ms;
    let scope = if connection { Scope::Connection } else { Scope::Query };
    let killed = target.kill(timeout, scope).await;
    if connection {
        target.end_session();
    }
    match killed {
        Ok(k) => {
            tracing::info!(target = id, connection, statement = (k == Killed::Statement), "KILL");
            s.client.put_ok(s.seq, &OkPacket::with_status(status));
        }
        Err(e) => {
            let msg = format!("could not reach the backend running session {id}'s statement: {e}");
            s.client.put_err(s.seq, &ErrPacket::new(1105, "HY000", msg));
        }
    }
    Ok(())
}
