//! The server side of the connection phase: greet, authenticate against the configured users,
//! switch plugins when the client chose another one, and run caching_sha2's fast or full
//! (RSA) path. Produces the client's identity or answers ERROR 1045.

use super::client::ClientConn;
use super::error::SessionError;
use crate::config::UserConfig;
use crate::protocol::auth::{self, tokens_equal};
use crate::protocol::err::ErrPacket;
use crate::protocol::handshake::{encode_auth_switch, Greeting, HandshakeResponse};
use crate::protocol::ok::OkPacket;
use crate::protocol::{caps, status, ProtocolError};
use crate::shared::Shared;

/// Who logged in, and how.
#[derive(Debug, Clone)]
pub struct Login {
    pub user: UserConfig,
    pub database: Option<String>,
    pub collation: u8,
    /// `SHA1(password)`, learned from a `password_hash` user's native login: its backend
    /// credential when no `backend_password` is given.
    pub learned_sha1: Option<[u8; 20]>,
    /// COM_CHANGE_USER attempts on this connection that failed: from the third on, the
    /// command is refused outright, as a server refuses it (MDEV-3915: no password guessing
    /// at full speed over one connection). A success does not reset the count.
    pub failed_change_users: u8,
}

impl Login {
    /// The password Sluice logs in to backends with for this session.
    pub fn backend_password(&self) -> String {
        self.user.backend_credential(self.learned_sha1.as_ref())
    }
}

/// Greets the client and authenticates it. On success the OK is queued but not flushed, so the
/// caller can validate the requested database first.
pub async fn handshake(client: &mut ClientConn, shared: &Shared, conn_id: u32) -> Result<(Login, u8), SessionError> {
    let result = authenticate(client, shared, conn_id).await;
    if result.is_ok() {
        shared.logins.succeeded(client.peer.ip());
    }
    result
}

/// Refuses a login: the failure is counted against the address *before* the error reaches
/// the client, so a client that retries at once already meets the delay it earned.
async fn refuse(client: &mut ClientConn, shared: &Shared, seq: u8, err: &ErrPacket) -> SessionError {
    shared.metrics.auth_failures.inc();
    shared.logins.failed(client.peer.ip(), std::time::Instant::now(), &shared.load().config.proxy.login_policy());
    client.put_err(seq, err);
    match client.flush().await {
        Ok(()) => SessionError::AuthFailed,
        Err(e) => e.into(),
    }
}

async fn authenticate(client: &mut ClientConn, shared: &Shared, conn_id: u32) -> Result<(Login, u8), SessionError> {
    let snap = shared.load();
    let plugin = snap.config.proxy.auth_plugin.get_ref().clone();
    let scramble = auth::new_scramble();
    // CLIENT_SSL only when [tls] is configured, and never on the Unix socket (local).
    let offered = if snap.tls.is_some() && !client.is_unix() { caps::SERVER | caps::SSL } else { caps::SERVER };
    let greeting = Greeting {
        server_version: shared.server_version(),
        connection_id: conn_id,
        scramble: scramble.to_vec(),
        capabilities: offered,
        charset: crate::backend::conn::POOL_COLLATION_ID,
        status: status::AUTOCOMMIT,
        auth_plugin: plugin.clone(),
    };
    client.put(0, &greeting.encode());
    client.flush().await?;
    let mut p = client.read_packet().await?.ok_or(SessionError::ClientGone)?;
    let mut expected_seq = 1u8;
    if p.seq == expected_seq && is_ssl_request(&p.payload) {
        expected_seq = 2;
        // The SSL request: the TLS handshake follows, then the real response inside it.
        let Some(acceptor) = snap.tls.clone() else {
            return Err(SessionError::Protocol(ProtocolError::Malformed("client requires TLS, which is not offered")));
        };
        client.start_tls(&acceptor).await?;
        p = client.read_packet().await?.ok_or(SessionError::ClientGone)?;
        if let Some((version, suite)) = client.tls_summary() {
            tracing::debug!(%version, %suite, "client TLS established");
        }
    }
    if p.seq != expected_seq {
        // As the server answers a response out of sequence.
        client.put_err(p.seq.wrapping_add(1), &ErrPacket::new(1156, "08S01", "Got packets out of order"));
        client.flush().await?;
        return Err(SessionError::Protocol(ProtocolError::OutOfOrder { expected: expected_seq, got: p.seq }));
    }
    let resp = HandshakeResponse::parse(&p.payload)?;
    // An address with repeated failures waits before any answer, right or wrong.
    let wait = shared.logins.delay(client.peer.ip(), std::time::Instant::now(), &snap.config.proxy.login_policy());
    if !wait.is_zero() {
        shared.metrics.login_delays.inc();
        tracing::info!(peer = %client.peer, ?wait, "login delayed after repeated failures from this address");
        tokio::time::sleep(wait).await;
    }
    if resp.capabilities & caps::SSL != 0 && !client.is_tls() {
        // CLIENT_SSL on a full response: the client believes it is on TLS and is not.
        client.put_err(p.seq.wrapping_add(1), &ErrPacket::new(1043, "08S01", "Bad handshake"));
        client.flush().await?;
        return Err(SessionError::Protocol(ProtocolError::Malformed("CLIENT_SSL on a handshake response without TLS")));
    }
    client.caps = resp.capabilities & caps::SERVER;
    let mut seq = p.seq.wrapping_add(1);
    let host = client.peer.ip().to_string();
    let tls = snap.config.tls.as_ref();
    if tls.is_some_and(|t| t.require_secure_transport) && !client.is_tls() && !client.is_unix() {
        return Err(refuse(client, shared, seq, &ErrPacket::insecure_transport()).await);
    }
    let deny = |using: bool| ErrPacket::access_denied(&resp.user, &host, using);
    // An unknown user goes through the same steps as a known one with a wrong password (the
    // plugin switch included), so the answers do not tell which user names exist.
    let known = snap.config.user(&resp.user).cloned();
    let mut token = resp.auth_response.clone();
    let client_plugin = resp.auth_plugin.clone().unwrap_or_else(|| auth::NATIVE.to_string());
    if client_plugin != plugin {
        client.put(seq, &encode_auth_switch(&plugin, &scramble));
        client.flush().await?;
        let p = client.read_packet().await?.ok_or(SessionError::ClientGone)?;
        token = p.payload.to_vec();
        seq = p.seq.wrapping_add(1);
    }
    let (ok, learned_sha1) = if plugin == auth::CACHING_SHA2 {
        // As MySQL's server: without a cache entry the scramble cannot be checked, so every
        // login that misses the cache, an unknown user's included, is asked for full
        // authentication; the answers tell nothing about which user names exist.
        let (ok, learned, next) = caching_sha2(client, shared, known.as_ref(), &token, &scramble, seq).await?;
        seq = next;
        (ok, learned)
    } else {
        match known.as_ref().map(|u| u.check_token(&plugin, &token, &scramble)) {
            Some(Some(learned)) => (true, learned),
            _ => (false, None),
        }
    };
    let Some(user) = known else {
        tracing::info!(user = %resp.user, peer = %client.peer, "authentication failed (unknown user)");
        return Err(refuse(client, shared, seq, &deny(!token.is_empty())).await);
    };
    if ok && user.require_tls && !client.is_tls() && !client.is_unix() {
        tracing::info!(user = %resp.user, peer = %client.peer, "login without TLS refused (require_tls)");
        return Err(refuse(client, shared, seq, &ErrPacket::tls_required(&resp.user, &host)).await);
    }
    if !ok {
        tracing::info!(user = %resp.user, peer = %client.peer, "authentication failed");
        return Err(refuse(client, shared, seq, &deny(!token.is_empty())).await);
    }
    let login =
        Login { user, database: resp.database.clone(), collation: resp.charset, learned_sha1, failed_change_users: 0 };
    Ok((login, seq))
}

/// caching_sha2_password: the fast path when this user passed full authentication before
/// (the scramble checked against the cached `SHA256(SHA256(password))`), else full
/// authentication: over TLS the client sends its password in clear inside TLS, as to a server;
/// without TLS it fetches Sluice's RSA public key and sends the password encrypted with it.
/// The password is then checked against the configured `password`, or against `password_hash`
/// (which yields `SHA1(password)` for native backends); it is never kept, only the two hashes
/// the cache needs. Returns whether the login passed, the learned `SHA1(password)` for a
/// `password_hash` user, and the next sequence id.
async fn caching_sha2(
    client: &mut ClientConn,
    shared: &Shared,
    user: Option<&UserConfig>,
    token: &[u8],
    scramble: &[u8; 20],
    seq: u8,
) -> Result<(bool, Option<[u8; 20]>, u8), SessionError> {
    let hash = user.and_then(|u| u.password_hash.as_ref()).and_then(|h| auth::parse_native_hash(h.get_ref()));
    if let Some(u) = user.filter(|u| u.password.is_empty() && hash.is_none()) {
        // No password: the empty token, and nothing more.
        let ok = u.check_token(auth::CACHING_SHA2, token, scramble).is_some();
        return Ok((ok, None, seq));
    }
    if let Some(cached) = user.and_then(|u| shared.sha2_cached(u)) {
        if !auth::sha2_fast_matches(token, scramble, &cached.stage2) {
            return Ok((false, None, seq));
        }
        let seq = client.put(seq, &[0x01, 0x03]);
        return Ok((true, hash.map(|_| cached.sha1), seq));
    }
    let (clear, seq) = full_authentication(client, shared, scramble, seq).await?;
    let (Some(user), Some(clear)) = (user, clear) else { return Ok((false, None, seq)) };
    let learned = match hash {
        Some(h) => match auth::sha1_if_native_hash(&clear, &h) {
            Some(sha1) => Some(sha1),
            None => return Ok((false, None, seq)),
        },
        None if tokens_equal(&clear, user.password.as_bytes()) => None,
        None => return Ok((false, None, seq)),
    };
    shared.sha2_remember(user, &clear);
    Ok((true, learned, seq))
}

/// caching_sha2 full authentication: asks for the password and returns it (`None` when a
/// clear-text one came without TLS, or the encrypted one does not decrypt).
async fn full_authentication(
    client: &mut ClientConn,
    shared: &Shared,
    scramble: &[u8; 20],
    mut seq: u8,
) -> Result<(Option<Vec<u8>>, u8), SessionError> {
    client.put(seq, &[0x01, 0x04]);
    client.flush().await?;
    let p = client.read_packet().await?.ok_or(SessionError::ClientGone)?;
    seq = p.seq.wrapping_add(1);
    if p.payload[..] != [0x02] {
        // A clear-text password (NUL-terminated): accepted inside TLS only, as MySQL does.
        let clear = p.payload.strip_suffix(&[0]).unwrap_or(&p.payload).to_vec();
        return Ok((client.is_tls().then_some(clear), seq));
    }
    let key = shared.rsa_key().await;
    let mut pem = vec![0x01];
    pem.extend_from_slice(key.public_pem.as_bytes());
    client.put(seq, &pem);
    client.flush().await?;
    let p = client.read_packet().await?.ok_or(SessionError::ClientGone)?;
    seq = p.seq.wrapping_add(1);
    let clear = key.decrypt(&p.payload).map(|plain| auth::unxor_password(&plain, scramble));
    Ok((clear, seq))
}

/// The SSL request: the first 32 bytes of a handshake response (capabilities with
/// CLIENT_SSL, max packet, collation, filler) and nothing else.
fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == 32 && u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) & caps::SSL != 0
}

/// The OK that ends the connection phase.
pub fn login_ok() -> OkPacket {
    OkPacket::with_status(status::AUTOCOMMIT)
}
