//! The live view of a running phase on a terminal: requests in flight, the current (windowed)
//! token and request rates, recent TTFT and ITL percentiles, errors with the latest message,
//! and how long a timed run has left. Kept only while the progress bar is shown.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::measure::record::{Outcome, Record};

/// Seconds the current rates are taken over.
const WINDOW: Duration = Duration::from_secs(5);
/// Recent values the live percentiles are taken over.
const RECENT: usize = 512;

/// Requests started and not yet finished, counted by the senders.
#[derive(Clone, Default)]
pub(crate) struct InFlight(Arc<AtomicU64>);

impl InFlight {
    /// A request starts; the guard ends it when dropped (however the request ends).
    pub fn start(&self) -> InFlightGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(self.0.clone())
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Ends one request in flight when dropped.
pub(crate) struct InFlightGuard(Arc<AtomicU64>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the live view keeps.
pub(crate) struct Live {
    pub in_flight: InFlight,
    started: Instant,
    duration: Option<Duration>,
    tokens: u64,
    done: u64,
    errors: u64,
    last_error: Option<String>,
    /// (when, tokens so far, requests so far), oldest first, spanning about `WINDOW`.
    marks: VecDeque<(Instant, u64, u64)>,
    ttft: VecDeque<f64>,
    itl: VecDeque<f64>,
}

fn push(q: &mut VecDeque<f64>, v: f64) {
    if q.len() == RECENT {
        q.pop_front();
    }
    q.push_back(v);
}

/// The p50 and p99 of `q` (nearest rank).
fn p50_p99(q: &VecDeque<f64>) -> Option<(f64, f64)> {
    if q.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = q.iter().copied().collect();
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Some((at(0.5), at(0.99)))
}

impl Live {
    pub fn new(duration: Option<Duration>) -> Self {
        let now = Instant::now();
        Self {
            in_flight: InFlight::default(),
            started: now,
            duration,
            tokens: 0,
            done: 0,
            errors: 0,
            last_error: None,
            marks: VecDeque::from([(now, 0, 0)]),
            ttft: VecDeque::new(),
            itl: VecDeque::new(),
        }
    }

    /// Takes one final record (not a retried attempt).
    pub fn take(&mut self, rec: &Record) {
        self.done += 1;
        if rec.outcome() == Outcome::Succeeded {
            self.tokens += rec.output_tokens;
            if let (Some(first), Some(sent)) = (rec.first_token_at_ms, rec.sent_at_ms) {
                push(&mut self.ttft, first - sent);
            }
            for w in rec.chunk_times_ms.windows(2).rev().take(64) {
                push(&mut self.itl, w[1] - w[0]);
            }
        } else {
            self.errors += 1;
            if let Some(e) = &rec.error {
                let mut e: String = e.chars().take(60).collect();
                if e.len() < rec.error.as_ref().map_or(0, String::len) {
                    e.push('…');
                }
                self.last_error = Some(e);
            }
        }
    }

    /// The latest TTFTs (ms), oldest first.
    pub fn recent_ttft(&self) -> Vec<f64> {
        self.ttft.iter().copied().collect()
    }

    /// The status line, and a new window mark.
    pub fn line(&mut self) -> String {
        let now = Instant::now();
        self.marks.push_back((now, self.tokens, self.done));
        while self.marks.len() > 2 && now.duration_since(self.marks[1].0) >= WINDOW {
            self.marks.pop_front();
        }
        let (t0, tok0, done0) = self.marks[0];
        let secs = now.duration_since(t0).as_secs_f64().max(1e-3);
        let mut s = format!(
            "in flight {} | {:.1} tok/s {:.1} req/s",
            self.in_flight.get(),
            (self.tokens - tok0) as f64 / secs,
            (self.done - done0) as f64 / secs,
        );
        if let Some((p50, p99)) = p50_p99(&self.ttft) {
            s.push_str(&format!(" | TTFT p50 {p50:.0} p99 {p99:.0} ms"));
        }
        if let Some((p50, p99)) = p50_p99(&self.itl) {
            s.push_str(&format!(" | ITL p50 {p50:.1} p99 {p99:.1} ms"));
        }
        s.push_str(&format!(" | errors {}", self.errors));
        if let Some(e) = &self.last_error {
            s.push_str(&format!(" (last: {e})"));
        }
        if let Some(d) = self.duration {
            let left = d.saturating_sub(self.started.elapsed());
            s.push_str(&format!(" | ends in {}s", left.as_secs()));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ok: bool, first: f64, chunks: &[f64], err: Option<&str>) -> Record {
        Record {
            outcome: Some(if ok {
                Outcome::Succeeded
            } else {
                Outcome::HttpError
            }),
            sent_at_ms: Some(0.0),
            first_token_at_ms: Some(first),
            chunk_times_ms: chunks.to_vec(),
            output_tokens: chunks.len() as u64,
            error: err.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn the_line_shows_in_flight_recent_percentiles_and_the_latest_error() {
        let mut l = Live::new(Some(Duration::from_secs(60)));
        let _a = l.in_flight.start();
        {
            let _b = l.in_flight.start();
        }
        for i in 0..100 {
            let t = 50.0 + f64::from(i % 2);
            l.take(&rec(true, t, &[t, t + 10.0, t + 20.0], None));
        }
        l.take(&rec(
            false,
            0.0,
            &[],
            Some("HTTP 500: the server fell over"),
        ));
        let s = l.line();
        assert!(s.starts_with("in flight 1 |"), "{s}");
        assert!(s.contains("TTFT p50 50 p99 51 ms"), "{s}");
        assert!(s.contains("ITL p50 10.0 p99 10.0 ms"), "{s}");
        assert!(
            s.contains("errors 1 (last: HTTP 500: the server fell over)"),
            "{s}"
        );
        assert!(
            s.contains("ends in 59s") || s.contains("ends in 60s"),
            "{s}"
        );
    }
}
