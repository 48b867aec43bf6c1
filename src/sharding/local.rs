//! Which expressions a scatter read may contain: those whose value for a row is the same
//! whether one server computes it over all rows or each shard over its own. An allow-list,
//! not a deny-list: columns, literals, operators, CASE, CAST and deterministic scalar
//! functions of them. Everything else is refused by name (ERROR 1235): window functions
//! (`ROW_NUMBER() OVER (...)` numbers each shard's rows on its own), subqueries, user
//! variables assigned or read per row, placeholders, non-deterministic or session functions
//! (`RAND()`, `NOW()` differ from shard to shard), and any function Sluice does not know.

use sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, FunctionArguments, InTarget, Value};

/// Deterministic scalar functions, lower case, sorted for binary search.
const SCALAR: &[&str] = &[
    "abs",
    "acos",
    "adddate",
    "addtime",
    "ascii",
    "asin",
    "atan",
    "atan2",
    "bin",
    "bit_count",
    "bit_length",
    "ceil",
    "ceiling",
    "char_length",
    "character_length",
    "coalesce",
    "concat",
    "concat_ws",
    "conv",
    "cos",
    "cot",
    "crc32",
    "date",
    "date_add",
    "date_format",
    "date_sub",
    "datediff",
    "day",
    "dayname",
    "dayofmonth",
    "dayofweek",
    "dayofyear",
    "degrees",
    "elt",
    "exp",
    "field",
    "find_in_set",
    "floor",
    "from_days",
    "greatest",
    "hex",
    "hour",
    "if",
    "ifnull",
    "inet_aton",
    "inet_ntoa",
    "instr",
    "isnull",
    "json_contains",
    "json_extract",
    "json_length",
    "json_type",
    "json_unquote",
    "json_value",
    "last_day",
    "lcase",
    "least",
    "left",
    "length",
    "ln",
    "locate",
    "log",
    "log10",
    "log2",
    "lower",
    "lpad",
    "ltrim",
    "makedate",
    "md5",
    "microsecond",
    "mid",
    "minute",
    "mod",
    "month",
    "monthname",
    "nullif",
    "oct",
    "octet_length",
    "ord",
    "pi",
    "position",
    "pow",
    "power",
    "quarter",
    "radians",
    "repeat",
    "replace",
    "reverse",
    "right",
    "round",
    "rpad",
    "rtrim",
    "second",
    "sha1",
    "sha2",
    "sign",
    "sin",
    "space",
    "sqrt",
    "str_to_date",
    "strcmp",
    "substr",
    "substring",
    "substring_index",
    "tan",
    "time",
    "time_to_sec",
    "timediff",
    "timestampdiff",
    "to_days",
    "trim",
    "truncate",
    "ucase",
    "unhex",
    "upper",
    "week",
    "weekday",
    "weekofyear",
    "year",
    "yearweek",
];

/// `Ok` when `e` has a shard-local value per row; otherwise what to name in the refusal.
pub fn check(e: &Expr) -> Result<(), String> {
    match e {
        Expr::Identifier(i) if i.value.starts_with('@') => Err("a user variable across shards".into()),
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => Ok(()),
        Expr::Value(v) => match &v.value {
            Value::Placeholder(_) => Err("a placeholder across shards".into()),
            _ => Ok(()),
        },
        Expr::BinaryOp { op, .. } if op.to_string() == ":=" => Err("a user variable assignment across shards".into()),
        Expr::BinaryOp { left, right, .. } => check(left).and_then(|()| check(right)),
        Expr::UnaryOp { expr, .. }
        | Expr::Nested(expr)
        | Expr::IsNull(expr)
        | Expr::IsNotNull(expr)
        | Expr::IsTrue(expr)
        | Expr::IsNotTrue(expr)
        | Expr::IsFalse(expr)
        | Expr::IsNotFalse(expr)
        | Expr::IsUnknown(expr)
        | Expr::IsNotUnknown(expr)
        | Expr::Cast { expr, .. }
        | Expr::Collate { expr, .. } => check(expr),
        Expr::IsDistinctFrom(a, b) | Expr::IsNotDistinctFrom(a, b) => check(a).and_then(|()| check(b)),
        Expr::Between { expr, low, high, .. } => check(expr).and_then(|()| check(low)).and_then(|()| check(high)),
        Expr::In { expr, target: InTarget::List(list), .. } => {
            check(expr)?;
            list.iter().try_for_each(check)
        }
        Expr::Like { expr, pattern, .. } | Expr::RLike { expr, pattern, .. } => {
            check(expr).and_then(|()| check(pattern))
        }
        Expr::Case { operand, conditions, else_result, .. } => {
            if let Some(o) = operand {
                check(o)?;
            }
            for c in conditions {
                check(&c.condition)?;
                check(&c.result)?;
            }
            else_result.as_deref().map_or(Ok(()), check)
        }
        Expr::Function(f) => {
            let name = f.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_ascii_lowercase());
            let name = name.unwrap_or_default();
            if f.over.is_some() {
                return Err(format!("the window function {} across shards", name.to_ascii_uppercase()));
            }
            if f.name.0.len() != 1 || SCALAR.binary_search(&name.as_str()).is_err() {
                return Err(format!("the function {} across shards", name.to_ascii_uppercase()));
            }
            match &f.args {
                FunctionArguments::None => Ok(()),
                FunctionArguments::Subquery(_) => Err("a subquery across shards".into()),
                FunctionArguments::List(l) if l.duplicate_treatment.is_none() && l.clauses.is_empty() => {
                    l.args.iter().try_for_each(|a| match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => check(e),
                        _ => Err(format!("an argument of {} across shards", name.to_ascii_uppercase())),
                    })
                }
                FunctionArguments::List(_) => Err(format!("{} with clauses across shards", name.to_ascii_uppercase())),
            }
        }
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::In { .. } => Err("a subquery across shards".into()),
        other => {
            let shown: String = other.to_string().chars().take(40).collect();
            Err(format!("the expression '{shown}' across shards"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::ast::{SelectItem, SetExpr, Statement};
    use sqlparser::dialect::MySqlDialect;
    use sqlparser::parser::Parser;

    fn first_item(sql: &str) -> Expr {
        let stmts = Parser::parse_sql(&MySqlDialect {}, sql).unwrap();
        let Statement::Query(q) = &stmts[0] else { panic!() };
        let SetExpr::Select(s) = q.body.as_ref() else { panic!() };
        match &s.projection[0] {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e.clone(),
            _ => panic!(),
        }
    }

    #[test]
    fn allow_list() {
        assert!(SCALAR.windows(2).all(|w| w[0] < w[1]), "SCALAR must stay sorted");
        for ok in [
            "SELECT a",
            "SELECT t.a + 1",
            "SELECT CONCAT(UPPER(name), '-', id) FROM t",
            "SELECT CASE WHEN a > 1 THEN 'x' ELSE NULL END",
            "SELECT CAST(a AS CHAR) FROM t",
            "SELECT a BETWEEN 1 AND 5 FROM t",
            "SELECT a IN (1, 2) FROM t",
        ] {
            assert_eq!(check(&first_item(ok)), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("SELECT ROW_NUMBER() OVER (ORDER BY amount, id) FROM t", "window function ROW_NUMBER"),
            ("SELECT RAND() FROM t", "function RAND"),
            ("SELECT NOW() FROM t", "function NOW"),
            ("SELECT @x := a FROM t", "user variable"),
            ("SELECT @x FROM t", "user variable"),
            ("SELECT a + (SELECT 1) FROM t", "subquery"),
            ("SELECT my_func(a) FROM t", "function MY_FUNC"),
            ("SELECT db.f(a) FROM t", "function F"),
            ("SELECT CONNECTION_ID() FROM t", "function CONNECTION_ID"),
        ] {
            let e = check(&first_item(bad)).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
