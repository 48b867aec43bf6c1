//! `[fleet]`: the registry of live Sluice instances in front of one topology.

use serde::Deserialize;
use toml::Spanned;

/// `[fleet]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// Keep a row for this instance in `table` on the default shard's primary. Unset: on when
    /// that primary has replicas (Sluice writes its heartbeat there already) or `[sharding]`
    /// is configured (resharding checks every instance paused writes); off otherwise, so no
    /// `sluice` schema appears on a server Sluice only fronts.
    pub enabled: Option<bool>,
    /// `schema.table` of the registry (created when missing).
    #[serde(default = "table")]
    pub table: Spanned<String>,
    /// How often the row is refreshed. An instance whose row is older than three intervals
    /// plus a second is not live.
    #[serde(default = "interval_ms")]
    pub interval_ms: u64,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig { enabled: None, table: table(), interval_ms: interval_ms() }
    }
}

fn table() -> Spanned<String> {
    Spanned::new(0..0, "sluice.fleet".to_string())
}

fn interval_ms() -> u64 {
    1_000
}
