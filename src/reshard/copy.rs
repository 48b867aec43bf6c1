//! `sluice reshard copy`: copy the rows whose key moves to their new shard.
//!
//! Per sharded table and old shard, rows are read in primary-key order, `batch` at a time
//! (binary protocol, so values keep their types), and the ones whose key the new ring places
//! elsewhere are upserted there (`INSERT ... ON DUPLICATE KEY UPDATE`, so a batch copied twice
//! does no harm). After each batch the last primary key is written to the state file, so an
//! interrupted copy resumes where it stopped. At the end every moved key's row count on its
//! new shard is compared with its old shard's.
//!
//! `restart` first deletes, on every shard, the copies an earlier run made (rows whose key
//! the new ring places there and the old ring elsewhere) and starts over — the pass to run
//! while writes to sharded tables are paused, so rows updated or deleted during an earlier
//! pass are copied as they are now. Never run it once the new ring is live: those rows are
//! then the real ones.

use super::{db, delete_keys, ident, Move, ReshardError};
use indicatif::{ProgressBar, ProgressStyle};
use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

/// How to copy.
pub struct CopyOptions {
    /// Rows read per batch.
    pub batch: usize,
    /// Where progress is kept between runs.
    pub state: PathBuf,
    /// Delete earlier copies and start over (see the module docs).
    pub restart: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// What happened to one table.
#[derive(Debug, Default)]
pub struct TableReport {
    pub table: String,
    /// Rows read on the old shards.
    pub scanned: u64,
    /// Rows upserted into new shards.
    pub copied: u64,
    /// Earlier copies deleted by `restart`.
    pub cleared: u64,
    /// Keys whose rows move.
    pub keys_moved: usize,
    /// Keys whose row counts differ between old and new shard, described.
    pub mismatched: Vec<String>,
}

/// Runs the copy over every sharded table.
pub async fn copy(m: &Move, o: &CopyOptions) -> Result<Vec<TableReport>, ReshardError> {
    let mut state = State::load(&o.state, o.restart)?;
    let mut conns = Conns::default();
    let mut total = 0;
    for t in &m.tables {
        for s in &m.old_shards {
            total += row_count(conns.get(m, s).await?, s, t).await?;
        }
    }
    let bar = if o.progress { ProgressBar::new(total) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} rows {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let mut reports = Vec::new();
    for table in &m.tables {
        let mut r = TableReport { table: table.clone(), ..Default::default() };
        if o.restart {
            r.cleared = clear_copies(m, &mut conns, table, o.batch).await?;
        }
        for shard in &m.old_shards {
            bar.set_message(format!("{table} on {shard}"));
            let mut run = Run { m, conns: &mut conns, state: &mut state, bar: &bar, batch: o.batch };
            copy_one(&mut run, table, shard, &mut r).await?;
        }
        (r.keys_moved, r.mismatched) = verify(m, &mut conns, table).await?;
        reports.push(r);
    }
    bar.finish_and_clear();
    Ok(reports)
}

/// What a copy carries from one (table, old shard) to the next.
struct Run<'a> {
    m: &'a Move,
    conns: &'a mut Conns,
    state: &'a mut State,
    bar: &'a ProgressBar,
    batch: usize,
}

/// One table on one old shard.
async fn copy_one(run: &mut Run<'_>, table: &str, shard: &str, r: &mut TableReport) -> Result<(), ReshardError> {
    let (m, batch, bar) = (run.m, run.batch, run.bar);
    let (conns, state) = (&mut *run.conns, &mut *run.state);
    let mut cursor = match state.get(table, shard) {
        Some(Progress::Done) => {
            bar.inc(row_count(conns.get(m, shard).await?, shard, table).await?);
            return Ok(());
        }
        Some(Progress::After(lit)) => Cursor::Literal(lit.clone()),
        None => Cursor::Start,
    };
    let (cols, pk) = columns(conns.get(m, shard).await?, shard, &m.database, table).await?;
    let find = |c: &str| cols.iter().position(|x| x.eq_ignore_ascii_case(c));
    let key_at = find(&m.key).ok_or_else(|| ReshardError::Config(format!("table '{table}' has no `{}`", m.key)))?;
    let pk_at: Vec<usize> = pk.iter().filter_map(|c| find(c)).collect();
    let select = cols.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
    let order = pk.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
    loop {
        let (filter, params) = match &cursor {
            Cursor::Start => (String::new(), Vec::new()),
            Cursor::Literal(l) => (format!("WHERE ({order}) > ({l})"), Vec::new()),
            Cursor::Values(v) => (format!("WHERE ({order}) > ({})", marks(v.len())), v.clone()),
        };
        let sql = format!("SELECT {select} FROM {} {filter} ORDER BY {order} LIMIT {batch}", ident(table));
        let rows: Vec<Row> = conns.get(m, shard).await?.exec(sql, params).await.map_err(|e| db(shard, e))?;
        let rows: Vec<Vec<Value>> = rows.into_iter().map(Row::unwrap).collect();
        let Some(last) = rows.last() else { break };
        let mut moving: BTreeMap<String, Vec<&Vec<Value>>> = BTreeMap::new();
        for row in &rows {
            let (_, new, _) = m.placement(table, &row[key_at])?;
            if new != shard {
                moving.entry(new.to_string()).or_default().push(row);
            }
        }
        for (to, batch_rows) in moving {
            r.copied += upsert(conns.get(m, &to).await?, &to, table, &cols, &batch_rows).await?;
        }
        let last: Vec<Value> = pk_at.iter().map(|&i| last[i].clone()).collect();
        let lit = last.iter().map(|v| v.as_sql(false)).collect::<Vec<_>>().join(", ");
        state.set(table, shard, Progress::After(lit))?;
        r.scanned += rows.len() as u64;
        bar.inc(rows.len() as u64);
        cursor = Cursor::Values(last);
        if rows.len() < batch {
            break;
        }
    }
    state.set(table, shard, Progress::Done)
}

/// Rows of a table on a shard.
async fn row_count(conn: &mut Conn, shard: &str, table: &str) -> Result<u64, ReshardError> {
    let n: Option<u64> =
        conn.exec_first(format!("SELECT COUNT(*) FROM {}", ident(table)), ()).await.map_err(|e| db(shard, e))?;
    Ok(n.unwrap_or(0))
}

/// Where the next batch starts.
enum Cursor {
    Start,
    /// After a primary key read from the state file (SQL literals).
    Literal(String),
    /// After the primary key of the last row read.
    Values(Vec<Value>),
}

fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Copyable columns (generated ones are computed by the server) and the primary key.
async fn columns(
    conn: &mut Conn,
    shard: &str,
    schema: &str,
    table: &str,
) -> Result<(Vec<String>, Vec<String>), ReshardError> {
    let (schema, name) = table.split_once('.').unwrap_or((schema, table));
    let cols: Vec<String> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
             AND EXTRA NOT LIKE '%GENERATED%' ORDER BY ORDINAL_POSITION",
            (schema, name),
        )
        .await
        .map_err(|e| db(shard, e))?;
    let pk: Vec<String> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
             AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
            (schema, name),
        )
        .await
        .map_err(|e| db(shard, e))?;
    if cols.is_empty() {
        return Err(ReshardError::Config(format!("table '{table}' not found on shard '{shard}'")));
    }
    if pk.is_empty() {
        return Err(ReshardError::NoPrimaryKey(table.to_string()));
    }
    Ok((cols, pk))
}

/// Upserts rows into `table` on `shard`; returns how many rows were sent.
async fn upsert(
    conn: &mut Conn,
    shard: &str,
    table: &str,
    cols: &[String],
    rows: &[&Vec<Value>],
) -> Result<u64, ReshardError> {
    let names = cols.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
    let update = cols.iter().map(|c| format!("{0} = VALUES({0})", ident(c))).collect::<Vec<_>>().join(", ");
    let one = format!("({})", marks(cols.len()));
    // A statement takes at most 65,535 placeholders.
    for chunk in rows.chunks((65_000 / cols.len()).max(1)) {
        let values = vec![one.as_str(); chunk.len()].join(", ");
        let sql = format!("INSERT INTO {} ({names}) VALUES {values} ON DUPLICATE KEY UPDATE {update}", ident(table));
        let params: Vec<Value> = chunk.iter().flat_map(|r| r.iter().cloned()).collect();
        conn.exec_drop(sql, params).await.map_err(|e| db(shard, e))?;
    }
    Ok(rows.len() as u64)
}

/// Deletes copies an earlier run made (see the module docs); returns the rows deleted.
async fn clear_copies(m: &Move, conns: &mut Conns, table: &str, batch: usize) -> Result<u64, ReshardError> {
    let mut cleared = 0;
    for shard in &m.new_shards {
        let conn = conns.get(m, shard).await?;
        let counts = m.counts(conn, shard, table).await?;
        let copies: Vec<Value> =
            counts.into_values().filter(|k| k.new == *shard && k.old != *shard).map(|k| k.key).collect();
        cleared += delete_keys(conn, shard, table, &m.key, &copies, batch).await?;
    }
    Ok(cleared)
}

/// Per moved key, rows on its old shard against rows on its new shard. Returns the number of
/// moved keys and a line per key that differs.
async fn verify(m: &Move, conns: &mut Conns, table: &str) -> Result<(usize, Vec<String>), ReshardError> {
    let mut want: HashMap<Vec<u8>, (u64, String, String, Value)> = HashMap::new();
    for shard in &m.old_shards {
        let counts = m.counts(conns.get(m, shard).await?, shard, table).await?;
        for (c, k) in counts.into_iter().filter(|(_, k)| k.old == *shard && k.new != *shard) {
            want.insert(c, (k.rows, k.old, k.new, k.key));
        }
    }
    let receivers: BTreeSet<String> = want.values().map(|w| w.2.clone()).collect();
    let mut have: HashMap<Vec<u8>, u64> = HashMap::new();
    for shard in &receivers {
        let counts = m.counts(conns.get(m, shard).await?, shard, table).await?;
        have.extend(counts.into_iter().filter(|(_, k)| k.new == *shard && k.old != *shard).map(|(c, k)| (c, k.rows)));
    }
    let mut differ = Vec::new();
    for (c, (rows, old, new, key)) in &want {
        let got = have.remove(c).unwrap_or(0);
        if got != *rows {
            differ.push(format!("{table}: key {}: {rows} rows on {old}, {got} on {new}", key.as_sql(false)));
        }
    }
    for (c, got) in have {
        differ.push(format!("{table}: key {:?}: 0 rows on its old shard, {got} copied", String::from_utf8_lossy(&c)));
    }
    differ.sort();
    Ok((want.len(), differ))
}

/// Connections to shard primaries, opened on first use.
#[derive(Default)]
struct Conns(HashMap<String, Conn>);

impl Conns {
    async fn get(&mut self, m: &Move, shard: &str) -> Result<&mut Conn, ReshardError> {
        if !self.0.contains_key(shard) {
            let c = m.connect(shard).await?;
            self.0.insert(shard.to_string(), c);
        }
        Ok(self.0.get_mut(shard).expect("inserted above"))
    }
}

/// How far each (table, old shard) got.
#[derive(Debug, Clone, PartialEq)]
enum Progress {
    /// Rows up to this primary key (SQL literals) were copied.
    After(String),
    Done,
}

/// The state file: one line per (table, shard): `table<TAB>shard<TAB>done` or
/// `table<TAB>shard<TAB>after<TAB>literals`. Rewritten (via a temporary file and a rename)
/// after every batch.
struct State {
    path: PathBuf,
    entries: BTreeMap<(String, String), Progress>,
}

impl State {
    fn load(path: &std::path::Path, restart: bool) -> Result<State, ReshardError> {
        let mut entries = BTreeMap::new();
        if !restart {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    for line in text.lines() {
                        let parts: Vec<&str> = line.splitn(4, '\t').collect();
                        let p = match parts.as_slice() {
                            [_, _, "done"] => Progress::Done,
                            [_, _, "after", lit] => Progress::After(lit.to_string()),
                            _ => continue,
                        };
                        entries.insert((parts[0].to_string(), parts[1].to_string()), p);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(ReshardError::State { path: path.display().to_string(), source }),
            }
        }
        Ok(State { path: path.to_path_buf(), entries })
    }

    fn get(&self, table: &str, shard: &str) -> Option<&Progress> {
        self.entries.get(&(table.to_string(), shard.to_string()))
    }

    fn set(&mut self, table: &str, shard: &str, p: Progress) -> Result<(), ReshardError> {
        self.entries.insert((table.to_string(), shard.to_string()), p);
        let mut text = String::new();
        for ((t, s), p) in &self.entries {
            match p {
                Progress::Done => text.push_str(&format!("{t}\t{s}\tdone\n")),
                Progress::After(l) => text.push_str(&format!("{t}\t{s}\tafter\t{l}\n")),
            }
        }
        let tmp = self.path.with_extension("tmp");
        let err = |source| ReshardError::State { path: self.path.display().to_string(), source };
        std::fs::write(&tmp, text).map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_file_round_trips_and_restart_ignores_it() {
        let path = std::env::temp_dir().join(format!("sluice-reshard-state-{}", std::process::id()));
        let mut s = State::load(&path, true).unwrap();
        s.set("orders", "s0", Progress::After("42, 'a\\tb'".into())).unwrap();
        s.set("orders", "s1", Progress::Done).unwrap();
        let again = State::load(&path, false).unwrap();
        assert_eq!(again.get("orders", "s0"), Some(&Progress::After("42, 'a\\tb'".into())));
        assert_eq!(again.get("orders", "s1"), Some(&Progress::Done));
        assert_eq!(again.get("orders", "s2"), None);
        assert!(State::load(&path, true).unwrap().entries.is_empty());
        let _ = std::fs::remove_file(&path);
    }
}
