//! `[stats]` (statement statistics and the slow log) and `[admin]` (the SQL admin interface).

use super::defaults;
use serde::Deserialize;
use toml::Spanned;

/// `[stats]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StatsConfig {
    /// Count statements by fingerprint (`SHOW SLUICE DIGESTS`).
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
    /// Rows the statistics table holds at most; the least recently seen go first.
    #[serde(default = "defaults::max_fingerprints")]
    pub max_fingerprints: usize,
    /// Statements slower than this go to the slow log (0 = none).
    #[serde(default = "defaults::slow_ms")]
    pub slow_ms: u64,
    /// The slow log's file; none: slow statements are not written (they are still counted).
    pub slow_log: Option<Spanned<String>>,
    /// Size at which the slow log is rotated.
    #[serde(default = "defaults::slow_log_max_bytes")]
    pub slow_log_max_bytes: u64,
    /// Rotated files kept (`slow.log.1` ...).
    #[serde(default = "defaults::slow_log_keep")]
    pub slow_log_keep: u32,
    /// Bytes of a statement's text the slow log keeps.
    #[serde(default = "defaults::slow_log_max_text")]
    pub slow_log_max_text: usize,
    /// Fingerprints exported to /metrics (the top N by total time), so labels stay bounded.
    #[serde(default = "defaults::metrics_top")]
    pub metrics_top: usize,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            enabled: true,
            max_fingerprints: defaults::max_fingerprints(),
            slow_ms: defaults::slow_ms(),
            slow_log: None,
            slow_log_max_bytes: defaults::slow_log_max_bytes(),
            slow_log_keep: defaults::slow_log_keep(),
            slow_log_max_text: defaults::slow_log_max_text(),
            metrics_top: defaults::metrics_top(),
        }
    }
}

/// `[admin]`: a MySQL-protocol listener for operators (`SHOW SLUICE ...`, `SLUICE ...`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// `host:port`; none: no SQL admin interface. Changing it needs a restart.
    pub listen: Option<Spanned<String>>,
    /// Accounts of the admin interface (not the proxy's users).
    #[serde(default)]
    pub users: Vec<AdminUser>,
    /// How long `SLUICE PAUSE` may hold a statement; past it the statement gets an error.
    #[serde(default = "defaults::pause_timeout_ms")]
    pub pause_timeout_ms: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { listen: None, users: Vec::new(), pause_timeout_ms: defaults::pause_timeout_ms() }
    }
}

/// What an admin account may do.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum AdminRole {
    /// Everything: SHOW and the actions.
    #[default]
    Admin,
    /// SHOW only.
    Read,
}

/// One `[[admin.users]]` account.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminUser {
    pub name: Spanned<String>,
    /// Clear password, or from `password_env` / `password_file` (filled in at load).
    #[serde(default)]
    pub password: String,
    /// Instead of a password: its mysql_native_password hash (`*` + 40 hex digits).
    pub password_hash: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    #[serde(default)]
    pub role: AdminRole,
}
