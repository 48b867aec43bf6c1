//! Failed logins slowed down per client address, as MySQL's `connection_control` does: after
//! `login_failures_before_delay` failures within `login_failure_window_s`, every further login
//! attempt from that address waits before it is answered, twice as long after each failure
//! (from 250 ms up to `login_max_delay_ms`). A successful login clears the address. Guessing
//! passwords through Sluice becomes slow without locking anybody out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The first delay once the threshold is passed.
const FIRST_DELAY: Duration = Duration::from_millis(250);

/// Addresses remembered at most; past it, expired entries are dropped first, then the oldest.
const MAX_ADDRESSES: usize = 100_000;

/// The settings the throttle reads (from `[proxy]`).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub failures_before_delay: u32,
    pub window: Duration,
    pub max_delay: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    /// The first failure of the current window.
    since: Instant,
}

/// Failed logins by client address.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    by_addr: Mutex<HashMap<IpAddr, Entry>>,
}

impl LoginThrottle {
    /// How long a login attempt from `addr` waits before its answer.
    pub fn delay(&self, addr: IpAddr, now: Instant, p: &Policy) -> Duration {
        let map = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        let Some(e) = map.get(&addr).filter(|e| now.duration_since(e.since) < p.window) else { return Duration::ZERO };
        delay_after(e.failures, p)
    }

    /// Records a failed login from `addr`.
    pub fn failed(&self, addr: IpAddr, now: Instant, p: &Policy) {
        let mut map = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&addr) {
            map.retain(|_, e| now.duration_since(e.since) < p.window);
            if map.len() >= MAX_ADDRESSES {
                if let Some(oldest) = map.iter().min_by_key(|(_, e)| e.since).map(|(a, _)| *a) {
                    map.remove(&oldest);
                }
            }
        }
        let e = map.entry(addr).or_insert(Entry { failures: 0, since: now });
        if now.duration_since(e.since) >= p.window {
            *e = Entry { failures: 0, since: now };
        }
        e.failures = e.failures.saturating_add(1);
    }

    /// A login from `addr` succeeded: its failures are forgotten.
    pub fn succeeded(&self, addr: IpAddr) {
        self.by_addr.lock().unwrap_or_else(|e| e.into_inner()).remove(&addr);
    }
}

/// The delay after `failures` failures in the window.
fn delay_after(failures: u32, p: &Policy) -> Duration {
    if p.failures_before_delay == 0 || failures < p.failures_before_delay {
        return Duration::ZERO;
    }
    let doublings = (failures - p.failures_before_delay).min(20);
    FIRST_DELAY.saturating_mul(1 << doublings).min(p.max_delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy =
        Policy { failures_before_delay: 3, window: Duration::from_secs(60), max_delay: Duration::from_secs(2) };

    #[test]
    fn delays_grow_after_the_threshold_and_a_success_clears_them() {
        let t = LoginThrottle::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let now = Instant::now();
        let mut seen = Vec::new();
        for _ in 0..7 {
            seen.push(t.delay(a, now, &P).as_millis());
            t.failed(a, now, &P);
        }
        assert_eq!(seen, vec![0, 0, 0, 250, 500, 1000, 2000]);
        assert_eq!(t.delay(b, now, &P), Duration::ZERO, "another address is not slowed");
        t.succeeded(a);
        assert_eq!(t.delay(a, now, &P), Duration::ZERO);
    }

    #[test]
    fn failures_expire_with_their_window_and_zero_turns_it_off() {
        let t = LoginThrottle::default();
        let a: IpAddr = "10.0.0.3".parse().unwrap();
        let now = Instant::now();
        for _ in 0..5 {
            t.failed(a, now, &P);
        }
        assert!(t.delay(a, now, &P) > Duration::ZERO);
        assert_eq!(t.delay(a, now + Duration::from_secs(61), &P), Duration::ZERO);
        t.failed(a, now + Duration::from_secs(61), &P);
        assert_eq!(t.delay(a, now + Duration::from_secs(61), &P), Duration::ZERO, "a new window starts at 1");
        let off = Policy { failures_before_delay: 0, ..P };
        assert_eq!(delay_after(1000, &off), Duration::ZERO);
    }
}
