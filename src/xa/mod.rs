//! Cross-shard transactions as XA two-phase commit (`[sharding] cross_shard = "xa"`).
//!
//! Sluice is the transaction manager. Every explicit transaction on sharded tables runs as one
//! XA global transaction: a branch per shard it touches, each `XA START`ed on the connection
//! the session holds on that shard. COMMIT with one branch is `XA COMMIT ... ONE PHASE`. With
//! several: `XA END` + `XA PREPARE` on each, then the decision is recorded in a table on the
//! default shard's primary ([`decide`]), then `XA COMMIT` on each. A prepared branch survives
//! a crash of Sluice, of its connection or of its server, so whatever is left prepared is
//! finished later by [`recovery`] according to the recorded decision — and with no decision
//! recorded, rolled back (presumed abort).
//!
//! The log row is also the single point where a decision is taken: the coordinator and
//! recovery both write it with `INSERT IGNORE` and act on whichever row is there afterwards.
//! Recovery can therefore never roll back a transaction that a coordinator is committing, or
//! the other way round, even if it looks at a transaction while it is still running.

pub mod recovery;

use crate::backend::{BackendConn, BackendError};
use std::collections::HashSet;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Every global transaction id Sluice makes starts with this; recovery touches no other.
pub const PREFIX: &str = "sluice:";

/// What happens to a global transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Commit,
    Abort,
}

impl Decision {
    fn as_str(self) -> &'static str {
        match self {
            Decision::Commit => "commit",
            Decision::Abort => "abort",
        }
    }
}

/// One branch's XA id as SQL: `X'gtrid',X'bqual'` (hex, so names need no quoting). The
/// branch qualifier is the shard's name (its topology index if the name is over 64 bytes,
/// the XA limit).
pub fn xid_sql(gtrid: &str, shard_name: &str, shard_index: usize) -> String {
    let idx;
    let bqual = if shard_name.len() <= 64 {
        shard_name
    } else {
        idx = shard_index.to_string();
        &idx
    };
    format!("X'{}',X'{}'", hex(gtrid.as_bytes()), hex(bqual.as_bytes()))
}

/// An XA id as `XA RECOVER` reports it, as SQL for `XA COMMIT` / `XA ROLLBACK`.
pub fn recovered_xid_sql(gtrid: &[u8], bqual: &[u8], format_id: u64) -> String {
    format!("X'{}',X'{}',{format_id}", hex(gtrid), hex(bqual))
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for byte in b {
        let _ = write!(s, "{byte:02x}");
    }
    s
}

/// Process-wide coordinator state: id allocation and the transactions this process is
/// committing right now (recovery leaves those alone).
pub struct Coordinator {
    /// Random per process (per coordinator), so ids of different Sluice instances in front of
    /// the same shards never collide.
    tag: u64,
    next: AtomicU64,
    live: Mutex<HashSet<String>>,
    /// The decision table exists (created once per process).
    pub log_ready: AtomicBool,
}

impl Default for Coordinator {
    fn default() -> Self {
        Coordinator {
            tag: rand::random(),
            next: AtomicU64::new(1),
            live: Default::default(),
            log_ready: Default::default(),
        }
    }
}

impl Coordinator {
    /// A new global transaction id: `sluice:<16 hex digits>:<n>` (at most 44 bytes).
    pub fn new_gtrid(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{PREFIX}{:016x}:{n}", self.tag)
    }

    /// Marks `gtrid` as being committed by this process until the guard drops.
    pub fn live(&self, gtrid: &str) -> LiveGuard<'_> {
        self.lock().insert(gtrid.to_string());
        LiveGuard { c: self, gtrid: gtrid.to_string() }
    }

    /// True while this process is committing `gtrid`.
    pub fn is_live(&self, gtrid: &str) -> bool {
        self.lock().contains(gtrid)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        match self.live.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

/// See [`Coordinator::live`].
pub struct LiveGuard<'a> {
    c: &'a Coordinator,
    gtrid: String,
}

impl Drop for LiveGuard<'_> {
    fn drop(&mut self) {
        self.c.lock().remove(&self.gtrid);
    }
}

/// Creates the decision table if it is missing.
pub async fn ensure_log(conn: &mut BackendConn, table: &str) -> Result<(), BackendError> {
    let schema = table.split_once('.').map_or("sluice", |(s, _)| s);
    conn.query(&format!("CREATE DATABASE IF NOT EXISTS `{schema}`")).await?;
    conn.query(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (gtrid VARBINARY(64) PRIMARY KEY, \
         decision ENUM('commit','abort') NOT NULL, \
         decided_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)) ENGINE=InnoDB"
    ))
    .await?;
    Ok(())
}

/// Records `want` for `gtrid` unless a decision is already there, and returns the decision
/// that stands. `gtrid` must be one of Sluice's ids (no quoting needed).
pub async fn decide(
    conn: &mut BackendConn,
    table: &str,
    gtrid: &str,
    want: Decision,
) -> Result<Decision, BackendError> {
    debug_assert!(gtrid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b':'));
    let r = conn
        .query(&format!("INSERT IGNORE INTO {table} (gtrid, decision) VALUES ('{gtrid}', '{}')", want.as_str()))
        .await?;
    if r.oks.iter().any(|o| o.affected_rows == 1) {
        return Ok(want);
    }
    let r = conn.query(&format!("SELECT decision FROM {table} WHERE gtrid = '{gtrid}'")).await?;
    match r.rows.first().and_then(|row| row.first().cloned().flatten()).as_deref() {
        Some("commit") => Ok(Decision::Commit),
        Some("abort") => Ok(Decision::Abort),
        other => Err(BackendError::Unsupported(format!("XA decision for {gtrid} unreadable: {other:?}"))),
    }
}

/// Deletes the decision of a transaction finished on every shard.
pub async fn forget(conn: &mut BackendConn, table: &str, gtrid: &str) -> Result<(), BackendError> {
    conn.query(&format!("DELETE FROM {table} WHERE gtrid = '{gtrid}'")).await.map(|_| ())
}

/// A prepared branch as `XA RECOVER` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Prepared {
    pub format_id: u64,
    pub gtrid: Vec<u8>,
    pub bqual: Vec<u8>,
}

impl Prepared {
    /// Parses one `XA RECOVER` row (formatID, gtrid_length, bqual_length, data).
    pub fn from_row(row: &[Option<String>]) -> Option<Prepared> {
        let num = |i: usize| row.get(i)?.as_deref()?.parse::<usize>().ok();
        let (format_id, gl, bl) = (num(0)? as u64, num(1)?, num(2)?);
        let data = row.get(3)?.as_deref()?.as_bytes();
        Some(Prepared { format_id, gtrid: data.get(..gl)?.to_vec(), bqual: data.get(gl..gl + bl)?.to_vec() })
    }

    /// One of Sluice's transactions.
    pub fn is_ours(&self) -> bool {
        self.gtrid.starts_with(PREFIX.as_bytes())
    }

    /// The global id as text (Sluice's ids are ASCII).
    pub fn gtrid_str(&self) -> String {
        String::from_utf8_lossy(&self.gtrid).into_owned()
    }

    /// `XA COMMIT` or `XA ROLLBACK` of this branch.
    pub fn finish_sql(&self, d: Decision) -> String {
        let verb = if d == Decision::Commit { "COMMIT" } else { "ROLLBACK" };
        format!("XA {verb} {}", recovered_xid_sql(&self.gtrid, &self.bqual, self.format_id))
    }
}

/// The prepared branches a server holds (`XA RECOVER`).
pub async fn prepared(conn: &mut BackendConn) -> Result<Vec<Prepared>, BackendError> {
    let r = conn.query("XA RECOVER").await?;
    Ok(r.rows.iter().filter_map(|row| Prepared::from_row(row)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xids_are_hex_and_recovered_rows_split_gtrid_from_bqual() {
        assert_eq!(xid_sql("sluice:a:1", "s0", 3), "X'736c756963653a613a31',X'7330'");
        let long = "x".repeat(65);
        assert_eq!(xid_sql("g", &long, 12), "X'67',X'3132'");
        let row = ["1", "10", "2", "sluice:a:1s0"].map(|s| Some(s.to_string()));
        let p = Prepared::from_row(&row).unwrap();
        assert_eq!((p.gtrid.as_slice(), p.bqual.as_slice()), (&b"sluice:a:1"[..], &b"s0"[..]));
        assert!(p.is_ours());
        assert_eq!(p.finish_sql(Decision::Abort), "XA ROLLBACK X'736c756963653a613a31',X'7330',1");
        let foreign = ["1", "3", "1", "abcd"].map(|s| Some(s.to_string()));
        assert!(!Prepared::from_row(&foreign).unwrap().is_ours());
        let short = ["1", "9", "1", "abc"].map(|s| Some(s.to_string()));
        assert!(Prepared::from_row(&short).is_none());
    }

    #[test]
    fn gtrids_are_unique_and_fit_the_xa_limit() {
        let c = Coordinator::default();
        let (a, b) = (c.new_gtrid(), c.new_gtrid());
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() <= 64, "{a}");
        let g = c.live(&a);
        assert!(c.is_live(&a) && !c.is_live(&b));
        drop(g);
        assert!(!c.is_live(&a));
    }
}
