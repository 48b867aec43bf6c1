//! Scatter reads that need no merge ([`Scatter::streams`]): every shard's rows go on to the
//! client as they arrive instead of being held, so such a read has no row or byte cap and
//! Sluice holds at most [`ROWS_IN_FLIGHT`] rows per shard.
//!
//! Nothing is written to the client until every shard has sent its column definitions (the
//! errors a statement can have before its first row, such as an unknown column on one shard,
//! are answered as a plain ERR). A shard that fails after rows went out ends the result set
//! with its error in place of the final EOF, as a server does for a statement that fails
//! mid-result: the client sees a failed statement, never a short result presented as whole.

use super::super::error::SessionError;
use super::super::Session;
use super::Next;
use crate::backend::stream::Streamed;
use crate::backend::BackendError;
use crate::protocol::err::ErrPacket;
use crate::protocol::resultset::{result_set_end, result_set_head};
use crate::protocol::status;
use crate::router::Route;
use crate::session::client::FLUSH_AT;
use crate::sharding::scatter::Scatter;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Rows a shard may have read ahead of the client (each shard's channel bound).
pub const ROWS_IN_FLIGHT: usize = 64;

/// What one shard's task sends.
enum Part {
    Step(Streamed),
    /// The shard's read ended: cleanly, or with the error the client should see.
    Done(Result<(), ErrPacket>),
}

impl From<Streamed> for Part {
    fn from(s: Streamed) -> Part {
        Part::Step(s)
    }
}

/// A shard whose task ended without saying how (it panicked, or broke the order).
fn lost(s: &Session, shard: usize) -> ErrPacket {
    let name = s.shared.load().topology.shard_name(shard).to_string();
    ErrPacket::new(1105, "HY000", format!("Sluice: the read on shard '{name}' ended without an answer"))
}

/// Answers a scatter read that needs no merge by streaming the shards' rows in shard order.
pub(super) async fn run(s: &mut Session, sc: &Scatter, shards: &[usize]) -> Result<Next, SessionError> {
    let mut feeds = match start(s, sc, shards) {
        Ok(f) => f,
        Err(e) => {
            s.client.put_err(s.seq, &e);
            return Ok(Next::Answered);
        }
    };
    // Every shard's column definitions (or its error) before anything is written.
    let mut defs = None;
    for (i, feed) in feeds.iter_mut().enumerate() {
        match feed.recv().await {
            Some(Part::Step(Streamed::Defs(d))) => match &defs {
                None => defs = Some(d),
                Some(first) if first.len() != d.len() => {
                    let name = s.shared.load().topology.shard_name(shards[i]).to_string();
                    let msg = format!(
                        "Sluice: shard '{name}' answered with {} columns, another with {}",
                        d.len(),
                        first.len()
                    );
                    s.client.put_err(s.seq, &ErrPacket::new(1105, "HY000", msg));
                    return Ok(Next::Answered);
                }
                Some(_) => {}
            },
            Some(Part::Done(Err(e))) => {
                s.client.put_err(s.seq, &e);
                return Ok(Next::Answered);
            }
            Some(Part::Step(Streamed::Row(_))) | Some(Part::Done(Ok(()))) | None => {
                s.client.put_err(s.seq, &lost(s, shards[i]));
                return Ok(Next::Answered);
            }
        }
    }
    let Some(defs) = defs else {
        s.client.put_err(s.seq, &ErrPacket::new(1105, "HY000", "Sluice: a scatter read over no shard"));
        return Ok(Next::Answered);
    };
    let status = s.state.status & !status::MORE_RESULTS_EXISTS;
    let mut seq = s.seq;
    for p in result_set_head(&defs, status, s.client.deprecate_eof()) {
        seq = s.client.put(seq, &p);
    }
    let mut skip = sc.offset;
    let mut left = sc.limit.unwrap_or(u64::MAX);
    let mut sent = 0u64;
    'shards: for (i, feed) in feeds.iter_mut().enumerate() {
        loop {
            match feed.recv().await {
                Some(Part::Step(Streamed::Row(row))) => {
                    if skip > 0 {
                        skip -= 1;
                        continue;
                    }
                    if left == 0 {
                        break 'shards;
                    }
                    seq = s.client.put(seq, &row);
                    left -= 1;
                    sent += 1;
                    if s.client.pending() >= FLUSH_AT {
                        s.client.flush().await.map_err(SessionError::ClientIo)?;
                    }
                }
                Some(Part::Done(Ok(()))) => break,
                Some(Part::Done(Err(e))) => {
                    s.client.put_err(seq, &e);
                    return Ok(Next::Answered);
                }
                Some(Part::Step(Streamed::Defs(_))) | None => {
                    let e = lost(s, shards[i]);
                    s.client.put_err(seq, &e);
                    return Ok(Next::Answered);
                }
            }
        }
        if left == 0 {
            break;
        }
    }
    // Dropping the feeds lets the shards that are still reading drain their answers.
    drop(feeds);
    s.client.put(seq, &result_set_end(status, s.client.deprecate_eof(), s.client.session_track()));
    s.state.found_rows = sent;
    s.state.row_count = -1;
    Ok(Next::Answered)
}

/// Starts one task per shard, each on a connection of its own with the session's state.
/// The tasks are detached: one whose client stopped listening still reads its answer to the
/// end, so its connection goes back to the pool with nothing unread.
fn start(s: &mut Session, sc: &Scatter, shards: &[usize]) -> Result<Vec<mpsc::Receiver<Part>>, ErrPacket> {
    let sql: Arc<str> = sc.shard_sql.as_str().into();
    let acquire_ms = s.shared.load().config.pool.acquire_timeout_ms;
    let epoch = s.shared.globals_epoch.load(std::sync::atomic::Ordering::Relaxed);
    let pools =
        shards.iter().map(|&shard| s.pool_for(Route::primary(shard)).map(|p| p.0)).collect::<Result<Vec<_>, _>>()?;
    let mut feeds = Vec::with_capacity(shards.len());
    for (&shard, pool) in shards.iter().zip(pools) {
        let name = s.shared.load().topology.shard_name(shard).to_string();
        let (want, sql) = (s.state.want.clone(), sql.clone());
        let (tx, rx) = mpsc::channel(ROWS_IN_FLIGHT);
        feeds.push(rx);
        s.shared.tasks.spawn(async move {
            let done = match crate::backend::lease::checkout(&pool, &want, epoch).await {
                Err(e) => Err(crate::session::error::lease_error_to_client(e, "primary", &name, acquire_ms)),
                Ok(mut conn) => match conn.stream_rows(&sql, &tx).await {
                    Ok(()) => Ok(()),
                    Err(BackendError::Server(e)) => Err(e),
                    Err(e) => {
                        conn.mark_broken();
                        Err(ErrPacket::backend_unavailable("primary", &name, &e.to_string()))
                    }
                },
            };
            let _ = tx.send(Part::Done(done)).await;
        });
    }
    Ok(feeds)
}
