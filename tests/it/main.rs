//! Integration tests: the real proxy, in process on port 0, in front of the real MariaDB
//! testbed (`scripts/testbed up`), exercised by real clients.

mod harness;

mod auth;
mod basic;
mod clients;
mod commands;
mod failures;
mod large;
mod lifecycle;
mod monitor;
mod prepared;
mod raw;
mod reload;
mod state;
