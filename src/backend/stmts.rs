//! Statements prepared on one backend connection, by everything that fixes what a statement
//! means (see [`BackendConn::stmt_key`](super::conn::BackendConn::stmt_key): the schema,
//! character set and sql_mode it was prepared under, and its exact bytes), so any session
//! whose statement lands on this connection in the same context reuses them, and a session
//! in another context never does. Bounded: past the cap the oldest is closed, so a
//! backend's `max_prepared_stmt_count` is never exhausted by Sluice.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Most statements kept prepared per backend connection.
/// 128 × a pool of 64 connections stays under MariaDB's default `max_prepared_stmt_count`
/// (16,382, counted over all connections); past the server's limit the cache is emptied and
/// the prepare tried once more.
pub const PER_CONNECTION: usize = 128;

/// Statement key → backend statement id, with insertion order for eviction.
#[derive(Debug, Default)]
pub struct StmtCache {
    by_sql: HashMap<Arc<[u8]>, u32>,
    order: VecDeque<Arc<[u8]>>,
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
                    close.push(old);
                }
            }
        }
        close
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
