//! The faults, one phase each, with the load running; what each took is measured here and
//! judged in [`crate::report`].

use crate::fault::Forwarder;
use crate::load::Load;
use crate::topo::{backend, writer, SluiceProcess};
use crate::{harness, Ports};
use mysql_async::prelude::*;
use std::time::{Duration, Instant};

/// Phase names, in order.
pub const NAMES: [&str; 6] = [
    "steady",
    "replica SIGKILL + restart",
    "primary SIGKILL + restart",
    "replica frozen",
    "switchover",
    "Sluice SIGTERM",
];

/// Times taken by the faults and their recoveries.
#[derive(Debug)]
pub struct Measured {
    pub replica_down_after: Duration,
    pub replica_back_after: Duration,
    pub primary_up_at: Instant,
    pub frozen_down_after: Duration,
    pub switch_at: Instant,
    pub writer_moved_after: Duration,
    /// Statements running when SIGTERM came: what each client got.
    pub in_flight_at_sigterm: Vec<Result<String, String>>,
    pub exited_after: Option<(Duration, bool)>,
    /// Where the figures were written.
    pub figures: Option<std::path::PathBuf>,
}

/// `scripts/testbed ARGS` off the async threads.
async fn testbed(args: &[&str]) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || crate::topo::testbed(&args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .unwrap();
}

async fn root_sql(port: u16, sql: &str) -> String {
    let sql = sql.to_string();
    tokio::task::spawn_blocking(move || harness::root_sql(port, &sql)).await.unwrap()
}

fn eligible(s: &serde_json::Value, addr: &str) -> bool {
    backend(s, addr).is_some_and(|b| b["eligible"] == true)
}

/// Waits until both replicas of the main shard are eligible for reads.
pub async fn all_eligible(sluice: &SluiceProcess, ports: &Ports, frozen: &str) -> Duration {
    let r0 = format!("127.0.0.1:{}", ports.replicas[0]);
    sluice.until("replicas eligible", Duration::from_secs(30), |s| eligible(s, &r0) && eligible(s, frozen)).await
}

/// Runs every phase in order.
pub async fn run(ports: &Ports, sluice: &mut SluiceProcess, fwd: &Forwarder, load: &Load) -> Measured {
    let r0 = format!("127.0.0.1:{}", ports.replicas[0]);
    let frozen = fwd.addr();
    tokio::time::sleep(Duration::from_secs(3)).await;

    load.enter(1);
    let t = Instant::now();
    testbed(&["kill", &ports.replicas[0].to_string()]).await;
    sluice.until("killed replica marked down", Duration::from_secs(10), |s| !eligible(s, &r0)).await;
    let replica_down_after = t.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    testbed(&["restart", &ports.replicas[0].to_string()]).await;
    let replica_back_after =
        sluice.until("restarted replica eligible", Duration::from_secs(20), |s| eligible(s, &r0)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    load.enter(2);
    testbed(&["kill", &ports.primary.to_string()]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    testbed(&["restart", &ports.primary.to_string()]).await;
    let primary_up_at = Instant::now();
    all_eligible(sluice, ports, &frozen).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    load.enter(3);
    // Statements of the previous phase end first (they take milliseconds), so what the freeze
    // catches is counted here.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    fwd.freeze_all();
    sluice.until("frozen replica marked down", Duration::from_secs(15), |s| !eligible(s, &frozen)).await;
    let frozen_down_after = t.elapsed();
    // Frozen past the statement deadline and its grace, so reads caught there are given up.
    let frozen_for = Duration::from_millis(crate::DEADLINE_MS + crate::CONNECT_MS.max(1000) + 1500);
    tokio::time::sleep(frozen_for.saturating_sub(t.elapsed())).await;
    fwd.thaw();
    all_eligible(sluice, ports, &frozen).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    load.enter(4);
    let (switch_at, writer_moved_after) = switchover(ports, sluice).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    load.enter(5);
    let in_flight_at_sigterm = sigterm_under_load(sluice).await;
    let exited_after = {
        let t = Instant::now();
        sluice.ended_within(Duration::from_secs(10)).await.map(|st| (t.elapsed(), st.success()))
    };
    Measured {
        replica_down_after,
        replica_back_after,
        primary_up_at,
        frozen_down_after,
        switch_at,
        writer_moved_after,
        in_flight_at_sigterm,
        exited_after,
        figures: None,
    }
}

/// A planned switchover, as a DBA does it: the primary turns read-only, the first replica
/// catches up and is promoted, the other replica and the old primary replicate from it.
/// Sluice's config is not touched: it must see the new writer by itself. Returns when the
/// promoted replica became writable (from then on Sluice can follow) and how long after that
/// `/status` named it the writer.
async fn switchover(ports: &Ports, sluice: &SluiceProcess) -> (Instant, Duration) {
    let (old, new) = (ports.primary, ports.replicas[0]);
    root_sql(old, "SET GLOBAL read_only = ON").await;
    let pos = root_sql(old, "SELECT @@gtid_binlog_pos").await;
    let waited = root_sql(new, &format!("SELECT MASTER_GTID_WAIT('{pos}', 20)")).await;
    assert_eq!(waited.trim(), "0", "the replica did not catch up with {pos}");
    root_sql(new, "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF").await;
    let t = Instant::now();
    let follow = |port: u16, using: &str| {
        format!(
            "STOP SLAVE; CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={port}, MASTER_USER='repl', \
             MASTER_PASSWORD='repl_pw', MASTER_USE_GTID={using}, MASTER_CONNECT_RETRY=1; START SLAVE"
        )
    };
    // The other servers are repointed while /status is watched: the time until Sluice names
    // the new writer is Sluice's own, not that of the mariadb CLI runs repointing them.
    let repoint = async {
        root_sql(ports.replicas[1], &follow(new, "slave_pos")).await;
        root_sql(ports.delayed, "STOP SLAVE").await;
        root_sql(old, &follow(new, "current_pos")).await;
    };
    let to = format!("127.0.0.1:{new}");
    let watch = async {
        sluice
            .until("writes follow the promoted replica", Duration::from_secs(10), |s| writer(s, "main") == Some(&to))
            .await;
        t.elapsed()
    };
    let ((), moved) = tokio::join!(repoint, watch);
    (t, moved)
}

/// Four clients each start a 1.5 s statement; 300 ms later Sluice gets SIGTERM. What did each
/// of them get?
async fn sigterm_under_load(sluice: &SluiceProcess) -> Vec<Result<String, String>> {
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(mysql_async::Conn::new(mysql_async::Opts::from_url(&sluice.url()).unwrap()).await.unwrap());
    }
    let running: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let r: Result<Option<(i64, String)>, _> = c.query_first("SELECT SLEEP(1.5), 'complete'").await;
                match r {
                    Ok(Some((0, s))) => Ok(s),
                    Ok(other) => Err(format!("{other:?}")),
                    Err(e) => Err(e.to_string()),
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    sluice.sigterm();
    let mut got = Vec::new();
    for r in running {
        got.push(match tokio::time::timeout(Duration::from_secs(10), r).await {
            Ok(r) => r.unwrap(),
            Err(_) => Err("no answer within 10 s".into()),
        });
    }
    got
}
