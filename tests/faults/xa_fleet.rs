//! Two Sluice processes with `cross_shard = "xa"` in front of the same shards; clients run
//! two-shard transactions through A, and A is SIGKILLed mid-stream. B's XA recovery must
//! finish whatever A left prepared (from A's decision log): afterwards no branch of Sluice's
//! is prepared on any shard, every transaction is on both of its shards or on neither, and
//! every transaction A acknowledged is on both.

use crate::topo::{free_port, SluiceProcess};
use crate::Ports;
use mysql_async::prelude::Queryable;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Ids of this phase's rows: far above the load's.
const BASE: i64 = 9_000_000_000;

pub async fn run(ports: &Ports, config: &str) {
    let config = format!("{config}cross_shard = \"xa\"\nxa_recovery_interval_ms = 200\n");
    let b = SluiceProcess::start_on(&config, free_port(), free_port(), "xa-b").await;
    let mut a = SluiceProcess::start_on(&config, free_port(), free_port(), "xa-a").await;
    // Two users on different shards, by the ring.
    let placed = a.shards_of(&(1..200).collect::<Vec<_>>());
    let (ua, sa) = placed.iter().find(|(_, s)| s.as_str() == "s0").map(|(k, s)| (*k, s.clone())).unwrap();
    let (ub, sb) = placed.iter().find(|(_, s)| s.as_str() == "s1").map(|(k, s)| (*k, s.clone())).unwrap();
    let attempted = Arc::new(Mutex::new(Vec::new()));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for w in 0..4i64 {
        let (url, attempted, acked) = (a.url(), attempted.clone(), acked.clone());
        clients.push(tokio::spawn(async move {
            let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap()).await.unwrap();
            for i in 0..100_000i64 {
                let txn = BASE / 2 + w * 1_000_000 + i;
                attempted.lock().unwrap().push(txn);
                let statements = [
                    "BEGIN".to_string(),
                    format!("INSERT INTO fault_orders (id, user_id, v) VALUES ({}, {ua}, {i})", 2 * txn),
                    format!("INSERT INTO fault_orders (id, user_id, v) VALUES ({}, {ub}, {i})", 2 * txn + 1),
                    "COMMIT".to_string(),
                ];
                for sql in statements {
                    if c.query_drop(sql).await.is_err() {
                        return;
                    }
                }
                acked.lock().unwrap().push(txn);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.sigkill();
    for c in clients {
        let _ = tokio::time::timeout(Duration::from_secs(10), c).await;
    }
    let shard_port = |s: &str| ports.shards[s[1..].parse::<usize>().unwrap()];
    let ours =
        |port: u16| crate::harness::root_sql(port, "XA RECOVER").lines().filter(|l| l.contains("sluice:")).count();
    let left = ours(shard_port(&sa)) + ours(shard_port(&sb));
    let started = Instant::now();
    while ours(shard_port(&sa)) + ours(shard_port(&sb)) > 0 {
        assert!(started.elapsed() < Duration::from_secs(15), "B's recovery left branches prepared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resolved_in = started.elapsed();
    let ids = |port: u16| -> HashSet<i64> {
        crate::harness::root_sql(port, &format!("SELECT id FROM sluice_test.fault_orders WHERE id >= {BASE}"))
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    let (on_a, on_b) = (ids(shard_port(&sa)), ids(shard_port(&sb)));
    let attempted = attempted.lock().unwrap().clone();
    let acked: HashSet<i64> = acked.lock().unwrap().iter().copied().collect();
    let mut half = Vec::new();
    let mut committed = 0;
    for t in &attempted {
        let (x, y) = (on_a.contains(&(2 * t)), on_b.contains(&(2 * t + 1)));
        if x != y {
            half.push(*t);
        }
        committed += usize::from(x && y);
        assert!(!acked.contains(t) || (x && y), "acknowledged transaction {t} is not on both shards");
    }
    eprintln!(
        "xa fleet: {} transactions attempted through A, {} acknowledged, {} committed on both shards, \
         {left} branches left prepared by A's SIGKILL, resolved by B in {resolved_in:?}, half-applied {}",
        attempted.len(),
        acked.len(),
        committed,
        half.len()
    );
    assert!(half.is_empty(), "transactions on one shard only: {half:?}");
    assert!(acked.len() > 20, "too few transactions before the kill");
    for s in ports.shards {
        let mut c = crate::harness::direct(s).await;
        c.query_drop(format!("DELETE FROM sluice_test.fault_orders WHERE id >= {BASE}")).await.unwrap();
    }
    b.sigterm();
    a.remove_files();
    let mut b = b;
    let _ = b.ended_within(Duration::from_secs(10)).await;
    b.remove_files();
}
