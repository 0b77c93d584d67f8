//! llmbench: benchmark LLM inference servers.
//!
//! Data path: workload → schedule → client + protocol → record → stats → report / store.

pub mod cli;
pub mod client;
pub mod commands;
pub mod compare;
pub mod config;
pub mod converse;
pub mod health;
pub mod managed;
pub mod plan;
pub mod protocol;
pub mod record;
pub mod report;
pub mod result;
pub mod runner;
pub mod schedule;
pub mod server_info;
pub mod sim;
pub mod slo;
pub mod sse;
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod timer;
pub mod turn_stats;
pub mod workload;

pub mod target;
pub mod tokenize;

use cli::{Cli, Command};

/// Runs a parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run(args) => commands::run::run(*args).await,
        Command::Serve(args) => commands::serve::serve(args).await,
        Command::Suites => commands::suites::suites(),
        Command::Sweep(args) => commands::sweep::sweep(args).await,
        Command::Detect(args) => commands::detect::detect_cmd(args).await,
        Command::Optimize(args) => commands::optimize::optimize(args).await,
        Command::Compare(args) => commands::compare::compare(args),
        Command::History(args) => commands::history::history(args),
        Command::Export(args) => commands::history::export(args),
        Command::Report(args) => commands::report::report(args),
        Command::Summarize(args) => commands::summarize::summarize(args),
    }
}
