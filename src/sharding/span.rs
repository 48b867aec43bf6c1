//! Where in the statement text a piece of sqlparser's syntax tree came from: the planners cut
//! and rewrite the original text (key literals, VALUES rows, select-list items) rather than
//! re-print the tree, which would change what the server sees.

/// Byte offset of a 1-based (line, column-in-characters) location.
pub(super) fn byte_offset(sql: &str, loc: sqlparser::tokenizer::Location) -> Option<usize> {
    let line_start =
        if loc.line <= 1 { 0 } else { sql.match_indices('\n').nth(loc.line as usize - 2).map(|(i, _)| i + 1)? };
    let col = (loc.column as usize).checked_sub(1)?;
    let rest = &sql[line_start..];
    Some(line_start + rest.char_indices().nth(col).map_or(rest.len(), |(i, _)| i))
}
