//! Which reads may be cached, which names they depend on, and which names a write touches:
//! pure functions over the statement's tokens (no parse, no allocation beyond the names).
//!
//! Both sides over-approximate on purpose. A read depends on every identifier it mentions
//! (tables, but also columns and aliases), and a write bumps every identifier it mentions: a
//! real table shared by the two is always in both sets, so the write always ends the entry.
//! Extra names only cost an invalidation too many.

use crate::sql::lex::{Lexer, Token};

/// Why a read is not cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its result may differ between two runs or two sessions: NOW(), RAND(), UUID(),
    /// CURRENT_USER(), a stored function, a user or system variable, ...
    NonDeterministic,
    /// A locking read, INTO, several statements, or SQL_CALC_FOUND_ROWS.
    SideEffect,
    /// No rule names every table it reads (or its tables could not be told).
    NoRule,
}

impl Refusal {
    /// Label of the refusal metric.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NonDeterministic => "non_deterministic",
            Refusal::SideEffect => "side_effect",
            Refusal::NoRule => "no_rule",
        }
    }
}

/// What a cacheable read depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// Every identifier it mentions, lower-cased (keywords that cannot name a table left out).
    pub deps: Vec<Box<str>>,
    /// The names after FROM and JOIN (`t` or `schema.t`, lower-cased), for the rules; `None`
    /// when a FROM clause holds something else (a subquery, a table function).
    pub tables: Option<Vec<Box<str>>>,
}

/// Reserved words of MariaDB that no unquoted identifier can be: left out of the dependency
/// set (sorted, for binary search).
const RESERVED: &[&str] = &[
    "all",
    "and",
    "as",
    "asc",
    "between",
    "by",
    "case",
    "cross",
    "desc",
    "distinct",
    "else",
    "end",
    "exists",
    "false",
    "from",
    "group",
    "having",
    "in",
    "inner",
    "is",
    "join",
    "left",
    "like",
    "limit",
    "natural",
    "not",
    "null",
    "offset",
    "on",
    "or",
    "order",
    "outer",
    "right",
    "select",
    "straight_join",
    "then",
    "true",
    "union",
    "using",
    "when",
    "where",
    "with",
];

/// Functions and special values whose result changes between runs or sessions (sorted).
const NON_DETERMINISTIC: &[&str] = &[
    "benchmark",
    "connection_id",
    "curdate",
    "current_date",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "curtime",
    "database",
    "found_rows",
    "get_lock",
    "is_free_lock",
    "is_used_lock",
    "last_insert_id",
    "lastval",
    "load_file",
    "localtime",
    "localtimestamp",
    "master_gtid_wait",
    "master_pos_wait",
    "nextval",
    "now",
    "rand",
    "random_bytes",
    "release_all_locks",
    "release_lock",
    "row_count",
    "schema",
    "session_user",
    "setval",
    "sleep",
    "sys_guid",
    "sysdate",
    "system_user",
    "unix_timestamp",
    "user",
    "utc_date",
    "utc_time",
    "utc_timestamp",
    "uuid",
    "uuid_short",
    "value",
];

fn lower(s: &str) -> Box<str> {
    s.to_ascii_lowercase().into_boxed_str()
}

/// `lw`, already lower-cased, is in the sorted `list`.
fn is(list: &[&str], lw: &str) -> bool {
    list.binary_search(&lw).is_ok()
}

/// Examines a read for the cache: what it depends on, or why it is never cached. Locking
/// reads, INTO and the like are refused here as well as by the router's features, so this
/// stands on its own.
pub fn examine(sql: &str) -> Result<Read, Refusal> {
    let mut deps: Vec<Box<str>> = Vec::new();
    let mut tables: Option<Vec<Box<str>>> = Some(Vec::new());
    let mut lx = Lexer::new(sql);
    // After FROM / JOIN / a comma inside a FROM list: the next name is a table.
    let mut expect_table = false;
    let mut in_from = false;
    let mut last_table: Option<usize> = None;
    let mut prev_dot = false;
    let mut first = true;
    // The identifier just read, for a call that follows: `name(`.
    let mut callee: Option<String> = None;
    while let Some((at, t)) = lx.next_spanned() {
        match t {
            Token::UserVar | Token::SysVar(_) => return Err(Refusal::NonDeterministic),
            // Under ANSI_QUOTES a double-quoted word names a table or column: a dependency
            // (a string literal taken for one only costs an invalidation too many).
            Token::Str(q) if sql.as_bytes().get(at) == Some(&b'"') => {
                let lq = q.replace("\"\"", "\"").to_ascii_lowercase();
                if !deps.iter().any(|d| **d == *lq) {
                    deps.push(lq.into_boxed_str());
                }
                prev_dot = false;
                callee = None;
            }
            Token::Word(w) => {
                if first && !w.eq_ignore_ascii_case("select") {
                    // SHOW, DESCRIBE, WITH ...: not cached.
                    return Err(Refusal::NoRule);
                }
                first = false;
                let lw = w.to_ascii_lowercase();
                match lw.as_str() {
                    "for" | "lock" | "into" | "sql_calc_found_rows" | "procedure" => return Err(Refusal::SideEffect),
                    _ => {}
                }
                if is(NON_DETERMINISTIC, &lw) {
                    return Err(Refusal::NonDeterministic);
                }
                if lw.bytes().all(|b| b.is_ascii_digit()) {
                    // A number: no identifier is digits only.
                    prev_dot = false;
                    callee = None;
                    continue;
                }
                if is(RESERVED, &lw) {
                    callee = None;
                    match lw.as_str() {
                        "from" | "join" | "straight_join" => {
                            expect_table = true;
                            in_from = true;
                        }
                        "where" | "group" | "order" | "limit" | "having" | "union" => in_from = false,
                        _ => {}
                    }
                    prev_dot = false;
                    continue;
                }
                name(&mut deps, &mut tables, &mut expect_table, &mut last_table, prev_dot, &lw);
                prev_dot = false;
                callee = Some(lw);
            }
            Token::Quoted(q) => {
                let lq = q.replace("``", "`").to_ascii_lowercase();
                name(&mut deps, &mut tables, &mut expect_table, &mut last_table, prev_dot, &lq);
                prev_dot = false;
                // A quoted name called is never a built-in function.
                callee = Some(String::new());
            }
            Token::Punct(b'.') => prev_dot = true,
            Token::Punct(b'(') if expect_table => {
                // A derived table or table function: its tables are not told apart here.
                tables = None;
                expect_table = false;
                callee = None;
            }
            Token::Punct(b',') if in_from => {
                expect_table = true;
                prev_dot = false;
                callee = None;
            }
            Token::Punct(b';') => {
                if lx.next().is_some() {
                    return Err(Refusal::SideEffect);
                }
            }
            Token::Punct(b'(') => {
                // A call of a function that is not built in could be a stored function.
                if callee.take().is_some_and(|f| f.is_empty() || !crate::router::builtins::is_builtin(&f)) {
                    return Err(Refusal::NonDeterministic);
                }
                prev_dot = false;
            }
            Token::Punct(b',') => {
                prev_dot = false;
                callee = None;
            }
            _ => {
                prev_dot = false;
                callee = None;
            }
        }
    }
    if first {
        return Err(Refusal::NoRule);
    }
    Ok(Read { deps, tables })
}

/// Records an identifier (`n`, lower-cased by the caller): always a dependency; after FROM / JOIN / a FROM-list comma, a table
/// (`schema.t` when it follows a dot after the table just recorded).
fn name(
    deps: &mut Vec<Box<str>>,
    tables: &mut Option<Vec<Box<str>>>,
    expect_table: &mut bool,
    last_table: &mut Option<usize>,
    prev_dot: bool,
    n: &str,
) {
    if !deps.iter().any(|d| &**d == n) {
        deps.push(Box::from(n));
    }
    let Some(ts) = tables.as_mut() else { return };
    if prev_dot {
        if let Some(i) = last_table.take() {
            // `schema.t`: the table is `t` in `schema`.
            let schema = ts[i].clone();
            ts[i] = format!("{schema}.{n}").into_boxed_str();
        }
        return;
    }
    if std::mem::take(expect_table) {
        ts.push(Box::from(n));
        *last_table = Some(ts.len() - 1);
    } else {
        *last_table = None;
    }
}

/// What a write (or any statement that is not a plain read) ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touches {
    /// Entries depending on any of these names.
    Names(Vec<Box<str>>),
    /// Every entry: DDL, privileges, routines, statements whose effects cannot be named.
    Everything,
    /// Nothing: session and transaction control, reads.
    Nothing,
}

/// First words of statements that change nothing a cached read returns (transaction ends are
/// handled by the session: the names its transaction wrote are bumped again when it ends).
const CONTROL: &[&str] = &[
    "begin",
    "commit",
    "deallocate",
    "do",
    "execute",
    "help",
    "kill",
    "prepare",
    "release",
    "rollback",
    "savepoint",
    "set",
    "show",
    "start",
    "use",
    "xa",
];

/// What a statement that is not a plain read touches, from its text. `routine`: it calls a
/// procedure or a function that is not built in.
pub fn touches(sql: &str, routine: bool) -> Touches {
    if routine {
        return Touches::Everything;
    }
    let mut lx = Lexer::new(sql);
    let first = match lx.next() {
        Some(Token::Word(w)) => w.to_ascii_lowercase(),
        None => return Touches::Nothing,
        _ => return Touches::Everything,
    };
    match first.as_str() {
        "insert" | "update" | "delete" | "replace" | "load" => {}
        "select" | "with" | "values" | "table" | "describe" | "desc" | "explain" => return Touches::Nothing,
        w if CONTROL.contains(&w) => {
            // `SET ROLE`, `SET PASSWORD`, `SET DEFAULT ROLE` change what a user may read;
            // `SET GLOBAL` changes the defaults of sessions whose key does not name the
            // variable (a key holds only what differs from the defaults); `EXECUTE` runs a
            // statement prepared with SQL PREPARE, unknown here.
            let second = lx.next();
            let changes_rights = w == "set"
                && matches!(second, Some(Token::Word(s)) if ["role", "password", "default"].iter().any(|k| s.eq_ignore_ascii_case(k)));
            let global = w == "set"
                && std::iter::once(second).chain(lx.map(Some)).flatten().any(|t| match t {
                    Token::Word(g) => g.eq_ignore_ascii_case("global"),
                    Token::SysVar(v) => v.len() > 7 && v[..7].eq_ignore_ascii_case("global."),
                    _ => false,
                });
            let everything = changes_rights || global || w == "execute" || w == "do";
            return if everything { Touches::Everything } else { Touches::Nothing };
        }
        _ => return Touches::Everything,
    }
    let mut names: Vec<Box<str>> = Vec::new();
    let mut push = |n: &str| {
        let n = lower(n);
        if !names.contains(&n) {
            names.push(n);
        }
    };
    push(&first);
    let mut spans = Lexer::new(sql);
    while let Some((at, t)) = spans.next_spanned() {
        match t {
            Token::Word(w) if !w.bytes().all(|b| b.is_ascii_digit()) => push(w),
            Token::Quoted(q) => push(&q.replace("``", "`")),
            // Under ANSI_QUOTES a double-quoted word is an identifier.
            Token::Str(s) if sql.as_bytes().get(at) == Some(&b'"') => push(&s.replace("\"\"", "\"")),
            Token::Punct(b';') => return Touches::Everything,
            _ => {}
        }
    }
    Touches::Names(names)
}

/// `/* sluice:cache ttl=N */`: the TTL a statement asks for, in milliseconds.
pub fn hint_ttl_ms(sql: &str) -> Option<u64> {
    let at = sql.find("sluice:cache")?;
    if !sql[..at].trim_end().ends_with("/*") {
        return None;
    }
    let rest = &sql[at + "sluice:cache".len()..];
    let end = rest.find("*/")?;
    let body = rest[..end].trim();
    let v = body.strip_prefix("ttl=")?.trim();
    v.parse().ok().filter(|&t| t > 0)
}

#[cfg(test)]
mod tests;
