//! Figures per phase (statements, errors by code, worst error latency, hangs, wrong answers),
//! the recovery times, the audit — printed, written to target/faults-report.md — and the
//! guarantees they must meet.

use crate::audit::Audit;
use crate::load::{Kind, Op, Outcome, Seen};
use crate::phases::{Measured, NAMES};
use crate::{CHECK_MS, CONNECT_MS, DEADLINE_MS};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// One phase's statements of one kind.
#[derive(Default, Debug)]
pub struct Tally {
    pub ops: usize,
    pub ok: usize,
    /// Error code (0 = connection error) → count.
    pub errors: BTreeMap<u16, usize>,
    pub wrong: Vec<String>,
    pub hangs: usize,
    pub worst_error: Duration,
    /// The first message seen for each error code.
    pub sample: BTreeMap<u16, String>,
}

/// The report and what it is computed from.
pub struct Report {
    pub text: String,
    pub tallies: BTreeMap<(usize, Kind), Tally>,
    /// Primary restarted → first acknowledged unsharded insert.
    pub writes_resumed_after_restart: Option<Duration>,
    /// The first write refused by the read-only old primary → the first acknowledged
    /// unsharded insert after it (on the promoted replica).
    pub writes_resumed_after_switch: Option<Duration>,
}

fn tally(ops: &[Op]) -> BTreeMap<(usize, Kind), Tally> {
    let mut t: BTreeMap<(usize, Kind), Tally> = BTreeMap::new();
    for op in ops {
        let e = t.entry((op.phase, op.kind)).or_default();
        e.ops += 1;
        let (code, msg) = match &op.outcome {
            Outcome::Ok => {
                e.ok += 1;
                continue;
            }
            Outcome::Server(code, msg) => (*code, msg),
            Outcome::Io(msg) => (0, msg),
            Outcome::Wrong(why) => {
                e.wrong.push(why.clone());
                continue;
            }
            Outcome::Hang => {
                e.hangs += 1;
                continue;
            }
        };
        *e.errors.entry(code).or_default() += 1;
        e.sample.entry(code).or_insert_with(|| msg.clone());
        e.worst_error = e.worst_error.max(op.took);
    }
    t
}

fn first_ack_after(seen: &Seen, t: Instant) -> Option<Duration> {
    seen.acked.iter().filter(|a| a.user_id.is_none() && a.at > t).map(|a| a.at - t).min()
}

impl Report {
    pub fn new(seen: &Seen, m: &Measured, audit: &Audit) -> Report {
        let tallies = tally(&seen.ops);
        let writes_resumed_after_restart = first_ack_after(seen, m.primary_up_at);
        let writes_resumed_after_switch = first_ack_after(seen, m.switch_at);
        let mut s = String::new();
        let _ = writeln!(s, "| phase | statement | count | ok | errors (code × n; 0 = connection closed) | slowest error | hangs | wrong |");
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        for ((phase, kind), t) in &tallies {
            let errors: Vec<String> = t.errors.iter().map(|(c, n)| format!("{c} × {n}")).collect();
            let _ = writeln!(
                s,
                "| {} | {kind:?} | {} | {} | {} | {} | {} | {} |",
                NAMES[*phase],
                t.ops,
                t.ok,
                if errors.is_empty() { "none".into() } else { errors.join(", ") },
                if t.errors.is_empty() { "-".into() } else { format!("{} ms", t.worst_error.as_millis()) },
                t.hangs,
                t.wrong.len()
            );
        }
        let mut samples = BTreeMap::new();
        for t in tallies.values() {
            for (c, m) in &t.sample {
                samples.entry(*c).or_insert(m);
            }
        }
        for (c, m) in samples {
            let _ = writeln!(s, "\nerror {c}: {m}");
        }
        let total: usize = tallies.values().map(|t| t.ops).sum();
        let errors: usize = tallies.values().map(|t| t.errors.values().sum::<usize>()).sum();
        let _ = writeln!(s, "\nstatements {total}, errors {errors}");
        let _ = writeln!(
            s,
            "replica SIGKILL → marked down {} ms; restart → eligible {} ms",
            m.replica_down_after.as_millis(),
            m.replica_back_after.as_millis()
        );
        let ms = |d: Option<Duration>| d.map_or("never".to_string(), |d| format!("{} ms", d.as_millis()));
        let _ = writeln!(s, "primary restarted → first acknowledged write {}", ms(writes_resumed_after_restart));
        let _ = writeln!(s, "replica frozen → marked down {} ms", m.frozen_down_after.as_millis());
        let _ = writeln!(
            s,
            "switchover: the promoted replica writable → /status names it the writer {} ms, first acknowledged write {}",
            m.writer_moved_after.as_millis(),
            ms(writes_resumed_after_switch)
        );
        let _ = writeln!(s, "SIGTERM: in-flight statements {:?}; exited {:?}", m.in_flight_at_sigterm, m.exited_after);
        let _ = writeln!(
            s,
            "audit: acknowledged {} unsharded + {} sharded; found {} + {} rows; lost {}, misplaced {}, on two shards {}; \
             committed though the client saw an error {}",
            audit.acked_unsharded,
            audit.acked_sharded,
            audit.found_unsharded,
            audit.found_sharded,
            audit.lost.len(),
            audit.misplaced.len(),
            audit.duplicated.len(),
            audit.unacked_present
        );
        Report { text: s, tallies, writes_resumed_after_restart, writes_resumed_after_switch }
    }

    fn get(&self, phase: usize, kind: Kind) -> Option<&Tally> {
        self.tallies.get(&(phase, kind))
    }

    /// The guarantees, phase by phase.
    pub fn assert_guarantees(&self, m: &Measured, audit: &Audit) {
        let text = &self.text;
        for ((phase, kind), t) in &self.tallies {
            assert_eq!(t.hangs, 0, "{kind:?} statements hung in '{}'\n{text}", NAMES[*phase]);
            assert!(
                t.wrong.is_empty(),
                "wrong answers in '{}': {:?}\n{text}",
                NAMES[*phase],
                &t.wrong[..t.wrong.len().min(3)]
            );
            if *phase < 5 && *kind != Kind::Connect {
                // Until Sluice itself stops, every failure is a MySQL error, never a dropped
                // connection.
                assert!(!t.errors.contains_key(&0), "connection errors in '{}' ({kind:?})\n{text}", NAMES[*phase]);
            }
        }
        for kind in [Kind::Write, Kind::ShardWrite, Kind::Read, Kind::ReadOwnWrite] {
            let t = self.get(0, kind).unwrap_or_else(|| panic!("no {kind:?} in the steady phase\n{text}"));
            assert!(t.errors.is_empty() && t.ok > 0, "steady phase {kind:?}\n{text}");
        }
        // A replica killed: autocommit reads never fail (retried on the other replica).
        for kind in [Kind::Read, Kind::Write, Kind::ShardWrite] {
            let t = self.get(1, kind).unwrap();
            assert!(t.errors.is_empty(), "errors with a replica killed ({kind:?})\n{text}");
        }
        // The primary killed: reads go on from the replicas that hold its last heartbeat.
        for kind in [Kind::Read, Kind::Connect] {
            let t = self.get(2, kind).unwrap();
            assert!(t.errors.is_empty(), "{kind:?} errors with the primary down\n{text}");
        }
        // Writes fail fast and cleanly, and resume after the restart.
        let w = self.get(2, Kind::Write).unwrap();
        assert!(
            w.worst_error <= Duration::from_millis(CONNECT_MS + 1000),
            "a write error took {:?}\n{text}",
            w.worst_error
        );
        let resumed = self.writes_resumed_after_restart.expect("writes never resumed after the primary restarted");
        assert!(
            resumed <= Duration::from_millis(2 * CHECK_MS + 500),
            "writes resumed {resumed:?} after the restart\n{text}"
        );
        assert!(self.get(2, Kind::ShardWrite).unwrap().errors.is_empty(), "the shards were not touched\n{text}");
        // A frozen replica: reads caught on it get ERROR 1969 at the deadline, nothing else.
        let r = self.get(3, Kind::Read).unwrap();
        assert!(r.errors.keys().all(|&c| c == 1969), "reads with a replica frozen\n{text}");
        // The deadline, the kill's own connect (which the frozen server does not answer), the
        // grace after it, and half a second of scheduling on a two-core machine.
        let bound = Duration::from_millis(DEADLINE_MS + CONNECT_MS + CONNECT_MS.max(1000) + 500);
        assert!(r.worst_error <= bound, "a read error took {:?} (bound {bound:?})\n{text}", r.worst_error);
        // Switchover: writes follow within two check intervals (plus the time /status is polled).
        let limit = Duration::from_millis(2 * CHECK_MS + 500);
        assert!(m.writer_moved_after <= limit, "writer moved after {:?}\n{text}", m.writer_moved_after);
        let resumed = self.writes_resumed_after_switch.expect("writes never resumed after the switchover");
        assert!(resumed <= limit, "writes resumed {resumed:?} after the promoted replica became writable\n{text}");
        // SIGTERM: every statement running finishes whole; the process exits cleanly.
        assert!(
            m.in_flight_at_sigterm.iter().all(|r| r.as_deref() == Ok("complete")),
            "{:?}\n{text}",
            m.in_flight_at_sigterm
        );
        assert!(matches!(m.exited_after, Some((_, true))), "exit after SIGTERM: {:?}\n{text}", m.exited_after);
        // Nothing acknowledged is lost, misplaced or doubled.
        assert!(
            audit.lost.is_empty(),
            "lost acknowledged writes: {:?}\n{text}",
            &audit.lost[..audit.lost.len().min(10)]
        );
        assert!(
            audit.misplaced.is_empty(),
            "misplaced: {:?}\n{text}",
            &audit.misplaced[..audit.misplaced.len().min(10)]
        );
        assert!(audit.duplicated.is_empty(), "on two shards: {:?}\n{text}", audit.duplicated);
        assert!(audit.acked_unsharded > 100 && audit.acked_sharded > 100, "too little load to judge\n{text}");
    }
}

impl Measured {
    /// Writes the report next to the build output, for docs/operations.md.
    pub fn write_figures(&mut self, report: &Report) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/faults-report.md");
        if std::fs::write(&path, &report.text).is_ok() {
            self.figures = Some(path);
        }
    }
}
