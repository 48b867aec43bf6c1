//! What kind of statement this is, as far as routing cares: a read a replica may serve, a
//! write, or something else that belongs on the primary. The first words decide for the
//! shapes that make up real traffic; statements that do not start with a keyword Sluice knows
//! (`WITH ...`, `(SELECT ...) UNION ...`) are parsed with sqlparser's MySQL dialect, and what
//! neither understands is `Unknown`: it goes to the primary and is counted.

use sqlparser::ast::Statement;
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

/// Routing class of a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// SELECT, data-describing SHOW, DESCRIBE/EXPLAIN: a replica may answer, unless a feature
    /// (locking read, INTO, a connection-bound function) says otherwise.
    Read,
    /// `START TRANSACTION READ ONLY`: the whole transaction may run on one replica.
    ReadOnlyTransaction,
    /// Changes data or schema.
    Write,
    /// Session and transaction control, administration: the primary, not counted as a write.
    Other,
    /// Neither the fast path nor sqlparser understood it: the primary, and a metric.
    #[default]
    Unknown,
}

impl Kind {
    /// The metric kinds, in [`Kind::metric_index`] order.
    pub const METRIC: [Kind; 4] = [Kind::Read, Kind::Write, Kind::Other, Kind::Unknown];

    /// Position in per-kind metric arrays (a read-only transaction counts as a read).
    pub fn metric_index(self) -> usize {
        match self {
            Kind::Read | Kind::ReadOnlyTransaction => 0,
            Kind::Write => 1,
            Kind::Other => 2,
            Kind::Unknown => 3,
        }
    }

    /// Label for the `kind` metric dimension.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Read | Kind::ReadOnlyTransaction => "read",
            Kind::Write => "write",
            Kind::Other => "other",
            Kind::Unknown => "unknown",
        }
    }
}

use crate::sql::MAX_PARSE_BYTES;

/// Classifies by the first two words (`second` is empty when there is none).
pub fn by_words(first: &str, second: &str) -> Option<Kind> {
    let eq = |w: &str, kw: &str| w.eq_ignore_ascii_case(kw);
    let f = |kw: &str| eq(first, kw);
    Some(if f("select") {
        Kind::Read
    } else if ["insert", "update", "delete", "replace", "create", "alter", "drop", "truncate", "rename", "load", "call"]
        .iter()
        .any(|k| f(k))
    {
        Kind::Write
    } else if f("show") {
        // Statements that describe data a replica also has; everything else SHOW reports
        // (warnings, status, variables, processlist, binary logs...) is about one server or
        // one connection.
        let data = ["tables", "full", "columns", "fields", "index", "indexes", "keys", "create", "table", "databases"];
        if data.iter().any(|k| eq(second, k)) || eq(second, "schemas") || eq(second, "triggers") {
            Kind::Read
        } else {
            Kind::Other
        }
    } else if f("desc") || f("describe") || f("explain") {
        if ["insert", "update", "delete", "replace"].iter().any(|k| eq(second, k)) {
            Kind::Other
        } else {
            Kind::Read
        }
    } else if [
        "set",
        "use",
        "begin",
        "start",
        "commit",
        "rollback",
        "savepoint",
        "release",
        "xa",
        "prepare",
        "execute",
        "deallocate",
        "do",
        "kill",
        "flush",
        "lock",
        "unlock",
        "grant",
        "revoke",
        "handler",
        "help",
        "analyze",
        "optimize",
        "repair",
        "check",
        "checksum",
        "install",
        "uninstall",
        "purge",
        "reset",
        "change",
        "binlog",
        "cache",
        "signal",
        "resignal",
        "get",
        "stop",
        "backup",
        "shutdown",
    ]
    .iter()
    .any(|k| f(k))
    {
        Kind::Other
    } else {
        return None;
    })
}

/// The slow path, for statements the first words do not classify: a query (including
/// `WITH ... SELECT` and parenthesised unions) is a read; any other statement sqlparser
/// understands is a write; a parse failure is `Unknown`.
pub fn by_parsing(sql: &str) -> Kind {
    if sql.len() > MAX_PARSE_BYTES {
        // Routed without a full parse: to the primary, like anything not understood.
        return Kind::Unknown;
    }
    match Parser::parse_sql(&MySqlDialect {}, sql) {
        Ok(stmts) if stmts.len() == 1 => match &stmts[0] {
            Statement::Query(_) => Kind::Read,
            _ => Kind::Write,
        },
        Ok(stmts) if !stmts.is_empty() => Kind::Write,
        _ => Kind::Unknown,
    }
}

/// A routing hint written as a comment, `/* sluice:primary */` or `/* sluice:replica */`,
/// anywhere a comment may stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    Primary,
    Replica,
}

/// Finds a hint. Cheap when there is none: a statement without a `/` has no comment, and
/// that byte search (word-at-a-time) costs a fraction of the substring searcher's set-up
/// (about 400 instructions per point select, callgrind).
pub fn hint(sql: &str) -> Option<Hint> {
    if !sql.as_bytes().contains(&b'/') {
        return None;
    }
    let mut from = 0;
    while let Some(i) = sql[from..].find("sluice:") {
        let at = from + i;
        from = at + 7;
        // Only inside a comment: "/*" (then spaces) right before.
        if !sql[..at].trim_end().ends_with("/*") {
            continue;
        }
        let word: String = sql[from..].chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        match word.to_ascii_lowercase().as_str() {
            "primary" | "master" => return Some(Hint::Primary),
            "replica" | "slave" => return Some(Hint::Replica),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_words_decide_the_common_shapes() {
        assert_eq!(by_words("SELECT", "c"), Some(Kind::Read));
        assert_eq!(by_words("insert", "into"), Some(Kind::Write));
        assert_eq!(by_words("Update", "t"), Some(Kind::Write));
        assert_eq!(by_words("SHOW", "TABLES"), Some(Kind::Read));
        assert_eq!(by_words("SHOW", "create"), Some(Kind::Read));
        assert_eq!(by_words("SHOW", "WARNINGS"), Some(Kind::Other));
        assert_eq!(by_words("SHOW", "SLAVE"), Some(Kind::Other));
        assert_eq!(by_words("SHOW", ""), Some(Kind::Other));
        assert_eq!(by_words("EXPLAIN", "SELECT"), Some(Kind::Read));
        assert_eq!(by_words("EXPLAIN", "DELETE"), Some(Kind::Other));
        assert_eq!(by_words("BEGIN", ""), Some(Kind::Other));
        assert_eq!(by_words("with", "x"), None);
        assert_eq!(by_words("SELCT", "1"), None);
    }

    #[test]
    fn the_parser_classifies_the_rest() {
        assert_eq!(by_parsing("WITH x AS (SELECT 1 AS a) SELECT a FROM x"), Kind::Read);
        assert_eq!(by_parsing("(SELECT 1) UNION (SELECT 2)"), Kind::Read);
        assert_eq!(by_parsing("SELCT 1"), Kind::Unknown);
        assert_eq!(by_parsing(""), Kind::Unknown);
    }

    #[test]
    fn hints_only_count_inside_comments() {
        assert_eq!(hint("/* sluice:primary */ SELECT 1"), Some(Hint::Primary));
        assert_eq!(hint("/*sluice:replica*/ SELECT 1"), Some(Hint::Replica));
        assert_eq!(hint("SELECT /* sluice:REPLICA */ 1"), Some(Hint::Replica));
        assert_eq!(hint("SELECT 'sluice:replica'"), None);
        assert_eq!(hint("/* sluice:nowhere */ SELECT 1"), None);
        assert_eq!(hint("SELECT 1"), None);
        assert_eq!(hint("SELECT 4 / 2 /* sluice:replica */"), Some(Hint::Replica));
        assert_eq!(hint("SELECT 4 / 2, 'sluice:replica'"), None);
    }
}
