//! Session state reconciled on every checkout and never leaked between clients.

use crate::harness::{self, run};
use mysql_async::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_mode_and_time_zone_do_not_leak_through_a_shared_connection() {
    // One backend connection: A and B must share it.
    let p = harness::start_with(|t| t.replace("max_size = 64", "max_size = 1")).await;
    let mut a = p.conn().await;
    let mut b = p.conn().await;
    let defaults: Option<(String, String)> =
        b.query_first("SELECT @@session.sql_mode, @@session.time_zone").await.unwrap();
    let defaults = defaults.unwrap();
    run(&mut a, "SET SESSION sql_mode = 'ANSI_QUOTES', time_zone = '+05:30'").await;
    let seen_a: Option<(String, String)> =
        a.query_first("SELECT @@session.sql_mode, @@session.time_zone").await.unwrap();
    assert_eq!(seen_a.unwrap(), ("ANSI_QUOTES".to_string(), "+05:30".to_string()));
    let seen_b: Option<(String, String)> =
        b.query_first("SELECT @@session.sql_mode, @@session.time_zone").await.unwrap();
    assert_eq!(seen_b.unwrap(), defaults, "client B saw client A's session state");
    // A keeps its own, after B used the connection.
    let again: Option<(String, String)> = a.query_first("SELECT @@sql_mode, @@time_zone").await.unwrap();
    assert_eq!(again.unwrap(), ("ANSI_QUOTES".to_string(), "+05:30".to_string()));
    assert_eq!(p.primary_pool().0 + p.primary_pool().1, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_and_charset_follow_each_client() {
    let p = harness::start_with(|t| t.replace("max_size = 64", "max_size = 1")).await;
    let mut a = p.conn().await;
    let mut b = p.conn().await;
    run(&mut a, "USE sbtest").await;
    run(&mut a, "SET NAMES latin1").await;
    let da: Option<(String, String)> = a.query_first("SELECT DATABASE(), @@character_set_client").await.unwrap();
    assert_eq!(da.unwrap(), ("sbtest".to_string(), "latin1".to_string()));
    let db: Option<(String, String)> = b.query_first("SELECT DATABASE(), @@character_set_client").await.unwrap();
    assert_eq!(db.unwrap(), ("sluice_test".to_string(), "utf8mb4".to_string()));
}

/// User variables pin the session to its connection, so they keep their values; and the pin
/// shows in the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_variables_and_temporary_tables_pin() {
    let p = harness::start_with(|t| t.replace("max_size = 64", "max_size = 4")).await;
    let mut a = p.conn().await;
    run(&mut a, "SET @x = 41").await;
    run(&mut a, "CREATE TEMPORARY TABLE tmp_pin (a INT)").await;
    let mut b = p.conn().await;
    for _ in 0..5 {
        run(&mut b, "SELECT 1").await;
    }
    let x: Option<i64> = a.query_first("SELECT @x + 1").await.unwrap();
    assert_eq!(x, Some(42));
    let n: Option<i64> = a.query_first("SELECT COUNT(*) FROM tmp_pin").await.unwrap();
    assert_eq!(n, Some(0));
    let (_, body) = p.http_get("/metrics").await;
    assert!(body.contains("sluice_sessions_pinned{reason=\"user_variable\"} 1"), "{body}");
    // B never sees A's variable.
    let bx: Option<Option<i64>> = b.query_first("SELECT @x").await.unwrap();
    assert_eq!(bx, Some(None));
}

/// 500 clients connected at once over a pool of 8: all 500 hold their connection open until
/// every one is connected, then all query at once; none errors, the pool bound holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_clients_share_a_pool_of_eight() {
    let p = harness::start_with(|t| {
        t.replace("max_size = 64", "max_size = 8").replace("acquire_timeout_ms = 3000", "acquire_timeout_ms = 20000")
    })
    .await;
    let url = p.url();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(500));
    let mut tasks = Vec::new();
    for i in 0..500u64 {
        let (url, barrier) = (url.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = connect_patiently(&url).await?;
            barrier.wait().await;
            let mut sum = 0u64;
            for j in 0..4u64 {
                let v: Option<u64> = c.query_first(format!("SELECT {i} * 10 + {j}")).await?;
                sum += v.unwrap_or(0);
            }
            c.disconnect().await?;
            Ok::<u64, mysql_async::Error>(sum)
        }));
    }
    let mut peak = 0;
    let mut total = 0u64;
    for t in tasks {
        let (in_use, idle) = p.primary_pool();
        peak = peak.max(in_use + idle);
        let r = tokio::time::timeout(std::time::Duration::from_secs(90), t).await;
        let r = r.unwrap_or_else(|_| {
            let m = &p.shared.metrics;
            panic!(
                "a client hung; pool (in use, idle) = {:?}; accepted {}, open {}",
                p.primary_pool(),
                m.client_connections_total.get(),
                m.client_connections.get()
            )
        });
        total += r.unwrap().expect("client failed");
    }
    let expected: u64 = (0..500u64).map(|i| 4 * i * 10 + 6).sum();
    assert_eq!(total, expected);
    assert!(peak <= 8, "pool grew to {peak}");
    assert_eq!(p.shared.metrics.client_connections_refused.get(), 0);
    let (in_use, idle) = p.primary_pool();
    assert!(in_use + idle <= 8);
}

/// mysql_async occasionally never completes a connect when hundreds start in the same instant
/// (seen with zero sockets open for the stuck client and nothing queued at Sluice's listener),
/// so a connect that takes over 10 s is retried; Sluice's accept counter shows whether a
/// connection ever reached it.
async fn connect_patiently(url: &str) -> Result<mysql_async::Conn, mysql_async::Error> {
    let opts = mysql_async::Opts::from_url(url).unwrap();
    for _ in 0..3 {
        if let Ok(r) =
            tokio::time::timeout(std::time::Duration::from_secs(10), mysql_async::Conn::new(opts.clone())).await
        {
            return r;
        }
    }
    mysql_async::Conn::new(opts).await
}

/// A pinned session that ends hands its backend connection back only after a reset: the next
/// client on that connection sees no transaction, temporary table, user variable or variable
/// of the previous one, and the connection is reused rather than reopened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_connection_is_reset_before_reuse() {
    let p = harness::start_with(|t| t.replace("max_size = 64", "max_size = 1")).await;
    let t = harness::table("reuse");
    let mut setup = p.conn().await;
    run(&mut setup, &format!("CREATE TABLE {t} (id INT PRIMARY KEY)")).await;
    drop(setup);
    let mut a = p.conn().await;
    run(&mut a, "SET @x = 1").await;
    run(&mut a, "SET SESSION sql_mode = 'ANSI_QUOTES'").await;
    run(&mut a, "CREATE TEMPORARY TABLE tmp_reuse (a INT)").await;
    run(&mut a, "BEGIN").await;
    run(&mut a, &format!("INSERT INTO {t} VALUES (1)")).await;
    let a_conn = harness::backend_thread(&mut a, false).await;
    a.disconnect().await.unwrap();
    let mut b = p.conn().await;
    // A fresh session's plain read would go to a replica; the connection under test is the
    // primary's.
    let b_conn = harness::backend_thread(&mut b, true).await;
    assert_eq!(a_conn, b_conn, "the connection was not reused");
    let v: Option<(Option<i64>, String, i64)> =
        b.query_first(format!("SELECT @x, @@session.sql_mode, (SELECT COUNT(*) FROM {t})")).await.unwrap();
    // (User and system variables keep that read on the primary.)
    let (x, mode, rows) = v.unwrap();
    assert_eq!(x, None);
    assert_ne!(mode, "ANSI_QUOTES");
    assert_eq!(rows, 0, "the abandoned transaction was committed");
    assert!(b.query_drop("SELECT * FROM tmp_reuse").await.is_err(), "temporary table survived");
    run(&mut b, &format!("DROP TABLE {t}")).await;
}

/// SHOW WARNINGS under multiplexing: the warnings of a client's last statement, even though
/// its backend connection served another client in between (pool of 1); after an error, the
/// error; after a clean statement, nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_warnings_reports_the_sessions_own_last_statement() {
    let p = harness::start_with(|t| t.replace("max_size = 64", "max_size = 1")).await;
    let mut a = p.conn().await;
    let mut b = p.conn().await;
    let v: Option<Option<i64>> = a.query_first("/* sluice:primary */ SELECT 1/0").await.unwrap();
    assert_eq!(v, Some(None));
    run(&mut b, "/* sluice:primary */ SELECT 1").await;
    let w: Vec<(String, u32, String)> = a.query("SHOW WARNINGS").await.unwrap();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!((w[0].0.as_str(), w[0].1), ("Warning", 1365), "{w:?}");
    let n: Option<u64> = a.query_first("SELECT @@warning_count").await.unwrap();
    assert_eq!(n, Some(1));
    let e = a.query_drop("SELECT * FROM missing_table_w").await.unwrap_err();
    assert_eq!(harness::code(&e), 1146);
    let errs: Vec<(String, u32, String)> = a.query("SHOW ERRORS").await.unwrap();
    assert_eq!(errs.iter().map(|r| r.1).collect::<Vec<_>>(), vec![1146], "{errs:?}");
    run(&mut a, "/* sluice:primary */ SELECT 2").await;
    let w: Vec<(String, u32, String)> = a.query("SHOW WARNINGS").await.unwrap();
    assert!(w.is_empty(), "{w:?}");
}

/// The notes a prepare raises (a deprecated syntax) are what SHOW WARNINGS shows next, as on
/// a server, though the backend connection that prepared went on to serve another client
/// (pool of 1): mysql-test's --ps-protocol runs check them after every statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_warnings_after_a_prepare_lists_its_notes() {
    let p = harness::start_with(|t| t.replace("max_size = 64", "max_size = 1")).await;
    let mut a = p.conn().await;
    let mut b = p.conn().await;
    let stmt = a.prep("CREATE TABLE prep_note_never_made (y YEAR(2))").await.unwrap();
    run(&mut b, "/* sluice:primary */ SELECT 1").await;
    let w: Vec<(String, u32, String)> = a.query("SHOW WARNINGS").await.unwrap();
    assert_eq!(w.iter().map(|r| (r.0.as_str(), r.1)).collect::<Vec<_>>(), vec![("Note", 1287)], "{w:?}");
    assert!(w[0].2.contains("YEAR(2)"), "{w:?}");
    a.close(stmt).await.unwrap();
}

/// An exhausted pool is reported as such (the backend is up), with the pool's figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_exhaustion_says_so() {
    let p = harness::start_with(|t| {
        t.replace("max_size = 64", "max_size = 1").replace("acquire_timeout_ms = 3000", "acquire_timeout_ms = 300")
    })
    .await;
    let mut a = p.conn().await;
    let mut b = p.conn().await;
    run(&mut a, "BEGIN").await;
    run(&mut a, "SELECT 1").await;
    let e = b.query_drop("/* sluice:primary */ SELECT 2").await.expect_err("the only connection is held");
    let msg = e.to_string();
    assert!(msg.contains("pool is exhausted") && msg.contains("1 of 1 connections in use"), "{msg}");
    assert!(!msg.contains("unavailable"), "{msg}");
    run(&mut a, "COMMIT").await;
}

/// The handshake's character set is honoured for every collation MariaDB has: PyMySQL with
/// `charset='cp1251'` (and koi8r, latin2) writes and reads Cyrillic / Central European text
/// through Sluice as it would directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_character_sets_beyond_utf8_and_latin1() {
    let p = harness::start().await;
    let t = harness::table("cs");
    let script = format!(
        r#"
import pymysql
for cs, coll, text in [("cp1251", "cp1251_general_ci", "Привет"), ("koi8r", "koi8r_general_ci", "Мир"), ("latin2", "latin2_general_ci", "Żółć")]:
    c = pymysql.connect(host="127.0.0.1", port={port}, user="app", password="app_pw", database="sluice_test", charset=cs, autocommit=True)
    cur = c.cursor()
    cur.execute("SELECT @@character_set_client, @@collation_connection")
    got = cur.fetchone()
    assert got == (cs, coll), (cs, got)
    cur.execute("CREATE TABLE IF NOT EXISTS {t} (cs VARCHAR(10), v VARCHAR(20)) CHARSET utf8mb4")
    cur.execute("INSERT INTO {t} VALUES (%s, %s)", (cs, text))
    cur.execute("SELECT /* sluice:primary */ v FROM {t} WHERE cs = %s", (cs,))
    back = cur.fetchone()[0]
    assert back == text, (cs, back)
    c.close()
c = pymysql.connect(host="127.0.0.1", port={port}, user="app", password="app_pw", database="sluice_test")
c.cursor().execute("DROP TABLE {t}")
print("ALL OK")
"#,
        port = p.addr.port()
    );
    let out = std::process::Command::new("python3").arg("-c").arg(&script).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ALL OK"), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    // The mariadb CLI sets its character set in the handshake only (no SET NAMES).
    for (cs, coll) in [("cp1251", "cp1251_general_ci"), ("koi8r", "koi8r_general_ci"), ("sjis", "sjis_japanese_ci")] {
        let out = std::process::Command::new("mariadb")
            .args(["--no-defaults", "-h127.0.0.1", &format!("-P{}", p.addr.port()), "-uapp", "-papp_pw", "-N", "-B"])
            .arg(format!("--default-character-set={cs}"))
            .args(["-e", "SELECT @@character_set_client, @@collation_connection"])
            .output()
            .unwrap();
        let got = String::from_utf8_lossy(&out.stdout);
        assert_eq!(got.trim(), format!("{cs}\t{coll}"), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

/// A session's own `SET wait_timeout = 1` is honoured: idle past it, the client connection is
/// closed (as a server would); a session without it stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sessions_own_wait_timeout_closes_it_when_idle() {
    let p = harness::start().await;
    let mut a = p.conn().await;
    let mut b = p.conn().await;
    run(&mut a, "SET SESSION wait_timeout = 1").await;
    let seen: Option<u64> = a.query_first("SELECT @@session.wait_timeout").await.unwrap();
    assert_eq!(seen, Some(1));
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert!(a.query_drop("SELECT 1").await.is_err(), "the idle session was not closed");
    let one: Option<i64> = b.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "a session without wait_timeout stays");
}

/// `SET GLOBAL` through Sluice reaches new client sessions: pooled connections opened before
/// it (which carry the old globals as session values) are reset at their next checkout.
/// Serial: it changes a server-wide setting (and restores it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_set_global_reaches_new_sessions() {
    struct Restore(String);
    impl Drop for Restore {
        fn drop(&mut self) {
            harness::root_sql(harness::primary_port(), &format!("SET GLOBAL sql_mode = '{}'", self.0));
        }
    }
    let port = harness::primary_port();
    harness::root_sql(
        port,
        "CREATE USER IF NOT EXISTS 'sluice_dba'@'%' IDENTIFIED BY 'dba_pw'; GRANT SUPER, SELECT ON *.* TO 'sluice_dba'@'%'",
    );
    let before = harness::root_sql(port, "SELECT @@global.sql_mode");
    let _restore = Restore(before.clone());
    let p = harness::start_with(|t| {
        t.replace("max_size = 64", "max_size = 1").replace("consistency = \"session\"", "consistency = \"strong\"").replace(
            "[monitor]",
            "[[users]]\nname = \"dba\"\npassword = \"dba_pw\"\nbackend_user = \"sluice_dba\"\nbackend_password = \"dba_pw\"\n\n[monitor]",
        )
    })
    .await;
    let mut a = p.conn().await;
    let seen: String = a.query_first("SELECT @@session.sql_mode").await.unwrap().unwrap();
    assert_eq!(seen, before);
    drop(a);
    let url = format!("mysql://dba:dba_pw@127.0.0.1:{}/sluice_test?prefer_socket=false", p.addr.port());
    let mut dba = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap()).await.unwrap();
    run(&mut dba, "SET GLOBAL sql_mode = 'ANSI_QUOTES'").await;
    let mut b = p.conn().await;
    let seen: String = b.query_first("SELECT @@session.sql_mode").await.unwrap().unwrap();
    assert_eq!(seen, "ANSI_QUOTES", "a new session kept the pooled connection's old globals");
}

/// `SET optimizer_trace='enabled=on'` keeps the session on its connection: the trace of the
/// statements that follow lives there, and `information_schema.OPTIMIZER_TRACE` (a read,
/// which would otherwise go to a replica or another pooled connection) shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimizer_trace_is_read_where_it_was_recorded() {
    let p = harness::start().await;
    let mut c = p.conn().await;
    run(&mut c, "SET optimizer_trace = 'enabled=on'").await;
    run(&mut c, "SELECT 4242 + 1 AS traced").await;
    let q: Option<String> = c.query_first("SELECT QUERY FROM information_schema.OPTIMIZER_TRACE").await.unwrap();
    assert!(q.as_deref().is_some_and(|q| q.contains("4242")), "trace read elsewhere: {q:?}");
}

/// `SET profiling = 1` keeps the session on its connection, where the history SHOW PROFILES
/// lists is kept: with other clients on the pool and replicas to read from, the list holds
/// the session's own statements (before, each read could land on another connection and
/// SHOW PROFILES listed whatever that one had).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiling_is_read_where_it_was_recorded() {
    let p = harness::start().await;
    let mut c = p.conn().await;
    let mut others = Vec::new();
    for _ in 0..4 {
        others.push(p.conn().await);
    }
    run(&mut c, "SET profiling = 1").await;
    for i in 0..6 {
        run(&mut c, &format!("SELECT {} + 1 AS profiled", 7700 + i)).await;
        for o in others.iter_mut() {
            run(o, "SELECT 1").await;
        }
    }
    let listed: Vec<(u32, f64, String)> = c.query("SHOW PROFILES").await.unwrap();
    let ours = listed.iter().filter(|(_, _, q)| q.contains("AS profiled")).count();
    assert_eq!(ours, 6, "{listed:?}");
}

/// A session that drops its own current database has none afterwards, as on a server:
/// `SELECT DATABASE()` is NULL, a statement without tables runs, one with an unqualified table
/// gets 1046 — also while other clients hold the pooled connections it could have moved to
/// (a pooled connection cannot unselect its schema, so the session stays on its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_current_database_leaves_the_session_without_one() {
    let p = harness::start().await;
    let db = harness::table("dropme");
    let mut c = p.conn().await;
    run(&mut c, &format!("CREATE DATABASE {db}")).await;
    run(&mut c, &format!("USE {db}")).await;
    run(&mut c, &format!("DROP DATABASE {db}")).await;
    let mut others = Vec::new();
    for _ in 0..3 {
        let mut o = p.conn().await;
        others.push(tokio::spawn(async move { o.query_drop("SELECT SLEEP(0.6)").await.map(|_| o) }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let none: Option<Option<String>> = c.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(none, Some(None));
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    let e = c.query_drop("CREATE TEMPORARY TABLE x (a INT)").await.unwrap_err();
    assert_eq!(harness::code(&e), 1046, "{e}");
    for o in others {
        o.await.unwrap().unwrap();
    }
}

/// After an error, SHOW WARNINGS lists what the server's does: the warnings the statement
/// raised before it failed as well as the error (an ERR packet carries no count), side by
/// side with a direct connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_warnings_after_an_error_lists_the_warnings_before_it() {
    let p = harness::start().await;
    let t = harness::table("warnerr");
    let mut setup = p.conn().await;
    run(&mut setup, &format!("CREATE TABLE {t} (id INT PRIMARY KEY, v INT)")).await;
    type Row = (String, u32, String);
    async fn after_failed_insert(c: &mut mysql_async::Conn, t: &str) -> (Vec<Row>, Option<u64>) {
        run(c, "SET SESSION sql_mode = ''").await;
        let e = c.query_drop(format!("INSERT INTO {t} (id, v) VALUES (1, 'abc'), (1, 'd')")).await.unwrap_err();
        assert_eq!(harness::code(&e), 1062, "{e}");
        let list: Vec<Row> = c.query("SHOW WARNINGS").await.unwrap();
        let n: Option<u64> = c.query_first("SHOW COUNT(*) WARNINGS").await.unwrap();
        (list, n)
    }
    let direct = after_failed_insert(&mut harness::direct(harness::primary_port()).await, &t).await;
    let through = after_failed_insert(&mut p.conn().await, &t).await;
    assert_eq!(direct.0.len(), 3, "{direct:?}");
    assert_eq!(through, direct);
    run(&mut setup, &format!("DROP TABLE {t}")).await;
}

/// `SET NAMES` changes `collation_connection` without session tracking reporting it: every
/// later statement, wherever it is served (replicas under `session` consistency), reads what
/// the server directly would. MariaDB's mysql-test (ddl_i18n_utf8) found routines recording
/// latin1_swedish_ci after `SET NAMES utf8`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_names_collation_reads_back_as_on_the_server() {
    let p = harness::start().await;
    let mut c = p.conn().await;
    let mut direct = harness::direct(harness::primary_port()).await;
    for set in [
        "SET NAMES utf8",
        "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci",
        "SET NAMES latin1",
        "SET CHARACTER SET utf8",
        "SET collation_connection = utf8mb4_bin",
        "SET @@character_set_connection = latin1",
    ] {
        run(&mut c, set).await;
        run(&mut direct, set).await;
        let q = "SELECT @@character_set_client, @@character_set_connection, @@collation_connection";
        let want: (String, String, String) = direct.query_first(q).await.unwrap().unwrap();
        for i in 0..10 {
            let got: (String, String, String) = c.query_first(q).await.unwrap().unwrap();
            assert_eq!(got, want, "read {i} after {set}");
        }
    }
}

/// FOUND_ROWS() after `INSERT ... SELECT` counts the rows its SELECT found, as on the server
/// (mysql-test's main.select: Sluice answered the earlier SELECT's count).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn found_rows_after_insert_select_is_the_servers() {
    let p = harness::start().await;
    let mut c = p.conn().await;
    let t = harness::table("found_rows");
    run(&mut c, &format!("CREATE TABLE {t} (a INT, b INT)")).await;
    let insert = format!("INSERT INTO {t} SELECT 50, 3 FROM DUAL WHERE NOT EXISTS (SELECT * FROM {t} WHERE a = 50)");
    run(&mut c, &insert).await;
    let rows: Vec<(i64, i64)> = c.query(format!("SELECT * FROM {t}")).await.unwrap();
    assert_eq!(rows.len(), 1);
    run(&mut c, &insert).await;
    let n: u64 = c.query_first("SELECT FOUND_ROWS()").await.unwrap().unwrap();
    assert_eq!(n, 0, "the second INSERT ... SELECT found no row");
    run(&mut c, &format!("INSERT INTO {t} SELECT a + 1, b FROM {t}")).await;
    let n: u64 = c.query_first("SELECT FOUND_ROWS()").await.unwrap().unwrap();
    assert_eq!(n, 1);
    run(&mut c, &format!("DROP TABLE {t}")).await;
}

/// A database whose name is not ASCII, selected by a client whose character set is not UTF-8
/// (mysql-test's main.ctype_recoding does this in koi8r and cp1251): when the session's
/// statement lands on a pooled connection that already reads latin1 and has another schema,
/// the name is selected as the server knows it, not read again in latin1 (ERROR 1049).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_ascii_database_is_selected_again_under_a_latin1_client() {
    // Every statement on the primary's one connection.
    let p = harness::start_with(|t| {
        t.replace("max_size = 64", "max_size = 1").replace("consistency = \"session\"", "consistency = \"strong\"")
    })
    .await;
    let db = format!("{}_é", harness::table("dbname"));
    let mut a = p.conn().await;
    let mut b = p.conn().await;
    run(&mut a, "SET NAMES latin1").await;
    run(&mut b, "SET NAMES latin1").await;
    run(&mut a, &format!("CREATE DATABASE `{db}`")).await;
    run(&mut a, &format!("USE `{db}`")).await;
    // B moves the one connection to its own schema, still in latin1.
    let one: Option<i64> = b.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    let seen: Result<Option<(String, String)>, _> = a.query_first("SELECT DATABASE(), @@character_set_client").await;
    let seen = seen.map_err(|e| format!("{e}"));
    let bseen: Option<String> = b.query_first("SELECT DATABASE()").await.unwrap();
    run(&mut b, &format!("DROP DATABASE `{db}`")).await;
    assert_eq!(seen, Ok(Some((db.clone(), "latin1".to_string()))));
    assert_eq!(bseen.as_deref(), Some("sluice_test"));
    assert_eq!(p.primary_pool().0 + p.primary_pool().1, 1);
}

/// `SET max_join_size = n` also sets `sql_big_selects = 0` on the server, unreported: the
/// session's next statement on another pooled connection must be refused with ERROR 1104 as
/// on a server, not answered because the replayed state still said `sql_big_selects = 1`
/// (mysql-test's main.select_safe).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_join_size_takes_sql_big_selects_with_it_on_every_connection() {
    let p = harness::start_with(|t| {
        t.replace("max_size = 64", "max_size = 1").replace("consistency = \"session\"", "consistency = \"strong\"")
    })
    .await;
    let t = harness::table("bigsel");
    let mut a = p.conn().await;
    let mut b = p.conn().await;
    run(&mut a, &format!("CREATE TABLE {t} (a INT PRIMARY KEY)")).await;
    run(&mut a, &format!("INSERT INTO {t} VALUES (1), (2), (3), (4), (5), (6)")).await;
    run(&mut a, "SET SQL_BIG_SELECTS = 1").await;
    run(&mut a, "SET MAX_JOIN_SIZE = 2").await;
    // B moves the one connection to its own state and back.
    let one: Option<i64> = b.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    let vars: Option<(u64, u64)> = a.query_first("SELECT @@max_join_size, @@sql_big_selects").await.unwrap();
    let refused = a.query_drop(format!("SELECT * FROM {t}")).await.map_err(|e| harness::code(&e));
    run(&mut b, &format!("DROP TABLE {t}")).await;
    assert_eq!(vars, Some((2, 0)));
    assert_eq!(refused, Err(1104));
}

/// `FOUND_ROWS()` after a read with an offset and no `SQL_CALC_FOUND_ROWS` is the server's
/// answer: the skipped rows count, and after an empty page it is how many rows matched
/// (mysql-test's main.select_found). Side by side with a direct connection, each statement as
/// text and prepared, with another client's read in between on the two pooled connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn found_rows_after_an_offset_is_the_servers() {
    let p = harness::start_with(|t| t.replace("max_size = 64", "max_size = 2")).await;
    let t = harness::table("found");
    let mut direct = harness::direct(harness::primary_port()).await;
    run(&mut direct, &format!("CREATE TABLE {t} (a INT, b INT, KEY (a))")).await;
    run(&mut direct, &format!("INSERT INTO {t} SELECT seq % 7, seq FROM seq_1_to_100")).await;
    harness::replicas_caught_up();
    let mut proxied = p.conn().await;
    let mut other = p.conn().await;
    let cases: [(&str, Vec<u64>); 12] = [
        ("SELECT b FROM {t} LIMIT 2, 3", vec![]),
        ("SELECT b FROM {t} ORDER BY b DESC LIMIT 3 OFFSET 5", vec![]),
        ("SELECT a FROM {t} GROUP BY a LIMIT 5, 10", vec![]),
        ("SELECT b FROM {t} WHERE b > 98 LIMIT 5, 1", vec![]),
        ("SELECT b FROM {t} ORDER BY b OFFSET 3 ROWS FETCH FIRST 2 ROWS ONLY", vec![]),
        ("SELECT b FROM {t} UNION ALL SELECT b FROM {t} LIMIT 2, 3", vec![]),
        ("(SELECT b FROM {t} LIMIT 3, 1)", vec![]),
        ("SELECT * FROM (SELECT b FROM {t} LIMIT 5, 10) d", vec![]),
        ("SELECT b FROM {t} LIMIT 10", vec![]),
        ("SELECT b FROM {t} LIMIT ?, ?", vec![4, 2]),
        ("SELECT b FROM {t} WHERE a = ? LIMIT 40, 3", vec![2]),
        ("SELECT b FROM {t} LIMIT 3 OFFSET ?", vec![200]),
    ];
    for (shape, params) in &cases {
        let sql = shape.replace("{t}", &t);
        for prepared in [false, true] {
            if !prepared && !params.is_empty() {
                continue;
            }
            let want = sent_and_found(&mut direct, &sql, params, prepared, None).await;
            let got = sent_and_found(&mut proxied, &sql, params, prepared, Some(&mut other)).await;
            assert_eq!(
                got, want,
                "{sql} (prepared: {prepared}): rows sent and FOUND_ROWS() through Sluice vs directly"
            );
        }
    }
    run(&mut direct, &format!("DROP TABLE {t}")).await;
}

/// Runs `sql` on `c`, then (if given) a read of another client, then `SELECT FOUND_ROWS()`.
async fn sent_and_found(
    c: &mut mysql_async::Conn,
    sql: &str,
    params: &[u64],
    prepared: bool,
    between: Option<&mut mysql_async::Conn>,
) -> (usize, u64) {
    let rows: Vec<mysql_async::Row> = if prepared {
        c.exec(sql, mysql_async::Params::Positional(params.iter().map(|v| (*v).into()).collect())).await
    } else {
        c.query(sql).await
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
    if let Some(o) = between {
        let _: Vec<u64> = o.query("SELECT seq FROM seq_1_to_3").await.unwrap();
    }
    let found: Option<u64> = c.query_first("SELECT FOUND_ROWS()").await.unwrap();
    (rows.len(), found.unwrap())
}
