//! Charts with plotters, drawn from saved results only: PNG files and SVG text.
//!
//! Text uses DejaVu Sans compiled into the binary (`assets/fonts`, Bitstream Vera licence), so
//! charts render the same on a machine without fontconfig or system fonts.

use std::path::Path;
use std::sync::Once;

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::tables::Entry;
use crate::stats::Dist;
use crate::telemetry::resources::ResourceSample;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Colours (matplotlib's tab10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

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
            let sw = &e.scenario.params["sweep"];
            Some((sw["name"].as_str()?.to_string(), sw["value"].as_f64()?))
        })
        .collect();
    if sweep.iter().all(Option::is_some) {
        let sweep: Vec<(String, f64)> = sweep.into_iter().flatten().collect();
        let name = sweep[0].0.clone();
        if sweep.iter().all(|(n, _)| *n == name) {
            return Some((name, sweep.into_iter().map(|(_, v)| v).collect()));
        }
    }
    let get = |key: &str| -> Option<Vec<f64>> {
        entries
            .iter()
            .map(|e| e.scenario.params[key].as_f64())
            .collect()
    };
    for key in ["prompt_tokens", "context_tokens"] {
        if let Some(v) = get(key)
            && v.iter().any(|x| *x != v[0])
        {
            return Some(("prompt-tokens".into(), v));
        }
    }
    let conc: Option<Vec<f64>> = entries
        .iter()
        .map(|e| e.scenario.params["load"]["concurrency"].as_f64())
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

type R = anyhow::Result<()>;

/// How a line panel places x.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum XMode {
    /// Swept values, evenly spaced and labelled with their value.
    Categories,
    /// Latency against the cumulative share of requests (y 0–100 %).
    Cdf,
    /// Seconds.
    Time,
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing a chart failed: {e:?}")
}

fn upper(max: f64) -> f64 {
    if max > 0.0 { max * 1.12 } else { 1.0 }
}

fn short(label: &str, n: usize) -> String {
    let limit = match n {
        0..=4 => 28,
        5..=8 => 16,
        _ => 10,
    };
    if label.chars().count() > limit {
        let s: String = label.chars().take(limit - 1).collect();
        format!("{s}…")
    } else {
        label.to_string()
    }
}

fn draw_bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> R {
    let n = categories.len().max(1);
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", CAPTION))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        // Headroom above the bars keeps the legend clear of them.
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..upper(max) * 1.25)
        .map_err(err)?;
    let cats = categories.to_vec();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&|v| {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < cats.len() {
                short(&cats[i as usize], cats.len())
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| tick(*v))
        .y_desc(y_label)
        .x_desc("scenario")
        .label_style(("sans-serif", LABEL))
        .axis_desc_style(("sans-serif", DESC))
        .draw()
        .map_err(err)?;
    let k = series.len().max(1) as f64;
    let width = 0.8 / k;
    for (si, (name, values)) in series.iter().enumerate() {
        let c = color(si);
        chart
            .draw_series(values.iter().enumerate().map(|(i, v)| {
                let x0 = i as f64 - 0.4 + si as f64 * width;
                Rectangle::new([(x0 + 0.01, 0.0), (x0 + width - 0.01, *v)], c.filled())
            }))
            .map_err(err)?
            .label(name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", LABEL))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Tick label: no decimals from 10 up, else at most two, trailing zeros dropped.
fn tick(v: f64) -> String {
    if v.abs() >= 10.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Font sizes (px): tick labels and legends, axis descriptions, panel captions.
const LABEL: u32 = 15;
const DESC: u32 = 16;
const CAPTION: u32 = 21;

fn bounds(series: &[(String, Vec<(f64, f64)>)]) -> (f64, f64, f64, f64) {
    let pts = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    for (x, y) in pts {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y1 = y1.max(*y);
    }
    if !x0.is_finite() {
        return (0.0, 1.0, 0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    (x0, x1, 0.0, y1)
}

#[allow(clippy::too_many_arguments)]
fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    mode: XMode,
) -> R {
    let cdf = mode == XMode::Cdf;
    let numeric = mode != XMode::Categories;
    // Experiments: the swept values sit evenly spaced and labelled with their value (a
    // doubling concurrency series reads like a log axis); CDFs keep a numeric x.
    let mut values: Vec<f64> = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(x, _)| *x))
        .collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    let place = |x: f64| -> f64 {
        if numeric {
            x
        } else {
            values.iter().position(|v| *v == x).unwrap_or(0) as f64
        }
    };
    let series: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(n, p)| (n.clone(), p.iter().map(|(x, y)| (place(*x), *y)).collect()))
        .collect();
    let series = &series;
    let (x0, x1, _, y1) = bounds(series);
    let (xa, xb) = if numeric {
        let pad = (x1 - x0).max(1e-3) * 0.04;
        ((x0 - pad).max(0.0), x1 + pad)
    } else {
        (-0.3, values.len().max(1) as f64 - 0.7)
    };
    let ytop = if cdf { 100.0 } else { upper(y1) * 1.2 };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", CAPTION))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(75)
        .build_cartesian_2d(xa..xb, 0f64..ytop)
        .map_err(err)?;
    let labels = values.clone();
    let x_fmt = move |v: &f64| -> String {
        if numeric {
            return tick(*v);
        }
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
            let x = labels[i as usize];
            if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                tick(x)
            }
        } else {
            String::new()
        }
    };
    let mut mesh = chart.configure_mesh();
    if !numeric {
        mesh.x_labels(values.len() + 1).disable_x_mesh();
    }
    mesh.x_label_formatter(&x_fmt)
        .y_label_formatter(&|v| tick(*v))
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", LABEL))
        .axis_desc_style(("sans-serif", DESC))
        .draw()
        .map_err(err)?;
    for (i, (name, pts)) in series.iter().enumerate() {
        if pts.is_empty() {
            continue;
        }
        let c = color(i);
        // Timelines are dense (a point per sample, several per pixel): plotters' bitmap backend
        // draws a thick line's zero-length segments as spikes, so they get 1-pixel lines.
        let width = if mode == XMode::Time { 1 } else { 2 };
        let style = ShapeStyle::from(&c).stroke_width(width);
        let ann = chart
            .draw_series(LineSeries::new(pts.iter().copied(), style))
            .map_err(err)?;
        ann.label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
        if !numeric || pts.len() <= 12 {
            chart
                .draw_series(
                    pts.iter()
                        .map(|p| Circle::new(*p, 4, ShapeStyle::from(&c).filled())),
                )
                .map_err(err)?;
        }
    }
    chart
        .configure_series_labels()
        .position(if cdf {
            SeriesLabelPosition::LowerRight
        } else {
            SeriesLabelPosition::UpperLeft
        })
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", LABEL))
        .draw()
        .map_err(err)?;
    Ok(())
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, chart: &Chart) -> R {
    root.fill(&WHITE).map_err(err)?;
    let area = root.titled(&chart.title, ("sans-serif", 26)).map_err(err)?;
    let cells = area.split_evenly(chart.grid);
    for (cell, panel) in cells.iter().zip(&chart.panels) {
        match panel {
            Panel::Bars {
                title,
                y_label,
                categories,
                series,
            } => draw_bars(cell, title, y_label, categories, series)?,
            Panel::Cdf {
                title,
                x_label,
                lines,
            } => draw_lines(
                cell,
                title,
                x_label,
                "requests at or below (%)",
                lines,
                XMode::Cdf,
            )?,
            Panel::Timeline {
                title,
                y_label,
                series,
            } => draw_lines(cell, title, "time (s)", y_label, series, XMode::Time)?,
            Panel::Lines {
                title,
                x_label,
                y_label,
                series,
            } => draw_lines(cell, title, x_label, y_label, series, XMode::Categories)?,
        }
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Writes the chart as a PNG file.
pub fn write_png(chart: &Chart, path: &Path) -> R {
    register_font();
    draw(
        BitMapBackend::new(path, chart.size).into_drawing_area(),
        chart,
    )
}

/// The chart as SVG text.
pub fn svg(chart: &Chart) -> anyhow::Result<String> {
    register_font();
    let mut s = String::new();
    draw(
        SVGBackend::with_string(&mut s, chart.size).into_drawing_area(),
        chart,
    )?;
    Ok(s)
}

/// Whether a run's scenarios carry per-request samples (else CDFs use saved percentiles).
pub fn has_samples(entries: &[Entry]) -> bool {
    entries.iter().all(|e| e.scenario.samples.is_some())
}
