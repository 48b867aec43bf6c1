//! Every Prometheus metric Sluice exports, as typed handles in one struct (names `sluice_*`).
//! Registered once at start; the admin endpoint renders the registry.

use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The `destination` label's values, in the order of [`Metrics::routed`]'s first index. The
/// metrics stay a leaf module: labels are plain strings here, and the router maps its own
/// types onto these positions (tested there).
pub const DESTINATIONS: [&str; 4] = ["primary", "replica", "fallback", "retry"];
/// The `kind` label's values, in the order of [`Metrics::routed`]'s second index.
pub const KINDS: [&str; 4] = ["read", "write", "other", "unknown"];
/// The `role` label's values, in the order of [`Metrics::by_role`].
pub const ROLES: [&str; 2] = ["primary", "replica"];
/// `sluice_client_timeouts_total` reasons, in `Metrics::client_timeouts` order.
pub const CLIENT_TIMEOUTS: [&str; 5] = ["handshake", "idle", "idle_in_transaction", "write", "read"];

/// The metric handles.
#[derive(Debug)]
pub struct Metrics {
    pub registry: Registry,
    pub client_connections: IntGauge,
    pub client_connections_total: IntCounter,
    pub client_connections_refused: IntCounter,
    pub auth_failures: IntCounter,
    /// Clients closed by a timeout: `handshake`, `idle`, `idle_in_transaction` (the session's
    /// own `wait_timeout` counts as `idle`), `write`, `read` — pre-resolved in that order.
    pub client_timeouts: [IntCounter; 5],
    /// Login attempts delayed after repeated failures from their address.
    pub login_delays: IntCounter,
    /// Statements killed at their deadline (`max_statement_time_ms`).
    pub statement_timeouts: IntCounter,
    /// Statements slower than `[stats] slow_ms`; slow-log lines written and dropped (the
    /// writer fell behind).
    pub slow_statements: IntCounter,
    pub slow_log_written: IntCounter,
    pub slow_log_dropped: IntCounter,
    pub queries: IntCounterVec,
    pub query_seconds: HistogramVec,
    pub backend_connects: IntCounterVec,
    pub backend_errors: IntCounterVec,
    pub sessions_pinned: IntGaugeVec,
    pub config_reloads: IntCounterVec,
    pub backend_up: IntGaugeVec,
    pub pool_connections: IntGaugeVec,
    pub clients_per_backend_connection: prometheus::Gauge,
    pub backend_lag_seconds: prometheus::GaugeVec,
    /// `query_seconds` resolved per role once, so the per-statement path does no label
    /// hashing: index in [`ROLES`] order (the router's `Role::index()` follows it).
    pub by_role: [RoleMetrics; 2],
    /// `queries` resolved per destination and kind, in [`DESTINATIONS`] × [`KINDS`] order (the
    /// router's `Dest::index()` and `Kind::metric_index()` follow it).
    pub routed: [[IntCounter; 4]; 4],
    pub unparsed: IntCounter,
    pub switchovers: IntCounter,
    /// Statements on sharded tables, by how they ran: `single`, `split`, `all_shards`,
    /// `scatter`, `refused` — pre-resolved in that order.
    pub sharded: [IntCounter; 5],
    /// XA transactions by how they ended, indexed by [`XaOutcome`].
    pub xa: [IntCounter; 5],
    /// Prepared XA branches finished by recovery: `[commit, abort]`.
    pub xa_recovered: [IntCounter; 2],
    pub backend_weight: prometheus::GaugeVec,
    pub pool_waiting: IntGaugeVec,
    /// Connections a backend's pools may open (pools × `[pool] max_size`), for usage alerts.
    pub pool_capacity: IntGaugeVec,
    /// `[replicas] max_lag_ms` in seconds, so lag alerts compare against the live setting.
    pub replica_max_lag_seconds: prometheus::Gauge,
    pub cache: CacheMetrics,
}

/// Why a read was not served from the cache nor stored in it: the labels of
/// `sluice_cache_refused_total`, in the order of `cache::Refused::index`.
pub const CACHE_REFUSALS: [&str; 10] = [
    "non_deterministic",
    "side_effect",
    "no_rule",
    "session_state",
    "too_large",
    "error_or_warnings",
    "changed_during_read",
    "replica_position_unknown",
    "consistency",
    "invalidation_link_down",
];

/// The result cache's metrics, pre-resolved.
#[derive(Debug, Clone)]
pub struct CacheMetrics {
    pub hits: IntCounter,
    pub misses: IntCounter,
    pub stores: IntCounter,
    /// By reason, in [`CACHE_REFUSALS`] order.
    pub refused: [IntCounter; 10],
    pub evictions: IntCounter,
    /// Table-version bumps: `[names, everything, remote]` (remote: received from Redis).
    pub invalidations: [IntCounter; 3],
    pub flight_waits: IntCounter,
    pub bytes: IntGauge,
    pub entries: IntGauge,
}

impl CacheMetrics {
    fn new(r: &Registry) -> CacheMetrics {
        let counter = |n: &str, h: &str| reg(r, IntCounter::new(n, h).expect("valid metric"));
        let gauge = |n: &str, h: &str| reg(r, IntGauge::new(n, h).expect("valid metric"));
        let refused_vec = reg(
            r,
            IntCounterVec::new(Opts::new("sluice_cache_refused_total", "Reads not cached, by reason"), &["reason"])
                .expect("valid metric"),
        );
        let invalidations_vec = reg(
            r,
            IntCounterVec::new(
                Opts::new(
                    "sluice_cache_invalidations_total",
                    "Table-version bumps, by scope (names, everything, remote)",
                ),
                &["scope"],
            )
            .expect("valid metric"),
        );
        CacheMetrics {
            hits: counter("sluice_cache_hits_total", "Reads answered from the result cache"),
            misses: counter("sluice_cache_misses_total", "Cacheable reads that ran on a backend"),
            stores: counter("sluice_cache_stores_total", "Answers stored in the result cache"),
            refused: CACHE_REFUSALS.map(|l| refused_vec.with_label_values(&[l])),
            evictions: counter("sluice_cache_evictions_total", "Entries evicted to stay under [cache] max_bytes"),
            invalidations: ["names", "everything", "remote"].map(|l| invalidations_vec.with_label_values(&[l])),
            flight_waits: counter(
                "sluice_cache_single_flight_waits_total",
                "Misses that waited for an identical miss already running",
            ),
            bytes: gauge("sluice_cache_bytes", "Bytes the cache entries weigh"),
            entries: gauge("sluice_cache_entries", "Entries in the result cache"),
        }
    }
}

/// How an XA transaction ended (index into [`Metrics::xa`]).
#[derive(Debug, Clone, Copy)]
pub enum XaOutcome {
    /// One shard took part: `XA COMMIT ... ONE PHASE`.
    OnePhase = 0,
    /// Several shards: prepared, decision logged, committed.
    TwoPhase = 1,
    /// The client rolled back.
    RolledBack = 2,
    /// COMMIT failed before the decision (a prepare or the log write): rolled back everywhere.
    Aborted = 3,
    /// Committed by decision, but a branch's XA COMMIT failed: recovery finishes it.
    CommitPending = 4,
}

impl XaOutcome {
    const LABELS: [&'static str; 5] = ["one_phase", "two_phase", "rolled_back", "aborted", "commit_pending"];
}

/// Per-role statement metrics, pre-resolved.
#[derive(Debug, Clone)]
pub struct RoleMetrics {
    pub seconds: prometheus::Histogram,
}

/// Registers a collector and hands back the handle. Names are fixed in this file, so a
/// collision is a programming error caught by the unit test below.
fn reg<C: Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone())).expect("metric names are unique");
    c
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let counter = |n: &str, h: &str| reg(&r, IntCounter::new(n, h).expect("valid metric"));
        let counter_vec =
            |n: &str, h: &str, l: &[&str]| reg(&r, IntCounterVec::new(Opts::new(n, h), l).expect("valid metric"));
        let queries = counter_vec(
            "sluice_queries_total",
            "Statements relayed, by destination (primary, replica, fallback, retry) and kind (read, write, other, unknown)",
            &["destination", "kind"],
        );
        let int_gauges =
            |n: &str, h: &str, l: &[&str]| reg(&r, IntGaugeVec::new(Opts::new(n, h), l).expect("valid metric"));
        let gauges = |n: &str, h: &str, l: &[&str]| {
            reg(&r, prometheus::GaugeVec::new(Opts::new(n, h), l).expect("valid metric"))
        };
        const BACKEND: &[&str] = &["shard", "role", "addr"];
        let routed = DESTINATIONS.map(|d| KINDS.map(|k| queries.with_label_values(&[d, k])));
        let query_seconds = reg(
            &r,
            HistogramVec::new(
                HistogramOpts::new("sluice_query_duration_seconds", "Statement latency through the proxy")
                    .buckets(vec![0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.0, 10.0]),
                &["role"],
            )
            .expect("valid metric"),
        );
        let by_role = ROLES.map(|role| RoleMetrics { seconds: query_seconds.with_label_values(&[role]) });
        let backend_weight =
            gauges("sluice_backend_effective_weight", "A replica's share of reads now (0: not eligible)", BACKEND);
        let pool_waiting = int_gauges("sluice_pool_waiting", "Statements waiting for a backend connection", BACKEND);
        let pool_capacity = int_gauges(
            "sluice_pool_capacity",
            "Connections the backend's pools may open ([pool] max_size per pool)",
            BACKEND,
        );
        let replica_max_lag_seconds = reg(
            &r,
            prometheus::Gauge::new("sluice_replica_max_lag_seconds", "[replicas] max_lag_ms, in seconds")
                .expect("valid metric"),
        );
        let sessions_pinned = int_gauges(
            "sluice_sessions_pinned",
            "Client sessions holding a backend connection, by reason",
            &["reason"],
        );
        // Every reason is exported from the start (at 0), so dashboards and alerts see it.
        for reason in crate::session::pin::PinReason::ALL {
            sessions_pinned.with_label_values(&[reason.label()]);
        }
        let config_reloads =
            counter_vec("sluice_config_reloads_total", "Config reload attempts, by result", &["result"]);
        for result in ["applied", "rejected"] {
            config_reloads.with_label_values(&[result]);
        }
        let backend_up = int_gauges("sluice_backend_up", "1 when the monitor judges the backend up", BACKEND);
        let backend_lag_seconds =
            gauges("sluice_backend_lag_seconds", "Replication lag seen by the monitor; -1 when unknown", BACKEND);
        let pool_connections = int_gauges(
            "sluice_pool_connections",
            "Backend connections in the pools, by state",
            &["shard", "role", "addr", "state"],
        );
        let clients_per_backend_connection = reg(
            &r,
            prometheus::Gauge::new(
                "sluice_clients_per_backend_connection",
                "Client connections divided by open backend connections (multiplexing ratio)",
            )
            .expect("valid metric"),
        );
        let sharded_vec = counter_vec(
            "sluice_sharded_statements_total",
            "Statements on sharded tables, by how they ran (single, split, all_shards, scatter, refused)",
            &["how"],
        );
        let sharded =
            ["single", "split", "all_shards", "scatter", "refused"].map(|h| sharded_vec.with_label_values(&[h]));
        let xa_vec =
            counter_vec("sluice_xa_transactions_total", "Cross-shard (XA) transactions by outcome", &["outcome"]);
        let xa = XaOutcome::LABELS.map(|o| xa_vec.with_label_values(&[o]));
        let recovered_vec = counter_vec(
            "sluice_xa_recovered_total",
            "Prepared XA branches left behind and finished by recovery, by decision",
            &["decision"],
        );
        let xa_recovered = ["commit", "abort"].map(|d| recovered_vec.with_label_values(&[d]));
        let timeouts_vec = counter_vec(
            "sluice_client_timeouts_total",
            "Client connections closed by a timeout (handshake, idle, idle_in_transaction, write, read)",
            &["reason"],
        );
        let client_timeouts = CLIENT_TIMEOUTS.map(|r| timeouts_vec.with_label_values(&[r]));
        Metrics {
            client_timeouts,
            login_delays: counter(
                "sluice_login_delays_total",
                "Login attempts delayed after repeated failures from the same address",
            ),
            statement_timeouts: counter(
                "sluice_statement_timeouts_total",
                "Statements killed on their backend at max_statement_time_ms",
            ),
            slow_statements: counter("sluice_slow_statements_total", "Statements slower than [stats] slow_ms"),
            slow_log_written: counter("sluice_slow_log_written_total", "Slow-log lines written"),
            slow_log_dropped: counter(
                "sluice_slow_log_dropped_total",
                "Slow-log lines dropped because the writer fell behind",
            ),
            sharded,
            xa,
            xa_recovered,
            by_role,
            routed,
            backend_weight,
            pool_waiting,
            pool_capacity,
            replica_max_lag_seconds,
            switchovers: counter(
                "sluice_switchovers_total",
                "Times writes followed a switchover (the configured primary read-only, a replica writable) or returned",
            ),
            unparsed: counter(
                "sluice_unparsed_statements_total",
                "Statements neither the fast path nor sqlparser understood (sent to the primary)",
            ),
            pool_connections,
            clients_per_backend_connection,
            sessions_pinned,
            config_reloads,
            backend_up,
            backend_lag_seconds,
            client_connections: reg(
                &r,
                IntGauge::new("sluice_client_connections", "Client connections open").expect("valid metric"),
            ),
            client_connections_total: counter(
                "sluice_client_connections_total",
                "Client connections accepted since start",
            ),
            client_connections_refused: counter(
                "sluice_client_connections_refused_total",
                "Client connections refused because max_client_connections was reached",
            ),
            auth_failures: counter("sluice_auth_failures_total", "Failed client logins"),
            queries,
            query_seconds,
            backend_connects: counter_vec(
                "sluice_backend_connects_total",
                "Backend connection attempts, by result (connect errors: result=\"error\")",
                &["shard", "role", "addr", "result"],
            ),
            backend_errors: counter_vec(
                "sluice_backend_errors_total",
                "Statements that failed on the way to a backend",
                &["shard", "role"],
            ),
            cache: CacheMetrics::new(&r),
            registry: r,
        }
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn all_metrics_register_and_render_with_prefix() {
        let m = super::Metrics::new();
        m.routed[1][1].inc();
        m.client_connections.set(3);
        let text = m.render();
        assert!(text.contains("sluice_queries_total{destination=\"replica\",kind=\"write\"} 1"), "{text}");
        assert!(text.contains("sluice_client_connections 3"), "{text}");
    }
}
