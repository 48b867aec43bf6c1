//! Rolling restarts with `reuse_port`: instance B starts on the same port as A, A gets
//! SIGTERM and drains, five times in a row, with the writer/reader load running. Clients of
//! the instance that stops see their connection closed between statements (mysql_async does
//! not reconnect by itself; the load reconnects), never a half result or a hang, and no
//! acknowledged write is lost.

use crate::load::{Kind, Load, Outcome};
use crate::topo::{free_port, SluiceProcess};
use crate::Ports;
use std::time::Duration;

pub async fn run(ports: &Ports, config: &str) {
    let config = config.replace("[proxy]\n", "[proxy]\nreuse_port = true\n");
    let (port, admin) = (free_port(), free_port());
    let mut current = SluiceProcess::start_on(&config, port, admin, "r0").await;
    let load = Load::start_at(&current.url(), 4, 4, 500_000_000);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut exits = Vec::new();
    for round in 1..=5 {
        load.enter(round);
        let next = SluiceProcess::start_on(&config, port, admin, &format!("r{round}")).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        current.sigterm();
        let t = std::time::Instant::now();
        let ended = current.ended_within(Duration::from_secs(10)).await;
        exits.push((ended.map(|s| s.success()), t.elapsed()));
        current.remove_files();
        current = next;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    load.enter(6);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen = load.finish().await;
    let audit = crate::audit::check_unsharded_on(ports.primary, ports, &current, &seen.acked).await;
    current.sigterm();
    let _ = current.ended_within(Duration::from_secs(10)).await;
    current.remove_files();
    let mut by: std::collections::BTreeMap<(Kind, String), usize> = Default::default();
    let (mut hangs, mut wrong, mut total) = (0, 0, 0);
    for op in &seen.ops {
        total += 1;
        let what = match &op.outcome {
            Outcome::Ok => continue,
            Outcome::Server(c, _) => format!("error {c}"),
            Outcome::Io(m) => format!("connection: {}", m.chars().take(60).collect::<String>()),
            Outcome::Wrong(_) => {
                wrong += 1;
                continue;
            }
            Outcome::Hang => {
                hangs += 1;
                continue;
            }
        };
        *by.entry((op.kind, what)).or_default() += 1;
    }
    eprintln!(
        "rolling restarts: 5 replacements, {total} statements, errors {by:?}, hangs {hangs}, wrong {wrong}; \
         exits {exits:?}; audit: {} acknowledged, {} lost",
        audit.acked_unsharded + audit.acked_sharded,
        audit.lost.len()
    );
    assert_eq!(hangs, 0, "hung statements");
    assert_eq!(wrong, 0, "wrong answers");
    assert!(exits.iter().all(|(ok, _)| *ok == Some(true)), "an instance did not exit cleanly: {exits:?}");
    assert!(audit.lost.is_empty() && audit.misplaced.is_empty() && audit.duplicated.is_empty(), "{audit:?}");
    assert!(audit.acked_unsharded > 50, "too little load: {audit:?}");
    // Server errors would mean a statement failed inside Sluice; connection errors are the
    // closed idle sessions of the instance that stopped.
    let server_errors: usize = by.iter().filter(|((_, w), _)| w.starts_with("error")).map(|(_, n)| n).sum();
    assert_eq!(server_errors, 0, "{by:?}");
}
