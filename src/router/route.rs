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

/// Where one statement runs, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Index of the shard in the topology.
    pub shard: usize,
    /// Primary or replica.
    pub role: Role,
    /// Why, for logs and metric labels.
    pub reason: &'static str,
}

impl Default for Route {
    fn default() -> Self {
        Route { shard: 0, role: Role::Primary, reason: "default" }
    }
}
