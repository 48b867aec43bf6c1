//! The HTTP admin endpoint: `/health`, `/metrics`, `/status`, and the status page at `/`.
//!
//! Its own accept loop bounds what a client of the admin port can hold: at most
//! `admin_max_connections` connections (more are closed at accept), request headers within
//! `admin_header_timeout_ms`, a connection at most `admin_connection_timeout_ms`. Half-sent
//! requests therefore cannot use up the process's descriptors (which would stop the MySQL
//! listener's accept). With an admin token, `/metrics` and `/status` need
//! `Authorization: Bearer <token>`; `/health` stays open for orchestrators' probes.

mod page;
pub mod probe;
pub mod sql;

use crate::shared::Shared;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The next accepted connection of an admin listener; `None` once shutdown begins. An accept
/// that fails (out of descriptors and the like) is logged and retried after a pause rather
/// than spun on.
pub(crate) async fn accept(
    listener: &TcpListener,
    shutdown: &CancellationToken,
    what: &str,
) -> Option<tokio::net::TcpStream> {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            r = listener.accept() => match r {
                Ok((s, _)) => return Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "{what} accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// Serves the admin endpoint until shutdown.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    let guarded = Router::new()
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/", get(status_page))
        .route_layer(axum::middleware::from_fn_with_state(shared.clone(), authorized));
    let app = Router::new()
        .route("/health", get(health))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .merge(guarded)
        .with_state(shared.clone());
    let limit = Arc::new(Semaphore::new(shared.load().config.proxy.admin_max_connections));
    while let Some(stream) = accept(&listener, &shutdown, "admin").await {
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::debug!("admin connection limit reached; closing a new connection");
            continue;
        };
        let proxy = &shared.load().config.proxy;
        let (header, whole) = (
            Duration::from_millis(proxy.admin_header_timeout_ms),
            Duration::from_millis(proxy.admin_connection_timeout_ms),
        );
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let stop = shutdown.clone();
        shared.tasks.spawn(async move {
            let _permit = permit;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::timeout(whole, conn) => {}
            }
        });
    }
}

/// With an admin token configured, the request must carry it as a bearer token (compared in
/// constant time); otherwise 401.
async fn authorized(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let Some(token) = shared.load().config.proxy.admin_token.clone() else { return next.run(request).await };
    let given = request.headers().get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let ok = given
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|g| crate::protocol::auth::tokens_equal(g.as_bytes(), token.as_bytes()));
    if ok {
        return next.run(request).await;
    }
    (StatusCode::UNAUTHORIZED, [(axum::http::header::WWW_AUTHENTICATE, "Bearer")], "admin token required\n")
        .into_response()
}

/// 200 when at least one primary is up as the monitor sees it (before the monitor's first
/// check: when a TCP connection to it succeeds), 503 otherwise.
/// Liveness: the process answers on its loops (an orchestrator restarts it otherwise).
async fn live() -> (StatusCode, &'static str) {
    (StatusCode::OK, "live\n")
}

/// Readiness: the config is loaded, every shard's primary is reachable (as the monitor judges
/// it, or by a TCP connect before its first check), and the instance is not draining. While it
/// shuts down the admin port closes, so the probe fails from the start of the drain.
async fn ready(State(shared): State<Arc<Shared>>) -> (StatusCode, String) {
    if shared.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n".into());
    }
    let snap = shared.load_full();
    let timeout = std::time::Duration::from_millis(snap.config.pool.connect_timeout_ms);
    for shard in &snap.topology.shards {
        let p = shard.writer();
        let up = if p.health.checked() {
            p.health.is_up()
        } else {
            matches!(tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&p.addr)).await, Ok(Ok(_)))
        };
        if !up {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the primary of shard '{}' is unreachable\n", shard.name),
            );
        }
    }
    (StatusCode::OK, format!("ready (config version {})\n", snap.version))
}

async fn health(State(shared): State<Arc<Shared>>) -> (StatusCode, String) {
    let snap = shared.load_full();
    let timeout = std::time::Duration::from_millis(snap.config.pool.connect_timeout_ms);
    for shard in &snap.topology.shards {
        let p = &shard.primary;
        let up = if p.health.checked() {
            p.health.is_up()
        } else {
            matches!(tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&p.addr)).await, Ok(Ok(_)))
        };
        if up {
            return (StatusCode::OK, "ok\n".into());
        }
    }
    (StatusCode::SERVICE_UNAVAILABLE, "no primary reachable\n".into())
}

/// Prometheus text. Pool gauges are sampled from the pools at scrape time (nothing on the
/// query path maintains them).
async fn metrics(State(shared): State<Arc<Shared>>) -> String {
    let snap = shared.load_full();
    let m = &shared.metrics;
    let mut backend_conns = 0u32;
    for shard in &snap.topology.shards {
        for b in std::iter::once(&shard.primary).chain(shard.replicas.iter()) {
            let (in_use, idle) = b.pool_usage();
            backend_conns += in_use + idle;
            let labels = |state| [shard.name.as_str(), b.role.as_str(), b.addr.as_str(), state];
            m.pool_connections.with_label_values(&labels("in_use")).set(i64::from(in_use));
            m.pool_connections.with_label_values(&labels("idle")).set(i64::from(idle));
            let backend = [shard.name.as_str(), b.role.as_str(), b.addr.as_str()];
            // Exported at 0 from the first scrape, so rates and alerts see the series.
            m.backend_errors.with_label_values(&[shard.name.as_str(), b.role.as_str()]);
            let waiting = b.waiting.load(std::sync::atomic::Ordering::Relaxed);
            m.pool_waiting.with_label_values(&backend).set(i64::from(waiting));
            let pools = b.pool_usage_by_user().len().max(1) as i64;
            m.pool_capacity.with_label_values(&backend).set(pools * i64::from(snap.config.pool.max_size));
            if b.role == crate::router::Role::Replica {
                let w = crate::topology::balance::effective_weight(b, snap.config.replicas.max_lag_ms);
                m.backend_weight.with_label_values(&backend).set(w);
            }
        }
    }
    m.replica_max_lag_seconds.set(snap.config.replicas.max_lag_ms as f64 / 1000.0);
    let clients = m.client_connections.get() as f64;
    m.clients_per_backend_connection.set(if backend_conns == 0 { 0.0 } else { clients / f64::from(backend_conns) });
    let mut text = m.render();
    digest_metrics(&shared, &mut text);
    text
}

/// The top `[stats] metrics_top` fingerprints by total time, as two counters: a bounded
/// number of label sets whatever the traffic (the full table is `SHOW SLUICE DIGESTS`).
fn digest_metrics(shared: &Shared, out: &mut String) {
    use std::fmt::Write;
    let top = shared.load().config.stats.metrics_top;
    let mut rows = shared.stats.rows();
    rows.sort_by_key(|r| std::cmp::Reverse(r.total_us));
    rows.truncate(top);
    let label = |s: &str| {
        let cut: String = s.chars().take(200).collect();
        cut.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', " ")
    };
    let labelled: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{{fingerprint=\"{}\",user=\"{}\",shard=\"{}\",destination=\"{}\"}}",
                label(&r.fingerprint),
                label(&r.user),
                label(&r.shard),
                r.dest.as_str()
            )
        })
        .collect();
    type Value = fn(&crate::stats::Row) -> f64;
    let counters: [(&str, &str, Value); 2] = [
        ("sluice_digest_seconds_total", "Time in the top statement fingerprints", |r| r.total_us as f64 / 1e6),
        ("sluice_digest_statements_total", "Statements of the top fingerprints", |r| r.count as f64),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help} ([stats] metrics_top)");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (r, labels) in rows.iter().zip(&labelled) {
            let _ = writeln!(out, "{name}{labels} {}", value(r));
        }
    }
}

async fn status_page(State(shared): State<Arc<Shared>>) -> axum::response::Html<String> {
    axum::response::Html(page::render(&shared))
}

async fn status(State(shared): State<Arc<Shared>>) -> axum::Json<serde_json::Value> {
    let snap = shared.load_full();
    let shards: Vec<_> = snap
        .topology
        .shards
        .iter()
        .map(|s| {
            let backends: Vec<_> = std::iter::once(&s.primary)
                .chain(s.replicas.iter())
                .map(|b| {
                    let (in_use, idle) = b.pool_usage();
                    serde_json::json!({
                        "addr": b.addr, "role": b.role.as_str(), "pool_in_use": in_use, "pool_idle": idle,
                        "up": b.health.is_up(), "checked": b.health.checked(), "lag_ms": b.health.lag_ms(),
                        "read_only": b.health.read_only(),
                        "weight": b.weight.load(std::sync::atomic::Ordering::Relaxed),
                        "effective_weight": crate::topology::balance::effective_weight(b, snap.config.replicas.max_lag_ms),
                        "in_flight": b.in_flight.load(std::sync::atomic::Ordering::Relaxed),
                        "waiting": b.waiting.load(std::sync::atomic::Ordering::Relaxed),
                        "drained": b.drained.load(std::sync::atomic::Ordering::Relaxed),
                        "eligible": b.role == crate::router::Role::Replica && b.health.eligible(snap.config.replicas.max_lag_ms),
                    })
                })
                .collect();
            serde_json::json!({"name": s.name, "writer": s.writer().addr, "backends": backends})
        })
        .collect();
    let loaded = snap.loaded_at.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    axum::Json(serde_json::json!({"config_version": snap.version, "loaded_at_unix": loaded, "shards": shards}))
}
