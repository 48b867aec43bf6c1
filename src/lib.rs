//! Sluice: a wire-level MySQL proxy.
//!
//! One query's path: [`app`] accepts the socket and spawns a [`session`]; the session
//! authenticates the client ([`session::connect`]), reads each command, asks the [`router`] where
//! it goes, leases a pooled [`backend`] connection (reconciling session state onto it), relays
//! the request and streams the response back frame by frame through
//! [`protocol::response::ResponseScanner`], then returns the connection to its pool unless the
//! session is pinned. Live configuration and topology sit in one [`shared::Shared`] snapshot.
#![forbid(unsafe_code)]

pub mod admin;
pub mod admission;
pub mod app;
pub mod backend;
pub mod cache;
pub mod cli;
pub mod config;
pub mod fleet;
pub mod metrics;
pub mod pause;
pub mod protocol;
pub mod reshard;
pub mod router;
pub mod session;
pub mod sessions;
pub mod sharding;
pub mod shared;
pub mod sql;
pub mod throttle;
pub mod tls;
pub mod topology;
pub mod unix;
pub mod xa;

pub use app::run;
pub mod stats;
