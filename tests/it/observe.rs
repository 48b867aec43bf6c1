//! What operators see and steer: statement statistics by fingerprint with percentiles, the
//! slow log, and the SQL admin interface (mariadb CLI and PyMySQL), with its actions.

use crate::harness;
use crate::tls::{output, python};
use mysql_async::prelude::*;
use std::time::{Duration, Instant};

/// Admin accounts and statistics settings added to the testbed config.
fn observed(slow_log: &std::path::Path) -> impl FnOnce(String) -> String {
    let extra = format!(
        "\n[stats]\nslow_ms = 150\nslow_log = \"{}\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\npause_timeout_ms = 5000\n\n\
         [[admin.users]]\nname = \"ops\"\npassword = \"ops_pw\"\n\n[[admin.users]]\nname = \"viewer\"\npassword = \"view_pw\"\nrole = \"read\"\n",
        slow_log.display()
    );
    move |t: String| t + &extra
}

/// The mariadb CLI on the admin port: tab-separated rows, no headers.
fn admin_cli(port: u16, user: &str, password: &str, sql: &str) -> (bool, String, String) {
    output(crate::tls::cli(port, user, password).args(["-e", sql]))
}

/// Statements counted under their fingerprint, user, schema, shard and destination, with
/// errors, rows and latency percentiles; slow ones in the slow log; read through the admin
/// interface with the mariadb CLI and PyMySQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_are_counted_by_fingerprint_with_percentiles_and_slow_ones_logged() {
    let slow_log = std::env::temp_dir().join(format!("sluice-slow-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&slow_log);
    let p = harness::start_with(observed(&slow_log)).await;
    for r in harness::replica_ports() {
        p.until_eligible(&format!("127.0.0.1:{r}"), true, Duration::from_secs(5)).await;
    }
    let mut c = p.conn().await;
    for i in 0..20 {
        let v: Option<i64> = c.query_first(format!("SELECT SLEEP(0.01) + {i}")).await.unwrap();
        assert_eq!(v, Some(i));
    }
    for _ in 0..3 {
        c.query_drop("SELECT SLEEP(0.2)").await.unwrap();
    }
    assert!(c.query_drop("SELECT * FROM no_such_table_obs").await.is_err());
    let t = harness::table("obs");
    c.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY)")).await.unwrap();
    c.query_drop(format!("INSERT INTO {t} VALUES (1), (2), (3)")).await.unwrap();
    for i in 0..5 {
        let v: Option<i64> = c.exec_first("SELECT ? * 2", (i,)).await.unwrap();
        assert_eq!(v, Some(i * 2));
    }
    let port = p.admin_sql_port().await;
    let (ok, out, err) = admin_cli(port, "ops", "ops_pw", "SHOW SLUICE DIGESTS ORDER BY count DESC");
    assert!(ok, "{err}");
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    let find = |fp: &str| rows.iter().find(|r| r[0] == fp).unwrap_or_else(|| panic!("no row for {fp}:\n{out}"));
    let num = |r: &Vec<&str>, i: usize| r[i].parse::<u64>().unwrap_or_else(|_| panic!("column {i} of {r:?}"));
    let fast = find("select sleep(?) + ?");
    assert_eq!((fast[1], fast[2], fast[4]), ("app", "sluice_test", "replica"), "{fast:?}");
    assert_eq!(num(fast, 5), 20, "count");
    assert_eq!(num(fast, 6), 0, "errors");
    assert_eq!(num(fast, 7), 20, "rows sent");
    let (p50, p99, max) = (num(fast, 13), num(fast, 15), num(fast, 11));
    assert!((10_000..200_000).contains(&p50), "p50 {p50} µs for 10 ms sleeps");
    // Percentiles come from one-significant-digit buckets (reported at a bucket's top, up to
    // 1/16 above the value), the maximum is exact.
    assert!(p50 <= p99 && p99 as f64 <= max as f64 * 1.13, "p50 {p50} p99 {p99} max {max}");
    let slow = find("select sleep(?)");
    assert_eq!(num(slow, 5), 3);
    assert!(num(slow, 13) >= 190_000, "p50 of 200 ms sleeps: {slow:?}");
    let missing = find("select * from no_such_table_obs");
    assert_eq!((num(missing, 5), num(missing, 6)), (1, 1), "the error is counted");
    let insert =
        rows.iter().find(|r| r[0].starts_with("insert into") && r[0].ends_with("values(?+)")).expect("insert row");
    assert_eq!((insert[4], num(insert, 8)), ("primary", 3), "rows affected: {insert:?}");
    // Right after the session's INSERT, read-your-writes may keep an execute on the primary
    // until a replica has it: the fingerprint's rows by destination add up to the five.
    let prepared: u64 = rows.iter().filter(|r| r[0] == "select ? * ?").map(|r| num(r, 5)).sum();
    assert_eq!(prepared, 5, "prepared executes count under their statement's fingerprint");
    // The slow log: one JSON line per statement past 150 ms.
    let deadline = Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let text = std::fs::read_to_string(&slow_log).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let sleeps = lines.iter().filter(|l| l["fingerprint"] == "select sleep(?)").count();
        if sleeps >= 3 || Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // On a loaded machine another statement may pass 150 ms too; each line must be slow.
    for l in &lines {
        assert!(l["duration_ms"].as_f64().unwrap() >= 150.0, "{l}");
    }
    let sleeps: Vec<_> = lines.iter().filter(|l| l["fingerprint"] == "select sleep(?)").collect();
    assert_eq!(sleeps.len(), 3, "{lines:?}");
    for l in sleeps {
        assert_eq!(l["fingerprint"], "select sleep(?)");
        assert_eq!(l["statement"], "SELECT SLEEP(0.2)");
        assert!(l["duration_ms"].as_f64().unwrap() >= 190.0, "{l}");
        assert_eq!(l["user"], "app");
        assert!(l["backend"].as_str().is_some_and(|b| b.starts_with("127.0.0.1:")), "{l}");
    }
    assert_eq!(p.shared.metrics.slow_statements.get(), lines.len() as u64);
    // PyMySQL: typed columns; the read role may look but not act.
    let (ok, out, err) = python("pymysql_admin.py", &[&port.to_string(), "viewer", "view_pw"]);
    assert!(ok, "{err}");
    assert!(out.contains("backends") && out.contains("typed") && out.contains("pause refused 1227"), "{out}");
    assert!(!p.shared.pause.is_paused());
    // /metrics: the top fingerprints, bounded.
    let (_, metrics) = p.http_get("/metrics").await;
    assert!(metrics.contains("sluice_digest_statements_total{fingerprint=\"select sleep(?) + ?\""), "{metrics}");
    c.query_drop(format!("DROP TABLE {t}")).await.unwrap();
    let _ = std::fs::remove_file(&slow_log);
}

/// Logins: the admin accounts only; the proxy's users and wrong passwords get 1045.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_interface_has_its_own_accounts() {
    let p = harness::start_with(observed(std::path::Path::new("/dev/null"))).await;
    let port = p.admin_sql_port().await;
    for (user, pw) in [("ops", "wrong"), ("app", "app_pw"), ("nobody", "x")] {
        let (ok, _, err) = admin_cli(port, user, pw, "SHOW SLUICE VERSION");
        assert!(!ok && err.contains("ERROR 1045"), "{user}: {err}");
    }
    let (ok, out, err) = admin_cli(port, "ops", "ops_pw", "SHOW SLUICE VERSION");
    assert!(ok, "{err}");
    assert!(out.starts_with("sluice\t"), "{out}");
    let (ok, _, err) = admin_cli(port, "ops", "ops_pw", "DROP TABLE x");
    assert!(!ok && err.contains("ERROR 1064") && err.contains("not a Sluice admin statement"), "{err}");
    // The live config, secrets masked.
    let (ok, out, err) = admin_cli(port, "ops", "ops_pw", "SHOW SLUICE CONFIG");
    assert!(ok, "{err}");
    assert!(out.contains("users[0].password\t****") && !out.contains("app_pw") && !out.contains("ops_pw"), "{out}");
    assert!(out.contains("proxy.listen\t\"127.0.0.1:6033\""), "{out}");
}

/// The actions: drain a replica (no reads reach it, it shows in /status, a reload keeps it
/// drained) and enable it; pause and resume statements; kill a session's statement, seen in
/// SHOW SLUICE CLIENTS first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_admin_actions_drain_pause_kill_and_reload() {
    let dir = std::env::temp_dir().join(format!("sluice-admin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("sluice.toml");
    std::fs::write(&file, harness::config_text(observed(std::path::Path::new("/dev/null")))).unwrap();
    let p = harness::start_file(&file).await;
    let port = p.admin_sql_port().await;
    let ops = |sql: &str| {
        let (ok, out, err) = admin_cli(port, "ops", "ops_pw", sql);
        assert!(ok, "{sql}: {err}");
        out
    };
    let r0 = harness::replica_ports()[0];
    let addr = format!("127.0.0.1:{r0}");
    p.until_eligible(&addr, true, Duration::from_secs(5)).await;
    ops(&format!("SLUICE BACKEND '{addr}' DRAIN"));
    let (ok, _, err) = admin_cli(port, "viewer", "view_pw", &format!("SLUICE BACKEND '{addr}' ENABLE"));
    assert!(!ok && err.contains("ERROR 1227"), "the read role cannot act: {err}");
    assert_eq!(p.backend_status(&addr).await["drained"], true);
    ops("SLUICE RELOAD");
    assert_eq!(p.backend_status(&addr).await["drained"], true, "a reload keeps the drain");
    let mut direct = harness::direct(r0).await;
    let before = harness::status_counter(&mut direct, "Com_select").await;
    let mut c = p.conn().await;
    for i in 0..40 {
        let v: Option<i64> = c.query_first(format!("SELECT {i}")).await.unwrap();
        assert_eq!(v, Some(i));
    }
    assert_eq!(harness::status_counter(&mut direct, "Com_select").await, before, "a drained replica got reads");
    let backends = ops("SHOW SLUICE BACKENDS");
    let row = backends.lines().find(|l| l.contains(&addr)).unwrap();
    assert_eq!(row.split('\t').nth(9), Some("1"), "drained column: {row}");
    ops(&format!("SLUICE BACKEND '{addr}' ENABLE"));
    let mut back = false;
    for i in 0..200 {
        let _: Option<i64> = c.query_first(format!("SELECT {i}")).await.unwrap();
        if harness::status_counter(&mut direct, "Com_select").await > before {
            back = true;
            break;
        }
    }
    assert!(back, "the enabled replica got no reads");
    // Pause: a statement waits until RESUME.
    ops("SLUICE PAUSE");
    let started = Instant::now();
    let waiting = tokio::spawn(async move {
        let v: Option<i64> = c.query_first("SELECT 5").await.unwrap();
        (v, started.elapsed(), c)
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!waiting.is_finished(), "a statement ran while paused");
    ops("SLUICE RESUME");
    let (v, took, mut c) = waiting.await.unwrap();
    assert_eq!(v, Some(5));
    assert!(took >= Duration::from_millis(380), "released after {took:?}");
    // A long statement shows in SHOW SLUICE CLIENTS; SLUICE KILL QUERY stops it.
    let id: Option<u32> = c.query_first("SELECT CONNECTION_ID()").await.unwrap();
    let id = id.unwrap();
    let sleeper = tokio::spawn(async move { c.query_drop("SELECT SLEEP(5)").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let clients = ops("SHOW SLUICE CLIENTS");
    let row = clients.lines().find(|l| l.starts_with(&format!("{id}\t"))).unwrap_or_else(|| panic!("{clients}"));
    let cols: Vec<&str> = row.split('\t').collect();
    assert_eq!((cols[1], cols[4], cols[6]), ("app", "statement", "SELECT SLEEP(5)"), "{row}");
    assert!(cols[7].parse::<u64>().unwrap() >= 200, "{row}");
    let killed_at = Instant::now();
    ops(&format!("SLUICE KILL QUERY {id}"));
    let e = sleeper.await.unwrap().expect_err("killed");
    assert_eq!(harness::code(&e), 1317, "{e}");
    assert!(killed_at.elapsed() < Duration::from_secs(2));
    let (ok, _, err) = admin_cli(port, "ops", "ops_pw", "SLUICE KILL 999999");
    assert!(!ok && err.contains("ERROR 1094"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
