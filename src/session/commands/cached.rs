//! Reads answered from the result cache, and reads that fill it (see [`crate::cache`]); and
//! what every other statement a session completes ends in it.
//!
//! A hit is served only when the session could have been given the same answer without the
//! cache: under `session` consistency the entry's read started after the session's last
//! write returned, under `strong` (or a `sluice:primary` hint) it was read on the primary,
//! under `monotonic` it counts as a read where and when the entry was read, and only once
//! what the session read before is known.

use super::super::error::SessionError;
use super::super::Session;
use crate::cache::eligible::{examine, touches, Touches};
use crate::cache::{Allowed, Cache, Joined, Refused};
use crate::config::Consistency;
use crate::protocol::response::{Expect, ResponseScanner};
use crate::router::decide::Plan;
use crate::router::found_rows::Found;
use crate::router::{Feature, Kind};
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::Arc;
use std::time::Duration;

/// Names a transaction keeps for its end at most; past it, the end bumps everything.
const MAX_PENDING: usize = 1_000;

/// The session's side of invalidation.
#[derive(Debug, Default)]
pub(in crate::session) struct CacheMarks {
    /// Sluice's clock at the session's last write.
    last_write: u64,
    /// Names written in the open transaction, bumped again when it ends.
    pending: Vec<Box<str>>,
    /// The open transaction did something whose effects cannot be named.
    pending_all: bool,
}

/// A read the cache may answer or keep.
#[derive(Debug)]
pub(in crate::session) struct Cacheable {
    key: Bytes,
    deps: Vec<Box<str>>,
    allowed: Allowed,
    cache: Arc<Cache>,
    /// `[cache] single_flight_wait_ms` and `max_entry_bytes` of the statement's snapshot.
    wait: Duration,
    max_entry_bytes: u64,
}

/// Whether text read `sql`, decided as `plan`, goes through the cache. `raw` is the statement
/// as the client sent it: the key holds those bytes, never `sql`, in which every invalid UTF-8
/// byte (a latin1 'ä' or 'ö') reads as the same replacement character.
pub(in crate::session) fn cacheable(s: &Session, sql: &str, raw: &[u8], plan: &Plan<'_>) -> Option<Cacheable> {
    let elsewhere = plan.shard.is_some() || plan.rewrite.is_some();
    cacheable_read(s, sql, raw, &plan.analysis, elsewhere, Protocol::Text)
}

/// Whether an execute of prepared read `sql` (analysed as `a`; `elsewhere`: sharded or
/// answered by Sluice) goes through the cache. `params` is the execute's parameter block as
/// sent, `types` the parameter types remembered for it: both are part of the key.
pub(in crate::session) fn cacheable_execute(
    s: &Session,
    raw: &[u8],
    a: &crate::router::Analysis<'_>,
    elsewhere: bool,
    params: &[u8],
    types: Option<&[u8]>,
) -> Option<Cacheable> {
    let sql = String::from_utf8_lossy(raw);
    cacheable_read(s, &sql, raw, a, elsewhere, Protocol::Binary { params, types: types.unwrap_or(&[]) })
}

/// The protocol an answer is in, and for the binary one the values it was asked with.
#[derive(Clone, Copy)]
enum Protocol<'p> {
    Text,
    Binary { params: &'p [u8], types: &'p [u8] },
}

fn cacheable_read(
    s: &Session,
    sql: &str,
    raw: &[u8],
    a: &crate::router::Analysis<'_>,
    elsewhere: bool,
    protocol: Protocol<'_>,
) -> Option<Cacheable> {
    let rules = s.snap.cache_rules.as_ref()?;
    if !rules.any() && !sql.contains("sluice:cache") {
        return None;
    }
    if a.kind != Kind::Read || elsewhere {
        return None;
    }
    let cfg = s.snap.config.cache.as_ref()?;
    let cache = s.shared.cache(&s.snap)?;
    let refuse = |why: Refused| {
        cache.refused(why);
        None
    };
    // Pinned (user variables, temporary tables, locks, ...) or in a transaction: the answer
    // depends on state a cached one would ignore.
    let in_transaction = s.state.txn().held().is_some() || s.state.autocommit_off() || s.state.txn().pins();
    if s.lease.is_some() || s.state.pins().any() || in_transaction || s.seq != 1 {
        return refuse(Refused::SessionState);
    }
    if a.features.without(&[Feature::VariablesOnly]) != Default::default() {
        return refuse(Refused::NonDeterministic);
    }
    // FOUND_ROWS() after it counts the rows skipped by its offset: a cached answer knows
    // them only when they follow from the offset (`router::found_rows`).
    if !matches!(a.found, Found::Sent | Found::Plus(_)) {
        return refuse(Refused::NonDeterministic);
    }
    let read = match examine(sql) {
        Ok(r) => r,
        Err(e) => return refuse(e.into()),
    };
    let fingerprint = if a.fingerprint != 0 { a.fingerprint } else { crate::sql::fingerprint::hash(sql) };
    let allowed = match rules.allow(sql, fingerprint, &read, s.state.want.schema.as_deref()) {
        Ok(a) => a,
        Err(e) => return refuse(e.into()),
    };
    Some(Cacheable {
        key: key(s, raw, allowed.shared, protocol),
        deps: read.deps,
        allowed,
        cache: cache.clone(),
        wait: Duration::from_millis(cfg.single_flight_wait_ms),
        max_entry_bytes: cfg.max_entry_bytes,
    })
}

/// The key: everything that makes two identical statements answer differently. The user
/// (unless a rule shares the tables), the schema, every session variable Sluice replays
/// (character sets, collation, sql_mode, time_zone, ...) and the client's capabilities the
/// answer's bytes depend on. The status flags are not: only sessions outside transactions, with
/// autocommit on, use the cache, and the answer carries the flags the server sent.
fn key(s: &Session, sql: &[u8], shared: bool, protocol: Protocol<'_>) -> Bytes {
    let want = &s.state.want;
    let mut k = BytesMut::with_capacity(64 + sql.len());
    k.put_u8(match protocol {
        Protocol::Text => 1,
        Protocol::Binary { .. } => 2,
    });
    k.put_u8(u8::from(s.client.deprecate_eof()) | u8::from(s.client.session_track()) << 1);
    k.put_u8(u8::from(want.multi_statements));
    let field = |k: &mut BytesMut, v: &[u8]| {
        k.put_u32_le(v.len() as u32);
        k.put_slice(v);
    };
    field(&mut k, if shared { b"" } else { s.login.user.name.get_ref().as_bytes() });
    field(&mut k, want.schema.as_deref().unwrap_or("").as_bytes());
    k.put_u32_le(want.vars.len() as u32);
    for (name, value) in want.vars.iter() {
        field(&mut k, name.as_bytes());
        field(&mut k, value.as_bytes());
    }
    field(&mut k, sql);
    if let Protocol::Binary { params, types } = protocol {
        field(&mut k, params);
        field(&mut k, types);
    }
    k.freeze()
}

/// Runs a cacheable text read: from the cache when an entry may serve this session, else on a
/// backend (once for all identical misses in flight), keeping the answer if it may be kept.
pub(in crate::session) async fn execute(
    s: &mut Session,
    payload: Bytes,
    plan: &Plan<'_>,
    c: Cacheable,
) -> Result<(), SessionError> {
    match begin(s, c, &plan.analysis).await {
        Step::Served => Ok(()),
        Step::Run(run) => {
            let done = s.execute(payload, Expect::Results, Some(&plan.analysis), None).await;
            end(s, run, &done);
            done.map(|_| ())
        }
    }
}

/// What a cacheable read does after [`begin`].
pub(in crate::session) enum Step {
    /// Answered from the cache.
    Served,
    /// Run it on a backend, then hand the outcome to [`end`].
    Run(Box<Running>),
}

/// A cacheable read on its way to a backend.
pub(in crate::session) struct Running {
    /// Held by the session that runs the read for every identical miss; `None` when it runs
    /// on its own after waiting (its answer is not stored).
    lead: Option<crate::cache::Lead>,
    fill: Option<crate::cache::Fill>,
    c: Cacheable,
}

/// Serves the read from the cache if an entry may serve this session, else waits for an
/// identical miss in flight (bounded) or leads one, and starts recording the answer.
pub(in crate::session) async fn begin(s: &mut Session, c: Cacheable, a: &crate::router::Analysis<'_>) -> Step {
    let cache = c.cache.clone();
    if serve(s, &cache, &c.key, a) {
        return Step::Served;
    }
    let lead = match cache.join(&c.key) {
        Joined::Lead(l) => Some(l),
        Joined::Wait(f) => {
            cache.wait(f, c.wait).await;
            if serve(s, &cache, &c.key, a) {
                return Step::Served;
            }
            // The leader's answer could not be kept (or took too long): run it here.
            match cache.join(&c.key) {
                Joined::Lead(l) => Some(l),
                Joined::Wait(_) => None,
            }
        }
    };
    let fill = lead.as_ref().map(|_| cache.begin_fill(&c.deps));
    s.client.record(usize::try_from(c.max_entry_bytes).unwrap_or(usize::MAX));
    Step::Run(Box::new(Running { lead, fill, c }))
}

/// After the read ran: stores its answer if it may be kept, and ends the flight.
pub(in crate::session) fn end(
    s: &mut Session,
    run: Box<Running>,
    done: &Result<Option<ResponseScanner>, SessionError>,
) {
    let recorded = s.client.take_recording();
    let Running { lead, fill, c } = *run;
    if let (Some(fill), Ok(Some(scanner))) = (fill, done) {
        let kept = keepable(s, scanner, recorded).and_then(|(bytes, backend)| {
            c.cache.store(c.key, fill, bytes, scanner.rows, backend, c.allowed.ttl, c.max_entry_bytes)
        });
        if let Err(why) = kept {
            c.cache.refused(why);
        }
    }
    drop(lead);
}

/// The answer's bytes and where it was read, if it may be kept.
fn keepable(
    s: &Session,
    scanner: &ResponseScanner,
    recorded: Option<Bytes>,
) -> Result<(Bytes, Arc<crate::topology::Backend>), Refused> {
    if scanner.error.is_some() || scanner.warnings > 0 {
        return Err(Refused::ErrorOrWarnings);
    }
    if s.state.pins().any() || s.lease.is_some() {
        return Err(Refused::SessionState);
    }
    let backend = s.note.backend.clone().ok_or(Refused::SessionState)?;
    match recorded {
        Some(b) if !b.is_empty() => Ok((b, backend)),
        _ => Err(Refused::TooLarge),
    }
}

/// Answers from the cache if an entry may serve this session now.
fn serve(s: &mut Session, cache: &Cache, key: &Bytes, a: &crate::router::Analysis<'_>) -> bool {
    let Some(e) = cache.get(key) else { return false };
    let level = s.read_level(a);
    if !e.serves(level, s.cache.last_write) {
        cache.refused(Refused::Consistency);
        return false;
    }
    // An empty page after an offset: how many rows matched only a backend can say.
    let Some(found) = crate::router::found_rows::known(a.found, e.rows) else { return false };
    if level == Consistency::Monotonic {
        let Some(shard) = s.snap.topology.shard(s.snap.topology.default_shard) else { return false };
        let (_, unresolved) = s.reads.resolve(shard);
        if unresolved {
            cache.refused(Refused::Consistency);
            return false;
        }
        s.reads.read_at(&e.backend, e.finished_ms);
    }
    s.client.extend(&e.bytes);
    s.state.found_rows = found;
    s.state.row_count = -1;
    s.warnings = None;
    s.note.begin(crate::stats::Destination::Cache);
    s.note.rows_sent = e.rows;
    cache.hit();
    true
}

/// After a statement that is not a plain read: ends the entries it may have changed, now
/// and, inside a transaction, again when the transaction ends. `kind` and `routine` are from
/// its analysis.
pub(in crate::session) fn after_statement(s: &mut Session, sql: &str, kind: Kind, routine: bool) {
    let Some(cache) = s.shared.cache(&s.snap).cloned() else { return };
    let in_transaction = s.state.txn().pins() || s.state.autocommit_off();
    if kind != Kind::Read || routine {
        let t = touches(sql, routine);
        if in_transaction {
            match &t {
                Touches::Names(n) => {
                    for name in n {
                        if !s.cache.pending.contains(name) {
                            s.cache.pending.push(name.clone());
                        }
                    }
                    if s.cache.pending.len() > MAX_PENDING {
                        // A transaction that names this much ends everything when it ends.
                        s.cache.pending.clear();
                        s.cache.pending_all = true;
                    }
                }
                Touches::Everything => s.cache.pending_all = true,
                Touches::Nothing => {}
            }
        }
        s.cache.last_write = cache.wrote(&t, &s.state.written, s.state.untracked_write);
    }
    if !in_transaction && (s.cache.pending_all || !s.cache.pending.is_empty()) {
        // The transaction ended (committed or not): what it wrote is visible now.
        let t = if std::mem::take(&mut s.cache.pending_all) {
            s.cache.pending.clear();
            Touches::Everything
        } else {
            Touches::Names(std::mem::take(&mut s.cache.pending))
        };
        s.cache.last_write = cache.wrote(&t, &s.state.written, s.state.untracked_write);
    }
}
