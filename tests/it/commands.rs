//! Connection-level commands through real clients: COM_RESET_CONNECTION and COM_CHANGE_USER
//! (mysql_async), COM_STATISTICS and COM_PING (mariadb-admin).

use crate::harness::{self, run};
use mysql_async::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_connection_returns_the_session_to_its_login_state() {
    let p = harness::start().await;
    let mut c = p.conn().await;
    let default_mode: Option<String> = c.query_first("SELECT @@session.sql_mode").await.unwrap();
    run(&mut c, "SET @x = 5").await;
    run(&mut c, "SET SESSION sql_mode = 'ANSI_QUOTES'").await;
    run(&mut c, "USE sbtest").await;
    assert!(c.reset().await.unwrap(), "COM_RESET_CONNECTION not supported?");
    // The user-variable pin is gone with the state it protected (checked before the next
    // statement, which mentions @x and so pins again).
    let (_, body) = p.http_get("/metrics").await;
    assert!(body.contains("sluice_sessions_pinned{reason=\"user_variable\"} 0"), "{body}");
    let after: Option<(Option<i64>, String, String)> =
        c.query_first("SELECT @x, @@session.sql_mode, DATABASE()").await.unwrap();
    assert_eq!(after, Some((None, default_mode.unwrap(), "sluice_test".to_string())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_user_reauthenticates_and_resets() {
    let p = harness::start_with(|t| {
        t.replace(
            "[monitor]",
            "[[users]]\nname = \"reporter\"\npassword = \"rep_pw\"\nbackend_user = \"app\"\nbackend_password = \"app_pw\"\n\n[monitor]",
        )
    })
    .await;
    let mut c = p.conn().await;
    run(&mut c, "SET @x = 1").await;
    let opts = mysql_async::ChangeUserOpts::default()
        .with_user(Some("reporter".into()))
        .with_pass(Some("rep_pw".into()))
        .with_db_name(Some("sbtest".into()));
    c.change_user(opts).await.unwrap();
    let v: Option<(Option<i64>, String)> = c.query_first("SELECT @x, DATABASE()").await.unwrap();
    assert_eq!(v, Some((None, "sbtest".to_string())));
    // A wrong password is refused with 1045.
    let bad = mysql_async::ChangeUserOpts::default().with_user(Some("reporter".into())).with_pass(Some("nope".into()));
    let e = c.change_user(bad).await.unwrap_err();
    match e {
        mysql_async::Error::Server(s) => assert_eq!(s.code, 1045),
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => {}
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_admin_status_and_ping() {
    let p = harness::start().await;
    let port = format!("-P{}", p.addr.port());
    let base = ["--no-defaults", "-h127.0.0.1", port.as_str(), "-uapp", "-papp_pw"];
    let out = std::process::Command::new("mariadb-admin").args(base).arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.starts_with("Uptime:"), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let out = std::process::Command::new("mariadb-admin").args(base).arg("ping").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("is alive"));
}
