//! One module per subcommand; each returns the process exit code.

pub mod compare;
pub mod detect;
pub mod history;
pub mod optimize;
pub mod optimize_verify;
pub mod report;
pub mod run;
pub mod serve;
pub mod suites;
pub mod summarize;
pub mod sweep;
