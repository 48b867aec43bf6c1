//! MariaDB GTID positions, compared the way read-your-writes needs: has a replica applied
//! everything up to a given position?
//!
//! A MariaDB GTID is `domain-server-sequence`; a position (`@@gtid_slave_pos`,
//! `@@gtid_binlog_pos`, the `last_gtid` session-tracking value) lists one GTID per domain.
//! Sequence numbers grow monotonically within a domain whichever server wrote them (with
//! `gtid_strict_mode`), so "applied" means: for every domain of the wanted position, the
//! replica's sequence in that domain is at least the wanted one. The server id takes no part.
//!
//! MySQL 8 uses `uuid:interval` sets instead; Sluice does not parse them (its replicas are
//! MariaDB in everything it tests), see docs/compatibility.md.

/// A position: the highest sequence number seen per replication domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidPos {
    /// (domain, sequence), sorted by domain, one entry per domain.
    domains: Vec<(u32, u64)>,
}

impl GtidPos {
    /// Parses `0-1-100,1-2-7` (empty: no position). `None` if any entry is malformed: a
    /// guessed position could claim a replica applied what it has not.
    pub fn parse(s: &str) -> Option<GtidPos> {
        let mut pos = GtidPos::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut it = part.splitn(3, '-');
            let domain = it.next()?.parse().ok()?;
            let _server: u32 = it.next()?.parse().ok()?;
            let seq = it.next()?.parse().ok()?;
            pos.advance(domain, seq);
        }
        Some(pos)
    }

    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    fn advance(&mut self, domain: u32, seq: u64) {
        match self.domains.binary_search_by_key(&domain, |d| d.0) {
            Ok(i) => self.domains[i].1 = self.domains[i].1.max(seq),
            Err(i) => self.domains.insert(i, (domain, seq)),
        }
    }

    /// Raises this position to include `other` (per-domain maximum).
    pub fn merge(&mut self, other: &GtidPos) {
        for &(d, s) in &other.domains {
            self.advance(d, s);
        }
    }

    /// True when this position includes everything in `wanted`.
    pub fn covers(&self, wanted: &GtidPos) -> bool {
        wanted
            .domains
            .iter()
            .all(|&(d, s)| self.domains.binary_search_by_key(&d, |x| x.0).is_ok_and(|i| self.domains[i].1 >= s))
    }
}

#[cfg(test)]
mod tests {
    use super::GtidPos;

    fn p(s: &str) -> GtidPos {
        GtidPos::parse(s).unwrap()
    }

    #[test]
    fn covers_compares_sequences_per_domain_ignoring_server_id() {
        assert!(p("0-1-100").covers(&p("0-1-100")));
        assert!(p("0-2-101").covers(&p("0-1-100")), "a newer sequence from another server covers");
        assert!(!p("0-1-99").covers(&p("0-1-100")));
        assert!(!p("1-1-500").covers(&p("0-1-1")), "a domain the replica never saw is not covered");
        assert!(p("0-1-5,1-1-9").covers(&p("1-3-9")));
        assert!(!p("0-1-5,1-1-8").covers(&p("0-1-5,1-1-9")));
        assert!(p("").covers(&p("")), "nothing wanted is always covered");
        assert!(p("0-1-1").covers(&GtidPos::default()));
    }

    #[test]
    fn merge_keeps_the_highest_sequence_per_domain() {
        let mut a = p("0-1-10,2-1-3");
        a.merge(&p("0-1-7,1-1-4,2-2-9"));
        assert_eq!(a, p("0-1-10,1-1-4,2-2-9"));
    }

    #[test]
    fn malformed_positions_do_not_parse() {
        assert!(GtidPos::parse("0-1").is_none());
        assert!(GtidPos::parse("a-1-2").is_none());
        assert!(GtidPos::parse("0-1-x").is_none());
        assert_eq!(GtidPos::parse(" 0-1-2 , 3-1-4 ").unwrap(), p("0-1-2,3-1-4"));
    }
}
