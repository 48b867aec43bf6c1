//! The load that runs through every fault: writers that record each acknowledged insert (the
//! lost-write audit's input) and read their own writes back, and readers that check every
//! result is whole. Every statement has a client-side limit, so a hang is counted, not waited
//! for.

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longer than any deadline the suite configures: a statement that takes this long hung.
const HANG: Duration = Duration::from_secs(15);

/// Rows of the seed table readers read (ids 1..=SEED, v = 3 * id).
pub const SEED: i64 = 1000;

/// What a statement was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Connect,
    Write,
    ShardWrite,
    ReadOwnWrite,
    Read,
}

/// How a statement ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    Ok,
    /// A MySQL error packet: code and message.
    Server(u16, String),
    /// The connection failed (closed, reset) or the driver gave up.
    Io(String),
    /// An answer that is not the right one (a short result, a missing own write).
    Wrong(String),
    /// No answer within [`HANG`].
    Hang,
}

/// One statement: in which phase it started, what it was, how it ended, how long it took.
#[derive(Clone, Debug)]
pub struct Op {
    pub phase: usize,
    pub kind: Kind,
    pub outcome: Outcome,
    pub took: Duration,
}

/// An insert the server acknowledged: its id, and the shard key for the sharded table.
#[derive(Clone, Copy, Debug)]
pub struct Acked {
    pub id: i64,
    pub user_id: Option<i64>,
    pub at: Instant,
}

/// What one load task saw.
#[derive(Default)]
pub struct Seen {
    pub ops: Vec<Op>,
    pub acked: Vec<Acked>,
}

/// The running load.
pub struct Load {
    stop: Arc<AtomicBool>,
    pub phase: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<Seen>>,
}

impl Load {
    /// `writers` writer tasks and `readers` reader tasks through `url`.
    pub fn start(url: &str, writers: usize, readers: usize) -> Load {
        Self::start_at(url, writers, readers, 0)
    }

    /// [`Load::start`], with the writers' ids counted from `base` (two loads into the same
    /// tables keep apart).
    pub fn start_at(url: &str, writers: usize, readers: usize, base: i64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for w in 0..writers {
            let (url, stop, phase) = (url.to_string(), stop.clone(), phase.clone());
            tasks.push(tokio::spawn(async move { write_loop(base, w as i64, &url, &stop, &phase).await }));
        }
        for r in 0..readers {
            let (url, stop, phase) = (url.to_string(), stop.clone(), phase.clone());
            tasks.push(tokio::spawn(async move { read_loop(r as i64, &url, &stop, &phase).await }));
        }
        Load { stop, phase, tasks }
    }

    /// Moves the load into the next phase (statements are counted by the phase they start in).
    pub fn enter(&self, phase: usize) {
        self.phase.store(phase, Ordering::SeqCst);
    }

    /// Stops every task and gathers what they saw.
    pub async fn finish(self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Seen::default();
        for t in self.tasks {
            let s = t.await.expect("a load task panicked");
            all.ops.extend(s.ops);
            all.acked.extend(s.acked);
        }
        all
    }
}

/// Runs `f` under the hang limit and turns its result into an outcome.
async fn timed<T>(
    seen: &mut Seen,
    phase: &AtomicUsize,
    kind: Kind,
    f: impl std::future::Future<Output = Result<T, mysql_async::Error>>,
) -> Option<T> {
    let (at, phase) = (Instant::now(), phase.load(Ordering::SeqCst));
    let (outcome, value) = match tokio::time::timeout(HANG, f).await {
        Err(_) => (Outcome::Hang, None),
        Ok(Ok(v)) => (Outcome::Ok, Some(v)),
        Ok(Err(mysql_async::Error::Server(e))) => (Outcome::Server(e.code, e.message), None),
        Ok(Err(e)) => (Outcome::Io(e.to_string()), None),
    };
    seen.ops.push(Op { phase, kind, outcome, took: at.elapsed() });
    value
}

/// Records a wrong answer to the statement just counted as successful.
fn wrong(seen: &mut Seen, why: String) {
    if let Some(op) = seen.ops.last_mut() {
        op.outcome = Outcome::Wrong(why);
    }
}

/// The task's connection: the one it has, or a new one (`None` once the load stops).
async fn open<'c>(
    conn: &'c mut Option<Conn>,
    url: &str,
    seen: &mut Seen,
    phase: &AtomicUsize,
    stop: &AtomicBool,
) -> Option<&'c mut Conn> {
    if conn.is_none() {
        *conn = Some(connect(url, seen, phase, stop).await?);
    }
    conn.as_mut()
}

async fn connect(url: &str, seen: &mut Seen, phase: &AtomicUsize, stop: &AtomicBool) -> Option<Conn> {
    while !stop.load(Ordering::SeqCst) {
        let opts = Opts::from_url(url).unwrap();
        if let Some(c) = timed(seen, phase, Kind::Connect, Conn::new(opts)).await {
            return Some(c);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Inserts rows with ids unique to this writer, alternately into the unsharded audit table and
/// the sharded one; every tenth statement reads the last acknowledged unsharded row back on
/// the same session (read-your-writes must hold through every fault).
async fn write_loop(base: i64, w: i64, url: &str, stop: &AtomicBool, phase: &AtomicUsize) -> Seen {
    let mut seen = Seen::default();
    let mut conn = None;
    let mut last_own: Option<i64> = None;
    let mut n: i64 = 0;
    while !stop.load(Ordering::SeqCst) {
        let Some(c) = open(&mut conn, url, &mut seen, phase, stop).await else { break };
        n += 1;
        let id = base + (w + 1) * 10_000_000 + n;
        let failed = if let (0, Some(own)) = (n % 10, last_own) {
            let sql = format!("SELECT v FROM fault_audit WHERE id = {own}");
            match timed(&mut seen, phase, Kind::ReadOwnWrite, c.query_first::<i64, _>(sql)).await {
                Some(Some(v)) if v == own * 7 => false,
                Some(got) => {
                    wrong(&mut seen, format!("own write {own} read back as {got:?}"));
                    false
                }
                None => true,
            }
        } else if n % 2 == 0 {
            let sql = format!("INSERT INTO fault_audit (id, w, v) VALUES ({id}, {w}, {})", id * 7);
            let ok = timed(&mut seen, phase, Kind::Write, c.query_drop(sql)).await.is_some();
            if ok {
                seen.acked.push(Acked { id, user_id: None, at: Instant::now() });
                last_own = Some(id);
            }
            !ok
        } else {
            let uid = id % 9973;
            let sql = format!("INSERT INTO fault_orders (user_id, id, v) VALUES ({uid}, {id}, {})", id * 7);
            let ok = timed(&mut seen, phase, Kind::ShardWrite, c.query_drop(sql)).await.is_some();
            if ok {
                seen.acked.push(Acked { id, user_id: Some(uid), at: Instant::now() });
            }
            !ok
        };
        if failed {
            // Whatever state the connection is in, start again on a new one.
            conn = None;
            tokio::time::sleep(Duration::from_millis(20)).await;
        } else {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    if let Some(c) = conn {
        let _ = tokio::time::timeout(Duration::from_secs(2), c.disconnect()).await;
    }
    seen
}

/// Autocommit reads of ten seed rows at a time (replicas serve them); a result that is not
/// exactly those ten rows with their values is a wrong answer.
async fn read_loop(r: i64, url: &str, stop: &AtomicBool, phase: &AtomicUsize) -> Seen {
    let mut seen = Seen::default();
    let mut conn = None;
    let mut n: i64 = 0;
    while !stop.load(Ordering::SeqCst) {
        let Some(c) = open(&mut conn, url, &mut seen, phase, stop).await else { break };
        n += 1;
        let from = (r * 131 + n * 17) % (SEED - 9) + 1;
        let sql = format!("SELECT id, v FROM fault_seed WHERE id BETWEEN {from} AND {} ORDER BY id", from + 9);
        match timed(&mut seen, phase, Kind::Read, c.query::<(i64, i64), _>(sql)).await {
            Some(rows) => {
                let right = rows.len() == 10
                    && rows.iter().enumerate().all(|(i, &(id, v))| id == from + i as i64 && v == 3 * id);
                if !right {
                    wrong(&mut seen, format!("rows {from}..{} came back as {rows:?}", from + 9));
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            None => {
                conn = None;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    if let Some(c) = conn {
        let _ = tokio::time::timeout(Duration::from_secs(2), c.disconnect()).await;
    }
    seen
}
