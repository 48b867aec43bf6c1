//! Integration tests: the real proxy, in process on port 0, in front of the real MariaDB
//! testbed (`scripts/testbed up`), exercised by real clients. Tests named `serial_*` count
//! server-wide statistics and run in a separate single-threaded pass (see scripts/test).

mod fault;
mod harness;

mod admin;
mod auth;
mod basic;
mod cache;
mod clients;
mod commands;
mod dashboards;
mod deadlines;
mod deploy;
mod failover;
mod failures;
mod fleet;
mod isolation;
mod kill;
mod large;
mod lifecycle;
mod limits;
mod monitor;
mod observe;
mod pool;
mod prepared;
mod raw;
mod reload;
mod reshard;
mod resources;
mod routing;
mod scatter;
mod sharding;
mod state;
mod tls;
mod tls_certs;
mod unix;
mod xa;
