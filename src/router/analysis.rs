//! One pass over a statement's tokens that finds what the session needs to know besides the
//! route: which session state the statement creates or reads (user variables, temporary tables,
//! locks, LAST_INSERT_ID() and friends). Conservative by design: a false positive costs some
//! multiplexing, a false negative would leak one client's state into another's.

use super::classify::{self, Hint, Kind};
use super::found_rows::Found;
use crate::sql::fingerprint::{Hasher as FpHasher, Normalizer};
use crate::sql::lex::{Lexer, Token};

/// Facts found in a statement, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Features(u32);

/// Named feature bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Feature {
    /// Mentions a user variable (`@x`): may assign it (SET, :=, INTO, CALL ... OUT).
    UserVariable = 1,
    /// `CREATE TEMPORARY TABLE`.
    TempTable = 1 << 1,
    /// `LOCK TABLE(S)`, `FLUSH TABLES ... WITH READ LOCK` or `FLUSH TABLES ... FOR EXPORT`.
    LockTables = 1 << 2,
    /// `UNLOCK TABLES`.
    UnlockTables = 1 << 3,
    /// `GET_LOCK(`: a named lock that lives on the connection.
    UserLock = 1 << 4,
    /// `SQL_CALC_FOUND_ROWS`, or an INSERT / REPLACE / CREATE ... SELECT: FOUND_ROWS() must be
    /// fetched from the same connection.
    CalcFoundRows = 1 << 5,
    /// Mentions LAST_INSERT_ID / @@identity / @@last_insert_id.
    LastInsertId = 1 << 6,
    /// Mentions ROW_COUNT.
    RowCount = 1 << 7,
    /// Mentions FOUND_ROWS.
    FoundRows = 1 << 8,
    /// SQL-level `PREPARE name FROM ...`, `HANDLER ... OPEN`, `SET TRANSACTION` (next
    /// transaction only), `BACKUP STAGE` / `BACKUP LOCK`: state that lives on the connection.
    ConnectionState = 1 << 9,
    /// Reads `@@socket` (see [`super::rewrite::hide_socket`]).
    Socket = 1 << 10,
    /// `XA START` / `XA BEGIN`.
    XaStart = 1 << 11,
    /// `XA COMMIT` / `XA ROLLBACK`.
    XaEnd = 1 << 12,
    /// A locking read: `FOR UPDATE`, `FOR SHARE`, `LOCK IN SHARE MODE`.
    Locking = 1 << 13,
    /// `INTO` (in a SELECT: `INTO OUTFILE`, `INTO DUMPFILE`, `INTO @var`).
    Into = 1 << 14,
    /// A function that needs the primary or the session's connection: RELEASE_LOCK,
    /// IS_USED_LOCK, IS_FREE_LOCK, RELEASE_ALL_LOCKS, sequences (NEXTVAL, LASTVAL, SETVAL,
    /// `NEXT VALUE FOR`, `PREVIOUS VALUE FOR`).
    PrimaryFunction = 1 << 15,
    /// Reads a system variable whose value only the session's own connection or the primary
    /// has (see [`PRIMARY_VARIABLES`]). Other variables read the same on any backend, because
    /// Sluice replays the session's settings on every connection it hands out.
    SysVar = 1 << 16,
    /// More than one statement in one COM_QUERY.
    MultiStatement = 1 << 17,
    /// `READ ONLY` (meaningful after START TRANSACTION).
    ReadOnly = 1 << 18,
    /// A SET that assigns a session system variable in the `@@name` form, which MariaDB's
    /// session tracking does not report: Sluice reads the values back after it ran.
    SysVarAssign = 1 << 19,
    /// A SET naming one of the `session_track_*` variables, which Sluice owns on its backend
    /// connections: they are restored after the statement.
    TrackingVar = 1 << 20,
    /// A SET of a one-shot variable (`insert_id`, `rand_seed1`, `rand_seed2`), consumed by
    /// the next statement on that connection: the session is pinned.
    OneShotVar = 1 << 21,
    /// `CALL`, or a call of a function that is not built in (a stored function or UDF):
    /// its effects on the session are invisible to Sluice, so the session is pinned.
    Routine = 1 << 22,
    /// `LAST_INSERT_ID(expr)` or a SET of `last_insert_id` / `identity`: the session's value
    /// is read back after the statement.
    SetsLastInsertId = 1 << 23,
    /// Calls `CONNECTION_ID()`, which must return the session's Sluice id (see
    /// [`super::rewrite::connection_id_as_literal`]), not the id of whichever backend thread runs it.
    ConnectionId = 1 << 24,
    /// A SELECT of system variables with no FROM (the start-up queries drivers send): no data
    /// is read, so it may fall back to the primary even under `fallback = "error"`.
    VariablesOnly = 1 << 25,
    /// `SET GLOBAL` / `SET @@global.x`: new sessions must start from the new value.
    SetGlobal = 1 << 26,
    /// `SET NAMES`, `SET CHARACTER SET`, or a SET of `character_set_client|connection|results`
    /// or `collation_connection`: the server changes the related variables too (SET NAMES
    /// sets `collation_connection` to the character set's default) without reporting them,
    /// so Sluice reads the four back.
    CharsetAssign = 1 << 27,
    /// A SET of `max_join_size`: the server also sets `sql_big_selects` (to 0 for a limit, 1
    /// for the default) without reporting it, so Sluice reads it back.
    JoinSizeAssign = 1 << 28,
}

/// System variables a read keeps on the primary: values bound to the connection that ran the
/// session's previous statement (insert ids, warning counts, transaction state, one-shot
/// seeds, the connection's thread id and GTID), Sluice's own `sluice_consistency`, and values
/// that describe where writes go, which a replica would answer falsely (`read_only`, GTID
/// positions). Every other `@@variable` is global or replayed session state and reads alike on
/// any backend, so it routes like any read. Sorted for binary search.
pub const PRIMARY_VARIABLES: &[&str] = &[
    "error_count",
    "gtid_binlog_pos",
    "gtid_current_pos",
    "gtid_slave_pos",
    "identity",
    "in_transaction",
    "innodb_read_only",
    "insert_id",
    "last_gtid",
    "last_insert_id",
    "pseudo_thread_id",
    "rand_seed1",
    "rand_seed2",
    "read_only",
    "sluice_consistency",
    "super_read_only",
    "warning_count",
];

fn primary_variable(name: &str) -> bool {
    let mut buf = [0u8; 24];
    let Some(dst) = buf.get_mut(..name.len()) else { return false };
    dst.copy_from_slice(name.as_bytes());
    dst.make_ascii_lowercase();
    PRIMARY_VARIABLES.binary_search_by(|v| v.as_bytes().cmp(dst)).is_ok()
}

/// Features that keep a read off the replicas even when a hint asks for one: they touch
/// state that lives on the session's own (primary) connection, or they write.
const NEVER_ON_REPLICA: u32 = !(Feature::SysVar as u32 | Feature::ReadOnly as u32 | Feature::Socket as u32);

impl Features {
    /// True when `f` is set.
    pub fn has(self, f: Feature) -> bool {
        self.0 & f as u32 != 0
    }

    fn set(&mut self, f: Feature) {
        self.0 |= f as u32;
    }

    /// These features without `fs`.
    pub fn without(self, fs: &[Feature]) -> Features {
        Features(fs.iter().fold(self.0, |acc, f| acc & !(*f as u32)))
    }
}

impl Analysis<'_> {
    /// A read that a replica may serve: [`Kind::Read`] with none of the features that tie it
    /// to the primary or the session's connection. A `sluice:replica` hint lifts only the
    /// system-variable rule.
    pub fn replica_ok(&self) -> bool {
        if self.kind != Kind::Read || self.hint == Some(Hint::Primary) {
            return false;
        }
        let blocking = if self.hint == Some(Hint::Replica) { NEVER_ON_REPLICA } else { u32::MAX };
        // CONNECTION_ID() is answered with the session's own id, written into the statement.
        self.features.without(&[Feature::ConnectionId, Feature::VariablesOnly]).0 & blocking == 0
    }

    /// Routing may send it to a replica: a read [`Analysis::replica_ok`] allows, or
    /// `START TRANSACTION READ ONLY` without a `sluice:primary` hint (the transaction then
    /// stays on that replica).
    pub fn replica_candidate(&self) -> bool {
        self.replica_ok() || (self.kind == Kind::ReadOnlyTransaction && self.hint != Some(Hint::Primary))
    }

    /// May run on a session already held on a replica (a read-only transaction): anything
    /// but writes and statements Sluice does not understand.
    pub fn allowed_on_replica(&self) -> bool {
        !matches!(self.kind, Kind::Write | Kind::Unknown)
            && !self.features.has(Feature::MultiStatement)
            && !self.features.has(Feature::Into)
    }
}

/// What [`analyze`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Analysis<'a> {
    /// The statement's fingerprint hash (`sql::fingerprint`), computed in the same pass: the
    /// key of its statistics row.
    pub fingerprint: u64,
    /// The statement analysed.
    pub sql: &'a str,
    /// The first word, as written (compare case-insensitively).
    pub first: &'a str,
    /// Facts found anywhere in the statement.
    pub features: Features,
    /// Routing class.
    pub kind: Kind,
    /// A `/* sluice:... */` routing hint.
    pub hint: Option<Hint>,
    /// Some word or quoted name satisfied [`analyze_marking`]'s predicate (the session asks
    /// for sharded table names, so sharding needs no second pass over the statement).
    pub marked: bool,
    /// How `FOUND_ROWS()` follows from its result set: [`Found::Sent`] unless the statement
    /// has a `LIMIT offset, count` or an `OFFSET` (then [`super::found_rows::found`] decides,
    /// in a second pass only such statements pay).
    pub found: Found,
}

/// The statement kinds whose `name (` is a definition (column lists, types), not a call:
/// the stored-routine rule does not look inside them.
fn is_definition(first: &str) -> bool {
    ["create", "alter", "drop", "rename", "truncate"].iter().any(|k| first.eq_ignore_ascii_case(k))
}

/// The name of a system variable without its `session.` / `global.` / `local.` scope, and
/// whether the scope was `global`.
pub fn sysvar_name(v: &str) -> (&str, bool) {
    match v.split_once('.') {
        Some((scope, name)) => (name, scope.eq_ignore_ascii_case("global")),
        None => (v, false),
    }
}

/// A keyword after which a table (or CTE) name follows. Dispatches on length first: most
/// words are identifiers of other lengths and cost one comparison.
fn names_a_table_next(w: &str) -> bool {
    let eq = |kw: &str| w.eq_ignore_ascii_case(kw);
    match w.len() {
        4 => eq("into") || eq("join") || eq("from") || eq("with"),
        5 => eq("table"),
        6 => eq("update") || eq("insert"),
        7 => eq("replace"),
        _ => false,
    }
}

/// Notes what a variable named in a SET does to the session (see the SET features).
fn set_variable(f: &mut Features, name: &str) {
    let eq = |kw: &str| name.eq_ignore_ascii_case(kw);
    if name.len() > 14 && name.as_bytes()[..14].eq_ignore_ascii_case(b"session_track_") {
        f.set(Feature::TrackingVar);
    } else if eq("insert_id") || eq("rand_seed1") || eq("rand_seed2") {
        f.set(Feature::OneShotVar);
    } else if eq("optimizer_trace") || eq("profiling") {
        // The trace (and SHOW PROFILES' history) is kept on the connection that ran the
        // traced statements, and is read back on that connection only.
        f.set(Feature::ConnectionState);
    } else if eq("last_insert_id") || eq("identity") {
        f.set(Feature::SetsLastInsertId);
    } else if eq("max_join_size") {
        f.set(Feature::JoinSizeAssign);
    } else if eq("names")
        || eq("character")
        || eq("charset")
        || eq("character_set_client")
        || eq("character_set_connection")
        || eq("character_set_results")
        || eq("collation_connection")
    {
        f.set(Feature::CharsetAssign);
    }
}

/// Scans a statement once.
pub fn analyze(sql: &str) -> Analysis<'_> {
    analyze_marking(sql, |_| false, true)
}

/// [`analyze`], also noting in [`Analysis::marked`] whether any word or quoted name satisfies
/// `mark`; with `fingerprint`, [`Analysis::fingerprint`] is computed in the same pass (else 0).
pub fn analyze_marking(sql: &str, mark: impl Fn(&str) -> bool, fingerprint: bool) -> Analysis<'_> {
    let mut a = Analysis { sql, ..Analysis::default() };
    let mut prev: Option<Token<'_>> = None;
    let mut prev2: Option<Token<'_>> = None;
    let mut second = "";
    let mut ended = false;
    let (mut is_set, mut definition) = (false, false);
    let (mut any_sysvar, mut from, mut selects, mut offset) = (false, false, false, false);
    // Index of the last word after which a table (or CTE) name follows: `name (` right after
    // it is a column list, not a call.
    let mut table_word = usize::MAX;
    let (mut norm, mut fp) = (Normalizer::default(), FpHasher::default());
    for (i, t) in Lexer::new(sql).enumerate() {
        if fingerprint {
            norm.feed(t, &mut fp);
        }
        if ended && t != Token::Punct(b';') {
            a.features.set(Feature::MultiStatement);
        }
        match t {
            Token::Word(w) => {
                if i == 0 {
                    a.first = w;
                    is_set = w.eq_ignore_ascii_case("set");
                    definition = is_definition(w);
                    if w.eq_ignore_ascii_case("call") {
                        a.features.set(Feature::Routine);
                    }
                } else if i == 1 {
                    second = w;
                }
                if names_a_table_next(w) {
                    table_word = i;
                }
                if is_set {
                    set_variable(&mut a.features, w);
                    if w.eq_ignore_ascii_case("global") {
                        a.features.set(Feature::SetGlobal);
                    }
                }
                from = from || w.eq_ignore_ascii_case("from");
                offset = offset || (w.len() == 6 && w.eq_ignore_ascii_case("offset"));
                selects = selects || (i > 0 && w.eq_ignore_ascii_case("select"));
                word(&mut a.features, w, prev, prev2, i);
                a.marked = a.marked || mark(w);
            }
            Token::Quoted(w) => a.marked = a.marked || mark(w),
            Token::Punct(b';') => ended = true,
            Token::Punct(b',') if is(prev2, "limit") => offset = true,
            Token::Punct(b'(') if !definition => {
                // A call of a function that is not built in: a stored function or a UDF,
                // which may set variables or take locks on the connection.
                let named = i.checked_sub(2) != Some(table_word) && i.checked_sub(4) != Some(table_word);
                if named {
                    if let Some(Token::Word(f)) = prev {
                        if matches!(prev2, Some(Token::Punct(b'.'))) || !super::builtins::is_builtin(f) {
                            a.features.set(Feature::Routine);
                        }
                    }
                }
            }
            Token::UserVar => a.features.set(Feature::UserVariable),
            Token::SysVar(v) => {
                let (name, global) = sysvar_name(v);
                any_sysvar = true;
                if primary_variable(name) {
                    a.features.set(Feature::SysVar);
                }
                if is_set {
                    set_variable(&mut a.features, name);
                    if global {
                        a.features.set(Feature::SetGlobal);
                    } else {
                        a.features.set(Feature::SysVarAssign);
                    }
                }
                if name.eq_ignore_ascii_case("identity") || name.eq_ignore_ascii_case("last_insert_id") {
                    a.features.set(Feature::LastInsertId);
                } else if name.eq_ignore_ascii_case("socket") {
                    a.features.set(Feature::Socket);
                }
            }
            _ => {}
        }
        if matches!(prev, Some(Token::Punct(b'('))) && is(prev2, "last_insert_id") && t != Token::Punct(b')') {
            a.features.set(Feature::SetsLastInsertId);
        }
        prev2 = prev;
        prev = Some(t);
    }
    if fingerprint {
        norm.finish(&mut fp);
        a.fingerprint = fp.finish();
    }
    if offset {
        a.found = super::found_rows::found(sql);
    }
    // INSERT / REPLACE / CREATE TABLE ... SELECT: the SELECT part sets what FOUND_ROWS()
    // returns next, and no result set says how many rows it found: read it back.
    let f = a.first;
    if selects
        && (f.eq_ignore_ascii_case("insert") || f.eq_ignore_ascii_case("replace") || f.eq_ignore_ascii_case("create"))
    {
        a.features.set(Feature::CalcFoundRows);
    }
    a.kind = match classify::by_words(a.first, second) {
        Some(_) if a.first.eq_ignore_ascii_case("start") && a.features.has(Feature::ReadOnly) => {
            Kind::ReadOnlyTransaction
        }
        Some(k) => k,
        None => classify::by_parsing(sql),
    };
    a.hint = classify::hint(sql);
    if any_sysvar && !from && a.first.eq_ignore_ascii_case("select") {
        a.features.set(Feature::VariablesOnly);
    }
    a
}

fn is(t: Option<Token<'_>>, kw: &str) -> bool {
    matches!(t, Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw))
}

fn word(f: &mut Features, w: &str, prev: Option<Token<'_>>, prev2: Option<Token<'_>>, i: usize) {
    // Dispatch on length first: most words are identifiers and fall through cheaply.
    let eq = |kw: &str| w.eq_ignore_ascii_case(kw);
    match w.len() {
        4 if eq("lock") && is(prev, "read") && is(prev2, "with") => f.set(Feature::LockTables),
        4 if eq("into") => f.set(Feature::Into),
        4 if eq("only") && is(prev, "read") => f.set(Feature::ReadOnly),
        5 if eq("share") && (is(prev, "for") || is(prev, "in")) => f.set(Feature::Locking),
        6 if eq("update") && is(prev, "for") => f.set(Feature::Locking),
        5 if eq("value") && (is(prev, "next") || is(prev, "previous")) => f.set(Feature::PrimaryFunction),
        6 | 7 if eq("nextval") || eq("lastval") || eq("setval") => f.set(Feature::PrimaryFunction),
        12 | 17 if eq("release_lock") || eq("is_used_lock") || eq("is_free_lock") || eq("release_all_locks") => {
            f.set(Feature::PrimaryFunction)
        }
        5 | 6 if eq("table") || eq("tables") => {
            if is(prev, "lock") {
                f.set(Feature::LockTables);
            } else if is(prev, "unlock") {
                f.set(Feature::UnlockTables);
            } else if eq("table") && is(prev, "temporary") && (is(prev2, "create") || is(prev2, "replace")) {
                // CREATE [OR REPLACE] TEMPORARY TABLE
                f.set(Feature::TempTable);
            }
        }
        7 if i == 0 && (eq("prepare") || eq("handler")) => f.set(Feature::ConnectionState),
        // BACKUP STAGE / BACKUP LOCK: held by the connection until ended (or reset).
        6 if i == 0 && eq("backup") => f.set(Feature::ConnectionState),
        // FLUSH TABLES t FOR EXPORT: table locks held until UNLOCK TABLES.
        6 if eq("export") && is(prev, "for") => f.set(Feature::LockTables),
        8 if eq("get_lock") => f.set(Feature::UserLock),
        8 if eq("sequence") && is(prev, "temporary") => f.set(Feature::TempTable),
        9 if eq("row_count") => f.set(Feature::RowCount),
        10 if eq("found_rows") => f.set(Feature::FoundRows),
        11 if i == 1 && eq("transaction") && is(prev, "set") => f.set(Feature::ConnectionState),
        5 | 6 if i == 1 && is(prev, "xa") && (eq("start") || eq("begin")) => f.set(Feature::XaStart),
        6 | 8 if i == 1 && is(prev, "xa") && (eq("commit") || eq("rollback")) => f.set(Feature::XaEnd),
        14 if eq("last_insert_id") => f.set(Feature::LastInsertId),
        13 if eq("connection_id") => f.set(Feature::ConnectionId),
        19 if eq("sql_calc_found_rows") => f.set(Feature::CalcFoundRows),
        _ => {}
    }
}

/// The session system variables a SET assigns with `@@` (`SET @@sql_mode = ..`,
/// `SET @@session.x = .., @@y = ..`), without their scope; `@@global.` ones are left out.
pub fn assigned_sysvars(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut prev: Option<Token<'_>> = None;
    let mut depth = 0usize;
    for t in Lexer::new(sql) {
        match t {
            Token::Punct(b'(') => depth += 1,
            Token::Punct(b')') => depth = depth.saturating_sub(1),
            Token::SysVar(v) if depth == 0 && (is(prev, "set") || matches!(prev, Some(Token::Punct(b',')))) => {
                let (name, global) = sysvar_name(v);
                if !global && !out.contains(&name) {
                    out.push(name);
                }
            }
            _ => {}
        }
        prev = Some(t);
    }
    out
}

/// A value Sluice keeps per session and can answer without a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionValue {
    /// `LAST_INSERT_ID()`.
    LastInsertId,
    /// `@@identity` / `@@last_insert_id`: the same value, with a variable's column definition.
    LastInsertIdVariable,
    RowCount,
    FoundRows,
}

/// For `SELECT LAST_INSERT_ID() [AS x], ROW_COUNT(), FOUND_ROWS(), @@identity` and nothing
/// else, the values asked for with each column's name (the expression as written, or its
/// alias). Any other shape returns `None` and goes to a backend.
pub fn session_values(sql: &str) -> Option<Vec<(SessionValue, String)>> {
    let mut lx = Lexer::new(sql);
    match lx.next()? {
        Token::Word(w) if w.eq_ignore_ascii_case("select") => {}
        _ => return None,
    }
    let mut out = Vec::new();
    loop {
        let rest = &sql[lx.offset()..];
        let start = lx.offset() + (rest.len() - rest.trim_start().len());
        let (value, end) = match lx.next()? {
            Token::SysVar(v) => {
                let v = v.rsplit('.').next().unwrap_or(v);
                if !(v.eq_ignore_ascii_case("identity") || v.eq_ignore_ascii_case("last_insert_id")) {
                    return None;
                }
                (SessionValue::LastInsertIdVariable, lx.offset())
            }
            Token::Word(w) => {
                let v = if w.eq_ignore_ascii_case("last_insert_id") {
                    SessionValue::LastInsertId
                } else if w.eq_ignore_ascii_case("row_count") {
                    SessionValue::RowCount
                } else if w.eq_ignore_ascii_case("found_rows") {
                    SessionValue::FoundRows
                } else {
                    return None;
                };
                if lx.next()? != Token::Punct(b'(') || lx.next()? != Token::Punct(b')') {
                    return None;
                }
                (v, lx.offset())
            }
            _ => return None,
        };
        let mut name = sql[start..end].to_string();
        let mut next = lx.next();
        if let Some(Token::Word(w)) = next {
            if w.eq_ignore_ascii_case("as") {
                next = lx.next();
            }
            match next {
                Some(Token::Word(alias)) => name = alias.to_string(),
                _ => return None,
            }
            next = lx.next();
        } else if let Some(Token::Quoted(alias)) = next {
            name = alias.replace("``", "`");
            next = lx.next();
        }
        out.push((value, name));
        match next {
            None => return Some(out),
            Some(Token::Punct(b',')) => continue,
            Some(Token::Punct(b';')) if lx.next().is_none() => return Some(out),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests;
