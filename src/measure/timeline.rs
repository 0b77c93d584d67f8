//! A scenario over time: per time bin, requests sent, succeeded and failed, the mean number in
//! flight, output tokens and requests per second, and TTFT and ITL percentiles. Pure; memory
//! bounded by [`MAX_BINS`], whatever the run's length.
//!
//! Bins start [`FIRST_WIDTH_MS`] wide on the run's clock (bin k covers `[k·w, (k+1)·w)`); when
//! a scenario outgrows [`MAX_BINS`] bins, the width doubles and pairs of bins merge, so a run
//! of any length ends with at most [`MAX_BINS`] bins of 0.25 · 2^j s. Each event lands in the
//! bin of the instant it happened: a send at `sent_at`, an outcome at `done_at`, a TTFT at its
//! first token, an ITL gap at the chunk that ends it, a chunk's output tokens (the request's
//! tokens shared evenly among its chunks) at its arrival; a request is in flight from its send
//! to its end. Rates and the mean in flight divide by the bin's width: the first and last bins,
//! which the scenario covers only in part, read low (dividing by the part covered instead made
//! a last bin of a few milliseconds a spike of hundreds of requests per second).
//!
//! Percentiles per bin come from a log-linear histogram with 16 sub-buckets per doubling of the
//! value (from 1 µs): a percentile is read as its bucket's centre, within 3.2 % of the exact
//! value. They are for seeing change over time; the scenario's own percentiles stay exact.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::record::{Outcome, Record};

/// Most bins a scenario's timeline keeps.
pub const MAX_BINS: usize = 120;

/// Width of a bin before any doubling (ms).
pub const FIRST_WIDTH_MS: f64 = 250.0;

/// Sub-buckets per doubling of a latency.
const SUB: usize = 16;

/// Latency buckets kept (1 µs to 2^40 µs, about 12 days).
const MAX_BUCKET: usize = 1 + 40 * SUB;

/// Bucket of a latency in ms: 0 below 1 µs, else 1 + 16 per doubling of the value in µs plus
/// the top four bits of its mantissa (log-linear, exact bit arithmetic).
fn bucket(ms: f64) -> usize {
    let us = ms * 1000.0;
    // Below 1 µs, and NaN.
    if us.is_nan() || us < 1.0 {
        return 0;
    }
    let bits = us.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as usize - 1023;
    let sub = ((bits >> 48) & 0xf) as usize;
    (1 + exp * SUB + sub).min(MAX_BUCKET)
}

/// The centre of a bucket (ms).
fn centre(i: usize) -> f64 {
    if i == 0 {
        return 0.0005;
    }
    let (e, s) = ((i - 1) / SUB, (i - 1) % SUB);
    2f64.powi(e as i32) * (1.0 + (s as f64 + 0.5) / SUB as f64) / 1000.0
}

/// Counts per latency bucket; saved as its non-empty (bucket, count) pairs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(into = "Vec<(u16, u32)>", from = "Vec<(u16, u32)>")]
struct Hist(Vec<u32>);

impl Hist {
    fn add(&mut self, ms: f64) {
        let i = bucket(ms);
        if i >= self.0.len() {
            self.0.resize(i + 1, 0);
        }
        self.0[i] = self.0[i].saturating_add(1);
    }

    fn merge(&mut self, o: &Hist) {
        if o.0.len() > self.0.len() {
            self.0.resize(o.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&o.0) {
            *a = a.saturating_add(*b);
        }
    }

    /// The percentile `p` (0..=100), read at the rank `p/100 · (n − 1)` rounded.
    fn percentile(&self, p: f64) -> Option<f64> {
        let n: u64 = self.0.iter().map(|&c| u64::from(c)).sum();
        if n == 0 {
            return None;
        }
        let k = (p / 100.0 * (n - 1) as f64).round() as u64;
        let mut seen = 0u64;
        self.0.iter().enumerate().find_map(|(i, &c)| {
            seen += u64::from(c);
            (seen > k).then(|| centre(i))
        })
    }
}

impl From<Hist> for Vec<(u16, u32)> {
    fn from(h: Hist) -> Self {
        h.0.iter()
            .enumerate()
            .filter(|&(_, &c)| c > 0)
            .map(|(i, &c)| (i as u16, c))
            .collect()
    }
}

impl From<Vec<(u16, u32)>> for Hist {
    fn from(v: Vec<(u16, u32)>) -> Self {
        let mut h = Hist::default();
        for (i, c) in v {
            let i = usize::from(i).min(MAX_BUCKET);
            if i >= h.0.len() {
                h.0.resize(i + 1, 0);
            }
            h.0[i] = h.0[i].saturating_add(c);
        }
        h
    }
}

/// One bin's counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Bin {
    sent: u64,
    succeeded: u64,
    failed: u64,
    /// Request-milliseconds in flight inside the bin.
    busy_ms: f64,
    out_tokens: f64,
    ttft: Hist,
    itl: Hist,
}

impl Bin {
    fn merge(&mut self, o: &Bin) {
        self.sent += o.sent;
        self.succeeded += o.succeeded;
        self.failed += o.failed;
        self.busy_ms += o.busy_ms;
        self.out_tokens += o.out_tokens;
        self.ttft.merge(&o.ttft);
        self.itl.merge(&o.itl);
    }
}

/// The timeline as it is built, record by record (saved whole with a shard's statistics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    width_ms: f64,
    /// Index of `bins[0]` on the run's clock (bin k starts at k · width).
    origin: i64,
    bins: VecDeque<Bin>,
    /// First send and last end seen (ms).
    span: Option<(f64, f64)>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            width_ms: FIRST_WIDTH_MS,
            origin: 0,
            bins: VecDeque::new(),
            span: None,
        }
    }
}

impl Timeline {
    fn index(&self, t: f64) -> i64 {
        (t / self.width_ms).floor() as i64
    }

    /// Doubles the width, merging bins pairwise on the run's clock.
    fn coarsen(&mut self) {
        let origin = self.origin.div_euclid(2);
        let mut bins: VecDeque<Bin> = VecDeque::new();
        for (k, b) in std::mem::take(&mut self.bins).into_iter().enumerate() {
            let at = (self.origin + k as i64).div_euclid(2) - origin;
            let at = at as usize;
            if at >= bins.len() {
                bins.resize(at + 1, Bin::default());
            }
            bins[at].merge(&b);
        }
        self.width_ms *= 2.0;
        self.origin = origin;
        self.bins = bins;
    }

    /// Makes bins cover `[lo, hi]`, coarsening as needed.
    fn cover(&mut self, lo: f64, hi: f64) {
        loop {
            let (a, b) = (self.index(lo), self.index(hi));
            let (first, last) = if self.bins.is_empty() {
                (a, b)
            } else {
                (
                    a.min(self.origin),
                    b.max(self.origin + self.bins.len() as i64 - 1),
                )
            };
            if ((last - first + 1) as usize) <= MAX_BINS {
                if self.bins.is_empty() {
                    self.origin = first;
                }
                while self.origin > first {
                    self.bins.push_front(Bin::default());
                    self.origin -= 1;
                }
                let end = last - self.origin + 1;
                if self.bins.len() < end as usize {
                    self.bins.resize(end as usize, Bin::default());
                }
                return;
            }
            if self.bins.is_empty() {
                // No bins to merge yet: start wider.
                self.width_ms *= 2.0;
            } else {
                self.coarsen();
            }
        }
    }

    fn bin(&mut self, t: f64) -> &mut Bin {
        let k = (self.index(t) - self.origin).clamp(0, self.bins.len() as i64 - 1);
        &mut self.bins[k as usize]
    }

    /// Adds one measured request (warm-up and retried attempts are not given).
    pub fn add(&mut self, r: &Record) {
        let outcome = r.outcome();
        if outcome == Outcome::Cancelled {
            return;
        }
        let Some(sent) = r.sent_at_ms else {
            // Never sent (dropped): counted as failed when it was given up.
            self.cover(r.done_at_ms, r.done_at_ms);
            self.bin(r.done_at_ms).failed += 1;
            return;
        };
        let done = r.done_at_ms.max(sent);
        self.cover(sent, done);
        self.span = Some(match self.span {
            None => (sent, done),
            Some((a, b)) => (a.min(sent), b.max(done)),
        });
        self.bin(sent).sent += 1;
        // In flight from send to end, split over the bins it spans.
        let w = self.width_ms;
        let (first, last) = (self.index(sent), self.index(done));
        for k in first..=last {
            let (a, b) = (k as f64 * w, (k + 1) as f64 * w);
            let overlap = done.min(b) - sent.max(a);
            if overlap > 0.0 {
                let i = (k - self.origin) as usize;
                self.bins[i].busy_ms += overlap;
            }
        }
        if outcome != Outcome::Succeeded {
            self.bin(done).failed += 1;
            return;
        }
        self.bin(done).succeeded += 1;
        if let (Some(f), Some(ttft)) = (r.first_token_at_ms, r.ttft_ms()) {
            self.bin(f).ttft.add(ttft);
        }
        if r.chunk_times_ms.is_empty() {
            self.bin(done).out_tokens += r.output_tokens as f64;
            return;
        }
        let per_chunk = r.output_tokens as f64 / r.chunk_times_ms.len() as f64;
        let mut prev: Option<f64> = None;
        for &t in &r.chunk_times_ms {
            let b = self.bin(t);
            b.out_tokens += per_chunk;
            if let Some(p) = prev {
                b.itl.add(t - p);
            }
            prev = Some(t);
        }
    }

    /// Adds another timeline whose times are `shift_ms` behind this one's clock (shards): its
    /// bins, brought to the same width, land in the bins holding their shifted centres.
    pub fn merge(&mut self, o: &Timeline, shift_ms: f64) {
        let Some((a, b)) = o.span else {
            return;
        };
        let mut o = o.clone();
        while o.width_ms < self.width_ms {
            o.coarsen();
        }
        self.cover(a + shift_ms, b + shift_ms);
        while self.width_ms < o.width_ms {
            self.coarsen();
        }
        for (k, bin) in o.bins.iter().enumerate() {
            let centre = ((o.origin + k as i64) as f64 + 0.5) * o.width_ms + shift_ms;
            self.cover(centre, centre);
            self.bin(centre).merge(bin);
        }
        self.span = Some(match self.span {
            None => (a + shift_ms, b + shift_ms),
            Some((x, y)) => (x.min(a + shift_ms), y.max(b + shift_ms)),
        });
    }

    /// The timeline as written in the result; `None` when no request was sent.
    pub fn finish(&self) -> Option<TimelineResult> {
        self.span?;
        let w = self.width_ms;
        let bins = self
            .bins
            .iter()
            .enumerate()
            .map(|(k, b)| {
                let start = (self.origin + k as i64) as f64 * w;
                TimelineBin {
                    start_ms: start,
                    sent: b.sent,
                    succeeded: b.succeeded,
                    failed: b.failed,
                    in_flight: b.busy_ms / w,
                    output_tokens_per_s: b.out_tokens / (w / 1000.0),
                    requests_per_s: b.succeeded as f64 / (w / 1000.0),
                    ttft_p50_ms: b.ttft.percentile(50.0),
                    ttft_p99_ms: b.ttft.percentile(99.0),
                    itl_p50_ms: b.itl.percentile(50.0),
                    itl_p99_ms: b.itl.percentile(99.0),
                }
            })
            .collect();
        Some(TimelineResult { width_ms: w, bins })
    }
}

/// A scenario over time, in equal bins on the run's clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineResult {
    /// Width of every bin (ms): 250 · 2^j, so that there are at most 120 bins.
    pub width_ms: f64,
    /// The bins, in time order, from the one holding the first send to the one holding the
    /// last end.
    pub bins: Vec<TimelineBin>,
}

/// One time bin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineBin {
    /// Start of the bin (ms since the run's start, as the records' times).
    pub start_ms: f64,
    /// Requests sent in the bin.
    pub sent: u64,
    /// Requests that ended in the bin and succeeded.
    pub succeeded: u64,
    /// Requests that ended in the bin and failed (any outcome but succeeded and cancelled).
    pub failed: u64,
    /// Mean number of requests in flight over the bin.
    pub in_flight: f64,
    /// Output tokens that arrived in the bin, per second.
    pub output_tokens_per_s: f64,
    /// Succeeded requests that ended in the bin, per second.
    pub requests_per_s: f64,
    /// Median TTFT of the first tokens that arrived in the bin (ms; within 3.2 %).
    pub ttft_p50_ms: Option<f64>,
    /// 99th percentile of the same (ms).
    pub ttft_p99_ms: Option<f64>,
    /// Median of the inter-token gaps that ended in the bin (ms; within 3.2 %).
    pub itl_p50_ms: Option<f64>,
    /// 99th percentile of the same (ms).
    pub itl_p99_ms: Option<f64>,
}

#[cfg(test)]
#[path = "timeline/tests.rs"]
mod tests;
