//! `KILL [HARD | SOFT] [CONNECTION | QUERY] id`: recognised so Sluice can answer it itself,
//! because the id names a Sluice session (see `crate::sessions`), never a backend thread.
//! Forwarding it would kill whatever statement of whichever client a backend thread with that
//! number happens to run.

use crate::sql::lex::{Lexer, Token};

/// A recognised KILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    /// End the session (`connection`) or only its running statement.
    Session { connection: bool, target: Target },
    /// A form Sluice does not carry out (refused, never forwarded).
    Unsupported(&'static str),
}

/// Whose session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Id(u64),
    /// `CONNECTION_ID()`: the session's own.
    Own,
}

/// Recognises a KILL statement; `None` for anything else.
pub fn kill_statement(sql: &str) -> Option<Kill> {
    let mut lx = Lexer::new(sql);
    if !matches!(lx.next()?, Token::Word(w) if w.eq_ignore_ascii_case("kill")) {
        return None;
    }
    let mut connection = true;
    let mut t = lx.next();
    if let Some(Token::Word(w)) = t {
        if w.eq_ignore_ascii_case("hard") || w.eq_ignore_ascii_case("soft") {
            t = lx.next();
        }
    }
    if let Some(Token::Word(w)) = t {
        if w.eq_ignore_ascii_case("query") {
            connection = false;
            t = lx.next();
        } else if w.eq_ignore_ascii_case("connection") {
            t = lx.next();
        }
    }
    let target = match t {
        Some(Token::Word(w)) if w.eq_ignore_ascii_case("id") => return Some(Kill::Unsupported("KILL QUERY ID")),
        Some(Token::Word(w)) if w.eq_ignore_ascii_case("user") => return Some(Kill::Unsupported("KILL USER")),
        Some(Token::Word(w)) if w.eq_ignore_ascii_case("connection_id") => {
            if lx.next() != Some(Token::Punct(b'(')) || lx.next() != Some(Token::Punct(b')')) {
                return Some(Kill::Unsupported("KILL with an expression"));
            }
            Target::Own
        }
        Some(Token::Word(w)) if w.bytes().all(|b| b.is_ascii_digit()) => match w.parse() {
            Ok(id) => Target::Id(id),
            // Larger than any connection id: unknown, as a server would say.
            Err(_) => Target::Id(u64::MAX),
        },
        _ => return Some(Kill::Unsupported("KILL with an expression")),
    };
    match (lx.next(), lx.next()) {
        (None, _) | (Some(Token::Punct(b';')), None) => Some(Kill::Session { connection, target }),
        _ => Some(Kill::Unsupported("KILL with an expression")),
    }
}

/// True for a statement that would prepare a KILL on the backend: `KILL ...` itself sent as
/// COM_STMT_PREPARE, or `PREPARE s FROM 'KILL ...'` / `EXECUTE IMMEDIATE 'KILL ...'`.
pub fn prepares_kill(sql: &str) -> bool {
    let mut lx = Lexer::new(sql);
    match lx.next() {
        Some(Token::Word(w)) if w.eq_ignore_ascii_case("kill") => true,
        Some(Token::Word(w)) if w.eq_ignore_ascii_case("prepare") || w.eq_ignore_ascii_case("execute") => {
            lx.any(|t| matches!(t, Token::Str(s) if kill_statement(s).is_some()))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let s = |connection, id| Some(Kill::Session { connection, target: Target::Id(id) });
        assert_eq!(kill_statement("KILL 20"), s(true, 20));
        assert_eq!(kill_statement("kill query 20;"), s(false, 20));
        assert_eq!(kill_statement("KILL HARD CONNECTION 7"), s(true, 7));
        assert_eq!(kill_statement("KILL SOFT QUERY 7"), s(false, 7));
        assert_eq!(kill_statement("/*!50000 KILL QUERY 3 */"), s(false, 3));
        assert_eq!(kill_statement("KILL 99999999999999999999999"), s(true, u64::MAX));
        assert_eq!(
            kill_statement("KILL QUERY CONNECTION_ID()"),
            Some(Kill::Session { connection: false, target: Target::Own })
        );
        assert_eq!(kill_statement("KILL QUERY ID 5"), Some(Kill::Unsupported("KILL QUERY ID")));
        assert_eq!(kill_statement("KILL USER app"), Some(Kill::Unsupported("KILL USER")));
        assert_eq!(kill_statement("KILL 1 + 1"), Some(Kill::Unsupported("KILL with an expression")));
        assert_eq!(kill_statement("KILL"), Some(Kill::Unsupported("KILL with an expression")));
        assert_eq!(kill_statement("SELECT 'KILL 5'"), None);
        assert_eq!(kill_statement("killer"), None);
    }

    #[test]
    fn prepared_kills() {
        assert!(prepares_kill("KILL QUERY ?"));
        assert!(prepares_kill("PREPARE s FROM 'KILL QUERY 5'"));
        assert!(prepares_kill("EXECUTE IMMEDIATE 'kill 5'"));
        assert!(!prepares_kill("PREPARE s FROM 'SELECT 1'"));
        assert!(!prepares_kill("SELECT 'KILL 5'"));
    }
}
