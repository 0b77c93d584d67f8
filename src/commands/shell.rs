//! `llmbench completions SHELL` and `llmbench man [COMMAND]`: generated from the command line
//! itself (clap_complete, clap_mangen), so they never fall behind a new flag.

use std::io::Write;

use anyhow::Context;

use crate::cli::{CompletionsArgs, ManArgs};

/// Writes `bytes` to standard output; a reader that went away (`| head`) ends quietly.
fn emit(bytes: &[u8]) -> anyhow::Result<i32> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        r => {
            r.context("cannot write to standard output")?;
            Ok(0)
        }
    }
}

/// Prints the completion script of one shell.
pub fn completions(a: CompletionsArgs) -> anyhow::Result<i32> {
    let mut cmd = crate::cli::full_command();
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "llmbench", &mut buf);
    emit(&buf)
}

/// Prints the manual page (roff) of llmbench, or of one of its commands.
pub fn man(a: ManArgs) -> anyhow::Result<i32> {
    let mut cmd = crate::cli::full_command();
    cmd.build();
    let page = match &a.command {
        None => cmd,
        Some(name) => {
            let sub = cmd.find_subcommand(name).with_context(|| {
                let names: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
                format!(
                    "man {name}: no such command; choose one of {}",
                    names.join(", ")
                )
            })?;
            // Built, a command's display name is "llmbench-run", as pages of subcommands are
            // named (git-commit(1)), and its usage says "llmbench run".
            sub.clone()
        }
    };
    let mut buf = Vec::new();
    clap_mangen::Man::new(page)
        .source(format!("llmbench {}", env!("CARGO_PKG_VERSION")))
        .render(&mut buf)?;
    emit(&buf)
}
