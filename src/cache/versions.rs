//! Table versions: a number per watched name, changed by every write that mentions it, and an
//! epoch changed by writes whose effects cannot be named (DDL, routines) and by `SLUICE FLUSH
//! CACHE`. Only names some entry or fill depends on are kept ("watched"); a write's other
//! names change nothing, because no stored answer depends on them and a fill that starts
//! later reads after the write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

/// Watched names kept at most; past it the map starts over with a new epoch (every entry
/// ends, which is always safe).
const MAX_WATCHED: usize = 200_000;

/// One invalidation, as applied here and published to other instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bump {
    Names(Vec<Box<str>>),
    Everything,
}

impl Bump {
    /// The form published on Redis: `*` for everything, else the names separated by NUL.
    pub fn encode(&self) -> String {
        match self {
            Bump::Everything => "*".to_string(),
            Bump::Names(n) => n.join("\0"),
        }
    }

    /// Reads a published bump (anything unexpected is taken as everything).
    pub fn decode(s: &str) -> Bump {
        if s == "*" || s.is_empty() {
            return Bump::Everything;
        }
        Bump::Names(s.split('\0').map(Box::from).collect())
    }
}

/// The versions.
#[derive(Debug, Default)]
pub struct Versions {
    epoch: AtomicU64,
    names: RwLock<HashMap<Box<str>, u64>>,
    next: AtomicU64,
}

impl Versions {
    /// The epoch and the current version of each of `deps`, which are watched from now on.
    pub fn watch(&self, deps: &[Box<str>]) -> (u64, Vec<u64>) {
        let epoch = self.epoch.load(Ordering::Acquire);
        if let Ok(names) = self.names.read() {
            let got: Option<Vec<u64>> = deps.iter().map(|d| names.get(d).copied()).collect();
            if let Some(v) = got {
                return (epoch, v);
            }
        }
        let Ok(mut names) = self.names.write() else { return (u64::MAX, vec![u64::MAX; deps.len()]) };
        if names.len() + deps.len() > MAX_WATCHED {
            names.clear();
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
        let v = deps.iter().map(|d| *names.entry(d.clone()).or_insert(0)).collect();
        (epoch, v)
    }

    /// True when nothing an entry captured has changed.
    pub fn unchanged(&self, epoch: u64, deps: &[(Box<str>, u64)]) -> bool {
        if self.epoch.load(Ordering::Acquire) != epoch {
            return false;
        }
        let Ok(names) = self.names.read() else { return false };
        deps.iter().all(|(n, v)| names.get(n).copied().unwrap_or(0) == *v)
    }

    /// Applies a bump.
    pub fn bump(&self, b: &Bump) {
        match b {
            Bump::Everything => {
                if let Ok(mut names) = self.names.write() {
                    names.clear();
                }
                self.epoch.fetch_add(1, Ordering::AcqRel);
            }
            Bump::Names(list) => {
                let Ok(mut names) = self.names.write() else { return };
                for n in list {
                    if let Some(v) = names.get_mut(n) {
                        *v = self.next.fetch_add(1, Ordering::AcqRel) + 1;
                    }
                }
            }
        }
    }

    /// Names watched now.
    pub fn watched(&self) -> usize {
        self.names.read().map(|n| n.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<Box<str>> {
        v.iter().map(|s| Box::from(*s)).collect()
    }

    #[test]
    fn a_bump_ends_what_depends_on_it_and_nothing_else() {
        let v = Versions::default();
        let deps = names(&["t", "c"]);
        let (e, got) = v.watch(&deps);
        let captured: Vec<(Box<str>, u64)> = deps.iter().cloned().zip(got).collect();
        assert!(v.unchanged(e, &captured));
        v.bump(&Bump::Names(names(&["u", "x"])));
        assert!(v.unchanged(e, &captured), "other names");
        v.bump(&Bump::Names(names(&["c"])));
        assert!(!v.unchanged(e, &captured));
        // Watched again after the bump: the new version holds until the next one.
        let (e2, got2) = v.watch(&deps);
        let again: Vec<(Box<str>, u64)> = deps.iter().cloned().zip(got2).collect();
        assert!(v.unchanged(e2, &again));
        v.bump(&Bump::Everything);
        assert!(!v.unchanged(e2, &again), "everything");
        assert_eq!(v.watched(), 0);
    }

    #[test]
    fn bumps_round_trip_through_their_published_form() {
        for b in [Bump::Everything, Bump::Names(names(&["t"])), Bump::Names(names(&["a", "b c"]))] {
            assert_eq!(Bump::decode(&b.encode()), b);
        }
        assert_eq!(Bump::decode(""), Bump::Everything);
    }
}
