//! Failures around read/write splitting: a replica dying under load, no eligible replica,
//! and a switchover of the primary.

use crate::fault::Forwarder;
use crate::harness::{self, run, status_counter};
use crate::routing::{config, drop_table, replica, table_on_replicas, wait_all_eligible, ReadLoad, REPLICAS_LINE};
use mysql_async::prelude::*;
use std::time::{Duration, Instant};

/// One replica dies (connections closed, connects refused) while 16 clients read: no client
/// sees an error; when it comes back it gets reads again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_replica_killed_under_16_thread_read_load_costs_no_errors() {
    let ports = harness::replica_ports();
    let fwd = Forwarder::start(ports[0]).await;
    let reps = format!("{{ addr = \"{}\", weight = 100 }}, {}", fwd.addr(), replica(ports[1], 100));
    let p = harness::start_with(config(&reps, "")).await;
    let t = harness::table("kill");
    table_on_replicas(&t, 100).await;
    wait_all_eligible(&p, &[fwd.addr(), format!("127.0.0.1:{}", ports[1])]).await;
    // Client k reads rows k+7, k+14, ... (mod 100), as the ids 1..=100 go.
    let load = ReadLoad::start(p.url(), &t, 16, |k, n| (k + 7 * (n + 1)) % 100 + 1, Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(700)).await;
    fwd.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let down = p.backend_status(&fwd.addr()).await;
    fwd.revive().await;
    let mut behind = harness::direct(ports[0]).await;
    let before = status_counter(&mut behind, "Com_select").await;
    let started = Instant::now();
    let back = loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if status_counter(&mut behind, "Com_select").await > before {
            break started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the revived replica got no reads");
    };
    let (ok, errors) = load.finish().await;
    let retries: u64 = p.shared.metrics.routed[sluice::router::Dest::Retry.index()].iter().map(|c| c.get()).sum();
    eprintln!(
        "{ok} reads, {} errors, {retries} retried; dead replica in /status: {down}; reads back after {back:?}",
        errors.len()
    );
    assert!(errors.is_empty(), "client-visible errors: {:?}", &errors[..errors.len().min(5)]);
    assert_eq!(down["up"], false, "the monitor did not mark the dead replica down: {down}");
    assert!(ok > 100);
    drop_table(&t).await;
}

/// No eligible replica: reads fall back to the primary (counted), or fail with a clear error
/// when `fallback = "error"`; writes are unaffected either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_eligible_replica_falls_back_or_errors() {
    let fwd = Forwarder::start(harness::replica_ports()[0]).await;
    fwd.kill();
    let reps = format!("{{ addr = \"{}\", weight = 100 }}", fwd.addr());
    let p = harness::start_with(config(&reps, "")).await;
    p.until_eligible(&fwd.addr(), false, Duration::from_secs(5)).await;
    let mut c = p.conn().await;
    let fallback = || p.shared.metrics.routed[sluice::router::Dest::Fallback.index()][0].get();
    let before = fallback();
    let v: Option<u32> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1));
    assert_eq!(fallback(), before + 1);

    let q = harness::start_with(config(&reps, "fallback = \"error\"")).await;
    let mut c = q.conn().await;
    let e = c.query_drop("SELECT 1").await.unwrap_err();
    match &e {
        mysql_async::Error::Server(s) => {
            assert_eq!(s.code, 1105);
            assert!(s.message.contains("no replica of shard 'main' is eligible"), "{}", s.message);
        }
        other => panic!("{other:?}"),
    }
    let v: Option<u32> = c.query_first("/* sluice:primary */ SELECT 2").await.unwrap();
    assert_eq!(v, Some(2));
}

/// A switchover: the configured primary turns read-only and a replica is writable; writes
/// follow the writable server, and come back when the primary is writable again. (Two of the
/// testbed's independent shard servers play primary and replica, so replication elsewhere is
/// not disturbed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_writes_follow_a_switchover() {
    let (old, new) = (13316u16, 13317u16);
    let p = harness::start_with(|t| {
        t.replace(
            &format!("primary = \"127.0.0.1:{}\"", harness::primary_port()),
            &format!("primary = \"127.0.0.1:{old}\""),
        )
        .replace(REPLICAS_LINE, &format!("replicas = [ {} ]", replica(new, 100)))
    })
    .await;
    struct Writable(u16);
    impl Drop for Writable {
        fn drop(&mut self) {
            harness::root_sql(self.0, "SET GLOBAL read_only = OFF");
        }
    }
    let _guard = Writable(old);
    let t = harness::table("switch");
    for port in [old, new] {
        let mut d = harness::direct(port).await;
        run(&mut d, &format!("CREATE TABLE {t} (id INT PRIMARY KEY)")).await;
    }
    let count = |port: u16| {
        let t = t.clone();
        async move {
            let mut d = harness::direct(port).await;
            let n: Option<u32> = d.query_first(format!("SELECT COUNT(*) FROM {t}")).await.unwrap();
            n.unwrap()
        }
    };
    let mut c = p.conn().await;
    p.until_eligible(&format!("127.0.0.1:{new}"), false, Duration::from_secs(5)).await;
    run(&mut c, &format!("INSERT INTO {t} VALUES (1)")).await;
    assert_eq!((count(old).await, count(new).await), (1, 0));

    harness::root_sql(old, "SET GLOBAL read_only = ON");
    let started = Instant::now();
    while p.shared.metrics.switchovers.get() < 1 {
        assert!(started.elapsed() < Duration::from_secs(5), "the switchover was not seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("switchover followed after {:?}", started.elapsed());
    run(&mut c, &format!("INSERT INTO {t} VALUES (2)")).await;
    assert_eq!((count(old).await, count(new).await), (1, 1), "the write did not follow the writable server");
    let (_, body) = p.http_get("/status").await;
    assert!(body.contains(&format!("\"writer\":\"127.0.0.1:{new}\"")), "{body}");

    harness::root_sql(old, "SET GLOBAL read_only = OFF");
    while p.shared.metrics.switchovers.get() < 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "the return was not seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run(&mut c, &format!("INSERT INTO {t} VALUES (3)")).await;
    assert_eq!((count(old).await, count(new).await), (2, 1));
    for port in [old, new] {
        let mut d = harness::direct(port).await;
        run(&mut d, &format!("DROP TABLE {t}")).await;
    }
}
