//! `[[cache.rules]]` compiled once per snapshot: which reads are cached, for how long, and
//! whether users share their entries.

use super::eligible::{hint_ttl_ms, Read, Refusal};
use crate::config::CacheConfig;
use std::time::Duration;

/// What a rule (or hint) allows for one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    pub ttl: Duration,
    /// Entries are shared by every user (every matching rule says so).
    pub shared: bool,
}

#[derive(Debug)]
struct TableRule {
    /// `t` (any schema) or `schema.t`, lower-cased.
    tables: Vec<String>,
    ttl: Duration,
    shared: bool,
}

/// The compiled rules.
#[derive(Debug)]
pub struct Rules {
    tables: Vec<TableRule>,
    /// Fingerprint hashes with their TTL and sharing.
    fingerprints: Vec<(u64, Duration, bool)>,
    max_hint_ttl: Duration,
}

impl Rules {
    pub fn new(cfg: &CacheConfig) -> Rules {
        let mut tables = Vec::new();
        let mut fingerprints = Vec::new();
        for r in &cfg.rules {
            let ttl = Duration::from_millis(*r.ttl_ms.get_ref());
            if let Some(fp) = &r.fingerprint {
                // The text shows literals as `?`, which the lexer reads as punctuation: a
                // literal in their place hashes as the statements it stands for.
                fingerprints.push((crate::sql::fingerprint::hash(&fp.replace('?', "0")), ttl, r.shared));
            }
            if !r.tables.is_empty() {
                let tables_lc = r.tables.iter().map(|t| t.to_ascii_lowercase()).collect();
                tables.push(TableRule { tables: tables_lc, ttl, shared: r.shared });
            }
        }
        Rules { tables, fingerprints, max_hint_ttl: Duration::from_millis(cfg.max_hint_ttl_ms) }
    }

    /// Whether `read` (statement `sql`, fingerprint hash `fingerprint`, run in `schema`) is
    /// cached. A hint wins (its TTL capped by `max_hint_ttl_ms`, never shared); then a rule
    /// for the fingerprint; then table rules, which must cover every table the read names.
    pub fn allow(&self, sql: &str, fingerprint: u64, read: &Read, schema: Option<&str>) -> Result<Allowed, Refusal> {
        if let Some(ms) = hint_ttl_ms(sql) {
            return Ok(Allowed { ttl: Duration::from_millis(ms).min(self.max_hint_ttl), shared: false });
        }
        if let Some((_, ttl, shared)) = self.fingerprints.iter().find(|(h, _, _)| *h == fingerprint) {
            return Ok(Allowed { ttl: *ttl, shared: *shared });
        }
        let Some(tables) = read.tables.as_ref().filter(|t| !t.is_empty()) else { return Err(Refusal::NoRule) };
        let mut allowed: Option<Allowed> = None;
        for t in tables {
            let rule =
                self.tables.iter().filter(|r| r.tables.iter().any(|n| names(n, t, schema))).min_by_key(|r| r.ttl);
            let Some(rule) = rule else { return Err(Refusal::NoRule) };
            allowed = Some(match allowed {
                None => Allowed { ttl: rule.ttl, shared: rule.shared },
                Some(a) => Allowed { ttl: a.ttl.min(rule.ttl), shared: a.shared && rule.shared },
            });
        }
        allowed.ok_or(Refusal::NoRule)
    }

    /// Whether any rule can match a read (no rules: only hinted statements are looked at).
    pub fn any(&self) -> bool {
        !self.tables.is_empty() || !self.fingerprints.is_empty()
    }
}

/// Rule name `rule` names table `t` as read in `schema`: `x` names `x` in any schema,
/// `s.x` names `s.x` and, in schema `s`, `x`.
fn names(rule: &str, t: &str, schema: Option<&str>) -> bool {
    if rule == t {
        return true;
    }
    match (rule.split_once('.'), t.split_once('.')) {
        (None, Some((_, bare))) => rule == bare,
        (Some((rs, rt)), None) => rt == t && schema.is_some_and(|s| s.eq_ignore_ascii_case(rs)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::eligible::examine;

    fn rules(text: &str) -> Rules {
        let cfg: CacheConfig = toml::from_str(text).unwrap();
        Rules::new(&cfg)
    }

    #[test]
    fn table_rules_must_cover_every_table_read() {
        let r = rules(
            "[[rules]]\ntables = [\"items\", \"shop.prices\"]\nttl_ms = 5000\n\
             [[rules]]\ntables = [\"tags\"]\nttl_ms = 1000\nshared = true\n",
        );
        let ok = |sql: &str, schema: Option<&str>| {
            r.allow(sql, crate::sql::fingerprint::hash(sql), &examine(sql).unwrap(), schema)
        };
        let five = Allowed { ttl: Duration::from_millis(5000), shared: false };
        assert_eq!(ok("SELECT * FROM items WHERE id = 1", None), Ok(five));
        assert_eq!(ok("SELECT * FROM other.items", None), Ok(five), "a bare rule name is any schema's");
        assert_eq!(ok("SELECT * FROM prices", Some("shop")), Ok(five));
        assert_eq!(ok("SELECT * FROM prices", Some("web")), Err(Refusal::NoRule));
        assert_eq!(ok("SELECT * FROM shop.prices p JOIN items i ON i.id = p.id", None), Ok(five));
        assert_eq!(
            ok("SELECT * FROM items, tags", None),
            Ok(Allowed { ttl: Duration::from_millis(1000), shared: false }),
            "the shortest TTL, shared only if every rule is"
        );
        assert_eq!(ok("SELECT * FROM tags", None), Ok(Allowed { ttl: Duration::from_millis(1000), shared: true }));
        assert_eq!(ok("SELECT * FROM items JOIN users ON 1", None), Err(Refusal::NoRule));
        assert_eq!(ok("SELECT * FROM (SELECT * FROM items) x", None), Err(Refusal::NoRule));
        assert_eq!(ok("SELECT 1", None), Err(Refusal::NoRule));
    }

    #[test]
    fn fingerprint_rules_and_hints() {
        let r =
            rules("max_hint_ttl_ms = 2000\n[[rules]]\nfingerprint = \"SELECT c FROM t WHERE id = ?\"\nttl_ms = 700\n");
        let sql = "select c from t where id = 42";
        let got = r.allow(sql, crate::sql::fingerprint::hash(sql), &examine(sql).unwrap(), None);
        assert_eq!(got, Ok(Allowed { ttl: Duration::from_millis(700), shared: false }));
        let other = "SELECT d FROM t WHERE id = 42";
        assert!(r.allow(other, crate::sql::fingerprint::hash(other), &examine(other).unwrap(), None).is_err());
        let hinted = "/* sluice:cache ttl=90000 */ SELECT d FROM t WHERE id = 42";
        let got = r.allow(hinted, 0, &examine(hinted).unwrap(), None);
        assert_eq!(got, Ok(Allowed { ttl: Duration::from_millis(2000), shared: false }), "capped");
    }
}
