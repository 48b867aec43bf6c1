//! Statements prepared on one backend connection, by everything that fixes what a statement
//! means (see [`BackendConn::stmt_key`](super::conn::BackendConn::stmt_key): the schema,
//! character set and sql_mode it was prepared under, and its exact bytes), so any session
//! whose statement lands on this connection in the same context reuses them, and a session
//! in another context never does. Bounded: past the cap the oldest is closed, so a
//! backend's `max_prepared_stmt_count` is never exhausted by Sluice.
//!
//! Only data statements are kept ([`kept_for_reuse`]): a prepared DDL, SET or SHOW holds what
//! the server holds for it (a storage engine's plugin, session memory) for as long as it stays
//! prepared, which a client that closed it does not expect (`UNINSTALL PLUGIN` reports the
//! plugin busy, `MEMORY_USED` grows), and applications seldom prepare those twice.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Most statements kept prepared per backend connection.
/// 128 × a pool of 64 connections stays under MariaDB's default `max_prepared_stmt_count`
/// (16,382, counted over all connections); past the server's limit the cache is emptied and
/// the prepare tried once more.
pub const PER_CONNECTION: usize = 128;

/// True when a statement starting with `first` (its first word) stays prepared on a backend
/// connection after it ran, for the next session that runs it there: the statements
/// applications prepare again and again. Any other one is closed on the backend as soon as
/// no open cursor or pending long data needs it.
pub fn kept_for_reuse(first: &str) -> bool {
    ["select", "with", "insert", "update", "delete", "replace", "call", "values", "table"]
        .iter()
        .any(|k| first.eq_ignore_ascii_case(k))
}

/// Statement key → backend statement id, with insertion order for eviction.
#[derive(Debug, Default)]
pub struct StmtCache {
    by_sql: HashMap<Arc<[u8]>, u32>,
    order: VecDeque<Arc<[u8]>>,
    /// Statements not [kept for reuse](kept_for_reuse): closed once they ran.
    once: Vec<Arc<[u8]>>,
}

impl StmtCache {
    /// The backend id of `sql`, if prepared here.
    pub fn get(&self, sql: &[u8]) -> Option<u32> {
        self.by_sql.get(sql).copied()
    }

    /// Records a new backend statement; returns the ids the caller must close on the backend
    /// (a replaced one for the same text, and the oldest when over the cap).
    pub fn insert(&mut self, sql: Arc<[u8]>, id: u32) -> Vec<u32> {
        let mut close = Vec::new();
        if let Some(old) = self.by_sql.insert(sql.clone(), id) {
            close.push(old);
            self.order.retain(|s| *s != sql);
        }
        self.order.push_back(sql);
        while self.order.len() > PER_CONNECTION {
            if let Some(oldest) = self.order.pop_front() {
                if let Some(old) = self.by_sql.remove(&oldest) {
                    self.once.retain(|s| *s != oldest);
                    close.push(old);
                }
            }
        }
        close
    }

    /// Forgets `sql`; its backend id, which the caller must close on the backend.
    pub fn remove(&mut self, sql: &[u8]) -> Option<u32> {
        let id = self.by_sql.remove(sql)?;
        self.order.retain(|s| &**s != sql);
        self.once.retain(|s| &**s != sql);
        Some(id)
    }

    /// Marks `sql`, held here, to be closed once it ran ([`StmtCache::take_once`]).
    pub fn mark_once(&mut self, sql: &[u8]) {
        if let Some((key, _)) = self.by_sql.get_key_value(sql) {
            if !self.once.iter().any(|s| **s == *sql) {
                self.once.push(key.clone());
            }
        }
    }

    /// Forgets every statement marked to be closed once it ran; their backend ids, which the
    /// caller must close on the backend.
    pub fn take_once(&mut self) -> Vec<u32> {
        let once = std::mem::take(&mut self.once);
        once.iter().filter_map(|sql| self.remove(sql)).collect()
    }

    /// True when statements marked to be closed once they ran are held.
    pub fn has_once(&self) -> bool {
        !self.once.is_empty()
    }

    /// Every backend statement id held.
    pub fn ids(&self) -> Vec<u32> {
        self.by_sql.values().copied().collect()
    }

    /// Number of statements held.
    pub fn len(&self) -> usize {
        self.by_sql.len()
    }

    /// True when none are held.
    pub fn is_empty(&self) -> bool {
        self.by_sql.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_data_statements_are_kept() {
        for first in ["SELECT", "with", "Insert", "update", "DELETE", "replace", "call"] {
            assert!(kept_for_reuse(first), "{first}");
        }
        for first in ["CREATE", "drop", "alter", "set", "show", "flush", "uninstall", "do", ""] {
            assert!(!kept_for_reuse(first), "{first}");
        }
    }

    #[test]
    fn a_removed_statement_is_gone_and_not_evicted_later() {
        let mut c = StmtCache::default();
        let key = |s: &str| -> Arc<[u8]> { s.as_bytes().into() };
        c.insert(key("a"), 1);
        c.insert(key("b"), 2);
        assert_eq!(c.remove(b"a"), Some(1));
        assert_eq!(c.remove(b"a"), None);
        assert_eq!((c.get(b"a"), c.get(b"b"), c.len()), (None, Some(2), 1));
        for i in 0..PER_CONNECTION as u32 - 1 {
            assert!(c.insert(key(&format!("q{i}")), 100 + i).is_empty(), "nothing over the cap yet");
        }
    }

    #[test]
    fn statements_marked_once_are_taken_once_and_the_rest_stay() {
        let mut c = StmtCache::default();
        let key = |s: &str| -> Arc<[u8]> { s.as_bytes().into() };
        c.insert(key("select 1"), 1);
        c.insert(key("create table t (a int)"), 2);
        c.insert(key("set @@x = 1"), 3);
        c.mark_once(b"create table t (a int)");
        c.mark_once(b"set @@x = 1");
        c.mark_once(b"set @@x = 1");
        c.mark_once(b"not held");
        assert!(c.has_once());
        let mut taken = c.take_once();
        taken.sort_unstable();
        assert_eq!(taken, vec![2, 3]);
        assert!(!c.has_once());
        assert!(c.take_once().is_empty());
        assert_eq!((c.get(b"select 1"), c.len()), (Some(1), 1));
    }

    #[test]
    fn replaces_and_evicts_oldest() {
        let mut c = StmtCache::default();
        let key = |s: &str| -> Arc<[u8]> { s.as_bytes().into() };
        assert!(c.insert(key("a"), 1).is_empty());
        assert_eq!(c.insert(key("a"), 2), vec![1]);
        assert_eq!(c.get(b"a"), Some(2));
        for i in 0..PER_CONNECTION as u32 {
            let closed = c.insert(key(&format!("q{i}")), 100 + i);
            if i == PER_CONNECTION as u32 - 1 {
                assert_eq!(closed, vec![2]); // "a" was the oldest
            } else {
                assert!(closed.is_empty());
            }
        }
        assert_eq!(c.len(), PER_CONNECTION);
        assert_eq!(c.get(b"a"), None);
    }
}
