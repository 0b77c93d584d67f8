//! One module per subcommand; each returns the process exit code.

pub mod run;
pub mod serve;
pub mod suites;
pub mod summarize;
pub mod sweep;
