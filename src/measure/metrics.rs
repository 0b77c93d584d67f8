//! What a scenario's records sum up to, as written in the result file: outcome counts, metrics,
//! the error-adjusted view, error messages, and the warnings the metrics call for. Built by
//! `stats::Accumulator`; no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::measure::record::Outcome;
use crate::measure::samples::{Dist, Samples};

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
    /// One entry per outcome (all present, zero included; named as in the records).
    #[serde(flatten)]
    pub counts: BTreeMap<Outcome, u64>,
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
        self.counts.get(&o).copied().unwrap_or(0)
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
    /// Reasoning replies: time to the first answer token (ms), after the reasoning; absent
    /// when no reply reasoned. TTFT counts the first reasoning token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_answer_ms: Option<Dist>,
    /// Reasoning replies: how long they reasoned (first answer token − first token, ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_ms: Option<Dist>,
    /// Reasoning replies: their reasoning tokens (part of `output_tokens`; mean per reasoning
    /// reply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<TokenTotals>,
    /// Reasoning replies: their answer tokens (output minus reasoning; mean per reasoning
    /// reply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_tokens: Option<TokenTotals>,
    /// Gaps between consecutive content chunks (ms), all succeeded requests pooled.
    pub itl_ms: Option<Dist>,
    /// Servers that send several tokens per chunk (speculative decoding): each chunk gap
    /// divided by the tokens per chunk of its request (output tokens / chunks, by the active
    /// token source), pooled. Absent when every request carried one token per chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl_per_token_ms: Option<Dist>,
    /// Tokens per chunk of each succeeded request (output tokens / chunks); present with
    /// `itl_per_token_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_chunk: Option<Dist>,
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
    /// Output tokens received over those requested (succeeded requests that asked for a
    /// length); below 1 the server stopped early, above 1 it sent more than asked.
    pub output_length_ratio: Option<f64>,
    /// Succeeded requests whose output token count differs from the `max_tokens` they asked
    /// for; null when no request asked for a length.
    #[serde(default)]
    pub output_length_mismatches: Option<u64>,
    /// Succeeded requests by where their output token count came from (`server_usage`,
    /// `server_counters`, `tokenizer`, `chunks`).
    #[serde(default)]
    pub output_token_sources: BTreeMap<crate::protocol::TokenSource, u64>,
    /// Succeeded requests whose server sent a count that is not a token count (out of range,
    /// negative or fractional), with the first such value; their counts came from the next
    /// source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_token_counts: Option<RejectedCounts>,
    /// Succeeded requests whose input count is a local tokenizer's count of the messages'
    /// text alone (a chat server that reported none): low by the chat template's tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens_text_only: Option<u64>,
    /// Succeeded streamed requests counted by `--tokenizer` whose count differs from their
    /// content chunks: the totals of both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer_vs_chunks: Option<CountDisagreement>,
    /// Embeddings and rerank: texts embedded or ranked by succeeded requests (mean per
    /// request), and per second of the measured window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<TokenTotals>,
    /// Embeddings and rerank: inputs per second of the measured window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs_per_s: Option<f64>,
    /// The same run with failures counted against the server (see docs/architecture.md).
    #[serde(default)]
    pub error_adjusted: Option<ErrorAdjusted>,
}

impl Metrics {
    /// A latency distribution by its field name (`ttft_ms`, `tpot_ms`, `itl_ms`, `e2e_ms`,
    /// `queue_ms`); `None` for any other name or when there were no samples.
    pub fn latency(&self, which: Latency) -> Option<Dist> {
        match which {
            Latency::Ttft => self.ttft_ms,
            Latency::Tpot => self.tpot_ms,
            Latency::Itl => self.itl_ms,
            Latency::E2e => self.e2e_ms,
            Latency::Queue => self.queue_ms,
        }
    }
}

/// A latency distribution of the metrics, as targets and tables name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// `ttft_ms`.
    Ttft,
    /// `tpot_ms`.
    Tpot,
    /// `itl_ms`.
    Itl,
    /// `e2e_ms`.
    E2e,
    /// `queue_ms`.
    Queue,
}

impl Latency {
    /// The field name in the result file.
    pub fn name(self) -> &'static str {
        match self {
            Latency::Ttft => "ttft_ms",
            Latency::Tpot => "tpot_ms",
            Latency::Itl => "itl_ms",
            Latency::E2e => "e2e_ms",
            Latency::Queue => "queue_ms",
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
    pub(crate) fn of(ok: &mut Samples, failed: u64) -> Self {
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

/// An error message and how many requests ended with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCount {
    /// The message (first 200 characters).
    pub message: String,
    /// Requests that ended with it.
    pub count: u64,
}

/// What the reader of a scenario's metrics should be told: output lengths that differ from
/// what was asked for, and token counts that did not come from the server.
pub fn warnings(m: &Metrics) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(n) = m.output_length_mismatches.filter(|&n| n > 0) {
        out.push(format!(
            "{n} succeeded request(s) received a different number of output tokens than requested (received {:.1}% of the requested total); {}",
            m.output_length_ratio.unwrap_or(0.0) * 100.0,
            if m.output_length_ratio.is_some_and(|r| r > 1.0) {
                "the server sent more than max_tokens allows"
            } else {
                "give --ignore-eos where the server supports it for fixed lengths"
            }
        ));
    }
    if let Some(r) = &m.rejected_token_counts {
        out.push(format!(
            "{} request(s) got a token count from the server that is not one ({}; counts are whole numbers up to {}): left out, the next source counted them",
            r.requests,
            r.first,
            crate::protocol::MAX_TOKEN_COUNT
        ));
    }
    if let Some(n) = m.input_tokens_text_only {
        out.push(format!(
            "input tokens of {n} request(s) counted by a local tokenizer from the messages' text alone: the server reported no counts, and its chat template (system prompt, role markers) adds tokens this count leaves out, so input counts are low"
        ));
    }
    if let Some(d) = &m.tokenizer_vs_chunks {
        out.push(format!(
            "output tokens of {} streamed request(s): --tokenizer counted {} where the stream had {} chunks; the tokenizer's count is used (you gave --tokenizer), but re-encoding text does not always give the server's tokens back, and a server that streams one token per chunk generated {} (the length check uses the chunks)",
            d.requests, d.tokenizer_tokens, d.chunk_tokens, d.chunk_tokens
        ));
    }
    use crate::protocol::TokenSource;
    for (src, what) in [
        (TokenSource::Tokenizer, "a local tokenizer"),
        (TokenSource::Chunks, "counting streamed chunks"),
    ] {
        if let Some(&n) = m.output_token_sources.get(&src).filter(|&&n| n > 0) {
            out.push(format!(
                "output tokens of {n} request(s) counted by {what}: the server reported no usable counts"
            ));
        }
    }
    out
}

/// Requests where `--tokenizer` and the streamed chunks counted different output lengths.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CountDisagreement {
    /// How many.
    pub requests: u64,
    /// Their output tokens as the tokenizer counted them (the count used).
    pub tokenizer_tokens: u64,
    /// Their content chunks.
    pub chunk_tokens: u64,
}

/// Requests whose server reported a value that is not a token count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedCounts {
    /// How many.
    pub requests: u64,
    /// The first such value, with its field (`completion_tokens 18446744073709551615`).
    pub first: String,
}
