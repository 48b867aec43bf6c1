//! The result cache against the testbed: hits, invalidation by writes relayed through Sluice
//! (autocommit, transactions, DDL), read-your-writes even through a trigger the cache cannot
//! see, the TTL bound for writes that bypass Sluice, single flight counted on the server,
//! and the byte cap under adversarial answer sizes.

use crate::harness::{self, root_sql, run, table};
use mysql_async::prelude::*;
use mysql_async::Conn;
use std::time::{Duration, Instant};

/// The testbed config with a `[cache]` section (`extra` goes inside it, then the rules).
fn cached(extra: &str, rules: &str) -> impl FnOnce(String) -> String {
    let text = format!("\n[admin]\nlisten = \"127.0.0.1:0\"\n\n[[admin.users]]\nname = \"ops\"\npassword = \"ops_pw\"\n\n[cache]\n{extra}\n{rules}\n");
    move |t: String| t + &text
}

fn rule(tables: &[&str], ttl_ms: u64) -> String {
    let list: Vec<String> = tables.iter().map(|t| format!("\"{t}\"")).collect();
    format!("[[cache.rules]]\ntables = [{}]\nttl_ms = {ttl_ms}\n", list.join(", "))
}

fn hits(p: &harness::Proxy) -> u64 {
    p.shared.metrics.cache.hits.get()
}

async fn strong(p: &harness::Proxy) -> Conn {
    let mut c = p.conn().await;
    run(&mut c, "SET @@sluice_consistency = 'strong'").await;
    c
}

async fn value(c: &mut Conn, sql: &str) -> Option<i64> {
    c.query_first(sql).await.unwrap()
}

/// A read is answered from the cache until a write relayed through Sluice touches its table:
/// an autocommit UPDATE, a transaction (at COMMIT, not before), DDL, and the admin flush.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_until_a_write_through_sluice_touches_the_table() {
    let t = table("cache_hit");
    let p = harness::start_with(cached("", &rule(&[&t], 60_000))).await;
    let mut r = strong(&p).await;
    let mut w = p.conn().await;
    run(&mut w, &format!("CREATE TABLE {t} (id INT PRIMARY KEY, v INT)")).await;
    run(&mut w, &format!("INSERT INTO {t} VALUES (1, 10)")).await;
    let q = format!("SELECT v FROM {t} WHERE id = 1");
    assert_eq!(value(&mut r, &q).await, Some(10));
    let h = hits(&p);
    assert_eq!(value(&mut r, &q).await, Some(10));
    assert_eq!(hits(&p), h + 1, "the second read is a hit");

    run(&mut w, &format!("UPDATE {t} SET v = 11 WHERE id = 1")).await;
    assert_eq!(value(&mut r, &q).await, Some(11), "an autocommit write ends the entry");
    assert_eq!(value(&mut r, &q).await, Some(11));
    assert_eq!(hits(&p), h + 2);

    run(&mut w, "BEGIN").await;
    run(&mut w, &format!("UPDATE {t} SET v = 12 WHERE id = 1")).await;
    assert_eq!(value(&mut r, &q).await, Some(11), "not committed yet");
    assert_eq!(value(&mut r, &q).await, Some(11));
    run(&mut w, "COMMIT").await;
    assert_eq!(value(&mut r, &q).await, Some(12), "COMMIT ends what the transaction's reads stored");

    run(&mut w, &format!("ALTER TABLE {t} ADD COLUMN extra INT NOT NULL DEFAULT 5")).await;
    let row: Option<(i64, i64, i64)> = r.query_first(format!("SELECT * FROM {t} WHERE id = 1")).await.unwrap();
    assert_eq!(row, Some((1, 12, 5)));

    // The admin interface: counters, and a flush of one table.
    let admin = p.shared.admin_sql_addr.get().expect("admin listening").port();
    let url = format!("mysql://ops:ops_pw@127.0.0.1:{admin}/");
    let mut a = Conn::new(mysql_async::Opts::from_url(&url).unwrap()).await.unwrap();
    let rows: Vec<(String, u64)> = a.query("SHOW SLUICE CACHE").await.unwrap();
    let get = |name: &str| rows.iter().find(|(n, _)| n == name).map(|r| r.1);
    assert!(get("hits").unwrap() >= 3 && get("stores").unwrap() >= 3, "{rows:?}");
    assert_eq!(value(&mut r, &q).await, Some(12));
    let h = hits(&p);
    a.query_drop(format!("SLUICE FLUSH CACHE {t}")).await.unwrap();
    assert_eq!(value(&mut r, &q).await, Some(12));
    assert_eq!(hits(&p), h, "flushed: a miss");
    run(&mut w, &format!("DROP TABLE {t}")).await;
}

/// Read-your-writes with the cache on, under `session` consistency, while other sessions
/// keep filling the cache from the replicas: every read of the writer returns its own last
/// write. The table read is written by a trigger, which Sluice cannot see: its version never
/// changes, so only the session's own clock keeps older entries from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_always_reads_its_own_writes_even_through_a_trigger() {
    let (src, dst) = (table("cache_src"), table("cache_dst"));
    let p = harness::start_with(cached("", &rule(&[&dst], 60_000))).await;
    let mut w = p.conn().await;
    run(&mut w, &format!("CREATE TABLE {src} (id INT PRIMARY KEY, v INT)")).await;
    // Other column names than the source's: the write names nothing the read depends on.
    run(&mut w, &format!("CREATE TABLE {dst} (k INT PRIMARY KEY, w INT)")).await;
    run(&mut w, &format!("INSERT INTO {src} VALUES (1, 0)")).await;
    run(&mut w, &format!("INSERT INTO {dst} VALUES (1, 0)")).await;
    run(
        &mut w,
        &format!(
            "CREATE TRIGGER {src}_t AFTER UPDATE ON {src} FOR EACH ROW UPDATE {dst} SET w = NEW.v WHERE k = NEW.id"
        ),
    )
    .await;
    let q = format!("SELECT w FROM {dst} WHERE k = 1");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (mut c, q, stop) = (p.conn().await, q.clone(), stop.clone());
        run(&mut c, "SET @@sluice_consistency = 'eventual'").await;
        readers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Eventual reads: until a replica has the new tables they may fail (1146).
                let _ = c.query_first::<i64, _>(&q).await;
            }
        }));
    }
    let started = Instant::now();
    for i in 1..=150i64 {
        run(&mut w, &format!("UPDATE {src} SET v = {i} WHERE id = 1")).await;
        for _ in 0..3 {
            assert_eq!(value(&mut w, &q).await, Some(i), "the writer read an answer older than its write {i}");
        }
        // Let the replicas catch up now and then, so their answers are stored and offered.
        if i % 25 == 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    assert!(hits(&p) > 0, "the readers were served from the cache ({:?})", started.elapsed());
    run(&mut w, &format!("DROP TABLE {src}, {dst}")).await;
}

/// A write made straight on the primary is not seen by Sluice: the entry stays until its TTL,
/// and not a moment longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_that_bypass_sluice_are_seen_within_the_ttl() {
    let t = table("cache_ttl");
    let p = harness::start_with(cached("", &rule(&[&t], 1_500))).await;
    let mut r = strong(&p).await;
    run(&mut r, &format!("CREATE TABLE {t} (id INT PRIMARY KEY, v INT)")).await;
    run(&mut r, &format!("INSERT INTO {t} VALUES (1, 1)")).await;
    let q = format!("SELECT v FROM {t} WHERE id = 1");
    assert_eq!(value(&mut r, &q).await, Some(1));
    let stored = Instant::now();
    let mut direct = harness::direct(harness::primary_port()).await;
    run(&mut direct, &format!("UPDATE {t} SET v = 2 WHERE id = 1")).await;
    loop {
        let v = value(&mut r, &q).await;
        if v == Some(2) {
            break;
        }
        assert_eq!(v, Some(1));
        assert!(stored.elapsed() < Duration::from_millis(1_500 + 500), "still the old value past the TTL");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let summary = p.shared.cache_if_made().unwrap().summary();
    let refusals = p.shared.cache_if_made().unwrap().refusals();
    assert!(
        stored.elapsed() >= Duration::from_millis(1_000),
        "served from the cache until near the TTL: {summary:?} {refusals:?}"
    );
    run(&mut r, &format!("DROP TABLE {t}")).await;
}

/// Entries are kept per user and per session settings: a session whose time zone differs
/// does not get another's answer to a statement whose text is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_settings_are_part_of_the_key() {
    let t = table("cache_tz");
    let p = harness::start_with(cached("", &rule(&[&t], 60_000))).await;
    let mut a = strong(&p).await;
    let mut b = strong(&p).await;
    run(&mut a, &format!("CREATE TABLE {t} (id INT PRIMARY KEY, ts TIMESTAMP)")).await;
    run(&mut a, "SET time_zone = '+00:00'").await;
    run(&mut a, &format!("INSERT INTO {t} VALUES (1, '2026-01-01 00:00:00')")).await;
    run(&mut b, "SET time_zone = '+05:00'").await;
    let q = format!("SELECT CAST(ts AS CHAR) FROM {t} WHERE id = 1");
    for _ in 0..2 {
        let va: Option<String> = a.query_first(&q).await.unwrap();
        let vb: Option<String> = b.query_first(&q).await.unwrap();
        assert_eq!(va.as_deref(), Some("2026-01-01 00:00:00"));
        assert_eq!(vb.as_deref(), Some("2026-01-01 05:00:00"));
    }
    run(&mut a, &format!("DROP TABLE {t}")).await;
}

/// Under adversarial answer sizes (many distinct answers up to the entry limit, and larger
/// ones), the entries never weigh more than `max_bytes` + 5%.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_within_max_bytes() {
    let t = table("cache_mem");
    let max = 262_144u64;
    let p = harness::start_with(cached(&format!("max_bytes = {max}\nmax_entry_bytes = 65536"), "")).await;
    let mut c = strong(&p).await;
    run(&mut c, &format!("CREATE TABLE {t} (id INT PRIMARY KEY)")).await;
    run(&mut c, &format!("INSERT INTO {t} VALUES (1)")).await;
    let cache = p.shared.cache_if_made().expect("configured").clone();
    let mut worst = 0;
    for i in 0..400u64 {
        // Sizes from a few bytes to past the entry limit, in an order no cache predicts.
        let n = (i * 7919) % 70_000 + 1;
        let sql = format!("/* sluice:cache ttl=60000 */ SELECT REPEAT('x', {n}) AS r FROM {t} WHERE id = 1");
        let got: Option<String> = c.query_first(&sql).await.unwrap();
        assert_eq!(got.map(|s| s.len() as u64), Some(n));
        let bytes = cache.summary().iter().find(|(k, _)| *k == "bytes").unwrap().1;
        worst = worst.max(bytes);
        assert!(bytes <= max + max / 20, "{bytes} bytes after {i} answers");
    }
    let m = &p.shared.metrics.cache;
    assert!(m.stores.get() > 50 && m.evictions.get() > 0, "stores {} evictions {}", m.stores.get(), m.evictions.get());
    assert!(m.refused[4].get() > 0, "answers over max_entry_bytes are refused");
    assert!(worst > max / 2, "the cache filled up ({worst} bytes)");
    run(&mut c, &format!("DROP TABLE {t}")).await;
}

/// 1,000 sessions send the same cacheable read at once: the server runs it once (counted on
/// the primary with the table's own statistics: rows read), the others wait for its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_identical_misses_run_once_on_the_backend() {
    let t = table("cache_flight");
    let p = harness::start_with(cached("single_flight_wait_ms = 20000", "")).await;
    let mut setup = p.conn().await;
    run(&mut setup, &format!("CREATE TABLE {t} (id INT PRIMARY KEY, v INT)")).await;
    run(&mut setup, &format!("INSERT INTO {t} SELECT seq, seq % 7 FROM seq_1_to_200000")).await;
    let port = harness::primary_port();
    root_sql(port, "SET GLOBAL userstat = 1");
    let rows_read = || {
        let s = root_sql(
            port,
            &format!("SELECT ROWS_READ FROM information_schema.TABLE_STATISTICS WHERE TABLE_SCHEMA = 'sluice_test' AND TABLE_NAME = '{t}'"),
        );
        s.parse::<u64>().unwrap_or(0)
    };
    let q = format!("/* sluice:cache ttl=60000 */ SELECT SUM(v), COUNT(*) FROM {t} WHERE v >= 0");
    // One execution's rows read, measured straight on the primary.
    let before = rows_read();
    let mut direct = harness::direct(port).await;
    let expect: Option<(i64, i64)> = direct.query_first(&q).await.unwrap();
    let one = rows_read() - before;
    assert!(one >= 200_000, "one execution read {one} rows");

    let n = 1000;
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(strong(&p).await);
    }
    let gate = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let before = rows_read();
    let mut tasks = Vec::new();
    for mut c in conns {
        let (gate, q) = (gate.clone(), q.clone());
        tasks.push(tokio::spawn(async move {
            gate.wait().await;
            let got: Option<(i64, i64)> = c.query_first(&q).await.unwrap();
            c.disconnect().await.unwrap();
            got
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), expect);
    }
    let ran = rows_read() - before;
    root_sql(port, "SET GLOBAL userstat = 0");
    let m = &p.shared.metrics.cache;
    assert_eq!(ran, one, "rows read by {n} identical reads: {} executions", ran as f64 / one as f64);
    assert_eq!(m.hits.get() + 1, n as u64, "all but the leader were answered from the cache");
    run(&mut setup, &format!("DROP TABLE {t}")).await;
}

/// Prepared statements (mysql_async's `exec`, the binary protocol) are cached too, keyed by
/// their bound values, and invalidated like text reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_reads_are_cached_by_their_bound_values() {
    let t = table("cache_ps");
    let p = harness::start_with(cached("", &rule(&[&t], 60_000))).await;
    let mut r = strong(&p).await;
    let mut w = p.conn().await;
    run(&mut w, &format!("CREATE TABLE {t} (id INT PRIMARY KEY, v VARCHAR(10))")).await;
    run(&mut w, &format!("INSERT INTO {t} VALUES (1, 'one'), (2, 'two')")).await;
    let q = format!("SELECT v FROM {t} WHERE id = ?");
    let get = |id: i64| (q.clone(), id);
    let (sql, id) = get(1);
    let v: Option<String> = r.exec_first(&sql, (id,)).await.unwrap();
    assert_eq!(v.as_deref(), Some("one"));
    let h = hits(&p);
    let v: Option<String> = r.exec_first(&sql, (1,)).await.unwrap();
    assert_eq!(v.as_deref(), Some("one"));
    assert_eq!(hits(&p), h + 1, "the same statement and value: a hit");
    let v: Option<String> = r.exec_first(&sql, (2,)).await.unwrap();
    assert_eq!(v.as_deref(), Some("two"), "another value is another entry");
    w.exec_drop(format!("UPDATE {t} SET v = ? WHERE id = ?"), ("uno", 1)).await.unwrap();
    let v: Option<String> = r.exec_first(&sql, (1,)).await.unwrap();
    assert_eq!(v.as_deref(), Some("uno"), "a prepared write ends the entry");
    // The text form of the same read is its own entry, in its own protocol.
    let v: Option<String> = r.query_first(format!("SELECT v FROM {t} WHERE id = 1")).await.unwrap();
    assert_eq!(v.as_deref(), Some("uno"));
    run(&mut w, &format!("DROP TABLE {t}")).await;
}

/// Redis port of the testbed (scripts/testbed starts redis-server there).
fn redis_port() -> u16 {
    std::env::var("SLUICE_REDIS_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(16379)
}

/// Waits until the instance's Redis subscription is live (it serves nothing before).
async fn until_linked(p: &harness::Proxy) {
    let cache = p.shared.cache_if_made().expect("configured").clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cache.link_up.load(std::sync::atomic::Ordering::Acquire) {
        assert!(Instant::now() < deadline, "no Redis subscription within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Two Sluice instances share invalidations through a real Redis: a write relayed by one
/// ends the other's entry within the publish delay (measured: the time from the write's OK to
/// the first read on the other instance that returns the new value). Without Redis (the
/// channel's server unreachable), an instance serves nothing from the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_spreads_invalidation_between_instances() {
    let t = table("cache_redis");
    let redis = format!(
        "invalidation = \"redis\"\nredis_url = \"redis://127.0.0.1:{}\"\nredis_channel = \"sluice:test:{t}\"",
        redis_port()
    );
    let a = harness::start_with(cached(&redis, &rule(&[&t], 600_000))).await;
    let b = harness::start_with(cached(&redis, &rule(&[&t], 600_000))).await;
    until_linked(&a).await;
    until_linked(&b).await;
    let mut w = a.conn().await;
    let mut r = strong(&b).await;
    run(&mut w, &format!("CREATE TABLE {t} (id INT PRIMARY KEY, v INT)")).await;
    run(&mut w, &format!("INSERT INTO {t} VALUES (1, 0)")).await;
    // A's bumps for those two reach B first (arriving later, they would end B's entry).
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.shared.metrics.cache.invalidations[2].get() < 2 {
        assert!(Instant::now() < deadline, "B never heard A's bumps");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let q = format!("SELECT v FROM {t} WHERE id = 1");
    let mut delays = Vec::new();
    for i in 1..=20i64 {
        // B caches the current value and serves it again.
        assert_eq!(value(&mut r, &q).await, Some(i - 1));
        let h = hits(&b);
        assert_eq!(value(&mut r, &q).await, Some(i - 1));
        assert_eq!(hits(&b), h + 1, "B serves its entry");
        run(&mut w, &format!("UPDATE {t} SET v = {i} WHERE id = 1")).await;
        let written = Instant::now();
        loop {
            let v = value(&mut r, &q).await;
            if v == Some(i) {
                break;
            }
            assert_eq!(v, Some(i - 1));
            assert!(written.elapsed() < Duration::from_secs(2), "B still serves the old value after 2 s");
        }
        delays.push(written.elapsed());
    }
    delays.sort();
    let (median, worst) = (delays[delays.len() / 2], delays[delays.len() - 1]);
    println!("invalidation delay between instances: median {median:?}, max {worst:?} (20 writes)");
    assert!(worst < Duration::from_millis(500), "max delay {worst:?}");
    assert!(b.shared.metrics.cache.invalidations[2].get() >= 20, "B applied A's bumps");
    run(&mut w, &format!("DROP TABLE {t}")).await;

    // An instance that cannot subscribe answers from the backends only.
    let dead = "invalidation = \"redis\"\nredis_url = \"redis://127.0.0.1:1\"";
    let c = harness::start_with(cached(dead, &rule(&["cache_nothing"], 600_000))).await;
    let mut s = strong(&c).await;
    run(&mut s, "CREATE TABLE IF NOT EXISTS cache_nothing (id INT PRIMARY KEY)").await;
    for _ in 0..3 {
        let _: Option<i64> = s.query_first("SELECT id FROM cache_nothing").await.unwrap();
    }
    assert_eq!(hits(&c), 0);
    assert!(c.shared.metrics.cache.refused[9].get() >= 1, "counted as invalidation_link_down");
    run(&mut s, "DROP TABLE cache_nothing").await;
}

/// An entry read on a replica is served to `eventual` sessions, never to `strong` ones, which
/// read the primary as they would without the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strong_reads_are_never_served_a_replica_entry() {
    let t = table("cache_strong");
    let p = harness::start_with(cached("", &rule(&[&t], 60_000))).await;
    let mut w = p.conn().await;
    run(&mut w, &format!("CREATE TABLE {t} (id INT PRIMARY KEY, v INT)")).await;
    run(&mut w, &format!("INSERT INTO {t} VALUES (1, 7)")).await;
    let mut e = p.conn().await;
    run(&mut e, "SET @@sluice_consistency = 'eventual'").await;
    let q = format!("SELECT v FROM {t} WHERE id = 1");
    // Once the monitor has seen the replicas past the writes, a replica read is stored.
    let deadline = Instant::now() + Duration::from_secs(10);
    let m = &p.shared.metrics.cache;
    loop {
        let h = hits(&p);
        if value(&mut e, &q).await == Some(7) && hits(&p) > h {
            break;
        }
        assert!(Instant::now() < deadline, "no replica entry was stored and served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(p.shared.metrics.routed[1][0].get() > 0, "the eventual reads went to a replica");
    let mut s = strong(&p).await;
    let (h, refused) = (hits(&p), m.refused[8].get());
    assert_eq!(value(&mut s, &q).await, Some(7));
    assert_eq!((hits(&p), m.refused[8].get()), (h, refused + 1), "the strong read is refused the replica entry");
    // It read the primary, and its answer replaced the entry: a primary entry serves it.
    assert_eq!(value(&mut s, &q).await, Some(7));
    assert_eq!(hits(&p), h + 1, "a primary entry serves a strong read");
    run(&mut w, &format!("DROP TABLE {t}")).await;
}

/// The oracle for other sessions: while one session writes a counter through Sluice, `strong`
/// readers on other connections, served from the cache as much as it allows, never read a
/// value older than the last write acknowledged before their read began, and `monotonic`
/// readers never read a value older than one they read before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_never_see_a_value_older_than_an_acknowledged_write() {
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    use std::sync::Arc;
    let t = table("cache_oracle");
    let p = harness::start_with(cached("", &rule(&[&t], 60_000))).await;
    let mut w = p.conn().await;
    run(&mut w, &format!("CREATE TABLE {t} (id INT PRIMARY KEY, v INT)")).await;
    run(&mut w, &format!("INSERT INTO {t} VALUES (1, 0)")).await;
    let acked = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let q = format!("SELECT v FROM {t} WHERE id = 1");
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (mut c, q, acked, stop) = (strong(&p).await, q.clone(), acked.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let mut reads = 0u64;
            while !stop.load(Ordering::Acquire) {
                let floor = acked.load(Ordering::Acquire);
                let v: i64 = c.query_first(&q).await.unwrap().unwrap();
                assert!(v >= floor, "read {v} after the write of {floor} was acknowledged");
                reads += 1;
            }
            reads
        }));
    }
    // `monotonic` readers (replicas allowed): never a value older than one they read before.
    for _ in 0..2 {
        let (mut c, q, stop) = (p.conn().await, q.clone(), stop.clone());
        run(&mut c, "SET @@sluice_consistency = 'monotonic'").await;
        readers.push(tokio::spawn(async move {
            let (mut reads, mut last) = (0u64, i64::MIN);
            while !stop.load(Ordering::Acquire) {
                // Until a replica has the new table, a read there may fail (1146).
                let Ok(Some(v)) = c.query_first::<i64, _>(&q).await else { continue };
                assert!(v >= last, "a monotonic read went back from {last} to {v}");
                last = v;
                reads += 1;
            }
            reads
        }));
    }
    for i in 1..=300i64 {
        run(&mut w, &format!("UPDATE {t} SET v = {i} WHERE id = 1")).await;
        acked.store(i, Ordering::Release);
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    stop.store(true, Ordering::Release);
    let mut reads = 0;
    for r in readers {
        reads += r.await.unwrap();
    }
    let served = hits(&p);
    println!("{reads} reads beside 300 writes, {served} from the cache");
    assert!(served > 0 && reads > 300, "{reads} reads, {served} hits");
    run(&mut w, &format!("DROP TABLE {t}")).await;
}

/// A page answered from the cache leaves the `FOUND_ROWS()` the server would: the offset plus
/// the rows sent; an empty page after the end (how many rows matched only the server knows)
/// and a UNION with an offset are not served from the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_page_leaves_the_servers_found_rows() {
    let t = table("cache_page");
    let p = harness::start_with(cached("", &rule(&[&t], 60_000))).await;
    let mut r = strong(&p).await;
    run(&mut r, &format!("CREATE TABLE {t} (id INT PRIMARY KEY)")).await;
    run(&mut r, &format!("INSERT INTO {t} SELECT seq FROM seq_1_to_30")).await;
    for (sql, rows, found, cached) in [
        (format!("SELECT id FROM {t} ORDER BY id LIMIT 10, 5"), 5, 15, true),
        (format!("SELECT id FROM {t} ORDER BY id LIMIT 40, 5"), 0, 30, false),
        (format!("SELECT id FROM {t} UNION ALL SELECT id FROM {t} LIMIT 3, 2"), 2, 60, false),
    ] {
        for round in 0..2 {
            let h = hits(&p);
            let got: Vec<i64> = r.query(&sql).await.unwrap();
            let f = value(&mut r, "SELECT FOUND_ROWS()").await;
            assert_eq!((got.len(), f), (rows, Some(found)), "{sql}, round {round}");
            if round == 1 {
                assert_eq!(hits(&p), h + u64::from(cached), "{sql}: served from the cache: {cached}");
            }
        }
    }
    run(&mut r, &format!("DROP TABLE {t}")).await;
}
