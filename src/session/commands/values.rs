//! `SELECT LAST_INSERT_ID()`, `ROW_COUNT()`, `FOUND_ROWS()`, `@@identity`: under multiplexing
//! the connection that would answer is not the one that ran the session's previous statement,
//! so Sluice answers from what it recorded, as a text result (COM_QUERY) or a binary one (the
//! same statement prepared, at each COM_STMT_EXECUTE).

use super::super::Session;
use crate::protocol::resultset::{binary_int_result_set, text_result_set, Column, ColumnType};
use crate::router::analysis::SessionValue;

/// Answers `values` (each with its column name) from the session's record; `binary`: in the
/// binary protocol.
pub(in crate::session) fn answer(s: &mut Session, values: &[(SessionValue, String)], binary: bool) {
    // The column definitions the server sends for each (`raw::answers_sluice_builds_have_the_servers_column_definitions`).
    let kind = |v: &SessionValue| match v {
        SessionValue::LastInsertId => ColumnType::InsertIdFunction,
        SessionValue::LastInsertIdVariable => ColumnType::InsertIdVariable,
        SessionValue::RowCount | SessionValue::FoundRows => ColumnType::CountFunction,
    };
    let columns: Vec<Column> = values.iter().map(|(v, name)| Column { name: name.clone(), kind: kind(v) }).collect();
    let framing = s.client.framing(s.state.status());
    let packets = if binary {
        // ROW_COUNT() is signed: its 64-bit two's complement is what the server sends.
        let row: Vec<Option<u64>> = values.iter().map(|(v, _)| Some(value(s, *v) as u64)).collect();
        binary_int_result_set(&columns, &[row], framing)
    } else {
        let row: Vec<Option<String>> = values.iter().map(|(v, _)| Some(value(s, *v).to_string())).collect();
        text_result_set(&columns, &[row], framing)
    };
    let mut seq = s.seq;
    for p in packets {
        seq = s.client.put(seq, &p);
    }
    // Like a server: the value just selected is what FOUND_ROWS() reports next, and a
    // SELECT sets ROW_COUNT() to -1.
    s.state.found_rows = 1;
    s.state.row_count = -1;
}

/// The session's recorded value of `v`.
fn value(s: &Session, v: SessionValue) -> i128 {
    match v {
        SessionValue::LastInsertId | SessionValue::LastInsertIdVariable => s.state.want.last_insert_id as i128,
        SessionValue::RowCount => s.state.row_count as i128,
        SessionValue::FoundRows => s.state.found_rows as i128,
    }
}
