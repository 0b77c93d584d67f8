//! `llmbench capacity`: its flags, as typed (checked in `settings::capacity`).

use clap::{Args, ValueEnum};

/// Help of `llmbench capacity`.
pub const CAPACITY_ABOUT: &str = "Find the highest load that meets every --slo target, with an interval.

  llmbench capacity [URL] --slo \"ttft_p99<500ms,tpot_p99<50ms\" [--by rate|concurrency] [--max-time 10m] [run flags...]

Brackets the answer (doubling the load from --start until a step does not pass), then bisects.
Each step stops as soon as every target's 95 % order-statistic interval lies on one side of its
threshold, or at its budget (--requests, --duration: default 1000 requests or 60s) as
\"undecided\" (counted as not passing). Targets: p50/p90/p95/p99 of ttft, tpot, e2e, queue.
The server is reused between steps, unless --server-cmd \"...\" --isolate restarts it before
each. The answer is the last load that passed, with the first that did not. `-f FILE` reads these flags from a scenario file (see `llmbench init`).";

/// `llmbench capacity`: its own flags and `run`'s.
#[derive(Debug, Args)]
pub struct CapacityArgs {
    /// URL, --slo, the flags below and `run` flags (not --concurrency or --rate: the search
    /// chooses the load).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

/// What `capacity` varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ByArg {
    /// Requests in flight (closed loop).
    Concurrency,
    /// Requests per second (open loop).
    Rate,
}

/// The flags of `llmbench capacity` besides `run`'s.
#[derive(Debug, Clone, Args)]
pub struct CapacityFlags {
    /// What to vary: concurrency (closed loop) or rate (open loop, requests per second).
    #[arg(long, value_enum, default_value_t = ByArg::Concurrency)]
    pub by: ByArg,

    /// Time for the whole search: no step starts after it.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10m")]
    pub max_time: std::time::Duration,

    /// First load tried (concurrency, or requests per second).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub start: f64,

    /// A rate search ends when the first failing rate is within this share of the last
    /// passing one (e.g. 5% or 0.05).
    #[arg(long, default_value = "5%")]
    pub precision: String,

    /// Finished requests between two looks at a step's intervals (default: the load, at
    /// least 5).
    #[arg(long)]
    pub check_every: Option<u64>,
}
