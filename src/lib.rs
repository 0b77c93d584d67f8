//! llmbench: benchmark LLM inference servers.
//!
//! Data path: workload → schedule → client + protocol → record → stats → report / store.

pub mod cli;
pub(crate) mod commands;
pub mod load;
pub mod measure;
pub mod protocol;
pub(crate) mod report;
pub mod results;
pub mod rng;
pub mod server;
pub(crate) mod settings;
pub mod sim;
pub mod telemetry;
pub mod transport;
pub mod workload;

use std::sync::atomic::{AtomicBool, Ordering};

use cli::{Cli, Command};

static PANICKED: AtomicBool = AtomicBool::new(false);

/// Notes every panic, on any thread or task, after the usual message: a run that hit one is
/// never reported or stored as completed (tasks that panic are otherwise only a lost record).
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICKED.store(true, Ordering::SeqCst);
        previous(info);
    }));
}

/// Whether anything panicked since the hook was installed.
pub(crate) fn panicked() -> bool {
    PANICKED.load(Ordering::SeqCst)
}

/// Runs a parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run(args) => commands::run::run(*args).await,
        Command::Serve(args) => commands::serve::serve(args).await,
        Command::Suites => commands::suites::suites(),
        Command::Sweep(args) => commands::sweep::sweep(args).await,
        Command::Capacity(args) => commands::capacity::capacity(args).await,
        Command::Detect(args) => commands::detect::detect_cmd(args).await,
        Command::Optimize(args) => commands::optimize::optimize(args).await,
        Command::Compare(args) => commands::compare::compare(args),
        Command::History(args) => commands::history::history(args),
        Command::Export(args) => commands::history::export(args),
        Command::Report(args) => commands::report::report(args),
        Command::Summarize(args) => commands::summarize::summarize(args),
    }
}
