//! Combining the shards' answers to a scatter read ([`super::scatter`]): rows sorted by
//! ORDER BY, groups and DISTINCT merged, aggregates combined exactly, LIMIT/OFFSET applied.
//! Values are compared only where byte-exact rules give MySQL's answer (decimal text,
//! floats, temporal text, binary strings); anything else is refused, never guessed.

use super::scatter::{Agg, ColumnRef, Kind, OrderKey, Scatter};
use bytes::Bytes;
use std::cmp::Ordering;

/// What one column definition says about how values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    /// Integers and DECIMAL: exact decimal comparison of the text.
    Decimal,
    /// FLOAT / DOUBLE.
    Float,
    /// DATE, DATETIME, TIMESTAMP, YEAR: the text compares in order.
    Text,
    /// Binary strings (collation 63): bytes.
    Bytes,
    /// Text in a linguistic collation: comparable only through the server's
    /// `WEIGHT_STRING` of it (a hidden column the shards return, see [`Scatter::weights`]).
    Collated,
    /// Linguistic collations, TIME, and the rest: not comparable here.
    No,
}

/// Column name and comparison class from a column definition packet.
fn column_meta(def: &[u8]) -> Option<(String, Compare)> {
    let d = crate::protocol::coldef::column_def(def).ok()?;
    let name = String::from_utf8_lossy(d.name).into_owned();
    let (charset, ty, flags) = (d.charset, d.column_type, d.flags);
    // ENUM and SET sort by their index, not their text.
    const ENUM_OR_SET: u16 = 256 | 2048;
    let cmp = match ty {
        1 | 2 | 3 | 8 | 9 | 0 | 246 => Compare::Decimal,
        4 | 5 => Compare::Float,
        7 | 10 | 12 | 13 => Compare::Text,
        15 | 253 | 254 | 249 | 250 | 251 | 252 if flags & ENUM_OR_SET != 0 => Compare::No,
        15 | 253 | 254 | 249 | 250 | 251 | 252 if charset == 63 => Compare::Bytes,
        // PAD SPACE collations (every MariaDB collation id below 256; the NO PAD ones start
        // at 1025), whose weights the shards send with trailing spaces trimmed.
        15 | 253 | 254 | 249 | 250 | 251 | 252 if charset < 256 => Compare::Collated,
        _ => Compare::No,
    };
    Some((name, cmp))
}

/// The original column name (`org_name`) of a column definition: what a select-list alias
/// stands for, and what [`Scatter::weights`] names.
fn org_name(def: &[u8]) -> Option<String> {
    let d = crate::protocol::coldef::column_def(def).ok()?;
    Some(String::from_utf8_lossy(d.org_name).into_owned())
}

/// The values of a text-protocol row (`None` for NULL).
fn row_values(row: &[u8]) -> Option<Vec<Option<&[u8]>>> {
    crate::protocol::coldef::text_row(row).ok()
}

/// Exact comparison of two decimal numbers written in text (`-12.50`, `7`).
fn cmp_decimal(a: &[u8], b: &[u8]) -> Option<Ordering> {
    let parse = |s: &[u8]| -> Option<(bool, Vec<u8>, Vec<u8>)> {
        let s = std::str::from_utf8(s).ok()?.trim();
        let (neg, s) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (i, f) = s.split_once('.').unwrap_or((s, ""));
        if !i.bytes().chain(f.bytes()).all(|c| c.is_ascii_digit()) {
            return None;
        }
        let i = i.trim_start_matches('0').as_bytes().to_vec();
        let f = f.trim_end_matches('0').as_bytes().to_vec();
        let zero = i.is_empty() && f.is_empty();
        Some((neg && !zero, i, f))
    };
    let (na, ia, fa) = parse(a)?;
    let (nb, ib, fb) = parse(b)?;
    let magnitude = ia.len().cmp(&ib.len()).then_with(|| ia.cmp(&ib)).then_with(|| fa.cmp(&fb));
    Some(match (na, nb) {
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, false) => magnitude,
        (true, true) => magnitude.reverse(),
    })
}

fn cmp_values(c: Compare, a: &[u8], b: &[u8]) -> Option<Ordering> {
    match c {
        Compare::Decimal => cmp_decimal(a, b),
        Compare::Float => {
            let p = |s: &[u8]| std::str::from_utf8(s).ok()?.trim().parse::<f64>().ok();
            p(a)?.partial_cmp(&p(b)?)
        }
        Compare::Text | Compare::Bytes => Some(a.cmp(b)),
        Compare::Collated | Compare::No => None,
    }
}

/// Adds decimal numbers written in text, exactly (up to 38 digits).
fn sum_decimal<'a>(values: impl Iterator<Item = &'a [u8]>) -> Option<String> {
    let mut scale = 0usize;
    let parsed: Vec<(i128, usize)> = values
        .map(|v| {
            let s = std::str::from_utf8(v).ok()?.trim();
            let (i, f) = s.split_once('.').unwrap_or((s, ""));
            scale = scale.max(f.len());
            let digits = format!("{i}{f}");
            Some((digits.parse::<i128>().ok()?, f.len()))
        })
        .collect::<Option<_>>()?;
    let mut total: i128 = 0;
    for (v, s) in parsed {
        total = total.checked_add(v.checked_mul(10i128.checked_pow((scale - s) as u32)?)?)?;
    }
    if scale == 0 {
        return Some(total.to_string());
    }
    let neg = total < 0;
    let digits = format!("{:0>width$}", total.unsigned_abs(), width = scale + 1);
    let (i, f) = digits.split_at(digits.len() - scale);
    Some(format!("{}{i}.{f}", if neg { "-" } else { "" }))
}

/// One shard's answer: raw column definitions and text rows.
#[derive(Debug, Clone, Default)]
pub struct ShardRows {
    pub defs: Vec<Bytes>,
    pub rows: Vec<Bytes>,
}

/// Combines the shards' answers; `Err` names what could not be combined. Also returns the
/// rows found, what an unsharded server's `FOUND_ROWS()` answers next: the rows the offset
/// skipped and the rows sent.
///
/// `out_defs` are the column definitions of the original statement when the shards ran a
/// rewritten one ([`Scatter::defs_sql`]); otherwise the first shard's are used.
pub fn merge(
    s: &Scatter,
    shards: Vec<ShardRows>,
    max_rows: usize,
    out_defs: Option<Vec<Bytes>>,
) -> Result<(ShardRows, u64), String> {
    let shard_defs = shards.first().map(|r| r.defs.clone()).unwrap_or_default();
    let read = |defs: &[Bytes]| -> Result<Vec<(String, Compare)>, String> {
        defs.iter()
            .map(|d| column_meta(d))
            .collect::<Option<_>>()
            .ok_or("a column definition Sluice cannot read".into())
    };
    let mut shard_metas = read(&shard_defs)?;
    let defs = out_defs.unwrap_or(shard_defs);
    let mut metas = read(&defs)?;
    // The trailing WEIGHT_STRING columns: each collated column they weigh compares by them.
    let hidden = s.weights.len();
    let visible = metas.len().checked_sub(hidden).ok_or("fewer columns than Sluice asked for")?;
    let weights_at: Vec<Option<usize>> = (0..metas.len())
        .map(|i| {
            let org = defs.get(i).and_then(|d| org_name(d)).unwrap_or_default();
            let w = s.weights.iter().position(|w| w.eq_ignore_ascii_case(&org)).map(|k| visible + k);
            w.filter(|_| i < visible && metas[i].1 == Compare::Collated)
        })
        .collect();
    for m in metas.iter_mut().skip(visible) {
        m.1 = Compare::Bytes;
    }
    // (The shards' own columns can outnumber the client's: AVG runs as SUM and COUNT.)
    let shard_visible = shard_metas.len().saturating_sub(hidden);
    for m in shard_metas.iter_mut().skip(shard_visible) {
        m.1 = Compare::Bytes;
    }
    let total: usize = shards.iter().map(|r| r.rows.len()).sum();
    if total > max_rows {
        return Err(too_many_rows(max_rows));
    }
    let mut rows: Vec<Bytes> = shards.into_iter().flat_map(|r| r.rows).collect();
    let mut order = s.order.clone();
    if let Kind::Grouped { cols, sorted } = &s.kind {
        rows = combine_groups(cols, &shard_metas, &weights_at, hidden, &rows)?;
        if *sorted && order.is_empty() {
            order = (0..cols.len())
                .filter(|&i| cols[i].is_none())
                .map(|i| OrderKey { column: ColumnRef::Position(i + 1), desc: false })
                .collect();
        }
    }
    if !order.is_empty() {
        rows = sort_rows(&order, &metas, &weights_at, rows)?;
    }
    let start = usize::try_from(s.offset).unwrap_or(usize::MAX).min(rows.len());
    // `LIMIT 95, 18446744073709551615` is MySQL's "every row from offset 95".
    let end =
        s.limit.map_or(rows.len(), |n| start.saturating_add(usize::try_from(n).unwrap_or(usize::MAX)).min(rows.len()));
    let mut rows = rows[start..end].to_vec();
    let mut defs = defs;
    if hidden > 0 {
        defs.truncate(visible);
        rows = rows
            .iter()
            .map(|r| without_trailing(r, visible))
            .collect::<Option<_>>()
            .ok_or("a row Sluice cannot read")?;
    }
    Ok((ShardRows { defs, rows }, end as u64))
}

/// A text row with only its first `keep` values.
fn without_trailing(row: &[u8], keep: usize) -> Option<Bytes> {
    let values = row_values(row)?;
    let mut b = bytes::BytesMut::with_capacity(row.len());
    for v in values.into_iter().take(keep) {
        match v {
            Some(v) => crate::protocol::wire::put_lenenc_bytes(&mut b, v),
            None => bytes::BufMut::put_u8(&mut b, 0xFB),
        }
    }
    Some(b.freeze())
}

/// What a scatter read over `[sharding] max_scatter_rows` is refused with.
pub fn too_many_rows(max_rows: usize) -> String {
    format!("a scatter read returning more than {max_rows} rows ([sharding] max_scatter_rows)")
}

/// What a scatter read over either cap is refused with.
pub fn over_budget(max_rows: usize, max_bytes: usize) -> String {
    format!(
        "a scatter read returning more than {max_rows} rows or {max_bytes} bytes ([sharding] max_scatter_rows, max_scatter_bytes)"
    )
}

fn not_comparable(what: &str, column: &str) -> String {
    format!("{what} column '{column}' across shards (text with a linguistic collation, TIME, or another type Sluice does not compare)")
}

/// Rows sorted by ORDER BY keys, stable (shard order among equals).
fn sort_rows(
    order: &[OrderKey],
    metas: &[(String, Compare)],
    weights_at: &[Option<usize>],
    rows: Vec<Bytes>,
) -> Result<Vec<Bytes>, String> {
    let mut keys = Vec::new();
    for k in order {
        let i = match &k.column {
            ColumnRef::Position(p) => p.checked_sub(1).filter(|&i| i < metas.len()),
            ColumnRef::Name(n) => metas.iter().position(|m| m.0.eq_ignore_ascii_case(n)),
        }
        .ok_or("ORDER BY a column that is not in the select list, across shards")?;
        match (metas[i].1, weights_at.get(i).copied().flatten()) {
            // Text in a linguistic collation: by the server's weight of it.
            (Compare::Collated, Some(w)) => keys.push((w, Compare::Bytes, k.desc)),
            (Compare::Collated | Compare::No, _) => return Err(not_comparable("ORDER BY", &metas[i].0)),
            (c, _) => keys.push((i, c, k.desc)),
        }
    }
    let decoded: Vec<Vec<Option<&[u8]>>> =
        rows.iter().map(|r| row_values(r)).collect::<Option<_>>().ok_or("a row Sluice cannot read")?;
    let mut idx: Vec<usize> = (0..rows.len()).collect();
    let mut bad = false;
    idx.sort_by(|&a, &b| {
        for &(i, c, desc) in &keys {
            let o = match (decoded[a].get(i).copied().flatten(), decoded[b].get(i).copied().flatten()) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) => cmp_values(c, x, y).unwrap_or_else(|| {
                    bad = true;
                    Ordering::Equal
                }),
            };
            let o = if desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    if bad {
        return Err("ORDER BY values Sluice cannot compare".into());
    }
    Ok(idx.into_iter().map(|i| rows[i].clone()).collect())
}

/// Combines rows that agree on every group column (`None` in `cols`): aggregates combine,
/// group values are kept. No group column: exactly one row, even from no rows.
fn combine_groups(
    cols: &[Option<Agg>],
    metas: &[(String, Compare)],
    weights_at: &[Option<usize>],
    hidden: usize,
    rows: &[Bytes],
) -> Result<Vec<Bytes>, String> {
    let decoded: Vec<Vec<Option<&[u8]>>> =
        rows.iter().map(|r| row_values(r)).collect::<Option<_>>().ok_or("a row Sluice cannot read")?;
    // Where each output column's values are in the shards' rows (AVG takes two: SUM, COUNT).
    let src: Vec<usize> = cols
        .iter()
        .scan(0, |j, c| {
            let at = *j;
            *j += if *c == Some(Agg::Avg) { 2 } else { 1 };
            Some(at)
        })
        .collect();
    let visible: usize = cols.iter().map(|c| if *c == Some(Agg::Avg) { 2 } else { 1 }).sum();
    let mut group_cols: Vec<usize> = Vec::new();
    // Where each group column's key bytes are: the value itself, or its weight.
    let mut key_cols: Vec<usize> = Vec::new();
    for i in (0..cols.len()).filter(|&i| cols[i].is_none()).map(|i| src[i]) {
        // Equal group values must have equal bytes: true for numbers, dates and binary
        // strings, and for the weights of text in a linguistic collation.
        let key = match (metas.get(i).map(|m| m.1), weights_at.get(i).copied().flatten()) {
            (Some(Compare::Collated), Some(w)) => w,
            (None | Some(Compare::Collated | Compare::No), _) => {
                return Err(not_comparable("GROUP BY / DISTINCT on", metas.get(i).map_or("?", |m| m.0.as_str())))
            }
            _ => i,
        };
        group_cols.push(i);
        key_cols.push(key);
    }
    type Key<'a> = Vec<Option<&'a [u8]>>;
    let mut groups: Vec<(Key<'_>, Vec<usize>)> = Vec::new();
    let mut index: std::collections::HashMap<Key<'_>, usize> = Default::default();
    for (r, row) in decoded.iter().enumerate() {
        let key: Vec<Option<&[u8]>> = key_cols.iter().map(|&i| row.get(i).copied().flatten()).collect();
        match index.get(&key) {
            Some(&g) => groups[g].1.push(r),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, vec![r]));
            }
        }
    }
    if group_cols.is_empty() && groups.is_empty() {
        groups.push((Vec::new(), Vec::new()));
    }
    let mut out = Vec::with_capacity(groups.len());
    for (_key, members) in groups {
        let mut b = bytes::BytesMut::new();
        // A group's shown values are its first row's (for text equal under the collation,
        // which spelling a server shows is not defined either).
        let first = members.first().map(|&r| &decoded[r]);
        for (o, col) in cols.iter().enumerate() {
            let i = src[o];
            let v: Option<Vec<u8>> = match col {
                None => first.and_then(|row| row.get(i).copied().flatten()).map(|v| v.to_vec()),
                Some(Agg::Avg) => {
                    let part = |j: usize| -> Vec<&[u8]> {
                        members.iter().filter_map(|&r| decoded[r].get(j).copied().flatten()).collect()
                    };
                    let c = metas.get(i).map_or(Compare::No, |m| m.1);
                    if c != Compare::Decimal {
                        return Err("AVG of a value that is not an integer or DECIMAL, across shards".into());
                    }
                    let sum = sum_decimal(part(i).into_iter());
                    let count = sum_decimal(part(i + 1).into_iter()).and_then(|n| n.parse::<i128>().ok()).unwrap_or(0);
                    match (sum, count) {
                        (_, 0) => None,
                        (Some(sum), n) => {
                            Some(avg_decimal(&sum, n).ok_or("an AVG Sluice cannot divide exactly")?.into_bytes())
                        }
                        (None, _) => return Err("an AVG Sluice cannot add exactly".into()),
                    }
                }
                Some(agg) => {
                    let vals: Vec<&[u8]> =
                        members.iter().filter_map(|&r| decoded[r].get(i).copied().flatten()).collect();
                    combine(*agg, &vals, metas.get(i).map_or(Compare::No, |m| m.1), metas.get(i).map_or("?", |m| &m.0))?
                }
            };
            match v {
                Some(v) => crate::protocol::wire::put_lenenc_bytes(&mut b, &v),
                None => bytes::BufMut::put_u8(&mut b, 0xFB),
            }
        }
        // The hidden weight columns travel on, for the sort and then to be dropped.
        for j in visible..visible + hidden {
            match first.and_then(|row| row.get(j).copied().flatten()) {
                Some(v) => crate::protocol::wire::put_lenenc_bytes(&mut b, v),
                None => bytes::BufMut::put_u8(&mut b, 0xFB),
            }
        }
        out.push(b.freeze());
    }
    Ok(out)
}

/// `sum / count` as MariaDB's AVG writes it: the sum's scale plus 4 digits, rounded half
/// away from zero.
fn avg_decimal(sum: &str, count: i128) -> Option<String> {
    let (i, f) = sum.split_once('.').unwrap_or((sum, ""));
    let scale = f.len() as u32 + 4;
    let scaled: i128 = format!("{i}{f}").parse().ok()?;
    // One extra digit to round on.
    let q = scaled.checked_mul(10i128.checked_pow(5)?)? / count;
    let rounded = if q >= 0 { (q + 5) / 10 } else { (q - 5) / 10 };
    let neg = rounded < 0;
    let digits = format!("{:0>width$}", rounded.unsigned_abs(), width = scale as usize + 1);
    let (ip, fp) = digits.split_at(digits.len() - scale as usize);
    Some(format!("{}{ip}.{fp}", if neg { "-" } else { "" }))
}

/// One aggregate from the shards' partial values (NULLs left out).
fn combine(agg: Agg, vals: &[&[u8]], c: Compare, column: &str) -> Result<Option<Vec<u8>>, String> {
    Ok(match agg {
        Agg::Avg => return Err("AVG combined without its SUM and COUNT".into()),
        Agg::Count | Agg::Sum if c == Compare::Float => return Err("SUM of floating-point values across shards".into()),
        Agg::Count => Some(sum_decimal(vals.iter().copied()).unwrap_or_else(|| "0".into()).into_bytes()),
        Agg::Sum if vals.is_empty() => None,
        Agg::Sum => Some(sum_decimal(vals.iter().copied()).ok_or("a SUM Sluice cannot add exactly")?.into_bytes()),
        Agg::Min | Agg::Max => {
            if matches!(c, Compare::No | Compare::Collated) && vals.len() > 1 {
                return Err(not_comparable(if agg == Agg::Min { "MIN of" } else { "MAX of" }, column));
            }
            let mut best: Option<&[u8]> = None;
            for v in vals {
                let better = match best {
                    None => true,
                    Some(b) => {
                        let o = cmp_values(c, v, b).ok_or("MIN/MAX values Sluice cannot compare")?;
                        if agg == Agg::Min {
                            o == Ordering::Less
                        } else {
                            o == Ordering::Greater
                        }
                    }
                };
                if better {
                    best = Some(v);
                }
            }
            best.map(|b| b.to_vec())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn decimals_compare_and_add_exactly() {
        assert_eq!(cmp_decimal(b"10", b"9"), Some(Greater));
        assert_eq!(cmp_decimal(b"-10", b"-9"), Some(Less));
        assert_eq!(cmp_decimal(b"1.50", b"1.5"), Some(Equal));
        assert_eq!(cmp_decimal(b"-0.00", b"0"), Some(Equal));
        assert_eq!(cmp_decimal(b"0.05", b"0.5"), Some(Less));
        assert_eq!(cmp_decimal(b"abc", b"1"), None);
        let v: [&[u8]; 3] = [b"1.25", b"-3.5", b"10"];
        assert_eq!(sum_decimal(v.into_iter()).as_deref(), Some("7.75"));
        let v: [&[u8]; 2] = [b"-0.25", b"0.05"];
        assert_eq!(sum_decimal(v.into_iter()).as_deref(), Some("-0.20"));
        let v: [&[u8]; 2] = [b"40", b"2"];
        assert_eq!(sum_decimal(v.into_iter()).as_deref(), Some("42"));
        assert_eq!(avg_decimal("10", 3).as_deref(), Some("3.3333"));
        assert_eq!(avg_decimal("20", 3).as_deref(), Some("6.6667"));
        assert_eq!(avg_decimal("-20", 3).as_deref(), Some("-6.6667"));
        assert_eq!(avg_decimal("1.50", 4).as_deref(), Some("0.375000"));
        assert_eq!(avg_decimal("0", 7).as_deref(), Some("0.0000"));
    }
}
