//! Performance targets (`--slo "ttft_p95<200ms,tpot_p99<50ms,e2e_p50<2s"`) and goodput.
//!
//! Pure: a parsed target list and a finished scenario in, verdicts out. A target is
//! `METRIC_STAT OP VALUE[UNIT]`:
//!
//! - latency metrics `ttft`, `tpot`, `itl`, `e2e`, `queue` with a statistic (`p50`, `p90`,
//!   `p95`, `p99`, `mean`, `min`, `max`, `median`) and a time (`ms` by default, `s`, `us`);
//! - rates `output_tokens_per_s` (alias `tokens_per_s`), `total_tokens_per_s`, `requests_per_s`
//!   (alias `rps`), plain numbers per second;
//! - shares `success_rate` and `goodput`, as `95%` or `0.95`.
//!
//! Goodput is the share (of all scheduled requests) and the rate (per second of the measured
//! window) of requests that succeeded and met every per-request latency target: the `ttft`,
//! `tpot` and `e2e` targets, applied to each request's own value. A request with fewer than two
//! tokens has no TPOT and is not held to a TPOT target. `itl`, `queue` and rate targets apply to
//! the scenario as a whole only.

use serde::{Deserialize, Serialize};

use crate::measure::metrics::Latency;
use crate::measure::record::Outcome;
use crate::measure::samples::Stat;
use crate::measure::stats::{Metrics, Outcomes, RequestSamples};

/// Comparison of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
        }
    }
}

/// What a target measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    /// A latency distribution (`ttft_ms`, ...) and one of its statistics; threshold in ms.
    Latency {
        /// The distribution.
        metric: Latency,
        /// Its statistic.
        stat: Stat,
    },
    /// A rate in the result file's metrics (`output_tokens_per_s`); threshold per second.
    Rate(&'static str),
    /// Share of scheduled requests that succeeded (0..1).
    SuccessRate,
    /// Goodput share (0..1).
    Goodput,
}

/// One parsed target.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// As typed.
    pub spec: String,
    /// What it measures.
    pub measure: Measure,
    /// Comparison.
    pub op: Op,
    /// Threshold, in ms (latency), per second (rates) or a fraction (shares).
    pub threshold: f64,
    /// `@FLAG=VALUE`: the target holds only for the steps (scenarios) where that flag has that
    /// value (`output_tokens_per_s>=400@concurrency=8`); `None`: for every step.
    pub step: Option<Step>,
}

/// Flags a target can be limited to steps of (`@concurrency=8`): the ones a sweep varies.
pub const STEP_FLAGS: [&str; 5] = [
    "concurrency",
    "rate",
    "temperature",
    "max-tokens",
    "prompt-tokens",
];

/// The steps a target holds for: those where `flag` has `value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// One of [`STEP_FLAGS`].
    pub flag: &'static str,
    /// Its value.
    pub value: f64,
}

impl Step {
    /// Whether a step whose value of the flag is `value` is one of these.
    pub fn matches(&self, value: Option<f64>) -> bool {
        value.is_some_and(|v| (v - self.value).abs() <= 1e-9 * self.value.abs().max(1.0))
    }
}

fn parse_step(spec: &str, s: &str) -> anyhow::Result<Step> {
    let (flag, value) = s.split_once('=').ok_or_else(|| {
        bad(
            spec,
            format!("after @ give FLAG=VALUE, e.g. @concurrency=8 (got {s:?})"),
        )
    })?;
    let flag = flag.trim().trim_start_matches("--").replace('_', "-");
    let flag = STEP_FLAGS.into_iter().find(|f| *f == flag).ok_or_else(|| {
        bad(
            spec,
            format!(
                "@{flag}: a target can be limited to steps of {}",
                STEP_FLAGS.join(", ")
            ),
        )
    })?;
    let value: f64 = value
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| bad(spec, format!("@{flag}={value}: not a number")))?;
    Ok(Step { flag, value })
}

/// One target's verdict, as written in the result file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetResult {
    /// The target as typed.
    pub target: String,
    /// Metric name (`ttft_ms`, `output_tokens_per_s`, `success_rate`, `goodput`).
    pub metric: String,
    /// Statistic of a latency metric (`p95`).
    #[serde(default)]
    pub stat: Option<String>,
    /// `<`, `<=`, `>` or `>=`.
    pub op: String,
    /// Threshold in `unit`.
    pub threshold: f64,
    /// `ms`, `1/s` or `share`.
    pub unit: String,
    /// Measured value in `unit`; null when the scenario has no such measurement.
    pub value: Option<f64>,
    /// True when the value meets the target (a missing value fails).
    pub passed: bool,
}

/// Requests meeting every per-request target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goodput {
    /// The per-request criteria applied (`ttft_ms<200`); empty: succeeded is enough.
    pub criteria: Vec<String>,
    /// Requests that succeeded and met every criterion.
    pub good: u64,
    /// Requests scheduled in the measured phase.
    pub scheduled: u64,
    /// good / scheduled (0..1).
    pub share: f64,
    /// good requests per second of the measured window.
    pub requests_per_s: f64,
}

/// Targets and goodput of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloResult {
    /// True when every target passed.
    pub passed: bool,
    /// One verdict per target, in the order given.
    pub targets: Vec<TargetResult>,
    /// Goodput under the per-request targets.
    pub goodput: Goodput,
}

fn bad(spec: &str, why: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "--slo: bad target {spec:?}: {why} (expected e.g. \"ttft_p95<200ms,tpot_p99<50ms,e2e_p50<2s,output_tokens_per_s>100,goodput>90%\")"
    )
}

fn parse_number(spec: &str, s: &str) -> anyhow::Result<f64> {
    let x: f64 = s
        .trim()
        .parse()
        .map_err(|_| bad(spec, format!("{s:?} is not a number")))?;
    if !x.is_finite() || x < 0.0 {
        return Err(bad(spec, "the threshold must be a finite number ≥ 0"));
    }
    Ok(x)
}

fn latency_metric(name: &str) -> Option<Latency> {
    Some(match name.trim_end_matches("_ms") {
        "ttft" => Latency::Ttft,
        "tpot" => Latency::Tpot,
        "itl" => Latency::Itl,
        "e2e" | "e2el" | "latency" => Latency::E2e,
        "queue" => Latency::Queue,
        _ => return None,
    })
}

const STATS: [&str; 8] = ["p50", "p90", "p95", "p99", "mean", "min", "max", "median"];

fn parse_one(spec: &str) -> anyhow::Result<Target> {
    let (body, step) = match spec.split_once('@') {
        Some((b, st)) => (b.trim(), Some(parse_step(spec, st)?)),
        None => (spec, None),
    };
    let mut t = parse_target(spec, body)?;
    t.step = step;
    Ok(t)
}

fn parse_target(spec: &str, body: &str) -> anyhow::Result<Target> {
    let pos = body
        .find(['<', '>'])
        .ok_or_else(|| bad(spec, "no comparison (< <= > >=)"))?;
    let name = body[..pos].trim().to_ascii_lowercase();
    let rest = &body[pos..];
    let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
        (Op::Le, v)
    } else if let Some(v) = rest.strip_prefix(">=") {
        (Op::Ge, v)
    } else if let Some(v) = rest.strip_prefix('<') {
        (Op::Lt, v)
    } else {
        (Op::Gt, &rest[1..])
    };
    let value = value.trim().to_ascii_lowercase();
    if name.is_empty() {
        return Err(bad(spec, "no metric before the comparison"));
    }
    if value.is_empty() {
        return Err(bad(spec, "no value after the comparison"));
    }
    let (measure, threshold) = match name.as_str() {
        "output_tokens_per_s"
        | "tokens_per_s"
        | "total_tokens_per_s"
        | "requests_per_s"
        | "rps" => {
            let metric = match name.as_str() {
                "total_tokens_per_s" => "total_tokens_per_s",
                "requests_per_s" | "rps" => "requests_per_s",
                _ => "output_tokens_per_s",
            };
            let v = value.strip_suffix("/s").unwrap_or(&value);
            (Measure::Rate(metric), parse_number(spec, v)?)
        }
        "success_rate" | "goodput" => {
            let x = match value.strip_suffix('%') {
                Some(p) => parse_number(spec, p)? / 100.0,
                None => parse_number(spec, &value)?,
            };
            if x > 1.0 {
                return Err(bad(spec, "a share is at most 100% (or 1.0)"));
            }
            let m = if name == "goodput" {
                Measure::Goodput
            } else {
                Measure::SuccessRate
            };
            (m, x)
        }
        _ => {
            let (metric, stat) = name.rsplit_once('_').ok_or_else(|| {
                bad(
                    spec,
                    format!("{name:?}: give a metric and a statistic, e.g. ttft_p95"),
                )
            })?;
            let metric = latency_metric(metric).ok_or_else(|| {
                bad(
                    spec,
                    format!(
                        "unknown metric {metric:?} (ttft, tpot, itl, e2e, queue, output_tokens_per_s, total_tokens_per_s, requests_per_s, success_rate, goodput)"
                    ),
                )
            })?;
            let Some(stat) = Stat::parse(stat).filter(|_| STATS.contains(&stat)) else {
                return Err(bad(
                    spec,
                    format!("unknown statistic {stat:?} ({})", STATS.join(", ")),
                ));
            };
            let (num, scale) = if let Some(v) = value.strip_suffix("ms") {
                (v, 1.0)
            } else if let Some(v) = value
                .strip_suffix("us")
                .or_else(|| value.strip_suffix("µs"))
            {
                (v, 1e-3)
            } else if let Some(v) = value.strip_suffix('s') {
                (v, 1000.0)
            } else {
                (value.as_str(), 1.0)
            };
            (
                Measure::Latency { metric, stat },
                parse_number(spec, num)? * scale,
            )
        }
    };
    Ok(Target {
        spec: spec.to_string(),
        measure,
        op,
        threshold,
        step: None,
    })
}

/// Parses a comma-separated target list; errors name the `--slo` flag and the bad target.
pub fn parse(spec: &str) -> anyhow::Result<Vec<Target>> {
    let targets: Vec<Target> = spec
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_one)
        .collect::<anyhow::Result<_>>()?;
    if targets.is_empty() {
        anyhow::bail!("--slo {spec:?}: no targets given");
    }
    Ok(targets)
}

/// What a finished scenario measured, as the targets see it.
#[derive(Clone, Copy)]
pub struct Measured<'a> {
    /// Outcome counts.
    pub outcomes: &'a Outcomes,
    /// The scenario's statistics.
    pub metrics: &'a Metrics,
    /// Per-request figures, when kept.
    pub samples: Option<&'a RequestSamples>,
}

/// The per-request latency targets among `targets` (TTFT, TPOT, E2E).
fn per_request(targets: &[Target]) -> Vec<&Target> {
    targets
        .iter()
        .filter(|t| {
            matches!(&t.measure, Measure::Latency { metric, .. }
                if matches!(*metric, Latency::Ttft | Latency::Tpot | Latency::E2e))
        })
        .collect()
}

/// Indices of the sampled succeeded requests that meet every per-request target (a request
/// with one token has no TPOT and is not held to a TPOT target).
pub fn good_requests(targets: &[Target], s: &RequestSamples) -> Vec<usize> {
    let per_request = per_request(targets);
    (0..s.len())
        .filter(|&i| {
            per_request.iter().all(|t| {
                let Measure::Latency { metric, .. } = &t.measure else {
                    return true;
                };
                let v = match *metric {
                    Latency::Ttft => s.ttft_ms.get(i).copied().flatten(),
                    Latency::Tpot => match s.tpot_ms.get(i).copied().flatten() {
                        Some(v) => Some(v),
                        None => return true,
                    },
                    _ => s.e2e_ms.get(i).copied(),
                };
                v.is_some_and(|v| t.op.holds(v, t.threshold))
            })
        })
        .collect()
}

/// Goodput of a scenario under the per-request latency targets among `targets`.
pub fn goodput(targets: &[Target], sc: Measured<'_>) -> Goodput {
    let per_request = per_request(targets);
    let criteria = per_request
        .iter()
        .map(|t| match &t.measure {
            Measure::Latency { metric, .. } => {
                format!("{}{}{}", metric.name(), t.op.as_str(), t.threshold)
            }
            _ => unreachable!(),
        })
        .collect();
    let succeeded = sc.outcomes.get(Outcome::Succeeded);
    let good = match sc.samples {
        Some(s) => {
            good_requests(targets, s).len() as u64
            // Beyond MAX_REQUEST_SAMPLES the figures are a uniform sample: scale its share.
            * s.population()
                / (s.len() as u64).max(1)
        }
        // Without per-request figures only "succeeded" can be judged.
        None if per_request.is_empty() => succeeded,
        None => 0,
    };
    let scheduled = sc.outcomes.scheduled;
    let d = sc.metrics.duration_s;
    Goodput {
        criteria,
        good,
        scheduled,
        share: if scheduled > 0 {
            good as f64 / scheduled as f64
        } else {
            0.0
        },
        requests_per_s: if d > 0.0 { good as f64 / d } else { 0.0 },
    }
}

/// Judges every target against a finished scenario.
pub fn evaluate(targets: &[Target], sc: Measured<'_>) -> SloResult {
    let gp = goodput(targets, sc);
    let results: Vec<TargetResult> = targets
        .iter()
        .map(|t| {
            let (metric, stat, unit, value) = match &t.measure {
                Measure::Latency { metric, stat } => (
                    metric.name().to_string(),
                    Some(stat.name().to_string()),
                    "ms",
                    sc.metrics.latency(*metric).map(|d| d.stat(*stat)),
                ),
                Measure::Rate(m) => {
                    let v = match *m {
                        "total_tokens_per_s" => sc.metrics.total_tokens_per_s,
                        "requests_per_s" => sc.metrics.requests_per_s,
                        _ => sc.metrics.output_tokens_per_s,
                    };
                    (m.to_string(), None, "1/s", Some(v))
                }
                Measure::SuccessRate => {
                    let o = sc.outcomes;
                    let v = (o.scheduled > 0)
                        .then(|| o.get(Outcome::Succeeded) as f64 / o.scheduled as f64);
                    ("success_rate".into(), None, "share", v)
                }
                Measure::Goodput => ("goodput".into(), None, "share", Some(gp.share)),
            };
            TargetResult {
                target: t.spec.clone(),
                metric,
                stat,
                op: t.op.as_str().into(),
                threshold: t.threshold,
                unit: unit.into(),
                value,
                passed: value.is_some_and(|v| t.op.holds(v, t.threshold)),
            }
        })
        .collect();
    SloResult {
        passed: results.iter().all(|r| r.passed),
        targets: results,
        goodput: gp,
    }
}

fn show(x: f64, unit: &str) -> String {
    match unit {
        "share" => format!("{:.1}%", x * 100.0),
        "ms" => format!("{x:.2} ms"),
        _ => format!("{x:.2}/s"),
    }
}

/// Console lines: one per target with PASS/FAIL, then goodput.
pub fn text(r: &SloResult) -> String {
    let mut s = String::from("Targets:\n");
    for t in &r.targets {
        let value = t.value.map_or("no data".into(), |v| show(v, &t.unit));
        s.push_str(&format!(
            "  {} {:<28} measured {:>12}   (target {} {})\n",
            if t.passed { "PASS" } else { "FAIL" },
            t.target,
            value,
            t.op,
            show(t.threshold, &t.unit)
        ));
    }
    let g = &r.goodput;
    s.push_str(&format!(
        "Goodput: {}/{} requests ({:.1}%), {:.2} req/s{}\n",
        g.good,
        g.scheduled,
        g.share * 100.0,
        g.requests_per_s,
        if g.criteria.is_empty() {
            " (succeeded; no per-request latency target)".to_string()
        } else {
            format!(" meeting {}", g.criteria.join(", "))
        }
    ));
    s
}

#[cfg(test)]
mod tests;
