//! Table-driven tests of [`decide`]: statement + session view + rules → command, one line per
//! case. The families are those the integration tests exercise through the proxy (tests/it):
//! reads and writes, session state, warnings, KILL, consistency, transactions, sharded
//! statements on one shard, split, on every shard, scatter, refused, in and out of
//! transactions, XA, paused writes and the rewrites.

use super::*;
use crate::config::ShardingConfig;

/// A compact, exact description of a command, for the tables.
fn sketch(c: &Command<'_>) -> String {
    match c {
        Command::Local(Local::Warnings(Question::List { errors_only })) => {
            (if *errors_only { "errors" } else { "warnings" }).into()
        }
        Command::Local(Local::Warnings(Question::Count { errors_only, name })) => {
            format!("count {} as {name}", if *errors_only { "errors" } else { "warnings" })
        }
        Command::Local(Local::SessionValues(v)) => {
            let names: Vec<String> = v.iter().map(|(k, n)| format!("{k:?}={n}")).collect();
            format!("values {}", names.join(","))
        }
        Command::Local(Local::SetConsistency(l)) => format!("consistency {}", l.as_str()),
        Command::Local(Local::ShowConsistency) => "show consistency".into(),
        Command::Local(Local::Kill(k)) => format!("kill {k:?}"),
        Command::Local(Local::TlsStatus(v)) => format!("tls status {v:?}"),
        Command::Refuse(Refusal::WrongConsistency(v)) => format!("refuse consistency {v}"),
        Command::Refuse(Refusal::KillInPrepared) => "refuse prepared kill".into(),
        Command::Refuse(Refusal::Sharding(m)) => format!("refuse sharding: {m}"),
        Command::Refuse(Refusal::WritesPaused) => "refuse paused".into(),
        Command::Refuse(Refusal::Transaction(m)) => format!("refuse txn: {m}"),
        Command::Refuse(Refusal::TopologyChanged) => "refuse topology changed".into(),
        Command::Txn(TxnStep::HoldBegin) => "hold begin".into(),
        Command::Txn(TxnStep::DropHeldBegin) => "drop begin".into(),
        Command::Txn(TxnStep::EndXa(e)) => format!("xa {e:?}"),
        Command::Execute(p) => {
            let at = match p.shard {
                None => "here".to_string(),
                Some(t) if p.by_ring => format!("ring {}", t.index),
                Some(t) => format!("shard {}", t.index),
            };
            let role = if p.analysis.replica_candidate() { "replica-ok" } else { "primary" };
            let rw = p.rewrite.as_deref().map(|r| format!(" => {r}")).unwrap_or_default();
            format!("{at} {role}{rw}")
        }
        Command::Fanout(Fanout::Each { parts, what, split }) => {
            let shards: Vec<String> = parts.iter().map(|(i, _)| i.to_string()).collect();
            format!("{} [{}] {what}", if *split { "split" } else { "each" }, shards.join(","))
        }
        Command::Fanout(Fanout::Scatter { shards, max_rows, .. }) => {
            let shards: Vec<String> = shards.iter().map(|i| i.to_string()).collect();
            format!("scatter [{}] max {max_rows}", shards.join(","))
        }
    }
}

/// Topology: 0 = "main" (the default shard), 1..=3 = ring shards s0, s1, s2.
fn sharding(extra: &str) -> Sharding {
    let text = format!(
        "key = \"user_id\"\ntables = [\"orders\", \"events\"]\nring = [\"s0\", \"s1\", \"s2\"]\ndefault = \"main\"\n{extra}"
    );
    let cfg: ShardingConfig = toml::from_str(&text).unwrap();
    Sharding::new(&cfg, |n| ["main", "s0", "s1", "s2"].iter().position(|x| *x == n).unwrap())
}

const FREE: SessionView =
    SessionView { held: None, begin_held: false, xa: false, connection_id: 77, fingerprint: true, socket: None };
const HELD_DEFAULT: SessionView = SessionView { held: Some(0), ..FREE };
const HELD_S1: SessionView = SessionView { held: Some(2), ..FREE };
const BEGUN: SessionView = SessionView { begin_held: true, ..FREE };
const XA_S0: SessionView = SessionView { held: Some(1), xa: true, ..FREE };

/// Two keys on different shards of the ring: `{ka}` / `{kb}` in a statement, and `{sa}` /
/// `{sb}` (their shards' topology indices) in an expectation. Read from the ring, so the
/// tables say "the shard the ring says" without copying the hash.
fn keys(sh: &Sharding) -> [(i128, usize); 2] {
    let shard = |k: i128| sh.topology_index[sh.ring.shard_index(&crate::sharding::KeyValue::Int(k))];
    let b = (2..1000).find(|&k| shard(k) != shard(1)).expect("a key on another shard");
    [(1, shard(1)), (b, shard(b))]
}

/// Runs a table and reports every case that differs.
fn check(rules: &Rules<'_>, cases: &[(&str, SessionView, &str)]) {
    let keys = rules.sharding.map(keys);
    let fill = |t: &str| match keys {
        Some([(ka, sa), (kb, sb)]) => t
            .replace("{ka}", &ka.to_string())
            .replace("{kb}", &kb.to_string())
            .replace("{sa}", &sa.to_string())
            .replace("{sb}", &sb.to_string()),
        None => t.to_string(),
    };
    let mut failed = Vec::new();
    for (sql, view, want) in cases {
        let (sql, want) = (fill(sql), fill(want));
        let got = sketch(&decide(&sql, true, view, rules));
        if got != want {
            failed.push(format!("{sql:?} with {view:?}\n   want: {want}\n    got: {got}"));
        }
    }
    assert!(failed.is_empty(), "{} of {} cases differ:\n{}", failed.len(), cases.len(), failed.join("\n"));
}

const UNSHARDED: Rules<'static> = Rules { sharding: None, default_shard: 0, version: 7 };

/// Reads, writes and what ties a statement to the primary, without sharding.
#[test]
fn reads_writes_and_session_state_without_sharding() {
    check(
        &UNSHARDED,
        &[
            ("SELECT 1", FREE, "here replica-ok"),
            ("SELECT c FROM sbtest1 WHERE id=5", FREE, "here replica-ok"),
            ("select c from sbtest1 where id between 1 and 9 order by c", FREE, "here replica-ok"),
            ("SELECT * FROM t FOR UPDATE", FREE, "here primary"),
            ("SELECT * FROM t LOCK IN SHARE MODE", FREE, "here primary"),
            ("SELECT a INTO @x FROM t", FREE, "here primary"),
            ("SELECT * FROM t INTO OUTFILE '/tmp/x'", FREE, "here primary"),
            ("/* sluice:primary */ SELECT * FROM t", FREE, "here primary"),
            ("/* sluice:replica */ SELECT * FROM t", FREE, "here replica-ok"),
            ("SELECT GET_LOCK('a', 1)", FREE, "here primary"),
            ("SELECT RELEASE_LOCK('a')", FREE, "here primary"),
            ("SELECT NEXTVAL(s)", FREE, "here primary"),
            ("SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1", FREE, "here primary"),
            ("SELECT my_function(1)", FREE, "here primary"),
            ("SELECT @x", FREE, "here primary"),
            ("SELECT @@version", FREE, "here replica-ok"),
            // Which server answered: how users check the routing.
            ("SELECT @@server_id", FREE, "here replica-ok"),
            ("SELECT @@gtid_binlog_pos", FREE, "here primary"),
            ("SELECT 1; SELECT 2", FREE, "here primary"),
            ("INSERT INTO t VALUES (1)", FREE, "here primary"),
            ("REPLACE INTO t VALUES (1)", FREE, "here primary"),
            ("UPDATE t SET a = 1", FREE, "here primary"),
            ("DELETE FROM t", FREE, "here primary"),
            ("CREATE TABLE t (a INT)", FREE, "here primary"),
            ("CREATE TEMPORARY TABLE tt (a INT)", FREE, "here primary"),
            ("DROP TABLE t", FREE, "here primary"),
            ("TRUNCATE t", FREE, "here primary"),
            ("LOCK TABLES t WRITE", FREE, "here primary"),
            ("UNLOCK TABLES", FREE, "here primary"),
            ("SET @x = 1", FREE, "here primary"),
            ("SET NAMES utf8mb4", FREE, "here primary"),
            ("SET SESSION sql_mode = ''", FREE, "here primary"),
            ("SET @@session.time_zone = '+00:00'", FREE, "here primary"),
            ("SET insert_id = 5", FREE, "here primary"),
            ("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", FREE, "here primary"),
            ("CALL p()", FREE, "here primary"),
            ("PREPARE s FROM 'SELECT 1'", FREE, "here primary"),
            ("EXECUTE s", FREE, "here primary"),
            ("HANDLER t OPEN", FREE, "here primary"),
            ("XA START 'x'", FREE, "here primary"),
            ("XA COMMIT 'x'", FREE, "here primary"),
            ("USE db2", FREE, "here primary"),
            ("SHOW TABLES", FREE, "here replica-ok"),
            ("SHOW CREATE TABLE t", FREE, "here replica-ok"),
            ("SHOW PROCESSLIST", FREE, "here primary"),
            ("SHOW STATUS", FREE, "here primary"),
            ("SHOW VARIABLES LIKE 'x'", FREE, "here primary"),
            ("SHOW WARNINGS LIMIT 1", FREE, "here primary"),
            ("EXPLAIN SELECT 1", FREE, "here replica-ok"),
            ("EXPLAIN UPDATE t SET a = 1", FREE, "here primary"),
            ("DESCRIBE t", FREE, "here replica-ok"),
            ("DO 1", FREE, "here primary"),
            ("FLUSH TABLES WITH READ LOCK", FREE, "here primary"),
            ("this is not sql", FREE, "here primary"),
            ("", FREE, "here primary"),
            // Held on a connection: the statement stays there (the route is the lease's).
            ("SELECT 1", HELD_DEFAULT, "here replica-ok"),
            ("INSERT INTO t VALUES (1)", HELD_DEFAULT, "here primary"),
        ],
    );
}

/// Transactions without sharding are the server's: relayed as sent.
#[test]
fn transactions_without_sharding_are_relayed() {
    check(
        &UNSHARDED,
        &[
            ("BEGIN", FREE, "here primary"),
            ("BEGIN WORK", FREE, "here primary"),
            ("START TRANSACTION", FREE, "here primary"),
            ("START TRANSACTION READ ONLY", FREE, "here replica-ok"),
            ("/* sluice:primary */ START TRANSACTION READ ONLY", FREE, "here primary"),
            ("START TRANSACTION READ WRITE", FREE, "here primary"),
            ("COMMIT", FREE, "here primary"),
            ("COMMIT", HELD_DEFAULT, "here primary"),
            ("ROLLBACK", HELD_DEFAULT, "here primary"),
            ("COMMIT AND CHAIN", HELD_DEFAULT, "here primary"),
            ("ROLLBACK RELEASE", HELD_DEFAULT, "here primary"),
            ("SAVEPOINT a", HELD_DEFAULT, "here primary"),
            ("ROLLBACK TO SAVEPOINT a", HELD_DEFAULT, "here primary"),
            ("RELEASE SAVEPOINT a", HELD_DEFAULT, "here primary"),
            ("SET autocommit = 0", FREE, "here primary"),
        ],
    );
}

/// What Sluice answers itself, in and out of transactions.
#[test]
fn questions_sluice_answers_itself() {
    let sh = sharding("");
    for rules in [UNSHARDED, Rules { sharding: Some(&sh), default_shard: 0, version: 7 }] {
        check(
            &rules,
            &[
                ("SHOW WARNINGS", FREE, "warnings"),
                ("show warnings;", FREE, "warnings"),
                ("SHOW ERRORS", FREE, "errors"),
                ("SHOW COUNT(*) WARNINGS", FREE, "count warnings as @@session.warning_count"),
                ("SHOW COUNT(*) ERRORS", FREE, "count errors as @@session.error_count"),
                ("SELECT @@warning_count", FREE, "count warnings as @@warning_count"),
                ("SELECT @@session.error_count", FREE, "count errors as @@session.error_count"),
                // A pinned session's connection has the real list.
                ("SHOW WARNINGS", HELD_DEFAULT, "here primary"),
                ("SELECT @@warning_count", HELD_DEFAULT, "here primary"),
                ("SELECT LAST_INSERT_ID()", FREE, "values LastInsertId=LAST_INSERT_ID()"),
                ("select last_insert_id() as id", FREE, "values LastInsertId=id"),
                ("SELECT @@last_insert_id", FREE, "values LastInsertIdVariable=@@last_insert_id"),
                ("SELECT @@identity", FREE, "values LastInsertIdVariable=@@identity"),
                ("SELECT ROW_COUNT()", FREE, "values RowCount=ROW_COUNT()"),
                ("SELECT FOUND_ROWS()", FREE, "values FoundRows=FOUND_ROWS()"),
                ("SELECT ROW_COUNT(), FOUND_ROWS()", FREE, "values RowCount=ROW_COUNT(),FoundRows=FOUND_ROWS()"),
                ("SELECT LAST_INSERT_ID()", HELD_DEFAULT, "values LastInsertId=LAST_INSERT_ID()"),
                // Not only session values: the server computes it (with the session's id put in).
                ("SELECT LAST_INSERT_ID(), 1", FREE, "here primary"),
                ("SELECT LAST_INSERT_ID(5)", FREE, "here primary"),
                ("SELECT LAST_INSERT_ID() FROM t", FREE, "here primary"),
                ("SET @@sluice_consistency = 'session'", FREE, "consistency session"),
                ("set session @@session.sluice_consistency='Strong';", FREE, "consistency strong"),
                ("SET @@sluice_consistency := monotonic", HELD_DEFAULT, "consistency monotonic"),
                ("SET @@sluice_consistency = 'eventual'", FREE, "consistency eventual"),
                ("SET @@sluice_consistency = 'bogus'", FREE, "refuse consistency bogus"),
                ("SELECT @@sluice_consistency", FREE, "show consistency"),
                ("SELECT @@session.sluice_consistency", HELD_DEFAULT, "show consistency"),
                ("KILL 12", FREE, "kill Session { connection: true, target: Id(12) }"),
                ("KILL CONNECTION 12", FREE, "kill Session { connection: true, target: Id(12) }"),
                ("kill query 12", HELD_DEFAULT, "kill Session { connection: false, target: Id(12) }"),
                ("KILL CONNECTION_ID()", FREE, "kill Session { connection: true, target: Own }"),
                ("KILL QUERY CONNECTION_ID()", FREE, "kill Session { connection: false, target: Own }"),
                ("KILL QUERY ID 12", FREE, "kill Unsupported(\"KILL QUERY ID\")"),
                ("KILL USER 'bob'", FREE, "kill Unsupported(\"KILL USER\")"),
                ("PREPARE s FROM 'KILL 3'", FREE, "refuse prepared kill"),
                ("EXECUTE IMMEDIATE 'KILL QUERY 3'", FREE, "refuse prepared kill"),
            ],
        );
    }
}

/// The rewrites: `@@socket` hidden, `CONNECTION_ID()` made the session's id; never of text
/// that was not valid UTF-8 as sent.
#[test]
fn rewrites() {
    check(
        &UNSHARDED,
        &[
            ("SELECT @@socket", FREE, "here primary => SELECT NULL AS `@@socket`"),
            ("SELECT CONNECTION_ID()", FREE, "here replica-ok => SELECT 77 AS `CONNECTION_ID()`"),
            ("SELECT connection_id() AS me", FREE, "here replica-ok => SELECT 77 AS me"),
            ("SELECT 'CONNECTION_ID()'", FREE, "here replica-ok"),
            (
                "SELECT CONNECTION_ID(), @@socket",
                FREE,
                "here primary => SELECT 77 AS `CONNECTION_ID()`, NULL AS `@@socket`",
            ),
        ],
    );
    let Command::Execute(p) = decide("SELECT CONNECTION_ID()", false, &FREE, &UNSHARDED) else { panic!() };
    assert_eq!(p.rewrite, None, "a statement that was not UTF-8 as sent is never re-encoded");
}

/// Statements on sharded tables outside transactions: one shard, split, every shard, scatter,
/// refused; unsharded tables on the default shard.
#[test]
fn sharded_statements() {
    let sh = sharding("");
    let rules = Rules { sharding: Some(&sh), default_shard: 0, version: 7 };
    check(
        &rules,
        &[
            ("SELECT * FROM orders WHERE user_id = {ka}", FREE, "ring {sa} replica-ok"),
            ("SELECT * FROM orders WHERE user_id = {kb}", FREE, "ring {sb} replica-ok"),
            ("select * from ORDERS where USER_ID = {kb}", FREE, "ring {sb} replica-ok"),
            ("SELECT * FROM `orders` WHERE `user_id` = '{kb}'", FREE, "ring {sb} replica-ok"),
            ("SELECT * FROM orders WHERE user_id = {kb} FOR UPDATE", FREE, "ring {sb} primary"),
            ("SELECT * FROM orders WHERE user_id = {ka} AND x = 2", FREE, "ring {sa} replica-ok"),
            ("UPDATE orders SET x = 1 WHERE user_id = {kb}", FREE, "ring {sb} primary"),
            ("DELETE FROM orders WHERE user_id = {ka}", FREE, "ring {sa} primary"),
            ("INSERT INTO orders (user_id, x) VALUES ({kb}, 1)", FREE, "ring {sb} primary"),
            ("INSERT INTO orders (user_id, x) VALUES ({ka}, 1), ({ka}, 2)", FREE, "ring {sa} primary"),
            (
                "INSERT INTO orders (user_id, x) VALUES ({ka}, 1), ({kb}, 2)",
                FREE,
                "split [{sa},{sb}] INSERT split by shard",
            ),
            (
                "SELECT 1 FROM orders o JOIN events e ON o.user_id = e.user_id WHERE o.user_id = {kb}",
                FREE,
                "ring {sb} replica-ok",
            ),
            ("SELECT * FROM orders", FREE, "scatter [1,2,3] max 100000"),
            ("SELECT COUNT(*) FROM orders", FREE, "scatter [1,2,3] max 100000"),
            ("SELECT * FROM orders WHERE user_id IN ({ka}, {kb})", FREE, "scatter [1,2,3] max 100000"),
            ("ALTER TABLE orders ADD COLUMN y INT", FREE, "each [1,2,3] DDL on a sharded table"),
            ("CREATE INDEX i ON orders (x)", FREE, "each [1,2,3] DDL on a sharded table"),
            (
                "UPDATE orders SET x = 1",
                FREE,
                "refuse sharding: an UPDATE on sharded table 'orders' without `user_id = value`: it would need every shard",
            ),
            ("SELECT * FROM orders WHERE user_id = ?", FREE, "refuse sharding: a `?` placeholder outside a prepared statement"),
            // A word that only looks like a sharded table.
            ("SELECT 'orders' FROM t", FREE, "here replica-ok"),
            ("SELECT * FROM plain_table", FREE, "here replica-ok"),
            ("INSERT INTO plain_table VALUES (1)", FREE, "here primary"),
            ("SELECT 1", FREE, "here replica-ok"),
            ("SET @x = 1", FREE, "here primary"),
        ],
    );
}

/// With sharding a transaction lives on one shard: BEGIN is held back, a held BEGIN that ran
/// nothing is dropped, and a statement that would leave the shard is refused (or, with XA,
/// moves to another branch at execution).
#[test]
fn sharded_transactions() {
    let sh = sharding("");
    let rules = Rules { sharding: Some(&sh), default_shard: 0, version: 7 };
    check(
        &rules,
        &[
            ("BEGIN", FREE, "hold begin"),
            ("START TRANSACTION", FREE, "hold begin"),
            ("start transaction with consistent snapshot", FREE, "hold begin"),
            ("START TRANSACTION READ ONLY", FREE, "here replica-ok"),
            ("BEGIN; SELECT 1", FREE, "here primary"),
            // Already in one: relayed (the server commits implicitly, as it would).
            ("BEGIN", HELD_S1, "here primary"),
            ("BEGIN", BEGUN, "here primary"),
            ("COMMIT", BEGUN, "drop begin"),
            ("ROLLBACK WORK", BEGUN, "drop begin"),
            ("COMMIT AND NO CHAIN", BEGUN, "drop begin"),
            ("COMMIT AND CHAIN", BEGUN, "here primary"),
            ("ROLLBACK TO SAVEPOINT a", BEGUN, "here primary"),
            ("COMMIT", HELD_S1, "here primary"),
            ("ROLLBACK", HELD_S1, "here primary"),
            ("COMMIT", FREE, "here primary"),
            // The first statement picks the shard; the held BEGIN goes with it.
            ("SELECT * FROM orders WHERE user_id = {kb}", BEGUN, "ring {sb} replica-ok"),
            ("UPDATE orders SET x = 1 WHERE user_id = {kb}", BEGUN, "ring {sb} primary"),
            ("SELECT * FROM plain_table", BEGUN, "here replica-ok"),
            // Inside a transaction on a ring shard: unsharded tables are on the default shard.
            ("SELECT * FROM plain_table", HELD_S1, "shard 0 replica-ok"),
            ("UPDATE plain_table SET a = 1", HELD_S1, "shard 0 primary"),
            ("SELECT * FROM plain_table", HELD_DEFAULT, "here replica-ok"),
            // ... statements that name no table stay where they are.
            ("SELECT 1", HELD_S1, "here replica-ok"),
            ("SET @x = 1", HELD_S1, "here primary"),
            ("SAVEPOINT a", HELD_S1, "here primary"),
            ("SELECT @@socket", HELD_S1, "here primary => SELECT NULL AS `@@socket`"),
            // ... and one Sluice cannot read is refused rather than guessed.
            (
                "SELECT * FROM plain_table WHERE (",
                HELD_S1,
                "refuse txn: a statement Sluice cannot parse inside a transaction on a sharded table's shard",
            ),
            // Several shards inside a transaction: refused before anything is sent.
            ("SELECT * FROM orders", HELD_S1, "refuse txn: a read across shards inside a transaction"),
            ("SELECT * FROM orders", BEGUN, "refuse txn: a read across shards inside a transaction"),
            (
                "INSERT INTO orders (user_id, x) VALUES ({ka}, 1), ({kb}, 2)",
                BEGUN,
                "refuse txn: INSERT split by shard inside a transaction (it would span several shards)",
            ),
            (
                "ALTER TABLE orders ADD COLUMN y INT",
                HELD_DEFAULT,
                "refuse txn: DDL on a sharded table inside a transaction (it would span several shards)",
            ),
            // The warnings of a held connection are on it; a held BEGIN holds no connection.
            ("SHOW WARNINGS", HELD_S1, "here primary"),
            ("SHOW WARNINGS", BEGUN, "warnings"),
        ],
    );
}

/// XA (`cross_shard = "xa"`): Sluice ends the transaction on every branch itself.
#[test]
fn xa_transactions() {
    let sh = sharding("cross_shard = \"xa\"");
    let rules = Rules { sharding: Some(&sh), default_shard: 0, version: 7 };
    check(
        &rules,
        &[
            ("BEGIN", FREE, "hold begin"),
            ("COMMIT", XA_S0, "xa Commit"),
            ("commit work", XA_S0, "xa Commit"),
            ("ROLLBACK", XA_S0, "xa Rollback"),
            ("ROLLBACK AND NO CHAIN", XA_S0, "xa Rollback"),
            ("COMMIT AND CHAIN", XA_S0, "refuse txn: COMMIT AND CHAIN or RELEASE in a cross-shard (XA) transaction"),
            ("ROLLBACK RELEASE", XA_S0, "refuse txn: COMMIT AND CHAIN or RELEASE in a cross-shard (XA) transaction"),
            ("ROLLBACK TO SAVEPOINT a", XA_S0, "here primary"),
            ("UPDATE orders SET x = 1 WHERE user_id = {kb}", XA_S0, "ring {sb} primary"),
            ("SELECT * FROM plain_table", XA_S0, "shard 0 replica-ok"),
            ("SELECT * FROM orders", XA_S0, "refuse txn: a read across shards inside a transaction"),
        ],
    );
    // A reload that removed sharding does not strand an open XA transaction: it still ends
    // as it began.
    check(
        &UNSHARDED,
        &[("COMMIT", XA_S0, "xa Commit"), ("ROLLBACK", BEGUN, "drop begin"), ("BEGIN", FREE, "here primary")],
    );
}

/// `pause_writes` refuses writes on sharded tables only; `allow_scatter_writes` runs a write
/// without key on every shard.
#[test]
fn paused_writes_and_scatter_writes() {
    let paused = sharding("pause_writes = true");
    let rules = Rules { sharding: Some(&paused), default_shard: 0, version: 7 };
    check(
        &rules,
        &[
            ("SELECT * FROM orders WHERE user_id = {ka}", FREE, "ring {sa} replica-ok"),
            ("SELECT * FROM orders", FREE, "scatter [1,2,3] max 100000"),
            ("UPDATE orders SET x = 1 WHERE user_id = {ka}", FREE, "refuse paused"),
            ("INSERT INTO orders (user_id) VALUES ({kb})", FREE, "refuse paused"),
            ("SELECT * FROM orders WHERE user_id = {ka} FOR UPDATE", FREE, "ring {sa} primary"),
            ("UPDATE plain_table SET a = 1", FREE, "here primary"),
        ],
    );
    let scatter = sharding("allow_scatter_writes = true\nmax_scatter_rows = 10");
    let rules = Rules { sharding: Some(&scatter), default_shard: 0, version: 7 };
    check(
        &rules,
        &[
            ("UPDATE orders SET x = 1", FREE, "each [1,2,3] write without shard key (allow_scatter_writes)"),
            ("DELETE FROM orders WHERE x = 1", FREE, "each [1,2,3] write without shard key (allow_scatter_writes)"),
            ("SELECT * FROM orders", FREE, "scatter [1,2,3] max 10"),
            (
                "UPDATE orders SET x = 1",
                HELD_S1,
                "refuse txn: write without shard key (allow_scatter_writes) inside a transaction (it would span several shards)",
            ),
        ],
    );
}

/// A shard the rules chose carries the snapshot version it was chosen under; a split
/// INSERT's parts are the client's rows, by shard.
#[test]
fn chosen_shards_carry_their_snapshot_and_parts_their_rows() {
    let sh = sharding("");
    let rules = Rules { sharding: Some(&sh), default_shard: 0, version: 42 };
    let [(ka, sa), (kb, sb)] = keys(&sh);
    let one = format!("SELECT * FROM orders WHERE user_id = {kb}");
    let Command::Execute(p) = decide(&one, true, &FREE, &rules) else { panic!("one shard") };
    assert_eq!(p.shard, Some(TargetShard { index: sb, version: 42 }));
    let Command::Execute(p) = decide("SELECT * FROM plain_table", true, &HELD_S1, &rules) else { panic!("default") };
    assert_eq!(p.shard, Some(TargetShard { index: 0, version: 42 }));
    let sql = format!("INSERT INTO orders (user_id, x) VALUES ({ka}, 1), ({kb}, 2), ({ka}, 3)");
    let Command::Fanout(Fanout::Each { parts, .. }) = decide(&sql, true, &FREE, &rules) else { panic!("split") };
    assert_eq!(parts.len(), 2);
    let part = |shard: usize| parts.iter().find(|(i, _)| *i == shard).map(|(_, q)| q.clone()).unwrap();
    assert!(part(sa).contains(&format!("({ka}, 1)")) && part(sa).contains(&format!("({ka}, 3)")), "{}", part(sa));
    assert!(part(sb).contains(&format!("({kb}, 2)")) && !part(sb).contains(&format!("({ka},")), "{}", part(sb));
}

/// Every refusal maps to its client error in one place; only the sharding ones count as
/// refused sharded statements.
#[test]
fn refusals_name_their_kind() {
    assert!(Refusal::Sharding(String::new()).is_sharding());
    assert!(Refusal::WritesPaused.is_sharding());
    assert!(!Refusal::Transaction(String::new()).is_sharding());
    assert!(!Refusal::KillInPrepared.is_sharding());
    assert!(!Refusal::WrongConsistency(String::new()).is_sharding());
}
