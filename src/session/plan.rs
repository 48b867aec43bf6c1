//! Where the session's next statement goes: the read policy assembled from the session's
//! consistency level, its own writes and reads, hints and any held-back transaction, handed
//! to the pure [`router::route`] decision.

use super::Session;
use crate::config::Consistency;
use crate::protocol::err::ErrPacket;
use crate::router::decide::TargetShard;
use crate::router::{self, Analysis, ReadPolicy, Route};
use crate::topology::Backend;

impl Session {
    /// Where statements go when nothing routes them elsewhere: the default shard's primary.
    pub(super) fn default_route(&self) -> Route {
        Route::primary(self.snap.topology.default_shard)
    }

    /// The session's consistency level: its own `SET @@sluice_consistency`, else the config's.
    pub(super) fn consistency(&self) -> Consistency {
        self.consistency_in(&self.snap.config)
    }

    /// [`Session::consistency`] under a config already loaded.
    pub(super) fn consistency_in(&self, config: &crate::config::Config) -> Consistency {
        self.reads.level.unwrap_or(config.replicas.consistency)
    }

    /// The level read `a` is held to: the session's, adjusted for its hint and for writes
    /// whose GTID is unknown.
    pub(super) fn read_level(&self, a: &Analysis<'_>) -> Consistency {
        let mut consistency = self.consistency_in(&self.snap.config);
        if consistency == Consistency::Strong && a.hint == Some(router::Hint::Replica) {
            // The application asked for a replica: it may read a replica that has this
            // session's own writes, never one that would not show them.
            consistency = Consistency::Session;
        }
        if a.hint == Some(router::Hint::Primary) || (consistency == Consistency::Session && self.state.untracked_write)
        {
            consistency = Consistency::Strong;
        }
        consistency
    }

    /// Decides where a statement goes (see [`router::route`]); the pinned connection's route
    /// when the session holds one. `target` is the shard the sharding rules chose; `exclude`
    /// is a backend that just failed this statement.
    pub(super) fn plan(
        &mut self,
        analysis: Option<&Analysis<'_>>,
        target: Option<TargetShard>,
        exclude: Option<&Backend>,
    ) -> Result<Route, ErrPacket> {
        if let Some(l) = &self.lease {
            return Ok(l.route);
        }
        let snap = &self.snap;
        // A shard chosen by the sharding rules means that shard only under the snapshot they
        // ran on: after a reload in between, the statement is refused, not sent elsewhere.
        let shard_index = match target {
            Some(t) if t.version != snap.version => return Err(ErrPacket::topology_changed()),
            Some(t) => t.index,
            None => snap.topology.default_shard,
        };
        // A held-back BEGIN or autocommit off: the statement is part of a transaction.
        let in_transaction = self.state.txn().held().is_some() || self.state.autocommit_off();
        let Some(a) = analysis.filter(|_| !in_transaction) else { return Ok(Route::primary(shard_index)) };
        let shard = snap.topology.shard(shard_index).ok_or_else(ErrPacket::topology_changed)?;
        let consistency = self.read_level(a);
        let (sticky, unresolved) =
            if consistency == Consistency::Monotonic { self.reads.resolve(shard) } else { (None, false) };
        let floor = match consistency {
            Consistency::Session => Some(&self.state.written),
            Consistency::Monotonic => Some(&self.reads.floor),
            _ => None,
        };
        let cfg = &snap.config.replicas;
        let policy = ReadPolicy {
            consistency,
            fallback: cfg.fallback,
            max_lag_ms: cfg.max_lag_ms,
            floor,
            sticky,
            unresolved,
            exclude,
        };
        // Only a read that may go to a replica needs a random draw.
        let r = if shard.replicas.is_empty() || consistency == Consistency::Strong || !a.replica_candidate() {
            0.0
        } else {
            rand::random()
        };
        router::route(a, shard_index, shard, &policy, r).map_err(|_| ErrPacket::no_replica(&shard.name))
    }
}
