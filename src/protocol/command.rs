//! A client's command packet, decoded once into a typed value before anything acts on it.
//!
//! The fixed fields a command carries (statement ids, KILL's thread id, SET_OPTION's option)
//! are read here, so handlers never parse payloads themselves. Where a packet is too short
//! for its fields, the decode does what MariaDB does (checked side by side in
//! `raw::short_statement_commands_get_the_servers_answer`): a short id is read from the
//! bytes there are, zero-padded (`[COM_STMT_FETCH, 1]` names statement 1, which is then
//! unknown or not), and a COM_STMT_EXECUTE without its id is [`Malformed`] (ERROR 1835).
//! Variable parts (SQL text, parameter blocks, COM_CHANGE_USER's login) stay in the payload,
//! which the session still forwards as sent.

use super::com;
use super::err::ErrPacket;

/// One decoded command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCommand {
    Quit,
    /// COM_QUERY: the SQL text follows the command byte.
    Query,
    Ping,
    /// COM_PROCESS_KILL with the thread (connection) id it names.
    ProcessKill {
        id: u32,
    },
    InitDb,
    FieldList,
    Statistics,
    /// COM_SET_OPTION with its option (0: multi-statements on, 1: off; others are refused).
    SetOption {
        option: u16,
    },
    ResetConnection,
    ChangeUser,
    StmtPrepare,
    /// COM_STMT_EXECUTE: the client's statement id and the cursor flags. The parameter block
    /// is read by the handler, which knows the statement's parameter count.
    StmtExecute {
        id: u32,
        flags: u8,
    },
    StmtFetch {
        id: u32,
    },
    StmtReset {
        id: u32,
    },
    StmtSendLongData {
        id: u32,
    },
    StmtClose {
        id: u32,
    },
    /// A command byte Sluice does not serve.
    Unknown(u8),
}

/// A packet too short for its command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Malformed {
    /// No command byte at all: the connection is closed, as a server does.
    Empty,
    /// Answered with this error; the session goes on.
    Answer(ErrPacket),
}

/// Decodes a command packet's payload.
pub fn decode(payload: &[u8]) -> Result<ClientCommand, Malformed> {
    let Some(&cmd) = payload.first() else { return Err(Malformed::Empty) };
    // Bytes 1..5, zero-padded when the packet is shorter, as the server reads them.
    let mut id = [0u8; 4];
    let given = payload.get(1..).unwrap_or_default();
    let n = given.len().min(4);
    id[..n].copy_from_slice(&given[..n]);
    let id = u32::from_le_bytes(id);
    Ok(match cmd {
        com::QUIT => ClientCommand::Quit,
        com::QUERY => ClientCommand::Query,
        com::PING => ClientCommand::Ping,
        com::PROCESS_KILL => ClientCommand::ProcessKill { id },
        com::INIT_DB => ClientCommand::InitDb,
        com::FIELD_LIST => ClientCommand::FieldList,
        com::STATISTICS => ClientCommand::Statistics,
        com::SET_OPTION => match payload.get(1..3) {
            Some(b) => ClientCommand::SetOption { option: u16::from_le_bytes([b[0], b[1]]) },
            None => return Err(Malformed::Answer(ErrPacket::new(1047, "08S01", "Unknown option to COM_SET_OPTION"))),
        },
        com::RESET_CONNECTION => ClientCommand::ResetConnection,
        com::CHANGE_USER => ClientCommand::ChangeUser,
        com::STMT_PREPARE => ClientCommand::StmtPrepare,
        com::STMT_EXECUTE if payload.len() < 5 => {
            return Err(Malformed::Answer(ErrPacket::new(1835, "08S01", "Malformed communication packet")))
        }
        com::STMT_EXECUTE => ClientCommand::StmtExecute { id, flags: payload.get(5).copied().unwrap_or(0) },
        com::STMT_FETCH => ClientCommand::StmtFetch { id },
        com::STMT_RESET => ClientCommand::StmtReset { id },
        com::STMT_SEND_LONG_DATA => ClientCommand::StmtSendLongData { id },
        com::STMT_CLOSE => ClientCommand::StmtClose { id },
        other => ClientCommand::Unknown(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_commands_carry_their_ids() {
        assert_eq!(decode(&[com::STMT_CLOSE, 7, 0, 0, 0]), Ok(ClientCommand::StmtClose { id: 7 }));
        assert_eq!(
            decode(&[com::STMT_EXECUTE, 1, 1, 0, 0, 1, 1, 0, 0, 0]),
            Ok(ClientCommand::StmtExecute { id: 257, flags: 1 })
        );
        assert_eq!(decode(&[com::STMT_FETCH, 2, 0, 0, 0, 5, 0, 0, 0]), Ok(ClientCommand::StmtFetch { id: 2 }));
        assert_eq!(decode(&[com::PROCESS_KILL, 9, 0, 0, 0]), Ok(ClientCommand::ProcessKill { id: 9 }));
        assert_eq!(decode(&[com::SET_OPTION, 1, 0]), Ok(ClientCommand::SetOption { option: 1 }));
        assert_eq!(decode(&[0x7f]), Ok(ClientCommand::Unknown(0x7f)));
    }

    /// Too short for its id: read zero-padded, as MariaDB reads it; an execute without its id
    /// and a SET_OPTION without its option are answered with errors.
    #[test]
    fn short_packets_read_as_the_server_reads_them() {
        assert_eq!(decode(&[]), Err(Malformed::Empty));
        assert_eq!(decode(&[com::STMT_CLOSE, 1]), Ok(ClientCommand::StmtClose { id: 1 }));
        assert_eq!(decode(&[com::STMT_FETCH, 1, 2]), Ok(ClientCommand::StmtFetch { id: 0x201 }));
        assert_eq!(decode(&[com::STMT_SEND_LONG_DATA]), Ok(ClientCommand::StmtSendLongData { id: 0 }));
        for cmd in [com::STMT_EXECUTE, com::SET_OPTION] {
            assert!(matches!(decode(&[cmd, 0]), Err(Malformed::Answer(_))), "{cmd:#x}");
        }
    }
}
