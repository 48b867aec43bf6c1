//! Sharding by `user_id` over the testbed's three shard primaries, through the proxy, checked
//! by connecting to each shard directly and against `sluice shard-of`.

use crate::harness::{self, code, run};
use mysql_async::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

pub(crate) const SHARD_PORTS: [(&str, u16); 3] = [("s0", 13316), ("s1", 13317), ("s2", 13318)];

/// The testbed config with this test's own sharded table names.
pub(crate) fn config(orders: &str, events: &str) -> String {
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
