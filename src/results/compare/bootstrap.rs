//! Percentile-bootstrap intervals of the change of one scenario figure between two runs. Pure:
//! samples in, interval out.
//!
//! Every interval is of `figure(new) − figure(base)`, in the figure's unit: each side's
//! requests are resampled with replacement, the figure is recomputed from the resample, and the
//! 2.5th and 97.5th percentiles of the differences are the interval.

use crate::measure::stats::percentile;
use crate::rng::SplitMix;

/// Resamples drawn per bootstrap.
pub(crate) const RESAMPLES: usize = 1000;

/// Percentile bootstrap of `stat_new(new) − stat_base(base)` over `RESAMPLES` resamples of each
/// side. `None` when a side is empty or a statistic has no value.
fn bootstrap_diff<T: Copy + Default>(
    base: &[T],
    new: &[T],
    stat_base: impl Fn(&mut [T]) -> Option<f64>,
    stat_new: impl Fn(&mut [T]) -> Option<f64>,
) -> Option<(f64, f64)> {
    if base.is_empty() || new.is_empty() {
        return None;
    }
    // Seeded by the sizes: a comparison always gives the same interval.
    let mut rng = SplitMix(0x5EED ^ ((base.len() as u64) << 20) ^ (new.len() as u64));
    let mut diffs = Vec::with_capacity(RESAMPLES);
    let (mut a, mut b) = (
        vec![T::default(); base.len()],
        vec![T::default(); new.len()],
    );
    for _ in 0..RESAMPLES {
        for x in a.iter_mut() {
            *x = base[rng.below(base.len())];
        }
        for x in b.iter_mut() {
            *x = new[rng.below(new.len())];
        }
        diffs.push(stat_new(&mut b)? - stat_base(&mut a)?);
    }
    diffs.sort_by(f64::total_cmp);
    Some((percentile(&diffs, 2.5), percentile(&diffs, 97.5)))
}

/// Interval of the change of a latency percentile `p` (0..=100), in ms: numpy's linear
/// interpolation, as everywhere in llmbench.
pub(crate) fn percentile_ci(base: &[f64], new: &[f64], p: f64) -> Option<(f64, f64)> {
    let stat = |v: &mut [f64]| {
        v.sort_by(f64::total_cmp);
        Some(percentile(v, p))
    };
    bootstrap_diff(base, new, stat, stat)
}

/// One side of a throughput comparison: the scenario's figure (per second of its measured
/// window) and, per succeeded request, `(work, e2e_ms)`: the work is the request's output
/// tokens for tokens/s and 1 for requests/s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Throughput<'a> {
    /// The figure as measured: work of the succeeded requests / measured window (s).
    pub figure: f64,
    /// Per request: (work, end-to-end latency in ms).
    pub requests: &'a [(f64, f64)],
}

/// `Σ work / Σ e2e`: the figure per request in flight.
fn per_request_in_flight(r: &[(f64, f64)]) -> Option<f64> {
    let (w, e) = r
        .iter()
        .fold((0.0, 0.0), |(w, e), (wi, ei)| (w + wi, e + ei));
    (w > 0.0 && e > 0.0).then(|| w / e)
}

impl Throughput<'_> {
    /// The figure recomputed from a resample `v`: by Little's law the window holds, on
    /// average, `L = Σ e2e / window` requests in flight, so `figure = L · Σ work / Σ e2e`
    /// exactly. The resample keeps `L` at the run's value (a closed loop holds its
    /// concurrency) and recomputes `Σ work / Σ e2e`: slower or shorter requests move the
    /// figure as they would at the same load. `own` is the run's `Σ work / Σ e2e`.
    fn resampled(&self, own: f64, v: &[(f64, f64)]) -> Option<f64> {
        Some(self.figure * per_request_in_flight(v)? / own)
    }

    /// The run's `Σ work / Σ e2e`, when its figure can be recomputed at all.
    fn own(&self) -> Option<f64> {
        if !(self.figure > 0.0 && self.figure.is_finite()) {
            return None;
        }
        per_request_in_flight(self.requests)
    }
}

/// Interval of the change of a throughput figure (tokens/s or requests/s), in its unit.
/// `None` when a side has no requests, no work, or a figure of 0.
pub(crate) fn throughput_ci(base: Throughput<'_>, new: Throughput<'_>) -> Option<(f64, f64)> {
    let (own_base, own_new) = (base.own()?, new.own()?);
    bootstrap_diff(
        base.requests,
        new.requests,
        |v| base.resampled(own_base, v),
        |v| new.resampled(own_new, v),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interval_covers_the_true_shift_and_is_repeatable() {
        let a: Vec<f64> = (0..200).map(|i| 50.0 + (i % 10) as f64).collect();
        let b: Vec<f64> = a.iter().map(|x| x + 20.0).collect();
        let (lo, hi) = percentile_ci(&a, &b, 50.0).unwrap();
        assert!(
            lo <= 20.0 && hi >= 20.0 && lo > 15.0 && hi < 25.0,
            "{lo} {hi}"
        );
        let (lo, hi) = percentile_ci(&a, &a, 50.0).unwrap();
        assert!(lo <= 0.0 && hi >= 0.0, "{lo} {hi}");
        assert_eq!(percentile_ci(&a, &b, 95.0), percentile_ci(&a, &b, 95.0));
        assert_eq!(percentile_ci(&[], &a, 50.0), None);
    }

    /// A closed-loop run drawn from known distributions: `n` requests with output lengths
    /// uniform on 50..150 tokens and latencies uniform on `e2e_ms · (0.5..1.5)`, at
    /// `concurrency` in flight throughout, so its output tokens/s is `concurrency · Σ tokens /
    /// Σ e2e` and its true (expected) value `concurrency · 100 / e2e_ms · 1000`.
    fn closed_run(
        rng: &mut SplitMix,
        n: usize,
        concurrency: f64,
        e2e_ms: f64,
    ) -> (f64, Vec<(f64, f64)>) {
        let mut u = || rng.next_u64() as f64 / u64::MAX as f64;
        let reqs: Vec<(f64, f64)> = (0..n)
            .map(|_| (50.0 + (101.0 * u()).floor(), e2e_ms * (0.5 + u())))
            .collect();
        let (w, e): (f64, f64) = reqs.iter().fold((0.0, 0.0), |(w, e), r| (w + r.0, e + r.1));
        (concurrency * w / (e / 1000.0), reqs)
    }

    #[test]
    fn throughput_interval_covers_the_true_change_in_tokens_per_s() {
        // Base: 8 in flight, 1000 ms each (about 800 tok/s). New: 4 in flight, 735 ms each
        // (about 544 tok/s): each request is faster (136 against 100 tok/s per request) but
        // the scenario's throughput falls by 32 %. Truth: 4·100/0.735 − 8·100/1.0.
        let truth = 4.0 * 100.0 / 0.735 - 8.0 * 100.0;
        let mut rng = SplitMix(7);
        let (mut covered, mut below_zero) = (0, 0);
        let runs = 100;
        for _ in 0..runs {
            let (fb, rb) = closed_run(&mut rng, 80, 8.0, 1000.0);
            let (fnew, rn) = closed_run(&mut rng, 80, 4.0, 735.0);
            let (lo, hi) = throughput_ci(
                Throughput {
                    figure: fb,
                    requests: &rb,
                },
                Throughput {
                    figure: fnew,
                    requests: &rn,
                },
            )
            .unwrap();
            assert!(
                lo <= fnew - fb && fnew - fb <= hi,
                "{lo} {} {hi}",
                fnew - fb
            );
            covered += (lo <= truth && truth <= hi) as usize;
            below_zero += (hi < 0.0) as usize;
        }
        // A 95 % interval covers the truth in about 95 of 100 runs (binomial: 88 or more
        // with probability above 99.9 %).
        assert!(
            covered >= 88,
            "covered the true change in {covered} of {runs} runs"
        );
        assert_eq!(below_zero, runs, "a 32 % fall is always seen as a fall");
    }

    #[test]
    fn throughput_interval_of_identical_runs_holds_zero() {
        let mut rng = SplitMix(11);
        let (mut held, runs) = (0, 100);
        for _ in 0..runs {
            let (fa, ra) = closed_run(&mut rng, 60, 4.0, 500.0);
            let (fb, rb) = closed_run(&mut rng, 60, 4.0, 500.0);
            let (lo, hi) = throughput_ci(
                Throughput {
                    figure: fa,
                    requests: &ra,
                },
                Throughput {
                    figure: fb,
                    requests: &rb,
                },
            )
            .unwrap();
            held += (lo <= 0.0 && 0.0 <= hi) as usize;
        }
        assert!(held >= 88, "held 0 in {held} of {runs} runs");
    }

    #[test]
    fn throughput_interval_needs_work_and_a_figure() {
        let r = [(10.0, 100.0), (12.0, 110.0)];
        let ok = Throughput {
            figure: 100.0,
            requests: &r,
        };
        assert!(throughput_ci(ok, ok).is_some());
        let none = Throughput {
            figure: 100.0,
            requests: &[],
        };
        assert_eq!(throughput_ci(ok, none), None);
        let zero = Throughput {
            figure: 0.0,
            requests: &r,
        };
        assert_eq!(throughput_ci(zero, ok), None);
        let idle = [(0.0, 100.0)];
        assert_eq!(
            throughput_ci(
                ok,
                Throughput {
                    figure: 1.0,
                    requests: &idle
                }
            ),
            None
        );
    }
}
