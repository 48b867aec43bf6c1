//! A session's hold on one backend connection: the pooled connection, the backend it belongs
//! to and the route that chose it. Holding one counts in the backend's `in_flight`, which
//! lowers a replica's effective weight while statements pile up on it.

use crate::backend::pool::PooledConn;
use crate::router::Route;
use crate::topology::Backend;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A connection checked out for a statement or a pinned stretch of a session.
pub struct Lease {
    conn: PooledConn,
    pub backend: Arc<Backend>,
    pub route: Route,
}

impl Lease {
    /// Wraps a checked-out connection and counts it as in flight on `backend`.
    pub fn new(conn: PooledConn, backend: Arc<Backend>, route: Route) -> Lease {
        backend.in_flight.fetch_add(1, Ordering::Relaxed);
        Lease { conn, backend, route }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.backend.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Deref for Lease {
    type Target = PooledConn;
    fn deref(&self) -> &PooledConn {
        &self.conn
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut PooledConn {
        &mut self.conn
    }
}
