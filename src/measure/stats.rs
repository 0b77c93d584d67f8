//! Pure statistics: records in, summary out. No I/O. Distributions and the percentile
//! definition live in `super::samples`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::measure::record::{Outcome, Record};

// The result types and the warnings they call for live in `metrics`; named here too.
pub use super::metrics::*;
pub use crate::measure::samples::{Dist, EXACT_SAMPLES, Samples, percentile};

/// Distinct error messages kept per scenario.
pub(super) const MAX_ERROR_KINDS: usize = 20;

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
    /// Every sent request's times, for the steady-state window (empty beyond
    /// [`super::steady::MAX_TIMINGS`] requests).
    pub timings: Vec<super::steady::Timing>,
    /// The scenario over time (`None` when no request was sent).
    pub timeline: Option<super::timeline::TimelineResult>,
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

// A fixed pseudo-random function of `n` (SplitMix64): reproducible reservoir choices.
use crate::rng::splitmix64 as splitmix;

/// Streams records in, one at a time; keeps only what the summary needs.
/// Its state is saved with a shard's result and merged by `super::merge`.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accumulator {
    pub(super) outcomes: BTreeMap<Outcome, u64>,
    pub(super) ttft: Samples,
    pub(super) ttfa: Samples,
    pub(super) reasoning_time: Samples,
    pub(super) itl_token: Samples,
    pub(super) per_chunk: Samples,
    pub(super) several_per_chunk: bool,
    pub(super) reasoning_requests: u64,
    pub(super) reasoning_tokens: u64,
    pub(super) answer_tokens: u64,
    pub(super) tpot: Samples,
    pub(super) itl: Samples,
    pub(super) e2e: Samples,
    pub(super) queue: Samples,
    pub(super) e2e_sched: Samples,
    pub(super) out_tokens: u64,
    pub(super) in_tokens: u64,
    pub(super) in_known: u64,
    pub(super) cache_known: u64,
    pub(super) cache_hits: u64,
    pub(super) requested: u64,
    pub(super) received_of_requested: u64,
    pub(super) errors: BTreeMap<String, u64>,
    pub(super) length_asked: u64,
    pub(super) length_mismatches: u64,
    pub(super) token_sources: BTreeMap<crate::protocol::TokenSource, u64>,
    pub(super) rejected: Option<RejectedCounts>,
    pub(super) in_text_only: u64,
    pub(super) inputs: Option<u64>,
    pub(super) disagree: Option<CountDisagreement>,
    pub(super) first_sent: Option<f64>,
    pub(super) last_sent: Option<f64>,
    pub(super) sent: u64,
    pub(super) last_done: Option<f64>,
    pub(super) samples: RequestSamples,
    pub(super) retried: u64,
    pub(super) stale_resends: u64,
    pub(super) timings: Vec<super::steady::Timing>,
    pub(super) timings_overflow: bool,
    /// Older shard results have none.
    #[serde(default)]
    pub(super) timeline: super::timeline::Timeline,
}

impl Accumulator {
    /// Adds one measured (non-warmup) record.
    pub fn add(&mut self, r: &Record) {
        if r.retried {
            self.retried += 1;
            return;
        }
        *self.outcomes.entry(r.outcome()).or_default() += 1;
        self.timeline.add(r);
        self.stale_resends += u64::from(r.stale_connection_resent);
        if !self.timings_overflow
            && let Some(t) = super::steady::Timing::of(r)
        {
            if self.timings.len() < super::steady::MAX_TIMINGS {
                self.timings.push(t);
            } else {
                self.timings_overflow = true;
                self.timings = Vec::new();
            }
        }
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
        if let Some(n) = r.reasoning_tokens {
            self.ttfa.extend(r.ttfa_ms());
            self.reasoning_time.extend(r.reasoning_ms());
            self.reasoning_requests += 1;
            self.reasoning_tokens = self.reasoning_tokens.saturating_add(n);
            self.answer_tokens = self
                .answer_tokens
                .saturating_add(r.output_tokens.saturating_sub(n));
        }
        self.tpot.extend(r.tpot_ms());
        self.e2e.extend(r.e2e_ms());
        self.e2e_sched.extend(r.e2e_from_scheduled_ms());
        self.itl.extend(r.itl_ms());
        if !r.chunk_times_ms.is_empty() && r.output_tokens > 0 {
            let tpc = r.output_tokens as f64 / r.chunk_times_ms.len() as f64;
            self.per_chunk.push(tpc);
            self.several_per_chunk |= tpc > 1.0 + 1e-9;
            self.itl_token.extend(r.itl_ms().map(|gap| gap / tpc));
        }
        // Counts are bounded per request (protocol::MAX_TOKEN_COUNT), and sums saturate.
        self.out_tokens = self.out_tokens.saturating_add(r.output_tokens);
        if let Some(v) = &r.rejected_count {
            let e = self.rejected.get_or_insert_with(|| RejectedCounts {
                requests: 0,
                first: v.clone(),
            });
            e.requests += 1;
        }
        if let Some(n) = r.inputs {
            *self.inputs.get_or_insert(0) += u64::from(n);
        }
        if r.input_tokens_source == Some(crate::protocol::TokenSource::TokenizerTextOnly) {
            self.in_text_only += 1;
        }
        if let Some(chunks) = r.chunk_tokens.filter(|&c| c != r.output_tokens) {
            let d = self.disagree.get_or_insert(CountDisagreement {
                requests: 0,
                tokenizer_tokens: 0,
                chunk_tokens: 0,
            });
            d.requests += 1;
            d.tokenizer_tokens = d.tokenizer_tokens.saturating_add(r.output_tokens);
            d.chunk_tokens = d.chunk_tokens.saturating_add(chunks);
        }
        if let Some(n) = r.input_tokens {
            self.in_tokens = self.in_tokens.saturating_add(n);
            self.in_known += 1;
        }
        let hit = r.cache_hit.or(r.cached_tokens.map(|c| c > 0));
        if let Some(hit) = hit {
            self.cache_known += 1;
            self.cache_hits += hit as u64;
        }
        if let Some(req) = r.requested_output_tokens {
            // Lengths are checked in the stream's own units where a local re-tokenization
            // was the count: re-encoding the text does not always give the server's tokens
            // back (63 for 64 streamed), and the server did send what was asked.
            let got = r.chunk_tokens.unwrap_or(r.output_tokens);
            self.requested += req as u64;
            self.received_of_requested = self.received_of_requested.saturating_add(got);
            self.length_asked += 1;
            self.length_mismatches += (got != req as u64) as u64;
        }
        if let Some(src) = r.output_tokens_source {
            *self.token_sources.entry(src).or_default() += 1;
        }
    }

    /// Finishes the summary.
    pub fn finish(mut self) -> Summary {
        let scheduled = self.outcomes.values().sum();
        let counts = Outcome::ALL
            .iter()
            .map(|o| (*o, self.outcomes.get(o).copied().unwrap_or(0)))
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
            ttft_answer_ms: self.ttfa.dist(),
            reasoning_ms: self.reasoning_time.dist(),
            reasoning_tokens: (self.reasoning_requests > 0).then(|| TokenTotals {
                total: self.reasoning_tokens,
                mean: mean(self.reasoning_tokens, self.reasoning_requests),
            }),
            answer_tokens: (self.reasoning_requests > 0).then(|| TokenTotals {
                total: self.answer_tokens,
                mean: mean(self.answer_tokens, self.reasoning_requests),
            }),
            tpot_ms: self.tpot.dist(),
            itl_ms: self.itl.dist(),
            itl_per_token_ms: self
                .several_per_chunk
                .then(|| self.itl_token.dist())
                .flatten(),
            tokens_per_chunk: self
                .several_per_chunk
                .then(|| self.per_chunk.dist())
                .flatten(),
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
            rejected_token_counts: self.rejected.take(),
            input_tokens_text_only: (self.in_text_only > 0).then_some(self.in_text_only),
            tokenizer_vs_chunks: self.disagree.take(),
            inputs: self.inputs.map(|n| TokenTotals {
                total: n,
                mean: mean(n, succeeded),
            }),
            inputs_per_s: self.inputs.map(|n| per_s(n as f64)),
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
            timings: self.timings,
            timeline: self.timeline.finish(),
        }
    }
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
            ..
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

    #[test]
    fn the_length_warning_says_how_much_was_received() {
        let r = |out: u64| Record {
            outcome: Some(Outcome::Succeeded),
            sent_at_ms: Some(0.0),
            first_token_at_ms: Some(1.0),
            chunk_times_ms: vec![1.0, 2.0],
            done_at_ms: 2.0,
            output_tokens: out,
            requested_output_tokens: Some(10),
            ..Default::default()
        };
        let more = summarize(&[r(40), r(40)]);
        let w = warnings(&more.metrics).join("\n");
        assert!(w.contains("received 400.0% of the requested total"), "{w}");
        assert!(w.contains("more than max_tokens"), "{w}");
        let fewer = summarize(&[r(5), r(10)]);
        let w = warnings(&fewer.metrics).join("\n");
        assert!(
            w.contains("received 75.0%") && w.contains("--ignore-eos"),
            "{w}"
        );
    }
}
