//! Command line: `sluice --config PATH` runs the proxy; `sluice check --config PATH` validates;
//! `sluice shard-of --config PATH KEY...` and `sluice ring --config PATH` answer DBAs' questions
//! about the ring.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// A wire-level MySQL proxy: read/write splitting, sharding, pooling.
#[derive(Debug, Parser)]
#[command(name = "sluice", version)]
pub struct Cli {
    /// Config file (TOML).
    #[arg(long, short, env = "SLUICE_CONFIG", global = true, default_value = "config/sluice.toml")]
    pub config: PathBuf,
    /// What to do; runs the proxy when absent.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy (the default).
    Run,
    /// Validate the config; print every problem with its line; exit 1 if there is any.
    Check,
    /// Print `KEY<TAB>SHARD` for each key, as the config's ring places it.
    ShardOf {
        /// Shard-key values (integers, or strings as the application writes them).
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Print each ring shard's share of the key space.
    Ring,
    /// Resharding: `plan` prints which share of the key space moves between which shards.
    Reshard {
        #[command(subcommand)]
        command: ReshardCommand,
    },
}

/// `sluice reshard ...`
#[derive(Debug, Subcommand)]
pub enum ReshardCommand {
    /// Print `FROM<TAB>TO<TAB>SHARE%` for every pair of shards keys move between.
    Plan {
        /// The config in use now.
        #[arg(long)]
        from: PathBuf,
        /// The config with the new ring.
        #[arg(long)]
        to: PathBuf,
    },
}
