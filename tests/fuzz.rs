//! Decoders fed arbitrary input: whatever arrives, they answer or refuse, and never panic.
//! Property tests over arbitrary bytes (proptest), one per decoder a client or backend can
//! reach: packet framing, the handshake response, the command decode, the prepared-statement
//! execute readers, the response scanner, statement analysis with the whole decision, and the
//! shard-key and scatter planners. CI runs a few thousand cases per target and replays the
//! kept corpus (tests/fuzz-corpus/, one input per file, its target in the file name);
//! `scripts/fuzz` runs millions (SLUICE_FUZZ_CASES).

use proptest::prelude::*;
use sluice::config::ShardingConfig;
use sluice::protocol::codec::{Frame, PacketReader};
use sluice::protocol::response::{Expect, ResponseScanner};
use sluice::router::decide::{decide, Rules, SessionView};
use sluice::sharding::Sharding;
use std::future::Future;

fn cases() -> u32 {
    std::env::var("SLUICE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
}

fn sharding() -> Sharding {
    let cfg: ShardingConfig = toml::from_str(
        "key = \"user_id\"\ntables = [\"orders\", \"events\"]\nring = [\"s0\", \"s1\", \"s2\"]\ndefault = \"main\"",
    )
    .unwrap();
    Sharding::new(&cfg, |n| ["main", "s0", "s1", "s2"].iter().position(|x| *x == n).unwrap())
}

/// Frames split out of a byte stream by the codec (what a client or backend sends).
fn codec(bytes: &[u8]) {
    let mut r = PacketReader::new(1 << 16, 512);
    let mut src = bytes;
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    for _ in 0..64 {
        let mut f = std::pin::pin!(r.read_packet(&mut src));
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(Ok(Some(_))) => continue,
            _ => break,
        }
    }
}

fn handshake(bytes: &[u8]) {
    let _ = sluice::protocol::handshake::HandshakeResponse::parse(bytes);
    let _ = sluice::protocol::handshake::Greeting::parse(bytes);
    let _ = sluice::protocol::handshake::parse_auth_switch(bytes);
}

fn command(bytes: &[u8]) {
    let _ = sluice::protocol::command::decode(bytes);
}

fn execute(bytes: &[u8], params: u16) {
    use sluice::protocol::stmt::{execute_is_readable, param_value, rewrite_execute};
    if execute_is_readable(bytes, params, None) {
        for i in 0..usize::from(params.min(8)) {
            let _ = param_value(bytes, params, None, i);
        }
    }
    let mut types = None;
    let _ = rewrite_execute(bytes, params, 7, &mut types);
}

/// A backend's response, frame by frame, for each kind of command.
fn scanner(bytes: &[u8]) {
    for expect in [Expect::Results, Expect::Simple, Expect::Prepare, Expect::FieldList, Expect::CursorResults] {
        let mut s = ResponseScanner::new(expect, true, false);
        for chunk in bytes.split(|&b| b == 0x00).take(64) {
            let frame = Frame { seq: 1, payload: bytes::Bytes::copy_from_slice(chunk) };
            if s.feed(&frame).is_err() || s.is_done() {
                break;
            }
        }
    }
}

fn statement(sql: &str, sh: &Sharding) {
    let views = [
        SessionView::default(),
        SessionView { held: Some(2), ..SessionView::default() },
        SessionView { begin_held: true, ..SessionView::default() },
        SessionView { held: Some(1), xa: true, ..SessionView::default() },
    ];
    let with = Rules { sharding: Some(sh), default_shard: 0, version: 1 };
    let without = Rules { sharding: None, ..with };
    for v in &views {
        let _ = decide(sql, true, v, &with);
        let _ = decide(sql, false, v, &without);
    }
    let _ = sh.plan(sql);
    let _ = sh.plan_cached(sql);
    let _ = sluice::router::prepared::prepare(sql, 9, &with);
    // The statistics key: the router's single pass and the stand-alone hash agree, and the
    // text stays within its bound.
    use sluice::sql::fingerprint;
    assert_eq!(sluice::router::analysis::analyze(sql).fingerprint, fingerprint::hash(sql), "{sql:?}");
    assert!(fingerprint::text(sql).len() <= fingerprint::MAX_TEXT + '…'.len_utf8());
    let _ = sluice::admin::sql::parse::parse(sql);
}

/// SQL-looking text: keywords, names, numbers, quotes and punctuation in any order.
fn sqlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("SELECT".to_string()),
        Just("FROM".to_string()),
        Just("orders".to_string()),
        Just("WHERE".to_string()),
        Just("user_id".to_string()),
        Just("INSERT INTO".to_string()),
        Just("VALUES".to_string()),
        Just("UPDATE".to_string()),
        Just("SET".to_string()),
        Just("GROUP BY".to_string()),
        Just("ORDER BY".to_string()),
        Just("LIMIT".to_string()),
        Just("COUNT(*)".to_string()),
        Just("AVG(x)".to_string()),
        Just("BEGIN".to_string()),
        Just("IN".to_string()),
        Just("VALUES".to_string()),
        Just("1.5".to_string()),
        Just(".".to_string()),
        Just("SHOW SLUICE".to_string()),
        Just("DIGESTS".to_string()),
        Just("COMMIT".to_string()),
        Just("KILL".to_string()),
        Just("@@socket".to_string()),
        Just("CONNECTION_ID()".to_string()),
        Just("LAST_INSERT_ID(".to_string()),
        Just("/*".to_string()),
        Just("*/".to_string()),
        Just("/* sluice:replica */".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("`".to_string()),
        Just("?".to_string()),
        Just("=".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just(",".to_string()),
        Just(";".to_string()),
        Just("-- ".to_string()),
        Just("#".to_string()),
        Just("\\".to_string()),
        (0i64..100_000).prop_map(|n| n.to_string()),
        "[a-z_]{1,8}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    proptest::collection::vec(token, 0..40).prop_map(|t| t.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn codec_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        codec(&bytes);
    }

    #[test]
    fn handshake_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        handshake(&bytes);
    }

    #[test]
    fn command_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        command(&bytes);
    }

    #[test]
    fn execute_readers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), params in 0u16..20) {
        execute(&bytes, params);
    }

    #[test]
    fn response_scanner_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        scanner(&bytes);
    }

    #[test]
    fn decision_never_panics_on_any_text(sql in any::<String>()) {
        statement(&sql, &sharding());
    }

    #[test]
    fn decision_never_panics_on_sql_shaped_text(sql in sqlish()) {
        statement(&sql, &sharding());
    }
}

/// Every kept input, replayed through its target (the file name starts with the target).
#[test]
fn corpus_replays() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz-corpus");
    let sh = sharding();
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        match name.split('-').next().unwrap() {
            "codec" => codec(&bytes),
            "handshake" => handshake(&bytes),
            "command" => command(&bytes),
            "execute" => execute(&bytes, 3),
            "scanner" => scanner(&bytes),
            "sql" => statement(&String::from_utf8_lossy(&bytes), &sh),
            other => panic!("{name}: unknown target '{other}'"),
        }
        n += 1;
    }
    assert!(n >= 10, "the corpus has {n} inputs");
}
