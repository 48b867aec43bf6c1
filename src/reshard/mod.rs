//! Moving rows when the ring changes: `sluice reshard copy` and `sluice reshard cleanup`
//! (the procedure is in docs/sharding.md).
//!
//! Both compare the ring of the config in use (`--from`) with the new one (`--to`): a row
//! moves when the two rings place its key on different shards. `copy` reads every sharded
//! table on each old shard in primary-key order, in batches, and upserts the rows that move
//! into their new shard (resumable from a state file; idempotent), then verifies per key that
//! the new shard holds as many rows as the old one. `cleanup` deletes the moved keys' rows
//! from their old shards once the new ring is live.
//!
//! These are control-plane tools: they talk to the shards' primaries directly with
//! mysql_async, never through the proxy.

pub mod cleanup;
pub mod copy;

use crate::config::Config;
use crate::sharding::ring::{canonical, KeyValue, Ring};
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder, Value};
use std::collections::{BTreeMap, HashMap};

/// Why a reshard step stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReshardError {
    #[error("{0}")]
    Config(String),
    #[error("shard '{shard}': {source}")]
    Db {
        shard: String,
        #[source]
        source: mysql_async::Error,
    },
    #[error("table '{0}' has no PRIMARY KEY: rows cannot be copied resumably")]
    NoPrimaryKey(String),
    #[error("table '{table}': a `{key}` value that is neither an integer nor a string")]
    KeyType { table: String, key: String },
    #[error("state file {path}: {source}")]
    State {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// One ring change: both rings, the sharded tables and how to reach every shard.
pub struct Move {
    pub old: Ring,
    pub new: Ring,
    /// Shards of the old ring, in config order.
    pub old_shards: Vec<String>,
    /// Shards of the new ring, in config order.
    pub new_shards: Vec<String>,
    /// Shard-key column.
    pub key: String,
    /// Sharded tables (of the new config).
    pub tables: Vec<String>,
    pub database: String,
    addrs: BTreeMap<String, String>,
    user: String,
    password: String,
}

impl Move {
    /// From the config in use and the new one. `login` overrides the backend login of the
    /// new config's first `[[users]]` entry.
    pub fn new(
        from: &Config,
        to: &Config,
        database: &str,
        login: Option<(String, String)>,
    ) -> Result<Move, ReshardError> {
        let err = |m: &str| ReshardError::Config(m.to_string());
        let (a, b) = (from.sharding.as_ref(), to.sharding.as_ref());
        let (Some(a), Some(b)) = (a, b) else { return Err(err("both configs need a [sharding] section")) };
        if !a.key.eq_ignore_ascii_case(&b.key) {
            return Err(err("the two configs shard by different key columns"));
        }
        let names = |r: &[toml::Spanned<String>]| r.iter().map(|n| n.get_ref().clone()).collect::<Vec<_>>();
        let mut addrs = BTreeMap::new();
        for s in from.shards.iter().chain(to.shards.iter()) {
            addrs.insert(s.name.get_ref().clone(), s.primary.get_ref().clone());
        }
        let (user, password) = match login {
            Some(l) => l,
            None => {
                let u = to.users.first().ok_or_else(|| err("no [[users]] in the new config and no --user"))?;
                let name = u.backend_user.clone().unwrap_or_else(|| u.name.get_ref().clone());
                (name, u.backend_password.clone().unwrap_or_else(|| u.password.clone()))
            }
        };
        Ok(Move {
            old: Ring::new(&names(&a.ring), a.vnodes),
            new: Ring::new(&names(&b.ring), b.vnodes),
            old_shards: names(&a.ring),
            new_shards: names(&b.ring),
            key: b.key.clone(),
            tables: b.tables.clone(),
            database: database.to_string(),
            addrs,
            user,
            password,
        })
    }

    /// A connection to a shard's primary, in the tables' database.
    pub async fn connect(&self, shard: &str) -> Result<Conn, ReshardError> {
        let addr = self.addrs.get(shard).ok_or_else(|| ReshardError::Config(format!("unknown shard '{shard}'")))?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(|| ReshardError::Config(format!("bad address {addr}")))?;
        let port = port.parse().map_err(|_| ReshardError::Config(format!("bad port in {addr}")))?;
        let opts = OptsBuilder::default()
            .ip_or_hostname(host)
            .tcp_port(port)
            .user(Some(&self.user))
            .pass(Some(&self.password))
            .db_name(Some(&self.database))
            .prefer_socket(false);
        Conn::new(Opts::from(opts)).await.map_err(|e| db(shard, e))
    }

    /// Old and new shard of a key value read from a table.
    pub fn placement(&self, table: &str, v: &Value) -> Result<(&str, &str, Vec<u8>), ReshardError> {
        let key = match v {
            Value::Int(i) => KeyValue::Int(i128::from(*i)),
            Value::UInt(u) => KeyValue::Int(i128::from(*u)),
            Value::Bytes(b) => KeyValue::Bytes(b.clone()),
            _ => return Err(ReshardError::KeyType { table: table.into(), key: self.key.clone() }),
        };
        Ok((self.old.shard_of(&key), self.new.shard_of(&key), canonical(&key)))
    }

    /// Rows per key of a table on one shard: canonical key → (key value, rows).
    async fn counts(&self, conn: &mut Conn, shard: &str, table: &str) -> Result<KeyCounts, ReshardError> {
        let sql = format!("SELECT {}, COUNT(*) FROM {} GROUP BY 1", ident(&self.key), ident(table));
        let rows: Vec<(Value, u64)> = conn.exec(sql, ()).await.map_err(|e| db(shard, e))?;
        let mut out = HashMap::with_capacity(rows.len());
        for (k, n) in rows {
            let (old, new, c) = self.placement(table, &k)?;
            out.insert(c, KeyCount { key: k, rows: n, old: old.to_string(), new: new.to_string() });
        }
        Ok(out)
    }
}

/// What [`Move::counts`] knows of one key on one shard.
pub struct KeyCount {
    pub key: Value,
    pub rows: u64,
    pub old: String,
    pub new: String,
}

type KeyCounts = HashMap<Vec<u8>, KeyCount>;

fn db(shard: &str, source: mysql_async::Error) -> ReshardError {
    ReshardError::Db { shard: shard.to_string(), source }
}

/// A table or column name quoted for SQL (`db.table` quoted part by part).
pub fn ident(name: &str) -> String {
    name.split('.').map(|p| format!("`{}`", p.replace('`', "``"))).collect::<Vec<_>>().join(".")
}

/// Deletes, on `shard`, every row of `table` whose key is in `keys`, in batches; returns the
/// rows deleted.
async fn delete_keys(
    conn: &mut Conn,
    shard: &str,
    table: &str,
    key: &str,
    keys: &[Value],
    batch: usize,
) -> Result<u64, ReshardError> {
    let mut deleted = 0;
    for chunk in keys.chunks(batch.max(1)) {
        let marks = vec!["?"; chunk.len()].join(",");
        let sql = format!("DELETE FROM {} WHERE {} IN ({marks})", ident(table), ident(key));
        conn.exec_drop(sql, chunk.to_vec()).await.map_err(|e| db(shard, e))?;
        deleted += conn.affected_rows();
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_part_by_part() {
        assert_eq!(ident("orders"), "`orders`");
        assert_eq!(ident("db.ord`ers"), "`db`.`ord``ers`");
    }
}
