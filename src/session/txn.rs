//! The session's transaction as one state machine. Pinning for a transaction, the
//! "in transaction" flag of the OK packets Sluice builds, the `BEGIN` held back while
//! sharding, the cross-shard XA transaction and the effect of `autocommit = 0` all derive
//! from this one value; nothing else records them.
//!
//! ```text
//!            BEGIN (sharding)             first statement sent with it
//!   Idle ─────────────────────▶ Held ─────────────────────────────▶ Open | Xa
//!    ▲  ◀─────────────────────  │ COMMIT/ROLLBACK (nothing ran)       │
//!    │                                                               │
//!    │ ◀──── a response without IN_TRANS (COMMIT, ROLLBACK, DDL) ─── Open
//!    │ ◀──── Sluice's XA COMMIT / ROLLBACK on every branch ───────── Xa
//!    │ ◀──── the connection died, reset, change user, session end ── any
//!  Idle ──── a response with IN_TRANS, or any statement that failed
//!            with autocommit off ──────────────────────────────────▶ Open
//! ```

use crate::protocol::status;
use bytes::Bytes;

/// Where the session's transaction stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Txn {
    /// None open: the session is multiplexed (unless something else pins it).
    #[default]
    Idle,
    /// `BEGIN` answered by Sluice and not sent yet (sharding: the transaction opens on the
    /// connection its first statement lands on). The client's statement, as sent.
    Held(Bytes),
    /// Open on the session's connection: the server reported it, or a statement ran with
    /// autocommit off (an ERR carries no status flags, yet the failed statement may hold
    /// locks).
    Open,
    /// A cross-shard XA transaction Sluice runs (`[sharding] cross_shard = "xa"`): the
    /// session's connection is one branch, the others are parked (`session::xa`).
    Xa { gtrid: String },
}

impl Txn {
    /// The session must keep its connection.
    pub fn pins(&self) -> bool {
        matches!(self, Txn::Open | Txn::Xa { .. })
    }

    /// What the client is told: in a transaction from its `BEGIN` on, held back or not.
    pub fn client_in_trans(&self) -> bool {
        !matches!(self, Txn::Idle)
    }

    /// After a relayed response: `server_status` when the response carried flags, `failed`
    /// when it was an error. An XA transaction's lifetime is Sluice's (the branches' flags say
    /// nothing about the whole), and a held `BEGIN` has not reached any server yet.
    pub fn after_response(&mut self, server_status: Option<u16>, failed: bool, autocommit_off: bool) {
        if matches!(self, Txn::Xa { .. } | Txn::Held(_)) {
            return;
        }
        if let Some(s) = server_status {
            *self = if s & status::IN_TRANS != 0 { Txn::Open } else { Txn::Idle };
        }
        if failed && autocommit_off {
            // Stay on this connection until a response says otherwise.
            *self = Txn::Open;
        }
    }

    /// The held `BEGIN`, taken to be sent now (the state stays `Held` until [`Txn::opened`]
    /// or [`Txn::end`]).
    pub fn held(&self) -> Option<&Bytes> {
        match self {
            Txn::Held(b) => Some(b),
            _ => None,
        }
    }

    /// The held `BEGIN` (or `XA START` for `gtrid`) ran on the connection.
    pub fn opened(&mut self, gtrid: Option<String>) {
        *self = match gtrid {
            Some(gtrid) => Txn::Xa { gtrid },
            None => Txn::Open,
        };
    }

    /// The transaction is over, whatever it was.
    pub fn end(&mut self) {
        *self = Txn::Idle;
    }

    /// The XA transaction's global id, if one is open.
    pub fn xa(&self) -> Option<&str> {
        match self {
            Txn::Xa { gtrid } => Some(gtrid),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IN: Option<u16> = Some(status::IN_TRANS | status::AUTOCOMMIT);
    const OUT: Option<u16> = Some(status::AUTOCOMMIT);
    const OFF_OUT: Option<u16> = Some(0);

    #[test]
    fn responses_open_and_close_ordinary_transactions() {
        let mut t = Txn::Idle;
        t.after_response(OUT, false, false);
        assert_eq!(t, Txn::Idle);
        t.after_response(IN, false, false);
        assert_eq!(t, Txn::Open);
        assert!(t.pins() && t.client_in_trans());
        t.after_response(None, true, false);
        assert_eq!(t, Txn::Open, "an error inside a transaction does not end it");
        t.after_response(OUT, false, false);
        assert_eq!(t, Txn::Idle);
        assert!(!t.pins() && !t.client_in_trans());
    }

    #[test]
    fn with_autocommit_off_a_failed_statement_keeps_its_connection() {
        let mut t = Txn::Idle;
        t.after_response(None, true, true);
        assert_eq!(t, Txn::Open);
        t.after_response(OFF_OUT, false, true);
        assert_eq!(t, Txn::Idle, "COMMIT: flags without IN_TRANS");
        t.after_response(None, true, false);
        assert_eq!(t, Txn::Idle, "with autocommit on a failed statement opens nothing");
    }

    #[test]
    fn held_begin_and_xa_are_sluices_to_end() {
        let mut t = Txn::Held(Bytes::from_static(b"BEGIN"));
        assert!(!t.pins() && t.client_in_trans());
        assert_eq!(t.held().map(|b| &b[..]), Some(&b"BEGIN"[..]));
        t.after_response(OUT, true, true);
        assert!(matches!(t, Txn::Held(_)));
        t.opened(Some("g1".into()));
        assert_eq!(t.xa(), Some("g1"));
        t.after_response(OUT, false, false);
        assert_eq!(t.xa(), Some("g1"), "a branch's flags do not end the XA transaction");
        assert!(t.pins());
        t.end();
        assert_eq!(t, Txn::Idle);
        let mut t = Txn::Held(Bytes::from_static(b"BEGIN"));
        t.opened(None);
        assert_eq!(t, Txn::Open);
    }
}
