//! The routing decision as a value. Its default is the safe one: the primary.

/// Which server of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// The writable server. The default: a statement whose routing is unclear goes here.
    #[default]
    Primary,
    /// A read replica.
    Replica,
}

impl Role {
    /// Position in per-role arrays ([`Metrics::by_role`](crate::metrics::Metrics::by_role)).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name for logs, metrics and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
        }
    }
}

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
