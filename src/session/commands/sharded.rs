//! Statements on sharded tables: pick the shard before the ordinary path runs, or run one
//! statement per shard (a multi-row INSERT split by key, DDL, allowed scatter writes) and
//! answer with one combined OK.
//!
//! A transaction lives on one shard: `BEGIN` is held back (answered by Sluice) and sent,
//! just before it, to the connection the transaction's first statement lands on; a later
//! statement for another shard is refused before anything is sent.

use super::super::error::SessionError;
use super::super::{Session, TargetShard};
use super::Next;
use crate::backend::conn::QueryResult;
use crate::backend::conn::RowBudget;
use crate::backend::fanout;
use crate::protocol::err::ErrPacket;
use crate::protocol::ok::OkPacket;
use crate::protocol::status;
use crate::router::{Analysis, Kind, Route};
use crate::session::error::own_query;
use crate::sharding::merge::{self, ShardRows};
use crate::sharding::scatter::Scatter;
use crate::sharding::Target;
use crate::sql::lex::{Lexer, Token};
use bytes::Bytes;

/// Decides where a text statement on sharded tables goes (`analysis.marked`: it names one);
/// runs multi-shard statements here.
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
    let end = transaction_end(analysis, sql);
    if let Some(end) = end.as_ref().filter(|_| s.xa.is_some()) {
        match *end {
            End::Plain(e) => s.end_xa(e).await,
            End::Chained => return refuse(s, "COMMIT AND CHAIN or RELEASE in a cross-shard (XA) transaction"),
        }
        return Ok(Next::Answered);
    }
    if s.pending_begin.is_some() && s.lease.is_none() && matches!(end, Some(End::Plain(_))) {
        // A transaction that never ran a statement: nothing to commit or roll back.
        s.pending_begin = None;
        s.state.status &= !status::IN_TRANS;
        s.client.put_ok(s.seq, &OkPacket::with_status(s.state.status));
        return Ok(Next::Answered);
    }
    // Decided under a cheap snapshot guard, released before anything awaits.
    let decided = {
        let snap = s.shared.load();
        let default = TargetShard { index: snap.topology.default_shard, version: snap.version };
        match snap.topology.sharding.as_ref().filter(|_| analysis.marked) {
            None => {
                drop(snap);
                return unsharded(s, default, sql, analysis).await;
            }
            Some(sh) if sh.pause_writes && analysis.kind != Kind::Read => Err(Multi::Paused),
            Some(sh) => match sh.plan_cached(sql) {
                Target::Default => {
                    drop(snap);
                    return unsharded(s, default, sql, analysis).await;
                }
                Target::Shard(i) => Ok(TargetShard { index: sh.topology_index[i], version: snap.version }),
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
        Err(Multi::Paused) => {
            counted[4].inc();
            s.client.put_err(s.seq, &ErrPacket::writes_paused());
            return Ok(Next::Answered);
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
    if let Err(e) = s.enter_shard(target.index).await {
        s.shared.metrics.sharded[4].inc();
        s.client.put_err(s.seq, &e);
        return Ok(Next::Answered);
    }
    s.shared.metrics.sharded[0].inc();
    s.target_shard = Some(target);
    Ok(Next::Execute)
}

/// A statement on no sharded table. Its tables are on the default shard; while the session
/// holds a connection on another shard (a transaction that began on a sharded table) one that
/// names a table is moved there like any other cross-shard statement (refused, or another XA
/// branch), and one that names none (`SELECT 1`, `SET`, `SAVEPOINT`) stays where it is.
async fn unsharded(
    s: &mut Session,
    default: TargetShard,
    sql: &str,
    analysis: &Analysis<'_>,
) -> Result<Next, SessionError> {
    if s.lease.as_ref().is_none_or(|l| l.route.shard == default.index) {
        return Ok(Next::Execute);
    }
    match crate::sharding::plan::may_name_tables(sql) {
        Some(false) => Ok(Next::Execute),
        None if !matches!(analysis.kind, Kind::Read | Kind::Write) => Ok(Next::Execute),
        None => refuse(s, "a statement Sluice cannot parse inside a transaction on a sharded table's shard"),
        Some(true) => match s.enter_shard(default.index).await {
            Ok(()) => {
                s.target_shard = Some(default);
                Ok(Next::Execute)
            }
            Err(e) => {
                s.shared.metrics.sharded[4].inc();
                s.client.put_err(s.seq, &e);
                Ok(Next::Answered)
            }
        },
    }
}

/// A statement that is not simply routed to one shard.
enum Multi {
    Refuse(String),
    /// A write while `[sharding] pause_writes` is on.
    Paused,
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

/// How a statement ends a transaction.
enum End {
    /// `COMMIT [WORK]`, `ROLLBACK [WORK]`, `... AND NO CHAIN`.
    Plain(crate::session::xa::End),
    /// `... AND CHAIN` or `... RELEASE`: another transaction or a disconnect follows.
    Chained,
}

/// `COMMIT` / `ROLLBACK` (not `ROLLBACK TO SAVEPOINT`, which ends nothing).
fn transaction_end(a: &Analysis<'_>, sql: &str) -> Option<End> {
    use crate::session::xa::End as E;
    let end = if a.first.eq_ignore_ascii_case("commit") {
        E::Commit
    } else if a.first.eq_ignore_ascii_case("rollback") {
        E::Rollback
    } else {
        return None;
    };
    let mut words = Lexer::new(sql).filter_map(|t| match t {
        Token::Word(w) => Some(w.to_ascii_lowercase()),
        _ => None,
    });
    words.next();
    let mut next = words.next();
    if next.as_deref() == Some("work") {
        next = words.next();
    }
    match next.as_deref() {
        None => Some(End::Plain(end)),
        Some("to") => None,
        Some("and") if words.next().as_deref() == Some("no") => Some(End::Plain(end)),
        Some(_) => Some(End::Chained),
    }
}

fn refuse(s: &mut Session, what: &str) -> Result<Next, SessionError> {
    s.client.put_err(s.seq, &ErrPacket::unsupported(what));
    Ok(Next::Answered)
}

/// Runs a statement of Sluice's own on a shard's primary and gives the connection back. A
/// server's error comes back as the server sent it; any other failure as 1105 naming the
/// shard (the connection is discarded).
async fn query_on_shard(s: &mut Session, shard: usize, sql: &str) -> Result<QueryResult, ErrPacket> {
    let snap = s.shared.load_full();
    let result = match s.lease_for(Route::primary(shard)).await {
        Err(e) => Err(e),
        Ok(conn) => own_query(conn, sql, snap.topology.shard_name(shard)).await,
    };
    s.release();
    result
}

/// Runs one read on every shard's primary in parallel, each on a connection of its own with
/// the session's state, and returns the results in shard order. The first failure (a
/// server's error as sent, anything else as 1105 naming the shard) is the answer.
async fn gather(s: &mut Session, shards: &[usize], sql: &str, max_rows: usize) -> Result<Vec<QueryResult>, ErrPacket> {
    // One cap on the rows held in memory across all shards' answers.
    let max_bytes = s.shared.load().topology.sharding.as_ref().map_or(usize::MAX, |sh| sh.max_scatter_bytes);
    let budget = std::sync::Arc::new(RowBudget::new(max_rows, max_bytes));
    let acquire_ms = s.shared.load().config.pool.acquire_timeout_ms;
    let epoch = s.shared.globals_epoch.load(std::sync::atomic::Ordering::Relaxed);
    let branches = s.branches(shards)?;
    fanout::gather(branches, &s.state.want, epoch, sql, budget).await.map_err(|e| {
        crate::session::error::fanout_error_to_client(e, acquire_ms, &merge::over_budget(max_rows, max_bytes))
    })
}

/// Runs one statement per shard on their primaries, one after another
/// ([`fanout::run_each`]), and answers with
/// the affected rows summed and the last insert id of the first shard that generated one.
/// A failure on some shards is reported naming them and what the others applied (each
/// shard's statement commits on its own: outside a transaction there is no atomicity across
/// shards).
async fn run_on_shards(s: &mut Session, parts: Vec<(usize, String)>, what: &str) -> Result<Next, SessionError> {
    if s.lease.is_some() || s.pending_begin.is_some() {
        return refuse(s, &format!("{what} inside a transaction (it would span several shards)"));
    }
    let shards: Vec<usize> = parts.iter().map(|(shard, _)| *shard).collect();
    let branches = match s.branches(&shards) {
        Ok(b) => b,
        Err(e) => {
            s.client.put_err(s.seq, &e);
            return Ok(Next::Answered);
        }
    };
    let names: Vec<String> = branches.iter().map(|b| b.shard.clone()).collect();
    let statements = branches.into_iter().zip(parts.into_iter().map(|(_, sql)| sql)).collect();
    let epoch = s.shared.globals_epoch.load(std::sync::atomic::Ordering::Relaxed);
    let outcomes = fanout::run_each(statements, &s.state.want, epoch).await;
    let acquire_ms = s.shared.load().config.pool.acquire_timeout_ms;
    let (mut affected, mut insert_id, mut warnings) = (0u64, 0u64, 0u16);
    let (mut applied, mut failed) = (Vec::new(), Vec::new());
    for (name, outcome) in names.into_iter().zip(outcomes) {
        match outcome.map_err(|e| crate::session::error::fanout_error_to_client(e, acquire_ms, "").message) {
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

/// A read that needs every shard: run on every shard's primary in parallel ([`gather`]), combined
/// by [`merge::merge`], answered as one result set with the first shard's column
/// definitions. A server error on any shard is the answer, as from one server.
async fn run_scatter(s: &mut Session, sc: Scatter, shards: Vec<usize>, max: usize) -> Result<Next, SessionError> {
    if s.lease.is_some() || s.pending_begin.is_some() {
        return refuse(s, "a read across shards inside a transaction");
    }
    if sc.streams() {
        return super::stream::run(s, &sc, &shards).await;
    }
    let shards_first = shards.first().copied();
    let answers = match gather(s, &shards, &sc.shard_sql, max).await {
        Ok(results) => results.into_iter().map(|r| ShardRows { defs: r.defs, rows: r.raw_rows }).collect(),
        Err(e) => {
            s.client.put_err(s.seq, &e);
            return Ok(Next::Answered);
        }
    };
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
