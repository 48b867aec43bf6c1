//! A session's hold on one backend connection: the pooled connection, the backend it belongs
//! to and the route that chose it. Holding a replica's connection counts in that replica's
//! `in_flight`, which lowers its effective weight while statements pile up on it (primaries
//! have no weight, so their leases skip the shared counter).

use crate::backend::pool::PooledConn;
use crate::router::{Role, Route};
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
        if route.role == Role::Replica {
            backend.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        Lease { conn, backend, route }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The session that held it is unwinding mid-statement: whatever is on this
            // connection (half a response, a transaction, session state) must not reach the
            // next client.
            self.conn.mark_broken();
        }
        if self.route.role == Role::Replica {
            self.backend.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
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
