//! Backend connections: login, pooling, and the per-statement lease.

pub mod conn;
pub mod connect;
pub mod error;
pub mod fanout;
pub mod lease;
pub mod pool;
pub mod stmts;
pub mod stream;

pub use conn::{BackendConn, ConnState};
pub use error::BackendError;
