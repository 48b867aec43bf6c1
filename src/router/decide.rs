//! The one decision per text statement: from the statement, a plain view of the session and
//! the config's rules, a [`Command`] that says everything the session is to do with it.
//!
//! Every recogniser runs here, in a fixed order, and nowhere else: the questions Sluice answers
//! itself (warnings, `LAST_INSERT_ID()` and friends, `sluice_consistency`, `KILL`), the
//! transaction control Sluice owns when sharding (a held-back `BEGIN`, XA commit), the sharding
//! rules (one shard, several, every shard, scatter, refused) and the text rewrites
//! (`@@socket`, `CONNECTION_ID()`). The function is pure: no I/O, no `.await`, no pools, no
//! clock, so it is tested by tables of statement + session view → command
//! (`decide/tests.rs`). What stays for execution is only what needs a backend: where among a
//! shard's primary and replicas a read goes ([`super::route`], which reads live health and
//! lag), and the XA branch switch when a transaction reaches another shard.

use super::analysis::{self, analyze_marking, SessionValue};
use super::kill::{self, Kill};
use super::local::{self, ConsistencyStatement, Question};
use super::{Analysis, Feature, Kind};
use crate::config::Consistency;
use crate::sharding::scatter::Scatter;
use crate::sharding::{Sharding, Target};
use crate::sql::lex::{Lexer, Token};
use crate::topology::Topology;

/// What the decision needs to know of the session: plain values, copied in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionView {
    /// Topology index of the shard of the connection the session holds (pinned), if any.
    pub held: Option<usize>,
    /// A `BEGIN` is held back until the transaction's first statement picks its shard.
    pub begin_held: bool,
    /// A cross-shard (XA) transaction is open.
    pub xa: bool,
    /// The session's Sluice connection id (what `CONNECTION_ID()` must return).
    pub connection_id: u32,
    /// The statement's fingerprint is wanted (`[stats] enabled`): the analysis hashes it in
    /// its pass; otherwise that work is skipped.
    pub fingerprint: bool,
    /// Sluice's own Unix socket, if it listens on one: what `SELECT @@socket` answers.
    pub socket: Option<&'static str>,
}

impl SessionView {
    /// In a transaction Sluice knows of from its own bookkeeping (held connection or held
    /// `BEGIN`): a statement must not fan out to several shards.
    fn in_transaction(&self) -> bool {
        self.held.is_some() || self.begin_held
    }
}

/// The part of one config snapshot the decision reads.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'t> {
    /// `[sharding]`, when configured.
    pub sharding: Option<&'t Sharding>,
    /// Topology index of the shard that holds unsharded tables.
    pub default_shard: usize,
    /// The snapshot's version: a shard index means that shard only under it.
    pub version: u64,
}

impl<'t> Rules<'t> {
    /// The rules of a topology published as snapshot `version`.
    pub fn of(topology: &'t Topology, version: u64) -> Rules<'t> {
        Rules { sharding: topology.sharding.as_ref(), default_shard: topology.default_shard, version }
    }
}

/// A shard chosen by the sharding rules, and the snapshot version they chose it under (an
/// index means nothing under another snapshot: resolving it there is refused, never clamped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetShard {
    pub index: usize,
    pub version: u64,
}

/// What the session does with one statement.
#[derive(Debug)]
pub enum Command<'s> {
    /// Sluice answers from what the session keeps; nothing reaches a backend.
    Local(Local),
    /// Refused before anything is sent.
    Refuse(Refusal),
    /// Transaction control Sluice carries out itself (sharding only).
    Txn(TxnStep),
    /// One statement on one backend.
    Execute(Plan<'s>),
    /// A statement on several shards.
    Fanout(Fanout),
}

/// The questions Sluice answers itself.
#[derive(Debug, PartialEq, Eq)]
pub enum Local {
    /// `SHOW WARNINGS` and friends, from the list the last statement left.
    Warnings(Question),
    /// `SELECT LAST_INSERT_ID()`, `ROW_COUNT()`, `FOUND_ROWS()`, from what Sluice recorded.
    SessionValues(Vec<(SessionValue, String)>),
    /// `SET @@sluice_consistency = level`.
    SetConsistency(Consistency),
    /// `SELECT @@sluice_consistency`.
    ShowConsistency,
    /// `KILL [QUERY | CONNECTION] id` (ids are Sluice's).
    Kill(Kill),
    /// `SHOW STATUS LIKE 'Ssl_cipher'` / `'Ssl_version'`: the client's own TLS session.
    TlsStatus(local::TlsStatus),
}

/// Why a statement is refused. Each becomes one client error in
/// `session::error::refusal_to_client`.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A level `sluice_consistency` does not have (1231).
    WrongConsistency(String),
    /// `KILL` inside `PREPARE` / `EXECUTE`: it would run on a backend with a backend's id.
    KillInPrepared,
    /// By the sharding rules: what is not supported (1235).
    Sharding(String),
    /// A write on sharded tables while `[sharding] pause_writes` is on.
    WritesPaused,
    /// Inside a transaction on a shard: the statement would span shards, or Sluice cannot tell
    /// which tables it touches (1235).
    Transaction(String),
    /// A shard chosen under an earlier config no longer means that shard: not run (1105).
    TopologyChanged,
}

impl Refusal {
    /// Counted as a refused statement on sharded tables.
    pub fn is_sharding(&self) -> bool {
        matches!(self, Refusal::Sharding(_) | Refusal::WritesPaused)
    }
}

/// How the client ends a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnEnd {
    Commit,
    Rollback,
}

/// Transaction control Sluice performs instead of relaying the client's statement.
#[derive(Debug, PartialEq, Eq)]
pub enum TxnStep {
    /// `BEGIN` with sharding: answered now, sent just before the transaction's first
    /// statement on the connection that statement lands on.
    HoldBegin,
    /// `COMMIT` / `ROLLBACK` of a held-back `BEGIN` that never ran a statement.
    DropHeldBegin,
    /// `COMMIT` / `ROLLBACK` of a cross-shard (XA) transaction: Sluice runs the protocol.
    EndXa(TxnEnd),
}

/// One statement on one backend.
#[derive(Debug)]
pub struct Plan<'s> {
    /// What the statement does (the session's state tracking and the read/write routing
    /// read it).
    pub analysis: Analysis<'s>,
    /// The shard the statement must run on. `None`: the connection the session holds, else
    /// the default shard.
    pub shard: Option<TargetShard>,
    /// The shard was chosen by the ring from the statement's key.
    pub by_ring: bool,
    /// The text to send instead of the client's (`@@socket` hidden, `CONNECTION_ID()` made
    /// the session's id). Only valid UTF-8 statements are rewritten: a latin1 byte must reach
    /// the server as sent.
    pub rewrite: Option<String>,
}

/// A statement that runs on several shards.
#[derive(Debug)]
pub enum Fanout {
    /// One statement per shard (topology index, text), one after another, answered with one
    /// combined OK: an INSERT split by key (`split`), DDL or an allowed scatter write.
    Each { parts: Vec<(usize, String)>, what: &'static str, split: bool },
    /// A read that needs every shard, combined as `scatter` says.
    Scatter { scatter: Scatter, shards: Vec<usize>, max_rows: usize },
}

/// Decides what the session does with text statement `sql` (`utf8`: it was valid UTF-8 as
/// sent, so it may be rewritten).
pub fn decide<'s>(sql: &'s str, utf8: bool, view: &SessionView, rules: &Rules<'_>) -> Command<'s> {
    // A pinned session's questions go to its own connection, which has the real list.
    if view.held.is_none() {
        if let Some(q) = local::question(sql) {
            return Command::Local(Local::Warnings(q));
        }
    }
    if let Some(values) = analysis::session_values(sql) {
        return Command::Local(Local::SessionValues(values));
    }
    if let Some(v) = local::tls_status(sql) {
        return Command::Local(Local::TlsStatus(v));
    }
    // One pass finds both the routing facts and whether a sharded table is named.
    let a = match rules.sharding {
        Some(sh) => analyze_marking(sql, |w| sh.is_sharded(w), view.fingerprint),
        None => analyze_marking(sql, |_| false, view.fingerprint),
    };
    if let Some(local) = own_statement(&a, sql) {
        return local;
    }
    // An XA transaction or a held `BEGIN` outlives a reload that removed sharding: they are
    // still ended as they began.
    if rules.sharding.is_some() || view.xa || view.begin_held {
        if let Some(txn) = transaction_control(&a, sql, rules.sharding.is_some(), view) {
            return txn;
        }
    }
    if let Some(sh) = rules.sharding.filter(|_| a.marked) {
        return on_sharded_tables(a, sql, utf8, view, rules, sh);
    }
    unsharded(a, sql, utf8, view, rules)
}

/// Statements about Sluice's own state: `sluice_consistency`, `KILL`.
fn own_statement<'s>(a: &Analysis<'s>, sql: &str) -> Option<Command<'s>> {
    if a.features.has(Feature::SysVar) {
        match local::consistency_statement(sql) {
            Some(ConsistencyStatement::Show) => return Some(Command::Local(Local::ShowConsistency)),
            Some(ConsistencyStatement::Set(v)) => {
                return Some(match Consistency::parse(&v) {
                    Some(level) => Command::Local(Local::SetConsistency(level)),
                    None => Command::Refuse(Refusal::WrongConsistency(v)),
                })
            }
            None => {}
        }
    }
    if a.first.eq_ignore_ascii_case("kill") {
        if let Some(k) = kill::kill_statement(sql) {
            return Some(Command::Local(Local::Kill(k)));
        }
    }
    let dynamic = a.first.eq_ignore_ascii_case("prepare") || a.first.eq_ignore_ascii_case("execute");
    if dynamic && kill::prepares_kill(sql) {
        return Some(Command::Refuse(Refusal::KillInPrepared));
    }
    None
}

/// With sharding, a transaction lives on one shard: its `BEGIN` is held back until its first
/// statement picks the shard, and an XA transaction's end is Sluice's to run.
fn transaction_control<'s>(a: &Analysis<'_>, sql: &str, sharding: bool, view: &SessionView) -> Option<Command<'s>> {
    if sharding && !view.begin_held && view.held.is_none() && begin_is_deferrable(a) {
        return Some(Command::Txn(TxnStep::HoldBegin));
    }
    let end = transaction_end(a, sql)?;
    if view.xa {
        return Some(match end {
            End::Plain(e) => Command::Txn(TxnStep::EndXa(e)),
            End::Chained => Command::Refuse(Refusal::Transaction(
                "COMMIT AND CHAIN or RELEASE in a cross-shard (XA) transaction".into(),
            )),
        });
    }
    if view.begin_held && view.held.is_none() && matches!(end, End::Plain(_)) {
        // A transaction that never ran a statement: nothing to commit or roll back.
        return Some(Command::Txn(TxnStep::DropHeldBegin));
    }
    None
}

/// A statement that names a sharded table (`a.marked`).
fn on_sharded_tables<'s>(
    a: Analysis<'s>,
    sql: &'s str,
    utf8: bool,
    view: &SessionView,
    rules: &Rules<'_>,
    sh: &Sharding,
) -> Command<'s> {
    if sh.pause_writes && a.kind != Kind::Read {
        return Command::Refuse(Refusal::WritesPaused);
    }
    let across = |what: &str| Command::Refuse(Refusal::Transaction(what.to_string()));
    match sh.plan_cached(sql) {
        Target::Default => unsharded(a, sql, utf8, view, rules),
        Target::Shard(i) => {
            let shard = TargetShard { index: sh.topology_index[i], version: rules.version };
            execute(a, sql, utf8, view, Some(shard), true)
        }
        Target::Param(_) => Command::Refuse(Refusal::Sharding("a `?` placeholder outside a prepared statement".into())),
        Target::Refuse(m) => Command::Refuse(Refusal::Sharding(m)),
        Target::Scatter(_) if view.in_transaction() => across("a read across shards inside a transaction"),
        Target::Scatter(scatter) => Command::Fanout(Fanout::Scatter {
            scatter,
            shards: sh.topology_index.clone(),
            max_rows: sh.max_scatter_rows,
        }),
        Target::Split(_) if view.in_transaction() => {
            across("INSERT split by shard inside a transaction (it would span several shards)")
        }
        Target::Split(parts) => Command::Fanout(Fanout::Each {
            parts: parts.into_iter().map(|(i, q)| (sh.topology_index[i], q)).collect(),
            what: "INSERT split by shard",
            split: true,
        }),
        Target::All { ddl } => {
            let what = if ddl { "DDL on a sharded table" } else { "write without shard key (allow_scatter_writes)" };
            if view.in_transaction() {
                return across(&format!("{what} inside a transaction (it would span several shards)"));
            }
            let parts = sh.topology_index.iter().map(|&i| (i, sql.to_string())).collect();
            Command::Fanout(Fanout::Each { parts, what, split: false })
        }
    }
}

/// A statement on no sharded table. Its tables are on the default shard; while the session
/// holds a connection on another shard (a transaction that began on a sharded table) one that
/// names a table is moved there like any other cross-shard statement (refused, or another XA
/// branch), and one that names none (`SELECT 1`, `SET`, `SAVEPOINT`) stays where it is.
fn unsharded<'s>(a: Analysis<'s>, sql: &'s str, utf8: bool, view: &SessionView, rules: &Rules<'_>) -> Command<'s> {
    if view.held.is_none_or(|h| h == rules.default_shard) {
        return execute(a, sql, utf8, view, None, false);
    }
    match crate::sharding::plan::may_name_tables(sql) {
        Some(false) => execute(a, sql, utf8, view, None, false),
        None if !matches!(a.kind, Kind::Read | Kind::Write) => execute(a, sql, utf8, view, None, false),
        None => Command::Refuse(Refusal::Transaction(
            "a statement Sluice cannot parse inside a transaction on a sharded table's shard".into(),
        )),
        Some(true) => {
            let default = TargetShard { index: rules.default_shard, version: rules.version };
            execute(a, sql, utf8, view, Some(default), false)
        }
    }
}

/// One statement on one backend, with the text rewrites it needs.
fn execute<'s>(
    a: Analysis<'s>,
    sql: &'s str,
    utf8: bool,
    view: &SessionView,
    shard: Option<TargetShard>,
    by_ring: bool,
) -> Command<'s> {
    let mut rewrite = None;
    if utf8 && a.features.has(Feature::Socket) {
        rewrite = super::rewrite::hide_socket(sql, view.socket);
    }
    if utf8 && a.features.has(Feature::ConnectionId) {
        if let Some(r) = super::rewrite::connection_id_as_literal(rewrite.as_deref().unwrap_or(sql), view.connection_id)
        {
            rewrite = Some(r);
        }
    }
    Command::Execute(Plan { analysis: a, shard, by_ring, rewrite })
}

/// `BEGIN` / `START TRANSACTION` (not READ ONLY, which may run on a replica).
fn begin_is_deferrable(a: &Analysis<'_>) -> bool {
    let first = a.first;
    (first.eq_ignore_ascii_case("begin") || first.eq_ignore_ascii_case("start"))
        && a.kind == Kind::Other
        && !a.features.has(Feature::MultiStatement)
}

/// How a statement ends a transaction.
enum End {
    /// `COMMIT [WORK]`, `ROLLBACK [WORK]`, `... AND NO CHAIN`.
    Plain(TxnEnd),
    /// `... AND CHAIN` or `... RELEASE`: another transaction or a disconnect follows.
    Chained,
}

/// `COMMIT` / `ROLLBACK` (not `ROLLBACK TO SAVEPOINT`, which ends nothing).
fn transaction_end(a: &Analysis<'_>, sql: &str) -> Option<End> {
    let end = if a.first.eq_ignore_ascii_case("commit") {
        TxnEnd::Commit
    } else if a.first.eq_ignore_ascii_case("rollback") {
        TxnEnd::Rollback
    } else {
        return None;
    };
    let mut words = Lexer::new(sql).filter_map(|t| match t {
        Token::Word(w) => Some(w.to_ascii_lowercase()),
        _ => None,
    });
    words.next();
    let mut next = words.next();
    if next.as_deref() == Some("work") {
        next = words.next();
    }
    match next.as_deref() {
        None => Some(End::Plain(end)),
        Some("to") => None,
        Some("and") if words.next().as_deref() == Some("no") => Some(End::Plain(end)),
        Some(_) => Some(End::Chained),
    }
}

#[cfg(test)]
mod tests;
