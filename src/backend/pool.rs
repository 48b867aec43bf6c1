//! bb8 glue: how the pool makes, checks and discards backend connections.

use super::conn::BackendConn;
use super::connect::{connect, ConnectOptions};
use super::error::BackendError;
use crate::metrics::Metrics;
use std::sync::Arc;

/// Makes connections for one (backend, user, found-rows) pool.
#[derive(Debug, Clone)]
pub struct Manager {
    pub options: Arc<ConnectOptions>,
    /// Shard and role of the backend, for metric labels.
    pub shard: String,
    pub role: &'static str,
    pub metrics: Arc<Metrics>,
    pub last_error: Arc<LastError>,
}

/// The most recent failed connect of a pool. bb8 opens connections in the background and
/// only tells a waiting checkout that it timed out; this lets the checkout fail as soon as a
/// connect attempt fails, with the reason, instead of after the whole acquire timeout.
#[derive(Debug, Default)]
pub struct LastError(std::sync::Mutex<Option<(std::time::Instant, String)>>);

impl LastError {
    fn record(&self, e: &BackendError) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some((std::time::Instant::now(), e.to_string()));
        }
    }

    /// The reason of a connect that failed after `since`.
    pub fn since(&self, since: std::time::Instant) -> Option<String> {
        let g = self.0.lock().ok()?;
        g.as_ref().filter(|(at, _)| *at >= since).map(|(_, e)| e.clone())
    }
}

/// A pool and its connect-failure record.
#[derive(Debug, Clone)]
pub struct PoolHandle {
    pub pool: Pool,
    pub last_error: Arc<LastError>,
    /// How the pool logs in (for COM_CHANGE_USER on one of its connections).
    pub options: Arc<ConnectOptions>,
}

/// A pool of connections to one backend for one user.
pub type Pool = bb8::Pool<Manager>;

/// A connection checked out of a pool, owned (not borrowing the pool), so a session can hold it
/// across statements while pinned.
pub type PooledConn = bb8::PooledConnection<'static, Manager>;

/// Pooled connections are boxed: bb8 moves a connection by value several times per checkout
/// and return (into its idle queue, out of it, through its futures), and a `BackendConn` is
/// hundreds of bytes (its stream, TLS state and buffers). Moving a box is moving a pointer;
/// unboxed, those moves were about 2,500 instructions of `memcpy` per point select (14 % of
/// all, callgrind).
impl bb8::ManageConnection for Manager {
    type Connection = Box<BackendConn>;
    type Error = BackendError;

    async fn connect(&self) -> Result<Box<BackendConn>, BackendError> {
        let r = connect(&self.options).await.map(Box::new);
        match &r {
            Ok(c) => {
                self.metrics
                    .backend_connects
                    .with_label_values(&[&self.shard, self.role, &self.options.addr, "ok"])
                    .inc();
                tracing::debug!(addr = %self.options.addr, id = c.id, "backend connection opened");
            }
            Err(e) => {
                self.last_error.record(e);
                self.metrics
                    .backend_connects
                    .with_label_values(&[&self.shard, self.role, &self.options.addr, "error"])
                    .inc();
                tracing::warn!(addr = %self.options.addr, error = %e, "backend connect failed");
            }
        }
        r
    }

    async fn is_valid(&self, conn: &mut Box<BackendConn>) -> Result<(), BackendError> {
        conn.ping().await
    }

    /// A connection goes back to the pool only when nothing is left unread on it: bytes the
    /// backend sent after the end of a response would otherwise be read as the next
    /// client's answer.
    fn has_broken(&self, conn: &mut Box<BackendConn>) -> bool {
        conn.is_broken() || conn.has_buffered()
    }
}
