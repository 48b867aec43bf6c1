//! Getting a backend connection for a statement: the pool a route leads to for this
//! session's login (remembered per snapshot), and the checkout with the session's state
//! replayed, counted as waiting only when it does not complete at once.

use super::lease::Lease;
use super::{error, Session};
use crate::backend::pool::PoolHandle;
use crate::protocol::err::ErrPacket;
use crate::router::{Role, Route};
use crate::topology::Backend;
use std::sync::Arc;

/// (shard, role, replica index): which backend of the topology.
pub(super) type BackendKey = (usize, Role, usize);

/// Pools by backend, valid for one snapshot version and one login.
#[derive(Default)]
pub(super) struct PoolCache {
    pub(super) version: u64,
    /// `Shared::writer_epoch` when filled: a switchover changes where the primary route leads.
    pub(super) switchovers: u64,
    pub(super) entries: Vec<(BackendKey, PoolHandle, Arc<Backend>)>,
}

impl Session {
    /// The pinned connection, or a fresh lease from the route's pool with this session's
    /// state replayed. Errors are already worded for the client.
    pub(super) async fn lease_for(&mut self, route: Route) -> Result<&mut Lease, ErrPacket> {
        self.ensure_lease(route).await?;
        Ok(self.lease.as_mut().expect("ensure_lease sets the lease"))
    }

    /// Makes sure `self.lease` holds a connection for `route` (see [`Session::lease_for`]).
    pub(super) async fn ensure_lease(&mut self, route: Route) -> Result<(), ErrPacket> {
        if self.lease.is_some() {
            return Ok(());
        }
        let (pool, backend) = self.pool_for(route)?;
        let epoch = self.shared.globals_epoch.load(std::sync::atomic::Ordering::Relaxed);
        let checkout = crate::backend::lease::checkout(&pool, &self.state.want, epoch);
        tokio::pin!(checkout);
        // Counted as waiting only when the checkout does not complete at once, so the common
        // case touches no shared counter.
        let got = tokio::select! {
            biased;
            got = &mut checkout => got,
            _ = std::future::ready(()) => {
                backend.waiting.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let got = checkout.await;
                backend.waiting.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                got
            }
        };
        let conn = got.map_err(|e| {
            let snap = &self.snap;
            let shard = snap.topology.shard_name(route.shard);
            let role = route.role.as_str();
            self.shared.metrics.backend_errors.with_label_values(&[shard, role]).inc();
            error::lease_error_to_client(e, role, shard, snap.config.pool.acquire_timeout_ms)
        })?;
        self.lease = Some(Lease::new(conn, backend, route));
        Ok(())
    }

    /// The pool a route leads to for this session's login, remembered per snapshot so the
    /// per-statement path does not hash the login to find it. A route whose shard the
    /// current snapshot lacks (planned under an earlier one) is refused, never resolved to
    /// another shard.
    pub(super) fn pool_for(&mut self, route: Route) -> Result<(PoolHandle, Arc<Backend>), ErrPacket> {
        let snap = &self.snap;
        let switchovers = self.shared.writer_epoch.load(std::sync::atomic::Ordering::Relaxed);
        if self.pools.version != snap.version || self.pools.switchovers != switchovers {
            self.pools = PoolCache { version: snap.version, switchovers, entries: Vec::new() };
        }
        let key = (route.shard, route.role, route.replica);
        if let Some((_, p, b)) = self.pools.entries.iter().find(|(k, ..)| *k == key) {
            return Ok((p.clone(), b.clone()));
        }
        let shard = snap.topology.shard(route.shard).ok_or_else(ErrPacket::topology_changed)?;
        let writer;
        let backend = match route.role {
            Role::Replica => shard.replicas.get(route.replica).unwrap_or(&shard.primary),
            Role::Primary => {
                writer = shard.writer();
                &writer
            }
        };
        let u = &self.login.user;
        let user = u.backend_user.as_deref().unwrap_or(u.name.get_ref());
        let password = self.login.backend_password();
        let found_rows = self.client.has(crate::protocol::caps::FOUND_ROWS);
        let pool = backend.pool(user, &password, found_rows);
        self.pools.entries.push((key, pool.clone(), backend.clone()));
        Ok((pool, backend.clone()))
    }

    /// The primaries of `shards` for this session's login, for a statement that fans out
    /// (`backend::fanout`), all resolved before anything starts: a branch left behind by an
    /// early return would be cut off mid-query.
    pub(super) fn branches(&mut self, shards: &[usize]) -> Result<Vec<crate::backend::fanout::Branch>, ErrPacket> {
        let mut out = Vec::with_capacity(shards.len());
        for &shard in shards {
            let (pool, _) = self.pool_for(Route::primary(shard))?;
            let name = self.snap.topology.shard_name(shard).to_string();
            out.push(crate::backend::fanout::Branch { shard: name, pool });
        }
        Ok(out)
    }
}
