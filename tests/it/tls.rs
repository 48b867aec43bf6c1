//! TLS toward clients, with real clients: the mariadb CLI verifying the certificate against a
//! CA the test makes with openssl, PyMySQL (native and caching_sha2 full authentication inside
//! TLS), `require_secure_transport`, per-user `require_tls`, and a certificate rotated by a
//! reload under 20 connected TLS clients.

use crate::harness;
use mysql_async::prelude::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A CA and a server certificate for 127.0.0.1 it signed (serial `serial`), in a fresh
/// directory.
pub(crate) struct Certs {
    pub(crate) dir: PathBuf,
}

impl Certs {
    pub(crate) fn new(name: &str, serial: u32) -> Certs {
        let dir = std::env::temp_dir().join(format!("sluice-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let c = Certs { dir };
        c.run(
            c.openssl(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem"])
                .args(["-days", "2", "-subj", &format!("/CN=Sluice test CA {name}")]),
        );
        c.server(serial);
        c
    }

    /// A new server key and certificate from the same CA, with another serial.
    fn server(&self, serial: u32) {
        std::fs::write(
            self.dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        self.run(self.openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key.new"]).args([
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]));
        self.run(
            self.openssl(&["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "2"])
                .args(["-extfile", "ext.cnf", "-set_serial", &serial.to_string(), "-out", "server.pem.new"]),
        );
        // Both files replaced by rename, so a reload never reads half of one.
        std::fs::rename(self.dir.join("server.key.new"), self.dir.join("server.key")).unwrap();
        std::fs::rename(self.dir.join("server.pem.new"), self.dir.join("server.pem")).unwrap();
    }

    /// A client certificate (`{cn}.pem`, `{cn}.key`, subject `/CN={cn}`) signed by the CA in
    /// `ca` / `ca_key` (this directory's, or another one such as the testbed's).
    pub(crate) fn client(&self, cn: &str, ca: &str, ca_key: &str) -> (String, String) {
        std::fs::write(
            self.dir.join("client-ext.cnf"),
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        let (key, csr, pem) = (format!("{cn}.key"), format!("{cn}.csr"), format!("{cn}.pem"));
        self.run(
            self.openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr])
                .args(["-subj", &format!("/CN={cn}")]),
        );
        self.run(self.openssl(&["x509", "-req", "-in", &csr, "-CA", ca, "-CAkey", ca_key, "-days", "2"]).args([
            "-extfile",
            "client-ext.cnf",
            "-CAcreateserial",
            "-out",
            &pem,
        ]));
        (self.path(&pem), self.path(&key))
    }

    fn openssl(&self, args: &[&str]) -> Command {
        let mut c = Command::new("openssl");
        c.current_dir(&self.dir).args(args).stdout(Stdio::null()).stderr(Stdio::piped());
        c
    }

    fn run(&self, c: &mut Command) {
        let out = c.output().expect("openssl");
        assert!(out.status.success(), "{c:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub(crate) fn path(&self, f: &str) -> String {
        self.dir.join(f).display().to_string()
    }

    /// The `[tls]` section for these files.
    pub(crate) fn section(&self, extra: &str) -> String {
        format!("\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n{extra}\n", self.path("server.pem"), self.path("server.key"))
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn output(cmd: &mut Command) -> (bool, String, String) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

pub(crate) fn cli(port: u16, user: &str, password: &str) -> Command {
    let mut c = Command::new("mariadb");
    c.args(["--no-defaults", "-h127.0.0.1", &format!("-P{port}"), &format!("-u{user}"), &format!("-p{password}")])
        .args(["-N", "-B"]);
    c
}

pub(crate) fn python(script: &str, args: &[&str]) -> (bool, String, String) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/");
    output(Command::new("python3").arg(format!("{path}{script}")).args(args))
}

/// A user who must use TLS, logging in to the backends as `app`.
const SECURE_USER: &str =
    "[[users]]\nname = \"secure\"\npassword = \"secure_pw\"\nbackend_user = \"app\"\nbackend_password = \"app_pw\"\nrequire_tls = true\n\n[monitor]";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_cli_verifies_the_certificate_and_runs_over_tls() {
    let certs = Certs::new("cli", 1001);
    let other = Certs::new("cli-other", 7);
    let p = harness::start_with(|t| t + &certs.section("")).await;
    let port = p.addr.port();
    let ca = format!("--ssl-ca={}", certs.path("ca.pem"));
    let (ok, out, err) =
        output(cli(port, "app", "app_pw").args(["--ssl", &ca, "--ssl-verify-server-cert", "-e", "SELECT 1+1; \\s"]));
    assert!(ok, "{err}");
    assert!(out.starts_with("2\n"), "{out}");
    let cipher = out.lines().find(|l| l.starts_with("SSL:")).unwrap_or_default();
    assert!(cipher.contains("Cipher in use is TLS"), "the CLI reports TLS: {out}");
    // Against another CA the client refuses Sluice's certificate.
    let wrong = format!("--ssl-ca={}", other.path("ca.pem"));
    let (ok, _, err) =
        output(cli(port, "app", "app_pw").args(["--ssl", &wrong, "--ssl-verify-server-cert", "-e", "SELECT 1"]));
    assert!(!ok, "a certificate from another CA was accepted");
    assert!(err.contains("ERROR 2026"), "a TLS error: {err}");
    // Without TLS the same proxy still serves clear-text clients.
    let (ok, out, err) = output(cli(port, "app", "app_pw").args(["--skip-ssl", "-e", "SELECT 3"]));
    assert!(ok, "{err}");
    assert_eq!(out, "3\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymysql_over_tls_with_native_and_caching_sha2_full_authentication() {
    let certs = Certs::new("py", 1002);
    let ca = certs.path("ca.pem");
    for plugin in ["mysql_native_password", "caching_sha2_password"] {
        let p = harness::start_with(|t| {
            t.replace("[proxy]", &format!("[proxy]\nauth_plugin = \"{plugin}\"")) + &certs.section("")
        })
        .await;
        let port = p.addr.port().to_string();
        // First login: for caching_sha2 the full authentication (password in clear inside
        // TLS, no RSA); the second takes the fast path.
        for round in ["first", "second"] {
            let (ok, out, err) = python("pymysql_tls.py", &["check", &port, &ca]);
            assert!(ok, "{plugin}, {round} login: {err}");
            assert!(out.contains("TLSv1.3") || out.contains("TLSv1.2"), "{plugin}: {out}");
            assert!(out.contains("rows 3"), "{plugin}: {out}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_secure_transport_and_require_tls_refuse_clear_text_logins() {
    let certs = Certs::new("req", 1003);
    let ca = format!("--ssl-ca={}", certs.path("ca.pem"));
    let p = harness::start_with(|t| t + &certs.section("require_secure_transport = true")).await;
    let port = p.addr.port();
    let (ok, _, err) = output(cli(port, "app", "app_pw").args(["--skip-ssl", "-e", "SELECT 1"]));
    assert!(!ok);
    assert!(err.contains("ERROR 3159") && err.contains("insecure transport"), "{err}");
    let plain = mysql_async::Conn::new(mysql_async::Opts::from_url(&p.url()).unwrap()).await;
    assert_eq!(harness::code(&plain.expect_err("a clear-text login succeeded")), 3159);
    let (ok, out, err) =
        output(cli(port, "app", "app_pw").args(["--ssl", &ca, "--ssl-verify-server-cert", "-e", "SELECT 4"]));
    assert!(ok, "{err}");
    assert_eq!(out, "4\n");
    drop(p);

    // Per user: `secure` needs TLS, `app` does not.
    let p = harness::start_with(|t| t.replace("[monitor]", SECURE_USER) + &certs.section("")).await;
    let port = p.addr.port();
    let (ok, _, err) = output(cli(port, "secure", "secure_pw").args(["--skip-ssl", "-e", "SELECT 1"]));
    assert!(!ok);
    assert!(err.contains("ERROR 1045") && err.contains("must connect with TLS"), "{err}");
    // A wrong password says nothing about TLS.
    let (ok, _, err) = output(cli(port, "secure", "wrong").args(["--skip-ssl", "-e", "SELECT 1"]));
    assert!(!ok);
    assert!(err.contains("ERROR 1045") && !err.contains("TLS"), "{err}");
    let (ok, out, err) =
        output(cli(port, "secure", "secure_pw").args(["--ssl", &ca, "--ssl-verify-server-cert", "-e", "SELECT 5"]));
    assert!(ok, "{err}");
    assert_eq!(out, "5\n");
    let (ok, out, err) = output(cli(port, "app", "app_pw").args(["--skip-ssl", "-e", "SELECT 6"]));
    assert!(ok, "{err}");
    assert_eq!(out, "6\n");
    let mut c = p.conn().await;
    let v: Option<i64> = c.query_first("SELECT 7").await.unwrap();
    assert_eq!(v, Some(7));
}

/// A certificate that does not load is refused at start and on reload (the old one keeps
/// serving); without `[tls]`, a user who requires TLS is a config error.
#[test]
fn certificates_that_do_not_load_are_config_errors() {
    let certs = Certs::new("bad", 1004);
    let text = harness::config_text(|t| t + &certs.section(""));
    assert!(sluice::config::Config::parse(&text).is_ok());
    let missing = text.replace(&certs.path("server.key"), "/nonexistent/server.key");
    let e = sluice::config::Config::parse(&missing).unwrap_err().to_string();
    assert!(e.contains("[tls]") && e.contains("/nonexistent/server.key"), "{e}");
    let swapped = text.replace(&certs.path("server.pem"), &certs.path("server.key"));
    let e = sluice::config::Config::parse(&swapped).unwrap_err().to_string();
    assert!(e.contains("no PEM certificate"), "{e}");
    let orphan = harness::config_text(|t| t.replace("[monitor]", SECURE_USER));
    let e = sluice::config::Config::parse(&orphan).unwrap_err().to_string();
    assert!(e.contains("require_tls"), "{e}");
}

/// Rotation: 20 TLS clients stay connected while a reload swaps the certificate; the next
/// connection gets the new one (its serial), and a reload with a broken key is rejected with
/// the new certificate still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_rotated_by_reload_reaches_new_connections_and_drops_none() {
    let certs = Certs::new("rot", 4242);
    let path = certs.dir.join("sluice.toml");
    let text = harness::config_text(|t| t + &certs.section(""));
    std::fs::write(&path, &text).unwrap();
    let p = harness::start_file(&path).await;
    let port = p.addr.port().to_string();
    let ca = certs.path("ca.pem");
    let mut held = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/pymysql_tls.py"))
        .args(["hold", &port, &ca, "20"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(held.stdout.take().unwrap()));
    let first = lines.next().expect("the holder reports").unwrap();
    assert_eq!(first, "ready 20 serial 4242", "{first}");

    std::thread::sleep(Duration::from_millis(1100)); // a new modification time
    certs.server(4343);
    std::fs::write(&path, text.replace("\n[tls]", "\n\n[tls]")).unwrap();
    wait_applied(&p, 1).await;
    let (ok, out, err) = python("pymysql_tls.py", &["serial", &port, &ca]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "serial 4343", "the next connection has the new certificate");
    {
        use std::io::Write;
        writeln!(held.stdin.as_mut().unwrap(), "go").unwrap();
    }
    let after = lines.next().expect("the holder reports again").unwrap();
    assert_eq!(after, "alive 20 of 20", "{after}");
    assert!(held.wait().unwrap().success());

    // A key that does not load: rejected, the current certificate stays.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(certs.dir.join("server.key"), "not a key").unwrap();
    std::fs::write(&path, &text).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.shared.metrics.config_reloads.with_label_values(&["rejected"]).get() < 1 {
        assert!(Instant::now() < deadline, "the broken key was not rejected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (ok, out, err) = python("pymysql_tls.py", &["serial", &port, &ca]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "serial 4343");
}

async fn wait_applied(p: &harness::Proxy, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.shared.metrics.config_reloads.with_label_values(&["applied"]).get() < count {
        assert!(Instant::now() < deadline, "no reload applied within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Three more drivers, each verifying the certificate: MariaDB Connector/J (`useSsl` with
/// `serverSslCert`, a prepared statement and a text query), node mysql2 (`ssl.ca`, text and
/// prepared), mysql-connector-python (`ssl_ca`, `ssl_verify_cert`); Connector/J refuses a
/// certificate from another CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_j_node_mysql2_and_connector_python_over_tls() {
    let certs = Certs::new("drivers", 1005);
    let other = Certs::new("drivers-other", 8);
    let p = harness::start_with(|t| t + &certs.section("")).await;
    let port = p.addr.port().to_string();
    let ca = certs.path("ca.pem");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
    let classes = std::env::temp_dir().join(format!("sluice-jdbc-tls-{}", std::process::id()));
    std::fs::create_dir_all(&classes).unwrap();
    let (ok, _, err) = output(Command::new("javac").arg("-d").arg(&classes).arg(format!("{dir}/JdbcTls.java")));
    assert!(ok, "javac: {err}");
    let cp = format!("{}:/usr/share/java/mariadb-java-client.jar", classes.display());
    let (ok, out, err) = output(Command::new("java").args(["-cp", &cp, "JdbcTls", &port, &ca]));
    assert!(ok && out.trim_end().ends_with("ALL OK"), "JDBC over TLS: {out}\n{err}");
    let (ok, _, err) = output(Command::new("java").args(["-cp", &cp, "JdbcTls", &port, &other.path("ca.pem")]));
    assert!(!ok, "JDBC accepted a certificate from another CA: {err}");
    let _ = std::fs::remove_dir_all(&classes);

    let (ok, out, err) = output(Command::new("node").current_dir(dir).args(["node_mysql2_tls.js", &port, &ca]));
    assert!(ok, "node mysql2 over TLS: {err}");
    assert!(out.starts_with("rows 2 x TLSv1."), "{out}");

    let (ok, out, err) = python("connector_tls.py", &[&port, &ca]);
    assert!(ok, "mysql-connector-python over TLS: {err}");
    assert!(out.starts_with("value 42 TLSv1."), "{out}");
}

/// The cipher of the backend connection a statement ran on, asked through Sluice
/// (`SHOW STATUS LIKE 'Ssl_cipher'` is the client's own link, answered by Sluice).
pub(crate) async fn backend_cipher(c: &mut mysql_async::Conn) -> String {
    let sql = "/* sluice:primary */ SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'";
    let row: Option<String> = c.query_first(sql).await.unwrap();
    row.unwrap_or_default()
}

pub(crate) fn testbed_ca() -> String {
    let dir = std::env::var("SLUICE_TESTBED_DIR").unwrap_or_else(|_| "/tmp/sluice-testbed".into());
    format!("{dir}/tls/ca.pem")
}

/// Sluice's own connections to a shard over TLS, in each mode, against the testbed's
/// TLS-enabled servers (their certificate is for 127.0.0.1, signed by the testbed's CA).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_connections_use_tls_as_each_mode_says() {
    let ca = testbed_ca();
    for (mode, encrypted) in
        [("disabled", false), ("preferred", true), ("required", true), ("verify_ca", true), ("verify_identity", true)]
    {
        let p = harness::start_with(|t| {
            t.replacen("name = \"main\"\n", &format!("name = \"main\"\ntls = \"{mode}\"\ntls_ca = \"{ca}\"\n"), 1)
        })
        .await;
        let mut c = p.conn().await;
        let cipher = backend_cipher(&mut c).await;
        assert_eq!(!cipher.is_empty(), encrypted, "tls = {mode}: backend cipher '{cipher}'");
        let v: Option<i64> = c.query_first("SELECT 1").await.unwrap();
        assert_eq!(v, Some(1));
        // The monitor reaches the servers in the same mode: the replicas become eligible.
        let replica = format!("127.0.0.1:{}", harness::replica_ports()[0]);
        p.until_eligible(&replica, true, Duration::from_secs(5)).await;
    }
}

/// A shard whose servers' certificate does not chain to its `tls_ca`: the monitor marks it
/// down, its statements get a clear error, the other shards are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_with_a_certificate_from_another_ca_is_refused_and_others_served() {
    let wrong = Certs::new("backend-wrong", 9);
    let p = harness::start_with(|t| {
        t.replacen(
            "name = \"s0\"\n",
            &format!("name = \"s0\"\ntls = \"verify_ca\"\ntls_ca = \"{}\"\n", wrong.path("ca.pem")),
            1,
        )
    })
    .await;
    let s0 = format!("127.0.0.1:{}", 13316);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let b = p.backend_status(&s0).await;
        if b["checked"] == true && b["up"] == false {
            break;
        }
        assert!(Instant::now() < deadline, "s0 was not marked down: {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ring = sluice::sharding::Ring::new(&["s0".to_string(), "s1".to_string(), "s2".to_string()], 256);
    let on =
        |shard: usize| (1..10_000).find(|&k| ring.shard_index(&sluice::sharding::KeyValue::Int(k)) == shard).unwrap();
    let mut c = p.conn().await;
    let e = c.query_drop(format!("SELECT * FROM orders WHERE user_id = {}", on(0))).await.expect_err("s0 refused");
    assert_eq!(harness::code(&e), 1105, "{e}");
    assert!(e.to_string().contains("s0") && e.to_string().contains("TLS"), "names the shard and why: {e}");
    let v: Option<i64> = c.query_first("SELECT 2").await.unwrap();
    assert_eq!(v, Some(2), "the default shard is served");
    let r = c.query_drop(format!("SELECT * FROM orders WHERE user_id = {}", on(1))).await;
    assert!(r.is_ok() || harness::code(&r.unwrap_err()) == 1146, "shard s1 is served");
}

/// mysql_async (rustls) verifying Sluice's certificate against the test's CA, with
/// `require_secure_transport` on (so a login that succeeds ran over TLS): text and prepared
/// statements work; against another CA the connection is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_async_over_tls_verifies_the_certificate() {
    let certs = Certs::new("mysql-async", 1004);
    let other = Certs::new("mysql-async-other", 8);
    let p = harness::start_with(|t| t + &certs.section("require_secure_transport = true")).await;
    let opts = |ca: String| {
        let ssl = mysql_async::SslOpts::default().with_root_certs(vec![PathBuf::from(ca).into()]);
        mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&p.url()).unwrap()).ssl_opts(ssl)
    };
    let mut c = mysql_async::Conn::new(opts(certs.path("ca.pem"))).await.expect("TLS login");
    let v: Option<i64> = c.exec_first("SELECT ? + 1", (41,)).await.unwrap();
    assert_eq!(v, Some(42));
    let v: Option<String> = c.query_first("SELECT 'text protocol'").await.unwrap();
    assert_eq!(v.as_deref(), Some("text protocol"));
    // The check drivers make that the link is encrypted describes the client's own link
    // (go-sql-driver's TestTLS), in the names a server uses; the backend link is clear.
    let cipher: Option<(String, String)> = c.query_first("SHOW STATUS LIKE 'Ssl_cipher'").await.unwrap();
    let version: Option<(String, String)> = c.query_first("show session status like 'ssl_version'").await.unwrap();
    assert_eq!(cipher.as_ref().map(|r| r.0.as_str()), Some("Ssl_cipher"));
    let cipher = cipher.unwrap().1;
    assert!(
        ["TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"].contains(&cipher.as_str()),
        "{cipher}"
    );
    assert_eq!(version.unwrap().1, "TLSv1.3");
    assert_eq!(backend_cipher(&mut c).await, "", "the testbed link is clear");
    let e = mysql_async::Conn::new(opts(other.path("ca.pem"))).await.expect_err("another CA");
    assert!(!matches!(e, mysql_async::Error::Server(_)), "refused at the TLS handshake: {e}");
}

/// In clear, `Ssl_cipher` is empty, as a server answers; the status row is Sluice's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_cipher_of_a_clear_connection_is_empty() {
    let p = harness::start().await;
    let mut c = p.conn().await;
    let row: Option<(String, String)> = c.query_first("SHOW STATUS LIKE 'Ssl_cipher'").await.unwrap();
    assert_eq!(row, Some(("Ssl_cipher".to_string(), String::new())));
}
