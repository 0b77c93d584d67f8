//! llmbench: benchmark LLM inference servers.
//!
//! Data path: workload → schedule → client + protocol → record → stats → report / store.

pub mod cli;
pub(crate) mod commands;
pub(crate) mod k8s;
pub mod load;
pub mod measure;
pub mod protocol;
pub(crate) mod recv_stamp;
pub(crate) mod report;
pub mod results;
pub mod rng;
pub mod server;
pub(crate) mod settings;
pub mod sim;
pub mod telemetry;
pub mod transport;
pub(crate) mod ui;
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

/// Prints a command's error on standard error: "error: …", the prefix in colour on a terminal;
/// with `json`, one JSON object `{"error": "…", "exit_code": N}` on one line.
pub fn print_error(e: &anyhow::Error, exit_code: i32, json: bool) {
    if json {
        eprintln!("{}", error_json(&format!("{e:#}"), exit_code));
    } else {
        report::colour::eprint_error!("{e:#}");
    }
}

fn error_json(message: &str, exit_code: i32) -> serde_json::Value {
    serde_json::json!({ "error": message, "exit_code": exit_code })
}

/// Ends the process on a command line clap could not parse (or on `--help`, `--version`):
/// clap's own text, or with `json` (and a real error) one JSON object with the error's first
/// paragraph.
pub fn exit_on_parse_error(e: clap::Error, json: bool) -> ! {
    if json && e.use_stderr() {
        let text = e.to_string();
        let first = text.split("\n\n").next().unwrap_or_default().trim();
        let message = first.strip_prefix("error: ").unwrap_or(first);
        eprintln!("{}", error_json(message, e.exit_code()));
        std::process::exit(e.exit_code());
    }
    e.exit()
}

/// Runs `run`, `sweep` or `capacity` with a scenario file (`-f`); returns the exit code.
pub async fn run_file(call: cli::FileCall) -> anyhow::Result<i32> {
    commands::file::run_file(call).await
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
        Command::Store(c) => commands::store::store(c),
        Command::Ui(args) => commands::ui::ui(args).await,
        Command::Summarize(args) => commands::summarize::summarize(args),
        Command::Merge(args) => commands::merge::merge(args),
        Command::Clock(args) => commands::clock::clock(args).await,
        Command::K8s(args) => commands::k8s::k8s(args),
        Command::Completions(args) => commands::shell::completions(args),
        Command::Man(args) => commands::shell::man(args),
        Command::Init(args) => commands::file::init(args),
        Command::Benchmark(args) => commands::benchmark::benchmark(args).await,
    }
}
