//! Statement fingerprints: the text with its literals replaced by `?`, lists of literals
//! collapsed (`IN (?+)`, one `VALUES (?+)` for any number of rows), comments dropped, words
//! lower-cased and spacing normalized, so every execution of one statement shape in an
//! application counts under one key, whatever its values.
//!
//! One [`Normalizer`] turns tokens into [`Piece`]s; a [`Sink`] either hashes them (the key,
//! computed on every statement while the router's analysis lexes it anyway) or renders the
//! text (only when a statistics row is created).
//!
//! # Performance
//! Hashing adds a few hundred instructions to the analysis's single pass over the tokens; no
//! allocation. The text costs a second pass and is built once per new fingerprint.

use super::lex::{Lexer, Token};

/// The longest fingerprint text kept: longer ones are cut (their hash still covers all).
pub const MAX_TEXT: usize = 1024;

/// What the normalizer emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A keyword or identifier (lower-cased by the sinks).
    Word(&'a str),
    /// A literal: `?`.
    Literal,
    /// The `(` of a list after `IN` or `VALUES`.
    Open,
    /// Literals skipped inside such a list: `?+`.
    Many,
    Quoted(&'a str),
    SysVar(&'a str),
    UserVar,
    Punct(u8),
}

/// Where pieces go.
pub trait Sink {
    fn piece(&mut self, p: Piece<'_>);
}

/// What the last token was, for the collapsing rules.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
enum Last {
    #[default]
    Other,
    Literal,
    /// A literal then `.` (held back: `1.5` is one literal).
    LiteralDot,
    /// `(` right after `IN` or `VALUES`, or of a further row of `VALUES`.
    ListOpen,
    /// Literals (and commas) inside such a list.
    ListBody,
    /// A whole list of literals, closed.
    ListClosed,
    /// `,` after a whole list: another row of `VALUES` may follow.
    ListComma,
}

/// The collapsing rules, fed one token at a time.
#[derive(Debug, Default, Clone, Copy)]
pub struct Normalizer {
    last: Last,
    list_keyword: bool,
    /// The list being read is a further row of VALUES, folded into the first.
    folding: bool,
}

fn is_literal(t: Token<'_>) -> bool {
    match t {
        Token::Str(_) => true,
        Token::Word(w) => w.as_bytes().first().is_some_and(u8::is_ascii_digit),
        _ => false,
    }
}

impl Normalizer {
    /// Takes the next token of the statement.
    ///
    /// # Performance
    /// The common token (a word or punctuation outside any list, after anything but a literal)
    /// takes one comparison before it is emitted; the list and decimal states only when they
    /// apply.
    #[inline(always)]
    pub fn feed(&mut self, t: Token<'_>, sink: &mut impl Sink) {
        let literal = is_literal(t);
        if (self.last != Last::Other || literal) && self.transition(t, literal, sink) {
            return;
        }
        self.emit(t, literal, sink);
    }

    /// The collapsing states; true when the token was taken (nothing more to emit for it).
    fn transition(&mut self, t: Token<'_>, literal: bool, sink: &mut impl Sink) -> bool {
        match (self.last, t) {
            (Last::ListOpen | Last::ListBody, _) if literal => {
                self.last = Last::ListBody;
                return true;
            }
            (Last::ListBody, Token::Punct(b',')) => return true,
            (Last::ListBody, Token::Punct(b')')) => {
                if !std::mem::take(&mut self.folding) {
                    sink.piece(Piece::Many);
                    sink.piece(Piece::Punct(b')'));
                }
                self.last = Last::ListClosed;
                return true;
            }
            (Last::ListBody, _) => {
                // Not a list of literals after all (an expression): emit what was skipped.
                self.unfold(sink);
                sink.piece(Piece::Many);
                self.last = Last::Literal;
            }
            (Last::ListClosed, Token::Punct(b',')) => {
                self.last = Last::ListComma;
                return true;
            }
            (Last::ListComma, Token::Punct(b'(')) => {
                self.last = Last::ListOpen;
                self.folding = true;
                return true;
            }
            (Last::ListComma, _) => {
                sink.piece(Piece::Punct(b','));
                self.last = Last::Other;
            }
            (Last::ListOpen, _) => {
                self.unfold(sink);
                self.last = Last::Other;
            }
            (Last::LiteralDot, _) if literal => {
                // `1.5`: still the one literal.
                self.last = Last::Literal;
                return true;
            }
            (Last::LiteralDot, _) => {
                sink.piece(Piece::Punct(b'.'));
                self.last = Last::Other;
            }
            _ => {}
        }
        false
    }

    /// Emits a token outside the collapsing states.
    #[inline(always)]
    fn emit(&mut self, t: Token<'_>, literal: bool, sink: &mut impl Sink) {
        if literal {
            sink.piece(Piece::Literal);
            self.last = Last::Literal;
            return;
        }
        let list_keyword = std::mem::take(&mut self.list_keyword);
        let prev = std::mem::replace(&mut self.last, Last::Other);
        match t {
            Token::Word(w) => {
                self.list_keyword = match w.len() {
                    2 => w.eq_ignore_ascii_case("in"),
                    6 => w.eq_ignore_ascii_case("values"),
                    _ => false,
                };
                sink.piece(Piece::Word(w));
            }
            Token::Quoted(q) => sink.piece(Piece::Quoted(q)),
            Token::SysVar(v) => sink.piece(Piece::SysVar(v)),
            Token::UserVar => sink.piece(Piece::UserVar),
            Token::Punct(b'(') if list_keyword => {
                sink.piece(Piece::Open);
                self.last = Last::ListOpen;
            }
            Token::Punct(b'.') if prev == Last::Literal => self.last = Last::LiteralDot,
            Token::Punct(c) => sink.piece(Piece::Punct(c)),
            Token::Str(_) => {}
        }
    }

    /// A folded row of VALUES that turned out not to be literals only: its `,(` is emitted.
    fn unfold(&mut self, sink: &mut impl Sink) {
        if std::mem::take(&mut self.folding) {
            sink.piece(Piece::Punct(b','));
            sink.piece(Piece::Open);
        }
    }

    /// The statement ended.
    pub fn finish(&mut self, sink: &mut impl Sink) {
        match self.last {
            Last::ListBody => {
                self.unfold(sink);
                sink.piece(Piece::Many);
            }
            Last::ListComma => sink.piece(Piece::Punct(b',')),
            Last::LiteralDot => sink.piece(Piece::Punct(b'.')),
            _ => {}
        }
        *self = Normalizer::default();
    }
}

/// Hashes pieces: a tag word per piece, then its text eight bytes at a time (words folded to
/// lower case with one OR: their bytes are letters, digits, `_` and `$`), mixed FxHash-style.
#[derive(Debug, Clone, Copy)]
pub struct Hasher(u64);

impl Default for Hasher {
    fn default() -> Self {
        Hasher(0xcbf2_9ce4_8422_2325)
    }
}

const LOWER: u64 = 0x2020_2020_2020_2020;

#[inline(always)]
fn read8(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

#[inline(always)]
fn read4(b: &[u8]) -> u32 {
    u32::from_le_bytes(b[..4].try_into().expect("4 bytes"))
}

impl Hasher {
    #[inline(always)]
    fn mix(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    /// Mixes a text in: its tag and length, then its bytes eight at a time. A tail shorter
    /// than eight bytes is read as overlapping loads (the last eight bytes; two four-byte
    /// halves; three single bytes) rather than copied into a buffer: with the length mixed
    /// in first, every text still gives one sequence of words, and no `memcpy` is called
    /// (the copy was a seventh of the fingerprint's cost per point select).
    #[inline(always)]
    fn text(&mut self, tag: u64, b: &[u8], fold: u64) {
        let n = b.len();
        self.mix(tag | (n as u64) << 8);
        if n >= 8 {
            let mut chunks = b.chunks_exact(8);
            for c in &mut chunks {
                self.mix(read8(c) | fold);
            }
            if !chunks.remainder().is_empty() {
                self.mix(read8(&b[n - 8..]) | fold);
            }
        } else if n >= 4 {
            self.mix((u64::from(read4(&b[..4])) | u64::from(read4(&b[n - 4..])) << 32) | fold);
        } else if n > 0 {
            let v = u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16;
            self.mix(v | (fold & 0x00ff_ffff));
        }
    }

    /// The hash of what was fed.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Sink for Hasher {
    #[inline(always)]
    fn piece(&mut self, p: Piece<'_>) {
        match p {
            Piece::Word(w) => self.text(1, w.as_bytes(), LOWER),
            Piece::Literal => self.mix(2),
            Piece::Open => self.mix(3),
            Piece::Many => self.mix(4),
            Piece::Quoted(q) => self.text(5, q.as_bytes(), 0),
            Piece::SysVar(v) => self.text(6, v.as_bytes(), LOWER),
            Piece::UserVar => self.mix(7),
            Piece::Punct(c) => self.mix(8 | u64::from(c) << 8),
        }
    }
}

/// Renders pieces as text.
struct Text<'o>(&'o mut String);

impl Text<'_> {
    /// A space before the next token unless the text is empty or ends with an opening
    /// bracket, a dot or a space.
    fn space(&mut self) {
        if !self.0.is_empty() && !self.0.ends_with(['(', '.', ' ']) {
            self.0.push(' ');
        }
    }

    fn trim(&mut self) {
        while self.0.ends_with(' ') {
            self.0.pop();
        }
    }

    fn lower(&mut self, s: &str) {
        for c in s.chars() {
            self.0.push(c.to_ascii_lowercase());
        }
    }
}

impl Sink for Text<'_> {
    fn piece(&mut self, p: Piece<'_>) {
        match p {
            Piece::Word(w) => {
                self.space();
                self.lower(w);
            }
            Piece::Literal => {
                self.space();
                self.0.push('?');
            }
            Piece::Open => {
                self.trim();
                self.0.push('(');
            }
            Piece::Many => self.0.push_str("?+"),
            Piece::Quoted(q) => {
                self.space();
                self.0.push('`');
                self.0.push_str(q);
                self.0.push('`');
            }
            Piece::SysVar(v) => {
                self.space();
                self.0.push_str("@@");
                self.lower(v);
            }
            Piece::UserVar => {
                self.space();
                self.0.push_str("@?");
            }
            Piece::Punct(c) => {
                if matches!(c, b'(' | b')' | b',' | b'.' | b';') {
                    self.trim();
                } else {
                    self.space();
                }
                self.0.push(c as char);
            }
        }
    }
}

/// The fingerprint hash of `sql` (the same as the router's analysis computes).
pub fn hash(sql: &str) -> u64 {
    let (mut n, mut h) = (Normalizer::default(), Hasher::default());
    for t in Lexer::new(sql) {
        n.feed(t, &mut h);
    }
    n.finish(&mut h);
    h.finish()
}

/// The fingerprint text of `sql`, cut at [`MAX_TEXT`] bytes.
pub fn text(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len().min(MAX_TEXT));
    let mut n = Normalizer::default();
    for t in Lexer::new(sql) {
        n.feed(t, &mut Text(&mut out));
    }
    n.finish(&mut Text(&mut out));
    if out.len() > MAX_TEXT {
        let mut cut = MAX_TEXT;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// A fingerprint hash extended with more fields (a statistics row's user, schema, shard) and a
/// final number, each field delimited by its length.
pub fn extend(fingerprint: u64, fields: &[&[u8]], last: u64) -> u64 {
    let mut h = Hasher(fingerprint);
    for f in fields {
        h.text(10, f, 0);
    }
    h.mix(last);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ("INSERT INTO t VALUES (1), (NOW())", "insert into t values(?+),(now())"),
            ("SELECT a.b FROM t a", "select a.b from t a"),
        ];
        for (sql, want) in cases {
            assert_eq!(text(sql), want, "{sql}");
        }
    }

    #[test]
    fn one_shape_one_hash() {
        assert_eq!(hash("SELECT c FROM t WHERE id = 1"), hash("select c from t where id=987654"));
        assert_ne!(hash("SELECT c FROM t WHERE id = 1"), hash("SELECT c FROM t WHERE id = 1 AND k = 2"));
        assert_eq!(hash("SELECT * FROM t WHERE a IN (1,2,3,4,5,6,7,8,9)"), hash("SELECT * FROM t WHERE a IN (42)"));
        assert_eq!(hash("INSERT INTO t VALUES (1,2),(3,4)"), hash("INSERT INTO t VALUES (5,6)"));
        assert_eq!(hash("SELECT 1.5"), hash("SELECT 2"));
        assert_ne!(hash("SELECT a FROM t"), hash("SELECT b FROM t"));
    }

    /// The tail loads overlap: every byte of a word of any length still counts, and case
    /// folding still applies to each.
    #[test]
    fn every_byte_of_a_word_of_any_length_counts() {
        for n in 1..=24 {
            let base = "a".repeat(n);
            let h = hash(&format!("SELECT {base}"));
            assert_eq!(h, hash(&format!("SELECT {}", base.to_uppercase())), "length {n}");
            for p in 0..n {
                let mut other = base.clone().into_bytes();
                other[p] = b'b';
                let other = String::from_utf8(other).unwrap();
                assert_ne!(h, hash(&format!("SELECT {other}")), "length {n}, byte {p}");
            }
            assert_ne!(h, hash(&format!("SELECT {base}a")), "length {n} and {}", n + 1);
        }
    }

    #[test]
    fn long_statements_are_cut_but_hashed_whole() {
        let long_a = format!("SELECT {} FROM t", vec!["a"; 2000].join(", "));
        let long_b = format!("SELECT {} FROM u", vec!["a"; 2000].join(", "));
        assert!(text(&long_a).len() <= MAX_TEXT + '…'.len_utf8());
        assert_ne!(hash(&long_a), hash(&long_b), "the hash covers the text past the cut");
    }
}
