//! The decisions for prepared statements (COM_STMT_PREPARE and each COM_STMT_EXECUTE), the
//! binary-protocol side of [`super::decide`]: pure functions of the statement, the bound key
//! and the config's rules.
//!
//! A prepared statement on sharded tables is planned once at prepare: its shard is fixed by a
//! literal key, or read from one bound parameter at each execute. Statements that would need
//! several shards are refused at prepare (a prepared statement runs on one connection).

use super::analysis::{analyze, session_values, SessionValue};
use super::decide::{Refusal, Rules, TargetShard};
use super::kill::{self, Kill};
use super::rewrite::connection_id_as_literal;
use super::{Analysis, Feature, Kind};
use crate::sharding::{KeyValue, Target};

/// Where a prepared statement on sharded tables runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StmtShard {
    /// Always this shard: the key is a literal. `index` is the topology index under snapshot
    /// `version`; under another snapshot the statement is planned again.
    Fixed { index: usize, version: u64 },
    /// The shard of the value bound to this parameter (0-based), per execute.
    Param(usize),
}

/// What preparing a statement takes.
#[derive(Debug)]
pub struct Prepare<'s> {
    /// What the statement does when executed (kept for its executes).
    pub analysis: Analysis<'s>,
    /// What preparing it does: nothing runs, so nothing the statement ends (table locks, an XA
    /// transaction) or sets (LAST_INSERT_ID, variables) may unpin or be read back.
    pub preparing: Analysis<'s>,
    /// The text to prepare instead of the client's (`CONNECTION_ID()` made the session's id).
    pub rewrite: Option<String>,
    /// Sharded statements: where executes go.
    pub shard: Option<StmtShard>,
    /// Where it is prepared: a sharded statement on its shard (a parameter key: the ring's
    /// first shard, any shard has the table); `None`: the default route.
    pub prepare_on: Option<TargetShard>,
    /// `SELECT LAST_INSERT_ID()`, `FOUND_ROWS()` and the like: each execute is answered from
    /// the session's record, as the text form is (the backend only supplies the PREPARE_OK).
    pub local: Option<Vec<(SessionValue, String)>>,
    /// `KILL <id>` / `KILL QUERY CONNECTION_ID()`: Sluice answers the prepare (no backend
    /// prepares it: its id would name a backend thread) and carries the KILL out at each
    /// execute, as the text form.
    pub kill: Option<Kill>,
}

/// Decides how to prepare `sql`; `Err` is the refusal to send instead.
pub fn prepare<'s>(sql: &'s str, connection_id: u32, rules: &Rules<'_>) -> Result<Prepare<'s>, Refusal> {
    if kill::prepares_kill(sql) {
        // A KILL prepared on a backend would take a backend thread id. Its literal forms are
        // Sluice's own; a placeholder id, `PREPARE ... FROM 'KILL ..'` and the forms the
        // text protocol refuses are refused.
        return match kill::kill_statement(sql) {
            Some(k @ Kill::Session { .. }) => {
                let analysis = analyze(sql);
                Ok(Prepare {
                    analysis,
                    preparing: analysis,
                    rewrite: None,
                    shard: None,
                    prepare_on: None,
                    local: None,
                    kill: Some(k),
                })
            }
            _ => Err(Refusal::KillInPrepared),
        };
    }
    let analysis = analyze(sql);
    let rewrite =
        if analysis.features.has(Feature::ConnectionId) { connection_id_as_literal(sql, connection_id) } else { None };
    let preparing = Analysis {
        features: analysis.features.without(&[
            Feature::UnlockTables,
            Feature::XaEnd,
            Feature::SetsLastInsertId,
            Feature::SysVarAssign,
            Feature::TrackingVar,
        ]),
        ..analysis
    };
    let (shard, prepare_on) = match rules.sharding.filter(|sh| sh.mentions(sql)) {
        None => (None, None),
        Some(sh) => match sh.plan(sql) {
            Target::Default => (None, None),
            Target::Shard(i) => {
                let index = sh.topology_index[i];
                let on = TargetShard { index, version: rules.version };
                (Some(StmtShard::Fixed { index, version: rules.version }), Some(on))
            }
            Target::Param(p) => {
                let first = sh.topology_index.first().map(|&index| TargetShard { index, version: rules.version });
                (Some(StmtShard::Param(p)), first)
            }
            Target::Refuse(m) => return Err(Refusal::Sharding(m)),
            Target::Split(_) | Target::All { .. } | Target::Scatter(_) => {
                return Err(Refusal::Sharding("a prepared statement that would run on several shards".into()))
            }
        },
    };
    Ok(Prepare { analysis, preparing, rewrite, shard, prepare_on, local: session_values(sql), kill: None })
}

/// The shard one execute of a sharded prepared statement goes to. `kind` is the statement's
/// routing class, `sql` its text (planned again if it was prepared under another snapshot),
/// `key` reads the value bound to parameter `n`.
pub fn execute_shard(
    shard: StmtShard,
    kind: Kind,
    sql: &str,
    key: impl FnOnce(usize) -> Option<KeyValue>,
    rules: &Rules<'_>,
) -> Result<TargetShard, Refusal> {
    let Some(sh) = rules.sharding else { return Err(Refusal::Sharding("sharding removed by a reload".into())) };
    if sh.pause_writes && kind != Kind::Read {
        return Err(Refusal::WritesPaused);
    }
    let index = match shard {
        StmtShard::Fixed { index, version } if version == rules.version => index,
        // Prepared under an earlier configuration: where the literal key lives now.
        StmtShard::Fixed { .. } => match sh.plan(sql) {
            Target::Shard(i) => sh.topology_index[i],
            _ => return Err(Refusal::TopologyChanged),
        },
        StmtShard::Param(n) => match key(n) {
            Some(k) => sh.topology_index[sh.ring.shard_index(&k)],
            None => {
                return Err(Refusal::Sharding("a shard key bound as NULL, long data or a non-integer number".into()))
            }
        },
    };
    Ok(TargetShard { index, version: rules.version })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ShardingConfig;
    use crate::router::kill::Target as KillTarget;
    use crate::sharding::Sharding;

    fn sharding(extra: &str) -> Sharding {
        let text = format!(
            "key = \"user_id\"\ntables = [\"orders\"]\nring = [\"s0\", \"s1\", \"s2\"]\ndefault = \"main\"\n{extra}"
        );
        let cfg: ShardingConfig = toml::from_str(&text).unwrap();
        Sharding::new(&cfg, |n| ["main", "s0", "s1", "s2"].iter().position(|x| *x == n).unwrap())
    }

    fn shard_of(sh: &Sharding, k: i128) -> usize {
        sh.topology_index[sh.ring.shard_index(&KeyValue::Int(k))]
    }

    #[test]
    fn prepares_are_planned_once() {
        let sh = sharding("");
        let rules = Rules { sharding: Some(&sh), default_shard: 0, version: 3 };
        let unsharded = Rules { sharding: None, ..rules };
        let p = prepare("SELECT * FROM orders WHERE user_id = 5", 9, &rules).unwrap();
        let fixed = TargetShard { index: shard_of(&sh, 5), version: 3 };
        assert_eq!((p.shard, p.prepare_on), (Some(StmtShard::Fixed { index: fixed.index, version: 3 }), Some(fixed)));
        let p = prepare("UPDATE orders SET x = ? WHERE user_id = ?", 9, &rules).unwrap();
        assert_eq!(p.shard, Some(StmtShard::Param(1)));
        assert_eq!(p.prepare_on, Some(TargetShard { index: 1, version: 3 }), "the ring's first shard");
        let p = prepare("SELECT * FROM orders WHERE user_id = ?", 9, &unsharded).unwrap();
        assert_eq!((p.shard, p.prepare_on), (None, None));
        let p = prepare("SELECT * FROM plain WHERE id = ?", 9, &rules).unwrap();
        assert_eq!((p.shard, p.prepare_on), (None, None));
        let several = Refusal::Sharding("a prepared statement that would run on several shards".into());
        assert_eq!(prepare("SELECT * FROM orders", 9, &rules).unwrap_err(), several);
        assert_eq!(prepare("ALTER TABLE orders ADD y INT", 9, &rules).unwrap_err(), several);
        assert!(matches!(prepare("UPDATE orders SET x = 1", 9, &rules), Err(Refusal::Sharding(_))));
        assert_eq!(prepare("KILL ?", 9, &unsharded).unwrap_err(), Refusal::KillInPrepared);
        assert_eq!(prepare("PREPARE s FROM 'KILL 5'", 9, &unsharded).unwrap_err(), Refusal::KillInPrepared);
        assert_eq!(prepare("KILL USER app", 9, &unsharded).unwrap_err(), Refusal::KillInPrepared);
        let k = prepare("KILL QUERY 17", 9, &unsharded).unwrap().kill;
        assert_eq!(k, Some(Kill::Session { connection: false, target: KillTarget::Id(17) }));
        let k = prepare("KILL CONNECTION_ID()", 9, &unsharded).unwrap().kill;
        assert_eq!(k, Some(Kill::Session { connection: true, target: KillTarget::Own }));
    }

    #[test]
    fn preparing_runs_nothing_and_connection_id_is_the_sessions() {
        let rules = Rules { sharding: None, default_shard: 0, version: 1 };
        let p = prepare("SELECT CONNECTION_ID(), ?", 41, &rules).unwrap();
        assert_eq!(p.rewrite.as_deref(), Some("SELECT 41 AS `CONNECTION_ID()`, ?"));
        let p = prepare("UNLOCK TABLES", 41, &rules).unwrap();
        assert!(p.analysis.features.has(Feature::UnlockTables) && !p.preparing.features.has(Feature::UnlockTables));
        let p = prepare("SELECT LAST_INSERT_ID(?)", 41, &rules).unwrap();
        assert!(p.analysis.features.has(Feature::SetsLastInsertId));
        assert!(!p.preparing.features.has(Feature::SetsLastInsertId));
        assert_eq!(p.rewrite, None);
        assert_eq!(p.local, None);
        let p = prepare("SELECT FOUND_ROWS() AS n", 41, &rules).unwrap();
        assert_eq!(p.local, Some(vec![(SessionValue::FoundRows, "n".to_string())]));
        assert_eq!(prepare("SELECT FOUND_ROWS(), ?", 41, &rules).unwrap().local, None);
    }

    #[test]
    fn executes_go_where_the_key_is_under_the_current_snapshot() {
        let sh = sharding("");
        let rules = Rules { sharding: Some(&sh), default_shard: 0, version: 3 };
        let sql = "SELECT * FROM orders WHERE user_id = ?";
        for k in [1i128, 2, 3, 77, -5] {
            let t = execute_shard(StmtShard::Param(0), Kind::Read, sql, |_| Some(KeyValue::Int(k)), &rules).unwrap();
            assert_eq!(t, TargetShard { index: shard_of(&sh, k), version: 3 });
        }
        let by_text =
            execute_shard(StmtShard::Param(0), Kind::Read, sql, |_| Some(KeyValue::Bytes(b"7".to_vec())), &rules);
        assert_eq!(by_text.unwrap().index, shard_of(&sh, 7), "'7' and 7 are one key");
        let null = execute_shard(StmtShard::Param(0), Kind::Read, sql, |_| None, &rules);
        assert!(matches!(null, Err(Refusal::Sharding(_))));
        // A literal key prepared under another snapshot is planned again; one that no longer
        // plans to one shard is refused, never sent to the old index.
        let fixed = "SELECT * FROM orders WHERE user_id = 5";
        let stale = StmtShard::Fixed { index: 99, version: 2 };
        assert_eq!(execute_shard(stale, Kind::Read, fixed, |_| None, &rules).unwrap().index, shard_of(&sh, 5));
        let current = StmtShard::Fixed { index: 2, version: 3 };
        assert_eq!(execute_shard(current, Kind::Read, fixed, |_| None, &rules).unwrap().index, 2);
        let gone = execute_shard(stale, Kind::Read, "SELECT * FROM orders", |_| None, &rules);
        assert_eq!(gone, Err(Refusal::TopologyChanged));
        let unsharded = Rules { sharding: None, ..rules };
        assert!(matches!(execute_shard(current, Kind::Read, fixed, |_| None, &unsharded), Err(Refusal::Sharding(_))));
    }

    #[test]
    fn paused_writes_are_refused_at_execute() {
        let sh = sharding("pause_writes = true");
        let rules = Rules { sharding: Some(&sh), default_shard: 0, version: 3 };
        let key = |_| Some(KeyValue::Int(1));
        let w = execute_shard(StmtShard::Param(0), Kind::Write, "UPDATE orders SET x=1 WHERE user_id=?", key, &rules);
        assert_eq!(w, Err(Refusal::WritesPaused));
        let r = execute_shard(StmtShard::Param(0), Kind::Read, "SELECT * FROM orders WHERE user_id=?", key, &rules);
        assert!(r.is_ok());
    }
}
