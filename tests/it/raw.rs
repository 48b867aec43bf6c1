//! Commands no driver at hand sends, exercised at the packet level against the real backend
//! through Sluice: COM_FIELD_LIST, and server-side cursors (COM_STMT_EXECUTE with
//! CURSOR_TYPE_READ_ONLY, then COM_STMT_FETCH), for clients with and without DEPRECATE_EOF.

use crate::harness;
use sluice::protocol::auth::native_token;
use sluice::protocol::codec::{Packet, PacketReader};
use sluice::protocol::handshake::{Greeting, HandshakeResponse};
use sluice::protocol::ok::EofPacket;
use sluice::protocol::{caps, com, status};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

struct Raw {
    w: harness::Wire,
}

impl Raw {
    async fn login(port: u16, deprecate_eof: bool) -> Raw {
        Raw::login_tracking(port, deprecate_eof, false).await
    }

    async fn login_tracking(port: u16, deprecate_eof: bool, session_track: bool) -> Raw {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut r = PacketReader::new(1 << 24, 4096);
        let g = Greeting::parse(&r.read_packet(&mut s).await.unwrap().unwrap().payload).unwrap();
        let mut capabilities = caps::BACKEND | caps::CONNECT_WITH_DB;
        if !session_track {
            capabilities &= !caps::SESSION_TRACK;
        }
        if deprecate_eof {
            capabilities |= caps::DEPRECATE_EOF;
        }
        let resp = HandshakeResponse {
            capabilities,
            max_packet: 1 << 24,
            charset: 45,
            user: "app".into(),
            auth_response: native_token(b"app_pw", &g.scramble),
            database: Some("sluice_test".into()),
            auth_plugin: Some("mysql_native_password".into()),
            attributes: vec![],
        };
        let mut raw = Raw { w: harness::Wire { s, r } };
        raw.send(1, &resp.encode()).await;
        assert_eq!(raw.next().await.payload[0], 0, "login failed");
        raw
    }

    async fn send(&mut self, seq: u8, payload: &[u8]) {
        self.w.send(seq, payload).await
    }

    async fn next(&mut self) -> Packet {
        self.w.next().await
    }

    /// Reads packets until an EOF (or 0xFE OK); returns how many came before it and its status.
    async fn until_eof(&mut self) -> (usize, u16) {
        let mut n = 0;
        loop {
            let p = self.next().await;
            assert_ne!(p.payload[0], 0xFF, "error: {}", String::from_utf8_lossy(&p.payload));
            if p.payload[0] == 0xFE && p.payload.len() < 9 {
                let st = if p.payload.len() == 5 {
                    EofPacket::parse(&p.payload).unwrap().status
                } else {
                    // OK with 0xFE header: affected, insert id (1 byte each here), status.
                    u16::from_le_bytes([p.payload[3], p.payload[4]])
                };
                return (n, st);
            }
            n += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_list_returns_column_definitions() {
    let p = harness::start().await;
    let mut c = Raw::login(p.addr.port(), false).await;
    let t = harness::table("fl");
    let mut create = vec![com::QUERY];
    create.extend_from_slice(format!("CREATE TABLE {t} (a INT, b VARCHAR(5), c DATE)").as_bytes());
    c.send(0, &create).await;
    assert_eq!(c.next().await.payload[0], 0);
    let mut fl = vec![com::FIELD_LIST];
    fl.extend_from_slice(t.as_bytes());
    fl.push(0);
    c.send(0, &fl).await;
    let (cols, _) = c.until_eof().await;
    assert_eq!(cols, 3);
    let mut drop = vec![com::QUERY];
    drop.extend_from_slice(format!("DROP TABLE {t}").as_bytes());
    c.send(0, &drop).await;
    assert_eq!(c.next().await.payload[0], 0);
}

async fn cursor_fetch(deprecate_eof: bool) {
    let p = harness::start().await;
    let mut c = Raw::login(p.addr.port(), deprecate_eof).await;
    let mut prep = vec![com::STMT_PREPARE];
    prep.extend_from_slice(b"SELECT seq FROM seq_1_to_5");
    c.send(0, &prep).await;
    let ok = c.next().await;
    assert_eq!(ok.payload[0], 0, "{}", String::from_utf8_lossy(&ok.payload));
    let id = u32::from_le_bytes([ok.payload[1], ok.payload[2], ok.payload[3], ok.payload[4]]);
    let columns = u16::from_le_bytes([ok.payload[5], ok.payload[6]]);
    assert_eq!(columns, 1);
    c.next().await; // the column definition
    if !deprecate_eof {
        assert_eq!(c.next().await.payload[0], 0xFE);
    }
    // COM_STMT_EXECUTE, CURSOR_TYPE_READ_ONLY, one iteration, no parameters.
    let mut exec = vec![com::STMT_EXECUTE];
    exec.extend_from_slice(&id.to_le_bytes());
    exec.push(1);
    exec.extend_from_slice(&1u32.to_le_bytes());
    c.send(0, &exec).await;
    assert_eq!(c.next().await.payload[..], [1]); // one column
    c.next().await; // its definition
    let eof = c.next().await;
    let st = EofPacket::parse(&eof.payload).unwrap().status;
    assert!(st & status::CURSOR_EXISTS != 0, "no cursor opened (status {st:#x})");
    let mut fetched = 0;
    loop {
        let mut fetch = vec![com::STMT_FETCH];
        fetch.extend_from_slice(&id.to_le_bytes());
        fetch.extend_from_slice(&2u32.to_le_bytes());
        c.send(0, &fetch).await;
        let (rows, st) = c.until_eof().await;
        fetched += rows;
        if st & status::LAST_ROW_SENT != 0 {
            break;
        }
        assert!(fetched <= 5, "fetched past the end");
    }
    assert_eq!(fetched, 5);
    let mut close = vec![com::STMT_CLOSE];
    close.extend_from_slice(&id.to_le_bytes());
    c.send(0, &close).await;
    // Still in sync: a plain query works.
    c.send(0, &[com::PING]).await;
    assert_eq!(c.next().await.payload[0], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_fetch_classic_eof() {
    cursor_fetch(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_fetch_deprecate_eof() {
    cursor_fetch(true).await;
}

/// COM_STMT_SEND_LONG_DATA in chunks, then an execute that omits the parameter's value: the
/// data must reach the same backend statement (the session is pinned in between), and
/// COM_STMT_RESET afterwards is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_data_reaches_the_statement_that_executes() {
    let p = harness::start().await;
    let mut c = Raw::login(p.addr.port(), false).await;
    let mut prep = vec![com::STMT_PREPARE];
    prep.extend_from_slice(b"SELECT LENGTH(?), LEFT(?, 3)");
    c.send(0, &prep).await;
    let ok = c.next().await;
    assert_eq!(ok.payload[0], 0);
    let id = u32::from_le_bytes([ok.payload[1], ok.payload[2], ok.payload[3], ok.payload[4]]);
    for _ in 0..2 {
        c.next().await; // parameter definitions
    }
    c.next().await; // EOF
    for _ in 0..2 {
        c.next().await; // column definitions
    }
    c.next().await; // EOF
    for (param, chunk) in [(0u16, vec![b'a'; 70_000]), (0, vec![b'b'; 30_000]), (1, b"xyz123".to_vec())] {
        let mut ld = vec![com::STMT_SEND_LONG_DATA];
        ld.extend_from_slice(&id.to_le_bytes());
        ld.extend_from_slice(&param.to_le_bytes());
        ld.extend_from_slice(&chunk);
        c.send(0, &ld).await;
    }
    let mut exec = vec![com::STMT_EXECUTE];
    exec.extend_from_slice(&id.to_le_bytes());
    exec.push(0);
    exec.extend_from_slice(&1u32.to_le_bytes());
    exec.push(0); // null bitmap
    exec.push(1); // types follow
    exec.extend_from_slice(&[0xFC, 0, 0xFC, 0]); // BLOB, BLOB; values come from long data
    c.send(0, &exec).await;
    assert_eq!(c.next().await.payload[..], [2]);
    c.next().await;
    c.next().await;
    assert_eq!(c.next().await.payload[0], 0xFE);
    let row = c.next().await; // binary row: 0x00, null bitmap, LENGTH() as a 4-byte LONG, string
    assert_eq!(row.payload[0], 0, "{:?}", &row.payload[..]);
    let len = u32::from_le_bytes(row.payload[2..6].try_into().unwrap());
    assert_eq!(len, 100_000);
    assert_eq!(&row.payload[6..10], b"\x03xyz");
    assert_eq!(c.until_eof().await.0, 0);
    let mut reset = vec![com::STMT_RESET];
    reset.extend_from_slice(&id.to_le_bytes());
    c.send(0, &reset).await;
    assert_eq!(c.next().await.payload[0], 0);
}

/// The server's answers to malformed or odd prepared-statement commands, and no answer where
/// the protocol has none: COM_STMT_SEND_LONG_DATA for an unknown statement is ignored (no ERR
/// that the client would read as the answer to its next command, no pin); a COM_STMT_EXECUTE
/// without its parameter block gets ERROR 1210 and the session carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_statement_commands_get_a_server_like_answer() {
    let p = harness::start().await;
    let mut c = Raw::login(p.addr.port(), true).await;
    let mut long = vec![com::STMT_SEND_LONG_DATA];
    long.extend_from_slice(&777u32.to_le_bytes());
    long.extend_from_slice(&0u16.to_le_bytes());
    long.extend_from_slice(b"data");
    c.send(0, &long).await;
    c.send(0, &[com::PING]).await;
    let ping = c.next().await;
    assert_eq!(ping.payload[0], 0, "the ping's answer was {:?}", String::from_utf8_lossy(&ping.payload));
    let (_, body) = p.http_get("/metrics").await;
    assert!(body.contains("sluice_sessions_pinned{reason=\"prepared_statement\"} 0"), "{body}");
    // A statement with one parameter, executed without the parameter block.
    let mut prep = vec![com::STMT_PREPARE];
    prep.extend_from_slice(b"SELECT ? + 1");
    c.send(0, &prep).await;
    let ok = c.next().await;
    assert_eq!(ok.payload[0], 0);
    let id = u32::from_le_bytes([ok.payload[1], ok.payload[2], ok.payload[3], ok.payload[4]]);
    c.next().await; // the parameter definition
    c.next().await; // the column definition
    let mut exec = vec![com::STMT_EXECUTE];
    exec.extend_from_slice(&id.to_le_bytes());
    c.send(0, &exec).await;
    let e = c.next().await;
    assert_eq!(e.payload[0], 0xFF);
    assert_eq!(u16::from_le_bytes([e.payload[1], e.payload[2]]), 1210);
    c.send(0, &[com::PING]).await;
    assert_eq!(c.next().await.payload[0], 0, "the session ended after a malformed execute");
}

/// Before login a client may only send a handshake-sized packet: a header announcing 16 MiB
/// is refused at once, from the header alone, instead of Sluice waiting to buffer it all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_auth_packets_are_capped() {
    use tokio::io::AsyncReadExt;
    let p = harness::start().await;
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    let mut r = PacketReader::new(1 << 24, 4096);
    r.read_packet(&mut s).await.unwrap().unwrap(); // the greeting
    let mut start = vec![0xFF, 0xFF, 0xFF, 1];
    start.extend_from_slice(&[0u8; 100]);
    let _ = s.write_all(&start).await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(2), s.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the connection was not closed");
    let (_, body) = p.http_get("/metrics").await;
    assert!(body.contains("sluice_client_connections 0"), "{body}");
}

/// A client with CLIENT_SESSION_TRACK that never enabled trackers gets only what a server's
/// default trackers report: no "state changed" entry (and no status bit) after `SET @a = 1`
/// or `CREATE TEMPORARY TABLE`, though Sluice tracks everything on its own connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sluices_own_trackers_do_not_reach_clients() {
    let p = harness::start().await;
    let mut c = Raw::login_tracking(p.addr.port(), true, true).await;
    for sql in ["SET @a = 1", "CREATE TEMPORARY TABLE tmp_track (a INT)", "SET SESSION sql_mode = 'ANSI'"] {
        let mut q = vec![com::QUERY];
        q.extend_from_slice(sql.as_bytes());
        c.send(0, &q).await;
        let ok = c.next().await;
        assert_eq!(ok.payload[0], 0, "{sql}");
        let parsed = sluice::protocol::ok::OkPacket::parse(&ok.payload).unwrap();
        assert_eq!(parsed.status & status::SESSION_STATE_CHANGED, 0, "{sql}: {:?}", parsed.changes());
    }
    // The default trackers' own variables still come through.
    let mut q = vec![com::QUERY];
    q.extend_from_slice(b"SET time_zone = '+03:00'");
    c.send(0, &q).await;
    let parsed = sluice::protocol::ok::OkPacket::parse(&c.next().await.payload).unwrap();
    assert_eq!(
        parsed.changes().to_vec(),
        vec![sluice::protocol::ok::StateChange::SystemVariable("time_zone".into(), "+03:00".into())]
    );
}

/// Statement commands too short to carry a statement id, sent straight to MariaDB and through
/// Sluice: the same answer, message included (or, for commands without a response, none,
/// checked by the PING that follows being answered first). MariaDB reads the id from the
/// bytes there are, zero-padded; Sluice read such packets as statement 0 and answered a short
/// execute with 1210 where the server says 1835.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_statement_commands_get_the_servers_answer() {
    let p = harness::start().await;
    /// What the first packet after `cmd` (followed by a PING) is: an error code, or OK.
    async fn answer(port: u16, cmd: &[u8]) -> String {
        let mut c = Raw::login(port, false).await;
        c.send(0, cmd).await;
        c.send(0, &[com::PING]).await;
        let first = c.next().await;
        match first.payload[0] {
            0xFF => format!(
                "ERR {} {}",
                u16::from_le_bytes([first.payload[1], first.payload[2]]),
                String::from_utf8_lossy(&first.payload[9..])
            ),
            0x00 => "OK".to_string(),
            b => format!("{b:#x}"),
        }
    }
    for cmd in [
        vec![com::STMT_FETCH, 1],
        vec![com::STMT_RESET, 1, 0],
        vec![com::STMT_CLOSE, 1],
        vec![com::STMT_SEND_LONG_DATA],
        vec![com::STMT_EXECUTE, 1, 0],
    ] {
        let direct = answer(harness::primary_port(), &cmd).await;
        let through = answer(p.addr.port(), &cmd).await;
        assert_eq!(through, direct, "command {cmd:?}");
    }
}

/// What Sluice answers itself (`SELECT LAST_INSERT_ID()`, `ROW_COUNT()`, `FOUND_ROWS()`,
/// `@@identity`, under multiplexing the connection that would answer is not the one that ran
/// the previous statement) carries the column definitions the server sends, byte for byte, so
/// drivers decode the same types.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_sluice_builds_have_the_servers_column_definitions() {
    let p = harness::start().await;
    /// The column definition packets of `sql`'s result.
    async fn defs(port: u16, sql: &str) -> Vec<Vec<u8>> {
        let mut c = Raw::login(port, false).await;
        let mut q = vec![com::QUERY];
        q.extend_from_slice(sql.as_bytes());
        c.send(0, &q).await;
        let count = c.next().await.payload[0] as usize;
        let mut out = Vec::new();
        for _ in 0..count {
            out.push(c.next().await.payload.to_vec());
        }
        c.until_eof().await; // the EOF after the definitions
        c.until_eof().await; // the row and the final EOF
        out
    }
    for sql in [
        "SELECT LAST_INSERT_ID()",
        "SELECT ROW_COUNT()",
        "SELECT FOUND_ROWS()",
        "SELECT LAST_INSERT_ID() AS id, ROW_COUNT() AS n",
        "SELECT @@identity",
        "SELECT @@last_insert_id",
    ] {
        let direct = defs(harness::primary_port(), sql).await;
        let through = defs(p.addr.port(), sql).await;
        assert_eq!(through, direct, "{sql}");
    }
}

/// The same statements prepared: each COM_STMT_EXECUTE of `SELECT FOUND_ROWS()` and the like
/// is answered from the session's record in the binary protocol, with the server's bytes,
/// even when another client ran a statement on the only backend connection in between
/// (relayed, the execute would read that client's FOUND_ROWS()).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_session_values_are_the_servers_answer() {
    let p = harness::start_with(|t| t.replace("max_size = 64", "max_size = 1")).await;
    /// Every packet of the execute's response, after a read that found 7 rows.
    async fn answer(port: u16, deprecate_eof: bool, noise: Option<u16>) -> Vec<Vec<u8>> {
        let mut c = Raw::login(port, deprecate_eof).await;
        let mut q = vec![com::QUERY];
        q.extend_from_slice(b"/* sluice:primary */ SELECT SQL_CALC_FOUND_ROWS seq FROM seq_1_to_7 LIMIT 2");
        c.send(0, &q).await;
        c.next().await; // column count
        c.until_eof().await; // definition
        if !deprecate_eof {
            c.until_eof().await; // rows
        }
        if let Some(port) = noise {
            let mut other = Raw::login(port, false).await;
            let mut q = vec![com::QUERY];
            q.extend_from_slice(b"/* sluice:primary */ SELECT 1 FROM seq_1_to_3");
            other.send(0, &q).await;
            other.next().await;
            other.until_eof().await;
            other.until_eof().await;
        }
        let mut prep = vec![com::STMT_PREPARE];
        prep.extend_from_slice(b"SELECT FOUND_ROWS(), ROW_COUNT() AS rc, LAST_INSERT_ID()");
        c.send(0, &prep).await;
        let ok = c.next().await;
        assert_eq!(ok.payload[0], 0, "{}", String::from_utf8_lossy(&ok.payload));
        let id = u32::from_le_bytes([ok.payload[1], ok.payload[2], ok.payload[3], ok.payload[4]]);
        for _ in 0..3 + usize::from(!deprecate_eof) {
            c.next().await; // the three definitions and, without DEPRECATE_EOF, their EOF
        }
        let mut exec = vec![com::STMT_EXECUTE];
        exec.extend_from_slice(&id.to_le_bytes());
        exec.push(0);
        exec.extend_from_slice(&1u32.to_le_bytes());
        let mut out = Vec::new();
        for _ in 0..2 {
            // The second execute reads the FOUND_ROWS() the first one set.
            c.send(0, &exec).await;
            let expected = if deprecate_eof { 6 } else { 7 };
            for _ in 0..expected {
                out.push(c.next().await.payload.to_vec());
            }
        }
        out
    }
    let limit = std::time::Duration::from_secs(20);
    for deprecate_eof in [false, true] {
        let direct = tokio::time::timeout(limit, answer(harness::primary_port(), deprecate_eof, None)).await.unwrap();
        let through =
            tokio::time::timeout(limit, answer(p.addr.port(), deprecate_eof, Some(p.addr.port()))).await.unwrap();
        assert_eq!(through, direct, "deprecate_eof {deprecate_eof}");
        let row = direct.iter().find(|r| r.len() == 26 && r[0] == 0).expect("a binary row");
        assert_eq!(row[2..10], 7u64.to_le_bytes(), "FOUND_ROWS() after the read is 7");
    }
}

/// The result cache keys a statement by the bytes the client sent: two latin1 statements that
/// differ in one byte that is not UTF-8 ('ä' 0xE4, 'ö' 0xF6) are two entries, not one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_latin1_statements_differing_in_one_byte_are_two_entries() {
    let t = harness::table("cache_l1");
    let rules = format!("\n[cache]\n[[cache.rules]]\ntables = [\"{t}\"]\nttl_ms = 60000\n");
    let p =
        harness::start_with(move |c| c.replace("consistency = \"session\"", "consistency = \"strong\"") + &rules).await;
    let mut c = Raw::login(p.addr.port(), false).await;
    async fn simple(c: &mut Raw, sql: &[u8]) {
        let mut q = vec![com::QUERY];
        q.extend_from_slice(sql);
        c.send(0, &q).await;
        let r = c.next().await;
        assert_eq!(r.payload[0], 0, "{}", String::from_utf8_lossy(&r.payload));
    }
    /// The first column of the only row.
    async fn one(c: &mut Raw, sql: &[u8]) -> Vec<u8> {
        let mut q = vec![com::QUERY];
        q.extend_from_slice(sql);
        c.send(0, &q).await;
        c.next().await; // column count
        c.until_eof().await; // definition, EOF
        let row = c.next().await.payload.to_vec();
        c.until_eof().await;
        row[1..1 + row[0] as usize].to_vec()
    }
    simple(&mut c, format!("CREATE TABLE {t} (id INT PRIMARY KEY, name VARCHAR(4) CHARACTER SET latin1)").as_bytes())
        .await;
    simple(&mut c, format!("INSERT INTO {t} VALUES (1, _latin1 0xE4), (2, _latin1 0xF6)").as_bytes()).await;
    simple(&mut c, b"SET NAMES latin1").await;
    for _ in 0..2 {
        for (byte, id) in [(0xE4u8, b"1"), (0xF6u8, b"2")] {
            let mut sql = format!("SELECT id FROM {t} WHERE name = '").into_bytes();
            sql.extend_from_slice(&[byte, b'\'']);
            assert_eq!(one(&mut c, &sql).await, id.to_vec(), "byte {byte:#x}");
        }
    }
    assert!(p.shared.metrics.cache.hits.get() >= 2, "the second round came from the cache");
    simple(&mut c, format!("DROP TABLE {t}").as_bytes()).await;
}
