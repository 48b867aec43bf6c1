//! `GET /`: a status page a person can read. Server-rendered HTML with a little inline CSS, no
//! scripts and no external assets; it refreshes itself every 5 seconds. Backends per shard
//! (up or down, replication lag as a bar against `max_lag_ms`, weights, pool use), clients and
//! the multiplexing ratio, the top statements by total time and by p99, and the last reloads.

use crate::shared::Shared;
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// HTML-escapes text for element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A horizontal bar: `value` of `max`, with a caption.
fn bar(value: f64, max: f64, caption: &str, class: &str) -> String {
    let pct = if max > 0.0 { (value / max * 100.0).clamp(0.0, 100.0) } else { 0.0 };
    format!(
        "<div class=\"bar {class}\" title=\"{}\"><span style=\"width:{pct:.0}%\"></span><em>{}</em></div>",
        esc(caption),
        esc(caption)
    )
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}\
table{border-collapse:collapse;margin:.4em 0}td,th{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:left}\
th{background:#f4f4f4}.up{color:#17692a;font-weight:600}.down{color:#b00020;font-weight:600}\
.drained{color:#8a6d00}.bar{position:relative;width:12em;height:1.1em;background:#eee;border-radius:3px}\
.bar span{position:absolute;left:0;top:0;bottom:0;background:#5b9bd5;border-radius:3px}\
.bar.hot span{background:#d9534f}.bar em{position:relative;font-style:normal;font-size:.85em;padding-left:.3em}\
code{font-size:.9em}.muted{color:#777}";

/// Renders the page.
pub fn render(shared: &Shared) -> String {
    let snap = shared.load_full();
    let max_lag = snap.config.replicas.max_lag_ms;
    let mut h = String::with_capacity(16 * 1024);
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\">\
         <title>Sluice</title><style>{STYLE}</style></head><body><h1>Sluice {}</h1>",
        env!("CARGO_PKG_VERSION")
    );
    let clients = shared.metrics.client_connections.get();
    let mut backend_conns = 0u32;
    for s in &snap.topology.shards {
        for b in std::iter::once(&s.primary).chain(s.replicas.iter()) {
            let (u, i) = b.pool_usage();
            backend_conns += u + i;
        }
    }
    let ratio = if backend_conns == 0 { 0.0 } else { clients as f64 / f64::from(backend_conns) };
    let _ = write!(
        h,
        "<p id=\"summary\">config version {} · <span id=\"clients\">{clients}</span> clients over {backend_conns} \
         backend connections (<span id=\"ratio\">{ratio:.1}</span> clients per connection)</p>",
        snap.version
    );
    for s in &snap.topology.shards {
        let writer = s.writer();
        let _ = write!(
            h,
            "<h2>Shard {}</h2><table class=\"shard\"><tr><th>role</th><th>address</th><th>state</th><th>lag</th>\
             <th>weight</th><th>effective</th><th>pool in use / idle</th><th>in flight</th></tr>",
            esc(&s.name)
        );
        for b in std::iter::once(&s.primary).chain(s.replicas.iter()) {
            let replica = b.role == crate::router::Role::Replica;
            let (in_use, idle) = b.pool_usage();
            let drained = b.drained.load(Ordering::Relaxed);
            let (class, state) = match (b.health.checked(), b.health.is_up(), drained) {
                (false, _, _) => ("muted", "not checked yet"),
                (true, false, _) => ("down", "down"),
                (true, true, true) => ("drained", "up, drained"),
                (true, true, false) => ("up", "up"),
            };
            let role = if std::sync::Arc::ptr_eq(&writer, b) {
                format!("{} (writer)", b.role.as_str())
            } else {
                b.role.as_str().to_string()
            };
            let lag = match (replica, b.health.lag_ms()) {
                (false, _) => String::from("—"),
                (true, None) => String::from("<span class=\"muted\">unknown</span>"),
                (true, Some(l)) => {
                    bar(l as f64, max_lag as f64, &format!("{l} ms of {max_lag}"), if l > max_lag { "hot" } else { "" })
                }
            };
            let cap = f64::from(snap.config.pool.max_size) * b.pool_usage_by_user().len().max(1) as f64;
            let pool = bar(
                f64::from(in_use),
                cap,
                &format!("{in_use} / {idle}"),
                if f64::from(in_use) > 0.9 * cap { "hot" } else { "" },
            );
            let _ = write!(
                h,
                "<tr class=\"backend\" data-addr=\"{addr}\" data-state=\"{class}\"><td>{role}</td><td><code>{addr}</code></td>\
                 <td class=\"{class}\">{state}</td><td>{lag}</td><td>{w}</td><td>{ew}</td><td>{pool}</td><td>{f}</td></tr>",
                addr = esc(&b.addr),
                w = if replica { b.weight.load(Ordering::Relaxed).to_string() } else { "—".into() },
                ew = if replica {
                    format!("{:.1}", crate::topology::balance::effective_weight(b, max_lag))
                } else {
                    "—".into()
                },
                f = b.in_flight.load(Ordering::Relaxed),
            );
        }
        h.push_str("</table>");
    }
    top_statements(shared, &mut h);
    h.push_str("<h2>Recent reloads</h2><table id=\"reloads\"><tr><th>when (unix)</th><th>result</th></tr>");
    if let Ok(r) = shared.reloads.lock() {
        for (when, what) in r.iter().rev() {
            let t = when.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            let _ = write!(h, "<tr><td>{t}</td><td>{}</td></tr>", esc(what));
        }
        if r.is_empty() {
            h.push_str("<tr><td colspan=\"2\" class=\"muted\">none since start</td></tr>");
        }
    }
    h.push_str("</table><p class=\"muted\">Also: <a href=\"/status\">/status</a> (JSON), <a href=\"/metrics\">/metrics</a>, and SHOW SLUICE ... on the SQL admin interface.</p></body></html>");
    h
}

/// The top 10 statements by total time and by p99.
fn top_statements(shared: &Shared, h: &mut String) {
    let mut rows = shared.stats.rows();
    for (title, id, by_p99) in [("by total time", "top-total", false), ("by p99 latency", "top-p99", true)] {
        if by_p99 {
            rows.sort_by_key(|r| std::cmp::Reverse(r.quantile_us(0.99)));
        } else {
            rows.sort_by_key(|r| std::cmp::Reverse(r.total_us));
        }
        let _ = write!(
            h,
            "<h2>Top statements {title}</h2><table id=\"{id}\"><tr><th>fingerprint</th><th>destination</th><th>count</th>\
             <th>errors</th><th>total ms</th><th>p50 ms</th><th>p99 ms</th></tr>"
        );
        for r in rows.iter().take(10) {
            let _ = write!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.2}</td><td>{:.2}</td></tr>",
                esc(&r.fingerprint.chars().take(160).collect::<String>()),
                r.dest.as_str(),
                r.count,
                r.errors,
                r.total_us as f64 / 1000.0,
                r.quantile_us(0.5) as f64 / 1000.0,
                r.quantile_us(0.99) as f64 / 1000.0,
            );
        }
        if rows.is_empty() {
            h.push_str("<tr><td colspan=\"7\" class=\"muted\">no statements yet</td></tr>");
        }
        h.push_str("</table>");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_is_escaped() {
        assert_eq!(super::esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
