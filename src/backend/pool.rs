//! bb8 glue: how the pool makes, checks and discards backend connections.

use super::conn::BackendConn;
use super::connect::{connect, ConnectOptions};
use super::error::BackendError;
use crate::metrics::Metrics;
use std::sync::Arc;

/// Makes connections for one (backend, user, found-rows) pool.
#[derive(Debug, Clone)]
pub struct Manager {
    pub options: ConnectOptions,
    pub metrics: Arc<Metrics>,
}

/// A pool of connections to one backend for one user.
pub type Pool = bb8::Pool<Manager>;

/// A connection checked out of a pool, owned (not borrowing the pool), so a session can hold it
/// across statements while pinned.
pub type PooledConn = bb8::PooledConnection<'static, Manager>;

impl bb8::ManageConnection for Manager {
    type Connection = BackendConn;
    type Error = BackendError;

    async fn connect(&self) -> Result<BackendConn, BackendError> {
        let r = connect(&self.options).await;
        match &r {
            Ok(c) => {
                self.metrics
                    .backend_connects
                    .with_label_values(&[&self.options.addr, "ok"])
                    .inc();
                tracing::debug!(addr = %self.options.addr, id = c.id, "backend connection opened");
            }
            Err(e) => {
                self.metrics
                    .backend_connects
                    .with_label_values(&[&self.options.addr, "error"])
                    .inc();
                tracing::warn!(addr = %self.options.addr, error = %e, "backend connect failed");
            }
        }
        r
    }

    async fn is_valid(&self, conn: &mut BackendConn) -> Result<(), BackendError> {
        conn.ping().await
    }

    fn has_broken(&self, conn: &mut BackendConn) -> bool {
        conn.is_broken()
    }
}
