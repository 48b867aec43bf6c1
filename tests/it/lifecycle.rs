//! Shutdown drain and the `sluice check` command.

use crate::harness;
use mysql_async::prelude::*;
use std::time::Duration;

/// SIGTERM semantics: a statement running when shutdown starts finishes and its client gets
/// the whole result; new connections are refused; the session then closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_running_statements_finish() {
    let p = harness::start().await;
    let mut c = p.conn().await;
    let running = tokio::spawn(async move {
        let r: Result<Option<(i64, String)>, _> = c.query_first("SELECT SLEEP(1.5), 'complete'").await;
        (r, c)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // One monitor per backend, XA recovery and the session are tracked.
    let backends: usize = p.shared.load().topology.shards.iter().map(|s| 1 + s.replicas.len()).sum();
    assert!(p.shared.tasks.len() >= backends + 2, "{} tasks tracked, {backends} backends", p.shared.tasks.len());
    let url = p.url();
    p.shutdown();
    let (r, mut c) = running.await.unwrap();
    assert_eq!(r.unwrap(), Some((0, "complete".to_string())), "the running statement was cut");
    // The listener is closed: new clients cannot connect.
    let opts = mysql_async::Opts::from_url(&url).unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(5), mysql_async::Conn::new(opts)).await;
    assert!(matches!(refused, Ok(Err(_))), "a new client connected after shutdown began");
    // And the idle session is closed.
    assert!(c.query_drop("SELECT 1").await.is_err());
    // Every task Sluice started ends: sessions, and the backends' monitors and XA recovery
    // too (they are tracked, so the drain waits for them).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !p.shared.tasks.is_empty() {
        assert!(std::time::Instant::now() < deadline, "{} tasks still running after shutdown", p.shared.tasks.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Shutdown never cuts a transaction: a session inside one when SIGTERM arrives goes on
/// until its COMMIT (which lands), then closes; a session between statements outside a
/// transaction is closed at once; the instance reports draining from the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_open_transactions_finish_then_closes_them() {
    let p = harness::start().await;
    let t = harness::table("drain_txn");
    let mut setup = p.conn().await;
    harness::run(&mut setup, &format!("CREATE TABLE {t} (id INT PRIMARY KEY)")).await;
    let mut idle = p.conn().await;
    let mut txn = p.conn().await;
    harness::run(&mut txn, "BEGIN").await;
    harness::run(&mut txn, &format!("INSERT INTO {t} VALUES (1)")).await;
    // A BEGIN Sluice holds back (nothing sent to a server yet) is a transaction too.
    let mut held = p.conn().await;
    harness::run(&mut held, "BEGIN").await;
    p.shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // What /health/ready answers 503 on (the HTTP endpoint itself closes with the drain).
    assert!(p.shared.draining.load(std::sync::atomic::Ordering::Relaxed), "not draining");
    assert!(idle.query_drop("SELECT 1").await.is_err(), "an idle session outside a transaction stays open");
    // The transaction goes on, on its connection, and commits.
    harness::run(&mut txn, &format!("INSERT INTO {t} VALUES (2)")).await;
    let n: Option<i64> = txn.query_first(format!("SELECT COUNT(*) FROM {t}")).await.unwrap();
    assert_eq!(n, Some(2), "the transaction lost its connection");
    harness::run(&mut txn, "COMMIT").await;
    // Then the session closes.
    assert!(txn.query_drop("SELECT 1").await.is_err(), "the session stayed open after its transaction");
    harness::run(&mut held, &format!("INSERT INTO {t} VALUES (3)")).await;
    harness::run(&mut held, "ROLLBACK").await;
    assert!(held.query_drop("SELECT 1").await.is_err(), "the session stayed open after its ROLLBACK");
    let mut direct = harness::direct(harness::primary_port()).await;
    let committed: Option<i64> = direct.query_first(format!("SELECT COUNT(*) FROM sluice_test.{t}")).await.unwrap();
    assert_eq!(committed, Some(2), "the committed transaction's rows");
    harness::run(&mut direct, &format!("DROP TABLE sluice_test.{t}")).await;
}

#[test]
fn check_reports_problems_with_line_numbers_and_exit_code() {
    let dir = std::env::temp_dir().join(format!("sluice-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[proxy]\nlisten = \"127.0.0.1:6033\"\nlisen = 1\n\n[[shards]]\nname = \"a\"\nprimary = \"x\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:3:") && err.contains("lisen"), "{err}");
    let good = concat!(env!("CARGO_MANIFEST_DIR"), "/config/sluice.toml");
    // The example holds no clear-text password: each comes from the environment.
    let check = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
        c.args(["check", "--config", good]);
        c
    };
    let out = check().output().unwrap();
    assert!(!out.status.success(), "the example checked without its password variables");
    assert!(String::from_utf8_lossy(&out.stderr).contains("SLUICE_APP_PASSWORD"));
    let out = check()
        .env("SLUICE_APP_PASSWORD", "a")
        .env("SLUICE_REPORTING_PASSWORD", "b")
        .env("SLUICE_REPORTING_BACKEND_PASSWORD", "c")
        .env("SLUICE_MONITOR_PASSWORD", "d")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Started with a low open-files soft limit, the binary raises it toward what
/// `max_client_connections` needs (up to the hard limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_raises_its_open_files_limit() {
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (port, admin) = (free(), free());
    let text = harness::config_text(|t| {
        t.replace("127.0.0.1:6033", &format!("127.0.0.1:{port}"))
            .replace("127.0.0.1:9033", &format!("127.0.0.1:{admin}"))
    });
    let path = std::env::temp_dir().join(format!("sluice-nofile-{}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let script = format!("ulimit -Sn 256 && exec {} --config {}", env!("CARGO_BIN_EXE_sluice"), path.display());
    let mut child = std::process::Command::new("bash").args(["-c", &script]).spawn().unwrap();
    let soft = |pid: u32| -> Option<u64> {
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse().ok()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut seen = None;
    while std::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            seen = soft(child.id());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&path);
    let hard: u64 = std::process::Command::new("bash")
        .args(["-c", "ulimit -Hn"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(u64::MAX);
    let want = (10_000u64 * 2 + 1024).min(hard);
    assert_eq!(seen, Some(want), "the soft limit after start-up (hard limit {hard})");
}
