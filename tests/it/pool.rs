//! Pooled backend connections: shared between sessions with and without a schema, and let
//! go of the way a client that ends normally does.

use crate::harness::{self, code, Proxy};
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};
use std::time::Duration;

/// A proxy whose every statement goes to the primary (`strong`), with at most `size`
/// connections to it.
async fn primary_only(size: u32) -> Proxy {
    harness::start_with(|t| {
        t.replace("max_size = 64", &format!("max_size = {size}"))
            .replace("consistency = \"session\"", "consistency = \"strong\"")
    })
    .await
}

/// A client connection with no schema selected.
async fn without_schema(p: &Proxy) -> Conn {
    let url = format!("mysql://app:app_pw@127.0.0.1:{}?prefer_socket=false", p.addr.port());
    Conn::new(Opts::from_url(&url).unwrap()).await.expect("connect without a schema")
}

/// Connections opened to the primary so far.
fn primary_connects(p: &Proxy) -> u64 {
    let addr = format!("127.0.0.1:{}", harness::primary_port());
    p.shared.metrics.backend_connects.with_label_values(&["main", "primary", &addr, "ok"]).get()
}

/// `n` sessions with schema `sluice_test` at once, so the pool holds `n` connections that
/// have it selected.
async fn fill_with_schema(p: &Proxy, n: usize) {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let mut c = p.conn().await;
        tasks.push(tokio::spawn(async move {
            c.query_drop("SELECT SLEEP(0.3)").await.unwrap();
            c
        }));
    }
    for t in tasks {
        t.await.unwrap().disconnect().await.unwrap();
    }
}

/// A session without a schema is served by a pooled connection that had one, as if freshly
/// connected (no schema, ERROR 1046 for an unqualified table), and no connection is closed
/// or opened for it. Before, such connections were discarded one by one, and with more idle
/// connections than checkout attempts the client got ERROR 1105 "primary unavailable".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_a_schema_reuses_connections_that_had_one() {
    let p = primary_only(8).await;
    fill_with_schema(&p, 8).await;
    let opened = primary_connects(&p);
    assert_eq!(opened, 8, "the pool should hold 8 connections with a schema");
    for i in 0..10 {
        let mut c = without_schema(&p).await;
        let db: Option<String> = c.query_first("SELECT DATABASE()").await.unwrap().unwrap();
        assert_eq!(db, None, "session {i} sees a schema it never selected");
        let e = c.query_drop("CREATE TABLE pool_no_schema (a INT)").await.unwrap_err();
        assert_eq!(code(&e), 1046, "session {i}: {e}");
        let v: Option<i64> = c.query_first("SELECT @pool_probe").await.unwrap().unwrap();
        assert_eq!(v, None);
        c.query_drop("SET @pool_probe = 1").await.unwrap();
        c.disconnect().await.unwrap();
        // A session with the schema after it gets it back.
        let mut s = p.conn().await;
        let db: Option<String> = s.query_first("SELECT DATABASE()").await.unwrap().unwrap();
        assert_eq!(db.as_deref(), Some("sluice_test"));
        s.disconnect().await.unwrap();
    }
    assert_eq!(primary_connects(&p), opened, "connections were opened instead of reused");
}

/// Sluice's backend connections end with COM_QUIT, so the server counts none of them in
/// `Aborted_clients` (which DBAs alert on) when sessions alternate between schemas and when
/// Sluice shuts down. Serial: the counter is server-wide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_backend_connections_end_without_counting_as_aborted() {
    let mut direct = harness::direct(harness::primary_port()).await;
    let before = harness::status_counter(&mut direct, "Aborted_clients").await;
    let threads = harness::status_counter(&mut direct, "Threads_connected").await;
    {
        let p = primary_only(4).await;
        fill_with_schema(&p, 4).await;
        for _ in 0..4 {
            let mut c = without_schema(&p).await;
            c.query_drop("SELECT 1").await.unwrap();
            c.disconnect().await.unwrap();
            let mut s = p.conn().await;
            s.query_drop("SELECT 1").await.unwrap();
            s.disconnect().await.unwrap();
        }
        p.shutdown();
    }
    // The proxy's connections are gone once the server is back to the threads it had.
    let mut now = u64::MAX;
    for _ in 0..100 {
        now = harness::status_counter(&mut direct, "Threads_connected").await;
        if now <= threads {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(now <= threads, "Sluice's backend connections did not end ({now} threads, {threads} before)");
    let after = harness::status_counter(&mut direct, "Aborted_clients").await;
    assert_eq!(after, before, "Sluice's connections counted as aborted clients");
    direct.disconnect().await.unwrap();
}
