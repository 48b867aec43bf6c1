//! The routing decision as a value. Its default is the safe one: the primary.

pub use crate::topology::Role;

/// Why a statement went where it went, as the `destination` metric label reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dest {
    /// The primary, by rule (writes, session state, consistency, hints).
    #[default]
    Primary,
    /// A replica.
    Replica,
    /// The primary because no replica was eligible for a read.
    Fallback,
    /// A second attempt after the first replica failed before answering.
    Retry,
}

impl Dest {
    /// Every destination, in [`Dest::index`] order.
    pub const ALL: [Dest; 4] = [Dest::Primary, Dest::Replica, Dest::Fallback, Dest::Retry];

    /// Position in per-destination arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Dest::Primary => "primary",
            Dest::Replica => "replica",
            Dest::Fallback => "fallback",
            Dest::Retry => "retry",
        }
    }
}

/// Where one statement runs, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Route {
    /// Index of the shard in the topology.
    pub shard: usize,
    /// Primary or replica.
    pub role: Role,
    /// Index of the replica in the shard's list (when `role` is `Replica`).
    pub replica: usize,
    /// Why, for the metrics.
    pub dest: Dest,
}

impl Route {
    /// The shard's primary.
    pub fn primary(shard: usize) -> Route {
        Route { shard, ..Route::default() }
    }

    /// One of the shard's replicas.
    pub fn replica(shard: usize, replica: usize) -> Route {
        Route { shard, role: Role::Replica, replica, dest: Dest::Replica }
    }

    /// The same server, counted as a different destination.
    pub fn because(self, dest: Dest) -> Route {
        Route { dest, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metrics module knows labels only as strings in fixed positions; the router's
    /// indices must land on the label of the same name.
    #[test]
    fn metric_positions_match_the_metrics_labels() {
        for d in Dest::ALL {
            assert_eq!(crate::metrics::DESTINATIONS[d.index()], d.label());
        }
        for k in super::super::Kind::METRIC {
            assert_eq!(crate::metrics::KINDS[k.metric_index()], k.label());
        }
        for r in [Role::Primary, Role::Replica] {
            assert_eq!(crate::metrics::ROLES[r.index()], r.as_str());
        }
    }
}
