//! One authenticated connection to a backend: Sluice's client side of the protocol, plus what
//! Sluice knows of the session state on it.

use super::error::BackendError;
use crate::protocol::codec::{put_packet, Frame, PacketReader};
use crate::protocol::com;
use crate::protocol::err::ErrPacket;
use crate::protocol::ok::{OkPacket, StateChange};
use crate::protocol::response::{Expect, ResponseScanner};
use bytes::BytesMut;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Variables the backend reports through session tracking that are not session settings to
/// carry to another connection: read-only status (`last_gtid`, `in_transaction`), or one-shot
/// values consumed by the next statement (`insert_id`, the random seeds).
const NOT_REPLAYED: &[&str] = &[
    "last_gtid",
    "in_transaction",
    "insert_id",
    "last_insert_id",
    "identity",
    "rand_seed1",
    "rand_seed2",
    "warning_count",
    "error_count",
];

/// True for a tracked variable that is part of the session state Sluice replays: not in
/// [`NOT_REPLAYED`], not one of the `session_track_*` variables (Sluice's own on every
/// backend connection, restored after a client changes them), and named by identifier characters only, because the name is written
/// into the `SET` that replays it (a backend's bytes never become SQL unchecked).
pub fn replayable(name: &str) -> bool {
    valid_name(name) && !NOT_REPLAYED.contains(&name) && !name.starts_with("session_track_")
}

/// True for a variable whose value the next statement on the connection consumes.
pub fn one_shot(name: &str) -> bool {
    matches!(name, "insert_id" | "rand_seed1" | "rand_seed2")
}

/// A system variable name Sluice may write into SQL: ASCII letters, digits and `_`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Session state known to be in effect on a backend connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnState {
    /// Current schema.
    pub schema: Option<String>,
    /// Session variables known to differ from the server's global defaults, plus the four
    /// character-set variables, which are always known (they come from the handshake).
    /// Shared copy-on-write (`Arc::make_mut` to change): a connection reconciled to a
    /// session's state holds the session's map, so the next checkout by a session in the
    /// same state compares one pointer instead of every variable.
    pub vars: Arc<BTreeMap<String, String>>,
    /// CLIENT_MULTI_STATEMENTS in effect (toggled with COM_SET_OPTION).
    pub multi_statements: bool,
    /// What LAST_INSERT_ID() returns on this connection.
    pub last_insert_id: u64,
}

impl ConnState {
    /// The state of a fresh pooled connection (no schema, the pool's character set,
    /// multi-statements on).
    pub fn pooled() -> ConnState {
        let vars = crate::protocol::charset::by_id(POOL_COLLATION_ID).vars();
        ConnState { schema: None, vars, multi_statements: true, last_insert_id: 0 }
    }

    /// Applies the session-state changes an OK packet reports.
    pub fn apply(&mut self, ok: &OkPacket) {
        if ok.last_insert_id != 0 {
            self.last_insert_id = ok.last_insert_id;
        }
        for c in ok.changes() {
            match c {
                StateChange::SystemVariable(k, v) if replayable(k) && self.vars.get(k) != Some(v) => {
                    Arc::make_mut(&mut self.vars).insert(k.clone(), v.clone());
                }
                StateChange::Schema(s) => self.schema = Some(s.clone()).filter(|s| !s.is_empty()),
                _ => {}
            }
        }
    }
}

/// The collation every pooled connection starts with (utf8mb4_general_ci). Sessions that want
/// another one get it replayed on checkout.
pub const POOL_COLLATION_ID: u8 = 45;

/// Turns on the session tracking every pooled connection relies on: the backend then reports
/// each variable and schema change in its OK packets.
pub const TRACKING: &str =
    "SET SESSION session_track_system_variables='*', session_track_schema=ON, session_track_state_change=ON";

/// What a connection logged in with, for COM_CHANGE_USER later.
#[derive(Debug, Clone, Default)]
pub struct Login {
    pub plugin: String,
    pub scramble: Vec<u8>,
    pub capabilities: u32,
}

/// An authenticated backend connection.
#[derive(Debug)]
pub struct BackendConn {
    pub(super) stream: crate::tls::BackendStream,
    pub(super) reader: PacketReader,
    pub(super) out: BytesMut,
    /// The backend's connection (thread) id.
    pub id: u32,
    /// The backend's version string.
    pub server_version: String,
    /// Session state on this connection.
    pub state: ConnState,
    /// Status flags of the last OK/EOF.
    pub status: u16,
    broken: bool,
    /// What it logged in with (for COM_CHANGE_USER).
    pub(super) login: Login,
    /// When the connection last finished a command.
    pub idle_since: Instant,
    /// Statements prepared on this connection.
    pub stmts: super::stmts::StmtCache,
    /// The `SET GLOBAL` epoch (see `Shared::globals_epoch`) its session values are from.
    pub globals_epoch: u64,
}

/// A connection Sluice lets go of (the pool's idle timeout or lifetime, a session that
/// discards its pinned connection, shutdown) says COM_QUIT first when it is between commands,
/// as a client that ends normally does: the server then neither counts it in
/// `Aborted_clients` nor logs "Aborted connection" for it, which DBAs watch and alert on. A
/// connection marked broken (state unknown, perhaps mid-statement) is only closed. Best
/// effort and never waits: five bytes into the socket's buffer, or nothing.
impl Drop for BackendConn {
    fn drop(&mut self) {
        if self.broken || self.reader.has_buffered() {
            return;
        }
        const QUIT: [u8; 5] = [1, 0, 0, 0, com::QUIT];
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut stream = std::pin::Pin::new(&mut self.stream);
        if let std::task::Poll::Ready(Ok(5)) = stream.as_mut().poll_write(&mut cx, &QUIT) {
            let _ = stream.as_mut().poll_flush(&mut cx);
            let _ = stream.poll_shutdown(&mut cx);
        }
    }
}

impl BackendConn {
    pub(super) fn new(
        stream: crate::tls::BackendStream,
        reader: PacketReader,
        id: u32,
        server_version: String,
    ) -> Self {
        BackendConn {
            stream,
            reader,
            out: BytesMut::with_capacity(16 * 1024),
            id,
            server_version,
            state: ConnState { multi_statements: true, ..ConnState::default() },
            status: crate::protocol::status::AUTOCOMMIT,
            broken: false,
            login: Default::default(),
            idle_since: Instant::now(),
            stmts: Default::default(),
            globals_epoch: 0,
        }
    }

    /// Marks the connection unusable: the pool closes it instead of reusing it.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// True once marked broken.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// True when the backend closed the connection (or sent something unasked) while it sat
    /// idle in the pool. Costs no system call when nothing happened: tokio tracks readiness.
    pub fn is_stale(&mut self) -> bool {
        let mut probe = [0u8; 1];
        // Over TLS the probe reads the socket under the TLS session: any byte there (an alert,
        // a close) means the connection is not for reuse either.
        !matches!(self.stream.tcp().map(|t| t.try_read(&mut probe)), Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// True when more response bytes are already buffered.
    pub fn has_buffered(&self) -> bool {
        self.reader.has_buffered()
    }

    /// Sends one command packet (sequence 0).
    pub async fn send_command(&mut self, payload: &[u8]) -> Result<(), BackendError> {
        self.send_packet(0, payload).await.map(|_| ())
    }

    /// Sends one logical packet starting at `seq`; returns the next sequence id.
    pub async fn send_packet(&mut self, seq: u8, payload: &[u8]) -> Result<u8, BackendError> {
        self.out.clear();
        let next = put_packet(&mut self.out, seq, payload);
        let mut r = self.stream.write_all(&self.out).await;
        if r.is_ok() && self.stream.is_tls() {
            r = self.stream.flush().await;
        }
        if self.out.capacity() > 1 << 20 {
            self.out = BytesMut::with_capacity(16 * 1024);
        }
        if let Err(e) = r {
            self.broken = true;
            return Err(BackendError::Protocol(e.into()));
        }
        Ok(next)
    }

    /// Reads the next frame of a response. Any failure marks the connection broken.
    pub async fn read_frame(&mut self) -> Result<Frame, BackendError> {
        match self.reader.read_frame(&mut self.stream, 0).await {
            Ok(f) => Ok(f),
            Err(e) => {
                self.broken = true;
                Err(e.into())
            }
        }
    }

    /// Makes sure a complete frame is buffered, then lends the raw buffer for in-place relaying.
    /// Any failure marks the connection broken.
    pub async fn fill_frames(&mut self) -> Result<&mut BytesMut, BackendError> {
        if let Err(e) = self.reader.fill_frame(&mut self.stream).await {
            self.broken = true;
            return Err(e.into());
        }
        Ok(self.reader.buf_mut())
    }

    /// Runs a statement of Sluice's own and returns its OK packets and text rows. Errors from
    /// the server come back as [`BackendError::Server`] with the connection still usable.
    pub async fn query(&mut self, sql: &str) -> Result<QueryResult, BackendError> {
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(com::QUERY);
        payload.extend_from_slice(sql.as_bytes());
        self.command(&payload, Expect::Results).await
    }

    /// Sends a command and collects its whole response.
    pub async fn command(&mut self, payload: &[u8], expect: Expect) -> Result<QueryResult, BackendError> {
        self.collect(payload, expect, None).await
    }

    /// Runs a read whose rows are only passed on (scatter reads): rows are kept as the server
    /// sent them, not parsed, and only while `budget` lasts; past it the rest of the response
    /// is read and dropped (the connection stays usable) and [`RowBudget::exceeded`] says so.
    pub async fn query_rows(&mut self, sql: &str, budget: &RowBudget) -> Result<QueryResult, BackendError> {
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(com::QUERY);
        payload.extend_from_slice(sql.as_bytes());
        self.collect(&payload, Expect::Results, Some(budget)).await
    }

    /// [`BackendConn::command`], with rows kept raw and capped when `budget` is given.
    async fn collect(
        &mut self,
        payload: &[u8],
        expect: Expect,
        budget: Option<&RowBudget>,
    ) -> Result<QueryResult, BackendError> {
        self.send_command(payload).await?;
        let mut scanner = ResponseScanner::new(expect, false, true);
        let mut rows = Vec::new();
        let mut columns = Vec::new();
        let (mut defs, mut raw_rows) = (Vec::new(), Vec::new());
        while !scanner.is_done() {
            let f = self.read_frame().await?;
            let before = scanner.rows;
            let cols_before = scanner.columns_seen;
            if let Err(e) = scanner.feed(&f) {
                self.broken = true;
                return Err(e.into());
            }
            if scanner.local_infile {
                // Sluice never uploads files of its own: an empty packet declines.
                self.send_packet(f.seq.wrapping_add(1), &[]).await?;
                scanner.resume_after_infile();
            }
            if scanner.rows > before {
                match budget {
                    None => {
                        rows.push(parse_text_row(&f.payload)?);
                        raw_rows.push(f.payload.clone());
                    }
                    Some(b) if b.take(f.payload.len()) => raw_rows.push(f.payload.clone()),
                    Some(_) => {}
                }
            }
            if scanner.columns_seen > cols_before {
                if scanner.columns_seen == 1 {
                    columns.clear();
                    rows.clear();
                    defs.clear();
                    raw_rows.clear();
                }
                columns.push(column_name(&f.payload)?);
                defs.push(f.payload.clone());
            }
        }
        self.finish(&scanner);
        if let Some(e) = scanner.error {
            return Err(BackendError::Server(e));
        }
        Ok(QueryResult { oks: scanner.oks, rows, columns, defs, raw_rows, prepared: scanner.prepared })
    }

    /// Records what a finished response tells about the connection.
    pub fn finish(&mut self, scanner: &ResponseScanner) {
        for ok in &scanner.oks {
            self.state.apply(ok);
        }
        if let Some(s) = scanner.status {
            self.status = s;
        }
        self.idle_since = Instant::now();
    }

    /// What identifies a prepared statement on this connection: the statement's bytes as the
    /// client sent them, with the schema, character set and sql_mode in effect now. A
    /// statement prepared in `db1` resolves its tables in `db1`, and one prepared under
    /// another character set or `ANSI_QUOTES` reads its text differently, so none of them may
    /// serve a session in another context.
    pub fn stmt_key(&self, sql: &[u8]) -> Vec<u8> {
        let var = |k: &str| self.state.vars.get(k).map_or(&b""[..], |v| v.as_bytes());
        let mut key = Vec::with_capacity(sql.len() + 64);
        for part in [
            self.state.schema.as_deref().map_or(&b""[..], str::as_bytes),
            var("character_set_client"),
            var("collation_connection"),
            var("sql_mode"),
        ] {
            key.extend_from_slice(part);
            key.push(0);
        }
        key.extend_from_slice(sql);
        key
    }

    /// The backend id of `sql` (the statement's bytes as the client sent them) on this
    /// connection in its current context, preparing it first if needed. A statement not
    /// `kept` for reuse is closed by [`BackendConn::close_used_once`] after it ran.
    pub async fn prepared(&mut self, sql: &[u8], kept: bool) -> Result<u32, BackendError> {
        let key = self.stmt_key(sql);
        if let Some(id) = self.stmts.get(&key) {
            return Ok(id);
        }
        let mut p = Vec::with_capacity(sql.len() + 1);
        p.push(com::STMT_PREPARE);
        p.extend_from_slice(sql);
        let r = match self.command(&p, Expect::Prepare).await {
            Err(BackendError::Server(e)) if e.code == 1461 && !self.stmts.is_empty() => {
                // The server's max_prepared_stmt_count is reached: give back what this
                // connection keeps for reuse and try once more.
                self.evict_statements().await?;
                self.command(&p, Expect::Prepare).await?
            }
            r => r?,
        };
        let id =
            r.prepared.ok_or(BackendError::Unsupported("PREPARE answered without a statement".into()))?.statement_id;
        tracing::debug!(backend_thread = self.id, statement = id, "statement prepared on this backend connection");
        self.remember_statement(key.clone(), id).await?;
        if !kept {
            self.stmts.mark_once(&key);
        }
        Ok(id)
    }

    /// Closes the statements prepared here that are not kept for reuse, once they ran.
    pub async fn close_used_once(&mut self) -> Result<(), BackendError> {
        if !self.stmts.has_once() {
            return Ok(());
        }
        for id in self.stmts.take_once() {
            let mut p = vec![com::STMT_CLOSE];
            p.extend_from_slice(&id.to_le_bytes());
            self.send_command(&p).await?;
        }
        Ok(())
    }

    /// Closes every statement this connection keeps prepared for reuse.
    pub async fn evict_statements(&mut self) -> Result<(), BackendError> {
        for id in std::mem::take(&mut self.stmts).ids() {
            let mut p = vec![com::STMT_CLOSE];
            p.extend_from_slice(&id.to_le_bytes());
            self.send_command(&p).await?;
        }
        Ok(())
    }

    /// Closes `sql` on the backend if it is prepared here in the current context (a statement
    /// not [kept for reuse](super::stmts::kept_for_reuse), once it ran).
    pub async fn forget_statement(&mut self, sql: &[u8]) -> Result<(), BackendError> {
        if let Some(id) = self.stmts.remove(&self.stmt_key(sql)) {
            let mut p = vec![com::STMT_CLOSE];
            p.extend_from_slice(&id.to_le_bytes());
            self.send_command(&p).await?;
        }
        Ok(())
    }

    /// The backend id of `sql` if it is prepared here in the current context.
    pub fn prepared_id(&self, sql: &[u8]) -> Option<u32> {
        self.stmts.get(&self.stmt_key(sql))
    }

    /// Records a statement prepared on this connection under `key` (see
    /// [`BackendConn::stmt_key`]), closing any it displaces.
    pub async fn remember_statement(&mut self, key: Vec<u8>, id: u32) -> Result<(), BackendError> {
        for old in self.stmts.insert(key.into(), id) {
            let mut p = vec![com::STMT_CLOSE];
            p.extend_from_slice(&old.to_le_bytes());
            self.send_command(&p).await?;
        }
        Ok(())
    }

    /// Returns the connection to the state a fresh pooled connection has, after a session that
    /// was pinned to it ends: COM_RESET_CONNECTION rolls back, drops temporary tables, releases
    /// locks, user variables and prepared statements and resets session variables; then
    /// multi-statements, the pool's character set and session tracking are restored, and the
    /// schema (which the reset keeps) is read back.
    pub async fn reset_to_pool_state(&mut self) -> Result<(), BackendError> {
        self.command(&[com::RESET_CONNECTION], Expect::Simple).await?;
        self.query("SET NAMES utf8mb4 COLLATE utf8mb4_general_ci").await?;
        self.restore_pool_settings().await?;
        let r = self.query("SELECT DATABASE()").await?;
        let schema = r.rows.first().and_then(|row| row.first().cloned().flatten());
        self.state = ConnState { schema, ..ConnState::pooled() };
        Ok(())
    }

    /// After the server reset the session (COM_RESET_CONNECTION, COM_CHANGE_USER): what the
    /// pool relies on on every connection again (multi-statements on, session tracking), and
    /// no prepared statement left.
    pub(super) async fn restore_pool_settings(&mut self) -> Result<(), BackendError> {
        self.stmts = Default::default();
        self.command(&[com::SET_OPTION, 0, 0], Expect::Simple).await?;
        self.query(TRACKING).await?;
        Ok(())
    }

    /// COM_PING.
    pub async fn ping(&mut self) -> Result<(), BackendError> {
        self.command(&[com::PING], Expect::Simple).await.map(|_| ())
    }
}

/// Rows and bytes several reads may keep in memory between them (a scatter read's caps).
#[derive(Debug)]
pub struct RowBudget {
    taken: std::sync::atomic::AtomicUsize,
    bytes: std::sync::atomic::AtomicUsize,
    max: usize,
    max_bytes: usize,
}

impl RowBudget {
    pub fn new(max: usize, max_bytes: usize) -> RowBudget {
        RowBudget { taken: Default::default(), bytes: Default::default(), max, max_bytes }
    }

    /// Takes one row of `len` bytes; false once either cap is passed.
    fn take(&self, len: usize) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let rows_ok = self.taken.fetch_add(1, Relaxed) < self.max;
        let bytes_ok = self.bytes.fetch_add(len, Relaxed).saturating_add(len) <= self.max_bytes;
        rows_ok && bytes_ok
    }

    /// More rows or bytes arrived than the budget allowed.
    pub fn exceeded(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        self.taken.load(Relaxed) > self.max || self.bytes.load(Relaxed) > self.max_bytes
    }
}

/// Result of a statement Sluice ran for itself.
#[derive(Debug, Default)]
pub struct QueryResult {
    pub oks: Vec<OkPacket>,
    /// Rows of the last result set.
    pub rows: Vec<Vec<Option<String>>>,
    /// Column names of the last result set.
    pub columns: Vec<String>,
    /// The last result set's column definitions and rows as the server sent them.
    pub defs: Vec<bytes::Bytes>,
    pub raw_rows: Vec<bytes::Bytes>,
    pub prepared: Option<crate::protocol::response::PrepareOk>,
}

/// The `name` of a column definition (after catalog, schema, table, org_table).
fn column_name(p: &[u8]) -> Result<String, BackendError> {
    Ok(String::from_utf8_lossy(crate::protocol::coldef::column_def(p)?.name).into_owned())
}

impl QueryResult {
    /// The value of `column` in the first row.
    pub fn first(&self, column: &str) -> Option<&str> {
        let i = self.columns.iter().position(|c| c.eq_ignore_ascii_case(column))?;
        self.rows.first()?.get(i)?.as_deref()
    }
}

fn parse_text_row(p: &[u8]) -> Result<Vec<Option<String>>, BackendError> {
    let values = crate::protocol::coldef::text_row(p)?;
    Ok(values.into_iter().map(|v| v.map(|v| String::from_utf8_lossy(v).into_owned())).collect())
}

impl From<ErrPacket> for BackendError {
    fn from(e: ErrPacket) -> Self {
        BackendError::Server(e)
    }
}
