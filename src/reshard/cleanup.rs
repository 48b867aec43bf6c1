//! `sluice reshard cleanup`: once the new ring is live (config reloaded), delete from each
//! old shard the rows whose key the new ring places elsewhere. Nothing reaches them through
//! Sluice any more; they are the copies' originals.

use super::{delete_keys, Move, ReshardError};
use mysql_async::Value;

/// What cleanup did (or, dry, would do) on one shard for one table.
#[derive(Debug)]
pub struct Cleaned {
    pub table: String,
    pub shard: String,
    pub keys: usize,
    /// Rows deleted (dry run: rows that would be).
    pub rows: u64,
}

/// Deletes moved keys' rows from their old shards, `batch` keys per DELETE.
pub async fn cleanup(m: &Move, batch: usize, dry_run: bool) -> Result<Vec<Cleaned>, ReshardError> {
    let mut out = Vec::new();
    for table in &m.tables {
        for shard in &m.old_shards {
            let mut conn = m.connect(shard).await?;
            let counts = m.counts(&mut conn, shard, table).await?;
            let moved: Vec<(Value, u64)> =
                counts.into_values().filter(|k| k.new != *shard).map(|k| (k.key, k.rows)).collect();
            let keys: Vec<Value> = moved.iter().map(|(k, _)| k.clone()).collect();
            let rows = if dry_run {
                moved.iter().map(|(_, n)| n).sum()
            } else {
                delete_keys(&mut conn, shard, table, &m.key, &keys, batch).await?
            };
            out.push(Cleaned { table: table.clone(), shard: shard.clone(), keys: keys.len(), rows });
        }
    }
    Ok(out)
}
