//! The SQL admin interface: a MySQL-protocol listener of its own (`[admin] listen`, like
//! ProxySQL's 6032) where operators use the mariadb CLI, any driver or any GUI to run
//! `SHOW SLUICE ...` and the `SLUICE ...` actions, with their own accounts
//! (`[[admin.users]]`, role `admin` or `read`).
//!
//! Each connection: greeting, mysql_native_password login (a client that starts with another
//! plugin is switched), then one statement at a time, each answered with a result set, an OK
//! or an ERR. Nothing here touches a backend except through the actions' own paths (KILL,
//! reload).

pub mod parse;
mod tables;

use crate::config::{AdminRole, AdminUser};
use crate::protocol::auth::{self, tokens_equal};
use crate::protocol::codec::{put_packet, PacketReader};
use crate::protocol::err::ErrPacket;
use crate::protocol::handshake::{encode_auth_switch, Greeting, HandshakeResponse};
use crate::protocol::ok::OkPacket;
use crate::protocol::resultset::{text_result_set, Column, ColumnType, Framing};
use crate::protocol::{caps, com, status};
use crate::shared::Shared;
use bytes::BytesMut;
use parse::AdminCommand;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Connections the admin interface serves at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 64;
/// Idle admin connections are closed after this.
const IDLE: Duration = Duration::from_secs(3600);

/// Serves the SQL admin interface until shutdown.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    let limit = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    while let Some(stream) = super::accept(&listener, &shutdown, "admin SQL").await {
        let Ok(permit) = limit.clone().try_acquire_owned() else { continue };
        let (s, stop) = (shared.clone(), shutdown.clone());
        shared.tasks.spawn(async move {
            let _permit = permit;
            tokio::select! {
                _ = stop.cancelled() => {}
                r = connection(stream, &s, &stop) => if let Err(e) = r {
                    tracing::debug!(error = %e, "admin SQL connection ended");
                }
            }
        });
    }
}

/// One admin connection.
struct Conn {
    stream: TcpStream,
    reader: PacketReader,
    out: BytesMut,
    deprecate_eof: bool,
}

impl Conn {
    fn put(&mut self, seq: u8, payload: &[u8]) -> u8 {
        put_packet(&mut self.out, seq, payload)
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        let r = self.stream.write_all(&self.out).await;
        self.out.clear();
        r
    }

    fn err(&mut self, seq: u8, e: &ErrPacket) {
        self.put(seq, &e.encode());
    }

    fn ok(&mut self, seq: u8, info: &str) {
        let mut ok = OkPacket::with_status(status::AUTOCOMMIT);
        ok.info = bytes::Bytes::copy_from_slice(info.as_bytes());
        self.put(seq, &ok.encode(false));
    }

    fn table(&mut self, seq: u8, columns: &[Column], rows: &[Vec<Option<String>>]) {
        let mut seq = seq;
        for p in text_result_set(
            columns,
            rows,
            Framing { status: status::AUTOCOMMIT, deprecate_eof: self.deprecate_eof, session_track: false },
        ) {
            seq = self.put(seq, &p);
        }
    }
}

async fn connection(
    stream: TcpStream,
    shared: &Arc<Shared>,
    shutdown: &CancellationToken,
) -> Result<(), crate::protocol::ProtocolError> {
    let _ = stream.set_nodelay(true);
    let mut c = Conn { stream, reader: PacketReader::new(1 << 20, 1024), out: BytesMut::new(), deprecate_eof: false };
    let Some(role) = login(&mut c, shared).await? else { return Ok(()) };
    loop {
        let p = match tokio::time::timeout(IDLE, c.reader.read_packet(&mut c.stream)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        };
        let Some(p) = p else { return Ok(()) };
        let seq = p.seq.wrapping_add(1);
        match p.payload.first().copied() {
            Some(com::QUIT) | None => return Ok(()),
            Some(com::PING) | Some(com::INIT_DB) => c.ok(seq, ""),
            Some(com::QUERY) => {
                let sql = String::from_utf8_lossy(&p.payload[1..]).into_owned();
                run(&mut c, seq, shared, shutdown, role, &sql).await;
            }
            Some(other) => c.err(seq, &ErrPacket::unknown_command(other)),
        }
        c.flush().await?;
    }
}

/// Greets and authenticates an admin account; `None` (after the ERR) when it fails.
async fn login(c: &mut Conn, shared: &Shared) -> Result<Option<AdminRole>, crate::protocol::ProtocolError> {
    let scramble = auth::new_scramble();
    let greeting = Greeting {
        server_version: format!("5.5.5-10.11.0-Sluice-admin-{}", env!("CARGO_PKG_VERSION")),
        connection_id: 0,
        scramble: scramble.to_vec(),
        // No TLS here, and no session tracking: its OK packets carry a plain info text.
        capabilities: caps::SERVER & !caps::SSL & !caps::SESSION_TRACK,
        charset: crate::backend::conn::POOL_COLLATION_ID,
        status: status::AUTOCOMMIT,
        auth_plugin: auth::NATIVE.to_string(),
    };
    c.put(0, &greeting.encode());
    c.flush().await?;
    let login_limit = Duration::from_millis(shared.load().config.proxy.handshake_timeout_ms);
    let first = tokio::time::timeout(login_limit, c.reader.read_packet(&mut c.stream)).await;
    let Ok(Ok(Some(p))) = first else { return Ok(None) };
    let resp = HandshakeResponse::parse(&p.payload)?;
    c.deprecate_eof = resp.capabilities & caps::DEPRECATE_EOF != 0;
    let mut seq = p.seq.wrapping_add(1);
    let mut token = resp.auth_response.clone();
    if resp.auth_plugin.as_deref().unwrap_or(auth::NATIVE) != auth::NATIVE {
        c.put(seq, &encode_auth_switch(auth::NATIVE, &scramble));
        c.flush().await?;
        let r = tokio::time::timeout(login_limit, c.reader.read_packet(&mut c.stream)).await;
        let Ok(Ok(Some(p))) = r else { return Ok(None) };
        token = p.payload.to_vec();
        seq = p.seq.wrapping_add(1);
    }
    let snap = shared.load();
    let user = snap.config.admin.users.iter().find(|u| u.name.get_ref() == &resp.user);
    match user.filter(|u| verify(u, &token, &scramble)) {
        Some(u) => {
            c.ok(seq, "");
            c.flush().await?;
            Ok(Some(u.role))
        }
        None => {
            shared.metrics.auth_failures.inc();
            tracing::info!(user = %resp.user, "admin login failed");
            let host = c.stream.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
            c.err(seq, &ErrPacket::access_denied(&resp.user, &host, !token.is_empty()));
            c.flush().await?;
            Ok(None)
        }
    }
}

fn verify(u: &AdminUser, token: &[u8], scramble: &[u8; 20]) -> bool {
    match u.password_hash.as_ref().and_then(|h| auth::parse_native_hash(h.get_ref())) {
        Some(hash) => auth::sha1_from_native_token(token, scramble, &hash).is_some(),
        None => {
            tokens_equal(token, &auth::token_for(auth::NATIVE, u.password.as_bytes(), scramble).unwrap_or_default())
        }
    }
}

/// Runs one statement.
async fn run(c: &mut Conn, seq: u8, shared: &Arc<Shared>, shutdown: &CancellationToken, role: AdminRole, sql: &str) {
    let cmd = parse::parse(sql);
    if cmd.changes_something() && role == AdminRole::Read {
        c.err(seq, &ErrPacket::new(1227, "42000", "Access denied; this admin account has role = \"read\""));
        return;
    }
    match cmd {
        AdminCommand::Show(what) => {
            let t = tables::show(shared, &what);
            c.table(seq, &t.columns, &t.rows);
        }
        AdminCommand::Variables(names) => {
            let columns: Vec<Column> =
                names.iter().map(|n| Column { name: format!("@@{n}"), kind: ColumnType::VarString }).collect();
            let row = names.iter().map(|n| variable(n)).collect();
            c.table(seq, &columns, &[row]);
        }
        AdminCommand::Accepted => c.ok(seq, ""),
        AdminCommand::Fleet => match crate::fleet::read(shared).await {
            Ok(members) => {
                let t = tables::fleet(&members);
                c.table(seq, &t.columns, &t.rows);
            }
            Err(e) => c.err(seq, &ErrPacket::new(1105, "HY000", format!("fleet registry not readable: {e}"))),
        },
        AdminCommand::Drain => {
            tracing::warn!("SLUICE DRAIN: draining, as on SIGTERM");
            shared.draining.store(true, std::sync::atomic::Ordering::Relaxed);
            c.ok(seq, "draining");
            shutdown.cancel();
        }
        AdminCommand::Reload => match shared.config_path.get() {
            None => c.err(seq, &ErrPacket::new(1105, "HY000", "Sluice was started without a config file to reload")),
            Some(path) => match crate::config::reload::reload(shared, path) {
                crate::config::reload::Outcome::Applied(v) => {
                    crate::topology::monitor::ensure(shared, shutdown);
                    c.ok(seq, &format!("config version {v} applied"))
                }
                crate::config::reload::Outcome::Rejected(why) => {
                    c.err(seq, &ErrPacket::new(1105, "HY000", format!("config rejected (the old one keeps serving): {why}")))
                }
            },
        },
        AdminCommand::Pause => {
            shared.pause.set(true);
            tracing::warn!("SLUICE PAUSE: new statements are held until SLUICE RESUME");
            c.ok(seq, "paused");
        }
        AdminCommand::Resume => {
            shared.pause.set(false);
            tracing::warn!("SLUICE RESUME");
            c.ok(seq, "resumed");
        }
        AdminCommand::ResetDigests => {
            shared.stats.reset();
            c.ok(seq, "");
        }
        AdminCommand::FlushCache(table) => match shared.cache_if_made() {
            Some(cache) => {
                cache.flush(table.as_deref());
                c.ok(seq, "");
            }
            None => c.ok(seq, "no cache"),
        },
        AdminCommand::Kill { query, id } => kill(c, seq, shared, query, id).await,
        AdminCommand::Backend { addr, drain } => backend(c, seq, shared, &addr, drain),
        AdminCommand::Unknown(what) => c.err(
            seq,
            &ErrPacket::new(
                1064,
                "42000",
                format!("'{what}': not a Sluice admin statement (SHOW SLUICE BACKENDS | POOLS | CLIENTS | DIGESTS | CONFIG | VERSION | CACHE, SLUICE RELOAD | PAUSE | RESUME | KILL [QUERY] id | RESET DIGESTS | FLUSH CACHE [table] | BACKEND 'addr' DRAIN | ENABLE)"),
            ),
        ),
    }
}

/// What a driver's start-up question about a variable gets.
fn variable(name: &str) -> Option<String> {
    let v = match name.to_ascii_lowercase().trim_start_matches("session.").trim_start_matches("global.") {
        "version_comment" => "Sluice admin interface".to_string(),
        "version" => format!("10.11.0-Sluice-admin-{}", env!("CARGO_PKG_VERSION")),
        "max_allowed_packet" => (1 << 20).to_string(),
        "wait_timeout" | "interactive_timeout" => IDLE.as_secs().to_string(),
        "autocommit" => "1".into(),
        "character_set_client" | "character_set_connection" | "character_set_results" => "utf8mb4".into(),
        "sql_mode" => String::new(),
        "lower_case_table_names" => "0".into(),
        "transaction_isolation" | "tx_isolation" => "REPEATABLE-READ".into(),
        _ => return None,
    };
    Some(v)
}

async fn kill(c: &mut Conn, seq: u8, shared: &Shared, query: bool, id: u32) {
    let Some(ctl) = shared.sessions.get(id) else {
        c.err(seq, &ErrPacket::new(1094, "HY000", format!("Unknown thread id: {id}")));
        return;
    };
    let timeout = shared.load().config.pool.connect_timeout_ms;
    let scope = if query { crate::sessions::Scope::Query } else { crate::sessions::Scope::Connection };
    let killed = ctl.kill(timeout, scope).await;
    if !query {
        ctl.end_session();
    }
    match killed {
        Ok(_) => c.ok(seq, ""),
        Err(e) => c.err(seq, &ErrPacket::new(1105, "HY000", format!("could not kill the statement: {e}"))),
    }
}

fn backend(c: &mut Conn, seq: u8, shared: &Shared, addr: &str, drain: bool) {
    let snap = shared.load_full();
    let found = snap.topology.shards.iter().flat_map(|s| s.replicas.iter()).find(|b| b.addr == addr);
    let Some(b) = found else {
        let primary = snap.topology.shards.iter().any(|s| s.primary.addr == addr);
        let why = if primary { "is a primary: only replicas can be drained" } else { "is not a replica in the config" };
        c.err(seq, &ErrPacket::new(1105, "HY000", format!("backend '{addr}' {why}")));
        return;
    };
    if let Ok(mut set) = shared.drained.lock() {
        if drain {
            set.insert(addr.to_string());
        } else {
            set.remove(addr);
        }
    }
    b.drained.store(drain, Ordering::Relaxed);
    tracing::warn!(addr, drain, "replica {} by an operator", if drain { "drained" } else { "enabled" });
    c.ok(seq, if drain { "drained: no new reads go there" } else { "enabled" });
}
