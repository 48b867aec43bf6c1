//! Scatter reads that need no merge ([`Scatter::streams`]): every shard's rows go on to the
//! client as they arrive instead of being held, so such a read has no row or byte cap and
//! Sluice holds at most [`ROWS_IN_FLIGHT`](fanout::ROWS_IN_FLIGHT) rows per shard. The
//! shards are read by [`fanout::stream`]; this module orders and frames what they send.
//!
//! Nothing is written to the client until every shard has sent its column definitions (the
//! errors a statement can have before its first row, such as an unknown column on one shard,
//! are answered as a plain ERR). A shard that fails after rows went out ends the result set
//! with its error in place of the final EOF, as a server does for a statement that fails
//! mid-result: the client sees a failed statement, never a short result presented as whole.

use super::super::error::{fanout_error_to_client, SessionError};
use super::super::Session;
use crate::backend::fanout::{self, FanoutError, Part};
use crate::backend::stream::Streamed;
use crate::protocol::err::ErrPacket;
use crate::protocol::resultset::{result_set_end, result_set_head};
use crate::session::client::FLUSH_AT;
use crate::sharding::scatter::Scatter;

/// A shard whose feed ended without saying how (its task panicked, or broke the order).
fn lost(s: &Session, shard: usize) -> ErrPacket {
    let shard = s.snap.topology.shard_name(shard).to_string();
    failed(s, FanoutError::Lost { shard })
}

/// What the client sees for a shard's failure.
fn failed(s: &Session, e: FanoutError) -> ErrPacket {
    fanout_error_to_client(e, s.snap.config.pool.acquire_timeout_ms, "")
}

/// Answers a scatter read that needs no merge by streaming the shards' rows in shard order.
pub(super) async fn run(s: &mut Session, sc: &Scatter, shards: &[usize]) -> Result<(), SessionError> {
    let branches = match s.branches(shards) {
        Ok(b) => b,
        Err(e) => {
            s.client.put_err(s.seq, &e);
            return Ok(());
        }
    };
    let epoch = s.shared.globals_epoch.load(std::sync::atomic::Ordering::Relaxed);
    let mut feeds = fanout::stream(branches, &s.state.want, epoch, &sc.shard_sql, &s.shared.tasks);
    // Every shard's column definitions (or its error) before anything is written.
    let mut defs = None;
    for (i, feed) in feeds.iter_mut().enumerate() {
        match feed.recv().await {
            Some(Part::Step(Streamed::Defs(d))) => match &defs {
                None => defs = Some(d),
                Some(first) if first.len() != d.len() => {
                    let name = s.snap.topology.shard_name(shards[i]).to_string();
                    let msg = format!(
                        "Sluice: shard '{name}' answered with {} columns, another with {}",
                        d.len(),
                        first.len()
                    );
                    s.client.put_err(s.seq, &ErrPacket::new(1105, "HY000", msg));
                    return Ok(());
                }
                Some(_) => {}
            },
            Some(Part::Done(Err(e))) => {
                s.client.put_err(s.seq, &failed(s, e));
                return Ok(());
            }
            Some(Part::Step(Streamed::Row(_))) | Some(Part::Done(Ok(()))) | None => {
                s.client.put_err(s.seq, &lost(s, shards[i]));
                return Ok(());
            }
        }
    }
    let Some(defs) = defs else {
        s.client.put_err(s.seq, &ErrPacket::new(1105, "HY000", "Sluice: a scatter read over no shard"));
        return Ok(());
    };
    let status = s.state.status();
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
                    let e = failed(s, e);
                    s.client.put_err(seq, &e);
                    return Ok(());
                }
                Some(Part::Step(Streamed::Defs(_))) | None => {
                    let e = lost(s, shards[i]);
                    s.client.put_err(seq, &e);
                    return Ok(());
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
    // What an unsharded server's FOUND_ROWS() answers: the rows skipped and the rows sent.
    s.state.found_rows = sc.offset - skip + sent;
    s.state.row_count = -1;
    Ok(())
}
