//! How a session's reads choose their server: its consistency level and what it must not
//! read behind (see [`router::route`](crate::router::route)).
//!
//! * `session`: the floor is the session's own writes (`last_gtid` from session tracking,
//!   kept in [`SessionState::written`](super::state::SessionState::written)).
//! * `monotonic`: the session stays on the replica it read from while that replica stays
//!   eligible. When it must move, the new server must have applied at least what the last
//!   read saw; that is known once the monitor has checked the old server *after* the read
//!   (positions only grow), and until then only the primary is sure to be newer.

use crate::config::Consistency;
use crate::topology::gtid::GtidPos;
use crate::topology::health::now_ms;
use crate::topology::{Backend, Shard};
use std::sync::Arc;

/// A session's read state.
#[derive(Debug, Default)]
pub struct Reads {
    /// Set by `SET @@sluice_consistency`; otherwise `[replicas] consistency` applies (and
    /// follows reloads).
    pub level: Option<Consistency>,
    /// `monotonic`: the server of the last read, and when that read finished ([`now_ms`]).
    last: Option<(Arc<Backend>, u64)>,
    /// `monotonic`: what earlier reads are known to have seen.
    pub floor: GtidPos,
}

impl Reads {
    /// `monotonic`: the index of the last read's replica in `shard` (if it is one), and
    /// whether what that read saw is still unknown. Learns the floor once it is known.
    pub fn resolve(&mut self, shard: &Shard) -> (Option<usize>, bool) {
        let Some((b, at)) = &self.last else { return (None, false) };
        let sticky = shard.replicas.iter().position(|r| Arc::ptr_eq(r, b));
        let (pos, checked_at) = b.health.gtid();
        if checked_at > *at {
            self.floor.merge(&pos);
            return (sticky, false);
        }
        (sticky, true)
    }

    /// Records a read that just finished on `backend`.
    pub fn read_on(&mut self, backend: &Arc<Backend>) {
        self.read_at(backend, now_ms());
    }

    /// Records a read that finished on `backend` at `at_ms` (an answer from the cache is a
    /// read where and when its entry was read).
    pub fn read_at(&mut self, backend: &Arc<Backend>, at_ms: u64) {
        self.last = Some((backend.clone(), at_ms));
    }
}
