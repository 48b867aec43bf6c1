//! `[cache]` and `[[cache.rules]]`: the result cache. Absent: nothing is cached, and
//! `/* sluice:cache */` hints are ignored.

use serde::Deserialize;
use toml::Spanned;

/// `[cache]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Hard cap on the bytes the entries weigh (their encoded answers, keys and table lists).
    #[serde(default = "max_bytes")]
    pub max_bytes: u64,
    /// Answers larger than this are not stored.
    #[serde(default = "max_entry_bytes")]
    pub max_entry_bytes: u64,
    /// How long a miss waits for an identical miss already running before it runs itself.
    #[serde(default = "single_flight_wait_ms")]
    pub single_flight_wait_ms: u64,
    /// The longest TTL a `/* sluice:cache ttl=N */` hint may ask for.
    #[serde(default = "max_hint_ttl_ms")]
    pub max_hint_ttl_ms: u64,
    /// `local`: table-version bumps stay in this process; `redis`: they are also published
    /// on `redis_channel` and bumps from other Sluice instances are applied here.
    #[serde(default)]
    pub invalidation: Invalidation,
    /// `redis://host:port` for `invalidation = "redis"`.
    pub redis_url: Option<Spanned<String>>,
    #[serde(default = "redis_channel")]
    pub redis_channel: String,
    /// What is cached: nothing unless a rule or a hint says so.
    #[serde(default)]
    pub rules: Vec<CacheRule>,
}

/// Where table-version bumps go.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Invalidation {
    #[default]
    Local,
    Redis,
}

/// `[[cache.rules]]`: reads of these tables, or of this fingerprint, are cached for `ttl_ms`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CacheRule {
    /// Table names (`t` or `schema.t`): a read is cached when every table it reads is listed.
    #[serde(default)]
    pub tables: Vec<String>,
    /// A statement fingerprint as `SHOW SLUICE DIGESTS` prints it (`SELECT c FROM t WHERE id = ?`).
    pub fingerprint: Option<String>,
    /// How long an entry may be served at most (writes relayed by Sluice end it sooner).
    pub ttl_ms: Spanned<u64>,
    /// Entries are shared by all users (by default each user has their own).
    #[serde(default)]
    pub shared: bool,
}

fn max_bytes() -> u64 {
    64 << 20
}
fn max_entry_bytes() -> u64 {
    1 << 20
}
fn single_flight_wait_ms() -> u64 {
    1_000
}
fn max_hint_ttl_ms() -> u64 {
    60_000
}
fn redis_channel() -> String {
    "sluice:cache".to_string()
}
