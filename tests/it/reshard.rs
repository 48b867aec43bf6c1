//! Adding a fourth shard to the ring on live data, by the procedure of docs/sharding.md:
//! `sluice reshard copy` under writes, pause writes (hot reload), `copy --restart`, switch to
//! the new ring (hot reload), `sluice reshard cleanup` — while a client keeps inserting and
//! updating through Sluice. Afterwards every row is on the shard the new ring names, the row
//! count is the initial rows plus every acknowledged insert, and every acknowledged update
//! is there.

use crate::harness::{self, run};
use mysql_async::prelude::*;
use sluice::sharding::{KeyValue, Ring};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The fourth ring member is the testbed's `main` primary (the default shard).
const SHARDS: [(&str, u16); 4] = [("s0", 13316), ("s1", 13317), ("s2", 13318), ("main", 13306)];

/// Runs `sluice reshard CMD ARGS`; returns (exit code, stdout, stderr).
fn reshard(cmd: &str, args: Vec<String>) -> (i32, String, String) {
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_sluice")).args(["reshard", cmd]).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// Rewrites the watched config and waits until Sluice runs it.
async fn reload(p: &harness::Proxy, path: &std::path::Path, text: &str) {
    let version = p.shared.load().version;
    tokio::time::sleep(Duration::from_millis(1100)).await; // a new modification time
    std::fs::write(path, text).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.shared.load().version == version {
        assert!(Instant::now() < deadline, "config not reloaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the writer had acknowledged.
#[derive(Default)]
struct Acked {
    inserts: AtomicU64,
    increments: AtomicU64,
    paused: AtomicU64,
}

/// Inserts a row and increments a counter, alternately, through Sluice until `stop` (or 60 s);
/// a write refused while writes are paused (1290) is retried, as an application would.
async fn writer(url: String, t: String, stop: Arc<AtomicBool>, acked: Arc<Acked>) {
    let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap()).await.unwrap();
    let started = Instant::now();
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
        n += 1;
        let user = n * 7919 % 3000 + 1;
        let (sql, counter) = if n.is_multiple_of(2) {
            (format!("INSERT INTO {t} (user_id, seq, amount) VALUES ({user}, {}, 0)", 1000 + n), &acked.inserts)
        } else {
            (format!("UPDATE {t} SET amount = amount + 1 WHERE user_id = {user} AND seq = 0"), &acked.increments)
        };
        loop {
            match c.query_drop(&sql).await {
                Ok(()) => {
                    counter.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(mysql_async::Error::Server(e)) if e.code == 1290 => {
                    acked.paused.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("{sql}: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_fourth_shard_under_writes_keeps_every_row_and_update() {
    let t = harness::table("reshard");
    let dir = std::env::temp_dir();
    let (old_path, new_path) = (dir.join(format!("{t}-old.toml")), dir.join(format!("{t}-new.toml")));
    let state = dir.join(format!("{t}.state"));
    // A fleet registry of its own: the test's instance is the whole fleet whose pause
    // `copy --restart` checks (other tests' proxies write to the default table).
    let old = harness::config_text(|c| {
        c.replace("tables = [\"orders\", \"events\"]", &format!("tables = [\"{t}\"]"))
            .replace("[monitor]", &format!("[fleet]\ntable = \"sluice.fleet_{t}\"\n\n[monitor]"))
    });
    let paused = format!("{old}\npause_writes = true\n");
    let new = old.replace("ring = [\"s0\", \"s1\", \"s2\"]", "ring = [\"s0\", \"s1\", \"s2\", \"main\"]");
    assert_ne!(new, old, "the testbed config's ring changed shape");
    std::fs::write(&old_path, &old).unwrap();
    std::fs::write(&new_path, &new).unwrap();
    let p = harness::start_file(&old_path).await;
    let mut c = p.conn().await;
    let ddl = format!(
        "CREATE TABLE {t} (user_id BIGINT NOT NULL, seq INT NOT NULL, amount INT NOT NULL, PRIMARY KEY (user_id, seq))"
    );
    run(&mut c, &ddl).await; // every shard of the old ring
    run(&mut harness::direct(13306).await, &ddl).await; // the new shard, by the DBA
    for chunk in (1..=3000).collect::<Vec<u64>>().chunks(300) {
        let rows: Vec<String> = chunk.iter().flat_map(|u| [format!("({u}, 0, 0)"), format!("({u}, 1, {u})")]).collect();
        run(&mut c, &format!("INSERT INTO {t} (user_id, seq, amount) VALUES {}", rows.join(", "))).await;
    }
    let initial_rows = 6000u64;

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Acked::default());
    let url = format!("mysql://app:app_pw@127.0.0.1:{}/sluice_test?prefer_socket=false", p.addr.port());
    let w = tokio::spawn(writer(url, t.clone(), stop.clone(), acked.clone()));
    let target = |extra: &[&str]| {
        let mut a: Vec<String> = ["--from", old_path.to_str().unwrap(), "--to", new_path.to_str().unwrap()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(["--database", "sluice_test", "--batch", "500"].map(String::from));
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let state_arg = state.to_str().unwrap();

    // 1. Bulk copy while writes go on (differences from those writes are expected: exit 3).
    let (code, out, err) = reshard("copy", target(&["--state", state_arg]));
    assert!(code == 0 || code == 3, "copy: {code}\n{out}\n{err}");
    // `copy --restart` is refused while the instance has not paused writes.
    let (code, out, err) = reshard("copy", target(&["--state", state_arg, "--restart"]));
    assert_eq!(code, 4, "copy --restart ran without a pause: {out}\n{err}");
    assert!(err.contains("writes not paused"), "{err}");
    // 2. Pause writes to sharded tables; 3. copy again from scratch, now exactly, once the
    // fleet registry shows the pause acknowledged.
    reload(&p, &old_path, &paused).await;
    let config = sluice::config::load(&old_path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(why) = sluice::fleet::all_paused(&sluice::fleet::read_with(config.clone()).await.unwrap()) {
        assert!(Instant::now() < deadline, "pause not acknowledged: {why}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, out, err) = reshard("copy", target(&["--state", state_arg, "--restart"]));
    assert_eq!(code, 0, "copy --restart must verify: {out}\n{err}");
    let moved_keys: usize =
        out.split("keys moved ").nth(1).and_then(|s| s.split('\t').next()).unwrap().parse().unwrap();
    // 4. The new ring goes live (writes resume); 5. the moved rows leave their old shards.
    reload(&p, &old_path, &new).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    w.await.unwrap();
    let (code, out, err) = reshard("cleanup", target(&[]));
    assert_eq!(code, 0, "cleanup: {out}\n{err}");

    // Every row on the shard the new ring names; nothing lost.
    let names: Vec<String> = SHARDS.iter().map(|(n, _)| n.to_string()).collect();
    let ring = Ring::new(&names, 256);
    let (mut rows, mut amount) = (0u64, 0i64);
    let mut per_shard = Vec::new();
    for (name, port) in SHARDS {
        let mut d = harness::direct(port).await;
        let got: Vec<(i64, i64)> = d.query(format!("SELECT user_id, amount FROM {t} WHERE seq <> 1")).await.unwrap();
        let ones: Vec<(i64, i64)> = d.query(format!("SELECT user_id, amount FROM {t} WHERE seq = 1")).await.unwrap();
        for (u, _) in got.iter().chain(ones.iter()) {
            assert_eq!(ring.shard_of(&KeyValue::Int(i128::from(*u))), name, "user {u} found on {name}");
            rows += 1;
        }
        amount += got.iter().map(|(_, a)| a).sum::<i64>();
        per_shard.push(format!("{name} {}", got.len() + ones.len()));
    }
    let (inserts, increments) = (acked.inserts.load(Ordering::Relaxed), acked.increments.load(Ordering::Relaxed));
    eprintln!(
        "reshard: {moved_keys} keys moved; rows per shard {per_shard:?}; {inserts} inserts and {increments} updates acknowledged during it, {} refused while paused",
        acked.paused.load(Ordering::Relaxed)
    );
    assert!(inserts > 0 && increments > 0, "the writer ran");
    assert_eq!(rows, initial_rows + inserts, "every row once: initial + acknowledged inserts");
    assert_eq!(amount as u64, increments, "every acknowledged increment is there");
    assert!((300..1200).contains(&moved_keys), "about a quarter of 3,000 users move: {moved_keys}");
    let through: Option<i64> = c.query_first(format!("SELECT COUNT(*) FROM {t}")).await.unwrap();
    assert_eq!(through, Some(rows as i64), "a scatter count over the new ring agrees");
    run(&mut c, &format!("DROP TABLE {t}")).await; // every shard of the new ring
    for f in [&old_path, &new_path, &state] {
        let _ = std::fs::remove_file(f);
    }
}
