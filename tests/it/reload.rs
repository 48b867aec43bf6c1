//! Hot reload: an invalid file is rejected while the old config keeps serving; a valid one
//! takes effect without dropping client connections.

use crate::harness;
use mysql_async::prelude::*;
use std::time::{Duration, Instant};

async fn wait_for(p: &harness::Proxy, result: &str, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.shared.metrics.config_reloads.with_label_values(&[result]).get() < count {
        assert!(Instant::now() < deadline, "no '{result}' reload within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_file_is_rejected_and_valid_file_applies_without_reconnects() {
    let path = std::env::temp_dir().join(format!("sluice-reload-{}.toml", std::process::id()));
    let good = harness::config_text(|t| t);
    std::fs::write(&path, &good).unwrap();
    let p = harness::start_file(&path).await;
    let mut a = p.conn().await;
    let id: Option<u64> = a.query_first("SELECT CONNECTION_ID()").await.unwrap();
    assert!(id.is_some());
    let version = p.shared.load().version;

    // Invalid: an unknown key. Rejected, counted, and the old config still serves.
    tokio::time::sleep(Duration::from_millis(1100)).await; // a new modification time
    std::fs::write(&path, good.replace("max_size = 64", "max_size = 64\nmax_sise = 3")).unwrap();
    wait_for(&p, "rejected", 1).await;
    assert_eq!(p.shared.load().version, version);
    let v: Option<i64> = a.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1));
    let mut b = p.conn().await;
    let v: Option<i64> = b.query_first("SELECT 2").await.unwrap();
    assert_eq!(v, Some(2));

    // Invalid: a value that would make every checkout panic inside bb8. Rejected too.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::write(&path, good.replace("acquire_timeout_ms = 3000", "acquire_timeout_ms = 0")).unwrap();
    wait_for(&p, "rejected", 2).await;
    assert_eq!(p.shared.load().version, version);
    let mut c = p.conn().await;
    let v: Option<i64> = c.query_first("/* sluice:primary */ SELECT 5").await.unwrap();
    assert_eq!(v, Some(5));
    c.disconnect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await; // its session ends

    // Valid: a new user. Applied; existing clients keep their connections.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let with_user = good.replace("[monitor]", "[[users]]\nname = \"late\"\npassword = \"late_pw\"\nbackend_user = \"app\"\nbackend_password = \"app_pw\"\n\n[monitor]");
    std::fs::write(&path, with_user).unwrap();
    wait_for(&p, "applied", 1).await;
    assert_eq!(p.shared.load().version, version + 1);
    let url = format!("mysql://late:late_pw@127.0.0.1:{}/sluice_test?prefer_socket=false", p.addr.port());
    let mut late = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap()).await.expect("new user logs in");
    let v: Option<i64> = late.query_first("SELECT 3").await.unwrap();
    assert_eq!(v, Some(3));
    let v: Option<i64> = a.query_first("SELECT 4").await.unwrap();
    assert_eq!(v, Some(4), "an existing client lost its connection");
    assert_eq!(p.shared.metrics.client_connections.get(), 3);
    let _ = std::fs::remove_file(&path);
}

/// A replica a reload leaves out is no longer checked, even while a client that ran its last
/// statement under the old config sits idle (each session keeps the snapshot of its last
/// command until its next one). Counted as the replica's `Questions`: the monitor asks every
/// 50 ms; left out, nothing asks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_a_replica_left_out_by_a_reload_is_no_longer_monitored() {
    let removed = harness::replica_ports()[1];
    let path = std::env::temp_dir().join(format!("sluice-reload-drop-{}.toml", std::process::id()));
    let both = harness::config_text(|t| t.replace("check_interval_ms = 250", "check_interval_ms = 50"));
    std::fs::write(&path, &both).unwrap();
    let p = harness::start_file(&path).await;
    let mut idle = p.conn().await;
    let v: Option<i64> = idle.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1));
    let mut d = harness::direct(removed).await;
    let asked = |from: u64, to: u64| to - from;
    let before = harness::status_counter(&mut d, "Questions").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after = harness::status_counter(&mut d, "Questions").await;
    assert!(asked(before, after) >= 10, "the monitor checks the replica ({} questions in 1 s)", asked(before, after));

    tokio::time::sleep(Duration::from_millis(1100)).await; // a new modification time
    let one = both.replace(&format!(", {{ addr = \"127.0.0.1:{removed}\", weight = 100 }}"), "");
    assert_ne!(one, both, "the config names the replica");
    std::fs::write(&path, &one).unwrap();
    wait_for(&p, "applied", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // a check in flight ends
    let before = harness::status_counter(&mut d, "Questions").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after = harness::status_counter(&mut d, "Questions").await;
    // Our own SHOW STATUS is one question.
    assert!(
        asked(before, after) <= 2,
        "the left-out replica is still checked ({} questions in 1 s)",
        asked(before, after)
    );
    let v: Option<i64> = idle.query_first("SELECT 2").await.unwrap();
    assert_eq!(v, Some(2), "the idle client carries on under the new config");
    let _ = std::fs::remove_file(&path);
}

/// A reload that removes a user, or changes its password, ends that user's open sessions
/// (after their current statement); other users' sessions carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_removes_or_changes_a_user_ends_its_sessions() {
    let path = std::env::temp_dir().join(format!("sluice-reload-users-{}.toml", std::process::id()));
    let late = "[[users]]\nname = \"late\"\npassword = \"late_pw\"\nbackend_user = \"app\"\nbackend_password = \"app_pw\"\n\n[monitor]";
    let base = harness::config_text(|t| t.replace("[monitor]", late));
    std::fs::write(&path, &base).unwrap();
    let p = harness::start_file(&path).await;
    let url = |user: &str, pw: &str| format!("mysql://{user}:{pw}@127.0.0.1:{}/sluice_test", p.addr.port());
    let connect = |u: String| async move { mysql_async::Conn::new(mysql_async::Opts::from_url(&u).unwrap()).await };
    let mut l = connect(url("late", "late_pw")).await.unwrap();
    let mut a = p.conn().await;
    let v: Option<i64> = l.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1));

    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::write(&path, harness::config_text(|t| t)).unwrap(); // `late` removed
    wait_for(&p, "applied", 1).await;
    assert!(l.query_drop("SELECT 2").await.is_err(), "the removed user's session went on");
    let v: Option<i64> = a.query_first("SELECT 3").await.unwrap();
    assert_eq!(v, Some(3), "another user's session was ended");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let changed = harness::config_text(|t| {
        t.replacen(
            "name = \"app\"\npassword = \"app_pw\"",
            "name = \"app\"\npassword = \"new_pw\"\nbackend_password = \"app_pw\"",
            1,
        )
    });
    std::fs::write(&path, changed).unwrap();
    wait_for(&p, "applied", 2).await;
    assert!(a.query_drop("SELECT 4").await.is_err(), "a session logged in with the old password went on");
    let mut fresh = connect(url("app", "new_pw")).await.expect("the new password logs in");
    let v: Option<i64> = fresh.query_first("SELECT 5").await.unwrap();
    assert_eq!(v, Some(5));
    let _ = std::fs::remove_file(&path);
}

/// `max_client_connections` applies to the next accept after a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_client_connections_follows_a_reload() {
    let path = std::env::temp_dir().join(format!("sluice-reload-max-{}.toml", std::process::id()));
    let two = harness::config_text(|t| t.replace("max_client_connections = 10000", "max_client_connections = 2"));
    assert!(two.contains("max_client_connections = 2"));
    std::fs::write(&path, &two).unwrap();
    let p = harness::start_file(&path).await;
    let _a = p.conn().await;
    let _b = p.conn().await;
    let e = mysql_async::Conn::new(mysql_async::Opts::from_url(&p.url()).unwrap()).await.expect_err("over the limit");
    assert_eq!(harness::code(&e), 1040, "{e}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::write(&path, two.replace("max_client_connections = 2", "max_client_connections = 3")).unwrap();
    wait_for(&p, "applied", 1).await;
    let mut c = p.conn().await;
    let v: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1));
    let _ = std::fs::remove_file(&path);
}

/// A Kubernetes ConfigMap volume: `sluice.toml -> ..data/sluice.toml`, `..data -> ..<stamp>`,
/// updated by pointing `..data` at a new directory in one rename. The new file is noticed
/// even when its modification time and size equal the old one's (only the inode differs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_style_symlink_swap_is_reloaded() {
    use std::os::unix::fs::symlink;
    let dir = std::env::temp_dir().join(harness::table("configmap"));
    let (a, b) = (dir.join("..2026_12_02_a"), dir.join("..2026_12_02_b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let old = harness::config_text(|t| t);
    assert!(old.contains("check_interval_ms = 250"), "the testbed config changed shape");
    let new = old.replace("check_interval_ms = 250", "check_interval_ms = 260");
    std::fs::write(a.join("sluice.toml"), &old).unwrap();
    std::fs::write(b.join("sluice.toml"), &new).unwrap();
    let mtime = std::fs::metadata(a.join("sluice.toml")).unwrap().modified().unwrap();
    std::fs::File::options().write(true).open(b.join("sluice.toml")).unwrap().set_modified(mtime).unwrap();
    symlink("..2026_12_02_a", dir.join("..data")).unwrap();
    symlink("..data/sluice.toml", dir.join("sluice.toml")).unwrap();
    let p = harness::start_file(&dir.join("sluice.toml")).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(p.shared.load().version, 1);
    // kubelet's swap: a new symlink renamed over `..data`.
    symlink("..2026_12_02_b", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while p.shared.load().version == 1 {
        assert!(Instant::now() < deadline, "the swapped ConfigMap was not reloaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(p.shared.load().config.replicas.check_interval_ms, 260);
    std::fs::remove_dir_all(&dir).unwrap();
}
