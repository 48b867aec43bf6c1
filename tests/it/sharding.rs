//! Sharding by `user_id` over the testbed's three shard primaries, through the proxy, checked
//! by connecting to each shard directly and against `sluice shard-of`.

use crate::harness::{self, code, run};
use mysql_async::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const SHARD_PORTS: [(&str, u16); 3] = [("s0", 13316), ("s1", 13317), ("s2", 13318)];

/// The testbed config with this test's own sharded table names.
fn config(orders: &str, events: &str) -> String {
    harness::config_text(|t| {
        t.replace("tables = [\"orders\", \"events\"]", &format!("tables = [\"{orders}\", \"{events}\"]"))
    })
}

/// `sluice shard-of` for many keys: key → shard name.
fn shard_of(config_path: &std::path::Path, keys: &[String]) -> BTreeMap<String, String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("shard-of")
        .arg("--config")
        .arg(config_path)
        .args(keys)
        .output()
        .expect("sluice shard-of");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, s) = l.split_once('\t').expect("KEY<TAB>SHARD");
            (k.to_string(), s.to_string())
        })
        .collect()
}

async fn user_ids_on(port: u16, table: &str) -> Vec<i64> {
    let mut d = harness::direct(port).await;
    d.query(format!("SELECT user_id FROM {table} ORDER BY user_id")).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_users_land_on_the_shard_the_ring_names() {
    let t = harness::table("orders");
    let e = harness::table("events");
    let text = config(&t, &e);
    let path = std::env::temp_dir().join(format!("sluice-sharding-{}.toml", std::process::id()));
    std::fs::write(&path, &text).unwrap();
    let p = harness::start_config(sluice::config::Config::parse(&text).unwrap()).await;
    let mut c = p.conn().await;

    // DDL on a sharded table runs on every shard of the ring.
    run(&mut c, &format!("CREATE TABLE {t} (id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id BIGINT NOT NULL, amount INT, KEY (user_id))")).await;
    run(&mut c, &format!("CREATE TABLE {e} (user_id BIGINT NOT NULL, kind VARCHAR(10))")).await;
    for (_, port) in SHARD_PORTS {
        assert!(user_ids_on(port, &t).await.is_empty());
    }

    // 10,000 users: single-row text, multi-row text (split by shard), prepared.
    for u in 1..=3000 {
        run(&mut c, &format!("INSERT INTO {t} (user_id, amount) VALUES ({u}, {})", u % 7)).await;
    }
    for chunk in (3001..=7000).collect::<Vec<i64>>().chunks(100) {
        let rows: Vec<String> = chunk.iter().map(|u| format!("({u}, {})", u % 7)).collect();
        run(&mut c, &format!("INSERT INTO {t} (user_id, amount) VALUES {}", rows.join(", "))).await;
        let affected = c.affected_rows();
        assert_eq!(affected, 100, "a split multi-row INSERT reports every row");
    }
    let stmt = c.prep(format!("INSERT INTO {t} (user_id, amount) VALUES (?, ?)")).await.unwrap();
    for u in 7001..=10000i64 {
        c.exec_drop(&stmt, (u, u % 7)).await.unwrap();
    }

    // Every row is on exactly the shard `sluice shard-of` names; none missing or duplicated.
    let keys: Vec<String> = (1..=10000).map(|u: i64| u.to_string()).collect();
    let expected = shard_of(&path, &keys);
    let mut seen = BTreeSet::new();
    let mut per_shard = Vec::new();
    for (name, port) in SHARD_PORTS {
        let ids = user_ids_on(port, &t).await;
        per_shard.push((name, ids.len()));
        for u in ids {
            assert!(seen.insert(u), "user {u} stored twice");
            assert_eq!(expected[&u.to_string()], name, "user {u} on {name}");
        }
    }
    eprintln!("rows per shard: {per_shard:?}");
    assert_eq!(seen.len(), 10000, "rows missing");
    assert!(per_shard.iter().all(|(_, n)| *n > 2000), "{per_shard:?}");

    // Reads by key return exactly that user's rows (text and prepared).
    run(&mut c, &format!("INSERT INTO {t} (user_id, amount) VALUES (42, 100), (42, 5)")).await;
    let r: Option<(i64, i64)> =
        c.query_first(format!("SELECT COUNT(*), SUM(amount) FROM {t} WHERE user_id = 42")).await.unwrap();
    assert_eq!(r, Some((3, 105)), "42 % 7 = 0, then 100 and 5");
    let r: Option<(i64, i64)> =
        c.exec_first(format!("SELECT COUNT(*), SUM(amount) FROM {t} WHERE user_id = ?"), (42,)).await.unwrap();
    assert_eq!(r, Some((3, 105)), "42 % 7 = 0, then 100 and 5");
    let r: Option<i64> = c.query_first(format!("SELECT COUNT(*) FROM {t} WHERE user_id = '9999'")).await.unwrap();
    assert_eq!(r, Some(1), "a quoted key goes where the integer does");

    // Scatter reads combine every shard's rows (more in scatter_reads_match_an_unsharded_oracle).
    let r: Option<(i64, i64)> = c.query_first(format!("SELECT COUNT(*), MAX(user_id) FROM {t}")).await.unwrap();
    assert_eq!(r, Some((10_002, 10_000)));
    // What Sluice cannot combine, or a write without the key, is refused with 1235.
    for sql in [
        format!("SELECT user_id, COUNT(*) FROM {t} GROUP BY user_id HAVING COUNT(*) > 1"),
        format!("SELECT GROUP_CONCAT(amount) FROM {t}"),
        format!("UPDATE {t} SET amount = 0"),
        format!("SELECT * FROM {t} JOIN customers c ON c.id = {t}.user_id WHERE {t}.user_id = 1"),
    ] {
        let err = c.query_drop(&sql).await.unwrap_err();
        assert_eq!(code(&err), 1235, "{sql}: {err}");
    }

    // A transaction stays on one shard: touching a second is refused and nothing commits half.
    let (a, b) = {
        let a = "1".to_string();
        let sa = &expected[&a];
        let b = (2..=10000).map(|u: i64| u.to_string()).find(|k| &expected[k] != sa).unwrap();
        (a, b)
    };
    run(&mut c, "BEGIN").await;
    run(&mut c, &format!("UPDATE {t} SET amount = 1000 WHERE user_id = {a}")).await;
    let err = c.query_drop(format!("UPDATE {t} SET amount = 1000 WHERE user_id = {b}")).await.unwrap_err();
    assert_eq!(code(&err), 1235, "{err}");
    run(&mut c, "ROLLBACK").await;
    let r: Option<i64> = c.query_first(format!("SELECT amount FROM {t} WHERE user_id = {a}")).await.unwrap();
    assert_eq!(r, Some(1), "the rolled-back update is visible (1 % 7 = 1 before it)");
    run(&mut c, "BEGIN").await;
    run(&mut c, &format!("UPDATE {t} SET amount = 77 WHERE user_id = {b}")).await;
    run(&mut c, &format!("INSERT INTO {e} (user_id, kind) VALUES ({b}, 'paid')")).await;
    run(&mut c, "COMMIT").await;
    let r: Option<i64> = c.query_first(format!("SELECT amount FROM {t} WHERE user_id = {b}")).await.unwrap();
    assert_eq!(r, Some(77));
    let r: Option<String> = c
        .query_first(format!("SELECT e.kind FROM {t} o JOIN {e} e ON e.user_id = o.user_id WHERE o.user_id = {b}"))
        .await
        .unwrap();
    assert_eq!(r.as_deref(), Some("paid"), "a join equal on the key runs on the key's shard");

    // How sharded statements ran, as /metrics reports them.
    let m = &p.shared.metrics.sharded;
    let (single, split, all, scatter, refused) = (m[0].get(), m[1].get(), m[2].get(), m[3].get(), m[4].get());
    assert!(single >= 3000, "single {single}");
    assert!(split >= 40 && all >= 2 && scatter >= 1 && refused >= 4, "{split} {all} {scatter} {refused}");
    let (_, body) = p.http_get("/metrics").await;
    assert!(body.contains(&format!("sluice_sharded_statements_total{{how=\"split\"}} {split}")), "{body}");

    // DDL again on every shard.
    run(&mut c, &format!("DROP TABLE {t}")).await;
    run(&mut c, &format!("DROP TABLE {e}")).await;
    for (_, port) in SHARD_PORTS {
        let mut d = harness::direct(port).await;
        let n: Option<i64> = d
            .query_first(format!(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'sluice_test' AND TABLE_NAME IN ('{t}', '{e}')"
            ))
            .await
            .unwrap();
        assert_eq!(n, Some(0));
    }
    let _ = std::fs::remove_file(&path);
}

/// `sluice ring` prints each shard's share; the three shares add up to 100%.
#[test]
fn ring_command_prints_each_shards_share() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["ring", "--config", concat!(env!("CARGO_MANIFEST_DIR"), "/config/dev.toml")])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let shares: Vec<f64> =
        text.lines().map(|l| l.split('\t').nth(1).unwrap().trim_end_matches('%').parse().unwrap()).collect();
    assert_eq!(shares.len(), 3, "{text}");
    assert!((shares.iter().sum::<f64>() - 100.0).abs() < 0.05, "{text}");
}

/// Scatter reads against an oracle: the same rows in one unsharded table on the default
/// shard. 2,000 random queries of the shapes Sluice combines (filters with AND/OR/IN/NULLs,
/// ORDER BY with LIMIT/OFFSET, COUNT/SUM/MIN/MAX) and some it must refuse; every answer
/// equals the oracle's or is ERROR 1235.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scatter_reads_match_an_unsharded_oracle() {
    use rand::{Rng, SeedableRng};
    let t = harness::table("sc");
    let o = harness::table("oracle");
    let p = harness::start_config(sluice::config::Config::parse(&config(&t, "unused_events")).unwrap()).await;
    let mut c = p.conn().await;
    let ddl = "(id INT PRIMARY KEY, user_id BIGINT NOT NULL, amount INT NULL, price DECIMAL(10,2) NULL, \
               created DATETIME NOT NULL, tag VARBINARY(8) NULL, note VARCHAR(20) NULL)";
    run(&mut c, &format!("CREATE TABLE {t} {ddl}")).await;
    run(&mut c, &format!("CREATE TABLE {o} {ddl}")).await;
    // A fixed seed by default (reproducible); SLUICE_FUZZ_SEED explores others.
    let seed = std::env::var("SLUICE_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut rows = Vec::new();
    for id in 1..=600 {
        let user = rng.gen_range(1..=150);
        let amount = if rng.gen_bool(0.15) { "NULL".to_string() } else { rng.gen_range(-20..40).to_string() };
        let price = if rng.gen_bool(0.1) {
            "NULL".to_string()
        } else {
            format!("{}.{:02}", rng.gen_range(0..300), rng.gen_range(0..100))
        };
        let created =
            format!("2026-0{}-{:02} {:02}:00:00", rng.gen_range(1..10), rng.gen_range(1..29), rng.gen_range(0..24));
        let tag = if rng.gen_bool(0.2) { "NULL".to_string() } else { format!("'t{}'", rng.gen_range(0..9)) };
        let note = format!("'N{}'", rng.gen_range(0..5));
        rows.push(format!("({id}, {user}, {amount}, {price}, '{created}', {tag}, {note})"));
    }
    for chunk in rows.chunks(100) {
        let cols = "(id, user_id, amount, price, created, tag, note)";
        run(&mut c, &format!("INSERT INTO {t} {cols} VALUES {}", chunk.join(", "))).await;
        run(&mut c, &format!("INSERT INTO {o} {cols} VALUES {}", chunk.join(", "))).await;
    }

    let filters = |rng: &mut rand::rngs::StdRng| -> String {
        let one = |rng: &mut rand::rngs::StdRng| match rng.gen_range(0..7) {
            0 => format!("amount > {}", rng.gen_range(-20..40)),
            1 => "amount IS NULL".to_string(),
            2 => {
                format!("user_id IN ({}, {}, {})", rng.gen_range(1..150), rng.gen_range(1..150), rng.gen_range(1..150))
            }
            3 => format!("price BETWEEN {} AND {}", rng.gen_range(0..150), rng.gen_range(150..300)),
            4 => format!("tag = 't{}'", rng.gen_range(0..9)),
            5 => format!("user_id = {}", rng.gen_range(1..150)),
            _ => format!("created < '2026-0{}-15'", rng.gen_range(1..10)),
        };
        match rng.gen_range(0..4) {
            0 => String::new(),
            1 => format!(" WHERE {}", one(rng)),
            2 => format!(" WHERE {} AND {}", one(rng), one(rng)),
            _ => format!(" WHERE {} OR {}", one(rng), one(rng)),
        }
    };
    let (mut matched, mut refused) = (0, 0);
    for _ in 0..2000 {
        let wh = filters(&mut rng);
        let (q, ordered) = match rng.gen_range(0..10) {
            0..=4 => {
                let col = ["amount", "price", "created", "tag", "id", "user_id"][rng.gen_range(0..6)];
                let dir = if rng.gen_bool(0.5) { "DESC" } else { "ASC" };
                let limit = match rng.gen_range(0..3) {
                    0 => String::new(),
                    1 => format!(" LIMIT {}", rng.gen_range(0..30)),
                    _ => format!(" LIMIT {} OFFSET {}", rng.gen_range(0..30), rng.gen_range(0..20)),
                };
                (format!("SELECT id, user_id, amount, price, created, tag FROM {{T}}{wh} ORDER BY {col} {dir}, id{limit}"), true)
            }
            5 => (format!("SELECT id, amount, note FROM {{T}}{wh}"), false),
            6..=8 => {
                let all = [
                    "COUNT(*)",
                    "COUNT(amount)",
                    "SUM(amount)",
                    "SUM(price)",
                    "MIN(amount)",
                    "MAX(price)",
                    "MIN(created)",
                    "MAX(tag)",
                    "MIN(id)",
                ];
                let n = rng.gen_range(1..5);
                let items: Vec<&str> = (0..n).map(|_| all[rng.gen_range(0..all.len())]).collect();
                (format!("SELECT {} FROM {{T}}{wh}", items.join(", ")), true)
            }
            9 if rng.gen_bool(0.6) => {
                // Groups: implicitly sorted by the group columns (MariaDB), or ordered, or DISTINCT.
                let g = ["user_id", "tag", "amount", "created"][rng.gen_range(0..4)];
                match rng.gen_range(0..4) {
                    0 => (
                        format!(
                            "SELECT {g}, COUNT(*), SUM(price), AVG(amount), MAX(amount) FROM {{T}}{wh} GROUP BY {g}"
                        ),
                        true,
                    ),
                    1 => (
                        format!(
                            "SELECT {g}, COUNT(*) AS n FROM {{T}}{wh} GROUP BY {g} ORDER BY n DESC, {g} LIMIT {}",
                            rng.gen_range(1..10)
                        ),
                        true,
                    ),
                    2 => (format!("SELECT tag, {g}, MIN(id) FROM {{T}}{wh} GROUP BY tag, {g}"), true),
                    _ => (format!("SELECT DISTINCT {g} FROM {{T}}{wh}"), false),
                }
            }
            _ => {
                let shape = [
                    "SELECT user_id, COUNT(*) FROM {T} GROUP BY user_id HAVING COUNT(*) > 2",
                    "SELECT STDDEV(amount) FROM {T}",
                    "SELECT DISTINCT note FROM {T}",
                    "SELECT id, note FROM {T} ORDER BY note, id",
                    "SELECT MIN(note) FROM {T}",
                ][rng.gen_range(0..5)];
                // DISTINCT without ORDER BY has no defined order, on a server or through Sluice.
                let ordered = !shape.starts_with("SELECT DISTINCT");
                (
                    format!("{shape}{}", if shape.contains("GROUP") || shape.contains("ORDER") { "" } else { &wh }),
                    ordered,
                )
            }
        };
        if against_oracle(&mut c, &q, (&t, &o), ordered, refused < 8, |rows| rows).await {
            matched += 1;
        } else {
            refused += 1;
        }
    }
    eprintln!("seed {seed}: {matched} answers matched the oracle, {refused} refused with 1235");
    assert!(matched >= 1700, "too few combinable queries exercised: {matched}");
    run(&mut c, &format!("DROP TABLE {t}")).await;
    run(&mut c, &format!("DROP TABLE {o}")).await;
}

/// Runs `q` (`{T}` standing for the table) on the sharded table and on the oracle table:
/// true when the answers are equal after `norm` (and sorting, unless `ordered`), false when
/// Sluice refused the query with 1235 (shown when `show`). Any other outcome fails the test.
async fn against_oracle(
    c: &mut mysql_async::Conn,
    q: &str,
    (t, o): (&str, &str),
    ordered: bool,
    show: bool,
    norm: impl Fn(Vec<Vec<Option<String>>>) -> Vec<Vec<Option<String>>>,
) -> bool {
    let prepared = |rows| {
        let mut rows = norm(rows_as_text(rows));
        if !ordered {
            rows.sort();
        }
        rows
    };
    let want = prepared(c.query(q.replace("{T}", o)).await.unwrap());
    match c.query::<mysql_async::Row, _>(q.replace("{T}", t)).await {
        Ok(got) => {
            assert_eq!(prepared(got), want, "wrong answer for: {}", q.replace("{T}", t));
            true
        }
        Err(e) => {
            assert_eq!(code(&e), 1235, "{}: {e}", q.replace("{T}", t));
            if show {
                eprintln!("refused: {} -> {e}", q.replace("{T}", t));
            }
            false
        }
    }
}

/// Rows as text (the text protocol sends every value as text), NULL as None.
fn rows_as_text(rows: Vec<mysql_async::Row>) -> Vec<Vec<Option<String>>> {
    rows.into_iter()
        .map(|r| {
            r.unwrap()
                .into_iter()
                .map(|v| match v {
                    mysql_async::Value::NULL => None,
                    mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                    other => Some(format!("{other:?}")),
                })
                .collect()
        })
        .collect()
}

/// `sluice reshard plan`: adding a fourth shard moves keys only to it, about a quarter.
#[test]
fn reshard_plan_lists_moves_to_a_new_shard() {
    let dev = concat!(env!("CARGO_MANIFEST_DIR"), "/config/dev.toml");
    let four = std::env::temp_dir().join(format!("sluice-four-{}.toml", std::process::id()));
    let text = std::fs::read_to_string(dev)
        .unwrap()
        .replace("ring = [\"s0\", \"s1\", \"s2\"]", "ring = [\"s0\", \"s1\", \"s2\", \"s3\"]")
        .replace("[sharding]", "[[shards]]\nname = \"s3\"\nprimary = \"127.0.0.1:13319\"\n\n[sharding]");
    std::fs::write(&four, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["reshard", "plan", "--from", dev, "--to"])
        .arg(&four)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&four);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let moves: Vec<(String, String, f64)> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].into(), f[1].into(), f[2].trim_end_matches('%').parse().unwrap())
        })
        .collect();
    assert_eq!(moves.len(), 3, "{text}");
    assert!(moves.iter().all(|m| m.1 == "s3" && m.0 != "s3"), "{text}");
    let total: f64 = moves.iter().map(|m| m.2).sum();
    assert!((18.0..32.0).contains(&total), "{text}");
}

/// autocommit=0 (as JDBC's setAutoCommit(false) sends it) is session state, not a pin: each
/// transaction it opens lives on the shard of its first statement, and the next transaction
/// may go elsewhere; ROLLBACK undoes, COMMIT keeps; between transactions nothing is held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autocommit_off_transactions_each_live_on_their_own_shard() {
    let t = harness::table("ac");
    let text = config(&t, "unused_events");
    let path = std::env::temp_dir().join(format!("sluice-ac-{}.toml", std::process::id()));
    std::fs::write(&path, &text).unwrap();
    let p = harness::start_config(sluice::config::Config::parse(&text).unwrap()).await;
    let mut c = p.conn().await;
    run(&mut c, &format!("CREATE TABLE {t} (user_id BIGINT PRIMARY KEY, amount INT)")).await;
    let keys: Vec<String> = (1..=50).map(|u: i64| u.to_string()).collect();
    let shard = shard_of(&path, &keys);
    let a = "1".to_string();
    let b = keys.iter().find(|k| shard[*k] != shard[&a]).unwrap().clone();
    run(&mut c, "SET autocommit = 0").await;
    run(&mut c, &format!("INSERT INTO {t} (user_id, amount) VALUES ({a}, 1)")).await;
    run(&mut c, "ROLLBACK").await;
    run(&mut c, &format!("INSERT INTO {t} (user_id, amount) VALUES ({a}, 2)")).await;
    run(&mut c, "COMMIT").await;
    let snap = p.shared.load_full();
    let held: u32 = snap.topology.shards.iter().map(|s| s.primary.pool_usage().0).sum();
    assert_eq!(held, 0, "nothing held between transactions");
    run(&mut c, &format!("INSERT INTO {t} (user_id, amount) VALUES ({b}, 3)")).await;
    let err = c.query_drop(format!("UPDATE {t} SET amount = 9 WHERE user_id = {a}")).await.unwrap_err();
    assert_eq!(code(&err), 1235, "the second shard inside one transaction: {err}");
    run(&mut c, "COMMIT").await;
    run(&mut c, "SET autocommit = 1").await;
    for (k, want) in [(&a, 2), (&b, 3)] {
        let port = SHARD_PORTS.iter().find(|(n, _)| *n == shard[k]).unwrap().1;
        let mut d = harness::direct(port).await;
        let v: Option<i64> = d.query_first(format!("SELECT amount FROM {t} WHERE user_id = {k}")).await.unwrap();
        assert_eq!(v, Some(want), "user {k} on {}", shard[k]);
    }
    run(&mut c, &format!("DROP TABLE {t}")).await;
    let _ = std::fs::remove_file(&path);
}

/// `[sharding] max_scatter_rows` caps the rows held across all shards' answers for a read
/// that needs a merge (here ORDER BY): past it the read is refused with 1235 (the rest of
/// each answer is read and dropped, so the pooled connections stay usable), while reads whose
/// shard answers fit go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scatter_reads_past_max_scatter_rows_are_refused_and_connections_stay_usable() {
    let t = harness::table("cap");
    let text = format!("{}\nmax_scatter_rows = 50\n", config(&t, "unused_events"));
    let p = harness::start_config(sluice::config::Config::parse(&text).unwrap()).await;
    let mut c = p.conn().await;
    run(&mut c, &format!("CREATE TABLE {t} (user_id BIGINT PRIMARY KEY, amount INT)")).await;
    let rows: Vec<String> = (1..=100).map(|u| format!("({u}, {u})")).collect();
    run(&mut c, &format!("INSERT INTO {t} (user_id, amount) VALUES {}", rows.join(", "))).await;
    for _ in 0..3 {
        let err = c.query_drop(format!("SELECT * FROM {t} ORDER BY amount")).await.unwrap_err();
        assert_eq!(code(&err), 1235, "{err}");
        assert!(err.to_string().contains("max_scatter_rows"), "{err}");
        let n: Option<i64> = c.query_first(format!("SELECT COUNT(*) FROM {t}")).await.unwrap();
        assert_eq!(n, Some(100), "the shards' connections still answer");
        let top: Vec<i64> = c.query(format!("SELECT user_id FROM {t} ORDER BY user_id LIMIT 10")).await.unwrap();
        assert_eq!(top, (1..=10).collect::<Vec<i64>>());
    }
    run(&mut c, &format!("DROP TABLE {t}")).await;
}

/// `LIMIT n, 18446744073709551615` is MySQL's "every row from offset n": the scatter planner
/// must not overflow (a panic in debug builds, too few rows in release).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scatter_limit_with_the_largest_row_count_returns_every_row_after_the_offset() {
    let t = harness::table("biglimit");
    let p = harness::start_config(sluice::config::Config::parse(&config(&t, "unused_events")).unwrap()).await;
    let mut c = p.conn().await;
    run(&mut c, &format!("CREATE TABLE {t} (user_id BIGINT PRIMARY KEY, amount INT)")).await;
    let rows: Vec<String> = (1..=100).map(|u| format!("({u}, {u})")).collect();
    run(&mut c, &format!("INSERT INTO {t} (user_id, amount) VALUES {}", rows.join(", "))).await;
    let after: Vec<i64> =
        c.query(format!("SELECT user_id FROM {t} ORDER BY user_id LIMIT 95, 18446744073709551615")).await.unwrap();
    assert_eq!(after, (96..=100).collect::<Vec<i64>>());
    let after: Vec<i64> = c
        .query(format!("SELECT user_id FROM {t} ORDER BY user_id LIMIT 18446744073709551615 OFFSET 97"))
        .await
        .unwrap();
    assert_eq!(after, (98..=100).collect::<Vec<i64>>());
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "the session survived");
    assert_eq!(p.shared.metrics.client_connections.get(), 1);
    run(&mut c, &format!("DROP TABLE {t}")).await;
}

/// Scatter reads answer only what each shard computes exactly per row: a window function,
/// a user variable, a non-deterministic or unknown function is refused with 1235 naming it,
/// never answered with per-shard values stitched together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scatter_reads_refuse_expressions_that_are_not_shard_local() {
    let t = harness::table("nonlocal");
    let p = harness::start_config(sluice::config::Config::parse(&config(&t, "unused_events")).unwrap()).await;
    let mut c = p.conn().await;
    run(&mut c, &format!("CREATE TABLE {t} (user_id BIGINT PRIMARY KEY, amount INT, name VARCHAR(20))")).await;
    let rows: Vec<String> = (1..=30).map(|u| format!("({u}, {}, 'n{u}')", u % 7)).collect();
    run(&mut c, &format!("INSERT INTO {t} (user_id, amount, name) VALUES {}", rows.join(", "))).await;
    for (sql, names) in [
        (format!("SELECT user_id, ROW_NUMBER() OVER (ORDER BY amount, user_id) FROM {t}"), "ROW_NUMBER"),
        (format!("SELECT user_id, @r := amount FROM {t}"), "user variable"),
        (format!("SELECT user_id, RAND() FROM {t} LIMIT 3"), "RAND"),
        (format!("SELECT user_id FROM {t} WHERE amount > RAND()"), "RAND"),
        (format!("SELECT SUM(amount * RAND()) FROM {t}"), "RAND"),
        (format!("SELECT user_id, NOW() FROM {t}"), "NOW"),
    ] {
        let e = c.query_drop(&sql).await.expect_err(&sql);
        assert_eq!(code(&e), 1235, "{sql}: {e}");
        assert!(e.to_string().contains(names), "{sql}: {e}");
    }
    // Deterministic expressions of columns are answered, and exactly.
    let n: Vec<(i64, String)> = c
        .query(format!(
            "SELECT user_id, CONCAT(UPPER(name), '/', amount + 1) FROM {t} WHERE LENGTH(name) = 2 ORDER BY user_id"
        ))
        .await
        .unwrap();
    assert_eq!(n, (1..=9).map(|u| (u, format!("N{u}/{}", u % 7 + 1))).collect::<Vec<_>>());
    run(&mut c, &format!("DROP TABLE {t}")).await;
}

/// `[sharding] max_scatter_bytes` caps the bytes held across the shards' answers for a read
/// that needs a merge, whatever the row count: wide rows are refused with 1235 and the
/// connections stay usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scatter_reads_past_max_scatter_bytes_are_refused() {
    let t = harness::table("bytecap");
    let text = format!("{}\nmax_scatter_bytes = 100000\n", config(&t, "unused_events"));
    let p = harness::start_config(sluice::config::Config::parse(&text).unwrap()).await;
    let mut c = p.conn().await;
    run(&mut c, &format!("CREATE TABLE {t} (user_id BIGINT PRIMARY KEY, pad TEXT)")).await;
    for u in 1..=40 {
        run(&mut c, &format!("INSERT INTO {t} (user_id, pad) VALUES ({u}, REPEAT('x', 5000))")).await;
    }
    let err = c.query_drop(format!("SELECT * FROM {t} ORDER BY pad")).await.unwrap_err();
    assert_eq!(code(&err), 1235, "{err}");
    assert!(err.to_string().contains("max_scatter_bytes"), "{err}");
    let n: Vec<i64> = c.query(format!("SELECT user_id FROM {t} ORDER BY user_id LIMIT 3")).await.unwrap();
    assert_eq!(n, vec![1, 2, 3], "narrow rows still fit");
    run(&mut c, &format!("DROP TABLE {t}")).await;
}

/// Scatter reads on text in the default linguistic collation (`utf8mb4_general_ci`: case and
/// accents ignored, trailing spaces padded): ORDER BY, GROUP BY and DISTINCT compare by the
/// server's own `WEIGHT_STRING`, against an unsharded oracle. Which spelling of an
/// equal-under-the-collation group a server shows is not defined, so grouped answers are
/// compared folded (lower case, accents and trailing spaces dropped); ordered rows exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scatter_reads_on_collated_text_match_an_unsharded_oracle() {
    use rand::{Rng, SeedableRng};
    let t = harness::table("sct");
    let o = harness::table("oracle_t");
    let p = harness::start_config(sluice::config::Config::parse(&config(&t, "unused_events")).unwrap()).await;
    let mut c = p.conn().await;
    let ddl = "(id INT PRIMARY KEY, user_id BIGINT NOT NULL, amount INT NULL, name VARCHAR(20) NULL, \
               city VARCHAR(20) NULL) CHARSET utf8mb4 COLLATE utf8mb4_general_ci";
    run(&mut c, &format!("CREATE TABLE {t} {ddl}")).await;
    run(&mut c, &format!("CREATE TABLE {o} {ddl}")).await;
    let seed = std::env::var("SLUICE_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x7e47);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let names = ["alice", "Alice", "ALICE ", "Émile", "emile", "Zoë", "zoe", "bob", "Bob ", "", "Ørjan", "ångström"];
    let cities = ["Paris", "paris", "Zürich", "zurich", "Oslo", "oslo ", "Åre", "are"];
    let mut rows = Vec::new();
    for id in 1..=500 {
        let user = rng.gen_range(1..=150);
        let amount = if rng.gen_bool(0.1) { "NULL".to_string() } else { rng.gen_range(-20..40).to_string() };
        let name =
            if rng.gen_bool(0.1) { "NULL".to_string() } else { format!("'{}'", names[rng.gen_range(0..names.len())]) };
        let city = if rng.gen_bool(0.1) {
            "NULL".to_string()
        } else {
            format!("'{}'", cities[rng.gen_range(0..cities.len())])
        };
        rows.push(format!("({id}, {user}, {amount}, {name}, {city})"));
    }
    for chunk in rows.chunks(100) {
        let cols = "(id, user_id, amount, name, city)";
        run(&mut c, &format!("INSERT INTO {t} {cols} VALUES {}", chunk.join(", "))).await;
        run(&mut c, &format!("INSERT INTO {o} {cols} VALUES {}", chunk.join(", "))).await;
    }
    let fold = |s: &str| -> String {
        let s: String = s
            .chars()
            .map(|ch| match ch {
                'É' | 'é' | 'ë' => 'e',
                'Ö' | 'ö' => 'o',
                'Ø' | 'ø' => 'ø',
                'ü' | 'Ü' => 'u',
                'Å' | 'å' => 'a',
                other => other.to_ascii_lowercase(),
            })
            .collect();
        s.trim_end().to_string()
    };
    let (mut matched, mut refused) = (0, 0);
    for _ in 0..2000 {
        let wh = match rng.gen_range(0..5) {
            0 => String::new(),
            1 => format!(" WHERE name = '{}'", names[rng.gen_range(0..names.len())].trim_end()),
            2 => format!(" WHERE amount > {}", rng.gen_range(-20..40)),
            3 => format!(" WHERE city LIKE '{}%'", ["p", "Z", "o", "å"][rng.gen_range(0..4)]),
            _ => format!(
                " WHERE user_id IN ({}, {}, {})",
                rng.gen_range(1..150),
                rng.gen_range(1..150),
                rng.gen_range(1..150)
            ),
        };
        let col = ["name", "city"][rng.gen_range(0..2)];
        let dir = if rng.gen_bool(0.5) { "DESC" } else { "ASC" };
        // (query, ordered, folded)
        let (q, ordered, folded) = match rng.gen_range(0..10) {
            0..=3 => {
                let limit = match rng.gen_range(0..3) {
                    0 => String::new(),
                    1 => format!(" LIMIT {}", rng.gen_range(0..30)),
                    _ => format!(" LIMIT {}, {}", rng.gen_range(0..20), rng.gen_range(0..30)),
                };
                (format!("SELECT id, name, city FROM {{T}}{wh} ORDER BY {col} {dir}, id{limit}"), true, false)
            }
            4 | 5 => (format!("SELECT {col}, COUNT(*), SUM(amount) FROM {{T}}{wh} GROUP BY {col}"), true, true),
            6 => (format!("SELECT {col}, COUNT(*) FROM {{T}}{wh} GROUP BY {col} ORDER BY {col} {dir}"), true, true),
            7 => (format!("SELECT DISTINCT {col} FROM {{T}}{wh}"), false, true),
            8 => (format!("SELECT name, city, COUNT(*) FROM {{T}}{wh} GROUP BY name, city"), true, true),
            _ => (
                format!(
                    "SELECT {col} AS k, COUNT(*) AS n FROM {{T}}{wh} GROUP BY k ORDER BY n DESC, k LIMIT {}",
                    rng.gen_range(1..6)
                ),
                true,
                true,
            ),
        };
        let norm = |rows: Vec<Vec<Option<String>>>| -> Vec<Vec<Option<String>>> {
            if !folded {
                return rows;
            }
            rows.into_iter().map(|r| r.into_iter().map(|v| v.map(|s| fold(&s))).collect()).collect()
        };
        if against_oracle(&mut c, &q, (&t, &o), ordered, refused < 8, norm).await {
            matched += 1;
        } else {
            refused += 1;
        }
    }
    eprintln!("seed {seed}: {matched} collated-text answers matched the oracle, {refused} refused with 1235");
    assert!(refused * 20 <= matched + refused, "more than 5% refused: {refused}");
    run(&mut c, &format!("DROP TABLE {t}")).await;
    run(&mut c, &format!("DROP TABLE {o}")).await;
}

/// A scatter read that needs no merge (no ORDER BY, grouping, DISTINCT or aggregate) streams:
/// the caps on what a merge holds do not apply, every row comes back once, OFFSET and LIMIT
/// count across shards, the connections stay usable, and the mariadb CLI (classic EOF
/// framing; mysql_async uses DEPRECATE_EOF) reads the same rows. A shard that fails before
/// its first row (its table is missing) gives its error and no rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scatter_reads_without_a_merge_stream_past_the_caps() {
    let t = harness::table("stream");
    let text = format!("{}\nmax_scatter_rows = 50\nmax_scatter_bytes = 2048\n", config(&t, "unused_events"));
    let p = harness::start_config(sluice::config::Config::parse(&text).unwrap()).await;
    let mut c = p.conn().await;
    run(&mut c, &format!("CREATE TABLE {t} (user_id BIGINT PRIMARY KEY, pad VARCHAR(200))")).await;
    let rows: Vec<String> = (1..=300).map(|u| format!("({u}, REPEAT('p', 150))")).collect();
    run(&mut c, &format!("INSERT INTO {t} (user_id, pad) VALUES {}", rows.join(", "))).await;
    for _ in 0..2 {
        let all: Vec<(i64, String)> = c.query(format!("SELECT user_id, pad FROM {t}")).await.unwrap();
        let ids: BTreeSet<i64> = all.iter().map(|r| r.0).collect();
        assert_eq!(all.len(), 300, "each row once");
        assert_eq!(ids, (1..=300).collect::<BTreeSet<i64>>());
        assert!(all.iter().all(|r| r.1 == "p".repeat(150)));
        let ten: Vec<i64> = c.query(format!("SELECT user_id FROM {t} LIMIT 10")).await.unwrap();
        assert_eq!(ten.len(), 10);
        assert_eq!(ten.iter().collect::<BTreeSet<_>>().len(), 10);
        let tail: Vec<i64> = c.query(format!("SELECT user_id FROM {t} LIMIT 295, 100")).await.unwrap();
        assert_eq!(tail.len(), 5, "{tail:?}");
        let none: Vec<i64> = c.query(format!("SELECT user_id FROM {t} LIMIT 0")).await.unwrap();
        assert!(none.is_empty());
        let filtered: Vec<i64> = c.query(format!("SELECT user_id FROM {t} WHERE user_id % 100 = 7")).await.unwrap();
        assert_eq!(filtered.iter().copied().collect::<BTreeSet<i64>>(), [7, 107, 207].into());
        let n: Option<i64> = c.query_first(format!("SELECT COUNT(*) FROM {t}")).await.unwrap();
        assert_eq!(n, Some(300), "the shards' connections still answer");
    }
    let cli = std::process::Command::new("mariadb")
        .args(["--no-defaults", "-h127.0.0.1", &format!("-P{}", p.addr.port()), "-uapp", "-papp_pw", "-N"])
        .args(["sluice_test", "-e", &format!("SELECT user_id FROM {t}")])
        .output()
        .expect("mariadb CLI");
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let ids: BTreeSet<i64> =
        String::from_utf8(cli.stdout).unwrap().lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(ids, (1..=300).collect::<BTreeSet<i64>>());
    // One shard without the table: its error, no rows.
    let mut s1 = harness::direct(SHARD_PORTS[1].1).await;
    run(&mut s1, &format!("RENAME TABLE {t} TO {t}_away")).await;
    let err = c.query_drop(format!("SELECT user_id FROM {t}")).await.unwrap_err();
    assert_eq!(code(&err), 1146, "{err}");
    run(&mut s1, &format!("RENAME TABLE {t}_away TO {t}")).await;
    let back: Vec<i64> = c.query(format!("SELECT user_id FROM {t}")).await.unwrap();
    assert_eq!(back.len(), 300);
    run(&mut c, &format!("DROP TABLE {t}")).await;
}

/// A streamed scatter read holds a bounded number of rows, not the result: reading 24 MB
/// across three shards (rows consumed one at a time by the client) grows this process's RSS
/// (proxy and client) by less than 12 MiB; a held merge would need the 24 MB twice (rows
/// and the answer built from them). (Serial: it measures this process's RSS.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_a_streamed_scatter_read_holds_rows_not_the_result() {
    let t = harness::table("streamrss");
    let p = harness::start_config(sluice::config::Config::parse(&config(&t, "unused_events")).unwrap()).await;
    let mut c = p.conn().await;
    run(&mut c, &format!("CREATE TABLE {t} (user_id BIGINT PRIMARY KEY, pad VARCHAR(8000))")).await;
    for batch in 0..30 {
        let rows: Vec<String> = (1..=100).map(|u| format!("({}, REPEAT('r', 8000))", batch * 100 + u)).collect();
        run(&mut c, &format!("INSERT INTO {t} (user_id, pad) VALUES {}", rows.join(", "))).await;
    }
    let before = harness::rss_kib();
    let mut result = c.query_iter(format!("SELECT user_id, pad FROM {t}")).await.unwrap();
    let (mut n, mut bytes) = (0usize, 0usize);
    while let Some(row) = result.next().await.unwrap() {
        let (_, pad): (i64, String) = mysql_async::from_row(row);
        n += 1;
        bytes += pad.len();
    }
    drop(result);
    let grown_mib = harness::rss_kib().saturating_sub(before) / 1024;
    eprintln!("streamed scatter read of {n} rows, {bytes} bytes: RSS +{grown_mib} MiB");
    assert_eq!((n, bytes), (3000, 3000 * 8000));
    assert!(grown_mib < 12, "RSS grew by {grown_mib} MiB");
    run(&mut c, &format!("DROP TABLE {t}")).await;
}

/// A prepared statement with a literal key goes where the ring puts that key under the
/// configuration in force when it runs: a reload that lists the shards in another order
/// (same ring, so the same placement) moves the shards' positions in the topology, and the
/// statement must not follow its old position to another shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_follow_their_shard_across_a_reload_that_reorders_shards() {
    let t = harness::table("reorder");
    let path = std::env::temp_dir().join(format!("sluice-{t}.toml"));
    let text = config(&t, "unused_events");
    std::fs::write(&path, &text).unwrap();
    let p = harness::start_file(&path).await;
    let mut c = p.conn().await;
    run(&mut c, &format!("CREATE TABLE {t} (user_id BIGINT, v INT)")).await;
    let insert = c.prep(format!("INSERT INTO {t} (user_id, v) VALUES (7, ?)")).await.unwrap();
    c.exec_drop(&insert, (1,)).await.unwrap();
    let home: Vec<u16> = {
        let mut on = Vec::new();
        for (_, port) in SHARD_PORTS {
            if user_ids_on(port, &t).await.contains(&7) {
                on.push(port);
            }
        }
        on
    };
    assert_eq!(home.len(), 1, "key 7 on exactly one shard: {home:?}");
    // The same shards and ring, listed s2, s1, s0.
    let block = |n: &str, port: u16| format!("[[shards]]\nname = \"{n}\"\nprimary = \"127.0.0.1:{port}\"\n");
    let reordered = text
        .replace(&block("s0", 13316), "@S0@")
        .replace(&block("s2", 13318), &block("s0", 13316))
        .replace("@S0@", &block("s2", 13318));
    assert_ne!(reordered, text, "the test's config edit applies");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // a new modification time
    let version = p.shared.load().version;
    std::fs::write(&path, &reordered).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while p.shared.load().version == version {
        assert!(std::time::Instant::now() < deadline, "the reordered config was not applied");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    c.exec_drop(&insert, (2,)).await.unwrap();
    for (name, port) in SHARD_PORTS {
        let n = user_ids_on(port, &t).await.iter().filter(|&&u| u == 7).count();
        let want = if port == home[0] { 2 } else { 0 };
        assert_eq!(n, want, "rows of key 7 on {name}");
    }
    run(&mut c, &format!("DROP TABLE {t}")).await;
    let _ = std::fs::remove_file(&path);
}
