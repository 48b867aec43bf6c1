//! Nothing of one client reaches another: two Sluice users sharing one backend login over a
//! pool of one connection, so every statement of one runs on the connection the other used.

use crate::harness::{self, run, Proxy};
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};
use std::time::Duration;

/// A proxy with a pool of one connection and a second user `tenant_b` that logs in to the
/// backends as `app`; every statement on the primary (`strong`), so both share that one
/// connection.
async fn shared_pool_of_one() -> Proxy {
    harness::start_with(|t| {
        t.replace("max_size = 64", "max_size = 1").replace("consistency = \"session\"", "consistency = \"strong\"").replace(
            "[monitor]",
            "[[users]]\nname = \"tenant_b\"\npassword = \"b_pw\"\nbackend_user = \"app\"\nbackend_password = \"app_pw\"\n\n[monitor]",
        )
    })
    .await
}

/// A connection as `tenant_b` to `db`.
async fn tenant_b(p: &Proxy, db: &str) -> Conn {
    let url = format!("mysql://tenant_b:b_pw@127.0.0.1:{}/{db}?prefer_socket=false", p.addr.port());
    Conn::new(Opts::from_url(&url).unwrap()).await.expect("tenant_b connects")
}

/// The value of `sluice_sessions_pinned{reason}`.
async fn pinned(p: &Proxy, reason: &str) -> i64 {
    let (_, body) = p.http_get("/metrics").await;
    let line = format!("sluice_sessions_pinned{{reason=\"{reason}\"}} ");
    body.lines().find_map(|l| l.strip_prefix(&line)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// Ends a client connection and waits until its session released the backend connection.
async fn quit(p: &Proxy, c: Conn) {
    c.disconnect().await.unwrap();
    for _ in 0..200 {
        if p.primary_pool().0 == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the session did not release its connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_switch_off_session_tracking_for_the_next() {
    let p = shared_pool_of_one().await;
    let mut a = p.conn().await;
    let mut b = tenant_b(&p, "sluice_test").await;
    let default_mode: String = b.query_first("SELECT @@session.sql_mode").await.unwrap().unwrap();
    run(&mut a, "SET SESSION session_track_system_variables = ''").await;
    run(&mut a, "SET SESSION session_track_state_change = OFF").await;
    run(&mut a, "SET SESSION sql_mode = 'ANSI_QUOTES'").await;
    let seen_b: String = b.query_first("SELECT @@session.sql_mode").await.unwrap().unwrap();
    assert_eq!(seen_b, default_mode, "tenant_b inherited tenant A's sql_mode");
    let tracking: String = b.query_first("SELECT @@session.session_track_system_variables").await.unwrap().unwrap();
    assert_eq!(tracking, "*", "Sluice's own tracking setting must be back on the shared connection");
    let seen_a: String = a.query_first("SELECT @@session.sql_mode").await.unwrap().unwrap();
    assert_eq!(seen_a, "ANSI_QUOTES", "A's own setting is still replayed for A");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_at_at_name_is_kept_for_the_session_and_not_leaked() {
    let p = shared_pool_of_one().await;
    let mut a = p.conn().await;
    let mut b = tenant_b(&p, "sluice_test").await;
    let defaults: (String, String) = b.query_first("SELECT @@sql_mode, @@time_zone").await.unwrap().unwrap();
    run(&mut a, "SET @@sql_mode = 'ANSI', @@time_zone = '+05:00'").await;
    let seen_b: (String, String) = b.query_first("SELECT @@sql_mode, @@time_zone").await.unwrap().unwrap();
    assert_eq!(seen_b, defaults, "tenant_b inherited SET @@ values");
    let seen_a: (String, String) = a.query_first("SELECT @@sql_mode, @@time_zone").await.unwrap().unwrap();
    assert_eq!(seen_a.1, "+05:00");
    assert!(seen_a.0.contains("ANSI"), "{}", seen_a.0);
}

/// The prepared form: the stored statement's analysis carries no text, so the `@@name`
/// assignments are read back from the statement's SQL at each execute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_set_at_at_name_is_kept_for_the_session_and_not_leaked() {
    let p = shared_pool_of_one().await;
    let mut a = p.conn().await;
    let mut b = tenant_b(&p, "sluice_test").await;
    let defaults: (String, String) = b.query_first("SELECT @@sql_mode, @@time_zone").await.unwrap().unwrap();
    a.exec_drop("SET @@sql_mode = 'ANSI', @@time_zone = '+05:00'", ()).await.unwrap();
    let seen_b: (String, String) = b.query_first("SELECT @@sql_mode, @@time_zone").await.unwrap().unwrap();
    assert_eq!(seen_b, defaults, "tenant_b inherited prepared SET @@ values");
    let seen_a: (String, String) = a.exec_first("SELECT @@sql_mode, @@time_zone", ()).await.unwrap().unwrap();
    assert_eq!(seen_a.1, "+05:00");
    assert!(seen_a.0.contains("ANSI"), "{}", seen_a.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_executable_comments_pin_what_they_create() {
    let p = shared_pool_of_one().await;
    let mut a = p.conn().await;
    let lock = harness::table("l_m");
    run(&mut a, &format!("SELECT /*M! @v:='x', GET_LOCK('{lock}', 0), */ 1")).await;
    let v: Option<String> = a.query_first("SELECT @v").await.unwrap().unwrap();
    assert_eq!(v.as_deref(), Some("x"));
    assert_eq!(pinned(&p, "user_variable").await, 1);
    quit(&p, a).await;
    let mut b = tenant_b(&p, "sluice_test").await;
    let row: (Option<String>, i64) =
        b.query_first(format!("SELECT @v, IS_FREE_LOCK('{lock}')")).await.unwrap().unwrap();
    assert_eq!(row, (None, 1), "the next tenant saw A's variable or lock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_functions_and_procedures_pin_the_session() {
    let p = shared_pool_of_one().await;
    let mut a = p.conn().await;
    let (f, pr) = (harness::table("sf_setvar"), harness::table("sp_temp"));
    run(&mut a, &format!("CREATE FUNCTION {f}() RETURNS INT DETERMINISTIC BEGIN SET @sv = 'secret'; RETURN 1; END"))
        .await;
    run(
        &mut a,
        &format!("CREATE PROCEDURE {pr}() BEGIN CREATE TEMPORARY TABLE tmp_in_proc (a INT); SET SESSION sql_mode = 'ANSI'; END"),
    )
    .await;
    let one: Option<i64> = a.query_first(format!("SELECT {f}()")).await.unwrap();
    assert_eq!(one, Some(1));
    assert_eq!(pinned(&p, "routine").await, 1, "a stored function call must pin");
    let sv: Option<String> = a.query_first("SELECT @sv").await.unwrap().unwrap();
    assert_eq!(sv.as_deref(), Some("secret"));
    run(&mut a, &format!("CALL {pr}()")).await;
    let n: Option<i64> = a.query_first("SELECT COUNT(*) FROM tmp_in_proc").await.unwrap();
    assert_eq!(n, Some(0));
    run(&mut a, &format!("DROP FUNCTION {f}")).await;
    run(&mut a, &format!("DROP PROCEDURE {pr}")).await;
    quit(&p, a).await;
    let mut b = tenant_b(&p, "sluice_test").await;
    let sv: Option<Option<String>> = b.query_first("SELECT @sv").await.unwrap();
    assert_eq!(sv, Some(None), "tenant_b saw a variable a stored function set");
    let e = b.query_drop("SELECT COUNT(*) FROM tmp_in_proc").await.expect_err("the temporary table is A's");
    assert_eq!(harness::code(&e), 1146);
    let mode: String = b.query_first("SELECT @@sql_mode").await.unwrap().unwrap();
    assert_ne!(mode, "ANSI");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_variables_do_not_reach_the_next_tenant() {
    let p = shared_pool_of_one().await;
    let t = harness::table("oneshot");
    let mut a = p.conn().await;
    run(&mut a, &format!("CREATE TABLE {t} (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)")).await;
    run(&mut a, "SET insert_id = 5000").await;
    run(&mut a, "SET rand_seed1 = 1, rand_seed2 = 2").await;
    assert_eq!(pinned(&p, "connection_state").await, 1);
    quit(&p, a).await;
    let mut b = tenant_b(&p, "sluice_test").await;
    run(&mut b, &format!("INSERT INTO {t} (v) VALUES (1)")).await;
    let id: Option<u64> = b.query_first(format!("SELECT MAX(id) FROM {t}")).await.unwrap();
    assert_eq!(id, Some(1), "tenant_b's INSERT took the id tenant A set");
    // The same seeds on a connection of its own give a known RAND(); B must not get it.
    let seeded: f64 = {
        let mut d = harness::direct(harness::primary_port()).await;
        run(&mut d, "SET rand_seed1 = 1, rand_seed2 = 2").await;
        d.query_first("SELECT RAND()").await.unwrap().unwrap()
    };
    let r: f64 = b.query_first("SELECT RAND()").await.unwrap().unwrap();
    assert_ne!(r, seeded, "tenant_b's RAND() followed tenant A's seeds");
    run(&mut b, &format!("DROP TABLE {t}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_follow_each_clients_database() {
    let p = shared_pool_of_one().await;
    let t = harness::table("ps_db");
    let mut setup = harness::direct(harness::primary_port()).await;
    for (db, v) in [("sluice_test", "one"), ("sbtest", "two")] {
        run(&mut setup, &format!("CREATE TABLE {db}.{t} (v VARCHAR(10))")).await;
        run(&mut setup, &format!("INSERT INTO {db}.{t} VALUES ('{v}')")).await;
    }
    let mut a = p.conn().await;
    let mut b = tenant_b(&p, "sbtest").await;
    let sql = format!("SELECT v FROM {t}");
    let va: Option<String> = a.exec_first(&sql, ()).await.unwrap();
    let vb: Option<String> = b.exec_first(&sql, ()).await.unwrap();
    assert_eq!(va.as_deref(), Some("one"));
    assert_eq!(vb.as_deref(), Some("two"), "tenant_b on sbtest read sluice_test's rows");
    // A write lands in the writer's own database too.
    b.exec_drop(format!("INSERT INTO {t} VALUES (?)"), ("from_b",)).await.unwrap();
    a.exec_drop(format!("INSERT INTO {t} VALUES (?)"), ("from_a",)).await.unwrap();
    let in_sbtest: Vec<String> = setup.query(format!("SELECT v FROM sbtest.{t} ORDER BY v")).await.unwrap();
    assert_eq!(in_sbtest, vec!["from_b".to_string(), "two".to_string()]);
    for db in ["sluice_test", "sbtest"] {
        run(&mut setup, &format!("DROP TABLE {db}.{t}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preparing_unlock_tables_does_not_unpin() {
    let p = harness::start_with(|t| t.replace("max_size = 64", "max_size = 2")).await;
    let t = harness::table("lock_prep");
    let mut a = p.conn().await;
    run(&mut a, &format!("CREATE TABLE {t} (a INT)")).await;
    run(&mut a, &format!("LOCK TABLES {t} WRITE")).await;
    let stmt = a.prep("UNLOCK TABLES").await.unwrap();
    assert_eq!(pinned(&p, "lock_tables").await, 1, "preparing UNLOCK TABLES released the pin");
    a.exec_drop(&stmt, ()).await.unwrap();
    assert_eq!(pinned(&p, "lock_tables").await, 0);
    run(&mut a, &format!("DROP TABLE {t}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_or_replace_temporary_table_pins() {
    let p = shared_pool_of_one().await;
    let mut a = p.conn().await;
    run(&mut a, "CREATE OR REPLACE TEMPORARY TABLE tmp_cor (a INT)").await;
    assert_eq!(pinned(&p, "temp_table").await, 1);
    run(&mut a, "RENAME TABLE tmp_cor TO tmp_cor2").await;
    let n: Option<i64> = a.query_first("SELECT COUNT(*) FROM tmp_cor2").await.unwrap();
    assert_eq!(n, Some(0));
    quit(&p, a).await;
    let mut b = tenant_b(&p, "sluice_test").await;
    let e = b.query_drop("SELECT COUNT(*) FROM tmp_cor2").await.expect_err("A's temporary table");
    assert_eq!(harness::code(&e), 1146);
}

/// With autocommit off, a failed first statement has opened the transaction and holds its
/// locks: the session stays on that connection, and its ROLLBACK releases them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_statement_under_autocommit_off_keeps_its_connection() {
    let p = harness::start_with(|t| t.replace("max_size = 64", "max_size = 2")).await;
    let t = harness::table("ac0_fail");
    let mut a = p.conn().await;
    run(&mut a, &format!("CREATE TABLE {t} (id INT PRIMARY KEY, v INT NOT NULL)")).await;
    run(&mut a, "SET autocommit = 0").await;
    let e = a.query_drop(format!("INSERT INTO {t} VALUES (1, NULL)")).await.expect_err("NOT NULL");
    assert_eq!(harness::code(&e), 1048);
    assert_eq!(pinned(&p, "transaction").await, 1, "the failed statement's transaction must pin");
    run(&mut a, "ROLLBACK").await;
    assert_eq!(pinned(&p, "transaction").await, 0);
    let mut b = p.conn().await;
    run(&mut b, "SET SESSION lock_wait_timeout = 5").await;
    let dropped = tokio::time::timeout(Duration::from_secs(10), b.query_drop(format!("DROP TABLE {t}"))).await;
    dropped.expect("DROP TABLE waited on a lock left in the pool").unwrap();
}

/// `FOR rec IN (SELECT ..)` keeps a cursor open inside the block, and MariaDB flags the
/// result sets it returns with CURSOR_EXISTS: the rows must still arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_sets_of_a_block_with_an_open_cursor_arrive() {
    let p = harness::start().await;
    let mut a = p.conn().await;
    let rows = tokio::time::timeout(
        Duration::from_secs(10),
        a.query::<i64, _>("BEGIN NOT ATOMIC FOR rec IN (SELECT 1 AS a UNION SELECT 2) DO SELECT rec.a; END FOR; END"),
    )
    .await
    .expect("the block's results hang through Sluice")
    .unwrap();
    assert_eq!(rows, vec![1]);
    let one: Option<i64> = a.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "the session is usable afterwards");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_insert_id_with_an_argument_sets_the_sessions_value() {
    let p = shared_pool_of_one().await;
    let t = harness::table("lii_expr");
    let mut a = p.conn().await;
    let mut b = tenant_b(&p, "sluice_test").await;
    run(&mut a, &format!("CREATE TABLE {t} (id BIGINT AUTO_INCREMENT PRIMARY KEY, n INT)")).await;
    run(&mut a, &format!("INSERT INTO {t} (n) VALUES (1)")).await;
    let set: Option<u64> = a.query_first("SELECT LAST_INSERT_ID(77)").await.unwrap();
    assert_eq!(set, Some(77));
    run(&mut b, "SELECT LAST_INSERT_ID(5)").await;
    let got: Option<u64> = a.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
    assert_eq!(got, Some(77));
    // In an UPDATE, and read through @@last_insert_id / @@identity.
    run(&mut a, &format!("UPDATE {t} SET n = LAST_INSERT_ID(n + 100)")).await;
    run(&mut b, "SELECT 1").await;
    let got: Option<(u64, u64)> = a.query_first("SELECT LAST_INSERT_ID(), @@identity").await.unwrap();
    assert_eq!(got, Some((101, 101)));
    let gb: Option<u64> = b.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
    assert_eq!(gb, Some(5), "tenant_b keeps its own value");
    run(&mut a, &format!("DROP TABLE {t}")).await;
}

/// Bytes a backend sends after a complete response are never the next client's answer: the
/// connection they arrived on is discarded at check-in. A forwarder in front of the primary
/// appends a well-formed OK packet to the answer of `SELECT 'a_marker'`; with a pool of one,
/// the next client's `SELECT 'b_own_answer'` would otherwise read that OK as its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_left_over_by_a_backend_do_not_reach_the_next_client() {
    // An OK packet, sequence id 1: header (length 7), then 0x00, 0 rows, 0 id, status, warnings.
    const STRAY_OK: &[u8] = &[7, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0];
    let fwd = crate::fault::Forwarder::with_trailer(harness::primary_port(), b"a_marker", STRAY_OK).await;
    let primary = format!("127.0.0.1:{}", harness::primary_port());
    let p = harness::start_with(|t| {
        t.replacen(&format!("primary = \"{primary}\""), &format!("primary = \"{}\"", fwd.addr()), 1)
            .replace("max_size = 64", "max_size = 1")
            .replace("consistency = \"session\"", "consistency = \"strong\"")
    })
    .await;
    let mut a = p.conn().await;
    let mut b = p.conn().await;
    for _ in 0..3 {
        let got: Option<String> = a.query_first("SELECT 'a_marker'").await.unwrap();
        assert_eq!(got.as_deref(), Some("a_marker"));
        let got: Option<String> = b.query_first("SELECT 'b_own_answer'").await.unwrap();
        assert_eq!(got.as_deref(), Some("b_own_answer"), "the next client read another's bytes");
    }
}

/// An OK packet whose session-tracking block reports `name = value`, as a backend sends it to
/// a connection that negotiated CLIENT_SESSION_TRACK (sequence id 1).
fn forged_tracking_ok(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut data = vec![name.len() as u8];
    data.extend_from_slice(name);
    data.push(value.len() as u8);
    data.extend_from_slice(value);
    let mut entry = vec![0u8, data.len() as u8]; // SESSION_TRACK_SYSTEM_VARIABLES
    entry.extend_from_slice(&data);
    // OK, 0 rows, id 0, status AUTOCOMMIT | SESSION_STATE_CHANGED, 0 warnings, empty info.
    let mut payload = vec![0u8, 0, 0, 0x02, 0x40, 0, 0, 0, entry.len() as u8];
    payload.extend_from_slice(&entry);
    let mut packet = vec![payload.len() as u8, 0, 0, 1];
    packet.extend_from_slice(&payload);
    packet
}

/// A variable name a backend reports in its session-tracking block is never written into the
/// SQL Sluice replays on other connections: a name that is not an identifier (here
/// `sql_mode=0,sql_log_bin`, which pasted into `SET SESSION ... = '0'` would switch off the
/// binary log) keeps the session on its connection instead, counted as `connection_state`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_supplied_variable_names_never_become_sql() {
    let forged: &'static [u8] = Box::leak(forged_tracking_ok(b"sql_mode=0,sql_log_bin", b"0").into_boxed_slice());
    let fwd = crate::fault::Forwarder::with_forged_answer(harness::primary_port(), b"n_marker", forged).await;
    let primary = format!("127.0.0.1:{}", harness::primary_port());
    let p = harness::start_with(|t| {
        t.replacen(&format!("primary = \"{primary}\""), &format!("primary = \"{}\"", fwd.addr()), 1)
            .replace("consistency = \"session\"", "consistency = \"strong\"")
    })
    .await;
    let mut c = p.conn().await;
    assert_eq!(pinned(&p, "connection_state").await, 0);
    c.query_drop("SELECT 'n_marker'").await.unwrap();
    assert_eq!(pinned(&p, "connection_state").await, 1, "the session was not kept on its connection");
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    let mut d = p.conn().await;
    let log_bin: Option<i64> = d.query_first("SELECT @@SESSION.sql_log_bin").await.unwrap();
    assert_eq!(log_bin, Some(1), "another client's session lost its binary log");
}

/// A BACKUP STAGE lives on the connection that started it (MariaDB's mysql-test found it left
/// on a pooled connection: another client's CREATE TABLE then failed with ERROR 4145): the
/// session stays on its connection, which is reset before anyone else gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_stage_stays_with_its_session_and_ends_with_it() {
    harness::root_sql(
        harness::primary_port(),
        "CREATE USER IF NOT EXISTS 'sluice_backup'@'%' IDENTIFIED BY 'backup_pw'; \
         GRANT RELOAD, SELECT, CREATE, DROP ON *.* TO 'sluice_backup'@'%'",
    );
    let p = harness::start_with(|t| {
        t.replace("max_size = 64", "max_size = 1").replace("consistency = \"session\"", "consistency = \"strong\"").replace(
            "[monitor]",
            "[[users]]\nname = \"bk\"\npassword = \"bk_pw\"\nbackend_user = \"sluice_backup\"\nbackend_password = \"backup_pw\"\n\n[monitor]",
        )
    })
    .await;
    let url = format!("mysql://bk:bk_pw@127.0.0.1:{}/sluice_test?prefer_socket=false", p.addr.port());
    let table = harness::table("backup_probe");
    let mut a = Conn::new(Opts::from_url(&url).unwrap()).await.unwrap();
    run(&mut a, "BACKUP STAGE START").await;
    let e = a.query_drop(format!("CREATE TABLE {table} (x INT)")).await.unwrap_err();
    assert_eq!(harness::code(&e), 4145, "the stage is on the session's own connection: {e}");
    assert_eq!(pinned(&p, "connection_state").await, 1);
    a.disconnect().await.unwrap();
    // The only pooled connection is the one that had the stage: the next client must find it ended.
    let mut b = Conn::new(Opts::from_url(&url).unwrap()).await.unwrap();
    run(&mut b, &format!("CREATE TABLE {table} (x INT)")).await;
    run(&mut b, &format!("DROP TABLE {table}")).await;
}
