//! What `FOUND_ROWS()` returns after a read with a `LIMIT` offset and no
//! `SQL_CALC_FOUND_ROWS`. The server counts the rows it found, the skipped ones included, so
//! after `SELECT ... LIMIT 20, 10` it answers 20 + the rows sent (measured on MariaDB 10.11
//! with GROUP BY, DISTINCT, HAVING, ORDER BY, joins, window functions, `OFFSET n ROWS FETCH`);
//! when no row is sent it answers how many matched, which only the server knows, and a UNION
//! or a parenthesized query follow other rules. Sluice computes the simple case and asks the
//! connection for the others (the session's value must be right whichever connection the
//! client's next statement runs on).

use crate::sql::lex::{Lexer, Token};

/// How the session's `FOUND_ROWS()` follows from a result set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Found {
    /// No offset that counts: the rows sent.
    #[default]
    Sent,
    /// A top-level literal offset: that many plus the rows sent, when any row was sent.
    Plus(u64),
    /// A top-level offset bound to this parameter (0-based) of a prepared statement: each
    /// execute reads it where the client sent it ([`Found::bound`]).
    Param(usize),
    /// Only the connection that ran it knows: read `FOUND_ROWS()` back there.
    ReadBack,
}

/// How `FOUND_ROWS()` follows from `sql`'s result set. The analysis calls it only for
/// statements in which it saw an offset (`Analysis::found`), so the common read pays nothing.
pub fn found(sql: &str) -> Found {
    let mut depth = 0usize;
    let (mut prev, mut prev2): (Option<Token<'_>>, Option<Token<'_>>) = (None, None);
    let (mut first, mut union, mut ended) = ("", false, false);
    // Where the offset is, its token, and which placeholder it is when it is one.
    let mut offset: Option<(usize, Token<'_>, usize)> = None;
    let (mut several, mut placeholders) = (false, 0usize);
    for (i, t) in Lexer::new(sql).enumerate() {
        if ended && t != Token::Punct(b';') {
            // Another statement after this one: its own rules, the server knows.
            return Found::ReadBack;
        }
        match t {
            Token::Word(w) if i == 0 => first = w,
            Token::Word(w) => {
                union = union || ["union", "except", "intersect"].iter().any(|k| w.eq_ignore_ascii_case(k));
            }
            Token::Punct(b'(') => {
                if i == 0 {
                    first = "(";
                }
                depth += 1;
            }
            Token::Punct(b')') => depth = depth.saturating_sub(1),
            Token::Punct(b';') => ended = true,
            _ => {}
        }
        // `LIMIT offset, count` (at the comma) or `OFFSET offset` (at the value).
        // (The placeholder counted last is the comma's `prev`; `t` is not counted yet.)
        let value = match (prev2, prev, t) {
            (Some(Token::Word(l)), Some(v), Token::Punct(b',')) if l.eq_ignore_ascii_case("limit") => {
                Some((v, placeholders.wrapping_sub(1)))
            }
            (_, Some(Token::Word(o)), v) if o.eq_ignore_ascii_case("offset") && is_value(v) => Some((v, placeholders)),
            _ => None,
        };
        if let Some((v, n)) = value {
            several = several || offset.is_some();
            offset = Some((depth, v, n));
        }
        placeholders += usize::from(t == Token::Punct(b'?'));
        prev2 = prev;
        prev = Some(t);
    }
    let Some((depth, value, n)) = offset else { return Found::Sent };
    let simple = first.eq_ignore_ascii_case("select") || first.eq_ignore_ascii_case("with");
    match value {
        _ if depth > 0 || !simple || union || several => Found::ReadBack,
        Token::Word(v) => v.parse().map_or(Found::ReadBack, Found::Plus),
        Token::Punct(b'?') => Found::Param(n),
        _ => Found::ReadBack,
    }
}

impl Found {
    /// For a prepared statement's execute: a [`Found::Param`] offset made the value the client
    /// bound (`value` reads parameter `n`), or read back when it is not a non-negative integer.
    pub fn bound(self, value: impl FnOnce(usize) -> Option<i128>) -> Found {
        match self {
            Found::Param(n) => value(n).and_then(|v| u64::try_from(v).ok()).map_or(Found::ReadBack, Found::Plus),
            other => other,
        }
    }
}

/// The session's `FOUND_ROWS()` after a statement (`found`: its `Analysis::found`) sent
/// `sent` rows in a result set, or `None` when only the connection that ran it knows.
pub fn known(found: Found, sent: u64) -> Option<u64> {
    match found {
        Found::Sent => Some(sent),
        Found::Plus(o) if sent > 0 => Some(o.saturating_add(sent)),
        _ => None,
    }
}

/// A token an `OFFSET` clause can take: a number, a placeholder, a variable.
fn is_value(t: Token<'_>) -> bool {
    match t {
        Token::Word(w) => w.as_bytes().first().is_some_and(u8::is_ascii_digit),
        Token::Punct(b'?') | Token::UserVar => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_top_level_literal_offset_is_added() {
        for (sql, want) in [
            ("SELECT a FROM t LIMIT 2,3", Found::Plus(2)),
            ("select a from t limit 2 , 3 for update", Found::Plus(2)),
            ("SELECT a FROM t LIMIT 3 OFFSET 40", Found::Plus(40)),
            ("select b from g order by b offset 3 rows fetch first 2 rows only", Found::Plus(3)),
            ("WITH c AS (SELECT 1 AS x) SELECT x FROM c LIMIT 5, 1", Found::Plus(5)),
            ("SELECT a FROM t LIMIT 0, 3;", Found::Plus(0)),
        ] {
            assert_eq!(found(sql), want, "{sql}");
        }
    }

    #[test]
    fn other_offsets_are_read_back() {
        for sql in [
            "SELECT a FROM t UNION ALL SELECT a FROM u LIMIT ?, ?",
            "(SELECT a FROM t LIMIT ?, 1)",
            "SELECT a FROM t UNION ALL SELECT a FROM u LIMIT 2,3",
            "(SELECT a FROM t LIMIT 3,1)",
            "(SELECT a FROM t LIMIT 1,1) UNION ALL (SELECT a FROM t LIMIT 2)",
            "SELECT a FROM t LIMIT 1,2; SELECT 1",
            "SHOW WARNINGS LIMIT 1, 1",
            "SELECT * FROM (SELECT a FROM t LIMIT 1,2) d LIMIT 1,1",
            "SELECT a FROM t LIMIT 99999999999999999999999, 1",
        ] {
            assert_eq!(found(sql), Found::ReadBack, "{sql}");
        }
    }

    #[test]
    fn a_placeholder_offset_is_read_from_each_execute() {
        assert_eq!(found("SELECT a FROM t LIMIT ?, ?"), Found::Param(0));
        assert_eq!(found("SELECT a FROM t WHERE b = ? AND c IN (?, ?) LIMIT ?, 5"), Found::Param(3));
        assert_eq!(found("SELECT a FROM t WHERE b = ? LIMIT 2 OFFSET ?"), Found::Param(1));
        assert_eq!(found("SELECT a FROM t WHERE b = '?' LIMIT 2 OFFSET ? -- ?"), Found::Param(0));
        let bound = |v: Option<i128>| Found::Param(1).bound(|n| v.filter(|_| n == 1));
        assert_eq!(bound(Some(40)), Found::Plus(40));
        assert_eq!(bound(Some(-1)), Found::ReadBack);
        assert_eq!(bound(None), Found::ReadBack, "a string or NULL: the server decides");
        assert_eq!(Found::Plus(3).bound(|_| Some(9)), Found::Plus(3));
    }

    #[test]
    fn an_empty_page_is_read_back() {
        let page = found("SELECT a FROM t LIMIT 20, 10");
        assert_eq!(known(page, 4), Some(24));
        assert_eq!(known(page, 0), None, "how many matched: the server knows");
        assert_eq!(known(found("SELECT a FROM t LIMIT 10"), 0), Some(0));
        assert_eq!(known(found("SELECT a FROM t LIMIT 1, 18446744073709551615"), 3), Some(4));
        // The analysis looks only where it saw an offset.
        assert_eq!(crate::router::analyze("SELECT a FROM t LIMIT 20, 10").found, page);
        assert_eq!(crate::router::analyze("SELECT a FROM t LIMIT 3 OFFSET ?").found, Found::Param(0));
        assert_eq!(crate::router::analyze("SELECT a, b FROM t LIMIT 3").found, Found::Sent);
    }

    #[test]
    fn words_named_offset_and_inner_limits_count_the_rows_sent() {
        for sql in [
            "SELECT offset FROM t",
            "SELECT `offset`, x FROM t LIMIT 5",
            "SELECT a FROM t LIMIT 10",
            "SELECT a, b FROM t WHERE (a, b) IN ((1, 2))",
        ] {
            assert_eq!(found(sql), Found::Sent, "{sql}");
        }
    }
}
