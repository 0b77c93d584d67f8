//! Experiment charts: a metric against the variable a set of scenarios varies (concurrency,
//! rate, prompt length, temperature, output length).
//!
//! Scenarios are grouped before they are charted, so runs of different kinds never share a
//! series: each run's scenarios are one experiment when they vary one variable (a sweep names
//! it; a suite such as `prompt-lengths` varies the prompt length), and single-scenario runs that
//! differ in exactly one variable form one experiment together. Each variable gets its own
//! chart; several runs varying the same variable are separate series on it.

use super::chart::{Chart, Panel};
use super::tables::{Entry, short_id};
use crate::results::params::ScenarioParams;

/// A variable a set of scenarios can vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variable {
    PromptTokens,
    Concurrency,
    Rate,
    Temperature,
    MaxTokens,
}

impl Variable {
    /// In the order a run's scenarios are tried for them.
    const ALL: [Variable; 5] = [
        Variable::PromptTokens,
        Variable::Concurrency,
        Variable::Rate,
        Variable::Temperature,
        Variable::MaxTokens,
    ];

    /// The variable a sweep's flag (without dashes) varies.
    fn of_sweep(name: &str) -> Option<Self> {
        Some(match name {
            "concurrency" => Variable::Concurrency,
            "rate" => Variable::Rate,
            "prompt-tokens" => Variable::PromptTokens,
            "temperature" => Variable::Temperature,
            "max-tokens" => Variable::MaxTokens,
            _ => return None,
        })
    }

    /// Its value in a scenario, where the scenario has one.
    fn value(self, p: &ScenarioParams) -> Option<f64> {
        match self {
            Variable::Concurrency => p.concurrency().map(|c| c as f64),
            Variable::Rate => p.rate(),
            Variable::PromptTokens => p.prompt_tokens.or(p.context_tokens).map(|n| n as f64),
            Variable::Temperature => p.temperature,
            Variable::MaxTokens => p.max_tokens.map(f64::from),
        }
    }

    /// Chart file stem, title and x-axis label.
    fn chart(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Variable::Concurrency => (
                "concurrency_scaling",
                "Concurrency scaling",
                "concurrency (requests in flight)",
            ),
            Variable::Rate => (
                "rate_scaling",
                "Request-rate scaling",
                "offered rate (requests/s)",
            ),
            Variable::PromptTokens => (
                "prompt_length_impact",
                "Prompt-length impact",
                "prompt length (tokens)",
            ),
            Variable::Temperature => (
                "temperature_impact",
                "Temperature impact",
                "sampling temperature",
            ),
            Variable::MaxTokens => (
                "output_length_impact",
                "Output-length impact",
                "max output tokens",
            ),
        }
    }
}

/// Scenarios that vary one variable: their values of it, in order.
struct Experiment<'a> {
    variable: Variable,
    /// Series suffix when a chart holds several experiments (the run, or "separate runs").
    tag: String,
    entries: Vec<&'a Entry<'a>>,
    xs: Vec<f64>,
}

fn varies(xs: &[Option<f64>]) -> bool {
    xs.iter().any(|x| *x != xs[0])
}

/// The variable one run's scenarios vary: the sweep's, or the first that every scenario has
/// and that takes more than one value.
fn of_run(entries: &[&Entry]) -> Option<(Variable, Vec<f64>)> {
    let sweep: Option<Vec<(Variable, f64)>> = entries
        .iter()
        .map(|e| {
            let sw = e.scenario.params.sweep.as_ref()?;
            Some((Variable::of_sweep(&sw.name)?, sw.value.as_f64()?))
        })
        .collect();
    if let Some(sweep) = sweep
        && sweep.iter().all(|(v, _)| *v == sweep[0].0)
    {
        return Some((sweep[0].0, sweep.into_iter().map(|(_, x)| x).collect()));
    }
    Variable::ALL.into_iter().find_map(|v| {
        let xs: Vec<Option<f64>> = entries
            .iter()
            .map(|e| v.value(&e.scenario.params))
            .collect();
        (varies(&xs) && xs.iter().all(Option::is_some))
            .then(|| (v, xs.into_iter().flatten().collect()))
    })
}

/// Separate runs of one scenario each: the variable they differ in, when they differ in
/// exactly one (and every run has it).
fn of_separate_runs(entries: &[&Entry]) -> Option<(Variable, Vec<f64>)> {
    let mut differing = Variable::ALL.into_iter().filter_map(|v| {
        let xs: Vec<Option<f64>> = entries
            .iter()
            .map(|e| v.value(&e.scenario.params))
            .collect();
        varies(&xs).then_some((v, xs))
    });
    let (v, xs) = differing.next()?;
    if differing.next().is_some() || xs.iter().any(Option::is_none) {
        return None;
    }
    Some((v, xs.into_iter().flatten().collect()))
}

/// Every experiment among the scenarios, in the order their runs come.
fn experiments<'a>(entries: &'a [Entry<'a>]) -> Vec<Experiment<'a>> {
    // A run's scenarios, cut where the sweep changes: a scenario file's sweeps (five prompt
    // lengths, then five temperatures) are experiments of their own.
    let sweep_name = |e: &Entry| e.scenario.params.sweep.as_ref().map(|s| s.name.clone());
    let mut runs: Vec<Vec<&Entry>> = Vec::new();
    for e in entries {
        match runs.last_mut() {
            Some(r) if std::ptr::eq(r[0].run, e.run) && sweep_name(r[0]) == sweep_name(e) => {
                r.push(e)
            }
            _ => runs.push(vec![e]),
        }
    }
    let mut out = Vec::new();
    let mut singles = Vec::new();
    for r in runs {
        if let Some((variable, xs)) = of_run(&r) {
            // A named sweep ("workers concurrency=4") is told apart by its name.
            let named = r[0].scenario.params.sweep.as_ref().and_then(|sw| {
                let (prefix, last) = r[0].scenario.name.rsplit_once(' ')?;
                last.starts_with(&format!("{}=", sw.name)).then_some(prefix)
            });
            let id = short_id(&r[0].run.run_id);
            out.push(Experiment {
                variable,
                tag: named.map_or_else(|| id.to_string(), |n| format!("{id} {n}")),
                entries: r,
                xs,
            });
        } else if r.len() == 1 && r[0].scenario.params.suite.is_none() {
            singles.push(r[0]);
        }
    }
    if singles.len() > 1
        && let Some((variable, xs)) = of_separate_runs(&singles)
    {
        out.push(Experiment {
            variable,
            tag: "separate runs".into(),
            entries: singles,
            xs,
        });
    }
    out
}

type Series = (String, Vec<(f64, f64)>);

/// One line: `pick` against the variable, for each experiment on the chart.
fn series(group: &[&Experiment], name: &str, pick: impl Fn(&Entry) -> Option<f64>) -> Vec<Series> {
    group
        .iter()
        .map(|ex| {
            let mut pts: Vec<(f64, f64)> = ex
                .entries
                .iter()
                .zip(&ex.xs)
                .filter_map(|(e, x)| pick(e).map(|y| (*x, y)))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let name = if group.len() > 1 {
                format!("{name} · {}", ex.tag)
            } else {
                name.to_string()
            };
            (name, pts)
        })
        .collect()
}

/// A line panel, or `None` when it would have no point to draw.
fn lines(title: &str, x_label: &str, y_label: &str, series: Vec<Series>) -> Option<Panel> {
    series
        .iter()
        .any(|(_, p)| !p.is_empty())
        .then(|| Panel::Lines {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series,
        })
}

fn chart_of(variable: Variable, group: &[&Experiment]) -> Vec<Chart> {
    let (name, title, x_label) = variable.chart();
    let m = |e: &Entry| e.scenario.metrics.clone();
    let s = |n: &str, f: &dyn Fn(&Entry) -> Option<f64>| series(group, n, f);
    let latency: Vec<Series> = [
        s("TTFT p50", &|e| m(e).ttft_ms.map(|d| d.p50)),
        s("TTFT p95", &|e| m(e).ttft_ms.map(|d| d.p95)),
        s("TPOT p50", &|e| m(e).tpot_ms.map(|d| d.p50)),
        s("TPOT p95", &|e| m(e).tpot_ms.map(|d| d.p95)),
    ]
    .concat();
    let e2e: Vec<Series> = [
        s("E2E p50", &|e| m(e).e2e_ms.map(|d| d.p50)),
        s("E2E p95", &|e| m(e).e2e_ms.map(|d| d.p95)),
        s("E2E p99", &|e| m(e).e2e_ms.map(|d| d.p99)),
    ]
    .concat();
    let output = s("output tok/s", &|e| Some(m(e).output_tokens_per_s));
    let total = s("total tok/s", &|e| Some(m(e).total_tokens_per_s));
    let decode = s("1000 / TPOT p50", &|e| {
        m(e).tpot_ms.filter(|d| d.p50 > 0.0).map(|d| 1000.0 / d.p50)
    });
    let panels: Vec<Panel> = [
        lines("TTFT and TPOT", x_label, "milliseconds", latency),
        lines("End-to-end latency", x_label, "milliseconds", e2e),
        lines(
            "Throughput",
            x_label,
            "output tokens per second",
            output.clone(),
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    let scenarios: usize = group.iter().map(|ex| ex.entries.len()).sum();
    let runs = {
        let mut ids: Vec<&str> = group
            .iter()
            .flat_map(|ex| ex.entries.iter().map(|e| e.run.run_id.as_str()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    };
    let count = if runs > 1 {
        format!("{scenarios} scenarios from {runs} runs")
    } else {
        format!("{scenarios} scenarios")
    };
    let mut out = Vec::new();
    if !panels.is_empty() {
        out.push(Chart {
            name: name.into(),
            title: format!("{title} ({count})"),
            grid: (1, panels.len()),
            size: (500 * panels.len() as u32, 500),
            panels,
        });
    }
    if variable == Variable::Concurrency {
        let x = "batch size (concurrent requests)";
        let mut both = output;
        both.extend(total);
        let panels: Vec<Panel> = [
            lines("Aggregate throughput", x, "tokens per second", both),
            lines(
                "Per-request decode speed",
                x,
                "tokens per second per request",
                decode,
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !panels.is_empty() {
            out.push(Chart {
                name: "throughput_vs_batch_size".into(),
                title: "Throughput versus batch size".into(),
                grid: (1, panels.len()),
                size: (600 * panels.len() as u32, 500),
                panels,
            });
        }
    }
    out
}

/// One chart per variable some of the scenarios vary (two for concurrency: scaling and
/// throughput against batch size). Give it scenarios that succeeded: a scenario without a
/// successful request has nothing to plot.
pub(crate) fn charts<'a>(entries: &'a [Entry<'a>]) -> Vec<Chart> {
    let all = experiments(entries);
    let mut out = Vec::new();
    for v in Variable::ALL {
        let group: Vec<&Experiment> = all.iter().filter(|ex| ex.variable == v).collect();
        if !group.is_empty() {
            out.extend(chart_of(v, &group));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::record::Outcome;
    use crate::measure::stats::Dist;
    use crate::results::file::{ResultFile, ScenarioResult};
    use crate::results::params::{Load, SweepPoint, SweepValue};

    fn scenario(name: &str, params: ScenarioParams, ttft: f64) -> ScenarioResult {
        let mut sc = ScenarioResult {
            name: name.into(),
            params,
            ..Default::default()
        };
        sc.outcomes.scheduled = 1;
        sc.outcomes.counts.insert(Outcome::Succeeded, 1);
        sc.metrics.ttft_ms = Dist::of(&mut [ttft]);
        sc.metrics.e2e_ms = Dist::of(&mut [ttft * 2.0]);
        sc
    }

    fn base(concurrency: usize) -> ScenarioParams {
        ScenarioParams {
            load: Some(Load::Closed { concurrency }),
            max_tokens: Some(128),
            ..Default::default()
        }
    }

    fn run(id: &str, scenarios: Vec<ScenarioResult>) -> ResultFile {
        ResultFile {
            run_id: format!("20260101T000000-{id}"),
            scenarios,
            ..Default::default()
        }
    }

    fn sweep(
        id: &str,
        flag: &str,
        values: &[&str],
        set: fn(&mut ScenarioParams, f64),
    ) -> ResultFile {
        let scenarios = values
            .iter()
            .map(|v| {
                let mut p = base(1);
                let value = SweepValue::parse(v);
                set(&mut p, value.as_f64().unwrap());
                p.sweep = Some(SweepPoint {
                    name: flag.into(),
                    value,
                });
                scenario(&format!("{flag}={v}"), p, 10.0)
            })
            .collect();
        run(id, scenarios)
    }

    fn prompt_suite(id: &str) -> ResultFile {
        let scenarios = [16, 128, 512, 2048, 8192]
            .into_iter()
            .map(|n| {
                let mut p = base(1);
                p.prompt_tokens = Some(n);
                p.suite = Some("prompt-lengths".into());
                scenario(&format!("p{n}"), p, n as f64)
            })
            .collect();
        run(id, scenarios)
    }

    /// Chart name → points of each series of its first panel.
    fn shape(charts: &[Chart]) -> Vec<(String, Vec<usize>)> {
        charts
            .iter()
            .map(|c| {
                let Panel::Lines { series, .. } = &c.panels[0] else {
                    panic!("{} is not a line chart", c.name)
                };
                (
                    c.name.clone(),
                    series.iter().map(|(_, p)| p.len()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn runs_of_different_kinds_get_one_chart_each_never_one_mixed_series() {
        let runs = [
            sweep("conc", "concurrency", &["1", "2", "4"], |p, v| {
                p.load = Some(Load::Closed {
                    concurrency: v as usize,
                })
            }),
            prompt_suite("prompt"),
            sweep(
                "temp",
                "temperature",
                &["0", "0.7", "1.0", "1.5"],
                |p, v| p.temperature = Some(v),
            ),
        ];
        let charts = charts_of(&runs);
        // Four line series (TTFT and TPOT p50/p95) per chart; TPOT has no data here.
        assert_eq!(
            shape(&charts),
            [
                ("prompt_length_impact".to_string(), vec![5, 5, 0, 0]),
                ("concurrency_scaling".to_string(), vec![3, 3, 0, 0]),
                ("throughput_vs_batch_size".to_string(), vec![3, 3]),
                ("temperature_impact".to_string(), vec![4, 4, 0, 0]),
            ]
        );
        assert_eq!(charts[0].title, "Prompt-length impact (5 scenarios)");
        let Panel::Lines { series, .. } = &charts[0].panels[0] else {
            unreachable!()
        };
        let xs: Vec<f64> = series[0].1.iter().map(|p| p.0).collect();
        assert_eq!(xs, [16.0, 128.0, 512.0, 2048.0, 8192.0]);
    }

    #[test]
    fn separate_runs_that_differ_in_one_variable_are_one_experiment() {
        let runs: Vec<ResultFile> = [1, 2, 8]
            .into_iter()
            .map(|c| run(&format!("c{c}"), vec![scenario("default", base(c), 5.0)]))
            .collect();
        let charts = charts_of(&runs);
        assert_eq!(charts[0].name, "concurrency_scaling");
        assert_eq!(
            charts[0].title,
            "Concurrency scaling (3 scenarios from 3 runs)"
        );
        assert_eq!(shape(&charts)[0].1, [3, 3, 0, 0]);
        // A concurrency sweep reported with them: one chart, a series for each.
        let mut more = runs.clone();
        more.push(sweep("sw", "concurrency", &["1", "4"], |p, v| {
            p.load = Some(Load::Closed {
                concurrency: v as usize,
            })
        }));
        let charts = charts_of(&more);
        assert_eq!(charts.len(), 2, "scaling and batch size");
        let Panel::Lines { series, .. } = &charts[0].panels[0] else {
            unreachable!()
        };
        let names: Vec<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names[..2],
            ["TTFT p50 · sw", "TTFT p50 · separate runs"],
            "{names:?}"
        );
        // Runs that differ in two variables are no experiment.
        let mut p = base(4);
        p.temperature = Some(0.5);
        let two = [
            run("a", vec![scenario("default", base(1), 5.0)]),
            run("b", vec![scenario("default", p, 5.0)]),
        ];
        assert!(charts_of(&two).is_empty());
    }

    fn charts_of(runs: &[ResultFile]) -> Vec<Chart> {
        charts(&crate::report::tables::entries(runs))
    }
}
