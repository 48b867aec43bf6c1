//! COM_STMT_EXECUTE payloads, rewritten for the backend connection a statement lands on.
//!
//! Layout: `0x17, stmt_id u32, flags u8, iterations u32`, then, when the statement has
//! parameters, `null_bitmap[(n+7)/8], new_params_bound u8, [types 2n if bound], values`.
//! A client sends the parameter types once (bound = 1) and may omit them later; a backend
//! connection that never saw them would misread the values. So Sluice remembers the types and
//! always sends them.

use super::error::ProtocolError;

/// `flags` bits that open a cursor (CURSOR_TYPE_READ_ONLY and friends).
pub const CURSOR_FLAGS: u8 = 0x07;

/// Rewrites a COM_STMT_EXECUTE for a backend: its statement id becomes `backend_id`, and the
/// parameter types are always present. `types` holds the types last sent for this statement
/// (2 bytes per parameter); it is updated when the client sends new ones.
/// Remembers the parameter types a COM_STMT_EXECUTE binds anew (`new_params_bound_flag` = 1):
/// later executes may omit them, and whichever connection runs those needs them. Returns where
/// the values start.
pub fn learn_types(payload: &[u8], params: u16, types: &mut Option<Vec<u8>>) -> Result<usize, ProtocolError> {
    let n = params as usize;
    let bound_at = 10 + n.div_ceil(8);
    match payload.get(bound_at) {
        None if n == 0 => Ok(payload.len().min(10)),
        None => Err(ProtocolError::Malformed("COM_STMT_EXECUTE without parameter block")),
        Some(1) => {
            let t =
                payload.get(bound_at + 1..bound_at + 1 + 2 * n).ok_or(ProtocolError::Malformed("truncated types"))?;
            *types = Some(t.to_vec());
            Ok(bound_at + 1 + 2 * n)
        }
        Some(_) => Ok(bound_at + 1),
    }
}

pub fn rewrite_execute(
    payload: &[u8],
    params: u16,
    backend_id: u32,
    types: &mut Option<Vec<u8>>,
) -> Result<Vec<u8>, ProtocolError> {
    if payload.len() < 10 {
        return Err(ProtocolError::Malformed("short COM_STMT_EXECUTE"));
    }
    let mut out = Vec::with_capacity(payload.len() + 2 * params as usize + 1);
    out.push(payload[0]);
    out.extend_from_slice(&backend_id.to_le_bytes());
    out.extend_from_slice(&payload[5..10]);
    if params == 0 {
        out.extend_from_slice(&payload[10..]);
        return Ok(out);
    }
    let n = params as usize;
    let bitmap_end = 10 + n.div_ceil(8);
    let bound_at = bitmap_end;
    if payload.len() <= bound_at {
        return Err(ProtocolError::Malformed("COM_STMT_EXECUTE without parameter block"));
    }
    out.extend_from_slice(&payload[10..bitmap_end]);
    let values_at = learn_types(payload, params, types)?;
    let t = types.as_ref().ok_or(ProtocolError::Malformed("parameter types never sent"))?;
    out.push(1);
    out.extend_from_slice(t);
    out.extend_from_slice(&payload[values_at..]);
    Ok(out)
}

/// A bound parameter's value, as far as routing needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    Null,
    Int(i128),
    Bytes(Vec<u8>),
    /// A type routing does not use (floating point, temporal).
    Other,
}

/// True when [`rewrite_execute`] would accept `payload`: the header is there and, with
/// parameters, so are their types (sent now or `remembered`).
pub fn execute_is_readable(payload: &[u8], params: u16, remembered: Option<&[u8]>) -> bool {
    let bound_at = 10 + (params as usize).div_ceil(8);
    match payload.get(bound_at) {
        _ if payload.len() < 10 => false,
        _ if params == 0 => true,
        None => false,
        Some(1) => payload.len() >= bound_at + 1 + 2 * params as usize,
        Some(_) => remembered.is_some(),
    }
}

/// The value of parameter `index` in a COM_STMT_EXECUTE as the client sent it, read with the
/// types it sends or, when it omits them, the `remembered` ones. `None` when the payload is
/// malformed or the value was sent as long data.
pub fn param_value(payload: &[u8], params: u16, remembered: Option<&[u8]>, index: usize) -> Option<ParamValue> {
    let n = params as usize;
    if index >= n {
        return None;
    }
    let bitmap = payload.get(10..10 + n.div_ceil(8))?;
    let is_null = |i: usize| bitmap[i / 8] & (1 << (i % 8)) != 0;
    let bound_at = 10 + n.div_ceil(8);
    let (types, mut at) = match *payload.get(bound_at)? {
        1 => (payload.get(bound_at + 1..bound_at + 1 + 2 * n)?, bound_at + 1 + 2 * n),
        _ => (remembered.filter(|t| t.len() == 2 * n)?, bound_at + 1),
    };
    for i in 0..=index {
        if is_null(i) {
            if i == index {
                return Some(ParamValue::Null);
            }
            continue;
        }
        let (t, unsigned) = (types[2 * i], types[2 * i + 1] & 0x80 != 0);
        let fixed = |len: usize| payload.get(at..at + len);
        let (value, len) = match t {
            1 => (
                fixed(1).map(|b| if unsigned { i128::from(b[0]) } else { i128::from(b[0] as i8) }).map(ParamValue::Int),
                1,
            ),
            2 | 13 => (
                fixed(2).map(|b| {
                    let v = u16::from_le_bytes([b[0], b[1]]);
                    ParamValue::Int(if unsigned { i128::from(v) } else { i128::from(v as i16) })
                }),
                2,
            ),
            3 | 9 => (
                fixed(4).map(|b| {
                    let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    ParamValue::Int(if unsigned { i128::from(v) } else { i128::from(v as i32) })
                }),
                4,
            ),
            8 => (
                fixed(8).map(|b| {
                    let v = u64::from_le_bytes(b.try_into().expect("8 bytes"));
                    ParamValue::Int(if unsigned { i128::from(v) } else { i128::from(v as i64) })
                }),
                8,
            ),
            4 => (Some(ParamValue::Other), 4),
            5 => (Some(ParamValue::Other), 8),
            6 => (Some(ParamValue::Null), 0),
            7 | 10 | 11 | 12 => (Some(ParamValue::Other), 1 + *payload.get(at)? as usize),
            _ => {
                // Strings, decimals, blobs: length-encoded.
                let mut r = super::wire::Reader::new(payload.get(at..)?);
                let bytes = r.lenenc_bytes("parameter").ok()?;
                let consumed = payload.len() - at - r.remaining();
                (Some(ParamValue::Bytes(bytes.to_vec())), consumed)
            }
        };
        if i == index {
            return value;
        }
        at += len;
    }
    None
}

/// Rewrites the statement id of COM_STMT_FETCH / RESET / CLOSE / SEND_LONG_DATA.
pub fn with_statement_id(payload: &[u8], id: u32) -> Vec<u8> {
    let mut out = payload.to_vec();
    if out.len() >= 5 {
        out[1..5].copy_from_slice(&id.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statement id a COM_STMT_* payload names (bytes 1..5).
    fn statement_id(payload: &[u8]) -> Option<u32> {
        payload.get(1..5).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Two parameters (LONGLONG, VAR_STRING), first with types, then without.
    #[test]
    fn types_are_remembered_and_always_sent() {
        let mut types = None;
        let with = [
            0x17, 9, 0, 0, 0, 0, 1, 0, 0, 0, // header: id 9, no cursor, 1 iteration
            0b00, 1, 8, 0, 253, 0, // bitmap, bound, types
            42, 0, 0, 0, 0, 0, 0, 0, 1, b'x', // values
        ];
        let out = rewrite_execute(&with, 2, 77, &mut types).unwrap();
        assert_eq!(statement_id(&out), Some(77));
        assert_eq!(&out[5..], &with[5..]);
        assert_eq!(types.as_deref(), Some(&[8, 0, 253, 0][..]));
        let without = [0x17, 9, 0, 0, 0, 0, 1, 0, 0, 0, 0b00, 0, 43, 0, 0, 0, 0, 0, 0, 0, 1, b'y'];
        let out = rewrite_execute(&without, 2, 78, &mut types).unwrap();
        assert_eq!(statement_id(&out), Some(78));
        assert_eq!(&out[10..16], &[0b00, 1, 8, 0, 253, 0]);
        assert_eq!(&out[16..], &without[12..]);
    }

    #[test]
    fn parameter_values_are_found_past_others_and_nulls() {
        // 4 parameters: NULL, VAR_STRING "ab", LONGLONG unsigned 7, TINY -2.
        let p = [
            0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, // header
            0b0001, 1, 6, 0, 253, 0, 8, 0x80, 1, 0, // bitmap (param 0 null), bound, types
            2, b'a', b'b', 7, 0, 0, 0, 0, 0, 0, 0, 0xFE, // values
        ];
        assert_eq!(param_value(&p, 4, None, 0), Some(ParamValue::Null));
        assert_eq!(param_value(&p, 4, None, 1), Some(ParamValue::Bytes(b"ab".to_vec())));
        assert_eq!(param_value(&p, 4, None, 2), Some(ParamValue::Int(7)));
        assert_eq!(param_value(&p, 4, None, 3), Some(ParamValue::Int(-2)));
        assert_eq!(param_value(&p, 4, None, 4), None);
        assert_eq!(param_value(&p[..20], 4, None, 3), None);
        // Types omitted (bound = 0): the remembered ones are used.
        let mut unbound = p[..11].to_vec();
        unbound.push(0);
        unbound.extend_from_slice(&p[20..]);
        assert_eq!(param_value(&unbound, 4, Some(&p[12..20]), 2), Some(ParamValue::Int(7)));
        assert_eq!(param_value(&unbound, 4, None, 2), None);
        assert!(execute_is_readable(&p, 4, None) && execute_is_readable(&unbound, 4, Some(&p[12..20])));
        assert!(!execute_is_readable(&unbound, 4, None) && !execute_is_readable(&p[..6], 0, None));
    }

    #[test]
    fn no_params_and_malformed() {
        let mut types = None;
        let p = [0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0];
        assert_eq!(rewrite_execute(&p, 0, 5, &mut types).unwrap()[1..5], 5u32.to_le_bytes());
        assert!(rewrite_execute(&p[..6], 0, 5, &mut types).is_err());
        assert!(rewrite_execute(&p, 1, 5, &mut types).is_err());
        // Types never sent: refused rather than guessed.
        let q = [0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0];
        assert!(rewrite_execute(&q, 1, 5, &mut types).is_err());
        assert_eq!(with_statement_id(&[0x19, 1, 0, 0, 0], 7), vec![0x19, 7, 0, 0, 0]);
    }
}
