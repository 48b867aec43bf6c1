//! Starts Sluice in process against the testbed, and gives tests what they need to talk to it
//! and to look behind it (direct connections to each server).

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};
use sluice::config::Config;
use sluice::metrics::Metrics;
use sluice::shared::Shared;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Testbed primary port (overridable like scripts/testbed).
pub fn primary_port() -> u16 {
    std::env::var("SLUICE_PRIMARY_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(13306)
}

/// A running proxy. Stops when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub shared: Arc<Shared>,
    shutdown: CancellationToken,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The testbed config (config/dev.toml) with `edit` applied to its text.
pub fn config_text(edit: impl FnOnce(String) -> String) -> String {
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/dev.toml")).unwrap();
    let port = primary_port();
    edit(base.replace("127.0.0.1:13306", &format!("127.0.0.1:{port}")))
}

/// Starts a proxy with the testbed config, edited.
pub async fn start_with(edit: impl FnOnce(String) -> String) -> Proxy {
    let config = Config::parse(&config_text(edit)).expect("test config is valid");
    start_config(config).await
}

/// Starts a proxy with a parsed config.
pub async fn start_config(config: Config) -> Proxy {
    start_inner(config, None).await
}

/// Starts a proxy from a config file that it watches for hot reload.
pub async fn start_file(path: &std::path::Path) -> Proxy {
    let config = sluice::config::load(path).expect("test config is valid");
    start_inner(config, Some(path.to_path_buf())).await
}

async fn start_inner(config: Config, path: Option<std::path::PathBuf>) -> Proxy {
    // RUST_LOG=sluice=debug shows the proxy's logs in failing tests' output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let shared = Shared::new(config, Arc::new(Metrics::new())).expect("[tls] loads");
    let shutdown = CancellationToken::new();
    let (s, t) = (shared.clone(), shutdown.clone());
    tokio::spawn(async move { sluice::app::run_shared(s, path, listener, Some(admin), t).await });
    Proxy { addr, admin: admin_addr, shared, shutdown }
}

/// Starts a proxy with the unmodified testbed config.
pub async fn start() -> Proxy {
    start_with(|t| t).await
}

impl Proxy {
    /// Begins shutdown, as SIGTERM does.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// The SQL admin interface's port, once it is listening (the proxy binds it as it starts).
    pub async fn admin_sql_port(&self) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(a) = self.shared.admin_sql_addr.get() {
                return a.port();
            }
            assert!(Instant::now() < deadline, "the admin interface is not listening");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Connection URL for the `app` user and database `sluice_test`.
    pub fn url(&self) -> String {
        format!("mysql://app:app_pw@127.0.0.1:{}/sluice_test?prefer_socket=false", self.addr.port())
    }

    /// A new client connection through the proxy.
    pub async fn conn(&self) -> Conn {
        Conn::new(Opts::from_url(&self.url()).unwrap()).await.expect("connect through sluice")
    }

    /// One backend's entry in `/status`.
    pub async fn backend_status(&self, addr: &str) -> serde_json::Value {
        let (_, body) = self.http_get("/status").await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let all = v["shards"].as_array().unwrap().iter().flat_map(|s| s["backends"].as_array().unwrap().iter());
        all.clone().find(|b| b["addr"] == addr).cloned().unwrap_or_else(|| panic!("{addr} not in /status: {v}"))
    }

    /// Waits until the monitor judges `addr` eligible (or not); returns how long it took.
    pub async fn until_eligible(&self, addr: &str, want: bool, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let b = self.backend_status(addr).await;
            if b["eligible"] == want {
                return started.elapsed();
            }
            assert!(started.elapsed() < limit, "eligible did not become {want} within {limit:?}: {b}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Statements relayed so far, over every destination and kind.
    pub fn queries(&self) -> u64 {
        self.shared.metrics.routed.iter().flatten().map(|c| c.get()).sum()
    }

    /// Connections (in use, idle) to the default shard's primary, summed over its pools.
    pub fn primary_pool(&self) -> (u32, u32) {
        let snap = self.shared.load_full();
        snap.topology.shards[snap.topology.default_shard].primary.pool_usage()
    }

    /// GET an admin path; returns (status, body).
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(self.admin).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.unwrap();
        let status = buf.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = buf.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default();
        (status, body)
    }
}

/// Ports of the testbed's two ordinary replicas (overridable like scripts/testbed).
pub fn replica_ports() -> Vec<u16> {
    let env = std::env::var("SLUICE_REPLICA_PORTS").unwrap_or_else(|_| "13307 13308".into());
    env.split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

/// Port of the testbed's delayed replica (MASTER_DELAY=3).
pub fn delayed_port() -> u16 {
    std::env::var("SLUICE_DELAYED_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(13309)
}

/// Runs SQL as root on a testbed server through its Unix socket (the app user cannot stop
/// replication); returns what it printed (tab-separated, no headers).
pub fn root_sql(port: u16, sql: &str) -> String {
    let dir = std::env::var("SLUICE_TESTBED_DIR").unwrap_or_else(|_| "/tmp/sluice-testbed".into());
    let out = std::process::Command::new("mariadb")
        .args(["--no-defaults", "-S", &format!("{dir}/{port}/sock"), "-uroot", "-N", "-B", "-e", sql])
        .output()
        .expect("mariadb client");
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Waits until both ordinary replicas have applied everything the primary has written so far
/// (MASTER_GTID_WAIT on the primary's binlog position): a test whose next client is a new
/// session (no read-your-writes with an earlier one) reads what an earlier session created.
pub fn replicas_caught_up() {
    let pos = root_sql(primary_port(), "SELECT @@gtid_binlog_pos");
    for port in replica_ports() {
        let waited = root_sql(port, &format!("SELECT MASTER_GTID_WAIT('{pos}', 30)"));
        assert_eq!(waited, "0", "replica {port} did not reach {pos} within 30 s");
    }
}

/// A server's global status counter (`Com_select`, ...), read through a direct connection
/// (SHOW STATUS does not count as a SELECT).
pub async fn status_counter(c: &mut Conn, name: &str) -> u64 {
    let row: Option<(String, u64)> = c.query_first(format!("SHOW GLOBAL STATUS LIKE '{name}'")).await.unwrap();
    row.unwrap().1
}

/// A direct connection to a testbed server (bypassing Sluice).
pub async fn direct(port: u16) -> Conn {
    let url = format!("mysql://app:app_pw@127.0.0.1:{port}/sluice_test");
    Conn::new(Opts::from_url(&url).unwrap()).await.expect("direct connection to the testbed")
}

/// A fresh table name unique to this test run.
pub fn table(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Runs a statement through a connection, panicking with the statement on failure.
pub async fn run(c: &mut Conn, sql: &str) {
    c.query_drop(sql).await.unwrap_or_else(|e| {
        let shown: String = sql.chars().take(200).collect();
        panic!("{shown}: {e}")
    });
}

/// The MySQL error code of a failed call.
pub fn code(e: &mysql_async::Error) -> u16 {
    match e {
        mysql_async::Error::Server(s) => s.code,
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// Connects and runs `sql`, expecting a failure at either step (drivers run statements of their
/// own while connecting); returns it.
pub async fn first_error(url: &str, sql: &str) -> mysql_async::Error {
    match Conn::new(Opts::from_url(url).unwrap()).await {
        Err(e) => e,
        Ok(mut c) => c.query_drop(sql).await.expect_err("statement should fail"),
    }
}

/// The backend thread running this client's statements right now (through Sluice,
/// `CONNECTION_ID()` is the Sluice session's id): the processlist row whose statement is the
/// very query asking. `primary` adds the `sluice:primary` hint.
pub async fn backend_thread(c: &mut Conn, primary: bool) -> u64 {
    let marker = table("self");
    let hint = if primary { "/* sluice:primary */ " } else { "" };
    let sql = format!("SELECT {hint}ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '%{marker}%'");
    let id: Option<u64> = c.query_first(sql).await.unwrap();
    id.expect("the asking statement is in the processlist")
}

/// The resident memory of this process (the proxy runs in it), in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A client socket spoken to packet by packet, for what no driver sends.
pub struct Wire {
    pub s: tokio::net::TcpStream,
    pub r: sluice::protocol::codec::PacketReader,
}

impl Wire {
    /// Sends `payload` as one packet starting at `seq`.
    pub async fn send(&mut self, seq: u8, payload: &[u8]) {
        use tokio::io::AsyncWriteExt;
        let mut out = bytes::BytesMut::new();
        sluice::protocol::codec::put_packet(&mut out, seq, payload);
        self.s.write_all(&out).await.unwrap();
    }

    /// The next packet; panics if the connection closed.
    pub async fn next(&mut self) -> sluice::protocol::codec::Packet {
        self.r.read_packet(&mut self.s).await.unwrap().expect("connection closed")
    }
}

/// Reads the fleet registry that the config at `path` names until `done` holds (at most
/// 10 s); returns the rows it saw last.
pub async fn fleet_until(
    path: &std::path::Path,
    what: &str,
    done: impl Fn(&[sluice::fleet::Member]) -> bool,
) -> Vec<sluice::fleet::Member> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = sluice::fleet::read_with(sluice::config::load(path).unwrap()).await.unwrap_or_default();
        if done(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "fleet registry: {what}: {m:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
