use super::*;

const MINIMAL: &str = r#"
[proxy]
listen = "127.0.0.1:6033"

[[users]]
name = "app"
password = "app_pw"

[[shards]]
name = "main"
primary = "127.0.0.1:13306"
replicas = [ { addr = "127.0.0.1:13307" } ]
"#;

#[test]
fn minimal_config_gets_documented_defaults() {
    let c = Config::parse(MINIMAL).unwrap();
    assert_eq!(c.pool.max_size, 64);
    assert_eq!(c.pool.acquire_timeout_ms, 3000);
    assert_eq!(c.replicas.max_lag_ms, 1000);
    assert_eq!(c.shards[0].replicas[0].weight, 100);
    assert_eq!(c.proxy.max_client_connections, 10_000);
    assert_eq!(c.default_shard(), "main");
    assert_eq!(c.user("app").unwrap().password, "app_pw");
}

#[test]
fn shipped_configs_are_valid() {
    // The example reads its passwords from these (set only for this process's test).
    for var in [
        "SLUICE_APP_PASSWORD",
        "SLUICE_REPORTING_PASSWORD",
        "SLUICE_REPORTING_BACKEND_PASSWORD",
        "SLUICE_MONITOR_PASSWORD",
    ] {
        std::env::set_var(var, "x");
    }
    for f in ["config/sluice.toml", "config/dev.toml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(f);
        if let Err(e) = load(&path) {
            panic!("{f}: {e}");
        }
    }
}

#[test]
fn unknown_key_is_an_error_with_its_line() {
    let text = MINIMAL.replace("password = \"app_pw\"", "password = \"app_pw\"\npasword = \"x\"");
    let e = Config::parse(&text).unwrap_err();
    assert_eq!(e.problems.len(), 1);
    assert_eq!(e.problems[0].line, Some(8));
    assert!(e.problems[0].message.contains("pasword"), "{e}");
}

#[test]
fn every_cross_field_problem_is_reported_with_lines() {
    let text = format!(
        "{MINIMAL}\n[[shards]]\nname = \"main\"\nprimary = \"nope\"\n\n[sharding]\nkey = \"user_id\"\nring = [\"s9\"]\ndefault = \"main\"\n"
    );
    let e = Config::parse(&text).unwrap_err();
    let shown = e.to_string();
    assert!(shown.contains("line 15: shard 'main' is declared twice"), "{shown}");
    assert!(shown.contains("line 16: primary 'nope' is not host:port"), "{shown}");
    assert!(shown.contains("line 20: sharding.ring names unknown shard 's9'"), "{shown}");
    assert_eq!(e.problems.len(), 3);
}

#[test]
fn syntax_error_has_a_line() {
    let e = Config::parse("[proxy]\nlisten = \n").unwrap_err();
    assert_eq!(e.problems[0].line, Some(2));
}

#[test]
fn numeric_keys_out_of_range_are_refused() {
    for (section, key, bad) in [
        ("pool", "acquire_timeout_ms", "0"),
        ("pool", "connect_timeout_ms", "0"),
        ("pool", "max_size", "0"),
        ("replicas", "check_interval_ms", "0"),
        ("proxy", "max_prepared_statements", "0"),
        ("proxy", "max_allowed_packet", "2147483648"),
    ] {
        let text = MINIMAL.replacen(&format!("[{section}]"), &format!("[{section}]\n{key} = {bad}"), 1);
        let text = if text.contains(&format!("{key} = {bad}")) {
            text
        } else {
            format!("{MINIMAL}\n[{section}]\n{key} = {bad}\n")
        };
        let e = Config::parse(&text).expect_err(key);
        assert!(e.to_string().contains(&format!("{section}.{key} = {bad} is out of range")), "{e}");
    }
    let sharded = format!(
        "{MINIMAL}\n[[shards]]\nname = \"s0\"\nprimary = \"127.0.0.1:13316\"\n\n[sharding]\nkey = \"user_id\"\nring = [\"s0\"]\ndefault = \"main\"\nvnodes = 3000000\n"
    );
    let e = Config::parse(&sharded).unwrap_err();
    assert!(e.to_string().contains("sharding.vnodes = 3000000 is out of range"), "{e}");
}

#[test]
fn cache_rules_are_checked() {
    let ok = Config::parse(&format!("{MINIMAL}\n[cache]\n[[cache.rules]]\ntables = [\"t\", \"s.u\"]\nttl_ms = 500\n"))
        .unwrap();
    let cache = ok.cache.unwrap();
    assert_eq!((cache.max_bytes, cache.max_entry_bytes, cache.rules.len()), (64 << 20, 1 << 20, 1));
    for (extra, says) in [
        ("[[cache.rules]]\nttl_ms = 500\n", "tables or fingerprint"),
        ("[[cache.rules]]\ntables = [\"t\"]\nfingerprint = \"SELECT 1\"\nttl_ms = 5\n", "tables or fingerprint"),
        ("[[cache.rules]]\ntables = [\"t\"]\nttl_ms = 0\n", "ttl_ms = 0"),
        ("[[cache.rules]]\ntables = [\"`t`\"]\nttl_ms = 5\n", "without quotes"),
        ("max_bytes = 1000\n", "cache.max_bytes"),
        ("max_entry_bytes = 60000000\n", "max_entry_bytes"),
        ("invalidation = \"redis\"\n", "needs cache.redis_url"),
        ("redis_url = \"http://x\"\n", "must start with redis://"),
    ] {
        let e = Config::parse(&format!("{MINIMAL}\n[cache]\n{extra}")).unwrap_err().to_string();
        assert!(e.contains(says), "{extra}: {e}");
    }
}
