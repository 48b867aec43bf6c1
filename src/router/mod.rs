//! Routing: pure functions from a statement and the session's view to a [`Route`]. No I/O and
//! no `.await`: the session performs what the route says.

pub mod analysis;
pub mod lex;
pub mod route;

pub use analysis::{analyze, Analysis, Feature};
pub use route::{Role, Route};

/// Decides where a statement goes. Until read/write splitting lands every statement goes to the
/// primary of the default shard, the safe default of [`Route`].
pub fn route(_analysis: &Analysis, default_shard: usize) -> Route {
    Route { shard: default_shard, ..Route::default() }
}
