//! The admin HTTP endpoint under abuse: a bearer token for `/metrics` and `/status` (with
//! `/health` open for probes), and half-sent requests that must not use up descriptors or
//! stop the MySQL listener.

use crate::harness;
use mysql_async::prelude::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn get(p: &harness::Proxy, path: &str, auth: Option<&str>) -> u16 {
    let mut s = TcpStream::connect(p.admin).await.unwrap();
    let auth = auth.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut buf)).await;
    buf.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_status_need_the_token_and_health_does_not() {
    let file = std::env::temp_dir().join(format!("sluice-admin-token-{}", std::process::id()));
    std::fs::write(&file, "s3cret-token\n").unwrap();
    let p =
        harness::start_with(|t| t.replace("[proxy]", &format!("[proxy]\nadmin_token_file = \"{}\"", file.display())))
            .await;
    assert_eq!(get(&p, "/metrics", None).await, 401);
    assert_eq!(get(&p, "/status", Some("wrong")).await, 401);
    assert_eq!(get(&p, "/metrics", Some("s3cret-token")).await, 200);
    assert_eq!(get(&p, "/status", Some("s3cret-token")).await, 200);
    assert_eq!(get(&p, "/health", None).await, 200, "probes need no token");
    let _ = std::fs::remove_file(&file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_hold_neither_the_admin_port_nor_the_mysql_listener() {
    let p = harness::start_with(|t| {
        t.replace("[proxy]", "[proxy]\nadmin_max_connections = 16\nadmin_header_timeout_ms = 1000")
    })
    .await;
    let started = Instant::now();
    let mut half = Vec::new();
    for _ in 0..1100 {
        let mut s = TcpStream::connect(p.admin).await.unwrap();
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").await;
        half.push(s);
    }
    // The MySQL side is not affected.
    let mut c = p.conn().await;
    let v: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1));
    // Past the header deadline every half-sent request is gone, and the port answers again.
    let mut open = 0;
    for s in &mut half {
        let mut buf = [0u8; 512];
        let left = Duration::from_secs(4).saturating_sub(started.elapsed()).max(Duration::from_millis(10));
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(_)) => {} // an error response (408) before the close also ends it
            Err(_) => open += 1,
        }
    }
    assert_eq!(open, 0, "half-sent admin requests still held after the header deadline");
    drop(half);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if get(&p, "/health", None).await == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the admin port did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Probes for orchestrators: `/health/live` answers while the process runs; `/health/ready`
/// is 200 with every shard's primary reachable and 503 naming the shard whose primary is not,
/// and 503 once draining has begun.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_and_readiness_probes_say_different_things() {
    let p = harness::start().await;
    let (code, body) = p.http_get("/health/ready").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.starts_with("ready"), "{body}");
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let q =
        harness::start_with(|t| t.replace("primary = \"127.0.0.1:13317\"", &format!("primary = \"127.0.0.1:{dead}\"")))
            .await;
    let (code, body) = q.http_get("/health/ready").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("shard 's1'"), "{body}");
    let (code, _) = q.http_get("/health/live").await;
    assert_eq!(code, 200, "alive although not ready");
    let (code, _) = q.http_get("/health").await;
    assert_eq!(code, 200, "/health keeps its meaning: some primary is up");
    p.shared.draining.store(true, std::sync::atomic::Ordering::Relaxed);
    let (code, body) = p.http_get("/health/ready").await;
    assert_eq!((code, body.as_str()), (503, "draining\n"));
}
