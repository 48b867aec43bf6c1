//! A minimal MySQL lexer for the hot path: words, user variables and punctuation, with strings,
//! quoted identifiers and comments skipped. It allocates nothing; each token borrows the SQL.
//!
//! # Performance
//! One pass over the bytes, no allocation: classifying a point select costs well under a
//! microsecond, which is why this exists beside sqlparser (which allocates an AST).

/// One token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'a> {
    /// A bare word: keyword, identifier or number.
    Word(&'a str),
    /// `@name` or `@'name'` (a user variable); `@@` system variables are `SysVar`.
    UserVar,
    /// `@@name` or `@@session.name`.
    SysVar(&'a str),
    /// A quoted string literal: its content between the quotes, escapes as written.
    Str(&'a str),
    /// A back-quoted identifier.
    Quoted(&'a str),
    /// One punctuation character.
    Punct(u8),
}

/// Iterator over the tokens of a statement.
pub struct Lexer<'a> {
    sql: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// Lexes `sql` from the start.
    pub fn new(sql: &'a str) -> Self {
        Lexer { sql, pos: 0 }
    }

    /// Byte offset of the next unread character.
    pub fn offset(&self) -> usize {
        self.pos
    }

    fn bytes(&self) -> &'a [u8] {
        self.sql.as_bytes()
    }

    fn skip_space_and_comments(&mut self) {
        let b = self.bytes();
        while self.pos < b.len() {
            match b[self.pos] {
                c if c.is_ascii_whitespace() => self.pos += 1,
                b'#' => self.skip_line(),
                b'-' if b.get(self.pos + 1) == Some(&b'-')
                    && b.get(self.pos + 2).is_none_or(|c| c.is_ascii_whitespace()) =>
                {
                    self.skip_line()
                }
                b'/' if b.get(self.pos + 1) == Some(&b'*') => {
                    let marker = match (b.get(self.pos + 2), b.get(self.pos + 3)) {
                        (Some(b'!'), _) => Some(3),
                        // MariaDB's own executable comment, `/*M! ... */` and `/*M!100500 ... */`.
                        (Some(b'M'), Some(b'!')) => Some(4),
                        _ => None,
                    };
                    if let Some(marker) = marker {
                        // Executable comment: its body is SQL. Skip the marker and the optional
                        // version number; the closing "*/" is skipped as punctuation later.
                        self.pos += marker;
                        while self.pos < b.len() && b[self.pos].is_ascii_digit() {
                            self.pos += 1;
                        }
                    } else {
                        match self.sql[self.pos + 2..].find("*/") {
                            Some(i) => self.pos += 2 + i + 2,
                            None => self.pos = b.len(),
                        }
                    }
                }
                b'*' if b.get(self.pos + 1) == Some(&b'/') => self.pos += 2,
                _ => return,
            }
        }
    }

    fn skip_line(&mut self) {
        match self.sql[self.pos..].find('\n') {
            Some(i) => self.pos += i + 1,
            None => self.pos = self.sql.len(),
        }
    }

    /// Skips a quoted run starting at the opening quote; backslash escapes and doubled quotes
    /// stay inside. Returns the content's byte range.
    fn skip_quoted(&mut self, q: u8) -> (usize, usize) {
        let b = self.bytes();
        let start = self.pos + 1;
        let mut i = start;
        while i < b.len() {
            if b[i] == b'\\' && q != b'`' {
                i += 2;
                continue;
            }
            if b[i] == q {
                if b.get(i + 1) == Some(&q) {
                    i += 2;
                    continue;
                }
                self.pos = i + 1;
                return (start, i);
            }
            i += 1;
        }
        self.pos = b.len();
        (start, b.len())
    }

    fn word_end(&self, from: usize) -> usize {
        let b = self.bytes();
        let mut i = from;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80) {
            i += 1;
        }
        i
    }
}

impl<'a> Lexer<'a> {
    /// The next token and the byte offset where it starts.
    pub fn next_spanned(&mut self) -> Option<(usize, Token<'a>)> {
        self.skip_space_and_comments();
        let start = self.pos;
        self.token().map(|t| (start, t))
    }

    fn token(&mut self) -> Option<Token<'a>> {
        let b = self.bytes();
        let c = *b.get(self.pos)?;
        Some(match c {
            b'\'' | b'"' => {
                let (s, e) = self.skip_quoted(c);
                Token::Str(&self.sql[s..e])
            }
            b'`' => {
                let (s, e) = self.skip_quoted(c);
                Token::Quoted(&self.sql[s..e])
            }
            b'@' if b.get(self.pos + 1) == Some(&b'@') => {
                let end = {
                    let mut e = self.word_end(self.pos + 2);
                    // @@session.name / @@global.name
                    if b.get(e) == Some(&b'.') {
                        e = self.word_end(e + 1);
                    }
                    e
                };
                let t = Token::SysVar(&self.sql[self.pos + 2..end]);
                self.pos = end;
                t
            }
            b'@' => {
                self.pos += 1;
                match b.get(self.pos) {
                    Some(&q) if q == b'\'' || q == b'"' || q == b'`' => {
                        self.skip_quoted(q);
                    }
                    _ => self.pos = self.word_end(self.pos),
                }
                Token::UserVar
            }
            c if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 => {
                let end = self.word_end(self.pos);
                let t = Token::Word(&self.sql[self.pos..end]);
                self.pos = end;
                t
            }
            _ => {
                // Step over one whole UTF-8 character so slicing stays on boundaries.
                let len = self.sql[self.pos..].chars().next().map_or(1, char::len_utf8);
                self.pos += len;
                Token::Punct(c)
            }
        })
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        self.skip_space_and_comments();
        self.token()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Token<'_>> {
        Lexer::new(s).collect()
    }

    #[test]
    fn strings_and_comments_hide_their_content() {
        let t = toks("SELECT 'GET_LOCK(' , \"@x\" -- LOCK TABLES\n # @y\n /* @z */ FROM t");
        assert_eq!(
            t,
            vec![
                Token::Word("SELECT"),
                Token::Str("GET_LOCK("),
                Token::Punct(b','),
                Token::Str("@x"),
                Token::Word("FROM"),
                Token::Word("t")
            ]
        );
    }

    #[test]
    fn escapes_and_doubled_quotes_stay_inside_strings() {
        let t = toks(r"SELECT 'it\'s', 'a''b', `we``ird` x");
        assert_eq!(t.len(), 7);
        assert_eq!(t[6], Token::Word("x"));
        assert_eq!(t[5], Token::Quoted("we``ird"));
    }

    #[test]
    fn variables() {
        let t = toks("SET @a := 1, @'b c' = @@session.sql_mode, @@autocommit");
        assert_eq!(t[1], Token::UserVar);
        assert_eq!(t[6], Token::UserVar);
        assert_eq!(t[8], Token::SysVar("session.sql_mode"));
        assert_eq!(t[10], Token::SysVar("autocommit"));
    }

    #[test]
    fn executable_comments_are_code() {
        let t = toks("/*!40101 SET @x = 1 */");
        assert_eq!(t[0], Token::Word("SET"));
        assert_eq!(t[1], Token::UserVar);
    }

    #[test]
    fn mariadb_executable_comments_are_code() {
        let t = toks("SELECT /*M! @v:='x', GET_LOCK('l',0), */ 1");
        assert_eq!(t[1], Token::UserVar);
        assert!(t.contains(&Token::Word("GET_LOCK")));
        let t = toks("/*M!100500 SET @x = 1 */");
        assert_eq!(t[0], Token::Word("SET"));
        assert_eq!(t[1], Token::UserVar);
        // A plain comment that happens to start with M stays a comment.
        assert_eq!(toks("/*Mx @y */ SELECT 1"), vec![Token::Word("SELECT"), Token::Word("1")]);
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        for s in ["'abc", "`x", "/* open", "@", "@@", "SELECT é, ü", "--", "-- \n"] {
            let _ = toks(s);
        }
    }
}
