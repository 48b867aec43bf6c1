//! Limits and timeouts a production proxy needs: the handshake deadline (silent and trickling
//! clients), idle and idle-in-transaction timeouts, and a login that does not tell which user
//! names exist or accept a response out of sequence.

use crate::harness;
use mysql_async::prelude::*;
use sluice::protocol::auth::native_token;
use sluice::protocol::caps;
use sluice::protocol::codec::{Packet, PacketReader};
use sluice::protocol::handshake::{Greeting, HandshakeResponse};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// True once the peer has closed `s` (a read returns end of stream or an error).
pub(crate) async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // the greeting
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_trickling_clients_are_closed_at_the_handshake_deadline_without_blocking_logins() {
    let p =
        harness::start_with(|t| t.replace("[proxy]", "[proxy]\nhandshake_timeout_ms = 1500\nlogin_max_delay_ms = 500"))
            .await;
    let started = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..1000 {
        silent.push(TcpStream::connect(p.addr).await.unwrap());
    }
    // One that sends its response a byte at a time, slower than the deadline allows.
    let mut trickle = TcpStream::connect(p.addr).await.unwrap();
    let mut r = PacketReader::new(1 << 24, 4096);
    r.read_packet(&mut trickle).await.unwrap().unwrap();
    let trickler = tokio::spawn(async move {
        for b in [60u8, 0, 0, 1, 0x85, 0xa6, 0x0f, 0] {
            if trickle.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        closed_within(&mut trickle, Duration::from_secs(3)).await
    });
    // A normal client logs in meanwhile, within a second.
    let before = Instant::now();
    let mut c = p.conn().await;
    let v: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1));
    let login = before.elapsed();
    assert!(login < Duration::from_secs(1), "a login beside 1,000 silent sockets took {login:?}");
    // Every silent socket is closed by Sluice once the deadline passes.
    let mut open = 0;
    for s in &mut silent {
        let left = Duration::from_millis(4000).saturating_sub(started.elapsed());
        if !closed_within(s, left.max(Duration::from_millis(10))).await {
            open += 1;
        }
    }
    assert_eq!(open, 0, "silent sockets still open after the handshake deadline");
    assert!(trickler.await.unwrap(), "the trickling client was not closed");
    assert!(started.elapsed() >= Duration::from_millis(1400), "closed before the deadline");
    assert_eq!(p.shared.metrics.client_timeouts[0].get(), 1001);
    let v: Option<i64> = c.query_first("SELECT 2").await.unwrap();
    assert_eq!(v, Some(2), "the logged-in client is not affected");
    eprintln!("login beside 1,000 silent sockets: {login:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_transaction_is_rolled_back_and_its_client_closed() {
    let p = harness::start_with(|t| t.replace("[proxy]", "[proxy]\nidle_in_transaction_timeout_s = 1")).await;
    let t = harness::table("idle_txn");
    let mut setup = p.conn().await;
    setup.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY)")).await.unwrap();
    let mut idle = p.conn().await;
    idle.query_drop("BEGIN").await.unwrap();
    idle.query_drop(format!("INSERT INTO {t} VALUES (1)")).await.unwrap();
    let mut outside = p.conn().await;
    let v: Option<i64> = outside.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1));
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(idle.query_drop("SELECT 1").await.is_err(), "the idle transaction's client was not closed");
    // Rolled back, and its lock released: the same key inserts at once.
    let mut d = harness::direct(harness::primary_port()).await;
    let n: Option<i64> = d.query_first(format!("SELECT COUNT(*) FROM {t}")).await.unwrap();
    assert_eq!(n, Some(0), "the idle transaction's row was committed");
    d.query_drop("SET innodb_lock_wait_timeout = 1").await.unwrap();
    d.query_drop(format!("INSERT INTO {t} VALUES (1)")).await.unwrap();
    // Idle outside a transaction: not closed (idle_timeout_s is off).
    let v: Option<i64> = outside.query_first("SELECT 2").await.unwrap();
    assert_eq!(v, Some(2));
    assert_eq!(p.shared.metrics.client_timeouts[2].get(), 1);
    assert_eq!(p.shared.metrics.client_timeouts[1].get(), 0);
    setup.query_drop(format!("DROP TABLE {t}")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_closes_idle_clients() {
    let p = harness::start_with(|t| t.replace("[proxy]", "[proxy]\nidle_timeout_s = 1")).await;
    let mut idle = p.conn().await;
    let mut busy = p.conn().await;
    let v: Option<i64> = idle.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1));
    for i in 0..4 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let v: Option<i64> = busy.query_first(format!("SELECT {i}")).await.unwrap();
        assert_eq!(v, Some(i), "a client that keeps talking stays");
    }
    assert!(idle.query_drop("SELECT 1").await.is_err(), "the idle client was not closed");
    assert_eq!(p.shared.metrics.client_timeouts[1].get(), 1);
}

pub(crate) struct Raw {
    pub(crate) w: harness::Wire,
    greeting: Greeting,
}

impl Raw {
    pub(crate) async fn connect(port: u16) -> Raw {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut r = PacketReader::new(1 << 24, 4096);
        let greeting = Greeting::parse(&r.read_packet(&mut s).await.unwrap().unwrap().payload).unwrap();
        Raw { w: harness::Wire { s, r }, greeting }
    }

    pub(crate) async fn send(&mut self, seq: u8, payload: &[u8]) {
        self.w.send(seq, payload).await
    }

    pub(crate) async fn next(&mut self) -> Packet {
        self.w.next().await
    }

    pub(crate) fn response(&self, user: &str, password: &[u8], plugin: &str, extra_caps: u32) -> HandshakeResponse {
        let token = if plugin == "mysql_native_password" {
            native_token(password, &self.greeting.scramble)
        } else {
            vec![7; 32]
        };
        HandshakeResponse {
            capabilities: caps::BACKEND | extra_caps,
            max_packet: 1 << 24,
            charset: 45,
            user: user.into(),
            auth_response: token,
            database: None,
            auth_plugin: Some(plugin.into()),
            attributes: vec![],
        }
    }
}

/// The packets a login attempt gets, as (first byte, error code) per packet until an ERR.
async fn attempt(port: u16, user: &str, password: &[u8]) -> (Vec<(u8, u16)>, String) {
    let mut raw = Raw::connect(port).await;
    // Start with the other plugin, so a switch is due.
    let resp = raw.response(user, password, "caching_sha2_password", 0);
    raw.send(1, &resp.encode()).await;
    let mut seen = Vec::new();
    loop {
        let p = raw.next().await;
        let code = if p.payload[0] == 0xFF { u16::from_le_bytes([p.payload[1], p.payload[2]]) } else { 0 };
        seen.push((p.payload[0], code));
        if p.payload[0] == 0xFF {
            return (seen, String::from_utf8_lossy(&p.payload[9..]).into_owned());
        }
        assert_eq!(p.payload[0], 0xFE, "an auth switch");
        let token = native_token(password, &p.payload[p.payload.len() - 21..p.payload.len() - 1]);
        raw.send(p.seq.wrapping_add(1), &token).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_and_wrong_passwords_get_the_same_answers() {
    let p = harness::start().await;
    let port = p.addr.port();
    let (unknown, m1) = attempt(port, "nobody_here", b"x").await;
    let (wrong, m2) = attempt(port, "app", b"x").await;
    assert_eq!(unknown, wrong, "the packets differ: {unknown:?} vs {wrong:?}");
    assert_eq!(unknown, vec![(0xFE, 0), (0xFF, 1045)]);
    assert_eq!(m1.replace("nobody_here", "U"), m2.replace("app", "U"), "{m1} / {m2}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_responses_out_of_sequence_or_claiming_tls_are_refused() {
    let p = harness::start().await;
    let port = p.addr.port();
    let mut raw = Raw::connect(port).await;
    let resp = raw.response("app", b"app_pw", "mysql_native_password", 0);
    raw.send(3, &resp.encode()).await;
    let e = raw.next().await;
    assert_eq!((e.payload[0], u16::from_le_bytes([e.payload[1], e.payload[2]])), (0xFF, 1156));
    // CLIENT_SSL on a full response, with no TLS underneath.
    let mut raw = Raw::connect(port).await;
    let resp = raw.response("app", b"app_pw", "mysql_native_password", caps::SSL);
    raw.send(1, &resp.encode()).await;
    let e = raw.next().await;
    assert_eq!((e.payload[0], u16::from_le_bytes([e.payload[1], e.payload[2]])), (0xFF, 1043));
    // The same response, right: logged in.
    let mut raw = Raw::connect(port).await;
    let resp = raw.response("app", b"app_pw", "mysql_native_password", 0);
    raw.send(1, &resp.encode()).await;
    assert_eq!(raw.next().await.payload[0], 0, "a correct response logs in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_max_connections_is_enforced_and_given_back() {
    let p = harness::start_with(|t| {
        t.replace("password = \"app_pw\"\n\n[monitor]", "password = \"app_pw\"\nmax_connections = 2\n\n[monitor]")
    })
    .await;
    assert_eq!(p.shared.load().config.users[0].max_connections, Some(2), "the config names the limit");
    let a = p.conn().await;
    let mut b = p.conn().await;
    let third = mysql_async::Conn::new(mysql_async::Opts::from_url(&p.url()).unwrap()).await;
    let e = third.expect_err("a third session of a user limited to two");
    assert_eq!(harness::code(&e), 1203, "{e}");
    assert!(e.to_string().contains("max_user_connections"), "{e}");
    let v: Option<i64> = b.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1), "the sessions within the limit carry on");
    a.disconnect().await.unwrap();
    // The slot comes back when the session has ended.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut c = loop {
        match mysql_async::Conn::new(mysql_async::Opts::from_url(&p.url()).unwrap()).await {
            Ok(c) => break c,
            Err(e) if harness::code(&e) == 1203 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("the slot was not given back: {e}"),
        }
    };
    let v: Option<i64> = c.query_first("SELECT 2").await.unwrap();
    assert_eq!(v, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_from_a_file_logs_in() {
    let file = std::env::temp_dir().join(format!("sluice-app-secret-{}", std::process::id()));
    std::fs::write(&file, "app_pw\n").unwrap();
    let p = harness::start_with(|t| {
        t.replace(
            "name = \"app\"\npassword = \"app_pw\"",
            &format!("name = \"app\"\npassword_file = \"{}\"", file.display()),
        )
    })
    .await;
    assert!(p.shared.load().config.users[0].password_file.is_some(), "the config reads the file");
    let mut c = p.conn().await;
    let v: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1));
    let wrong = format!("mysql://app:nope@127.0.0.1:{}/sluice_test", p.addr.port());
    let e = mysql_async::Conn::new(mysql_async::Opts::from_url(&wrong).unwrap()).await.expect_err("wrong password");
    assert_eq!(harness::code(&e), 1045);
    let _ = std::fs::remove_file(&file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_past_max_statement_time_are_killed_and_the_session_goes_on() {
    let slow_user = "[[users]]\nname = \"patient\"\npassword = \"patient_pw\"\nbackend_user = \"app\"\nbackend_password = \"app_pw\"\nmax_statement_time_ms = 0\n\n[monitor]";
    let p = harness::start_with(|t| {
        t.replace("[proxy]", "[proxy]\nmax_statement_time_ms = 500").replace("[monitor]", slow_user)
    })
    .await;
    let mut c = p.conn().await;
    let started = Instant::now();
    let e = c.query_drop("SELECT SLEEP(5)").await.expect_err("a 5 s statement under a 500 ms limit");
    let took = started.elapsed();
    assert_eq!(harness::code(&e), 1317, "{e}");
    assert!(took >= Duration::from_millis(450) && took < Duration::from_secs(3), "killed after {took:?}");
    // The same session, and a pooled connection, go on.
    let v: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1));
    let v: Option<i64> = c.query_first("SELECT SLEEP(0.1) + 2").await.unwrap();
    assert_eq!(v, Some(2), "a statement within the limit is not touched");
    // A statement waiting for a lock is stopped too.
    let t = harness::table("deadline");
    c.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY, v INT)")).await.unwrap();
    c.query_drop(format!("INSERT INTO {t} VALUES (1, 0)")).await.unwrap();
    let mut holder = harness::direct(harness::primary_port()).await;
    holder.query_drop("BEGIN").await.unwrap();
    holder.query_drop(format!("UPDATE {t} SET v = 1 WHERE id = 1")).await.unwrap();
    let e = c.query_drop(format!("UPDATE {t} SET v = 2 WHERE id = 1")).await.expect_err("blocked past the limit");
    assert_eq!(harness::code(&e), 1317, "{e}");
    holder.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(p.shared.metrics.statement_timeouts.get(), 2);
    // A user whose own limit is 0 may run long statements.
    let url = format!("mysql://patient:patient_pw@127.0.0.1:{}/sluice_test", p.addr.port());
    let mut patient = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap()).await.unwrap();
    let v: Option<i64> = patient.query_first("SELECT SLEEP(0.8) + 3").await.unwrap();
    assert_eq!(v, Some(3));
    c.query_drop(format!("DROP TABLE {t}")).await.unwrap();
}

/// A client that asks for a large result and stops reading is dropped after
/// `client_write_timeout_ms`; its backend connection does not stay taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_after_the_write_timeout() {
    let p = harness::start_with(|t| t.replace("[proxy]", "[proxy]\nclient_write_timeout_ms = 1000")).await;
    let mut raw = Raw::connect(p.addr.port()).await;
    let mut resp = raw.response("app", b"app_pw", "mysql_native_password", caps::CONNECT_WITH_DB);
    resp.database = Some("sluice_test".into());
    raw.send(1, &resp.encode()).await;
    assert_eq!(raw.next().await.payload[0], 0, "logged in");
    let mut q = vec![3u8];
    q.extend_from_slice(b"SELECT REPEAT('x', 1000) FROM seq_1_to_50000");
    raw.send(0, &q).await;
    // Never read: 50 MB cannot fit in the sockets' buffers.
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.shared.metrics.client_timeouts[3].get() < 1 {
        assert!(Instant::now() < deadline, "the client that stopped reading was not dropped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while p.shared.metrics.client_connections.get() > 0 {
        assert!(Instant::now() < deadline, "the session did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Others are served.
    let mut c = p.conn().await;
    let v: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1));
    drop(raw);
}

/// Repeated failures from one address slow every further attempt from it (doubling from
/// 250 ms); a right password still gets through, and clears the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_login_failures_from_an_address_are_slowed_until_a_success() {
    let p = harness::start_with(|t| {
        t.replace("[proxy]", "[proxy]\nlogin_failures_before_delay = 2\nlogin_max_delay_ms = 1000")
    })
    .await;
    let attempt = |password: &'static str| {
        let url = format!("mysql://app:{password}@127.0.0.1:{}/sluice_test", p.addr.port());
        async move {
            let started = Instant::now();
            let r = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap()).await;
            (r.map(|_| ()).map_err(|e| harness::code(&e)), started.elapsed())
        }
    };
    let mut took = Vec::new();
    for _ in 0..4 {
        let (r, t) = attempt("wrong").await;
        assert_eq!(r, Err(1045));
        took.push(t);
    }
    assert!(took[0] < Duration::from_millis(200) && took[1] < Duration::from_millis(200), "{took:?}");
    assert!(took[2] >= Duration::from_millis(250) && took[3] >= Duration::from_millis(500), "{took:?}");
    let (r, t) = attempt("app_pw").await;
    assert_eq!(r, Ok(()), "the right password gets through");
    assert!(t >= Duration::from_millis(1000), "it waited too: {t:?}");
    let (r, t) = attempt("wrong").await;
    assert_eq!(r, Err(1045));
    assert!(t < Duration::from_millis(200), "a success cleared the count: {t:?}");
    assert_eq!(p.shared.metrics.login_delays.get(), 3);
}

/// Malformed input at every stage: a truncated handshake response, a command sent in place of
/// the response, an empty packet and random frames after login. Each connection is answered
/// or closed; afterwards the proxy serves a new client, and what the broken session set is
/// nowhere else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_leaves_the_proxy_serving_and_nothing_leaks() {
    let p = harness::start().await;
    let port = p.addr.port();
    let serves = || async {
        let mut c = p.conn().await;
        let v: Option<Option<i64>> = c.query_first("SELECT @x").await.unwrap();
        assert_eq!(v, Some(None), "a fresh session sees no variable of a broken one");
    };
    // A truncated response.
    let mut raw = Raw::connect(port).await;
    raw.send(1, &[0x85, 0xa6, 0x0f]).await;
    assert!(closed_within(&mut raw.w.s, Duration::from_secs(3)).await, "a truncated response was not refused");
    serves().await;
    // A command in place of the response.
    let mut raw = Raw::connect(port).await;
    raw.send(1, b"\x03SELECT 1").await;
    assert!(closed_within(&mut raw.w.s, Duration::from_secs(3)).await, "a command before login was not refused");
    serves().await;
    // After login (with a variable set): an empty packet, then random frames.
    for round in 0..3u8 {
        let mut raw = Raw::connect(port).await;
        let resp = raw.response("app", b"app_pw", "mysql_native_password", 0);
        raw.send(1, &resp.encode()).await;
        assert_eq!(raw.next().await.payload[0], 0, "logged in");
        raw.send(0, b"\x03SET @x = 1").await;
        assert_eq!(raw.next().await.payload[0], 0);
        if round == 0 {
            raw.send(0, &[]).await;
        } else {
            let mut seed = u64::from(round).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for _ in 0..200 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let len = (seed % 40) as usize;
                let frame: Vec<u8> = (0..len).map(|i| (seed >> (i % 8 * 8)) as u8).collect();
                if raw.w.s.write_all(&[len as u8, 0, 0, (seed >> 3) as u8]).await.is_err()
                    || raw.w.s.write_all(&frame).await.is_err()
                {
                    break;
                }
            }
        }
        // Answered or closed, never a hang: the socket ends up closed or quiet.
        let _ = closed_within(&mut raw.w.s, Duration::from_millis(500)).await;
        drop(raw);
        serves().await;
    }
    let v: Option<i64> = p.conn().await.query_first("SELECT 42").await.unwrap();
    assert_eq!(v, Some(42));
}
