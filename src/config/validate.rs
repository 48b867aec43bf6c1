//! Cross-field checks that serde cannot express, reported together with line numbers so a DBA
//! fixes a file in one pass.

use super::Config;
use std::collections::HashSet;
use std::fmt;
use toml::Spanned;

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when the problem has a place.
    pub line: Option<usize>,
    /// What is wrong, in words a DBA acts on.
    pub message: String,
}

/// Everything wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match p.line {
                Some(l) => write!(f, "line {l}: {}", p.message)?,
                None => write!(f, "{}", p.message)?,
            }
        }
        Ok(())
    }
}

impl ConfigError {
    /// One problem.
    pub fn single(line: Option<usize>, message: String) -> Self {
        ConfigError { problems: vec![Problem { line, message }] }
    }

    /// A TOML syntax or type error, located.
    pub fn from_toml(text: &str, e: &toml::de::Error) -> Self {
        let line = e.span().map(|s| line_of(text, s.start));
        Self::single(line, e.message().trim().to_string())
    }
}

/// 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

struct Checker<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn at<T>(&mut self, v: &Spanned<T>, message: String) {
        let span = v.span();
        let line = (span.end > 0).then(|| line_of(self.text, span.start));
        self.problems.push(Problem { line, message });
    }

    fn nowhere(&mut self, message: &str) {
        self.problems.push(Problem { line: None, message: message.to_string() });
    }

    fn addr(&mut self, v: &Spanned<String>, what: &str) {
        let ok =
            v.get_ref().rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            self.at(v, format!("{what} '{}' is not host:port", v.get_ref()));
        }
    }
}

/// Every numeric key with the range it must lie in: values outside would crash, exhaust or
/// stall the proxy (`acquire_timeout_ms = 0` panics inside bb8, `connect_timeout_ms = 0` races
/// every connect against its timer, `vnodes = 3000000` costs hundreds of MB per shard).
fn ranges(cfg: &Config) -> Vec<(&'static str, u64, u64, u64)> {
    let (p, m, pool, r) = (&cfg.proxy, &cfg.monitor, &cfg.pool, &cfg.replicas);
    let mut v = vec![
        ("proxy.max_client_connections", p.max_client_connections as u64, 1, 1_000_000),
        ("proxy.max_allowed_packet", p.max_allowed_packet as u64, 1024, 1 << 30),
        ("proxy.max_prepared_statements", p.max_prepared_statements as u64, 1, 1 << 20),
        ("proxy.shutdown_timeout_ms", p.shutdown_timeout_ms, 0, 3_600_000),
        ("fleet.interval_ms", cfg.fleet.interval_ms, 100, 600_000),
        ("proxy.handshake_timeout_ms", p.handshake_timeout_ms, 100, 600_000),
        ("proxy.idle_timeout_s", p.idle_timeout_s, 0, 31_536_000),
        ("proxy.idle_in_transaction_timeout_s", p.idle_in_transaction_timeout_s, 0, 31_536_000),
        ("proxy.max_statement_time_ms", p.max_statement_time_ms, 0, 31_536_000_000),
        ("proxy.client_write_timeout_ms", p.client_write_timeout_ms, 100, 3_600_000),
        ("proxy.client_read_timeout_ms", p.client_read_timeout_ms, 100, 3_600_000),
        ("proxy.tcp_keepalive_s", p.tcp_keepalive_s, 0, 86_400),
        ("pool.tcp_keepalive_s", pool.tcp_keepalive_s, 0, 86_400),
        ("proxy.login_failures_before_delay", u64::from(p.login_failures_before_delay), 0, 1_000_000),
        ("proxy.login_failure_window_s", p.login_failure_window_s, 1, 86_400),
        ("proxy.login_max_delay_ms", p.login_max_delay_ms, 0, 60_000),
        ("proxy.admin_max_connections", p.admin_max_connections as u64, 1, 100_000),
        ("proxy.admin_header_timeout_ms", p.admin_header_timeout_ms, 100, 600_000),
        ("proxy.admin_connection_timeout_ms", p.admin_connection_timeout_ms, 100, 86_400_000),
        ("monitor.down_after", u64::from(m.down_after), 1, 1_000),
        ("monitor.up_after", u64::from(m.up_after), 1, 1_000),
        ("pool.max_size", u64::from(pool.max_size), 1, 10_000),
        ("pool.connect_timeout_ms", pool.connect_timeout_ms, 10, 600_000),
        ("pool.acquire_timeout_ms", pool.acquire_timeout_ms, 1, 3_600_000),
        ("pool.idle_timeout_s", pool.idle_timeout_s, 1, 30 * 86_400),
        ("replicas.max_lag_ms", r.max_lag_ms, 0, 86_400_000),
        ("replicas.check_interval_ms", r.check_interval_ms, 10, 3_600_000),
    ];
    for s in &cfg.shards {
        for rep in &s.replicas {
            v.push(("replica weight", u64::from(rep.weight), 0, 1_000_000));
        }
    }
    for u in &cfg.users {
        if let Some(m) = u.max_connections {
            v.push(("users.max_connections", u64::from(m), 1, 1_000_000));
        }
        if let Some(m) = u.max_statement_time_ms {
            v.push(("users.max_statement_time_ms", m, 0, 31_536_000_000));
        }
    }
    if let Some(sh) = &cfg.sharding {
        v.push(("sharding.vnodes", u64::from(sh.vnodes), 1, 4_096));
        v.push(("sharding.max_scatter_rows", sh.max_scatter_rows as u64, 1, 100_000_000));
        v.push(("sharding.max_scatter_bytes", sh.max_scatter_bytes as u64, 1024, 1 << 34));
        v.push(("sharding.xa_recovery_interval_ms", sh.xa_recovery_interval_ms, 100, 3_600_000));
    }
    v
}

/// Checks what types alone cannot.
/// `[cache]`: limits that hold together, rules that say what they cache.
fn check_cache(c: &mut Checker<'_>, cache: &super::CacheConfig) {
    if cache.max_bytes < 1 << 16 || cache.max_bytes > 1 << 40 {
        c.nowhere("cache.max_bytes must be between 65536 and 2^40");
    }
    if cache.max_entry_bytes == 0 || cache.max_entry_bytes > cache.max_bytes / 4 {
        c.nowhere("cache.max_entry_bytes must be above 0 and at most a quarter of cache.max_bytes");
    }
    if cache.single_flight_wait_ms > 600_000 || cache.max_hint_ttl_ms > 86_400_000 {
        c.nowhere("cache.single_flight_wait_ms must be at most 600000 and cache.max_hint_ttl_ms at most 86400000");
    }
    if cache.invalidation == super::Invalidation::Redis && cache.redis_url.is_none() {
        c.nowhere("cache.invalidation = \"redis\" needs cache.redis_url");
    }
    if let Some(u) = cache.redis_url.as_ref().filter(|u| !u.get_ref().starts_with("redis://")) {
        c.at(u, format!("cache.redis_url '{}' must start with redis://", u.get_ref()));
    }
    for r in &cache.rules {
        let ttl = *r.ttl_ms.get_ref();
        if ttl == 0 || ttl > 86_400_000 {
            c.at(&r.ttl_ms, format!("cache rule ttl_ms = {ttl} must be between 1 and 86400000"));
        }
        if r.tables.is_empty() == r.fingerprint.is_none() {
            c.at(&r.ttl_ms, "a [[cache.rules]] needs tables or fingerprint, one of them".to_string());
        }
        for t in &r.tables {
            let ok = t.split('.').count() <= 2 && t.split('.').all(|p| !p.is_empty() && !p.contains(['`', ' ']));
            if !ok {
                c.at(&r.ttl_ms, format!("cache rule table '{t}' must be a name or schema.name, without quotes"));
            }
        }
    }
}

pub fn validate(cfg: &Config, text: &str) -> Result<(), ConfigError> {
    let mut c = Checker { text, problems: Vec::new() };
    c.addr(&cfg.proxy.listen, "proxy.listen");
    if let Some(a) = &cfg.proxy.admin_listen {
        c.addr(a, "proxy.admin_listen");
    }
    if let Some(p) = &cfg.proxy.socket {
        // sun_path holds 108 bytes with its NUL; the temporary name Sluice binds first is longer.
        if p.get_ref().is_empty() || p.get_ref().len() > 80 || p.get_ref().contains('\0') {
            c.at(p, format!("proxy.socket '{}' must be a path of 1 to 80 bytes", p.get_ref()));
        }
    }
    let plugin = cfg.proxy.auth_plugin.get_ref();
    if plugin != crate::protocol::auth::NATIVE && plugin != crate::protocol::auth::CACHING_SHA2 {
        c.at(&cfg.proxy.auth_plugin, format!("proxy.auth_plugin '{plugin}' is not supported"));
    }
    for (key, value, min, max) in ranges(cfg) {
        if value < min || value > max {
            c.nowhere(&format!("{key} = {value} is out of range: it must be between {min} and {max}"));
        }
    }
    if let Some(cache) = &cfg.cache {
        check_cache(&mut c, cache);
    }
    if cfg.users.is_empty() {
        c.nowhere("no [[users]]: nobody could log in");
    }
    let mut names = HashSet::new();
    for u in &cfg.users {
        if u.password.contains('\0') || u.backend_password.as_deref().is_some_and(|p| p.contains('\0')) {
            c.at(&u.name, format!("user '{}': a password may not contain NUL", u.name.get_ref()));
        }
        if let Some(h) = &u.password_hash {
            let who = u.name.get_ref();
            if crate::protocol::auth::parse_native_hash(h.get_ref()).is_none() {
                c.at(
                    h,
                    format!(
                        "user '{who}': password_hash must be * and 40 hex digits, as SELECT PASSWORD('...') prints"
                    ),
                );
            }
            if !u.password.is_empty() {
                c.at(h, format!("user '{who}': give password or password_hash, not both"));
            }
        }
        if !names.insert(u.name.get_ref().clone()) {
            c.at(&u.name, format!("user '{}' is declared twice", u.name.get_ref()));
        }
    }
    let mut tables = vec![("monitor.heartbeat_table", &cfg.monitor.heartbeat_table), ("fleet.table", &cfg.fleet.table)];
    if let Some(sh) = &cfg.sharding {
        tables.push(("sharding.xa_log_table", &sh.xa_log_table));
    }
    for (key, table) in tables {
        if !is_schema_table(table.get_ref()) {
            let t = table.get_ref();
            c.at(table, format!("{key} '{t}' must be schema.table (letters, digits, _ and $)"));
        }
    }
    if cfg.proxy.login_max_delay_ms >= cfg.proxy.handshake_timeout_ms {
        c.nowhere(
            "proxy.login_max_delay_ms must be below proxy.handshake_timeout_ms: a delayed login would always time out, \
             and no right password could clear the failures",
        );
    }
    if cfg.pool.min_idle > cfg.pool.max_size {
        c.nowhere("pool.min_idle is larger than pool.max_size");
    }
    if cfg.shards.is_empty() {
        c.nowhere("no [[shards]]: there is nowhere to send queries");
    }
    let mut shards = HashSet::new();
    for s in &cfg.shards {
        if !shards.insert(s.name.get_ref().clone()) {
            c.at(&s.name, format!("shard '{}' is declared twice", s.name.get_ref()));
        }
        c.addr(&s.primary, "primary");
        let name = s.name.get_ref();
        backend_tls(&mut c, &s.name, &format!("shard '{name}'"), &s.backend_tls(), s.tls_cert.is_some());
        for r in &s.replicas {
            c.addr(&r.addr, "replica addr");
            let who = format!("shard '{name}', replica {}", r.addr.get_ref());
            backend_tls(&mut c, &r.addr, &who, &s.replica_tls(r), r.tls_cert.is_some());
            if r.addr.get_ref() == s.primary.get_ref() {
                c.at(&r.addr, format!("replica {} is also the primary of its shard", r.addr.get_ref()));
            }
        }
    }
    if let Some(sh) = &cfg.sharding {
        if sh.ring.is_empty() {
            c.nowhere("sharding.ring is empty");
        }
        for r in &sh.ring {
            if !shards.contains(r.get_ref()) {
                c.at(r, format!("sharding.ring names unknown shard '{}'", r.get_ref()));
            }
        }
        if !shards.contains(sh.default.get_ref()) {
            c.at(&sh.default, format!("sharding.default names unknown shard '{}'", sh.default.get_ref()));
        }
    }
    if let Some(tls) = &cfg.tls {
        // The files are read here, so a certificate that does not load rejects the file (at
        // start-up, and on reload, where the old config keeps serving).
        if let Err(e) = crate::tls::acceptor(tls.files()) {
            c.at(&tls.cert, format!("[tls]: {e}"));
        }
    } else if cfg.users.iter().any(|u| u.require_tls) {
        c.nowhere("a user has require_tls = true but there is no [tls]: that user could never log in");
    }
    if c.problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError { problems: c.problems })
    }
}

/// One backend's TLS settings: a verifying mode needs its CA, a client certificate needs its
/// key, one named by this entry needs TLS to be presented over (a replica that turns TLS off
/// may inherit its shard's), and every file named must load.
fn backend_tls(c: &mut Checker, at: &Spanned<String>, who: &str, tls: &crate::tls::BackendTls, own_cert: bool) {
    use crate::tls::BackendMode;
    let verifies = matches!(tls.mode, BackendMode::VerifyCa | BackendMode::VerifyIdentity);
    if verifies && tls.ca.is_none() {
        c.at(at, format!("{who}: tls = {:?} needs tls_ca (the CA to verify against)", tls.mode));
        return;
    }
    if tls.cert.is_some() != tls.key.is_some() {
        c.at(at, format!("{who}: tls_cert and tls_key go together"));
        return;
    }
    if own_cert && tls.mode == BackendMode::Disabled {
        c.at(at, format!("{who}: a client certificate (tls_cert) is only presented over TLS, and tls is disabled"));
        return;
    }
    if verifies || (tls.cert.is_some() && tls.mode != BackendMode::Disabled) {
        if let Err(e) = tls.client_config() {
            c.at(at, format!("{who}: {e}"));
        }
    }
}

/// `schema.table`, both plain identifiers: safe to put into SQL unquoted.
fn is_schema_table(name: &str) -> bool {
    let ident = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$');
    matches!(name.split_once('.'), Some((s, t)) if ident(s) && ident(t))
}
