//! Capacity under SLO: the statistics and the search, pure (no I/O, no clock).
//!
//! **Verdict of one step.** Each target is a percentile `p_q` of a per-request latency (TTFT,
//! TPOT, E2E, queue) with a threshold. After every batch of finished requests, the
//! distribution-free 95 % confidence interval of the q-quantile is read off the order
//! statistics: with `n` values sorted, `x_(l) ≤ ξ_q ≤ x_(u)` where `l` is the largest rank with
//! `P(Bin(n, q) < l) ≤ 2.5 %` and `u` the smallest with `P(Bin(n, q) < u) ≥ 97.5 %` (each side
//! holds with at least 97.5 %; no assumption on the distribution). A failed request counts as
//! infinitely slow (it did not meet any latency target); a request with one token has no TPOT.
//! A target passes when its interval lies wholly on the allowed side of the threshold, fails
//! when it lies wholly on the other side, and is undecided otherwise (or when `n` is too small
//! for the interval to have that end: a p99 pass needs 368 values at least). The step passes
//! when every target passes, fails as soon as one fails, and is undecided when its budget ends
//! first. Looking after every batch is a sequential procedure: the 95 % holds per look, so the
//! error over a step's looks is larger; the search treats "undecided" as a failure, which
//! errs towards a lower capacity.
//!
//! **Search.** Bracket from the start load, doubling it until a step does not pass; then bisect
//! between the last pass and the first non-pass (concurrency: whole numbers, until they are
//! neighbours; rate: until the gap is within `precision` of the pass) or until the time budget
//! is spent. The answer is the last pass, with the first non-pass as the interval's other end.

use serde::{Deserialize, Serialize};

use crate::measure::metrics::Latency;
use crate::measure::record::{Outcome, Record};
use crate::measure::samples::Stat;
use crate::measure::slo::{Measure, Op, Target};

/// The two-sided confidence of each interval.
pub const CONFIDENCE: f64 = 0.95;

/// `P(Bin(n, q) ≤ k)` for k = 0..n, in log space so large `n` and tiny `1 − q` do not underflow.
fn binomial_cdf(n: usize, q: f64) -> Vec<f64> {
    let (lq, lp) = (q.ln(), (1.0 - q).ln());
    let mut logpmf = n as f64 * lp;
    let mut cdf = Vec::with_capacity(n + 1);
    let mut acc = 0.0;
    for k in 0..=n {
        acc += logpmf.exp();
        cdf.push(acc.min(1.0));
        if k < n {
            logpmf += ((n - k) as f64).ln() - ((k + 1) as f64).ln() + lq - lp;
        }
    }
    cdf
}

/// The 95 % interval of the q-quantile from sorted values: `(lower, upper)`, each `None` when
/// `n` is too small for that end to exist.
pub fn quantile_interval(sorted: &[f64], q: f64) -> (Option<f64>, Option<f64>) {
    let n = sorted.len();
    if n == 0 {
        return (None, None);
    }
    let alpha = (1.0 - CONFIDENCE) / 2.0;
    let cdf = binomial_cdf(n, q);
    // P(Bin < r) = cdf[r − 1] (0 for r = 0); ranks r are 1-based.
    let below = |r: usize| if r == 0 { 0.0 } else { cdf[r - 1] };
    let lower = (1..=n)
        .take_while(|&r| below(r) <= alpha)
        .last()
        .map(|r| sorted[r - 1]);
    let upper = (1..=n)
        .find(|&r| below(r) >= 1.0 - alpha)
        .map(|r| sorted[r - 1]);
    (lower, upper)
}

/// A target's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The interval lies wholly on the allowed side.
    Pass,
    /// The interval lies wholly on the other side.
    Fail,
    /// Neither (yet).
    Undecided,
}

/// One target of one step: its estimate and interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetCheck {
    /// The target as typed.
    pub target: String,
    /// Values it was judged on.
    pub n: u64,
    /// The sample percentile (the usual definition); null when a failure decides it.
    pub value: Option<f64>,
    /// Lower end of the 95 % interval (ms); null when there are too few values or it is a
    /// failure.
    pub lower: Option<f64>,
    /// Upper end (ms); null likewise.
    pub upper: Option<f64>,
    /// Verdict.
    pub verdict: Verdict,
}

/// The latency targets `capacity` can judge: a percentile of a per-request latency.
pub fn judgeable(t: &Target) -> Option<(Latency, f64)> {
    match &t.measure {
        Measure::Latency { metric, stat } if *metric != Latency::Itl => {
            let q = match stat {
                Stat::P50 => 0.5,
                Stat::P90 => 0.9,
                Stat::P95 => 0.95,
                Stat::P99 => 0.99,
                _ => return None,
            };
            Some((*metric, q))
        }
        _ => None,
    }
}

/// The values of one step, collected as its records finish.
#[derive(Debug, Clone, Default)]
pub struct StepValues {
    /// One list per target, in target order (failures as +∞).
    values: Vec<Vec<f64>>,
    /// When each value's request was sent (ms, the records' clock), alongside `values`.
    sent_ms: Vec<Vec<f64>>,
    /// Measured requests finished.
    pub finished: u64,
}

impl StepValues {
    /// Room for `targets`.
    pub fn new(targets: usize) -> Self {
        Self {
            values: vec![Vec::new(); targets],
            sent_ms: vec![Vec::new(); targets],
            finished: 0,
        }
    }

    /// The values of requests sent inside `[start_ms, end_ms]` (a steady-state window).
    pub fn within(&self, start_ms: f64, end_ms: f64) -> StepValues {
        let mut out = StepValues::new(self.values.len());
        for (k, (v, t)) in self.values.iter().zip(&self.sent_ms).enumerate() {
            for (x, s) in v.iter().zip(t) {
                if *s >= start_ms && *s <= end_ms {
                    out.values[k].push(*x);
                    out.sent_ms[k].push(*s);
                }
            }
        }
        out.finished = out.values.iter().map(|v| v.len() as u64).max().unwrap_or(0);
        out
    }

    /// Adds one measured record (retried attempts are not requests).
    pub fn add(&mut self, targets: &[Target], r: &Record) {
        if r.retried || r.warmup || r.outcome() == Outcome::Cancelled {
            return;
        }
        self.finished += 1;
        let ok = r.outcome() == Outcome::Succeeded;
        let sent = r.sent_at_ms.unwrap_or(f64::NAN);
        for ((t, v), ts) in targets
            .iter()
            .zip(self.values.iter_mut())
            .zip(self.sent_ms.iter_mut())
        {
            let before = v.len();
            let Some((metric, _)) = judgeable(t) else {
                continue;
            };
            let x = match metric {
                Latency::Ttft => r.ttft_ms(),
                Latency::Tpot => r.tpot_ms(),
                Latency::E2e => r.e2e_ms(),
                Latency::Queue => r.queue_ms(),
                Latency::Itl => None,
            };
            match (ok, x) {
                (true, Some(x)) => v.push(x),
                // A request with one token has no TPOT: not held to it.
                (true, None) if metric == Latency::Tpot => {}
                _ => v.push(f64::INFINITY),
            }
            if v.len() > before {
                ts.push(sent);
            }
        }
    }

    /// Each target's check now.
    pub fn check(&self, targets: &[Target]) -> Vec<TargetCheck> {
        targets
            .iter()
            .zip(&self.values)
            .filter_map(|(t, v)| {
                let (_, q) = judgeable(t)?;
                let mut s = v.clone();
                s.sort_by(f64::total_cmp);
                let (lo, hi) = quantile_interval(&s, q);
                let value = (!s.is_empty())
                    .then(|| crate::measure::samples::percentile(&s, q * 100.0))
                    .filter(|x| x.is_finite());
                let ok = |x: f64| match t.op {
                    Op::Lt => x < t.threshold,
                    Op::Le => x <= t.threshold,
                    Op::Gt => x > t.threshold,
                    Op::Ge => x >= t.threshold,
                };
                let upper_side = matches!(t.op, Op::Lt | Op::Le);
                // The whole interval on one side: the end nearer the threshold decides.
                let (near, far) = if upper_side { (hi, lo) } else { (lo, hi) };
                let verdict = match (near, far) {
                    (Some(x), _) if ok(x) => Verdict::Pass,
                    (_, Some(x)) if !ok(x) => Verdict::Fail,
                    _ => Verdict::Undecided,
                };
                let finite = |x: Option<f64>| x.filter(|x| x.is_finite());
                Some(TargetCheck {
                    target: t.spec.clone(),
                    n: s.len() as u64,
                    value,
                    lower: finite(lo),
                    upper: finite(hi),
                    verdict,
                })
            })
            .collect()
    }
}

/// A step's verdict from its targets' checks: every target passes, one fails, or undecided.
pub fn step_verdict(checks: &[TargetCheck]) -> Verdict {
    if checks.iter().any(|c| c.verdict == Verdict::Fail) {
        Verdict::Fail
    } else if !checks.is_empty() && checks.iter().all(|c| c.verdict == Verdict::Pass) {
        Verdict::Pass
    } else {
        Verdict::Undecided
    }
}

/// `run --until`: how narrow the interval of one statistic got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UntilResult {
    /// As typed (`ttft_p99±5%`).
    pub until: String,
    /// Values judged.
    pub n: u64,
    /// The sample percentile.
    pub value: Option<f64>,
    /// Lower end of its 95 % interval.
    pub lower: Option<f64>,
    /// Upper end.
    pub upper: Option<f64>,
    /// True when both ends are within ± the share of the value (at the stop when it stopped,
    /// else over every record of the scenario).
    pub reached: bool,
    /// True when the scenario stopped sending because the interval was narrow enough (false:
    /// `--requests`/`--duration` came first).
    #[serde(default)]
    pub stopped: bool,
}

/// Whether a statistic's interval lies within `± rel` of its value.
pub fn until_check(spec: &str, c: &TargetCheck, rel: f64) -> UntilResult {
    let reached = match (c.value, c.lower, c.upper) {
        (Some(v), Some(lo), Some(hi)) => v > 0.0 && lo >= v * (1.0 - rel) && hi <= v * (1.0 + rel),
        _ => false,
    };
    UntilResult {
        until: spec.to_string(),
        n: c.n,
        value: c.value,
        lower: c.lower,
        upper: c.upper,
        reached,
        stopped: false,
    }
}

/// What the search varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum By {
    /// Requests in flight (closed loop), whole numbers.
    Concurrency,
    /// Requests per second (open loop).
    Rate,
}

impl By {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            By::Concurrency => "concurrency",
            By::Rate => "rate",
        }
    }
}

/// The bracket-then-bisect search.
#[derive(Debug, Clone)]
pub struct Search {
    by: By,
    start: f64,
    precision: f64,
    /// The highest load that passed.
    pub pass: Option<f64>,
    /// The lowest load that did not pass.
    pub fail: Option<f64>,
}

/// Lowest rate the search goes down to (requests per second).
const MIN_RATE: f64 = 0.01;

impl Search {
    /// A search from `start`; rate bisection stops when the gap is within `precision` (a
    /// share) of the pass.
    pub fn new(by: By, start: f64, precision: f64) -> Self {
        Self {
            by,
            start,
            precision,
            pass: None,
            fail: None,
        }
    }

    /// Takes a step's verdict (undecided counts as not passing).
    pub fn record(&mut self, load: f64, v: Verdict) {
        if v == Verdict::Pass {
            self.pass = Some(self.pass.map_or(load, |p| p.max(load)));
        } else {
            self.fail = Some(self.fail.map_or(load, |f| f.min(load)));
        }
    }

    /// The next load to try; `None` when the answer is as narrow as asked.
    pub fn next(&self) -> Option<f64> {
        let whole = self.by == By::Concurrency;
        match (self.pass, self.fail) {
            (None, None) => Some(self.start),
            (Some(p), None) => Some(p * 2.0),
            (None, Some(f)) => {
                // Even the start failed: go down.
                let down = if whole { (f / 2.0).floor() } else { f / 2.0 };
                let floor = if whole { 1.0 } else { MIN_RATE };
                (down >= floor && down < f).then_some(down)
            }
            (Some(p), Some(f)) => {
                if whole {
                    let mid = ((p + f) / 2.0).floor();
                    (mid > p && mid < f).then_some(mid)
                } else {
                    (f - p > self.precision * p).then_some((p + f) / 2.0)
                }
            }
        }
    }
}

/// One step of the search, as written in the result file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityStep {
    /// The load (concurrency, or requests per second).
    pub load: f64,
    /// The scenario holding its full results.
    pub scenario: String,
    /// Measured requests finished.
    pub requests: u64,
    /// Pass, fail or undecided.
    pub verdict: Verdict,
    /// True when the verdict came before the step's budget ran out.
    pub stopped_early: bool,
    /// Seconds the step took.
    pub duration_s: f64,
    /// Each target's estimate and interval at the end of the step.
    pub targets: Vec<TargetCheck>,
    /// The steady-state window `[start_ms, end_ms]` the verdict was judged on, when the step
    /// ran to its budget and a ramp or drain was detected; null: every record was used.
    #[serde(default)]
    pub window_ms: Option<(f64, f64)>,
}

/// The answer of `llmbench capacity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityResult {
    /// `concurrency` or `rate`.
    pub by: By,
    /// The targets, as typed.
    pub slo: Vec<String>,
    /// Confidence of each target's interval.
    pub confidence: f64,
    /// The highest load that passed (the capacity); null when none did.
    pub capacity: Option<f64>,
    /// The lowest load that did not pass: the capacity lies between the two.
    pub first_fail: Option<f64>,
    /// Why the search ended: `converged`, `max_time`, `no_pass`, `cancelled`.
    pub ended: String,
    /// Measured requests over every step.
    pub requests: u64,
    /// Seconds over every step.
    pub duration_s: f64,
    /// The steps, in the order run.
    pub steps: Vec<CapacityStep>,
    /// Goodput of the capacity step (`measure::capacity_goodput`); null when no load passed
    /// or the step kept no per-request figures.
    #[serde(default)]
    pub goodput: Option<crate::measure::capacity_goodput::CapacityGoodput>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_statistic_intervals_hold_their_coverage() {
        // The median of 1..=100: the textbook ranks are 40 and 61 (P(Bin(100, .5) < 40)
        // = 1.76 %, < 41 = 2.84 %; P(< 61) = 98.24 %).
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile_interval(&v, 0.5), (Some(40.0), Some(61.0)));
        // A p99 upper end needs 368 values (0.99^367 = 2.5007 % > 2.5 % ≥ 0.99^368).
        let v: Vec<f64> = (1..=367).map(f64::from).collect();
        assert_eq!(quantile_interval(&v, 0.99).1, None);
        let v: Vec<f64> = (1..=368).map(f64::from).collect();
        assert_eq!(quantile_interval(&v, 0.99).1, Some(368.0));
        // A lower end for p99 exists from one value on (0.01^1 ≤ 2.5 %).
        assert_eq!(quantile_interval(&[7.0], 0.99).0, Some(7.0));
        // Coverage, checked by simulation: uniform values, true p90 = 0.9.
        let mut state = 1u64;
        let mut covered = 0;
        for _ in 0..2000 {
            let mut s: Vec<f64> = (0..100)
                .map(|_| {
                    state = crate::rng::splitmix64(state);
                    (state >> 11) as f64 / (1u64 << 53) as f64
                })
                .collect();
            s.sort_by(f64::total_cmp);
            let (lo, hi) = quantile_interval(&s, 0.9);
            covered += (lo.unwrap() <= 0.9 && 0.9 <= hi.unwrap()) as u32;
        }
        assert!(covered >= 1900, "coverage {covered}/2000");
    }

    fn rec(ttft: f64, ok: bool) -> Record {
        Record {
            outcome: Some(if ok {
                Outcome::Succeeded
            } else {
                Outcome::Timeout
            }),
            sent_at_ms: Some(0.0),
            first_token_at_ms: ok.then_some(ttft),
            done_at_ms: ttft + 10.0,
            ..Default::default()
        }
    }

    #[test]
    fn a_step_is_decided_when_every_interval_is_on_one_side() {
        let t = crate::measure::slo::parse("ttft_p90<100ms").unwrap();
        let mut s = StepValues::new(t.len());
        for _ in 0..20 {
            s.add(&t, &rec(50.0, true));
        }
        // 20 values: no upper end for p90 yet (0.9^20 = 12 % > 2.5 %).
        assert_eq!(step_verdict(&s.check(&t)), Verdict::Undecided);
        for _ in 0..20 {
            s.add(&t, &rec(50.0, true));
        }
        assert_eq!(step_verdict(&s.check(&t)), Verdict::Pass);
        // Far above the threshold: one value's lower end is enough to fail... for p50, two.
        let t = crate::measure::slo::parse("ttft_p50<100ms").unwrap();
        let mut s = StepValues::new(t.len());
        s.add(&t, &rec(500.0, true));
        assert_eq!(step_verdict(&s.check(&t)), Verdict::Undecided);
        for _ in 0..5 {
            s.add(&t, &rec(500.0, true));
        }
        assert_eq!(step_verdict(&s.check(&t)), Verdict::Fail);
        // Failures count as infinitely slow.
        let mut s = StepValues::new(t.len());
        for _ in 0..6 {
            s.add(&t, &rec(0.0, false));
        }
        let c = s.check(&t);
        assert_eq!(c[0].verdict, Verdict::Fail);
        assert_eq!((c[0].value, c[0].lower), (None, None));
    }

    #[test]
    fn a_window_keeps_the_requests_sent_inside_it() {
        let t = crate::measure::slo::parse("ttft_p50<100ms").unwrap();
        let mut s = StepValues::new(t.len());
        // Ramp (sent before 100 ms) fast, plateau slow.
        for i in 0..30 {
            let mut r = rec(if i < 10 { 10.0 } else { 500.0 }, true);
            r.sent_at_ms = Some(i as f64 * 10.0);
            r.first_token_at_ms = Some(r.sent_at_ms.unwrap() + if i < 10 { 10.0 } else { 500.0 });
            s.add(&t, &r);
        }
        let w = s.within(100.0, 1000.0);
        assert_eq!(w.finished, 20);
        let c = w.check(&t);
        assert_eq!((c[0].n, c[0].value), (20, Some(500.0)));
        assert_eq!(c[0].verdict, Verdict::Fail);
    }

    #[test]
    fn until_needs_both_ends_within_the_share() {
        let c = |v, lo, hi| TargetCheck {
            target: "ttft_p50<0".into(),
            n: 100,
            value: Some(v),
            lower: lo,
            upper: hi,
            verdict: Verdict::Undecided,
        };
        assert!(until_check("x", &c(100.0, Some(96.0), Some(104.0)), 0.05).reached);
        assert!(!until_check("x", &c(100.0, Some(94.0), Some(101.0)), 0.05).reached);
        assert!(!until_check("x", &c(100.0, Some(96.0), None), 0.05).reached);
    }

    #[test]
    fn the_search_brackets_then_bisects() {
        // Capacity 12: loads above fail.
        let mut s = Search::new(By::Concurrency, 1.0, 0.05);
        let mut tried = Vec::new();
        while let Some(c) = s.next() {
            tried.push(c);
            s.record(
                c,
                if c <= 12.0 {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                },
            );
        }
        assert_eq!(tried, vec![1.0, 2.0, 4.0, 8.0, 16.0, 12.0, 14.0, 13.0]);
        assert_eq!((s.pass, s.fail), (Some(12.0), Some(13.0)));
        // Rate: within 5 % of 37.5.
        let mut s = Search::new(By::Rate, 1.0, 0.05);
        while let Some(r) = s.next() {
            s.record(
                r,
                if r <= 37.5 {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                },
            );
        }
        let (p, f) = (s.pass.unwrap(), s.fail.unwrap());
        assert!(p <= 37.5 && f > 37.5 && f - p <= 0.05 * p, "{p} {f}");
        // Nothing passes: down to 1 and stop.
        let mut s = Search::new(By::Concurrency, 4.0, 0.05);
        let mut n = 0;
        while let Some(c) = s.next() {
            s.record(c, Verdict::Fail);
            n += 1;
        }
        assert_eq!((n, s.pass, s.fail), (3, None, Some(1.0)));
    }
}
