//! The TOML configuration: every key, its default, and why it exists.
//!
//! Unknown keys are errors (`deny_unknown_fields`): a misspelt key silently ignored is a
//! production incident waiting for its day. [`load`] parses and validates; it never installs
//! anything — swapping a config in is the caller's single `store`.

mod cache;
mod defaults;
mod fleet;
mod observe;
pub mod reload;
mod secrets;
mod validate;

use serde::Deserialize;
use std::path::Path;
use toml::Spanned;

pub use cache::{CacheConfig, CacheRule, Invalidation};
pub use fleet::FleetConfig;
pub use observe::{AdminConfig, AdminRole, AdminUser, StatsConfig};
pub use validate::{ConfigError, Problem};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Client-facing listener and limits.
    pub proxy: ProxyConfig,
    /// Users clients may log in as. Sluice logs in to backends with the same credentials
    /// unless `backend_user` / `backend_password` say otherwise.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// The account used for health and lag checks.
    #[serde(default)]
    pub monitor: MonitorConfig,
    /// Backend connection pools (one per backend and user).
    #[serde(default)]
    pub pool: PoolConfig,
    /// Replica eligibility.
    #[serde(default)]
    pub replicas: ReplicasConfig,
    /// Shards: each a primary with optional replicas. The first is the default shard.
    pub shards: Vec<ShardConfig>,
    /// Optional sharding of tables by a key over a consistent-hash ring.
    pub sharding: Option<ShardingConfig>,
    /// TLS toward clients; none when absent (CLIENT_SSL is then not offered).
    pub tls: Option<TlsConfig>,
    /// Statement statistics and the slow log.
    #[serde(default)]
    pub stats: StatsConfig,
    /// The SQL admin interface.
    #[serde(default)]
    pub admin: AdminConfig,
    /// The result cache; none when absent.
    pub cache: Option<CacheConfig>,
    /// The registry of live instances.
    #[serde(default)]
    pub fleet: FleetConfig,
    /// The text this config was parsed from (`SHOW SLUICE CONFIG` shows it, secrets masked).
    #[serde(skip)]
    pub source: String,
}

/// `[tls]`: TLS toward clients.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the server certificate (and its chain).
    pub cert: Spanned<String>,
    /// PEM file with its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Spanned<String>,
    /// PEM file of CAs that client certificates are verified against, when a client presents
    /// one; none: client certificates are not asked for.
    pub ca: Option<Spanned<String>>,
    /// Refuse every login that is not over TLS (ERROR 3159, as the server's
    /// `require_secure_transport`).
    #[serde(default)]
    pub require_secure_transport: bool,
}

/// `[proxy]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Address clients connect to, `host:port`. Changing it needs a restart.
    pub listen: Spanned<String>,
    /// HTTP address for `/health`, `/metrics` and `/status`; none when absent.
    pub admin_listen: Option<Spanned<String>>,
    /// SO_REUSEPORT on the listeners, for rolling restarts (a new process binds beside the old).
    #[serde(default)]
    pub reuse_port: bool,
    /// Path of a Unix socket clients may connect to besides `listen` (as to a server's
    /// `socket`). Changing it needs a restart.
    pub socket: Option<Spanned<String>>,
    /// Client connections beyond this are answered with ERROR 1040 and closed.
    #[serde(default = "defaults::max_client_connections")]
    pub max_client_connections: usize,
    /// Largest client packet accepted (bytes); larger ones get ERROR 1153.
    #[serde(default = "defaults::max_allowed_packet")]
    pub max_allowed_packet: usize,
    /// Plugin named in the greeting: `mysql_native_password` or `caching_sha2_password`.
    #[serde(default = "defaults::auth_plugin")]
    pub auth_plugin: Spanned<String>,
    /// Version string in the greeting; by default the one the first backend reported.
    pub server_version: Option<String>,
    /// On shutdown, how long running statements may take to finish before connections close.
    #[serde(default = "defaults::shutdown_timeout_ms")]
    pub shutdown_timeout_ms: u64,
    /// Prepared statements one client may hold at once; one more gets ERROR 1461, as a
    /// server's `max_prepared_stmt_count` would answer. Bounds what a client can make Sluice
    /// keep (each statement's text and metadata).
    #[serde(default = "defaults::max_prepared_statements")]
    pub max_prepared_statements: usize,
    /// The whole login (greeting to OK, TLS included) must finish within this; a client that
    /// connects and sends nothing, or trickles bytes, is closed and counted.
    #[serde(default = "defaults::handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
    /// A client idle this long between commands is disconnected (0 = never; a session's own
    /// `SET wait_timeout` applies as well, whichever is shorter).
    #[serde(default)]
    pub idle_timeout_s: u64,
    /// A client idle this long between commands while its transaction is open is
    /// disconnected and the transaction rolled back, so one idle `BEGIN` cannot hold a pool
    /// connection and its locks (0 = never).
    #[serde(default)]
    pub idle_in_transaction_timeout_s: u64,
    /// A statement running longer than this is killed on its backend (`KILL QUERY`; the
    /// client gets the server's ERROR 1317) and the connection is reused (0 = no limit).
    #[serde(default)]
    pub max_statement_time_ms: u64,
    /// A client that does not take what Sluice writes (stopped reading mid-result, or
    /// pipelining without reading) for this long is dropped and its backend connection freed.
    #[serde(default = "defaults::client_write_timeout_ms")]
    pub client_write_timeout_ms: u64,
    /// After login: a client that started a packet (a command, or LOCAL INFILE data) and
    /// sends nothing more of it for this long is dropped (the server's `net_read_timeout`).
    #[serde(default = "defaults::client_read_timeout_ms")]
    pub client_read_timeout_ms: u64,
    /// TCP keepalive on client sockets: idle seconds before the first probe (0 = off), so the
    /// session of a client host that vanished without closing is ended by the kernel's probes.
    #[serde(default = "defaults::tcp_keepalive_s")]
    pub tcp_keepalive_s: u64,
    /// Failed logins from one address within `login_failure_window_s` before each further
    /// attempt from it waits (0 = never delay).
    #[serde(default = "defaults::login_failures_before_delay")]
    pub login_failures_before_delay: u32,
    /// The window failures are counted in.
    #[serde(default = "defaults::login_failure_window_s")]
    pub login_failure_window_s: u64,
    /// The longest delay (it doubles from 250 ms with each failure past the threshold); below
    /// `handshake_timeout_ms`, so a right password can still get through and clear the count.
    #[serde(default = "defaults::login_max_delay_ms")]
    pub login_max_delay_ms: u64,
    /// `/metrics` and `/status` need `Authorization: Bearer <token>`, the token read from
    /// this environment variable (`/health` stays open for probes).
    pub admin_token_env: Option<Spanned<String>>,
    /// The same, the token read from this file (at load and every reload).
    pub admin_token_file: Option<Spanned<String>>,
    /// The admin token, resolved from `admin_token_env` / `admin_token_file` at load.
    #[serde(skip)]
    pub admin_token: Option<String>,
    /// Admin HTTP connections open at once; more are closed at accept.
    #[serde(default = "defaults::admin_max_connections")]
    pub admin_max_connections: usize,
    /// An admin request's headers must arrive within this; a connection lives at most
    /// `admin_connection_timeout_ms`.
    #[serde(default = "defaults::admin_header_timeout_ms")]
    pub admin_header_timeout_ms: u64,
    /// The longest an admin HTTP connection stays open.
    #[serde(default = "defaults::admin_connection_timeout_ms")]
    pub admin_connection_timeout_ms: u64,
}

impl UserConfig {
    /// Checks `token` as this user's answer to `scramble` under `plugin`: against the stored
    /// hash for a `password_hash` user (native only), else against the password. `Some` is a
    /// correct answer, carrying `SHA1(password)` when the hash check learned it.
    pub fn check_token(&self, plugin: &str, token: &[u8], scramble: &[u8]) -> Option<Option<[u8; 20]>> {
        use crate::protocol::auth;
        if let Some(h) = self.password_hash.as_ref().and_then(|h| auth::parse_native_hash(h.get_ref())) {
            if plugin != auth::NATIVE {
                return None;
            }
            return auth::sha1_from_native_token(token, scramble, &h).map(Some);
        }
        let expected = auth::token_for(plugin, self.password.as_bytes(), scramble).unwrap_or_default();
        auth::tokens_equal(token, &expected).then_some(None)
    }

    /// The password Sluice logs in to backends with: `backend_password`, else for a
    /// `password_hash` user the `SHA1(password)` its login yielded, else `password`.
    pub fn backend_credential(&self, learned: Option<&[u8; 20]>) -> String {
        match (&self.backend_password, learned) {
            (Some(p), _) => p.clone(),
            (None, Some(h1)) => crate::protocol::auth::sha1_credential(h1),
            (None, None) => self.password.clone(),
        }
    }

    /// A digest of what a login as this user was checked against and runs as (password,
    /// TLS requirement, backend login): a reload that changes it ends the user's sessions.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let hash = self.password_hash.as_ref().map(|h| h.get_ref());
        (&self.password, hash, self.require_tls, &self.backend_user, &self.backend_password).hash(&mut h);
        h.finish()
    }
}

impl TlsConfig {
    /// The files, as the TLS module takes them.
    pub fn files(&self) -> crate::tls::Files<'_> {
        crate::tls::Files {
            cert: self.cert.get_ref(),
            key: self.key.get_ref(),
            ca: self.ca.as_ref().map(|c| c.get_ref().as_str()),
        }
    }
}

impl ProxyConfig {
    /// The login throttle's settings.
    pub fn login_policy(&self) -> crate::throttle::Policy {
        crate::throttle::Policy {
            failures_before_delay: self.login_failures_before_delay,
            window: std::time::Duration::from_secs(self.login_failure_window_s),
            max_delay: std::time::Duration::from_millis(self.login_max_delay_ms),
        }
    }
}

/// `[[users]]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Login name.
    pub name: Spanned<String>,
    /// Clear password: both auth plugins need it to check a scramble Sluice issued. Or
    /// from `password_env` / `password_file` (filled in at load).
    #[serde(default)]
    pub password: String,
    /// Instead of a password: its mysql_native_password hash, `*` + 40 hex digits as
    /// `SELECT PASSWORD('...')` prints it. Enough to verify a native login, which also yields
    /// `SHA1(password)`: enough to log in to native backends as the same account, so no
    /// backend password is needed unless the backend account differs.
    pub password_hash: Option<Spanned<String>>,
    /// Name of an environment variable holding the password.
    pub password_env: Option<Spanned<String>>,
    /// File holding the password (one trailing newline ignored), read at load and reload.
    pub password_file: Option<Spanned<String>>,
    /// Backend login, when it differs from `name`.
    pub backend_user: Option<String>,
    /// Backend password, when it differs from `password`.
    pub backend_password: Option<String>,
    /// `backend_password` from an environment variable.
    pub backend_password_env: Option<Spanned<String>>,
    /// `backend_password` from a file.
    pub backend_password_file: Option<Spanned<String>>,
    /// This user may log in over TLS only (ERROR 1045 otherwise, as `REQUIRE SSL`).
    #[serde(default)]
    pub require_tls: bool,
    /// Most sessions this user may have logged in at once (ERROR 1203 beyond); none: only
    /// `[proxy] max_client_connections` limits it.
    pub max_connections: Option<u32>,
    /// This user's statement deadline, in place of `[proxy] max_statement_time_ms` (0 = no
    /// limit for this user).
    pub max_statement_time_ms: Option<u64>,
}

/// `[monitor]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// Account for health checks.
    #[serde(default)]
    pub user: String,
    /// Its password (or `password_env` / `password_file`).
    #[serde(default)]
    pub password: String,
    /// Name of an environment variable holding the monitor's password.
    pub password_env: Option<Spanned<String>>,
    /// File holding the monitor's password.
    pub password_file: Option<Spanned<String>>,
    /// Failed checks in a row before a backend is marked down.
    #[serde(default = "defaults::down_after")]
    pub down_after: u32,
    /// Good checks in a row before a down backend is marked up again.
    #[serde(default = "defaults::up_after")]
    pub up_after: u32,
    /// Measure replica lag in milliseconds from a heartbeat row Sluice writes on each primary
    /// (needs CREATE, INSERT, DELETE on its schema there); off: `Seconds_Behind_Master`.
    #[serde(default = "defaults::heartbeat")]
    pub heartbeat: bool,
    /// `schema.table` of the heartbeat row.
    #[serde(default = "defaults::heartbeat_table")]
    pub heartbeat_table: Spanned<String>,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            user: String::new(),
            password: String::new(),
            password_env: None,
            password_file: None,
            down_after: defaults::down_after(),
            up_after: defaults::up_after(),
            heartbeat: defaults::heartbeat(),
            heartbeat_table: defaults::heartbeat_table(),
        }
    }
}

/// `[pool]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Most connections per backend and user.
    #[serde(default = "defaults::max_size")]
    pub max_size: u32,
    /// Idle connections kept open per backend and user.
    #[serde(default)]
    pub min_idle: u32,
    /// Backend connect + handshake deadline.
    #[serde(default = "defaults::connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// How long a statement waits for a pooled connection before ERROR 1105.
    #[serde(default = "defaults::acquire_timeout_ms")]
    pub acquire_timeout_ms: u64,
    /// Idle connections older than this are closed.
    #[serde(default = "defaults::idle_timeout_s")]
    pub idle_timeout_s: u64,
    /// TCP keepalive on backend sockets: idle seconds before the first probe (0 = off). A
    /// backend host that vanished without a reset (power loss, a partition) is noticed by the
    /// kernel in about `tcp_keepalive_s + 30` seconds even while a statement waits for it,
    /// without limiting how long a statement may legitimately run.
    #[serde(default = "defaults::tcp_keepalive_s")]
    pub tcp_keepalive_s: u64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_size: defaults::max_size(),
            min_idle: 0,
            connect_timeout_ms: defaults::connect_timeout_ms(),
            acquire_timeout_ms: defaults::acquire_timeout_ms(),
            idle_timeout_s: defaults::idle_timeout_s(),
            tcp_keepalive_s: defaults::tcp_keepalive_s(),
        }
    }
}

/// `[replicas]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReplicasConfig {
    /// Replicas lagging more than this get no reads.
    #[serde(default = "defaults::max_lag_ms")]
    pub max_lag_ms: u64,
    /// How often the monitor checks each backend.
    #[serde(default = "defaults::check_interval_ms")]
    pub check_interval_ms: u64,
    /// Where reads go when no replica is eligible: `"primary"` or `"error"`.
    #[serde(default)]
    pub fallback: Fallback,
    /// Default read consistency: `"eventual"`, `"monotonic"`, `"session"` or `"strong"`
    /// (per session: `SET @@sluice_consistency = '...'`).
    #[serde(default)]
    pub consistency: Consistency,
}

impl Default for ReplicasConfig {
    fn default() -> Self {
        ReplicasConfig {
            max_lag_ms: defaults::max_lag_ms(),
            check_interval_ms: defaults::check_interval_ms(),
            fallback: Fallback::default(),
            consistency: Consistency::default(),
        }
    }
}

/// Where reads go when no replica is eligible.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// To the primary (counted as `destination="fallback"`).
    #[default]
    Primary,
    /// Refused with ERROR 1105 naming the shard.
    Error,
}

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// Any eligible replica, chosen per statement.
    #[default]
    Eventual,
    /// Never older than an earlier read of the session: one replica while it stays eligible.
    Monotonic,
    /// Read-your-writes: after a write, only replicas that applied it (else the primary).
    Session,
    /// Always the primary.
    Strong,
}

impl Consistency {
    /// Parses a level name (case-insensitive).
    pub fn parse(s: &str) -> Option<Consistency> {
        Some(match s.to_ascii_lowercase().as_str() {
            "eventual" => Consistency::Eventual,
            "monotonic" => Consistency::Monotonic,
            "session" => Consistency::Session,
            "strong" => Consistency::Strong,
            _ => return None,
        })
    }

    /// The level's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::Eventual => "eventual",
            Consistency::Monotonic => "monotonic",
            Consistency::Session => "session",
            Consistency::Strong => "strong",
        }
    }
}

/// `[[shards]]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShardConfig {
    /// Unique name, used by `[sharding]`, logs and metrics.
    pub name: Spanned<String>,
    /// `host:port` of the writable server.
    pub primary: Spanned<String>,
    /// Read replicas of this primary.
    #[serde(default)]
    pub replicas: Vec<ReplicaConfig>,
    /// TLS toward this shard's servers (primary and replicas): `disabled`, `preferred`,
    /// `required`, `verify_ca`, `verify_identity`.
    #[serde(default)]
    pub tls: crate::tls::BackendMode,
    /// PEM file of the CAs the servers' certificates must chain to (`verify_ca`,
    /// `verify_identity`).
    pub tls_ca: Option<Spanned<String>>,
    /// PEM files of a client certificate (and its key) Sluice presents to the servers, for
    /// accounts created `REQUIRE X509` / `REQUIRE SUBJECT ...`.
    pub tls_cert: Option<Spanned<String>>,
    pub tls_key: Option<Spanned<String>>,
}

fn path(p: &Option<Spanned<String>>) -> Option<String> {
    p.as_ref().map(|c| c.get_ref().clone())
}

impl ShardConfig {
    /// The TLS settings of this shard's primary (and the default of its replicas).
    pub fn backend_tls(&self) -> crate::tls::BackendTls {
        crate::tls::BackendTls {
            mode: self.tls,
            ca: path(&self.tls_ca),
            cert: path(&self.tls_cert),
            key: path(&self.tls_key),
        }
    }

    /// The TLS settings of one of its replicas: the replica's own keys, else the shard's.
    pub fn replica_tls(&self, r: &ReplicaConfig) -> crate::tls::BackendTls {
        let shard = self.backend_tls();
        crate::tls::BackendTls {
            mode: r.tls.unwrap_or(shard.mode),
            ca: path(&r.tls_ca).or(shard.ca),
            cert: path(&r.tls_cert).or(shard.cert),
            key: path(&r.tls_key).or(shard.key),
        }
    }
}

/// One replica.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReplicaConfig {
    /// `host:port`.
    pub addr: Spanned<String>,
    /// Relative share of reads when fresh.
    #[serde(default = "defaults::weight")]
    pub weight: u32,
    /// TLS toward this replica, when it differs from its shard's `tls` / `tls_ca` /
    /// `tls_cert` / `tls_key` (each key falls back to the shard's).
    pub tls: Option<crate::tls::BackendMode>,
    pub tls_ca: Option<Spanned<String>>,
    pub tls_cert: Option<Spanned<String>>,
    pub tls_key: Option<Spanned<String>>,
}

/// `[sharding]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShardingConfig {
    /// Column that holds the shard key.
    pub key: String,
    /// Tables sharded by `key`.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Shards on the ring.
    pub ring: Vec<Spanned<String>>,
    /// Shard holding every unsharded table.
    pub default: Spanned<String>,
    /// Virtual nodes per shard on the ring.
    #[serde(default = "defaults::vnodes")]
    pub vnodes: u32,
    /// UPDATE / DELETE on a sharded table without the key: refused unless true, then run on
    /// every shard of the ring (logged).
    #[serde(default)]
    pub allow_scatter_writes: bool,
    /// Most rows a scatter read may gather in memory before it is refused.
    #[serde(default = "defaults::max_scatter_rows")]
    pub max_scatter_rows: usize,
    /// Most bytes of rows a scatter read may gather in memory (across all shards) before it
    /// is refused: wide rows reach the memory bound long before the row cap.
    #[serde(default = "defaults::max_scatter_bytes")]
    pub max_scatter_bytes: usize,
    /// A transaction that reaches a second shard: `"refuse"` it (default), or run the
    /// transaction as XA two-phase commit across its shards (`"xa"`).
    #[serde(default)]
    pub cross_shard: CrossShard,
    /// Refuse every write to a sharded table (ERROR 1290) while reads go on: the pause
    /// during the final `sluice reshard copy --restart` (docs/sharding.md).
    #[serde(default)]
    pub pause_writes: bool,
    /// `schema.table` on the default shard's primary where XA commit decisions are recorded
    /// (written with the `[monitor]` account).
    #[serde(default = "defaults::xa_log_table")]
    pub xa_log_table: Spanned<String>,
    /// How often prepared XA branches left behind (a crash between prepare and commit) are
    /// looked for and finished: a branch seen in two sweeps in a row is resolved.
    #[serde(default = "defaults::xa_recovery_interval_ms")]
    pub xa_recovery_interval_ms: u64,
}

/// What a transaction that reaches a second shard does.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum CrossShard {
    /// Refused with ERROR 1235 before anything is sent to the second shard.
    #[default]
    Refuse,
    /// Explicit transactions on sharded tables run as XA; COMMIT is two-phase when more than
    /// one shard took part.
    Xa,
}

impl Config {
    /// Parses and validates a config text. Every problem is reported, each with its line.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::from_toml(text, &e))?;
        secrets::resolve(&mut cfg, text)?;
        validate::validate(&cfg, text)?;
        cfg.source = text.to_string();
        Ok(cfg)
    }

    /// The user entry for a login name.
    pub fn user(&self, name: &str) -> Option<&UserConfig> {
        self.users.iter().find(|u| u.name.get_ref() == name)
    }

    /// The name of the shard that holds unsharded tables.
    pub fn default_shard(&self) -> &str {
        match &self.sharding {
            Some(s) => s.default.get_ref(),
            None => self.shards[0].name.get_ref(),
        }
    }
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::single(None, format!("cannot read {}: {e}", path.display())))?;
    Config::parse(&text)
}

#[cfg(test)]
mod tests;
