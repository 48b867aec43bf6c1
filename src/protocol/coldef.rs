//! Column definitions and text-protocol rows as servers send them, decoded in one place: the
//! backend side reads them for Sluice's own queries, the scatter merge to compare values.

use super::error::ProtocolError;
use super::wire::Reader;

/// The parts of a ColumnDefinition41 that Sluice reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnDef<'a> {
    /// The column's name in the result (its alias, if any).
    pub name: &'a [u8],
    /// The column it came from (empty for an expression).
    pub org_name: &'a [u8],
    pub charset: u16,
    /// MYSQL_TYPE_* byte.
    pub column_type: u8,
    pub flags: u16,
}

/// Decodes a column definition packet.
pub fn column_def(def: &[u8]) -> Result<ColumnDef<'_>, ProtocolError> {
    let mut r = Reader::new(def);
    for what in ["catalog", "schema", "table", "org_table"] {
        r.lenenc_bytes(what)?;
    }
    let name = r.lenenc_bytes("name")?;
    let org_name = r.lenenc_bytes("org_name")?;
    // 0x0c, charset u16, length u32, type u8, flags u16, decimals u8
    let fixed = r.rest();
    let short = || ProtocolError::Malformed("short column definition");
    let at = |i: usize| fixed.get(i).copied().ok_or_else(short);
    Ok(ColumnDef {
        name,
        org_name,
        charset: u16::from_le_bytes([at(1)?, at(2)?]),
        column_type: at(7)?,
        flags: u16::from_le_bytes([at(8)?, at(9)?]),
    })
}

/// The values of a text-protocol row (`None` for NULL).
pub fn text_row(row: &[u8]) -> Result<Vec<Option<&[u8]>>, ProtocolError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < row.len() {
        if row[at] == 0xFB {
            at += 1;
            out.push(None);
            continue;
        }
        let mut r = Reader::new(&row[at..]);
        out.push(Some(r.lenenc_bytes("value")?));
        at = row.len() - r.remaining();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::resultset::{column_definition, Column, ColumnType};

    #[test]
    fn reads_back_what_sluice_encodes() {
        let def = column_definition(&Column { name: "LAST_INSERT_ID()".into(), kind: ColumnType::InsertIdFunction });
        let d = column_def(&def).unwrap();
        assert_eq!((d.name, d.org_name), (&b"LAST_INSERT_ID()"[..], &b""[..]));
        assert_eq!((d.charset, d.column_type, d.flags), (63, 8, 1 | 32 | 128));
        assert!(column_def(&def[..def.len() - 6]).is_err());
    }

    #[test]
    fn text_rows_keep_nulls_and_empty_strings_apart() {
        assert_eq!(text_row(&[0xFB, 0, 2, b'h', b'i']).unwrap(), vec![None, Some(&b""[..]), Some(&b"hi"[..])]);
        assert!(text_row(&[5, b'x']).is_err());
    }
}
