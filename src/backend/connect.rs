//! Logging in to a backend: greeting, HandshakeResponse41, auth switch, and caching_sha2's fast
//! and full authentication (RSA public-key exchange, since backend links have no TLS yet).

use super::conn::{BackendConn, Login, POOL_COLLATION_ID, TRACKING};
use super::error::BackendError;
use crate::protocol::auth::{self, token_for};
use crate::protocol::codec::PacketReader;
use crate::protocol::err::ErrPacket;
use crate::protocol::handshake::{parse_auth_switch, Greeting, HandshakeResponse};
use crate::protocol::{caps, ProtocolError};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Where and as whom to connect.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectOptions {
    pub addr: String,
    pub user: String,
    pub password: String,
    /// CLIENT_FOUND_ROWS: changes what UPDATE reports as affected rows, so it is part of a
    /// pool's identity.
    pub found_rows: bool,
    pub connect_timeout_ms: u64,
    /// TLS toward this backend (`[[shards]] tls`).
    pub tls: crate::tls::BackendTls,
    /// `[pool] tcp_keepalive_s` (0 = off).
    pub keepalive_s: u64,
}

impl ConnectOptions {
    /// A control connection to `addr` with the `[monitor]` account (health checks, XA
    /// recovery, the fleet registry): the pool's timeouts and keepalive, the server's TLS.
    pub fn control(cfg: &crate::config::Config, addr: &str, tls: crate::tls::BackendTls) -> ConnectOptions {
        ConnectOptions {
            addr: addr.to_string(),
            user: cfg.monitor.user.clone(),
            password: cfg.monitor.password.clone(),
            found_rows: false,
            connect_timeout_ms: cfg.pool.connect_timeout_ms,
            tls,
            keepalive_s: cfg.pool.tcp_keepalive_s,
        }
    }
}

/// Turns on TCP keepalive: the first probe after `idle_s` idle seconds, then every 10 s, and
/// the connection fails after 3 unanswered probes. Best effort (an unsupported option is
/// logged, not fatal).
pub fn keepalive(stream: &TcpStream, idle_s: u64) {
    if idle_s == 0 {
        return;
    }
    let ka = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(idle_s))
        .with_interval(Duration::from_secs(10))
        .with_retries(3);
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&ka) {
        tracing::debug!(error = %e, "could not turn on TCP keepalive");
    }
}

/// Opens and authenticates a connection, then turns on session tracking so every later OK
/// packet reports the session variables and schema a statement changed.
pub async fn connect(o: &ConnectOptions) -> Result<BackendConn, BackendError> {
    let fut = async {
        let stream = TcpStream::connect(&o.addr).await.map_err(BackendError::Connect)?;
        stream.set_nodelay(true).map_err(BackendError::Connect)?;
        keepalive(&stream, o.keepalive_s);
        let mut conn = handshake(stream, o).await?;
        conn.query(TRACKING).await?;
        let cs = crate::protocol::charset::by_id(POOL_COLLATION_ID);
        conn.state.vars = cs.vars();
        Ok(conn)
    };
    match tokio::time::timeout(Duration::from_millis(o.connect_timeout_ms), fut).await {
        Ok(r) => r,
        Err(_) => Err(BackendError::ConnectTimeout(o.connect_timeout_ms)),
    }
}

async fn handshake(tcp: TcpStream, o: &ConnectOptions) -> Result<BackendConn, BackendError> {
    let mut tcp = tcp;
    let mut reader = PacketReader::new(1 << 20, 16 * 1024);
    let first = reader.read_packet(&mut tcp).await?.ok_or(eof())?;
    if first.payload.first() == Some(&0xFF) {
        return Err(BackendError::Auth(ErrPacket::parse(&first.payload)?));
    }
    let greeting = Greeting::parse(&first.payload)?;
    let mut plugin = greeting.auth_plugin.clone();
    if token_for(&plugin, b"", b"").is_none() {
        plugin = auth::NATIVE.to_string();
    }
    let scramble = greeting.scramble.clone();
    let mut capabilities = caps::BACKEND & greeting.capabilities;
    if o.found_rows {
        capabilities |= caps::FOUND_ROWS;
    }
    let mut seq = first.seq.wrapping_add(1);
    let mut stream = start_tls(tcp, o, greeting.capabilities, capabilities, &mut seq).await?;
    if stream.is_tls() {
        capabilities |= caps::SSL;
    }
    let response = HandshakeResponse {
        capabilities,
        max_packet: 1 << 30,
        charset: POOL_COLLATION_ID,
        user: o.user.clone(),
        auth_response: token_for(&plugin, o.password.as_bytes(), &scramble).unwrap_or_default(),
        database: None,
        auth_plugin: Some(plugin.clone()),
        attributes: Vec::new(),
    };
    send(&mut stream, seq, &response.encode()).await?;
    let (plugin, scramble) = authenticate(&mut stream, &mut reader, plugin, scramble, o).await?;
    // From here on frames are relayed, never joined, so no packet-size limit applies.
    reader.set_max_packet(usize::MAX);
    let mut conn = BackendConn::new(stream, reader, greeting.connection_id, greeting.server_version);
    conn.login = Login { plugin, scramble, capabilities };
    Ok(conn)
}

/// The server's answers to a login or COM_CHANGE_USER, until its OK: auth switches and
/// caching_sha2's fast or full authentication. Returns the plugin and scramble in force.
async fn authenticate(
    stream: &mut crate::tls::BackendStream,
    reader: &mut PacketReader,
    mut plugin: String,
    mut scramble: Vec<u8>,
    o: &ConnectOptions,
) -> Result<(String, Vec<u8>), BackendError> {
    loop {
        let p = reader.read_packet(stream).await?.ok_or(eof())?;
        let seq = p.seq.wrapping_add(1);
        match p.payload.first().copied() {
            Some(0x00) => return Ok((plugin, scramble)),
            Some(0xFF) => return Err(BackendError::Auth(ErrPacket::parse(&p.payload)?)),
            Some(0xFE) => {
                let (new_plugin, new_scramble) = parse_auth_switch(&p.payload)?;
                let token = token_for(&new_plugin, o.password.as_bytes(), &new_scramble)
                    .ok_or_else(|| BackendError::Unsupported(format!("auth plugin {new_plugin}")))?;
                plugin = new_plugin;
                scramble = new_scramble;
                send(stream, seq, &token).await?;
            }
            Some(0x01) if plugin == auth::CACHING_SHA2 => match p.payload.get(1).copied() {
                Some(3) => {} // fast authentication succeeded; the OK follows
                Some(4) if stream.is_tls() => {
                    // Full authentication inside TLS: the password in clear, as clients do.
                    let mut clear = o.password.as_bytes().to_vec();
                    clear.push(0);
                    send(stream, seq, &clear).await?;
                }
                Some(4) => {
                    // Full authentication without TLS: ask for the server's RSA public key.
                    send(stream, seq, &[2]).await?;
                    let key = reader.read_packet(stream).await?.ok_or(eof())?;
                    if key.payload.first() == Some(&0xFF) {
                        return Err(BackendError::Auth(ErrPacket::parse(&key.payload)?));
                    }
                    let pem = key.payload.get(1..).unwrap_or_default();
                    let secret = rsa_encrypt(pem, &auth::xor_password(o.password.as_bytes(), &scramble))?;
                    send(stream, key.seq.wrapping_add(1), &secret).await?;
                }
                _ => return Err(BackendError::Protocol(ProtocolError::Malformed("bad caching_sha2 state"))),
            },
            _ => return Err(BackendError::Protocol(ProtocolError::Malformed("unexpected packet during login"))),
        }
    }
}

/// Leaves the connection's schema unselected, which no statement can do: COM_CHANGE_USER as
/// the same account with no database. The session restarts as a new connection's would
/// (variables from the globals, no temporary tables, no prepared statements), so the
/// connection is then brought to the pool's state like a fresh one. Cheaper than a new
/// connection (no TCP or TLS handshake), and the idle connection is kept instead of closed.
pub async fn clear_schema(conn: &mut BackendConn, o: &ConnectOptions) -> Result<(), BackendError> {
    use bytes::BufMut;
    let login = std::mem::take(&mut conn.login);
    let token = token_for(&login.plugin, o.password.as_bytes(), &login.scramble).unwrap_or_default();
    let mut p = bytes::BytesMut::with_capacity(64 + o.user.len());
    p.put_u8(crate::protocol::com::CHANGE_USER);
    p.put_slice(o.user.as_bytes());
    p.put_u8(0);
    p.put_u8(token.len() as u8);
    p.put_slice(&token);
    p.put_u8(0); // no database
    p.put_u16_le(POOL_COLLATION_ID as u16);
    p.put_slice(login.plugin.as_bytes());
    p.put_u8(0);
    if login.capabilities & caps::CONNECT_ATTRS != 0 {
        p.put_u8(0); // no attributes
    }
    send(&mut conn.stream, 0, &p).await?;
    let (plugin, scramble) = authenticate(&mut conn.stream, &mut conn.reader, login.plugin, login.scramble, o).await?;
    conn.login = Login { plugin, scramble, capabilities: login.capabilities };
    conn.state = super::conn::ConnState::pooled();
    conn.restore_pool_settings().await
}

/// With `tls` other than disabled: the SSL request (sequence `seq`, then one more) and the
/// TLS handshake, when the server offers TLS; `preferred` goes on in clear when it does not,
/// the other modes refuse. A certificate that fails its mode's check refuses the connection.
async fn start_tls(
    tcp: TcpStream,
    o: &ConnectOptions,
    offered: u32,
    capabilities: u32,
    seq: &mut u8,
) -> Result<crate::tls::BackendStream, BackendError> {
    use crate::tls::{BackendMode, Stream};
    let mode = o.tls.mode;
    if mode == BackendMode::Disabled {
        return Ok(Stream::Plain(tcp));
    }
    if offered & caps::SSL == 0 {
        if mode == BackendMode::Preferred {
            return Ok(Stream::Plain(tcp));
        }
        return Err(BackendError::Unsupported(format!("the backend does not offer TLS (tls = {mode:?})")));
    }
    let config = o.tls.client_config().map_err(|e| BackendError::Unsupported(format!("TLS: {e}")))?;
    let mut request = bytes::BytesMut::with_capacity(32);
    {
        use bytes::BufMut;
        request.put_u32_le(capabilities | caps::SSL);
        request.put_u32_le(1 << 30);
        request.put_u8(POOL_COLLATION_ID);
        request.put_bytes(0, 23);
    }
    let mut tcp = tcp;
    send(&mut tcp, *seq, &request).await?;
    *seq = seq.wrapping_add(1);
    let host = o.addr.rsplit_once(':').map_or(o.addr.as_str(), |(h, _)| h);
    let tls = crate::tls::connect_backend(tcp, config, host.trim_start_matches('[').trim_end_matches(']'))
        .await
        .map_err(|e| BackendError::Unsupported(format!("TLS handshake with the backend failed: {e}")))?;
    Ok(Stream::Tls(Box::new(tls)))
}

fn eof() -> BackendError {
    BackendError::Protocol(ProtocolError::Io(std::io::ErrorKind::UnexpectedEof.into()))
}

async fn send<W: tokio::io::AsyncWrite + Unpin>(stream: &mut W, seq: u8, payload: &[u8]) -> Result<(), BackendError> {
    let mut out = bytes::BytesMut::new();
    crate::protocol::codec::put_packet(&mut out, seq, payload);
    stream.write_all(&out).await.map_err(|e| BackendError::Protocol(e.into()))?;
    stream.flush().await.map_err(|e| BackendError::Protocol(e.into()))
}

/// RSA-OAEP (SHA-1) encryption with the PEM key a MySQL server sent (SPKI or PKCS#1 form).
fn rsa_encrypt(pem: &[u8], data: &[u8]) -> Result<Vec<u8>, BackendError> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    let pem = std::str::from_utf8(pem).map_err(|_| BackendError::Unsupported("public key is not text".into()))?;
    let pem = pem.trim_end_matches('\0');
    let key = rsa::RsaPublicKey::from_public_key_pem(pem)
        .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(pem))
        .map_err(|e| BackendError::Unsupported(format!("server public key: {e}")))?;
    key.encrypt(&mut rand::thread_rng(), rsa::Oaep::new::<sha1::Sha1>(), data)
        .map_err(|e| BackendError::Unsupported(format!("RSA encryption: {e}")))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;
    use tokio::net::TcpStream;

    /// Keepalive is on with the configured idle time, and off for 0.
    #[tokio::test]
    async fn keepalive_is_set_on_the_socket() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let b = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        super::keepalive(&a, 45);
        super::keepalive(&b, 0);
        let (ra, rb) = (socket2::SockRef::from(&a), socket2::SockRef::from(&b));
        assert!(ra.keepalive().unwrap());
        assert_eq!(ra.tcp_keepalive_time().unwrap(), Duration::from_secs(45));
        assert_eq!(ra.tcp_keepalive_interval().unwrap(), Duration::from_secs(10));
        assert_eq!(ra.tcp_keepalive_retries().unwrap(), 3);
        assert!(!rb.keepalive().unwrap());
    }
}
