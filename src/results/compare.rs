//! Pure comparison of two result files: per scenario, per metric, the change and whether it is
//! significant: a 95 % bootstrap confidence interval of the change, from the per-request
//! samples saved in the result files, that excludes zero.
//!
//! A metric *regresses* when it got worse (latency up, throughput down) by more than the
//! threshold (relative change) and the interval does not include zero. When a file has no
//! per-request samples (older files) significance is unknown and the threshold alone decides.
//! Latency rows bootstrap the percentile they show. Throughput is one number per scenario; its
//! interval is that of the mean per-request output rate (output tokens / end-to-end seconds),
//! which moves with throughput at a fixed load.

use serde::Serialize;

use crate::measure::stats::{Dist, RequestSamples};
use crate::results::file::{ResultFile, ScenarioResult};

/// Confidence level of the intervals.
pub const CONFIDENCE: f64 = 0.95;

/// Which per-request samples test a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sample {
    Ttft,
    Tpot,
    E2e,
    Rate,
}

/// What a row compares: a scenario figure and how to read it.
#[derive(Debug, Clone, Copy)]
enum Figure {
    /// A percentile of a latency distribution.
    Latency(Sample, f64),
    /// Output tokens per second of the measured window.
    OutputRate,
    /// Requests per second of the measured window.
    RequestRate,
}

/// One compared metric: its label (display only), unit, direction and figure.
struct Compared {
    label: &'static str,
    unit: &'static str,
    higher_is_better: bool,
    figure: Figure,
}

const fn latency(label: &'static str, s: Sample, p: f64) -> Compared {
    Compared {
        label,
        unit: "ms",
        higher_is_better: false,
        figure: Figure::Latency(s, p),
    }
}

/// Compared metrics, in display order.
const METRICS: &[Compared] = &[
    latency("TTFT p50", Sample::Ttft, 50.0),
    latency("TTFT p95", Sample::Ttft, 95.0),
    latency("TTFT p99", Sample::Ttft, 99.0),
    latency("TPOT p50", Sample::Tpot, 50.0),
    latency("TPOT p95", Sample::Tpot, 95.0),
    latency("TPOT p99", Sample::Tpot, 99.0),
    latency("E2E p50", Sample::E2e, 50.0),
    latency("E2E p95", Sample::E2e, 95.0),
    latency("E2E p99", Sample::E2e, 99.0),
    Compared {
        label: "output tok/s",
        unit: "1/s",
        higher_is_better: true,
        figure: Figure::OutputRate,
    },
    Compared {
        label: "requests/s",
        unit: "1/s",
        higher_is_better: true,
        figure: Figure::RequestRate,
    },
];

/// One metric of one scenario, base against new.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Metric label (`TTFT p95`).
    pub metric: String,
    /// `ms` or `1/s`.
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
    /// 95 % bootstrap interval of the change (unit as `change`; for throughput, of the mean
    /// per-request output rate); null without per-request samples on both sides.
    pub ci: Option<(f64, f64)>,
    /// The interval excludes zero; null when untested.
    pub significant: Option<bool>,
    /// Got worse (latency up, throughput down).
    pub worse: bool,
    /// Worse by more than the threshold, and not explained by chance.
    pub regression: bool,
}

/// One scenario present in both files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioComparison {
    /// Scenario name.
    pub name: String,
    /// Requests with samples: base, new.
    pub samples: (usize, usize),
    /// Metric rows.
    pub rows: Vec<Row>,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Relative worsening allowed (0.1 = 10%).
    pub max_regression: f64,
    /// Scenarios in both files (matched by name; by position when no names match).
    pub scenarios: Vec<ScenarioComparison>,
    /// Scenario names only in the base file.
    pub only_base: Vec<String>,
    /// Scenario names only in the new file.
    pub only_new: Vec<String>,
}

impl Comparison {
    /// Every regressed row, with its scenario.
    pub fn regressions(&self) -> Vec<(&str, &Row)> {
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
pub fn parse_threshold(s: &str) -> anyhow::Result<f64> {
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

/// Resamples drawn per bootstrap.
pub const RESAMPLES: usize = 1000;

// SplitMix64: a small seeded generator, so a comparison always gives the same interval.
use crate::rng::SplitMix;

/// A statistic of a sample: a percentile (0..=100) or the mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// Percentile, numpy's linear interpolation (as everywhere in llmbench).
    Percentile(f64),
    /// Arithmetic mean.
    Mean,
}

fn stat_of(v: &mut [f64], stat: Stat) -> f64 {
    match stat {
        Stat::Mean => v.iter().sum::<f64>() / v.len() as f64,
        Stat::Percentile(p) => {
            v.sort_by(f64::total_cmp);
            crate::measure::stats::percentile(v, p)
        }
    }
}

/// Percentile bootstrap: a 95 % confidence interval of `stat(new) − stat(base)` from
/// `RESAMPLES` resamples of each side (with replacement). `None` when a side is empty.
pub fn bootstrap_ci(base: &[f64], new: &[f64], stat: Stat) -> Option<(f64, f64)> {
    if base.is_empty() || new.is_empty() {
        return None;
    }
    let mut rng = SplitMix(0x5EED ^ ((base.len() as u64) << 20) ^ (new.len() as u64));
    let mut diffs = Vec::with_capacity(RESAMPLES);
    let (mut a, mut b) = (vec![0.0; base.len()], vec![0.0; new.len()]);
    for _ in 0..RESAMPLES {
        for x in a.iter_mut() {
            *x = base[rng.below(base.len())];
        }
        for x in b.iter_mut() {
            *x = new[rng.below(new.len())];
        }
        diffs.push(stat_of(&mut b, stat) - stat_of(&mut a, stat));
    }
    diffs.sort_by(f64::total_cmp);
    Some((
        crate::measure::stats::percentile(&diffs, 2.5),
        crate::measure::stats::percentile(&diffs, 97.5),
    ))
}

fn samples_of(s: &RequestSamples, kind: Sample) -> Vec<f64> {
    match kind {
        Sample::Ttft => s.ttft_ms.iter().flatten().copied().collect(),
        Sample::Tpot => s.tpot_ms.iter().flatten().copied().collect(),
        Sample::E2e => s.e2e_ms.clone(),
        Sample::Rate => s
            .e2e_ms
            .iter()
            .zip(&s.output_tokens)
            .filter(|(e, _)| **e > 0.0)
            .map(|(e, t)| *t as f64 / (e / 1000.0))
            .collect(),
    }
}

fn value(sc: &ScenarioResult, figure: Figure) -> Option<f64> {
    let m = &sc.metrics;
    let (d, p): (&Option<Dist>, f64) = match figure {
        Figure::OutputRate => return Some(m.output_tokens_per_s),
        Figure::RequestRate => return Some(m.requests_per_s),
        Figure::Latency(Sample::Ttft, p) => (&m.ttft_ms, p),
        Figure::Latency(Sample::Tpot, p) => (&m.tpot_ms, p),
        Figure::Latency(Sample::E2e, p) => (&m.e2e_ms, p),
        Figure::Latency(Sample::Rate, _) => return None,
    };
    d.and_then(|d| d.percentile(p))
}

/// Compares one scenario.
pub fn compare_scenario(
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
            let (kind, stat) = match c.figure {
                Figure::Latency(kind, p) => (kind, Stat::Percentile(p)),
                Figure::OutputRate | Figure::RequestRate => (Sample::Rate, Stat::Mean),
            };
            let higher_is_better = c.higher_is_better;
            let ci = match (&base.samples, &new.samples) {
                (Some(sb), Some(sn)) => {
                    bootstrap_ci(&samples_of(sb, kind), &samples_of(sn, kind), stat)
                }
                _ => None,
            };
            let significant = ci.map(|(lo, hi)| lo > 0.0 || hi < 0.0);
            let worse = match change {
                Some(c) if higher_is_better => c < 0.0,
                Some(c) => c > 0.0,
                None => false,
            };
            let beyond = relative.is_some_and(|r| r.abs() > max_regression);
            Row {
                metric: c.label.to_string(),
                unit: c.unit.to_string(),
                higher_is_better,
                base: b,
                new: n,
                change,
                relative,
                ci,
                significant,
                worse,
                regression: worse && beyond && significant != Some(false),
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
    }
}

/// Compares two result files, scenario by scenario.
pub fn compare(base: &ResultFile, new: &ResultFile, max_regression: f64) -> Comparison {
    let by_name = new
        .scenarios
        .iter()
        .any(|n| base.scenarios.iter().any(|b| b.name == n.name));
    let mut scenarios = Vec::new();
    let mut only_new = Vec::new();
    if by_name {
        for n in &new.scenarios {
            match base.scenarios.iter().find(|b| b.name == n.name) {
                Some(b) => scenarios.push(compare_scenario(b, n, max_regression)),
                None => only_new.push(n.name.clone()),
            }
        }
    } else {
        for (b, n) in base.scenarios.iter().zip(&new.scenarios) {
            let mut c = compare_scenario(b, n, max_regression);
            if b.name != n.name {
                c.name = format!("{} → {}", b.name, n.name);
            }
            scenarios.push(c);
        }
        only_new.extend(
            new.scenarios
                .iter()
                .skip(base.scenarios.len())
                .map(|s| s.name.clone()),
        );
    }
    let only_base = if by_name {
        base.scenarios
            .iter()
            .filter(|b| !new.scenarios.iter().any(|n| n.name == b.name))
            .map(|s| s.name.clone())
            .collect()
    } else {
        base.scenarios
            .iter()
            .skip(new.scenarios.len())
            .map(|s| s.name.clone())
            .collect()
    };
    Comparison {
        max_regression,
        scenarios,
        only_base,
        only_new,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_interval_covers_the_true_shift() {
        let a: Vec<f64> = (0..200).map(|i| 50.0 + (i % 10) as f64).collect();
        let b: Vec<f64> = a.iter().map(|x| x + 20.0).collect();
        let (lo, hi) = bootstrap_ci(&a, &b, Stat::Percentile(50.0)).unwrap();
        assert!(
            lo <= 20.0 && hi >= 20.0 && lo > 15.0 && hi < 25.0,
            "{lo} {hi}"
        );
        let (lo, hi) = bootstrap_ci(&a, &a, Stat::Mean).unwrap();
        assert!(lo < 0.0 && hi > 0.0, "{lo} {hi}");
        // Same input, same interval.
        assert_eq!(
            bootstrap_ci(&a, &b, Stat::Percentile(95.0)),
            bootstrap_ci(&a, &b, Stat::Percentile(95.0))
        );
        assert_eq!(bootstrap_ci(&[], &a, Stat::Mean), None);
    }

    #[test]
    fn thresholds_parse() {
        assert_eq!(parse_threshold("10%").unwrap(), 0.1);
        assert_eq!(parse_threshold("0.05").unwrap(), 0.05);
        assert_eq!(parse_threshold("25").unwrap(), 0.25);
        assert!(parse_threshold("ten").is_err());
        assert!(parse_threshold("-5%").is_err());
    }

    fn scenario(name: &str, ttft: &[f64], tokens_per_s: f64) -> ScenarioResult {
        let mut v = ttft.to_vec();
        ScenarioResult {
            name: name.into(),
            metrics: crate::measure::stats::Metrics {
                ttft_ms: Dist::of(&mut v),
                output_tokens_per_s: tokens_per_s,
                ..Default::default()
            },
            samples: Some(RequestSamples {
                ttft_ms: ttft.iter().map(|x| Some(*x)).collect(),
                tpot_ms: vec![None; ttft.len()],
                e2e_ms: ttft.iter().map(|x| x + 100.0).collect(),
                output_tokens: vec![10; ttft.len()],
                seen: 0,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn doubled_ttft_regresses_and_noise_does_not() {
        let base_ttft: Vec<f64> = (0..20).map(|i| 50.0 + (i % 5) as f64 * 0.2).collect();
        let slow: Vec<f64> = base_ttft.iter().map(|x| x * 2.0).collect();
        let base = ResultFile {
            scenarios: vec![scenario("a", &base_ttft, 100.0)],
            ..Default::default()
        };
        let new = ResultFile {
            scenarios: vec![scenario("a", &slow, 60.0)],
            ..Default::default()
        };
        let c = compare(&base, &new, 0.1);
        let names: Vec<&str> = c
            .regressions()
            .iter()
            .map(|(_, r)| r.metric.as_str())
            .collect();
        assert!(names.contains(&"TTFT p50"), "{names:?}");
        assert!(names.contains(&"output tok/s"), "{names:?}");
        let rows = &compare(&base, &new, 0.1).scenarios[0].rows;
        let rps = rows.iter().find(|r| r.metric == "requests/s").unwrap();
        assert_eq!((rps.base, rps.new), (Some(0.0), Some(0.0)));
        assert!(compare(&base, &base, 0.1).regressions().is_empty());
        // Faster is never a regression.
        assert!(compare(&new, &base, 0.1).regressions().is_empty());
        // A 20% jump that the rank test cannot tell from noise is not a regression.
        let noisy_a: Vec<f64> = vec![10.0, 50.0, 90.0, 30.0, 70.0];
        let noisy_b: Vec<f64> = vec![12.0, 60.0, 95.0, 35.0, 80.0];
        let c = compare(
            &ResultFile {
                scenarios: vec![scenario("a", &noisy_a, 100.0)],
                ..Default::default()
            },
            &ResultFile {
                scenarios: vec![scenario("a", &noisy_b, 100.0)],
                ..Default::default()
            },
            0.1,
        );
        let row = &c.scenarios[0].rows[0];
        assert_eq!(row.significant, Some(false));
        assert!(row.worse && !row.regression);
    }
}
