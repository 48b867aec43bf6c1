//! Per-statement statistics: one row per statement fingerprint, user, schema, shard and
//! destination, with counts, rows, time and latency percentiles from an HDR histogram.
//!
//! The table is split into [`PARTS`] independently locked parts, one per thread that records
//! (the runtime's workers, in the order they first count a statement): a thread only ever
//! takes its own part's lock, which no other thread wants except a reader (`SHOW SLUICE
//! DIGESTS`, the status page, `/metrics`). Splitting by the key's hash instead put every
//! execution of an application's hottest statement behind one lock and one row whose cache
//! lines moved between cores on every statement. A statement counted on several threads has a
//! row in each of their parts; [`Stats::rows`] merges them by key.
//!
//! Memory is bounded by `[stats] max_fingerprints` rows, shared equally by the parts in use: a
//! part that is full drops its least recently seen eighth, counted under the "evicted" totals
//! ([`Stats::evicted`]).

pub mod slowlog;

use hdrhistogram::Histogram;
use std::cell::Cell;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Independently locked parts of the table: threads beyond this many share parts.
pub const PARTS: usize = 32;

/// The part the calling thread records into, the same for the thread's whole life.
fn slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SLOT.with(|s| match s.get() {
        usize::MAX => {
            let n = NEXT.fetch_add(1, Ordering::Relaxed) % PARTS;
            s.set(n);
            n
        }
        n => n,
    })
}

/// Where a statement was answered (the `destination` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Destination {
    #[default]
    Primary,
    Replica,
    /// Several shards (scatter read, fan-out).
    Scatter,
    /// Answered by Sluice itself (`SHOW WARNINGS`, `@@sluice_consistency`, KILL, ...).
    Sluice,
    /// Refused by Sluice before reaching a backend.
    Refused,
    /// Answered from the result cache.
    Cache,
}

impl Destination {
    pub fn as_str(self) -> &'static str {
        match self {
            Destination::Primary => "primary",
            Destination::Replica => "replica",
            Destination::Scatter => "scatter",
            Destination::Sluice => "sluice",
            Destination::Refused => "refused",
            Destination::Cache => "cache",
        }
    }
}

/// What one statement reports when it ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub took: Duration,
    pub error: bool,
    pub rows_sent: u64,
    pub rows_affected: u64,
}

/// The identity of a row besides its fingerprint.
#[derive(Debug, Clone, Copy)]
pub struct Where<'a> {
    pub user: &'a str,
    pub schema: Option<&'a str>,
    pub shard: &'a str,
    pub dest: Destination,
}

impl Where<'_> {
    /// The row's key: the fingerprint hash mixed with the rest.
    pub fn key(&self, fingerprint: u64) -> u64 {
        let schema = self.schema.map_or(&[0xff][..], str::as_bytes);
        crate::sql::fingerprint::extend(
            fingerprint,
            &[self.user.as_bytes(), schema, self.shard.as_bytes()],
            self.dest as u64,
        )
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub fingerprint: String,
    pub user: String,
    pub schema: Option<String>,
    pub shard: String,
    pub dest: Destination,
    pub count: u64,
    pub errors: u64,
    pub rows_sent: u64,
    pub rows_affected: u64,
    pub total_us: u64,
    pub min_us: u64,
    pub max_us: u64,
    /// Unix seconds.
    pub first_seen: u64,
    pub last_seen: u64,
    /// The part's clock at the last statement: what eviction orders by.
    recency: u64,
    /// Latency in microseconds, 1 µs to 1 h, about 3 % resolution.
    latency: Histogram<u32>,
}

impl Row {
    /// The latency at `q` (0..=1) in microseconds.
    pub fn quantile_us(&self, q: f64) -> u64 {
        self.latency.value_at_quantile(q)
    }

    /// Counts one statement of `us` microseconds at recency `clock`, Unix second `now`.
    fn add(&mut self, clock: u64, now: u64, us: u64, s: &Sample) {
        self.recency = clock;
        self.count += 1;
        self.errors += u64::from(s.error);
        self.rows_sent += s.rows_sent;
        self.rows_affected += s.rows_affected;
        self.total_us += us;
        self.min_us = self.min_us.min(us);
        self.max_us = self.max_us.max(us);
        self.last_seen = now;
        self.latency.saturating_record(us);
    }

    /// Adds `other`, the same key's row from another part.
    fn merge(&mut self, other: &Row) {
        self.count += other.count;
        self.errors += other.errors;
        self.rows_sent += other.rows_sent;
        self.rows_affected += other.rows_affected;
        self.total_us += other.total_us;
        self.min_us = self.min_us.min(other.min_us);
        self.max_us = self.max_us.max(other.max_us);
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        self.recency = self.recency.max(other.recency);
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
    }
}

/// Bytes one row costs beyond its texts (the histogram dominates), for the memory bound's
/// documentation and test.
pub fn row_overhead() -> usize {
    std::mem::size_of::<Row>() + new_histogram().distinct_values() * std::mem::size_of::<u32>()
}

fn new_histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, 3_600_000_000, 1).expect("static bounds")
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Keys are already hashes ([`Where::key`]): the map uses them as they are.
#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[derive(Default)]
struct Part {
    rows: HashMap<u64, Row, std::hash::BuildHasherDefault<KeyHasher>>,
    /// Statements recorded in this part: a recency order finer than seconds.
    clock: u64,
}

/// The statement statistics table.
pub struct Stats {
    parts: Vec<Mutex<Part>>,
    /// `[stats] max_fingerprints`.
    max_rows: AtomicU64,
    /// The parts some thread has recorded into, one bit each: the bound is shared by them.
    used: AtomicU32,
    evicted_rows: AtomicU64,
    evicted_count: AtomicU64,
    /// Unix seconds, kept by [`Stats::keep_time`] (0 until it runs): `first_seen` and
    /// `last_seen` read it instead of the clock, which cost about 70 instructions per
    /// statement.
    now: AtomicU64,
}

impl Stats {
    /// A table holding at most about `max_fingerprints` rows.
    pub fn new(max_fingerprints: usize) -> Stats {
        let s = Stats {
            parts: (0..PARTS).map(|_| Mutex::new(Part::default())).collect(),
            max_rows: AtomicU64::new(0),
            used: AtomicU32::new(0),
            evicted_rows: AtomicU64::new(0),
            evicted_count: AtomicU64::new(0),
            now: AtomicU64::new(0),
        };
        s.set_limit(max_fingerprints);
        s
    }

    /// Keeps the table's clock (whole Unix seconds) until `shutdown`. Sessions a drain lets
    /// finish after that record with the clock of the shutdown's start: at most
    /// `shutdown_timeout_ms` behind, in a column that counts seconds.
    pub async fn keep_time(&self, shutdown: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => self.now.store(unix_now(), Ordering::Relaxed),
            }
        }
    }

    /// The table's clock, or the system's while [`Stats::keep_time`] has not run.
    fn now(&self) -> u64 {
        match self.now.load(Ordering::Relaxed) {
            0 => unix_now(),
            t => t,
        }
    }

    /// Changes the bound (a reload); parts over it shrink at once.
    pub fn set_limit(&self, max_fingerprints: usize) {
        self.max_rows.store(max_fingerprints as u64, Ordering::Relaxed);
        self.shrink();
    }

    /// Rows one part may hold: the bound shared by the parts in use.
    fn per_part(&self, used: u32) -> usize {
        let max = self.max_rows.load(Ordering::Relaxed) as usize;
        max.div_ceil(used.count_ones().max(1) as usize).max(1)
    }

    /// Brings every part within its share of the bound (after the bound or the number of
    /// parts in use changed).
    fn shrink(&self) {
        let limit = self.per_part(self.used.load(Ordering::Relaxed));
        for p in &self.parts {
            let mut part = lock(p);
            if part.rows.len() > limit {
                self.evict(&mut part, limit);
            }
        }
    }

    /// Counts one statement. `text` gives the fingerprint's text, and is called only when the
    /// row is new.
    pub fn record(&self, fingerprint: u64, at: &Where<'_>, text: impl FnOnce() -> String, s: Sample) {
        let key = at.key(fingerprint);
        let us = (s.took.as_micros() as u64).clamp(1, 3_600_000_000);
        let slot = slot();
        let mut used = self.used.load(Ordering::Relaxed);
        if used & 1 << slot == 0 {
            // This thread's first statement: the bound is shared by one more part.
            used = self.used.fetch_or(1 << slot, Ordering::Relaxed) | 1 << slot;
            self.shrink();
        }
        let mut part = lock(&self.parts[slot]);
        let now = self.now();
        part.clock += 1;
        let clock = part.clock;
        // A known fingerprint (nearly every statement): one map lookup.
        if let Some(row) = part.rows.get_mut(&key) {
            row.add(clock, now, us, &s);
            return;
        }
        let limit = self.per_part(used);
        if part.rows.len() >= limit {
            self.evict(&mut part, limit);
        }
        let mut row = Row {
            fingerprint: text(),
            user: at.user.to_string(),
            schema: at.schema.map(str::to_string),
            shard: at.shard.to_string(),
            dest: at.dest,
            count: 0,
            errors: 0,
            rows_sent: 0,
            rows_affected: 0,
            total_us: 0,
            min_us: u64::MAX,
            max_us: 0,
            first_seen: now,
            last_seen: now,
            recency: 0,
            latency: new_histogram(),
        };
        row.add(clock, now, us, &s);
        part.rows.insert(key, row);
    }

    /// Drops the least recently seen eighth of a full part (at least one row), so eviction
    /// costs a sort once per many inserts rather than a scan per insert.
    fn evict(&self, part: &mut Part, limit: usize) {
        let drop_n = (part.rows.len() + 1).saturating_sub(limit).max(limit / 8).max(1);
        let mut ages: Vec<(u64, u64)> = part.rows.iter().map(|(k, r)| (r.recency, *k)).collect();
        let nth = drop_n.min(ages.len()) - 1;
        ages.select_nth_unstable(nth);
        for (_, k) in ages.into_iter().take(drop_n) {
            if let Some(r) = part.rows.remove(&k) {
                self.evicted_rows.fetch_add(1, Ordering::Relaxed);
                self.evicted_count.fetch_add(r.count, Ordering::Relaxed);
            }
        }
    }

    /// Rows evicted so far and the statements they had counted (the "other" row).
    pub fn evicted(&self) -> (u64, u64) {
        (self.evicted_rows.load(Ordering::Relaxed), self.evicted_count.load(Ordering::Relaxed))
    }

    /// A copy of every row, the parts' rows of one key merged into one.
    pub fn rows(&self) -> Vec<Row> {
        let mut all: HashMap<u64, Row> = HashMap::new();
        for p in &self.parts {
            for (k, r) in &lock(p).rows {
                match all.entry(*k) {
                    Entry::Occupied(mut e) => e.get_mut().merge(r),
                    Entry::Vacant(e) => {
                        e.insert(r.clone());
                    }
                }
            }
        }
        all.into_values().collect()
    }

    /// Number of rows held (what the bound counts: a key counted on several threads holds a
    /// row in each of their parts).
    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| lock(p).rows.len()).sum()
    }

    /// True when no row is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the table (`SLUICE RESET DIGESTS`).
    pub fn reset(&self) {
        for p in &self.parts {
            lock(p).rows.clear();
        }
        self.evicted_rows.store(0, Ordering::Relaxed);
        self.evicted_count.store(0, Ordering::Relaxed);
    }
}

/// A part's lock; a thread that panicked while holding it left counts, not broken invariants.
fn lock(p: &Mutex<Part>) -> std::sync::MutexGuard<'_, Part> {
    p.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(dest: Destination) -> Where<'static> {
        Where { user: "app", schema: Some("db"), shard: "main", dest }
    }

    #[test]
    fn a_row_counts_times_rows_and_percentiles() {
        let s = Stats::new(100);
        for ms in 1..=100u64 {
            let sample = Sample { took: Duration::from_millis(ms), error: ms == 50, rows_sent: 2, rows_affected: 0 };
            s.record(7, &at(Destination::Replica), || "select ?".into(), sample);
        }
        s.record(7, &at(Destination::Primary), || "select ?".into(), Sample::default());
        let rows = s.rows();
        assert_eq!(rows.len(), 2, "destination is part of the key");
        let r = rows.iter().find(|r| r.dest == Destination::Replica).unwrap();
        assert_eq!((r.count, r.errors, r.rows_sent), (100, 1, 200));
        assert_eq!((r.min_us, r.max_us, r.total_us), (1_000, 100_000, 5_050_000));
        let p50 = r.quantile_us(0.5) as f64;
        let p99 = r.quantile_us(0.99) as f64;
        assert!((p50 / 50_000.0 - 1.0).abs() < 0.07, "p50 {p50}");
        assert!((p99 / 99_000.0 - 1.0).abs() < 0.07, "p99 {p99}");
    }

    /// A million distinct fingerprints into a table bounded at 1,000 rows: it never holds
    /// more than the bound (plus one part's rounding), and the evicted rows and their counts
    /// are accounted for.
    #[test]
    fn a_million_fingerprints_stay_within_the_bound() {
        let s = Stats::new(1_000);
        let bound = 1_000usize.div_ceil(PARTS) * PARTS;
        for i in 0..1_000_000u64 {
            s.record(
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                &at(Destination::Primary),
                || format!("select {i}"),
                Sample::default(),
            );
            if i % 100_000 == 0 {
                assert!(s.len() <= bound, "{} rows at {i}", s.len());
            }
        }
        let (rows, count) = s.evicted();
        assert!(s.len() <= bound);
        // What the bound means in bytes: a row (its histogram included) and its text.
        let per_row = row_overhead();
        eprintln!("{} rows held, {per_row} bytes per row before its text", s.len());
        assert!(per_row < 4096, "a row costs {per_row} bytes: the documented bound is wrong");
        assert_eq!(rows as usize + s.len(), 1_000_000);
        assert_eq!(count as usize + s.len(), 1_000_000);
        s.reset();
        assert!(s.is_empty());
    }

    /// Threads count into parts of their own; a reader sees one row per key with every
    /// thread's statements, and the bound holds over all parts together.
    #[test]
    fn threads_count_apart_and_are_read_together() {
        let s = Stats::new(400);
        std::thread::scope(|sc| {
            for t in 1..=4u64 {
                let s = &s;
                sc.spawn(move || {
                    let hot = Sample { took: Duration::from_micros(100 * t), ..Sample::default() };
                    for i in 0..10_000u64 {
                        s.record(7, &at(Destination::Replica), || "hot".into(), hot);
                        let cold = (i << 2 | t).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                        s.record(cold, &at(Destination::Primary), || "cold".into(), Sample::default());
                    }
                });
            }
        });
        let rows = s.rows();
        let hot: Vec<&Row> = rows.iter().filter(|r| r.fingerprint == "hot").collect();
        assert_eq!(hot.len(), 1, "one row per key, whichever threads counted it");
        assert_eq!(hot[0].count, 40_000);
        assert_eq!((hot[0].min_us, hot[0].max_us, hot[0].total_us), (100, 400, 10_000 * 1_000));
        let p99 = hot[0].quantile_us(0.99) as f64;
        assert!((p99 / 400.0 - 1.0).abs() < 0.05, "the merged histogram's p99 is {p99}");
        // A thread may insert one row after another's first statement lowered the share.
        assert!(s.len() <= 400 + 4, "{} rows held over a bound of 400", s.len());
        let (evicted, count) = s.evicted();
        assert_eq!(count as usize + rows.iter().map(|r| r.count as usize).sum::<usize>(), 80_000);
        assert!(evicted > 0);
    }

    #[test]
    fn the_most_recently_seen_rows_survive_eviction() {
        let s = Stats::new(PARTS * 4);
        let hot = 12345u64;
        s.record(hot, &at(Destination::Primary), || "hot".into(), Sample::default());
        for i in 0..10_000u64 {
            s.record(i * 7919 + 1, &at(Destination::Primary), || "cold".into(), Sample::default());
            if i % 3 == 0 {
                s.record(hot, &at(Destination::Primary), || "hot".into(), Sample::default());
            }
        }
        assert!(s.rows().iter().any(|r| r.fingerprint == "hot"), "a row in constant use was evicted");
    }
}
