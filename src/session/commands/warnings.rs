//! `SHOW WARNINGS` under multiplexing. Warnings live on the backend connection that ran the
//! statement, which is back in the pool (and may be serving someone else) by the time the
//! client asks. So when a response reports warnings, Sluice reads them on that connection
//! before releasing it, and answers the client's `SHOW WARNINGS` / `SHOW ERRORS` /
//! `SHOW COUNT(*) WARNINGS|ERRORS` / `SELECT @@warning_count|@@error_count` from what it
//! kept. After an error it reads them as well (the server's list also keeps the warnings
//! raised before the error); only if that read fails does the list hold just the error. A
//! pinned session's questions go to its own connection instead.

use super::super::Session;
use crate::protocol::err::ErrPacket;
use crate::protocol::resultset::{raw_result_set, text_result_set, Column, ColumnType};
use crate::router::local::Question;
use bytes::Bytes;

/// What the last statement left to show.
#[derive(Debug, Clone, Default)]
pub(in crate::session) struct Warnings {
    /// Column definitions of the server's SHOW WARNINGS, when it was asked.
    defs: Vec<Bytes>,
    /// (level, code, message, the row as the server sent it, if it did).
    rows: Vec<(String, String, String, Option<Bytes>)>,
}

impl Warnings {
    /// The list after a statement that failed: its error.
    pub(in crate::session) fn from_error(e: &ErrPacket) -> Warnings {
        Warnings { defs: Vec::new(), rows: vec![("Error".into(), e.code.to_string(), e.message.clone(), None)] }
    }

    /// The list a server's SHOW WARNINGS returned.
    pub(in crate::session) fn from_server(r: crate::backend::conn::QueryResult) -> Warnings {
        let rows = r
            .rows
            .iter()
            .zip(r.raw_rows.iter())
            .map(|(v, raw)| {
                let f = |i: usize| v.get(i).cloned().flatten().unwrap_or_default();
                (f(0), f(1), f(2), Some(raw.clone()))
            })
            .collect();
        Warnings { defs: r.defs, rows }
    }
}

/// Answers a question from the kept list.
pub(in crate::session) fn answer(s: &mut Session, q: Question) {
    let kept = s.warnings.clone().unwrap_or_default();
    // A statement with a result set, as on the server: ROW_COUNT() is -1 after it (mysqltest
    // sends SHOW WARNINGS after every statement that warned, main.foreign_key reads it).
    s.state.row_count = -1;
    let framing = s.client.framing(s.state.status());
    let packets = match q {
        Question::Count { errors_only, name } => {
            let n = kept.rows.iter().filter(|r| !errors_only || r.0 == "Error").count();
            let columns = [Column { name, kind: ColumnType::LongLong }];
            text_result_set(&columns, &[vec![Some(n.to_string())]], framing)
        }
        Question::List { errors_only } => {
            let rows: Vec<_> = kept.rows.iter().filter(|r| !errors_only || r.0 == "Error").collect();
            if !kept.defs.is_empty() && rows.iter().all(|r| r.3.is_some()) {
                let raw = rows.iter().filter_map(|r| r.3.clone()).collect();
                raw_result_set(&kept.defs, raw, framing.status, framing.deprecate_eof, framing.session_track)
            } else {
                let columns = [
                    Column { name: "Level".into(), kind: ColumnType::VarString },
                    Column { name: "Code".into(), kind: ColumnType::LongLong },
                    Column { name: "Message".into(), kind: ColumnType::VarString },
                ];
                let values: Vec<Vec<Option<String>>> =
                    rows.iter().map(|r| vec![Some(r.0.clone()), Some(r.1.clone()), Some(r.2.clone())]).collect();
                text_result_set(&columns, &values, framing)
            }
        }
    };
    let mut seq = s.seq;
    for p in packets {
        seq = s.client.put(seq, &p);
    }
}
