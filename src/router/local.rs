//! Statements Sluice answers itself, recognised by their exact shape: questions about the
//! warnings of the last statement (answered from what Sluice kept, see
//! `session::commands::warnings`) and Sluice's own session variable `sluice_consistency`.
//! Pure functions of the text; the decision in [`super::decide`] asks them first.

/// A question about warnings, recognised by its exact shape.
#[derive(Debug, PartialEq, Eq)]
pub enum Question {
    List { errors_only: bool },
    Count { errors_only: bool, name: String },
}

/// Recognises the statements answered from the kept list.
pub fn question(sql: &str) -> Option<Question> {
    let t = sql.trim().trim_end_matches(';').trim();
    // Every statement passes here: decide most of them without allocating.
    let starts = |p: &str| t.len() >= p.len() && t.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    if !(starts("show") || (starts("select") && t.contains("@@"))) {
        return None;
    }
    // Words as written (slices of `t`, so never cut inside a character) and lower-cased.
    let raw: Vec<&str> = t.split_whitespace().collect();
    if raw.len() > 3 {
        return None;
    }
    let words: Vec<String> = raw.iter().map(|w| w.to_ascii_lowercase()).collect();
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    Some(match w.as_slice() {
        ["show", "warnings"] => Question::List { errors_only: false },
        ["show", "errors"] => Question::List { errors_only: true },
        ["show", "count(*)", "warnings"] => {
            Question::Count { errors_only: false, name: "@@session.warning_count".into() }
        }
        ["show", "count(*)", "errors"] => Question::Count { errors_only: true, name: "@@session.error_count".into() },
        ["select", v] if matches!(*v, "@@warning_count" | "@@session.warning_count") => {
            Question::Count { errors_only: false, name: raw[1].to_string() }
        }
        ["select", v] if matches!(*v, "@@error_count" | "@@session.error_count") => {
            Question::Count { errors_only: true, name: raw[1].to_string() }
        }
        _ => return None,
    })
}

/// A status variable of the client's own TLS session, which only Sluice has: the backend's
/// answer would describe Sluice's link to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsStatus {
    /// `Ssl_cipher`: the cipher suite, in the OpenSSL names a server reports.
    Cipher,
    /// `Ssl_version`: `TLSv1.2` or `TLSv1.3`.
    Version,
}

/// Recognises `SHOW [SESSION | LOCAL] STATUS LIKE 'Ssl_cipher'` (or `'Ssl_version'`), the
/// check drivers and compliance tools make that a connection is encrypted. Other SHOW STATUS
/// forms go to a backend, like every status counter (documented in docs/compatibility.md).
pub fn tls_status(sql: &str) -> Option<TlsStatus> {
    // ASCII white space only: a server's lexer does not take U+00A0 for a space.
    let t = sql.trim_matches(|c: char| c.is_ascii_whitespace()).trim_end_matches(';').trim_end();
    if t.len() > 64 || !t.get(..4).is_some_and(|w| w.eq_ignore_ascii_case("show")) {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let pattern = match words.as_slice() {
        ["show", "status", "like", p] | ["show", "session" | "local", "status", "like", p] => *p,
        _ => return None,
    };
    match pattern.trim_matches(|c| c == '\'' || c == '"') {
        "ssl_cipher" if pattern.len() == 12 => Some(TlsStatus::Cipher),
        "ssl_version" if pattern.len() == 13 => Some(TlsStatus::Version),
        _ => None,
    }
}

/// A statement about Sluice's own session variable `sluice_consistency`.
#[derive(Debug, PartialEq, Eq)]
pub enum ConsistencyStatement {
    /// `SET [SESSION] @@[session.]sluice_consistency = 'level'`.
    Set(String),
    /// `SELECT @@[session.]sluice_consistency`.
    Show,
}

/// Recognises the two shapes of [`ConsistencyStatement`]; anything else is not one.
pub fn consistency_statement(sql: &str) -> Option<ConsistencyStatement> {
    const NAME: &[u8] = b"sluice_consistency";
    if !sql.as_bytes().windows(NAME.len()).any(|w| w.eq_ignore_ascii_case(NAME)) {
        return None;
    }
    let lower = sql.trim().trim_end_matches(';').trim().to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let var = |w: &str| matches!(w, "@@sluice_consistency" | "@@session.sluice_consistency");
    match words.as_slice() {
        ["select", v] if var(v) => return Some(ConsistencyStatement::Show),
        ["set", ..] => {}
        _ => return None,
    }
    let rest = lower.strip_prefix("set")?.trim_start();
    let rest = rest.strip_prefix("session ").map(str::trim_start).unwrap_or(rest);
    let rest = rest.strip_prefix("@@session.").or_else(|| rest.strip_prefix("@@"))?;
    let value = rest.strip_prefix("sluice_consistency")?.trim_start();
    let value = value.strip_prefix(":=").or_else(|| value.strip_prefix('='))?.trim();
    let value = value.trim_matches(|c| c == '\'' || c == '"');
    Some(ConsistencyStatement::Set(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::{consistency_statement as cs, question, ConsistencyStatement as C, Question};

    #[test]
    fn tls_status_questions_are_recognised_in_their_exact_forms_only() {
        use super::{tls_status, TlsStatus};
        assert_eq!(tls_status("SHOW STATUS LIKE 'Ssl_cipher'"), Some(TlsStatus::Cipher));
        assert_eq!(tls_status("show session status like \"ssl_version\";"), Some(TlsStatus::Version));
        assert_eq!(tls_status("SHOW LOCAL STATUS LIKE 'Ssl_cipher'"), Some(TlsStatus::Cipher));
        for other in [
            "SHOW GLOBAL STATUS LIKE 'Ssl_cipher'",
            "SHOW STATUS LIKE 'Ssl%'",
            "SHOW STATUS LIKE 'Ssl_cipher_list'",
            "SHOW STATUS LIKE Ssl_cipher",
            "SHOW STATUS",
            "SELECT 'Ssl_cipher'",
            "SHOW STATUS LIKE 'Ssl_cipher' OR 1",
            "\u{a0}SHOW STATUS LIKE 'Ssl_cipher'",
        ] {
            assert_eq!(tls_status(other), None, "{other}");
        }
    }

    #[test]
    fn only_exact_warning_questions_are_questions() {
        assert_eq!(question("SHOW WARNINGS"), Some(Question::List { errors_only: false }));
        assert_eq!(question(" show errors ;"), Some(Question::List { errors_only: true }));
        assert!(matches!(question("SELECT @@warning_count"), Some(Question::Count { errors_only: false, .. })));
        assert!(matches!(question("SHOW COUNT(*) ERRORS"), Some(Question::Count { errors_only: true, .. })));
        assert_eq!(question("SHOW WARNINGS LIMIT 1"), None);
        assert_eq!(question("SELECT @@warning_count, 1"), None);
        assert_eq!(question("SHOW VARIABLES"), None);
    }

    #[test]
    fn non_ascii_whitespace_does_not_panic() {
        // U+00A0 is whitespace to `split_whitespace` and two bytes long.
        let q = question("SELECT\u{a0}@@warning_count");
        assert_eq!(q, Some(Question::Count { errors_only: false, name: "@@warning_count".into() }));
        assert_eq!(question("SELECT\u{2003}\u{a0}@@error_count\u{3000}"), question("SELECT @@error_count"));
    }

    #[test]
    fn consistency_statements_are_recognised() {
        assert_eq!(cs("SET @@sluice_consistency = 'session'"), Some(C::Set("session".into())));
        assert_eq!(cs("set session @@session.sluice_consistency='Strong';"), Some(C::Set("strong".into())));
        assert_eq!(cs("SET @@sluice_consistency := monotonic"), Some(C::Set("monotonic".into())));
        assert_eq!(cs("SELECT @@sluice_consistency"), Some(C::Show));
        assert_eq!(cs("SELECT @@sluice_consistency, 1"), None);
        assert_eq!(cs("SET @@sql_mode = ''"), None);
        assert_eq!(cs("SET @@sluice_consistency = 'x', @@autocommit = 1"), Some(C::Set("x', @@autocommit = 1".into())));
    }
}

#[cfg(test)]
mod no_panic {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_is_recognised_or_not_without_panicking(sql in any::<String>()) {
            let _ = super::question(&sql);
            let _ = super::question(&format!("SELECT{sql}@@warning_count"));
        }
    }
}
