//! One client connection, from greeting to quit.
//!
//! [`serve`] authenticates, then [`Session::run`] loops: read a command, dispatch it to one of
//! the handlers in [`commands`], flush. Each handler that needs a backend goes through
//! [`Session::execute`]: route, lease (or reuse the pinned connection), send, relay, learn,
//! release.

mod checkout;
pub mod client;
mod commands;
pub mod connect;
mod deadlines;
mod ending;
pub mod error;
mod failure;
mod lease;
mod observe;
pub mod pin;
mod plan;
mod readback;
pub mod reads;
pub mod relay;
pub mod state;
mod txn;
mod welcome;
mod xa;

use crate::backend::{BackendError, ConnState};
use crate::config::Consistency;
use crate::protocol::com;
use crate::protocol::err::ErrPacket;
use crate::protocol::response::{Expect, ResponseScanner};
use crate::protocol::ProtocolError;
use crate::router::decide::{SessionView, TargetShard};
use crate::router::found_rows::Found;
use crate::router::{Analysis, Dest, Feature, Kind, Role, Route};
use crate::shared::{Shared, Snapshot};
use crate::topology::Backend;
use bytes::Bytes;
use checkout::PoolCache;
use client::ClientConn;
use connect::Login;
use error::SessionError;
use lease::Lease;
use pin::Pins;
use relay::RelayError;
use state::SessionState;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long a session waits, after its statement ended, for a kill aimed at that statement to
/// land before it gives up the connection instead.
const KILL_SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

/// What the loop does after a command.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Quit,
}

/// How one attempt at a statement ended.
enum Attempt {
    /// The response was relayed.
    Done(ResponseScanner),
    /// No connection could be had (nothing was sent to the client yet).
    NoLease(ErrPacket),
    /// The relay failed.
    Relay(RelayError),
}

/// A logged-in client.
pub struct Session {
    shared: Arc<Shared>,
    /// The configuration and topology the current command runs on: taken at the start of
    /// each command when a reload published a newer one ([`Session::refresh_snapshot`]), so
    /// everything one statement decides and resolves comes from one snapshot.
    snap: Arc<Snapshot>,
    /// This session in the registry: its connection id, and what KILL may do to it.
    ctl: Arc<crate::sessions::Control>,
    client: ClientConn,
    login: Login,
    state: SessionState,
    /// The connection kept while pinned.
    lease: Option<Lease>,
    /// Consistency level and monotonic-read history.
    reads: reads::Reads,
    /// Pin reasons last reported to the metrics gauge.
    reported_pins: Pins,
    /// Pools this session has used, for the current snapshot and login.
    pools: PoolCache,
    /// The session's prepared statements, by the ids Sluice gave the client.
    stmts: commands::Statements,
    /// Statement id to give the client in the PREPARE_OK of the command being relayed.
    prepare_as: Option<u32>,
    /// What the last statement left for `SHOW WARNINGS` (see `commands::warnings`).
    warnings: Option<commands::Warnings>,
    /// The other branches of the XA transaction in progress (`[sharding] cross_shard = "xa"`;
    /// see `xa`), parked while the session's connection serves one shard.
    parked: xa::Parked,
    /// This session counted against its user's `max_connections` (set at login and at
    /// COM_CHANGE_USER).
    user_slot: Option<crate::sessions::UserSlot>,
    /// Sequence id the response to the current command starts with: one past the last frame
    /// of the command (a command over 16 MiB spans several frames).
    seq: u8,
    /// Where the current statement went and what it returned, for the statistics.
    note: observe::Note,
    /// What the result cache needs of this session's writes.
    cache: commands::CacheMarks,
}

/// Serves one accepted client connection until it quits, fails, or shutdown begins.
pub async fn serve(
    shared: Arc<Shared>,
    stream: crate::tls::ClientStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    let registered = Registered::new(&shared, &shutdown);
    let ctl = registered.ctl.clone();
    ctl.connected_from(peer);
    let id = ctl.id;
    let span = tracing::info_span!("session", id, %peer);
    async move {
        let max_packet = shared.load().config.proxy.max_allowed_packet;
        let mut client = ClientConn::new(stream, peer, client::PRE_AUTH_MAX_PACKET.min(max_packet));
        let limit = std::time::Duration::from_millis(shared.load().config.proxy.handshake_timeout_ms);
        let (login, seq) = match tokio::time::timeout(limit, connect::handshake(&mut client, &shared, id)).await {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "login did not complete");
                return;
            }
            Err(_) => {
                // Connected and silent, or trickling bytes: the slot and socket are freed.
                shared.metrics.client_timeouts[0].inc();
                tracing::debug!(?limit, "login did not complete within handshake_timeout_ms; closing");
                return;
            }
        };
        client.set_max_packet(max_packet);
        {
            let p = &shared.load().config.proxy;
            client.set_write_timeout(std::time::Duration::from_millis(p.client_write_timeout_ms));
            client.set_read_timeout(std::time::Duration::from_millis(p.client_read_timeout_ms));
        }
        {
            let u = &login.user;
            let backend_user = u.backend_user.as_deref().unwrap_or(u.name.get_ref());
            ctl.logged_in(u.name.get_ref(), u.fingerprint(), backend_user, &login.backend_password());
        }
        let collation = crate::protocol::charset::by_id(login.collation);
        let initial = ConnState {
            schema: login.database.clone(),
            vars: collation.vars(),
            multi_statements: client.has(crate::protocol::caps::MULTI_STATEMENTS),
            last_insert_id: 0,
        };
        let user = login.user.name.get_ref().clone();
        let mut s = Session {
            snap: shared.load_full(),
            shared,
            ctl,
            client,
            login,
            state: SessionState::new(initial),
            lease: None,
            reads: Default::default(),
            reported_pins: Pins::default(),
            pools: PoolCache::default(),
            stmts: Default::default(),
            prepare_as: None,
            warnings: None,
            parked: Default::default(),
            user_slot: None,
            seq: 1,
            note: Default::default(),
            cache: Default::default(),
        };
        if !s.welcome(seq).await {
            return;
        }
        tracing::info!(%user, "client connected");
        let why = s.run().await;
        s.close().await;
        tracing::info!(%user, reason = why, "client disconnected");
        drop(registered);
    }
    .instrument(span)
    .await
}

/// A session's entry in the registry, removed however the session ends.
struct Registered {
    shared: Arc<Shared>,
    ctl: Arc<crate::sessions::Control>,
}

impl Registered {
    fn new(shared: &Arc<Shared>, shutdown: &CancellationToken) -> Registered {
        Registered { shared: shared.clone(), ctl: shared.sessions.register(shutdown) }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.shared.sessions.unregister(self.ctl.id);
    }
}

impl Session {
    /// The command loop.
    async fn run(&mut self) -> &'static str {
        let (close, ended) = (self.ctl.close.clone(), self.ctl.ended.clone());
        // Shutdown began: the session goes on serving until it is outside a transaction (or
        // the process's drain timeout passes), then closes (see `next_while_draining`).
        let mut finishing = false;
        // The last pass answered a command (its answer is still queued).
        let mut answered = false;
        loop {
            // The drain may have begun during the last command. The shared flag first: a
            // cancellation token's state is behind a lock (the root token's is shared by all
            // sessions), so it is asked only once the drain is on.
            if !finishing && self.shared.draining.load(std::sync::atomic::Ordering::Relaxed) {
                finishing = self.ctl.only_draining();
            }
            let just_answered = std::mem::take(&mut answered);
            let mut ready = None;
            // In a transaction as the client sees it: a held `BEGIN` counts.
            if finishing && !self.state.txn().client_in_trans() {
                match self.next_while_draining(just_answered).await {
                    Ok(p) => ready = Some(p),
                    Err(why) => return why,
                }
            }
            if let Err(e) = self.client.flush().await {
                return self.write_failed(&e);
            }
            let idle = self.idle_limit();
            let idle_out = async move {
                match idle {
                    Some((d, _)) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            self.ctl.waiting();
            let packet = if let Some(p) = ready {
                p
            } else {
                tokio::select! {
                    biased;
                    _ = close.cancelled(), if !finishing => {
                        if self.ctl.only_draining() {
                            finishing = true;
                            continue;
                        }
                        return "killed";
                    }
                    _ = ended.cancelled(), if finishing => return "killed",
                    () = idle_out => {
                        let in_transaction = idle.is_some_and(|(_, t)| t);
                        self.shared.metrics.client_timeouts[if in_transaction { 2 } else { 1 }].inc();
                        return if in_transaction {
                            "idle in a transaction past idle_in_transaction_timeout_s (rolled back)"
                        } else {
                            "idle past wait_timeout / idle_timeout_s"
                        };
                    }
                    p = self.client.read_packet() => p,
                }
            };
            let payload = match packet {
                Ok(Some(p)) => {
                    self.seq = p.seq.wrapping_add(1);
                    p.payload
                }
                Ok(None) => return "client closed the connection",
                Err(ProtocolError::TooLarge { .. }) => {
                    self.client.put_err(1, &ErrPacket::packet_too_large());
                    let _ = self.client.flush().await;
                    return "packet too large";
                }
                Err(ProtocolError::Stalled(_)) => {
                    self.shared.metrics.client_timeouts[4].inc();
                    return "the rest of a packet did not arrive within client_read_timeout_ms";
                }
                Err(_) => return "client protocol error",
            };
            self.ctl.loading();
            match self.dispatch(payload).await {
                Ok(Flow::Continue) => {}
                Ok(Flow::Quit) => return "COM_QUIT",
                Err(SessionError::ClientIo(e)) => return self.write_failed(&e),
                Err(SessionError::ClientGone) => return "client connection lost",
                Err(e) => {
                    tracing::warn!(error = %e, "closing client connection");
                    return "error";
                }
            }
            answered = true;
            self.report_pins();
        }
    }

    /// Takes the newest snapshot if a reload published one since the last command (one
    /// pointer comparison otherwise: no reference count changes per statement).
    fn refresh_snapshot(&mut self) {
        let current = self.shared.load();
        if !Arc::ptr_eq(&current, &self.snap) {
            self.snap = arc_swap::Guard::into_inner(current);
        }
    }

    /// One command.
    async fn dispatch(&mut self, payload: Bytes) -> Result<Flow, SessionError> {
        self.refresh_snapshot();
        self.ctl.serving(self.snap.version);
        use crate::protocol::command::{decode, ClientCommand as C, Malformed};
        let cmd = match decode(&payload) {
            Ok(cmd) => cmd,
            Err(Malformed::Empty) => {
                return Err(SessionError::Protocol(ProtocolError::Malformed("empty command packet")))
            }
            Err(Malformed::Answer(e)) => {
                self.client.put_err(self.seq, &e);
                return Ok(Flow::Continue);
            }
        };
        if matches!(cmd, C::Query | C::StmtExecute { .. } | C::StmtPrepare) && self.shared.pause.is_paused() {
            let limit = std::time::Duration::from_millis(self.snap.config.admin.pause_timeout_ms);
            if !self.shared.pause.wait(limit).await {
                self.client.put_err(self.seq, &ErrPacket::paused(limit.as_millis() as u64));
                return Ok(Flow::Continue);
            }
        }
        match cmd {
            C::Quit => return Ok(Flow::Quit),
            C::Query => commands::query(self, payload).await?,
            C::Ping => commands::ping(self),
            C::ProcessKill { id } => commands::process_kill(self, id).await?,
            C::InitDb => self.execute(payload, Expect::Simple, None, None).await.map(|_| ())?,
            C::FieldList => self.execute(payload, Expect::FieldList, None, None).await.map(|_| ())?,
            C::Statistics => self.execute(payload, Expect::Statistics, None, None).await.map(|_| ())?,
            C::SetOption { option } => commands::set_option(self, option, payload).await?,
            C::ResetConnection => commands::reset_connection(self).await,
            C::ChangeUser => commands::change_user(self, payload).await?,
            C::StmtPrepare => commands::stmt_prepare(self, payload).await?,
            C::StmtExecute { id, flags } => commands::stmt_execute(self, id, flags, payload).await?,
            C::StmtFetch { id } => commands::stmt_fetch(self, id, payload).await?,
            C::StmtReset { id } => commands::stmt_reset(self, id, payload).await?,
            C::StmtSendLongData { id } => commands::stmt_long_data(self, id, payload).await?,
            C::StmtClose { id } => commands::stmt_close(self, id).await,
            C::Unknown(other) => {
                self.client.put_err(self.seq, &ErrPacket::unknown_command(other));
            }
        }
        Ok(Flow::Continue)
    }

    /// Runs one command on a backend and relays its response: the path every statement takes.
    /// Returns the scanner of a completed response, or `None` when the client was answered
    /// with an error instead.
    ///
    /// `shard` is where the sharding rules sent the statement (else the held connection, or
    /// the default shard).
    ///
    /// A read whose replica fails before anything reached the client (no connection, or the
    /// connection died before the first byte of the answer) is tried once more elsewhere.
    async fn execute(
        &mut self,
        payload: Bytes,
        expect: Expect,
        analysis: Option<&Analysis<'_>>,
        shard: Option<TargetShard>,
    ) -> Result<Option<ResponseScanner>, SessionError> {
        let started = Instant::now();
        let mut route = match self.plan(analysis, shard, None) {
            Ok(r) => r,
            Err(e) => {
                self.answer_error(&e);
                return Ok(None);
            }
        };
        if route.role == Role::Replica && self.lease.is_some() && analysis.is_some_and(|a| !a.allowed_on_replica()) {
            // Held on a replica (a read-only transaction): a write must not run there.
            let in_trans = self.state.txn().pins();
            self.answer_error(&ErrPacket::write_on_replica(in_trans));
            return Ok(None);
        }
        // Only a plain text-protocol read that holds no session state may move.
        let retryable = self.lease.is_none()
            && !self.state.pins().any()
            && payload.first() == Some(&com::QUERY)
            && analysis.is_some_and(|a| matches!(a.kind, Kind::Read | Kind::ReadOnlyTransaction));
        let mut failed: Option<Arc<Backend>> = None;
        loop {
            let attempt = self.attempt(&payload, expect, analysis, route).await?;
            let failure_is_clean = match &attempt {
                Attempt::NoLease(_) => true,
                // A statement given up at its deadline has used its time: not run again.
                Attempt::Relay(RelayError::Backend { clean: true, seq, error }) => {
                    *seq == self.seq && !matches!(error, BackendError::Deadline(_))
                }
                _ => false,
            };
            if route.role == Role::Replica && retryable && failed.is_none() && failure_is_clean {
                let backend = match self.pool_for(route) {
                    Ok((_, b)) => b,
                    Err(e) => {
                        if let Some(mut l) = self.lease.take() {
                            l.mark_broken();
                        }
                        self.answer_error(&e);
                        return Ok(None);
                    }
                };
                tracing::info!(addr = %backend.addr, "read failed on a replica before answering; retrying elsewhere");
                if let Some(mut l) = self.lease.take() {
                    l.mark_broken();
                }
                match self.plan(analysis, shard, Some(&backend)) {
                    Ok(r) => route = r.because(Dest::Retry),
                    Err(_) => route = Route::primary(route.shard).because(Dest::Retry),
                }
                failed = Some(backend);
                continue;
            }
            let scanner = match attempt {
                Attempt::Done(s) => s,
                Attempt::NoLease(e) => {
                    self.answer_error(&e);
                    return Ok(None);
                }
                Attempt::Relay(e) => return self.relay_failed(e, route).await,
            };
            self.finish(&scanner, analysis, route, started).await;
            return Ok(Some(scanner));
        }
    }

    /// One try at a statement on `route`: lease, send, relay.
    async fn attempt(
        &mut self,
        payload: &Bytes,
        expect: Expect,
        analysis: Option<&Analysis<'_>>,
        route: Route,
    ) -> Result<Attempt, SessionError> {
        let want_lii = self.state.want.last_insert_id;
        let limit = self.statement_limit();
        if let Err(e) = self.ensure_lease(route).await {
            return Ok(Attempt::NoLease(e));
        }
        // The transaction starts here, on the connection its first statement landed on.
        let begin = self.state.txn().held().cloned().map(|held| self.begin_statement(route.shard, &held));
        let conn = self.lease.as_mut().expect("ensure_lease sets the lease");
        if let Some((begin, gtrid)) = begin {
            if let Err(e) = conn.query(&begin).await {
                self.state.txn_mut().end();
                let err = match e {
                    crate::backend::BackendError::Server(err) => err,
                    other => {
                        let shard = self.snap.topology.shard_name(route.shard).to_string();
                        ErrPacket::backend_unavailable(route.role.as_str(), &shard, &other.to_string())
                    }
                };
                return Ok(Attempt::NoLease(err));
            }
            self.state.txn_mut().opened(gtrid);
        }
        if analysis.is_some_and(|a| a.features.has(Feature::LastInsertId)) && conn.state.last_insert_id != want_lii {
            // LAST_INSERT_ID() lives on the connection: make this one return the session's.
            let _ = conn.query(&format!("DO LAST_INSERT_ID({want_lii})")).await;
        }
        // While it runs, KILL QUERY of this session's id reaches this backend thread.
        self.ctl.begin(&conn.backend, conn.id);
        let result = match conn.send_command(payload).await {
            Ok(()) => {
                let deadline = limit.map(|limit| relay::Deadline {
                    limit,
                    ctl: &self.ctl,
                    connect_timeout_ms: self.snap.config.pool.connect_timeout_ms,
                    killed: &self.shared.metrics.statement_timeouts,
                });
                relay::relay_by(&mut self.client, conn, expect, self.seq, self.prepare_as.take(), deadline).await
            }
            Err(error) => Err(RelayError::Backend { error, clean: true, seq: self.seq }),
        };
        if let Err(RelayError::ClientHungUp) = result {
            // Nobody will read the answer: stop the statement (it may hold locks) and drop
            // the connection, which is mid-response.
            let timeout = self.snap.config.pool.connect_timeout_ms;
            if let Err(e) = self.ctl.kill(timeout, crate::sessions::Scope::Connection).await {
                tracing::warn!(error = %e, "could not stop the statement of a client that hung up");
            }
            conn.mark_broken();
        }
        if self.ctl.end() && !self.ctl.settle(KILL_SETTLE).await {
            // A kill aimed at the statement that just ended has not landed: it must not land
            // on whatever this connection runs next.
            conn.mark_broken();
        }
        Ok(match result {
            Ok(s) => Attempt::Done(s),
            Err(e) => Attempt::Relay(e),
        })
    }

    /// After a relayed response: learn from it, release the connection, count it.
    async fn finish(
        &mut self,
        scanner: &ResponseScanner,
        analysis: Option<&Analysis<'_>>,
        route: Route,
        started: Instant,
    ) {
        self.state.absorb(scanner, analysis);
        if analysis.is_some_and(|a| a.features.has(Feature::SetGlobal)) && scanner.error.is_none() {
            self.shared.globals_epoch.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(a) = analysis.filter(|a| scanner.error.is_none() && readback::needed(a)) {
            if let Some(conn) = self.lease.as_mut() {
                if let Err(e) = readback::after_statement(conn, &mut self.state, a).await {
                    // The connection's state is no longer known: it must not serve anyone.
                    tracing::warn!(error = %e, "read-back after a statement failed; discarding the connection");
                    conn.mark_broken();
                }
            }
        }
        if let Some(a) = analysis
            .filter(|a| scanner.error.is_none() && (a.found != Found::Sent || a.features.has(Feature::CalcFoundRows)))
        {
            if let Some(conn) = self.lease.as_mut() {
                readback::found_rows(conn, &mut self.state, a, scanner.had_result_set, scanner.rows).await;
            }
        }
        // Keep what SHOW WARNINGS would show: the connection is about to go back to the pool.
        // After an error the server's list may hold warnings raised before it too (an ERR
        // packet carries no count), so it is read as well; a pinned session asks its own
        // connection instead.
        let ask = (scanner.error.is_some() || scanner.warnings > 0) && !self.state.pins().any();
        let kept = match self.lease.as_mut().filter(|_| ask) {
            Some(conn) => conn.query("SHOW WARNINGS").await.ok().map(commands::Warnings::from_server),
            None => None,
        };
        self.warnings = kept.or_else(|| scanner.error.as_ref().map(commands::Warnings::from_error));
        // A prepared statement that is not kept for reuse has run; one a cursor or long
        // data still needs is closed after a later statement here.
        if let Some(conn) = self.lease.as_mut().filter(|_| !self.state.pins().has(pin::PinReason::PreparedStatement)) {
            if conn.close_used_once().await.is_err() {
                conn.mark_broken();
            }
        }
        let kind = analysis.map_or(Kind::Other, |a| a.kind);
        // Monotonic reads cover the reads routing may send to a replica; a read kept on the
        // primary for its own reasons (system variables, locks, hints) does not move the floor.
        if analysis.is_some_and(|a| a.replica_ok()) && self.consistency() == Consistency::Monotonic {
            if let Some(l) = &self.lease {
                self.reads.read_on(&l.backend);
            }
        }
        let ended = Instant::now();
        self.note.relayed(route, self.lease.as_ref().map(|l| l.backend.clone()), scanner, ended);
        self.release();
        let m = &self.shared.metrics;
        m.routed[route.dest.index()][kind.metric_index()].inc();
        m.by_role[route.role.index()].seconds.observe(ended.saturating_duration_since(started).as_secs_f64());
    }

    /// What the statement decision needs to know of this session.
    fn view(&self) -> SessionView {
        SessionView {
            held: self.lease.as_ref().map(|l| l.route.shard),
            begin_held: self.state.txn().held().is_some(),
            xa: self.state.txn().xa().is_some(),
            connection_id: self.ctl.id,
            fingerprint: self.snap.config.stats.enabled,
            socket: self.shared.client_socket.get().copied(),
        }
    }

    /// Returns the connection to its pool unless the session is pinned.
    fn release(&mut self) {
        if !self.state.pins().any() {
            self.lease = None;
        }
    }
}
