//! The registry table's rows: this instance's (written) and everyone's (read).

use crate::backend::BackendConn;
use crate::shared::{Shared, Snapshot};
use std::time::{SystemTime, UNIX_EPOCH};

/// Creates the registry table when it is missing (DDL only then: a replicated DDL is not
/// free for the replicas' readers).
pub(super) async fn create(conn: &mut BackendConn, table: &str) -> Result<(), String> {
    let (schema, name) = table.split_once('.').unwrap_or(("sluice", "fleet"));
    let exists =
        conn.query(&format!("SHOW TABLES FROM `{schema}` LIKE '{name}'")).await.is_ok_and(|r| !r.rows.is_empty());
    if exists {
        return Ok(());
    }
    for sql in [
        format!("CREATE DATABASE IF NOT EXISTS `{schema}`"),
        format!(
            "CREATE TABLE IF NOT EXISTS {table} (\
             id VARCHAR(32) PRIMARY KEY, host VARCHAR(255) NOT NULL, pid INT UNSIGNED NOT NULL, \
             listen VARCHAR(255) NOT NULL, admin VARCHAR(255) NOT NULL, build VARCHAR(64) NOT NULL, \
             config_version BIGINT UNSIGNED NOT NULL, config_digest CHAR(16) NOT NULL, \
             config_loaded_us BIGINT UNSIGNED NOT NULL, started_us BIGINT UNSIGNED NOT NULL, \
             interval_ms INT UNSIGNED NOT NULL, state VARCHAR(16) NOT NULL, sessions INT UNSIGNED NOT NULL, \
             pause_writes TINYINT NOT NULL, pause_acked TINYINT NOT NULL, seen_at DATETIME(6) NOT NULL\
             ) ENGINE=InnoDB"
        ),
    ] {
        conn.query(&sql).await.map_err(|e| format!("fleet registry setup: {e}"))?;
    }
    Ok(())
}

/// This instance's row.
pub(super) struct Own {
    id: String,
    host: String,
    pid: u32,
    listen: String,
    admin: String,
    config_version: u64,
    config_digest: String,
    config_loaded_us: u64,
    started_us: u64,
    interval_ms: u64,
    state: &'static str,
    sessions: usize,
    pause_writes: bool,
    pause_acked: bool,
}

impl Own {
    pub(super) fn of(shared: &Shared, snap: &Snapshot) -> Own {
        let draining = shared.draining.load(std::sync::atomic::Ordering::Relaxed);
        let pause_writes = snap.pause_from != 0;
        let shown = |a: Option<&std::net::SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
        Own {
            id: shared.instance_id.clone(),
            host: hostname(),
            pid: std::process::id(),
            listen: shown(shared.client_addr.get()),
            admin: shown(shared.http_addr.get()),
            config_version: snap.version,
            config_digest: digest(&snap.config.source),
            config_loaded_us: micros(snap.loaded_at),
            started_us: micros(shared.started_at),
            interval_ms: snap.config.fleet.interval_ms,
            state: if draining { "draining" } else { "serving" },
            sessions: shared.sessions.len(),
            pause_writes,
            pause_acked: pause_writes && shared.sessions.settled_since(snap.pause_from) == 0,
        }
    }
}

/// The `REPLACE` that writes `own` with the server's clock.
pub(super) fn replace(table: &str, own: &Own) -> String {
    format!(
        "REPLACE INTO {table} (id, host, pid, listen, admin, build, config_version, config_digest, \
         config_loaded_us, started_us, interval_ms, state, sessions, pause_writes, pause_acked, seen_at) \
         VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, NOW(6))",
        crate::sql::string_literal(&own.id),
        crate::sql::string_literal(&own.host),
        own.pid,
        crate::sql::string_literal(&own.listen),
        crate::sql::string_literal(&own.admin),
        crate::sql::string_literal(env!("CARGO_PKG_VERSION")),
        own.config_version,
        crate::sql::string_literal(&own.config_digest),
        own.config_loaded_us,
        own.started_us,
        own.interval_ms,
        crate::sql::string_literal(own.state),
        own.sessions,
        u8::from(own.pause_writes),
        u8::from(own.pause_acked),
    )
}

/// The columns [`Member::from_text`] reads, in order (`age_ms` and `live` by the server's
/// clock).
pub const SELECT_COLUMNS: &str = "id, host, pid, listen, admin, build, config_version, config_digest, \
     config_loaded_us, started_us, state, sessions, pause_writes, pause_acked, \
     TIMESTAMPDIFF(MICROSECOND, seen_at, NOW(6)) DIV 1000 AS age_ms, \
     TIMESTAMPDIFF(MICROSECOND, seen_at, NOW(6)) <= (3 * interval_ms + 1000) * 1000 AS live";

/// One instance's registry row, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub listen: String,
    pub admin: String,
    pub build: String,
    pub config_version: u64,
    pub config_digest: String,
    /// Wall-clock microseconds (the instance's clock).
    pub config_loaded_us: u64,
    pub started_us: u64,
    /// `serving` or `draining`.
    pub state: String,
    pub sessions: u64,
    pub pause_writes: bool,
    pub pause_acked: bool,
    /// Milliseconds since the row was written (the server's clock).
    pub age_ms: i64,
    /// Written within three intervals plus a second.
    pub live: bool,
}

impl Member {
    /// Parses a row of [`SELECT_COLUMNS`] given as text; `None` when it does not fit.
    pub fn from_text(row: &[Option<String>]) -> Option<Member> {
        let s = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        let n = |i: usize| s(i).parse::<u64>().ok();
        Some(Member {
            id: s(0),
            host: s(1),
            pid: s(2).parse().ok()?,
            listen: s(3),
            admin: s(4),
            build: s(5),
            config_version: n(6)?,
            config_digest: s(7),
            config_loaded_us: n(8)?,
            started_us: n(9)?,
            state: s(10),
            sessions: n(11)?,
            pause_writes: s(12) == "1",
            pause_acked: s(13) == "1",
            age_ms: s(14).parse().ok()?,
            live: s(15) == "1",
        })
    }
}

/// Every row of the registry `table`, live ones first, each group by id.
pub async fn members(conn: &mut BackendConn, table: &str) -> Result<Vec<Member>, String> {
    let sql = format!("SELECT {SELECT_COLUMNS} FROM {table} ORDER BY live DESC, id");
    let r = conn.query(&sql).await.map_err(|e| e.to_string())?;
    Ok(r.rows.iter().filter_map(|row| Member::from_text(row)).collect())
}

/// The first 16 hex digits of the config text's SHA-256: the same file gives the same digest
/// on every instance and every build.
pub fn digest(source: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(source.as_bytes());
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

fn micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_row_reads_back_field_for_field() {
        let text = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
        let row = text(&[
            "ab12",
            "host-1",
            "42",
            "127.0.0.1:3306",
            "",
            "0.1.0",
            "3",
            "0011223344556677",
            "10",
            "5",
            "draining",
            "7",
            "1",
            "0",
            "250",
            "1",
        ]);
        let m = Member::from_text(&row).unwrap();
        assert_eq!((m.pid, m.config_version, m.sessions, m.age_ms), (42, 3, 7, 250));
        assert!(m.pause_writes && !m.pause_acked && m.live);
        assert_eq!(m.state, "draining");
        assert!(Member::from_text(&row[..5]).is_none(), "a short row is not a member");
    }

    #[test]
    fn digest_and_quote_are_stable_and_safe() {
        assert_eq!(digest("a"), digest("a"));
        assert_ne!(digest("a"), digest("b"));
        assert_eq!(digest("").len(), 16);
        assert_eq!(crate::sql::string_literal("it's \\ x"), "'it''s \\\\ x'");
    }
}
