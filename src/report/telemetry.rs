//! Console lines for the resource timeline and the server metrics of a scenario.

use crate::telemetry::resources::{MeanPeak, ResourceTimeline};
use crate::telemetry::scrape::ServerMetrics;

fn bytes(b: f64) -> String {
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    }
}

fn mp(name: &str, m: &Option<MeanPeak>, f: impl Fn(f64) -> String) -> Option<String> {
    m.map(|m| format!("{name} mean {} peak {}", f(m.mean), f(m.peak)))
}

fn pct(x: f64) -> String {
    format!("{x:.0}%")
}

/// "Resources (...): host CPU mean .. peak .., ..." plus one line per GPU.
pub fn resources_text(t: &ResourceTimeline) -> String {
    let s = &t.summary;
    let parts: Vec<String> = [
        mp("host CPU", &s.host_cpu_pct, pct),
        mp("host memory", &s.host_mem_used_bytes, bytes),
        mp("server CPU", &s.server_cpu_pct, pct),
        mp("server RSS", &s.server_rss_bytes, bytes),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut out = format!(
        "Resources ({} samples every {:.0} ms): {}",
        s.samples,
        t.interval_ms,
        parts.join(" · ")
    );
    for g in &s.gpus {
        let parts: Vec<String> = [
            mp("util", &g.util_pct, pct),
            mp("memory", &g.memory_used_bytes, bytes),
            mp("power", &g.power_w, |w| format!("{w:.0} W")),
        ]
        .into_iter()
        .flatten()
        .collect();
        out.push_str(&format!("\n  GPU {}: {}", g.index, parts.join(" · ")));
    }
    out
}

/// "Server metrics (...): prompt tokens +N, ..." or `None` when nothing known was scraped.
pub fn metrics_text(m: &ServerMetrics) -> Option<String> {
    let mut parts = Vec::new();
    for (key, label) in [
        ("prompt_tokens", "prompt tokens"),
        ("generation_tokens", "generated tokens"),
        ("requests_finished", "requests finished"),
    ] {
        if let Some(d) = m.series.get(key).and_then(|s| s.delta) {
            parts.push(format!("{label} +{d:.0}"));
        }
    }
    for (key, label, scale, unit) in [
        ("requests_running", "running", 1.0, ""),
        ("requests_waiting", "waiting", 1.0, ""),
        ("kv_cache_usage", "KV cache", 100.0, "%"),
    ] {
        if let Some(s) = m.series.get(key)
            && let (Some(mean), Some(peak)) = (s.mean, s.peak)
        {
            parts.push(format!(
                "{label} mean {:.1}{unit} peak {:.1}{unit}",
                mean * scale,
                peak * scale
            ));
        }
    }
    if let Some(r) = m.prefix_cache_hit_rate {
        parts.push(format!("prefix-cache hit rate {:.1}%", r * 100.0));
    }
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "Server metrics ({}, {} scrapes{}): {}",
        m.url,
        m.scrapes,
        if m.failed_scrapes > 0 {
            format!(", {} failed", m.failed_scrapes)
        } else {
            String::new()
        },
        parts.join(" · ")
    ))
}

/// A scenario's telemetry lines (shown after its table).
pub fn lines(res: &crate::results::file::ScenarioResult) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = &res.resources {
        out.push(resources_text(t));
    }
    if let Some(m) = res.server_metrics.as_ref().and_then(metrics_text) {
        out.push(m);
    }
    out
}
