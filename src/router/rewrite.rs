//! The statement texts Sluice sends instead of the client's: `CONNECTION_ID()` written as the
//! session's own id, `@@socket` hidden. A rewrite only replaces an expression by a literal;
//! where the expression is a whole select-list item it also keeps the item's column name with
//! an alias, and nowhere else (an alias inside a function's arguments, an `IN` list or an
//! `ORDER BY` would be a syntax error: mysql-test's main.func_hybrid_type found
//! `IF(0, CONNECTION_ID(), CONNECTION_ID())` rewritten into one).

use crate::sql::lex::{Lexer, Token};

/// Replaces every `CONNECTION_ID()` call with `id`, the session's Sluice connection id: the
/// one its client got in the handshake and names in KILL. A select-list item that is just the
/// call keeps its column name (`7 AS `CONNECTION_ID()``). `None` when there is none.
pub fn connection_id_as_literal(sql: &str, id: u32) -> Option<String> {
    let toks = tokens(sql);
    let items = select_list_items(&toks);
    let value = id.to_string();
    let mut edits = Vec::new();
    for i in 0..toks.len() {
        let (start, Token::Word(w)) = toks[i] else { continue };
        let call = w.eq_ignore_ascii_case("connection_id")
            && matches!(toks.get(i + 1), Some((_, Token::Punct(b'('))))
            && matches!(toks.get(i + 2), Some((_, Token::Punct(b')'))));
        if call {
            edits.push(Edit { start, end: toks[i + 2].0 + 1, alias: items.is_whole_item(i, i + 2) });
        }
    }
    splice(sql, &value, &edits)
}

/// Rewrites select-list items that are exactly `@@socket` (or `@@global.socket`,
/// `@@session.socket`) into `NULL AS `@@socket``, or Sluice's own socket (`socket`, a path
/// without quotes or backslashes) as a string. The backend's Unix socket is not reachable
/// through the proxy, and drivers that learn it on a local server reconnect to it directly,
/// bypassing Sluice (mysql_async does, with `SELECT @@max_allowed_packet, @@wait_timeout,
/// @@socket`). `None` when there is nothing to rewrite.
pub fn hide_socket(sql: &str, socket: Option<&str>) -> Option<String> {
    let value = match socket.filter(|p| !p.contains(['\'', '\\'])) {
        Some(p) => format!("'{p}'"),
        None => "NULL".to_string(),
    };
    let toks = tokens(sql);
    let items = select_list_items(&toks);
    let mut edits = Vec::new();
    for (i, &(start, t)) in toks.iter().enumerate() {
        let Token::SysVar(v) = t else { continue };
        let name = v.rsplit('.').next().unwrap_or(v);
        if name.eq_ignore_ascii_case("socket") && items.is_whole_item(i, i) {
            edits.push(Edit { start, end: start + 2 + v.len(), alias: true });
        }
    }
    splice(sql, &value, &edits)
}

/// One expression of the statement (`sql[start..end]`) to replace.
struct Edit {
    start: usize,
    end: usize,
    /// Keep the expression's text as the column name (`value AS `expression``).
    alias: bool,
}

/// `sql` with each edit's expression replaced by `value`; `None` when there is none.
fn splice(sql: &str, value: &str, edits: &[Edit]) -> Option<String> {
    if edits.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(sql.len() + edits.len() * (value.len() + 8));
    let mut copied = 0;
    for e in edits {
        out.push_str(&sql[copied..e.start]);
        out.push_str(value);
        if e.alias {
            out.push_str(" AS `");
            out.push_str(&sql[e.start..e.end]);
            out.push('`');
        }
        copied = e.end;
    }
    out.push_str(&sql[copied..]);
    Some(out)
}

fn tokens(sql: &str) -> Vec<(usize, Token<'_>)> {
    let mut lx = Lexer::new(sql);
    std::iter::from_fn(|| lx.next_spanned()).collect()
}

/// Which tokens stand directly in a select list: at the level of a `SELECT` (the statement's
/// own or a subquery's, inside its parentheses), after the `SELECT` and before the `FROM`,
/// `INTO`, `WHERE`, ... that ends the list. Inside a function's or a list's parentheses the
/// commas separate arguments, not items.
struct SelectItems<'t, 'a> {
    toks: &'t [(usize, Token<'a>)],
    in_list: Vec<bool>,
}

fn select_list_items<'t, 'a>(toks: &'t [(usize, Token<'a>)]) -> SelectItems<'t, 'a> {
    // Per open parenthesis level: whether that level is inside a select list now.
    let mut levels = vec![false];
    let mut in_list = Vec::with_capacity(toks.len());
    for &(_, t) in toks {
        let here = match t {
            Token::Punct(b'(') => {
                let outer = *levels.last().unwrap_or(&false);
                levels.push(false);
                outer
            }
            Token::Punct(b')') => {
                if levels.len() > 1 {
                    levels.pop();
                }
                *levels.last().unwrap_or(&false)
            }
            Token::Word(w) if w.eq_ignore_ascii_case("select") => {
                if let Some(l) = levels.last_mut() {
                    *l = true;
                }
                true
            }
            Token::Word(w) if ends_select_list(w) => {
                if let Some(l) = levels.last_mut() {
                    *l = false;
                }
                false
            }
            _ => *levels.last().unwrap_or(&false),
        };
        in_list.push(here);
    }
    SelectItems { toks, in_list }
}

/// Words that end a select list at its own level.
fn ends_select_list(w: &str) -> bool {
    const ENDS: &[&str] = &[
        "except",
        "for",
        "from",
        "group",
        "having",
        "intersect",
        "into",
        "limit",
        "lock",
        "order",
        "procedure",
        "union",
        "where",
        "window",
    ];
    ENDS.iter().any(|e| w.eq_ignore_ascii_case(e))
}

impl SelectItems<'_, '_> {
    /// True when tokens `first..=last` are a whole select-list item: a `SELECT` or a comma of
    /// the list before them, and a comma, the list's end or the statement's after them.
    fn is_whole_item(&self, first: usize, last: usize) -> bool {
        if !self.in_list[first] {
            return false;
        }
        let starts = match first.checked_sub(1).map(|p| self.toks[p].1) {
            Some(Token::Word(w)) => w.eq_ignore_ascii_case("select"),
            Some(Token::Punct(b',')) => true,
            _ => false,
        };
        let ends = match self.toks.get(last + 1).map(|t| t.1) {
            None | Some(Token::Punct(b',' | b';')) => true,
            Some(Token::Word(w)) => ends_select_list(w),
            _ => false,
        };
        starts && ends
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_id_becomes_the_sessions_id() {
        assert_eq!(connection_id_as_literal("SELECT CONNECTION_ID()", 7).unwrap(), "SELECT 7 AS `CONNECTION_ID()`");
        assert_eq!(
            connection_id_as_literal("select a, connection_id() from t where b = CONNECTION_ID ( )", 12).unwrap(),
            "select a, 12 AS `connection_id()` from t where b = 12"
        );
        assert_eq!(connection_id_as_literal("SELECT 'CONNECTION_ID()'", 7), None);
    }

    /// Only a whole select-list item gets an alias: inside a function's arguments, an `IN`
    /// list, `ORDER BY` or a `VALUES` row the commas are not the select list's.
    #[test]
    fn connection_id_inside_an_expression_gets_no_alias() {
        for (sql, want) in [
            ("SELECT IF(0,connection_id(),connection_id()) AS c4", "SELECT IF(0,7,7) AS c4"),
            (
                "SELECT COALESCE(connection_id(), connection_id()) AS c2, connection_id() FROM t",
                "SELECT COALESCE(7, 7) AS c2, 7 AS `connection_id()` FROM t",
            ),
            ("SELECT a FROM t WHERE b IN (1, CONNECTION_ID(), 2)", "SELECT a FROM t WHERE b IN (1, 7, 2)"),
            ("SELECT a, b FROM t ORDER BY a, CONNECTION_ID()", "SELECT a, b FROM t ORDER BY a, 7"),
            ("INSERT INTO t VALUES (CONNECTION_ID(), 1)", "INSERT INTO t VALUES (7, 1)"),
            (
                "SELECT x FROM (SELECT CONNECTION_ID(), 1 FROM dual) d",
                "SELECT x FROM (SELECT 7 AS `CONNECTION_ID()`, 1 FROM dual) d",
            ),
            ("SELECT 1 UNION SELECT CONNECTION_ID()", "SELECT 1 UNION SELECT 7 AS `CONNECTION_ID()`"),
        ] {
            assert_eq!(connection_id_as_literal(sql, 7).as_deref(), Some(want), "{sql}");
        }
    }

    #[test]
    fn socket_items_are_hidden_and_nothing_else_changes() {
        assert_eq!(
            hide_socket("SELECT @@max_allowed_packet, @@wait_timeout, @@socket", None).as_deref(),
            Some("SELECT @@max_allowed_packet, @@wait_timeout, NULL AS `@@socket`")
        );
        assert_eq!(
            hide_socket("select @@global.socket from dual", None).as_deref(),
            Some("select NULL AS `@@global.socket` from dual")
        );
        assert_eq!(hide_socket("SELECT CONCAT(@@socket, 'x')", None), None);
        assert_eq!(hide_socket("SELECT IF(0, @@socket, 'x')", None), None);
        assert_eq!(hide_socket("SELECT '@@socket'", None), None);
        assert_eq!(hide_socket("SELECT @@port", None), None);
        // With Sluice's own socket, that path is the answer; a path that would need escaping is not.
        assert_eq!(
            hide_socket("SELECT @@socket", Some("/run/sluice.sock")).as_deref(),
            Some("SELECT '/run/sluice.sock' AS `@@socket`")
        );
        assert_eq!(hide_socket("SELECT @@socket", Some("/tmp/it's")).as_deref(), Some("SELECT NULL AS `@@socket`"));
    }
}
