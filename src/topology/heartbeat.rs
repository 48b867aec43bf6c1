//! Millisecond replication lag from a heartbeat row.
//!
//! Each primary's monitor writes `(instance id, Sluice's clock in µs)` into the heartbeat
//! table (`[monitor] heartbeat_table`, created if missing) at every check; each replica's
//! monitor reads the row back. Only Sluice's own clock is compared with itself, so clock skew
//! between servers plays no part. A replica that holds the newest value written is not behind
//! (lag 0); otherwise its lag is the time since the value it holds was written — an upper
//! bound, at most one check interval above the truth.
//!
//! The replica reads with `HANDLER ... READ` rather than SELECT, so the monitor never counts
//! in a server's `Com_select` (operators and Sluice's routing tests read that counter as
//! "client reads that landed here"). One instance id per Sluice instance (`Shared::instance_id`) keeps several
//! proxies in front of one primary from overwriting each other's rows.

use crate::backend::BackendConn;
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock microseconds.
pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Primary: writes this instance's heartbeat (creating the table on the first call of a
/// connection, when `*ready` is false). Returns the value written.
pub async fn beat(conn: &mut BackendConn, table: &str, instance: &str, ready: &mut bool) -> Result<u64, String> {
    if !*ready {
        let (schema, name) = table.split_once('.').unwrap_or(("sluice", "heartbeat"));
        // DDL only when the table is missing: a replicated DDL closes the HANDLERs that other
        // Sluice instances read the table through.
        let exists =
            conn.query(&format!("SHOW TABLES FROM `{schema}` LIKE '{name}'")).await.is_ok_and(|r| !r.rows.is_empty());
        let mut setup = Vec::new();
        if !exists {
            setup.push(format!("CREATE DATABASE IF NOT EXISTS `{schema}`"));
            setup.push(format!(
                "CREATE TABLE IF NOT EXISTS {table} (id VARCHAR(32) PRIMARY KEY, ts BIGINT UNSIGNED NOT NULL) ENGINE=InnoDB"
            ));
        }
        // Rows of Sluice processes gone for a day.
        setup.push(format!("DELETE FROM {table} WHERE ts < {}", now_us().saturating_sub(86_400_000_000)));
        for sql in setup {
            conn.query(&sql).await.map_err(|e| format!("heartbeat setup: {e}"))?;
        }
        *ready = true;
    }
    let ts = now_us();
    conn.query(&format!("REPLACE INTO {table} (id, ts) VALUES ('{instance}', {ts})"))
        .await
        .map_err(|e| format!("heartbeat write: {e}"))?;
    Ok(ts)
}

/// Replica: the heartbeat value it has applied, `None` when it has no row for this instance.
///
/// A DDL statement replicated on the table closes the HANDLER; the read then reopens it once.
pub async fn applied(
    conn: &mut BackendConn,
    table: &str,
    instance: &str,
    open: &mut bool,
) -> Result<Option<u64>, String> {
    let read = format!("HANDLER sluice_heartbeat READ `PRIMARY` = ('{instance}')");
    for attempt in 0..2 {
        if !*open {
            let _ = conn.query("HANDLER sluice_heartbeat CLOSE").await;
            conn.query(&format!("HANDLER {table} OPEN AS sluice_heartbeat"))
                .await
                .map_err(|e| format!("heartbeat open: {e}"))?;
            *open = true;
        }
        match conn.query(&read).await {
            Ok(r) => return Ok(r.first("ts").and_then(|v| v.parse().ok())),
            Err(e) if attempt == 0 && matches!(e, crate::backend::BackendError::Server(_)) => *open = false,
            Err(e) => return Err(format!("heartbeat read: {e}")),
        }
    }
    Err("heartbeat read failed twice".into())
}

/// Lag in ms of a replica holding `applied`, when the newest value written is `written`.
pub fn lag_ms(applied: u64, written: u64, now: u64) -> u64 {
    if applied >= written {
        0
    } else {
        now.saturating_sub(applied) / 1000
    }
}

#[cfg(test)]
mod tests {
    use super::lag_ms;

    #[test]
    fn lag_is_zero_when_the_newest_beat_arrived_else_time_since_the_held_one() {
        assert_eq!(lag_ms(5_000_000, 5_000_000, 5_200_000), 0);
        assert_eq!(lag_ms(4_750_000, 5_000_000, 5_100_000), 350);
        assert_eq!(lag_ms(4_750_000, 5_000_000, 4_000_000), 0, "a clock step back never underflows");
    }
}
