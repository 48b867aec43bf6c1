//! Carrying out what the decision (`router::decide`) says about sharded tables: the
//! transaction steps Sluice owns (a `BEGIN` held back until the transaction's first statement
//! picks its shard, XA commit), and statements on several shards (one statement per shard
//! answered with one combined OK, or a scatter read merged into one result set).

use super::super::error::SessionError;
use super::super::Session;
use crate::backend::conn::QueryResult;
use crate::backend::conn::RowBudget;
use crate::backend::fanout;
use crate::protocol::err::ErrPacket;
use crate::protocol::ok::OkPacket;
use crate::router::decide::{Fanout, TxnStep};
use crate::router::Route;
use crate::session::error::own_query;
use crate::session::txn::Txn;
use crate::sharding::merge::{self, ShardRows};
use crate::sharding::scatter::Scatter;
use bytes::Bytes;

/// Carries out a transaction step Sluice performs itself; `sql` is the client's statement.
pub(in crate::session) async fn transaction_step(s: &mut Session, step: TxnStep, sql: Bytes) {
    match step {
        TxnStep::HoldBegin => {
            *s.state.txn_mut() = Txn::Held(sql);
            s.client.put_ok(s.seq, &OkPacket::with_status(s.state.status()));
        }
        TxnStep::DropHeldBegin => {
            s.state.txn_mut().end();
            s.client.put_ok(s.seq, &OkPacket::with_status(s.state.status()));
        }
        TxnStep::EndXa(end) => s.end_xa(end).await,
    }
}

/// Runs a statement on several shards, as the decision said.
pub(in crate::session) async fn fanout(s: &mut Session, f: Fanout) -> Result<(), SessionError> {
    match f {
        Fanout::Each { parts, what, split } => {
            s.shared.metrics.sharded[if split { 1 } else { 2 }].inc();
            run_on_shards(s, parts, what).await
        }
        Fanout::Scatter { scatter, shards, max_rows } => {
            s.shared.metrics.sharded[3].inc();
            run_scatter(s, scatter, shards, max_rows).await
        }
    }
}

fn refuse(s: &mut Session, what: &str) -> Result<(), SessionError> {
    s.client.put_err(s.seq, &ErrPacket::unsupported(what));
    Ok(())
}

/// Runs a statement of Sluice's own on a shard's primary and gives the connection back. A
/// server's error comes back as the server sent it; any other failure as 1105 naming the
/// shard (the connection is discarded).
async fn query_on_shard(s: &mut Session, shard: usize, sql: &str) -> Result<QueryResult, ErrPacket> {
    let snap = s.snap.clone();
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
    let max_bytes = s.snap.topology.sharding.as_ref().map_or(usize::MAX, |sh| sh.max_scatter_bytes);
    let budget = std::sync::Arc::new(RowBudget::new(max_rows, max_bytes));
    let acquire_ms = s.snap.config.pool.acquire_timeout_ms;
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
async fn run_on_shards(s: &mut Session, parts: Vec<(usize, String)>, what: &str) -> Result<(), SessionError> {
    tracing::info!(what, shards = parts.len(), "running a statement on several shards");
    let shards: Vec<usize> = parts.iter().map(|(shard, _)| *shard).collect();
    let branches = match s.branches(&shards) {
        Ok(b) => b,
        Err(e) => {
            s.client.put_err(s.seq, &e);
            return Ok(());
        }
    };
    let names: Vec<String> = branches.iter().map(|b| b.shard.clone()).collect();
    let statements = branches.into_iter().zip(parts.into_iter().map(|(_, sql)| sql)).collect();
    let epoch = s.shared.globals_epoch.load(std::sync::atomic::Ordering::Relaxed);
    let outcomes = fanout::run_each(statements, &s.state.want, epoch).await;
    let acquire_ms = s.snap.config.pool.acquire_timeout_ms;
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
        return Ok(());
    }
    if insert_id != 0 {
        s.state.want.last_insert_id = insert_id;
    }
    s.state.row_count = affected as i64;
    let mut ok = OkPacket::with_status(s.state.status());
    ok.affected_rows = affected;
    ok.last_insert_id = insert_id;
    ok.warnings = warnings;
    s.client.put_ok(s.seq, &ok);
    Ok(())
}

/// A read that needs every shard: run on every shard's primary in parallel ([`gather`]), combined
/// by [`merge::merge`], answered as one result set with the first shard's column
/// definitions. A server error on any shard is the answer, as from one server.
async fn run_scatter(s: &mut Session, sc: Scatter, shards: Vec<usize>, max: usize) -> Result<(), SessionError> {
    if sc.streams() {
        return super::stream::run(s, &sc, &shards).await;
    }
    let shards_first = shards.first().copied();
    let answers = match gather(s, &shards, &sc.shard_sql, max).await {
        Ok(results) => results.into_iter().map(|r| ShardRows { defs: r.defs, rows: r.raw_rows }).collect(),
        Err(e) => {
            s.client.put_err(s.seq, &e);
            return Ok(());
        }
    };
    // Rewritten select list (AVG): the column definitions the original would have.
    let mut out_defs = None;
    if let (Some(defs_sql), Some(&first)) = (sc.defs_sql.as_ref(), shards_first.as_ref()) {
        match query_on_shard(s, first, defs_sql).await {
            Ok(r) => out_defs = Some(r.defs),
            Err(e) => {
                s.client.put_err(s.seq, &e);
                return Ok(());
            }
        }
    }
    let (merged, found) = match merge::merge(&sc, answers, max, out_defs) {
        Ok(m) => m,
        Err(what) => return refuse(s, &what),
    };
    let status = s.state.status();
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
    s.state.found_rows = found;
    s.state.row_count = -1;
    Ok(())
}
