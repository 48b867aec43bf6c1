//! Every wait has a deadline: a client that starts a packet and stops sending it, and a
//! backend that stops answering (before its answer, or in the middle of a frame it announced).

use crate::fault::Forwarder;
use crate::harness;
use crate::limits::{closed_within, Raw};
use mysql_async::prelude::*;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// After login, a client that announces a 100-byte command and sends 10 bytes of it is closed
/// at `client_read_timeout_ms` and counted; a client that sends whole commands slowly is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_part_of_a_packet_is_closed_at_the_read_deadline() {
    let p = harness::start_with(|t| t.replace("[proxy]", "[proxy]\nclient_read_timeout_ms = 500")).await;
    let port = p.addr.port();
    let login = || async {
        let mut raw = Raw::connect(port).await;
        let resp = raw.response("app", b"app_pw", "mysql_native_password", 0);
        raw.send(1, &resp.encode()).await;
        assert_eq!(raw.next().await.payload[0], 0, "logged in");
        raw
    };
    let mut stalled = login().await;
    let started = Instant::now();
    stalled.w.s.write_all(&[100, 0, 0, 0, 0x03, b'S', b'E', b'L', b'E', b'C', b'T', b' ', b'1', b' ']).await.unwrap();
    assert!(closed_within(&mut stalled.w.s, Duration::from_secs(3)).await, "a half-sent packet held the session");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(400), "closed after {took:?}, before the deadline");
    assert_eq!(p.shared.metrics.client_timeouts[4].get(), 1);
    // Whole commands with pauses longer than the read deadline between them are fine: the
    // deadline is for the rest of a started packet, not for the next one.
    let mut slow = login().await;
    for i in 0..2 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        slow.send(0, format!("\x03SELECT {i}").as_bytes()).await;
        assert_eq!(slow.next().await.payload, &[1][..], "column count of SELECT {i}");
        drain_one_column(&mut slow).await;
    }
    // A command split across two writes within the deadline is read whole.
    let mut c = p.conn().await;
    let v: Option<i64> = c.query_first("SELECT 7").await.unwrap();
    assert_eq!(v, Some(7));
    let mut split = login().await;
    split.w.s.write_all(&[9, 0, 0, 0, 0x03, b'S', b'E']).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    split.w.s.write_all(b"LECT 5").await.unwrap();
    assert_eq!(split.next().await.payload, &[1][..]);
    assert_eq!(drain_one_column(&mut split).await, b"5");
    assert_eq!(p.shared.metrics.client_timeouts[4].get(), 1, "only the stalled client was closed");
}

/// Reads the rest of a one-column, one-row text result after its column count; returns the
/// row's value.
async fn drain_one_column(raw: &mut Raw) -> Vec<u8> {
    let _column = raw.next().await;
    let mut value = None;
    loop {
        let p = raw.next().await.payload;
        let end = p[0] == 0xfe && p.len() < 9;
        match (end, value.take()) {
            (true, Some(v)) => return v,
            (true, None) => {}
            (false, _) => value = Some(p[1..].to_vec()),
        }
    }
}

/// A proxy whose primary is reached through `fwd`, with a statement deadline, reading from the
/// primary.
async fn behind(fwd: &Forwarder) -> harness::Proxy {
    let primary = format!("127.0.0.1:{}", harness::primary_port());
    harness::start_with(|t| {
        t.replacen(&format!("primary = \"{primary}\""), &format!("primary = \"{}\"", fwd.addr()), 1)
            .replace("consistency = \"session\"", "consistency = \"strong\"")
            .replace("connect_timeout_ms = 2000", "connect_timeout_ms = 500")
            .replace("[proxy]", "[proxy]\nmax_statement_time_ms = 800")
    })
    .await
}

/// A backend that takes a statement and never answers (frozen, or cut off without a reset):
/// at the deadline Sluice kills the statement, waits the grace period, then gives the client
/// ERROR 1969 — nothing of the answer had left — discards the connection, and the session
/// goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_never_answers_gets_the_client_a_clear_error_at_the_deadline() {
    let fwd = Forwarder::freezing_after_request(harness::primary_port(), b"frozen_marker").await;
    let p = behind(&fwd).await;
    let mut c = p.conn().await;
    let v: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1));
    let started = Instant::now();
    let e = c.query_drop("SELECT 'frozen_marker'").await.expect_err("no answer ever comes");
    let took = started.elapsed();
    assert_eq!(harness::code(&e), 1969, "{e}");
    assert!(took >= Duration::from_millis(1700) && took < Duration::from_secs(4), "answered after {took:?}");
    assert_eq!(p.shared.metrics.statement_timeouts.get(), 1);
    // The same session goes on, on another backend connection.
    let v: Option<String> = c.query_first("SELECT 'after'").await.unwrap();
    assert_eq!(v.as_deref(), Some("after"));
}

/// A backend that announces a large frame, sends half of it and stalls: nothing of the row
/// has reached the client, so it gets ERROR 1969. When part of a result had already been
/// written to the client, the client connection is closed instead (an error, never a hang or a
/// short result taken for whole).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_stalls_mid_answer_never_leaves_the_client_waiting() {
    let fwd = Forwarder::freezing_mid_answer(harness::primary_port(), b"qqqqqqqqqqqqqqqq").await;
    let p = behind(&fwd).await;
    let mut c = p.conn().await;
    let started = Instant::now();
    let e = c.query_drop("SELECT REPEAT('q', 200000) AS big").await.expect_err("the row never completes");
    let took = started.elapsed();
    assert_eq!(harness::code(&e), 1969, "{e}");
    assert!(took < Duration::from_secs(4), "answered after {took:?}");
    let v: Option<i64> = c.query_first("SELECT 2").await.unwrap();
    assert_eq!(v, Some(2), "the session goes on");
    // Many rows: the first ones are flushed before the stall.
    let rows = "SELECT seq, REPEAT('q', 2000) FROM seq_1_to_2000";
    let started = Instant::now();
    let r: Result<Vec<(i64, String)>, _> = c.query(rows).await;
    let took = started.elapsed();
    assert!(r.is_err(), "a cut result was taken for whole: {} rows", r.map(|v| v.len()).unwrap_or(0));
    assert!(took < Duration::from_secs(4), "answered after {took:?}");
    assert_eq!(p.shared.metrics.statement_timeouts.get(), 2);
    // Everyone else is served.
    let mut d = p.conn().await;
    let v: Option<i64> = d.query_first("SELECT 3").await.unwrap();
    assert_eq!(v, Some(3));
}
