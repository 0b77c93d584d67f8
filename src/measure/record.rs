//! One finished request: plain data that flows forward from the client to stats and files.
//!
//! All times are milliseconds on the run's monotonic clock (`Instant` at run start = 0).

use serde::{Deserialize, Serialize};

pub use crate::protocol::TokenSource;

/// How a scheduled request ended. Every scheduled request gets exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The server streamed output and ended the response properly.
    Succeeded,
    /// The server answered with a non-2xx status.
    HttpError,
    /// Connecting, sending or reading failed before any output arrived.
    TransportError,
    /// Connect, idle or total timeout.
    Timeout,
    /// An in-band error event or an event that could not be decoded.
    StreamError,
    /// Output started but the stream ended (or broke) before the end marker.
    Truncated,
    /// The response ended properly but carried no generated text.
    Empty,
    /// Stopped by the user (Ctrl-C) before it finished.
    Cancelled,
    /// The client could not send it on time (never sent).
    Dropped,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 9] = [
        Outcome::Succeeded,
        Outcome::HttpError,
        Outcome::TransportError,
        Outcome::Timeout,
        Outcome::StreamError,
        Outcome::Truncated,
        Outcome::Empty,
        Outcome::Cancelled,
        Outcome::Dropped,
    ];

    /// The snake_case name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::HttpError => "http_error",
            Outcome::TransportError => "transport_error",
            Outcome::Timeout => "timeout",
            Outcome::StreamError => "stream_error",
            Outcome::Truncated => "truncated",
            Outcome::Empty => "empty",
            Outcome::Cancelled => "cancelled",
            Outcome::Dropped => "dropped",
        }
    }
}

/// One request, as measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Scenario this request belongs to.
    pub scenario: String,
    /// Index of the request within its scenario (warmup requests count separately).
    pub id: u64,
    /// Warmup requests are written but never enter statistics.
    #[serde(default)]
    pub warmup: bool,
    /// How it ended.
    pub outcome: Option<Outcome>,
    /// When the schedule meant to send it (ms since run start).
    pub scheduled_at_ms: f64,
    /// When it was handed to the connection (ms since run start); absent when never sent.
    pub sent_at_ms: Option<f64>,
    /// When the first chunk carrying generated text arrived (ms since run start): when the
    /// kernel received its bytes where the transport knows (`config.chunk_clock` `kernel`),
    /// else when it was read.
    pub first_token_at_ms: Option<f64>,
    /// When the response ended (or failed) (ms since run start).
    pub done_at_ms: f64,
    /// Arrival time of every content chunk, the first included (ms since run start), on the
    /// same clock as `first_token_at_ms`.
    #[serde(default)]
    pub chunk_times_ms: Vec<f64>,
    /// Prompt tokens, if known.
    pub input_tokens: Option<u64>,
    /// Where `input_tokens` came from.
    pub input_tokens_source: Option<TokenSource>,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Where `output_tokens` came from.
    pub output_tokens_source: Option<TokenSource>,
    /// Prompt tokens the server says it served from its cache.
    pub cached_tokens: Option<u64>,
    /// Whether the server says the prompt hit its cache.
    pub cache_hit: Option<bool>,
    /// `max_tokens` asked for.
    pub requested_output_tokens: Option<u32>,
    /// HTTP status, when one was received.
    pub http_status: Option<u16>,
    /// Error text for failed requests (never contains secrets).
    pub error: Option<String>,
    /// 1 for the first attempt; higher when `--retries` retried it.
    #[serde(default = "one")]
    pub attempt: u32,
    /// The server's own timings of this request (Ollama durations, llama.cpp `timings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_timings: Option<crate::protocol::ServerTimings>,
    /// Conversation id, for requests of a multi-turn conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    /// Turn index within its conversation (0 = first user message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<u32>,
    /// This attempt failed and was retried (`--retries`): it is written to the records file
    /// but its request's outcome is the last attempt's (same `id`, higher `attempt`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retried: bool,
    /// The kept-alive connection this request first went out on failed before any byte of a
    /// response came back (the server had closed it after its previous response): the request
    /// was sent again at once on a new connection, and `sent_at_ms` is that send. Not a
    /// `--retries` retry: no response was lost, so no attempt is counted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale_connection_resent: bool,
    /// When the request's first attempt was sent (ms since run start); only on attempts after
    /// the first, so queue time never includes retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_sent_at_ms: Option<f64>,
    /// The id sent in `--request-id-header` (RUN_ID-N, one per attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// A count the server reported that is not a token count (`completion_tokens
    /// 18446744073709551615`): left out, the count taken from the next source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_count: Option<String>,
    /// Reasoning replies only: when the first chunk of the answer (text or tool call, not
    /// reasoning) arrived (ms since run start, the clock of `first_token_at_ms`). `first_token_at_ms` is the first reasoning
    /// token's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_answer_at_ms: Option<f64>,
    /// Reasoning replies only: generated tokens that were reasoning (included in
    /// `output_tokens`): the server's `reasoning_tokens` where it says, else counted like
    /// `output_tokens` (`output_tokens_source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// When `output_tokens` came from `--tokenizer` on a streamed reply: the count of its
    /// content chunks too (the server's own tokens when it streams one per chunk), so the two
    /// can be compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_tokens: Option<u64>,
    /// Tool calls the reply made (OpenAI chat `tool_calls`); absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<u32>,
    /// Embeddings and rerank: the texts the request carried (`--batch-inputs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<u32>,
}

fn one() -> u32 {
    1
}

impl Record {
    /// The request's outcome (`cancelled` when none was set).
    pub fn outcome(&self) -> Outcome {
        self.outcome.unwrap_or(Outcome::Cancelled)
    }

    /// first_token_at − sent_at.
    pub fn ttft_ms(&self) -> Option<f64> {
        Some(self.first_token_at_ms? - self.sent_at_ms?)
    }

    /// Time to the first answer token of a reasoning reply: first_answer_at − sent_at.
    pub fn ttfa_ms(&self) -> Option<f64> {
        Some(self.first_answer_at_ms? - self.sent_at_ms?)
    }

    /// How long a reasoning reply reasoned: first_answer_at − first_token_at.
    pub fn reasoning_ms(&self) -> Option<f64> {
        Some(self.first_answer_at_ms? - self.first_token_at_ms?)
    }

    /// done_at − sent_at.
    pub fn e2e_ms(&self) -> Option<f64> {
        Some(self.done_at_ms - self.sent_at_ms?)
    }

    /// sent_at − scheduled_at.
    pub fn queue_ms(&self) -> Option<f64> {
        Some(self.first_sent_at_ms.or(self.sent_at_ms)? - self.scheduled_at_ms)
    }

    /// done_at − scheduled_at: latency as seen from the schedule (open loop).
    pub fn e2e_from_scheduled_ms(&self) -> Option<f64> {
        self.sent_at_ms?;
        Some(self.done_at_ms - self.scheduled_at_ms)
    }

    /// (done_at − first_token_at) / (output_tokens − 1); needs two or more tokens.
    pub fn tpot_ms(&self) -> Option<f64> {
        let first = self.first_token_at_ms?;
        // Undefined unless tokens arrived at two moments at least: a whole (non-streamed) reply
        // has no time per token to measure, which is not a time of 0.
        if self.output_tokens < 2 || self.chunk_times_ms.len() < 2 {
            return None;
        }
        Some((self.done_at_ms - first) / (self.output_tokens - 1) as f64)
    }

    /// Gaps between consecutive content chunks.
    pub fn itl_ms(&self) -> impl Iterator<Item = f64> + '_ {
        self.chunk_times_ms.windows(2).map(|w| w[1] - w[0])
    }
}

/// How a run timed the arrival of response chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChunkClock {
    /// When the kernel received their bytes (its receive timestamps; the direct client on
    /// plain `http://`); a read it did not stamp is timed when read.
    Kernel,
    /// When the client read them (reqwest, or `LLMBENCH_CLOCK=read`).
    Read,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_metrics_follow_the_definitions() {
        let r = Record {
            scheduled_at_ms: 5.0,
            sent_at_ms: Some(10.0),
            first_token_at_ms: Some(60.0),
            done_at_ms: 100.0,
            chunk_times_ms: vec![60.0, 80.0, 100.0],
            output_tokens: 3,
            ..Default::default()
        };
        assert_eq!(r.ttft_ms(), Some(50.0));
        assert_eq!(r.e2e_ms(), Some(90.0));
        assert_eq!(r.queue_ms(), Some(5.0));
        assert_eq!(r.tpot_ms(), Some(20.0));
        assert_eq!(r.itl_ms().collect::<Vec<_>>(), vec![20.0, 20.0]);
        // A whole reply (one read, `--no-stream`): TTFT = E2E, TPOT and ITL undefined.
        let whole = Record {
            chunk_times_ms: vec![100.0],
            first_token_at_ms: Some(100.0),
            ..r.clone()
        };
        assert_eq!(whole.tpot_ms(), None);
        assert_eq!(whole.itl_ms().count(), 0);
    }
}
