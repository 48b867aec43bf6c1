//! Statement fingerprints: the text with its literals replaced by `?`, lists of literals
//! collapsed (`IN (?+)`, one `VALUES (?+)` for any number of rows), comments dropped, words
//! lower-cased and spacing normalized, so every execution of one statement shape in an
//! application counts under one key, whatever its values.
//!
//! # Performance
//! One pass of the hot-path lexer, writing into a buffer the caller keeps (no allocation once
//! it has grown), then an FNV-1a hash of the result: a few hundred nanoseconds for the
//! statements applications send.

use super::lex::{Lexer, Token};

/// The longest fingerprint text kept: longer ones are cut (their hash still covers all).
pub const MAX_TEXT: usize = 1024;

/// What the last token written was, for the collapsing rules.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Other,
    /// `?` (a literal, or a collapsed list).
    Literal,
    /// `(` right after `IN` or `VALUES` or a `,` between value rows.
    ListOpen,
    /// `?+` inside a list.
    ListBody,
    /// `(?+)`, a whole list.
    ListClosed,
    /// `,` after a whole list: a further row of `VALUES` may follow.
    ListComma,
}

/// Writes the fingerprint of `sql` into `out` (cleared first) and returns its 64-bit hash.
pub fn fingerprint(sql: &str, out: &mut String) -> u64 {
    out.clear();
    let mut last = Last::Other;
    let mut list_keyword = false;
    // The list being read is a further row of VALUES, folded into the first.
    let mut folding = false;
    for t in Lexer::new(sql) {
        let literal = match t {
            Token::Str(_) => true,
            Token::Word(w) => w.as_bytes()[0].is_ascii_digit(),
            _ => false,
        };
        // Inside a list of literals: `(` then literals and commas, then `)`.
        match (last, t) {
            (Last::ListOpen | Last::ListBody, _) if literal => {
                last = Last::ListBody;
                continue;
            }
            (Last::ListBody, Token::Punct(b',')) => continue,
            (Last::ListBody, Token::Punct(b')')) => {
                if !std::mem::take(&mut folding) {
                    out.push_str("?+)");
                }
                last = Last::ListClosed;
                continue;
            }
            (Last::ListBody, _) => {
                // Not a list of literals after all (an expression): write what was skipped.
                if std::mem::take(&mut folding) {
                    out.push_str(",(");
                }
                out.push_str("?+");
                last = Last::Literal;
            }
            (Last::ListClosed, Token::Punct(b',')) => {
                last = Last::ListComma;
                continue;
            }
            (Last::ListComma, Token::Punct(b'(')) => {
                // Another row of VALUES: folded into the first.
                last = Last::ListOpen;
                folding = true;
                continue;
            }
            (Last::ListComma, _) => {
                out.push(',');
                last = Last::Other;
            }
            (Last::ListOpen, _) => {
                if std::mem::take(&mut folding) {
                    out.push_str(",(");
                }
                last = Last::Other;
            }
            _ => {}
        }
        if literal {
            // `1.5` lexes as `1` `.` `5`: one literal.
            if last == Last::Literal && out.ends_with("?.") {
                out.pop();
                continue;
            }
            space(out);
            out.push('?');
            last = Last::Literal;
            continue;
        }
        match t {
            Token::Word(w) => {
                space(out);
                for c in w.chars() {
                    out.push(c.to_ascii_lowercase());
                }
                list_keyword = w.eq_ignore_ascii_case("in") || w.eq_ignore_ascii_case("values");
                last = Last::Other;
                continue;
            }
            Token::Quoted(q) => {
                space(out);
                out.push('`');
                out.push_str(q);
                out.push('`');
            }
            Token::SysVar(v) => {
                space(out);
                out.push_str("@@");
                for c in v.chars() {
                    out.push(c.to_ascii_lowercase());
                }
            }
            Token::UserVar => {
                space(out);
                out.push_str("@?");
            }
            Token::Punct(b'(') if list_keyword => {
                out.push('(');
                last = Last::ListOpen;
                list_keyword = false;
                continue;
            }
            Token::Punct(b'.') if last == Last::Literal => {
                out.push('.');
                continue;
            }
            Token::Punct(c) => {
                if matches!(c, b'(' | b')' | b',' | b'.' | b';') {
                    trim_space(out);
                } else {
                    space(out);
                }
                out.push(c as char);
            }
            Token::Str(_) => unreachable!("literals are handled above"),
        }
        list_keyword = false;
        last = Last::Other;
    }
    match last {
        Last::ListBody => {
            if folding {
                out.push_str(",(");
            }
            out.push_str("?+")
        }
        Last::ListComma => out.push(','),
        _ => {}
    }
    let hash = fnv1a(out.as_bytes());
    if out.len() > MAX_TEXT {
        let mut cut = MAX_TEXT;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    hash
}

/// A space before the next token unless the text is empty or ends with an opening bracket
/// or a dot.
fn space(out: &mut String) {
    if !out.is_empty() && !out.ends_with(['(', '.', ' ']) {
        out.push(' ');
    }
}

fn trim_space(out: &mut String) {
    while out.ends_with(' ') {
        out.pop();
    }
}

/// FNV-1a, 64 bits.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(sql: &str) -> String {
        let mut out = String::new();
        fingerprint(sql, &mut out);
        out
    }

    #[test]
    fn literals_become_placeholders_and_lists_collapse() {
        let cases = [
            ("SELECT c FROM sbtest1 WHERE id=123", "select c from sbtest1 where id = ?"),
            ("select  c\nFROM sbtest1 /* x */ where ID = 9", "select c from sbtest1 where id = ?"),
            ("SELECT * FROM t WHERE a IN (1, 2, 3) AND b = 'x'", "select * from t where a in(?+) and b = ?"),
            ("SELECT * FROM t WHERE a IN (1)", "select * from t where a in(?+)"),
            ("INSERT INTO t (a, b) VALUES (1, 'a'), (2, 'b'), (3, 'c')", "insert into t(a, b) values(?+)"),
            ("INSERT INTO t VALUES (1, 2)", "insert into t values(?+)"),
            ("SELECT 1.5, -2, 0x1F", "select ?, - ?, ?"),
            ("SELECT `weird col` FROM `db`.`t` WHERE x = @v", "select `weird col` from `db`.`t` where x = @?"),
            ("SELECT * FROM t WHERE a IN (SELECT b FROM u)", "select * from t where a in(select b from u)"),
            ("SELECT * FROM t WHERE a IN (1, b)", "select * from t where a in(?+ b)"),
            ("SELECT @@version_comment LIMIT 1", "select @@version_comment limit ?"),
            (
                "INSERT INTO t VALUES (1), (2) ON DUPLICATE KEY UPDATE a = 1",
                "insert into t values(?+) on duplicate key update a = ?",
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(fp(sql), want, "{sql}");
        }
    }

    #[test]
    fn one_shape_one_hash() {
        let mut out = String::new();
        let a = fingerprint("SELECT c FROM t WHERE id = 1", &mut out);
        let b = fingerprint("select c from t where id=987654", &mut out);
        let c = fingerprint("SELECT c FROM t WHERE id = 1 AND k = 2", &mut out);
        let d = fingerprint("SELECT * FROM t WHERE a IN (1,2,3,4,5,6,7,8,9)", &mut out);
        let e = fingerprint("SELECT * FROM t WHERE a IN (42)", &mut out);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(d, e);
    }

    #[test]
    fn long_statements_are_cut_but_hashed_whole() {
        let mut out = String::new();
        let long_a = format!("SELECT {} FROM t", vec!["a"; 2000].join(", "));
        let long_b = format!("SELECT {} FROM u", vec!["a"; 2000].join(", "));
        let (ha, hb) = (fingerprint(&long_a, &mut out), fingerprint(&long_b, &mut out));
        assert!(out.len() <= MAX_TEXT + '…'.len_utf8());
        assert_ne!(ha, hb, "the hash covers the text past the cut");
    }
}
