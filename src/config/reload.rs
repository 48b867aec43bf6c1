//! Reloading the config without a restart: on SIGHUP and when the file changes (its
//! modification time, size or inode, checked every `poll`), the file is parsed and validated
//! off to the side; an invalid file is rejected with every problem logged (with its line) and
//! counted, and the running config keeps serving. A valid one becomes a new snapshot in one `store`: statements
//! already running finish on the old snapshot; unchanged backends keep their pools.

use crate::shared::{Shared, Snapshot};
use crate::topology::Topology;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What a reload attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The new config is live, with this snapshot version.
    Applied(u64),
    /// The file was invalid; the old config keeps serving.
    Rejected(String),
}

/// Reads, validates and, if valid, installs the config at `path`; the outcome is kept among
/// the last reloads the status page shows.
pub fn reload(shared: &Shared, path: &Path) -> Outcome {
    let outcome = attempt(shared, path);
    if let Ok(mut recent) = shared.reloads.lock() {
        let what = match &outcome {
            Outcome::Applied(v) => format!("applied (version {v})"),
            Outcome::Rejected(why) => format!("rejected: {why}"),
        };
        recent.push_back((std::time::SystemTime::now(), what));
        while recent.len() > 10 {
            recent.pop_front();
        }
    }
    outcome
}

fn attempt(shared: &Shared, path: &Path) -> Outcome {
    let config = match super::load(path) {
        Ok(c) => c,
        Err(e) => {
            shared.metrics.config_reloads.with_label_values(&["rejected"]).inc();
            for p in &e.problems {
                match p.line {
                    Some(l) => tracing::error!(file = %path.display(), line = l, "config rejected: {}", p.message),
                    None => tracing::error!(file = %path.display(), "config rejected: {}", p.message),
                }
            }
            return Outcome::Rejected(e.to_string());
        }
    };
    let old = shared.load_full();
    if config.proxy.listen != old.config.proxy.listen
        || config.proxy.admin_listen != old.config.proxy.admin_listen
        || config.proxy.socket != old.config.proxy.socket
    {
        tracing::warn!("proxy.listen / proxy.admin_listen / proxy.socket changed: takes effect after a restart");
    }
    let topology = Topology::rebuild(&config, &shared.metrics, Some(&old.topology));
    let version = old.version + 1;
    let mut snap = match Snapshot::new(config, topology, version) {
        Ok(s) => s,
        Err(e) => {
            // Validated a moment ago; the files changed in between.
            shared.metrics.config_reloads.with_label_values(&["rejected"]).inc();
            tracing::error!(file = %path.display(), "config rejected: [tls]: {e}");
            return Outcome::Rejected(e.to_string());
        }
    };
    if snap.pause_from != 0 && old.pause_from != 0 {
        snap.pause_from = old.pause_from;
    }
    let users = snap.config.clone();
    shared.store(snap);
    // A user removed, or whose password, TLS requirement or backend login changed, loses its
    // open sessions (each ends after its current statement).
    let ended = shared.sessions.end_where(|user, fp| users.user(user).is_none_or(|u| u.fingerprint() != fp));
    if ended > 0 {
        tracing::warn!(sessions = ended, "reload removed or changed users: their open sessions end");
    }
    shared.metrics.config_reloads.with_label_values(&["applied"]).inc();
    tracing::info!(version, file = %path.display(), "config reloaded");
    Outcome::Applied(version)
}

/// What identifies one version of the config file: modification time, size, and which file
/// the path leads to. Kubernetes mounts a ConfigMap as `sluice.toml -> ..data/sluice.toml`
/// and updates it by pointing the `..data` symlink at a new directory: the file reached is a
/// different inode, whose modification time may equal the old one's.
fn stamp(p: &Path) -> Option<(std::time::SystemTime, u64, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino(), m.dev()))
}

/// Watches for SIGHUP and file changes (see [`stamp`]) until shutdown.
pub async fn watch(shared: Arc<Shared>, path: PathBuf, poll: Duration, shutdown: CancellationToken) {
    let mut seen = stamp(&path);
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "no SIGHUP handler; reloading on file changes only");
            None
        }
    };
    let mut tick = tokio::time::interval(poll);
    loop {
        let by_signal = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = async { match hup.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending().await } } => true,
            _ = tick.tick() => false,
        };
        let now = stamp(&path);
        if by_signal || now != seen {
            seen = now;
            if let Outcome::Applied(_) = reload(&shared, &path) {
                crate::topology::monitor::ensure(&shared, &shutdown);
            }
        }
    }
}
