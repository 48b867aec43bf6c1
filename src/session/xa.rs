//! The session's side of cross-shard transactions (`[sharding] cross_shard = "xa"`; the
//! protocol is described in [`crate::xa`]).
//!
//! The held-back `BEGIN` becomes `XA START` on the first shard's connection. A statement for
//! another shard parks the current connection and starts (or resumes) that shard's branch, so
//! each shard's part runs on one connection of its own. COMMIT and ROLLBACK are Sluice's to
//! run: the client's statement never reaches a backend as such.

use super::lease::Lease;
use super::Session;
use crate::metrics::XaOutcome;
use crate::protocol::err::ErrPacket;
use crate::protocol::ok::OkPacket;
use crate::router::decide::TxnEnd as End;
use crate::router::Route;
use crate::xa::{self, Decision};

/// The branches of the XA transaction in progress other than the session's current lease,
/// parked while another shard runs (the transaction itself is the session's
/// [`super::txn::Txn::Xa`]).
#[derive(Default)]
pub(super) struct Parked(Vec<Lease>);

impl Drop for Parked {
    /// A transaction abandoned with branches still open (the session failed mid-way): their
    /// connections are closed, never pooled, so each server rolls its branch back.
    fn drop(&mut self) {
        for l in &mut self.0 {
            l.mark_broken();
        }
    }
}

impl Session {
    /// The statement that opens the held-back transaction on `shard`: `XA START` with a new
    /// global id in XA mode (returned with it), else the client's own `BEGIN`.
    pub(super) fn begin_statement(&mut self, shard: usize, held: &[u8]) -> (String, Option<String>) {
        let snap = &self.snap;
        if !snap.topology.sharding.as_ref().is_some_and(|sh| sh.xa) {
            return (String::from_utf8_lossy(held).into_owned(), None);
        }
        let gtrid = self.shared.xa.new_gtrid();
        let sql = format!("XA START {}", xa::xid_sql(&gtrid, snap.topology.shard_name(shard), shard));
        (sql, Some(gtrid))
    }

    /// Makes the session's connection the one for `target` before a statement for that
    /// shard runs. Nothing held: nothing to do. Held on another shard: in an XA transaction,
    /// that shard's branch is resumed or started; otherwise refused (nothing was sent).
    pub(super) async fn enter_shard(&mut self, target: usize) -> Result<(), ErrPacket> {
        let Some(held) = self.lease.as_ref().map(|l| l.route.shard) else { return Ok(()) };
        if held == target {
            return Ok(());
        }
        let snap = self.snap.clone();
        let (a, b) = (snap.topology.shard_name(held), snap.topology.shard_name(target));
        let Some(gtrid) = self.state.txn().xa() else {
            return Err(ErrPacket::unsupported(&format!(
                "a transaction on shard '{a}' touching shard '{b}' (cross-shard transactions are refused; nothing was sent)"
            )));
        };
        let start = format!("XA START {}", xa::xid_sql(gtrid, b, target));
        let parked = &mut self.parked.0;
        parked.push(self.lease.take().expect("held above"));
        if let Some(i) = parked.iter().position(|l| l.route.shard == target) {
            self.lease = Some(parked.swap_remove(i));
            return Ok(());
        }
        let started = match self.ensure_lease(Route::primary(target)).await {
            Ok(()) => {
                let conn = self.lease.as_mut().expect("ensure_lease sets the lease");
                super::error::own_query(conn, &start, b).await.map(|_| ())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = started {
            // The transaction carries on where it was.
            self.lease = self.parked.0.pop();
            return Err(e);
        }
        Ok(())
    }

    /// COMMIT / ROLLBACK of an XA transaction: answers the client.
    pub(super) async fn end_xa(&mut self, end: End) {
        let outcome = self.close_xa(end).await;
        let m = &self.shared.metrics.xa;
        match outcome {
            Ok(o) => {
                m[o as usize].inc();
                self.client.put_ok(self.seq, &OkPacket::with_status(self.state.status()));
            }
            Err(e) => {
                m[XaOutcome::Aborted as usize].inc();
                self.client.put_err(self.seq, &e);
            }
        }
    }

    /// Session end or reset inside an XA transaction: every branch is rolled back.
    pub(super) async fn abandon_xa(&mut self) {
        if self.state.txn().xa().is_some() {
            let _ = self.close_xa(End::Rollback).await;
            self.shared.metrics.xa[XaOutcome::RolledBack as usize].inc();
        }
    }

    /// Ends the transaction on every branch. Afterwards the branches' connections are
    /// ordinary again and go back to their pools (or are closed, if a step failed on them).
    async fn close_xa(&mut self, end: End) -> Result<XaOutcome, ErrPacket> {
        let Some(gtrid) = self.state.txn().xa().map(str::to_string) else { return Ok(XaOutcome::RolledBack) };
        let mut branches: Vec<Lease> = std::mem::take(&mut self.parked.0);
        branches.extend(self.lease.take());
        self.state.txn_mut().end();
        let snap = self.snap.clone();
        let xid = |l: &Lease| {
            let i = l.route.shard;
            xa::xid_sql(&gtrid, snap.topology.shard_name(i), i)
        };
        let name = |l: &Lease| snap.topology.shard_name(l.route.shard).to_string();
        if end == End::Commit {
            return self.commit(&gtrid, &mut branches, &xid, &name).await;
        }
        for l in &mut branches {
            let id = xid(l);
            let _ = run(l, &format!("XA END {id}")).await;
            if run(l, &format!("XA ROLLBACK {id}")).await.is_err() {
                l.mark_broken();
            }
        }
        Ok(XaOutcome::RolledBack)
    }

    /// The commit protocol (see [`crate::xa`]). `Err` is the client's answer after everything
    /// was rolled back.
    async fn commit(
        &mut self,
        gtrid: &str,
        branches: &mut [Lease],
        xid: &(dyn Fn(&Lease) -> String + Sync),
        name: &(dyn Fn(&Lease) -> String + Sync),
    ) -> Result<XaOutcome, ErrPacket> {
        let aborted = |what: String| {
            ErrPacket::new(1402, "XA100", format!("Sluice: the cross-shard transaction was rolled back: {what}"))
        };
        if let [only] = branches {
            let id = xid(only);
            run(only, &format!("XA END {id}")).await.map_err(|e| aborted(format!("{}: {e}", name(only))))?;
            run(only, &format!("XA COMMIT {id} ONE PHASE")).await.map_err(|e| {
                only.mark_broken();
                aborted(format!("{}: {e}", name(only)))
            })?;
            return Ok(XaOutcome::OnePhase);
        }
        let shared = self.shared.clone();
        let _live = shared.xa.live(gtrid);
        let mut failed = None;
        for l in branches.iter_mut() {
            let id = xid(l);
            let r = match run(l, &format!("XA END {id}")).await {
                Ok(()) => run(l, &format!("XA PREPARE {id}")).await,
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                failed = Some(format!("prepare failed on shard '{}': {e}", name(l)));
                break;
            }
        }
        let decision = match failed {
            Some(why) => Err(why),
            None => self.record(gtrid).await,
        };
        let commit = matches!(decision, Ok(Decision::Commit));
        let verb = if commit { "COMMIT" } else { "ROLLBACK" };
        let mut pending = false;
        for l in branches.iter_mut() {
            let id = xid(l);
            // A branch still active (the failure came before its prepare) ends first.
            let _ = run(l, &format!("XA END {id}")).await;
            if let Err(e) = run(l, &format!("XA {verb} {id}")).await {
                l.mark_broken();
                pending |= commit;
                tracing::warn!(%gtrid, shard = %name(l), error = %e, "XA {verb} failed; recovery will finish the branch");
            }
        }
        match decision {
            Ok(Decision::Commit) if pending => Ok(XaOutcome::CommitPending),
            Ok(Decision::Commit) => {
                self.forget(gtrid).await;
                Ok(XaOutcome::TwoPhase)
            }
            Ok(Decision::Abort) => Err(aborted("XA recovery aborted it before the commit decision".into())),
            Err(why) => Err(aborted(why)),
        }
    }

    /// Writes the commit decision on the default shard's primary; the decision that stands.
    async fn record(&self, gtrid: &str) -> Result<Decision, String> {
        let snap = self.snap.clone();
        let Some(cfg) = snap.config.sharding.as_ref() else { return Err("sharding removed by a reload".into()) };
        let table = cfg.xa_log_table.get_ref();
        let mut conn = self.log_conn().await?;
        if !self.shared.xa.log_ready.load(std::sync::atomic::Ordering::Relaxed) {
            xa::ensure_log(&mut conn, table).await.map_err(|e| format!("XA decision table: {e}"))?;
            self.shared.xa.log_ready.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        xa::decide(&mut conn, table, gtrid, Decision::Commit).await.map_err(|e| {
            conn.mark_broken();
            format!("the commit decision could not be recorded: {e}")
        })
    }

    /// Deletes the decision of a transaction committed everywhere (best effort: recovery
    /// deletes what is left).
    async fn forget(&self, gtrid: &str) {
        let snap = self.snap.clone();
        let Some(cfg) = snap.config.sharding.as_ref() else { return };
        if let Ok(mut conn) = self.log_conn().await {
            if xa::forget(&mut conn, cfg.xa_log_table.get_ref(), gtrid).await.is_err() {
                conn.mark_broken();
            }
        }
    }

    /// A connection to the default shard's primary with the `[monitor]` account.
    async fn log_conn(&self) -> Result<crate::backend::pool::PooledConn, String> {
        let snap = self.snap.clone();
        let writer = snap.topology.default().writer();
        let pool = writer.pool(&snap.config.monitor.user, &snap.config.monitor.password, false);
        crate::backend::lease::checkout(&pool, &crate::backend::ConnState::pooled(), 0)
            .await
            .map_err(|e| format!("XA decision log unreachable: {e}"))
    }
}

/// One statement of the protocol on a branch's connection.
async fn run(l: &mut Lease, sql: &str) -> Result<(), String> {
    l.query(sql).await.map(|_| ()).map_err(|e| e.to_string())
}
