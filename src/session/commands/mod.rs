//! One function per command family; the dispatcher in `session/mod.rs` calls these.

mod cached;
mod connection;
mod kill;
mod query;
mod sharded;
mod stmt;
mod stream;
mod values;
mod warnings;

pub(super) use cached::CacheMarks;
pub(super) use connection::{change_user, ping, reset_connection, set_option};
pub(super) use kill::process_kill;
pub(super) use query::query;
pub(super) use stmt::{stmt_close, stmt_execute, stmt_fetch, stmt_long_data, stmt_prepare, stmt_reset, Statements};
pub(super) use warnings::Warnings;
