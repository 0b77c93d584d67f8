//! Charts of a capacity result (`llmbench capacity`): each targeted percentile against load,
//! one point per step, with the target's threshold as a horizontal line and the capacity and
//! the first failing load as vertical ones; and throughput against latency (Pareto): each
//! step's output tokens per second against the targeted percentile, with the threshold as a
//! vertical line. Steps are joined in load order; a step whose percentile is a failure (failed
//! requests count as infinitely slow) has no point.

use super::chart::{Chart, Panel, Rule};
use super::tables::Entry;
use crate::measure::capacity::{By, CapacityResult};
use crate::results::file::ResultFile;

fn load_label(by: By) -> &'static str {
    match by {
        By::Concurrency => "concurrency (requests in flight)",
        By::Rate => "request rate (req/s)",
    }
}

fn short(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The target's threshold in ms, from its spec.
fn threshold(spec: &str) -> Option<f64> {
    crate::measure::slo::parse(spec)
        .ok()?
        .first()
        .map(|t| t.threshold)
}

/// The target's name without its threshold (`tpot_p90`).
fn metric(spec: &str) -> &str {
    spec.split(['<', '>', '=']).next().unwrap_or(spec).trim()
}

fn grid(name: String, title: String, panels: Vec<Panel>) -> Option<Chart> {
    let n = panels.len();
    if n == 0 {
        return None;
    }
    let cols = n.min(2);
    let rows = n.div_ceil(2);
    Some(Chart {
        name,
        title,
        panels,
        grid: (rows, cols),
        size: (if cols == 1 { 1000 } else { 1400 }, 560 * rows as u32),
    })
}

/// The two charts of one capacity result; `suffix` tells runs apart in a report of several.
fn of_run(run: &ResultFile, c: &CapacityResult, suffix: &str) -> Vec<Chart> {
    let mut steps: Vec<_> = c.steps.iter().collect();
    steps.sort_by(|a, b| a.load.total_cmp(&b.load));
    let mut load_panels = Vec::new();
    let mut pareto_panels = Vec::new();
    for spec in &c.slo {
        let name = metric(spec);
        let pick = |st: &crate::measure::capacity::CapacityStep| {
            st.targets
                .iter()
                .find(|t| &t.target == spec)
                .and_then(|t| t.value)
        };
        let against_load: Vec<(f64, f64)> = steps
            .iter()
            .filter_map(|st| Some((st.load, pick(st)?)))
            .collect();
        let mut rules = Vec::new();
        if let Some(t) = threshold(spec) {
            rules.push(Rule {
                name: format!("SLO {spec}"),
                at: t,
                vertical: false,
            });
        }
        if let Some(p) = c.capacity {
            rules.push(Rule {
                name: format!("capacity {}", short(p)),
                at: p,
                vertical: true,
            });
        }
        if let Some(f) = c.first_fail {
            rules.push(Rule {
                name: format!("first failing load {}", short(f)),
                at: f,
                vertical: true,
            });
        }
        load_panels.push(Panel::Xy {
            title: format!("{name} against load"),
            x_label: load_label(c.by).into(),
            y_label: format!("{name} (ms)"),
            series: vec![(format!("{name} per step"), against_load)],
            rules,
        });
        // Pareto: output tok/s of each step's scenario against the percentile.
        let tok_s = |st: &crate::measure::capacity::CapacityStep| {
            run.scenarios
                .iter()
                .find(|s| s.name == st.scenario)
                .map(|s| s.metrics.output_tokens_per_s)
        };
        let pareto: Vec<(f64, f64)> = steps
            .iter()
            .filter_map(|st| Some((pick(st)?, tok_s(st)?)))
            .collect();
        let at_cap: Vec<(f64, f64)> = steps
            .iter()
            .filter(|st| Some(st.load) == c.capacity)
            .filter_map(|st| Some((pick(st)?, tok_s(st)?)))
            .collect();
        let mut series = vec![("steps, in load order".to_string(), pareto)];
        if !at_cap.is_empty() {
            series.push((format!("capacity {}", short(c.capacity.unwrap())), at_cap));
        }
        pareto_panels.push(Panel::Xy {
            title: format!("Output tok/s against {name}"),
            x_label: format!("{name} (ms)"),
            y_label: "output tokens per second".into(),
            series,
            rules: threshold(spec)
                .map(|t| Rule {
                    name: format!("SLO {spec}"),
                    at: t,
                    vertical: true,
                })
                .into_iter()
                .collect(),
        });
    }
    let mut out = Vec::new();
    out.extend(grid(
        format!("capacity{suffix}"),
        "Capacity: each target against load".into(),
        load_panels,
    ));
    out.extend(grid(
        format!("capacity_pareto{suffix}"),
        "Capacity: throughput against latency, one point per step".into(),
        pareto_panels,
    ));
    out
}

/// The charts of every capacity result among the entries' runs.
pub(crate) fn charts(entries: &[Entry]) -> Vec<Chart> {
    let mut runs: Vec<&ResultFile> = Vec::new();
    for e in entries {
        if e.run.capacity.is_some() && !runs.iter().any(|r| std::ptr::eq(*r, e.run)) {
            runs.push(e.run);
        }
    }
    let many = runs.len() > 1;
    runs.iter()
        .enumerate()
        .flat_map(|(i, r)| {
            let suffix = if many {
                format!("_{}", i + 1)
            } else {
                String::new()
            };
            of_run(r, r.capacity.as_ref().unwrap(), &suffix)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::capacity::{CapacityStep, TargetCheck, Verdict};
    use crate::results::file::ScenarioResult;

    fn step(load: f64, tpot: Option<f64>, verdict: Verdict) -> CapacityStep {
        CapacityStep {
            load,
            scenario: format!("concurrency={load}"),
            requests: 50,
            verdict,
            stopped_early: true,
            duration_s: 1.0,
            targets: vec![TargetCheck {
                target: "tpot_p90<26ms".into(),
                n: 50,
                value: tpot,
                lower: None,
                upper: None,
                verdict,
            }],
            window_ms: None,
        }
    }

    #[test]
    fn each_target_gets_its_threshold_and_the_capacity_marked() {
        let steps = vec![
            step(1.0, Some(3.0), Verdict::Pass),
            step(16.0, None, Verdict::Fail),
            step(8.0, Some(17.0), Verdict::Pass),
            step(12.0, Some(25.0), Verdict::Pass),
            step(13.0, Some(27.0), Verdict::Fail),
        ];
        let run = ResultFile {
            scenarios: steps
                .iter()
                .map(|s| {
                    let mut sc = ScenarioResult {
                        name: s.scenario.clone(),
                        ..Default::default()
                    };
                    sc.metrics.output_tokens_per_s = 100.0 * s.load;
                    sc
                })
                .collect(),
            capacity: Some(CapacityResult {
                by: By::Concurrency,
                slo: vec!["tpot_p90<26ms".into()],
                confidence: 0.95,
                capacity: Some(12.0),
                first_fail: Some(13.0),
                ended: "converged".into(),
                requests: 250,
                duration_s: 5.0,
                steps,
                goodput: None,
            }),
            ..Default::default()
        };
        let runs = vec![run];
        let charts = charts(&crate::report::tables::entries(&runs));
        let names: Vec<&str> = charts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["capacity", "capacity_pareto"]);
        let Panel::Xy { series, rules, .. } = &charts[0].panels[0] else {
            panic!("{:?}", charts[0].panels[0]);
        };
        // In load order; the failed step (no percentile) has no point.
        assert_eq!(
            series[0].1,
            [(1.0, 3.0), (8.0, 17.0), (12.0, 25.0), (13.0, 27.0)]
        );
        let r = |name: &str, at, vertical| Rule {
            name: name.into(),
            at,
            vertical,
        };
        assert_eq!(
            rules,
            &[
                r("SLO tpot_p90<26ms", 26.0, false),
                r("capacity 12", 12.0, true),
                r("first failing load 13", 13.0, true)
            ]
        );
        let Panel::Xy { series, rules, .. } = &charts[1].panels[0] else {
            panic!();
        };
        assert_eq!(series[0].1[2], (25.0, 1200.0));
        assert_eq!(series[1], ("capacity 12".to_string(), vec![(25.0, 1200.0)]));
        assert_eq!(rules, &[r("SLO tpot_p90<26ms", 26.0, true)]);
        // Drawn: the SVG names the threshold and the capacity.
        let svg = crate::report::render::svg(&charts[0]).unwrap();
        assert!(svg.contains("SLO tpot_p90&lt;26ms") || svg.contains("SLO tpot_p90<26ms"));
        assert!(svg.contains("capacity 12"));
    }
}
