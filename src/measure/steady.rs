//! The steady-state window of a scenario: ramp-up and drain found from the requests' own
//! send and finish times, and throughput and latency over the window between them. Pure.
//!
//! In flight at time t = requests sent at or before t and not yet finished. The plateau `P`
//! is the time-weighted median of that count over the whole run (first send to last finish);
//! the window runs from the first moment the count reaches `h = max(1, ⌈0.9 · P⌉)` (within
//! 10 % of the plateau) to the last moment it falls below `h`. An open loop's window also ends
//! at the last send: after it, no arrival holds the load up. A ramp or drain is "detected"
//! when the window leaves out more than 1 % of the run; only then is a steady state reported.
//!
//! Over the window `[a, b]`:
//! - output tokens: a succeeded request's first token at its first-token time, the others
//!   spread evenly over (first token, finish]; the share inside `[a, b]` counts;
//! - requests/s: succeeded requests finished inside `[a, b]`, over `b − a`;
//! - TTFT and TPOT p50/p99 (the usual percentile definition) of the succeeded requests sent
//!   inside `[a, b]`.

use serde::{Deserialize, Serialize};

use crate::measure::record::{Outcome, Record};
use crate::measure::samples::percentile;

/// Requests whose times a scenario keeps for the window; beyond, no steady state is computed
/// (memory stays bounded: 64 bytes a request, 12.8 MB at most, freed when a run goes past it).
pub const MAX_TIMINGS: usize = 200_000;

/// Share of the run the window must leave out for a ramp or drain to count.
const DETECT_SHARE: f64 = 0.01;

/// Fewest succeeded requests sent inside the window for its figures to be reported.
const MIN_REQUESTS: usize = 10;

/// One measured request's times (ms since the run's epoch).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Timing {
    /// Sent.
    pub sent_ms: f64,
    /// Finished (any outcome).
    pub done_ms: f64,
    /// First token, for succeeded requests that had one.
    pub first_ms: Option<f64>,
    /// Succeeded.
    pub ok: bool,
    /// Output tokens (succeeded requests).
    pub out_tokens: u64,
    /// Time per output token.
    pub tpot_ms: Option<f64>,
}

impl Timing {
    /// A record's times; `None` for a request never sent.
    pub fn of(r: &Record) -> Option<Timing> {
        let ok = r.outcome() == Outcome::Succeeded;
        Some(Timing {
            sent_ms: r.sent_at_ms?,
            done_ms: r.done_at_ms,
            first_ms: if ok { r.first_token_at_ms } else { None },
            ok,
            out_tokens: if ok { r.output_tokens } else { 0 },
            tpot_ms: if ok { r.tpot_ms() } else { None },
        })
    }
}

/// p50 and p99 of one latency over the window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pcts {
    /// Median (ms).
    pub p50: f64,
    /// 99th percentile (ms).
    pub p99: f64,
}

/// Throughput and latency over the steady-state window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SteadyState {
    /// Window start (ms since the run's epoch, as the records' times).
    pub start_ms: f64,
    /// Window end.
    pub end_ms: f64,
    /// Left out at the start: first send to window start (s).
    pub ramp_up_s: f64,
    /// Left out at the end: window end to last finish (s).
    pub drain_s: f64,
    /// Requests in flight on the plateau (time-weighted median).
    pub plateau_in_flight: f64,
    /// Succeeded requests sent inside the window (the latency figures' count).
    pub requests: u64,
    /// Output tokens per second inside the window.
    pub output_tokens_per_s: f64,
    /// Succeeded requests finished per second inside the window.
    pub requests_per_s: f64,
    /// TTFT of requests sent inside the window.
    pub ttft_ms: Option<Pcts>,
    /// TPOT of requests sent inside the window.
    pub tpot_ms: Option<Pcts>,
}

fn pcts(mut v: Vec<f64>) -> Option<Pcts> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(Pcts {
        p50: percentile(&v, 50.0),
        p99: percentile(&v, 99.0),
    })
}

/// The in-flight count as steps: `(time, count from this time on)`, in time order.
fn in_flight(t: &[Timing]) -> Vec<(f64, i64)> {
    let mut ev: Vec<(f64, i64)> = t
        .iter()
        .flat_map(|x| [(x.sent_ms, 1), (x.done_ms.max(x.sent_ms), -1)])
        .collect();
    // A finish before a send at the same instant: a closed loop's worker sends its next
    // request right after the last one ended.
    ev.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut level = 0;
    let mut steps: Vec<(f64, i64)> = Vec::with_capacity(ev.len());
    for (at, d) in ev {
        level += d;
        match steps.last_mut() {
            Some(last) if last.0 == at => last.1 = level,
            _ => steps.push((at, level)),
        }
    }
    steps
}

/// Time-weighted median of the step function over its span.
fn plateau(steps: &[(f64, i64)]) -> f64 {
    let mut spans: Vec<(i64, f64)> = steps
        .windows(2)
        .map(|w| (w[0].1, w[1].0 - w[0].0))
        .filter(|s| s.1 > 0.0)
        .collect();
    let total: f64 = spans.iter().map(|s| s.1).sum();
    if total <= 0.0 {
        return 0.0;
    }
    spans.sort_by_key(|s| s.0);
    let mut acc = 0.0;
    for (level, dt) in spans {
        acc += dt;
        if acc >= total / 2.0 {
            return level as f64;
        }
    }
    0.0
}

/// The end of the ramp-up seen so far in the requests finished up to now (a step still
/// running): the first moment the in-flight count reached 90 % of its plateau, when that
/// leaves out more than 1 % of the time so far; `None` otherwise. Requests still in flight are
/// missing, so the count reads low near the present: it is read only up to the last finish
/// less the longest request seen (a request sent before that and still running would be the
/// longest yet).
pub fn ramp_end(t: &[Timing]) -> Option<f64> {
    let first_sent = t.iter().map(|x| x.sent_ms).min_by(f64::total_cmp)?;
    let last_done = t.iter().map(|x| x.done_ms).max_by(f64::total_cmp)?;
    let longest = t
        .iter()
        .map(|x| x.done_ms - x.sent_ms)
        .max_by(f64::total_cmp)?;
    let cut = last_done - longest;
    let mut steps = in_flight(t);
    steps.retain(|s| s.0 <= cut);
    if steps.len() < 2 {
        return None;
    }
    let h = ((0.9 * plateau(&steps)).ceil() as i64).max(1);
    let start = steps.iter().find(|s| s.1 >= h)?.0;
    (start - first_sent > DETECT_SHARE * (cut - first_sent)).then_some(start)
}

/// The steady-state window of a scenario's measured requests, when a ramp-up or drain was
/// detected; `None` otherwise (or with too few requests to say).
pub fn analyze(t: &[Timing], open_loop: bool) -> Option<SteadyState> {
    let first_sent = t.iter().map(|x| x.sent_ms).min_by(f64::total_cmp)?;
    let last_sent = t.iter().map(|x| x.sent_ms).max_by(f64::total_cmp)?;
    let last_done = t.iter().map(|x| x.done_ms).max_by(f64::total_cmp)?;
    let run = last_done - first_sent;
    if run <= 0.0 {
        return None;
    }
    let steps = in_flight(t);
    let p = plateau(&steps);
    let h = ((0.9 * p).ceil() as i64).max(1);
    let start = steps.iter().find(|s| s.1 >= h)?.0;
    // The last step that takes the count from ≥ h to below it.
    let mut end = steps
        .windows(2)
        .filter(|w| w[0].1 >= h && w[1].1 < h)
        .map(|w| w[1].0)
        .next_back()
        .unwrap_or(last_done);
    if open_loop {
        end = end.min(last_sent);
    }
    let (a, b) = (start, end);
    if b <= a || (a - first_sent) + (last_done - b) <= DETECT_SHARE * run {
        return None;
    }
    let inside = |x: f64| x >= a && x <= b;
    let mut tokens = 0.0;
    let mut finished = 0u64;
    let (mut ttft, mut tpot) = (Vec::new(), Vec::new());
    for x in t.iter().filter(|x| x.ok) {
        finished += inside(x.done_ms) as u64;
        if let Some(f) = x.first_ms {
            tokens += inside(f) as u64 as f64;
            let rest = x.out_tokens.saturating_sub(1) as f64;
            if x.done_ms > f {
                let overlap = (x.done_ms.min(b) - f.max(a)).max(0.0);
                tokens += rest * overlap / (x.done_ms - f);
            } else if inside(x.done_ms) {
                tokens += rest;
            }
        }
        if inside(x.sent_ms) {
            if let Some(f) = x.first_ms {
                ttft.push(f - x.sent_ms);
            }
            tpot.extend(x.tpot_ms);
        }
    }
    if ttft.len() < MIN_REQUESTS {
        return None;
    }
    let secs = (b - a) / 1000.0;
    Some(SteadyState {
        start_ms: a,
        end_ms: b,
        ramp_up_s: (a - first_sent) / 1000.0,
        drain_s: (last_done - b) / 1000.0,
        plateau_in_flight: p,
        requests: ttft.len() as u64,
        output_tokens_per_s: tokens / secs,
        requests_per_s: finished as f64 / secs,
        ttft_ms: pcts(ttft),
        tpot_ms: pcts(tpot),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ramp_is_seen_while_the_step_runs() {
        // 8 workers starting 50 ms apart, requests of 100 ms: the count reaches 8 (≥ 0.9 · 8)
        // when the last worker starts, at 350 ms; only the first 60 finished requests known.
        let mut t = closed(8, 10, 100.0, 10.0, 10, 50.0);
        t.sort_by(|a, b| a.done_ms.total_cmp(&b.done_ms));
        t.truncate(60);
        assert_eq!(ramp_end(&t), Some(350.0));
        // All at once: no ramp.
        let t = closed(8, 10, 100.0, 10.0, 10, 0.0);
        assert_eq!(ramp_end(&t), None);
    }

    /// A closed loop of `c` workers, each request `dur` ms long with `n` tokens, the first at
    /// `ttft`; worker w starts at `w · stagger` (a ramp) and sends `per` requests.
    fn closed(c: usize, per: usize, dur: f64, ttft: f64, n: u64, stagger: f64) -> Vec<Timing> {
        let mut v = Vec::new();
        for w in 0..c {
            let mut at = w as f64 * stagger;
            for _ in 0..per {
                v.push(Timing {
                    sent_ms: at,
                    done_ms: at + dur,
                    first_ms: Some(at + ttft),
                    ok: true,
                    out_tokens: n,
                    tpot_ms: Some((dur - ttft) / (n - 1) as f64),
                });
                at += dur;
            }
        }
        v
    }

    #[test]
    fn a_staggered_closed_loop_reports_the_plateau_throughput() {
        // 10 workers, started 100 ms apart, 50 requests of 200 ms and 20 tokens each.
        let t = closed(10, 50, 200.0, 10.0, 20, 100.0);
        let s = analyze(&t, false).unwrap();
        assert_eq!(s.plateau_in_flight, 10.0);
        // h = 9: the ninth worker starts at 800 ms; the second one to finish leaves 8.
        assert_eq!(s.start_ms, 800.0);
        assert_eq!(s.end_ms, 10_100.0);
        assert!((s.ramp_up_s - 0.8).abs() < 1e-9 && (s.drain_s - 0.8).abs() < 1e-9);
        // Truth on the plateau: between 9 and 10 workers of 20 tokens per 200 ms (9.5 mean).
        let truth = 10.0 * 20.0 / 0.2;
        assert!(
            (s.output_tokens_per_s - truth).abs() < 0.02 * truth,
            "{}",
            s.output_tokens_per_s
        );
        assert!(
            (s.requests_per_s - 50.0).abs() < 1.0,
            "{}",
            s.requests_per_s
        );
        let p = s.ttft_ms.unwrap();
        assert_eq!((p.p50, p.p99), (10.0, 10.0));
    }

    #[test]
    fn no_ramp_no_steady_state() {
        // All workers start together and end together: nothing to leave out.
        let t = closed(4, 30, 100.0, 5.0, 10, 0.0);
        assert_eq!(analyze(&t, false), None);
        assert_eq!(analyze(&[], false), None);
    }

    #[test]
    fn an_open_loop_window_ends_at_the_last_send() {
        // One request every 10 ms, each 100 ms long: in flight climbs to 10 over 100 ms.
        let t: Vec<Timing> = (0..500)
            .map(|i| {
                let at = i as f64 * 10.0;
                Timing {
                    sent_ms: at,
                    done_ms: at + 100.0,
                    first_ms: Some(at + 20.0),
                    ok: true,
                    out_tokens: 5,
                    tpot_ms: Some(20.0),
                }
            })
            .collect();
        let s = analyze(&t, true).unwrap();
        assert_eq!(s.plateau_in_flight, 10.0);
        assert_eq!(s.start_ms, 80.0);
        assert_eq!(s.end_ms, 4990.0);
        assert!(
            (s.requests_per_s - 100.0).abs() < 1.0,
            "{}",
            s.requests_per_s
        );
        assert!((s.output_tokens_per_s - 500.0).abs() < 5.0);
    }
}
