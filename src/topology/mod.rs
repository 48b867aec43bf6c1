//! The live topology: shards, each a primary with replicas, each backend with its pools.
//! Built from a config; backends that do not change survive reloads with their pools and
//! health. [`monitor`] keeps each backend's [`health::BackendHealth`] current.

pub mod balance;
pub mod gtid;
pub mod health;
pub mod heartbeat;
pub mod monitor;

use crate::backend::connect::ConnectOptions;
use crate::backend::pool::{LastError, Manager, PoolHandle};
use crate::config::{Config, PoolConfig};
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

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

/// One backend server and its pools (one per login and CLIENT_FOUND_ROWS setting).
#[derive(Debug)]
pub struct Backend {
    pub addr: String,
    pub role: Role,
    pub shard: String,
    pool_cfg: PoolConfig,
    /// TLS toward this server (its shard's `tls`, `tls_ca`).
    pub tls: crate::tls::BackendTls,
    metrics: Arc<Metrics>,
    pools: RwLock<HashMap<(String, String, bool), PoolHandle>>,
    /// What the monitor last saw.
    pub health: health::BackendHealth,
    /// Set once a monitor task runs for this backend.
    pub(crate) monitored: std::sync::atomic::AtomicBool,
    /// Configured read weight (replicas); updated in place by a reload.
    pub weight: AtomicU32,
    /// Statements and pinned sessions holding one of this backend's connections now.
    pub in_flight: AtomicU32,
    /// Checkouts waiting for one of this backend's connections now.
    pub waiting: AtomicU32,
    /// Primaries: the heartbeat value last written ([`heartbeat::now_us`]); 0 before one.
    pub heartbeat_us: std::sync::atomic::AtomicU64,
    /// Taken out of read rotation by an operator (`SLUICE BACKEND addr DRAIN`); kept across
    /// reloads by [`crate::shared::Shared::store`].
    pub drained: std::sync::atomic::AtomicBool,
}

impl Backend {
    #[cfg(test)]
    pub(crate) fn new(addr: &str, role: Role, shard: &str, pool_cfg: &PoolConfig, metrics: &Arc<Metrics>) -> Backend {
        Backend::with_tls(addr, role, shard, pool_cfg, crate::tls::BackendTls::default(), metrics)
    }

    pub(crate) fn with_tls(
        addr: &str,
        role: Role,
        shard: &str,
        pool_cfg: &PoolConfig,
        tls: crate::tls::BackendTls,
        metrics: &Arc<Metrics>,
    ) -> Backend {
        Backend {
            addr: addr.to_string(),
            role,
            shard: shard.to_string(),
            pool_cfg: pool_cfg.clone(),
            tls,
            metrics: metrics.clone(),
            pools: RwLock::new(HashMap::new()),
            health: Default::default(),
            monitored: Default::default(),
            weight: AtomicU32::new(0),
            in_flight: AtomicU32::new(0),
            waiting: AtomicU32::new(0),
            heartbeat_us: Default::default(),
            drained: Default::default(),
        }
    }

    /// The pool for a login, created on first use.
    pub fn pool(&self, user: &str, password: &str, found_rows: bool) -> PoolHandle {
        let key = (user.to_string(), password.to_string(), found_rows);
        if let Some(p) = self.pools.read().ok().and_then(|m| m.get(&key).cloned()) {
            return p;
        }
        let mut map = match self.pools.write() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(key)
            .or_insert_with(|| {
                let c = &self.pool_cfg;
                let last_error = Arc::new(LastError::default());
                let options = Arc::new(ConnectOptions {
                    addr: self.addr.clone(),
                    user: user.to_string(),
                    password: password.to_string(),
                    found_rows,
                    connect_timeout_ms: c.connect_timeout_ms,
                    tls: self.tls.clone(),
                    keepalive_s: c.tcp_keepalive_s,
                });
                let manager = Manager {
                    shard: self.shard.clone(),
                    role: self.role.as_str(),
                    last_error: last_error.clone(),
                    options: options.clone(),
                    metrics: self.metrics.clone(),
                };
                let pool = bb8::Pool::builder()
                    .max_size(c.max_size)
                    .min_idle(Some(c.min_idle).filter(|&n| n > 0))
                    .connection_timeout(Duration::from_millis(c.acquire_timeout_ms))
                    .idle_timeout(Some(Duration::from_secs(c.idle_timeout_s.max(1))))
                    .test_on_check_out(false)
                    .retry_connection(false)
                    .build_unchecked(manager);
                PoolHandle { pool, last_error, options }
            })
            .clone()
    }

    /// Connections in use and idle, summed over this backend's pools.
    /// Connections (in use, idle) per backend login, sorted by login.
    pub fn pool_usage_by_user(&self) -> Vec<(String, u32, u32)> {
        let map = match self.pools.read() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let mut by: std::collections::BTreeMap<String, (u32, u32)> = Default::default();
        for ((user, _, _), p) in map.iter() {
            let s = p.pool.state();
            let e = by.entry(user.clone()).or_default();
            e.0 += s.connections - s.idle_connections;
            e.1 += s.idle_connections;
        }
        by.into_iter().map(|(u, (a, b))| (u, a, b)).collect()
    }

    pub fn pool_usage(&self) -> (u32, u32) {
        let map = match self.pools.read() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.values().fold((0, 0), |(u, i), p| {
            let s = p.pool.state();
            (u + (s.connections - s.idle_connections), i + s.idle_connections)
        })
    }
}

/// A primary and its replicas.
#[derive(Debug)]
pub struct Shard {
    pub name: String,
    pub primary: Arc<Backend>,
    pub replicas: Vec<Arc<Backend>>,
    /// A replica that took over writes after a switchover the monitor saw (the configured
    /// primary turned read-only, this replica writable); `None`: the configured primary.
    promoted: arc_swap::ArcSwapOption<Backend>,
}

impl Shard {
    /// The server writes go to now.
    pub fn writer(&self) -> Arc<Backend> {
        self.promoted.load_full().unwrap_or_else(|| self.primary.clone())
    }

    /// Follows a switchover: when the configured primary reports `read_only = ON` and an up
    /// replica reports `read_only = OFF`, writes move to that replica; when the primary is
    /// writable again, they move back. Returns the new writer's address when it changed.
    ///
    /// Every backend's monitor reviews its shard, so two may review at once: the change is a
    /// compare-and-swap against what this review read, and only the review that made it
    /// reports it (a plain store let both report one switchover, counting it twice).
    pub fn review_writer(&self) -> Option<String> {
        let current = self.promoted.load_full();
        let next = match self.primary.health.read_only() {
            Some(true) => self
                .replicas
                .iter()
                .find(|r| r.health.is_up() && r.health.read_only() == Some(false))
                .cloned()
                .or(current.clone()),
            Some(false) => None,
            None => current.clone(),
        };
        let same = match (&current, &next) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if same {
            return None;
        }
        let addr = next.as_ref().map_or_else(|| self.primary.addr.clone(), |b| b.addr.clone());
        let was = self.promoted.compare_and_swap(&current, next);
        let won = match (&*was, &current) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        won.then_some(addr)
    }
}

/// Every shard, in config order.
#[derive(Debug)]
pub struct Topology {
    pub shards: Vec<Shard>,
    /// Index of the shard holding unsharded tables.
    pub default_shard: usize,
    /// `[sharding]`, when configured.
    pub sharding: Option<crate::sharding::Sharding>,
}

impl Topology {
    /// The shard at `index`, if this topology has it. An index is meaningful only under the
    /// snapshot that produced it: callers resolve indices from their own snapshot, and an
    /// index this topology lacks is an error for them, never a nearby shard.
    pub fn shard(&self, index: usize) -> Option<&Shard> {
        self.shards.get(index)
    }

    /// The name of the shard at `index`, for messages and metric labels.
    pub fn shard_name(&self, index: usize) -> &str {
        self.shards.get(index).map_or("(no longer configured)", |s| s.name.as_str())
    }

    /// The shard holding unsharded tables.
    pub fn default(&self) -> &Shard {
        &self.shards[self.default_shard]
    }

    /// Builds the topology a config describes (pools open lazily).
    pub fn build(config: &Config, metrics: &Arc<Metrics>) -> Topology {
        Self::rebuild(config, metrics, None)
    }

    /// Builds the topology for a reloaded config, keeping every backend (with its pools and
    /// their open connections) whose shard, address, role and pool settings did not change.
    /// Backends left out are dropped with the old snapshot: their pools close once the last
    /// statement running on them finishes.
    pub fn rebuild(config: &Config, metrics: &Arc<Metrics>, old: Option<&Topology>) -> Topology {
        let backend = |addr: &str, role: Role, shard: &str, weight: u32, tls: &crate::tls::BackendTls| {
            let reuse = old.and_then(|t| {
                t.shards.iter().flat_map(|s| std::iter::once(&s.primary).chain(s.replicas.iter())).find(|b| {
                    b.addr == addr && b.role == role && b.shard == shard && b.pool_cfg == config.pool && b.tls == *tls
                })
            });
            let b = match reuse {
                Some(b) => b.clone(),
                None => Arc::new(Backend::with_tls(addr, role, shard, &config.pool, tls.clone(), metrics)),
            };
            b.weight.store(weight, Ordering::Relaxed);
            b
        };
        let shards: Vec<Shard> = config
            .shards
            .iter()
            .map(|s| {
                let name = s.name.get_ref();
                let tls = s.backend_tls();
                Shard {
                    promoted: Default::default(),
                    name: name.clone(),
                    primary: backend(s.primary.get_ref(), Role::Primary, name, 0, &tls),
                    replicas: s
                        .replicas
                        .iter()
                        .map(|r| backend(r.addr.get_ref(), Role::Replica, name, r.weight, &s.replica_tls(r)))
                        .collect(),
                }
            })
            .collect();
        let default_shard = shards.iter().position(|s| s.name == config.default_shard()).unwrap_or(0);
        let sharding = config.sharding.as_ref().map(|cfg| {
            crate::sharding::Sharding::new(cfg, |name| {
                shards.iter().position(|s| s.name == name).unwrap_or(default_shard)
            })
        });
        Topology { shards, default_shard, sharding }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PoolConfig;

    fn backend(role: Role, read_only: bool) -> Arc<Backend> {
        let b = Arc::new(Backend::new(
            "127.0.0.1:1",
            role,
            "s",
            &PoolConfig::default(),
            &Arc::new(crate::metrics::Metrics::new()),
        ));
        b.health.set_up(true);
        b.health.set_observation(Some(0), Some(read_only));
        b
    }

    /// Every backend's monitor reviews its shard: many reviews at once of one switchover
    /// report it once, and the return once.
    #[test]
    fn concurrent_reviews_report_one_switchover_once() {
        for _ in 0..200 {
            let shard = Shard {
                name: "s".into(),
                primary: backend(Role::Primary, true),
                replicas: vec![backend(Role::Replica, false)],
                promoted: Default::default(),
            };
            let barrier = std::sync::Barrier::new(8);
            let reported = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|t| {
                for _ in 0..8 {
                    t.spawn(|| {
                        barrier.wait();
                        if shard.review_writer().is_some() {
                            reported.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    });
                }
            });
            assert_eq!(reported.into_inner(), 1, "one switchover, reported once");
            assert!(Arc::ptr_eq(&shard.writer(), &shard.replicas[0]));
            shard.primary.health.set_observation(Some(0), Some(false));
            let back = (0..8).filter(|_| shard.review_writer().is_some()).count();
            assert_eq!(back, 1);
            assert!(Arc::ptr_eq(&shard.writer(), &shard.primary));
        }
    }
}
