//! The fleet registry: one row per live Sluice instance in a table on the default shard's
//! primary (`[fleet] table`), so that a DBA can see every instance in front of a topology and
//! whether a reload reached them all (`sluice fleet`, `SHOW SLUICE FLEET`), and so that
//! `sluice reshard copy --restart` can check that every instance acknowledged
//! `[sharding] pause_writes` before the final copy.
//!
//! Each instance refreshes its row every `[fleet] interval_ms` with the server's clock
//! (`seen_at = NOW(6)`), so liveness is judged by one clock whatever the instances' hosts say:
//! a row older than three intervals plus a second belongs to an instance that is gone. An
//! instance that shuts down marks its row `draining` at once and deletes it when its drain
//! ends; one that dies leaves a row that stops being live.
//!
//! "Pause acknowledged" means more than "the paused config is live": it also needs every
//! command that started under an older config to have finished and every transaction begun
//! under one to have ended ([`crate::sessions::Registry::settled_since`]), since those may
//! still write rows the final copy would miss.

mod row;

pub use row::{members, Member, SELECT_COLUMNS};

use crate::backend::connect::{connect, ConnectOptions};
use crate::backend::BackendConn;
use crate::shared::{Shared, Snapshot};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// True when the config asks for a registry row (see `[fleet] enabled`).
pub fn enabled(cfg: &crate::config::Config) -> bool {
    cfg.fleet
        .enabled
        .unwrap_or_else(|| cfg.sharding.is_some() || cfg.shards.first().is_some_and(|s| !s.replicas.is_empty()))
}

/// Keeps this instance's row fresh until shutdown; then marks it draining, waits for the
/// sessions to end (at most `shutdown_timeout_ms`) and deletes it.
pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut writer = Writer::default();
    loop {
        writer.beat(&shared).await;
        let interval = shared.load().config.fleet.interval_ms;
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(interval)) => {}
        }
    }
    // The accept loop sets this too; setting it here first makes the row say so at once.
    shared.draining.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.beat(&shared).await;
    let grace = Duration::from_millis(shared.load().config.proxy.shutdown_timeout_ms);
    let deadline = tokio::time::Instant::now() + grace;
    while !shared.sessions.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    writer.leave(&shared).await;
}

/// The registry connection and whether the table is known to exist on it.
#[derive(Default)]
struct Writer {
    conn: Option<BackendConn>,
    table_ready: bool,
    /// The last failure logged, so a primary that stays down is logged once.
    failing: bool,
}

impl Writer {
    async fn beat(&mut self, shared: &Shared) {
        let snap = shared.load_full();
        if !enabled(&snap.config) {
            self.conn = None;
            return;
        }
        let result = self.write(shared, &snap).await;
        match result {
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!("fleet registry row written again");
            }
            Ok(()) => {}
            Err(e) => {
                if !self.failing {
                    tracing::warn!(error = %e, "fleet registry row not written");
                }
                self.failing = true;
                self.conn = None;
                self.table_ready = false;
            }
        }
    }

    async fn write(&mut self, shared: &Shared, snap: &Snapshot) -> Result<(), String> {
        let table = snap.config.fleet.table.get_ref().clone();
        let ready = self.table_ready;
        let conn = self.conn(snap).await?;
        if !ready {
            row::create(conn, &table).await?;
        }
        self.table_ready = true;
        let conn = self.conn.as_mut().expect("connected above");
        let sql = row::replace(&table, &row::Own::of(shared, snap));
        conn.query(&sql).await.map(|_| ()).map_err(|e| format!("fleet row write: {e}"))
    }

    async fn leave(&mut self, shared: &Shared) {
        let snap = shared.load_full();
        if !enabled(&snap.config) {
            return;
        }
        let table = snap.config.fleet.table.get_ref().clone();
        if let Ok(conn) = self.conn(&snap).await {
            let sql = format!("DELETE FROM {table} WHERE id = '{}'", shared.instance_id);
            if let Err(e) = conn.query(&sql).await {
                tracing::warn!(error = %e, "fleet registry row not deleted (it stops being live on its own)");
            }
        }
    }

    async fn conn(&mut self, snap: &Snapshot) -> Result<&mut BackendConn, String> {
        if self.conn.is_none() {
            self.conn = Some(home(snap).await?);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }
}

/// A connection to the default shard's primary with the `[monitor]` account: where the
/// registry lives.
async fn home(snap: &Snapshot) -> Result<BackendConn, String> {
    let cfg = &snap.config;
    let primary = &snap.topology.shards.first().ok_or("no shard")?.primary;
    let options = ConnectOptions::control(cfg, &primary.addr, primary.tls.clone());
    connect(&options).await.map_err(|e| format!("fleet registry: connecting to {}: {e}", primary.addr))
}

/// The registry's rows as the live config names it (`SHOW SLUICE FLEET`).
pub async fn read(shared: &Shared) -> Result<Vec<Member>, String> {
    let snap = shared.load_full();
    let mut conn = home(&snap).await?;
    members(&mut conn, snap.config.fleet.table.get_ref()).await
}

/// The registry's rows as `config` names it (`sluice fleet`, and the reshard tooling's pause
/// check), read with the config's `[monitor]` account.
pub async fn read_with(config: crate::config::Config) -> Result<Vec<Member>, String> {
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let topology = crate::topology::Topology::build(&config, &metrics);
    let snap = Snapshot::new(config, topology, 0).map_err(|e| e.to_string())?;
    let mut conn = home(&snap).await?;
    members(&mut conn, snap.config.fleet.table.get_ref()).await
}

/// Whether every live instance acknowledged `[sharding] pause_writes` (the paused config is
/// live and nothing decided under an older config still runs); `Err` names the ones that did
/// not, or says that no instance is live.
pub fn all_paused(members: &[Member]) -> Result<usize, String> {
    let live: Vec<&Member> = members.iter().filter(|m| m.live).collect();
    if live.is_empty() {
        return Err("no live Sluice instance in the fleet registry".into());
    }
    let pending: Vec<String> = live
        .iter()
        .filter(|m| !m.pause_acked)
        .map(|m| {
            let why = if m.pause_writes { "still running work begun before the pause" } else { "writes not paused" };
            format!("{} ({} pid {}, {}): {why}", m.id, m.host, m.pid, m.listen)
        })
        .collect();
    if !pending.is_empty() {
        let (n, of) = (pending.len(), live.len());
        return Err(format!("{n} of {of} live instances have not acknowledged the pause: {}", pending.join("; ")));
    }
    Ok(live.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, live: bool, pause_writes: bool, pause_acked: bool) -> Member {
        let text: Vec<Option<String>> = [
            id,
            "h",
            "1",
            "127.0.0.1:1",
            "",
            "0.1.0",
            "1",
            "d",
            "0",
            "0",
            "serving",
            "0",
            if pause_writes { "1" } else { "0" },
            if pause_acked { "1" } else { "0" },
            "5",
            if live { "1" } else { "0" },
        ]
        .iter()
        .map(|s| Some(s.to_string()))
        .collect();
        Member::from_text(&text).unwrap()
    }

    /// The reshard tooling's check: every live instance acknowledged, stale rows ignored, and
    /// an empty fleet is no proof of a pause.
    #[test]
    fn all_paused_needs_every_live_instance_acknowledged() {
        assert!(all_paused(&[]).is_err());
        assert!(all_paused(&[member("a", false, true, true)]).is_err(), "only a stale row");
        assert_eq!(all_paused(&[member("a", true, true, true), member("b", false, false, false)]), Ok(1));
        let e = all_paused(&[member("a", true, true, true), member("b", true, false, false)]).unwrap_err();
        assert!(e.contains("b (") && e.contains("writes not paused"), "{e}");
        let e = all_paused(&[member("a", true, true, false)]).unwrap_err();
        assert!(e.contains("still running work"), "{e}");
    }
}
