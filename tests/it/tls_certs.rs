//! Certificates beyond the server's own: client certificates presented to Sluice (`[tls] ca`),
//! a client certificate Sluice presents to the backends for a `REQUIRE X509` account
//! (`tls_cert` / `tls_key`), and TLS settings of one replica that differ from its shard's.

use crate::harness;
use crate::tls::{backend_cipher, cli, output, testbed_ca, Certs};
use mysql_async::prelude::*;
use std::time::Duration;

/// With `[tls] ca`, a client certificate chained to that CA is accepted, one from another CA
/// ends the TLS handshake, and a client without a certificate still logs in with its password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_verified_against_the_configured_ca() {
    let certs = Certs::new("clientca", 2001);
    let other = Certs::new("clientca-other", 2002);
    let (good, good_key) = certs.client("alice", &certs.path("ca.pem"), &certs.path("ca.key"));
    let (bad, bad_key) = other.client("mallory", &other.path("ca.pem"), &other.path("ca.key"));
    let ca_line = format!("ca = \"{}\"", certs.path("ca.pem"));
    let p = harness::start_with(|t| t + &certs.section(&ca_line)).await;
    let port = p.addr.port();
    let verify = format!("--ssl-ca={}", certs.path("ca.pem"));
    let with_cert = |cert: &str, key: &str| {
        let (c, k) = (format!("--ssl-cert={cert}"), format!("--ssl-key={key}"));
        output(cli(port, "app", "app_pw").args(["--ssl", &verify, &c, &k, "-e", "SELECT 'in'; \\s"]))
    };
    let (ok, out, err) = with_cert(&good, &good_key);
    assert!(ok, "a certificate from the configured CA was refused: {err}");
    assert!(out.starts_with("in\n") && out.contains("Cipher in use is TLS"), "{out}");
    let (ok, _, err) = with_cert(&bad, &bad_key);
    assert!(!ok, "a certificate from another CA was accepted");
    assert!(err.contains("ERROR 2026") || err.contains("ERROR 2013"), "a TLS failure: {err}");
    let (ok, out, err) = output(cli(port, "app", "app_pw").args(["--ssl", &verify, "-e", "SELECT 'no cert'"]));
    assert!(ok, "{err}");
    assert_eq!(out, "no cert\n");
}

/// The cipher of the replica connection a read lands on.
async fn replica_cipher(c: &mut mysql_async::Conn) -> String {
    let sql = "/* sluice:replica */ SELECT @@port, VARIABLE_VALUE FROM information_schema.SESSION_STATUS \
               WHERE VARIABLE_NAME = 'SSL_CIPHER'";
    let v: Option<(u16, String)> = c.query_first(sql).await.unwrap();
    let (port, cipher) = v.unwrap();
    assert_eq!(port, harness::replica_ports()[0], "the read ran on the replica");
    cipher
}

/// A backend account created `REQUIRE X509` is reached with the shard's `tls_cert` /
/// `tls_key` (signed by the servers' CA); without them the server refuses Sluice's login and
/// the client gets a clear error. A replica's own `tls = "disabled"` overrides its shard's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_get_sluices_client_certificate_and_replicas_their_own_tls() {
    let primary = harness::primary_port();
    harness::root_sql(
        primary,
        "CREATE USER IF NOT EXISTS 'x509app'@'%' IDENTIFIED BY 'x509_pw' REQUIRE X509;
         GRANT SELECT ON *.* TO 'x509app'@'%';",
    );
    struct DropUser(u16);
    impl Drop for DropUser {
        fn drop(&mut self) {
            harness::root_sql(self.0, "DROP USER IF EXISTS 'x509app'@'%'");
        }
    }
    let _cleanup = DropUser(primary);
    let certs = Certs::new("backend-client", 2003);
    let ca = testbed_ca();
    let ca_key = ca.replace("ca.pem", "ca-key.pem");
    let (cert, key) = certs.client("sluice-backend", &ca, &ca_key);
    let user = "[[users]]\nname = \"certified\"\npassword = \"c_pw\"\nbackend_user = \"x509app\"\n\
                backend_password = \"x509_pw\"\n\n[monitor]";
    let r0 = harness::replica_ports()[0];
    let shard = |with_cert: bool| {
        let files = if with_cert { format!("tls_cert = \"{cert}\"\ntls_key = \"{key}\"\n") } else { String::new() };
        let replicas = format!("replicas = [ {{ addr = \"127.0.0.1:{r0}\", weight = 100, tls = \"disabled\" }} ]");
        let tls = format!("name = \"main\"\ntls = \"verify_identity\"\ntls_ca = \"{ca}\"\n{files}");
        let user = user.to_string();
        move |t: String| {
            let start = t.find("replicas = [").unwrap();
            let end = start + t[start..].find('\n').unwrap();
            let t = format!("{}{replicas}{}", &t[..start], &t[end..]);
            t.replacen("name = \"main\"\n", &tls, 1).replace("[monitor]", &user)
        }
    };
    let p = harness::start_with(shard(true)).await;
    let url = format!("mysql://certified:c_pw@127.0.0.1:{}/sluice_test", p.addr.port());
    let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap()).await.unwrap();
    let who: Option<String> = c.query_first("/* sluice:primary */ SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(who.as_deref(), Some("x509app@%"), "logged in to the primary with the certificate");
    assert!(!backend_cipher(&mut c).await.is_empty(), "the primary connection is encrypted");
    p.until_eligible(&format!("127.0.0.1:{r0}"), true, Duration::from_secs(5)).await;
    // The replica's own tls = "disabled" applies (to the `app` account: x509app cannot log in
    // there without TLS, so its reads fall back to the primary).
    let mut a = p.conn().await;
    assert_eq!(replica_cipher(&mut a).await, "", "the replica's own tls = \"disabled\" applies");
    assert!(!backend_cipher(&mut a).await.is_empty(), "the shard's TLS still applies to its primary");
    // The same account without Sluice's certificate: the server refuses, the client is told.
    let q = harness::start_with(shard(false)).await;
    let url = format!("mysql://certified:c_pw@127.0.0.1:{}/sluice_test", q.addr.port());
    let e = harness::first_error(&url, "/* sluice:primary */ SELECT 1").await;
    assert_eq!(harness::code(&e), 1105, "{e}");
    assert!(e.to_string().contains("1045"), "says the backend refused the login: {e}");
}

/// A replica's TLS keys are checked like a shard's: a verifying mode without a CA, a
/// certificate without its key, and a certificate over a disabled connection are refused.
#[test]
fn a_replicas_tls_settings_are_validated() {
    let base = harness::config_text(|t| t);
    let with_replica = |extra: &str| {
        let start = base.find("replicas = [").unwrap();
        let end = start + base[start..].find('\n').unwrap();
        format!("{}replicas = [ {{ addr = \"127.0.0.1:13307\"{extra} }} ]{}", &base[..start], &base[end..])
    };
    let problems = |extra: &str| match sluice::config::Config::parse(&with_replica(extra)) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    };
    assert!(problems(", tls = \"verify_ca\"").contains("needs tls_ca"), "{}", problems(", tls = \"verify_ca\""));
    assert!(problems(", tls = \"required\", tls_cert = \"/x.pem\"").contains("go together"));
    let disabled = problems(", tls_cert = \"/x.pem\", tls_key = \"/x.key\"");
    assert!(disabled.contains("tls is disabled"), "{disabled}");
    let missing = problems(", tls = \"required\", tls_cert = \"/nonexistent.pem\", tls_key = \"/nonexistent.key\"");
    assert!(missing.contains("/nonexistent.pem"), "{missing}");
    assert_eq!(problems(&format!(", tls = \"verify_ca\", tls_ca = \"{}\"", testbed_ca())), "", "a valid override");
}
