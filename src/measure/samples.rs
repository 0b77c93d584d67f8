//! Distributions in bounded memory: `Samples` keeps up to `EXACT_SAMPLES` values exactly and
//! a chunked log-linear histogram beyond; `Dist` is the summary of one metric. Pure math.
//!
//! One percentile definition for the whole project: linear interpolation between the two
//! closest ranks of the sorted samples (`p` in 0..=100, rank = p/100 · (n − 1)), the same as
//! NumPy's default `percentile`, which vLLM's benchmark uses. Standard deviation is the
//! population standard deviation (divide by n).

use serde::{Deserialize, Serialize};

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

    /// One of the stored percentiles (50, 90, 95, 99); `None` for any other.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        [
            (50.0, self.p50),
            (90.0, self.p90),
            (95.0, self.p95),
            (99.0, self.p99),
        ]
        .into_iter()
        .find(|(q, _)| *q == p)
        .map(|(_, v)| v)
    }

    /// One statistic.
    pub fn stat(&self, stat: Stat) -> f64 {
        match stat {
            Stat::Mean => self.mean,
            Stat::Std => self.std,
            Stat::Min => self.min,
            Stat::P50 => self.p50,
            Stat::P90 => self.p90,
            Stat::P95 => self.p95,
            Stat::P99 => self.p99,
            Stat::Max => self.max,
        }
    }
}

/// A statistic of a distribution, as targets and tables name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    /// Mean.
    Mean,
    /// Standard deviation.
    Std,
    /// Smallest.
    Min,
    /// Median.
    P50,
    /// 90th percentile.
    P90,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
    /// Largest.
    Max,
}

impl Stat {
    /// By name: `mean` (or `avg`), `std`, `min`, `p50` (or `median`), `p90`, `p95`, `p99`, `max`.
    pub fn parse(name: &str) -> Option<Stat> {
        Some(match name {
            "mean" | "avg" => Stat::Mean,
            "std" => Stat::Std,
            "min" => Stat::Min,
            "p50" | "median" => Stat::P50,
            "p90" => Stat::P90,
            "p95" => Stat::P95,
            "p99" => Stat::P99,
            "max" => Stat::Max,
            _ => return None,
        })
    }

    /// The name files and tables use.
    pub fn name(self) -> &'static str {
        match self {
            Stat::Mean => "mean",
            Stat::Std => "std",
            Stat::Min => "min",
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P95 => "p95",
            Stat::P99 => "p99",
            Stat::Max => "max",
        }
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
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Hist {
    /// Values below 1 µs (bucket 0).
    zero: u64,
    /// Per doubling `e` of the value in µs: its chunks.
    octaves: Vec<Option<Box<[Option<Chunk>; CHUNKS]>>>,
    used: bool,
}

impl Hist {
    fn add(&mut self, i: u32) {
        self.add_n(i, 1);
    }

    /// Adds `n` values to bucket `i` (merging histograms: `super::merge`).
    pub(super) fn add_n(&mut self, i: u32, n: u64) {
        self.used = true;
        if i == 0 {
            self.zero += n;
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
        *c = c.saturating_add(n.min(u64::from(u32::MAX)) as u32);
    }

    pub(super) fn is_empty(&self) -> bool {
        !self.used
    }

    /// Non-empty buckets, ascending: (bucket index, count).
    pub(super) fn iter(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
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
///
/// It is saved and merged whole (`super::merge`): a shard's samples added to another's give
/// the store one process would have kept of both shards' values.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(
    into = "super::merge::SamplesState",
    from = "super::merge::SamplesState"
)]
pub struct Samples {
    pub(super) exact: Vec<f64>,
    /// Counts per bucket, once the exact store overflowed (empty before).
    pub(super) buckets: Hist,
    pub(super) count: u64,
    pub(super) mean: f64,
    /// Sum of squared deviations (Welford).
    pub(super) m2: f64,
    pub(super) min: f64,
    pub(super) max: f64,
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
        // Read off the float's bits (profiled: `log2`/`floor` per chunk gap were a visible
        // cost): for us ≥ 1 the exponent is ⌊log2 us⌋ exactly and the top 13 bits of the
        // mantissa are ⌊(us / 2^e − 1) · 8192⌋.
        const _: () = assert!(SUB_BUCKETS == 8192.0);
        let bits = us.min(f64::MAX).to_bits();
        let e = ((bits >> 52) & 0x7ff) as u32 - 1023;
        let m = ((bits >> (52 - 13)) & 0x1fff) as u32;
        1 + e * SUB_BUCKETS as u32 + m
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

    pub(super) fn bucket_add(&mut self, x: f64) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_read_off_the_bits_exactly() {
        // Each value's bucket holds it: [2^e (1 + m/8192), 2^e (1 + (m+1)/8192)) microseconds,
        // exact powers of two included, and buckets never go down as values go up.
        let mut prev = 0;
        let mut x: f64 = 1.0;
        while x < 1e7 {
            for v in [
                x,
                x * (1.0 + 1e-12),
                x * 1.000_061,
                2f64.powi((x.log2()) as i32),
            ] {
                let i = Samples::bucket_of(v / 1000.0);
                let (e, m) = ((i - 1) / 8192, (i - 1) % 8192);
                let lo = 2f64.powi(e as i32) * (1.0 + m as f64 / 8192.0);
                let hi = 2f64.powi(e as i32) * (1.0 + (m + 1) as f64 / 8192.0);
                assert!(lo <= v && v < hi, "{v} µs in bucket {i} = [{lo}, {hi})");
            }
            let i = Samples::bucket_of(x / 1000.0);
            assert!(i >= prev);
            prev = i;
            x *= 1.0007;
        }
        assert_eq!(Samples::bucket_of(0.0009 / 1000.0), 0);
        assert_eq!(Samples::bucket_of(f64::NAN), 0);
        assert_eq!(Samples::bucket_of(1e-3), 1, "1 µs opens bucket 1");
    }

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
}
