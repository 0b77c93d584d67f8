//! Flags of the built-in simulator (`run` without a URL, and `llmbench serve`).

use clap::Args;

use super::run::{H_FAULTS, H_SIM};

/// Settings of the built-in simulator.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Fixed mode: time to first token (ms). Needs --itl-ms.
    #[arg(long, requires = "itl_ms", value_name = "MS", help_heading = H_SIM)]
    pub ttft_ms: Option<f64>,

    /// Fixed mode: gap between tokens (ms). Needs --ttft-ms.
    #[arg(long, requires = "ttft_ms", value_name = "MS", help_heading = H_SIM)]
    pub itl_ms: Option<f64>,

    /// Fixed mode: output tokens per request (capped by max_tokens).
    #[arg(long, value_name = "N", help_heading = H_SIM)]
    pub tokens: Option<u32>,

    /// Engine model: prefill cost per prompt token (ms).
    #[arg(long, default_value_t = 0.02, value_name = "MS", help_heading = H_SIM)]
    pub prefill_ms_per_token: f64,

    /// Engine model: base cost of one decode step (ms).
    #[arg(long, default_value_t = 8.0, value_name = "MS", help_heading = H_SIM)]
    pub decode_ms: f64,

    /// Engine model: extra decode cost per running sequence (ms).
    #[arg(long, default_value_t = 0.1, value_name = "MS", help_heading = H_SIM)]
    pub decode_ms_per_seq: f64,

    /// Engine model: most sequences batched together.
    #[arg(long, default_value_t = 32, value_name = "N", help_heading = H_SIM)]
    pub max_batch: usize,

    /// Prefix-cache capacity in 16-token blocks (0 disables).
    #[arg(long, default_value_t = 65_536, value_name = "N", help_heading = H_SIM)]
    pub cache_blocks: usize,

    /// Context length the simulator reports (tokens).
    #[arg(long, default_value_t = 131_072, value_name = "N", help_heading = H_SIM)]
    pub context_length: u64,

    /// Model name the simulator reports.
    #[arg(long = "sim-model", default_value = crate::sim::DEFAULT_MODEL, value_name = "NAME", help_heading = H_SIM)]
    pub sim_model: String,

    /// Seed of the simulator's generated text.
    #[arg(long = "sim-seed", default_value_t = 0, value_name = "N", help_heading = H_SIM, hide_short_help = true)]
    pub sim_seed: u64,

    /// Fixed mode: every generated token is this many bytes of text.
    ///
    /// A stress test for huge stream events: 1048576 gives 1 MiB SSE data lines.
    #[arg(long, value_name = "N", help_heading = H_SIM, hide_short_help = true)]
    pub token_bytes: Option<usize>,
    /// Kinds of fault to inject, comma-separated (see README).
    ///
    /// See README "Fault injection": http-429, http-429-retry-after, http-500, http-503, http-401, error-event, error-string,
    /// empty, no-done, double-done, no-usage, late-usage, reset, stall-headers, stall-mid,
    /// trickle, crlf, cr, pings, multiline, split, packed, invalid-utf8, big-line, malformed,
    /// empty-choices, multi-token.
    #[arg(long = "fault", value_delimiter = ',', value_name = "KIND", help_heading = H_FAULTS)]
    pub fault: Vec<String>,

    /// Share of requests that get a fault (seeded by --sim-seed).
    #[arg(long, default_value_t = 1.0, value_name = "SHARE", help_heading = H_FAULTS)]
    pub fault_rate: f64,

    /// Tokens sent before reset, stall-mid, error-*, malformed.
    ///
    /// Applies to reset, stall-mid, error-event, error-string and malformed.
    #[arg(long, default_value_t = 3, value_name = "N", help_heading = H_FAULTS)]
    pub fault_after_tokens: u64,

    /// How long stall-headers and stall-mid stay silent.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s", value_name = "DUR", help_heading = H_FAULTS)]
    pub fault_stall: std::time::Duration,

    /// Gap between bytes of trickle and pieces of split (ms).
    #[arg(long, default_value_t = 2.0, value_name = "MS", help_heading = H_FAULTS)]
    pub fault_trickle_ms: f64,

    /// Log when each streamed OpenAI chunk was sent (JSON lines).
    ///
    /// One JSON line per streamed OpenAI response: its X-Request-Id, when its body had
    /// been read (ms since the simulator started), how long it had waited since its bytes
    /// reached the socket (the kernel's receive timestamp) and when each chunk was handed to
    /// the connection (ms after the read). Benchmarks of the client compare its arrival times
    /// with these (see bench/bench.py capacity).
    #[arg(long, value_name = "FILE", help_heading = H_SIM, hide_short_help = true)]
    pub send_log: Option<std::path::PathBuf>,

    /// The first N tokens of each chat reply are reasoning.
    ///
    /// As `reasoning_content` (Ollama: `thinking`), reported as
    /// `completion_tokens_details.reasoning_tokens`.
    #[arg(long, default_value_t = 0, value_name = "N", help_heading = H_SIM)]
    pub reasoning_tokens: u64,

    /// Tokens per streamed chunk (speculative decoding); `mix`: 1 to 4.
    ///
    /// As speculative decoding sends them; `mix` sends 1 to 4 at random (seeded).
    #[arg(long, default_value = "1", value_name = "K|mix", help_heading = H_SIM)]
    pub tokens_per_chunk: String,

    /// Answer requests offering `tools` with a call of the first tool.
    ///
    /// A streamed call; its arguments are the generated tokens.
    #[arg(long, help_heading = H_SIM)]
    pub tool_calls: bool,
}

/// `llmbench serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to bind (loopback unless told otherwise).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,

    /// Port to listen on (0 picks a free one).
    #[arg(short, long, default_value_t = 8000)]
    pub port: u16,

    /// Simulator settings.
    #[command(flatten)]
    pub sim: SimArgs,
}
