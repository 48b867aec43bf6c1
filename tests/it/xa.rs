//! Cross-shard transactions as XA (`[sharding] cross_shard = "xa"`) against the testbed's
//! shard primaries: commit on every shard or none, a shard lost between prepare and commit,
//! and recovery of branches a crashed proxy left prepared. The default mode's refusals are
//! checked here too.

use crate::fault::Forwarder;
use crate::harness::{self, code, run};
use mysql_async::prelude::*;
use sluice::sharding::KeyValue;
use std::time::{Duration, Instant};

const SHARD_PORTS: [(&str, u16); 3] = [("s0", 13316), ("s1", 13317), ("s2", 13318)];

/// The testbed config sharding `table`, in XA mode (recovery every 200 ms) or not, with
/// `edit` applied.
fn config(table: &str, xa: bool, edit: impl FnOnce(String) -> String) -> sluice::config::Config {
    let text = harness::config_text(|t| {
        let mut t = t.replace("tables = [\"orders\", \"events\"]", &format!("tables = [\"{table}\"]"));
        if xa {
            t.push_str("\ncross_shard = \"xa\"\nxa_recovery_interval_ms = 200\n");
        }
        edit(t)
    });
    sluice::config::Config::parse(&text).unwrap()
}

/// The ring's shard name for a key.
fn shard_of(p: &harness::Proxy, key: i64) -> String {
    let snap = p.shared.load();
    let sh = snap.topology.sharding.as_ref().unwrap();
    sh.ring.shard_of(&KeyValue::Int(key.into())).to_string()
}

/// Two keys on different shards, `a` on `want_a` and `b` on `want_b` when given.
fn keys_on(p: &harness::Proxy, want_a: &str, want_b: &str) -> (i64, i64) {
    let a = (1..).find(|&k| shard_of(p, k) == want_a).unwrap();
    let b = (1..).find(|&k| shard_of(p, k) == want_b).unwrap();
    (a, b)
}

fn port_of(shard: &str) -> u16 {
    SHARD_PORTS.iter().find(|(n, _)| *n == shard).unwrap().1
}

/// `amount` of a user's row, read on its shard directly (None: no row).
async fn amount_on(shard: &str, table: &str, user: i64) -> Option<i64> {
    let mut d = harness::direct(port_of(shard)).await;
    d.query_first(format!("SELECT amount FROM {table} WHERE user_id = {user}")).await.unwrap()
}

/// Sluice's prepared branches on a shard (gtrids), read directly.
async fn prepared_on(port: u16) -> Vec<String> {
    let mut d = harness::direct(port).await;
    let rows: Vec<(u64, u64, u64, Vec<u8>)> = d.query("XA RECOVER").await.unwrap();
    rows.into_iter()
        .map(|(_, gl, _, data)| String::from_utf8_lossy(&data[..gl as usize]).into_owned())
        .filter(|g| g.starts_with("sluice:"))
        .collect()
}

async fn create(c: &mut mysql_async::Conn, t: &str) {
    run(c, &format!("CREATE TABLE {t} (user_id BIGINT PRIMARY KEY, amount INT) ENGINE=InnoDB")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xa_transactions_commit_on_every_shard_they_touched_or_on_none() {
    let t = harness::table("xa");
    let u = harness::table("xa_plain");
    let p = harness::start_config(config(&t, true, |t| t)).await;
    let mut c = p.conn().await;
    create(&mut c, &t).await;
    run(&mut c, &format!("CREATE TABLE {u} (id INT PRIMARY KEY) ENGINE=InnoDB")).await;
    let (a, b) = keys_on(&p, "s0", "s1");
    let xa = |i: usize| p.shared.metrics.xa[i].get();

    // Two shards and the default shard's unsharded table in one transaction.
    run(&mut c, "BEGIN").await;
    run(&mut c, &format!("INSERT INTO {t} (user_id, amount) VALUES ({a}, 1)")).await;
    run(&mut c, &format!("INSERT INTO {t} (user_id, amount) VALUES ({b}, 2)")).await;
    run(&mut c, &format!("INSERT INTO {u} VALUES (1)")).await;
    let seen: Option<i64> = c.query_first(format!("SELECT amount FROM {t} WHERE user_id = {a}")).await.unwrap();
    assert_eq!(seen, Some(1), "the transaction reads its own write on a branch it parked");
    assert_eq!(amount_on("s1", &t, b).await, None, "nothing visible before COMMIT");
    run(&mut c, "COMMIT").await;
    assert_eq!((amount_on("s0", &t, a).await, amount_on("s1", &t, b).await), (Some(1), Some(2)));
    let mut main = harness::direct(harness::primary_port()).await;
    let n: Option<i64> = main.query_first(format!("SELECT COUNT(*) FROM {u}")).await.unwrap();
    assert_eq!(n, Some(1), "the unsharded table's row committed with the rest");
    assert_eq!(xa(1), 1, "one two-phase commit");

    // ROLLBACK undoes every branch.
    run(&mut c, "START TRANSACTION").await;
    run(&mut c, &format!("UPDATE {t} SET amount = 10 WHERE user_id = {a}")).await;
    run(&mut c, &format!("UPDATE {t} SET amount = 20 WHERE user_id = {b}")).await;
    run(&mut c, "SAVEPOINT sp").await;
    run(&mut c, "ROLLBACK TO SAVEPOINT sp").await;
    run(&mut c, "ROLLBACK").await;
    assert_eq!((amount_on("s0", &t, a).await, amount_on("s1", &t, b).await), (Some(1), Some(2)));
    assert_eq!(xa(2), 1, "one rollback");

    // Prepared statements move between branches by their bound key.
    let up = c.prep(format!("UPDATE {t} SET amount = amount + ? WHERE user_id = ?")).await.unwrap();
    run(&mut c, "BEGIN").await;
    c.exec_drop(&up, (5, a)).await.unwrap();
    c.exec_drop(&up, (5, b)).await.unwrap();
    c.exec_drop(&up, (5, a)).await.unwrap();
    run(&mut c, "COMMIT").await;
    assert_eq!((amount_on("s0", &t, a).await, amount_on("s1", &t, b).await), (Some(11), Some(7)));

    // One shard: one phase, no decision recorded.
    run(&mut c, "BEGIN").await;
    run(&mut c, &format!("UPDATE {t} SET amount = 0 WHERE user_id = {a}")).await;
    run(&mut c, "COMMIT").await;
    assert_eq!(amount_on("s0", &t, a).await, Some(0));
    assert_eq!(xa(0), 1, "one single-shard commit");

    // A failed statement inside does not end the transaction; a deadlock-free duplicate key
    // error is the client's to handle, and COMMIT still commits the rest.
    run(&mut c, "BEGIN").await;
    run(&mut c, &format!("UPDATE {t} SET amount = 100 WHERE user_id = {b}")).await;
    let dup = c.query_drop(format!("INSERT INTO {t} (user_id, amount) VALUES ({a}, 0)")).await.unwrap_err();
    assert_eq!(code(&dup), 1062, "{dup}");
    run(&mut c, "COMMIT").await;
    assert_eq!(amount_on("s1", &t, b).await, Some(100));

    // A client that disconnects mid-transaction leaves nothing behind.
    let mut gone = p.conn().await;
    run(&mut gone, "BEGIN").await;
    run(&mut gone, &format!("UPDATE {t} SET amount = -1 WHERE user_id = {a}")).await;
    run(&mut gone, &format!("UPDATE {t} SET amount = -1 WHERE user_id = {b}")).await;
    gone.disconnect().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while xa(2) < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!((amount_on("s0", &t, a).await, amount_on("s1", &t, b).await), (Some(0), Some(100)));
    let decisions: Vec<String> = main.query("SELECT gtrid FROM sluice.xa_log").await.unwrap();
    assert!(decisions.is_empty(), "decisions of finished transactions are deleted: {decisions:?}");
    run(&mut c, &format!("DROP TABLE {t}")).await;
    run(&mut c, &format!("DROP TABLE {u}")).await;
}

/// The default mode: a second shard, or an unsharded table, inside a transaction that began on
/// a sharded table's shard is refused before anything reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_xa_a_transaction_stays_on_its_first_shard() {
    let t = harness::table("noxa");
    let u = harness::table("noxa_plain");
    let p = harness::start_config(config(&t, false, |t| t)).await;
    let mut c = p.conn().await;
    create(&mut c, &t).await;
    run(&mut c, &format!("CREATE TABLE {u} (id INT PRIMARY KEY) ENGINE=InnoDB")).await;
    let (a, b) = keys_on(&p, "s0", "s2");
    run(&mut c, "BEGIN").await;
    run(&mut c, &format!("INSERT INTO {t} (user_id, amount) VALUES ({a}, 1)")).await;
    let e = c.query_drop(format!("INSERT INTO {t} (user_id, amount) VALUES ({b}, 1)")).await.unwrap_err();
    assert_eq!(code(&e), 1235, "{e}");
    let e = c.query_drop(format!("INSERT INTO {u} VALUES (1)")).await.unwrap_err();
    assert_eq!(code(&e), 1235, "an unsharded table lives on the default shard: {e}");
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "a statement on no table stays on the transaction's connection");
    run(&mut c, "COMMIT").await;
    assert_eq!((amount_on("s0", &t, a).await, amount_on("s2", &t, b).await), (Some(1), None));
    let mut main = harness::direct(harness::primary_port()).await;
    let n: Option<i64> = main.query_first(format!("SELECT COUNT(*) FROM {u}")).await.unwrap();
    assert_eq!(n, Some(0));
    run(&mut c, &format!("DROP TABLE {t}")).await;
    run(&mut c, &format!("DROP TABLE {u}")).await;
}

/// Shard s1 dies exactly when its `XA COMMIT` is sent (after every branch prepared and the
/// decision was recorded): the client's COMMIT succeeds, s0 has its row at once, s1's branch
/// stays prepared, and when s1 is back recovery commits it. Dying at `XA PREPARE` instead:
/// COMMIT fails with 1402 and neither shard has anything. Serial: it reads recovery counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_xa_shard_lost_between_prepare_and_commit_ends_committed_on_both() {
    for (wire, committed) in [(&b"XA COMMIT"[..], true), (&b"XA PREPARE"[..], false)] {
        let t = harness::table("xa_kill");
        let fwd = Forwarder::with_tripwire(13317, wire).await;
        let p = harness::start_config(config(&t, true, |c| c.replace("127.0.0.1:13317", &fwd.addr()))).await;
        let mut c = p.conn().await;
        create(&mut c, &t).await;
        let (a, b) = keys_on(&p, "s0", "s1");
        run(&mut c, "BEGIN").await;
        run(&mut c, &format!("INSERT INTO {t} (user_id, amount) VALUES ({a}, 1)")).await;
        run(&mut c, &format!("INSERT INTO {t} (user_id, amount) VALUES ({b}, 2)")).await;
        let result = c.query_drop("COMMIT").await;
        let what = String::from_utf8_lossy(wire);
        if committed {
            result.unwrap_or_else(|e| panic!("COMMIT after the decision must succeed ({what}): {e}"));
            assert_eq!(amount_on("s0", &t, a).await, Some(1));
            assert_eq!(amount_on("s1", &t, b).await, None, "s1's branch is still prepared");
            assert_eq!(prepared_on(13317).await.len(), 1, "one prepared branch on s1");
            assert_eq!(p.shared.metrics.xa[4].get(), 1, "counted as commit_pending");
        } else {
            let e = result.unwrap_err();
            assert_eq!(code(&e), 1402, "{e}");
            assert_eq!(amount_on("s0", &t, a).await, None, "s0's prepared branch was rolled back");
        }
        let before = p.shared.metrics.xa_recovered[0].get();
        fwd.revive().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !prepared_on(13317).await.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(prepared_on(13317).await.is_empty(), "recovery finished s1's branch ({what})");
        let want = committed.then_some(2);
        assert_eq!(amount_on("s1", &t, b).await, want, "s1 ends like s0 ({what})");
        assert_eq!(amount_on("s0", &t, a).await, committed.then_some(1));
        if committed {
            assert_eq!(p.shared.metrics.xa_recovered[0].get(), before + 1, "recovery committed it");
        }
        let mut direct = harness::direct(13316).await;
        run(&mut direct, &format!("DROP TABLE {t}")).await;
        for port in [13317, 13318] {
            run(&mut harness::direct(port).await, &format!("DROP TABLE {t}")).await;
        }
    }
}

/// What a proxy that crashed between prepare and commit leaves: prepared branches on two
/// shards, with the commit decision recorded for one transaction and none for another. A
/// fresh Sluice commits the first on both shards, rolls the second back on both, leaves a
/// branch that is not Sluice's alone, and deletes the decisions it acted on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_xa_recovery_finishes_what_a_crashed_proxy_left_prepared() {
    let t = harness::table("xa_rec");
    let tag = format!("{:016x}", rand::random::<u64>());
    let (g_commit, g_abort) = (format!("sluice:{tag}:1"), format!("sluice:{tag}:2"));
    let foreign = format!("other-{tag}");
    for (shard, port) in [("s0", 13316), ("s1", 13317)] {
        let mut d = harness::direct(port).await;
        create(&mut d, &t).await;
        for (i, g) in [&g_commit, &g_abort].into_iter().enumerate() {
            let mut b = harness::direct(port).await;
            let xid = format!("'{g}','{shard}'");
            run(&mut b, &format!("XA START {xid}")).await;
            run(&mut b, &format!("INSERT INTO {t} (user_id, amount) VALUES ({}, {i})", 10 + i)).await;
            run(&mut b, &format!("XA END {xid}")).await;
            run(&mut b, &format!("XA PREPARE {xid}")).await;
            b.disconnect().await.unwrap(); // the "crash": the branch stays prepared
        }
    }
    let mut other = harness::direct(13316).await;
    run(&mut other, &format!("XA START '{foreign}'")).await;
    run(&mut other, &format!("INSERT INTO {t} (user_id, amount) VALUES (99, 9)")).await;
    run(&mut other, &format!("XA END '{foreign}'")).await;
    run(&mut other, &format!("XA PREPARE '{foreign}'")).await;
    other.disconnect().await.unwrap();
    let mut main = harness::direct(harness::primary_port()).await;
    run(&mut main, "CREATE DATABASE IF NOT EXISTS sluice").await;
    run(&mut main, "CREATE TABLE IF NOT EXISTS sluice.xa_log (gtrid VARBINARY(64) PRIMARY KEY, decision ENUM('commit','abort') NOT NULL, decided_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)) ENGINE=InnoDB").await;
    run(&mut main, &format!("INSERT INTO sluice.xa_log (gtrid, decision) VALUES ('{g_commit}', 'commit')")).await;

    let p = harness::start_config(config(&t, true, |t| t)).await;
    let ours = |g: &Vec<String>| g.iter().any(|x| x.contains(&tag));
    let deadline = Instant::now() + Duration::from_secs(10);
    while (ours(&prepared_on(13316).await) || ours(&prepared_on(13317).await)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (shard, port) in [("s0", 13316), ("s1", 13317)] {
        assert!(!ours(&prepared_on(port).await), "recovery finished every branch on {shard}");
        let mut d = harness::direct(port).await;
        let ids: Vec<i64> = d.query(format!("SELECT user_id FROM {t} ORDER BY user_id")).await.unwrap();
        assert_eq!(ids, vec![10], "{shard}: the committed transaction's row only");
    }
    assert_eq!(p.shared.metrics.xa_recovered.iter().map(|c| c.get()).collect::<Vec<_>>(), vec![2, 2]);
    let mut d = harness::direct(13316).await;
    let rows: Vec<(u64, u64, u64, Vec<u8>)> = d.query("XA RECOVER").await.unwrap();
    assert!(rows.iter().any(|r| r.3 == foreign.as_bytes()), "a branch that is not Sluice's is left alone");
    run(&mut d, &format!("XA ROLLBACK '{foreign}'")).await;
    let left: Vec<String> =
        main.query(format!("SELECT gtrid FROM sluice.xa_log WHERE gtrid LIKE 'sluice:{tag}:%'")).await.unwrap();
    assert!(left.is_empty(), "decisions acted on are deleted: {left:?}");
    drop(p);
    for port in [13316, 13317] {
        run(&mut harness::direct(port).await, &format!("DROP TABLE {t}")).await;
    }
}
