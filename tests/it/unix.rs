//! Sluice's Unix socket (`[proxy] socket`), used by real clients as a server's socket.

use crate::harness::{self, Proxy};
use crate::tls::output;
use std::process::Command;
use std::time::Duration;

/// A socket path of this test process, unique per call.
fn socket_path(name: &str) -> String {
    format!("/tmp/sluice-it-{}-{name}.sock", std::process::id())
}

async fn with_socket(path: &str) -> Proxy {
    let line = format!("[proxy]\nsocket = \"{path}\"\n");
    let p = harness::start_with(|t| t.replacen("[proxy]\n", &line, 1)).await;
    for _ in 0..100 {
        if std::path::Path::new(path).exists() {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the socket {path} was not created");
}

fn cli_on(path: &str) -> Command {
    let mut c = Command::new("mariadb");
    c.args(["--no-defaults", "-S", path, "-uapp", "-papp_pw", "-N", "-B", "sluice_test"]);
    c
}

/// The mariadb CLI and PyMySQL over the socket: statements, a write read back, `@@socket`
/// answering Sluice's own path (the backend's would bypass the proxy), and the socket
/// counted like any client connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mariadb_cli_and_pymysql_connect_over_the_unix_socket() {
    let path = socket_path("clients");
    let p = with_socket(&path).await;
    let table = harness::table("unix");
    let sql = format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO {table} VALUES (1, 'socket'); \
         SELECT v FROM {table} WHERE id = 1; SELECT @@socket; DROP TABLE {table}"
    );
    let (ok, out, err) = output(cli_on(&path).args(["-e", &sql]));
    assert!(ok, "{err}");
    assert_eq!(out, format!("socket\n{path}\n"));
    let script = "import pymysql,sys\nc=pymysql.connect(unix_socket=sys.argv[1],user='app',password='app_pw',database='sluice_test')\n\
                  cur=c.cursor(); cur.execute('SELECT 40 + %s', (2,)); print(cur.fetchone()[0])";
    let o = Command::new("python3").args(["-c", script, &path]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "42\n");
    assert!(p.shared.metrics.client_connections_total.get() >= 2);
    // A wrong password is refused there as on TCP.
    let (ok, _, err) =
        output(Command::new("mariadb").args(["--no-defaults", "-S", &path, "-uapp", "-pwrong", "-e", "SELECT 1"]));
    assert!(!ok && err.contains("ERROR 1045"), "{err}");
}

/// A client on the socket that goes away mid-statement has its statement stopped on the
/// backend, as on TCP (the hang-up watch peeks the socket without reading it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_client_that_hangs_up_has_its_statement_killed() {
    let path = socket_path("hangup");
    let _p = with_socket(&path).await;
    let sql = "/* sluice:primary */ SELECT SLEEP(20) AS unix_hangup_probe";
    let mut child = cli_on(&path).args(["--comments", "-e", sql]).stdout(std::process::Stdio::null()).spawn().unwrap();
    let mut direct = harness::direct(harness::primary_port()).await;
    let running = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%unix_hangup_probe%' AND INFO NOT LIKE '%PROCESSLIST%'";
    let mut seen = 0;
    for _ in 0..100 {
        seen = mysql_async::prelude::Queryable::query_first::<u64, _>(&mut direct, running).await.unwrap().unwrap();
        if seen > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, 1, "the statement did not start on the primary");
    child.kill().unwrap();
    child.wait().unwrap();
    for _ in 0..100 {
        seen = mysql_async::prelude::Queryable::query_first::<u64, _>(&mut direct, running).await.unwrap().unwrap();
        if seen == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the statement of a client that hung up still runs");
}

/// A second Sluice with the same socket takes the path over (new clients reach it; the
/// first keeps serving its own), and the first, shutting down, leaves the second's file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_process_takes_the_socket_over_and_the_old_one_leaves_it() {
    let path = socket_path("takeover");
    let old = with_socket(&path).await;
    let new = with_socket(&path).await;
    let (ok, _, err) = output(cli_on(&path).args(["-e", "SELECT 1"]));
    assert!(ok, "{err}");
    assert_eq!(old.shared.metrics.client_connections_total.get(), 0, "a new client reached the old process");
    assert_eq!(new.shared.metrics.client_connections_total.get(), 1);
    old.shutdown();
    drop(old);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(std::path::Path::new(&path).exists(), "the old process removed the new one's socket");
    let (ok, _, err) = output(cli_on(&path).args(["-e", "SELECT 1"]));
    assert!(ok, "{err}");
    new.shutdown();
    for _ in 0..100 {
        if !std::path::Path::new(&path).exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the socket file was left behind at shutdown");
}
