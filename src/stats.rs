//! Pure statistics: records in, summary out. No I/O.
//!
//! One percentile definition for the whole project: linear interpolation between the two
//! closest ranks of the sorted samples (`p` in 0..=100, rank = p/100 · (n − 1)), the same as
//! NumPy's default `percentile`, which vLLM's benchmark uses. Standard deviation is the
//! population standard deviation (divide by n).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::record::{Outcome, Record};

/// Distribution of one metric over the measured requests. All values in the metric's unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Dist {
    /// Number of samples.
    pub count: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
    /// Smallest sample.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

/// Percentile `p` (0..=100) of sorted samples by linear interpolation between closest ranks.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    assert!(!sorted.is_empty(), "percentile of no samples");
    let rank = (p / 100.0) * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let frac = rank - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

impl Dist {
    /// Summarises samples (sorted in place); `None` when there are none.
    pub fn of(samples: &mut [f64]) -> Option<Dist> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let n = samples.len() as f64;
        let mean = samples.iter().sum::<f64>() / n;
        let var = samples.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        Some(Dist {
            count: samples.len() as u64,
            mean,
            std: var.sqrt(),
            min: samples[0],
            p50: percentile(samples, 50.0),
            p90: percentile(samples, 90.0),
            p95: percentile(samples, 95.0),
            p99: percentile(samples, 99.0),
            max: samples[samples.len() - 1],
        })
    }

    /// A named statistic (`mean`, `p50`, `p99`, ...).
    pub fn get(&self, stat: &str) -> Option<f64> {
        Some(match stat {
            "mean" | "avg" => self.mean,
            "std" => self.std,
            "min" => self.min,
            "p50" | "median" => self.p50,
            "p90" => self.p90,
            "p95" => self.p95,
            "p99" => self.p99,
            "max" => self.max,
            _ => return None,
        })
    }
}

/// Samples kept exactly up to this many; beyond it they fold into a histogram.
pub const EXACT_SAMPLES: usize = 8192;

/// Histogram sub-buckets per power of two: a bucket is at most 1/8192 of its values wide, so a
/// percentile read from the histogram is within 0.006 % of the exact one (1.2 µs at 20 ms).
const SUB_BUCKETS: f64 = 8192.0;

/// Sub-buckets per chunk: a doubling's counters come in [`CHUNKS`] chunks of this many, each
/// allocated when its first value arrives (1 KiB each, 1/32 of the doubling: a range about 3 %
/// of the value wide).
const CHUNK: usize = 256;

/// Chunks per doubling.
const CHUNKS: usize = SUB_BUCKETS as usize / CHUNK;

/// The counters of one chunk. (32-bit: a bucket would need 4·10^9 values of one ±0.006 % band
/// to saturate.)
type Chunk = Box<[u32; CHUNK]>;

/// Histogram counts: per doubling of the value, a table of [`CHUNKS`] chunks of [`CHUNK`]
/// counters, the table allocated with the doubling's first value and each chunk with its own
/// first value. So memory follows the ranges of values actually seen, at full resolution: a
/// rare value in the tail costs one 1 KiB chunk, not a whole 32 KiB doubling. It is bounded by
/// the spread of the values (32 KiB per doubling at most), never by their number.
#[derive(Debug, Clone, Default)]
struct Hist {
    /// Values below 1 µs (bucket 0).
    zero: u64,
    /// Per doubling `e` of the value in µs: its chunks.
    octaves: Vec<Option<Box<[Option<Chunk>; CHUNKS]>>>,
    used: bool,
}

impl Hist {
    fn add(&mut self, i: u32) {
        self.used = true;
        if i == 0 {
            self.zero += 1;
            return;
        }
        let sub = SUB_BUCKETS as usize;
        let (e, m) = ((i as usize - 1) / sub, (i as usize - 1) % sub);
        if e >= self.octaves.len() {
            self.octaves.resize(e + 1, None);
        }
        let table = self.octaves[e].get_or_insert_with(|| Box::new([const { None }; CHUNKS]));
        let chunk = table[m / CHUNK].get_or_insert_with(|| Box::new([0u32; CHUNK]));
        let c = &mut chunk[m % CHUNK];
        *c = c.saturating_add(1);
    }

    fn is_empty(&self) -> bool {
        !self.used
    }

    /// Non-empty buckets, ascending: (bucket index, count).
    fn iter(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        let sub = SUB_BUCKETS as usize;
        let chunks = self.octaves.iter().enumerate().flat_map(move |(e, table)| {
            table.iter().flat_map(move |t| {
                t.iter()
                    .enumerate()
                    .filter_map(move |(k, chunk)| chunk.as_ref().map(|c| (e * sub + k * CHUNK, c)))
            })
        });
        std::iter::once((0u32, self.zero))
            .chain(chunks.flat_map(|(first, counts)| {
                counts
                    .iter()
                    .enumerate()
                    .map(move |(m, &c)| ((1 + first + m) as u32, c as u64))
            }))
            .filter(|&(_, c)| c > 0)
    }

    /// Bucket holding the value of 0-based rank `k`; `None` when `k` is past the last value.
    fn bucket_at_rank(&self, k: u64) -> Option<u32> {
        let mut seen = 0u64;
        self.iter().find_map(|(i, c)| {
            seen += c;
            (seen > k).then_some(i)
        })
    }

    /// Doublings and chunks allocated.
    #[cfg(test)]
    fn allocated(&self) -> (usize, usize) {
        let tables = self.octaves.iter().flatten();
        let chunks = tables.clone().flat_map(|t| t.iter().flatten()).count();
        (tables.count(), chunks)
    }
}

/// A bounded sample store for one metric. Exact (every value kept, percentiles as
/// [`percentile`]) up to [`EXACT_SAMPLES`] values; after that a log-linear histogram with
/// 0.006 % relative resolution, whose size depends on the ranges the values fall in (1 KiB per
/// 3 %-wide range touched, see [`Hist`]), not on their number, so memory stays flat however long
/// the run. Count, mean, standard deviation, min and max stay exact either way.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    exact: Vec<f64>,
    /// Counts per bucket, once the exact store overflowed (empty before).
    buckets: Hist,
    count: u64,
    mean: f64,
    /// Sum of squared deviations (Welford).
    m2: f64,
    min: f64,
    max: f64,
}

impl Samples {
    /// Adds one value.
    pub fn push(&mut self, x: f64) {
        if self.count == 0 {
            (self.min, self.max) = (x, x);
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        self.count += 1;
        let d = x - self.mean;
        self.mean += d / self.count as f64;
        self.m2 += d * (x - self.mean);
        if self.buckets.is_empty() && self.exact.len() < EXACT_SAMPLES {
            self.exact.push(x);
            return;
        }
        // Full: fold the exact values into the histogram (before pushing, so the vector is
        // never grown to twice its size only to be dropped).
        for v in std::mem::take(&mut self.exact) {
            self.bucket_add(v);
        }
        self.bucket_add(x);
    }

    /// Number of values added.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no value was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bucket of a value (in the metric's unit, milliseconds): values below 1 µs share
    /// bucket 0; above, [`SUB_BUCKETS`] buckets per doubling of the value in microseconds.
    fn bucket_of(x: f64) -> u32 {
        let us = x * 1000.0;
        if us.is_nan() || us < 1.0 {
            return 0;
        }
        let e = us.log2().floor();
        let m = ((us / e.exp2() - 1.0) * SUB_BUCKETS)
            .floor()
            .clamp(0.0, SUB_BUCKETS - 1.0);
        1 + (e as u32) * SUB_BUCKETS as u32 + m as u32
    }

    /// Middle of a bucket, in milliseconds.
    fn bucket_mid(i: u32) -> f64 {
        if i == 0 {
            return 0.0;
        }
        let e = ((i - 1) / SUB_BUCKETS as u32) as f64;
        let m = ((i - 1) % SUB_BUCKETS as u32) as f64;
        e.exp2() * (1.0 + (m + 0.5) / SUB_BUCKETS) / 1000.0
    }

    fn bucket_add(&mut self, x: f64) {
        self.buckets.add(Self::bucket_of(x));
    }

    /// The value of 0-based rank `k` (below `len()`): exact while the values are kept, else the
    /// middle of the histogram bucket holding it, clamped to the exact min and max.
    fn order_stat(&mut self, k: u64) -> f64 {
        if self.buckets.is_empty() {
            self.exact.sort_by(f64::total_cmp);
            return self.exact[k as usize];
        }
        self.buckets
            .bucket_at_rank(k)
            .map_or(self.max, |i| Self::bucket_mid(i).clamp(self.min, self.max))
    }

    /// Percentile by the project's definition; from the histogram (the value of rank
    /// `round(p/100 · (n − 1))`, within 0.006 %) once there are more than [`EXACT_SAMPLES`]
    /// values.
    fn percentiles(&mut self, ps: &[f64]) -> Vec<f64> {
        if self.buckets.is_empty() {
            self.exact.sort_by(f64::total_cmp);
            return ps.iter().map(|&p| percentile(&self.exact, p)).collect();
        }
        ps.iter()
            .map(|&p| self.order_stat(((p / 100.0) * (self.count - 1) as f64).round() as u64))
            .collect()
    }

    /// The value at fractional rank `rank` (0-based, below `len()`), interpolated between the
    /// neighbouring order statistics; from the histogram once it holds the values.
    pub fn value_at_rank(&mut self, rank: f64) -> f64 {
        let (lo, hi) = (rank.floor() as u64, rank.ceil() as u64);
        let (a, b) = (self.order_stat(lo), self.order_stat(hi));
        a + (b - a) * (rank - lo as f64)
    }

    /// The distribution; `None` when empty.
    pub fn dist(&mut self) -> Option<Dist> {
        if self.count == 0 {
            return None;
        }
        let p = self.percentiles(&[50.0, 90.0, 95.0, 99.0]);
        Some(Dist {
            count: self.count,
            mean: self.mean,
            std: (self.m2 / self.count as f64).max(0.0).sqrt(),
            min: self.min,
            p50: p[0],
            p90: p[1],
            p95: p[2],
            p99: p[3],
            max: self.max,
        })
    }
}

impl Extend<f64> for Samples {
    fn extend<I: IntoIterator<Item = f64>>(&mut self, iter: I) {
        for x in iter {
            self.push(x);
        }
    }
}

/// Token totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenTotals {
    /// Sum over succeeded requests.
    pub total: u64,
    /// Mean per succeeded request.
    pub mean: f64,
}

/// Counts per outcome; they sum to `scheduled`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcomes {
    /// Requests the schedule issued in the measured phase.
    pub scheduled: u64,
    /// One entry per outcome name (all present, zero included).
    #[serde(flatten)]
    pub counts: BTreeMap<String, u64>,
    /// Failed attempts that `--retries` sent again. Not part of `scheduled`: each request's
    /// outcome is its last attempt's; the retried attempts are in the records file.
    #[serde(default)]
    pub retried_attempts: u64,
    /// Requests sent again at once on a new connection because the kept-alive one they went
    /// out on had been closed by the server before any response (see the records'
    /// `stale_connection_resent`). Each is counted once, under its own outcome.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stale_connection_resends: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Outcomes {
    /// Count for one outcome.
    pub fn get(&self, o: Outcome) -> u64 {
        self.counts.get(o.as_str()).copied().unwrap_or(0)
    }

    /// Requests that did not succeed.
    pub fn failed(&self) -> u64 {
        self.scheduled - self.get(Outcome::Succeeded)
    }
}

/// Scenario metrics. Latencies in milliseconds; rates per second of the measured window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Time to first token (ms), succeeded requests.
    pub ttft_ms: Option<Dist>,
    /// Time per output token after the first (ms), succeeded requests with ≥ 2 tokens.
    pub tpot_ms: Option<Dist>,
    /// Gaps between consecutive content chunks (ms), all succeeded requests pooled.
    pub itl_ms: Option<Dist>,
    /// End-to-end latency from send to last byte (ms), succeeded requests.
    pub e2e_ms: Option<Dist>,
    /// Client-side wait between schedule and send (ms), all sent requests.
    pub queue_ms: Option<Dist>,
    /// End-to-end latency measured from the scheduled time (ms); differs from e2e in open loop.
    pub e2e_from_scheduled_ms: Option<Dist>,
    /// Generated tokens of succeeded requests.
    pub output_tokens: TokenTotals,
    /// Prompt tokens of succeeded requests (where known).
    pub input_tokens: TokenTotals,
    /// Output tokens of succeeded requests per second of the measured window.
    pub output_tokens_per_s: f64,
    /// Input plus output tokens per second of the measured window.
    pub total_tokens_per_s: f64,
    /// Succeeded requests per second of the measured window.
    pub requests_per_s: f64,
    /// Achieved send rate: (sent − 1) / (last send − first send), per second.
    pub sent_requests_per_s: Option<f64>,
    /// Measured window: first send to last completion (s).
    pub duration_s: f64,
    /// Share of requests the server reported as cache hits; null when the server never said.
    pub cache_hit_rate: Option<f64>,
    /// Share of requested output tokens actually received (succeeded requests that asked for a
    /// length); below 1 means the server stopped early.
    pub output_length_ratio: Option<f64>,
    /// Succeeded requests whose output token count differs from the `max_tokens` they asked
    /// for; null when no request asked for a length.
    #[serde(default)]
    pub output_length_mismatches: Option<u64>,
    /// Succeeded requests by where their output token count came from (`server_usage`,
    /// `server_counters`, `tokenizer`, `chunks`).
    #[serde(default)]
    pub output_token_sources: BTreeMap<String, u64>,
    /// The same run with failures counted against the server (see docs/architecture.md).
    #[serde(default)]
    pub error_adjusted: Option<ErrorAdjusted>,
}

impl Metrics {
    /// A latency distribution by its field name (`ttft_ms`, `tpot_ms`, `itl_ms`, `e2e_ms`,
    /// `queue_ms`); `None` for any other name or when there were no samples.
    pub fn latency(&self, name: &str) -> Option<Dist> {
        match name {
            "ttft_ms" => self.ttft_ms,
            "tpot_ms" => self.tpot_ms,
            "itl_ms" => self.itl_ms,
            "e2e_ms" => self.e2e_ms,
            "queue_ms" => self.queue_ms,
            _ => None,
        }
    }
}

/// Percentiles over every request, a failed one counted as infinitely slow. A percentile that
/// falls on (or interpolates towards) a failure is `None`: the server did not meet it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct WorstCase {
    /// Median (ms).
    pub p50: Option<f64>,
    /// 90th percentile (ms).
    pub p90: Option<f64>,
    /// 95th percentile (ms).
    pub p95: Option<f64>,
    /// 99th percentile (ms).
    pub p99: Option<f64>,
}

impl WorstCase {
    fn of(ok: &mut Samples, failed: u64) -> Self {
        let n = ok.len() + failed;
        let mut at = |p: f64| -> Option<f64> {
            if n == 0 {
                return None;
            }
            let rank = (p / 100.0) * (n - 1) as f64;
            if rank.ceil() as u64 >= ok.len() {
                return None;
            }
            Some(ok.value_at_rank(rank))
        };
        Self {
            p50: at(50.0),
            p90: at(90.0),
            p95: at(95.0),
            p99: at(99.0),
        }
    }
}

/// Error-adjusted view: what a user sending these requests got, failures included.
/// Requests the user cancelled are left out (they say nothing about the server).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorAdjusted {
    /// Requests counted: scheduled minus cancelled.
    pub requests: u64,
    /// Succeeded / requests (1 when there were none).
    pub success_rate: f64,
    /// TTFT percentiles over all counted requests, failures as infinitely slow (ms).
    pub ttft_ms: WorstCase,
    /// End-to-end latency percentiles over all counted requests, failures as infinitely slow (ms).
    pub e2e_ms: WorstCase,
    /// Output tokens of succeeded requests per second of the window (failed requests' partial
    /// output does not count), i.e. goodput in tokens.
    pub goodput_tokens_per_s: f64,
}

/// Distinct error messages kept per scenario.
const MAX_ERROR_KINDS: usize = 20;

/// An error message and how many requests ended with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCount {
    /// The message (first 200 characters).
    pub message: String,
    /// Requests that ended with it.
    pub count: u64,
}

/// Everything a scenario's records sum up to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Counts per outcome.
    pub outcomes: Outcomes,
    /// Metrics.
    pub metrics: Metrics,
    /// Most frequent error messages, most frequent first.
    pub errors: Vec<ErrorCount>,
    /// Per-request latencies of succeeded requests (for goodput and significance tests).
    pub samples: RequestSamples,
}

/// Most requests whose per-request figures a scenario keeps (a uniform sample beyond).
pub const MAX_REQUEST_SAMPLES: usize = 10_000;

/// Per-request figures of the succeeded requests of a scenario: index `i` of every list is the
/// same request. Rounded to 1 µs. Used for goodput (a request must meet every per-request
/// target) and for significance tests in `compare`. Every request up to
/// [`MAX_REQUEST_SAMPLES`]; beyond that a uniform random sample of that size (reservoir
/// sampling, seeded, so reruns keep the same requests), so memory and the result file stay
/// bounded however long the run; `seen` says how many requests the sample stands for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestSamples {
    /// Time to first token (ms); null when the request had none.
    pub ttft_ms: Vec<Option<f64>>,
    /// Time per output token (ms); null for requests with fewer than 2 tokens.
    pub tpot_ms: Vec<Option<f64>>,
    /// End-to-end latency (ms).
    pub e2e_ms: Vec<f64>,
    /// Generated tokens.
    pub output_tokens: Vec<u64>,
    /// Succeeded requests offered to the sample (0 in files written before sampling: then
    /// every request is in it).
    #[serde(default)]
    pub seen: u64,
}

impl RequestSamples {
    /// Number of requests.
    pub fn len(&self) -> usize {
        self.e2e_ms.len()
    }

    /// True when no request is recorded.
    pub fn is_empty(&self) -> bool {
        self.e2e_ms.is_empty()
    }

    /// Requests the sample stands for.
    pub fn population(&self) -> u64 {
        self.seen.max(self.len() as u64)
    }

    fn push(&mut self, r: &Record) {
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        let row = (
            r.ttft_ms().map(round),
            r.tpot_ms().map(round),
            r.e2e_ms().map(round).unwrap_or(0.0),
            r.output_tokens,
        );
        self.seen += 1;
        let slot = if self.len() < MAX_REQUEST_SAMPLES {
            None
        } else {
            // Algorithm R: the n-th request replaces a random slot with probability k/n.
            let j = splitmix(self.seen) % self.seen;
            if j as usize >= MAX_REQUEST_SAMPLES {
                return;
            }
            Some(j as usize)
        };
        match slot {
            None => {
                self.ttft_ms.push(row.0);
                self.tpot_ms.push(row.1);
                self.e2e_ms.push(row.2);
                self.output_tokens.push(row.3);
            }
            Some(j) => {
                self.ttft_ms[j] = row.0;
                self.tpot_ms[j] = row.1;
                self.e2e_ms[j] = row.2;
                self.output_tokens[j] = row.3;
            }
        }
    }
}

/// A fixed pseudo-random function of `n` (SplitMix64): reproducible reservoir choices.
fn splitmix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Streams records in, one at a time; keeps only what the summary needs.
#[derive(Debug, Default)]
pub struct Accumulator {
    outcomes: BTreeMap<Outcome, u64>,
    ttft: Samples,
    tpot: Samples,
    itl: Samples,
    e2e: Samples,
    queue: Samples,
    e2e_sched: Samples,
    out_tokens: u64,
    in_tokens: u64,
    in_known: u64,
    cache_known: u64,
    cache_hits: u64,
    requested: u64,
    received_of_requested: u64,
    errors: BTreeMap<String, u64>,
    length_asked: u64,
    length_mismatches: u64,
    token_sources: BTreeMap<String, u64>,
    first_sent: Option<f64>,
    last_sent: Option<f64>,
    sent: u64,
    last_done: Option<f64>,
    samples: RequestSamples,
    retried: u64,
    stale_resends: u64,
}

impl Accumulator {
    /// Adds one measured (non-warmup) record.
    pub fn add(&mut self, r: &Record) {
        if r.retried {
            self.retried += 1;
            return;
        }
        *self.outcomes.entry(r.outcome()).or_default() += 1;
        self.stale_resends += u64::from(r.stale_connection_resent);
        if let Some(sent) = r.sent_at_ms {
            self.sent += 1;
            self.first_sent = Some(self.first_sent.map_or(sent, |f| f.min(sent)));
            self.last_sent = Some(self.last_sent.map_or(sent, |f| f.max(sent)));
            self.last_done = Some(self.last_done.map_or(r.done_at_ms, |d| d.max(r.done_at_ms)));
            if let Some(q) = r.queue_ms() {
                self.queue.push(q);
            }
        }
        if r.outcome() != Outcome::Succeeded {
            let msg = r.error.as_deref().unwrap_or(r.outcome().as_str());
            let msg: String = msg.chars().take(200).collect();
            if self.errors.len() < MAX_ERROR_KINDS || self.errors.contains_key(&msg) {
                *self.errors.entry(msg).or_default() += 1;
            }
            return;
        }
        self.samples.push(r);
        self.ttft.extend(r.ttft_ms());
        self.tpot.extend(r.tpot_ms());
        self.e2e.extend(r.e2e_ms());
        self.e2e_sched.extend(r.e2e_from_scheduled_ms());
        self.itl.extend(r.itl_ms());
        self.out_tokens += r.output_tokens;
        if let Some(n) = r.input_tokens {
            self.in_tokens += n;
            self.in_known += 1;
        }
        let hit = r.cache_hit.or(r.cached_tokens.map(|c| c > 0));
        if let Some(hit) = hit {
            self.cache_known += 1;
            self.cache_hits += hit as u64;
        }
        if let Some(req) = r.requested_output_tokens {
            self.requested += req as u64;
            self.received_of_requested += r.output_tokens.min(req as u64);
            self.length_asked += 1;
            self.length_mismatches += (r.output_tokens != req as u64) as u64;
        }
        if let Some(src) = r.output_tokens_source {
            let name = serde_json::to_value(src)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            *self.token_sources.entry(name).or_default() += 1;
        }
    }

    /// Finishes the summary.
    pub fn finish(mut self) -> Summary {
        let scheduled = self.outcomes.values().sum();
        let counts = Outcome::ALL
            .iter()
            .map(|o| {
                (
                    o.as_str().to_string(),
                    self.outcomes.get(o).copied().unwrap_or(0),
                )
            })
            .collect();
        let succeeded = self.outcomes.get(&Outcome::Succeeded).copied().unwrap_or(0);
        let duration_ms = match (self.first_sent, self.last_done) {
            (Some(a), Some(b)) if b > a => b - a,
            _ => 0.0,
        };
        let per_s = |n: f64| {
            if duration_ms > 0.0 {
                n / (duration_ms / 1000.0)
            } else {
                0.0
            }
        };
        let mean = |total: u64, n: u64| if n > 0 { total as f64 / n as f64 } else { 0.0 };
        let sent_rate = match (self.first_sent, self.last_sent) {
            (Some(a), Some(b)) if self.sent > 1 && b > a => {
                Some((self.sent - 1) as f64 / ((b - a) / 1000.0))
            }
            _ => None,
        };
        let cancelled = self.outcomes.get(&Outcome::Cancelled).copied().unwrap_or(0);
        let counted: u64 = scheduled - cancelled;
        let failed = counted - succeeded;
        let ttft = self.ttft.dist();
        let e2e = self.e2e.dist();
        // Failed requests and successes without a TTFT sample both count as "no first token
        // in time".
        let ttft_missing = counted - self.ttft.len();
        let error_adjusted = ErrorAdjusted {
            requests: counted,
            success_rate: if counted > 0 {
                succeeded as f64 / counted as f64
            } else {
                1.0
            },
            ttft_ms: WorstCase::of(&mut self.ttft, ttft_missing),
            e2e_ms: WorstCase::of(&mut self.e2e, failed),
            goodput_tokens_per_s: per_s(self.out_tokens as f64),
        };
        let metrics = Metrics {
            error_adjusted: Some(error_adjusted),
            ttft_ms: ttft,
            tpot_ms: self.tpot.dist(),
            itl_ms: self.itl.dist(),
            e2e_ms: e2e,
            queue_ms: self.queue.dist(),
            e2e_from_scheduled_ms: self.e2e_sched.dist(),
            output_tokens: TokenTotals {
                total: self.out_tokens,
                mean: mean(self.out_tokens, succeeded),
            },
            input_tokens: TokenTotals {
                total: self.in_tokens,
                mean: mean(self.in_tokens, self.in_known),
            },
            output_tokens_per_s: per_s(self.out_tokens as f64),
            total_tokens_per_s: per_s((self.out_tokens + self.in_tokens) as f64),
            requests_per_s: per_s(succeeded as f64),
            sent_requests_per_s: sent_rate,
            duration_s: duration_ms / 1000.0,
            cache_hit_rate: (self.cache_known > 0)
                .then(|| self.cache_hits as f64 / self.cache_known as f64),
            output_length_ratio: (self.requested > 0)
                .then(|| self.received_of_requested as f64 / self.requested as f64),
            output_length_mismatches: (self.length_asked > 0).then_some(self.length_mismatches),
            output_token_sources: std::mem::take(&mut self.token_sources),
        };
        let mut errors: Vec<ErrorCount> = std::mem::take(&mut self.errors)
            .into_iter()
            .map(|(message, count)| ErrorCount { message, count })
            .collect();
        errors.sort_by(|a, b| b.count.cmp(&a.count).then(a.message.cmp(&b.message)));
        errors.truncate(5);
        Summary {
            outcomes: Outcomes {
                scheduled,
                counts,
                retried_attempts: self.retried,
                stale_connection_resends: self.stale_resends,
            },
            metrics,
            errors,
            samples: self.samples,
        }
    }
}

/// What the reader of a scenario's metrics should be told: output lengths that differ from
/// what was asked for, and token counts that did not come from the server.
pub fn warnings(m: &Metrics) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(n) = m.output_length_mismatches.filter(|&n| n > 0) {
        out.push(format!(
            "{n} succeeded request(s) received a different number of output tokens than requested (received {:.1}% of the requested total); give --ignore-eos where the server supports it for fixed lengths",
            m.output_length_ratio.unwrap_or(0.0) * 100.0
        ));
    }
    for (src, what) in [
        ("tokenizer", "a local tokenizer"),
        ("chunks", "counting streamed chunks"),
    ] {
        if let Some(&n) = m.output_token_sources.get(src).filter(|&&n| n > 0) {
            out.push(format!(
                "output tokens of {n} request(s) counted by {what}: the server reported no counts"
            ));
        }
    }
    out
}

/// Summarises measured (non-warmup) records.
pub fn summarize<'a>(records: impl IntoIterator<Item = &'a Record>) -> Summary {
    let mut acc = Accumulator::default();
    for r in records.into_iter().filter(|r| !r.warmup) {
        acc.add(r);
    }
    acc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_like_numpy() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&s, 50.0), 2.5);
        assert_eq!(percentile(&s, 0.0), 1.0);
        assert_eq!(percentile(&s, 100.0), 4.0);
        assert!((percentile(&s, 90.0) - 3.7).abs() < 1e-12);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
    }

    #[test]
    fn dist_of_known_samples() {
        let mut s: Vec<f64> = (1..=100).map(f64::from).collect();
        let d = Dist::of(&mut s).unwrap();
        assert_eq!(d.count, 100);
        assert_eq!(d.mean, 50.5);
        assert_eq!(d.min, 1.0);
        assert_eq!(d.max, 100.0);
        assert!((d.p99 - 99.01).abs() < 1e-9);
        assert!((d.std - 28.866_070_047_722_12).abs() < 1e-9);
        assert!(Dist::of(&mut []).is_none());
    }

    fn rec(outcome: Outcome, sent: f64, ttft: f64, tokens: u64, itl: f64) -> Record {
        let first = sent + ttft;
        let chunks: Vec<f64> = (0..tokens).map(|i| first + i as f64 * itl).collect();
        Record {
            outcome: Some(outcome),
            scheduled_at_ms: sent,
            sent_at_ms: Some(sent),
            first_token_at_ms: (tokens > 0).then_some(first),
            done_at_ms: chunks.last().copied().unwrap_or(sent),
            chunk_times_ms: chunks,
            output_tokens: tokens,
            input_tokens: Some(10),
            requested_output_tokens: Some(tokens as u32),
            ..Default::default()
        }
    }

    #[test]
    fn failures_are_counted_but_never_enter_latency() {
        let records = vec![
            rec(Outcome::Succeeded, 0.0, 50.0, 11, 20.0),
            rec(Outcome::Succeeded, 100.0, 50.0, 11, 20.0),
            rec(Outcome::Truncated, 200.0, 1.0, 3, 1.0),
            Record {
                outcome: Some(Outcome::Dropped),
                ..Default::default()
            },
        ];
        let Summary {
            outcomes: o,
            metrics: m,
            errors,
            samples,
        } = summarize(&records);
        assert_eq!(samples.len(), 2);
        assert_eq!(samples.ttft_ms, vec![Some(50.0), Some(50.0)]);
        assert_eq!(samples.tpot_ms, vec![Some(20.0), Some(20.0)]);
        assert_eq!(samples.output_tokens, vec![11, 11]);
        assert_eq!(errors.len(), 2);
        assert_eq!(o.scheduled, 4);
        assert_eq!(o.get(Outcome::Succeeded), 2);
        assert_eq!(o.get(Outcome::Truncated), 1);
        assert_eq!(o.get(Outcome::Dropped), 1);
        assert_eq!(o.failed(), 2);
        let ttft = m.ttft_ms.unwrap();
        assert_eq!((ttft.count, ttft.p50), (2, 50.0));
        assert_eq!(m.tpot_ms.unwrap().p50, 20.0);
        assert_eq!(m.itl_ms.unwrap().count, 20);
        assert_eq!(m.output_tokens.total, 22);
        assert_eq!(m.input_tokens.total, 20);
        assert_eq!(m.cache_hit_rate, None);
        // Window: first send (0) to last done (100 + 50 + 10 · 20).
        assert!((m.duration_s - 0.35).abs() < 1e-9, "{}", m.duration_s);
        assert_eq!(m.sent_requests_per_s, Some(2.0 / 0.2));
    }

    #[test]
    fn samples_are_exact_when_few() {
        let vals: Vec<f64> = (0..EXACT_SAMPLES)
            .map(|i| ((i * 7919) % 1000) as f64 / 7.0)
            .collect();
        let mut s = Samples::default();
        s.extend(vals.iter().copied());
        let mut v = vals.clone();
        let want = Dist::of(&mut v).unwrap();
        let got = s.dist().unwrap();
        assert_eq!(
            (got.p50, got.p90, got.p99, got.min, got.max),
            (want.p50, want.p90, want.p99, want.min, want.max)
        );
        assert!((got.mean - want.mean).abs() < 1e-9 && (got.std - want.std).abs() < 1e-9);
    }

    #[test]
    fn samples_stay_bounded_and_within_six_parts_in_a_hundred_thousand() {
        // A skewed spread over five decades (0.01 ms .. 1000 ms), 200k values.
        let n = 200_000;
        let vals: Vec<f64> = (0..n)
            .map(|i| {
                10f64.powf(
                    -2.0 + 5.0 * (((i as u64 * 2_654_435_761) % 1_000_003) as f64 / 1_000_003.0),
                )
            })
            .collect();
        let mut s = Samples::default();
        s.extend(vals.iter().copied());
        let (octaves, chunks) = s.buckets.allocated();
        assert!(
            // Five decades are 17 doublings: never more than that spread allows.
            s.exact.is_empty() && octaves <= 18 && chunks <= 18 * CHUNKS,
            "{octaves} doublings, {chunks} chunks"
        );
        let mut v = vals.clone();
        let want = Dist::of(&mut v).unwrap();
        let got = s.dist().unwrap();
        assert_eq!(got.count, n as u64);
        assert_eq!((got.min, got.max), (want.min, want.max));
        for (g, w) in [
            (got.p50, want.p50),
            (got.p90, want.p90),
            (got.p95, want.p95),
            (got.p99, want.p99),
        ] {
            assert!((g - w).abs() <= w * 6.2e-5, "histogram {g} vs exact {w}");
        }
        assert!((got.mean - want.mean).abs() <= want.mean * 1e-9);
        assert!((got.std - want.std).abs() <= want.std * 1e-6);
    }

    #[test]
    fn chunked_histogram_is_exact_to_its_resolution_and_sized_by_the_values_seen() {
        // 200k values clustered around 20 ms (19.7 .. 20.3 ms, skewed), then three outliers.
        let n = 200_000u64;
        let mut vals: Vec<f64> = (0..n)
            .map(|i| {
                let u = ((i * 2_654_435_761) % 1_000_003) as f64 / 1_000_003.0;
                19.7 + 0.6 * u * u
            })
            .collect();
        vals.extend([0.0005, 250.0, 4000.0]);
        let mut s = Samples::default();
        s.extend(vals.iter().copied());
        // 19.7 .. 20.3 ms lies in the doubling 16.384 .. 32.768 ms, whose chunks are 0.512 ms
        // wide: at most 3 chunks there, plus one doubling and one chunk per outlier above 1 µs.
        let (octaves, chunks) = s.buckets.allocated();
        assert!(
            octaves <= 3 && chunks <= 5,
            "{octaves} doublings, {chunks} chunks"
        );
        assert_eq!(s.buckets.zero, 1);
        let mut sorted = vals.clone();
        sorted.sort_by(f64::total_cmp);
        let got = s.dist().unwrap();
        let want = Dist::of(&mut vals).unwrap();
        assert_eq!(
            (got.count, got.min, got.max),
            (want.count, want.min, want.max)
        );
        // A bucket is at most 1/8192 of its values wide: its middle is within 6.1e-5 of any
        // value in it (neighbouring order statistics here are nanoseconds apart).
        let close = |g: f64, w: f64| (g - w).abs() <= w * 6.2e-5;
        for (g, w) in [
            (got.p50, want.p50),
            (got.p90, want.p90),
            (got.p95, want.p95),
            (got.p99, want.p99),
        ] {
            assert!(close(g, w), "histogram {g} vs exact {w}");
        }
        // The rank walk serves value_at_rank too: every order statistic, sampled.
        for k in (0..sorted.len()).step_by(9_973) {
            let g = s.value_at_rank(k as f64 + 0.5);
            let w = (sorted[k] + sorted[k + 1]) / 2.0;
            assert!(close(g, w), "rank {k}: histogram {g} vs exact {w}");
        }
        assert_eq!(s.value_at_rank((sorted.len() - 1) as f64), want.max);
    }

    #[test]
    fn request_samples_are_a_bounded_uniform_sample() {
        let mut s = RequestSamples::default();
        let n = 5 * MAX_REQUEST_SAMPLES as u64;
        for i in 0..n {
            s.push(&rec(Outcome::Succeeded, 0.0, i as f64, 2, 1.0));
        }
        assert_eq!(s.len(), MAX_REQUEST_SAMPLES);
        assert_eq!(s.population(), n);
        // Uniform: the kept TTFTs (0..n) average about n/2, and every fifth of the run is there.
        let ttfts: Vec<f64> = s.ttft_ms.iter().map(|t| t.unwrap()).collect();
        let mean = ttfts.iter().sum::<f64>() / ttfts.len() as f64;
        assert!((mean / (n as f64 / 2.0) - 1.0).abs() < 0.03, "{mean}");
        for q in 0..5 {
            let lo = (q * n / 5) as f64;
            let hi = ((q + 1) * n / 5) as f64;
            let k = ttfts.iter().filter(|&&t| t >= lo && t < hi).count();
            assert!((1800..=2200).contains(&k), "fifth {q}: {k}");
        }
    }

    #[test]
    fn error_adjusted_counts_failures_as_worst_case() {
        // 8 successes with e2e 10..80 ms, 2 failures, 1 cancelled, 1 retried attempt.
        let mut records: Vec<Record> = (1..=8)
            .map(|i| rec(Outcome::Succeeded, 0.0, 5.0, 2, i as f64 * 10.0 - 5.0))
            .collect();
        records.push(rec(Outcome::HttpError, 0.0, 1.0, 0, 0.0));
        records.push(rec(Outcome::Timeout, 0.0, 1.0, 0, 0.0));
        records.push(rec(Outcome::Cancelled, 0.0, 1.0, 0, 0.0));
        records.push(Record {
            retried: true,
            ..rec(Outcome::HttpError, 0.0, 1.0, 0, 0.0)
        });
        let s = summarize(&records);
        assert_eq!(s.outcomes.scheduled, 11);
        assert_eq!(s.outcomes.retried_attempts, 1);
        let ea = s.metrics.error_adjusted.unwrap();
        assert_eq!(ea.requests, 10);
        assert_eq!(ea.success_rate, 0.8);
        // Ranks over 10 requests: p50 at 4.5 (between the 5th and 6th success: 50, 60 ms).
        assert_eq!(ea.e2e_ms.p50, Some(55.0));
        // p90 at rank 8.1 lands between the last success and a failure: not met.
        assert_eq!(ea.e2e_ms.p90, None);
        assert_eq!(ea.e2e_ms.p99, None);
        // Successes alone: p50 of 10..80 is 45.
        assert_eq!(s.metrics.e2e_ms.unwrap().p50, 45.0);
        assert_eq!(ea.ttft_ms.p50, Some(5.0));
    }
}
