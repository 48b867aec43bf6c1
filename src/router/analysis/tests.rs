use super::*;

fn has(sql: &str, f: Feature) -> bool {
    analyze(sql).features.has(f)
}

#[test]
fn first_word_and_no_features_for_plain_statements() {
    let a = analyze("  select c from sbtest1 where id = 5");
    assert_eq!(a.first, "select");
    assert_eq!(a.features, Features::default());
    assert_eq!(analyze("/* hi */ INSERT INTO t VALUES (1)").first, "INSERT");
}

#[test]
fn session_state_creators_are_found() {
    assert!(has("SET @x = 1", Feature::UserVariable));
    assert!(has("SELECT @r := 5", Feature::UserVariable));
    assert!(has("CALL p(@out)", Feature::UserVariable));
    assert!(!has("SELECT '@x'", Feature::UserVariable));
    assert!(!has("SELECT @@sql_mode", Feature::UserVariable));
    assert!(has("create temporary table t (a int)", Feature::TempTable));
    assert!(!has("create table temporary_t (a int)", Feature::TempTable));
    assert!(has("LOCK TABLES t WRITE", Feature::LockTables));
    assert!(has("lock table t read", Feature::LockTables));
    assert!(has("FLUSH TABLES WITH READ LOCK", Feature::LockTables));
    assert!(has("UNLOCK TABLES", Feature::UnlockTables));
    assert!(has("FLUSH TABLES t1, t2 FOR EXPORT", Feature::LockTables));
    assert!(has("INSERT INTO t SELECT 1 FROM DUAL WHERE NOT EXISTS (SELECT 1)", Feature::CalcFoundRows));
    assert!(has("create table t2 as select * from t", Feature::CalcFoundRows));
    assert!(!has("INSERT INTO t VALUES ('select')", Feature::CalcFoundRows));
    assert!(!has("SELECT 1", Feature::CalcFoundRows));
    assert!(has("BACKUP STAGE START", Feature::ConnectionState));
    assert!(has("backup lock t1", Feature::ConnectionState));
    assert!(!has("SELECT backup FROM t", Feature::ConnectionState));
    assert!(!has("SELECT export FROM t", Feature::LockTables));
    assert!(has("SELECT GET_LOCK('a', 1)", Feature::UserLock));
    assert!(!has("SELECT 'GET_LOCK('", Feature::UserLock));
    assert!(has("SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1", Feature::CalcFoundRows));
    assert!(has("PREPARE s FROM 'SELECT 1'", Feature::ConnectionState));
    assert!(has("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", Feature::ConnectionState));
    assert!(!has("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", Feature::ConnectionState));
    assert!(has("INSERT INTO t VALUES (LAST_INSERT_ID())", Feature::LastInsertId));
    assert!(has("SELECT @@identity", Feature::LastInsertId));
}

#[test]
fn session_values_are_recognised_only_in_the_simple_shape() {
    let v = session_values("SELECT LAST_INSERT_ID()").unwrap();
    assert_eq!(v, vec![(SessionValue::LastInsertId, "LAST_INSERT_ID()".to_string())]);
    let v = session_values("select last_insert_id() as id, ROW_COUNT( ) rc, found_rows(), @@identity;").unwrap();
    assert_eq!(
        v,
        vec![
            (SessionValue::LastInsertId, "id".to_string()),
            (SessionValue::RowCount, "rc".to_string()),
            (SessionValue::FoundRows, "found_rows()".to_string()),
            (SessionValue::LastInsertIdVariable, "@@identity".to_string()),
        ]
    );
    assert!(session_values("SELECT LAST_INSERT_ID() FROM t").is_none());
    assert!(session_values("SELECT LAST_INSERT_ID(5)").is_none());
    assert!(session_values("SELECT LAST_INSERT_ID() + 1").is_none());
    assert!(session_values("SELECT 1").is_none());
    assert!(session_values("SELECT LAST_INSERT_ID(); SELECT 1").is_none());
}

#[test]
fn socket_reads_are_a_feature() {
    assert!(analyze("SELECT @@socket").features.has(Feature::Socket));
}

#[test]
fn xa_boundaries() {
    assert!(analyze("XA START 'x'").features.has(Feature::XaStart));
    assert!(analyze("xa begin 'x'").features.has(Feature::XaStart));
    assert!(analyze("XA COMMIT 'x'").features.has(Feature::XaEnd));
    assert!(analyze("XA ROLLBACK 'x'").features.has(Feature::XaEnd));
    assert!(!analyze("XA END 'x'").features.has(Feature::XaEnd));
    assert!(!analyze("SELECT start FROM xa").features.has(Feature::XaStart));
}

#[test]
fn marking_sees_words_and_quoted_names_but_not_strings() {
    let orders = |w: &str| w.eq_ignore_ascii_case("orders");
    assert!(super::analyze_marking("select * from `orders` where user_id = 1", orders, true).marked);
    assert!(super::analyze_marking("SELECT * FROM db.ORDERS", orders, true).marked);
    assert!(!super::analyze_marking("SELECT 'orders' FROM customers", orders, true).marked);
    assert!(!super::analyze("SELECT * FROM orders").marked);
}

#[test]
fn set_forms_the_backend_does_not_report_are_found() {
    assert!(has("SET @@sql_mode = 'ANSI'", Feature::SysVarAssign));
    assert!(has("set @@session.time_zone='+05:00', @@sql_mode=''", Feature::SysVarAssign));
    assert!(!has("SET @@global.sql_mode = ''", Feature::SysVarAssign));
    assert!(!has("SELECT @@sql_mode", Feature::SysVarAssign));
    assert_eq!(
        assigned_sysvars(
            "SET @@sql_mode = CONCAT(@@sql_mode, ',ANSI'), @@session.time_zone = '+01:00', @@global.x = 1"
        ),
        vec!["sql_mode", "time_zone"]
    );
    assert!(has("SET SESSION session_track_system_variables = ''", Feature::TrackingVar));
    assert!(has("SET @@session_track_state_change = OFF", Feature::TrackingVar));
    assert!(has("SET insert_id = 5", Feature::OneShotVar));
    assert!(has("SET @@rand_seed1 = 1, @@rand_seed2 = 2", Feature::OneShotVar));
    assert!(!has("SELECT insert_id FROM t", Feature::OneShotVar));
    assert!(has("SET optimizer_trace = 'enabled=on'", Feature::ConnectionState));
    assert!(has("SET @@session.optimizer_trace = 'enabled=on'", Feature::ConnectionState));
    assert!(has("SET last_insert_id = 9", Feature::SetsLastInsertId));
}

#[test]
fn last_insert_id_with_an_argument_sets_it() {
    assert!(has("SELECT LAST_INSERT_ID(77)", Feature::SetsLastInsertId));
    assert!(has("UPDATE t SET id = LAST_INSERT_ID(id + 1)", Feature::SetsLastInsertId));
    assert!(!has("SELECT LAST_INSERT_ID()", Feature::SetsLastInsertId));
    assert!(!has("SELECT 'LAST_INSERT_ID(5)'", Feature::SetsLastInsertId));
}

#[test]
fn routines_are_found_and_builtins_are_not() {
    for sql in [
        "CALL p()",
        "SELECT sf_setvar()",
        "SELECT a, my_db.f(a) FROM t",
        "DO sf_lock()",
        "SELECT /*M! sf() */ 1",
        "INSERT INTO t VALUES (f(1))",
        "UPDATE t SET a = g(a)",
    ] {
        assert!(has(sql, Feature::Routine), "{sql}");
    }
    for sql in [
        "SELECT COUNT(*), CONCAT(a, 'x'), IFNULL(b, 0), JSON_EXTRACT(j, '$.a') FROM t WHERE id IN (1, 2)",
        "INSERT INTO t (a, b) VALUES (1, 2)",
        "INSERT INTO db.t (a) VALUES (NOW())",
        "INSERT t (a) VALUES (1)",
        "REPLACE INTO t(a) VALUES (1)",
        "SELECT CAST(a AS DECIMAL(10, 2)), CONVERT(b USING utf8mb4) FROM t USE INDEX (i)",
        "SELECT ROW_NUMBER() OVER (PARTITION BY a ORDER BY b) FROM t",
        "SELECT * FROM (SELECT 1) d JOIN (SELECT 2) e ON (1 = 1) WHERE EXISTS (SELECT 1)",
        "CREATE TABLE t (a INT, b VARCHAR(10), KEY k (a))",
        "ALTER TABLE t ADD INDEX i (a)",
        "WITH c (x) AS (SELECT 1) SELECT x FROM c",
        "SELECT 'f(1)', `g`(1) FROM t",
    ] {
        assert!(!has(sql, Feature::Routine), "{sql}");
    }
}

#[test]
fn create_or_replace_temporary_table_is_a_temporary_table() {
    assert!(has("CREATE OR REPLACE TEMPORARY TABLE t (a INT)", Feature::TempTable));
    assert!(has("CREATE TEMPORARY SEQUENCE s", Feature::TempTable));
}

#[test]
fn connection_id_calls_are_a_feature() {
    assert!(has("SELECT CONNECTION_ID()", Feature::ConnectionId));
}

#[test]
fn only_connection_bound_variables_keep_a_read_on_the_primary() {
    assert!(PRIMARY_VARIABLES.windows(2).all(|w| w[0] < w[1]), "PRIMARY_VARIABLES must stay sorted");
    for sql in [
        "SELECT @@server_id",
        "SELECT @@version, @@hostname",
        "SELECT @@max_allowed_packet, @@wait_timeout",
        "SELECT @@SESSION.sql_mode",
        "select @@session.auto_increment_increment, @@character_set_client, @@tx_isolation",
    ] {
        assert!(analyze(sql).replica_ok(), "{sql}");
    }
    for sql in [
        "SELECT @@identity",
        "SELECT @@last_insert_id",
        "SELECT @@session.warning_count",
        "SELECT @@in_transaction",
        "SELECT @@read_only",
        "SELECT @@GLOBAL.gtid_current_pos",
        "SELECT @@pseudo_thread_id",
        "SELECT @@LAST_GTID",
    ] {
        assert!(!analyze(sql).replica_ok(), "{sql}");
    }
}
