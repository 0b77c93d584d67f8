//! Text reports from saved results: Markdown, plain text, CSV. Pure: results in, strings out.
//! Each scenario's section comes from `sections` (the content the console shows).

use super::model::{self, Cell, Table, f};
use super::sections;
use crate::measure::record::Outcome;
use crate::results::file::{ResultFile, ScenarioResult};

/// One scenario with the run it belongs to and the label reports show for it.
#[derive(Clone)]
pub struct Entry<'a> {
    /// Label in tables and legends (the scenario name; run-qualified when several runs).
    pub label: String,
    /// The run.
    pub run: &'a ResultFile,
    /// The scenario.
    pub scenario: &'a ScenarioResult,
}

/// Every scenario of every run, labelled.
pub fn entries(runs: &[ResultFile]) -> Vec<Entry<'_>> {
    let several = runs.len() > 1;
    runs.iter()
        .flat_map(|r| {
            r.scenarios.iter().map(move |s| Entry {
                label: if several {
                    format!("{} {}", short_id(&r.run_id), s.name)
                } else {
                    s.name.clone()
                },
                run: r,
                scenario: s,
            })
        })
        .collect()
}

/// The random suffix of a run id (`20260101T000000-abcdef` → `abcdef`).
pub fn short_id(id: &str) -> &str {
    id.rsplit('-').next().unwrap_or(id)
}

fn system_line(r: &ResultFile) -> String {
    let Some(sys) = &r.system else {
        return "unknown".into();
    };
    let mut parts = Vec::new();
    if let Some(h) = &sys.hostname {
        parts.push(format!("host {h}"));
    }
    if !sys.os.is_empty() && !sys.arch.is_empty() {
        parts.push(format!("{}/{}", sys.os, sys.arch));
    }
    parts.push(crate::telemetry::system::fingerprint(sys));
    parts.join(", ")
}

/// Label and value of each run-header line (Markdown, text and HTML reports).
pub(crate) fn run_header(r: &ResultFile) -> Vec<(String, String)> {
    vec![
        ("Run".into(), r.run_id.clone()),
        (
            "Started".into(),
            format!(
                "{} ({})",
                r.started_at,
                serde_json::to_value(r.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ),
        ),
        (
            "Target".into(),
            format!(
                "{} ({}, model {}){}",
                r.target.url,
                r.target.backend,
                r.target.model,
                if r.target.simulated {
                    ", built-in simulator"
                } else {
                    ""
                }
            ),
        ),
        ("System".into(), system_line(r)),
        ("llmbench".into(), r.tool.version.clone()),
    ]
    .into_iter()
    .chain(r.capacity.iter().flat_map(|c| {
        let mut v = vec![("Capacity".to_string(), super::capacity::answer(c))];
        if let Some(g) = super::capacity::goodput_line(c) {
            // "Goodput at the capacity (…): …" under the label "Goodput".
            let g = g.strip_prefix("Goodput ").map_or(g.clone(), str::to_string);
            v.push(("Goodput".to_string(), g));
        }
        v
    }))
    .collect()
}

/// One overview row per scenario (Markdown, text and HTML reports).
pub(crate) fn overview_rows(entries: &[Entry]) -> Vec<Vec<String>> {
    entries
        .iter()
        .map(|e| {
            let m = &e.scenario.metrics;
            let untrusted = e.scenario.client.as_ref().is_some_and(|c| !c.trustworthy);
            vec![
                if untrusted {
                    format!("{} (NOT TRUSTWORTHY)", e.label)
                } else {
                    e.label.clone()
                },
                format!(
                    "{}/{}",
                    e.scenario.outcomes.get(Outcome::Succeeded),
                    e.scenario.outcomes.scheduled
                ),
                f(m.ttft_ms.map(|d| d.p50)),
                f(m.ttft_ms.map(|d| d.p99)),
                f(m.tpot_ms.map(|d| d.p50)),
                f(m.e2e_ms.map(|d| d.p50)),
                f(Some(m.requests_per_s)),
                f(Some(m.output_tokens_per_s)),
                e.scenario
                    .slo
                    .as_ref()
                    .map_or("-".into(), |v| format!("{:.1}%", v.goodput.share * 100.0)),
            ]
        })
        .collect()
}

/// Header of `overview_rows`.
pub(crate) const OVERVIEW_HEAD: [&str; 9] = [
    "scenario",
    "ok/sched",
    "TTFT p50 ms",
    "TTFT p99 ms",
    "TPOT p50 ms",
    "E2E p50 ms",
    "req/s",
    "out tok/s",
    "goodput",
];

/// `summary.md`: run headers, the overview, then each scenario's section.
pub fn markdown(runs: &[ResultFile]) -> String {
    let entries = entries(runs);
    let mut s = String::from("# llmbench report\n\n");
    for r in runs {
        for (k, v) in run_header(r) {
            s.push_str(&format!("- **{k}:** {v}\n"));
        }
        s.push('\n');
    }
    s.push_str("## Overview\n\n");
    s.push_str(&model::md_table(&OVERVIEW_HEAD, &overview_rows(&entries)));
    for e in &entries {
        s.push_str(&format!("\n## {}\n\n", e.label));
        s.push_str(&format!(
            "Parameters: `{}`\n\n",
            serde_json::to_string(&e.scenario.params).unwrap_or_default()
        ));
        s.push_str(&model::markdown(&sections::scenario(e.scenario)));
    }
    s
}

/// `summary.txt`: the same content as `summary.md`, as plain text.
pub fn text(runs: &[ResultFile]) -> String {
    let entries = entries(runs);
    let mut s = String::from("llmbench report\n===============\n\n");
    for r in runs {
        for (k, v) in run_header(r) {
            s.push_str(&format!("{k:<9} {v}\n"));
        }
        s.push('\n');
    }
    s.push_str(&model::text_table(&OVERVIEW_HEAD, &overview_rows(&entries)));
    s.push('\n');
    for e in &entries {
        s.push_str(&format!("\nScenario {}\n", e.label));
        s.push_str(&model::text(&sections::scenario(e.scenario)));
    }
    s
}

/// Column names of `results.csv`, in order. Stable: new columns are only ever appended.
pub const CSV_COLUMNS: &[&str] = &[
    "run_id",
    "started_at",
    "target_url",
    "backend",
    "model",
    "scenario",
    "load_mode",
    "concurrency",
    "rate",
    "sweep_name",
    "sweep_value",
    "scheduled",
    "succeeded",
    "failed",
    "duration_s",
    "requests_per_s",
    "output_tokens_per_s",
    "total_tokens_per_s",
    "input_tokens_mean",
    "output_tokens_mean",
    "ttft_ms_mean",
    "ttft_ms_p50",
    "ttft_ms_p90",
    "ttft_ms_p95",
    "ttft_ms_p99",
    "tpot_ms_mean",
    "tpot_ms_p50",
    "tpot_ms_p90",
    "tpot_ms_p95",
    "tpot_ms_p99",
    "itl_ms_mean",
    "itl_ms_p50",
    "itl_ms_p90",
    "itl_ms_p95",
    "itl_ms_p99",
    "e2e_ms_mean",
    "e2e_ms_p50",
    "e2e_ms_p90",
    "e2e_ms_p95",
    "e2e_ms_p99",
    "queue_ms_mean",
    "queue_ms_p99",
    "cache_hit_rate",
    "goodput_share",
    "goodput_requests_per_s",
    "slo_passed",
    "client_trustworthy",
    "input_tokens_total",
    "output_tokens_total",
];

fn num(x: Option<f64>) -> String {
    x.map_or(String::new(), |v| format!("{v}"))
}

/// `results.csv`: a header and one row per scenario (of every run given).
pub fn csv(runs: &[ResultFile]) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push('\n');
    for e in entries(runs) {
        let (r, s) = (e.run, e.scenario);
        let m = &s.metrics;
        let p = &s.params;
        let opt = |v: Option<String>| v.unwrap_or_default();
        let mut row: Vec<String> = vec![
            r.run_id.clone(),
            r.started_at.clone(),
            r.target.url.clone(),
            r.target.backend.clone(),
            r.target.model.clone(),
            s.name.clone(),
            opt(p.load_mode().map(str::to_string)),
            opt(p.concurrency().map(|c| c.to_string())),
            opt(p.rate().map(|r| r.to_string())),
            opt(p.sweep.as_ref().map(|s| s.name.clone())),
            opt(p.sweep.as_ref().map(|s| s.value.to_string())),
            s.outcomes.scheduled.to_string(),
            s.outcomes.get(Outcome::Succeeded).to_string(),
            s.outcomes.failed().to_string(),
            num(Some(m.duration_s)),
            num(Some(m.requests_per_s)),
            num(Some(m.output_tokens_per_s)),
            num(Some(m.total_tokens_per_s)),
            num(Some(m.input_tokens.mean)),
            num(Some(m.output_tokens.mean)),
        ];
        use crate::measure::metrics::Latency;
        use crate::measure::samples::Stat;
        for which in [Latency::Ttft, Latency::Tpot, Latency::Itl, Latency::E2e] {
            let d = s.metrics.latency(which);
            for stat in [Stat::Mean, Stat::P50, Stat::P90, Stat::P95, Stat::P99] {
                row.push(num(d.map(|d| d.stat(stat))));
            }
        }
        row.push(num(m.queue_ms.map(|d| d.mean)));
        row.push(num(m.queue_ms.map(|d| d.p99)));
        row.push(num(m.cache_hit_rate));
        row.push(num(s.slo.as_ref().map(|v| v.goodput.share)));
        row.push(num(s.slo.as_ref().map(|v| v.goodput.requests_per_s)));
        row.push(
            s.slo
                .as_ref()
                .map_or(String::new(), |v| v.passed.to_string()),
        );
        row.push(
            s.client
                .as_ref()
                .map_or(String::new(), |c| c.trustworthy.to_string()),
        );
        row.push(m.input_tokens.total.to_string());
        row.push(m.output_tokens.total.to_string());
        debug_assert_eq!(row.len(), CSV_COLUMNS.len());
        out.push_str(&model::csv_line(&row));
    }
    out
}

/// A CSV of one table per scenario (`pick`), long form: `run_id`, `scenario`, then the
/// table's columns; `None` when no scenario has the table.
fn table_csv(runs: &[ResultFile], pick: fn(&ScenarioResult) -> Option<Table>) -> Option<String> {
    let mut out = String::new();
    for e in entries(runs) {
        let Some(t) = pick(e.scenario) else {
            continue;
        };
        if out.is_empty() {
            let mut head = vec!["run_id", "scenario"];
            head.extend(t.csv_head());
            out.push_str(&model::csv_line(&head));
        }
        for r in &t.rows {
            let mut row = vec![e.run.run_id.clone(), e.scenario.name.clone()];
            row.extend(r.iter().flat_map(Cell::raw));
            out.push_str(&model::csv_line(&row));
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The CSV files beside `results.csv`, by name stem, each only when some scenario has it:
/// `turns` (per-turn statistics of conversations) and `rag` (with and without documents).
/// Their rows are not scenarios, so they are files of their own rather than columns or
/// sections of `results.csv`, which stays one row per scenario.
pub fn companion_csvs(runs: &[ResultFile]) -> Vec<(&'static str, String)> {
    [
        ("turns", table_csv(runs, super::turns::per_turn)),
        ("rag", table_csv(runs, super::turns::rag)),
    ]
    .into_iter()
    .filter_map(|(name, csv)| Some((name, csv?)))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_has_one_row_per_scenario() {
        let mut r = ResultFile::default();
        for name in ["a,b", "say \"hi\""] {
            r.scenarios.push(ScenarioResult {
                name: name.into(),
                ..Default::default()
            });
        }
        let c = csv(std::slice::from_ref(&r));
        let lines: Vec<&str> = c.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].split(',').count(), CSV_COLUMNS.len());
        assert!(lines[1].contains("\"a,b\""));
        assert!(lines[2].contains("\"say \"\"hi\"\"\""));
    }
}
