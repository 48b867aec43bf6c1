//! The health monitor against the real replicas: replication state and lag published in
//! /status and /metrics; a replica whose SQL thread stops becomes ineligible (its lag is
//! unknown, never zero) and comes back after START SLAVE.

use crate::harness;
use std::time::{Duration, Instant};

fn replica_port() -> u16 {
    harness::replica_ports()[1]
}

/// Restarts replication even when the test fails half-way.
struct Restart(u16);
impl Drop for Restart {
    fn drop(&mut self) {
        harness::root_sql(self.0, "START SLAVE");
    }
}

async fn backend(p: &harness::Proxy, port: u16) -> serde_json::Value {
    p.backend_status(&format!("127.0.0.1:{port}")).await
}

async fn until(p: &harness::Proxy, port: u16, want: bool, limit: Duration) -> Duration {
    p.until_eligible(&format!("127.0.0.1:{port}"), want, limit).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_sql_thread_makes_a_replica_ineligible_until_restarted() {
    // A generous max_lag_ms: the rest of the suite (sysbench) may make the replica lag a few
    // seconds; this test is about lag becoming unknown, which excludes at any threshold.
    let p = harness::start_with(|t| t.replace("max_lag_ms = 1000", "max_lag_ms = 60000")).await;
    let port = replica_port();
    until(&p, port, true, Duration::from_secs(5)).await;
    let b = backend(&p, port).await;
    assert_eq!(b["up"], true);
    assert_eq!(b["read_only"], true);
    assert!(b["lag_ms"].as_u64().is_some_and(|l| l <= 60_000), "an eligible replica has a known lag: {b}");
    // The primary's first check (which also sets up the heartbeat table) may finish later.
    let started = Instant::now();
    let primary = loop {
        let b = backend(&p, harness::primary_port()).await;
        if b["checked"] == true || started.elapsed() > Duration::from_secs(5) {
            break b;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((primary["up"].clone(), primary["read_only"].clone()), (true.into(), false.into()));

    let _guard = Restart(port);
    harness::root_sql(port, "STOP SLAVE SQL_THREAD");
    let excluded = until(&p, port, false, Duration::from_secs(3)).await;
    let b = backend(&p, port).await;
    assert_eq!(b["lag_ms"], serde_json::Value::Null, "unknown lag must not read as a number: {b}");
    assert_eq!(b["up"], true, "the server itself is still up");
    let line = format!("sluice_backend_lag_seconds{{addr=\"127.0.0.1:{port}\",role=\"replica\",shard=\"main\"}} -1");
    let started = Instant::now();
    loop {
        let (_, metrics) = p.http_get("/metrics").await;
        if metrics.contains(&line) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(2), "{metrics}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    harness::root_sql(port, "START SLAVE SQL_THREAD");
    let included = until(&p, port, true, Duration::from_secs(20)).await;
    // check_interval_ms = 250: alone, both transitions take one interval or less (seen: 218 ms
    // and 245 ms). In the full suite the replica may first have to apply what sysbench wrote
    // while its SQL thread was stopped, so the bounds above are loose.
    eprintln!("replica excluded after {excluded:?}, included again after {included:?}");
}

/// The heartbeat measures lag in milliseconds: the delayed replica (MASTER_DELAY=3) reads
/// about 3,000 ms (not rounded to whole seconds), an ordinary replica a few ms or 0. Serial:
/// under the rest of the suite's sysbench load the ordinary replicas really lag by seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_heartbeat_measures_lag_in_milliseconds() {
    let delayed = harness::delayed_port();
    let normal = harness::replica_ports()[0];
    let p = harness::start_with(|t| {
        t.replace(
            "{ addr = \"127.0.0.1:13308\", weight = 100 }",
            &format!("{{ addr = \"127.0.0.1:{delayed}\", weight = 100 }}"),
        )
        .replace("max_lag_ms = 1000", "max_lag_ms = 60000")
    })
    .await;
    p.until_eligible(&format!("127.0.0.1:{delayed}"), true, Duration::from_secs(15)).await;
    // Until the delayed replica applies this process's first heartbeat (3 s), its lag is
    // Seconds_Behind_Master's; wait for the heartbeat's.
    let started = std::time::Instant::now();
    while backend(&p, delayed).await["lag_ms"].as_u64().is_none_or(|l| l % 1000 == 0) {
        assert!(started.elapsed() < Duration::from_secs(20), "no millisecond lag for the delayed replica");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut samples = Vec::new();
    for _ in 0..8 {
        let d = backend(&p, delayed).await["lag_ms"].as_u64().expect("delayed replica lag known");
        let n = backend(&p, normal).await["lag_ms"].as_u64().expect("replica lag known");
        samples.push((d, n));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!("(delayed, ordinary) lag_ms samples: {samples:?}");
    // MASTER_DELAY counts from the binlog event's timestamp, which has one-second resolution,
    // so a heartbeat written late in a second is applied up to a second early: the measured
    // lag of a 3 s delay runs from about 2 s to 3.25 s. Runs of this test right after the
    // testbed starts have also shown 1.27–2.03 s (a sawtooth of period ~1 s), not explained
    // yet; the bound below admits them and still fails for a lag rounded to seconds, absent,
    // or not the delay's order.
    assert!(samples.iter().all(|&(d, _)| (1_000..=5_000).contains(&d)), "{samples:?}");
    assert!(samples.iter().any(|&(d, _)| d % 1000 != 0), "lag looks rounded to seconds: {samples:?}");
    assert!(samples.iter().filter(|&&(_, n)| n < 600).count() >= 6, "ordinary replica lags: {samples:?}");
}
