//! State every task shares: the live snapshot (config + topology) behind one `ArcSwap`, the
//! metrics, and the few process-wide facts sessions need. No globals: one `Arc<Shared>` is
//! handed to each task.

use crate::config::{Config, UserConfig};
use crate::metrics::Metrics;
use crate::topology::Topology;
use arc_swap::{ArcSwap, Guard};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::OnceCell;

/// One consistent view of configuration and topology. Statements load it once and finish on
/// it even if a reload swaps in a newer one meanwhile.
pub struct Snapshot {
    pub config: Arc<Config>,
    pub topology: Arc<Topology>,
    /// TLS toward clients, built from `[tls]` with this config (new connections take the
    /// snapshot's; open ones keep the one they started with).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub version: u64,
    pub loaded_at: SystemTime,
    /// `[[cache.rules]]` compiled (none without `[cache]`).
    pub cache_rules: Option<Arc<crate::cache::Rules>>,
    /// The first version of the unbroken run of configs with `[sharding] pause_writes` on
    /// that this one belongs to; 0 when writes are not paused. The fleet registry
    /// acknowledges the pause once nothing decided under an older version still runs.
    pub pause_from: u64,
}

impl Snapshot {
    /// A snapshot of `config` over `topology`; `Err` when `[tls]` does not load.
    pub fn new(config: Config, topology: Topology, version: u64) -> Result<Snapshot, crate::tls::TlsError> {
        let tls = config.tls.as_ref().map(|t| crate::tls::acceptor(t.files())).transpose()?;
        let cache_rules = config.cache.as_ref().map(|c| Arc::new(crate::cache::Rules::new(c)));
        let paused = config.sharding.as_ref().is_some_and(|sh| sh.pause_writes);
        Ok(Snapshot {
            pause_from: if paused { version } else { 0 },
            cache_rules,
            config: Arc::new(config),
            topology: Arc::new(topology),
            tls,
            version,
            loaded_at: SystemTime::now(),
        })
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("version", &self.version)
            .field("tls", &self.tls.is_some())
            .field("loaded_at", &self.loaded_at)
            .finish_non_exhaustive()
    }
}

/// Sluice's RSA key pair for caching_sha2 full authentication.
pub struct RsaKey {
    key: rsa::RsaPrivateKey,
    pub public_pem: String,
}

impl RsaKey {
    fn generate() -> RsaKey {
        use rsa::pkcs8::EncodePublicKey;
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key generation");
        let public_pem =
            key.to_public_key().to_public_key_pem(rsa::pkcs8::LineEnding::LF).expect("PEM encoding of a fresh key");
        RsaKey { key, public_pem }
    }

    /// RSA-OAEP (SHA-1) decryption, as MySQL clients encrypt; `None` if it does not decrypt.
    pub fn decrypt(&self, data: &[u8]) -> Option<Vec<u8>> {
        self.key.decrypt(rsa::Oaep::new::<sha1::Sha1>(), data).ok()
    }
}

/// One entry of the caching_sha2 cache.
#[derive(Debug, Clone, Copy)]
pub struct Sha2Cached {
    /// `SHA256(SHA256(password))`.
    pub stage2: [u8; 32],
    /// `SHA1(password)`.
    pub sha1: [u8; 20],
}

/// What all tasks share.
pub struct Shared {
    snapshot: ArcSwap<Snapshot>,
    pub metrics: Arc<Metrics>,
    server_version: ArcSwap<String>,
    /// Live client sessions by connection id (KILL, CONNECTION_ID()).
    pub sessions: crate::sessions::Registry,
    /// caching_sha2's cache, as the server's own: for each user (name and fingerprint, so a
    /// changed password misses) that passed full authentication, `SHA256(SHA256(password))`
    /// for the fast path and `SHA1(password)` (a `password_hash` user's backend credential).
    /// In memory only.
    sha2_cache: Mutex<HashMap<(String, u64), Sha2Cached>>,
    rsa: OnceCell<RsaKey>,
    /// XA transaction ids and the transactions being committed (`[sharding] cross_shard`).
    pub xa: crate::xa::Coordinator,
    /// Bumped by every `SET GLOBAL` Sluice relays: pooled connections opened before it carry
    /// the old globals as their session values, so a checkout resets them first.
    pub globals_epoch: std::sync::atomic::AtomicU64,
    /// Bumped by the monitor at each switchover it sees: where a shard's primary route
    /// leads changed, so sessions' remembered pools are stale (the metric counts the same
    /// events, but no decision reads a metric).
    pub writer_epoch: std::sync::atomic::AtomicU64,
    /// Every task Sluice starts (sessions, monitors, XA recovery, the reload watcher, the
    /// admin server, a streamed scatter read's shard readers): shutdown waits for them all.
    pub tasks: tokio_util::task::TaskTracker,
    /// Failed logins by client address ([`crate::throttle`]).
    pub logins: crate::throttle::LoginThrottle,
    /// Statement statistics by fingerprint (`SHOW SLUICE DIGESTS`).
    pub stats: crate::stats::Stats,
    /// Replica addresses an operator drained (`SLUICE BACKEND addr DRAIN`), re-applied to
    /// every snapshot so a reload does not bring them back.
    pub drained: Mutex<std::collections::HashSet<String>>,
    /// The config file, for `SLUICE RELOAD` (none when started from a parsed config).
    pub config_path: std::sync::OnceLock<std::path::PathBuf>,
    /// Where the SQL admin interface listens, once bound.
    pub admin_sql_addr: std::sync::OnceLock<std::net::SocketAddr>,
    /// Where the client listener and the HTTP admin endpoint are bound (the fleet registry
    /// shows them).
    pub client_addr: std::sync::OnceLock<std::net::SocketAddr>,
    pub http_addr: std::sync::OnceLock<std::net::SocketAddr>,
    /// The Unix socket clients may use (`[proxy] socket`), once bound (leaked: one per
    /// process start).
    pub client_socket: std::sync::OnceLock<&'static str>,
    /// The result cache, made the first time a snapshot with `[cache]` needs it (its
    /// `max_bytes` is that snapshot's: a new cap takes a restart).
    cache: std::sync::OnceLock<Arc<crate::cache::Cache>>,
    /// Shutdown has begun: `/health/ready` answers 503.
    pub draining: std::sync::atomic::AtomicBool,
    /// This instance's id: its heartbeat rows and its fleet registry row are keyed by it.
    pub instance_id: String,
    /// When this instance started (wall clock), for the fleet registry.
    pub started_at: SystemTime,
    /// `SLUICE PAUSE`: new statements wait until `SLUICE RESUME`.
    pub pause: crate::pause::Pause,
    /// The last reload attempts (time, result), newest last, for the status page.
    pub reloads: Mutex<std::collections::VecDeque<(std::time::SystemTime, String)>>,
    /// The slow log's writer, started at the first slow statement (`[stats] slow_log`).
    slow_log: std::sync::OnceLock<Option<crate::stats::slowlog::SlowLog>>,
}

impl Shared {
    /// Builds the shared state around a first snapshot; `Err` when `[tls]` does not load.
    pub fn new(config: Config, metrics: Arc<Metrics>) -> Result<Arc<Shared>, crate::tls::TlsError> {
        let version = config.proxy.server_version.clone().unwrap_or_else(|| "5.5.5-10.11.0-MariaDB-sluice".into());
        let topology = Topology::build(&config, &metrics);
        let max_fingerprints = config.stats.max_fingerprints;
        let snap = Snapshot::new(config, topology, 1)?;
        Ok(Arc::new(Shared {
            snapshot: ArcSwap::from_pointee(snap),
            metrics,
            server_version: ArcSwap::from_pointee(version),
            sessions: Default::default(),
            sha2_cache: Mutex::new(HashMap::new()),
            rsa: OnceCell::new(),
            xa: Default::default(),
            globals_epoch: Default::default(),
            writer_epoch: Default::default(),
            tasks: tokio_util::task::TaskTracker::new(),
            logins: Default::default(),
            stats: crate::stats::Stats::new(max_fingerprints),
            slow_log: std::sync::OnceLock::new(),
            drained: Default::default(),
            config_path: Default::default(),
            admin_sql_addr: Default::default(),
            client_addr: Default::default(),
            http_addr: Default::default(),
            client_socket: Default::default(),
            pause: Default::default(),
            draining: Default::default(),
            instance_id: format!("{:016x}", rand::random::<u64>()),
            started_at: SystemTime::now(),
            cache: Default::default(),
            reloads: Default::default(),
        }))
    }

    /// The result cache when `snap` configures one.
    pub fn cache(&self, snap: &Snapshot) -> Option<&Arc<crate::cache::Cache>> {
        let cfg = snap.config.cache.as_ref()?;
        Some(self.cache.get_or_init(|| Arc::new(crate::cache::Cache::new(cfg, self.metrics.cache.clone()))))
    }

    /// The cache if one was made or the current snapshot configures one (the admin
    /// interface asks outside any session).
    pub fn cache_if_made(&self) -> Option<&Arc<crate::cache::Cache>> {
        match self.cache.get() {
            Some(c) => Some(c),
            None => self.cache(&self.load()),
        }
    }

    /// The current snapshot. Cheap: no lock, no clone of the config.
    pub fn load(&self) -> Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    /// The current snapshot as an owned `Arc`, for holding across awaits.
    pub fn load_full(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Installs a new snapshot (the only place a config is swapped in).
    pub fn store(&self, snap: Snapshot) {
        self.stats.set_limit(snap.config.stats.max_fingerprints);
        if let Ok(drained) = self.drained.lock() {
            for b in snap.topology.shards.iter().flat_map(|s| s.replicas.iter()) {
                b.drained.store(drained.contains(&b.addr), std::sync::atomic::Ordering::Relaxed);
            }
        }
        self.snapshot.store(Arc::new(snap));
    }

    /// The slow log, when `[stats] slow_log` names a file: its writer starts at the first use
    /// (inside the runtime), with the file the config named then; a later change of the path
    /// needs a restart.
    pub fn slow_log(&self) -> Option<&crate::stats::slowlog::SlowLog> {
        self.slow_log
            .get_or_init(|| {
                let snap = self.load();
                let s = &snap.config.stats;
                let path = s.slow_log.as_ref()?.get_ref().into();
                let m = &self.metrics;
                Some(crate::stats::slowlog::SlowLog::start(
                    path,
                    s.slow_log_max_bytes,
                    s.slow_log_keep,
                    m.slow_log_written.clone(),
                    m.slow_log_dropped.clone(),
                ))
            })
            .as_ref()
    }

    /// The version string greetings announce.
    pub fn server_version(&self) -> String {
        self.server_version.load().as_ref().clone()
    }

    /// Adopts a backend's version string unless the config fixed one.
    pub fn learn_server_version(&self, v: &str) {
        if self.load().config.proxy.server_version.is_none() && self.server_version.load().as_str() != v {
            self.server_version.store(Arc::new(v.to_string()));
        }
    }

    /// What caching_sha2 full authentication of `user` (with its current password) left in
    /// the cache, if it passed before: then the fast path applies, as in MySQL's cache.
    pub fn sha2_cached(&self, user: &UserConfig) -> Option<Sha2Cached> {
        let k = (user.name.get_ref().clone(), user.fingerprint());
        self.sha2_cache.lock().ok().and_then(|c| c.get(&k).copied())
    }

    /// Records a successful caching_sha2 full authentication with the password it gave.
    pub fn sha2_remember(&self, user: &UserConfig, clear: &[u8]) {
        use sha1::Digest;
        let entry =
            Sha2Cached { stage2: crate::protocol::auth::sha2_stage2(clear), sha1: sha1::Sha1::digest(clear).into() };
        if let Ok(mut c) = self.sha2_cache.lock() {
            c.insert((user.name.get_ref().clone(), user.fingerprint()), entry);
        }
    }

    /// The RSA key pair, generated on first use (off the async threads: it takes a while).
    pub async fn rsa_key(&self) -> &RsaKey {
        self.rsa
            .get_or_init(|| async { tokio::task::spawn_blocking(RsaKey::generate).await.expect("key generation task") })
            .await
    }
}
