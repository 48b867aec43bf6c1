//! Packets over 16 MiB and long results, relayed without buffering whole results.

use crate::harness::{self, run, table};
use mysql_async::prelude::*;

async fn blob_round_trip(size: usize) {
    let p = harness::start().await;
    let mut c = p.conn().await;
    let t = table("blob");
    run(&mut c, &format!("CREATE TABLE {t} (id INT PRIMARY KEY, b LONGBLOB)")).await;
    let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    // Binary protocol insert (the blob travels in a > 16 MiB COM_STMT_EXECUTE for 20 MiB)...
    c.exec_drop(format!("INSERT INTO {t} VALUES (?, ?)"), (1, data.clone())).await.unwrap();
    // ...and back through the text protocol: a row split over several frames.
    let got: Option<Vec<u8>> = c.query_first(format!("SELECT b FROM {t} WHERE id = 1")).await.unwrap();
    assert_eq!(got.as_ref().map(|g| g.len()), Some(size));
    assert!(got.unwrap() == data, "blob of {size} bytes changed on the way");
    // Text-protocol insert of the same size (hex literal doubles it: > 16 MiB COM_QUERY for 20 MiB).
    let hex: String = data.iter().take(size / 2).map(|b| format!("{b:02x}")).collect();
    run(&mut c, &format!("INSERT INTO {t} VALUES (2, x'{hex}')")).await;
    let len: Option<u64> = c.query_first(format!("SELECT LENGTH(b) FROM {t} WHERE id = 2")).await.unwrap();
    assert_eq!(len, Some((size / 2) as u64));
    run(&mut c, &format!("DROP TABLE {t}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_4_mib_round_trip() {
    blob_round_trip(4 << 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_20_mib_round_trip() {
    blob_round_trip(20 << 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_row_result() {
    let p = harness::start().await;
    let mut c = p.conn().await;
    let sql = "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 100000) \
               SELECT n, CONCAT('row-', n) FROM s";
    run(&mut c, "SET SESSION max_recursive_iterations = 200000").await;
    let rows: Vec<(u64, String)> = c.query(sql).await.unwrap();
    assert_eq!(rows.len(), 100_000);
    assert_eq!(rows[99_999], (100_000, "row-100000".to_string()));
    let sum: u64 = rows.iter().map(|r| r.0).sum();
    assert_eq!(sum, 100_000 * 100_001 / 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_client_packet_gets_error_1153() {
    let p = harness::start_with(|t| {
        t.replace("max_client_connections = 10000", "max_client_connections = 10000\nmax_allowed_packet = 1048576")
    })
    .await;
    let mut c = p.conn().await;
    let big = "x".repeat(2 << 20);
    let e = c.query_drop(format!("SELECT '{big}'")).await.unwrap_err();
    match e {
        mysql_async::Error::Server(s) => assert_eq!(s.code, 1153),
        // The proxy closes right after the error; a driver may report the closed socket.
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => {}
        other => panic!("unexpected {other:?}"),
    }
    // Others are unaffected.
    let mut d = p.conn().await;
    let v: Option<i64> = d.query_first("SELECT 5").await.unwrap();
    assert_eq!(v, Some(5));
}

/// A 3 MiB statement of short tokens that the fast path does not classify used to be fully
/// tokenised and parsed by sqlparser (about 510 times its size in memory, seconds of an async
/// worker). It is routed without a full parse now: the server answers, memory stays bounded,
/// and another session's ping is not held up. (Serial: it measures this process's RSS.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_a_huge_unparsed_statement_costs_no_parse() {
    let p = harness::start().await;
    let mut c = p.conn().await;
    let mut other = p.conn().await;
    let sql = format!("(SELECT 1 FROM DUAL WHERE 2 IN ({}2))", "1,".repeat(1_600_000));
    assert!(sql.len() > 3 << 20);
    let before = harness::rss_kib();
    let started = std::time::Instant::now();
    let pinger = tokio::spawn(async move {
        let mut worst = std::time::Duration::ZERO;
        for _ in 0..20 {
            let t = std::time::Instant::now();
            other.ping().await.unwrap();
            worst = worst.max(t.elapsed());
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        worst
    });
    // Whatever the server says of 1.6 million IN items, Sluice relays it.
    match c.query_drop(&sql).await {
        Err(mysql_async::Error::Server(_)) | Ok(()) => {}
        Err(e) => panic!("{e}"),
    }
    let took = started.elapsed();
    let grown_mib = harness::rss_kib().saturating_sub(before) / 1024;
    let worst_ping = pinger.await.unwrap();
    eprintln!("3 MiB unparsed statement: {took:?}, RSS +{grown_mib} MiB, worst ping {worst_ping:?}");
    // The statement itself passes through a few buffers (client read, backend write).
    assert!(grown_mib < 48, "RSS grew by {grown_mib} MiB");
    assert!(worst_ping < std::time::Duration::from_millis(500), "ping took {worst_ping:?}");
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}
