//! Commands about the connection itself: COM_PING, COM_SET_OPTION, COM_RESET_CONNECTION,
//! COM_CHANGE_USER. Most are answered by Sluice: they concern the client's session, which
//! Sluice owns, not any one backend connection.

use super::super::connect::login_ok;
use super::super::error::SessionError;
use super::super::Session;
use crate::backend::ConnState;
use crate::protocol::auth;
use crate::protocol::charset;
use crate::protocol::err::ErrPacket;
use crate::protocol::handshake::encode_auth_switch;
use crate::protocol::ok::{EofPacket, OkPacket};
use crate::protocol::response::Expect;
use crate::protocol::wire::Reader;
use crate::protocol::{caps, status};
use bytes::Bytes;

/// COM_PING: the client's connection to Sluice is alive; answered locally.
pub(in crate::session) fn ping(s: &mut Session) {
    let ok = OkPacket::with_status(s.state.status() & (status::IN_TRANS | status::AUTOCOMMIT));
    s.client.put_ok(s.seq, &ok);
}

/// COM_SET_OPTION: multi-statements on (0) or off (1). Becomes part of the state replayed on
/// every connection the session uses.
pub(in crate::session) async fn set_option(s: &mut Session, option: u16, payload: Bytes) -> Result<(), SessionError> {
    let on = match option {
        0 => true,
        1 => false,
        _ => {
            s.client.put_err(s.seq, &ErrPacket::new(1047, "08S01", "Unknown option to COM_SET_OPTION"));
            return Ok(());
        }
    };
    s.state.want.multi_statements = on;
    if s.lease.is_some() {
        s.execute(payload, Expect::Simple, None, None).await?;
        return Ok(());
    }
    let st = s.state.status();
    let eof = EofPacket { warnings: 0, status: st };
    if s.client.deprecate_eof() {
        s.client.put_ok(s.seq, &eof.to_ok());
    } else {
        s.client.put(s.seq, &eof.encode());
    }
    Ok(())
}

/// COM_RESET_CONNECTION: the session returns to its login state. A pinned connection holds
/// the state being discarded, so it is closed rather than reused.
pub(in crate::session) async fn reset_connection(s: &mut Session) {
    s.close().await;
    s.stmts.clear();
    s.state.reset();
    s.client.put_ok(s.seq, &login_ok());
}

/// COM_CHANGE_USER: authenticate again (always via an auth switch with a fresh scramble, which
/// every driver supports), then start a fresh session state for the new user.
pub(in crate::session) async fn change_user(s: &mut Session, payload: Bytes) -> Result<(), SessionError> {
    if s.login.failed_change_users >= 3 {
        s.client.put_err(s.seq, &ErrPacket::change_user_refused());
        return Ok(());
    }
    let mut r = Reader::new(&payload[1..]);
    let user = String::from_utf8_lossy(r.nul_bytes()).into_owned();
    if s.client.has(caps::SECURE_CONNECTION) {
        let n = r.u8("auth length")? as usize;
        r.take(n, "auth data")?;
    } else {
        r.nul_bytes();
    }
    let db = String::from_utf8_lossy(r.nul_bytes()).into_owned();
    let collation = if r.remaining() >= 2 { r.u16("charset")? as u8 } else { s.login.collation };
    let snap = s.snap.clone();
    let plugin = snap.config.proxy.auth_plugin.get_ref().clone();
    let scramble = auth::new_scramble();
    s.client.put(s.seq, &encode_auth_switch(&plugin, &scramble));
    s.client.flush().await?;
    let p = s.client.read_packet().await?.ok_or(SessionError::ClientGone)?;
    let seq = p.seq.wrapping_add(1);
    let host = s.client.peer.ip().to_string();
    let Some(cfg) = snap.config.user(&user).cloned() else {
        s.shared.metrics.auth_failures.inc();
        s.login.failed_change_users = s.login.failed_change_users.saturating_add(1);
        // As on a server, the session carries on as the user it was.
        s.client.put_err(seq, &ErrPacket::access_denied(&user, &host, !p.payload.is_empty()));
        return Ok(());
    };
    let Some(learned_sha1) = cfg.check_token(&plugin, &p.payload, &scramble) else {
        s.shared.metrics.auth_failures.inc();
        s.login.failed_change_users = s.login.failed_change_users.saturating_add(1);
        // As on a server, the session carries on as the user it was.
        s.client.put_err(seq, &ErrPacket::access_denied(&user, &host, !p.payload.is_empty()));
        return Ok(());
    };
    if cfg.require_tls && !s.client.is_tls() {
        s.shared.metrics.auth_failures.inc();
        s.client.put_err(seq, &ErrPacket::tls_required(&user, &host));
        return Ok(());
    }
    // The new user's slot is taken before the old one is given back: over its limit, the
    // session carries on as the user it was.
    let Some(slot) = s.shared.sessions.admit(cfg.name.get_ref(), cfg.max_connections) else {
        s.client.put_err(seq, &ErrPacket::user_connections(&user));
        return Ok(());
    };
    s.user_slot = Some(slot);
    s.close().await;
    s.stmts.clear();
    s.pools = Default::default();
    {
        let backend_user = cfg.backend_user.as_deref().unwrap_or(cfg.name.get_ref());
        let backend_password = cfg.backend_credential(learned_sha1.as_ref());
        s.ctl.logged_in(cfg.name.get_ref(), cfg.fingerprint(), backend_user, &backend_password);
    }
    s.login.learned_sha1 = learned_sha1;
    // (`failed_change_users` is kept across a successful change, as on a server.)
    s.login.user = cfg;
    s.login.collation = collation;
    s.login.database = Some(db).filter(|d| !d.is_empty());
    let initial = ConnState {
        schema: s.login.database.clone(),
        vars: charset::by_id(collation).vars(),
        multi_statements: s.client.has(caps::MULTI_STATEMENTS),
        last_insert_id: 0,
    };
    s.state = super::super::state::SessionState::new(initial);
    if s.login.database.is_some() {
        if let Err(e) = s.lease_for(crate::router::Route::default()).await {
            s.client.put_err(seq, &e);
            return Ok(());
        }
        s.release();
    }
    s.client.put_ok(seq, &login_ok());
    Ok(())
}
