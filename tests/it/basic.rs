//! Queries, multi-statements, errors and per-session values through the proxy.

use crate::harness::{self, code, run, table};
use mysql_async::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_queries_and_multi_statement_results() {
    let p = harness::start().await;
    let mut c = p.conn().await;
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    let db: Option<String> = c.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(db.as_deref(), Some("sluice_test"));
    // Several result sets and an OK in one COM_QUERY.
    let mut r = c.query_iter("SELECT 1 AS a; SELECT 'x' AS b, 2 AS c; DO 1; SELECT 3").await.unwrap();
    let first: Vec<i64> = r.collect().await.unwrap();
    let second: Vec<(String, i64)> = r.collect().await.unwrap();
    let third: Vec<i64> = r.collect().await.unwrap();
    let fourth: Vec<i64> = r.collect().await.unwrap();
    assert_eq!(first, vec![1]);
    assert_eq!(second, vec![("x".to_string(), 2)]);
    assert!(third.is_empty());
    assert_eq!(fourth, vec![3]);
    drop(r);
    // The connection is still in sync afterwards.
    let v: Option<i64> = c.query_first("SELECT 42").await.unwrap();
    assert_eq!(v, Some(42));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_codes_pass_through_unchanged() {
    let p = harness::start().await;
    let mut c = p.conn().await;
    let t = table("err");
    assert_eq!(code(&c.query_drop("SELEKT 1").await.unwrap_err()), 1064);
    assert_eq!(code(&c.query_drop("SELECT * FROM no_such_table_xyz").await.unwrap_err()), 1146);
    run(&mut c, &format!("CREATE TABLE {t} (id INT PRIMARY KEY)")).await;
    run(&mut c, &format!("INSERT INTO {t} VALUES (1)")).await;
    assert_eq!(code(&c.query_drop(format!("INSERT INTO {t} VALUES (1)")).await.unwrap_err()), 1062);
    // And the session goes on.
    let n: Option<i64> = c.query_first(format!("SELECT COUNT(*) FROM {t}")).await.unwrap();
    assert_eq!(n, Some(1));
    run(&mut c, &format!("DROP TABLE {t}")).await;
}

/// LAST_INSERT_ID() and ROW_COUNT() must be this session's values even though each statement
/// may run on a different pooled connection, and another client inserts in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_insert_id_and_row_count_survive_multiplexing() {
    let p = harness::start_with(|t| t.replace("max_size = 64", "max_size = 2")).await;
    let t = table("lii");
    let mut a = p.conn().await;
    let mut b = p.conn().await;
    run(&mut a, &format!("CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")).await;
    run(&mut a, &format!("INSERT INTO {t} (v) VALUES (1)")).await;
    let a_id = a.last_insert_id().unwrap();
    for _ in 0..5 {
        run(&mut b, &format!("INSERT INTO {t} (v) VALUES (2)")).await;
    }
    let got: Option<u64> = a.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
    assert_eq!(got, Some(a_id));
    // A complex statement that uses it runs on a connection primed with the session's value.
    let got: Option<u64> = a.query_first(format!("SELECT id FROM {t} WHERE id = LAST_INSERT_ID()")).await.unwrap();
    assert_eq!(got, Some(a_id));
    run(&mut a, &format!("UPDATE {t} SET v = 9 WHERE v = 2")).await;
    run(&mut b, &format!("INSERT INTO {t} (v) VALUES (3)")).await;
    let rc: Option<i64> = a.query_first("SELECT ROW_COUNT()").await.unwrap();
    assert_eq!(rc, Some(5));
    let fr: Option<i64> = a.query_first(format!("SELECT SQL_CALC_FOUND_ROWS id FROM {t} LIMIT 1")).await.unwrap();
    assert!(fr.is_some());
    let found: Option<i64> = a.query_first("SELECT FOUND_ROWS()").await.unwrap();
    assert_eq!(found, Some(7));
    run(&mut a, &format!("DROP TABLE {t}")).await;
}

/// ROW_COUNT() after SHOW WARNINGS (which Sluice answers from the warnings it kept) is -1, as
/// after any statement with a result set: mysqltest's main.foreign_key reads it after the
/// SHOW WARNINGS it sends for a DELETE IGNORE that warned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_count_after_show_warnings_is_minus_one() {
    let p = harness::start().await;
    let mut c = p.conn().await;
    let t = table("rc_warn");
    run(&mut c, &format!("CREATE TABLE {t} (id INT PRIMARY KEY)")).await;
    run(&mut c, &format!("INSERT INTO {t} VALUES (1)")).await;
    run(&mut c, &format!("INSERT IGNORE INTO {t} VALUES (1), (2), (3)")).await;
    let n: Option<i64> = c.query_first("SELECT ROW_COUNT()").await.unwrap();
    assert_eq!(n, Some(2), "two rows inserted, one ignored");
    run(&mut c, &format!("INSERT IGNORE INTO {t} VALUES (3), (4)")).await;
    let warnings: Vec<mysql_async::Row> = c.query("SHOW WARNINGS").await.unwrap();
    assert_eq!(warnings.len(), 1, "the duplicate's warning");
    let n: Option<i64> = c.query_first("SELECT ROW_COUNT()").await.unwrap();
    assert_eq!(n, Some(-1), "ROW_COUNT() after SHOW WARNINGS");
    run(&mut c, &format!("DROP TABLE {t}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_stays_on_one_connection_and_commits() {
    let p = harness::start_with(|t| t.replace("max_size = 64", "max_size = 4")).await;
    let t = table("txn");
    let mut c = p.conn().await;
    run(&mut c, &format!("CREATE TABLE {t} (id INT PRIMARY KEY)")).await;
    run(&mut c, "BEGIN").await;
    let id1 = harness::backend_thread(&mut c, false).await;
    run(&mut c, &format!("INSERT INTO {t} VALUES (1)")).await;
    let id2 = harness::backend_thread(&mut c, false).await;
    assert_eq!(id1, id2, "a transaction moved between backend connections");
    // Another client does not see the uncommitted row (on the primary: read-your-writes does
    // not cover another session's writes).
    let mut other = p.conn().await;
    let n: Option<i64> = other.query_first(format!("/* sluice:primary */ SELECT COUNT(*) FROM {t}")).await.unwrap();
    assert_eq!(n, Some(0));
    run(&mut c, "COMMIT").await;
    let n: Option<i64> = other.query_first(format!("/* sluice:primary */ SELECT COUNT(*) FROM {t}")).await.unwrap();
    assert_eq!(n, Some(1));
    // After COMMIT the session is unpinned: its connection is back in the pool.
    assert_eq!(p.primary_pool().0, 0, "connection still held after COMMIT");
    // The row is on the primary itself.
    let mut d = harness::direct(harness::primary_port()).await;
    let n: Option<i64> = d.query_first(format!("SELECT COUNT(*) FROM {t}")).await.unwrap();
    assert_eq!(n, Some(1));
    run(&mut c, &format!("DROP TABLE {t}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_health_and_metrics() {
    let p = harness::start().await;
    let mut c = p.conn().await;
    run(&mut c, "/* sluice:primary */ SELECT 1").await;
    let (status, body) = p.http_get("/health").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = p.http_get("/metrics").await;
    assert_eq!(status, 200);
    // The hinted SELECT 1 (the driver's own `SELECT @@max_allowed_packet, ...` reads global
    // variables, which a replica answers alike).
    assert!(body.contains("sluice_queries_total{destination=\"primary\",kind=\"read\"} 1"), "{body}");
    // The connection that served SELECT 1 is idle in the primary's pool; one client is open.
    let idle = format!(
        "sluice_pool_connections{{addr=\"127.0.0.1:{}\",role=\"primary\",shard=\"main\",state=\"idle\"}} 1",
        harness::primary_port()
    );
    assert!(body.contains(&idle), "{body}");
    // One client over every open backend connection: the primary's, plus a replica's if the
    // monitor had already judged one eligible when the driver sent its start-up query.
    let open: f64 = body
        .lines()
        .filter(|l| l.starts_with("sluice_pool_connections{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!((1.0..=2.0).contains(&open), "{body}");
    let ratio = format!("sluice_clients_per_backend_connection {}", 1.0 / open);
    assert!(body.contains(&ratio), "{ratio}\n{body}");
    let (status, body) = p.http_get("/status").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["shards"][0]["name"], "main");
}

/// mysql_async with default options asks `SELECT @@max_allowed_packet, @@wait_timeout,
/// @@socket` and, for a local server, reconnects through that Unix socket; Sluice answers
/// `@@socket` with NULL, so the client stays on the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_mysql_async_options_stay_on_the_proxy() {
    let p = harness::start().await;
    let url = format!("mysql://app:app_pw@127.0.0.1:{}/sluice_test", p.addr.port());
    let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap()).await.unwrap();
    let socket: Option<Option<String>> = c.query_first("SELECT @@socket").await.unwrap();
    assert_eq!(socket, Some(None));
    let before = p.queries();
    let v: Option<i64> = c.query_first("SELECT 7").await.unwrap();
    assert_eq!(v, Some(7));
    let after = p.queries();
    assert_eq!(after, before + 1, "the query did not go through Sluice");
    assert_eq!(p.shared.metrics.client_connections.get(), 1);
}

/// An XA transaction stays on its backend connection from XA START through END and PREPARE
/// to XA COMMIT, while other clients use the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xa_transaction_stays_on_its_connection() {
    let p = harness::start_with(|t| t.replace("max_size = 64", "max_size = 3")).await;
    let t = table("xa");
    let mut a = p.conn().await;
    let mut b = p.conn().await;
    run(&mut a, &format!("CREATE TABLE {t} (id INT PRIMARY KEY)")).await;
    let xid = format!("'{t}'");
    run(&mut a, &format!("XA START {xid}")).await;
    let id1 = harness::backend_thread(&mut a, false).await;
    run(&mut a, &format!("INSERT INTO {t} VALUES (1)")).await;
    run(&mut a, &format!("XA END {xid}")).await;
    run(&mut a, &format!("XA PREPARE {xid}")).await;
    // Another client takes and holds connections meanwhile.
    run(&mut b, "BEGIN").await;
    run(&mut b, "SELECT 1").await;
    let id2 = harness::backend_thread(&mut a, false).await;
    assert_eq!(id1, id2, "the XA transaction moved to another backend connection");
    run(&mut a, &format!("XA COMMIT {xid}")).await;
    run(&mut b, "COMMIT").await;
    // `a` wrote, `b` did not: read-your-writes does not cover `b`, so it asks the primary.
    let n: Option<i64> = b.query_first(format!("/* sluice:primary */ SELECT COUNT(*) FROM {t}")).await.unwrap();
    assert_eq!(n, Some(1));
    let (_, body) = p.http_get("/metrics").await;
    assert!(body.contains("sluice_sessions_pinned{reason=\"xa\"} 0"), "{body}");
    run(&mut a, &format!("DROP TABLE {t}")).await;
}

/// A statement with non-ASCII whitespace (U+00A0) once panicked the session task in the
/// warnings recogniser, leaving the client-connection gauge counting a ghost. The client
/// gets an answer, the session lives on, and the gauge follows the clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_ascii_whitespace_gets_an_answer_and_the_gauge_follows_clients() {
    let p = harness::start().await;
    let mut c = p.conn().await;
    for sql in ["SELECT\u{a0}@@warning_count", "SHOW\u{a0}WARNINGS", "SELECT\u{2003}@@sluice_consistency"] {
        match c.query_drop(sql).await {
            Ok(()) => {}
            Err(mysql_async::Error::Server(_)) => {}
            Err(e) => panic!("{sql:?}: the connection failed: {e}"),
        }
        let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
        assert_eq!(one, Some(1), "{sql:?} broke the session");
    }
    assert_eq!(p.shared.metrics.client_connections.get(), 1);
    c.disconnect().await.unwrap();
    for _ in 0..100 {
        if p.shared.metrics.client_connections.get() == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("sluice_client_connections stayed at {}", p.shared.metrics.client_connections.get());
}
