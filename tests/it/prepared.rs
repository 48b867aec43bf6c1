//! Prepared statements through the binary protocol.

use crate::harness::{self, run, table};
use mysql_async::prelude::*;
use mysql_async::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_common_type_round_trips() {
    let p = harness::start().await;
    let mut c = p.conn().await;
    let t = table("types");
    run(
        &mut c,
        &format!(
            "CREATE TABLE {t} (id INT PRIMARY KEY, ti TINYINT, si SMALLINT, bi BIGINT, ub BIGINT UNSIGNED, \
             de DECIMAL(20,6), db DOUBLE, fl FLOAT, s VARCHAR(50), tx TEXT, d DATE, dt DATETIME(6), \
             tm TIME, n INT NULL)"
        ),
    )
    .await;
    let ins = format!("INSERT INTO {t} VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    let params: Vec<Value> = vec![
        1.into(),
        Value::Int(-128),
        Value::Int(-32768),
        Value::Int(i64::MIN),
        Value::UInt(u64::MAX),
        Value::Bytes(b"12345678901234.567890".to_vec()),
        Value::Double(1234.567890123),
        Value::Float(1.5),
        Value::Bytes("héllo wörld".as_bytes().to_vec()),
        Value::Bytes(vec![b'z'; 10_000]),
        Value::Date(2024, 2, 29, 0, 0, 0, 0),
        Value::Date(2026, 11, 23, 21, 8, 42, 123456),
        Value::Time(true, 0, 12, 34, 56, 0),
        Value::NULL,
    ];
    c.exec_drop(&ins, params).await.unwrap();
    let row: mysql_async::Row = c
        .exec_first(format!("SELECT ti, si, bi, ub, de, db, fl, s, tx, d, dt, tm, n FROM {t} WHERE id = ?"), (1,))
        .await
        .unwrap()
        .unwrap();
    let ti: i8 = row.get(0).unwrap();
    let si: i16 = row.get(1).unwrap();
    let bi: i64 = row.get(2).unwrap();
    let ub: u64 = row.get(3).unwrap();
    let de: String = row.get(4).unwrap();
    let db: f64 = row.get(5).unwrap();
    let fl: f32 = row.get(6).unwrap();
    let s: String = row.get(7).unwrap();
    let tx: String = row.get(8).unwrap();
    assert_eq!((ti, si, bi, ub), (-128, -32768, i64::MIN, u64::MAX));
    assert_eq!(de, "12345678901234.567890");
    assert_eq!(db, 1234.567890123);
    assert_eq!(fl, 1.5);
    assert_eq!(s, "héllo wörld");
    assert_eq!(tx.len(), 10_000);
    assert_eq!(row.as_ref(9), Some(&Value::Date(2024, 2, 29, 0, 0, 0, 0)));
    assert_eq!(row.as_ref(10), Some(&Value::Date(2026, 11, 23, 21, 8, 42, 123456)));
    assert_eq!(row.as_ref(11), Some(&Value::Time(true, 0, 12, 34, 56, 0)));
    assert_eq!(row.as_ref(12), Some(&Value::NULL));
    run(&mut c, &format!("DROP TABLE {t}")).await;
}

/// A statement prepared after an INSERT that ran on another pooled connection still sees the
/// session's LAST_INSERT_ID() through the binary protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_insert_id_through_binary_protocol() {
    let p = harness::start_with(|t| t.replace("max_size = 64", "max_size = 3")).await;
    let t = table("plii");
    let mut a = p.conn().await;
    let mut b = p.conn().await;
    run(&mut a, &format!("CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")).await;
    run(&mut a, &format!("INSERT INTO {t} (v) VALUES (1),(1),(1)")).await;
    let want = a.last_insert_id().unwrap();
    run(&mut b, &format!("INSERT INTO {t} (v) VALUES (2)")).await;
    let got: Option<u64> = a.exec_first("SELECT LAST_INSERT_ID()", ()).await.unwrap();
    assert_eq!(got, Some(want));
    // And after a prepared insert, the binary OK carries the id.
    a.exec_drop(format!("INSERT INTO {t} (v) VALUES (?)"), (5,)).await.unwrap();
    let id = a.last_insert_id().unwrap();
    let got: Option<u64> = a.exec_first("SELECT LAST_INSERT_ID()", ()).await.unwrap();
    assert_eq!(got, Some(id));
    run(&mut a, &format!("DROP TABLE {t}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_fetch_and_statement_reuse() {
    let p = harness::start().await;
    let mut c = p.conn().await;
    let stmt = c.prep("SELECT ? + 1").await.unwrap();
    for i in 0..20i64 {
        let v: Option<i64> = c.exec_first(&stmt, (i,)).await.unwrap();
        assert_eq!(v, Some(i + 1));
    }
    c.close(stmt).await.unwrap();
    // Unknown statement id: an error, not a hang.
    let v: Option<i64> = c.exec_first("SELECT 7", ()).await.unwrap();
    assert_eq!(v, Some(7));
}

/// Prepared statements no longer pin: 20 clients each holding an open statement share a pool of
/// two backend connections, executing concurrently, with the parameter types sent only once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_multiplex_over_a_small_pool() {
    let p = harness::start_with(|t| t.replace("max_size = 64", "max_size = 2")).await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        let mut c = p.conn().await;
        let stmt = c.prep("SELECT ? * 2 + 0 AS v, CONCAT(?, '!') AS s").await.unwrap();
        clients.push((c, stmt));
    }
    let (_, body) = p.http_get("/metrics").await;
    assert!(body.contains("sluice_sessions_pinned{reason=\"prepared_statement\"} 0"), "{body}");
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for (i, (mut c, stmt)) in clients.into_iter().enumerate() {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            for j in 0..10i64 {
                let n = i as i64 * 100 + j;
                let r: Option<(i64, String)> = c.exec_first(&stmt, (n, format!("c{i}"))).await?;
                assert_eq!(r, Some((n * 2, format!("c{i}!"))));
            }
            c.close(stmt).await?;
            Ok::<_, mysql_async::Error>(())
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("client failed");
    }
    let (in_use, idle) = p.primary_pool();
    assert!(in_use + idle <= 2, "pool grew to {}", in_use + idle);
}

/// Statements Sluice keeps prepared on a backend connection for reuse count against the
/// server's `max_prepared_stmt_count`: a client that prepares and closes many distinct
/// statements one at a time never sees ERROR 1461 because of them (Sluice closes what it keeps
/// and tries once more). Serial: it lowers a server-wide limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_prepare_and_close_past_the_servers_statement_limit() {
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            harness::root_sql(harness::primary_port(), "SET GLOBAL max_prepared_stmt_count = 16382");
        }
    }
    let p = harness::start_with(|t| {
        t.replace("max_size = 64", "max_size = 1").replace("consistency = \"session\"", "consistency = \"strong\"")
    })
    .await;
    let mut c = p.conn().await;
    harness::root_sql(harness::primary_port(), "SET GLOBAL max_prepared_stmt_count = 10");
    let _restore = Restore;
    for i in 0..30 {
        let stmt = c.prep(format!("SELECT {i} + ?")).await.unwrap_or_else(|e| panic!("statement {i}: {e}"));
        let v: Option<i64> = c.exec_first(&stmt, (1,)).await.unwrap();
        assert_eq!(v, Some(i + 1));
        c.close(stmt).await.unwrap();
    }
}

/// A prepared DDL or SHOW is closed on the backend once it ran, as the server closes it when
/// the client does: it holds what the server holds for it (a storage engine's plugin, session
/// memory), so keeping it would make `UNINSTALL PLUGIN` report the engine busy (mysql-test
/// --ps main.blackhole_plugin). A data statement stays prepared for the next session. Serial:
/// it counts the server-wide `Prepared_stmt_count`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_prepared_ddl_is_closed_on_the_backend_once_it_ran() {
    let prepared_on_primary = || {
        let out = harness::root_sql(harness::primary_port(), "SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'");
        out.split('\t').nth(1).and_then(|n| n.trim().parse::<u64>().ok()).expect("a count")
    };
    let p = harness::start_with(|t| {
        t.replace("max_size = 64", "max_size = 1").replace("consistency = \"session\"", "consistency = \"strong\"")
    })
    .await;
    let mut c = p.conn().await;
    c.query_drop("SELECT 1").await.unwrap();
    let before = prepared_on_primary();
    // The second CREATE raises note 1050 ("already exists"): SHOW WARNINGS still shows it.
    for (sql, note) in [
        ("CREATE TABLE IF NOT EXISTS it_prepared_ddl (a INT)", None),
        ("CREATE TABLE IF NOT EXISTS it_prepared_ddl (a INT)", Some(1050)),
        ("SHOW CREATE TABLE it_prepared_ddl", None),
        ("SET @it_prepared_ddl = 1", None),
        ("DROP TABLE it_prepared_ddl", None),
    ] {
        let stmt = c.prep(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        c.exec_drop(&stmt, ()).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let w: Vec<(String, u32, String)> = c.query("SHOW WARNINGS").await.unwrap();
        assert_eq!(w.first().map(|w| w.1), note, "{sql}: SHOW WARNINGS gave {w:?}");
        c.close(stmt).await.unwrap();
        c.query_drop("DO 1").await.unwrap(); // the close has reached the backend
        assert_eq!(prepared_on_primary(), before, "{sql} stays prepared on the backend");
    }
    let stmt = c.prep("SELECT ? + 1").await.unwrap();
    let v: Option<i64> = c.exec_first(&stmt, (1,)).await.unwrap();
    assert_eq!(v, Some(2));
    c.close(stmt).await.unwrap();
    c.query_drop("DO 1").await.unwrap();
    assert_eq!(prepared_on_primary(), before + 1, "a data statement is kept for the next session");
}
