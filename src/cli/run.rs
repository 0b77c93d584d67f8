//! Flags of `llmbench run` (and of every `sweep` step), grouped under help headings.
//!
//! The everyday flags carry no heading, so they come first, under "Options", in the order
//! `display_order` gives them. Every other flag sits under one of the headings below. The first
//! paragraph of a doc comment is the one line `-h` shows; `--help` shows all of it.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::SimArgs;

/// Help heading: where and how to reach the server.
pub(crate) const H_TARGET: &str = "Target";
/// Help heading: timeouts, TLS, proxies, retries.
pub(crate) const H_CONNECTION: &str = "Connection";
/// Help heading: when requests are sent.
pub(crate) const H_LOAD: &str = "Load";
/// Help heading: what requests say.
pub(crate) const H_WORKLOAD: &str = "Workload";
/// Help heading: files, names and the results store.
pub(crate) const H_OUTPUT: &str = "Output";
/// Help heading: resource sampling, server metrics, the managed server.
pub(crate) const H_SERVER: &str = "Server and telemetry";
/// Help heading: the built-in simulator (no URL, or `llmbench serve`).
pub(crate) const H_SIM: &str = "Simulator";
/// Help heading: the simulator's fault injection.
pub(crate) const H_FAULTS: &str = "Simulator faults";

/// Examples at the end of `run --help` and `llmbench help run`.
pub const RUN_EXAMPLES: &str = "Examples:
  # The built-in simulator, 64 requests, 8 at a time (no server needed)
  llmbench run -n 64 -c 8

  # A vLLM or other OpenAI-compatible server, 200 requests, 16 in flight
  llmbench run http://localhost:8000 --model my-model -n 200 -c 16 -o result.json

  # Open loop: 4 requests per second for two minutes, with targets (exit 3 when one fails)
  llmbench run http://localhost:8000 -r 4 -d 2m --slo \"ttft_p95<500ms,tpot_p99<50ms\"

  # Ollama, the standard suite, a full report (HTML, CSV, charts)
  llmbench run http://localhost:11434 --model llama3.2 --suite standard --report report/

  # The result JSON on standard output, for a pipe (everything else goes to stderr)
  llmbench run -n 8 -o - | jq '.scenarios[0].metrics.ttft_ms'";

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

    /// Read flags from a scenario file (TOML, see `llmbench init`); flags given here override it.
    #[arg(short = 'f', long = "file", value_name = "FILE", display_order = 11)]
    pub file: Option<PathBuf>,

    /// Wire protocol (default: probe the URL).
    ///
    /// auto (probe the URL), openai-chat, openai-completions, ollama-chat, ollama-generate, tgi,
    /// llamacpp, generate, openai-embeddings or rerank.
    #[arg(long, default_value = "auto", value_name = "NAME", display_order = 6)]
    pub backend: String,

    /// Model to request (default: the first the server lists).
    #[arg(long, value_name = "NAME", display_order = 5)]
    pub model: Option<String>,

    /// Measured requests to send (default 100 unless --duration).
    #[arg(short = 'n', long, value_name = "N", display_order = 1)]
    pub requests: Option<u64>,

    /// Stop scheduling after this long (e.g. 60s, 5m).
    #[arg(short = 'd', long, value_parser = humantime::parse_duration, value_name = "DUR", display_order = 2)]
    pub duration: Option<std::time::Duration>,

    /// Closed loop: requests kept in flight (1 = one after another).
    #[arg(short = 'c', long, value_name = "N", display_order = 3)]
    pub concurrency: Option<usize>,

    /// Open loop: requests per second, on schedule whatever the server does.
    #[arg(short = 'r', long, value_name = "R", display_order = 4)]
    pub rate: Option<f64>,

    // ---- Target ----
    /// Environment variable holding the API key (bearer token).
    #[arg(long, default_value = "OPENAI_API_KEY", value_name = "NAME", help_heading = H_TARGET)]
    pub api_key_env: String,

    /// File holding the API key; takes precedence over --api-key-env.
    #[arg(long, value_name = "FILE", help_heading = H_TARGET)]
    pub api_key_file: Option<PathBuf>,

    /// Extra request header (repeatable; values never written anywhere).
    #[arg(long = "header", value_name = "NAME: VALUE", help_heading = H_TARGET)]
    pub headers: Vec<String>,

    /// Ollama: pull the model through /api/pull when missing.
    #[arg(long, help_heading = H_TARGET)]
    pub pull: bool,

    /// Token counts the server does not report: tokenizer.json, cl100k, chunks.
    ///
    /// A tokenizer.json path, cl100k (built in, the default) or chunks (one token per streamed
    /// chunk).
    #[arg(long, value_name = "SPEC", help_heading = H_TARGET)]
    pub tokenizer: Option<String>,

    // ---- Connection ----
    /// Connect timeout.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s", value_name = "DUR", help_heading = H_CONNECTION)]
    pub connect_timeout: std::time::Duration,

    /// Total time allowed per request.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "600s", value_name = "DUR", help_heading = H_CONNECTION)]
    pub request_timeout: std::time::Duration,

    /// Longest silence between two reads of a response.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "300s", value_name = "DUR", help_heading = H_CONNECTION)]
    pub idle_timeout: std::time::Duration,

    /// Skip TLS certificate verification.
    #[arg(long, help_heading = H_CONNECTION)]
    pub insecure: bool,

    /// Trust this extra CA certificate (PEM).
    #[arg(long, value_name = "FILE", help_heading = H_CONNECTION)]
    pub ca_cert: Option<PathBuf>,

    /// Use HTTP(S)_PROXY from the environment.
    #[arg(long, help_heading = H_CONNECTION)]
    pub use_env_proxy: bool,

    /// Retry HTTP 408/429/5xx and transport errors up to N times.
    ///
    /// Off by default; every retried attempt is written to the records and counted.
    #[arg(long, default_value_t = 0, value_name = "N", help_heading = H_CONNECTION)]
    pub retries: u32,

    /// Longest wait before a retry (caps a server's Retry-After).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s", value_name = "DUR", help_heading = H_CONNECTION, hide_short_help = true)]
    pub retry_max_wait: std::time::Duration,

    /// A new connection for every request (servers that mishandle keep-alive).
    ///
    /// Open a new connection for every request (and ask the server to close it): for servers
    /// that mishandle kept-alive connections. Without it, a request that fails on a reused
    /// connection before any byte of its response arrived is resent once, at once, on a fresh
    /// connection (the record says `stale_connection_resent`).
    #[arg(long, help_heading = H_CONNECTION)]
    pub no_keepalive: bool,

    /// Send each attempt's id (RUN_ID-N) in this header and record it.
    ///
    /// Send each attempt's id in this header (e.g. X-Request-Id), RUN_ID-N, and record it as
    /// `request_id`, to find a request in the server's logs (the simulator's --send-log keys
    /// its send times by X-Request-Id).
    #[arg(long, value_name = "NAME", help_heading = H_CONNECTION, hide_short_help = true)]
    pub request_id_header: Option<String>,

    // ---- Load ----
    /// Open loop arrival process.
    #[arg(long, value_enum, default_value_t = ArrivalArg::Poisson, help_heading = H_LOAD)]
    pub arrival: ArrivalArg,

    /// Coefficient of variation of gamma arrivals (1 = Poisson).
    ///
    /// 1 is Poisson; above 1, burstier.
    #[arg(long, default_value_t = 1.0, value_name = "CV", help_heading = H_LOAD)]
    pub burstiness: f64,

    /// Open loop: cap on requests in flight (waits are queue time).
    #[arg(long, value_name = "N", help_heading = H_LOAD)]
    pub max_concurrency: Option<usize>,

    /// Requests sent first and left out of statistics.
    #[arg(long, default_value_t = 0, value_name = "N", help_heading = H_LOAD)]
    pub warmup: u64,

    /// Seed of random schedules and synthetic prompts.
    #[arg(long, default_value_t = 0, value_name = "N", help_heading = H_LOAD)]
    pub seed: u64,

    /// On Ctrl-C, wait this long for requests in flight.
    ///
    /// On Ctrl-C, wait this long for in-flight requests before cancelling them.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s", value_name = "DUR", help_heading = H_LOAD)]
    pub grace: std::time::Duration,

    /// Keep sending until a percentile is known to ± a share of its value, e.g. "ttft_p99±5%".
    ///
    /// Stops once the 95 % interval of that percentile lies within ± the given share of its
    /// value (or +-5%); bounded by --requests or --duration.
    #[arg(long, value_name = "METRIC_pQ±X%", help_heading = H_LOAD)]
    pub until: Option<String>,

    // ---- Workload ----
    /// Output token limit per request.
    #[arg(long, default_value_t = 128, value_name = "N", help_heading = H_WORKLOAD)]
    pub max_tokens: u32,

    /// Sampling temperature (not sent when absent).
    #[arg(long, value_name = "T", help_heading = H_WORKLOAD)]
    pub temperature: Option<f64>,

    /// Prompt text (default: a built-in prompt).
    #[arg(long, value_name = "TEXT", help_heading = H_WORKLOAD)]
    pub prompt: Option<String>,

    /// Ask the server to ignore end-of-sequence (fixed output lengths).
    ///
    /// Sends ignore_eos and min_tokens.
    #[arg(long, help_heading = H_WORKLOAD)]
    pub ignore_eos: bool,

    /// Non-streamed responses (TTFT then equals end-to-end latency).
    #[arg(long, help_heading = H_WORKLOAD)]
    pub no_stream: bool,

    /// Share of requests (0 to <1) repeating an earlier prompt exactly.
    ///
    /// The others get unique prompts. The cache hit rate then comes from what the server
    /// reports.
    #[arg(long, value_name = "SHARE", help_heading = H_WORKLOAD)]
    pub repeat_ratio: Option<f64>,

    /// What to send: suites, datasets, synthetic lengths, conversations.
    #[command(flatten)]
    pub workload: WorkloadArgs,

    // ---- Output ----
    /// Write the result file (JSON) here; `-` for standard output.
    ///
    /// With `-o -` the result JSON is the only thing written to standard output: progress,
    /// tables and messages go to standard error.
    #[arg(short = 'o', long, value_name = "FILE", display_order = 7)]
    pub output: Option<PathBuf>,

    /// No progress bar.
    #[arg(short = 'q', long, display_order = 10)]
    pub quiet: bool,

    /// On a terminal, show the run full screen: progress, live rates and percentiles, and a
    /// histogram of recent TTFTs (oha-style); the terminal is given back when the run ends.
    #[arg(long, help_heading = H_OUTPUT)]
    pub tui: bool,

    /// Name of the scenario in reports.
    #[arg(long, default_value = "default", help_heading = H_OUTPUT)]
    pub name: String,

    /// Stream one JSON line per finished request here.
    #[arg(long, value_name = "FILE", help_heading = H_OUTPUT)]
    pub records: Option<PathBuf>,

    /// Reports, targets and the results store.
    #[command(flatten)]
    pub outputs: OutputArgs,

    /// Resource sampling, server metrics, managed server.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,

    /// Simulator settings, used when no URL is given.
    #[command(flatten)]
    pub sim: SimArgs,

    /// Sharded runs: one plan over several load hosts.
    #[command(flatten)]
    pub shard: super::shard::ShardArgs,
}

/// Flags that choose what `run` sends.
#[derive(Debug, Clone, Default, Args)]
pub struct WorkloadArgs {
    /// A built-in suite (`llmbench suites`); one scenario per step.
    #[arg(long, value_name = "NAME", help_heading = H_WORKLOAD)]
    pub suite: Option<String>,

    /// Prompts from a file: JSONL, ShareGPT JSON or plain text.
    ///
    /// JSONL ({"prompt"} or {"messages"}, optional max_tokens), ShareGPT JSON, or plain text (one
    /// prompt per line).
    #[arg(long, value_name = "FILE", help_heading = H_WORKLOAD)]
    pub dataset: Option<PathBuf>,

    /// Format of --dataset: auto, jsonl, sharegpt or text.
    ///
    /// auto decides by extension and content.
    #[arg(long, default_value = "auto", value_name = "FMT", help_heading = H_WORKLOAD)]
    pub dataset_format: String,

    /// Shuffle the dataset (with --seed).
    #[arg(long, help_heading = H_WORKLOAD)]
    pub shuffle: bool,

    /// Synthetic prompts of this many tokens (mean).
    #[arg(long, value_name = "N", help_heading = H_WORKLOAD)]
    pub prompt_tokens: Option<u64>,

    /// Standard deviation of synthetic prompt lengths (tokens).
    #[arg(long, default_value_t = 0.0, value_name = "N", help_heading = H_WORKLOAD)]
    pub prompt_tokens_stdev: f64,

    /// Output tokens per request (mean); ignores end-of-sequence.
    ///
    /// Asks the server to ignore end-of-sequence.
    #[arg(long, value_name = "N", help_heading = H_WORKLOAD)]
    pub output_tokens: Option<u64>,

    /// Standard deviation of output lengths (tokens).
    #[arg(long, default_value_t = 0.0, value_name = "N", help_heading = H_WORKLOAD)]
    pub output_tokens_stdev: f64,

    /// Tokens every synthetic prompt starts with, shared (prefix cache).
    ///
    /// Tokens at the start of every synthetic prompt shared by all requests.
    #[arg(long, default_value_t = 0, value_name = "N", help_heading = H_WORKLOAD)]
    pub shared_prefix_tokens: u64,

    /// Replay a trace at its timestamps with its lengths (open loop).
    ///
    /// Each request is sent at its timestamp with the trace's input and output lengths;
    /// --requests N sends the first N rows.
    #[arg(long, value_name = "FILE", help_heading = H_WORKLOAD)]
    pub trace: Option<PathBuf>,

    /// Format of --trace: mooncake, azure or burstgpt.
    ///
    /// mooncake (JSONL), azure or burstgpt (CSV); default: .jsonl is mooncake, a CSV by its
    /// header.
    #[arg(long, value_name = "FMT", help_heading = H_WORKLOAD)]
    pub trace_format: Option<String>,

    /// Replay the trace this many times faster (2 = half the gaps).
    #[arg(long, default_value_t = 1.0, value_name = "X", help_heading = H_WORKLOAD)]
    pub trace_speedup: f64,

    /// Multi-turn conversations from a JSON file (see README).
    ///
    /// Each request carries the conversation's history.
    #[arg(long, value_name = "FILE", help_heading = H_WORKLOAD)]
    pub conversations: Option<PathBuf>,

    /// Only conversations with one of these tags (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "TAGS", help_heading = H_WORKLOAD)]
    pub include_tags: Vec<String>,

    /// Leave out conversations with any of these tags (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "TAGS", help_heading = H_WORKLOAD)]
    pub exclude_tags: Vec<String>,

    /// Context (tokens) conversations must fit in (default: ask the server).
    #[arg(long, value_name = "N", help_heading = H_WORKLOAD)]
    pub context_size: Option<u64>,

    /// Run at most this many conversations.
    #[arg(long, value_name = "N", help_heading = H_WORKLOAD)]
    pub max_conversations: Option<usize>,

    /// Print the conversations with their token sizes and exit.
    ///
    /// After the tag filters.
    #[arg(long, help_heading = H_WORKLOAD)]
    pub list_conversations: bool,

    /// Chat template for completion endpoints: a Jinja file or a name.
    ///
    /// A Jinja file (as in tokenizer_config.json) or a built-in name (chatml, llama-3, phi-3).
    #[arg(long, value_name = "FILE|NAME", help_heading = H_WORKLOAD)]
    pub chat_template: Option<String>,

    /// An OpenAI `tools` array (JSON file) sent with every chat request.
    ///
    /// Tool-call replies count as output and records say how many calls came back.
    #[arg(long, value_name = "FILE", help_heading = H_WORKLOAD)]
    pub tools: Option<std::path::PathBuf>,

    /// Attach COUNT synthetic images of WIDTHxHEIGHT to every chat request (repeatable).
    ///
    /// Seeded random pixels, sent as data URLs after the prompt's text.
    #[arg(long = "image", value_name = "WxH[:COUNT]", help_heading = H_WORKLOAD)]
    pub image: Vec<String>,

    /// Encoding of --image images: jpeg (quality 85) or png.
    #[arg(long, default_value = "jpeg", value_name = "FORMAT", help_heading = H_WORKLOAD, hide_short_help = true)]
    pub image_format: String,

    /// Attach COUNT synthetic audio clips of SECONDS to every openai-chat request (repeatable).
    ///
    /// 16 kHz mono WAV of quiet seeded noise, sent as input_audio parts.
    #[arg(long = "audio", value_name = "SECONDS[:COUNT]", help_heading = H_WORKLOAD)]
    pub audio: Vec<String>,

    /// Texts per request for the openai-embeddings and rerank backends.
    ///
    /// For rerank, the documents to rank.
    #[arg(long, default_value_t = 1, value_name = "N", help_heading = H_WORKLOAD)]
    pub batch_inputs: u32,
}

/// Flags of `run` and `sweep` about reports, performance targets and the results store.
#[derive(Debug, Clone, Default, Args)]
pub struct OutputArgs {
    /// Performance targets, e.g. "ttft_p95<200ms,tpot_p99<50ms"; exit 3 on a FAIL.
    ///
    /// E.g. "ttft_p95<200ms,tpot_p99<50ms,e2e_p50<2s"; prints PASS/FAIL per target and goodput,
    /// exits 3 when one fails (see README).
    #[arg(long, value_name = "TARGETS", display_order = 9)]
    pub slo: Option<String>,

    /// Also write these formats next to the result file (-o): json,csv,md,html.
    #[arg(long, value_delimiter = ',', value_name = "FMTS", help_heading = H_OUTPUT)]
    pub format: Vec<String>,

    /// Write the full report (summaries, CSV, HTML, charts) into this directory.
    #[arg(long, value_name = "DIR", display_order = 8)]
    pub report: Option<PathBuf>,

    /// Do not record this run in the results store ($LLMBENCH_HOME/llmbench.db).
    #[arg(long, env = "LLMBENCH_NO_STORE", value_parser = clap::builder::BoolishValueParser::new(), help_heading = H_OUTPUT)]
    pub no_store: bool,

    /// Record the run in this results store: postgres://USER@HOST/DB or a SQLite file.
    ///
    /// Default: $LLMBENCH_HOME/llmbench.db. A PostgreSQL store is reached (and its schema set up)
    /// before any request; one that cannot be reached fails the run up front (exit 2).
    #[arg(long, env = "LLMBENCH_STORE", hide_env_values = true, value_name = "URL|FILE", help_heading = H_OUTPUT)]
    pub store: Option<String>,

    /// A label stored with the run, NAME=VALUE (repeatable); the dashboard filters by it.
    #[arg(long, value_name = "NAME=VALUE", help_heading = H_OUTPUT, hide_short_help = true)]
    pub tag: Vec<String>,
}

/// Flags of the resource timeline, server metrics and the managed server.
#[derive(Debug, Clone, Args)]
pub struct TelemetryArgs {
    /// How often to sample CPU, memory, GPUs and the server's /metrics.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "500ms", value_name = "DUR", help_heading = H_SERVER)]
    pub sample_interval: std::time::Duration,

    /// Follow this server process (and its children): CPU and RSS.
    #[arg(long, conflicts_with = "server_cmd", value_name = "PID", help_heading = H_SERVER)]
    pub server_pid: Option<u32>,

    /// Prometheus endpoint of the server (default: the target's /metrics).
    ///
    /// The target's /metrics is used when it answers.
    #[arg(long, value_name = "URL", help_heading = H_SERVER)]
    pub metrics_url: Option<String>,

    /// Do not scrape server metrics.
    #[arg(long, conflicts_with = "metrics_url", help_heading = H_SERVER)]
    pub no_metrics: bool,

    /// Start this server before the run and stop it after.
    ///
    /// Needs the URL it will answer on.
    #[arg(long, value_name = "CMD", help_heading = H_SERVER)]
    pub server_cmd: Option<String>,

    /// Longest wait for the --server-cmd server to answer.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "300s", value_name = "DUR", help_heading = H_SERVER)]
    pub server_ready_timeout: std::time::Duration,

    /// Wait after SIGTERM before the server gets SIGKILL.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s", value_name = "DUR", help_heading = H_SERVER, hide_short_help = true)]
    pub server_stop_grace: std::time::Duration,

    /// Log file of the --server-cmd server.
    ///
    /// Default: next to --output, NAME.server.log.
    #[arg(long, value_name = "FILE", help_heading = H_SERVER)]
    pub server_log: Option<PathBuf>,

    /// Restart the --server-cmd server before every scenario.
    ///
    /// Cold caches each time.
    #[arg(long, requires = "server_cmd", help_heading = H_SERVER)]
    pub isolate: bool,

    /// Price of one GPU per hour (US dollars): cost per million tokens.
    ///
    /// Reports cost per million output and input tokens at the measured throughput.
    #[arg(long, value_name = "USD", allow_negative_numbers = true, help_heading = H_SERVER)]
    pub gpu_cost_per_hour: Option<f64>,

    /// GPUs paid for by --gpu-cost-per-hour (default: the GPUs detected on this machine).
    #[arg(long, value_name = "N", allow_negative_numbers = true, help_heading = H_SERVER)]
    pub gpus: Option<i64>,
}
