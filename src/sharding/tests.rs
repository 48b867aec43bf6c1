use super::ring::{canonical, KeyValue, Ring};
use super::{Sharding, Target};
use crate::config::ShardingConfig;

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

fn golden_keys() -> Vec<KeyValue> {
    let mut keys: Vec<KeyValue> = (1..=1000).map(KeyValue::Int).collect();
    keys.extend((0..24).map(|i| KeyValue::Bytes(format!("user-{i}").into_bytes())));
    keys.push(KeyValue::Int(-1));
    keys.push(KeyValue::Int(9_223_372_036_854_775_807));
    keys
}

fn key_text(k: &KeyValue) -> String {
    String::from_utf8(canonical(k)).unwrap()
}

/// The placement of 1,026 keys on the ring s0, s1, s2 with 256 vnodes each, pinned in
/// tests/golden/ring_placement.txt. It must never change while the membership does not: a
/// change here moves rows away from where they were written. (`SLUICE_BLESS=1` rewrites the
/// file; only ever for a deliberate, documented change of the hash.)
#[test]
fn golden_placement_never_changes() {
    let ring = Ring::new(&names(&["s0", "s1", "s2"]), 256);
    let now: String = golden_keys().iter().map(|k| format!("{}\t{}\n", key_text(k), ring.shard_of(k))).collect();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/ring_placement.txt");
    if std::env::var("SLUICE_BLESS").is_ok() {
        std::fs::write(path, &now).unwrap();
    }
    let golden = std::fs::read_to_string(path).expect("golden file");
    assert!(golden.lines().count() >= 1000);
    for (i, (a, b)) in golden.lines().zip(now.lines()).enumerate() {
        assert_eq!(a, b, "placement changed at line {}", i + 1);
    }
    assert_eq!(golden.lines().count(), now.lines().count());
}

#[test]
fn a_fourth_shard_takes_about_a_quarter_of_the_keys_only_from_the_others() {
    let three = Ring::new(&names(&["s0", "s1", "s2"]), 256);
    let four = Ring::new(&names(&["s0", "s1", "s2", "s3"]), 256);
    let n = 20_000;
    let mut moved = 0;
    for i in 0..n {
        let k = KeyValue::Int(i);
        let (a, b) = (three.shard_of(&k), four.shard_of(&k));
        if a != b {
            assert_eq!(b, "s3", "key {i} moved from {a} to {b}, not to the new shard");
            moved += 1;
        }
    }
    let share = moved as f64 / n as f64;
    assert!((0.18..0.32).contains(&share), "{share} of the keys moved");
    // The plan agrees with the keys: only moves to s3, summing to about a quarter.
    let plan = Ring::movement(&three, &four);
    assert!(plan.iter().all(|(_, to, _)| to == "s3"), "{plan:?}");
    let planned: f64 = plan.iter().map(|m| m.2).sum();
    assert!((planned - share).abs() < 0.02, "plan {planned} vs keys {share}");
    assert!(Ring::movement(&three, &three).is_empty());
    let shares = four.shares();
    assert!((shares.iter().map(|s| s.1).sum::<f64>() - 1.0).abs() < 1e-9);
    assert!(shares.iter().all(|s| (0.18..0.32).contains(&s.1)), "{shares:?}");
}

#[test]
fn integers_written_any_way_land_together() {
    let ring = Ring::new(&names(&["s0", "s1", "s2"]), 64);
    for i in [0i128, 7, 42, 1_000_000, -5] {
        let as_int = ring.shard_index(&KeyValue::Int(i));
        assert_eq!(ring.shard_index(&KeyValue::Bytes(i.to_string().into_bytes())), as_int);
        assert_eq!(ring.shard_index(&KeyValue::Bytes(format!(" {i}").into_bytes())), as_int);
    }
    assert_eq!(canonical(&KeyValue::Bytes(b"007".to_vec())), b"7");
    assert_eq!(canonical(&KeyValue::Bytes(b"abc".to_vec())), b"abc");
}

fn sharding() -> Sharding {
    let cfg: ShardingConfig = toml::from_str(
        r#"key = "user_id"
           tables = ["orders", "events"]
           ring = ["s0", "s1", "s2"]
           default = "main""#,
    )
    .unwrap();
    Sharding::new(&cfg, |n| ["main", "s0", "s1", "s2"].iter().position(|x| *x == n).unwrap())
}

/// Two keys on different shards and one on the same shard as the first.
fn keys_on(sh: &Sharding) -> (i128, i128, i128) {
    let a = 1;
    let sa = sh.ring.shard_index(&KeyValue::Int(a));
    let b = (2..).find(|&k| sh.ring.shard_index(&KeyValue::Int(k)) != sa).unwrap();
    let c = (b + 1..).find(|&k| sh.ring.shard_index(&KeyValue::Int(k)) == sa).unwrap();
    (a, b, c)
}

#[test]
fn plans_find_the_key_where_it_is_written() {
    let sh = sharding();
    let (a, b, c) = keys_on(&sh);
    let sa = sh.ring.shard_index(&KeyValue::Int(a));
    let one = Target::Shard(sa);
    assert_eq!(sh.plan(&format!("SELECT * FROM orders WHERE user_id = {a}")), one);
    assert_eq!(sh.plan(&format!("SELECT * FROM orders WHERE '{a}' = user_id AND total > 3")), one);
    assert_eq!(sh.plan(&format!("select * from Orders o where (o.USER_ID in ({a}, {c}))")), one);
    assert_eq!(
        sh.plan(&format!("SELECT * FROM orders o JOIN events e ON e.user_id = o.user_id WHERE o.user_id = {a}")),
        one
    );
    assert_eq!(sh.plan(&format!("UPDATE orders SET total = 1 WHERE user_id = {a}")), one);
    assert_eq!(sh.plan(&format!("DELETE FROM orders WHERE user_id = {a} AND id = 3")), one);
    assert_eq!(sh.plan(&format!("INSERT INTO orders (id, user_id) VALUES (1, {a}), (2, {c})")), one);
    assert_eq!(sh.plan("SELECT * FROM orders WHERE id = 1 AND user_id = ?"), Target::Param(0));
    assert_eq!(sh.plan("INSERT INTO orders (id, note, user_id) VALUES (?, '?', ?)"), Target::Param(1));
    assert_eq!(sh.plan("SELECT * FROM customers WHERE id = 1"), Target::Default);
    assert_eq!(sh.plan("CREATE TABLE orders (id INT, user_id BIGINT)"), Target::All { ddl: true });
    assert_eq!(sh.plan("DROP TABLE IF EXISTS orders"), Target::All { ddl: true });
    assert_eq!(sh.plan("TRUNCATE TABLE events"), Target::All { ddl: true });
    // One table, no single shard: scattered, or refused naming what cannot be combined.
    let scattered = |sql: &str| matches!(sh.plan(sql), Target::Scatter(_));
    assert!(scattered(&format!("SELECT * FROM orders WHERE user_id IN ({a}, {b})")));
    assert!(scattered("SELECT COUNT(*), SUM(total), MIN(id), MAX(id) FROM orders"));
    assert!(scattered("SELECT * FROM orders WHERE user_id = 1 OR id = 2 ORDER BY id DESC LIMIT 5, 10"));
    assert!(scattered("SELECT user_id, COUNT(*), SUM(total) FROM orders GROUP BY user_id ORDER BY 2 DESC LIMIT 3"));
    assert!(scattered("SELECT DISTINCT note FROM orders"));
    let avg = sh.plan("SELECT user_id, AVG(total) AS a FROM orders GROUP BY user_id LIMIT 2");
    let Target::Scatter(sc) = avg else { panic!("{avg:?}") };
    assert_eq!(sc.shard_sql, "SELECT user_id, SUM(total), COUNT(total) AS a FROM orders GROUP BY user_id");
    assert_eq!(sc.defs_sql.as_deref(), Some("SELECT user_id, AVG(total) AS a FROM orders GROUP BY user_id LIMIT 0"));
    let Target::Scatter(sc) = sh.plan("SELECT user_id, COUNT(*) FROM orders GROUP BY user_id LIMIT 3") else {
        panic!()
    };
    assert_eq!(
        sc.shard_sql,
        "SELECT user_id, COUNT(*), WEIGHT_STRING(RTRIM(`user_id`)) AS `__sluice_w0` FROM orders GROUP BY user_id",
        "groups need every shard's rows, and each group column's weight"
    );
    assert_eq!(sc.weights, vec!["user_id".to_string()]);
    let Target::Scatter(sc) = sh.plan("SELECT note AS n, id FROM orders ORDER BY n DESC, 2 LIMIT 4") else { panic!() };
    assert_eq!(
        sc.shard_sql,
        "SELECT note AS n, id, WEIGHT_STRING(RTRIM(`note`)) AS `__sluice_w0`, WEIGHT_STRING(RTRIM(`id`)) AS `__sluice_w1` FROM orders ORDER BY n DESC, 2 LIMIT 4"
    );
    for (sql, part) in [
        ("SELECT user_id, COUNT(*) FROM orders GROUP BY user_id HAVING COUNT(*) > 1", "HAVING"),
        ("SELECT note, COUNT(*) FROM orders GROUP BY user_id", "GROUP BY columns"),
        ("SELECT COUNT(*) FROM orders GROUP BY user_id", "GROUP BY columns"),
        ("SELECT user_id, COUNT(*) FROM orders GROUP BY user_id + 1", "expression"),
        ("SELECT STDDEV(total) FROM orders", "STDDEV"),
        ("SELECT DISTINCT COUNT(*) FROM orders", "DISTINCT with aggregates"),
        ("SELECT COUNT(DISTINCT note) FROM orders", "DISTINCT"),
        ("SELECT id, COUNT(*) FROM orders", "mixed"),
        ("SELECT id FROM orders ORDER BY id + 1", "expression"),
    ] {
        assert!(matches!(sh.plan(sql), Target::Refuse(m) if m.contains(part)), "{sql}: {:?}", sh.plan(sql));
    }
    let Target::Scatter(sc) = sh.plan("SELECT id FROM orders ORDER BY id LIMIT 10 OFFSET 5") else { panic!() };
    assert_eq!(
        (sc.shard_sql.as_str(), sc.limit, sc.offset),
        ("SELECT id, WEIGHT_STRING(RTRIM(`id`)) AS `__sluice_w0` FROM orders ORDER BY id LIMIT 15", Some(10), 5)
    );
    assert!(
        matches!(sh.plan("SELECT * FROM orders o JOIN events e ON e.id = o.id WHERE o.user_id = 1"), Target::Refuse(m) if m.contains("not equal"))
    );
    assert!(
        matches!(sh.plan("SELECT * FROM orders o JOIN customers c ON c.id = o.user_id"), Target::Refuse(m) if m.contains("mixing"))
    );
    assert!(matches!(sh.plan("UPDATE orders SET total = 0"), Target::Refuse(_)));
    assert!(matches!(sh.plan("INSERT INTO orders VALUES (1, 2)"), Target::Refuse(m) if m.contains("naming column")));
}

#[test]
fn multi_row_inserts_split_by_shard_keeping_each_row_verbatim() {
    let sh = sharding();
    let (a, b, c) = keys_on(&sh);
    let sql = format!(
        "INSERT INTO orders (id, user_id, note) VALUES (1, {a}, 'x\\'y, (z)'),\n (2, {b}, \"é\"), (3, {c}, NULL) ON DUPLICATE KEY UPDATE note = VALUES(note)"
    );
    let Target::Split(parts) = sh.plan(&sql) else { panic!("{:?}", sh.plan(&sql)) };
    assert_eq!(parts.len(), 2);
    let sa = sh.ring.shard_index(&KeyValue::Int(a));
    let first = parts.iter().find(|p| p.0 == sa).unwrap();
    assert_eq!(
        first.1,
        format!("INSERT INTO orders (id, user_id, note) VALUES (1, {a}, 'x\\'y, (z)'), (3, {c}, NULL) ON DUPLICATE KEY UPDATE note = VALUES(note)")
    );
    let other = parts.iter().find(|p| p.0 != sa).unwrap();
    assert_eq!(
        other.1,
        format!(
            "INSERT INTO orders (id, user_id, note) VALUES (2, {b}, \"é\") ON DUPLICATE KEY UPDATE note = VALUES(note)"
        )
    );
}

#[test]
fn mentions_is_a_cheap_word_match() {
    let sh = sharding();
    assert!(sh.mentions("select * from `orders` where user_id = 1"));
    assert!(sh.mentions("SELECT * FROM db.EVENTS"));
    assert!(!sh.mentions("SELECT 'orders' FROM customers"));
}

/// The shape cache answers exactly what parsing answers, for statements it has and has not
/// seen, whatever the key values.
#[test]
fn cached_plans_equal_parsed_plans() {
    let sh = sharding();
    let shapes = [
        "SELECT * FROM orders WHERE user_id = {k}",
        "SELECT * FROM orders WHERE user_id = '{k}' AND id > 3",
        "SELECT * FROM orders o JOIN events e ON e.user_id = o.user_id WHERE o.user_id = {k}",
        "SELECT * FROM orders WHERE user_id IN ({k}, {j})",
        "UPDATE orders SET total = 1 WHERE user_id = {k}",
        "INSERT INTO orders (id, user_id) VALUES (1, {k}), (2, {j})",
        "DELETE FROM orders WHERE user_id = -{k}",
        "SELECT * FROM orders WHERE note = 'it''s {k}' AND user_id = {j}",
        "SELECT COUNT(*) FROM orders WHERE id = {k}",
        "SELECT orders FROM customers WHERE id = {k}",
    ];
    for shape in shapes {
        for (k, j) in [(1, 2), (7, 7), (42, 9), (1000, 3), (5, 123456)] {
            let sql = shape.replace("{k}", &k.to_string()).replace("{j}", &j.to_string());
            assert_eq!(sh.plan_cached(&sql), sh.plan(&sql), "{sql}");
        }
    }
}

mod no_panic {
    //! Whatever a client sends as SQL, no recogniser, analysis or planner panics (a panic
    //! ends the session task mid-statement).
    use super::sharding;
    use crate::router::analysis;
    use proptest::prelude::*;

    /// SQL-shaped input: keywords, names, numbers at the edges of u64, quotes, comments of
    /// every kind, variables, punctuation and multi-byte whitespace, in any order.
    fn sqlish() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("SELECT ".to_string()),
            Just("FROM orders ".to_string()),
            Just("WHERE user_id = ".to_string()),
            Just("ORDER BY ".to_string()),
            Just("GROUP BY ".to_string()),
            Just("LIMIT ".to_string()),
            Just("OFFSET ".to_string()),
            Just("18446744073709551615".to_string()),
            Just("99999999999999999999999".to_string()),
            Just("INSERT INTO orders (user_id) VALUES ".to_string()),
            Just("SET ".to_string()),
            Just("@@".to_string()),
            Just("@".to_string()),
            Just("/*M!".to_string()),
            Just("/*!".to_string()),
            Just("*/".to_string()),
            Just("-- ".to_string()),
            Just("'".to_string()),
            Just("`".to_string()),
            Just("\"".to_string()),
            Just("\\".to_string()),
            Just("(".to_string()),
            Just(")".to_string()),
            Just(",".to_string()),
            Just(";".to_string()),
            Just("\u{a0}".to_string()),
            Just("\u{3000}".to_string()),
            Just("é".to_string()),
            Just("LAST_INSERT_ID(".to_string()),
            Just("COUNT(*)".to_string()),
            Just("AVG(".to_string()),
            "[a-z_]{1,8}",
            "[0-9]{1,3}",
            " ",
        ];
        prop::collection::vec(token, 0..40).prop_map(|v| v.concat())
    }

    fn everything(sql: &str) {
        let sh = sharding();
        let _ = sh.plan(sql);
        let _ = sh.plan_cached(sql);
        let _ = sh.mentions(sql);
        let _ = analysis::analyze_marking(sql, |w| sh.is_sharded(w), true);
        let _ = analysis::session_values(sql);
        let _ = crate::router::rewrite::hide_socket(sql, Some("/tmp/s.sock"));
        let _ = analysis::assigned_sysvars(sql);
        let _ = crate::sharding::plan::may_name_tables(sql);
    }

    proptest! {
        #[test]
        fn sql_shaped_input(sql in sqlish()) {
            everything(&sql);
        }

        #[test]
        fn arbitrary_text(sql in any::<String>()) {
            everything(&sql);
        }

        #[test]
        fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            // COM_QUERY payloads are read lossily, as the session does.
            everything(&String::from_utf8_lossy(&bytes));
        }
    }
}
