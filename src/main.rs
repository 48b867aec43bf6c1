//! The `sluice` binary: parse the command line, set up logging, dispatch.

use anyhow::Context;
use clap::Parser;
use sluice::cli::{Cli, Command, ReshardCommand};
use tokio_util::sync::CancellationToken;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    match cli.command.unwrap_or(Command::Run) {
        Command::Check => check(&cli.config),
        Command::ShardOf { keys } => {
            let ring = ring(&cli.config)?;
            for k in keys {
                println!("{k}\t{}", ring.shard_of(&sluice::sharding::KeyValue::Bytes(k.clone().into_bytes())));
            }
            Ok(())
        }
        Command::Reshard { command: ReshardCommand::Copy { target, state, restart, skip_pause_check } } => {
            let m = reshard_move(&target)?;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            if restart && !skip_pause_check {
                pause_acknowledged(&rt, &target.from)?;
            }
            let state = state.unwrap_or_else(|| format!("reshard-{}.state", target.database).into());
            let options = sluice::reshard::copy::CopyOptions {
                batch: target.batch.max(1),
                state,
                restart,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            let reports = rt.block_on(sluice::reshard::copy::copy(&m, &options))?;
            let mut differ = 0;
            for r in &reports {
                println!(
                    "{}\tscanned {}\tcopied {}\tkeys moved {}\tcleared {}\tkeys differing {}",
                    r.table,
                    r.scanned,
                    r.copied,
                    r.keys_moved,
                    r.cleared,
                    r.mismatched.len()
                );
                for line in r.mismatched.iter().take(10) {
                    eprintln!("  {line}");
                }
                differ += r.mismatched.len();
            }
            if differ > 0 {
                eprintln!("{differ} keys differ between old and new shard (writes during the copy?): pause writes and run again with --restart");
                std::process::exit(3);
            }
            Ok(())
        }
        Command::Reshard { command: ReshardCommand::Cleanup { target, dry_run } } => {
            let m = reshard_move(&target)?;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            for c in rt.block_on(sluice::reshard::cleanup::cleanup(&m, target.batch.max(1), dry_run))? {
                let verb = if dry_run { "would delete" } else { "deleted" };
                println!("{}\t{}\t{verb} {} rows of {} keys", c.table, c.shard, c.rows, c.keys);
            }
            Ok(())
        }
        Command::Reshard { command: ReshardCommand::Plan { from, to } } => {
            let (old, new) = (ring(&from)?, ring(&to)?);
            let moves = sluice::sharding::Ring::movement(&old, &new);
            for (a, b, share) in &moves {
                println!("{a}\t{b}\t{:.2}%", share * 100.0);
            }
            let total: f64 = moves.iter().map(|m| m.2).sum();
            eprintln!("{:.2}% of the key space moves", total * 100.0);
            Ok(())
        }
        Command::Fleet => {
            let config =
                sluice::config::load(&cli.config).map_err(|e| anyhow::anyhow!("{}: {e}", cli.config.display()))?;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let members = rt.block_on(sluice::fleet::read_with(config)).map_err(|e| anyhow::anyhow!(e))?;
            print!("{}", fleet_table(&members));
            Ok(())
        }
        Command::Probe { what, addr } => {
            let addr = match addr {
                Some(a) => a,
                None => {
                    let config = sluice::config::load(&cli.config)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", cli.config.display()))?;
                    let a = config.proxy.admin_listen.with_context(|| "the config has no [proxy] admin_listen")?;
                    a.into_inner()
                }
            };
            let path = format!("/health/{what}");
            match sluice::admin::probe::probe(&addr, &path, std::time::Duration::from_secs(3)) {
                Ok((200, body)) => {
                    println!("{body}");
                    Ok(())
                }
                Ok((status, body)) => {
                    eprintln!("{path}: {status} {body}");
                    std::process::exit(1);
                }
                Err(e) => {
                    eprintln!("{path} on {addr}: {e}");
                    std::process::exit(1);
                }
            }
        }
        Command::Ring => {
            let ring = ring(&cli.config)?;
            for (name, share) in ring.shares() {
                println!("{name}\t{:.2}%", share * 100.0);
            }
            Ok(())
        }
        Command::Run => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(serve(&cli.config))
        }
    }
}

fn check(path: &std::path::Path) -> anyhow::Result<()> {
    match sluice::config::load(path) {
        Ok(_) => {
            println!("{}: ok", path.display());
            Ok(())
        }
        Err(e) => {
            for p in &e.problems {
                match p.line {
                    Some(l) => eprintln!("{}:{l}: {}", path.display(), p.message),
                    None => eprintln!("{}: {}", path.display(), p.message),
                }
            }
            std::process::exit(1);
        }
    }
}

/// `sluice fleet`'s output: a header and one tab-separated line per instance.
fn fleet_table(members: &[sluice::fleet::Member]) -> String {
    let mut out = String::from(
        "ID\tHOST\tPID\tLISTEN\tSTATE\tLIVE\tAGE_MS\tCONFIG_VERSION\tCONFIG_DIGEST\tLOADED\tSESSIONS\tPAUSE\n",
    );
    for m in members {
        let loaded = humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + std::time::Duration::from_micros(m.config_loaded_us),
        );
        let pause = match (m.pause_writes, m.pause_acked) {
            (false, _) => "-",
            (true, false) => "pausing",
            (true, true) => "acknowledged",
        };
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            m.id,
            m.host,
            m.pid,
            m.listen,
            m.state,
            if m.live { "yes" } else { "no" },
            m.age_ms,
            m.config_version,
            m.config_digest,
            loaded,
            m.sessions,
            pause
        ));
    }
    out
}

/// `copy --restart` only once every live instance of the old config's fleet acknowledged
/// `pause_writes`: otherwise writes may land on the old shards after the copy read them.
fn pause_acknowledged(rt: &tokio::runtime::Runtime, from: &std::path::Path) -> anyhow::Result<()> {
    let config = sluice::config::load(from).map_err(|e| anyhow::anyhow!("{}: {e}", from.display()))?;
    let members = rt.block_on(sluice::fleet::read_with(config)).map_err(|e| {
        anyhow::anyhow!(
            "cannot check that writes are paused ({e}); pass --skip-pause-check if they were stopped some other way"
        )
    })?;
    match sluice::fleet::all_paused(&members) {
        Ok(n) => {
            eprintln!("writes paused on all {n} live instances");
            Ok(())
        }
        Err(why) => {
            eprintln!("refusing copy --restart: {why}");
            std::process::exit(4);
        }
    }
}

/// The ring of a config's `[sharding]`.
fn ring(path: &std::path::Path) -> anyhow::Result<sluice::sharding::Ring> {
    let config = sluice::config::load(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let s = config.sharding.as_ref().with_context(|| format!("{} has no [sharding] section", path.display()))?;
    let names: Vec<String> = s.ring.iter().map(|n| n.get_ref().clone()).collect();
    Ok(sluice::sharding::Ring::new(&names, s.vnodes))
}

/// Both configs of a ring change, and the login.
fn reshard_move(t: &sluice::cli::ReshardTarget) -> anyhow::Result<sluice::reshard::Move> {
    let load = |p: &std::path::Path| sluice::config::load(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()));
    let (from, to) = (load(&t.from)?, load(&t.to)?);
    let login = t.user.clone().map(|u| (u, t.password.clone().unwrap_or_default()));
    Ok(sluice::reshard::Move::new(&from, &to, &t.database, login)?)
}

async fn serve(path: &std::path::Path) -> anyhow::Result<()> {
    let config = sluice::config::load(path).with_context(|| format!("loading {}", path.display()))?;
    let reuse = config.proxy.reuse_port;
    let listener = sluice::app::bind(config.proxy.listen.get_ref(), reuse)
        .await
        .with_context(|| format!("binding {}", config.proxy.listen.get_ref()))?;
    let admin = match &config.proxy.admin_listen {
        Some(a) => {
            Some(sluice::app::bind(a.get_ref(), reuse).await.with_context(|| format!("binding {}", a.get_ref()))?)
        }
        None => None,
    };
    let shutdown = CancellationToken::new();
    let s = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested: draining");
        s.cancel();
    });
    sluice::run(config, Some(path.to_path_buf()), listener, admin, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
