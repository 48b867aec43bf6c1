//! Which replica serves a read (the live topology's side of routing: the router decides whether a
//! read may go to a replica, this picks which).
//!
//! Among the replicas the monitor judges eligible (up, both replication threads running, lag
//! known and at most `max_lag_ms`), one is picked at random in proportion to its effective
//! weight:
//!
//! ```text
//! effective = weight × max(0.1, 1 − lag_ms / max_lag_ms) / (1 + in_flight)
//! ```
//!
//! so a replica falling behind gets less traffic before it is cut off, one that is slow to
//! answer (statements pile up on it) gets less, and a weight of 0 takes a replica out of
//! rotation without removing it. Reads the monitor's atomics only: never waits.

use super::gtid::GtidPos;
use super::Backend;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The lowest share a lagging (but still eligible) replica keeps, relative to a fresh one.
pub const LAG_FLOOR: f64 = 0.1;

/// A replica's effective weight now; 0 when it may not serve reads.
pub fn effective_weight(b: &Backend, max_lag_ms: u64) -> f64 {
    if !b.health.eligible(max_lag_ms) || b.drained.load(Ordering::Relaxed) {
        return 0.0;
    }
    let weight = f64::from(b.weight.load(Ordering::Relaxed));
    let lag = b.health.lag_ms().unwrap_or(0) as f64;
    let fresh = if max_lag_ms == 0 { 1.0 } else { (1.0 - lag / max_lag_ms as f64).max(LAG_FLOOR) };
    weight * fresh / (1.0 + f64::from(b.in_flight.load(Ordering::Relaxed)))
}

/// What a read must see.
#[derive(Debug, Clone, Copy, Default)]
pub struct Need<'a> {
    /// Only replicas whose applied GTID position covers this.
    pub floor: Option<&'a GtidPos>,
    /// Not this backend (it just failed).
    pub exclude: Option<&'a Backend>,
}

fn weight_for(b: &Backend, max_lag_ms: u64, need: &Need<'_>) -> f64 {
    if need.exclude.is_some_and(|x| std::ptr::eq(x, b)) {
        return 0.0;
    }
    let w = effective_weight(b, max_lag_ms);
    if w > 0.0 {
        if let Some(floor) = need.floor.filter(|f| !f.is_empty()) {
            if !b.health.gtid().0.covers(floor) {
                return 0.0;
            }
        }
    }
    w
}

/// Picks a replica index with `r` uniform in [0, 1); `None` when none qualifies.
pub fn choose(replicas: &[Arc<Backend>], max_lag_ms: u64, need: &Need<'_>, r: f64) -> Option<usize> {
    let mut weights = [0.0f64; 16];
    let many = replicas.len() > weights.len();
    let mut total = 0.0;
    for (i, b) in replicas.iter().enumerate() {
        let w = weight_for(b, max_lag_ms, need);
        if !many {
            weights[i] = w;
        }
        total += w;
    }
    if total <= 0.0 {
        return None;
    }
    let mut target = r * total;
    let mut last = None;
    for (i, b) in replicas.iter().enumerate() {
        let w = if many { weight_for(b, max_lag_ms, need) } else { weights[i] };
        if w <= 0.0 {
            continue;
        }
        last = Some(i);
        if target < w {
            return Some(i);
        }
        target -= w;
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PoolConfig;
    use crate::metrics::Metrics;
    use crate::topology::Role;

    fn replica(weight: u32, lag_ms: Option<u64>) -> Arc<Backend> {
        let b = Arc::new(Backend::new(
            "127.0.0.1:1",
            Role::Replica,
            "s",
            &PoolConfig::default(),
            &Arc::new(Metrics::new()),
        ));
        b.weight.store(weight, Ordering::Relaxed);
        b.health.set_up(true);
        b.health.set_observation(lag_ms, Some(true));
        b
    }

    fn shares(rs: &[Arc<Backend>], need: &Need<'_>) -> Vec<usize> {
        let mut n = vec![0; rs.len() + 1];
        for k in 0..1000 {
            match choose(rs, 1000, need, k as f64 / 1000.0) {
                Some(i) => n[i] += 1,
                None => n[rs.len()] += 1,
            }
        }
        n
    }

    #[test]
    fn picks_in_proportion_to_weight() {
        let rs = [replica(100, Some(0)), replica(300, Some(0))];
        assert_eq!(shares(&rs, &Need::default()), vec![250, 750, 0]);
        rs[0].weight.store(0, Ordering::Relaxed);
        assert_eq!(shares(&rs, &Need::default()), vec![0, 1000, 0], "weight 0 takes a replica out");
    }

    #[test]
    fn lag_and_load_lower_the_weight_and_unknown_lag_excludes() {
        let rs = [replica(100, Some(500)), replica(100, Some(0))];
        assert!((effective_weight(&rs[0], 1000) - 50.0).abs() < 1e-9);
        assert_eq!(shares(&rs, &Need::default()), vec![334, 666, 0]);
        rs[0].health.set_observation(Some(999), Some(true));
        assert!((effective_weight(&rs[0], 1000) - 10.0).abs() < 1e-9, "floor at 10%");
        rs[0].health.set_observation(Some(1001), Some(true));
        assert_eq!(effective_weight(&rs[0], 1000), 0.0, "past max_lag_ms");
        rs[0].health.set_observation(None, Some(true));
        assert_eq!(effective_weight(&rs[0], 1000), 0.0, "unknown lag");
        rs[1].in_flight.store(3, Ordering::Relaxed);
        assert!((effective_weight(&rs[1], 1000) - 25.0).abs() < 1e-9);
        rs[1].health.set_up(false);
        assert_eq!(shares(&rs, &Need::default()), vec![0, 0, 1000]);
    }

    #[test]
    fn a_floor_keeps_replicas_that_have_not_applied_it_out() {
        let rs = [replica(100, Some(0)), replica(100, Some(0))];
        rs[0].health.set_gtid(GtidPos::parse("0-1-10").unwrap(), 5);
        rs[1].health.set_gtid(GtidPos::parse("0-1-12").unwrap(), 5);
        let floor = GtidPos::parse("0-1-11").unwrap();
        let need = Need { floor: Some(&floor), exclude: None };
        assert_eq!(shares(&rs, &need), vec![0, 1000, 0]);
        let need = Need { floor: Some(&floor), exclude: Some(&rs[1]) };
        assert_eq!(shares(&rs, &need), vec![0, 0, 1000]);
    }
}
