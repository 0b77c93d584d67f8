//! What each scenario's section of a report holds, whatever the format: everything the console
//! shows after the scenario (verdicts, latency, throughput, outcomes and errors, the client's
//! load, resources, server metrics, per-turn and RAG tables, targets, warnings), as blocks that
//! `model` renders as Markdown, HTML or text. The words come from the console's own builders.

use super::console;
use super::model::f;
use super::model::{Block, Cell, Column, Table};
use crate::measure::record::Outcome;
use crate::results::file::ScenarioResult;

/// What reports say in place of latency tables and charts when nothing succeeded.
pub(crate) const NO_SUCCESS: &str = "no successful requests";

/// Whether any request of the scenario succeeded (latency statistics and charts need one).
pub(crate) fn succeeded(sc: &ScenarioResult) -> bool {
    sc.outcomes.get(Outcome::Succeeded) > 0
}

const fn col(head: &'static str, csv: &'static [&'static str]) -> Column {
    Column { head, csv }
}

const LAT_COLUMNS: [Column; 9] = [
    col(LAT_HEAD[0], &["metric"]),
    col(LAT_HEAD[1], &["min"]),
    col(LAT_HEAD[2], &["mean"]),
    col(LAT_HEAD[3], &["p50"]),
    col(LAT_HEAD[4], &["p90"]),
    col(LAT_HEAD[5], &["p95"]),
    col(LAT_HEAD[6], &["p99"]),
    col(LAT_HEAD[7], &["max"]),
    col(LAT_HEAD[8], &["n"]),
];

const SLO_COLUMNS: [Column; 3] = [
    col(SLO_HEAD[0], &["target"]),
    col(SLO_HEAD[1], &["measured"]),
    col(SLO_HEAD[2], &["verdict"]),
];

fn text_table(title: &str, columns: &'static [Column], rows: Vec<Vec<String>>) -> Table {
    Table {
        title: title.into(),
        columns,
        rows: rows
            .into_iter()
            .map(|r| r.into_iter().map(Cell::Text).collect())
            .collect(),
    }
}

/// The blocks of one scenario's section, in the console's order. Verdicts come first: a
/// scenario where nothing succeeded says so instead of showing an empty latency table, and one
/// whose client was the limit is marked NOT TRUSTWORTHY above its numbers.
pub(crate) fn scenario(sc: &ScenarioResult) -> Vec<Block> {
    let m = &sc.metrics;
    let o = &sc.outcomes;
    let mut b = Vec::new();
    let ok = succeeded(sc);
    if !ok {
        b.push(Block::Alert(format!(
            "No successful requests: {} scheduled, none succeeded; no latency statistics or charts",
            o.scheduled
        )));
    }
    if let Some(v) = console::verdict(sc) {
        b.push(Block::Alert(v));
    }
    if ok {
        b.push(Block::Table(text_table(
            "Latency",
            &LAT_COLUMNS,
            latency_rows(sc),
        )));
    }
    b.push(Block::Fact(
        "Measured",
        format!("{} requests in {:.2} s", o.scheduled, m.duration_s),
    ));
    b.push(Block::Fact("Throughput", console::throughput_text(m)));
    if let Some(t) = console::steady_text(sc) {
        b.push(Block::Fact("Steady state", t));
    }
    b.push(Block::Fact("Tokens", console::tokens_text(m)));
    if let Some(t) = console::inputs_text(m) {
        b.push(Block::Fact("Inputs", t));
    }
    if let Some(t) = console::reasoning_text(m) {
        b.push(Block::Fact("Reasoning replies", t));
    }
    if let Some(t) = console::cost_text(sc) {
        b.push(Block::Fact("Cost", t));
    }
    if let Some(t) = console::energy_text(sc) {
        b.push(Block::Fact("Energy", t));
    }
    b.push(Block::Fact("Outcomes", console::outcomes_text(o)));
    if !sc.errors.is_empty() {
        b.push(Block::List(
            "Errors",
            sc.errors
                .iter()
                .map(|e| format!("{} × {}", e.count, e.message))
                .collect(),
        ));
    }
    if let Some(c) = &sc.client {
        b.push(Block::Fact("Client", console::client_text(c)));
    }
    if let Some(t) = console::retried_text(o) {
        b.push(Block::Fact("Retried attempts", t));
    }
    if let Some(t) = console::resent_text(o) {
        b.push(Block::Fact("Resent on a new connection", t));
    }
    if let Some(t) = console::error_adjusted_text(m) {
        b.push(Block::Fact("Error-adjusted", t));
    }
    if let Some(t) = &sc.resources {
        b.push(Block::Table(super::telemetry::resources_table(t)));
    }
    if let Some(t) = sc
        .server_metrics
        .as_ref()
        .and_then(super::telemetry::metrics_table)
    {
        b.push(Block::Table(t));
    }
    b.extend(super::turns::per_turn(sc).map(Block::Table));
    b.extend(super::turns::rag(sc).map(Block::Table));
    if let Some(slo) = &sc.slo {
        b.push(Block::Table(text_table(
            "Targets",
            &SLO_COLUMNS,
            slo_rows(slo, |t| t.to_string()),
        )));
        b.push(Block::Fact(
            "Goodput",
            format!(
                "{}/{} requests ({:.1}%), {:.2} req/s",
                slo.goodput.good,
                slo.goodput.scheduled,
                slo.goodput.share * 100.0,
                slo.goodput.requests_per_s
            ),
        ));
    }
    if !sc.warnings.is_empty() {
        b.push(Block::List("Warnings", sc.warnings.clone()));
    }
    b
}

/// Header of `slo_rows`.
pub(crate) const SLO_HEAD: [&str; 3] = ["target", "measured", "verdict"];

/// One row per `--slo` target: the target (as `target` formats it), the measured value, the
/// verdict.
pub(crate) fn slo_rows(
    slo: &crate::measure::slo::SloResult,
    target: impl Fn(&str) -> String,
) -> Vec<Vec<String>> {
    slo.targets
        .iter()
        .map(|t| {
            vec![
                target(&t.target),
                t.value
                    .map_or("no data".into(), |v| format!("{v:.2} {}", t.unit)),
                if t.passed { "PASS" } else { "FAIL" }.into(),
            ]
        })
        .collect()
}

/// The latency table of one scenario (header `LAT_HEAD`).
pub(crate) fn latency_rows(s: &ScenarioResult) -> Vec<Vec<String>> {
    super::console::latency_dists(&s.metrics)
        .into_iter()
        .map(|(name, d)| {
            // Counts say their unit in the name ("tokens/chunk (n)"); the rest are ms.
            let label = if name.ends_with(')') {
                name.to_string()
            } else {
                format!("{name} (ms)")
            };
            let mut row = vec![label];
            match d {
                Some(d) => {
                    row.extend(
                        [d.min, d.mean, d.p50, d.p90, d.p95, d.p99, d.max].map(|v| f(Some(v))),
                    );
                    row.push(d.count.to_string());
                }
                None => row.extend(std::iter::repeat_n("-".to_string(), 8)),
            }
            row
        })
        .collect()
}

pub(crate) const LAT_HEAD: [&str; 9] = [
    "metric", "min", "mean", "p50", "p90", "p95", "p99", "max", "n",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::health::ClientLoad;
    use crate::measure::turns::{Group, RagStats, TurnStats};

    fn titles(b: &[Block]) -> Vec<String> {
        b.iter()
            .map(|b| match b {
                Block::Alert(t) => format!("alert {t}"),
                Block::Fact(l, _) | Block::List(l, _) => l.to_string(),
                Block::Table(t) => format!("table {}", t.title),
            })
            .collect()
    }

    #[test]
    fn a_scenario_without_successes_says_so_and_has_no_latency_table() {
        let mut sc = ScenarioResult::default();
        sc.outcomes.scheduled = 3;
        sc.outcomes.counts.insert(Outcome::HttpError, 3);
        sc.client = Some(ClientLoad {
            trustworthy: false,
            reasons: vec!["3 requests dropped".into()],
            ..Default::default()
        });
        let t = titles(&scenario(&sc));
        assert!(t[0].starts_with("alert No successful requests"), "{t:?}");
        assert!(t[1].starts_with("alert NOT TRUSTWORTHY"), "{t:?}");
        assert!(t[1].contains("3 requests dropped"), "{t:?}");
        assert!(!t.iter().any(|x| x == "table Latency"), "{t:?}");
    }

    #[test]
    fn conversations_get_per_turn_and_rag_tables() {
        let mut sc = ScenarioResult::default();
        sc.outcomes.scheduled = 2;
        sc.outcomes.counts.insert(Outcome::Succeeded, 2);
        let g = Group {
            requests: 1,
            succeeded: 1,
            ..Default::default()
        };
        sc.turns = vec![
            TurnStats {
                turn: 0,
                stats: g.clone(),
            },
            TurnStats {
                turn: 1,
                stats: g.clone(),
            },
        ];
        sc.rag = Some(RagStats {
            with_documents: g.clone(),
            without_documents: g,
        });
        let b = scenario(&sc);
        let t = titles(&b);
        assert_eq!(t[0], "table Latency", "{t:?}");
        for want in ["table Per turn", "table With and without documents (RAG)"] {
            assert!(t.iter().any(|x| x == want), "{want} missing: {t:?}");
        }
        let Some(Block::Table(turns)) = b
            .iter()
            .find(|x| titles(std::slice::from_ref(x))[0] == "table Per turn")
        else {
            panic!()
        };
        assert_eq!(turns.rows.len(), 2);
    }
}
