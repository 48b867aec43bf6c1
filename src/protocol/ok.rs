//! OK and EOF packets: the status flags and session-state changes Sluice reads from the
//! backend, and their re-encoding for clients that negotiated different capabilities.

use super::error::ProtocolError;
use super::wire::{put_lenenc, put_lenenc_bytes, Reader};
use bytes::{BufMut, Bytes, BytesMut};

/// A decoded OK packet (as sent to a client that has CLIENT_SESSION_TRACK, which every pooled
/// backend connection has).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OkPacket {
    pub header: u8,
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
    pub info: Bytes,
    /// The raw session-state-change block, when the status says there is one.
    pub session_state: Option<Bytes>,
    /// That block decoded, once, at parse time (both the connection's and the session's state
    /// learn from it).
    changes: Vec<StateChange>,
}

/// One entry of the session-state-change block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateChange {
    /// A system variable and its new value.
    SystemVariable(String, String),
    /// The current schema.
    Schema(String),
    /// Some state changed (user variables, temporary tables, prepared statements, ...).
    StateChanged,
    /// A GTID (MariaDB: the session's last GTID when session_track_gtids is on).
    Gtids(Bytes),
    /// Any other tracker, kept opaque.
    Other(u8),
}

impl OkPacket {
    /// Decodes an OK payload (header 0x00, or 0xFE for an OK that replaces EOF) from a
    /// connection with CLIENT_SESSION_TRACK.
    pub fn parse(payload: &Bytes) -> Result<OkPacket, ProtocolError> {
        let mut r = Reader::new(payload);
        let header = r.u8("ok header")?;
        let affected_rows = r.lenenc("affected rows")?;
        let last_insert_id = r.lenenc("last insert id")?;
        let status = r.u16("status")?;
        let warnings = r.u16("warnings")?;
        let (mut info, mut session_state) = (Bytes::new(), None);
        if !r.is_empty() {
            let s = r.lenenc_bytes("info")?;
            info = payload.slice_ref(s);
            if status & super::status::SESSION_STATE_CHANGED != 0 && !r.is_empty() {
                let s = r.lenenc_bytes("session state")?;
                session_state = Some(payload.slice_ref(s));
            }
        }
        let changes = session_state.as_ref().map(decode_changes).unwrap_or_default();
        Ok(OkPacket { header, affected_rows, last_insert_id, status, warnings, info, session_state, changes })
    }

    /// The decoded session-state changes (empty when there are none).
    pub fn changes(&self) -> &[StateChange] {
        &self.changes
    }

    /// Encodes for a client. Without CLIENT_SESSION_TRACK no session state is sent, so the
    /// status bit announcing it is cleared; the info string keeps its length prefix, as MySQL
    /// and MariaDB servers write it (and drivers parse it) despite the documented `string<EOF>`.
    pub fn encode(&self, session_track: bool) -> BytesMut {
        let mut b = BytesMut::with_capacity(16 + self.info.len());
        b.put_u8(self.header);
        put_lenenc(&mut b, self.affected_rows);
        put_lenenc(&mut b, self.last_insert_id);
        if session_track {
            b.put_u16_le(self.status);
            b.put_u16_le(self.warnings);
            if !self.info.is_empty() || self.session_state.is_some() {
                put_lenenc_bytes(&mut b, &self.info);
            }
            if let Some(s) = &self.session_state {
                put_lenenc_bytes(&mut b, s);
            }
        } else {
            b.put_u16_le(self.status & !super::status::SESSION_STATE_CHANGED);
            b.put_u16_le(self.warnings);
            if !self.info.is_empty() {
                put_lenenc_bytes(&mut b, &self.info);
            }
        }
        b
    }

    /// Encodes for a client with CLIENT_SESSION_TRACK, keeping only what the server's default
    /// trackers report (the schema, and the variables of MariaDB's default
    /// `session_track_system_variables`): Sluice turns every tracker on for itself on its
    /// backend connections, and a client must not receive what it never asked for
    /// ("state changed" entries, `sql_mode`, `last_gtid`...). Without anything left, the
    /// SESSION_STATE_CHANGED status bit is cleared.
    pub fn encode_for_default_trackers(&self) -> BytesMut {
        let kept = self.session_state.as_ref().map(default_entries).filter(|k| !k.is_empty());
        let stripped = OkPacket {
            status: if kept.is_some() { self.status } else { self.status & !super::status::SESSION_STATE_CHANGED },
            session_state: kept.map(BytesMut::freeze),
            changes: Vec::new(),
            info: self.info.clone(),
            ..*self
        };
        stripped.encode(true)
    }

    /// A plain OK with the given status.
    pub fn with_status(status: u16) -> OkPacket {
        OkPacket { status, ..OkPacket::default() }
    }
}

/// Variables MariaDB 10.11 tracks by default (`session_track_system_variables`).
const DEFAULT_TRACKED: &[&str] =
    &["autocommit", "character_set_client", "character_set_connection", "character_set_results", "time_zone"];

/// The entries of a session-state block that the default trackers produce, re-framed.
fn default_entries(block: &Bytes) -> BytesMut {
    let mut out = BytesMut::new();
    let mut r = Reader::new(block);
    while !r.is_empty() {
        let (Ok(kind), Ok(data)) = (r.u8("tracker type"), r.lenenc_bytes("tracker data")) else { break };
        let keep = match kind {
            0 => Reader::new(data)
                .lenenc_bytes("name")
                .is_ok_and(|n| DEFAULT_TRACKED.iter().any(|d| d.as_bytes().eq_ignore_ascii_case(n))),
            1 => true,
            _ => false,
        };
        if keep {
            out.put_u8(kind);
            put_lenenc_bytes(&mut out, data);
        }
    }
    out
}

/// Decodes a session-state-change block. Malformed entries end the list: the changes are
/// advisory to Sluice, and the packet itself is still relayed as it came.
fn decode_changes(block: &Bytes) -> Vec<StateChange> {
    let mut out = Vec::new();
    let mut r = Reader::new(block);
    while !r.is_empty() {
        let Ok(kind) = r.u8("tracker type") else {
            break;
        };
        let Ok(data) = r.lenenc_bytes("tracker data") else {
            break;
        };
        let mut d = Reader::new(data);
        let change = match kind {
            0 => match (d.lenenc_bytes("name"), d.lenenc_bytes("value")) {
                (Ok(n), Ok(v)) => StateChange::SystemVariable(
                    String::from_utf8_lossy(n).to_ascii_lowercase(),
                    String::from_utf8_lossy(v).into_owned(),
                ),
                _ => break,
            },
            1 => match d.lenenc_bytes("schema") {
                Ok(n) => StateChange::Schema(String::from_utf8_lossy(n).into_owned()),
                _ => break,
            },
            2 => StateChange::StateChanged,
            3 => StateChange::Gtids(block.slice_ref(data)),
            k => StateChange::Other(k),
        };
        out.push(change);
    }
    out
}

/// A decoded classic EOF packet: `0xFE warnings status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EofPacket {
    pub warnings: u16,
    pub status: u16,
}

impl EofPacket {
    /// True for a payload that is an EOF packet rather than a row starting with 0xFE (a row
    /// whose first value has an 8-byte length is at least 9 bytes long).
    pub fn is_eof(payload: &[u8]) -> bool {
        payload.first() == Some(&0xFE) && payload.len() < 9
    }

    /// Decodes an EOF payload.
    pub fn parse(payload: &[u8]) -> Result<EofPacket, ProtocolError> {
        let mut r = Reader::new(payload);
        r.u8("eof header")?;
        if r.remaining() < 4 {
            return Ok(EofPacket { warnings: 0, status: 0 });
        }
        Ok(EofPacket { warnings: r.u16("warnings")?, status: r.u16("status")? })
    }

    /// Encodes the EOF payload.
    pub fn encode(&self) -> [u8; 5] {
        let w = self.warnings.to_le_bytes();
        let s = self.status.to_le_bytes();
        [0xFE, w[0], w[1], s[0], s[1]]
    }

    /// The OK packet (header 0xFE) that replaces this EOF for a client with
    /// CLIENT_DEPRECATE_EOF.
    pub fn to_ok(self) -> OkPacket {
        OkPacket { header: 0xFE, status: self.status, warnings: self.warnings, ..OkPacket::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracked_ok() -> Bytes {
        // OK, 1 row, insert id 300, status AUTOCOMMIT|SESSION_STATE_CHANGED, 0 warnings,
        // info "", state: sysvar time_zone=+01:00, schema shop, state changed.
        let mut state = BytesMut::new();
        let mut sv = BytesMut::new();
        put_lenenc_bytes(&mut sv, b"time_zone");
        put_lenenc_bytes(&mut sv, b"+01:00");
        state.put_u8(0);
        put_lenenc_bytes(&mut state, &sv);
        let mut sc = BytesMut::new();
        put_lenenc_bytes(&mut sc, b"shop");
        state.put_u8(1);
        put_lenenc_bytes(&mut state, &sc);
        state.put_u8(2);
        put_lenenc_bytes(&mut state, b"1");
        let mut b = BytesMut::new();
        b.put_u8(0);
        put_lenenc(&mut b, 1);
        put_lenenc(&mut b, 300);
        b.put_u16_le(0x4002);
        b.put_u16_le(0);
        put_lenenc_bytes(&mut b, b"");
        put_lenenc_bytes(&mut b, &state);
        b.freeze()
    }

    #[test]
    fn parses_session_state_changes() {
        let ok = OkPacket::parse(&tracked_ok()).unwrap();
        assert_eq!((ok.affected_rows, ok.last_insert_id), (1, 300));
        assert_eq!(
            ok.changes().to_vec(),
            vec![
                StateChange::SystemVariable("time_zone".into(), "+01:00".into()),
                StateChange::Schema("shop".into()),
                StateChange::StateChanged
            ]
        );
        // Re-encoded with tracking, it is byte-identical.
        assert_eq!(&ok.encode(true)[..], &tracked_ok()[..]);
    }

    #[test]
    fn a_client_gets_only_what_the_default_trackers_report() {
        let ok = OkPacket::parse(&tracked_ok()).unwrap();
        let out = OkPacket::parse(&ok.encode_for_default_trackers().freeze()).unwrap();
        assert_eq!(
            out.changes().to_vec(),
            vec![StateChange::SystemVariable("time_zone".into(), "+01:00".into()), StateChange::Schema("shop".into())]
        );
        // Only a "state changed" entry (after SET @a = 1): nothing left, and no status bit.
        let mut state = BytesMut::new();
        state.put_u8(2);
        put_lenenc_bytes(&mut state, b"1");
        let only = OkPacket { status: 0x4002, session_state: Some(state.freeze()), ..OkPacket::default() };
        let out = OkPacket::parse(&only.encode_for_default_trackers().freeze()).unwrap();
        assert_eq!(out.status, 0x0002);
        assert!(out.changes().is_empty());
    }

    #[test]
    fn encode_without_session_track_drops_state_and_flag() {
        let ok = OkPacket::parse(&tracked_ok()).unwrap();
        let plain = ok.encode(false);
        // header, affected(1), insert id (0xFC + 2 bytes), status, warnings, empty info
        assert_eq!(&plain[..], &[0, 1, 0xFC, 44, 1, 0x02, 0x00, 0, 0]);
    }

    #[test]
    fn eof_detection_and_ok_conversion() {
        let eof = EofPacket { warnings: 1, status: 0x0022 };
        let bytes = eof.encode();
        assert!(EofPacket::is_eof(&bytes));
        assert!(!EofPacket::is_eof(&[0xFE, 0, 0, 0, 0, 0, 0, 0, 0]));
        assert_eq!(EofPacket::parse(&bytes).unwrap(), eof);
        let ok = eof.to_ok();
        assert_eq!(&ok.encode(false)[..], &[0xFE, 0, 0, 0x22, 0, 1, 0]);
    }
}
