//! The slow log: statements slower than `[stats] slow_ms`, one JSON object per line, written by
//! one task so that sessions never wait on the disk. A session hands its entry over a bounded
//! channel; when the writer falls behind, entries are dropped and counted, never queued
//! without bound. The file is rotated by size: `slow.log` → `slow.log.1` → ... up to
//! `slow_log_keep` old files.

use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Entries that may wait for the writer.
const QUEUE: usize = 4096;

/// One slow statement.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Unix time in seconds, with milliseconds.
    pub time: f64,
    pub session: u32,
    pub user: String,
    pub schema: Option<String>,
    pub fingerprint: String,
    /// The statement as sent, cut at `[stats] slow_log_max_text` bytes.
    pub statement: String,
    pub duration_ms: f64,
    pub destination: &'static str,
    pub shard: String,
    /// The backend that ran it (none when Sluice answered or refused it).
    pub backend: Option<String>,
    /// That backend's replication lag when the statement ended, if it is a replica.
    pub lag_ms: Option<u64>,
    /// What held the session on its connection (transaction, locks, temporary tables...).
    pub pinned: Option<String>,
    pub rows_sent: u64,
    pub rows_affected: u64,
    pub error: Option<String>,
}

/// The sending side, held by [`crate::shared::Shared`].
#[derive(Debug)]
pub struct SlowLog {
    tx: mpsc::Sender<Entry>,
    dropped: prometheus::IntCounter,
}

impl SlowLog {
    /// Starts the writer task for `path`, rotating past `max_bytes` and keeping `keep` old
    /// files. `written` and `dropped` count entries.
    pub fn start(
        path: PathBuf,
        max_bytes: u64,
        keep: u32,
        written: prometheus::IntCounter,
        dropped: prometheus::IntCounter,
    ) -> SlowLog {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_loop(rx, path, max_bytes, keep, written));
        SlowLog { tx, dropped }
    }

    /// Hands an entry to the writer without waiting; dropped (and counted) when the queue is
    /// full.
    pub fn log(&self, e: Entry) {
        if self.tx.try_send(e).is_err() {
            self.dropped.inc();
        }
    }
}

async fn write_loop(
    mut rx: mpsc::Receiver<Entry>,
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    written: prometheus::IntCounter,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(e) = rx.try_recv() {
            batch.push(e);
        }
        let path = path.clone();
        let n = batch.len() as u64;
        let r = tokio::task::spawn_blocking(move || append(&path, &batch, max_bytes, keep)).await;
        match r {
            Ok(Ok(())) => written.inc_by(n),
            Ok(Err(e)) => tracing::warn!(error = %e, "slow log not written"),
            Err(e) => tracing::warn!(error = %e, "slow log writer failed"),
        }
    }
}

/// Appends entries, rotating first when the file has reached `max_bytes`.
fn append(path: &Path, batch: &[Entry], max_bytes: u64, keep: u32) -> std::io::Result<()> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() >= max_bytes) {
        rotate(path, keep)?;
    }
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let mut out = Vec::with_capacity(batch.len() * 256);
    for e in batch {
        serde_json::to_writer(&mut out, e).map_err(std::io::Error::other)?;
        out.push(b'\n');
    }
    f.write_all(&out)
}

/// `path.{keep-1}` → `path.{keep}`, ..., `path` → `path.1`; the oldest beyond `keep` goes.
fn rotate(path: &Path, keep: u32) -> std::io::Result<()> {
    let numbered = |i: u32| PathBuf::from(format!("{}.{i}", path.display()));
    if keep == 0 {
        return std::fs::remove_file(path);
    }
    let _ = std::fs::remove_file(numbered(keep));
    for i in (1..keep).rev() {
        let _ = std::fs::rename(numbered(i), numbered(i + 1));
    }
    std::fs::rename(path, numbered(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u32) -> Entry {
        Entry {
            time: 1.0,
            session: i,
            user: "app".into(),
            schema: None,
            fingerprint: "select sleep(?)".into(),
            statement: format!("SELECT SLEEP({i})"),
            duration_ms: 1000.0,
            destination: "primary",
            shard: "main".into(),
            backend: Some("127.0.0.1:13306".into()),
            lag_ms: None,
            pinned: None,
            rows_sent: 1,
            rows_affected: 0,
            error: None,
        }
    }

    #[test]
    fn lines_are_json_and_the_file_rotates_by_size() {
        let dir = std::env::temp_dir().join(format!("sluice-slowlog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("slow.log");
        for i in 0..40 {
            append(&path, &[entry(i)], 1_000, 2).unwrap();
        }
        let current = std::fs::read_to_string(&path).unwrap();
        for line in current.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["fingerprint"], "select sleep(?)");
        }
        assert!(dir.join("slow.log.1").exists() && dir.join("slow.log.2").exists());
        assert!(!dir.join("slow.log.3").exists(), "only `keep` old files are kept");
        let total: usize = ["slow.log", "slow.log.1", "slow.log.2"]
            .iter()
            .map(|f| std::fs::read_to_string(dir.join(f)).unwrap().lines().count())
            .sum();
        assert!(total < 40, "older entries went with the rotated-out file");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
