//! Sharding by a key column over a consistent-hash ring: the ring ([`ring`]), where a
//! statement goes ([`plan`]), and the live view the session uses ([`Sharding`]).

pub mod local;
pub mod merge;
pub mod plan;
pub mod ring;
pub mod scatter;
mod shape;
mod span;

pub use plan::Target;
pub use ring::{KeyValue, Ring};

use crate::config::ShardingConfig;
use crate::sql::lex::{Lexer, Token};

/// The sharding rules of one config snapshot.
#[derive(Debug)]
pub struct Sharding {
    pub ring: Ring,
    /// Shard-key column, lower-case.
    pub key: String,
    /// Sharded tables, lower-case.
    pub tables: Vec<String>,
    /// Topology index of each ring shard, in ring order.
    pub topology_index: Vec<usize>,
    /// `[sharding] allow_scatter_writes`.
    pub allow_scatter_writes: bool,
    /// `[sharding] max_scatter_rows`.
    pub max_scatter_rows: usize,
    /// `[sharding] max_scatter_bytes`.
    pub max_scatter_bytes: usize,
    /// `[sharding] cross_shard = "xa"`.
    pub xa: bool,
    /// `[sharding] pause_writes`.
    pub pause_writes: bool,
    /// Plans by statement shape (literals blanked), so the common statements are not parsed
    /// again ([`Sharding::plan_cached`]).
    cache: shape::PlanCache,
}

impl Sharding {
    /// Builds the rules; `index_of` maps a shard name to its topology index.
    pub fn new(cfg: &ShardingConfig, index_of: impl Fn(&str) -> usize) -> Sharding {
        let names: Vec<String> = cfg.ring.iter().map(|n| n.get_ref().clone()).collect();
        Sharding {
            topology_index: names.iter().map(|n| index_of(n)).collect(),
            ring: Ring::new(&names, cfg.vnodes),
            key: cfg.key.to_ascii_lowercase(),
            tables: cfg.tables.iter().map(|t| t.to_ascii_lowercase()).collect(),
            allow_scatter_writes: cfg.allow_scatter_writes,
            max_scatter_rows: cfg.max_scatter_rows,
            max_scatter_bytes: cfg.max_scatter_bytes,
            xa: cfg.cross_shard == crate::config::CrossShard::Xa,
            pause_writes: cfg.pause_writes,
            cache: Default::default(),
        }
    }

    /// True for a sharded table name (case-insensitive).
    pub fn is_sharded(&self, table: &str) -> bool {
        self.tables.iter().any(|t| t.eq_ignore_ascii_case(table))
    }

    /// Cheap pre-check: does any word of the statement name a sharded table? Only statements
    /// that do are parsed. (Text statements get the answer from their analysis pass instead:
    /// `router::analysis::analyze_marking`.)
    pub fn mentions(&self, sql: &str) -> bool {
        Lexer::new(sql).any(|t| match t {
            Token::Word(w) | Token::Quoted(w) => self.is_sharded(w),
            _ => false,
        })
    }

    /// Where a statement goes ([`plan::plan`]).
    pub fn plan(&self, sql: &str) -> Target {
        plan::plan(self, sql)
    }

    /// [`Sharding::plan`] through the shape cache: a statement whose shape (the statement
    /// with its literals blanked) was planned before as one shard, the default shard or a
    /// placeholder key is decided from its literals without parsing; anything else is parsed.
    pub fn plan_cached(&self, sql: &str) -> Target {
        shape::plan_cached(self, sql)
    }
}

#[cfg(test)]
mod tests;
