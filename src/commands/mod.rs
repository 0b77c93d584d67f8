//! One module per subcommand; each returns the process exit code.

pub mod detect;
pub mod optimize;
pub mod run;
pub mod serve;
pub mod suites;
pub mod sweep;
