//! The figures a comparison rows: each metric's label, unit and direction, its value in a
//! result file, and the interval of its change from the saved per-request samples. Pure.

use crate::measure::stats::{Dist, RequestSamples};
use crate::results::file::ScenarioResult;
use crate::results::params::Load;

use super::bootstrap::{Throughput, percentile_ci, throughput_ci};

/// A latency distribution with per-request samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Latency {
    Ttft,
    Tpot,
    E2e,
}

/// What a row compares: a scenario figure.
#[derive(Debug, Clone, Copy)]
pub(super) enum Figure {
    /// A percentile of a latency distribution (ms).
    Latency(Latency, f64),
    /// Output tokens of succeeded requests per second of the measured window.
    OutputRate,
    /// Succeeded requests per second of the measured window.
    RequestRate,
}

/// One compared metric: its label (display only), unit, direction and figure.
pub(super) struct Compared {
    pub label: &'static str,
    pub unit: &'static str,
    pub higher_is_better: bool,
    pub figure: Figure,
}

const fn latency(label: &'static str, l: Latency, p: f64) -> Compared {
    Compared {
        label,
        unit: "ms",
        higher_is_better: false,
        figure: Figure::Latency(l, p),
    }
}

/// Compared metrics, in display order.
pub(super) const METRICS: &[Compared] = &[
    latency("TTFT p50", Latency::Ttft, 50.0),
    latency("TTFT p95", Latency::Ttft, 95.0),
    latency("TTFT p99", Latency::Ttft, 99.0),
    latency("TPOT p50", Latency::Tpot, 50.0),
    latency("TPOT p95", Latency::Tpot, 95.0),
    latency("TPOT p99", Latency::Tpot, 99.0),
    latency("E2E p50", Latency::E2e, 50.0),
    latency("E2E p95", Latency::E2e, 95.0),
    latency("E2E p99", Latency::E2e, 99.0),
    Compared {
        label: "output tok/s",
        unit: "tok/s",
        higher_is_better: true,
        figure: Figure::OutputRate,
    },
    Compared {
        label: "requests/s",
        unit: "req/s",
        higher_is_better: true,
        figure: Figure::RequestRate,
    },
];

fn latency_samples(s: &RequestSamples, l: Latency) -> Vec<f64> {
    match l {
        Latency::Ttft => s.ttft_ms.iter().flatten().copied().collect(),
        Latency::Tpot => s.tpot_ms.iter().flatten().copied().collect(),
        Latency::E2e => s.e2e_ms.clone(),
    }
}

/// Per succeeded request, (work, e2e ms): work is output tokens for tokens/s, 1 for requests/s.
fn throughput_samples(s: &RequestSamples, figure: Figure) -> Vec<(f64, f64)> {
    s.e2e_ms
        .iter()
        .zip(&s.output_tokens)
        .map(|(e, t)| match figure {
            Figure::OutputRate => (*t as f64, *e),
            _ => (1.0, *e),
        })
        .collect()
}

pub(super) fn value(sc: &ScenarioResult, figure: Figure) -> Option<f64> {
    let m = &sc.metrics;
    let (d, p): (&Option<Dist>, f64) = match figure {
        Figure::OutputRate => return Some(m.output_tokens_per_s),
        Figure::RequestRate => return Some(m.requests_per_s),
        Figure::Latency(Latency::Ttft, p) => (&m.ttft_ms, p),
        Figure::Latency(Latency::Tpot, p) => (&m.tpot_ms, p),
        Figure::Latency(Latency::E2e, p) => (&m.e2e_ms, p),
    };
    d.and_then(|d| d.percentile(p))
}

/// Why a throughput figure of these loads has no honest interval from the saved samples.
fn throughput_without_interval(base: Option<Load>, new: Option<Load>) -> Option<&'static str> {
    match (base, new) {
        (Some(Load::Closed { .. }), Some(Load::Closed { .. })) => None,
        (Some(Load::Open { .. }), _) | (_, Some(Load::Open { .. })) => Some(
            "open loop: throughput follows the arrival schedule, whose randomness the saved samples do not hold (no send times), so no interval; the threshold alone decides",
        ),
        _ => Some(
            "load not recorded: throughput may follow a schedule, whose randomness the saved samples do not hold, so no interval; the threshold alone decides",
        ),
    }
}

/// The row's interval, or why it has none (`Err`); `Ok(None)` when a file has no samples.
pub(super) fn interval(
    figure: Figure,
    base: &ScenarioResult,
    new: &ScenarioResult,
) -> Result<Option<(f64, f64)>, &'static str> {
    let (Some(sb), Some(sn)) = (&base.samples, &new.samples) else {
        return Ok(None);
    };
    Ok(match figure {
        Figure::Latency(l, p) => percentile_ci(&latency_samples(sb, l), &latency_samples(sn, l), p),
        Figure::OutputRate | Figure::RequestRate => {
            if let Some(why) = throughput_without_interval(base.params.load, new.params.load) {
                return Err(why);
            }
            let (rb, rn) = (
                throughput_samples(sb, figure),
                throughput_samples(sn, figure),
            );
            let side = |sc, requests| Throughput {
                figure: value(sc, figure).unwrap_or(0.0),
                requests,
            };
            throughput_ci(side(base, &rb), side(new, &rn))
        }
    })
}
