//! When a session must keep its backend connection between statements, and why.
//!
//! Multiplexing (a connection per statement) is the default, prepared statements included
//! (see `session::commands::stmt`). A session is pinned while
//! something lives on its connection that another connection would not have:
//!
//! | reason | set by | cleared by |
//! |---|---|---|
//! | transaction | the session's transaction state (`session::txn::Txn`): SERVER_STATUS_IN_TRANS after a statement, any failed statement with autocommit off, a held `BEGIN` sent, Sluice's XA transaction | COMMIT / ROLLBACK (flag clears), Sluice's XA COMMIT / ROLLBACK |
//! | lock_tables | LOCK TABLES, FLUSH TABLES WITH READ LOCK, FLUSH TABLES ... FOR EXPORT | UNLOCK TABLES |
//! | temp_table | CREATE TEMPORARY TABLE | COM_RESET_CONNECTION / COM_CHANGE_USER |
//! | user_lock | GET_LOCK() | reset / change user |
//! | user_variable | any statement mentioning `@var` | reset / change user |
//! | prepared_statement | an open cursor (COM_STMT_EXECUTE with a cursor flag) or COM_STMT_SEND_LONG_DATA | the execute that consumes the long data; COM_STMT_RESET / COM_STMT_CLOSE of the cursor's statement |
//! | xa | XA START / XA BEGIN | XA COMMIT / XA ROLLBACK (an XA transaction stays on its connection through END and PREPARE, even when the status flags no longer say "in transaction") |
//! | connection_state | PREPARE ... FROM, HANDLER, SET TRANSACTION, a SET of `optimizer_trace` or `profiling` (the trace and the profile history live on the connection), BACKUP STAGE / BACKUP LOCK, a SET of a one-shot variable (`insert_id`, `rand_seed1`, `rand_seed2`: the next statement on that connection consumes it), a tracked variable whose name is not a plain identifier, or a state change the backend reported that Sluice cannot attribute | reset / change user |
//! | routine | `CALL`, or any call of a function that is not built in (stored functions and UDFs may set variables, take locks or create temporary tables without the backend reporting it; DDL statements are not looked into) | reset / change user |

/// A reason to stay on one backend connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum PinReason {
    Transaction = 1,
    LockTables = 1 << 2,
    TempTable = 1 << 3,
    UserLock = 1 << 4,
    UserVariable = 1 << 5,
    PreparedStatement = 1 << 6,
    ConnectionState = 1 << 7,
    Xa = 1 << 8,
    Routine = 1 << 9,
}

impl PinReason {
    /// Every reason, for metrics.
    pub const ALL: [PinReason; 9] = [
        PinReason::Transaction,
        PinReason::LockTables,
        PinReason::TempTable,
        PinReason::UserLock,
        PinReason::UserVariable,
        PinReason::PreparedStatement,
        PinReason::ConnectionState,
        PinReason::Xa,
        PinReason::Routine,
    ];

    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            PinReason::Transaction => "transaction",
            PinReason::LockTables => "lock_tables",
            PinReason::TempTable => "temp_table",
            PinReason::UserLock => "user_lock",
            PinReason::UserVariable => "user_variable",
            PinReason::PreparedStatement => "prepared_statement",
            PinReason::ConnectionState => "connection_state",
            PinReason::Xa => "xa",
            PinReason::Routine => "routine",
        }
    }
}

/// The set of reasons a session is pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pins(u16);

impl Pins {
    /// True when any reason holds.
    pub fn any(self) -> bool {
        self.0 != 0
    }

    /// True when `r` holds.
    pub fn has(self, r: PinReason) -> bool {
        self.0 & r as u16 != 0
    }

    /// Sets or clears `r`.
    pub fn set(&mut self, r: PinReason, on: bool) {
        if on {
            self.0 |= r as u16;
        } else {
            self.0 &= !(r as u16);
        }
    }

    /// The raw set, for storing outside the session (`sessions::Activity`).
    pub fn bits(self) -> u16 {
        self.0
    }

    /// A set stored with [`Pins::bits`].
    pub fn from_bits(bits: u16) -> Pins {
        Pins(bits)
    }

    /// The reasons that hold, as their labels joined by commas (empty when none).
    pub fn labels(self) -> String {
        self.reasons().map(|r| r.label()).collect::<Vec<_>>().join(",")
    }

    /// The reasons that hold.
    pub fn reasons(self) -> impl Iterator<Item = PinReason> {
        PinReason::ALL.into_iter().filter(move |r| self.has(*r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_clear_and_list() {
        let mut p = Pins::default();
        assert!(!p.any());
        p.set(PinReason::Transaction, true);
        p.set(PinReason::TempTable, true);
        p.set(PinReason::Transaction, false);
        assert!(p.any());
        assert_eq!(p.reasons().collect::<Vec<_>>(), vec![PinReason::TempTable]);
        p.set(PinReason::Transaction, true);
        assert_eq!(Pins::from_bits(p.bits()).labels(), "transaction,temp_table");
        assert_eq!(Pins::default().labels(), "");
    }
}
