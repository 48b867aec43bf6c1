//! Read/write splitting against the real primary and replicas: where statements land
//! (counted by the servers themselves), consistency levels, hints, read-only transactions,
//! fallback, and a replica dying under load.
//!
//! Tests named `serial_*` count the servers' global `Com_select` and run alone (scripts/test
//! runs them in a second, single-threaded pass): other tests' reads would be counted too.

use crate::harness::{self, run, status_counter};
use mysql_async::prelude::*;
use mysql_async::Conn;
use std::time::{Duration, Instant};

pub(crate) const REPLICAS_LINE: &str =
    "replicas = [ { addr = \"127.0.0.1:13307\", weight = 100 }, { addr = \"127.0.0.1:13308\", weight = 100 } ]";

/// The testbed config with the main shard's replicas replaced and `extra` appended to
/// `[replicas]`.
pub(crate) fn config(replicas: &str, extra: &str) -> impl FnOnce(String) -> String {
    let replicas = format!("replicas = [ {replicas} ]");
    let extra = extra.to_string();
    move |t: String| {
        assert!(t.contains(REPLICAS_LINE), "config/dev.toml changed its replicas line");
        t.replace(REPLICAS_LINE, &replicas)
            .replace("consistency = \"session\"", "")
            .replace("fallback = \"primary\"", "")
            .replace("check_interval_ms = 250", &format!("check_interval_ms = 250\n{extra}"))
    }
}

pub(crate) fn replica(port: u16, weight: u32) -> String {
    format!("{{ addr = \"127.0.0.1:{port}\", weight = {weight} }}")
}

/// Which server answered: its server_id, read with a plain SELECT (no system variable, which
/// would keep the read on the primary).
const SERVER_ID: &str =
    "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME = 'SERVER_ID'";

async fn server_id(c: &mut Conn, prefix: &str) -> u32 {
    let v: Option<String> = c.query_first(format!("{prefix}{SERVER_ID}")).await.unwrap();
    v.unwrap().parse().unwrap()
}

async fn direct_server_id(port: u16) -> u32 {
    let mut d = harness::direct(port).await;
    let id = server_id(&mut d, "").await;
    d.disconnect().await.unwrap();
    id
}

pub(crate) async fn wait_all_eligible(p: &harness::Proxy, addrs: &[String]) {
    for a in addrs {
        p.until_eligible(a, true, Duration::from_secs(10)).await;
    }
}

/// Creates `t` with `rows` rows on the primary directly and waits until both ordinary replicas
/// have it.
pub(crate) async fn table_on_replicas(t: &str, rows: u32) {
    let mut d = harness::direct(harness::primary_port()).await;
    run(&mut d, &format!("CREATE TABLE {t} (id INT PRIMARY KEY, c VARCHAR(20))")).await;
    let values: Vec<String> = (1..=rows).map(|i| format!("({i}, 'row{i}')")).collect();
    run(&mut d, &format!("INSERT INTO {t} VALUES {}", values.join(","))).await;
    for port in harness::replica_ports() {
        let mut r = harness::direct(port).await;
        let started = Instant::now();
        loop {
            let n: Result<Option<u32>, _> = r.query_first(format!("SELECT COUNT(*) FROM {t}")).await;
            if matches!(n, Ok(Some(x)) if x == rows) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "replica {port} did not get {t}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub(crate) async fn drop_table(t: &str) {
    let mut d = harness::direct(harness::primary_port()).await;
    run(&mut d, &format!("DROP TABLE IF EXISTS {t}")).await;
}

/// Clients reading `table` (built by [`table_on_replicas`]) until stopped: client `k`'s
/// `n`th read asks for row `id(k, n)` and must get it back; `pause` between reads.
pub(crate) struct ReadLoad {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<(u32, Vec<String>)>>,
}

impl ReadLoad {
    pub(crate) fn start(url: String, table: &str, clients: u32, id: fn(u32, u32) -> u32, pause: Duration) -> ReadLoad {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks = (0..clients)
            .map(|k| {
                let (url, t, stop) = (url.clone(), table.to_string(), stop.clone());
                tokio::spawn(async move {
                    let mut c = Conn::new(mysql_async::Opts::from_url(&url).unwrap()).await.unwrap();
                    let (mut ok, mut errors) = (0u32, Vec::new());
                    let mut n = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let i = id(k, n);
                        n += 1;
                        match c.query_first::<String, _>(format!("SELECT c FROM {t} WHERE id = {i}")).await {
                            Ok(Some(v)) if v == format!("row{i}") => ok += 1,
                            other => errors.push(format!("{other:?}")),
                        }
                        if !pause.is_zero() {
                            tokio::time::sleep(pause).await;
                        }
                    }
                    (ok, errors)
                })
            })
            .collect();
        ReadLoad { stop, tasks }
    }

    /// Stops the clients: reads that succeeded, and every client-visible error.
    pub(crate) async fn finish(self) -> (u32, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (mut ok, mut errors) = (0, Vec::new());
        for task in self.tasks {
            let (o, e) = task.await.unwrap();
            ok += o;
            errors.extend(e);
        }
        (ok, errors)
    }
}

/// 1,000 plain reads: every one on a replica (none on the primary, by its own Com_select),
/// split near the 1:3 weights; writes and a transaction's statements on the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_reads_spread_over_replicas_by_weight_and_writes_stay_on_the_primary() {
    let ports = harness::replica_ports();
    let reps = format!("{}, {}", replica(ports[0], 100), replica(ports[1], 300));
    let p = harness::start_with(config(&reps, "")).await;
    let t = harness::table("split");
    table_on_replicas(&t, 100).await;
    wait_all_eligible(&p, &ports.iter().map(|p| format!("127.0.0.1:{p}")).collect::<Vec<_>>()).await;
    let mut c = p.conn().await;
    let mut servers = vec![harness::direct(harness::primary_port()).await];
    for &port in &ports {
        servers.push(harness::direct(port).await);
    }
    let mut before = Vec::new();
    for s in servers.iter_mut() {
        before.push(status_counter(s, "Com_select").await);
    }
    for i in 0..1000 {
        let v: Option<String> = c.query_first(format!("SELECT c FROM {t} WHERE id = {}", i % 100 + 1)).await.unwrap();
        assert_eq!(v, Some(format!("row{}", i % 100 + 1)));
    }
    let mut delta = Vec::new();
    for (s, b) in servers.iter_mut().zip(&before) {
        delta.push(status_counter(s, "Com_select").await - b);
    }
    eprintln!("Com_select deltas (primary, replica w=100, replica w=300): {delta:?}");
    assert_eq!(delta[0], 0, "reads reached the primary: {delta:?}");
    assert!(delta[1] + delta[2] >= 950, "fewer than 95% of reads on replicas: {delta:?}");
    let share = delta[2] as f64 / (delta[1] + delta[2]) as f64;
    assert!((share - 0.75).abs() < 0.06, "split {share:.3} is not near the 0.75 the weights ask for: {delta:?}");

    // Writes: on the primary (a replica would refuse them: read_only, and app has no SUPER).
    let primary_id = direct_server_id(harness::primary_port()).await;
    for i in 101..=150 {
        run(&mut c, &format!("INSERT INTO {t} VALUES ({i}, 'w')")).await;
    }
    // A transaction: every statement, reads included, on one primary connection.
    run(&mut c, "BEGIN").await;
    let id_a = server_id(&mut c, "").await;
    let conn_a = harness::backend_thread(&mut c, false).await;
    run(&mut c, &format!("UPDATE {t} SET c = 'txn' WHERE id = 1")).await;
    let seen: Option<String> = c.query_first(format!("SELECT c FROM {t} WHERE id = 1")).await.unwrap();
    let conn_b = harness::backend_thread(&mut c, false).await;
    run(&mut c, "COMMIT").await;
    assert_eq!((id_a, seen.as_deref(), conn_a), (primary_id, Some("txn"), conn_b));
    let n: Option<u32> = servers[0].query_first(format!("SELECT COUNT(*) FROM {t} WHERE id > 100")).await.unwrap();
    assert_eq!(n, Some(50));
    drop_table(&t).await;
}

/// A replica whose SQL thread stops gets no reads; after START SLAVE it gets reads again
/// within two check intervals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_stopped_replica_gets_no_reads_and_returns_after_start_slave() {
    let ports = harness::replica_ports();
    let reps = format!("{}, {}", replica(ports[0], 100), replica(ports[1], 100));
    let p = harness::start_with(config(&reps, "")).await;
    let t = harness::table("lagx");
    table_on_replicas(&t, 10).await;
    let addr = format!("127.0.0.1:{}", ports[1]);
    wait_all_eligible(&p, &[format!("127.0.0.1:{}", ports[0]), addr.clone()]).await;
    let mut c = p.conn().await;
    let mut stopped = harness::direct(ports[1]).await;
    struct Restart(u16);
    impl Drop for Restart {
        fn drop(&mut self) {
            harness::root_sql(self.0, "START SLAVE");
        }
    }
    let _guard = Restart(ports[1]);
    harness::root_sql(ports[1], "STOP SLAVE SQL_THREAD");
    let mut d = harness::direct(harness::primary_port()).await;
    run(&mut d, &format!("INSERT INTO {t} VALUES (11, 'new')")).await;
    let excluded = p.until_eligible(&addr, false, Duration::from_secs(3)).await;
    let before = status_counter(&mut stopped, "Com_select").await;
    for _ in 0..200 {
        let n: Option<u32> = c.query_first(format!("SELECT COUNT(*) FROM {t}")).await.unwrap();
        assert_eq!(n, Some(11), "a read saw the stopped replica's stale data");
    }
    assert_eq!(status_counter(&mut stopped, "Com_select").await, before, "the stopped replica got reads");

    harness::root_sql(ports[1], "START SLAVE SQL_THREAD");
    let started = Instant::now();
    let back = loop {
        let _: Option<u32> = c.query_first(format!("SELECT COUNT(*) FROM {t}")).await.unwrap();
        if status_counter(&mut stopped, "Com_select").await > before {
            break started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the replica got no reads after START SLAVE");
    };
    eprintln!("excluded {excluded:?} after STOP SLAVE SQL_THREAD; reads again {back:?} after START");
    assert!(back <= Duration::from_millis(2 * 250 + 100), "reads came back only after {back:?}");
    drop_table(&t).await;
}

/// consistency = "session": a write followed by a read in the same session always sees the
/// write, although the only replica in rotation is 3 seconds behind (MASTER_DELAY) and
/// eligible. With `eventual`, the same read does not see it (so the test can fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_consistency_reads_own_writes_past_a_delayed_replica() {
    let delayed = harness::delayed_port();
    let p = harness::start_with(|t| {
        config(&replica(delayed, 100), "consistency = \"session\"")(t)
            .replace("max_lag_ms = 1000", "max_lag_ms = 60000")
    })
    .await;
    p.until_eligible(&format!("127.0.0.1:{delayed}"), true, Duration::from_secs(15)).await;
    let t = harness::table("ryw");
    let mut c = p.conn().await;
    run(&mut c, &format!("CREATE TABLE {t} (id INT PRIMARY KEY)")).await;
    for i in 1..=20u32 {
        run(&mut c, &format!("INSERT INTO {t} VALUES ({i})")).await;
        let n: Option<u32> = c.query_first(format!("SELECT COUNT(*) FROM {t}")).await.unwrap();
        assert_eq!(n, Some(i), "read-your-writes broken after write {i}");
    }
    // The same read with eventual consistency goes to the delayed replica, which has not
    // applied the writes yet (or not even the CREATE TABLE).
    run(&mut c, "SET @@sluice_consistency = 'eventual'").await;
    let v: Option<String> = c.query_first("SELECT @@sluice_consistency").await.unwrap();
    assert_eq!(v.as_deref(), Some("eventual"));
    let stale = c.query_first::<u32, _>(format!("SELECT COUNT(*) FROM {t}")).await;
    assert!(!matches!(stale, Ok(Some(20))), "the delayed replica was not behind: {stale:?}");
    // Once the replica has applied the session's writes, session reads use it again.
    run(&mut c, "SET @@sluice_consistency = 'session'").await;
    let replica_reads = || p.shared.metrics.routed[sluice::router::Dest::Replica.index()][0].get();
    let started = Instant::now();
    loop {
        let before = replica_reads();
        let n: Option<u32> = c.query_first(format!("SELECT COUNT(*) FROM {t}")).await.unwrap();
        assert_eq!(n, Some(20));
        if replica_reads() > before {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "session reads never returned to the replica");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let e = c.query_drop("SET @@sluice_consistency = 'sometimes'").await.unwrap_err();
    assert_eq!(harness::code(&e), 1231);
    run(&mut c, &format!("DROP TABLE {t}")).await;
}

/// monotonic: one session reads from one replica while it stays eligible; eventual spreads
/// the same session's reads over both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monotonic_sessions_stick_to_one_replica() {
    let ports = harness::replica_ports();
    let reps = format!("{}, {}", replica(ports[0], 100), replica(ports[1], 100));
    let p = harness::start_with(config(&reps, "consistency = \"monotonic\"")).await;
    wait_all_eligible(&p, &ports.iter().map(|p| format!("127.0.0.1:{p}")).collect::<Vec<_>>()).await;
    let primary = direct_server_id(harness::primary_port()).await;
    let mut c = p.conn().await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        seen.insert(server_id(&mut c, "").await);
    }
    assert_eq!(seen.len(), 1, "a monotonic session moved between servers: {seen:?}");
    assert!(!seen.contains(&primary), "monotonic reads went to the primary");
    run(&mut c, "SET @@sluice_consistency = 'eventual'").await;
    let mut spread = std::collections::BTreeSet::new();
    for _ in 0..40 {
        spread.insert(server_id(&mut c, "").await);
    }
    assert_eq!(spread.len(), 2, "eventual reads did not spread: {spread:?}");
    run(&mut c, "SET @@sluice_consistency = 'strong'").await;
    assert_eq!(server_id(&mut c, "").await, primary);
}

/// Hints, locking reads, system variables and read-only transactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hints_locking_reads_and_read_only_transactions() {
    let ports = harness::replica_ports();
    let reps = format!("{}, {}", replica(ports[0], 100), replica(ports[1], 100));
    let p = harness::start_with(config(&reps, "")).await;
    wait_all_eligible(&p, &ports.iter().map(|p| format!("127.0.0.1:{p}")).collect::<Vec<_>>()).await;
    let primary = direct_server_id(harness::primary_port()).await;
    let t = harness::table("hint");
    table_on_replicas(&t, 3).await;
    let mut c = p.conn().await;
    // Under the parallel suite's load a replica can be briefly ineligible (and the read then
    // rightly falls back to the primary): a plain read must reach a replica within 50 tries.
    let mut on_replica = false;
    for _ in 0..50 {
        if server_id(&mut c, "").await != primary {
            on_replica = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(on_replica, "a plain read should go to a replica");
    assert_eq!(server_id(&mut c, "/* sluice:primary */ ").await, primary);
    let v: Option<u32> = c.query_first("/* sluice:replica */ SELECT @@server_id").await.unwrap();
    assert_ne!(v, Some(primary), "the replica hint was ignored for a system variable read");
    // Global and replayed session variables read alike anywhere: such reads go to replicas;
    // variables bound to the connection or the primary stay there.
    let mut sysvar_on_replica = false;
    for _ in 0..50 {
        let v: Option<u32> = c.query_first("SELECT @@server_id").await.unwrap();
        if v != Some(primary) {
            sysvar_on_replica = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(sysvar_on_replica, "SELECT @@server_id never reached a replica");
    for _ in 0..10 {
        let v: Option<(u32, u32)> = c.query_first("SELECT @@server_id, @@read_only").await.unwrap();
        assert_eq!(v, Some((primary, 0)), "@@read_only must describe where writes go");
    }
    // Prepared statements are routed like text ones: a read executes on a replica.
    let stmt = c.prep(SERVER_ID).await.unwrap();
    let v: Option<String> = c.exec_first(&stmt, ()).await.unwrap();
    assert_ne!(v.and_then(|v| v.parse().ok()), Some(primary), "a prepared read went to the primary");
    run(&mut c, "BEGIN").await;
    let v: Option<String> = c.query_first(format!("SELECT c FROM {t} WHERE id = 1 FOR UPDATE")).await.unwrap();
    assert_eq!(v.as_deref(), Some("row1"));
    assert_eq!(server_id(&mut c, "").await, primary, "a transaction's reads stay on its primary connection");
    run(&mut c, "COMMIT").await;
    // START TRANSACTION READ ONLY runs on one replica; a write inside it is refused, and the
    // session returns to normal routing after COMMIT.
    run(&mut c, "START TRANSACTION READ ONLY").await;
    let ro_a = server_id(&mut c, "").await;
    let ro_b = server_id(&mut c, "").await;
    assert_ne!(ro_a, primary);
    assert_eq!(ro_a, ro_b, "a read-only transaction moved");
    let e = c.query_drop(format!("INSERT INTO {t} VALUES (9, 'x')")).await.unwrap_err();
    assert_eq!(harness::code(&e), 1792);
    run(&mut c, "COMMIT").await;
    run(&mut c, &format!("INSERT INTO {t} VALUES (9, 'x')")).await;
    drop_table(&t).await;
}

/// /metrics, scraped and parsed: destinations and kinds move, unparsed statements are
/// counted, replicas export their effective weight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_report_destinations_kinds_weights_and_unparsed() {
    let ports = harness::replica_ports();
    let reps = format!("{}, {}", replica(ports[0], 100), replica(ports[1], 0));
    let p = harness::start_with(config(&reps, "")).await;
    p.until_eligible(&format!("127.0.0.1:{}", ports[0]), true, Duration::from_secs(10)).await;
    let mut c = p.conn().await;
    for _ in 0..5 {
        run(&mut c, "SELECT 1").await;
    }
    let e = c.query_drop("SELCT 1").await.unwrap_err();
    assert_eq!(harness::code(&e), 1064);
    let (_, body) = p.http_get("/metrics").await;
    let metric = |name: &str, labels: &[(&str, String)]| -> f64 {
        body.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .find(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} {labels:?} not in:\n{body}"))
    };
    let dest = |d: &str, k: &str| metric("sluice_queries_total", &[("destination", d.into()), ("kind", k.into())]);
    assert!(dest("replica", "read") >= 5.0);
    assert_eq!(dest("primary", "unknown"), 1.0);
    assert_eq!(metric("sluice_unparsed_statements_total", &[]), 1.0);
    let w = |port: u16| metric("sluice_backend_effective_weight", &[("addr", format!("127.0.0.1:{port}"))]);
    assert!(w(ports[0]) > 0.0);
    assert_eq!(w(ports[1]), 0.0, "weight 0 must export 0");
    assert_eq!(metric("sluice_backend_up", &[("addr", format!("127.0.0.1:{}", ports[0]))]), 1.0);
    assert!(metric("sluice_pool_waiting", &[("role", "replica".into())]) >= 0.0);
}

/// Reload: weights go from 100:100 to 100:0 while 50 clients keep reading: no client error or
/// reconnect, and the weight-0 replica stops getting reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_reload_of_weights_moves_reads_under_50_clients() {
    let ports = harness::replica_ports();
    let path = std::env::temp_dir().join(format!("sluice-weights-{}.toml", std::process::id()));
    let text = |w2: u32| {
        config(&format!("{}, {}", replica(ports[0], 100), replica(ports[1], w2)), "")(harness::config_text(|t| t))
    };
    std::fs::write(&path, text(100)).unwrap();
    let p = harness::start_file(&path).await;
    let t = harness::table("reloadw");
    table_on_replicas(&t, 100).await;
    wait_all_eligible(&p, &ports.iter().map(|p| format!("127.0.0.1:{p}")).collect::<Vec<_>>()).await;
    let load = ReadLoad::start(p.url(), &t, 50, |k, _| k + 1, Duration::from_millis(5));
    let mut second = harness::direct(ports[1]).await;
    let a = status_counter(&mut second, "Com_select").await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // a new modification time
    let b = status_counter(&mut second, "Com_select").await;
    assert!(b > a, "the second replica got no reads before the reload");
    let accepted = p.shared.metrics.client_connections_total.get();
    std::fs::write(&path, text(0)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.shared.metrics.config_reloads.with_label_values(&["applied"]).get() < 1 {
        assert!(Instant::now() < deadline, "the reload was not applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // statements routed before the swap finish
    let c0 = status_counter(&mut second, "Com_select").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let c1 = status_counter(&mut second, "Com_select").await;
    let (ok, errors) = load.finish().await;
    eprintln!("{ok} reads; second replica: {} reads in 1.1 s before, {} in 1 s after the reload", b - a, c1 - c0);
    assert!(errors.is_empty(), "client errors: {:?}", &errors[..errors.len().min(5)]);
    assert_eq!(c1, c0, "the weight-0 replica still got reads after the reload");
    assert_eq!(p.shared.metrics.client_connections_total.get(), accepted, "clients reconnected");
    drop_table(&t).await;
    let _ = std::fs::remove_file(&path);
}

/// A session variable the client set reads back its own value wherever the read is served
/// (Sluice replays it on replica connections too); another client does not see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_variables_read_back_on_replicas() {
    let ports = harness::replica_ports();
    let reps = format!("{}, {}", replica(ports[0], 100), replica(ports[1], 100));
    let p = harness::start_with(config(&reps, "")).await;
    wait_all_eligible(&p, &ports.iter().map(|p| format!("127.0.0.1:{p}")).collect::<Vec<_>>()).await;
    let primary = direct_server_id(harness::primary_port()).await;
    let mut c = p.conn().await;
    run(&mut c, "SET SESSION sql_mode = 'ANSI_QUOTES'").await;
    let mut on_replicas = 0;
    for _ in 0..20 {
        let (mode, server): (String, u32) =
            c.query_first("SELECT @@SESSION.sql_mode, @@server_id").await.unwrap().unwrap();
        assert_eq!(mode, "ANSI_QUOTES", "read on server {server}");
        on_replicas += u32::from(server != primary);
    }
    assert!(on_replicas > 0, "no read reached a replica");
    let mut other = p.conn().await;
    let mode: String = other.query_first("SELECT @@SESSION.sql_mode").await.unwrap().unwrap();
    assert_ne!(mode, "ANSI_QUOTES");
}

/// `monotonic`: a `sluice:replica` hint chooses among replicas under the session's level, so
/// hinted reads never go back in time, even with a replica three seconds behind in the set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_hint_keeps_monotonic_reads() {
    let ports = harness::replica_ports();
    let reps = format!("{}, {}", replica(ports[0], 100), replica(harness::delayed_port(), 100));
    let base = config(&reps, "consistency = \"monotonic\"");
    // The delayed replica stays eligible (lag under 10 s): hopping onto it would go back.
    let p = harness::start_with(|t| base(t).replace("max_lag_ms = 1000", "max_lag_ms = 10000")).await;
    let t = harness::table("mono_hint");
    let mut w = harness::direct(harness::primary_port()).await;
    run(&mut w, &format!("CREATE TABLE {t} (id INT PRIMARY KEY, n INT)")).await;
    run(&mut w, &format!("INSERT INTO {t} VALUES (1, 0)")).await;
    // Both replicas in the set (one 3 s behind) have the row before the reads start.
    for port in [ports[0], harness::delayed_port()] {
        let mut r = harness::direct(port).await;
        let started = Instant::now();
        loop {
            let n: Result<Option<i64>, _> = r.query_first(format!("SELECT COUNT(*) FROM {t}")).await;
            if matches!(n, Ok(Some(1))) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "replica {port} never got the row");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let table = t.clone();
    let writer = tokio::spawn(async move {
        for i in 1..=60 {
            run(&mut w, &format!("UPDATE {table} SET n = {i} WHERE id = 1")).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut c = p.conn().await;
    let (mut last, mut reads) = (0i64, 0);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let n: Option<i64> =
            c.query_first(format!("/* sluice:replica */ SELECT n FROM {t} WHERE id = 1")).await.unwrap();
        let n = n.unwrap_or(0);
        assert!(n >= last, "a hinted read went back in time: {n} after {last}");
        last = n;
        reads += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(reads > 50);
    writer.await.unwrap();
    drop_table(&t).await;
}
