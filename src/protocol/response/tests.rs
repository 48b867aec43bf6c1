use super::*;
use crate::protocol::codec::MAX_FRAME;
use crate::protocol::ok::EofPacket;
use bytes::Bytes;

fn f(payload: &[u8]) -> Frame {
    Frame { seq: 0, payload: Bytes::copy_from_slice(payload) }
}

fn eof(status: u16) -> Frame {
    f(&EofPacket { warnings: 0, status }.encode())
}

fn coldef() -> Frame {
    f(b"\x03def\x00\x00\x00\x01a\x01a\x0c\x2d\x00\x0b\x00\x00\x00\xfd\x00\x00\x00\x00\x00")
}

/// Feeds frames, returns what each one became ('F'orward, 'D'rop, 'R'eplace).
fn run(s: &mut ResponseScanner, frames: &[Frame]) -> String {
    frames
        .iter()
        .map(|fr| match s.feed(fr).unwrap() {
            Action::Forward => 'F',
            Action::Drop => 'D',
            Action::Replace(_) => 'R',
        })
        .collect()
}

#[test]
fn classic_result_set_passes_through_for_classic_clients() {
    let mut s = ResponseScanner::new(Expect::Results, false, true);
    let out = run(&mut s, &[f(&[1]), coldef(), eof(2), f(b"\x01x"), f(b"\x01y"), eof(2)]);
    assert_eq!(out, "FFFFFF");
    assert!(s.is_done());
    assert_eq!(s.rows, 2);
}

#[test]
fn deprecate_eof_client_loses_column_eof_and_gets_ok_at_end() {
    let mut s = ResponseScanner::new(Expect::Results, true, true);
    let out = run(&mut s, &[f(&[1]), coldef(), eof(2), f(b"\x01x"), eof(2)]);
    assert_eq!(out, "FFDFR");
    assert!(s.is_done());
}

#[test]
fn multi_results_continue_until_no_more_results_flag() {
    let mut s = ResponseScanner::new(Expect::Results, false, true);
    let more = status::MORE_RESULTS_EXISTS | status::AUTOCOMMIT;
    run(&mut s, &[f(&[1]), coldef(), eof(more), f(b"\x011"), eof(more)]);
    assert!(!s.is_done());
    // second statement: an OK with MORE_RESULTS, then a final result set
    run(&mut s, &[f(&[0, 1, 0, 0x0a, 0, 0, 0])]);
    assert!(!s.is_done());
    run(&mut s, &[f(&[1]), coldef(), eof(2), eof(2)]);
    assert!(s.is_done());
    assert_eq!(s.oks.len(), 1);
}

#[test]
fn rows_that_start_with_fe_are_rows_not_eof() {
    let mut s = ResponseScanner::new(Expect::Results, false, true);
    let mut big_row = vec![0xFE];
    big_row.extend_from_slice(&[0u8; 20]);
    run(&mut s, &[f(&[1]), coldef(), eof(2), f(&big_row)]);
    assert!(!s.is_done());
    assert_eq!(s.rows, 1);
}

#[test]
fn continuation_frames_are_never_interpreted() {
    let mut s = ResponseScanner::new(Expect::Results, false, true);
    run(&mut s, &[f(&[1]), coldef(), eof(2)]);
    let mut big = vec![0u8; MAX_FRAME];
    big[0] = 0xFC;
    // A continuation that happens to look like an EOF must be forwarded as data.
    assert_eq!(run(&mut s, &[f(&big), eof(2)]), "FF");
    assert!(!s.is_done());
    assert_eq!(run(&mut s, &[eof(2)]), "F");
    assert!(s.is_done());
    assert_eq!(s.rows, 1);
}

#[test]
fn error_mid_rows_ends_the_response() {
    let mut s = ResponseScanner::new(Expect::Results, false, true);
    run(&mut s, &[f(&[1]), coldef(), eof(2), f(b"\x01x")]);
    assert!(s.can_end_with_error());
    run(&mut s, &[f(b"\xff\x15\x04#HY000boom")]);
    assert!(s.is_done());
    assert_eq!(s.error.as_ref().unwrap().code, 1045);
}

#[test]
fn prepare_ok_with_params_and_columns() {
    let mut s = ResponseScanner::new(Expect::Prepare, true, true);
    let ok = f(&[0, 7, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0]);
    let out = run(&mut s, &[ok, coldef(), coldef(), eof(2), coldef(), eof(2)]);
    assert_eq!(out, "FFFDFD");
    assert!(s.is_done());
    assert_eq!(s.prepared, Some(PrepareOk { statement_id: 7, columns: 1, params: 2 }));
}

/// The PREPARE_OK's warning count is kept though the definitions' EOF reports none.
#[test]
fn prepare_ok_warnings_outlast_the_definitions_eof() {
    let mut s = ResponseScanner::new(Expect::Prepare, true, true);
    let ok = f(&[0, 3, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0]);
    run(&mut s, &[ok, coldef(), eof(2)]);
    assert!(s.is_done());
    assert_eq!(s.warnings, 1);
}

#[test]
fn cursor_open_ends_after_column_eof() {
    let mut s = ResponseScanner::new(Expect::CursorResults, true, true);
    let out = run(&mut s, &[f(&[1]), coldef(), eof(status::CURSOR_EXISTS | 2)]);
    assert_eq!(out, "FFF");
    assert!(s.is_done());
}

/// A stored program with an open cursor makes MariaDB flag every result set it returns with
/// CURSOR_EXISTS; without a cursor request the rows follow and must be relayed.
#[test]
fn cursor_flag_without_a_cursor_request_is_an_ordinary_result_set() {
    let mut s = ResponseScanner::new(Expect::Results, false, true);
    let out = run(&mut s, &[f(&[1]), coldef(), eof(status::CURSOR_EXISTS | 2), f(&[1, b'1']), eof(2)]);
    assert_eq!(out, "FFFFF");
    assert!(s.is_done());
    assert_eq!(s.rows, 1);
}

#[test]
fn ok_is_reencoded_for_clients_without_session_track() {
    let mut s = ResponseScanner::new(Expect::Simple, false, false);
    assert_eq!(run(&mut s, &[f(&[0, 0, 0, 2, 0, 0, 0])]), "R");
    assert!(s.is_done());
}

#[test]
fn field_list_and_fetch_and_statistics() {
    let mut s = ResponseScanner::new(Expect::FieldList, false, true);
    assert_eq!(run(&mut s, &[coldef(), coldef(), eof(2)]), "FFF");
    assert!(s.is_done());
    let mut s = ResponseScanner::new(Expect::Fetch, true, true);
    assert_eq!(run(&mut s, &[f(&[0, 0, 1]), eof(status::LAST_ROW_SENT)]), "FR");
    assert!(s.is_done());
    let mut s = ResponseScanner::new(Expect::Statistics, false, true);
    assert_eq!(run(&mut s, &[f(b"Uptime: 5")]), "F");
    assert!(s.is_done());
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    let mut s = ResponseScanner::new(Expect::Results, false, true);
    assert!(s.feed(&f(&[])).is_err());
    let mut s = ResponseScanner::new(Expect::Prepare, false, true);
    assert!(s.feed(&f(&[0, 1])).is_err());
}

#[test]
fn set_option_eof_becomes_ok_for_deprecate_eof_clients() {
    let mut s = ResponseScanner::new(Expect::Simple, true, true);
    assert_eq!(run(&mut s, &[eof(2)]), "R");
    assert!(s.is_done());
    assert_eq!(s.status, Some(2));
}
