//! Finishing XA branches left prepared: by a Sluice process that died between `XA PREPARE`
//! and `XA COMMIT`, or by a shard that went away before its `XA COMMIT` reached it.
//!
//! Every `[sharding] xa_recovery_interval_ms`, while `cross_shard = "xa"`, one task lists the
//! prepared branches of every shard's primary (`XA RECOVER`, with the `[monitor]` account).
//! A branch of one of Sluice's transactions that is seen in two sweeps in a row and is not
//! being committed by this process right now is finished by the decision in the log — or,
//! with none recorded, recorded as aborted and rolled back (see [`super::decide`] for why
//! this cannot race with a coordinator). A decision row is deleted once every shard answered
//! and none holds a branch of it any more.

use super::{Decision, Prepared};
use crate::backend::connect::{connect, ConnectOptions};
use crate::backend::BackendConn;
use crate::config::CrossShard;
use crate::shared::Shared;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs sweeps until shutdown.
pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut sweeper = Sweeper::default();
    loop {
        let xa = shared.load().config.sharding.as_ref().is_some_and(|sh| sh.cross_shard == CrossShard::Xa);
        if xa {
            sweeper.sweep(&shared).await;
        }
        let interval = shared.load().config.sharding.as_ref().map_or(5_000, |sh| sh.xa_recovery_interval_ms);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(interval.max(10))) => {}
        }
    }
}

/// One shard's prepared branch.
type Seen = (usize, Prepared);

#[derive(Default)]
struct Sweeper {
    /// Control connections by server address.
    conns: HashMap<String, BackendConn>,
    /// Branches seen in the previous sweep.
    seen: HashSet<Seen>,
}

impl Sweeper {
    async fn conn(&mut self, shared: &Shared, addr: &str) -> Result<&mut BackendConn, String> {
        if !self.conns.contains_key(addr) {
            let snap = shared.load_full();
            let cfg = &snap.config;
            // The server's TLS settings are its shard's.
            let tls = snap
                .topology
                .shards
                .iter()
                .flat_map(|s| std::iter::once(&s.primary).chain(s.replicas.iter()))
                .find(|b| b.addr == addr)
                .map(|b| b.tls.clone())
                .unwrap_or_default();
            let options = ConnectOptions::control(cfg, addr, tls);
            let c = connect(&options).await.map_err(|e| e.to_string())?;
            self.conns.insert(addr.to_string(), c);
        }
        Ok(self.conns.get_mut(addr).expect("inserted above"))
    }

    /// Runs one statement on a server's control connection; a failure drops the connection.
    async fn query(
        &mut self,
        shared: &Shared,
        addr: &str,
        sql: &str,
    ) -> Result<crate::backend::conn::QueryResult, String> {
        let c = self.conn(shared, addr).await?;
        match c.query(sql).await {
            Ok(r) => Ok(r),
            Err(e) => {
                if !matches!(e, crate::backend::BackendError::Server(_)) {
                    self.conns.remove(addr);
                }
                Err(e.to_string())
            }
        }
    }

    async fn sweep(&mut self, shared: &Shared) {
        let snap = shared.load_full();
        let Some(cfg) = snap.config.sharding.as_ref() else { return };
        let table = cfg.xa_log_table.get_ref().clone();
        let topo = &snap.topology;
        let timeout = Duration::from_millis(snap.config.pool.connect_timeout_ms);
        let mut now: HashSet<Seen> = HashSet::new();
        let mut complete = true;
        for (i, shard) in topo.shards.iter().enumerate() {
            let addr = shard.writer().addr.clone();
            let listed = tokio::time::timeout(timeout, async {
                let c = self.conn(shared, &addr).await?;
                super::prepared(c).await.map_err(|e| e.to_string())
            })
            .await;
            let error = match listed {
                Ok(Ok(list)) => {
                    now.extend(list.into_iter().filter(Prepared::is_ours).map(|p| (i, p)));
                    continue;
                }
                Ok(Err(e)) => e,
                Err(_) => "timed out".to_string(),
            };
            self.conns.remove(&addr);
            complete = false;
            tracing::debug!(shard = %shard.name, %error, "XA recovery could not list prepared branches");
        }
        // Left over: seen last time too, and not being committed by this process.
        let mut orphans: BTreeMap<Vec<u8>, Vec<Seen>> = BTreeMap::new();
        for s in now.iter().filter(|s| self.seen.contains(*s)) {
            if !shared.xa.is_live(&s.1.gtrid_str()) {
                orphans.entry(s.1.gtrid.clone()).or_default().push(s.clone());
            }
        }
        let log_addr = topo.default().writer().addr.clone();
        for (gtrid, branches) in orphans {
            let gtrid = String::from_utf8_lossy(&gtrid).into_owned();
            if !gtrid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b':') {
                continue; // not an id Sluice made, whatever its prefix
            }
            let decision = match self.decide(shared, &log_addr, &table, &gtrid).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(%gtrid, error = %e, "XA recovery cannot read or record a decision; will retry");
                    continue;
                }
            };
            let mut finished = true;
            for (i, p) in &branches {
                let Some(shard) = topo.shard(*i) else {
                    // Branch ids name the shard by index and name; a shard gone from the
                    // config is left for an operator (it is listed on its server).
                    finished = false;
                    continue;
                };
                let addr = shard.writer().addr.clone();
                match self.query(shared, &addr, &p.finish_sql(decision)).await {
                    Ok(_) => {
                        now.remove(&(*i, p.clone()));
                        shared.metrics.xa_recovered[usize::from(decision == Decision::Abort)].inc();
                        tracing::warn!(%gtrid, shard = %shard.name, ?decision, "XA recovery finished a prepared branch");
                    }
                    Err(e) => {
                        finished = false;
                        tracing::warn!(%gtrid, shard = %shard.name, error = %e, "XA recovery could not finish a branch");
                    }
                }
            }
            let elsewhere = now.iter().any(|s| s.1.gtrid == gtrid.as_bytes());
            if finished && complete && !elsewhere {
                let _ = self.query(shared, &log_addr, &format!("DELETE FROM {table} WHERE gtrid = '{gtrid}'")).await;
            }
        }
        self.seen = now;
    }

    async fn decide(&mut self, shared: &Shared, addr: &str, table: &str, gtrid: &str) -> Result<Decision, String> {
        let c = self.conn(shared, addr).await?;
        let r = async {
            super::ensure_log(c, table).await?;
            super::decide(c, table, gtrid, Decision::Abort).await
        }
        .await;
        r.map_err(|e| {
            self.conns.remove(addr);
            e.to_string()
        })
    }
}
