//! Goodput at the capacity: the requests of the capacity step (the highest load that passed)
//! that met every target, per second, and their output tokens per second.
//!
//! Measured, not interpolated: the capacity is itself a step that was run, and a figure
//! interpolated towards the first failing step would mix in a load that did not meet the
//! targets. A percentile target (`ttft_p99<500ms`) holds each request to its threshold
//! (TTFT under 500 ms), as `--slo` goodput does; a request with one token has no TPOT and is
//! not held to a TPOT target.

use serde::{Deserialize, Serialize};

use crate::measure::slo::{Measured, Target, good_requests};

/// Goodput of the capacity step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityGoodput {
    /// The load it was measured at (the capacity).
    pub load: f64,
    /// The step's scenario.
    pub scenario: String,
    /// Requests that succeeded and met every target (scaled up from the per-request sample
    /// when it was thinned).
    pub good: u64,
    /// Requests scheduled in the step.
    pub requests: u64,
    /// Good requests per second of the step's measured window.
    pub requests_per_s: f64,
    /// Output tokens of the good requests per second of the same window.
    pub output_tokens_per_s: f64,
}

/// Goodput of the step at `load`; `None` without per-request figures.
pub fn at_capacity(
    load: f64,
    scenario: &str,
    targets: &[Target],
    m: Measured<'_>,
) -> Option<CapacityGoodput> {
    let s = m.samples?;
    let good = good_requests(targets, s);
    let scale = s.population() as f64 / (s.len() as f64).max(1.0);
    let tokens: u64 = good
        .iter()
        .map(|&i| s.output_tokens.get(i).copied().unwrap_or(0))
        .sum();
    let d = m.metrics.duration_s;
    let per_s = |x: f64| if d > 0.0 { x / d } else { 0.0 };
    Some(CapacityGoodput {
        load,
        scenario: scenario.to_string(),
        good: (good.len() as f64 * scale).round() as u64,
        requests: m.outcomes.scheduled,
        requests_per_s: per_s(good.len() as f64 * scale),
        output_tokens_per_s: per_s(tokens as f64 * scale),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::record::Outcome;
    use crate::measure::stats::{Metrics, Outcomes, RequestSamples};

    #[test]
    fn only_requests_meeting_every_target_count() {
        let targets = crate::measure::slo::parse("ttft_p99<100ms,tpot_p90<10ms").unwrap();
        // Four requests: good; TTFT too slow; TPOT too slow; one token (no TPOT): good.
        let s = RequestSamples {
            ttft_ms: vec![Some(50.0), Some(150.0), Some(50.0), Some(20.0)],
            tpot_ms: vec![Some(5.0), Some(5.0), Some(12.0), None],
            e2e_ms: vec![100.0, 200.0, 300.0, 20.0],
            output_tokens: vec![10, 20, 30, 1],
            seen: 0,
        };
        let mut outcomes = Outcomes {
            scheduled: 5,
            ..Default::default()
        };
        outcomes.counts.insert(Outcome::Succeeded, 4);
        let metrics = Metrics {
            duration_s: 2.0,
            ..Default::default()
        };
        let g = at_capacity(
            8.0,
            "concurrency=8",
            &targets,
            Measured {
                outcomes: &outcomes,
                metrics: &metrics,
                samples: Some(&s),
            },
        )
        .unwrap();
        assert_eq!((g.good, g.requests), (2, 5));
        assert_eq!(g.requests_per_s, 1.0);
        assert_eq!(g.output_tokens_per_s, 5.5);
        // Thinned samples stand for more requests.
        let s = RequestSamples { seen: 8, ..s };
        let g = at_capacity(
            8.0,
            "c",
            &targets,
            Measured {
                outcomes: &outcomes,
                metrics: &metrics,
                samples: Some(&s),
            },
        )
        .unwrap();
        assert_eq!(
            (g.good, g.requests_per_s, g.output_tokens_per_s),
            (4, 2.0, 11.0)
        );
    }
}
