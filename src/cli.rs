//! Command line: `sluice --config PATH` runs the proxy; `sluice check --config PATH` validates;
//! `sluice shard-of --config PATH KEY...` and `sluice ring --config PATH` answer DBAs' questions
//! about the ring; `sluice fleet` lists the live instances.

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
    /// List the Sluice instances in the fleet registry (`[fleet]`): live ones first, with their
    /// config version and digest, so a DBA sees whether a reload reached every instance.
    Fleet,
    /// Ask this instance's HTTP admin endpoint (`[proxy] admin_listen`, or `--addr`) for
    /// `/health/live` or `/health/ready`; exit 0 when it answers 200, 1 otherwise (for
    /// container HEALTHCHECKs and exec probes).
    Probe {
        /// `live` or `ready`.
        #[arg(value_parser = ["live", "ready"], default_value = "ready")]
        what: String,
        /// The endpoint's address (default: the config's `admin_listen`).
        #[arg(long)]
        addr: Option<String>,
    },
    /// Resharding: `plan` prints which share of the key space moves between which shards.
    Reshard {
        #[command(subcommand)]
        command: ReshardCommand,
    },
}

/// `sluice reshard ...` (the procedure: docs/sharding.md)
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
    /// Copy the rows of moved keys of every sharded table to their new shard (batched,
    /// resumable), then verify row counts per key. Exit 3 when counts differ.
    Copy {
        #[command(flatten)]
        target: ReshardTarget,
        /// Where progress is kept; an interrupted copy resumes from it.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Delete earlier copies and start over (only before the new ring is live). Refused
        /// unless every live instance in the old config's fleet registry acknowledged
        /// `pause_writes`.
        #[arg(long)]
        restart: bool,
        /// With --restart: skip the fleet registry's pause check (for a fleet without a
        /// registry, whose writes were stopped some other way).
        #[arg(long, requires = "restart")]
        skip_pause_check: bool,
    },
    /// Delete moved keys' rows from their old shards (after the new config is live).
    Cleanup {
        #[command(flatten)]
        target: ReshardTarget,
        /// Print what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Which ring change, where the tables are and how to log in.
#[derive(Debug, clap::Args)]
pub struct ReshardTarget {
    /// The config in use now (old ring).
    #[arg(long)]
    pub from: PathBuf,
    /// The config with the new ring (its [[shards]] include any new shard).
    #[arg(long)]
    pub to: PathBuf,
    /// Database holding the sharded tables.
    #[arg(long)]
    pub database: String,
    /// Backend login (default: the new config's first [[users]] entry).
    #[arg(long)]
    pub user: Option<String>,
    /// Its password.
    #[arg(long, env = "SLUICE_RESHARD_PASSWORD")]
    pub password: Option<String>,
    /// Rows per read batch (copy) or keys per DELETE (cleanup).
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
}
