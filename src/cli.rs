//! Command-line interface: subcommands and flags only, as typed. Validation is in config.rs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Benchmark LLM inference servers: TTFT, TPOT, ITL, end-to-end latency, throughput.
#[derive(Debug, Parser)]
#[command(name = "llmbench", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Benchmark a server (the built-in simulator when no URL is given).
    Run(Box<RunArgs>),
    /// Serve the built-in simulated inference server.
    Serve(ServeArgs),
    /// List the built-in suites (`run --suite NAME`).
    Suites,
    /// Run one scenario per value of one varied flag (see `llmbench sweep --help`).
    #[command(long_about = SWEEP_ABOUT)]
    Sweep(SweepArgs),
    /// Rebuild the summary (and optionally a result file) from a --records JSONL file alone.
    Summarize(SummarizeArgs),
}

/// `llmbench summarize`.
#[derive(Debug, Args)]
pub struct SummarizeArgs {
    /// The records file a run wrote with --records.
    pub records: PathBuf,

    /// Also write a result file (JSON) here.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
}

/// Arrival process of open-loop load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArrivalArg {
    /// Evenly spaced.
    Constant,
    /// Exponential gaps.
    Poisson,
    /// Gamma gaps with coefficient of variation --burstiness.
    Gamma,
}

/// `llmbench run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Server base URL (e.g. http://localhost:8000) or full endpoint; none: the built-in simulator.
    pub url: Option<String>,

    /// Wire protocol: openai-chat or openai-completions.
    #[arg(long, default_value = "openai-chat")]
    pub backend: String,

    /// Model name to request (default: the first model the server lists).
    #[arg(long)]
    pub model: Option<String>,

    /// Measured requests to send (default 100 unless --duration is given).
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,

    /// Stop scheduling after this long (e.g. 60s, 5m).
    #[arg(short = 'd', long, value_parser = humantime::parse_duration)]
    pub duration: Option<std::time::Duration>,

    /// Closed loop: requests kept in flight (1 = one after another).
    #[arg(short = 'c', long)]
    pub concurrency: Option<usize>,

    /// Open loop: mean requests per second, sent on schedule whatever the server does.
    #[arg(short = 'r', long)]
    pub rate: Option<f64>,

    /// Open loop arrival process.
    #[arg(long, value_enum, default_value_t = ArrivalArg::Poisson)]
    pub arrival: ArrivalArg,

    /// Coefficient of variation of gamma arrivals (1 = Poisson, >1 burstier).
    #[arg(long, default_value_t = 1.0)]
    pub burstiness: f64,

    /// Open loop: cap on requests in flight (waits are reported as queue time).
    #[arg(long)]
    pub max_concurrency: Option<usize>,

    /// Requests sent first and left out of statistics.
    #[arg(long, default_value_t = 0)]
    pub warmup: u64,

    /// Output token limit per request.
    #[arg(long, default_value_t = 128)]
    pub max_tokens: u32,

    /// Sampling temperature (not sent when absent).
    #[arg(long)]
    pub temperature: Option<f32>,

    /// Prompt text (default: a built-in prompt).
    #[arg(long)]
    pub prompt: Option<String>,

    /// Ask the server to ignore end-of-sequence (ignore_eos, min_tokens) for fixed output lengths.
    #[arg(long)]
    pub ignore_eos: bool,

    /// Ask for non-streamed responses (TTFT then equals end-to-end latency).
    #[arg(long)]
    pub no_stream: bool,

    /// Environment variable holding the API key (sent as a bearer token).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,

    /// Extra request header, "Name: value" (repeatable; values never written anywhere).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,

    /// Seed of random schedules.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Name of the scenario in reports.
    #[arg(long, default_value = "default")]
    pub name: String,

    /// Write the result file (JSON) here.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,

    /// Stream one JSON line per finished request here.
    #[arg(long)]
    pub records: Option<PathBuf>,

    /// Connect timeout.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub connect_timeout: std::time::Duration,

    /// Total time allowed per request.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "600s")]
    pub request_timeout: std::time::Duration,

    /// Longest silence allowed between two reads of a response.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "300s")]
    pub idle_timeout: std::time::Duration,

    /// On Ctrl-C, wait this long for in-flight requests before cancelling them.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub grace: std::time::Duration,

    /// Skip TLS certificate verification.
    #[arg(long)]
    pub insecure: bool,

    /// Trust this extra CA certificate (PEM).
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,

    /// Use HTTP(S)_PROXY from the environment.
    #[arg(long)]
    pub use_env_proxy: bool,

    /// No progress bar.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Simulator settings, used when no URL is given.
    #[command(flatten)]
    pub sim: SimArgs,

    /// What to send: suites, datasets, synthetic lengths, conversations.
    #[command(flatten)]
    pub workload: WorkloadArgs,

    /// File holding the API key (sent as a bearer token); takes precedence over --api-key-env.
    #[arg(long)]
    pub api_key_file: Option<PathBuf>,

    /// Retry a request that failed with HTTP 408/429/5xx or a transport error, up to N times
    /// (off by default; every retried attempt is written to the records and counted).
    #[arg(long, default_value_t = 0)]
    pub retries: u32,

    /// Longest wait before a retry (a server's Retry-After is capped to it).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub retry_max_wait: std::time::Duration,
}

/// Settings of the built-in simulator.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Fixed mode: time to first token (ms). Needs --itl-ms.
    #[arg(long, requires = "itl_ms")]
    pub ttft_ms: Option<f64>,

    /// Fixed mode: gap between tokens (ms). Needs --ttft-ms.
    #[arg(long, requires = "ttft_ms")]
    pub itl_ms: Option<f64>,

    /// Fixed mode: output tokens per request (capped by max_tokens).
    #[arg(long)]
    pub tokens: Option<u32>,

    /// Engine model: prefill cost per prompt token (ms).
    #[arg(long, default_value_t = 0.02)]
    pub prefill_ms_per_token: f64,

    /// Engine model: base cost of one decode step (ms).
    #[arg(long, default_value_t = 8.0)]
    pub decode_ms: f64,

    /// Engine model: extra decode cost per running sequence (ms).
    #[arg(long, default_value_t = 0.1)]
    pub decode_ms_per_seq: f64,

    /// Engine model: most sequences batched together.
    #[arg(long, default_value_t = 32)]
    pub max_batch: usize,

    /// Prefix-cache capacity in 16-token blocks (0 disables).
    #[arg(long, default_value_t = 65_536)]
    pub cache_blocks: usize,

    /// Context length the simulator reports (tokens).
    #[arg(long, default_value_t = 131_072)]
    pub context_length: u64,

    /// Model name the simulator reports.
    #[arg(long = "sim-model", default_value = crate::sim::DEFAULT_MODEL)]
    pub sim_model: String,

    /// Seed of the simulator's generated text.
    #[arg(long = "sim-seed", default_value_t = 0)]
    pub sim_seed: u64,

    /// Fault injection: kinds to inject, comma-separated (see README "Fault injection"):
    /// http-429, http-429-retry-after, http-500, http-503, http-401, error-event, error-string,
    /// empty, no-done, double-done, no-usage, late-usage, reset, stall-headers, stall-mid,
    /// trickle, crlf, cr, pings, multiline, split, packed, invalid-utf8, big-line, malformed,
    /// empty-choices, multi-token.
    #[arg(long = "fault", value_delimiter = ',', value_name = "KIND")]
    pub fault: Vec<String>,

    /// Share of requests that get a fault (seeded by --sim-seed).
    #[arg(long, default_value_t = 1.0)]
    pub fault_rate: f64,

    /// Tokens sent before reset, stall-mid, error-event, error-string and malformed.
    #[arg(long, default_value_t = 3)]
    pub fault_after_tokens: u64,

    /// How long stall-headers and stall-mid stay silent.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub fault_stall: std::time::Duration,

    /// Gap between bytes of trickle and between pieces of split (ms).
    #[arg(long, default_value_t = 2.0)]
    pub fault_trickle_ms: f64,
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

/// Help of `llmbench sweep`.
pub const SWEEP_ABOUT: &str = "Run one scenario per value of one varied flag, into one result file.

  llmbench sweep [URL] --concurrency 1,2,4,8 [run flags...]
  llmbench sweep [URL] --rate 1,2,4
  llmbench sweep [URL] --temperature 0,0.3,0.7,1.0,1.5
  llmbench sweep [URL] --max-tokens 64,256,1024
  llmbench sweep [URL] --prompt-tokens 128,512,2048

Exactly one of these flags takes a comma-separated list; every other `llmbench run` flag applies
to every scenario. \"Throughput versus batch size\": --concurrency 1,8,16,32,64.";

/// `llmbench sweep`: `run` flags, one of the sweepable ones given as a list.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// URL and `run` flags; one of --concurrency, --rate, --temperature, --max-tokens,
    /// --prompt-tokens as a comma-separated list.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

/// Flags that choose what `run` sends.
#[derive(Debug, Clone, Default, Args)]
pub struct WorkloadArgs {
    /// Run a built-in suite (list them with `llmbench suites`); one scenario per step.
    #[arg(long)]
    pub suite: Option<String>,

    /// Prompts from a file: JSONL ({"prompt"} or {"messages"}, optional max_tokens), ShareGPT
    /// JSON, or plain text (one prompt per line).
    #[arg(long)]
    pub dataset: Option<PathBuf>,

    /// Format of --dataset: auto (by extension and content), jsonl, sharegpt or text.
    #[arg(long, default_value = "auto")]
    pub dataset_format: String,

    /// Shuffle the dataset (with --seed).
    #[arg(long)]
    pub shuffle: bool,

    /// Synthetic prompts of this many tokens (mean).
    #[arg(long)]
    pub prompt_tokens: Option<u64>,

    /// Standard deviation of synthetic prompt lengths (tokens).
    #[arg(long, default_value_t = 0.0)]
    pub prompt_tokens_stdev: f64,

    /// Output tokens per request (mean); asks the server to ignore end-of-sequence.
    #[arg(long)]
    pub output_tokens: Option<u64>,

    /// Standard deviation of output lengths (tokens).
    #[arg(long, default_value_t = 0.0)]
    pub output_tokens_stdev: f64,

    /// Tokens at the start of every synthetic prompt shared by all requests (prefix cache).
    #[arg(long, default_value_t = 0)]
    pub shared_prefix_tokens: u64,

    /// Multi-turn conversations from a JSON file (see README); each request carries the history.
    #[arg(long)]
    pub conversations: Option<PathBuf>,

    /// Only conversations with one of these tags (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub include_tags: Vec<String>,

    /// Leave out conversations with any of these tags (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub exclude_tags: Vec<String>,

    /// Context size (tokens) conversations must fit in (default: ask the server).
    #[arg(long)]
    pub context_size: Option<u64>,

    /// Run at most this many conversations.
    #[arg(long)]
    pub max_conversations: Option<usize>,

    /// Print the conversations (after tag filters) with their token sizes and exit.
    #[arg(long)]
    pub list_conversations: bool,

    /// Chat template for completion endpoints: a Jinja file (as in tokenizer_config.json) or a
    /// built-in name (chatml, llama-3, phi-3).
    #[arg(long)]
    pub chat_template: Option<String>,
}
