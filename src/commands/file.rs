//! `run`, `sweep` and `capacity` with a scenario file (`-f FILE`), and `llmbench init`.
//!
//! The file becomes command-line words (`settings::file`); each of its scenarios is then
//! planned by the very code that plans that command line, and all of them run as one run,
//! into one result.

use std::collections::BTreeSet;
use std::io::Write as _;

use anyhow::{Context, bail};

use super::sweep::{parse_run_args, split};
use crate::cli::{CapacityArgs, FileCall, FileCommand, InitArgs};
use crate::settings::file::{ScenarioFile, given_on_command_line, words};
use crate::settings::{RunSettings, run_settings};

/// The example `llmbench init` writes (also in the source tree, and tested there).
const EXAMPLE: &str = include_str!("../../examples/scenarios/bench.toml");

/// `llmbench init [PATH]`.
pub fn init(a: InitArgs) -> anyhow::Result<i32> {
    if a.path.as_os_str() == "-" {
        std::io::stdout()
            .write_all(EXAMPLE.as_bytes())
            .context("cannot write to standard output")?;
        return Ok(0);
    }
    if a.path.exists() && !a.force {
        bail!(
            "{} exists: give --force to replace it, or another path",
            a.path.display()
        );
    }
    std::fs::write(&a.path, EXAMPLE)
        .with_context(|| format!("cannot write {}", a.path.display()))?;
    eprintln!(
        "Wrote {p}: edit it, then `llmbench run -f {p}` (flags after it override the file)",
        p = a.path.display()
    );
    Ok(0)
}

/// Prefixes an error that names a flag the file set (and the command line did not) with the
/// file and line of that key.
fn locate(file: &ScenarioFile, given: &BTreeSet<String>, e: anyhow::Error) -> anyhow::Error {
    let text = format!("{e:#}");
    let named = text
        .match_indices("--")
        .filter_map(|(i, _)| {
            let rest = &text[i + 2..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(rest.len());
            let long = &rest[..end];
            file.groups
                .iter()
                .flat_map(|g| &g.entries)
                .any(|en| en.key == long && !given.contains(&en.id))
                .then_some(long)
        })
        .next();
    match named.and_then(|long| file.place_of(long)) {
        Some(place) => anyhow::anyhow!("{place}{text}"),
        None => e,
    }
}

/// The plan of one scenario's words: a sweep when a sweepable flag holds a list.
fn plan_of(command: FileCommand, words: Vec<String>) -> anyhow::Result<RunSettings> {
    let prog = format!("llmbench {}", command.name());
    match split(&words) {
        Ok(sp) => super::sweep::plan(&sp),
        Err(e) => {
            let args = parse_run_args(
                if command == FileCommand::Sweep {
                    "llmbench sweep"
                } else {
                    "llmbench run"
                },
                std::iter::once(prog).chain(words),
            )?;
            if command == FileCommand::Sweep {
                return Err(e);
            }
            run_settings(&args)
        }
    }
}

/// Runs the command with its file; returns the exit code.
pub async fn run_file(call: FileCall) -> anyhow::Result<i32> {
    let cmd = call.command.flags();
    let file = crate::settings::file::read(&call.path, &cmd)?;
    let shown = call.path.display().to_string();
    let mut given = given_on_command_line(&cmd, &call.words)?;
    if call.command == FileCommand::Capacity {
        if file.groups.iter().any(|g| g.name.is_some()) {
            bail!(
                "{shown}: capacity runs one search: [scenario.*] tables are for `run` and `sweep`"
            );
        }
        let args = words(&file.groups[0], &given, &call.words);
        return super::capacity::capacity(CapacityArgs { args })
            .await
            .map_err(|e| locate(&file, &given, e));
    }
    let several = file.groups.len() > 1;
    if several {
        if given.contains("name") {
            bail!("--name: the scenarios of {shown} are named by their [scenario.NAME] tables");
        }
        given.insert("name".to_string());
    }
    let mut merged: Option<RunSettings> = None;
    for g in &file.groups {
        let mut w = words(g, &given, &call.words);
        if let Some(name) = &g.name {
            w.push(format!("--name={name}"));
        }
        let plan = plan_of(call.command, w).map_err(|e| locate(&file, &given, e));
        let plan = match &g.name {
            Some(name) => plan.with_context(|| format!("scenario {name}"))?,
            None => plan?,
        };
        match &mut merged {
            None => merged = Some(plan),
            Some(m) => {
                if m.options.ignore_eos != plan.options.ignore_eos {
                    bail!(
                        "{shown}: scenario {} asks exact output lengths (--output-tokens, --suite or --trace) and an earlier one does not: give them all or none (ignore_eos is one setting for the whole run)",
                        g.name.as_deref().unwrap_or_default()
                    );
                }
                m.scenarios.extend(plan.scenarios);
            }
        }
    }
    let mut plan = merged.context("the scenario file has no scenario")?;
    if several {
        // Each step keeps its own sweep point; no one sweep describes the run.
        plan.recorded.sweep = None;
    }
    plan.recorded.scenario_file = Some(shown);
    super::run::execute(plan).await
}
