//! The statements of the SQL admin interface, decoded into one type: `SHOW SLUICE ...`, the
//! `SLUICE ...` actions, and what drivers send on connecting (`SELECT @@version_comment`,
//! `SET ...`), which is answered so that any client can connect.

use crate::sql::lex::{Lexer, Token};

/// What `SHOW SLUICE` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Show {
    Backends,
    Pools,
    Clients,
    Digests {
        order: DigestOrder,
        descending: bool,
        limit: Option<usize>,
    },
    Config,
    Version,
    /// The result cache: counters, then refusals by reason.
    Cache,
}

/// The columns `SHOW SLUICE DIGESTS` sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestOrder {
    TotalTime,
    Count,
    Errors,
    P50,
    P95,
    P99,
    P999,
    Max,
    RowsSent,
    LastSeen,
}

impl DigestOrder {
    fn parse(w: &str) -> Option<DigestOrder> {
        Some(match w.to_ascii_lowercase().as_str() {
            "total_time" | "total_us" | "total" => DigestOrder::TotalTime,
            "count" => DigestOrder::Count,
            "errors" => DigestOrder::Errors,
            "p50" | "p50_us" => DigestOrder::P50,
            "p95" | "p95_us" => DigestOrder::P95,
            "p99" | "p99_us" => DigestOrder::P99,
            "p999" | "p999_us" => DigestOrder::P999,
            "max" | "max_us" | "max_time" => DigestOrder::Max,
            "rows_sent" => DigestOrder::RowsSent,
            "last_seen" => DigestOrder::LastSeen,
            _ => return None,
        })
    }
}

/// One admin statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    Show(Show),
    /// `SHOW SLUICE FLEET`: the registry's rows (read from the default shard's primary).
    Fleet,
    /// `SLUICE DRAIN`: what SIGTERM does (stop accepting, let statements and transactions
    /// finish, exit).
    Drain,
    Reload,
    Pause,
    Resume,
    Kill {
        query: bool,
        id: u32,
    },
    ResetDigests,
    /// `SLUICE FLUSH CACHE [table]`.
    FlushCache(Option<String>),
    Backend {
        addr: String,
        drain: bool,
    },
    /// `SELECT @@a, @@b` (drivers' start-up questions): the variables' names.
    Variables(Vec<String>),
    /// `SET ...`, `USE ...`, `BEGIN` / `COMMIT` / `ROLLBACK`: accepted, nothing to do.
    Accepted,
    /// Anything else: the statement's first words, for the error.
    Unknown(String),
}

impl AdminCommand {
    /// True for the actions a `read` account may not run.
    pub fn changes_something(&self) -> bool {
        matches!(
            self,
            AdminCommand::Reload
                | AdminCommand::Drain
                | AdminCommand::Pause
                | AdminCommand::Resume
                | AdminCommand::Kill { .. }
                | AdminCommand::ResetDigests
                | AdminCommand::FlushCache(_)
                | AdminCommand::Backend { .. }
        )
    }
}

/// Decodes one statement.
pub fn parse(sql: &str) -> AdminCommand {
    let tokens: Vec<Token<'_>> = Lexer::new(sql).filter(|t| *t != Token::Punct(b';')).collect();
    let word = |i: usize| match tokens.get(i) {
        Some(Token::Word(w)) => w.to_ascii_uppercase(),
        _ => String::new(),
    };
    let unknown = || AdminCommand::Unknown(sql.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    match (word(0).as_str(), word(1).as_str()) {
        ("SHOW", "SLUICE") => match word(2).as_str() {
            "BACKENDS" if tokens.len() == 3 => AdminCommand::Show(Show::Backends),
            "POOLS" if tokens.len() == 3 => AdminCommand::Show(Show::Pools),
            "CLIENTS" if tokens.len() == 3 => AdminCommand::Show(Show::Clients),
            "CONFIG" if tokens.len() == 3 => AdminCommand::Show(Show::Config),
            "VERSION" if tokens.len() == 3 => AdminCommand::Show(Show::Version),
            "CACHE" if tokens.len() == 3 => AdminCommand::Show(Show::Cache),
            "FLEET" if tokens.len() == 3 => AdminCommand::Fleet,
            "DIGESTS" => digests(&tokens[3..]).map(AdminCommand::Show).unwrap_or_else(unknown),
            _ => unknown(),
        },
        ("SLUICE", "RELOAD") if tokens.len() == 2 => AdminCommand::Reload,
        ("SLUICE", "DRAIN") if tokens.len() == 2 => AdminCommand::Drain,
        ("SLUICE", "PAUSE") if tokens.len() == 2 => AdminCommand::Pause,
        ("SLUICE", "RESUME") if tokens.len() == 2 => AdminCommand::Resume,
        ("SLUICE", "FLUSH") if word(2) == "CACHE" => match tokens.get(3..) {
            Some([]) => AdminCommand::FlushCache(None),
            Some([Token::Word(t) | Token::Quoted(t)]) => AdminCommand::FlushCache(Some(t.to_string())),
            _ => unknown(),
        },
        ("SLUICE", "RESET") if word(2) == "DIGESTS" && tokens.len() == 3 => AdminCommand::ResetDigests,
        ("SLUICE", "KILL") => {
            let (query, at) = if word(2) == "QUERY" { (true, 3) } else { (false, 2) };
            match (tokens.get(at), tokens.len() == at + 1) {
                (Some(Token::Word(n)), true) => {
                    n.parse().map(|id| AdminCommand::Kill { query, id }).unwrap_or_else(|_| unknown())
                }
                _ => unknown(),
            }
        }
        ("SLUICE", "BACKEND") => {
            let addr = match tokens.get(2) {
                Some(Token::Str(s)) | Some(Token::Quoted(s)) => s.to_string(),
                _ => return unknown(),
            };
            match (word(3).as_str(), tokens.len()) {
                ("DRAIN", 4) => AdminCommand::Backend { addr, drain: true },
                ("ENABLE", 4) => AdminCommand::Backend { addr, drain: false },
                _ => unknown(),
            }
        }
        ("SELECT", _) => variables(&tokens[1..]).map(AdminCommand::Variables).unwrap_or_else(unknown),
        ("SET" | "USE" | "BEGIN" | "COMMIT" | "ROLLBACK", _) => AdminCommand::Accepted,
        _ => unknown(),
    }
}

/// `[ORDER BY column [ASC|DESC]] [LIMIT n]` after `SHOW SLUICE DIGESTS`.
fn digests(rest: &[Token<'_>]) -> Option<Show> {
    let mut order = DigestOrder::TotalTime;
    let mut descending = true;
    let mut limit = None;
    let mut i = 0;
    let up = |t: Option<&Token<'_>>| match t {
        Some(Token::Word(w)) => Some(w.to_ascii_uppercase()),
        _ => None,
    };
    while i < rest.len() {
        match up(rest.get(i)).as_deref() {
            Some("ORDER") if up(rest.get(i + 1)).as_deref() == Some("BY") => {
                let Some(Token::Word(col)) = rest.get(i + 2) else { return None };
                order = DigestOrder::parse(col)?;
                i += 3;
                match up(rest.get(i)).as_deref() {
                    Some("ASC") => {
                        descending = false;
                        i += 1;
                    }
                    Some("DESC") => i += 1,
                    _ => {}
                }
            }
            Some("LIMIT") => {
                let Some(Token::Word(n)) = rest.get(i + 1) else { return None };
                limit = Some(n.parse().ok()?);
                i += 2;
            }
            _ => return None,
        }
    }
    Some(Show::Digests { order, descending, limit })
}

/// `@@a, @@b [LIMIT n]`: only system variables, nothing else.
fn variables(rest: &[Token<'_>]) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            Token::SysVar(v) => names.push(v.to_string()),
            Token::Punct(b',') => {}
            Token::Word(w) if w.eq_ignore_ascii_case("limit") => {
                return (i + 2 == rest.len() && matches!(rest[i + 1], Token::Word(_))).then_some(names);
            }
            _ => return None,
        }
        i += 1;
    }
    (!names.is_empty()).then_some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_decode() {
        use AdminCommand as A;
        let cases: Vec<(&str, AdminCommand)> = vec![
            ("SHOW SLUICE BACKENDS", A::Show(Show::Backends)),
            ("show sluice pools;", A::Show(Show::Pools)),
            ("SHOW SLUICE CLIENTS", A::Show(Show::Clients)),
            (
                "SHOW SLUICE DIGESTS",
                A::Show(Show::Digests { order: DigestOrder::TotalTime, descending: true, limit: None }),
            ),
            (
                "SHOW SLUICE DIGESTS ORDER BY p99 DESC LIMIT 5",
                A::Show(Show::Digests { order: DigestOrder::P99, descending: true, limit: Some(5) }),
            ),
            (
                "show sluice digests order by count asc",
                A::Show(Show::Digests { order: DigestOrder::Count, descending: false, limit: None }),
            ),
            ("SHOW SLUICE CONFIG", A::Show(Show::Config)),
            ("SHOW SLUICE VERSION", A::Show(Show::Version)),
            ("SLUICE RELOAD", A::Reload),
            ("sluice drain;", A::Drain),
            ("SHOW SLUICE FLEET", A::Fleet),
            ("SLUICE PAUSE", A::Pause),
            ("SLUICE RESUME", A::Resume),
            ("SLUICE KILL 42", A::Kill { query: false, id: 42 }),
            ("SLUICE KILL QUERY 7", A::Kill { query: true, id: 7 }),
            ("SLUICE RESET DIGESTS", A::ResetDigests),
            ("SLUICE BACKEND '127.0.0.1:13307' DRAIN", A::Backend { addr: "127.0.0.1:13307".into(), drain: true }),
            ("sluice backend \"h:1\" enable", A::Backend { addr: "h:1".into(), drain: false }),
            ("select @@version_comment limit 1", A::Variables(vec!["version_comment".into()])),
            (
                "SELECT @@max_allowed_packet, @@wait_timeout",
                A::Variables(vec!["max_allowed_packet".into(), "wait_timeout".into()]),
            ),
            ("SET NAMES utf8mb4", A::Accepted),
            ("SET AUTOCOMMIT = 0", A::Accepted),
        ];
        for (sql, want) in cases {
            assert_eq!(parse(sql), want, "{sql}");
        }
        for bad in [
            "SHOW SLUICE DIGESTS ORDER BY nonsense",
            "SHOW SLUICE DIGESTS LIMIT x",
            "SLUICE KILL abc",
            "SLUICE KILL 1 2",
            "SLUICE BACKEND 127 DRAIN",
            "SELECT 1",
            "DROP TABLE t",
            "SHOW SLUICE BACKENDS x",
        ] {
            assert!(matches!(parse(bad), AdminCommand::Unknown(_)), "{bad}: {:?}", parse(bad));
        }
        assert!(parse("SLUICE PAUSE").changes_something());
        assert!(!parse("SHOW SLUICE BACKENDS").changes_something());
    }
}
