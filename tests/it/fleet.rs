//! Several Sluice instances in front of one topology: one heartbeat row and one fleet
//! registry row each, a reload seen reaching every instance (`sluice fleet`, `SHOW SLUICE
//! FLEET`), a stopped instance leaving the registry, and `pause_writes` acknowledged by an
//! instance only once the work it began before the pause has ended.

use crate::harness::{self, run};
use mysql_async::prelude::*;
use sluice::fleet::{all_paused, read_with, Member};
use std::time::Duration;

/// The testbed config with a registry table of the test's own (other tests' proxies write
/// to the default one), refreshed every 200 ms, and the SQL admin interface.
fn config(t: &str) -> String {
    harness::config_text(|c| {
        c.replace("[monitor]", &format!("[fleet]\ntable = \"sluice.fleet_{t}\"\ninterval_ms = 200\n\n[monitor]"))
            .replace(
            "[[users]]",
            "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[admin.users]]\nname = \"ops\"\npassword = \"ops_pw\"\n\n[[users]]",
        )
    })
}

fn live(m: &[Member]) -> Vec<&Member> {
    m.iter().filter(|m| m.live).collect()
}

async fn admin_conn(p: &harness::Proxy) -> mysql_async::Conn {
    let url = format!("mysql://ops:ops_pw@127.0.0.1:{}/?prefer_socket=false", p.admin_sql_port().await);
    mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap()).await.unwrap()
}

/// A registry table of the test's own, and the config file naming it.
fn written_config(prefix: &str) -> (String, std::path::PathBuf, String) {
    let t = harness::table(prefix);
    let path = std::env::temp_dir().join(format!("{t}.toml"));
    let text = config(&t);
    std::fs::write(&path, &text).unwrap();
    (t, path, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_one_row_each_and_a_reload_seen_reaching_all() {
    let (t, path, text) = written_config("fleet");
    let proxies =
        [harness::start_file(&path).await, harness::start_file(&path).await, harness::start_file(&path).await];
    let ids: Vec<String> = proxies.iter().map(|p| p.shared.instance_id.clone()).collect();
    let rows = harness::fleet_until(&path, "three live instances", |m| live(m).len() == 3).await;
    for p in &proxies {
        let row = rows.iter().find(|m| m.id == p.shared.instance_id).expect("a row per instance");
        assert_eq!(row.listen, p.addr.to_string(), "the row names the instance's listener");
        assert_eq!((row.state.as_str(), row.config_version, row.pid), ("serving", 1, std::process::id()));
    }
    let digest = rows[0].config_digest.clone();
    assert!(rows.iter().all(|m| m.config_digest == digest), "one file, one digest: {rows:#?}");

    // One heartbeat row each on the primary (what the replicas' lag is measured from).
    let list = ids.iter().map(|i| format!("'{i}'")).collect::<Vec<_>>().join(",");
    let beats = harness::root_sql(
        harness::primary_port(),
        &format!("SELECT COUNT(*) FROM sluice.heartbeat WHERE id IN ({list})"),
    );
    assert_eq!(beats, "3", "heartbeat rows of the three instances");

    // A reload reaches every instance, and the registry shows it.
    tokio::time::sleep(Duration::from_millis(1100)).await; // a new modification time
    std::fs::write(&path, format!("{text}\n# edited\n")).unwrap();
    let rows = harness::fleet_until(&path, "version 2 everywhere", |m| {
        live(m).len() == 3 && m.iter().all(|r| r.config_version == 2 && r.config_digest != digest)
    })
    .await;

    // The admin interface and the command line list the same instances.
    let mut admin = admin_conn(&proxies[0]).await;
    let shown: Vec<(String, u64, u64)> = admin
        .query("SHOW SLUICE FLEET")
        .await
        .unwrap()
        .into_iter()
        .map(|r: mysql_async::Row| {
            (
                r.get::<String, _>("id").unwrap(),
                r.get::<u64, _>("config_version").unwrap(),
                r.get::<u64, _>("live").unwrap(),
            )
        })
        .collect();
    for id in &ids {
        assert!(shown.contains(&(id.clone(), 2, 1)), "SHOW SLUICE FLEET lacks {id}: {shown:?}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["fleet", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    for r in &rows {
        let line =
            out.lines().find(|l| l.starts_with(&r.id)).unwrap_or_else(|| panic!("sluice fleet lacks {}: {out}", r.id));
        assert!(line.contains("\tyes\t") && line.contains(&r.config_digest), "{line}");
    }

    // A stopped instance leaves; a row nobody refreshes stops being live.
    proxies[2].shutdown();
    let gone = ids[2].clone();
    harness::fleet_until(&path, "the stopped instance's row deleted", |m| {
        m.len() == 2 && m.iter().all(|r| r.id != gone)
    })
    .await;
    let table = format!("sluice.fleet_{t}");
    harness::root_sql(
        harness::primary_port(),
        &format!(
            "INSERT INTO {table} SELECT 'dead', host, pid, listen, admin, build, config_version, config_digest, \
             config_loaded_us, started_us, interval_ms, state, sessions, pause_writes, pause_acked, \
             NOW(6) - INTERVAL 1 HOUR FROM {table} LIMIT 1"
        ),
    );
    let rows = harness::fleet_until(&path, "a stale row", |m| m.len() == 3).await;
    assert!(rows.iter().any(|r| r.id == "dead" && !r.live), "{rows:#?}");
    assert_eq!(live(&rows).len(), 2);
    harness::root_sql(harness::primary_port(), &format!("DROP TABLE {table}"));
}

/// The reshard tooling's pause check: an instance whose config pauses writes acknowledges
/// only when no statement and no transaction begun under the older config is still open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_is_acknowledged_only_once_work_begun_before_it_has_ended() {
    let (t, path, text) = written_config("fleet_pause");
    let (a, b) = (harness::start_file(&path).await, harness::start_file(&path).await);
    harness::fleet_until(&path, "two live instances", |m| live(m).len() == 2).await;
    let mut c = a.conn().await;
    run(&mut c, &format!("CREATE TABLE {t} (id INT PRIMARY KEY)")).await;
    run(&mut c, "BEGIN").await;
    run(&mut c, &format!("INSERT INTO {t} VALUES (1)")).await;
    let mut sleeper = a.conn().await;
    let sleeping = tokio::spawn(async move {
        let r: Option<i64> = sleeper.query_first("SELECT SLEEP(1.5)").await.unwrap();
        (r, sleeper)
    });
    tokio::time::sleep(Duration::from_millis(1100)).await; // a new modification time
    assert!(text.contains("[sharding]\n"), "dev.toml has [sharding]");
    std::fs::write(&path, text.replace("[sharding]\n", "[sharding]\npause_writes = true\n")).unwrap();
    let rows = harness::fleet_until(&path, "both run the paused config", |m| {
        live(m).len() == 2 && m.iter().all(|r| r.pause_writes)
    })
    .await;
    let row = |rows: &[Member], p: &harness::Proxy| rows.iter().find(|r| r.id == p.shared.instance_id).unwrap().clone();
    assert!(!row(&rows, &a).pause_acked, "a acknowledged with a statement and a transaction still open");
    harness::fleet_until(&path, "b acknowledges", |m| m.iter().any(|r| r.id == b.shared.instance_id && r.pause_acked))
        .await;
    let (slept, _sleeper) = sleeping.await.unwrap();
    assert_eq!(slept, Some(0));
    // The statement ended; the transaction begun before the pause holds it up still.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let rows = read_with(sluice::config::load(&path).unwrap()).await.unwrap();
    let why = all_paused(&rows).unwrap_err();
    assert!(why.contains(&a.shared.instance_id) && why.contains("begun before the pause"), "{why}");
    run(&mut c, "COMMIT").await;
    let rows = harness::fleet_until(&path, "a acknowledges after COMMIT", |m| all_paused(m).is_ok()).await;
    assert_eq!(all_paused(&rows), Ok(2));
    run(&mut c, &format!("DROP TABLE {t}")).await;
    harness::root_sql(harness::primary_port(), &format!("DROP TABLE sluice.fleet_{t}"));
}
