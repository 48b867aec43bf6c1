//! COM_QUERY: answer from session state when the statement only asks for a session value,
//! otherwise analyse, route and relay.

use super::super::error::SessionError;
use super::super::Session;
use crate::protocol::response::Expect;
use crate::protocol::resultset::{text_result_set, Column, ColumnType};
use crate::router::analysis::{hide_socket, session_values, SessionValue};
use crate::router::{analyze, Feature};
use bytes::Bytes;

/// Handles COM_QUERY.
pub(in crate::session) async fn query(s: &mut Session, payload: Bytes) -> Result<(), SessionError> {
    let sql = String::from_utf8_lossy(&payload[1..]);
    if let Some(values) = session_values(&sql) {
        answer_from_session(s, &values);
        return Ok(());
    }
    let analysis = analyze(&sql);
    tracing::trace!(first = analysis.first, "query");
    let payload = match analysis.features.has(Feature::Socket).then(|| hide_socket(&sql)).flatten() {
        Some(rewritten) => {
            let mut p = Vec::with_capacity(rewritten.len() + 1);
            p.push(crate::protocol::com::QUERY);
            p.extend_from_slice(rewritten.as_bytes());
            Bytes::from(p)
        }
        None => payload.clone(),
    };
    s.execute(payload, Expect::Results, Some(&analysis)).await?;
    Ok(())
}

/// `SELECT LAST_INSERT_ID()` and friends: under multiplexing the connection that would answer
/// is not the one that ran the previous statement, so Sluice answers from what it recorded.
fn answer_from_session(s: &mut Session, values: &[(SessionValue, String)]) {
    let columns: Vec<Column> =
        values.iter().map(|(_, name)| Column { name: name.clone(), kind: ColumnType::LongLong }).collect();
    let row: Vec<Option<String>> = values
        .iter()
        .map(|(v, _)| {
            Some(match v {
                SessionValue::LastInsertId => s.state.want.last_insert_id.to_string(),
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
