//! Plan cache by statement shape. Parsing a statement with sqlparser costs microseconds;
//! applications send the same few shapes with different literals. The shape is the
//! statement's token stream with every number and string literal blanked; a plan that
//! depends on the literals only through the key values (one shard) is stored with the
//! positions of those literals, and the next statement of the same shape is decided by
//! hashing its literals at those positions. Any doubt (a string with escapes, key values
//! on different shards) falls back to parsing.

use super::plan::{plan_keyed, Target};
use super::ring::KeyValue;
use super::Sharding;
use crate::sql::lex::{Lexer, Token};
use std::collections::HashMap;
use std::sync::RwLock;

/// Entries kept before the cache starts over (bounded memory under ad-hoc SQL).
const MAX_ENTRIES: usize = 4096;

#[derive(Debug, Clone)]
enum Cached {
    Default,
    Param(usize),
    /// One shard, decided by the literals at these indexes.
    Shard(Vec<usize>),
}

/// Shape → plan.
#[derive(Debug, Default)]
pub struct PlanCache(RwLock<HashMap<String, Cached>>);

/// A literal of a statement: where it starts, and its text.
struct Literal<'a> {
    at: usize,
    value: LitText<'a>,
}

enum LitText<'a> {
    Number(&'a str),
    Str(&'a str),
}

/// The shape of `sql` and its literals.
fn shape(sql: &str) -> (String, Vec<Literal<'_>>) {
    let mut key = String::with_capacity(sql.len());
    let mut lits = Vec::new();
    let mut lx = Lexer::new(sql);
    while let Some((at, t)) = lx.next_spanned() {
        match t {
            Token::Word(w) if w.bytes().all(|b| b.is_ascii_digit()) => {
                key.push('\u{1}');
                lits.push(Literal { at, value: LitText::Number(w) });
            }
            Token::Str(s) => {
                key.push('\u{1}');
                lits.push(Literal { at, value: LitText::Str(s) });
            }
            Token::Word(w) => {
                key.push_str(w);
                key.push(' ');
            }
            Token::Quoted(q) => {
                key.push('`');
                key.push_str(q);
                key.push('`');
            }
            Token::SysVar(v) => {
                key.push_str("@@");
                key.push_str(v);
                key.push(' ');
            }
            Token::UserVar => key.push('@'),
            Token::Punct(c) => key.push(c as char),
        }
    }
    (key, lits)
}

fn key_value(l: &Literal<'_>) -> Option<KeyValue> {
    match l.value {
        LitText::Number(n) => n.parse().ok().map(KeyValue::Int),
        // Escapes would need undoing exactly as the server does: leave those to the parser.
        LitText::Str(s) if !s.contains(['\\', '\'', '"']) => Some(KeyValue::Bytes(s.as_bytes().to_vec())),
        LitText::Str(_) => None,
    }
}

/// What a cached plan says for this statement's literals; `None`: the statement must be
/// parsed (a key literal Sluice does not read here, or keys on different shards).
fn from_cache(sh: &Sharding, c: &Cached, lits: &[Literal<'_>]) -> Option<Target> {
    match c {
        Cached::Default => Some(Target::Default),
        Cached::Param(p) => Some(Target::Param(*p)),
        Cached::Shard(idx) => {
            let mut shard = None;
            for &i in idx {
                let s = sh.ring.shard_index(&key_value(lits.get(i)?)?);
                if shard.is_some_and(|x| x != s) {
                    return None;
                }
                shard = Some(s);
            }
            shard.map(Target::Shard)
        }
    }
}

pub(super) fn plan_cached(sh: &Sharding, sql: &str) -> Target {
    let (key, lits) = shape(sql);
    // Decided under the read guard: nothing is cloned out of the cache.
    if let Some(t) = sh.cache.0.read().ok().and_then(|m| from_cache(sh, m.get(&key)?, &lits)) {
        return t;
    }
    let (target, keys) = plan_keyed(sh, sql);
    let cached = match &target {
        Target::Default => Some(Cached::Default),
        Target::Param(p) => Some(Cached::Param(*p)),
        Target::Shard(_) => keys
            .iter()
            .map(|k| k.and_then(|at| lits.iter().position(|l| l.at == at)))
            .collect::<Option<Vec<usize>>>()
            .filter(|idx| !idx.is_empty())
            .map(Cached::Shard),
        _ => None,
    };
    if let (Some(c), Ok(mut m)) = (cached, sh.cache.0.write()) {
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
        m.insert(key, c);
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_blank_literals_only() {
        let (a, la) = shape("SELECT c FROM orders WHERE user_id = 42 AND note = 'x'");
        let (b, lb) = shape("SELECT c FROM orders WHERE user_id = 7 AND note = 'yy'");
        assert_eq!(a, b);
        assert_eq!((la.len(), lb.len()), (2, 2));
        assert_ne!(
            shape("SELECT c FROM orders WHERE user_id IN (1, 2)").0,
            shape("SELECT c FROM orders WHERE user_id IN (1)").0
        );
        assert_ne!(
            shape("SELECT c FROM orders WHERE user_id = ?").0,
            shape("SELECT c FROM orders WHERE user_id = 1").0
        );
        assert_ne!(
            shape("SELECT c FROM orders WHERE user_id = -1").0,
            shape("SELECT c FROM orders WHERE user_id = 1").0
        );
    }
}
