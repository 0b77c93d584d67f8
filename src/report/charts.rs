//! Chart specs, drawn from saved results only: which charts a set of runs calls for, their
//! panels and series. Drawing them is `super::render`'s job.

use super::tables::Entry;
use crate::measure::stats::Dist;
use crate::results::params::ScenarioParams;
use crate::telemetry::resources::ResourceSample;

pub use super::render::{svg, write_png};

/// One panel of a chart.
#[derive(Debug, Clone)]
pub enum Panel {
    /// Grouped bars: one group per category, one bar per series.
    Bars {
        /// Panel title.
        title: String,
        /// Y axis label with unit.
        y_label: String,
        /// Category names (x axis).
        categories: Vec<String>,
        /// Series name and one value per category.
        series: Vec<(String, Vec<f64>)>,
    },
    /// Cumulative distributions: share of requests (y, %) at or below a latency (x).
    Cdf {
        /// Panel title.
        title: String,
        /// X axis label with unit.
        x_label: String,
        /// Series name and its (x, percent) points, x ascending.
        lines: Vec<(String, Vec<(f64, f64)>)>,
    },
    /// Lines against time: resource timelines (x in seconds from the scenario's first sample).
    Timeline {
        /// Panel title.
        title: String,
        /// Y axis label with unit.
        y_label: String,
        /// Series name and its (seconds, y) points.
        series: Vec<(String, Vec<(f64, f64)>)>,
    },
    /// Lines against a numeric x.
    Lines {
        /// Panel title.
        title: String,
        /// X axis label with unit.
        x_label: String,
        /// Y axis label with unit.
        y_label: String,
        /// Series name and its (x, y) points.
        series: Vec<(String, Vec<(f64, f64)>)>,
    },
}

/// A chart: a title and panels laid out in a grid.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File stem (`ttft_percentiles`).
    pub name: String,
    /// Title over all panels.
    pub title: String,
    /// Panels, row by row.
    pub panels: Vec<Panel>,
    /// Grid (rows, columns).
    pub grid: (usize, usize),
    /// Pixel size.
    pub size: (u32, u32),
}

fn dist_stats(d: &Option<Dist>) -> [f64; 4] {
    d.map_or([0.0; 4], |d| [d.p50, d.p90, d.p95, d.p99])
}

fn percentile_bars<'a>(
    entries: &'a [Entry<'a>],
    title: &str,
    pick: fn(&'a Entry<'a>) -> &'a Option<Dist>,
) -> Panel {
    let names = ["p50", "p90", "p95", "p99"];
    let series = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                n.to_string(),
                entries.iter().map(|e| dist_stats(pick(e))[i]).collect(),
            )
        })
        .collect();
    Panel::Bars {
        title: title.into(),
        y_label: "milliseconds".into(),
        categories: entries.iter().map(|e| e.label.clone()).collect(),
        series,
    }
}

fn throughput_bars(entries: &[Entry]) -> Panel {
    Panel::Bars {
        title: "Throughput per scenario".into(),
        y_label: "tokens per second".into(),
        categories: entries.iter().map(|e| e.label.clone()).collect(),
        series: vec![
            (
                "output tok/s".into(),
                entries
                    .iter()
                    .map(|e| e.scenario.metrics.output_tokens_per_s)
                    .collect(),
            ),
            (
                "total (input + output) tok/s".into(),
                entries
                    .iter()
                    .map(|e| e.scenario.metrics.total_tokens_per_s)
                    .collect(),
            ),
        ],
    }
}

/// CDF points: every request when samples are saved (thinned to ≤ 1000 points), else the
/// saved percentiles.
fn cdf_points(mut samples: Vec<f64>, d: &Option<Dist>) -> Vec<(f64, f64)> {
    if samples.is_empty() {
        return d.map_or(Vec::new(), |d| {
            vec![
                (d.min, 0.0),
                (d.p50, 50.0),
                (d.p90, 90.0),
                (d.p95, 95.0),
                (d.p99, 99.0),
                (d.max, 100.0),
            ]
        });
    }
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    let step = n.div_ceil(1000).max(1);
    let mut pts: Vec<(f64, f64)> = samples
        .iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i == n - 1)
        .map(|(i, x)| (*x, (i + 1) as f64 / n as f64 * 100.0))
        .collect();
    pts.insert(0, (samples[0], 0.0));
    pts
}

fn cdf_panel(entries: &[Entry], ttft: bool) -> Panel {
    let lines = entries
        .iter()
        .map(|e| {
            let sc = e.scenario;
            let (samples, d) = if ttft {
                (
                    sc.samples.as_ref().map_or(Vec::new(), |s| {
                        s.ttft_ms.iter().flatten().copied().collect()
                    }),
                    &sc.metrics.ttft_ms,
                )
            } else {
                (
                    sc.samples.as_ref().map_or(Vec::new(), |s| s.e2e_ms.clone()),
                    &sc.metrics.e2e_ms,
                )
            };
            (e.label.clone(), cdf_points(samples, d))
        })
        .filter(|(_, p)| !p.is_empty())
        .collect();
    Panel::Cdf {
        title: if ttft {
            "Time to first token".into()
        } else {
            "End-to-end latency".into()
        },
        x_label: if ttft {
            "TTFT (ms)".into()
        } else {
            "E2E latency (ms)".into()
        },
        lines,
    }
}

/// The variable a run's scenarios vary, with each scenario's value: a sweep's flag, or the
/// prompt length of a suite such as `prompt-lengths`.
fn experiment(entries: &[Entry]) -> Option<(String, Vec<f64>)> {
    let sweep: Vec<Option<(String, f64)>> = entries
        .iter()
        .map(|e| {
            let sw = e.scenario.params.sweep.as_ref()?;
            Some((sw.name.clone(), sw.value.as_f64()?))
        })
        .collect();
    if sweep.iter().all(Option::is_some) {
        let sweep: Vec<(String, f64)> = sweep.into_iter().flatten().collect();
        let name = sweep[0].0.clone();
        if sweep.iter().all(|(n, _)| *n == name) {
            return Some((name, sweep.into_iter().map(|(_, v)| v).collect()));
        }
    }
    let get = |key: fn(&ScenarioParams) -> Option<u64>| -> Option<Vec<f64>> {
        entries
            .iter()
            .map(|e| key(&e.scenario.params).map(|n| n as f64))
            .collect()
    };
    let prompt: fn(&ScenarioParams) -> Option<u64> = |p| p.prompt_tokens;
    let context: fn(&ScenarioParams) -> Option<u64> = |p| p.context_tokens;
    for key in [prompt, context] {
        if let Some(v) = get(key)
            && v.iter().any(|x| *x != v[0])
        {
            return Some(("prompt-tokens".into(), v));
        }
    }
    let conc: Option<Vec<f64>> = entries
        .iter()
        .map(|e| e.scenario.params.concurrency().map(|c| c as f64))
        .collect();
    if let Some(v) = conc
        && v.iter().any(|x| *x != v[0])
    {
        return Some(("concurrency".into(), v));
    }
    None
}

fn series_vs(
    entries: &[Entry],
    xs: &[f64],
    name: &str,
    f: impl Fn(&Entry) -> Option<f64>,
) -> (String, Vec<(f64, f64)>) {
    let mut pts: Vec<(f64, f64)> = entries
        .iter()
        .zip(xs)
        .filter_map(|(e, x)| f(e).map(|y| (*x, y)))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    (name.to_string(), pts)
}

fn experiment_charts(entries: &[Entry]) -> Vec<Chart> {
    let Some((var, xs)) = experiment(entries) else {
        return Vec::new();
    };
    if entries.len() < 2 {
        return Vec::new();
    }
    let (name, title, x_label) = match var.as_str() {
        "concurrency" => (
            "concurrency_scaling",
            "Concurrency scaling",
            "concurrency (requests in flight)",
        ),
        "rate" => (
            "rate_scaling",
            "Request-rate scaling",
            "offered rate (requests/s)",
        ),
        "prompt-tokens" => (
            "prompt_length_impact",
            "Prompt-length impact",
            "prompt length (tokens)",
        ),
        "temperature" => (
            "temperature_impact",
            "Temperature impact",
            "sampling temperature",
        ),
        "max-tokens" => (
            "output_length_impact",
            "Output-length impact",
            "max output tokens",
        ),
        _ => ("experiment", "Experiment", "value"),
    };
    let m = |e: &Entry| e.scenario.metrics.clone();
    let latency = Panel::Lines {
        title: "TTFT and TPOT".into(),
        x_label: x_label.into(),
        y_label: "milliseconds".into(),
        series: vec![
            series_vs(entries, &xs, "TTFT p50", |e| m(e).ttft_ms.map(|d| d.p50)),
            series_vs(entries, &xs, "TTFT p95", |e| m(e).ttft_ms.map(|d| d.p95)),
            series_vs(entries, &xs, "TPOT p50", |e| m(e).tpot_ms.map(|d| d.p50)),
            series_vs(entries, &xs, "TPOT p95", |e| m(e).tpot_ms.map(|d| d.p95)),
        ],
    };
    let e2e = Panel::Lines {
        title: "End-to-end latency".into(),
        x_label: x_label.into(),
        y_label: "milliseconds".into(),
        series: vec![
            series_vs(entries, &xs, "E2E p50", |e| m(e).e2e_ms.map(|d| d.p50)),
            series_vs(entries, &xs, "E2E p95", |e| m(e).e2e_ms.map(|d| d.p95)),
            series_vs(entries, &xs, "E2E p99", |e| m(e).e2e_ms.map(|d| d.p99)),
        ],
    };
    let tput = Panel::Lines {
        title: "Throughput".into(),
        x_label: x_label.into(),
        y_label: "output tokens per second".into(),
        series: vec![series_vs(entries, &xs, "output tok/s", |e| {
            Some(m(e).output_tokens_per_s)
        })],
    };
    let mut charts = vec![Chart {
        name: name.into(),
        title: format!("{title} ({} scenarios)", entries.len()),
        panels: vec![latency, e2e, tput],
        grid: (1, 3),
        size: (1500, 500),
    }];
    if var == "concurrency" {
        charts.push(Chart {
            name: "throughput_vs_batch_size".into(),
            title: "Throughput versus batch size".into(),
            panels: vec![
                Panel::Lines {
                    title: "Aggregate throughput".into(),
                    x_label: "batch size (concurrent requests)".into(),
                    y_label: "tokens per second".into(),
                    series: vec![
                        series_vs(entries, &xs, "output tok/s", |e| {
                            Some(m(e).output_tokens_per_s)
                        }),
                        series_vs(entries, &xs, "total tok/s", |e| {
                            Some(m(e).total_tokens_per_s)
                        }),
                    ],
                },
                Panel::Lines {
                    title: "Per-request decode speed".into(),
                    x_label: "batch size (concurrent requests)".into(),
                    y_label: "tokens per second per request".into(),
                    series: vec![series_vs(entries, &xs, "1000 / TPOT p50", |e| {
                        m(e).tpot_ms.filter(|d| d.p50 > 0.0).map(|d| 1000.0 / d.p50)
                    })],
                },
            ],
            grid: (1, 2),
            size: (1200, 500),
        });
    }
    charts
}

/// Every chart the results support.
pub fn charts(entries: &[Entry]) -> Vec<Chart> {
    if entries.is_empty() {
        return Vec::new();
    }
    let ttft = percentile_bars(entries, "TTFT percentiles per scenario", |e| {
        &e.scenario.metrics.ttft_ms
    });
    let tpot = percentile_bars(entries, "TPOT percentiles per scenario", |e| {
        &e.scenario.metrics.tpot_ms
    });
    let mut out = vec![
        Chart {
            name: "overview".into(),
            title: "Overview".into(),
            panels: vec![
                ttft.clone(),
                tpot.clone(),
                throughput_bars(entries),
                cdf_panel(entries, false),
            ],
            grid: (2, 2),
            size: (1400, 1000),
        },
        Chart {
            name: "latency_distribution".into(),
            title: "Latency distribution (cumulative share of requests)".into(),
            panels: vec![cdf_panel(entries, true), cdf_panel(entries, false)],
            grid: (1, 2),
            size: (1400, 550),
        },
        Chart {
            name: "ttft_percentiles".into(),
            title: "Time to first token".into(),
            panels: vec![ttft],
            grid: (1, 1),
            size: (1000, 600),
        },
        Chart {
            name: "tpot_percentiles".into(),
            title: "Time per output token".into(),
            panels: vec![tpot],
            grid: (1, 1),
            size: (1000, 600),
        },
        Chart {
            name: "throughput".into(),
            title: "Tokens per second".into(),
            panels: vec![throughput_bars(entries)],
            grid: (1, 1),
            size: (1000, 600),
        },
    ];
    out.extend(experiment_charts(entries));
    out.extend(resource_chart(entries));
    out
}

/// Resource timelines of every scenario that has samples: host and server CPU, host memory and
/// server RSS, and each GPU's utilisation, memory and power when sampled.
fn resource_chart(entries: &[Entry]) -> Option<Chart> {
    type Get = fn(&ResourceSample) -> Vec<(String, f64)>;
    let quantities: [(&str, &str, Get); 7] = [
        ("Host CPU", "busy (%)", |s| {
            s.host_cpu_pct
                .map(|v| (String::new(), v))
                .into_iter()
                .collect()
        }),
        ("Server CPU (process tree)", "one core = 100 (%)", |s| {
            s.server_cpu_pct
                .map(|v| (String::new(), v))
                .into_iter()
                .collect()
        }),
        ("Host memory used", "bytes", |s| {
            s.host_mem_used_bytes
                .map(|v| (String::new(), v as f64))
                .into_iter()
                .collect()
        }),
        ("Server RSS", "bytes", |s| {
            s.server_rss_bytes
                .map(|v| (String::new(), v as f64))
                .into_iter()
                .collect()
        }),
        ("GPU utilisation", "busy (%)", |s| {
            s.gpus
                .iter()
                .filter_map(|g| g.util_pct.map(|v| (format!(" gpu{}", g.index), v)))
                .collect()
        }),
        ("GPU memory used", "bytes", |s| {
            s.gpus
                .iter()
                .filter_map(|g| {
                    g.memory_used_bytes
                        .map(|v| (format!(" gpu{}", g.index), v as f64))
                })
                .collect()
        }),
        ("GPU power", "W", |s| {
            s.gpus
                .iter()
                .filter_map(|g| g.power_w.map(|v| (format!(" gpu{}", g.index), v)))
                .collect()
        }),
    ];
    let mut panels = Vec::new();
    for (title, y_label, get) in quantities {
        let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        for e in entries {
            let Some(tl) = e.scenario.resources.as_ref() else {
                continue;
            };
            let t0 = tl.samples.first().map_or(0.0, |s| s.t_ms);
            for s in &tl.samples {
                for (suffix, y) in get(s) {
                    let name = format!("{}{suffix}", e.label);
                    let x = (s.t_ms - t0) / 1000.0;
                    match series.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, pts)) => pts.push((x, y)),
                        None => series.push((name, vec![(x, y)])),
                    }
                }
            }
        }
        if series.iter().any(|(_, p)| !p.is_empty()) {
            let mut y_label = y_label.to_string();
            if y_label == "bytes" {
                // Bytes read best in GiB from a gigabyte on, in MiB below.
                let peak = series
                    .iter()
                    .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
                    .fold(0.0, f64::max);
                let (unit, div) = if peak >= 1024.0 * 1024.0 * 1024.0 {
                    ("GiB", 1024.0 * 1024.0 * 1024.0)
                } else {
                    ("MiB", 1024.0 * 1024.0)
                };
                y_label = unit.into();
                for (_, p) in &mut series {
                    p.iter_mut().for_each(|pt| pt.1 /= div);
                }
            }
            panels.push(Panel::Timeline {
                title: title.into(),
                y_label,
                series,
            });
        }
    }
    if panels.is_empty() {
        return None;
    }
    let rows = panels.len().div_ceil(2);
    Some(Chart {
        name: "resources".into(),
        title: "Resources during each scenario (time from its first sample)".into(),
        grid: (rows, 2),
        size: (1400, 450 * rows as u32),
        panels,
    })
}
