//! The result sets of `SHOW SLUICE ...`: typed columns (numbers are numbers) and their rows,
//! read from the live topology, the session registry and the statistics table.

use super::parse::{DigestOrder, Show};
use crate::protocol::resultset::{Column, ColumnType};
use crate::shared::Shared;
use std::sync::atomic::Ordering;

/// A result set to send.
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Option<String>>>,
}

fn cols(spec: &[(&str, ColumnType)]) -> Vec<Column> {
    spec.iter().map(|(n, k)| Column { name: n.to_string(), kind: *k }).collect()
}

use ColumnType::{Double, LongLong as Int, VarString as Text};

/// Builds the table a `SHOW SLUICE` statement asks for.
pub fn show(shared: &Shared, what: &Show) -> Table {
    match what {
        Show::Backends => backends(shared),
        Show::Pools => pools(shared),
        Show::Clients => clients(shared),
        Show::Digests { order, descending, limit } => digests(shared, *order, *descending, *limit),
        Show::Config => config(shared),
        Show::Cache => cache(shared),
        Show::Version => Table {
            columns: cols(&[("name", Text), ("version", Text), ("config_version", Int)]),
            rows: vec![vec![
                Some("sluice".into()),
                Some(env!("CARGO_PKG_VERSION").into()),
                Some(shared.load().version.to_string()),
            ]],
        },
    }
}

/// `SHOW SLUICE FLEET`: one row per registered instance, live ones first.
pub fn fleet(members: &[crate::fleet::Member]) -> Table {
    let columns = cols(&[
        ("id", Text),
        ("host", Text),
        ("pid", Int),
        ("listen", Text),
        ("admin", Text),
        ("build", Text),
        ("config_version", Int),
        ("config_digest", Text),
        ("config_loaded_us", Int),
        ("state", Text),
        ("sessions", Int),
        ("pause_writes", Int),
        ("pause_acked", Int),
        ("age_ms", Int),
        ("live", Int),
    ]);
    let rows = members
        .iter()
        .map(|m| {
            vec![
                n(&m.id),
                n(&m.host),
                n(m.pid),
                n(&m.listen),
                n(&m.admin),
                n(&m.build),
                n(m.config_version),
                n(&m.config_digest),
                n(m.config_loaded_us),
                n(&m.state),
                n(m.sessions),
                n(u8::from(m.pause_writes)),
                n(u8::from(m.pause_acked)),
                n(m.age_ms),
                n(u8::from(m.live)),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// `SHOW SLUICE CACHE`: one row per counter (`refused.<reason>` for each refusal reason).
fn cache(shared: &Shared) -> Table {
    let columns = cols(&[("name", Text), ("value", Int)]);
    let Some(c) = shared.cache_if_made() else { return Table { columns, rows: Vec::new() } };
    let mut rows: Vec<Vec<Option<String>>> = c.summary().into_iter().map(|(k, v)| vec![n(k), n(v)]).collect();
    rows.extend(c.refusals().into_iter().map(|(k, v)| vec![n(format!("refused.{k}")), n(v)]));
    Table { columns, rows }
}

fn n<T: ToString>(v: T) -> Option<String> {
    Some(v.to_string())
}

fn backends(shared: &Shared) -> Table {
    let snap = shared.load_full();
    let max_lag = snap.config.replicas.max_lag_ms;
    let columns = cols(&[
        ("shard", Text),
        ("role", Text),
        ("addr", Text),
        ("up", Int),
        ("read_only", Int),
        ("lag_ms", Int),
        ("weight", Int),
        ("effective_weight", Double),
        ("eligible", Int),
        ("drained", Int),
        ("writer", Int),
        ("in_flight", Int),
        ("pool_in_use", Int),
        ("pool_idle", Int),
        ("waiting", Int),
    ]);
    let mut rows = Vec::new();
    for s in &snap.topology.shards {
        let writer = s.writer();
        for b in std::iter::once(&s.primary).chain(s.replicas.iter()) {
            let (in_use, idle) = b.pool_usage();
            let replica = b.role == crate::router::Role::Replica;
            rows.push(vec![
                n(&s.name),
                n(b.role.as_str()),
                n(&b.addr),
                n(u8::from(b.health.is_up())),
                b.health.read_only().map(|r| u8::from(r).to_string()),
                b.health.lag_ms().map(|l| l.to_string()),
                n(b.weight.load(Ordering::Relaxed)),
                n(format!("{:.3}", crate::topology::balance::effective_weight(b, max_lag))),
                n(u8::from(replica && b.health.eligible(max_lag) && !b.drained.load(Ordering::Relaxed))),
                n(u8::from(b.drained.load(Ordering::Relaxed))),
                n(u8::from(std::sync::Arc::ptr_eq(&writer, b))),
                n(b.in_flight.load(Ordering::Relaxed)),
                n(in_use),
                n(idle),
                n(b.waiting.load(Ordering::Relaxed)),
            ]);
        }
    }
    Table { columns, rows }
}

fn pools(shared: &Shared) -> Table {
    let snap = shared.load_full();
    let columns = cols(&[
        ("shard", Text),
        ("role", Text),
        ("addr", Text),
        ("user", Text),
        ("in_use", Int),
        ("idle", Int),
        ("max_size", Int),
    ]);
    let mut rows = Vec::new();
    for s in &snap.topology.shards {
        for b in std::iter::once(&s.primary).chain(s.replicas.iter()) {
            for (user, in_use, idle) in b.pool_usage_by_user() {
                rows.push(vec![
                    n(&s.name),
                    n(b.role.as_str()),
                    n(&b.addr),
                    Some(user),
                    n(in_use),
                    n(idle),
                    n(snap.config.pool.max_size),
                ]);
            }
        }
    }
    Table { columns, rows }
}

fn clients(shared: &Shared) -> Table {
    let columns = cols(&[
        ("id", Int),
        ("user", Text),
        ("address", Text),
        ("schema", Text),
        ("state", Text),
        ("pinned", Text),
        ("statement", Text),
        ("time_ms", Int),
    ]);
    let rows = shared
        .sessions
        .all()
        .into_iter()
        .map(|c| {
            let a = c.activity();
            let running = a.since.map(|t| t.elapsed().as_millis() as u64);
            vec![
                n(c.id),
                n(c.user()),
                a.peer.map(|p| p.to_string()),
                a.schema,
                n(if running.is_some() { "statement" } else { "idle" }),
                (a.pinned != 0).then(|| crate::session::pin::Pins::from_bits(a.pinned).labels()),
                (!a.statement.is_empty()).then(|| {
                    // A COM_QUERY payload starts with its command byte; a prepared
                    // statement's text does not.
                    let text = a.statement.strip_prefix(&[crate::protocol::com::QUERY]).unwrap_or(&a.statement);
                    String::from_utf8_lossy(text).into_owned()
                }),
                running.map(|t| t.to_string()),
            ]
        })
        .collect();
    Table { columns, rows }
}

fn digests(shared: &Shared, order: DigestOrder, descending: bool, limit: Option<usize>) -> Table {
    let columns = cols(&[
        ("fingerprint", Text),
        ("user", Text),
        ("schema", Text),
        ("shard", Text),
        ("destination", Text),
        ("count", Int),
        ("errors", Int),
        ("rows_sent", Int),
        ("rows_affected", Int),
        ("total_us", Int),
        ("min_us", Int),
        ("max_us", Int),
        ("avg_us", Int),
        ("p50_us", Int),
        ("p95_us", Int),
        ("p99_us", Int),
        ("p999_us", Int),
        ("first_seen", Int),
        ("last_seen", Int),
    ]);
    let mut all = shared.stats.rows();
    let key = |r: &crate::stats::Row| match order {
        DigestOrder::TotalTime => r.total_us,
        DigestOrder::Count => r.count,
        DigestOrder::Errors => r.errors,
        DigestOrder::P50 => r.quantile_us(0.5),
        DigestOrder::P95 => r.quantile_us(0.95),
        DigestOrder::P99 => r.quantile_us(0.99),
        DigestOrder::P999 => r.quantile_us(0.999),
        DigestOrder::Max => r.max_us,
        DigestOrder::RowsSent => r.rows_sent,
        DigestOrder::LastSeen => r.last_seen,
    };
    all.sort_by_key(|r| std::cmp::Reverse(key(r)));
    if !descending {
        all.reverse();
    }
    all.truncate(limit.unwrap_or(usize::MAX));
    let mut rows: Vec<Vec<Option<String>>> = all
        .iter()
        .map(|r| {
            vec![
                n(&r.fingerprint),
                n(&r.user),
                r.schema.clone(),
                n(&r.shard),
                n(r.dest.as_str()),
                n(r.count),
                n(r.errors),
                n(r.rows_sent),
                n(r.rows_affected),
                n(r.total_us),
                n(r.min_us),
                n(r.max_us),
                n(r.total_us / r.count.max(1)),
                n(r.quantile_us(0.5)),
                n(r.quantile_us(0.95)),
                n(r.quantile_us(0.99)),
                n(r.quantile_us(0.999)),
                n(r.first_seen),
                n(r.last_seen),
            ]
        })
        .collect();
    let (evicted, count) = shared.stats.evicted();
    if evicted > 0 && limit.is_none() {
        // What the bound pushed out, so totals still add up.
        let mut other = vec![None; columns.len()];
        other[0] = Some(format!("(other: {evicted} evicted fingerprints)"));
        other[5] = n(count);
        rows.push(other);
    }
    Table { columns, rows }
}

/// The live config as `key = value` rows, secrets masked: a key naming a password or a token
/// shows `****` (the `_env` / `_file` keys, which only name where a secret is, show as they
/// are).
fn config(shared: &Shared) -> Table {
    let columns = cols(&[("key", Text), ("value", Text)]);
    let snap = shared.load_full();
    let mut rows = Vec::new();
    if let Ok(v) = snap.config.source.parse::<toml::Table>() {
        flatten("", &toml::Value::Table(v), &mut rows);
    }
    Table { columns, rows }
}

fn secret(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    (last.contains("password") || last.contains("token")) && !last.ends_with("_env") && !last.ends_with("_file")
}

fn flatten(prefix: &str, v: &toml::Value, rows: &mut Vec<Vec<Option<String>>>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, rows);
            }
        }
        toml::Value::Array(a) if a.iter().all(|x| x.is_table()) && !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, rows);
            }
        }
        other => {
            let shown = if secret(prefix) { "****".to_string() } else { other.to_string() };
            rows.push(vec![Some(prefix.to_string()), Some(shown)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_their_sources_shown() {
        let text = "[proxy]\nlisten = \"x\"\nadmin_token_file = \"/run/t\"\n[[users]]\nname = \"a\"\npassword = \"s3cret\"\nbackend_password_env = \"E\"\n";
        let mut rows = Vec::new();
        flatten("", &toml::Value::Table(text.parse().unwrap()), &mut rows);
        let get = |k: &str| rows.iter().find(|r| r[0].as_deref() == Some(k)).and_then(|r| r[1].clone());
        assert_eq!(get("users[0].password").as_deref(), Some("****"));
        assert_eq!(get("users[0].name").as_deref(), Some("\"a\""));
        assert_eq!(get("users[0].backend_password_env").as_deref(), Some("\"E\""));
        assert_eq!(get("proxy.admin_token_file").as_deref(), Some("\"/run/t\""));
        assert!(!rows.iter().any(|r| r[1].as_deref().is_some_and(|v| v.contains("s3cret"))));
    }
}
