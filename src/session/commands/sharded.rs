//! Statements on sharded tables: pick the shard before the ordinary path runs, or run one
//! statement per shard (a multi-row INSERT split by key, DDL, allowed scatter writes) and
//! answer with one combined OK.
//!
//! A transaction lives on one shard: `BEGIN` is held back (answered by Sluice) and sent,
//! just before it, to the connection the transaction's first statement lands on; a later
//! statement for another shard is refused before anything is sent.

use super::super::error::SessionError;
use super::super::Session;
use crate::backend::conn::QueryResult;
use crate::backend::BackendError;
use crate::protocol::err::ErrPacket;
use crate::protocol::ok::OkPacket;
use crate::protocol::status;
use crate::router::{Analysis, Route};
use crate::sharding::merge::{self, ShardRows};
use crate::sharding::scatter::Scatter;
use crate::sharding::Target;
use bytes::Bytes;

/// What the query handler does next.
pub(in crate::session) enum Next {
    /// Run the statement through the ordinary path (on `Session::target_shard` if set).
    Execute,
    /// The client has its answer.
    Answered,
}

/// Decides where a text statement on sharded tables goes; runs multi-shard statements here.
pub(in crate::session) async fn route_text(
    s: &mut Session,
    sql: &str,
    analysis: &Analysis<'_>,
) -> Result<Next, SessionError> {
    if s.pending_begin.is_none()
        && s.lease.is_none()
        && begin_is_deferrable(analysis)
        && s.shared.load().topology.sharding.is_some()
    {
        s.pending_begin = Some(Bytes::copy_from_slice(sql.as_bytes()));
        s.state.status |= status::IN_TRANS;
        s.client.put_ok(s.seq, &OkPacket::with_status(s.state.status));
        return Ok(Next::Answered);
    }
    if s.pending_begin.is_some() && s.lease.is_none() && is_end(analysis) {
        // A transaction that never ran a statement: nothing to commit or roll back.
        s.pending_begin = None;
        s.state.status &= !status::IN_TRANS;
        s.client.put_ok(s.seq, &OkPacket::with_status(s.state.status));
        return Ok(Next::Answered);
    }
    // Decided under a cheap snapshot guard, released before anything awaits.
    let decided = {
        let snap = s.shared.load();
        match snap.topology.sharding.as_ref().filter(|sh| sh.mentions(sql)) {
            None => return Ok(Next::Execute),
            Some(sh) => match sh.plan_cached(sql) {
                Target::Default => return Ok(Next::Execute),
                Target::Shard(i) => Ok(sh.topology_index[i]),
                Target::Param(_) => Err(Multi::Refuse("a `?` placeholder outside a prepared statement".into())),
                Target::Refuse(m) => Err(Multi::Refuse(m)),
                Target::Scatter(sc) => Err(Multi::Scatter(sc, sh.topology_index.clone(), sh.max_scatter_rows)),
                Target::Split(parts) => Err(Multi::Run(
                    parts.into_iter().map(|(i, q)| (sh.topology_index[i], q)).collect(),
                    "INSERT split by shard",
                )),
                Target::All { ddl } => {
                    if !ddl {
                        tracing::info!(statement = %sql, "running a write on every shard");
                    }
                    let what =
                        if ddl { "DDL on a sharded table" } else { "write without shard key (allow_scatter_writes)" };
                    Err(Multi::Run(sh.topology_index.iter().map(|&i| (i, sql.to_string())).collect(), what))
                }
            },
        }
    };
    let counted = &s.shared.metrics.sharded;
    let target = match decided {
        Ok(t) => t,
        Err(Multi::Refuse(m)) => {
            counted[4].inc();
            return refuse(s, &m);
        }
        Err(Multi::Run(parts, what)) => {
            counted[if what.starts_with("INSERT") { 1 } else { 2 }].inc();
            return run_on_shards(s, parts, what).await;
        }
        Err(Multi::Scatter(sc, shards, max)) => {
            counted[3].inc();
            return run_scatter(s, sc, shards, max).await;
        }
    };
    if let Some(held) = s.lease.as_ref().map(|l| l.route.shard).filter(|&h| h != target) {
        let snap = s.shared.load();
        let (a, b) = (&snap.topology.shard(held).name, &snap.topology.shard(target).name);
        let m = format!("a transaction on shard '{a}' touching shard '{b}' (cross-shard transactions are refused; nothing was sent)");
        s.shared.metrics.sharded[4].inc();
        return refuse(s, &m);
    }
    s.shared.metrics.sharded[0].inc();
    s.target_shard = Some(target);
    Ok(Next::Execute)
}

/// A statement that is not simply routed to one shard.
enum Multi {
    Refuse(String),
    Run(Vec<(usize, String)>, &'static str),
    Scatter(Scatter, Vec<usize>, usize),
}

/// `BEGIN` / `START TRANSACTION` (not READ ONLY, which may run on a replica).
fn begin_is_deferrable(a: &Analysis<'_>) -> bool {
    let first = a.first;
    (first.eq_ignore_ascii_case("begin") || first.eq_ignore_ascii_case("start"))
        && a.kind == crate::router::Kind::Other
        && !a.features.has(crate::router::Feature::MultiStatement)
}

fn is_end(a: &Analysis<'_>) -> bool {
    a.first.eq_ignore_ascii_case("commit") || a.first.eq_ignore_ascii_case("rollback")
}

fn refuse(s: &mut Session, what: &str) -> Result<Next, SessionError> {
    s.client.put_err(s.seq, &ErrPacket::unsupported(what));
    Ok(Next::Answered)
}

/// Runs a statement of Sluice's own on a shard's primary and gives the connection back. A
/// server's error comes back as the server sent it; any other failure as 1105 naming the
/// shard (the connection is discarded).
async fn query_on_shard(s: &mut Session, shard: usize, sql: &str) -> Result<QueryResult, ErrPacket> {
    let result = match s.lease_for(Route::primary(shard)).await {
        Err(e) => Err(e),
        Ok(conn) => match conn.query(sql).await {
            Ok(r) => Ok(r),
            Err(BackendError::Server(e)) => Err(e),
            Err(e) => {
                conn.mark_broken();
                let name = s.shared.load().topology.shard(shard).name.clone();
                Err(ErrPacket::backend_unavailable("primary", &name, &e.to_string()))
            }
        },
    };
    s.release();
    result
}

/// Runs one statement per shard on their primaries, one after another, and answers with
/// the affected rows summed and the last insert id of the first shard that generated one.
/// A failure on some shards is reported naming them and what the others applied (each
/// shard's statement commits on its own: outside a transaction there is no atomicity across
/// shards).
async fn run_on_shards(s: &mut Session, parts: Vec<(usize, String)>, what: &str) -> Result<Next, SessionError> {
    if s.lease.is_some() || s.pending_begin.is_some() {
        return refuse(s, &format!("{what} inside a transaction (it would span several shards)"));
    }
    let (mut affected, mut insert_id, mut warnings) = (0u64, 0u64, 0u16);
    let (mut applied, mut failed) = (Vec::new(), Vec::new());
    for (shard, sql) in parts {
        let name = s.shared.load().topology.shard(shard).name.clone();
        match query_on_shard(s, shard, &sql).await.map_err(|e| e.message) {
            Ok(r) => {
                let rows: u64 = r.oks.iter().map(|o| o.affected_rows).sum();
                affected += rows;
                warnings = warnings.saturating_add(r.oks.iter().map(|o| o.warnings).sum());
                if insert_id == 0 {
                    insert_id = r.oks.iter().map(|o| o.last_insert_id).find(|&i| i != 0).unwrap_or(0);
                }
                applied.push(format!("{name} ({rows} rows)"));
            }
            Err(m) => failed.push(format!("{name}: {m}")),
        }
    }
    if !failed.is_empty() {
        let applied = if applied.is_empty() { "none".to_string() } else { applied.join(", ") };
        let msg = format!("Sluice: {what} failed on {}; applied on: {applied}", failed.join("; "));
        s.client.put_err(s.seq, &ErrPacket::new(1105, "HY000", msg));
        return Ok(Next::Answered);
    }
    if insert_id != 0 {
        s.state.want.last_insert_id = insert_id;
    }
    s.state.row_count = affected as i64;
    let mut ok = OkPacket::with_status(s.state.status & !status::MORE_RESULTS_EXISTS);
    ok.affected_rows = affected;
    ok.last_insert_id = insert_id;
    ok.warnings = warnings;
    s.client.put_ok(s.seq, &ok);
    Ok(Next::Answered)
}

/// A read that needs every shard: run on each shard's primary, one after another, combined
/// by [`merge::merge`], answered as one result set with the first shard's column
/// definitions. A server error on any shard is the answer, as from one server.
async fn run_scatter(s: &mut Session, sc: Scatter, shards: Vec<usize>, max: usize) -> Result<Next, SessionError> {
    if s.lease.is_some() || s.pending_begin.is_some() {
        return refuse(s, "a read across shards inside a transaction");
    }
    let mut answers = Vec::with_capacity(shards.len());
    let shards_first = shards.first().copied();
    for shard in shards {
        match query_on_shard(s, shard, &sc.shard_sql).await {
            Ok(r) => answers.push(ShardRows { defs: r.defs, rows: r.raw_rows }),
            Err(e) => {
                s.client.put_err(s.seq, &e);
                return Ok(Next::Answered);
            }
        }
    }
    // Rewritten select list (AVG): the column definitions the original would have.
    let mut out_defs = None;
    if let (Some(defs_sql), Some(&first)) = (sc.defs_sql.as_ref(), shards_first.as_ref()) {
        match query_on_shard(s, first, defs_sql).await {
            Ok(r) => out_defs = Some(r.defs),
            Err(e) => {
                s.client.put_err(s.seq, &e);
                return Ok(Next::Answered);
            }
        }
    }
    let merged = match merge::merge(&sc, answers, max, out_defs) {
        Ok(m) => m,
        Err(what) => return refuse(s, &what),
    };
    let status = s.state.status & !status::MORE_RESULTS_EXISTS;
    let rows = merged.rows.len() as u64;
    let packets = crate::protocol::resultset::raw_result_set(
        &merged.defs,
        merged.rows,
        status,
        s.client.deprecate_eof(),
        s.client.session_track(),
    );
    let mut seq = s.seq;
    for p in packets {
        seq = s.client.put(seq, &p);
    }
    s.state.found_rows = rows;
    s.state.row_count = -1;
    Ok(Next::Answered)
}
