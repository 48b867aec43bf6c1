//! Follows a backend's response frame by frame, without decoding rows: where it ends, where each
//! extra result set begins, and which frames must change on their way to the client.
//!
//! Pooled backend connections never negotiate CLIENT_DEPRECATE_EOF, so their responses always
//! carry classic EOF packets. For a client that negotiated DEPRECATE_EOF the scanner drops the
//! EOF after column definitions and turns the EOF that ends rows into an OK with header 0xFE,
//! which is exactly what a server would have sent that client. For a client without
//! CLIENT_SESSION_TRACK, OK packets are re-encoded without the session-state block.

use super::codec::Frame;
use super::error::ProtocolError;
use super::ok::{EofPacket, OkPacket};
use super::status;
use super::wire::Reader;
use bytes::BytesMut;

/// What kind of response the command that was sent produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// COM_QUERY and COM_STMT_EXECUTE: OK, ERR, LOCAL INFILE request, or result sets.
    Results,
    /// A COM_STMT_EXECUTE that asked for a cursor: as `Results`, except that a column EOF with
    /// SERVER_STATUS_CURSOR_EXISTS ends the response (rows come through COM_STMT_FETCH).
    /// Only here: MariaDB also sets that flag on result sets that stored programs with an
    /// open cursor return, whose rows follow at once.
    CursorResults,
    /// COM_STMT_PREPARE: PREPARE_OK with parameter and column definitions, or ERR.
    Prepare,
    /// COM_FIELD_LIST: column definitions ended by EOF, or ERR.
    FieldList,
    /// COM_STMT_FETCH: binary rows ended by EOF, or ERR.
    Fetch,
    /// One OK or ERR (COM_PING, COM_INIT_DB, COM_RESET_CONNECTION, ...).
    Simple,
    /// COM_STATISTICS: one human-readable string packet.
    Statistics,
}

/// What to do with a frame on its way to the client.
#[derive(Debug)]
pub enum Action {
    /// Send the frame unchanged (its sequence id is rewritten by the relay).
    Forward,
    /// Do not send it.
    Drop,
    /// Send this payload instead.
    Replace(BytesMut),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    First,
    Columns(u64),
    ColumnsEof,
    Rows,
    PrepareParams(u16),
    PrepareParamsEof,
    PrepareColumns(u16),
    PrepareColumnsEof,
    Done,
}

/// Facts of a PREPARE_OK packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareOk {
    pub statement_id: u32,
    pub columns: u16,
    pub params: u16,
}

/// The scanner for one command's response.
#[derive(Debug)]
pub struct ResponseScanner {
    expect: Expect,
    /// The command asked for a cursor (see [`Expect::CursorResults`]).
    cursor: bool,
    state: State,
    deprecate_eof: bool,
    session_track: bool,
    continuing: bool,
    /// Status flags of the last OK or EOF seen.
    pub status: Option<u16>,
    /// Every OK packet seen (one per statement of a multi-statement query).
    pub oks: Vec<OkPacket>,
    /// Rows in the last result set.
    pub rows: u64,
    /// True when the last result was a result set (ROW_COUNT() is then -1).
    pub had_result_set: bool,
    /// The ERR that ended the response, if one did.
    pub error: Option<super::err::ErrPacket>,
    /// PREPARE_OK facts.
    pub prepared: Option<PrepareOk>,
    /// The backend asked for a LOCAL INFILE upload; the response continues after the upload.
    pub local_infile: bool,
    /// Frames forwarded or replaced so far (0 means the client has seen nothing yet).
    pub sent: u64,
    /// Column definitions seen in the current result set (Sluice's own queries read names).
    pub columns_seen: u64,
    /// Warning count of the last OK or EOF: what `SHOW WARNINGS` would list after it.
    pub warnings: u16,
}

impl ResponseScanner {
    /// A scanner for a client with the given capabilities.
    pub fn new(expect: Expect, deprecate_eof: bool, session_track: bool) -> Self {
        let state = State::First;
        let (expect, cursor) = match expect {
            Expect::CursorResults => (Expect::Results, true),
            e => (e, false),
        };
        ResponseScanner {
            expect,
            cursor,
            state,
            deprecate_eof,
            session_track,
            continuing: false,
            status: None,
            oks: Vec::new(),
            rows: 0,
            had_result_set: false,
            error: None,
            prepared: None,
            local_infile: false,
            sent: 0,
            columns_seen: 0,
            warnings: 0,
        }
    }

    /// True once the response is complete.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// True when the client has seen part of a result set's rows and the stream is at a packet
    /// boundary, so an ERR packet can still end it in a way every driver understands.
    pub fn can_end_with_error(&self) -> bool {
        !self.continuing && (self.sent == 0 || self.state == State::Rows)
    }

    /// Resumes after a LOCAL INFILE upload: the backend now sends the statement's OK or ERR.
    pub fn resume_after_infile(&mut self) {
        self.local_infile = false;
        self.state = State::First;
    }

    /// Decides what happens to one frame and advances.
    pub fn feed(&mut self, frame: &Frame) -> Result<Action, ProtocolError> {
        self.feed_payload(&frame.payload)
    }

    /// [`feed`](Self::feed) for a frame's payload borrowed from a read buffer (the relay's
    /// path: no per-frame `Bytes`).
    pub fn feed_payload(&mut self, payload: &[u8]) -> Result<Action, ProtocolError> {
        let action = self.step(payload)?;
        if !matches!(action, Action::Drop) {
            self.sent += 1;
        }
        Ok(action)
    }

    fn step(&mut self, p: &[u8]) -> Result<Action, ProtocolError> {
        let continues = p.len() == super::codec::MAX_FRAME;
        if self.continuing {
            self.continuing = continues;
            return Ok(Action::Forward);
        }
        self.continuing = continues;
        let first = *p.first().ok_or(ProtocolError::Malformed("empty packet in a response"))?;
        match self.state {
            State::Done => Err(ProtocolError::Malformed("packet after the end of a response")),
            State::First => self.first(p, first),
            State::Columns(n) => {
                self.state = if n <= 1 { State::ColumnsEof } else { State::Columns(n - 1) };
                if self.expect == Expect::FieldList && EofPacket::is_eof(p) {
                    return self.end_rows(p);
                }
                self.columns_seen += 1;
                Ok(Action::Forward)
            }
            State::ColumnsEof => {
                let eof = self.eof(p)?;
                if self.cursor && eof.status & status::CURSOR_EXISTS != 0 {
                    // COM_STMT_EXECUTE opened a cursor: rows come later through COM_STMT_FETCH,
                    // and the client needs this status either way, so the EOF is kept.
                    self.state = State::Done;
                    return Ok(Action::Forward);
                }
                self.state = State::Rows;
                Ok(if self.deprecate_eof { Action::Drop } else { Action::Forward })
            }
            State::Rows => {
                if first == 0xFF {
                    return self.error(p);
                }
                if EofPacket::is_eof(p) {
                    return self.end_rows(p);
                }
                self.rows += 1;
                Ok(Action::Forward)
            }
            State::PrepareParams(n) => {
                self.state = if n <= 1 { State::PrepareParamsEof } else { State::PrepareParams(n - 1) };
                Ok(Action::Forward)
            }
            State::PrepareParamsEof => {
                // The PREPARE_OK's warning count stands (the definitions' EOF may say 0).
                let prepared_warnings = self.warnings;
                self.eof(p)?;
                self.warnings = self.warnings.max(prepared_warnings);
                let cols = self.prepared.map(|s| s.columns).unwrap_or(0);
                self.state = if cols > 0 { State::PrepareColumns(cols) } else { State::Done };
                Ok(if self.deprecate_eof { Action::Drop } else { Action::Forward })
            }
            State::PrepareColumns(n) => {
                self.state = if n <= 1 { State::PrepareColumnsEof } else { State::PrepareColumns(n - 1) };
                Ok(Action::Forward)
            }
            State::PrepareColumnsEof => {
                // The PREPARE_OK's warning count stands (the definitions' EOF may say 0).
                let prepared_warnings = self.warnings;
                self.eof(p)?;
                self.warnings = self.warnings.max(prepared_warnings);
                self.state = State::Done;
                Ok(if self.deprecate_eof { Action::Drop } else { Action::Forward })
            }
        }
    }

    fn first(&mut self, p: &[u8], first: u8) -> Result<Action, ProtocolError> {
        match (self.expect, first) {
            (_, 0xFF) => self.error(p),
            (Expect::Statistics, _) => {
                self.state = State::Done;
                Ok(Action::Forward)
            }
            (Expect::Prepare, 0x00) => {
                let mut r = Reader::new(p);
                r.u8("header")?;
                let statement_id = r.u32("statement id")?;
                let columns = r.u16("columns")?;
                let params = r.u16("params")?;
                // A filler byte, then the warnings the prepare raised (parse-time notes such
                // as a deprecated syntax), which SHOW WARNINGS shows next.
                if r.remaining() >= 3 {
                    r.u8("filler")?;
                    self.warnings = r.u16("warnings")?;
                }
                self.prepared = Some(PrepareOk { statement_id, columns, params });
                self.state = if params > 0 {
                    State::PrepareParams(params)
                } else if columns > 0 {
                    State::PrepareColumns(columns)
                } else {
                    State::Done
                };
                Ok(Action::Forward)
            }
            (Expect::FieldList, _) => {
                // The first column definition (or the EOF of an empty list).
                if EofPacket::is_eof(p) {
                    return self.end_rows(p);
                }
                self.state = State::Columns(u64::MAX);
                Ok(Action::Forward)
            }
            (Expect::Fetch, _) => {
                self.state = State::Rows;
                self.rows = 0;
                if EofPacket::is_eof(p) {
                    return self.end_rows(p);
                }
                self.rows = 1;
                Ok(Action::Forward)
            }
            (_, 0x00) => self.ok(p),
            // COM_SET_OPTION answers with a classic EOF.
            (Expect::Simple, 0xFE) if EofPacket::is_eof(p) => self.end_rows(p),
            (Expect::Results, 0xFB) => {
                self.local_infile = true;
                Ok(Action::Forward)
            }
            (Expect::Results, _) => {
                let n = Reader::new(p).lenenc("column count")?;
                if n == 0 {
                    return Err(ProtocolError::Malformed("result set with zero columns"));
                }
                self.state = State::Columns(n);
                self.rows = 0;
                self.columns_seen = 0;
                self.had_result_set = true;
                Ok(Action::Forward)
            }
            _ => Err(ProtocolError::Malformed("unexpected first packet of a response")),
        }
    }

    fn ok(&mut self, p: &[u8]) -> Result<Action, ProtocolError> {
        let ok = OkPacket::parse(&bytes::Bytes::copy_from_slice(p))?;
        self.status = Some(ok.status);
        self.warnings = ok.warnings;
        self.had_result_set = false;
        self.state = if ok.status & status::MORE_RESULTS_EXISTS != 0 && self.expect == Expect::Results {
            State::First
        } else {
            State::Done
        };
        let action = match (self.session_track, ok.status & status::SESSION_STATE_CHANGED != 0) {
            (true, false) => Action::Forward,
            (true, true) => Action::Replace(ok.encode_for_default_trackers()),
            (false, _) => Action::Replace(ok.encode(false)),
        };
        self.oks.push(ok);
        Ok(action)
    }

    fn error(&mut self, p: &[u8]) -> Result<Action, ProtocolError> {
        self.error = Some(super::err::ErrPacket::parse(p)?);
        self.state = State::Done;
        Ok(Action::Forward)
    }

    fn eof(&mut self, p: &[u8]) -> Result<EofPacket, ProtocolError> {
        if !EofPacket::is_eof(p) {
            return Err(ProtocolError::Malformed("expected an EOF packet"));
        }
        let eof = EofPacket::parse(p)?;
        self.status = Some(eof.status);
        self.warnings = eof.warnings;
        Ok(eof)
    }

    fn end_rows(&mut self, p: &[u8]) -> Result<Action, ProtocolError> {
        let eof = self.eof(p)?;
        let more = eof.status & status::MORE_RESULTS_EXISTS != 0 && self.expect == Expect::Results;
        self.state = if more { State::First } else { State::Done };
        if self.deprecate_eof {
            Ok(Action::Replace(eof.to_ok().encode(self.session_track)))
        } else {
            Ok(Action::Forward)
        }
    }
}

#[cfg(test)]
mod tests;
