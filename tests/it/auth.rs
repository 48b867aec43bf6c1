//! Backend-side caching_sha2_password, tested by chaining two Sluice instances: the second one
//! asks for caching_sha2 (as MySQL 8 does), the first logs in to it as a backend would.

use crate::harness;
use mysql_async::prelude::*;

fn chained_config(inner_port: u16) -> String {
    harness::config_text(|t| {
        t.replace(&format!("127.0.0.1:{}", harness::primary_port()), &format!("127.0.0.1:{inner_port}")).replace(
            "replicas = [ { addr = \"127.0.0.1:13307\", weight = 100 }, { addr = \"127.0.0.1:13308\", weight = 100 } ]",
            "",
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_login_with_caching_sha2_full_then_fast_path() {
    let inner = harness::start_with(|t| {
        t.replace(
            "max_client_connections = 10000",
            "max_client_connections = 10000\nauth_plugin = \"caching_sha2_password\"",
        )
    })
    .await;
    // The key is generated at start-up; wait for it so the first login does not race it on a
    // loaded machine, and give the chained login a generous connect timeout.
    inner.shared.rsa_key().await;
    let config = chained_config(inner.addr.port()).replace("connect_timeout_ms = 2000", "connect_timeout_ms = 10000");
    let app = inner.shared.load().config.user("app").cloned().unwrap();
    assert!(inner.shared.sha2_cached(&app).is_none());
    let outer = harness::start_config(sluice::config::Config::parse(&config).unwrap()).await;
    let mut a = outer.conn().await;
    // First backend connection (the client's, or the outer monitor's if it came first, with
    // the same login code): full authentication with the RSA key exchange.
    a.query_drop("BEGIN").await.unwrap();
    let v: Option<i64> = a.query_first("SELECT 40 + 2").await.unwrap();
    assert_eq!(v, Some(42));
    assert!(inner.shared.sha2_cached(&app).is_some(), "full authentication did not complete");
    // A second backend connection while the first is pinned: the fast path.
    let mut b = outer.conn().await;
    let v: Option<String> = b.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(v.as_deref(), Some("sluice_test"));
    a.query_drop("COMMIT").await.unwrap();
    let (in_use, idle) = outer.primary_pool();
    assert_eq!(in_use + idle, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_refusing_login_gives_clear_error() {
    let inner = harness::start_with(|t| t.replace("password = \"app_pw\"", "password = \"other\"")).await;
    let outer = harness::start_config(sluice::config::Config::parse(&chained_config(inner.addr.port())).unwrap()).await;
    let url = format!("mysql://app:app_pw@127.0.0.1:{}?prefer_socket=false", outer.addr.port());
    let e = harness::first_error(&url, "SELECT 1").await;
    match e {
        mysql_async::Error::Server(s) => {
            assert_eq!(s.code, 1105);
            assert!(s.message.contains("refused login"), "{}", s.message);
        }
        other => panic!("{other:?}"),
    }
}

/// A client that starts with caching_sha2 against a native-password greeting is switched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_with_caching_sha2_client_plugin_is_switched() {
    let p = harness::start().await;
    let out = std::process::Command::new("mariadb")
        .args(["--no-defaults", "-h127.0.0.1", &format!("-P{}", p.addr.port()), "-uapp", "-papp_pw"])
        .args(["--default-auth=caching_sha2_password", "-N", "-B", "-e", "SELECT CURRENT_USER()"])
        .output()
        .expect("mariadb client installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("app@"), "{stdout}");
}

/// COM_CHANGE_USER with a wrong password: ERROR 1045, as a server answers, and the session
/// carries on as the user it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_user_with_a_wrong_password_gets_1045() {
    let p = harness::start().await;
    let mut c = p.conn().await;
    let opts = mysql_async::ChangeUserOpts::default().with_user(Some("app".into())).with_pass(Some("wrong".into()));
    let e = c.change_user(opts).await.expect_err("wrong password");
    match e {
        mysql_async::Error::Server(s) => assert_eq!(s.code, 1045, "{}", s.message),
        other => panic!("expected ERROR 1045, got {other:?}"),
    }
}

/// Three failed COM_CHANGE_USER on one connection and the command is refused from then on
/// with ERROR 1047, a right password included, as the server does (MDEV-3915; mysql-test's
/// main.change_user_notembedded): the same sequence side by side with a direct connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_change_user_after_three_failures_is_refused_as_on_the_server() {
    async fn codes(c: &mut mysql_async::Conn) -> Vec<u16> {
        let mut out = Vec::new();
        for pass in ["wrong", "wrong", "app_pw", "wrong", "wrong", "app_pw"] {
            let opts =
                mysql_async::ChangeUserOpts::default().with_user(Some("app".into())).with_pass(Some(pass.into()));
            out.push(match c.change_user(opts).await {
                Ok(()) => 0,
                Err(e) => harness::code(&e),
            });
        }
        out
    }
    let mut d = harness::direct(harness::primary_port()).await;
    let server = codes(&mut d).await;
    let p = harness::start().await;
    let mut c = p.conn().await;
    let through = codes(&mut c).await;
    assert_eq!(server, [1045, 1045, 0, 1045, 1047, 1047], "the server's own sequence changed");
    assert_eq!(through, server);
}

/// A user configured by its hash only (`password_hash`, as `SELECT PASSWORD('...')` on the
/// server prints it) logs in with the mariadb CLI and mysql_async; a wrong password does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_configured_by_its_password_hash_logs_in() {
    let mut d = harness::direct(harness::primary_port()).await;
    let hash: Option<String> = d.query_first("SELECT PASSWORD('hashed_pw')").await.unwrap();
    let hash = hash.unwrap();
    assert!(hash.starts_with('*') && hash.len() == 41, "{hash}");
    let user = format!(
        "[[users]]\nname = \"hashed\"\npassword_hash = \"{hash}\"\nbackend_user = \"app\"\nbackend_password = \"app_pw\"\n\n[monitor]"
    );
    let p = harness::start_with(|t| t.replace("[monitor]", &user)).await;
    let port = p.addr.port();
    let cli = |pw: &str| {
        std::process::Command::new("mariadb")
            .args(["--no-defaults", "-h127.0.0.1", &format!("-P{port}"), "-uhashed", &format!("-p{pw}"), "-N", "-B"])
            .args(["-e", "SELECT CURRENT_USER() IS NOT NULL"])
            .output()
            .unwrap()
    };
    let ok = cli("hashed_pw");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "1");
    let wrong = cli("hashed_pX");
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("ERROR 1045"));
    let url = format!("mysql://hashed:hashed_pw@127.0.0.1:{port}/sluice_test");
    let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap()).await.unwrap();
    let v: Option<i64> = c.query_first("SELECT 7").await.unwrap();
    assert_eq!(v, Some(7));
}

/// With only its hash configured and no backend password, a user's native login yields
/// SHA1(password), which logs Sluice in to the backend as the same account: nothing in the
/// file is a password. KILL (its own connection to the backend) works under that login too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_only_user_reaches_the_backend_without_any_password_in_the_file() {
    let mut d = harness::direct(harness::primary_port()).await;
    let hash: Option<String> = d.query_first("SELECT PASSWORD('app_pw')").await.unwrap();
    let user = format!("[[users]]\nname = \"app\"\npassword_hash = \"{}\"\n\n[monitor]", hash.unwrap());
    let p =
        harness::start_with(|t| t.replacen("[[users]]\nname = \"app\"\npassword = \"app_pw\"\n\n[monitor]", &user, 1))
            .await;
    assert!(p.shared.load().config.users.iter().all(|u| u.password.is_empty() && u.backend_password.is_none()));
    let mut c = p.conn().await;
    let v: Option<i64> = c.query_first("SELECT 40 + 2").await.unwrap();
    assert_eq!(v, Some(42));
    let t = harness::table("hash_only");
    c.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY)")).await.unwrap();
    c.query_drop(format!("INSERT INTO {t} VALUES (1)")).await.unwrap();
    let n: Option<i64> = c.query_first(format!("SELECT COUNT(*) FROM {t}")).await.unwrap();
    assert_eq!(n, Some(1));
    // KILL QUERY from a second session interrupts the first one's statement.
    let id: Option<u32> = c.query_first("SELECT CONNECTION_ID()").await.unwrap();
    let mut k = p.conn().await;
    let sleeper = tokio::spawn(async move {
        let r = c.query_drop("SELECT SLEEP(5)").await;
        (r, c)
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    k.query_drop(format!("KILL QUERY {}", id.unwrap())).await.unwrap();
    let (r, mut c) = sleeper.await.unwrap();
    let interrupted = match r {
        Err(e) => harness::code(&e) == 1317,
        Ok(()) => true, // SLEEP() interrupted returns 1 without an error on some versions
    };
    assert!(interrupted);
    c.query_drop(format!("DROP TABLE {t}")).await.unwrap();
}

/// caching_sha2 for a user configured by its native hash alone, with no backend password: the
/// first login is a full authentication (the password in clear inside TLS from the mariadb CLI,
/// RSA-encrypted from mysql_async on clear text), checked against the hash, and its SHA1 logs
/// Sluice in to the backend; the next logins take the fast path from the in-memory cache. A
/// wrong password and an unknown user get the same 1045.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caching_sha2_logins_of_a_hash_only_user_reach_the_backend() {
    let certs = crate::tls::Certs::new("sha2-hash", 3001);
    let mut d = harness::direct(harness::primary_port()).await;
    let hash: Option<String> = d.query_first("SELECT PASSWORD('app_pw')").await.unwrap();
    let user = format!("[[users]]\nname = \"app\"\npassword_hash = \"{}\"\n\n[monitor]", hash.unwrap());
    let start = || {
        let user = user.clone();
        let section = certs.section("");
        harness::start_with(move |t| {
            t.replacen("[[users]]\nname = \"app\"\npassword = \"app_pw\"\n\n[monitor]", &user, 1)
                .replace("[proxy]", "[proxy]\nauth_plugin = \"caching_sha2_password\"")
                + &section
        })
    };
    let p = start().await;
    let app = p.shared.load().config.user("app").cloned().unwrap();
    assert!(app.password.is_empty() && app.backend_password.is_none());
    let port = p.addr.port();
    let ca = format!("--ssl-ca={}", certs.path("ca.pem"));
    let cli = |pw: &str| {
        crate::tls::output(crate::tls::cli(port, "app", pw).args([
            "--ssl",
            &ca,
            "--default-auth=caching_sha2_password",
            "-e",
            "SELECT CURRENT_USER()",
        ]))
    };
    assert!(p.shared.sha2_cached(&app).is_none());
    let (ok, out, err) = cli("app_pw");
    assert!(ok, "full authentication over TLS: {err}");
    assert_eq!(out.trim(), "app@%", "the backend login used the learned credential");
    assert!(p.shared.sha2_cached(&app).is_some(), "the full authentication was cached");
    let (ok, out, err) = cli("app_pw");
    assert!(ok, "fast path: {err}");
    assert_eq!(out.trim(), "app@%");
    let (ok, _, err) = cli("app_pX");
    assert!(!ok && err.contains("ERROR 1045"), "a wrong password on the fast path: {err}");
    // A new process (empty cache), clear text: mysql_async fetches the RSA key.
    let q = start().await;
    q.shared.rsa_key().await;
    let url = format!("mysql://app:app_pw@127.0.0.1:{}/sluice_test?prefer_socket=false", q.addr.port());
    let mut c =
        mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap()).await.expect("RSA full authentication");
    let who: Option<String> = c.query_first("/* sluice:primary */ SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(who.as_deref(), Some("app@%"));
    for (user, pw) in [("app", "nope"), ("nobody_here", "app_pw")] {
        let url = format!("mysql://{user}:{pw}@127.0.0.1:{}/sluice_test?prefer_socket=false", q.addr.port());
        let e = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap()).await.expect_err("refused");
        assert_eq!(harness::code(&e), 1045, "{user}: {e}");
    }
}
