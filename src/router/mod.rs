//! Routing: pure functions from a statement and the session's view to what the session does
//! with it: [`decide::decide`] returns the [`decide::Command`] (answer, refuse, transaction
//! step, one backend, several shards), and [`route`] picks primary or replica for one that
//! runs on one backend. No I/O and no `.await`: the session performs what they say.

pub mod analysis;
pub mod builtins;
pub mod classify;
pub mod decide;
pub mod found_rows;
pub mod kill;
pub mod local;
pub mod prepared;
pub mod rewrite;
pub mod route;

pub use analysis::{analyze, Analysis, Feature};
pub use classify::{Hint, Kind};
pub use route::{Dest, Role, Route};

use crate::config::{Consistency, Fallback};
use crate::topology::balance::{self as replica, Need};
use crate::topology::gtid::GtidPos;
use crate::topology::Shard;

/// What the session contributes to a read's routing.
#[derive(Debug, Clone, Copy)]
pub struct ReadPolicy<'a> {
    /// The session's consistency level.
    pub consistency: Consistency,
    /// `[replicas] fallback`.
    pub fallback: Fallback,
    /// `[replicas] max_lag_ms`.
    pub max_lag_ms: u64,
    /// Replicas must have applied this: the session's own writes (`session`), or what its
    /// earlier reads are known to have seen (`monotonic`).
    pub floor: Option<&'a GtidPos>,
    /// `monotonic`: the replica the session read from last (index in the shard's list).
    pub sticky: Option<usize>,
    /// `monotonic`: what the last read saw is not known yet (no check of its server since):
    /// only that server, or the primary, is sure not to go back in time.
    pub unresolved: bool,
    /// Not this backend (it just failed).
    pub exclude: Option<&'a crate::topology::Backend>,
}

/// No replica may serve the read and `fallback = "error"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoReplica;

/// Decides where a statement on shard `shard_index` goes. `r` is uniform in [0, 1) and picks
/// among replicas by weight.
///
/// Writes, anything tied to the session's connection, and anything Sluice does not understand
/// go to the primary. Reads (and `START TRANSACTION READ ONLY`) go to a replica the
/// consistency level allows; a `sluice:replica` hint chooses among the replicas that level
/// allows (it never breaks `monotonic` or `session`; the caller turns `strong` into
/// `session` for it), a `sluice:primary` hint reads from the primary.
pub fn route(
    a: &Analysis<'_>,
    shard_index: usize,
    shard: &Shard,
    p: &ReadPolicy<'_>,
    r: f64,
) -> Result<Route, NoReplica> {
    let primary = Route::primary(shard_index);
    if !a.replica_candidate() || shard.replicas.is_empty() {
        return Ok(primary);
    }
    let level = p.consistency;
    let pick = |floor: Option<&GtidPos>| {
        let need = Need { floor, exclude: p.exclude };
        replica::choose(&shard.replicas, p.max_lag_ms, &need, r).map(|i| Route::replica(shard_index, i))
    };
    let found = match level {
        Consistency::Strong => return Ok(primary),
        Consistency::Eventual => pick(None),
        Consistency::Session => pick(p.floor),
        Consistency::Monotonic => {
            let sticky = p.sticky.filter(|&i| {
                shard.replicas.get(i).is_some_and(|b| {
                    p.exclude.is_none_or(|x| !std::ptr::eq(x, &**b)) && replica::effective_weight(b, p.max_lag_ms) > 0.0
                })
            });
            match sticky {
                Some(i) => Some(Route::replica(shard_index, i)),
                None if p.unresolved => return Ok(primary),
                None => pick(p.floor),
            }
        }
    };
    if let Some(route) = found {
        return Ok(route);
    }
    if level != Consistency::Eventual && pick(None).is_some() {
        // Replicas are fine, just not fresh enough for this session: the primary is.
        return Ok(primary);
    }
    match p.fallback {
        Fallback::Primary => Ok(primary.because(Dest::Fallback)),
        // Reading only system variables reads no data that could be stale or load the
        // primary: a driver's start-up query must not fail a connection.
        Fallback::Error if a.features.has(Feature::VariablesOnly) => Ok(primary.because(Dest::Fallback)),
        Fallback::Error => Err(NoReplica),
    }
}
