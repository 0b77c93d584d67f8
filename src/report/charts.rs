//! Chart specs, drawn from saved results only: which charts a set of runs calls for, their
//! panels and series. Drawing them is `super::render`'s job.

use super::sections::{NO_SUCCESS, succeeded};
use super::tables::Entry;
use crate::measure::stats::Dist;
use crate::telemetry::resources::ResourceSample;

pub use super::render::{svg, write_png};

pub use super::chart::{Chart, Panel};

/// p50/p90/p95/p99 bars of the scenarios that have the distribution; `None` when none has it
/// (TPOT of replies that were not streamed).
fn percentile_bars<'a>(
    entries: &'a [Entry<'a>],
    title: &str,
    pick: fn(&'a Entry<'a>) -> &'a Option<Dist>,
) -> Option<Panel> {
    let have: Vec<(&Entry, Dist)> = entries
        .iter()
        .filter_map(|e| pick(e).map(|d| (e, d)))
        .collect();
    if have.is_empty() {
        return None;
    }
    type Stat = fn(&Dist) -> f64;
    let stats: [(&str, Stat); 4] = [
        ("p50", |d| d.p50),
        ("p90", |d| d.p90),
        ("p95", |d| d.p95),
        ("p99", |d| d.p99),
    ];
    Some(Panel::Bars {
        title: title.into(),
        y_label: "milliseconds".into(),
        categories: have.iter().map(|(e, _)| e.label.clone()).collect(),
        series: stats
            .iter()
            .map(|(n, f)| (n.to_string(), have.iter().map(|(_, d)| f(d)).collect()))
            .collect(),
    })
}

/// Bars of one rate per scenario: output tokens per second and total tokens per second each get
/// a panel (an axis) of their own, so output rates are not flattened beside prompt-heavy totals.
fn rate_bars(entries: &[Entry], output: bool) -> Panel {
    let (title, name): (&str, &str) = if output {
        ("Output tokens per second", "output tok/s")
    } else {
        ("Total tokens per second (input + output)", "total tok/s")
    };
    Panel::Bars {
        title: title.into(),
        y_label: "tokens per second".into(),
        categories: entries.iter().map(|e| e.label.clone()).collect(),
        series: vec![(
            name.into(),
            entries
                .iter()
                .map(|e| {
                    let m = &e.scenario.metrics;
                    if output {
                        m.output_tokens_per_s
                    } else {
                        m.total_tokens_per_s
                    }
                })
                .collect(),
        )],
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

fn cdf_panel(entries: &[Entry], ttft: bool) -> Option<Panel> {
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
        .collect::<Vec<_>>();
    if lines.is_empty() {
        return None;
    }
    Some(Panel::Cdf {
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
    })
}

/// A chart of the panels that have something to draw (`None` when none has): two panels side
/// by side, more in a 2-column grid.
fn chart_of(name: &str, title: &str, panels: Vec<Option<Panel>>) -> Option<Chart> {
    let panels: Vec<Panel> = panels.into_iter().flatten().collect();
    let (grid, size) = match panels.len() {
        0 => return None,
        1 => ((1, 1), (1000, 600)),
        2 => ((1, 2), (1400, 550)),
        n => ((n.div_ceil(2), 2), (1400, 500 * n.div_ceil(2) as u32)),
    };
    Some(Chart {
        name: name.into(),
        title: title.into(),
        panels,
        grid,
        size,
    })
}

/// Every chart the results support. Scenarios without a successful request have no latency
/// or throughput to draw: they are left out of every chart but the resource timelines (see
/// `not_charted`), and when no scenario succeeded only those remain.
pub fn charts(entries: &[Entry]) -> Vec<Chart> {
    let ok: Vec<Entry> = entries
        .iter()
        .filter(|e| succeeded(e.scenario))
        .cloned()
        .collect();
    let mut out = Vec::new();
    if !ok.is_empty() {
        let ttft = || {
            percentile_bars(&ok, "TTFT percentiles per scenario", |e| {
                &e.scenario.metrics.ttft_ms
            })
        };
        let tpot = || {
            percentile_bars(&ok, "TPOT percentiles per scenario", |e| {
                &e.scenario.metrics.tpot_ms
            })
        };
        let e2e = || {
            percentile_bars(&ok, "E2E latency percentiles per scenario", |e| {
                &e.scenario.metrics.e2e_ms
            })
        };
        out.extend(chart_of(
            "overview",
            "Overview",
            vec![
                ttft(),
                tpot(),
                e2e(),
                Some(rate_bars(&ok, true)),
                cdf_panel(&ok, false),
                Some(rate_bars(&ok, false)),
            ],
        ));
        out.extend(chart_of(
            "latency_distribution",
            "Latency distribution (cumulative share of requests)",
            vec![cdf_panel(&ok, true), cdf_panel(&ok, false)],
        ));
        out.extend(chart_of(
            "ttft_percentiles",
            "Time to first token",
            vec![ttft()],
        ));
        out.extend(chart_of(
            "tpot_percentiles",
            "Time per output token",
            vec![tpot()],
        ));
        out.extend(chart_of(
            "e2e_percentiles",
            "End-to-end latency",
            vec![e2e()],
        ));
        out.extend(chart_of(
            "throughput",
            "Tokens per second",
            vec![Some(rate_bars(&ok, true)), Some(rate_bars(&ok, false))],
        ));
        out.extend(super::experiments::charts(&ok));
        out.extend(super::capacity_charts::charts(&ok));
    }
    out.extend(resource_chart(entries));
    out
}

/// What the charts leave out and why, one line each (shown where the charts are).
pub fn not_charted(entries: &[Entry]) -> Vec<String> {
    let none: Vec<&str> = entries
        .iter()
        .filter(|e| !succeeded(e.scenario))
        .map(|e| e.label.as_str())
        .collect();
    if none.is_empty() {
        Vec::new()
    } else if none.len() == entries.len() {
        vec![format!(
            "No latency or throughput charts: {NO_SUCCESS} (in {}).",
            none.join(", ")
        )]
    } else {
        vec![format!("Not charted, {NO_SUCCESS}: {}.", none.join(", "))]
    }
}

/// Resource timelines of every scenario with two samples or more: host and server CPU, host
/// memory and server RSS, and each GPU's utilisation, memory and power when sampled.
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
        // One sample is a value, not a timeline (the report's resource table has it).
        series.retain(|(_, p)| p.len() >= 2);
        if !series.is_empty() {
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
            // CPU axes end at 100 % (the host's share) or 100 % per core (the server's).
            let cores = entries.iter().find_map(|e| {
                let c = &e.run.system.as_ref()?.cpu;
                c.usable_cores.or(c.logical_cores)
            });
            let y_max = match title {
                "Host CPU" => Some(100.0),
                "Server CPU (process tree)" => cores.map(|n| 100.0 * n as f64),
                _ => None,
            };
            panels.push(Panel::Timeline {
                title: title.into(),
                y_label,
                series,
                y_max,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::record::Outcome;
    use crate::results::file::{ResultFile, ScenarioResult};

    fn scenario(name: &str, ok: u64) -> ScenarioResult {
        let mut sc = ScenarioResult {
            name: name.into(),
            ..Default::default()
        };
        sc.outcomes.scheduled = 4;
        sc.outcomes.counts.insert(Outcome::Succeeded, ok);
        sc.outcomes.counts.insert(Outcome::HttpError, 4 - ok);
        if ok > 0 {
            sc.metrics.ttft_ms = Dist::of(&mut [10.0, 12.0]);
            sc.metrics.e2e_ms = Dist::of(&mut [20.0, 22.0]);
        }
        sc
    }

    fn run(scenarios: Vec<ScenarioResult>) -> Vec<ResultFile> {
        vec![ResultFile {
            scenarios,
            ..Default::default()
        }]
    }

    #[test]
    fn no_successful_request_draws_no_chart_and_says_so() {
        let runs = run(vec![scenario("down", 0)]);
        let entries = crate::report::tables::entries(&runs);
        assert!(charts(&entries).is_empty());
        assert_eq!(
            not_charted(&entries),
            ["No latency or throughput charts: no successful requests (in down)."]
        );
    }

    #[test]
    fn scenarios_without_success_or_without_a_metric_are_left_out_of_its_panels() {
        let runs = run(vec![scenario("up", 4), scenario("down", 0)]);
        let entries = crate::report::tables::entries(&runs);
        let charts = charts(&entries);
        let names: Vec<&str> = charts.iter().map(|c| c.name.as_str()).collect();
        // No TPOT anywhere (replies not streamed): no TPOT chart, and no empty panel for it.
        assert_eq!(
            names,
            [
                "overview",
                "latency_distribution",
                "ttft_percentiles",
                "e2e_percentiles",
                "throughput"
            ]
        );
        // TTFT, E2E, output and total tokens per second, the E2E distribution.
        assert_eq!(charts[0].panels.len(), 5);
        for c in &charts {
            for p in &c.panels {
                match p {
                    Panel::Bars { categories, .. } => assert_eq!(categories, &["up"]),
                    Panel::Cdf { lines, .. } => assert_eq!(lines.len(), 1),
                    other => panic!("unexpected panel {other:?}"),
                }
            }
        }
        assert_eq!(
            not_charted(&entries),
            ["Not charted, no successful requests: down."]
        );
    }
}
