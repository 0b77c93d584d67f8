//! Command-line interface: subcommands and flags only, as typed. Validation is in
//! `crate::settings`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::server::detect::ServerKind;

mod capacity;
mod file;
mod run;
mod shard;
mod sim;

pub use capacity::{ByArg, CAPACITY_ABOUT, CapacityArgs, CapacityFlags};
pub use file::{FileCall, FileCommand, InitArgs, file_call};
pub use run::{ArrivalArg, OutputArgs, RUN_EXAMPLES, RunArgs, TelemetryArgs, WorkloadArgs};
pub use shard::{ClockArgs, K8sArgs, MergeArgs, ShardArgs};
pub use sim::{ServeArgs, SimArgs};

/// Benchmark LLM inference servers: TTFT, TPOT, ITL, end-to-end latency, throughput.
#[derive(Debug, Parser)]
#[command(name = "llmbench", version, about, long_about = None)]
pub struct Cli {
    /// A failing command prints its error as one JSON object on standard error:
    /// {"error": "…", "exit_code": N}. Give it before the command (`llmbench --json run …`).
    #[arg(long)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Benchmark a server (the built-in simulator when no URL is given).
    #[command(after_long_help = RUN_EXAMPLES)]
    Run(Box<RunArgs>),
    /// Serve the built-in simulated inference server.
    Serve(ServeArgs),
    /// List the built-in suites (`run --suite NAME`).
    Suites,
    /// Run one scenario per value of one varied flag (see `llmbench sweep --help`).
    #[command(long_about = SWEEP_ABOUT, disable_help_flag = true)]
    Sweep(SweepArgs),
    /// Find the highest load that meets every --slo target (see `llmbench capacity --help`).
    #[command(long_about = CAPACITY_ABOUT)]
    Capacity(CapacityArgs),
    /// VeloLLM's benchmark: the standard suite against a local server, a line per iteration.
    #[command(after_long_help = BENCHMARK_HELP)]
    Benchmark(BenchmarkArgs),
    /// Write a commented example scenario file (`run -f bench.toml`).
    #[command(after_long_help = INIT_HELP)]
    Init(InitArgs),
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
    /// Results store tasks: `store copy FROM TO` moves every run from one store to another.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Serve a local web dashboard of the results store (runs, trends, comparisons).
    Ui(UiArgs),
    /// Rebuild the summary (and optionally a result file) from a --records JSONL file alone.
    Summarize(SummarizeArgs),
    /// Merge the shard results of one sharded plan (`run --shard K/N`) into one result file.
    Merge(MergeArgs),
    /// Answer time requests, for the clock offsets of sharded runs (`run --clock URL`).
    Clock(ClockArgs),
    /// Write a Kubernetes Indexed Job (and clock Service) running a plan as N shards.
    K8s(K8sArgs),
    /// Print a shell completion script: bash, zsh, fish or powershell.
    #[command(after_long_help = COMPLETIONS_HELP)]
    Completions(CompletionsArgs),
    /// Print the manual page (roff) of llmbench or of one command.
    #[command(
        after_long_help = "Example:\n  llmbench man > llmbench.1 && man ./llmbench.1\n  llmbench man run | man -l -"
    )]
    Man(ManArgs),
}

/// After `llmbench benchmark --help`.
const BENCHMARK_HELP: &str =
    "Three prompts, as VeloLLM's `velollm benchmark` sends them: short_completion (50 tokens,
5 iterations), medium_completion (150, 3), code_generation (200, 3). The same as
  llmbench run URL --suite standard --backend ollama-generate --model MODEL
with one line per iteration and the overall average. -o writes VeloLLM's JSON (one object per
benchmark: config, tokens_per_second, time_to_first_token_ms, total_time_ms, total_tokens,
prompt_eval_count, eval_count); the full result is in the results store (`llmbench export`).";

/// `llmbench benchmark`.
#[derive(Debug, Args)]
pub struct BenchmarkArgs {
    /// Model to benchmark.
    #[arg(short = 'm', long, default_value = "llama3.2:3b")]
    pub model: String,

    /// Write the results as JSON (VeloLLM's shape) here.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,

    /// Server kind: ollama (localhost:11434), llamacpp (localhost:8080) or vllm (localhost:8000).
    #[arg(short = 'b', long, default_value = "ollama")]
    pub backend: String,

    /// The server's URL, when not the backend's usual local one.
    #[arg(long)]
    pub url: Option<String>,

    /// Iterations of each prompt (default 5, 3 and 3).
    #[arg(short = 'n', long)]
    pub iterations: Option<u64>,
}

/// After `llmbench init --help`.
const INIT_HELP: &str =
    "A scenario file holds what a command line says; flags given with it override it:
  llmbench init                      # writes bench.toml
  llmbench run -f bench.toml         # runs it
  llmbench run -f bench.toml -n 20   # the same with 20 requests per scenario
More examples: examples/scenarios/ in the source tree.";

/// How to install the completion scripts.
const COMPLETIONS_HELP: &str = "Install:
  bash:       llmbench completions bash > ~/.local/share/bash-completion/completions/llmbench
  zsh:        llmbench completions zsh > ~/.zfunc/_llmbench   (with fpath+=~/.zfunc before compinit)
  fish:       llmbench completions fish > ~/.config/fish/completions/llmbench.fish
  powershell: llmbench completions powershell | Out-String | Invoke-Expression   (in $PROFILE)";

/// `llmbench completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `llmbench man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// A command (e.g. run) for its own page, named llmbench-COMMAND.
    pub command: Option<String>,
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

/// The long description of `llmbench sweep`.
pub const SWEEP_ABOUT: &str = "Run one scenario per value of one varied flag, into one result file.

Exactly one of --concurrency, --rate, --temperature, --max-tokens, --prompt-tokens takes a
comma-separated list; every other `llmbench run` flag (below) applies to every scenario. Each step
gets the seed plus its index, so synthetic prompts of one step never hit a cache another warmed.";

/// Examples at the end of `sweep --help` and `llmbench help sweep`.
pub const SWEEP_EXAMPLES: &str = "Examples:
  # Throughput versus batch size on the built-in simulator
  llmbench sweep --concurrency 1,8,16,32,64 -n 128

  # Open-loop rates against a server, with a report comparing the steps
  llmbench sweep http://localhost:8000 --rate 1,2,4,8 -d 60s --report sweep-report/

  # Temperatures, output lengths, prompt lengths
  llmbench sweep URL --temperature 0,0.3,0.7,1.0,1.5
  llmbench sweep URL --max-tokens 64,256,1024
  llmbench sweep URL --prompt-tokens 128,512,2048";

/// `sweep` as its help, completions and manual page show it: `run`'s flags under their
/// headings (the parser itself takes the words as they are, see `SweepArgs`).
pub fn sweep_command() -> clap::Command {
    use clap::Args as _;
    RunArgs::augment_args(clap::Command::new("sweep"))
        .about("Run one scenario per value of one varied flag, into one result file")
        .long_about(SWEEP_ABOUT)
        .after_long_help(SWEEP_EXAMPLES)
}

/// Whether `argv` (program name first) asks for errors as JSON: `--json` among the words
/// before the command. Read before parsing, so a parse error can honour it too.
pub fn json_errors_asked(argv: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    argv.into_iter()
        .skip(1)
        .take_while(|a| a.to_str().is_some_and(|s| s.starts_with('-')))
        .any(|a| a == "--json")
}

/// The whole command line as completions and manual pages describe it: `sweep` with `run`'s
/// flags.
pub fn full_command() -> clap::Command {
    use clap::CommandFactory as _;
    Cli::command().mut_subcommand("sweep", |_| sweep_command())
}

/// The command line as parsed: `Cli` with `llmbench help sweep` showing `run`'s flags.
pub fn command() -> clap::Command {
    use clap::CommandFactory as _;
    let long = sweep_command()
        .bin_name("llmbench sweep")
        .render_long_help();
    Cli::command().mut_subcommand("sweep", |s| s.override_help(long))
}

/// `llmbench sweep`: `run` flags, one of the sweepable ones given as a list.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// URL and `run` flags; one of --concurrency, --rate, --temperature, --max-tokens,
    /// --prompt-tokens as a comma-separated list.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
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

/// `--store` of the commands that read the results store.
#[derive(Debug, Clone, Default, Args)]
pub struct StoreArg {
    /// The results store: postgres://USER@HOST/DB or a SQLite file [default: $LLMBENCH_HOME/llmbench.db].
    #[arg(
        long,
        env = "LLMBENCH_STORE",
        hide_env_values = true,
        value_name = "URL|FILE"
    )]
    pub store: Option<String>,
}

/// `llmbench store …`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy every run from one store to another (runs already there are replaced).
    ///
    /// Each is a postgres://USER@HOST/DB URL or a SQLite file, e.g.
    /// `llmbench store copy ~/.local/share/llmbench/llmbench.db postgres://me@db/bench`.
    Copy {
        /// The store to read.
        from: String,
        /// The store to write (created and migrated if new).
        to: String,
    },
}

/// `llmbench ui`.
#[derive(Debug, Args)]
pub struct UiArgs {
    #[command(flatten)]
    pub store: StoreArg,

    /// Port to listen on (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,

    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
}

/// `llmbench compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub store: StoreArg,

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
    #[command(flatten)]
    pub store: StoreArg,

    /// Only runs whose model contains this.
    #[arg(long)]
    pub model: Option<String>,

    /// Only runs whose target URL contains this.
    #[arg(long)]
    pub target: Option<String>,

    /// Only runs against this backend (openai-chat, ollama, llamacpp, …).
    #[arg(long)]
    pub backend: Option<String>,

    /// Only runs stored with this tag (`run --tag NAME=VALUE`).
    #[arg(long, value_name = "NAME=VALUE")]
    pub tag: Option<String>,

    /// Most runs to list.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub limit: usize,

    /// Print the runs as a JSON array, newest first (each with its per-scenario summary).
    #[arg(long)]
    pub json: bool,
}

/// `llmbench export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub store: StoreArg,

    /// Run id (or a unique prefix, or `latest`).
    pub id: String,

    /// Write here instead of standard output.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
}

/// `llmbench report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub store: StoreArg,

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

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(words: &[&str]) -> bool {
        json_errors_asked(words.iter().map(std::ffi::OsString::from))
    }

    #[test]
    fn json_errors_are_asked_before_the_command_only() {
        assert!(asked(&["llmbench", "--json", "run", "-c", "x"]));
        assert!(!asked(&["llmbench", "run", "--json"]));
        assert!(!asked(&[
            "llmbench", "compare", "a", "b", "--json", "c.json"
        ]));
        assert!(!asked(&["llmbench"]));
        assert!(!asked(&["--json"]), "the program name is not a flag");
    }

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
        full_command().debug_assert();
        sweep_command().debug_assert();
    }
}
