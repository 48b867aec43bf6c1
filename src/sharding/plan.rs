//! Where a statement on sharded tables goes: found in its syntax tree (sqlparser, MySQL
//! dialect), parsed only for statements that mention a sharded table.
//!
//! The key is taken from `key = literal`, `literal = key` and `key IN (literals)` in the
//! top-level conjunction of the WHERE clause (and of inner-join ON clauses), from an INSERT's
//! VALUES rows, or from a `?` placeholder (decided at execute). Several sharded tables may
//! be joined only when their keys are equal to each other (`o.user_id = e.user_id`) and one
//! of them to literals, so every row involved is on one shard. Anything else that would need
//! more than one shard is refused with a message naming what is unsupported, never answered
//! from one shard.

use super::ring::KeyValue;
use super::span::byte_offset;
use super::Sharding;
use sqlparser::ast::{
    BinaryOperator, Expr, JoinConstraint, JoinOperator, ObjectName, ObjectType, SetExpr, Statement, TableFactor,
    TableObject, TableWithJoins, UnaryOperator, Value,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use std::collections::BTreeSet;

/// Where a statement goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Mentions no sharded table (a column or string that only looked like one).
    Default,
    /// One shard: index in the ring's list.
    Shard(usize),
    /// The key is the `n`th `?` of the statement (0-based): decided per execute.
    Param(usize),
    /// A multi-row INSERT whose rows live on several shards: one INSERT per shard.
    Split(Vec<(usize, String)>),
    /// Every shard of the ring: DDL, or (with `allow_scatter_writes`) a write without key.
    All { ddl: bool },
    /// A read on one sharded table that needs every shard: run everywhere, combined.
    Scatter(super::scatter::Scatter),
    /// Refused; the message says what is not supported.
    Refuse(String),
}

/// A key value as written, or a placeholder (its byte offset in the SQL).
#[derive(Debug, Clone)]
enum Lit {
    /// A key value and the byte offset of its literal (None when negated: not one token).
    Key(KeyValue, Option<usize>),
    Placeholder(usize),
}

/// Plans one statement.
pub fn plan(sh: &Sharding, sql: &str) -> Target {
    plan_keyed(sh, sql).0
}

/// [`plan`], and for a one-shard target the byte offsets of the key literals that decided it
/// (`None` for a literal that is not one token, such as `-5`): what the plan cache needs to
/// decide the next statement of the same shape without parsing.
pub fn plan_keyed(sh: &Sharding, sql: &str) -> (Target, Vec<Option<usize>>) {
    let mut keys = Vec::new();
    let t = plan_inner(sh, sql, &mut keys);
    (t, keys)
}

fn plan_inner(sh: &Sharding, sql: &str, keys: &mut Vec<Option<usize>>) -> Target {
    if sql.len() > crate::sql::MAX_PARSE_BYTES {
        return Target::Refuse(format!(
            "a statement on a sharded table longer than {} bytes (split it into smaller statements)",
            crate::sql::MAX_PARSE_BYTES
        ));
    }
    let stmts = match Parser::parse_sql(&MySqlDialect {}, sql) {
        Ok(s) => s,
        Err(e) => return Target::Refuse(format!("statement on a sharded table that Sluice cannot parse ({e})")),
    };
    let [stmt] = stmts.as_slice() else {
        return Target::Refuse("several statements in one query on sharded tables".into());
    };
    let tables = top_level_tables(stmt);
    let sharded: BTreeSet<&String> = tables.iter().filter(|t| sh.is_sharded(t)).collect();
    let Some(first) = sharded.first() else {
        // A sharded table named somewhere Sluice does not look (a subquery, say) is refused;
        // a word that only looks like one (a column, an alias) is not a table.
        return match nested_select(sql) {
            true => Target::Refuse("subqueries on sharded tables".into()),
            false => Target::Default,
        };
    };
    if let Some(other) = tables.iter().find(|t| !sh.is_sharded(t)) {
        return Target::Refuse(format!("a statement mixing sharded table '{first}' with unsharded table '{other}'"));
    }
    if nested_select(sql) {
        return Target::Refuse(format!("subqueries in a statement on sharded table '{first}'"));
    }
    match stmt {
        Statement::CreateTable(_)
        | Statement::AlterTable(_)
        | Statement::Truncate(_)
        | Statement::CreateIndex(_)
        | Statement::Drop { object_type: ObjectType::Table | ObjectType::Index, .. } => Target::All { ddl: true },
        Statement::Query(q) => match q.body.as_ref() {
            SetExpr::Select(sel) if q.with.is_none() => {
                match one_shard(sh, sql, &sel.from, sel.selection.as_ref(), "a read", keys) {
                    // One table, no key (or keys on several shards): every shard filters its own rows.
                    Target::Refuse(_) if sel.from.len() == 1 && sel.from[0].joins.is_empty() => {
                        match super::scatter::plan(sql, q, sel) {
                            Ok(s) => Target::Scatter(s),
                            Err(what) => Target::Refuse(what),
                        }
                    }
                    t => t,
                }
            }
            _ => Target::Refuse(format!("UNION, WITH or nested queries on sharded table '{first}'")),
        },
        Statement::Insert(ins) => insert(sh, sql, ins, keys),
        Statement::Update(u) => {
            write_target(sh, sql, std::slice::from_ref(&u.table), u.selection.as_ref(), "an UPDATE", keys)
        }
        Statement::Delete(d) => {
            let from = match &d.from {
                sqlparser::ast::FromTable::WithFromKeyword(f) | sqlparser::ast::FromTable::WithoutKeyword(f) => f,
            };
            write_target(sh, sql, from, d.selection.as_ref(), "a DELETE", keys)
        }
        _ => Target::Refuse(format!("this kind of statement on sharded table '{first}'")),
    }
}

/// The tables a statement names at its top level (FROM and JOIN, INSERT INTO, UPDATE, DELETE,
/// DDL), lower-case.
/// Whether a statement (with no sharded table) may read or write any table: one named at its
/// top level, or any UNION / subquery, which Sluice does not look into. `None`: it does not
/// parse.
pub fn may_name_tables(sql: &str) -> Option<bool> {
    if sql.len() > crate::sql::MAX_PARSE_BYTES {
        return None;
    }
    let stmts = Parser::parse_sql(&MySqlDialect {}, sql).ok()?;
    let nested = |s: &Statement| matches!(s, Statement::Query(q) if !matches!(q.body.as_ref(), SetExpr::Select(_)));
    Some(nested_select(sql) || stmts.iter().any(|s| nested(s) || !top_level_tables(s).is_empty()))
}

fn top_level_tables(stmt: &Statement) -> Vec<String> {
    let from = |f: &[TableWithJoins]| -> Vec<String> {
        f.iter()
            .flat_map(|twj| std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)))
            .filter_map(|tf| match tf {
                TableFactor::Table { name, .. } => Some(table_name(name)),
                _ => None,
            })
            .collect()
    };
    match stmt {
        Statement::Query(q) => match q.body.as_ref() {
            SetExpr::Select(sel) => from(&sel.from),
            _ => Vec::new(),
        },
        Statement::Insert(i) => match &i.table {
            TableObject::TableName(n) => vec![table_name(n)],
            _ => Vec::new(),
        },
        Statement::Update(u) => from(std::slice::from_ref(&u.table)),
        Statement::Delete(d) => match &d.from {
            sqlparser::ast::FromTable::WithFromKeyword(f) | sqlparser::ast::FromTable::WithoutKeyword(f) => from(f),
        },
        Statement::CreateTable(c) => vec![table_name(&c.name)],
        Statement::AlterTable(a) => vec![table_name(&a.name)],
        Statement::Drop { names, .. } => names.iter().map(table_name).collect(),
        Statement::Truncate(t) => t.table_names.iter().map(|t| table_name(&t.name)).collect(),
        Statement::CreateIndex(c) => vec![table_name(&c.table_name)],
        _ => Vec::new(),
    }
}

/// True when the statement contains a SELECT other than its first word: a subquery,
/// `INSERT ... SELECT`, a UNION.
fn nested_select(sql: &str) -> bool {
    crate::sql::lex::Lexer::new(sql)
        .enumerate()
        .any(|(i, t)| i > 0 && matches!(t, crate::sql::lex::Token::Word(w) if w.eq_ignore_ascii_case("select")))
}

/// An UPDATE or DELETE: its shard, or every shard when the key is absent and scatter writes
/// are allowed.
fn write_target(
    sh: &Sharding,
    sql: &str,
    from: &[TableWithJoins],
    wh: Option<&Expr>,
    what: &str,
    keys: &mut Vec<Option<usize>>,
) -> Target {
    match one_shard(sh, sql, from, wh, what, keys) {
        Target::Refuse(_) if sh.allow_scatter_writes && !has_key_term(sh, wh) => Target::All { ddl: false },
        t => t,
    }
}

fn has_key_term(sh: &Sharding, wh: Option<&Expr>) -> bool {
    let mut terms = Vec::new();
    if let Some(w) = wh {
        conjuncts(w, &mut terms);
    }
    terms.iter().any(|t| key_of(sh, t).is_some())
}

/// The last part of a (possibly qualified) table name, lower-cased.
fn table_name(name: &ObjectName) -> String {
    name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_ascii_lowercase()).unwrap_or_default()
}

/// Splits a conjunction into its terms (through parentheses).
fn conjuncts<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        Expr::Nested(inner) => conjuncts(inner, out),
        other => out.push(other),
    }
}

/// `Some(qualifier)` when `e` is the key column (`user_id`, `o.user_id`, `db.o.user_id`).
fn key_of<'e>(sh: &Sharding, e: &'e Expr) -> Option<Option<&'e str>> {
    match e {
        Expr::Identifier(i) if i.value.eq_ignore_ascii_case(&sh.key) => Some(None),
        Expr::CompoundIdentifier(parts) if parts.last().is_some_and(|i| i.value.eq_ignore_ascii_case(&sh.key)) => {
            Some(parts.len().checked_sub(2).map(|k| parts[k].value.as_str()))
        }
        Expr::Nested(inner) => key_of(sh, inner),
        _ => None,
    }
}

/// A literal usable as a key value.
fn literal(sql: &str, e: &Expr) -> Option<Lit> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => {
                n.parse::<i128>().ok().map(|i| Lit::Key(KeyValue::Int(i), byte_offset(sql, v.span.start)))
            }
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                Some(Lit::Key(KeyValue::Bytes(s.as_bytes().to_vec()), byte_offset(sql, v.span.start)))
            }
            Value::Placeholder(p) if p == "?" => byte_offset(sql, v.span.start).map(Lit::Placeholder),
            _ => None,
        },
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => match literal(sql, expr)? {
            Lit::Key(KeyValue::Int(i), _) => Some(Lit::Key(KeyValue::Int(-i), None)),
            _ => None,
        },
        Expr::Nested(inner) => literal(sql, inner),
        _ => None,
    }
}

/// The placeholder index of the `?` at byte `at`: how many `?` the lexer sees before it.
fn placeholder_index(sql: &str, at: usize) -> usize {
    let mut lx = crate::sql::lex::Lexer::new(sql);
    let mut n = 0;
    while let Some(t) = lx.next() {
        if lx.offset() > at {
            break;
        }
        if t == crate::sql::lex::Token::Punct(b'?') {
            n += 1;
        }
    }
    n
}

/// For a SELECT / UPDATE / DELETE: the one shard every sharded table reference is pinned to.
fn one_shard(
    sh: &Sharding,
    sql: &str,
    from: &[TableWithJoins],
    wh: Option<&Expr>,
    what: &str,
    keys: &mut Vec<Option<usize>>,
) -> Target {
    // Sharded table references, by the name the statement uses for them.
    let mut refs: Vec<(String, String)> = Vec::new(); // (alias-or-name, table)
    let mut terms: Vec<&Expr> = Vec::new();
    if let Some(w) = wh {
        conjuncts(w, &mut terms);
    }
    for twj in from {
        let mut factors = vec![&twj.relation];
        for j in &twj.joins {
            factors.push(&j.relation);
            match &j.join_operator {
                JoinOperator::Join(JoinConstraint::On(e)) | JoinOperator::Inner(JoinConstraint::On(e)) => {
                    conjuncts(e, &mut terms)
                }
                JoinOperator::Join(_) | JoinOperator::Inner(_) => {}
                _ => {
                    if matches!(&j.relation, TableFactor::Table { name, .. } if sh.is_sharded(&table_name(name))) {
                        return Target::Refuse("outer joins of sharded tables".into());
                    }
                }
            }
        }
        for f in factors {
            match f {
                TableFactor::Table { name, alias, .. } => {
                    let t = table_name(name);
                    if sh.is_sharded(&t) {
                        let a = alias.as_ref().map_or(t.clone(), |a| a.name.value.to_ascii_lowercase());
                        refs.push((a, t));
                    }
                }
                _ => return Target::Refuse("derived tables with sharded tables".into()),
            }
        }
    }
    if refs.is_empty() {
        return Target::Refuse(format!("{what} on a sharded table in a subquery"));
    }
    // Union-find over references: tied together by key equality.
    let mut group: Vec<usize> = (0..refs.len()).collect();
    fn find(g: &mut [usize], i: usize) -> usize {
        let mut r = i;
        while g[r] != r {
            r = g[r];
        }
        g[i] = r;
        r
    }
    let which = |q: Option<&str>| -> Option<usize> {
        match q {
            Some(q) => refs.iter().position(|(a, _)| a.eq_ignore_ascii_case(q)),
            None if refs.len() == 1 => Some(0),
            None => None,
        }
    };
    let mut values: Vec<(usize, Vec<Lit>)> = Vec::new();
    for t in &terms {
        match t {
            Expr::BinaryOp { left, op: BinaryOperator::Eq, right } => match (key_of(sh, left), key_of(sh, right)) {
                (Some(a), Some(b)) => {
                    if let (Some(a), Some(b)) = (which(a), which(b)) {
                        let (ra, rb) = (find(&mut group, a), find(&mut group, b));
                        group[ra] = rb;
                    }
                }
                (Some(k), None) | (None, Some(k)) => {
                    let other = if key_of(sh, left).is_some() { right } else { left };
                    if let (Some(r), Some(l)) = (which(k), literal(sql, other)) {
                        values.push((r, vec![l]));
                    }
                }
                _ => {}
            },
            Expr::In { expr, target: sqlparser::ast::InTarget::List(list), negated: false, .. } => {
                if let Some(r) = key_of(sh, expr).and_then(which) {
                    let lits: Option<Vec<Lit>> = list.iter().map(|e| literal(sql, e)).collect();
                    if let Some(l) = lits {
                        values.push((r, l));
                    }
                }
            }
            _ => {}
        }
    }
    let root = find(&mut group, 0);
    if (0..refs.len()).any(|i| find(&mut group, i) != root) {
        return Target::Refuse("a join of sharded tables that are not equal on the shard key".into());
    }
    let mut shards = BTreeSet::new();
    let mut param = None;
    for (_, lits) in &values {
        for l in lits {
            match l {
                Lit::Key(k, at) => {
                    shards.insert(sh.ring.shard_index(k));
                    keys.push(*at);
                }
                Lit::Placeholder(at) => param = Some(placeholder_index(sql, *at)),
            }
        }
    }
    match (shards.len(), param) {
        (0, Some(p)) if values.len() == 1 && values[0].1.len() == 1 => Target::Param(p),
        (1, None) => Target::Shard(*shards.first().expect("one")),
        (0, None) => Target::Refuse(format!(
            "{what} on sharded table '{}' without `{} = value`: it would need every shard",
            refs[0].1, sh.key
        )),
        _ => Target::Refuse(format!("{what} whose `{}` values live on several shards", sh.key)),
    }
}

/// An INSERT: each row's shard from its key value.
fn insert(sh: &Sharding, sql: &str, ins: &sqlparser::ast::Insert, keys: &mut Vec<Option<usize>>) -> Target {
    let TableObject::TableName(name) = &ins.table else {
        return Target::Refuse("INSERT into a table function".into());
    };
    let table = table_name(name);
    let Some(col) = ins.columns.iter().position(|c| table_name(c).eq_ignore_ascii_case(&sh.key)) else {
        return Target::Refuse(format!("INSERT into sharded table '{table}' without naming column `{}`", sh.key));
    };
    let Some(SetExpr::Values(values)) = ins.source.as_ref().map(|q| q.body.as_ref()) else {
        return Target::Refuse(format!("INSERT ... SELECT into sharded table '{table}'"));
    };
    let mut rows: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
    for row in &values.rows {
        let key = row.content.get(col).and_then(|e| literal(sql, e));
        let shard = match key {
            Some(Lit::Key(k, at)) => {
                keys.push(at);
                sh.ring.shard_index(&k)
            }
            Some(Lit::Placeholder(at)) if values.rows.len() == 1 => return Target::Param(placeholder_index(sql, at)),
            _ => return Target::Refuse(format!("INSERT into '{table}' whose `{}` is not a literal", sh.key)),
        };
        let start = byte_offset(sql, row.opening_token.0.span.start);
        let end = byte_offset(sql, row.closing_token.0.span.end);
        match (start, end) {
            (Some(s), Some(e)) if s < e && e <= sql.len() => rows.push((shard, s..e)),
            _ => return Target::Refuse("INSERT rows Sluice cannot locate in the statement".into()),
        }
    }
    let shards: BTreeSet<usize> = rows.iter().map(|r| r.0).collect();
    if shards.len() == 1 {
        return Target::Shard(rows[0].0);
    }
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Target::Refuse("INSERT without rows".into());
    };
    let (prefix, suffix) = (&sql[..first.1.start], &sql[last.1.end..]);
    let parts = shards
        .into_iter()
        .map(|s| {
            let body: Vec<&str> = rows.iter().filter(|r| r.0 == s).map(|r| &sql[r.1.clone()]).collect();
            (s, format!("{prefix}{}{suffix}", body.join(", ")))
        })
        .collect();
    Target::Split(parts)
}
