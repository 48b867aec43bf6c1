//! The default of every key that has one (serde's `default = "defaults::..."`).

pub fn max_client_connections() -> usize {
    10_000
}
pub fn max_allowed_packet() -> usize {
    64 << 20
}
pub fn auth_plugin() -> toml::Spanned<String> {
    toml::Spanned::new(0..0, crate::protocol::auth::NATIVE.to_string())
}
pub fn shutdown_timeout_ms() -> u64 {
    10_000
}
pub fn max_size() -> u32 {
    64
}
pub fn max_prepared_statements() -> usize {
    1_024
}
pub fn handshake_timeout_ms() -> u64 {
    5_000
}
pub fn client_write_timeout_ms() -> u64 {
    30_000
}
pub fn client_read_timeout_ms() -> u64 {
    30_000
}
pub fn tcp_keepalive_s() -> u64 {
    60
}
pub fn login_failures_before_delay() -> u32 {
    5
}
pub fn login_failure_window_s() -> u64 {
    60
}
pub fn login_max_delay_ms() -> u64 {
    2_000
}
pub fn admin_max_connections() -> usize {
    64
}
pub fn admin_header_timeout_ms() -> u64 {
    5_000
}
pub fn admin_connection_timeout_ms() -> u64 {
    60_000
}
pub fn connect_timeout_ms() -> u64 {
    2_000
}
pub fn acquire_timeout_ms() -> u64 {
    3_000
}
pub fn idle_timeout_s() -> u64 {
    300
}
pub fn max_lag_ms() -> u64 {
    1_000
}
pub fn check_interval_ms() -> u64 {
    250
}
pub fn weight() -> u32 {
    100
}
pub fn max_scatter_bytes() -> usize {
    64 << 20
}
pub fn max_scatter_rows() -> usize {
    100_000
}
pub fn vnodes() -> u32 {
    256
}
pub fn down_after() -> u32 {
    3
}
pub fn up_after() -> u32 {
    2
}
pub fn heartbeat() -> bool {
    true
}
pub fn heartbeat_table() -> toml::Spanned<String> {
    toml::Spanned::new(0..0, "sluice.heartbeat".to_string())
}
pub fn xa_log_table() -> toml::Spanned<String> {
    toml::Spanned::new(0..0, "sluice.xa_log".to_string())
}
pub fn xa_recovery_interval_ms() -> u64 {
    5_000
}
pub fn yes() -> bool {
    true
}
pub fn max_fingerprints() -> usize {
    5_000
}
pub fn slow_ms() -> u64 {
    1_000
}
pub fn slow_log_max_bytes() -> u64 {
    100 << 20
}
pub fn slow_log_keep() -> u32 {
    5
}
pub fn slow_log_max_text() -> usize {
    4_096
}
pub fn metrics_top() -> usize {
    20
}
pub fn pause_timeout_ms() -> u64 {
    30_000
}
