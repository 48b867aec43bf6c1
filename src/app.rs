//! Wires the tasks together: the client listener, the admin endpoint, and shutdown. Nothing
//! else spawns long-lived tasks.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::shared::Shared;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Runs the proxy on already-bound listeners until `shutdown` is cancelled, then drains:
/// no new connections, idle sessions close, running statements get `shutdown_timeout_ms` to
/// finish. Tests call this with listeners bound to port 0.
pub async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    listener: TcpListener,
    admin: Option<TcpListener>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    raise_open_files(&config);
    let shared = Shared::new(config, Arc::new(Metrics::new())).map_err(std::io::Error::other)?;
    run_shared(shared, config_path, listener, admin, shutdown).await
}

/// Raises the soft open-files limit toward what `max_client_connections` needs (each client,
/// its backend connections and the pools' spares; two descriptors per client and a margin),
/// up to the hard limit; logs what it could not get. A process that runs out of descriptors
/// stops accepting anyone.
fn raise_open_files(config: &Config) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let want = (config.proxy.max_client_connections as u64).saturating_mul(2).saturating_add(1024);
    let now = getrlimit(Resource::Nofile);
    let current = now.current.unwrap_or(u64::MAX);
    if current >= want {
        return;
    }
    let target = now.maximum.map_or(want, |hard| want.min(hard));
    match setrlimit(Resource::Nofile, Rlimit { current: Some(target), maximum: now.maximum }) {
        Ok(()) if target >= want => tracing::info!(from = current, to = target, "raised the open-files limit"),
        Ok(()) => tracing::warn!(
            limit = target,
            needed = want,
            "open-files hard limit is below what max_client_connections needs; raise it (ulimit -Hn, LimitNOFILE=)"
        ),
        Err(e) => tracing::warn!(error = %e, limit = current, needed = want, "could not raise the open-files limit"),
    }
}

/// Binds a listener on `addr`; with `reuse_port`, SO_REUSEPORT lets a new Sluice process bind
/// the same port while the old one still runs (a rolling restart: the old one stops
/// accepting and drains, the kernel hands new connections to the new one).
pub async fn bind(addr: &str, reuse_port: bool) -> std::io::Result<TcpListener> {
    let at = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr}: no address")))?;
    let socket = socket2::Socket::new(socket2::Domain::for_address(at), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&at.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

/// How often the config file's modification time is checked for hot reload.
pub const CONFIG_POLL: Duration = Duration::from_millis(500);

/// [`run`] with shared state the caller built (and may inspect). With `config_path`, the
/// config reloads on SIGHUP and when the file changes.
pub async fn run_shared(
    shared: Arc<Shared>,
    config_path: Option<PathBuf>,
    listener: TcpListener,
    admin: Option<TcpListener>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let tracker = shared.tasks.clone();
    let _ = shared.client_addr.set(listener.local_addr()?);
    if let Some(a) = &admin {
        let _ = shared.http_addr.set(a.local_addr()?);
    }
    crate::topology::monitor::ensure(&shared, &shutdown);
    // The statistics' clock for first and last seen: a store a second, not a clock read per
    // statement.
    let (s, t) = (shared.clone(), shutdown.clone());
    tracker.spawn(async move { s.stats.keep_time(t).await });
    // Idle (one config read per interval) unless `[fleet]` applies.
    tracker.spawn(crate::fleet::run(shared.clone(), shutdown.clone()));
    // Idle (one config read per interval) unless `[sharding] cross_shard = "xa"`.
    tracker.spawn(crate::xa::recovery::run(shared.clone(), shutdown.clone()));
    let snap = shared.load_full();
    if let (Some(cfg), Some(cache)) = (snap.config.cache.as_ref(), shared.cache(&snap)) {
        if let Some(url) = cfg.redis_url.as_ref().filter(|_| cfg.invalidation == crate::config::Invalidation::Redis) {
            let (c, u, ch) = (cache.clone(), url.get_ref().clone(), cfg.redis_channel.clone());
            tracker.spawn(crate::cache::redis::run(c, u, ch, shutdown.clone()));
        }
    }
    if shared.load().config.proxy.auth_plugin.get_ref() == crate::protocol::auth::CACHING_SHA2 {
        // Generate the RSA key now: the first caching_sha2 full authentication would otherwise
        // wait for it (prime search takes from milliseconds to seconds).
        let s = shared.clone();
        tracker.spawn(async move {
            s.rsa_key().await;
        });
    }
    if let Some(addr) = shared.load().config.admin.listen.as_ref().map(|a| a.get_ref().clone()) {
        let l = bind(&addr, shared.load().config.proxy.reuse_port).await?;
        let _ = shared.admin_sql_addr.set(l.local_addr()?);
        tracing::info!(addr = %l.local_addr()?, "SQL admin interface listening");
        let (s, t) = (shared.clone(), shutdown.clone());
        tracker.spawn(async move { crate::admin::sql::serve(l, s, t).await });
    }
    if let Some(path) = config_path {
        let _ = shared.config_path.set(path.clone());
        let (s, t) = (shared.clone(), shutdown.clone());
        tracker.spawn(crate::config::reload::watch(s, path, CONFIG_POLL, t));
    }
    if let Some(a) = admin {
        let (s, t) = (shared.clone(), shutdown.clone());
        tracker.spawn(async move { crate::admin::serve(a, s, t).await });
    }
    // Counted here, limited by the current snapshot: a reload changes the limit for the next
    // accept (open connections over a lowered limit stay).
    let live = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    if let Some(path) = shared.load().config.proxy.socket.as_ref().map(|p| p.get_ref().clone()) {
        let unix = crate::unix::bind(&path, &shared)?;
        tracing::info!(path = %path, "accepting client connections on the Unix socket");
        let (s, t, l) = (shared.clone(), shutdown.clone(), live.clone());
        tracker.spawn(async move { crate::unix::serve(unix, path, s, l, t).await });
    }
    tracing::info!(addr = %listener.local_addr()?, "accepting client connections");
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        crate::backend::connect::keepalive(&stream, shared.load().config.proxy.tcp_keepalive_s);
        crate::admission::admit(&shared, &live, crate::tls::Stream::Plain(stream), peer, &shutdown);
    }
    shared.draining.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(listener);
    tracker.close();
    let grace = Duration::from_millis(shared.load().config.proxy.shutdown_timeout_ms);
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!("drain timeout reached; closing remaining connections");
    }
    Ok(())
}
