//! What operators look at: the status page, rendered by headless Chromium; the alert rules,
//! checked and unit-tested by promtool; the Grafana dashboard, whose every query names a
//! metric Sluice exports.

use crate::harness;
use mysql_async::prelude::*;
use std::process::Command;
use std::time::{Duration, Instant};

fn deploy(path: &str) -> String {
    format!("{}/deploy/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// Chromium headless, loopback only (no background networking, no component updates).
fn chromium(args: &[&str]) -> std::process::Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
        ])
        .args(args)
        .output()
        .expect("chromium (scripts/deps installs it)")
}

/// The page loads in a real browser: every backend's address is there, a dead replica shows
/// as down and a live one as up, and the statements just run are among the top ones. A
/// screenshot is kept at target/status-page.png.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_renders_in_chromium_with_each_backend_and_its_state() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let r0 = harness::replica_ports()[0];
    let p = harness::start_with(|t| {
        let start = t.find("replicas = [").unwrap();
        let end = start + t[start..].find('\n').unwrap();
        let reps = format!(
            "replicas = [ {{ addr = \"127.0.0.1:{r0}\", weight = 100 }}, {{ addr = \"127.0.0.1:{dead}\", weight = 100 }} ]"
        );
        format!("{}{reps}{}", &t[..start], &t[end..])
    })
    .await;
    let dead_addr = format!("127.0.0.1:{dead}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while p.backend_status(&dead_addr).await["checked"] != true {
        assert!(Instant::now() < deadline, "the dead replica was never checked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p.until_eligible(&format!("127.0.0.1:{r0}"), true, Duration::from_secs(5)).await;
    let mut c = p.conn().await;
    for i in 0..5 {
        let _: Option<i64> = c.query_first(format!("SELECT {i} + 1 AS status_page_marker")).await.unwrap();
    }
    let url = format!("http://{}/", p.admin);
    let out = chromium(&["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("<h1>Sluice"), "no page: {dom}\n{}", String::from_utf8_lossy(&out.stderr));
    let snap = p.shared.load_full();
    for s in &snap.topology.shards {
        for b in std::iter::once(&s.primary).chain(s.replicas.iter()) {
            assert!(dom.contains(&format!("data-addr=\"{}\"", b.addr)), "{} missing from the page", b.addr);
        }
    }
    assert!(
        dom.contains(&format!("data-addr=\"{dead_addr}\" data-state=\"down\"")),
        "the dead replica is not shown down"
    );
    assert!(dom.contains(&format!("data-addr=\"127.0.0.1:{r0}\" data-state=\"up\"")), "a live replica is not shown up");
    assert!(dom.contains("select ? + ? as status_page_marker"), "the top statements are missing");
    let shot = format!("{}/target/status-page.png", env!("CARGO_MANIFEST_DIR"));
    let _ = std::fs::remove_file(&shot);
    let out = chromium(&["--window-size=1280,1600", &format!("--screenshot={shot}"), &url]);
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "no screenshot ({size} bytes): {}", String::from_utf8_lossy(&out.stderr));
}

/// `promtool check rules` and `promtool test rules` on deploy/prometheus.
#[test]
fn the_alert_rules_pass_promtool_checks_and_their_unit_tests() {
    for args in [vec!["check", "rules", "sluice-alerts.yml"], vec!["test", "rules", "sluice-alerts.test.yml"]] {
        let out = Command::new("promtool")
            .current_dir(deploy("prometheus"))
            .args(&args)
            .output()
            .expect("promtool (scripts/deps installs the prometheus package)");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The metric names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("sluice_") {
        let start = i + at;
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        names.push(expr[start..end].to_string());
        i = end;
    }
    names
}

/// Every metric the dashboard and the alert rules query is one Sluice exports (a renamed
/// metric would leave an empty panel or an alert that never fires).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_the_alerts_query_metrics_sluice_exports() {
    let p = harness::start().await;
    let mut c = p.conn().await;
    let _: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    let (_, metrics) = p.http_get("/metrics").await;
    let exported = |name: &str| {
        let base = name.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count");
        metrics.lines().any(|l| l.starts_with(&format!("# TYPE {base} ")))
    };
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(deploy("grafana/sluice-dashboard.json")).unwrap()).unwrap();
    let mut exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter().map(|t| t["expr"].as_str().unwrap().to_string()))
        .collect();
    assert!(exprs.len() >= 10, "{} queries", exprs.len());
    let rules = std::fs::read_to_string(deploy("prometheus/sluice-alerts.yml")).unwrap();
    exprs.extend(
        rules.lines().filter(|l| l.contains("sluice_") && !l.trim_start().starts_with('#')).map(str::to_string),
    );
    for e in &exprs {
        for name in metric_names(e) {
            assert!(exported(&name), "{name} (in `{e}`) is not exported by /metrics");
        }
    }
}

/// deploy/systemd/sluice.service passes `systemd-analyze verify` (with ExecStart pointed at
/// the binary just built, which the unit's own path does not hold on a build machine).
#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(deploy("systemd/sluice.service")).unwrap();
    assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID") && unit.contains("NoNewPrivileges=yes"));
    let dir = std::env::temp_dir().join(format!("sluice-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sluice.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/sluice", env!("CARGO_BIN_EXE_sluice"))).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("systemd-analyze");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success() && !said.contains("sluice.service:"), "{said}");
}
