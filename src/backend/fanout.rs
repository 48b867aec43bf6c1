//! One statement on several shards' primaries at once, each on a connection of its own with
//! the session's state: a held read (every answer gathered, for the scatter merge) or a
//! streamed one (rows handed on as they arrive). The session chooses the shards and turns a
//! [`FanoutError`] into what the client sees; it never loops over shards itself.

use super::conn::{QueryResult, RowBudget};
use super::lease::{checkout, LeaseError};
use super::pool::PoolHandle;
use super::stream::Streamed;
use super::{BackendConn, BackendError, ConnState};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

/// Rows a shard may have read ahead of the client in a streamed read (each shard's channel
/// bound).
pub const ROWS_IN_FLIGHT: usize = 64;

/// One shard's part of a fan-out: its name (for errors) and its primary's pool for the
/// session's login.
#[derive(Debug, Clone)]
pub struct Branch {
    pub shard: String,
    pub pool: PoolHandle,
}

/// What went wrong on one shard.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    /// No connection to the shard's primary.
    #[error("shard '{shard}': {error}")]
    Lease { shard: String, error: LeaseError },
    /// The shard's server refused the statement ([`BackendError::Server`], sent on as it is),
    /// or the connection failed (it was discarded).
    #[error("shard '{shard}': {error}")]
    Backend { shard: String, error: BackendError },
    /// A shard's task ended without an answer (it panicked).
    #[error("shard '{shard}': the read ended without an answer")]
    Lost { shard: String },
    /// More rows or bytes than the budget allowed were held.
    #[error("more rows or bytes than the scatter budget allows")]
    OverBudget,
}

/// A branch's outcome: a failure names its shard, and a connection that failed other than by
/// the server's refusal is discarded (its state is unknown).
fn failed_on<T>(conn: &mut BackendConn, shard: String, r: Result<T, BackendError>) -> Result<T, FanoutError> {
    r.map_err(|error| {
        if !matches!(error, BackendError::Server(_)) {
            conn.mark_broken();
        }
        FanoutError::Backend { shard, error }
    })
}

/// Runs `sql` on every branch in parallel and returns the answers in branch order, rows kept
/// raw and counted against `budget`. Every branch runs to its end, even after one failed: a
/// task cut off mid-query would hand its connection back with a response still unread. The
/// first failure is the answer.
pub async fn gather(
    branches: Vec<Branch>,
    want: &ConnState,
    globals_epoch: u64,
    sql: &str,
    budget: Arc<RowBudget>,
) -> Result<Vec<QueryResult>, FanoutError> {
    let sql: Arc<str> = sql.into();
    let names: Vec<String> = branches.iter().map(|b| b.shard.clone()).collect();
    let mut jobs = tokio::task::JoinSet::new();
    let mut task_branch = std::collections::HashMap::new();
    for (i, b) in branches.into_iter().enumerate() {
        let (want, sql, budget) = (want.clone(), sql.clone(), budget.clone());
        let task = jobs.spawn(async move {
            let mut conn = checkout(&b.pool, &want, globals_epoch)
                .await
                .map_err(|error| FanoutError::Lease { shard: b.shard.clone(), error })?;
            let r = conn.query_rows(&sql, &budget).await;
            failed_on(&mut conn, b.shard, r).map(|r| (i, r))
        });
        task_branch.insert(task.id(), i);
    }
    let mut results: Vec<Option<QueryResult>> = names.iter().map(|_| None).collect();
    let mut first_error = None;
    while let Some(joined) = jobs.join_next_with_id().await {
        match joined {
            Ok((_, Ok((i, r)))) => results[i] = Some(r),
            Ok((_, Err(e))) => first_error = first_error.or(Some(e)),
            Err(e) => {
                let shard = task_branch.get(&e.id()).map_or_else(String::new, |&i| names[i].clone());
                first_error = first_error.or(Some(FanoutError::Lost { shard }));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None if budget.exceeded() => Err(FanoutError::OverBudget),
        None => Ok(results.into_iter().flatten().collect()),
    }
}

/// Runs each branch's own statement, one branch after another (writes split by shard, DDL on
/// every shard: each commits on its own, so a failure on one leaves the others applied), and
/// returns every outcome in branch order.
pub async fn run_each(
    branches: Vec<(Branch, String)>,
    want: &ConnState,
    globals_epoch: u64,
) -> Vec<Result<QueryResult, FanoutError>> {
    let mut out = Vec::with_capacity(branches.len());
    for (b, sql) in branches {
        let outcome = match checkout(&b.pool, want, globals_epoch).await {
            Err(error) => Err(FanoutError::Lease { shard: b.shard, error }),
            Ok(mut conn) => {
                let r = conn.query(&sql).await;
                failed_on(&mut conn, b.shard, r)
            }
        };
        out.push(outcome);
    }
    out
}

/// One step of a branch of a streamed read.
#[derive(Debug)]
pub enum Part {
    Step(Streamed),
    /// The branch's read ended: cleanly, or with its failure.
    Done(Result<(), FanoutError>),
}

impl From<Streamed> for Part {
    fn from(s: Streamed) -> Part {
        Part::Step(s)
    }
}

/// Starts `sql` on every branch, each on a task of its own (tracked, so shutdown waits for
/// it), and returns one bounded feed per branch, in branch order: its column definitions, its
/// rows, then [`Part::Done`]. A feed the caller drops does not cut its branch short: the rest
/// of the answer is read and dropped, so the connection goes back with nothing unread.
pub fn stream(
    branches: Vec<Branch>,
    want: &ConnState,
    globals_epoch: u64,
    sql: &str,
    tasks: &TaskTracker,
) -> Vec<mpsc::Receiver<Part>> {
    let sql: Arc<str> = sql.into();
    let mut feeds = Vec::with_capacity(branches.len());
    for b in branches {
        let (want, sql) = (want.clone(), sql.clone());
        let (tx, rx) = mpsc::channel(ROWS_IN_FLIGHT);
        feeds.push(rx);
        tasks.spawn(async move {
            let done = match checkout(&b.pool, &want, globals_epoch).await {
                Err(error) => Err(FanoutError::Lease { shard: b.shard, error }),
                Ok(mut conn) => {
                    let r = conn.stream_rows(&sql, &tx).await;
                    failed_on(&mut conn, b.shard, r)
                }
            };
            let _ = tx.send(Part::Done(done)).await;
        });
    }
    feeds
}
