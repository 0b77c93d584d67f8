//! One module per subcommand; each returns the process exit code.

pub mod benchmark;
pub mod capacity;
pub mod clock;
pub mod compare;
pub mod detect;
pub mod file;
pub mod history;
pub mod k8s;
pub mod merge;
mod merge_records;
pub mod optimize;
pub mod optimize_verify;
pub mod report;
pub mod run;
pub mod serve;
pub(crate) mod shard;
pub mod shell;
pub mod store;
pub mod suites;
pub mod summarize;
pub mod sweep;
pub mod ui;
mod until;

use std::io::Write;

/// Prints `text` and a newline to standard output. A reader that has gone away (`| head`) is
/// not an error: the command simply has no one left to tell, and ends quietly with exit 0.
pub(crate) fn say(text: impl std::fmt::Display) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        r => Ok(r?),
    }
}
