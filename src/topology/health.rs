//! What the monitor last saw of one backend, in atomics: the query path reads it without
//! locks or waiting, and the monitor is its only writer.

use super::gtid::GtidPos;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Lag value meaning "not known": no heartbeat, replication stopped, or NULL
/// Seconds_Behind_Master. Unknown lag never counts as zero.
pub const LAG_UNKNOWN: u64 = u64::MAX;

/// One backend's health.
#[derive(Debug)]
pub struct BackendHealth {
    checked: AtomicBool,
    up: AtomicBool,
    /// The latest check failed (before `down_after` of them mark the backend down).
    failing: AtomicBool,
    lag_ms: AtomicU64,
    /// 0 unknown, 1 off, 2 on.
    read_only: AtomicU8,
    /// Replicas: `@@gtid_slave_pos`; primaries: `@@gtid_binlog_pos`.
    gtid: ArcSwap<GtidPos>,
    /// [`now_ms`] when the last successful check began; 0 before one.
    checked_at_ms: AtomicU64,
}

/// Milliseconds on a monotonic clock private to this process (starts near 1), for comparing
/// when the monitor looked with when a session read.
pub fn now_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

impl Default for BackendHealth {
    fn default() -> Self {
        BackendHealth {
            checked: AtomicBool::new(false),
            up: AtomicBool::new(false),
            failing: AtomicBool::new(false),
            lag_ms: AtomicU64::new(LAG_UNKNOWN),
            read_only: AtomicU8::new(0),
            gtid: ArcSwap::from_pointee(GtidPos::default()),
            checked_at_ms: AtomicU64::new(0),
        }
    }
}

impl BackendHealth {
    /// True once the monitor finished a first check.
    pub fn checked(&self) -> bool {
        self.checked.load(Ordering::Relaxed)
    }

    /// Up as the monitor judges it (with hysteresis).
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Down, or its latest check failed: the backend may be gone, even if not yet marked down.
    pub fn unreachable(&self) -> bool {
        self.checked() && (!self.is_up() || self.failing.load(Ordering::Relaxed))
    }

    /// Records whether the latest check succeeded.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
    }

    /// Replication lag in milliseconds, if known.
    pub fn lag_ms(&self) -> Option<u64> {
        Some(self.lag_ms.load(Ordering::Relaxed)).filter(|&l| l != LAG_UNKNOWN)
    }

    /// `read_only`, if known.
    pub fn read_only(&self) -> Option<bool> {
        match self.read_only.load(Ordering::Relaxed) {
            1 => Some(false),
            2 => Some(true),
            _ => None,
        }
    }

    /// The GTID position the last successful check read, and when that check began
    /// ([`now_ms`]; 0 when there was none). Everything applied by then is in the position.
    pub fn gtid(&self) -> (Arc<GtidPos>, u64) {
        (self.gtid.load_full(), self.checked_at_ms.load(Ordering::Acquire))
    }

    /// A replica that may serve reads: up, replicating, lag known and at most `max_lag_ms`.
    pub fn eligible(&self, max_lag_ms: u64) -> bool {
        self.is_up() && self.lag_ms().is_some_and(|l| l <= max_lag_ms)
    }

    pub fn set_up(&self, up: bool) {
        self.checked.store(true, Ordering::Relaxed);
        self.up.store(up, Ordering::Relaxed);
    }

    /// Records the position a check that began at `began_ms` read.
    pub fn set_gtid(&self, pos: GtidPos, began_ms: u64) {
        self.gtid.store(Arc::new(pos));
        self.checked_at_ms.store(began_ms, Ordering::Release);
    }

    pub fn set_observation(&self, lag_ms: Option<u64>, read_only: Option<bool>) {
        self.lag_ms.store(lag_ms.unwrap_or(LAG_UNKNOWN), Ordering::Relaxed);
        self.read_only.store(
            match read_only {
                None => 0,
                Some(false) => 1,
                Some(true) => 2,
            },
            Ordering::Relaxed,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_lag_is_never_eligible() {
        let h = BackendHealth::default();
        assert!(!h.eligible(u64::MAX - 1));
        h.set_up(true);
        assert!(!h.eligible(1000), "up but lag unknown");
        h.set_observation(Some(200), Some(true));
        assert!(h.eligible(1000));
        assert!(!h.eligible(100));
        h.set_observation(None, Some(true));
        assert!(!h.eligible(1000));
        assert_eq!(h.read_only(), Some(true));
    }
}
