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

/// The statement id a COM_STMT_* payload names (bytes 1..5).
pub fn statement_id(payload: &[u8]) -> Option<u32> {
    payload.get(1..5).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The `flags` byte of a COM_STMT_EXECUTE.
pub fn execute_flags(payload: &[u8]) -> u8 {
    payload.get(5).copied().unwrap_or(0)
}

/// Rewrites a COM_STMT_EXECUTE for a backend: its statement id becomes `backend_id`, and the
/// parameter types are always present. `types` holds the types last sent for this statement
/// (2 bytes per parameter); it is updated when the client sends new ones.
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
    let values_at = if payload[bound_at] == 1 {
        let t = payload.get(bound_at + 1..bound_at + 1 + 2 * n).ok_or(ProtocolError::Malformed("truncated types"))?;
        *types = Some(t.to_vec());
        bound_at + 1 + 2 * n
    } else {
        bound_at + 1
    };
    let t = types.as_ref().ok_or(ProtocolError::Malformed("parameter types never sent"))?;
    out.push(1);
    out.extend_from_slice(t);
    out.extend_from_slice(&payload[values_at..]);
    Ok(out)
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
