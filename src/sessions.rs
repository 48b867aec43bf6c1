//! Every live client session by the connection id its client was given, so that `KILL` and
//! COM_PROCESS_KILL name Sluice's sessions, never backend threads.
//!
//! Under multiplexing a client's statement runs on whatever pooled connection it was given,
//! so a backend thread id means nothing to the client (and the same thread serves another
//! client a moment later). Each session publishes here which backend thread runs its
//! statement *while* it runs; a KILL QUERY sends `KILL QUERY <thread>` to that backend on a
//! connection of its own, and only while that statement is still the one running. A session
//! that finishes a statement while a kill aimed at it is in flight waits for the kill to land
//! before its connection runs anything else (or is discarded), so a kill never reaches a
//! statement of another session.

use crate::backend::connect::{connect, ConnectOptions};
use crate::backend::BackendError;
use crate::topology::Backend;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The live sessions.
#[derive(Debug, Default)]
pub struct Registry {
    by_id: Mutex<HashMap<u32, Arc<Control>>>,
    next: AtomicU32,
    /// Logged-in sessions per Sluice user, for `[[users]] max_connections`.
    per_user: Arc<Mutex<HashMap<String, u32>>>,
}

/// One logged-in session counted against its user's `max_connections`; dropping it gives
/// the slot back, however the session ends.
#[derive(Debug)]
pub struct UserSlot {
    counts: Arc<Mutex<HashMap<String, u32>>>,
    user: String,
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

/// What others may do to one session.
#[derive(Debug)]
pub struct Control {
    /// The connection id the client was given in the handshake; also what `CONNECTION_ID()`
    /// returns through Sluice.
    pub id: u32,
    /// The Sluice user (once logged in; COM_CHANGE_USER changes it), and the backend login
    /// used to reach the thread running a statement (the pool's login).
    login: Mutex<Login>,
    running: Mutex<Running>,
    /// What `SHOW SLUICE CLIENTS` shows of it.
    activity: Mutex<Activity>,
    /// Nanoseconds after [`epoch`] the running statement began (+1); 0 between statements.
    since: std::sync::atomic::AtomicU64,
    /// Cancelled by [`Control::end_session`] (and by shutdown, whose child token it is).
    pub close: CancellationToken,
    /// The proxy's shutdown token, `close`'s parent.
    shutdown: CancellationToken,
    /// Set by [`Control::end_session`]: the session ends after its current statement, even
    /// inside a transaction (shutdown alone lets a transaction finish).
    pub ended: CancellationToken,
    /// The config version the session's current command runs on; 0 while it waits for the
    /// client, [`LOADING`] between reading a command and taking its snapshot. What a write
    /// pause's acknowledgement waits on ([`Registry::settled_since`]).
    serving: std::sync::atomic::AtomicU64,
    /// The config version current when the session's open transaction began; 0 outside one.
    txn_from: std::sync::atomic::AtomicU64,
}

/// [`Control::serving`] between reading a command and taking its snapshot.
const LOADING: u64 = u64::MAX;

/// What a session is doing, for operators.
#[derive(Debug, Default, Clone)]
pub struct Activity {
    pub peer: Option<std::net::SocketAddr>,
    pub schema: Option<String>,
    /// The current (or last) statement's first [`ACTIVITY_TEXT`] bytes. A copy into a buffer
    /// kept between statements: a reference to the client's packet would keep its read
    /// buffer (perhaps a large statement's) alive while the session idles.
    pub statement: Vec<u8>,
    /// When the current statement began; `None` between statements.
    pub since: Option<Instant>,
    /// Why the session holds its backend connection (`session::pin::Pins` bits).
    pub pinned: u16,
}

/// Bytes of a statement `SHOW SLUICE CLIENTS` shows.
pub const ACTIVITY_TEXT: usize = 512;

/// The clock `Control::since` counts from.
fn epoch() -> Instant {
    static E: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *E.get_or_init(Instant::now)
}

#[derive(Debug, Default, Clone)]
struct Login {
    user: String,
    /// The user's credentials as configured when it logged in (`UserConfig::fingerprint`):
    /// a reload that changes them ends the session.
    fingerprint: u64,
    backend_user: String,
    backend_password: String,
}

#[derive(Debug, Default)]
struct Running {
    /// The backend of the session's current (or last) statement. Kept between statements so
    /// that a statement on the same backend as the last one costs no reference-count change
    /// on the shared `Backend` (a cache line every session on it would otherwise contend for).
    backend: Option<Arc<Backend>>,
    /// The backend thread running the current statement; `None` between statements.
    thread: Option<u32>,
    /// A kill aimed at the current statement has not landed yet.
    kill_in_flight: bool,
    /// A `KILL CONNECTION` was sent for the current statement's backend thread: that
    /// connection is gone, whatever its statement answered.
    connection_killed: bool,
}

/// What a kill ends on the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `KILL QUERY <thread>`: the statement; the connection may serve again.
    Query,
    /// `KILL CONNECTION <thread>`: the backend connection too. For a session that ends (a
    /// client's KILL CONNECTION, a client that hung up): the server may miss a `KILL QUERY`
    /// that lands between two statements of a compound statement (`LOOP ... END LOOP` ran on
    /// and held its locks: mysql-test's main.information_schema_tables waited out its limit).
    Connection,
}

/// What a `KILL QUERY` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Killed {
    /// The running statement was interrupted.
    Statement,
    /// The session was between statements: nothing to interrupt.
    Idle,
}

impl Registry {
    /// Registers a new session under a fresh id (never 0, never the id of a live session,
    /// even after the counter wraps).
    pub fn register(&self, shutdown: &CancellationToken) -> Arc<Control> {
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        let id = loop {
            let id = self.next.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
            if id != 0 && !map.contains_key(&id) {
                break id;
            }
        };
        let ctl = Arc::new(Control {
            id,
            login: Mutex::default(),
            running: Mutex::default(),
            activity: Mutex::default(),
            since: std::sync::atomic::AtomicU64::new(0),
            close: shutdown.child_token(),
            shutdown: shutdown.clone(),
            ended: CancellationToken::new(),
            serving: Default::default(),
            txn_from: Default::default(),
        });
        map.insert(id, ctl.clone());
        ctl
    }

    /// Forgets a session that ended.
    pub fn unregister(&self, id: u32) {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    /// Every live session, by id.
    pub fn all(&self) -> Vec<Arc<Control>> {
        let mut v: Vec<_> = self.by_id.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// The live session with client connection id `id`.
    pub fn get(&self, id: u32) -> Option<Arc<Control>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    /// Counts a session of `user` unless it already has `max` (checked and counted under one
    /// lock, so concurrent logins cannot pass the limit together); `None`: over the limit.
    pub fn admit(&self, user: &str, max: Option<u32>) -> Option<UserSlot> {
        let mut counts = self.per_user.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(user.to_string()).or_insert(0);
        if max.is_some_and(|m| *n >= m) {
            if *n == 0 {
                counts.remove(user);
            }
            return None;
        }
        *n += 1;
        Some(UserSlot { counts: self.per_user.clone(), user: user.to_string() })
    }

    /// Ends every logged-in session for which `stale(user, fingerprint)` holds (after its
    /// current statement: the session sees the close between commands); returns how many.
    pub fn end_where(&self, stale: impl Fn(&str, u64) -> bool) -> usize {
        let map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        let mut ended = 0;
        for ctl in map.values() {
            let login = ctl.login.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if !login.user.is_empty() && stale(&login.user, login.fingerprint) {
                ctl.end_session();
                ended += 1;
            }
        }
        ended
    }

    /// Sessions that may still act on a config older than `version`: a command running on
    /// one (or whose snapshot is being taken), or a transaction begun under one. 0 means
    /// everything decided before `version` became live has finished — what `pause_writes`'
    /// acknowledgement in the fleet registry needs before a reshard's final copy.
    ///
    /// Sound without a lock: a session stores [`LOADING`] before it loads the snapshot (both
    /// sequentially consistent), so a session seen waiting (0) takes a snapshot no older than
    /// the one live when this ran.
    pub fn settled_since(&self, version: u64) -> usize {
        let map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        map.values()
            .filter(|c| {
                let serving = c.serving.load(Ordering::SeqCst);
                let txn = c.txn_from.load(Ordering::SeqCst);
                (serving != 0 && serving < version) || serving == LOADING || (txn != 0 && txn < version)
            })
            .count()
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// True when no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Control {
    /// Ends the session after its current statement (`KILL CONNECTION`, `SLUICE KILL`, a
    /// reload that removed its user).
    pub fn end_session(&self) {
        self.ended.cancel();
        self.close.cancel();
    }

    /// The session waits for its client's next command.
    pub fn waiting(&self) {
        self.serving.store(0, Ordering::SeqCst);
    }

    /// A command was read; its snapshot is about to be taken.
    pub fn loading(&self) {
        self.serving.store(LOADING, Ordering::SeqCst);
    }

    /// The command runs on config `version`.
    pub fn serving(&self, version: u64) {
        self.serving.store(version, Ordering::Release);
    }

    /// A transaction began (under config `version`), or (`None`) ended.
    pub fn transaction(&self, version: Option<u64>) {
        self.txn_from.store(version.unwrap_or(0), Ordering::SeqCst);
    }

    /// True when only shutdown (not [`Control::end_session`]) asked the session to close: it
    /// may finish an open transaction first, within `shutdown_timeout_ms`.
    pub fn only_draining(&self) -> bool {
        self.shutdown.is_cancelled() && !self.ended.is_cancelled()
    }

    /// Records who logged in, and the backend login its statements run under.
    pub fn logged_in(&self, user: &str, fingerprint: u64, backend_user: &str, backend_password: &str) {
        *self.login.lock().unwrap_or_else(|p| p.into_inner()) = Login {
            user: user.to_string(),
            fingerprint,
            backend_user: backend_user.to_string(),
            backend_password: backend_password.to_string(),
        };
    }

    /// The user it is logged in as ("" before login).
    pub fn user(&self) -> String {
        self.login.lock().unwrap_or_else(|p| p.into_inner()).user.clone()
    }

    fn activity_mut(&self) -> std::sync::MutexGuard<'_, Activity> {
        self.activity.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the client connects from.
    pub fn connected_from(&self, peer: std::net::SocketAddr) {
        self.activity_mut().peer = Some(peer);
    }

    /// A statement begins (`statement`: its text, or the client's packet holding it), with the
    /// session's schema and pins as the previous statement left them.
    ///
    /// # Performance
    /// One lock nobody else takes but an operator's SHOW, a copy of at most
    /// [`ACTIVITY_TEXT`] bytes into a buffer that stops growing, and the schema
    /// copied only when it changed; the end of the statement is one store.
    pub fn statement_began(&self, statement: &[u8], at: Instant, schema: Option<&str>, pinned: u16) {
        let nanos = at.saturating_duration_since(epoch()).as_nanos() as u64 + 1;
        self.since.store(nanos, Ordering::Relaxed);
        let mut a = self.activity_mut();
        a.statement.clear();
        a.statement.extend_from_slice(&statement[..statement.len().min(ACTIVITY_TEXT)]);
        if a.schema.as_deref() != schema {
            a.schema = schema.map(str::to_string);
        }
        a.pinned = pinned;
    }

    /// The statement ended.
    pub fn statement_ended(&self) {
        self.since.store(0, Ordering::Relaxed);
    }

    /// A copy of what it is doing.
    pub fn activity(&self) -> Activity {
        let mut a = self.activity_mut().clone();
        let since = self.since.load(Ordering::Relaxed);
        a.since = (since > 0).then(|| epoch() + Duration::from_nanos(since - 1));
        a
    }

    /// True when the session is logged in as `user`.
    pub fn is_user(&self, user: &str) -> bool {
        self.login.lock().unwrap_or_else(|p| p.into_inner()).user == user
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A statement starts on `thread` of `backend`.
    ///
    /// # Performance
    /// One uncontended lock per statement start and end (nobody else takes it but a KILL),
    /// and no reference-count traffic while the session stays on one backend.
    pub fn begin(&self, backend: &Arc<Backend>, thread: u32) {
        let mut r = self.running();
        if !r.backend.as_ref().is_some_and(|b| Arc::ptr_eq(b, backend)) {
            r.backend = Some(backend.clone());
        }
        r.thread = Some(thread);
        r.connection_killed = false;
    }

    /// The statement ended. True when a kill aimed at it is still in flight, or was a `KILL
    /// CONNECTION`: the caller must [`Control::settle`] before its connection runs anything
    /// else (and discards it when that says false).
    pub fn end(&self) -> bool {
        let mut r = self.running();
        r.thread = None;
        r.kill_in_flight || r.connection_killed
    }

    /// True once a `KILL CONNECTION` was sent for the session's current statement: a backend
    /// that then goes away was killed, not lost.
    pub fn connection_killed(&self) -> bool {
        self.running().connection_killed
    }

    /// Waits until no kill is in flight, up to `limit`; false if one still is, or if the
    /// kill ended the connection (the caller then discards the connection).
    pub async fn settle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.running().kill_in_flight {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        !self.running().connection_killed
    }

    /// Interrupts the running statement, if any: `KILL QUERY <thread>` (or `KILL CONNECTION`,
    /// see [`Scope`]) on a new connection to its backend, with the session's backend login.
    pub async fn kill(&self, connect_timeout_ms: u64, scope: Scope) -> Result<Killed, BackendError> {
        let (backend, thread) = {
            let mut r = self.running();
            let (Some(b), Some(t)) = (r.backend.clone(), r.thread) else { return Ok(Killed::Idle) };
            r.kill_in_flight = true;
            r.connection_killed |= scope == Scope::Connection;
            (b, t)
        };
        let Login { backend_user: user, backend_password: password, .. } =
            self.login.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let opts = ConnectOptions {
            addr: backend.addr.clone(),
            user,
            password,
            found_rows: false,
            connect_timeout_ms,
            tls: backend.tls.clone(),
            // One statement, then closed: bounded by its own timeout.
            keepalive_s: 0,
        };
        let limit = Duration::from_millis(connect_timeout_ms.saturating_mul(2).max(100));
        let result = match tokio::time::timeout(limit, kill_thread(&opts, thread, scope)).await {
            Ok(r) => r,
            Err(_) => Err(BackendError::ConnectTimeout(connect_timeout_ms)),
        };
        self.running().kill_in_flight = false;
        result.map(|()| Killed::Statement)
    }
}

/// Sends `KILL QUERY thread` (or `KILL CONNECTION thread`) to a backend on a connection of
/// its own. An unknown thread (the statement ended and the connection closed meanwhile) is
/// not an error.
pub async fn kill_thread(opts: &ConnectOptions, thread: u32, scope: Scope) -> Result<(), BackendError> {
    let mut conn = connect(opts).await?;
    let what = match scope {
        Scope::Query => "QUERY",
        Scope::Connection => "CONNECTION",
    };
    match conn.query(&format!("KILL {what} {thread}")).await {
        Ok(_) => Ok(()),
        Err(BackendError::Server(e)) if e.code == 1094 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pause's acknowledgement waits for commands running on an older config and for
    /// transactions begun under one; sessions waiting for their client do not hold it up.
    #[test]
    fn settled_since_counts_what_an_older_config_still_runs() {
        let (r, t) = (Registry::default(), CancellationToken::new());
        let (a, b, c) = (r.register(&t), r.register(&t), r.register(&t));
        a.serving(3);
        b.waiting();
        c.loading();
        assert_eq!(r.settled_since(4), 2, "a runs on version 3, c is taking its snapshot");
        c.serving(4);
        a.waiting();
        assert_eq!(r.settled_since(4), 0);
        b.transaction(Some(3));
        assert_eq!(r.settled_since(4), 1, "b's transaction began under version 3");
        assert_eq!(r.settled_since(3), 0);
        b.transaction(None);
        assert_eq!(r.settled_since(4), 0);
    }

    #[test]
    fn ids_are_unique_among_live_sessions_across_wraparound() {
        let r = Registry::default();
        let t = CancellationToken::new();
        let a = r.register(&t);
        let b = r.register(&t);
        assert_ne!(a.id, b.id);
        assert_ne!(a.id, 0);
        // Wrap the counter onto the live ids.
        r.next.store(u32::MAX - 1, Ordering::Relaxed);
        let c = r.register(&t);
        assert_eq!(c.id, u32::MAX);
        let d = r.register(&t);
        assert!(d.id != 0 && d.id != a.id && d.id != b.id, "{}", d.id);
        assert_eq!(r.len(), 4);
        r.unregister(a.id);
        assert!(r.get(a.id).is_none());
        assert!(r.get(b.id).is_some());
        // KILL CONNECTION of one session does not end the others.
        b.end_session();
        assert!(!c.close.is_cancelled());
        assert!(!b.only_draining());
        t.cancel();
        assert!(d.close.is_cancelled());
        assert!(d.only_draining(), "shutdown alone lets a transaction finish");
        assert!(!b.only_draining(), "a killed session ends even during shutdown");
    }
}
