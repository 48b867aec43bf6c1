//! The fault suite: the real `sluice` binary in front of the real testbed, a writer/reader load
//! running throughout, and one fault after another — a replica SIGKILLed and restarted, the
//! primary SIGKILLed and restarted, a replica that freezes (a forwarder that stops passing
//! bytes on), a switchover to a promoted replica, and Sluice itself SIGTERMed — after the
//! fleet phases on the untouched topology (rolling restarts; two XA instances, one
//! SIGKILLed mid-commit, the other recovering) — then the
//! lost-write audit: every acknowledged insert exists exactly once, on the right primary or
//! shard. It kills testbed servers, so it runs alone: `scripts/faults` (and at the end of
//! `scripts/test`), never beside the integration tests.

#[allow(dead_code)]
#[path = "../it/fault.rs"]
mod fault;
#[allow(dead_code)]
#[path = "../it/harness.rs"]
mod harness;

mod audit;
mod load;
mod phases;
mod report;
mod restart;
mod topo;
mod xa_fleet;

use load::{Load, SEED};
use std::time::Duration;
use topo::SluiceProcess;

/// Statement deadline, health-check interval and connect timeout the suite runs Sluice with:
/// the figures its bounds are stated in.
pub const DEADLINE_MS: u64 = 2000;
pub const CHECK_MS: u64 = 250;
pub const CONNECT_MS: u64 = 1000;

/// The servers, from the same variables as scripts/testbed.
pub struct Ports {
    pub primary: u16,
    pub replicas: [u16; 2],
    pub delayed: u16,
    pub shards: [u16; 3],
}

impl Ports {
    fn from_env() -> Ports {
        let r = harness::replica_ports();
        let shards: Vec<u16> = std::env::var("SLUICE_SHARD_PORTS")
            .unwrap_or_else(|_| "13316 13317 13318".into())
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        Ports {
            primary: harness::primary_port(),
            replicas: [r[0], r[1]],
            delayed: harness::delayed_port(),
            shards: [shards[0], shards[1], shards[2]],
        }
    }
}

fn config(ports: &Ports, frozen_replica: &str) -> String {
    format!(
        r#"[proxy]
listen = "{{listen}}"
admin_listen = "{{admin}}"
max_statement_time_ms = {DEADLINE_MS}
shutdown_timeout_ms = 5000

[[users]]
name = "app"
password = "app_pw"

[monitor]
user = "app"
password = "app_pw"

[pool]
max_size = 16
connect_timeout_ms = {CONNECT_MS}
acquire_timeout_ms = 3000

[replicas]
max_lag_ms = 2000
check_interval_ms = {CHECK_MS}
consistency = "session"
fallback = "primary"

[[shards]]
name = "main"
primary = "127.0.0.1:{p}"
replicas = [ {{ addr = "127.0.0.1:{r0}", weight = 100 }}, {{ addr = "{frozen_replica}", weight = 100 }} ]

[[shards]]
name = "s0"
primary = "127.0.0.1:{s0}"

[[shards]]
name = "s1"
primary = "127.0.0.1:{s1}"

[[shards]]
name = "s2"
primary = "127.0.0.1:{s2}"

[sharding]
key = "user_id"
tables = ["fault_orders"]
ring = ["s0", "s1", "s2"]
default = "main"
"#,
        p = ports.primary,
        r0 = ports.replicas[0],
        s0 = ports.shards[0],
        s1 = ports.shards[1],
        s2 = ports.shards[2],
    )
}

/// Fresh tables: the audit table and the seed rows on the primary (replicated), the sharded
/// table on every shard.
async fn tables(ports: &Ports) {
    harness::root_sql(
        ports.primary,
        &format!(
            "USE sluice_test; DROP TABLE IF EXISTS sluice_test.fault_audit, sluice_test.fault_seed;
             CREATE TABLE sluice_test.fault_audit (id BIGINT PRIMARY KEY, w INT NOT NULL, v BIGINT NOT NULL);
             CREATE TABLE sluice_test.fault_seed (id BIGINT PRIMARY KEY, v BIGINT NOT NULL);
             INSERT INTO sluice_test.fault_seed SELECT seq, 3 * seq FROM seq_1_to_{SEED};"
        ),
    );
    for s in ports.shards {
        harness::root_sql(
            s,
            "DROP TABLE IF EXISTS sluice_test.fault_orders;
             CREATE TABLE sluice_test.fault_orders (id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL, v BIGINT NOT NULL);",
        );
    }
    for r in ports.replicas {
        let started = std::time::Instant::now();
        while harness::root_sql(r, "SELECT COUNT(*) FROM sluice_test.fault_seed").trim() != SEED.to_string() {
            assert!(started.elapsed() < Duration::from_secs(20), "replica {r} did not get the seed rows");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_are_survived_and_no_acknowledged_write_is_lost() {
    let ports = Ports::from_env();
    tables(&ports).await;
    let fwd = fault::Forwarder::start(ports.replicas[1]).await;
    // First, on the untouched topology: five rolling restarts with reuse_port.
    restart::run(&ports, &config(&ports, &fwd.addr())).await;
    // Two instances in XA mode; one SIGKILLed mid-commit, the other's recovery finishes it.
    xa_fleet::run(&ports, &config(&ports, &fwd.addr())).await;
    let mut sluice = SluiceProcess::start(&config(&ports, &fwd.addr())).await;
    phases::all_eligible(&sluice, &ports, &fwd.addr()).await;
    let load = Load::start(&sluice.url(), 4, 4);
    let mut measured = phases::run(&ports, &mut sluice, &fwd, &load).await;
    let seen = load.finish().await;
    let audit = audit::check(&ports, &sluice, &seen.acked).await;
    let report = report::Report::new(&seen, &measured, &audit);
    measured.write_figures(&report);
    eprintln!("{}", report.text);
    report.assert_guarantees(&measured, &audit);
    sluice.remove_files();
}
