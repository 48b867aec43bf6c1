//! The result cache: answers to plain reads, stored as the bytes the client was sent, served
//! again while nothing they depend on changed and the session's consistency level allows it.
//!
//! * **What**: opt-in (`[[cache.rules]]`, `/* sluice:cache ttl=N */`), only deterministic
//!   reads outside transactions ([`eligible`], [`rules`]).
//! * **Invalidation**: every statement Sluice relays that is not a plain read bumps a version
//!   for each name it mentions ([`versions`]), DDL and routines bump everything, and a
//!   transaction's names are bumped again when it ends. An entry holds the versions of its
//!   names as they were *before* its read was sent; it is served only while they are
//!   unchanged, and not stored if one changed while the read ran, so no write that completed
//!   after the read started is ever hidden (no invalidation race).
//! * **Consistency**: an entry remembers when its read started on Sluice's clock and where it
//!   ran; see [`Entry::serves`] and `session::cached` for the rule per level.
//! * **Memory**: a moka cache weighed by encoded size, capped by `max_bytes`.
//! * **Single flight**: identical misses wait for the first ([`flight`]).

pub mod eligible;
mod flight;
pub mod redis;
pub mod rules;
mod versions;

pub use flight::{Flight, Joined, Lead};
pub use rules::{Allowed, Rules};
pub use versions::Versions;

use crate::config::{CacheConfig, Consistency};
use crate::metrics::CacheMetrics;
use crate::topology::gtid::GtidPos;
use crate::topology::Backend;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a read was not served nor stored (index into [`CacheMetrics::refused`], whose labels
/// are `metrics::CACHE_REFUSALS` in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    NonDeterministic = 0,
    SideEffect = 1,
    NoRule = 2,
    /// The session holds state a cached answer would ignore (pinned, in a transaction).
    SessionState = 3,
    TooLarge = 4,
    ErrorOrWarnings = 5,
    /// A write to one of its names completed while the read ran.
    ChangedDuringRead = 6,
    /// Read on a replica whose position before the read is not known to cover every write
    /// Sluice had relayed.
    ReplicaPositionUnknown = 7,
    /// An entry existed, but the session's consistency level may not be served it.
    Consistency = 8,
    /// `invalidation = "redis"` and the subscription is not live.
    LinkDown = 9,
}

impl Refused {
    /// The metric label (`metrics::CACHE_REFUSALS` is indexed by the discriminant).
    pub fn label(self) -> &'static str {
        crate::metrics::CACHE_REFUSALS[self as usize]
    }
}

impl From<eligible::Refusal> for Refused {
    fn from(r: eligible::Refusal) -> Self {
        match r {
            eligible::Refusal::NonDeterministic => Refused::NonDeterministic,
            eligible::Refusal::SideEffect => Refused::SideEffect,
            eligible::Refusal::NoRule => Refused::NoRule,
        }
    }
}

/// One stored answer.
#[derive(Debug)]
pub struct Entry {
    /// The response frames exactly as the client was sent them (sequence ids from 1).
    pub bytes: Bytes,
    /// Names the read depends on and their versions before it was sent.
    deps: Box<[(Box<str>, u64)]>,
    /// [`Versions::epoch`] before it was sent.
    epoch: u64,
    /// Sluice's clock when the read started: sessions whose last write came later are not
    /// served it under `session` consistency.
    pub started: u64,
    /// Where it ran, and when the read finished (ms): monotonic reads treat a hit as a read
    /// there at that time.
    pub backend: Arc<Backend>,
    pub from_replica: bool,
    pub finished_ms: u64,
    /// Rows in it (what FOUND_ROWS() reports after it).
    pub rows: u64,
    expires: Instant,
    weight: u32,
}

impl Entry {
    /// Whether the session's level allows this entry, given when its last write happened on
    /// Sluice's clock. `monotonic` also needs the session's read history (the caller's part).
    pub fn serves(&self, level: Consistency, last_write: u64) -> bool {
        match level {
            Consistency::Eventual | Consistency::Monotonic => true,
            // The read started after the session's last write returned: it saw that write
            // (from the primary, or from a replica that had applied every write by then).
            Consistency::Session => self.started > last_write,
            Consistency::Strong => !self.from_replica,
        }
    }
}

/// What a read that may be stored captured before it was sent.
#[derive(Debug)]
pub struct Fill {
    deps: Vec<(Box<str>, u64)>,
    epoch: u64,
    started: u64,
    started_ms: u64,
    /// Every write position Sluice knew of when the read started.
    written: GtidPos,
}

/// The cache, shared by every session (kept across reloads; `[cache]` limits are read from
/// each snapshot's config when they are used).
pub struct Cache {
    entries: moka::sync::Cache<Bytes, Arc<Entry>>,
    pub versions: Versions,
    flights: flight::Flights,
    metrics: CacheMetrics,
    /// Sluice's clock: ticks at every write a session completes and every read that fills.
    clock: AtomicU64,
    /// Merged `last_gtid` of every write relayed.
    written: Mutex<GtidPos>,
    /// A write changed rows without reporting a GTID: replica positions prove nothing.
    untracked: AtomicBool,
    /// Bumps to publish to other instances (`invalidation = "redis"`), and the receiving end
    /// until the Redis task takes it.
    outbox: Option<tokio::sync::mpsc::UnboundedSender<versions::Bump>>,
    inbox: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<versions::Bump>>>,
    /// This process among the instances sharing the channel (its own messages are skipped).
    pub instance: u64,
    /// False while other instances' bumps cannot be heard (Redis mode, subscription not
    /// live): nothing is served then.
    pub link_up: AtomicBool,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("entries", &self.entries.entry_count()).finish_non_exhaustive()
    }
}

impl Cache {
    /// A cache of at most `cfg.max_bytes`.
    pub fn new(cfg: &CacheConfig, metrics: CacheMetrics) -> Cache {
        let evictions = metrics.evictions.clone();
        let entries = moka::sync::Cache::builder()
            .max_capacity(cfg.max_bytes)
            .weigher(|_k: &Bytes, e: &Arc<Entry>| e.weight)
            .eviction_listener(move |_k, _v, cause| {
                if cause == moka::notification::RemovalCause::Size {
                    evictions.inc();
                }
            })
            .build();
        let redis = cfg.invalidation == crate::config::Invalidation::Redis;
        let (outbox, inbox) = match redis {
            true => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                (Some(tx), Some(rx))
            }
            false => (None, None),
        };
        Cache {
            entries,
            versions: Versions::default(),
            flights: flight::Flights::default(),
            metrics,
            clock: AtomicU64::new(1),
            written: Mutex::new(GtidPos::default()),
            untracked: AtomicBool::new(false),
            outbox,
            inbox: Mutex::new(inbox),
            instance: rand::random(),
            link_up: AtomicBool::new(!redis),
        }
    }

    /// The bumps to publish, for the Redis task (once).
    pub fn take_outbox(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<versions::Bump>> {
        self.inbox.lock().ok()?.take()
    }

    /// Counts a refusal.
    pub fn refused(&self, why: Refused) {
        self.metrics.refused[why as usize].inc();
    }

    /// A valid, unexpired entry for `key` (an expired or stale one is removed).
    pub fn get(&self, key: &Bytes) -> Option<Arc<Entry>> {
        if !self.link_up.load(Ordering::Acquire) {
            self.refused(Refused::LinkDown);
            return None;
        }
        let e = self.entries.get(key)?;
        if e.expires > Instant::now() && self.versions.unchanged(e.epoch, &e.deps) {
            return Some(e);
        }
        self.entries.invalidate(key);
        None
    }

    /// Counts a hit.
    pub fn hit(&self) {
        self.metrics.hits.inc();
    }

    /// Joins the flight for `key`: the first miss leads, the others wait for it.
    pub fn join(&self, key: &Bytes) -> Joined {
        self.flights.join(key)
    }

    /// Waits (at most `limit`) for a flight another session leads.
    pub async fn wait(&self, flight: Flight, limit: Duration) {
        self.metrics.flight_waits.inc();
        flight.wait(limit).await;
    }

    /// Before a read that may be stored is sent: the versions of its names and what Sluice
    /// knows of writes now.
    pub fn begin_fill(&self, deps: &[Box<str>]) -> Fill {
        self.metrics.misses.inc();
        let (epoch, versions) = self.versions.watch(deps);
        let written = self.written.lock().map(|w| w.clone()).unwrap_or_default();
        Fill {
            deps: deps.iter().cloned().zip(versions).collect(),
            epoch,
            started: self.clock.fetch_add(1, Ordering::AcqRel),
            started_ms: crate::topology::health::now_ms(),
            written,
        }
    }

    /// Stores the answer a fill produced, unless a name it depends on changed while it ran
    /// or the replica it ran on is not known to have applied every write relayed before it.
    #[allow(clippy::too_many_arguments)]
    pub fn store(
        &self,
        key: Bytes,
        fill: Fill,
        bytes: Bytes,
        rows: u64,
        backend: Arc<Backend>,
        ttl: Duration,
        max_entry_bytes: u64,
    ) -> Result<(), Refused> {
        let from_replica = backend.role == crate::topology::Role::Replica;
        if from_replica {
            let (pos, checked_at) = backend.health.gtid();
            // A position checked before the read was sent is a floor of what it saw.
            let known = checked_at < fill.started_ms && pos.covers(&fill.written);
            if !known || self.untracked.load(Ordering::Acquire) {
                return Err(Refused::ReplicaPositionUnknown);
            }
        }
        if !self.versions.unchanged(fill.epoch, &fill.deps) {
            return Err(Refused::ChangedDuringRead);
        }
        let deps_size: usize = fill.deps.iter().map(|(n, _)| n.len() + 24).sum();
        let weight = bytes.len() + key.len() + deps_size + std::mem::size_of::<Entry>() + 64;
        if weight as u64 > max_entry_bytes {
            return Err(Refused::TooLarge);
        }
        let entry = Entry {
            bytes,
            deps: fill.deps.into_boxed_slice(),
            epoch: fill.epoch,
            started: fill.started,
            backend,
            from_replica,
            finished_ms: crate::topology::health::now_ms(),
            rows,
            expires: Instant::now() + ttl,
            weight: u32::try_from(weight).unwrap_or(u32::MAX),
        };
        self.entries.insert(key, Arc::new(entry));
        // Keeps the weighed size exact at once, so the cap holds at every moment.
        self.entries.run_pending_tasks();
        self.metrics.stores.inc();
        self.report();
        Ok(())
    }

    /// A session's statement that is not a plain read completed: `touches` ends the entries
    /// depending on it; `written` / `untracked` are what the session's writes reported.
    /// Returns the clock's time of this write (the session's new "last write").
    pub fn wrote(&self, touches: &eligible::Touches, written: &GtidPos, untracked: bool) -> u64 {
        if !written.is_empty() {
            if let Ok(mut w) = self.written.lock() {
                w.merge(written);
            }
        }
        if untracked {
            self.untracked.store(true, Ordering::Release);
        }
        self.invalidate(touches);
        self.clock.fetch_add(1, Ordering::AcqRel)
    }

    /// Bumps what `touches` names (here, and for the other instances when Redis is on).
    pub fn invalidate(&self, touches: &eligible::Touches) {
        let bump = match touches {
            eligible::Touches::Nothing => return,
            eligible::Touches::Everything => {
                self.metrics.invalidations[1].inc();
                versions::Bump::Everything
            }
            eligible::Touches::Names(names) => {
                self.metrics.invalidations[0].inc();
                versions::Bump::Names(names.clone())
            }
        };
        self.versions.bump(&bump);
        if let Some(out) = &self.outbox {
            let _ = out.send(bump);
        }
    }

    /// A bump another instance published.
    pub fn remote_bump(&self, bump: &versions::Bump) {
        self.metrics.invalidations[2].inc();
        self.versions.bump(bump);
    }

    /// `SLUICE FLUSH CACHE [table]`: every entry, or those depending on `table`.
    pub fn flush(&self, table: Option<&str>) {
        match table {
            Some(t) => self.invalidate(&eligible::Touches::Names(vec![t.to_ascii_lowercase().into()])),
            None => {
                self.invalidate(&eligible::Touches::Everything);
                self.entries.invalidate_all();
            }
        }
        self.entries.run_pending_tasks();
        self.report();
    }

    fn report(&self) {
        self.metrics.bytes.set(self.entries.weighted_size() as i64);
        self.metrics.entries.set(self.entries.entry_count() as i64);
    }

    /// For `SHOW SLUICE CACHE`: `(name, value)` rows.
    pub fn summary(&self) -> Vec<(&'static str, u64)> {
        self.entries.run_pending_tasks();
        self.report();
        let m = &self.metrics;
        let refused: u64 = m.refused.iter().map(|c| c.get()).sum();
        vec![
            ("entries", self.entries.entry_count()),
            ("bytes", self.entries.weighted_size()),
            ("hits", m.hits.get()),
            ("misses", m.misses.get()),
            ("stores", m.stores.get()),
            ("refused", refused),
            ("evictions", m.evictions.get()),
            ("invalidations", m.invalidations.iter().map(|c| c.get()).sum()),
            ("single_flight_waits", m.flight_waits.get()),
            ("watched_names", self.versions.watched() as u64),
        ]
    }

    /// Refusals by reason, for `SHOW SLUICE CACHE`.
    pub fn refusals(&self) -> Vec<(&'static str, u64)> {
        crate::metrics::CACHE_REFUSALS.iter().zip(&self.metrics.refused).map(|(l, c)| (*l, c.get())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_index_their_own_labels() {
        assert_eq!(Refused::NonDeterministic.label(), eligible::Refusal::NonDeterministic.label());
        assert_eq!(Refused::SideEffect.label(), eligible::Refusal::SideEffect.label());
        assert_eq!(Refused::NoRule.label(), eligible::Refusal::NoRule.label());
        assert_eq!(Refused::SessionState.label(), "session_state");
        assert_eq!(Refused::TooLarge.label(), "too_large");
        assert_eq!(Refused::ErrorOrWarnings.label(), "error_or_warnings");
        assert_eq!(Refused::ChangedDuringRead.label(), "changed_during_read");
        assert_eq!(Refused::ReplicaPositionUnknown.label(), "replica_position_unknown");
        assert_eq!(Refused::Consistency.label(), "consistency");
        assert_eq!(Refused::LinkDown.label(), "invalidation_link_down");
    }
}
