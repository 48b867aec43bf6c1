//! A dead backend gives a clear error within the connect timeout; everyone else is served.

use crate::harness;
use mysql_async::prelude::*;
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_primary_gives_clear_error_and_proxy_keeps_serving() {
    // Shard s0 points at a port where nothing listens.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let p = harness::start_with(|t| {
        t.replace("primary = \"127.0.0.1:13316\"", &format!("primary = \"127.0.0.1:{port}\""))
            .replace("default = \"main\"", "default = \"s0\"")
    })
    .await;
    let url = format!("mysql://app:app_pw@127.0.0.1:{}?prefer_socket=false", p.addr.port());
    let started = Instant::now();
    let e = harness::first_error(&url, "SELECT 1").await;
    let elapsed = started.elapsed();
    match &e {
        mysql_async::Error::Server(s) => {
            assert_eq!(s.code, 1105);
            assert!(s.message.contains("primary of shard 's0' is unavailable"), "{}", s.message);
            assert!(!s.message.contains(&port.to_string()), "address leaked: {}", s.message);
        }
        other => panic!("expected a server error, got {other:?}"),
    }
    assert!(elapsed.as_millis() < 2_500, "took {elapsed:?}");
    // A client of the healthy part of the topology is not affected. (With shard routing in
    // place this is another shard; until then another proxy instance on the same testbed.)
    let q = harness::start().await;
    let mut d = q.conn().await;
    let v: Option<i64> = d.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_get_1045() {
    let p = harness::start().await;
    for url in [
        format!("mysql://app:nope@127.0.0.1:{}/sluice_test?prefer_socket=false", p.addr.port()),
        format!("mysql://ghost:x@127.0.0.1:{}/sluice_test?prefer_socket=false", p.addr.port()),
    ] {
        let e = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap()).await.unwrap_err();
        match e {
            mysql_async::Error::Server(s) => {
                assert_eq!(s.code, 1045);
                assert!(s.message.starts_with("Access denied for user"), "{}", s.message);
            }
            other => panic!("expected 1045, got {other:?}"),
        }
    }
    let (_, body) = p.http_get("/metrics").await;
    assert!(body.contains("sluice_auth_failures_total 2"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_database_at_login_is_1049() {
    let p = harness::start().await;
    let url = format!("mysql://app:app_pw@127.0.0.1:{}/no_such_db?prefer_socket=false", p.addr.port());
    let e = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap()).await.unwrap_err();
    assert_eq!(crate::harness::code(&e), 1049);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_answers_1040() {
    let p = harness::start_with(|t| t.replace("max_client_connections = 10000", "max_client_connections = 2")).await;
    let _a = p.conn().await;
    let _b = p.conn().await;
    let e = mysql_async::Conn::new(mysql_async::Opts::from_url(&p.url()).unwrap()).await.unwrap_err();
    assert_eq!(crate::harness::code(&e), 1040);
}

/// A backend connection that dies inside a transaction ends the client's session: continuing
/// would run the client's next statements outside the transaction it believes is open. As
/// with a direct connection the server killed, the client's connection ends without an
/// answer (PyMySQL reports 2013, mysql_async an I/O error), which drivers treat as a
/// disconnect (mysql-test's main.transaction_timeout expects 2006/2013).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_dying_inside_a_transaction_ends_the_session() {
    let p = harness::start().await;
    let t = harness::table("dying");
    let mut c = p.conn().await;
    harness::run(&mut c, &format!("CREATE TABLE {t} (id INT PRIMARY KEY)")).await;
    harness::run(&mut c, "BEGIN").await;
    harness::run(&mut c, &format!("INSERT INTO {t} VALUES (1)")).await;
    let id = harness::backend_thread(&mut c, false).await;
    let mut admin = harness::direct(harness::primary_port()).await;
    // app has no SUPER, but may kill its own user's connections.
    admin.query_drop(format!("KILL {id}")).await.unwrap();
    let e = c.query_drop(format!("INSERT INTO {t} VALUES (2)")).await.unwrap_err();
    assert!(matches!(e, mysql_async::Error::Io(_)), "the connection ends as a server's does: {e:?}");
    // The client connection is closed, not silently switched to a new backend connection.
    assert!(c.query_drop("SELECT 1").await.is_err());
    // Nothing of the transaction was committed.
    let n: Option<i64> = admin.query_first(format!("SELECT COUNT(*) FROM {t}")).await.unwrap();
    assert_eq!(n, Some(0));
    admin.query_drop(format!("DROP TABLE {t}")).await.unwrap();
}
