//! KILL under multiplexing: ids are Sluice's connection ids, a kill reaches only the named
//! session's running statement, never another client's.

use crate::harness::{self, code, run};
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};
use std::collections::HashSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_id_is_the_handshake_id_and_unique() {
    let p = harness::start_with(|t| t.replace("max_size = 64", "max_size = 4")).await;
    let mut conns = Vec::new();
    let mut seen = HashSet::new();
    for _ in 0..40 {
        let mut c = p.conn().await;
        let handshake = c.id();
        let via_sql: Option<u32> = c.query_first("SELECT CONNECTION_ID()").await.unwrap();
        assert_eq!(via_sql, Some(handshake), "CONNECTION_ID() differs from the handshake id");
        let named: Option<u32> =
            c.query_first("SELECT CONNECTION_ID() AS me FROM DUAL WHERE CONNECTION_ID() > 0").await.unwrap();
        assert_eq!(named, Some(handshake));
        let prepared: Option<u32> = c.exec_first("SELECT CONNECTION_ID()", ()).await.unwrap();
        assert_eq!(prepared, Some(handshake));
        assert!(seen.insert(handshake), "id {handshake} given twice");
        conns.push(c);
    }
}

/// `CONNECTION_ID()` inside a function's arguments, an `IN` list and `ORDER BY` is the
/// session's id too, and the statement stays valid SQL (an alias was written inside `IF(..)`:
/// ERROR 1064 for mysql-test's main.func_hybrid_type); a whole select-list item keeps its
/// column name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_id_inside_expressions_is_the_sessions_id() {
    let p = harness::start().await;
    let mut c = p.conn().await;
    let id = c.id();
    let t = harness::table("connid");
    run(
        &mut c,
        &format!(
            "CREATE TABLE {t} AS SELECT connection_id() AS c0, IFNULL(connection_id(),connection_id()) AS c1, \
             COALESCE(connection_id(), connection_id()) AS c2, IF(0,connection_id(),connection_id()) AS c4"
        ),
    )
    .await;
    let row: Option<(u32, u32, u32, u32)> = c.query_first(format!("SELECT c0, c1, c2, c4 FROM {t}")).await.unwrap();
    assert_eq!(row, Some((id, id, id, id)));
    let listed: Option<u32> = c
        .query_first(format!("SELECT c0 FROM {t} WHERE c0 IN (0, CONNECTION_ID()) ORDER BY c1, CONNECTION_ID()"))
        .await
        .unwrap();
    assert_eq!(listed, Some(id));
    let named = c.query_iter("SELECT CONNECTION_ID(), 1").await.unwrap();
    let columns: Vec<String> = named.columns_ref().iter().map(|col| col.name_str().into_owned()).collect();
    assert_eq!(columns, ["CONNECTION_ID()", "1"]);
    drop(named);
    run(&mut c, &format!("DROP TABLE {t}")).await;
}

/// The reproduction from the issue: a client kills "its own" query by its handshake id while
/// others run statements on backend threads whose ids may equal it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_query_reaches_only_the_named_session() {
    let p = harness::start_with(|t| t.replace("max_size = 64", "max_size = 8")).await;
    let url = p.url();
    let mut others = Vec::new();
    for _ in 0..6 {
        let url = url.clone();
        others.push(tokio::spawn(async move {
            let mut c = Conn::new(Opts::from_url(&url).unwrap()).await.unwrap();
            c.query_first::<i64, _>("SELECT SLEEP(2)").await
        }));
    }
    let mut victim = p.conn().await;
    let victim_id = victim.id();
    let started = Instant::now();
    let running = tokio::spawn(async move { victim.query_first::<i64, _>("SELECT SLEEP(10)").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut killer = p.conn().await;
    let killed_at = Instant::now();
    run(&mut killer, &format!("KILL QUERY {victim_id}")).await;
    let r = running.await.unwrap();
    let took = killed_at.elapsed();
    assert_eq!(code(&r.expect_err("the victim's statement must be interrupted")), 1317);
    assert!(took < Duration::from_millis(500), "interrupted {took:?} after the KILL");
    assert!(started.elapsed() < Duration::from_secs(3));
    for o in others {
        assert_eq!(o.await.unwrap().expect("another session's statement was interrupted"), Some(0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_errors_and_kill_connection() {
    let p = harness::start_with(|t| {
        t.replace(
            "[monitor]",
            "[[users]]\nname = \"other\"\npassword = \"o_pw\"\nbackend_user = \"app\"\nbackend_password = \"app_pw\"\n\n[monitor]",
        )
    })
    .await;
    let mut a = p.conn().await;
    let e = a.query_drop("KILL QUERY 4000000000").await.unwrap_err();
    assert_eq!(code(&e), 1094);
    let url = format!("mysql://other:o_pw@127.0.0.1:{}/sluice_test?prefer_socket=false", p.addr.port());
    let mut o = Conn::new(Opts::from_url(&url).unwrap()).await.unwrap();
    let e = a.query_drop(format!("KILL {}", o.id())).await.unwrap_err();
    assert_eq!(code(&e), 1095, "another user's session");
    let e = a.query_drop("KILL QUERY ID 5").await.unwrap_err();
    assert_eq!(code(&e), 1235);
    let e = a.query_drop("PREPARE s FROM 'KILL 5'").await.unwrap_err();
    assert_eq!(code(&e), 1295);
    let e = a.prep("KILL QUERY ?").await.unwrap_err();
    assert_eq!(code(&e), 1295);
    // KILL QUERY of an idle session does nothing; KILL CONNECTION ends it.
    let mut b = p.conn().await;
    let b_id = b.id();
    run(&mut a, &format!("KILL QUERY {b_id}")).await;
    let one: Option<i64> = b.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    run(&mut a, &format!("KILL CONNECTION {b_id}")).await;
    assert!(ends_within_a_second(&mut b).await, "the killed session still answers");
    let one: Option<i64> = o.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "others are untouched");
    // COM_PROCESS_KILL, as PyMySQL's Connection.kill() sends it.
    let script = format!(
        "import pymysql\nc = pymysql.connect(host='127.0.0.1', port={port}, user='app', password='app_pw')\n\
         d = pymysql.connect(host='127.0.0.1', port={port}, user='app', password='app_pw')\n\
         cur = d.cursor(); cur.execute('SELECT CONNECTION_ID()'); did = cur.fetchone()[0]\n\
         assert did == d.thread_id(), (did, d.thread_id())\n\
         c.kill(did)\n\
         try:\n    d.cursor().execute('SELECT 1')\n    print('STILL ALIVE')\nexcept pymysql.err.OperationalError:\n    print('KILLED')\n",
        port = p.addr.port()
    );
    let out = Command::new("python3").arg("-c").arg(&script).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("KILLED"), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
}

/// True once `c`'s statements fail (its session was ended), polled for about a second.
async fn ends_within_a_second(c: &mut Conn) -> bool {
    for _ in 0..50 {
        if c.query_drop("SELECT 1").await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// KILL prepared (COM_STMT_PREPARE, as mysql-test's `--ps-protocol` and any driver with
/// server-side statements send it): Sluice answers the prepare and carries the KILL out at
/// each execute, by Sluice id as the text form; a placeholder id stays refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_kill_names_a_sluice_session() {
    let p = harness::start_with(|t| t.replace("max_size = 64", "max_size = 4")).await;
    let mut victim = p.conn().await;
    let victim_id = victim.id();
    let running = tokio::spawn(async move {
        let r = victim.query_first::<i64, _>("SELECT SLEEP(10)").await;
        (r, victim)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut killer = p.conn().await;
    let stmt = killer.prep(format!("KILL QUERY {victim_id}")).await.unwrap();
    assert_eq!((stmt.num_params(), stmt.num_columns()), (0, 0));
    let killed_at = Instant::now();
    killer.exec_drop(&stmt, ()).await.unwrap();
    let (r, mut victim) = running.await.unwrap();
    assert_eq!(code(&r.expect_err("interrupted by the prepared KILL QUERY")), 1317);
    assert!(killed_at.elapsed() < Duration::from_millis(500));
    // Executed again: the victim is idle now, so nothing happens to it.
    killer.exec_drop(&stmt, ()).await.unwrap();
    let one: Option<i64> = victim.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    let e = killer.exec_drop("KILL 4000000000", ()).await.unwrap_err();
    assert_eq!(code(&e), 1094, "an unknown id, as in the text form");
    killer.exec_drop(format!("KILL CONNECTION {}", victim.id()), ()).await.unwrap();
    assert!(ends_within_a_second(&mut victim).await, "the session a prepared KILL CONNECTION named still answers");
    killer.close(stmt).await.unwrap();
    let e = killer.prep("KILL ?").await.unwrap_err();
    assert_eq!(code(&e), 1295);
    // The killer's own prepared KILL QUERY CONNECTION_ID() is a no-op, as on a server.
    killer.exec_drop("KILL QUERY CONNECTION_ID()", ()).await.unwrap();
    let one: Option<i64> = killer.exec_first("SELECT 1", ()).await.unwrap();
    assert_eq!(one, Some(1));
}

/// `KILL CONNECTION` of a session running a compound statement that never ends on its own
/// (`LOOP CREATE OR REPLACE VIEW ... END LOOP`, mysql-test's main.information_schema_tables):
/// the loop stops on the backend every time, so its locks go (a `DROP VIEW` succeeds within
/// a 3 s lock wait), and the killed client gets ERROR 1927 at once. A `KILL QUERY` that lands
/// between two statements of the loop is lost by the server; before, Sluice sent only that,
/// the loop ran on and the client waited for ever (about half of the tries).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_connection_stops_a_running_compound_statement() {
    let p = harness::start().await;
    let view = harness::table("loopview");
    let mut killer = p.conn().await;
    for round in 0..6 {
        let mut victim = p.conn().await;
        let id = victim.id();
        let sql = format!("LOOP CREATE OR REPLACE VIEW {view} AS SELECT 1; END LOOP");
        let running = tokio::spawn(async move { victim.query_drop(sql).await.map_err(|e| code(&e)) });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let asked = Instant::now();
        run(&mut killer, &format!("KILL CONNECTION {id}")).await;
        let answered = tokio::time::timeout(Duration::from_secs(5), running).await;
        let answered = answered.unwrap_or_else(|_| panic!("round {round}: the killed client got no answer in 5 s"));
        assert_eq!(answered.unwrap(), Err(1927), "round {round}");
        assert!(asked.elapsed() < Duration::from_secs(2), "round {round}: {:?}", asked.elapsed());
        run(&mut killer, "SET SESSION lock_wait_timeout = 3").await;
        run(&mut killer, &format!("DROP VIEW IF EXISTS {view}")).await;
    }
    let left: Vec<u64> = killer
        .query(format!(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'LOOP CREATE OR REPLACE VIEW {view}%'"
        ))
        .await
        .unwrap();
    assert!(left.is_empty(), "loops still running on the backend: {left:?}");
}

/// 200 clients over 8 backend connections (3 × `SELECT SLEEP(0.1)` each), with KILL QUERY of random ids meanwhile: every
/// interrupted statement belongs to a session that was named in a KILL while it ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_under_multiplexing_interrupt_only_their_targets() {
    let p = harness::start_with(|t| {
        t.replace("max_size = 64", "max_size = 8").replace("acquire_timeout_ms = 3000", "acquire_timeout_ms = 20000")
    })
    .await;
    let url = p.url();
    let mut conns = Vec::new();
    for _ in 0..200 {
        conns.push(Conn::new(Opts::from_url(&url).unwrap()).await.unwrap());
    }
    let ids: Vec<u32> = conns.iter().map(|c| c.id()).collect();
    // (id, when the kill was sent): kills of sessions that are waiting for a connection or
    // between statements interrupt nothing.
    let kills: Arc<Mutex<Vec<(u32, Instant)>>> = Arc::default();
    let interrupted: Arc<Mutex<Vec<(u32, Instant, Instant)>>> = Arc::default();
    let mut tasks = Vec::new();
    for mut c in conns {
        let interrupted = interrupted.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..3 {
                let started = Instant::now();
                match c.query_drop("SELECT SLEEP(0.1)").await {
                    Ok(()) => {}
                    Err(e) if code(&e) == 1317 => interrupted.lock().unwrap().push((c.id(), started, Instant::now())),
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    let mut killer = p.conn().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0u64;
    while Instant::now() < deadline && !tasks.iter().all(|t| t.is_finished()) {
        n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let id = ids[(n >> 33) as usize % ids.len()];
        kills.lock().unwrap().push((id, Instant::now()));
        match killer.query_drop(format!("KILL QUERY {id}")).await {
            Ok(()) => {}
            Err(e) if code(&e) == 1094 => {} // that client already finished and left
            Err(e) => panic!("KILL QUERY {id}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(30), t).await.expect("clients finish").unwrap();
    }
    let kills = kills.lock().unwrap();
    let interrupted = interrupted.lock().unwrap();
    eprintln!("{} kills sent, {} statements interrupted", kills.len(), interrupted.len());
    assert!(kills.len() > 50, "only {} kills were sent", kills.len());
    assert!(!interrupted.is_empty(), "no statement was ever interrupted: the kills did nothing");
    for (id, from, to) in interrupted.iter() {
        let named = kills.iter().any(|(k, at)| k == id && at >= from && at <= to);
        assert!(named, "session {id}'s statement was interrupted with no KILL of it while it ran");
    }
}

/// A client that hangs up while its statement runs: the statement is stopped on the backend
/// (it would otherwise run on, holding what it holds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_mid_statement_stops_its_statement() {
    let p = harness::start().await;
    let marker = harness::table("hangup");
    let mut a = p.conn().await;
    let sql = format!("SELECT /* sluice:primary */ SLEEP(20) AS {marker}");
    let running = tokio::spawn(async move { a.query_drop(&sql).await });
    let mut d = harness::direct(harness::primary_port()).await;
    let q = format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%{marker}%' AND INFO NOT LIKE '%PROCESSLIST%'");
    let until = |want: i64, what: &'static str| {
        let q = q.clone();
        async move |d: &mut mysql_async::Conn| {
            let started = Instant::now();
            loop {
                let n: Option<i64> = d.query_first(&q).await.unwrap();
                if n == Some(want) {
                    return;
                }
                assert!(started.elapsed() < Duration::from_secs(5), "{what}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    until(1, "the statement never started on the backend")(&mut d).await;
    // The client goes away: its task (and socket) dropped mid-statement.
    running.abort();
    let _ = running.await;
    until(0, "the statement still runs on the backend after its client hung up")(&mut d).await;
}

/// JDBC `Statement.cancel()` (MariaDB Connector/J sends KILL QUERY with the handshake's id on
/// a second connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jdbc_statement_cancel() {
    let p = harness::start().await;
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/JdbcCancel.java");
    let classes = std::env::temp_dir().join(format!("sluice-jdbc-cancel-{}", std::process::id()));
    std::fs::create_dir_all(&classes).unwrap();
    let out = Command::new("javac").arg("-d").arg(&classes).arg(src).output().unwrap();
    assert!(out.status.success(), "javac: {}", String::from_utf8_lossy(&out.stderr));
    let cp = format!("{}:/usr/share/java/mariadb-java-client.jar", classes.display());
    let port = p.addr.port().to_string();
    let out = Command::new("java").args(["-cp", &cp, "JdbcCancel", &port]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("ALL OK"), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&classes);
}
