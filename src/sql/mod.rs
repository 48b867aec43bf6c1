//! SQL text below any decision: the hot-path lexer and the limit on what is parsed in full.
//! The router and the sharding rules both read statements through here, so neither has to
//! import the other to share it.

pub mod lex;

/// The longest statement Sluice parses fully with sqlparser. Its syntax tree costs a few
/// hundred times the statement's size (a 3 MiB statement of short tokens took 1.5 GB and
/// 3.7 s on an async worker), so a client could otherwise stall or exhaust the process with
/// one statement. Longer statements are routed by their first words only, or to the primary;
/// on sharded tables they are refused.
pub const MAX_PARSE_BYTES: usize = 64 * 1024;
pub mod fingerprint;

/// `v` as a SQL string literal: quotes doubled, backslashes escaped (the session's
/// `NO_BACKSLASH_ESCAPES` is off on the connections Sluice writes such statements on).
pub fn string_literal(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('\'');
    for c in v.chars() {
        match c {
            '\'' => s.push_str("''"),
            '\\' => s.push_str("\\\\"),
            '\0' => s.push_str("\\0"),
            c => s.push(c),
        }
    }
    s.push('\'');
    s
}
