//! The lost-write audit: every insert a client got an OK for is looked up directly on the
//! servers, bypassing Sluice.

use crate::load::Acked;
use crate::topo::SluiceProcess;
use crate::{harness, Ports};
use std::collections::{HashMap, HashSet};

/// What the servers hold, against what clients were told.
#[derive(Debug, Default)]
pub struct Audit {
    pub acked_unsharded: usize,
    pub acked_sharded: usize,
    pub found_unsharded: usize,
    pub found_sharded: usize,
    /// Acknowledged, and on no server.
    pub lost: Vec<i64>,
    /// Acknowledged sharded rows found on a shard the ring does not name: (id, found, ring).
    pub misplaced: Vec<(i64, String, String)>,
    /// Rows found on more than one shard.
    pub duplicated: Vec<i64>,
    /// Rows whose client saw an error although the write had committed (the connection broke
    /// between the commit and its OK): not lost, not counted as acknowledged.
    pub unacked_present: usize,
}

fn ids(port: u16, sql: &str) -> Vec<Vec<i64>> {
    harness::root_sql(port, sql)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(|f| f.parse().unwrap()).collect())
        .collect()
}

/// Checks every acknowledged insert. The unsharded table is read on the main shard's primary
/// after the switchover (the promoted replica); each shard's table on that shard.
pub async fn check(ports: &Ports, sluice: &SluiceProcess, acked: &[Acked]) -> Audit {
    check_unsharded_on(ports.replicas[0], ports, sluice, acked).await
}

/// [`check`], with the unsharded table read on `primary`.
pub async fn check_unsharded_on(primary: u16, ports: &Ports, sluice: &SluiceProcess, acked: &[Acked]) -> Audit {
    let mut a = Audit::default();
    let found: HashSet<i64> =
        ids(primary, "SELECT id FROM sluice_test.fault_audit").into_iter().map(|r| r[0]).collect();
    let mut on_shards: HashMap<i64, Vec<usize>> = HashMap::new();
    for (i, &port) in ports.shards.iter().enumerate() {
        for r in ids(port, "SELECT id, user_id FROM sluice_test.fault_orders") {
            on_shards.entry(r[0]).or_default().push(i);
        }
    }
    a.found_unsharded = found.len();
    a.found_sharded = on_shards.values().map(Vec::len).sum();
    let uids: Vec<i64> = acked.iter().filter_map(|w| w.user_id).collect::<HashSet<_>>().into_iter().collect();
    let ring = sluice.shards_of(&uids);
    let mut acked_ids = HashSet::new();
    for w in acked {
        acked_ids.insert(w.id);
        match w.user_id {
            None => {
                a.acked_unsharded += 1;
                if !found.contains(&w.id) {
                    a.lost.push(w.id);
                }
            }
            Some(uid) => {
                a.acked_sharded += 1;
                let want = &ring[&uid];
                match on_shards.get(&w.id).map(Vec::as_slice) {
                    None | Some([]) => a.lost.push(w.id),
                    Some([i]) => {
                        let got = format!("s{i}");
                        if &got != want {
                            a.misplaced.push((w.id, got, want.clone()));
                        }
                    }
                    Some(_) => a.duplicated.push(w.id),
                }
            }
        }
    }
    let base = acked.iter().map(|w| w.id / 500_000_000).min().unwrap_or(0);
    // Rows of another load in the same tables (the other test's id range) are not this one's.
    let ours = |id: &&i64| **id / 500_000_000 == base;
    a.unacked_present = found.iter().chain(on_shards.keys()).filter(ours).filter(|id| !acked_ids.contains(id)).count();
    a
}
