//! Merging the statistics of shards (`run --shard`, `llmbench merge`). Pure.
//!
//! A shard saves its [`Accumulator`] whole; adding shards' accumulators gives the one a single
//! process would have built from all their records, up to the order in which floating-point
//! sums were taken:
//! - counts and token totals add exactly;
//! - each distribution ([`Samples`]) keeps its values exactly while the shards together hold at
//!   most `EXACT_SAMPLES`, else it folds them into the same log-linear histogram a single run
//!   uses, bucket by bucket: the same resolution (a bucket is 1/8192 of a doubling wide);
//!   mean and standard deviation combine exactly (Chan et al.'s pairwise update), min and max too;
//! - times that are instants (first send, last finish, the steady-state timings) are moved onto
//!   a common time base first (`shift_ms`), so throughput is taken over the union window;
//! - the per-request sample (goodput, `compare`) is concatenated; beyond
//!   `MAX_REQUEST_SAMPLES` each shard contributes in proportion to the requests it stands for.

use serde::{Deserialize, Serialize};

use super::samples::{EXACT_SAMPLES, Hist, Samples};
use super::stats::{Accumulator, MAX_REQUEST_SAMPLES, RequestSamples};

/// How [`Samples`] are saved: the exact values, or the histogram's non-empty buckets.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SamplesState {
    /// Count, mean, sum of squared deviations, min, max.
    count: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
    /// The values, while kept exactly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    exact: Vec<f64>,
    /// (bucket index, count) of the histogram's non-empty buckets, ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    buckets: Vec<(u32, u64)>,
}

impl From<Samples> for SamplesState {
    fn from(s: Samples) -> Self {
        SamplesState {
            count: s.count,
            mean: s.mean,
            m2: s.m2,
            min: s.min,
            max: s.max,
            buckets: s.buckets.iter().collect(),
            exact: s.exact,
        }
    }
}

impl From<SamplesState> for Samples {
    fn from(s: SamplesState) -> Self {
        let mut buckets = Hist::default();
        for (i, n) in s.buckets {
            buckets.add_n(i, n);
        }
        Samples {
            exact: s.exact,
            buckets,
            count: s.count,
            mean: s.mean,
            m2: s.m2,
            min: s.min,
            max: s.max,
        }
    }
}

impl Samples {
    /// Adds another store's values, as if they had been pushed here.
    pub fn merge(&mut self, o: &Samples) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = o.clone();
            return;
        }
        let (na, nb) = (self.count as f64, o.count as f64);
        let n = na + nb;
        let d = o.mean - self.mean;
        self.mean += d * nb / n;
        self.m2 += o.m2 + d * d * na * nb / n;
        self.count += o.count;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        if self.buckets.is_empty()
            && o.buckets.is_empty()
            && self.exact.len() + o.exact.len() <= EXACT_SAMPLES
        {
            self.exact.extend_from_slice(&o.exact);
            return;
        }
        // As a single store does when it overflows: every value into the histogram.
        for v in std::mem::take(&mut self.exact) {
            self.bucket_add(v);
        }
        for &v in &o.exact {
            self.bucket_add(v);
        }
        for (i, c) in o.buckets.iter() {
            self.buckets.add_n(i, c);
        }
    }
}

impl RequestSamples {
    /// Adds another shard's sample; beyond [`MAX_REQUEST_SAMPLES`] rows each side keeps a
    /// share proportional to the requests it stands for.
    pub fn merge(&mut self, o: &RequestSamples) {
        let (pa, pb) = (self.population(), o.population());
        let total = self.len() + o.len();
        let (ka, kb) = if total <= MAX_REQUEST_SAMPLES {
            (self.len(), o.len())
        } else {
            let share =
                |p: u64| (MAX_REQUEST_SAMPLES as f64 * p as f64 / (pa + pb) as f64) as usize;
            (share(pa).min(self.len()), share(pb).min(o.len()))
        };
        self.ttft_ms.truncate(ka);
        self.tpot_ms.truncate(ka);
        self.e2e_ms.truncate(ka);
        self.output_tokens.truncate(ka);
        self.ttft_ms.extend_from_slice(&o.ttft_ms[..kb]);
        self.tpot_ms.extend_from_slice(&o.tpot_ms[..kb]);
        self.e2e_ms.extend_from_slice(&o.e2e_ms[..kb]);
        self.output_tokens.extend_from_slice(&o.output_tokens[..kb]);
        self.seen = pa + pb;
    }
}

fn add<K: Ord + Clone>(
    a: &mut std::collections::BTreeMap<K, u64>,
    b: &std::collections::BTreeMap<K, u64>,
) {
    for (k, v) in b {
        *a.entry(k.clone()).or_default() += v;
    }
}

fn min_opt(a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(f(x, y)),
        (x, y) => x.or(y),
    }
}

impl Accumulator {
    /// Adds another shard's statistics; `shift_ms` moves its instants onto this one's time
    /// base (its epoch minus this one's, in ms).
    pub fn merge(&mut self, o: &Accumulator, shift_ms: f64) {
        add(&mut self.outcomes, &o.outcomes);
        for (a, b) in [
            (&mut self.ttft, &o.ttft),
            (&mut self.ttfa, &o.ttfa),
            (&mut self.reasoning_time, &o.reasoning_time),
            (&mut self.itl_token, &o.itl_token),
            (&mut self.per_chunk, &o.per_chunk),
            (&mut self.tpot, &o.tpot),
            (&mut self.itl, &o.itl),
            (&mut self.e2e, &o.e2e),
            (&mut self.queue, &o.queue),
            (&mut self.e2e_sched, &o.e2e_sched),
        ] {
            a.merge(b);
        }
        self.several_per_chunk |= o.several_per_chunk;
        let sum = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        sum(&mut self.reasoning_requests, o.reasoning_requests);
        sum(&mut self.reasoning_tokens, o.reasoning_tokens);
        sum(&mut self.answer_tokens, o.answer_tokens);
        sum(&mut self.out_tokens, o.out_tokens);
        sum(&mut self.in_tokens, o.in_tokens);
        sum(&mut self.in_known, o.in_known);
        sum(&mut self.cache_known, o.cache_known);
        sum(&mut self.cache_hits, o.cache_hits);
        sum(&mut self.requested, o.requested);
        sum(&mut self.received_of_requested, o.received_of_requested);
        sum(&mut self.length_asked, o.length_asked);
        sum(&mut self.length_mismatches, o.length_mismatches);
        sum(&mut self.in_text_only, o.in_text_only);
        sum(&mut self.sent, o.sent);
        sum(&mut self.retried, o.retried);
        sum(&mut self.stale_resends, o.stale_resends);
        for (msg, n) in &o.errors {
            if self.errors.len() < super::stats::MAX_ERROR_KINDS || self.errors.contains_key(msg) {
                *self.errors.entry(msg.clone()).or_default() += n;
            }
        }
        add(&mut self.token_sources, &o.token_sources);
        match (&mut self.rejected, &o.rejected) {
            (Some(a), Some(b)) => a.requests += b.requests,
            (a @ None, Some(b)) => *a = Some(b.clone()),
            _ => {}
        }
        if let Some(n) = o.inputs {
            *self.inputs.get_or_insert(0) += n;
        }
        match (&mut self.disagree, &o.disagree) {
            (Some(a), Some(b)) => {
                a.requests += b.requests;
                a.tokenizer_tokens = a.tokenizer_tokens.saturating_add(b.tokenizer_tokens);
                a.chunk_tokens = a.chunk_tokens.saturating_add(b.chunk_tokens);
            }
            (a @ None, Some(b)) => *a = Some(*b),
            _ => {}
        }
        let shift = |t: Option<f64>| t.map(|x| x + shift_ms);
        self.first_sent = min_opt(self.first_sent, shift(o.first_sent), f64::min);
        self.last_sent = min_opt(self.last_sent, shift(o.last_sent), f64::max);
        self.last_done = min_opt(self.last_done, shift(o.last_done), f64::max);
        self.samples.merge(&o.samples);
        self.timeline.merge(&o.timeline, shift_ms);
        self.timings_overflow |=
            o.timings_overflow || self.timings.len() + o.timings.len() > super::steady::MAX_TIMINGS;
        if self.timings_overflow {
            self.timings = Vec::new();
        } else {
            self.timings
                .extend(o.timings.iter().map(|t| super::steady::Timing {
                    sent_ms: t.sent_ms + shift_ms,
                    done_ms: t.done_ms + shift_ms,
                    first_ms: t.first_ms.map(|f| f + shift_ms),
                    ..*t
                }));
            self.timings.sort_by(|a, b| a.sent_ms.total_cmp(&b.sent_ms));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(seed: u64, n: usize) -> Vec<f64> {
        // Five decades of values, deterministic.
        (0..n)
            .map(|i| {
                let u = (crate::rng::splitmix64(seed * 1_000_003 + i as u64) >> 11) as f64
                    / (1u64 << 53) as f64;
                0.05 * 10f64.powf(5.0 * u)
            })
            .collect()
    }

    fn store(v: &[f64]) -> Samples {
        let mut s = Samples::default();
        s.extend(v.iter().copied());
        s
    }

    #[test]
    fn merged_samples_equal_one_store_of_all_values() {
        // Small (exact on both sides and merged), and large (histograms).
        for n in [1000usize, 5000, 20_000] {
            let parts: Vec<Vec<f64>> = (0..3).map(|k| values(k, n)).collect();
            let all: Vec<f64> = parts.concat();
            let mut one = store(&all);
            let mut merged = Samples::default();
            for p in &parts {
                // Through the saved form, as `merge` reads it.
                let saved: Samples =
                    serde_json::from_str(&serde_json::to_string(&store(p)).unwrap()).unwrap();
                merged.merge(&saved);
            }
            let (a, b) = (one.dist().unwrap(), merged.dist().unwrap());
            assert_eq!(a.count, b.count);
            assert_eq!((a.min, a.max), (b.min, b.max));
            assert!(
                (a.mean - b.mean).abs() <= 1e-9 * a.mean.abs(),
                "{a:?} {b:?}"
            );
            assert!((a.std - b.std).abs() <= 1e-9 * a.std, "{a:?} {b:?}");
            // The same values in the same buckets: the same percentiles, bit for bit.
            assert_eq!((a.p50, a.p90, a.p95, a.p99), (b.p50, b.p90, b.p95, b.p99));
            // Whole stores equal (the exact values were sorted by `dist`), moments aside.
            let mut m = merged.clone();
            m.mean = one.mean;
            m.m2 = one.m2;
            assert_eq!(one, m);
        }
    }
}
