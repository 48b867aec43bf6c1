//! `SLUICE PAUSE` / `SLUICE RESUME` (the SQL admin interface's maintenance switch): a leaf the
//! shared state holds and sessions consult before each statement.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// `SLUICE PAUSE` / `SLUICE RESUME`: while paused, sessions hold each new statement.
#[derive(Debug, Default)]
pub struct Pause {
    paused: AtomicBool,
    resumed: tokio::sync::Notify,
}

impl Pause {
    /// True while paused.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Waits until resumed, at most `limit`; false if still paused then.
    ///
    /// # Performance
    /// Not paused (always, but in maintenance): one atomic load.
    pub async fn wait(&self, limit: Duration) -> bool {
        if !self.is_paused() {
            return true;
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.resumed.notified();
            if !self.is_paused() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return !self.is_paused();
            }
        }
    }

    /// Pauses (`SLUICE PAUSE`) or resumes (`SLUICE RESUME`, which releases every waiter).
    pub fn set(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
        if !paused {
            self.resumed.notify_waiters();
        }
    }
}
