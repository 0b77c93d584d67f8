//! The resource timeline and the server metrics of a scenario: console lines and report
//! tables, from the same quantities.

use super::model::{Cell, Column, Table};
use crate::telemetry::resources::{MeanPeak, ResourceTimeline};
use crate::telemetry::scrape::ServerMetrics;

fn bytes(b: f64) -> String {
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    }
}

fn pct(x: f64) -> String {
    format!("{x:.0}%")
}

/// One sampled quantity: its name, mean and peak as shown.
type Quantity = (&'static str, String, String);

fn mp(name: &'static str, m: &Option<MeanPeak>, f: impl Fn(f64) -> String) -> Option<Quantity> {
    m.map(|m| (name, f(m.mean), f(m.peak)))
}

/// The sampled quantities by group: the host and server first (group `None`), then each GPU.
fn resource_groups(t: &ResourceTimeline) -> Vec<(Option<u32>, Vec<Quantity>)> {
    let s = &t.summary;
    let host: Vec<Quantity> = [
        mp("host CPU", &s.host_cpu_pct, pct),
        mp("host memory", &s.host_mem_used_bytes, bytes),
        mp("server CPU", &s.server_cpu_pct, pct),
        mp("server RSS", &s.server_rss_bytes, bytes),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut out = vec![(None, host)];
    for g in &s.gpus {
        let q: Vec<Quantity> = [
            mp("util", &g.util_pct, pct),
            mp("memory", &g.memory_used_bytes, bytes),
            mp("power", &g.power_w, |w| format!("{w:.0} W")),
        ]
        .into_iter()
        .flatten()
        .collect();
        out.push((Some(g.index), q));
    }
    out
}

fn resources_title(t: &ResourceTimeline) -> String {
    format!(
        "Resources ({} samples every {:.0} ms)",
        t.summary.samples, t.interval_ms
    )
}

/// "Resources (...): host CPU mean .. peak .., ..." plus one line per GPU.
pub fn resources_text(t: &ResourceTimeline) -> String {
    let line = |q: &[Quantity]| {
        q.iter()
            .map(|(n, mean, peak)| format!("{n} mean {mean} peak {peak}"))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let mut out = resources_title(t);
    for (gpu, q) in resource_groups(t) {
        match gpu {
            None => out.push_str(&format!(": {}", line(&q))),
            Some(i) => out.push_str(&format!("\n  GPU {i}: {}", line(&q))),
        }
    }
    out
}

const RESOURCE_COLUMNS: &[Column] = &[
    Column {
        head: "quantity",
        csv: &["quantity"],
    },
    Column {
        head: "mean",
        csv: &["mean"],
    },
    Column {
        head: "peak",
        csv: &["peak"],
    },
];

/// The resource summary as a table (the rows of `resources_text`).
pub(crate) fn resources_table(t: &ResourceTimeline) -> Table {
    let rows = resource_groups(t)
        .into_iter()
        .flat_map(|(gpu, q)| {
            q.into_iter().map(move |(n, mean, peak)| {
                let name = gpu.map_or(n.to_string(), |i| format!("GPU {i} {n}"));
                vec![Cell::Text(name), Cell::Text(mean), Cell::Text(peak)]
            })
        })
        .collect();
    Table {
        title: resources_title(t),
        columns: RESOURCE_COLUMNS,
        rows,
    }
}

/// What the server's metrics said, as (quantity, value) pairs: counter deltas, gauge mean and
/// peak, the prefix-cache hit rate.
fn metrics_parts(m: &ServerMetrics) -> Vec<(&'static str, String)> {
    let mut parts = Vec::new();
    for (key, label) in [
        ("prompt_tokens", "prompt tokens"),
        ("generation_tokens", "generated tokens"),
        ("requests_finished", "requests finished"),
    ] {
        if let Some(d) = m.series.get(key).and_then(|s| s.delta) {
            parts.push((label, format!("+{d:.0}")));
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
            parts.push((
                label,
                format!(
                    "mean {:.1}{unit} peak {:.1}{unit}",
                    mean * scale,
                    peak * scale
                ),
            ));
        }
    }
    if let Some(r) = m.prefix_cache_hit_rate {
        parts.push(("prefix-cache hit rate", format!("{:.1}%", r * 100.0)));
    }
    parts
}

fn metrics_title(m: &ServerMetrics) -> String {
    format!(
        "Server metrics ({}, {} scrapes{})",
        m.url,
        m.scrapes,
        if m.failed_scrapes > 0 {
            format!(", {} failed", m.failed_scrapes)
        } else {
            String::new()
        }
    )
}

/// "Server metrics (...): prompt tokens +N, ..." or `None` when nothing known was scraped.
pub fn metrics_text(m: &ServerMetrics) -> Option<String> {
    let parts = metrics_parts(m);
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "{}: {}",
        metrics_title(m),
        parts
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(" · ")
    ))
}

const METRICS_COLUMNS: &[Column] = &[
    Column {
        head: "quantity",
        csv: &["quantity"],
    },
    Column {
        head: "value",
        csv: &["value"],
    },
];

/// The server metrics as a table (the parts of `metrics_text`), or `None` when nothing known
/// was scraped.
pub(crate) fn metrics_table(m: &ServerMetrics) -> Option<Table> {
    let rows: Vec<Vec<Cell>> = metrics_parts(m)
        .into_iter()
        .map(|(k, v)| vec![Cell::Text(k.into()), Cell::Text(v)])
        .collect();
    (!rows.is_empty()).then(|| Table {
        title: metrics_title(m),
        columns: METRICS_COLUMNS,
        rows,
    })
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
