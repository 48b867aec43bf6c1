//! COM_QUERY: answer from session state when the statement only asks for a session value,
//! otherwise analyse, route and relay.

use super::super::error::SessionError;
use super::super::Session;
use crate::protocol::err::ErrPacket;
use crate::protocol::response::Expect;
use crate::protocol::resultset::{text_result_set, Column, ColumnType};
use crate::router::analysis::analyze_marking;
use crate::router::analysis::{connection_id_as_literal, hide_socket, session_values, SessionValue};
use crate::router::{analyze, Feature};
use bytes::Bytes;

/// Handles COM_QUERY.
pub(in crate::session) async fn query(s: &mut Session, payload: Bytes) -> Result<(), SessionError> {
    let sql = String::from_utf8_lossy(&payload[1..]);
    if s.lease.is_none() {
        if let Some(q) = super::warnings::question(&sql) {
            super::warnings::answer(s, q);
            return Ok(());
        }
    }
    // Answered here or elsewhere without warnings unless the relayed response says otherwise.
    s.warnings = None;
    if let Some(values) = session_values(&sql) {
        answer_from_session(s, &values);
        return Ok(());
    }
    // One pass finds both the routing facts and whether a sharded table is named.
    let analysis = match s.shared.load().topology.sharding.as_ref() {
        Some(sh) => analyze_marking(&sql, |w| sh.is_sharded(w)),
        None => analyze(&sql),
    };
    tracing::trace!(first = analysis.first, kind = ?analysis.kind, "query");
    if analysis.features.has(Feature::SysVar) {
        if let Some(setting) = consistency_statement(&sql) {
            answer_consistency(s, setting);
            return Ok(());
        }
    }
    if analysis.first.eq_ignore_ascii_case("kill") {
        if let Some(k) = crate::router::kill::kill_statement(&sql) {
            return super::kill::kill_statement(s, k).await;
        }
    }
    let dynamic = analysis.first.eq_ignore_ascii_case("prepare") || analysis.first.eq_ignore_ascii_case("execute");
    if dynamic && crate::router::kill::prepares_kill(&sql) {
        s.client.put_err(s.seq, &ErrPacket::unsupported_in_prepared("KILL through Sluice"));
        return Ok(());
    }
    if analysis.kind == crate::router::Kind::Unknown {
        s.shared.metrics.unparsed.inc();
    }
    if let super::Next::Answered = super::sharded::route_text(s, &sql, &analysis).await? {
        return Ok(());
    }
    // Rewrites re-encode the text, so only statements that are valid UTF-8 are rewritten (a
    // latin1 byte must reach the server as sent).
    let utf8 = matches!(sql, std::borrow::Cow::Borrowed(_));
    let mut rewritten = analysis.features.has(Feature::Socket).then(|| hide_socket(&sql)).flatten().filter(|_| utf8);
    if utf8 && analysis.features.has(Feature::ConnectionId) {
        let text = rewritten.as_deref().unwrap_or(&sql);
        if let Some(r) = connection_id_as_literal(text, s.ctl.id) {
            rewritten = Some(r);
        }
    }
    let payload = match rewritten {
        Some(rewritten) => {
            let mut p = Vec::with_capacity(rewritten.len() + 1);
            p.push(crate::protocol::com::QUERY);
            p.extend_from_slice(rewritten.as_bytes());
            Bytes::from(p)
        }
        None => payload.clone(),
    };
    let done = s.execute(payload, Expect::Results, Some(&analysis)).await;
    s.target_shard = None;
    done?;
    Ok(())
}

/// A statement about Sluice's own session variable `sluice_consistency`.
#[derive(Debug, PartialEq, Eq)]
enum ConsistencyStatement {
    /// `SET [SESSION] @@[session.]sluice_consistency = 'level'`.
    Set(String),
    /// `SELECT @@[session.]sluice_consistency`.
    Show,
}

/// Recognises the two shapes of [`ConsistencyStatement`]; anything else is not one.
fn consistency_statement(sql: &str) -> Option<ConsistencyStatement> {
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

fn answer_consistency(s: &mut Session, st: ConsistencyStatement) {
    use crate::config::Consistency;
    let status = s.state.status & !crate::protocol::status::MORE_RESULTS_EXISTS;
    match st {
        ConsistencyStatement::Set(v) => match Consistency::parse(&v) {
            Some(level) => {
                s.reads.level = Some(level);
                s.client.put_ok(s.seq, &crate::protocol::ok::OkPacket::with_status(status));
            }
            None => {
                s.client.put_err(s.seq, &ErrPacket::wrong_value("sluice_consistency", &v));
            }
        },
        ConsistencyStatement::Show => {
            let columns = [Column { name: "@@sluice_consistency".into(), kind: ColumnType::VarString }];
            let row = vec![Some(s.consistency().as_str().to_string())];
            let packets = text_result_set(&columns, &[row], status, s.client.deprecate_eof(), s.client.session_track());
            let mut seq = s.seq;
            for p in packets {
                seq = s.client.put(seq, &p);
            }
        }
    }
}

/// `SELECT LAST_INSERT_ID()` and friends: under multiplexing the connection that would answer
/// is not the one that ran the previous statement, so Sluice answers from what it recorded.
fn answer_from_session(s: &mut Session, values: &[(SessionValue, String)]) {
    // The column definitions the server sends for each (`raw::answers_sluice_builds_have_the_servers_column_definitions`).
    let kind = |v: &SessionValue| match v {
        SessionValue::LastInsertId => ColumnType::InsertIdFunction,
        SessionValue::LastInsertIdVariable => ColumnType::InsertIdVariable,
        SessionValue::RowCount | SessionValue::FoundRows => ColumnType::CountFunction,
    };
    let columns: Vec<Column> = values.iter().map(|(v, name)| Column { name: name.clone(), kind: kind(v) }).collect();
    let row: Vec<Option<String>> = values
        .iter()
        .map(|(v, _)| {
            Some(match v {
                SessionValue::LastInsertId | SessionValue::LastInsertIdVariable => {
                    s.state.want.last_insert_id.to_string()
                }
                SessionValue::RowCount => s.state.row_count.to_string(),
                SessionValue::FoundRows => s.state.found_rows.to_string(),
            })
        })
        .collect();
    let status = s.state.status & !crate::protocol::status::MORE_RESULTS_EXISTS;
    let packets = text_result_set(&columns, &[row], status, s.client.deprecate_eof(), s.client.session_track());
    let mut seq = s.seq;
    for p in packets {
        seq = s.client.put(seq, &p);
    }
    // Like a server: the value just selected is what FOUND_ROWS() reports next, and a
    // SELECT sets ROW_COUNT() to -1.
    s.state.found_rows = 1;
    s.state.row_count = -1;
}

#[cfg(test)]
mod tests {
    use super::{consistency_statement as cs, ConsistencyStatement as C};

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
