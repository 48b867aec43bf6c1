//! Single flight: while one session runs a cacheable read, sessions with the identical miss
//! wait for its answer (bounded) instead of sending the same read to a backend.

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The reads in flight, by cache key.
#[derive(Debug, Default)]
pub struct Flights {
    map: Arc<Mutex<HashMap<Bytes, watch::Receiver<()>>>>,
}

/// The outcome of joining.
#[derive(Debug)]
pub enum Joined {
    /// This session runs the read; dropping the guard wakes the others.
    Lead(Lead),
    /// Another session runs it.
    Wait(Flight),
}

/// Held by the session that runs the read.
#[derive(Debug)]
pub struct Lead {
    map: Arc<Mutex<HashMap<Bytes, watch::Receiver<()>>>>,
    key: Bytes,
    _done: watch::Sender<()>,
}

impl Drop for Lead {
    fn drop(&mut self) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(&self.key);
        }
        // `_done` drops after this: every waiter's `changed()` returns.
    }
}

/// A flight another session leads.
#[derive(Debug)]
pub struct Flight(watch::Receiver<()>);

impl Flight {
    /// Until the leader is done, at most `limit`.
    pub async fn wait(mut self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.0.changed()).await;
    }
}

impl Flights {
    /// Leads the flight for `key`, or joins the one running.
    pub fn join(&self, key: &Bytes) -> Joined {
        let Ok(mut m) = self.map.lock() else {
            // A poisoned map: run the read without single flight.
            let (tx, _) = watch::channel(());
            return Joined::Lead(Lead { map: Arc::new(Mutex::default()), key: key.clone(), _done: tx });
        };
        if let Some(rx) = m.get(key) {
            return Joined::Wait(Flight(rx.clone()));
        }
        let (tx, rx) = watch::channel(());
        m.insert(key.clone(), rx);
        Joined::Lead(Lead { map: self.map.clone(), key: key.clone(), _done: tx })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_wake_when_the_leader_is_done() {
        let f = Flights::default();
        let key = Bytes::from_static(b"k");
        let Joined::Lead(lead) = f.join(&key) else { panic!("first joins lead") };
        let Joined::Wait(w) = f.join(&key) else { panic!("second waits") };
        let waiter = tokio::spawn(w.wait(Duration::from_secs(30)));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(lead);
        tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("woken").unwrap();
        assert!(matches!(f.join(&key), Joined::Lead(_)), "the flight ended with its leader");
    }
}
