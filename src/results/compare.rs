//! Pure comparison of two result files: per scenario, per metric, the change, a 95 % bootstrap
//! interval of that change, and a verdict that never contradicts the interval.
//!
//! Scenarios are paired by name only (`checks`); the comparison warns when the runs differ in
//! status, target or load shape. Every row's interval is of the row's own figure, in its unit
//! and with its sign (new − base), from the per-request samples saved in the result files
//! (`bootstrap`): latency rows resample the requests and recompute the percentile they show;
//! throughput rows (output tok/s, requests/s) resample the requests and recompute the scenario
//! figure at the run's mean number of requests in flight (Little's law), which a closed loop
//! holds. An open loop's throughput follows its arrival schedule, whose randomness the samples
//! do not hold (no send times), so those rows get no interval and say why; the threshold alone
//! decides them, as it does every row of a file without samples.
//!
//! A row *regresses* when it got worse (latency up, throughput down) by more than the threshold
//! (relative change) and its interval lies wholly on the worse side, or, without an interval,
//! by the threshold alone.

mod bootstrap;
mod checks;
mod figures;
mod verdict;

use serde::Serialize;

use crate::measure::stats::RequestSamples;
use crate::results::file::{ResultFile, ScenarioResult};
use figures::{METRICS, interval, value};
pub use verdict::Verdict;
use verdict::{is_worse, judge};

/// Confidence level of the intervals.
pub(crate) const CONFIDENCE: f64 = 0.95;

/// One metric of one scenario, base against new.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Metric label (`TTFT p95`).
    pub metric: String,
    /// Unit of `base`, `new`, `change` and `ci`: `ms`, `tok/s` or `req/s`.
    pub unit: String,
    /// True for throughput (higher is better).
    pub higher_is_better: bool,
    /// Base value.
    pub base: Option<f64>,
    /// New value.
    pub new: Option<f64>,
    /// new − base.
    pub change: Option<f64>,
    /// (new − base) / base.
    pub relative: Option<f64>,
    /// 95 % bootstrap interval of `change` (this row's figure, its unit, new − base); null
    /// without per-request samples on both sides or where no honest interval exists
    /// (`no_interval` says why).
    pub ci: Option<(f64, f64)>,
    /// The interval excludes zero; null when untested.
    pub significant: Option<bool>,
    /// Got worse (latency up, throughput down).
    pub worse: bool,
    /// The verdict is `regression`.
    pub regression: bool,
    /// What the change amounts to; never contradicts `ci`.
    pub verdict: Verdict,
    /// Why the row has no interval, when its files have samples but the figure has no honest
    /// interval from them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_interval: Option<String>,
}

/// One scenario present in both files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioComparison {
    /// Scenario name (the same in both files).
    pub name: String,
    /// Requests with samples: base, new.
    pub samples: (usize, usize),
    /// Metric rows.
    pub rows: Vec<Row>,
    /// What makes this pair not like for like (a different load shape).
    pub warnings: Vec<String>,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Relative worsening allowed (0.1 = 10%).
    pub max_regression: f64,
    /// Scenarios in both files, paired by name.
    pub scenarios: Vec<ScenarioComparison>,
    /// Scenario names only in the base file (not compared).
    pub only_base: Vec<String>,
    /// Scenario names only in the new file (not compared).
    pub only_new: Vec<String>,
    /// What makes the two runs not like for like: a run not completed, different targets,
    /// unpaired scenarios.
    pub warnings: Vec<String>,
}

impl Comparison {
    /// Every regressed row, with its scenario.
    pub(crate) fn regressions(&self) -> Vec<(&str, &Row)> {
        self.scenarios
            .iter()
            .flat_map(|s| {
                s.rows
                    .iter()
                    .filter(|r| r.regression)
                    .map(move |r| (s.name.as_str(), r))
            })
            .collect()
    }
}

/// Parses `10%`, `10` (percent) or `0.1` into a fraction.
pub(crate) fn parse_threshold(s: &str) -> anyhow::Result<f64> {
    let t = s.trim();
    let (num, pct) = match t.strip_suffix('%') {
        Some(n) => (n, true),
        None => (t, false),
    };
    let x: f64 = num.trim().parse().map_err(|_| {
        anyhow::anyhow!("--max-regression {s:?}: expected a percentage such as 10% or 0.1")
    })?;
    if !x.is_finite() || x < 0.0 {
        anyhow::bail!("--max-regression {s:?}: must be ≥ 0");
    }
    Ok(if pct || x >= 1.0 { x / 100.0 } else { x })
}

/// Compares one pair of scenarios.
fn compare_scenario(
    base: &ScenarioResult,
    new: &ScenarioResult,
    max_regression: f64,
) -> ScenarioComparison {
    let rows = METRICS
        .iter()
        .map(|c| {
            let (b, n) = (value(base, c.figure), value(new, c.figure));
            let change = b.zip(n).map(|(b, n)| n - b);
            let relative = b
                .zip(change)
                .and_then(|(b, c)| (b.abs() > 0.0).then(|| c / b.abs()));
            let (ci, no_interval) = match interval(c.figure, base, new) {
                Ok(ci) => (ci, None),
                Err(why) => (None, Some(why.to_string())),
            };
            let verdict = judge(c.higher_is_better, change, relative, ci, max_regression);
            Row {
                metric: c.label.to_string(),
                unit: c.unit.to_string(),
                higher_is_better: c.higher_is_better,
                base: b,
                new: n,
                change,
                relative,
                ci,
                significant: ci.map(|(lo, hi)| lo > 0.0 || hi < 0.0),
                worse: change.is_some_and(|d| is_worse(c.higher_is_better, d)),
                regression: verdict == Verdict::Regression,
                verdict,
                no_interval,
            }
        })
        .collect();
    ScenarioComparison {
        name: new.name.clone(),
        samples: (
            base.samples.as_ref().map_or(0, RequestSamples::len),
            new.samples.as_ref().map_or(0, RequestSamples::len),
        ),
        rows,
        warnings: checks::load_warning(base.params.load, new.params.load)
            .into_iter()
            .collect(),
    }
}

/// Compares two result files, scenario by scenario (paired by name).
pub fn compare(base: &ResultFile, new: &ResultFile, max_regression: f64) -> Comparison {
    let p = checks::pair(&base.scenarios, &new.scenarios);
    let mut warnings = checks::run_warnings(base, new);
    warnings.extend(
        p.only_base
            .iter()
            .map(|n| checks::unpaired_warning(n, "base")),
    );
    warnings.extend(
        p.only_new
            .iter()
            .map(|n| checks::unpaired_warning(n, "new")),
    );
    Comparison {
        max_regression,
        scenarios: p
            .pairs
            .iter()
            .map(|(b, n)| compare_scenario(b, n, max_regression))
            .collect(),
        only_base: p.only_base,
        only_new: p.only_new,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::stats::{Dist, Metrics};
    use crate::results::file::RunStatus;
    use crate::results::params::{Arrival, Load, ScenarioParams};
    use crate::rng::SplitMix;

    /// One request: output tokens, e2e ms, ttft ms.
    type Req = (u64, f64, f64);

    /// `n` requests of `tokens` tokens whose e2e and TTFT spread ±25 % around `e2e_ms` and
    /// `ttft_ms` (seeded).
    fn requests(seed: u64, n: usize, tokens: u64, e2e_ms: f64, ttft_ms: f64) -> Vec<Req> {
        let mut rng = SplitMix(seed);
        let mut jitter = || 0.75 + 0.5 * (rng.next_u64() as f64 / u64::MAX as f64);
        (0..n)
            .map(|_| (tokens, e2e_ms * jitter(), ttft_ms * jitter()))
            .collect()
    }

    /// A scenario whose figures are what `load` with these requests measures: latencies from
    /// the requests, and in a closed loop of `c` (always `c` in flight) throughput
    /// `c · Σ work / Σ e2e` (Little's law); in an open loop of rate `r` with the server keeping
    /// up, `r` requests/s of the mean output length.
    fn scenario(name: &str, load: Load, reqs: &[Req]) -> ScenarioResult {
        let n = reqs.len() as f64;
        let tokens: f64 = reqs.iter().map(|r| r.0 as f64).sum();
        let e2e_s: f64 = reqs.iter().map(|r| r.1).sum::<f64>() / 1000.0;
        let (requests_per_s, output_tokens_per_s) = match load {
            Load::Closed { concurrency } => {
                let c = concurrency as f64;
                (c * n / e2e_s, c * tokens / e2e_s)
            }
            Load::Open { rate, .. } => (rate, rate * tokens / n),
        };
        let mut ttft: Vec<f64> = reqs.iter().map(|r| r.2).collect();
        let mut e2e: Vec<f64> = reqs.iter().map(|r| r.1).collect();
        ScenarioResult {
            name: name.into(),
            params: ScenarioParams {
                load: Some(load),
                ..Default::default()
            },
            metrics: Metrics {
                ttft_ms: Dist::of(&mut ttft),
                e2e_ms: Dist::of(&mut e2e),
                output_tokens_per_s,
                requests_per_s,
                ..Default::default()
            },
            samples: Some(RequestSamples {
                ttft_ms: reqs.iter().map(|r| Some(r.2)).collect(),
                tpot_ms: vec![None; reqs.len()],
                e2e_ms: reqs.iter().map(|r| r.1).collect(),
                output_tokens: reqs.iter().map(|r| r.0).collect(),
                seen: 0,
            }),
            ..Default::default()
        }
    }

    fn closed(c: usize) -> Load {
        Load::Closed { concurrency: c }
    }

    fn file(scenarios: Vec<ScenarioResult>) -> ResultFile {
        ResultFile {
            scenarios,
            ..Default::default()
        }
    }

    fn row<'a>(c: &'a Comparison, metric: &str) -> &'a Row {
        c.scenarios[0]
            .rows
            .iter()
            .find(|r| r.metric == metric)
            .unwrap()
    }

    fn one(base: ScenarioResult, new: ScenarioResult, threshold: f64) -> Comparison {
        compare(&file(vec![base]), &file(vec![new]), threshold)
    }

    #[test]
    fn throughput_interval_is_of_the_scenario_figure_not_the_per_request_rate() {
        // The reported case: 8 in flight at 1000 ms, then 4 in flight at 735 ms. Each request
        // got faster (100 → 136 tok/s per request) while the scenario's output tok/s fell 32 %
        // (800 → 544): the interval must be of the fall, in tok/s.
        let base = scenario("a", closed(8), &requests(1, 200, 100, 1000.0, 50.0));
        let new = scenario("a", closed(4), &requests(2, 200, 100, 735.0, 50.0));
        let per_request = |s: &ScenarioResult| {
            let s = s.samples.as_ref().unwrap();
            let n = s.len() as f64;
            s.e2e_ms
                .iter()
                .zip(&s.output_tokens)
                .map(|(e, t)| *t as f64 / (e / 1000.0))
                .sum::<f64>()
                / n
        };
        assert!(per_request(&new) > per_request(&base) + 25.0);
        let c = one(base, new, 0.1);
        let r = row(&c, "output tok/s");
        let (change, (lo, hi)) = (r.change.unwrap(), r.ci.unwrap());
        let truth = 4.0 * 100.0 / 0.735 - 800.0;
        assert!((r.relative.unwrap() + 0.32).abs() < 0.03, "{r:?}");
        assert!(lo <= change && change <= hi, "{r:?}");
        assert!(lo <= truth && truth <= hi, "truth {truth}: {r:?}");
        assert!(hi < 0.0, "a fall's interval lies below zero: {r:?}");
        assert_eq!(r.verdict, Verdict::Regression);
        assert!(r.regression && r.worse && r.significant == Some(true));
    }

    #[test]
    fn requests_per_s_gets_its_own_interval() {
        // Shorter replies: fewer tokens per second (400 → 333) but more requests per second
        // (2 → 6.7) at the same concurrency. Each row's interval follows its own figure.
        let base = scenario("a", closed(4), &requests(3, 150, 200, 2000.0, 50.0));
        let new = scenario("a", closed(4), &requests(4, 150, 50, 600.0, 50.0));
        let c = one(base, new, 0.1);
        let tok = row(&c, "output tok/s");
        let req = row(&c, "requests/s");
        let (tlo, thi) = tok.ci.unwrap();
        let (rlo, rhi) = req.ci.unwrap();
        assert!(thi < 0.0 && tlo <= tok.change.unwrap(), "{tok:?}");
        assert!(rlo > 0.0 && rhi >= req.change.unwrap(), "{req:?}");
        assert!(
            rlo <= req.change.unwrap() && req.change.unwrap() <= rhi,
            "{req:?}"
        );
        assert_eq!(
            (tok.verdict, req.verdict),
            (Verdict::Regression, Verdict::Better)
        );
        // Near 4.7 req/s of change, not near the tokens' −67 tok/s.
        assert!(rhi < 10.0 && rlo > 2.0, "{req:?}");
    }

    #[test]
    fn every_row_names_its_unit() {
        let base = scenario("a", closed(2), &requests(5, 30, 10, 100.0, 20.0));
        let c = one(base.clone(), base, 0.1);
        for r in &c.scenarios[0].rows {
            let want = match r.metric.as_str() {
                "output tok/s" => "tok/s",
                "requests/s" => "req/s",
                m if m.starts_with("TTFT") || m.starts_with("TPOT") || m.starts_with("E2E") => "ms",
                m => panic!("unexpected row {m}"),
            };
            assert_eq!(r.unit, want, "{}", r.metric);
            assert_eq!(r.higher_is_better, want != "ms", "{}", r.metric);
        }
    }

    #[test]
    fn latency_interval_is_of_the_shown_percentile_in_ms() {
        let base = scenario("a", closed(2), &requests(6, 100, 10, 500.0, 50.0));
        let mut slow_reqs = requests(7, 100, 10, 500.0, 50.0);
        for r in &mut slow_reqs {
            r.2 += 50.0;
        }
        let slow = scenario("a", closed(2), &slow_reqs);
        let c = one(base.clone(), slow.clone(), 0.1);
        let r = row(&c, "TTFT p50");
        let (lo, hi) = r.ci.unwrap();
        assert!(lo > 40.0 && hi < 60.0 && lo <= r.change.unwrap(), "{r:?}");
        assert_eq!(r.verdict, Verdict::Regression);
        // The other way round: the same interval mirrored, and better.
        let c = one(slow, base, 0.1);
        let r = row(&c, "TTFT p50");
        let (lo, hi) = r.ci.unwrap();
        assert!(hi < -40.0 && lo > -60.0, "{r:?}");
        assert_eq!(r.verdict, Verdict::Better);
        assert!(c.regressions().is_empty());
    }

    #[test]
    fn a_verdict_never_contradicts_its_interval() {
        // Many pairs, some of few requests (tail percentiles of 3 to 5 requests are where a
        // percentile bootstrap can land off the change), under thresholds of 0 and 10 %.
        let mut rng = SplitMix(99);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..200u64 {
            let n = 3 + rng.below(40);
            let scale = 0.5 + rng.below(100) as f64 / 100.0;
            let base = scenario(
                "a",
                closed(1 + rng.below(8)),
                &requests(i, n, 20, 300.0, 40.0),
            );
            let new_reqs = requests(1000 + i, 3 + rng.below(40), 20, 300.0 * scale, 40.0 * scale);
            let new = scenario("a", closed(1 + rng.below(8)), &new_reqs);
            for threshold in [0.0, 0.1] {
                for r in one(base.clone(), new.clone(), threshold).scenarios[0]
                    .rows
                    .iter()
                {
                    seen.insert(r.verdict.label());
                    let sign = if r.higher_is_better { 1.0 } else { -1.0 };
                    // The interval in "better" units: positive is better.
                    let better = r.ci.map(|(lo, hi)| {
                        let (a, b) = (lo * sign, hi * sign);
                        (a.min(b), a.max(b))
                    });
                    let ok = match (r.verdict, better) {
                        (Verdict::Regression | Verdict::Worse, Some((_, hi))) => {
                            hi < 0.0 && r.worse
                        }
                        (Verdict::Better, Some((lo, _))) => lo > 0.0 && !r.worse,
                        (Verdict::NoChange, Some((lo, hi))) => lo <= 0.0 && hi >= 0.0,
                        (Verdict::Unclear, Some((lo, hi))) => lo > 0.0 || hi < 0.0,
                        (Verdict::Regression | Verdict::Untested, None) => true,
                        _ => false,
                    };
                    assert!(ok, "{r:?}");
                    assert_eq!(r.regression, r.verdict == Verdict::Regression);
                }
            }
        }
        for v in ["REGRESSION", "better", "no change"] {
            assert!(seen.contains(v), "{v} never came up: {seen:?}");
        }
    }

    #[test]
    fn open_loop_throughput_has_no_interval_and_says_why() {
        let open = Load::Open {
            rate: 5.0,
            arrival: Arrival::Poisson,
            max_concurrency: None,
        };
        let base = scenario("a", open, &requests(8, 60, 100, 800.0, 50.0));
        let new = scenario("a", open, &requests(9, 60, 80, 800.0, 50.0));
        let c = one(base, new, 0.1);
        for metric in ["output tok/s", "requests/s"] {
            let r = row(&c, metric);
            assert_eq!(r.ci, None, "{r:?}");
            assert!(
                r.no_interval.as_deref().unwrap().contains("open loop"),
                "{r:?}"
            );
        }
        // 100 → 80 tokens per request at 5 req/s: a 20 % fall, decided by the threshold.
        assert_eq!(row(&c, "output tok/s").verdict, Verdict::Regression);
        assert_eq!(row(&c, "requests/s").verdict, Verdict::Untested);
        // Latency rows keep their intervals.
        assert!(row(&c, "TTFT p50").ci.is_some());
        assert!(c.scenarios[0].warnings.is_empty());
    }

    #[test]
    fn files_without_samples_are_untested_and_noise_is_no_regression() {
        let mut base = scenario("a", closed(2), &requests(10, 20, 10, 100.0, 50.0));
        let mut slow = scenario("a", closed(2), &requests(11, 20, 10, 200.0, 100.0));
        base.samples = None;
        slow.samples = None;
        let c = one(base, slow, 0.1);
        let r = row(&c, "TTFT p50");
        assert_eq!(
            (r.ci, r.significant, r.no_interval.as_ref()),
            (None, None, None)
        );
        assert_eq!(r.verdict, Verdict::Regression);
        // A 20 % jump that five spread-out requests cannot tell from noise.
        let reqs = |t: [f64; 5]| t.map(|t| (10, 200.0, t)).to_vec();
        let c = one(
            scenario("a", closed(2), &reqs([10.0, 50.0, 90.0, 30.0, 70.0])),
            scenario("a", closed(2), &reqs([12.0, 60.0, 95.0, 35.0, 80.0])),
            0.1,
        );
        let r = row(&c, "TTFT p50");
        assert_eq!((r.significant, r.verdict), (Some(false), Verdict::NoChange));
        assert!(r.worse && !r.regression);
    }

    #[test]
    fn the_comparison_warns_about_load_status_and_unpaired_scenarios() {
        let reqs = requests(12, 20, 10, 100.0, 50.0);
        let base = ResultFile {
            scenarios: vec![
                scenario("a", closed(4), &reqs),
                scenario("b", closed(1), &reqs),
            ],
            ..Default::default()
        };
        let new = ResultFile {
            status: RunStatus::Cancelled,
            scenarios: vec![
                scenario("a", closed(8), &reqs),
                scenario("c", closed(1), &reqs),
            ],
            ..Default::default()
        };
        let c = compare(&base, &new, 0.1);
        assert_eq!(c.scenarios.len(), 1);
        assert_eq!(c.scenarios[0].name, "a");
        let w = &c.scenarios[0].warnings;
        assert!(w.len() == 1 && w[0].contains("concurrency 4") && w[0].contains("concurrency 8"));
        assert_eq!(
            (c.only_base.clone(), c.only_new.clone()),
            (vec!["b".into()], vec!["c".into()])
        );
        let all = c.warnings.join("\n");
        assert!(all.contains("the new run was cancelled"), "{all}");
        assert!(all.contains("\"b\" is only in the base run"), "{all}");
        assert!(all.contains("\"c\" is only in the new run"), "{all}");
        // One scenario each, named differently: nothing is paired.
        let c = compare(
            &file(vec![scenario("fast", closed(1), &reqs)]),
            &file(vec![scenario("slow", closed(1), &reqs)]),
            0.1,
        );
        assert!(c.scenarios.is_empty() && c.warnings.len() == 2, "{c:?}");
    }

    #[test]
    fn thresholds_parse() {
        assert_eq!(parse_threshold("10%").unwrap(), 0.1);
        assert_eq!(parse_threshold("0.05").unwrap(), 0.05);
        assert_eq!(parse_threshold("25").unwrap(), 0.25);
        assert!(parse_threshold("ten").is_err());
        assert!(parse_threshold("-5%").is_err());
    }
}
