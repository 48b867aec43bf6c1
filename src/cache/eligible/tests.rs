use super::*;

fn deps(sql: &str) -> Vec<String> {
    examine(sql).unwrap().deps.iter().map(|d| d.to_string()).collect()
}

fn tables(sql: &str) -> Option<Vec<String>> {
    examine(sql).unwrap().tables.map(|t| t.iter().map(|d| d.to_string()).collect())
}

#[test]
fn reads_depend_on_every_name_they_mention() {
    assert_eq!(deps("SELECT c FROM t WHERE id = 5.5"), ["c", "t", "id"]);
    assert_eq!(deps("select `Weird``Name`.x from db.`T`"), ["weird`name", "x", "db", "t"]);
    let t = tables("SELECT c FROM db.t AS a JOIN u ON a.id = u.id, v");
    assert_eq!(t, Some(vec!["db.t".into(), "u".into(), "v".into()]));
    assert_eq!(tables("SELECT * FROM (SELECT 1) x"), None);
    assert_eq!(deps("SELECT a FROM \"Ansi\" WHERE b = 'lit'"), ["a", "ansi", "b"], "ANSI_QUOTES identifiers");
    assert_eq!(tables("SELECT COUNT(*) FROM t WHERE a IN (SELECT b FROM u)"), Some(vec!["t".into(), "u".into()]));
}

#[test]
fn what_may_differ_between_runs_is_never_cached() {
    for sql in [
        "SELECT NOW()",
        "SELECT * FROM t WHERE d > CURRENT_TIMESTAMP",
        "SELECT RAND() FROM t",
        "SELECT UUID()",
        "SELECT CURRENT_USER()",
        "SELECT @x",
        "SELECT @@version",
        "SELECT my_func(c) FROM t",
        "SELECT `count`(c) FROM t",
        "SELECT NEXT VALUE FOR s",
        "SELECT LAST_INSERT_ID()",
    ] {
        assert_eq!(examine(sql), Err(Refusal::NonDeterministic), "{sql}");
    }
    for sql in [
        "SELECT * FROM t FOR UPDATE",
        "SELECT * FROM t LOCK IN SHARE MODE",
        "SELECT c INTO @x FROM t",
        "SELECT SQL_CALC_FOUND_ROWS * FROM t",
        "SELECT 1; SELECT 2",
    ] {
        assert!(examine(sql).is_err(), "{sql}");
    }
    assert_eq!(examine("SHOW TABLES"), Err(Refusal::NoRule));
    assert!(examine("SELECT COUNT(*), MAX(c), CONCAT(a, 'x') FROM t").is_ok());
    assert!(examine("SELECT 1;").is_ok());
}

#[test]
fn writes_touch_every_name_they_mention() {
    let names = |sql: &str| match touches(sql, false) {
        Touches::Names(n) => n.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        other => panic!("{sql}: {other:?}"),
    };
    assert!(names("UPDATE db.T SET c = 1 WHERE id = 2").iter().any(|n| n == "t"));
    assert!(names("INSERT INTO `Odd``T` VALUES (1)").iter().any(|n| n == "odd`t"));
    assert!(names("DELETE FROM \"ansi\" WHERE 1").iter().any(|n| n == "ansi"), "ANSI_QUOTES identifiers");
    for sql in ["ALTER TABLE t ADD c INT", "DROP DATABASE d", "TRUNCATE t", "GRANT SELECT ON *.* TO u", "CALL p()"] {
        assert_eq!(touches(sql, false), Touches::Everything, "{sql}");
    }
    assert_eq!(touches("SET ROLE admin", false), Touches::Everything);
    assert_eq!(touches("SET GLOBAL time_zone = '+01:00'", false), Touches::Everything);
    assert_eq!(touches("SET @@global.sql_mode = ''", false), Touches::Everything);
    assert_eq!(touches("SET time_zone = '+01:00', @@session.sql_mode = ''", false), Touches::Nothing);
    assert_eq!(touches("EXECUTE stmt", false), Touches::Everything);
    assert_eq!(touches("UPDATE t SET c = f()", true), Touches::Everything, "a routine");
    assert_eq!(touches("INSERT INTO t VALUES (1); DROP TABLE u", false), Touches::Everything);
    for sql in ["COMMIT", "SET autocommit = 0", "BEGIN", "SELECT 1", "SHOW TABLES", "USE d"] {
        assert_eq!(touches(sql, false), Touches::Nothing, "{sql}");
    }
}

#[test]
fn hints_give_a_ttl() {
    assert_eq!(hint_ttl_ms("/* sluice:cache ttl=5000 */ SELECT 1"), Some(5000));
    assert_eq!(hint_ttl_ms("SELECT /*sluice:cache ttl=7*/ 1"), Some(7));
    assert_eq!(hint_ttl_ms("SELECT 'sluice:cache ttl=5'"), None);
    assert_eq!(hint_ttl_ms("/* sluice:cache ttl=0 */ SELECT 1"), None);
    assert_eq!(hint_ttl_ms("/* sluice:cache */ SELECT 1"), None);
}
