//! One task per backend, every `[replicas] check_interval_ms`: log in with the `[monitor]`
//! account (kept between checks), read `@@read_only` and, on replicas, `SHOW SLAVE STATUS`
//! (both replication threads running and Seconds_Behind_Master known → lag; anything else →
//! lag unknown). A backend goes down after `down_after` failed checks in a row and up after
//! `up_after` good ones, so one slow check does not flap it. Results are published through
//! [`BackendHealth`](super::health::BackendHealth) atomics and gauges; nothing on the query
//! path waits for the monitor. A task ends when its backend leaves the topology.

use super::Role;
use super::{heartbeat, Backend};
use crate::backend::connect::{connect, ConnectOptions};
use crate::backend::BackendConn;
use crate::shared::Shared;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Starts a monitor for every backend of the current topology that has none yet.
pub fn ensure(shared: &Arc<Shared>, shutdown: &CancellationToken) {
    let snap = shared.load_full();
    for shard in &snap.topology.shards {
        for b in std::iter::once(&shard.primary).chain(shard.replicas.iter()) {
            if !b.monitored.swap(true, Ordering::Relaxed) {
                shared.tasks.spawn(run(Arc::downgrade(b), shared.clone(), shutdown.clone()));
            }
        }
    }
}

struct Observation {
    lag_ms: Option<u64>,
    read_only: Option<bool>,
    gtid: Option<super::gtid::GtidPos>,
}

/// The monitor's connection to one backend and what it set up on it.
#[derive(Default)]
struct MonitorConn {
    conn: Option<BackendConn>,
    /// Primary: heartbeat table created. Replica: heartbeat HANDLER open.
    heartbeat_ready: bool,
}

async fn run(backend: Weak<Backend>, shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut conn = MonitorConn::default();
    let (mut fails, mut oks) = (0u32, 0u32);
    loop {
        let snap = shared.load_full();
        let Some(b) = backend.upgrade() else { return };
        // Left out by a reload: nobody routes to it any more, even if a session between
        // statements still holds the snapshot that had it.
        let listed = snap
            .topology
            .shards
            .iter()
            .any(|s| std::iter::once(&s.primary).chain(s.replicas.iter()).any(|x| Arc::ptr_eq(x, &b)));
        if !listed {
            tracing::debug!(addr = %b.addr, "backend left the topology; its monitor ends");
            return;
        }
        let cfg = &snap.config;
        let timeout = Duration::from_millis(cfg.pool.connect_timeout_ms);
        let began = super::health::now_ms();
        let shard = snap.topology.shards.iter().find(|s| s.name == b.shard);
        let primary = shard.map(|s| s.primary.as_ref());
        let result = match tokio::time::timeout(timeout, check(&mut conn, &b, primary, cfg, &shared.instance_id)).await
        {
            Ok(r) => r,
            Err(_) => Err(format!("check timed out after {} ms", cfg.pool.connect_timeout_ms)),
        };
        let labels = [b.shard.as_str(), b.role.as_str(), b.addr.as_str()];
        match result {
            Ok(obs) => {
                (oks, fails) = (oks + 1, 0);
                b.health.set_failing(false);
                b.health.set_observation(obs.lag_ms, obs.read_only);
                if let Some(pos) = obs.gtid {
                    b.health.set_gtid(pos, began);
                }
                if !b.health.is_up() && (!b.health.checked() || oks >= cfg.monitor.up_after) {
                    b.health.set_up(true);
                    tracing::info!(shard = %b.shard, role = b.role.as_str(), addr = %b.addr, "backend up");
                }
                if let Some(addr) = shard.and_then(|s| s.review_writer()) {
                    shared.writer_epoch.fetch_add(1, Ordering::Relaxed);
                    shared.metrics.switchovers.inc();
                    tracing::warn!(shard = %b.shard, writer = %addr, "switchover seen: writes now go to {addr}");
                }
                let lag = obs.lag_ms.map_or(-1.0, |l| l as f64 / 1000.0);
                shared.metrics.backend_lag_seconds.with_label_values(&labels).set(lag);
            }
            Err(e) => {
                conn = MonitorConn::default();
                (oks, fails) = (0, fails + 1);
                b.health.set_failing(true);
                b.health.set_observation(None, None);
                shared.metrics.backend_lag_seconds.with_label_values(&labels).set(-1.0);
                // The first check decides at once; later a backend must fail `down_after` in a row.
                let first = !b.health.checked();
                if first || (b.health.is_up() && fails >= cfg.monitor.down_after) {
                    b.health.set_up(false);
                    tracing::warn!(shard = %b.shard, role = b.role.as_str(), addr = %b.addr, error = %e, "backend down");
                }
            }
        }
        shared.metrics.backend_up.with_label_values(&labels).set(i64::from(b.health.is_up()));
        let interval = Duration::from_millis(cfg.replicas.check_interval_ms.max(10));
        drop(b);
        drop(snap);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

async fn check(
    mc: &mut MonitorConn,
    b: &Backend,
    primary: Option<&Backend>,
    cfg: &crate::config::Config,
    instance: &str,
) -> Result<Observation, String> {
    let conn = &mut mc.conn;
    if conn.is_none() {
        let options = ConnectOptions::control(cfg, &b.addr, b.tls.clone());
        *conn = Some(connect(&options).await.map_err(|e| e.to_string())?);
    }
    let c = conn.as_mut().expect("just connected");
    // A replica's applied position is gtid_slave_pos; a primary's is what it logged. SHOW
    // rather than SELECT, so the monitor never counts in a server's Com_select (which
    // operators and the routing tests read as "client reads that landed here").
    let pos_var = if b.role == Role::Replica { "gtid_slave_pos" } else { "gtid_binlog_pos" };
    let vars = c
        .query(&format!("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('read_only', '{pos_var}')"))
        .await
        .map_err(|e| e.to_string())?;
    let var = |name: &str| {
        vars.rows
            .iter()
            .find(|r| r.first().cloned().flatten().as_deref() == Some(name))
            .and_then(|r| r.get(1).cloned().flatten())
    };
    let read_only = var("read_only").map(|v| v == "1" || v == "ON");
    let gtid = var(pos_var).and_then(|v| super::gtid::GtidPos::parse(&v));
    let table = cfg.monitor.heartbeat_table.get_ref();
    let mut lag_ms = None;
    // A primary without replicas has no lag to measure: nothing is written on it (no
    // heartbeat schema appears on a server Sluice only fronts).
    let has_replicas = cfg.shards.iter().any(|s| s.name.get_ref() == &b.shard && !s.replicas.is_empty());
    match b.role {
        Role::Primary if cfg.monitor.heartbeat && has_replicas => {
            match heartbeat::beat(c, table, instance, &mut mc.heartbeat_ready).await {
                Ok(ts) => b.heartbeat_us.store(ts, Ordering::Relaxed),
                Err(e) => {
                    // Not fatal: replicas fall back to Seconds_Behind_Master while beats are missing.
                    mc.heartbeat_ready = false;
                    tracing::warn!(shard = %b.shard, addr = %b.addr, error = %e, "heartbeat not written");
                }
            }
        }
        Role::Primary => {}
        Role::Replica => {
            let st = c.query("SHOW SLAVE STATUS").await.map_err(|e| e.to_string())?;
            let applying = st.first("Slave_SQL_Running") == Some("Yes");
            let io = st.first("Slave_IO_Running");
            let running = io == Some("Yes") && applying;
            if running {
                lag_ms = st.first("Seconds_Behind_Master").and_then(|s| s.parse::<u64>().ok()).map(|s| s * 1000);
            }
            // The heartbeat replaces Seconds_Behind_Master while the primary's beats are fresh
            // (written within the last three intervals). It stays truthful while the replica's
            // I/O thread retries a primary it lost ("Connecting"): if the primary lives on,
            // its beats move on without the replica and the lag grows; if it died, nothing
            // newer than its last beat exists. While the primary is unreachable for Sluice too,
            // that last beat is final, so a replica that holds it goes on serving reads (a
            // read-only service through a primary outage) and one that does not ages out.
            // A replica whose replication was stopped (`No`) is taken out at once.
            let written = primary.map_or(0, |p| p.heartbeat_us.load(Ordering::Relaxed));
            let fresh_us = 3 * cfg.replicas.check_interval_ms.max(10) * 1000 + 1_000_000;
            let fresh = heartbeat::now_us().saturating_sub(written) < fresh_us;
            let reconnecting = io == Some("Connecting") && applying;
            let orphaned = applying && written > 0 && primary.is_some_and(|p| p.health.unreachable());
            if cfg.monitor.heartbeat && ((fresh && (running || reconnecting)) || orphaned) {
                lag_ms = match heartbeat::applied(c, table, instance, &mut mc.heartbeat_ready).await {
                    Ok(Some(applied)) => Some(heartbeat::lag_ms(applied, written, heartbeat::now_us())),
                    // No row yet: the replica has not applied this instance's first beat
                    // (a process that just started); Seconds_Behind_Master stands in.
                    Ok(None) => lag_ms,
                    Err(e) => {
                        mc.heartbeat_ready = false;
                        tracing::warn!(addr = %b.addr, error = %e, "heartbeat not readable");
                        None
                    }
                };
            }
        }
    }
    Ok(Observation { lag_ms, read_only, gtid })
}
