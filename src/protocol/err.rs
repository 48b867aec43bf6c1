//! ERR packets: parsing the backend's, and building Sluice's own with named constructors so each
//! failure a client can see has one code, one SQLSTATE and one wording.

use super::error::ProtocolError;
use super::wire::Reader;
use bytes::{BufMut, BytesMut};

/// An error as the client will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrPacket {
    pub code: u16,
    pub sqlstate: [u8; 5],
    pub message: String,
}

impl ErrPacket {
    /// An error with the given code, SQLSTATE and message.
    pub fn new(code: u16, sqlstate: &str, message: impl Into<String>) -> Self {
        let mut s = [b'H', b'Y', b'0', b'0', b'0'];
        if sqlstate.len() == 5 {
            s.copy_from_slice(sqlstate.as_bytes());
        }
        ErrPacket { code, sqlstate: s, message: message.into() }
    }

    /// 1045: the standard wording, which scripts and drivers match on.
    pub fn access_denied(user: &str, host: &str, using_password: bool) -> Self {
        let yes = if using_password { "YES" } else { "NO" };
        Self::new(1045, "28000", format!("Access denied for user '{user}'@'{host}' (using password: {yes})"))
    }

    /// 3159: a login without TLS while `[tls] require_secure_transport` is on (the server's
    /// own code and text for `require_secure_transport`).
    pub fn insecure_transport() -> Self {
        Self::new(
            3159,
            "HY000",
            "Connections using insecure transport are prohibited while --require_secure_transport=ON.",
        )
    }

    /// 1045 for a user with `require_tls` who logged in without TLS: the access-denied error
    /// a server gives for `REQUIRE SSL`, saying why (the password was right, so the reason
    /// tells nothing to someone guessing it).
    pub fn tls_required(user: &str, host: &str) -> Self {
        Self::new(
            1045,
            "28000",
            format!("Access denied for user '{user}'@'{host}' (using password: YES): this user must connect with TLS"),
        )
    }

    /// 1203: the user's `max_connections` is reached (the server's text for
    /// `max_user_connections`).
    pub fn user_connections(user: &str) -> Self {
        Self::new(1203, "42000", format!("User {user} already has more than 'max_user_connections' active connections"))
    }

    /// 1040: the proxy's client-connection limit is reached.
    pub fn too_many_connections() -> Self {
        Self::new(1040, "08004", "Too many connections")
    }

    /// 1105: no connection to a backend could be had. Names the role and shard, never the
    /// address: clients need to know what is down, not the topology's internals.
    pub fn backend_unavailable(role: &str, shard: &str, detail: &str) -> Self {
        Self::new(1105, "HY000", format!("Sluice: the {role} of shard '{shard}' is unavailable: {detail}"))
    }

    /// 1969 (MariaDB's ER_STATEMENT_TIMEOUT): the statement passed its deadline and its backend
    /// did not even answer the kill within `grace_ms`; its connection was discarded.
    pub fn statement_abandoned(grace_ms: u64) -> Self {
        Self::new(
            1969,
            "70100",
            format!(
                "Query execution was interrupted (max_statement_time exceeded); Sluice: the backend did not \
                 answer within {grace_ms} ms of KILL QUERY, so its connection was discarded"
            ),
        )
    }

    /// 1105: the statement waited for `SLUICE RESUME` longer than `[admin] pause_timeout_ms`.
    pub fn paused(waited_ms: u64) -> Self {
        Self::new(
            1105,
            "HY000",
            format!(
                "Sluice is paused for maintenance (SLUICE PAUSE); the statement waited {waited_ms} ms and was not run"
            ),
        )
    }

    /// 1105: a statement routed under one configuration met another (a reload in between):
    /// a shard index is resolved only under the snapshot that produced it, so nothing ran.
    pub fn topology_changed() -> Self {
        Self::new(
            1105,
            "HY000",
            "Sluice: the configuration was reloaded while this statement was being routed; it was not run, retry it",
        )
    }

    /// 1105: a read found no eligible replica and the config forbids the primary fallback.
    pub fn no_replica(shard: &str) -> Self {
        Self::new(
            1105,
            "HY000",
            format!("Sluice: no replica of shard '{shard}' is eligible for reads and [replicas] fallback is \"error\""),
        )
    }

    /// A statement that would write on the replica a session is held on.
    pub fn write_on_replica(in_transaction: bool) -> Self {
        if in_transaction {
            Self::new(1792, "25006", "Cannot execute statement in a READ ONLY transaction.")
        } else {
            Self::new(
                1105,
                "HY000",
                "Sluice: this session is held on a replica (state created in a read-only transaction); \
                 writes need the primary: reconnect or COM_RESET_CONNECTION",
            )
        }
    }

    /// `SET @@sluice_consistency` to a value that is not a level.
    pub fn wrong_value(var: &str, value: &str) -> Self {
        Self::new(1231, "42000", format!("Variable '{var}' can't be set to the value of '{value}'"))
    }

    /// A write to a sharded table while `[sharding] pause_writes` is on: the code a
    /// read-only server gives, which applications already treat as "retry later".
    pub fn writes_paused() -> Self {
        Self::new(
            1290,
            "HY000",
            "Sluice: writes to sharded tables are paused for resharding ([sharding] pause_writes); retry later",
        )
    }

    /// 1235: a feature Sluice does not support, named.
    pub fn unsupported(what: &str) -> Self {
        Self::new(1235, "42000", format!("This version of Sluice doesn't yet support '{what}'"))
    }

    /// 1094: KILL of a connection id no live session has.
    pub fn unknown_thread(id: u64) -> Self {
        Self::new(1094, "HY000", format!("Unknown thread id: {id}"))
    }

    /// 1095: KILL of another user's session.
    pub fn not_owner(id: u64) -> Self {
        Self::new(1095, "HY000", format!("You are not owner of thread {id}"))
    }

    /// 1927: the session's own connection was killed.
    pub fn connection_killed() -> Self {
        Self::new(1927, "70100", "Connection was killed")
    }

    /// 1295: a statement the prepared-statement protocol does not take (through Sluice).
    pub fn unsupported_in_prepared(what: &str) -> Self {
        Self::new(
            1295,
            "HY000",
            format!("This command is not supported in the prepared statement protocol yet ({what})"),
        )
    }

    /// 1461: one prepared statement more than `[proxy] max_prepared_statements`.
    pub fn too_many_statements(max: usize) -> Self {
        let msg = format!("Can't create more than max_prepared_stmt_count statements (current value: {max})");
        Self::new(1461, "42000", msg)
    }

    /// 1153: a client packet over `max_allowed_packet`.
    pub fn packet_too_large() -> Self {
        Self::new(1153, "08S01", "Got a packet bigger than 'max_allowed_packet' bytes")
    }

    /// 1047: a command byte Sluice does not know.
    pub fn unknown_command(cmd: u8) -> Self {
        Self::new(1047, "08S01", format!("Unknown command 0x{cmd:02x}"))
    }

    /// 1047 for COM_CHANGE_USER after three failed ones on the connection, the server's answer.
    pub fn change_user_refused() -> Self {
        Self::new(1047, "08S01", "Unknown command")
    }

    /// 1053: the proxy is shutting down.
    pub fn shutting_down() -> Self {
        Self::new(1053, "08S01", "Server shutdown in progress")
    }

    /// 1210: a command's arguments do not fit it (a COM_STMT_EXECUTE without its fixed part or
    /// parameter block), worded as the server does.
    pub fn wrong_arguments(what: &str) -> Self {
        Self::new(1210, "HY000", format!("Incorrect arguments to {what}"))
    }

    /// 1243: EXECUTE / FETCH / CLOSE named a statement id this session never prepared.
    pub fn unknown_statement(id: u32, what: &str) -> Self {
        Self::new(1243, "HY000", format!("Unknown prepared statement handler ({id}) given to {what}"))
    }

    /// Encodes `0xFF code '#' sqlstate message` (protocol 4.1 form).
    pub fn encode(&self) -> BytesMut {
        let mut b = BytesMut::with_capacity(9 + self.message.len());
        b.put_u8(0xFF);
        b.put_u16_le(self.code);
        b.put_u8(b'#');
        b.put_slice(&self.sqlstate);
        b.put_slice(self.message.as_bytes());
        b
    }

    /// Decodes an ERR payload.
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        if r.u8("err header")? != 0xFF {
            return Err(ProtocolError::Malformed("not an ERR packet"));
        }
        let code = r.u16("error code")?;
        let mut sqlstate = *b"HY000";
        if r.remaining() >= 6 && payload[3] == b'#' {
            r.u8("marker")?;
            sqlstate.copy_from_slice(r.take(5, "sqlstate")?);
        }
        let message = String::from_utf8_lossy(r.rest()).into_owned();
        Ok(ErrPacket { code, sqlstate, message })
    }
}

impl std::fmt::Display for ErrPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ERROR {} ({}): {}", self.code, String::from_utf8_lossy(&self.sqlstate), self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_standard_wording() {
        let e = ErrPacket::access_denied("app", "127.0.0.1", true);
        assert_eq!(e.code, 1045);
        assert_eq!(e.message, "Access denied for user 'app'@'127.0.0.1' (using password: YES)");
        assert_eq!(ErrPacket::parse(&e.encode()).unwrap(), e);
    }

    #[test]
    fn parse_without_sqlstate_marker() {
        let e = ErrPacket::parse(&[0xFF, 0x10, 0x04, b'b', b'a', b'd']).unwrap();
        assert_eq!(e.code, 1040);
        assert_eq!(e.message, "bad");
    }
}
