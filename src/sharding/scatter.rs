//! Planning scatter-gather reads on one sharded table without its key: every shard of the
//! ring runs the statement (rewritten where combining needs it: `LIMIT offset+n`, no LIMIT
//! for groups, `AVG(x)` as `SUM(x), COUNT(x)`), and [`super::merge`] combines the answers —
//! only where that is exact: rows merged by ORDER BY with LIMIT/OFFSET after the merge;
//! COUNT, SUM, MIN, MAX and AVG with or without GROUP BY; DISTINCT. Anything else (HAVING,
//! other aggregates, expressions in ORDER BY or GROUP BY, columns mixed with aggregates) is
//! refused with a message naming the part, which the session sends as ERROR 1235. Results
//! carry column definitions a server sent, so drivers decode them as from one server.

use crate::sql::lex::{Lexer, Token};
use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, LimitClause, OrderByKind, OrderBySort, Query,
    Select, SelectItem, Spanned, Value,
};

/// A combined read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scatter {
    /// What each shard runs: the statement with `LIMIT offset+n` and no OFFSET (rows), or
    /// without LIMIT (groups: every shard's groups are needed).
    pub shard_sql: String,
    pub kind: Kind,
    /// ORDER BY, applied after combining.
    pub order: Vec<OrderKey>,
    /// When the shards run a rewritten select list (AVG split into SUM and COUNT): the
    /// original statement with `LIMIT 0`, run on one shard for the column definitions a
    /// server would send.
    pub defs_sql: Option<String>,
    pub limit: Option<u64>,
    pub offset: u64,
    /// Columns (lower case) for which each shard also returns `WEIGHT_STRING(column)` as a
    /// hidden trailing column, in this order: ORDER BY, GROUP BY and DISTINCT on text in a
    /// linguistic collation compare and group by those bytes, which are the server's own
    /// collation order (as Vitess does). The merge drops them before the client sees rows.
    pub weights: Vec<String>,
}

impl Scatter {
    /// True when the shards' rows need no merge (no ORDER BY, grouping, DISTINCT, aggregate
    /// or rewritten select list): they can go on to the client as they arrive, in shard
    /// order, with OFFSET and LIMIT counted across them, instead of being held.
    pub fn streams(&self) -> bool {
        self.kind == Kind::Rows && self.order.is_empty() && self.weights.is_empty() && self.defs_sql.is_none()
    }
}

/// How shard answers combine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Rows, concatenated.
    Rows,
    /// Rows combined by group: each select column is a group column (`None`) or an
    /// aggregate. No group column: one row (aggregates without GROUP BY). `sorted`: the
    /// server sorts by the group columns when no ORDER BY says otherwise (MariaDB's GROUP BY).
    Grouped { cols: Vec<Option<Agg>>, sorted: bool },
}

/// One ORDER BY item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderKey {
    pub column: ColumnRef,
    pub desc: bool,
}

/// A result column, by name (or alias) or by 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnRef {
    Name(String),
    Position(usize),
}

/// An aggregate in the select list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    Count,
    Sum,
    Min,
    Max,
    /// Asked of the shards as `SUM(x), COUNT(x)`; combined as the total sum over the total
    /// count, at the scale MariaDB gives AVG (the argument's scale + 4, rounded half up).
    Avg,
}

/// Plans a scatter read, or says what is not supported.
pub fn plan(sql: &str, q: &Query, sel: &Select) -> Result<Scatter, String> {
    if sel.having.is_some() || sel.into.is_some() || !q.locks.is_empty() || q.fetch.is_some() {
        return Err("HAVING, INTO or locking reads across shards".into());
    }
    // Only expressions whose per-row value each shard computes exactly (super::local).
    if let Some(w) = &sel.selection {
        super::local::check(w)?;
    }
    let group: Vec<String> = match &sel.group_by {
        GroupByExpr::Expressions(v, m) if m.is_empty() => v
            .iter()
            .map(|e| column_name(e).ok_or_else(|| "GROUP BY an expression across shards".to_string()))
            .collect::<Result<_, _>>()?,
        _ => return Err("GROUP BY ALL or WITH ROLLUP across shards".into()),
    };
    // GROUP BY may name a select-list alias: group by the column behind it.
    let group: Vec<String> = group.iter().map(|g| underlying_column(sel, g).unwrap_or_else(|| g.clone())).collect();
    let distinct = match &sel.distinct {
        None => false,
        Some(sqlparser::ast::Distinct::Distinct) => true,
        Some(_) => return Err("DISTINCT ON across shards".into()),
    };
    // Each select item: a plain column (its name) or an aggregate.
    let mut cols: Vec<Option<Agg>> = Vec::new();
    let mut avg_spans = Vec::new();
    let mut plain_names = Vec::new();
    for item in &sel.projection {
        let expr = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            _ if group.is_empty() && !distinct => {
                cols.push(None);
                continue;
            }
            _ => return Err("* with GROUP BY or DISTINCT across shards".into()),
        };
        match aggregate(expr)? {
            Some(_) => aggregate_args(expr).try_for_each(super::local::check)?,
            None => super::local::check(expr)?,
        }
        match aggregate(expr)? {
            Some(Agg::Avg) => {
                avg_spans.push(expr.span());
                cols.push(Some(Agg::Avg));
            }
            Some(a) => cols.push(Some(a)),
            None => {
                cols.push(None);
                plain_names.push(column_name(expr));
            }
        }
    }
    let aggs = cols.iter().filter(|c| c.is_some()).count();
    if distinct && aggs > 0 {
        return Err("DISTINCT with aggregates across shards".into());
    }
    if group.is_empty() && aggs > 0 && aggs < cols.len() {
        return Err("columns mixed with aggregates without GROUP BY across shards".into());
    }
    if !group.is_empty() {
        // Every plain column must be a group column and every group column selected, so
        // rows can be combined on what the shards return.
        let in_group = |n: &Option<String>| n.as_ref().is_some_and(|n| group.iter().any(|g| g.eq_ignore_ascii_case(n)));
        if !plain_names.iter().all(in_group) || plain_names.len() != group.len() {
            return Err(
                "GROUP BY columns that are not exactly the selected non-aggregate columns, across shards".into()
            );
        }
    }
    let mut order = Vec::new();
    if let Some(ob) = &q.order_by {
        let OrderByKind::Expressions(items) = &ob.kind else { return Err("ORDER BY ALL".into()) };
        for it in items {
            let column = match &it.expr {
                Expr::Identifier(i) => ColumnRef::Name(i.value.clone()),
                Expr::CompoundIdentifier(p) => ColumnRef::Name(p.last().map(|i| i.value.clone()).unwrap_or_default()),
                Expr::Value(v) => match &v.value {
                    Value::Number(n, _) => ColumnRef::Position(n.parse().map_err(|_| "ORDER BY position")?),
                    _ => return Err("ORDER BY a constant".into()),
                },
                _ => return Err("ORDER BY an expression across shards".into()),
            };
            if it.options.nulls_first.is_some() {
                return Err("NULLS FIRST/LAST".into());
            }
            let desc = matches!(it.options.sort, Some(OrderBySort::Desc));
            order.push(OrderKey { column, desc });
        }
    }
    let number = |e: &Expr| -> Result<u64, String> {
        match e {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => n.parse().map_err(|_| "LIMIT value".to_string()),
                _ => Err("LIMIT with a placeholder across shards".into()),
            },
            _ => Err("LIMIT with an expression".into()),
        }
    };
    let (limit, offset) = match &q.limit_clause {
        None => (None, 0),
        Some(LimitClause::LimitOffset { limit, offset, limit_by }) => {
            if !limit_by.is_empty() {
                return Err("LIMIT BY".into());
            }
            let l = limit.as_ref().map(number).transpose()?;
            let o = offset.as_ref().map(|o| number(&o.value)).transpose()?.unwrap_or(0);
            (l, o)
        }
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => (Some(number(limit)?), number(offset)?),
    };
    let grouped = !group.is_empty() || distinct || aggs > 0;
    // AVG(x) becomes SUM(x), COUNT(x) in what the shards run.
    let (base, defs_sql) = if avg_spans.is_empty() {
        (sql.trim_end().trim_end_matches(';').to_string(), None)
    } else {
        let mut text = String::new();
        let mut copied = 0;
        for span in &avg_spans {
            let Some(a) = super::span::byte_offset(sql, span.start) else {
                return Err("AVG Sluice cannot locate".into());
            };
            // The call runs from its name to the parenthesis that closes its argument list.
            let mut lx = Lexer::new(&sql[a..]);
            let (mut depth, mut open, mut end) = (0, None, None);
            while let Some((at, t)) = lx.next_spanned() {
                match t {
                    Token::Punct(b'(') => {
                        depth += 1;
                        open.get_or_insert(at);
                    }
                    Token::Punct(b')') => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(at);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let (Some(open), Some(close)) = (open, end) else {
                return Err("AVG Sluice cannot locate".into());
            };
            let (call, b) = (&sql[a..a + close + 1], a + close + 1);
            let arg = &call[open + 1..close];
            text.push_str(&sql[copied..a]);
            text.push_str(&format!("SUM({arg}), COUNT({arg})"));
            copied = b;
        }
        text.push_str(&sql[copied..]);
        let original = match q.limit_clause {
            Some(_) => before_limit(sql).ok_or("LIMIT Sluice cannot locate")?.to_string(),
            None => sql.trim_end().trim_end_matches(';').to_string(),
        };
        (text.trim_end().trim_end_matches(';').to_string(), Some(format!("{original} LIMIT 0")))
    };
    let shard_sql = match (limit, q.limit_clause.is_some()) {
        (_, false) => base,
        (_, true) if grouped && (!group.is_empty() || distinct) => {
            before_limit(&base).ok_or("LIMIT Sluice cannot locate")?.to_string()
        }
        (Some(n), true) => {
            format!("{} LIMIT {}", before_limit(&base).ok_or("LIMIT Sluice cannot locate")?, offset.saturating_add(n))
        }
        (None, true) => before_limit(&base).ok_or("LIMIT Sluice cannot locate")?.to_string(),
    };
    // Hidden weight columns for every column the merge orders or groups by (not with AVG,
    // whose rewritten select list the weights would have to follow).
    let mut weights: Vec<String> = Vec::new();
    if avg_spans.is_empty() {
        let mut named: Vec<String> = group.clone();
        if distinct {
            named.extend(plain_names.iter().flatten().cloned());
        }
        for k in &order {
            match &k.column {
                ColumnRef::Name(n) => named.extend(underlying_column(sel, n)),
                ColumnRef::Position(p) => {
                    if let Some(c) = p.checked_sub(1).and_then(|i| sel.projection.get(i)).and_then(item_column) {
                        named.push(c);
                    }
                }
            }
        }
        for n in named {
            let n = n.to_ascii_lowercase();
            if !weights.contains(&n) {
                weights.push(n);
            }
        }
    }
    let shard_sql = if weights.is_empty() { shard_sql } else { with_weights(&shard_sql, &weights)? };
    let kind = if grouped { Kind::Grouped { cols, sorted: !group.is_empty() } } else { Kind::Rows };
    Ok(Scatter { shard_sql, kind, order, limit, offset, defs_sql, weights })
}

/// The column a select item is, if it is one (`c`, `t.c`, `c AS x`).
fn item_column(item: &SelectItem) -> Option<String> {
    match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => column_name(e),
        _ => None,
    }
}

/// The column a GROUP BY / ORDER BY name refers to: the column behind a select-list alias,
/// or the name itself; `None` for an alias of something else (`COUNT(*) AS n`).
fn underlying_column(sel: &Select, name: &str) -> Option<String> {
    let aliased = sel.projection.iter().find_map(|item| match item {
        SelectItem::ExprWithAlias { expr, alias } if alias.value.eq_ignore_ascii_case(name) => Some(expr),
        _ => None,
    });
    match aliased {
        Some(expr) => column_name(expr),
        None => Some(name.to_string()),
    }
}

/// `shard_sql` with `, WEIGHT_STRING(RTRIM(`c`)) AS `__sluice_wN`` after the last select item,
/// that is before the top-level FROM (a scatter read always has one; syntax-tree spans do not
/// reliably cover whole select items, so the lexer finds it).
fn with_weights(shard_sql: &str, weights: &[String]) -> Result<String, String> {
    let mut depth = 0i32;
    let mut from = None;
    let mut lx = Lexer::new(shard_sql);
    while let Some((at, t)) = lx.next_spanned() {
        match t {
            Token::Punct(b'(') => depth += 1,
            Token::Punct(b')') => depth -= 1,
            Token::Word(w) if depth == 0 && w.eq_ignore_ascii_case("from") => {
                from = Some(at);
                break;
            }
            _ => {}
        }
    }
    let at = from.ok_or("a select list Sluice cannot locate")?;
    let mut out = String::with_capacity(shard_sql.len() + 48 * weights.len());
    out.push_str(shard_sql[..at].trim_end());
    for (i, w) in weights.iter().enumerate() {
        // RTRIM: MariaDB's collations below id 256 are PAD SPACE (trailing spaces do not
        // count in comparisons), while WEIGHT_STRING weighs them; the merge uses the weights
        // only for such collations.
        out.push_str(&format!(", WEIGHT_STRING(RTRIM(`{}`)) AS `__sluice_w{i}`", w.replace('`', "``")));
    }
    out.push(' ');
    out.push_str(&shard_sql[at..]);
    Ok(out)
}

/// The column an expression names (`c`, `t.c`), if it is one.
fn column_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(i) => Some(i.value.clone()),
        Expr::CompoundIdentifier(p) => p.last().map(|i| i.value.clone()),
        _ => None,
    }
}

/// `Some(agg)` for COUNT / SUM / MIN / MAX over one argument; `Err` for aggregates Sluice
/// cannot combine; `None` for anything else.
fn aggregate(e: &Expr) -> Result<Option<Agg>, String> {
    let Expr::Function(f) = e else {
        return Ok(None);
    };
    let name = f.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_ascii_lowercase()).unwrap_or_default();
    let agg = match name.as_str() {
        "count" => Agg::Count,
        "sum" => Agg::Sum,
        "min" => Agg::Min,
        "max" => Agg::Max,
        "avg" => Agg::Avg,
        "group_concat" | "std" | "stddev" | "variance" | "bit_and" | "bit_or" | "bit_xor" | "json_arrayagg"
        | "json_objectagg" | "stddev_pop" | "stddev_samp" | "var_pop" | "var_samp" => {
            return Err(format!("{} across shards", name.to_ascii_uppercase()))
        }
        _ => return Ok(None),
    };
    let FunctionArguments::List(list) = &f.args else { return Err("an aggregate without arguments".into()) };
    if list.duplicate_treatment.is_some() || list.args.len() != 1 || f.over.is_some() {
        return Err(format!("{}(DISTINCT ...) or a window across shards", name.to_ascii_uppercase()));
    }
    match (&list.args[0], agg) {
        (FunctionArg::Unnamed(FunctionArgExpr::Wildcard), Agg::Count) => Ok(Some(agg)),
        (FunctionArg::Unnamed(FunctionArgExpr::Expr(_)), _) => Ok(Some(agg)),
        _ => Err("an aggregate argument Sluice cannot combine".into()),
    }
}

/// The argument expressions of an aggregate call (none for `COUNT(*)`).
fn aggregate_args(e: &Expr) -> impl Iterator<Item = &Expr> {
    let args = match e {
        Expr::Function(f) => match &f.args {
            FunctionArguments::List(l) => l.args.as_slice(),
            _ => &[],
        },
        _ => &[],
    };
    args.iter().filter_map(|a| match a {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
        _ => None,
    })
}

/// The statement up to its top-level LIMIT (which must be its last clause).
fn before_limit(sql: &str) -> Option<&str> {
    let mut depth = 0i32;
    let mut at = None;
    let mut lx = Lexer::new(sql);
    let mut start = 0;
    while let Some(t) = lx.next() {
        match t {
            Token::Punct(b'(') => depth += 1,
            Token::Punct(b')') => depth -= 1,
            Token::Word(w) if depth == 0 && w.eq_ignore_ascii_case("limit") => at = Some(start),
            _ => {}
        }
        start = lx.offset();
    }
    at.map(|i| sql[..i].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_found_at_the_top_level_only() {
        assert_eq!(before_limit("SELECT a FROM t ORDER BY a LIMIT 5 OFFSET 2"), Some("SELECT a FROM t ORDER BY a"));
        assert_eq!(before_limit("SELECT a FROM t WHERE b IN (SELECT c FROM u LIMIT 1)"), None);
        assert_eq!(before_limit("SELECT 'limit' FROM t"), None);
    }
}
