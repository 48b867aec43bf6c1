//! The `sluice` binary: parse the command line, set up logging, dispatch.

use anyhow::Context;
use clap::Parser;
use sluice::cli::{Cli, Command};
use tokio::net::TcpListener;
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
        Command::Reshard { command: sluice::cli::ReshardCommand::Plan { from, to } } => {
            let (old, new) = (ring(&from)?, ring(&to)?);
            let moves = sluice::sharding::Ring::movement(&old, &new);
            for (a, b, share) in &moves {
                println!("{a}\t{b}\t{:.2}%", share * 100.0);
            }
            let total: f64 = moves.iter().map(|m| m.2).sum();
            eprintln!("{:.2}% of the key space moves", total * 100.0);
            Ok(())
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

/// The ring of a config's `[sharding]`.
fn ring(path: &std::path::Path) -> anyhow::Result<sluice::sharding::Ring> {
    let config = sluice::config::load(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let s = config.sharding.as_ref().with_context(|| format!("{} has no [sharding] section", path.display()))?;
    let names: Vec<String> = s.ring.iter().map(|n| n.get_ref().clone()).collect();
    Ok(sluice::sharding::Ring::new(&names, s.vnodes))
}

async fn serve(path: &std::path::Path) -> anyhow::Result<()> {
    let config = sluice::config::load(path).with_context(|| format!("loading {}", path.display()))?;
    let listener = TcpListener::bind(config.proxy.listen.get_ref())
        .await
        .with_context(|| format!("binding {}", config.proxy.listen.get_ref()))?;
    let admin = match &config.proxy.admin_listen {
        Some(a) => Some(TcpListener::bind(a.get_ref()).await.with_context(|| format!("binding {}", a.get_ref()))?),
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
