//! Command-line interface: subcommands and flags only, as typed. Validation is in
//! `crate::settings`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::server::detect::ServerKind;

mod capacity;
mod sim;

pub use capacity::{ByArg, CAPACITY_ABOUT, CapacityArgs, CapacityFlags};
pub use sim::{ServeArgs, SimArgs};

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
    /// Find the highest load that meets every --slo target (see `llmbench capacity --help`).
    #[command(long_about = CAPACITY_ABOUT)]
    Capacity(CapacityArgs),
    /// Describe this machine (CPU, memory, GPUs) and the LLM servers on the usual local ports.
    Detect(DetectArgs),
    /// Recommend server settings for this machine and a model size, each with its reason.
    Optimize(OptimizeArgs),
    /// Compare two runs (files or run ids) per scenario; exits 4 on a significant regression.
    Compare(CompareArgs),
    /// List the runs in the results store.
    History(HistoryArgs),
    /// Write a stored run's result file back out.
    Export(ExportArgs),
    /// Write summaries, CSV, HTML and charts for saved results (default: the latest run).
    Report(ReportArgs),
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

    /// Wire protocol: auto (probe the URL), openai-chat, openai-completions, ollama-chat,
    /// ollama-generate, tgi, llamacpp or generate.
    #[arg(long, default_value = "auto")]
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
    pub temperature: Option<f64>,

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

    /// Share of requests (0 to <1) that repeat an earlier request's prompt exactly; the others
    /// get unique prompts. The cache hit rate then comes from what the server reports.
    #[arg(long)]
    pub repeat_ratio: Option<f64>,

    /// Local tokenizer for token counts the server does not report: a tokenizer.json path,
    /// cl100k (built in, the default) or chunks (one token per streamed chunk).
    #[arg(long)]
    pub tokenizer: Option<String>,

    /// Ollama: pull the model through /api/pull when the server does not have it.
    #[arg(long)]
    pub pull: bool,

    /// What to send: suites, datasets, synthetic lengths, conversations.
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Resource sampling, server metrics, managed server.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,

    /// Reports, targets and the results store.
    #[command(flatten)]
    pub outputs: OutputArgs,

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

    /// Open a new connection for every request (and ask the server to close it): for servers
    /// that mishandle kept-alive connections. Without it, a request that fails on a reused
    /// connection before any byte of its response arrived is resent once, at once, on a fresh
    /// connection (the record says `stale_connection_resent`).
    #[arg(long)]
    pub no_keepalive: bool,

    /// Send each attempt's id in this header (e.g. X-Request-Id), RUN_ID-N, and record it as
    /// `request_id`, to find a request in the server's logs (the simulator's --send-log keys
    /// its send times by X-Request-Id).
    #[arg(long, value_name = "NAME")]
    pub request_id_header: Option<String>,

    /// Keep sending until the 95 % interval of this percentile lies within ± the given share
    /// of its value, e.g. "ttft_p99±5%" (or +-5%); bounded by --requests or --duration.
    #[arg(long, value_name = "METRIC_pQ±X%")]
    pub until: Option<String>,
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

    /// Replay a trace: each request sent at its timestamp with the trace's input and output
    /// lengths (open loop; --requests N sends the first N rows).
    #[arg(long)]
    pub trace: Option<PathBuf>,

    /// Format of --trace: mooncake (JSONL), azure or burstgpt (CSV); default: .jsonl is
    /// mooncake, a CSV by its header.
    #[arg(long)]
    pub trace_format: Option<String>,

    /// Replay the trace this many times faster (2 = half the gaps).
    #[arg(long, default_value_t = 1.0)]
    pub trace_speedup: f64,

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

    /// An OpenAI `tools` array (JSON file) sent with every chat request; tool-call replies
    /// count as output and records say how many calls came back.
    #[arg(long, value_name = "FILE")]
    pub tools: Option<std::path::PathBuf>,

    /// Texts per request for the openai-embeddings and rerank backends (documents to rank).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub batch_inputs: u32,
}

/// `llmbench detect`.
#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// How long to wait for each local port to answer.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "500ms")]
    pub timeout: std::time::Duration,
}

/// Flags of the resource timeline, server metrics and the managed server.
#[derive(Debug, Clone, Args)]
pub struct TelemetryArgs {
    /// How often to sample CPU, memory, GPUs and the server's /metrics.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "500ms")]
    pub sample_interval: std::time::Duration,

    /// Follow this server process (and its children): CPU and RSS in the resource timeline.
    #[arg(long, conflicts_with = "server_cmd")]
    pub server_pid: Option<u32>,

    /// Prometheus endpoint of the server (default: the target's /metrics when it answers).
    #[arg(long)]
    pub metrics_url: Option<String>,

    /// Do not scrape server metrics.
    #[arg(long, conflicts_with = "metrics_url")]
    pub no_metrics: bool,

    /// Start this server before the run and stop it after (needs the URL it will answer on).
    #[arg(long)]
    pub server_cmd: Option<String>,

    /// Longest wait for the --server-cmd server to answer.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "300s")]
    pub server_ready_timeout: std::time::Duration,

    /// Wait after SIGTERM before the server gets SIGKILL.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub server_stop_grace: std::time::Duration,

    /// Log file of the --server-cmd server (default: next to --output, NAME.server.log).
    #[arg(long)]
    pub server_log: Option<PathBuf>,

    /// Restart the --server-cmd server before every scenario (cold caches each time).
    #[arg(long, requires = "server_cmd")]
    pub isolate: bool,

    /// Price of one GPU per hour (US dollars): reports cost per million output and input
    /// tokens at the measured throughput.
    #[arg(long, value_name = "USD", allow_negative_numbers = true)]
    pub gpu_cost_per_hour: Option<f64>,

    /// GPUs paid for by --gpu-cost-per-hour (default: the GPUs detected on this machine).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub gpus: Option<i64>,
}

/// `llmbench optimize`.
#[derive(Debug, Args)]
pub struct OptimizeArgs {
    /// Server the settings are for: ollama, vllm or llamacpp.
    #[arg(long, default_value = "ollama", value_parser = optimize_backend)]
    pub backend: ServerKind,

    /// Size of the model's weights in GB (default: 4.7, an 8B model at 4-bit).
    #[arg(long)]
    pub model_gb: Option<f64>,

    /// Context per request (tokens).
    #[arg(long, default_value_t = 8192)]
    pub context: u64,

    /// Write the settings as a shell script here (export lines, SERVER_ARGS, reasons).
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,

    /// Print JSON.
    #[arg(long, conflicts_with = "server_cmd")]
    pub json: bool,

    /// Check the advice: start the server with this command and benchmark it, then start it
    /// with the recommended settings put in and benchmark it again; print the comparison.
    #[arg(long)]
    pub server_cmd: Option<String>,

    /// URL the --server-cmd server answers on (default: the backend's usual local port).
    #[arg(long, requires = "server_cmd")]
    pub url: Option<String>,

    /// Where the check writes before.json, after.json, the server logs and optimize.json.
    #[arg(long, default_value = "llmbench-optimize", requires = "server_cmd")]
    pub out_dir: PathBuf,

    /// Longest wait for the --server-cmd server to answer.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "300s")]
    pub server_ready_timeout: std::time::Duration,

    /// `run` flags of the check's benchmark, after `--` (default: --concurrency twice the
    /// recommended parallelism (at least 4), 4 requests per slot, as many warm-up requests).
    #[arg(last = true, allow_hyphen_values = true)]
    pub run_args: Vec<String>,
}

/// Flags of `run` and `sweep` about reports, performance targets and the results store.
#[derive(Debug, Clone, Default, Args)]
pub struct OutputArgs {
    /// Performance targets, e.g. "ttft_p95<200ms,tpot_p99<50ms,e2e_p50<2s"; prints PASS/FAIL per
    /// target and goodput, exits 3 when one fails (see README).
    #[arg(long)]
    pub slo: Option<String>,

    /// Also write these formats next to the result file (-o): json,csv,md,html.
    #[arg(long, value_delimiter = ',')]
    pub format: Vec<String>,

    /// Write the full report (summaries, CSV, HTML, charts) into this directory at the end.
    #[arg(long)]
    pub report: Option<PathBuf>,

    /// Do not record this run in the results store ($LLMBENCH_HOME/llmbench.db).
    #[arg(long, env = "LLMBENCH_NO_STORE", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_store: bool,
}

/// `llmbench compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline: a result file or a run id from `llmbench history` (`latest` works too).
    pub base: String,

    /// The new run: a result file or a run id.
    pub new: String,

    /// Worst allowed relative change of a latency (up) or throughput (down) metric.
    #[arg(long, default_value = "10%")]
    pub max_regression: String,

    /// Also write the comparison as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// `llmbench history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only runs whose model contains this.
    #[arg(long)]
    pub model: Option<String>,

    /// Only runs whose target URL contains this.
    #[arg(long)]
    pub target: Option<String>,

    /// Most runs to list.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub limit: usize,
}

/// `llmbench export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Run id (or a unique prefix, or `latest`).
    pub id: String,

    /// Write here instead of standard output.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
}

/// `llmbench report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Result files or run ids (none: the latest run in the store).
    pub results: Vec<String>,

    /// Directory to write into (created if missing).
    #[arg(long, default_value = "llmbench-report")]
    pub out: PathBuf,
}

/// `optimize --backend`: the servers llmbench has advice for.
fn optimize_backend(v: &str) -> Result<ServerKind, String> {
    match v {
        "ollama" => Ok(ServerKind::Ollama),
        "vllm" => Ok(ServerKind::Vllm),
        "llamacpp" | "llama.cpp" => Ok(ServerKind::LlamaCpp),
        _ => Err("choose ollama, vllm or llamacpp".into()),
    }
}
