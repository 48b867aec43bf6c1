//! Result sets Sluice builds itself (answers it serves from session state, admin results), in
//! the text protocol (or, for a prepared statement Sluice answers, the binary one), terminated
//! the way the client negotiated.

use super::ok::EofPacket;
use super::wire::{put_lenenc, put_lenenc_bytes};
use bytes::{BufMut, Bytes, BytesMut};

/// Column types Sluice produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// MYSQL_TYPE_LONGLONG, signed.
    LongLong,
    /// MYSQL_TYPE_VAR_STRING, utf8mb4.
    VarString,
    /// MYSQL_TYPE_DOUBLE (decimals not fixed).
    Double,
    /// What MariaDB sends for `LAST_INSERT_ID()`: LONGLONG(21), NOT NULL, UNSIGNED, BINARY.
    InsertIdFunction,
    /// For `ROW_COUNT()` and `FOUND_ROWS()`: LONGLONG(21), NOT NULL, BINARY.
    CountFunction,
    /// For `@@identity` and `@@last_insert_id`: LONGLONG(21), UNSIGNED, BINARY (nullable).
    InsertIdVariable,
}

/// A column of a built result set.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub kind: ColumnType,
}

/// Encodes one column definition (Protocol::ColumnDefinition41).
pub fn column_definition(c: &Column) -> BytesMut {
    let mut b = BytesMut::with_capacity(32 + c.name.len() * 2);
    put_lenenc_bytes(&mut b, b"def");
    for _ in 0..3 {
        put_lenenc_bytes(&mut b, b""); // schema, table, org_table
    }
    put_lenenc_bytes(&mut b, c.name.as_bytes());
    // An expression has no original column name; the server sends it empty.
    let expression =
        matches!(c.kind, ColumnType::InsertIdFunction | ColumnType::CountFunction | ColumnType::InsertIdVariable);
    put_lenenc_bytes(&mut b, if expression { b"" } else { c.name.as_bytes() });
    put_lenenc(&mut b, 0x0c);
    const NOT_NULL: u16 = 1;
    const UNSIGNED: u16 = 32;
    const BINARY: u16 = 128;
    let (charset, len, ty, flags): (u16, u32, u8, u16) = match c.kind {
        // BINARY_FLAG | NUM_FLAG
        ColumnType::LongLong => (63, 21, 0x08, 0x80 | 0x8000),
        ColumnType::VarString => (45, 1024, 0xFD, 0),
        ColumnType::Double => (63, 22, 0x05, 0x80 | 0x8000),
        ColumnType::InsertIdFunction => (63, 21, 0x08, NOT_NULL | UNSIGNED | BINARY),
        ColumnType::CountFunction => (63, 21, 0x08, NOT_NULL | BINARY),
        ColumnType::InsertIdVariable => (63, 21, 0x08, UNSIGNED | BINARY),
    };
    b.put_u16_le(charset);
    b.put_u32_le(len);
    b.put_u8(ty);
    b.put_u16_le(flags);
    // Decimals: 31 (0x1f) says "not fixed", as the server sends for a DOUBLE expression.
    b.put_u8(if matches!(c.kind, ColumnType::Double) { 0x1f } else { 0 });
    b.put_u16_le(0);
    b
}

/// Where built result sets and the answers they end a status in agree: the first packets and
/// the end, for a client's capabilities.
#[derive(Debug, Clone, Copy)]
pub struct Framing {
    pub status: u16,
    pub deprecate_eof: bool,
    pub session_track: bool,
}

/// The payloads of a complete text result set, in order.
pub fn text_result_set(columns: &[Column], rows: &[Vec<Option<String>>], f: Framing) -> Vec<BytesMut> {
    built(columns, rows, f, |row| {
        let mut b = BytesMut::new();
        for v in row {
            match v {
                Some(s) => put_lenenc_bytes(&mut b, s.as_bytes()),
                None => b.put_u8(0xFB),
            }
        }
        b
    })
}

/// The payloads of a complete binary-protocol result set (the answer to COM_STMT_EXECUTE)
/// whose columns are all 8-byte integers (`LongLong` and the function/variable kinds): each
/// value is sent as its 64-bit two's complement, little-endian, `None` as a NULL bit.
pub fn binary_int_result_set(columns: &[Column], rows: &[Vec<Option<u64>>], f: Framing) -> Vec<BytesMut> {
    built(columns, rows, f, |row| {
        // Header 0x00, then the NULL bitmap, whose first two bits are reserved.
        let mut bitmap = vec![0u8; (row.len() + 7 + 2) / 8];
        for (i, v) in row.iter().enumerate() {
            if v.is_none() {
                bitmap[(i + 2) / 8] |= 1 << ((i + 2) % 8);
            }
        }
        let mut b = BytesMut::with_capacity(1 + bitmap.len() + 8 * row.len());
        b.put_u8(0);
        b.put_slice(&bitmap);
        for v in row.iter().flatten() {
            b.put_u64_le(*v);
        }
        b
    })
}

/// A result set of `columns` whose rows `encode` writes.
fn built<T>(columns: &[Column], rows: &[Vec<T>], f: Framing, encode: impl Fn(&[T]) -> BytesMut) -> Vec<BytesMut> {
    let defs: Vec<Bytes> = columns.iter().map(|c| column_definition(c).freeze()).collect();
    let rows = rows.iter().map(|row| encode(row).freeze()).collect();
    raw_result_set(&defs, rows, f.status, f.deprecate_eof, f.session_track)
}

/// The payloads of a text result set from column definitions and rows already encoded (as a
/// server sent them, for merged scatter reads).
pub fn raw_result_set(
    defs: &[Bytes],
    rows: Vec<Bytes>,
    status: u16,
    deprecate_eof: bool,
    session_track: bool,
) -> Vec<BytesMut> {
    let mut out = result_set_head(defs, status, deprecate_eof);
    out.reserve(rows.len() + 1);
    out.extend(rows.iter().map(|r| BytesMut::from(&r[..])));
    out.push(result_set_end(status, deprecate_eof, session_track));
    out
}

/// A result set's packets before its rows: the column count, the definitions, and (without
/// DEPRECATE_EOF) the EOF that ends them. For answers whose rows follow as they arrive.
pub fn result_set_head(defs: &[Bytes], status: u16, deprecate_eof: bool) -> Vec<BytesMut> {
    let mut out = Vec::with_capacity(defs.len() + 2);
    let mut count = BytesMut::new();
    put_lenenc(&mut count, defs.len() as u64);
    out.push(count);
    out.extend(defs.iter().map(|d| BytesMut::from(&d[..])));
    if !deprecate_eof {
        out.push(BytesMut::from(&EofPacket { warnings: 0, status }.encode()[..]));
    }
    out
}

/// The packet that ends a result set's rows: an EOF, or with DEPRECATE_EOF an OK in EOF's
/// clothing (0xFE header).
pub fn result_set_end(status: u16, deprecate_eof: bool, session_track: bool) -> BytesMut {
    let eof = EofPacket { warnings: 0, status };
    if deprecate_eof {
        eof.to_ok().encode(session_track)
    } else {
        BytesMut::from(&eof.encode()[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::Frame;
    use crate::protocol::response::{Expect, ResponseScanner};

    /// The classic form must be accepted by the scanner that follows real servers; the
    /// DEPRECATE_EOF form has no EOF after the columns and ends with an 0xFE OK.
    #[test]
    fn built_result_set_has_the_shape_servers_send() {
        let cols = [
            Column { name: "LAST_INSERT_ID()".into(), kind: ColumnType::LongLong },
            Column { name: "s".into(), kind: ColumnType::VarString },
        ];
        let rows = vec![vec![Some("42".into()), None]];
        let classic = text_result_set(&cols, &rows, Framing { status: 2, deprecate_eof: false, session_track: true });
        let mut s = ResponseScanner::new(Expect::Results, false, true);
        for p in &classic {
            assert!(!s.is_done(), "ended early");
            s.feed(&Frame { seq: 0, payload: p.clone().freeze() }).unwrap();
        }
        assert!(s.is_done());
        assert_eq!(s.rows, 1);
        let dep = text_result_set(&cols, &rows, Framing { status: 2, deprecate_eof: true, session_track: true });
        assert_eq!(dep.len(), classic.len() - 1);
        assert_eq!(dep[3][..], [0x02, b'4', b'2', 0xFB]);
        assert_eq!(dep[4][0], 0xFE);
        assert!(dep[4].len() >= 7);
    }

    #[test]
    fn binary_rows_carry_a_null_bitmap_and_eight_byte_integers() {
        let cols = [
            Column { name: "a".into(), kind: ColumnType::CountFunction },
            Column { name: "b".into(), kind: ColumnType::InsertIdVariable },
        ];
        let rows = vec![vec![Some((-1i64) as u64), None]];
        let set = binary_int_result_set(&cols, &rows, Framing { status: 2, deprecate_eof: true, session_track: true });
        assert_eq!(set.len(), 1 + 2 + 1 + 1, "count, two definitions, the row, the end");
        // Column b (index 1) is NULL: bit 1 + 2 of the bitmap.
        assert_eq!(set[3][..], [0x00, 0b1000, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        // The scanner reads what backends send: the classic form.
        let classic =
            binary_int_result_set(&cols, &rows, Framing { status: 2, deprecate_eof: false, session_track: true });
        assert_eq!(classic[4], set[3]);
        let mut s = ResponseScanner::new(Expect::Results, false, true);
        for p in &classic {
            s.feed(&Frame { seq: 0, payload: p.clone().freeze() }).unwrap();
        }
        assert!(s.is_done());
        assert_eq!(s.rows, 1);
    }
}
