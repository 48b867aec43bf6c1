//! Criterion benches for the functions every statement runs through: framing, the response
//! scanner, statement analysis and routing. `cargo bench --bench hot`.

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use sluice::config::{Config, Consistency, Fallback};
use sluice::metrics::Metrics;
use sluice::protocol::codec::{put_packet, Frame, PacketReader};
use sluice::protocol::response::{Expect, ResponseScanner};
use sluice::router::analysis::session_values;
use sluice::router::{analyze, route, ReadPolicy};
use sluice::topology::balance::{choose, Need};
use sluice::topology::Topology;
use std::sync::Arc;

const POINT_SELECT: &str = "SELECT c FROM sbtest1 WHERE id=5012";
const INSERT: &str = "INSERT INTO sbtest3 (id, k, c, pad) VALUES (0, 5007, '68487932199-96439406143-93774651418-41631865787', '22195207048-70116052123')";
const UPDATE: &str = "UPDATE sbtest2 SET k=k+1 WHERE id=4993";
const BEGIN: &str = "BEGIN";
const COMMIT: &str = "COMMIT";

/// The common statement shapes both the classification and the decision benches run.
const SHAPES: [(&str, &str); 5] = [
    ("point select", POINT_SELECT),
    ("insert", INSERT),
    ("update by key", UPDATE),
    ("begin", BEGIN),
    ("commit", COMMIT),
];

fn framing(c: &mut Criterion) {
    let payload = vec![7u8; 64];
    c.bench_function("codec/put_packet 64B", |b| {
        let mut out = BytesMut::with_capacity(1024);
        b.iter(|| {
            out.clear();
            put_packet(&mut out, 1, black_box(&payload));
        })
    });
    let mut wire = BytesMut::new();
    put_packet(&mut wire, 0, &payload);
    let wire = wire.freeze();
    c.bench_function("codec/read frame 64B", |b| {
        b.iter_batched(
            || wire.clone(),
            |w| {
                let mut r = PacketReader::new(1 << 24, 16 * 1024);
                let mut src = &w[..];
                let rt = futures_lite_block_on(r.read_frame(&mut src, 0));
                black_box(rt.unwrap());
            },
            BatchSize::SmallInput,
        )
    });
}

/// A minimal executor for a future that is ready on first poll (reading from a slice).
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("slice reads are always ready"),
    }
}

fn scanner(c: &mut Criterion) {
    let frames: Vec<Frame> = [
        &[1u8][..],
        b"\x03def\x06sbtest\x07sbtest1\x07sbtest1\x01c\x01c\x0c\x2d\x00\xe0\x01\x00\x00\xfe\x00\x00\x00\x00\x00",
        &[0xFE, 0, 0, 2, 0],
        b"\x1f68487932199-96439406143-937746",
        &[0xFE, 0, 0, 2, 0],
    ]
    .iter()
    .map(|p| Frame { seq: 0, payload: Bytes::copy_from_slice(p) })
    .collect();
    for (name, dep) in [("classic", false), ("deprecate_eof", true)] {
        c.bench_function(&format!("scanner/point-select response ({name})"), |b| {
            b.iter(|| {
                let mut s = ResponseScanner::new(Expect::Results, dep, false);
                for f in &frames {
                    black_box(s.feed(f).unwrap());
                }
                assert!(s.is_done());
            })
        });
    }
}

/// The testbed topology with both replicas up, fresh and eligible.
fn topology() -> Topology {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/dev.toml")).unwrap();
    let t = Topology::build(&Config::parse(&text).unwrap(), &Arc::new(Metrics::new()));
    for r in &t.shards[0].replicas {
        r.health.set_up(true);
        r.health.set_observation(Some(20), Some(true));
    }
    t
}

fn classify(c: &mut Criterion) {
    let topo = topology();
    let policy = ReadPolicy {
        consistency: Consistency::Eventual,
        fallback: Fallback::Primary,
        max_lag_ms: 1000,
        floor: None,
        sticky: None,
        unresolved: false,
        exclude: None,
    };
    c.bench_function("replica choice/2 eligible replicas", |b| {
        b.iter(|| black_box(choose(&topo.shards[0].replicas, 1000, &Need::default(), black_box(0.37))))
    });
    for (name, sql) in SHAPES {
        c.bench_function(&format!("classify+route/{name}"), |b| {
            b.iter(|| {
                let sql = black_box(sql);
                if session_values(sql).is_none() {
                    let a = analyze(sql);
                    black_box(route(&a, 0, &topo.shards[0], &policy, 0.37).unwrap());
                }
            })
        });
    }
}

fn sharding(c: &mut Criterion) {
    use sluice::sharding::{KeyValue, Ring};
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/dev.toml")).unwrap();
    let topo = Topology::build(&Config::parse(&text).unwrap(), &Arc::new(Metrics::new()));
    let sh = topo.sharding.as_ref().unwrap();
    let ring = Ring::new(&["s0".to_string(), "s1".to_string(), "s2".to_string()], 256);
    c.bench_function("ring lookup/integer key", |b| {
        b.iter(|| black_box(ring.shard_index(&KeyValue::Int(black_box(424242)))))
    });
    for (name, sql) in [
        ("point select by key", "SELECT amount FROM orders WHERE user_id = 4242 AND id = 7"),
        ("insert", "INSERT INTO orders (user_id, amount) VALUES (4242, 5)"),
        ("update by key", "UPDATE orders SET amount = amount + 1 WHERE user_id = 4242"),
    ] {
        c.bench_function(&format!("shard-key extraction/{name}"), |b| {
            b.iter(|| {
                let sql = black_box(sql);
                assert!(sh.mentions(sql));
                black_box(sh.plan(sql))
            })
        });
    }
    for (name, sql) in [
        ("point select by key", "SELECT amount FROM orders WHERE user_id = 4242 AND id = 7"),
        ("insert", "INSERT INTO orders (user_id, amount) VALUES (4242, 5)"),
    ] {
        sh.plan_cached(sql);
        c.bench_function(&format!("shard-key extraction, shape cached/{name}"), |b| {
            b.iter(|| black_box(sh.plan_cached(black_box(sql))))
        });
    }
    c.bench_function("shard-key extraction/unsharded statement (mention check only)", |b| {
        b.iter(|| black_box(sh.mentions(black_box(POINT_SELECT))))
    });
}

/// The whole per-statement decision ([`sluice::router::decide::decide`]) on the common
/// shapes, with and without sharding configured: what every COM_QUERY pays before routing.
fn decide(c: &mut Criterion) {
    use sluice::router::decide::{decide, Rules, SessionView};
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/dev.toml")).unwrap();
    let sharded = Topology::build(&Config::parse(&text).unwrap(), &Arc::new(Metrics::new()));
    let view = SessionView { connection_id: 7, ..SessionView::default() };
    let with = Rules::of(&sharded, 1);
    let without = Rules { sharding: None, ..with };
    let more = [
        ("select last_insert_id()", "SELECT LAST_INSERT_ID()"),
        ("sharded point select", "SELECT amount FROM orders WHERE user_id = 4242 AND id = 7"),
    ];
    for (name, sql) in SHAPES.into_iter().chain(more) {
        for (rules_name, rules) in [("unsharded", &without), ("sharding configured", &with)] {
            c.bench_function(&format!("decide/{name} ({rules_name})"), |b| {
                b.iter(|| black_box(decide(black_box(sql), true, &view, rules)))
            });
        }
    }
}

/// What `[stats] enabled = true` adds to a statement, measured on its own: the decision with
/// the fingerprint hashed in the analysis's pass and the statement counted into a warm table
/// (the row exists, as for nearly every statement of an application), against the decision
/// without either. The difference of the two is the statistics' CPU cost per statement in
/// warm caches; `bench/ab` measures the whole proxy, where the machine's noise is wider.
fn statistics(c: &mut Criterion) {
    use sluice::router::decide::{decide, Command, Rules, SessionView};
    use sluice::stats::{Destination, Sample, Stats, Where};
    use std::time::Duration;
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/dev.toml")).unwrap();
    let topo = Topology::build(&Config::parse(&text).unwrap(), &Arc::new(Metrics::new()));
    let rules = Rules { sharding: None, ..Rules::of(&topo, 1) };
    let off = SessionView { connection_id: 7, ..SessionView::default() };
    let on = SessionView { fingerprint: true, ..off };
    let stats = Stats::new(5_000);
    let at = Where { user: "app", schema: Some("sbtest"), shard: "main", dest: Destination::Primary };
    let (started, ended) = (std::time::Instant::now(), std::time::Instant::now() + Duration::from_micros(180));
    for (name, sql) in SHAPES {
        c.bench_function(&format!("statistics/{name}: decide, statistics off"), |b| {
            b.iter(|| black_box(decide(black_box(sql), true, &off, &rules)))
        });
        c.bench_function(&format!("statistics/{name}: decide with the fingerprint, then counted"), |b| {
            b.iter(|| {
                let cmd = decide(black_box(sql), true, &on, &rules);
                let fp = match &cmd {
                    Command::Execute(plan) => plan.analysis.fingerprint,
                    _ => 0,
                };
                // As `Session::observe` does: the duration from the statement's two instants.
                let took = black_box(ended).saturating_duration_since(black_box(started));
                let sample = Sample { took, error: false, rows_sent: 1, rows_affected: 0 };
                stats.record(fp, &at, || sluice::sql::fingerprint::text(sql), sample);
                black_box(cmd)
            })
        });
    }
    assert_eq!(stats.len(), SHAPES.len(), "one row per shape: the rows were warm");
}

criterion_group!(benches, framing, scanner, classify, sharding, decide, statistics);
criterion_main!(benches);
