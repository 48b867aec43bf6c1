//! The consistent-hash ring: which shard holds a key.
//!
//! Built with the `hashring` crate over `[sharding] ring`, `vnodes` points per shard. What is
//! hashed is fixed here, byte for byte, so placement never depends on a Rust type's `Hash`
//! (which may differ between platforms or compiler versions):
//!
//! * a ring point is SipHash-1-3 (keys below) of the UTF-8 bytes `"{shard name}#{i}"`,
//!   `i` in `0..vnodes`;
//! * a key is SipHash-1-3 of its canonical bytes ([`canonical`]): an integer is written in
//!   decimal (`42`, `-7`); a string that is an integer literal (`'42'`, `' 042'`) is that
//!   integer, as MySQL would compare it with an integer column; any other string is its
//!   bytes as sent.
//!
//! A key belongs to the first point at or after its hash, wrapping around. The golden test
//! (`tests/golden/ring_placement.txt`) pins the placement of 1,000 keys on a fixed ring.

use hashring::HashRing;
use siphasher::sip::SipHasher13;
use std::hash::{BuildHasher, Hash, Hasher};

/// Fixed SipHash keys: part of the placement, never to change.
const K0: u64 = 0x736c_7569_6365_7269; // "sluiceri"
const K1: u64 = 0x6e67_5f76_315f_6b65; // "ng_v1_ke"

/// SipHash-1-3 with Sluice's fixed keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct StableHash;

impl BuildHasher for StableHash {
    type Hasher = SipHasher13;
    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(K0, K1)
    }
}

/// Bytes fed to the hasher as they are (no length prefix, no type-dependent encoding).
struct Raw<'a>(&'a [u8]);

impl Hash for Raw<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write(self.0);
    }
}

/// One point of the ring.
#[derive(Debug, Clone)]
struct Point {
    /// `"{shard}#{i}"`.
    label: String,
    /// Index of the shard in the ring's list.
    shard: usize,
}

impl Hash for Point {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write(self.label.as_bytes());
    }
}

/// A shard-key value as it appears in a statement or a bound parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValue {
    Int(i128),
    Bytes(Vec<u8>),
}

/// The canonical bytes of a key (see the module docs).
pub fn canonical(key: &KeyValue) -> Vec<u8> {
    with_canonical(key, <[u8]>::to_vec)
}

/// Calls `f` with the canonical bytes of a key, written on the stack (lookups allocate
/// nothing).
fn with_canonical<R>(key: &KeyValue, f: impl FnOnce(&[u8]) -> R) -> R {
    let int = match key {
        KeyValue::Int(i) => *i,
        KeyValue::Bytes(b) => match std::str::from_utf8(b).ok().and_then(|s| s.trim().parse::<i128>().ok()) {
            Some(i) => i,
            None => return f(b),
        },
    };
    use std::io::Write;
    let mut buf = [0u8; 48];
    let mut w = &mut buf[..];
    write!(w, "{int}").expect("an i128 fits in 48 bytes");
    let len = 48 - w.len();
    f(&buf[..len])
}

/// The ring over named shards.
#[derive(Debug, Clone)]
pub struct Ring {
    names: Vec<String>,
    vnodes: u32,
    ring: HashRing<Point, StableHash>,
}

impl Ring {
    /// A ring over `names` with `vnodes` points each.
    pub fn new(names: &[String], vnodes: u32) -> Ring {
        let mut ring = HashRing::with_hasher(StableHash);
        let points = names
            .iter()
            .enumerate()
            .flat_map(|(shard, name)| (0..vnodes.max(1)).map(move |i| Point { label: format!("{name}#{i}"), shard }))
            .collect();
        ring.batch_add(points);
        Ring { names: names.to_vec(), vnodes: vnodes.max(1), ring }
    }

    /// Index (in [`Ring::names`]) of the shard holding `key`.
    pub fn shard_index(&self, key: &KeyValue) -> usize {
        with_canonical(key, |bytes| self.ring.get(&Raw(bytes)).map_or(0, |p| p.shard))
    }

    /// Name of the shard holding `key`.
    pub fn shard_of(&self, key: &KeyValue) -> &str {
        &self.names[self.shard_index(key)]
    }

    /// The ring's points as (hash, shard index), sorted.
    fn points(&self) -> Vec<(u64, usize)> {
        let mut points: Vec<(u64, usize)> = self
            .names
            .iter()
            .enumerate()
            .flat_map(|(shard, name)| {
                (0..self.vnodes)
                    .map(move |i| (StableHash.hash_one(&Point { label: format!("{name}#{i}"), shard }), shard))
            })
            .collect();
        points.sort();
        points
    }

    /// Each shard's share of the 64-bit hash space.
    pub fn shares(&self) -> Vec<(String, f64)> {
        let points = self.points();
        let mut owned = vec![0u128; self.names.len()];
        // A point owns the arc from the previous point (exclusive) to itself (inclusive).
        for (k, &(h, shard)) in points.iter().enumerate() {
            let prev = if k == 0 { points[points.len() - 1].0 } else { points[k - 1].0 };
            owned[shard] += u128::from(h.wrapping_sub(prev));
        }
        let total = 2f64.powi(64);
        self.names.iter().cloned().zip(owned.into_iter().map(|o| o as f64 / total)).collect()
    }

    /// Which share of the key space moves from which shard to which when `old` becomes
    /// `new`: (from, to, share), largest first. Keys not listed stay where they are.
    pub fn movement(old: &Ring, new: &Ring) -> Vec<(String, String, f64)> {
        let (po, pn) = (old.points(), new.points());
        // The owner of hash h: the first point at or after it, wrapping around.
        let owner = |pts: &[(u64, usize)], h: u64| {
            let i = pts.partition_point(|p| p.0 < h);
            pts[if i == pts.len() { 0 } else { i }].1
        };
        let mut bounds: Vec<u64> = po.iter().chain(pn.iter()).map(|p| p.0).collect();
        bounds.sort_unstable();
        bounds.dedup();
        let mut moved: std::collections::BTreeMap<(usize, usize), u128> = Default::default();
        for (k, &h) in bounds.iter().enumerate() {
            // Every hash in (previous bound, h] has the same owners as h in both rings.
            let prev = if k == 0 { bounds[bounds.len() - 1] } else { bounds[k - 1] };
            let (a, b) = (owner(&po, h), owner(&pn, h));
            if old.names[a] != new.names[b] {
                *moved.entry((a, b)).or_default() += u128::from(h.wrapping_sub(prev));
            }
        }
        let total = 2f64.powi(64);
        let mut out: Vec<(String, String, f64)> = moved
            .into_iter()
            .map(|((a, b), n)| (old.names[a].clone(), new.names[b].clone(), n as f64 / total))
            .collect();
        out.sort_by(|x, y| y.2.total_cmp(&x.2));
        out
    }
}
