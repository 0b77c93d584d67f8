//! `llmbench sweep`: one scenario per value of one varied `run` flag, all in one result file.
//!
//! The arguments are `run`'s; one of the sweepable flags carries a comma-separated list. Each
//! value becomes a `run` command line of its own, validated by the same code as `run`, so every
//! `run` flag (present and future) works in a sweep.

use anyhow::{Context, bail};
use clap::Parser;

use crate::cli::{RunArgs, SweepArgs};
use crate::results::params::{SweepConfig, SweepPoint, SweepValue};
use crate::settings::run_settings;

/// Flags a sweep can vary: canonical long name and short form.
pub const SWEEPABLE: &[(&str, Option<&str>)] = &[
    ("--concurrency", Some("-c")),
    ("--rate", Some("-r")),
    ("--temperature", None),
    ("--max-tokens", None),
    ("--prompt-tokens", None),
];

#[derive(Parser)]
#[command(no_binary_name = false)]
struct RunOnly {
    #[command(flatten)]
    run: RunArgs,
}

/// Parses `run` flags given to another command (`sweep`, `optimize --`); `name` is the command
/// that usage and error texts show. The first word of `argv` stands for the program and is
/// skipped.
pub fn parse_run_args(
    name: &'static str,
    argv: impl IntoIterator<Item = String>,
) -> anyhow::Result<RunArgs> {
    use clap::{CommandFactory, FromArgMatches};
    // clap's text starts with its own "error: "; ours is added once, by main.
    let render = |e: clap::Error| {
        let t = e.render().to_string();
        let t = t.trim_end();
        anyhow::anyhow!("{}", t.strip_prefix("error: ").unwrap_or(t))
    };
    let m = RunOnly::command()
        .name(name)
        .try_get_matches_from(argv)
        .map_err(render)?;
    Ok(RunOnly::from_arg_matches(&m).map_err(render)?.run)
}

/// A sweep: the varied flag, its values, and the remaining arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Canonical flag name (`--concurrency`).
    pub flag: &'static str,
    /// Its values, as typed.
    pub values: Vec<String>,
    /// Every other argument, unchanged.
    pub rest: Vec<String>,
}

/// Finds the one swept flag among `args`.
pub fn split(args: &[String]) -> anyhow::Result<Split> {
    let mut rest = Vec::new();
    let mut found: Vec<(&'static str, String)> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let mut hit = None;
        for &(long, short) in SWEEPABLE {
            if a == long || Some(a.as_str()) == short {
                let v = args
                    .get(i + 1)
                    .with_context(|| format!("{long} needs a value"))?;
                hit = Some((long, v.clone(), 2));
            } else if let Some(v) = a.strip_prefix(&format!("{long}=")) {
                hit = Some((long, v.to_string(), 1));
            } else if let Some(s) = short
                && a.len() > 2
                && a.starts_with(s)
                && !a.starts_with("--")
            {
                hit = Some((long, a[2..].trim_start_matches('=').to_string(), 1));
            }
            if hit.is_some() {
                break;
            }
        }
        match hit {
            Some((long, v, step)) => {
                if found.iter().any(|(f, _)| *f == long) {
                    bail!("{long} is given twice");
                }
                found.push((long, v));
                i += step;
            }
            None => {
                rest.push(a.clone());
                i += 1;
            }
        }
    }
    let mut swept = None;
    for (flag, v) in found {
        let values: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
        if values.iter().any(String::is_empty) {
            bail!("{flag} {v:?}: empty value in the list");
        }
        if values.len() > 1 {
            if let Some((other, _)) = &swept {
                bail!(
                    "a sweep varies one flag: {other} and {flag} both have lists; give one value to all but one"
                );
            }
            swept = Some((flag, values));
        } else {
            rest.push(flag.to_string());
            rest.push(v);
        }
    }
    let (flag, values) = swept.with_context(|| {
        format!(
            "nothing to sweep: give one of {} as a comma-separated list (e.g. --concurrency 1,2,4,8)",
            SWEEPABLE
                .iter()
                .map(|(f, _)| *f)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    Ok(Split { flag, values, rest })
}

/// Whether the words ask for help (`-h`: short, `--help`: long), before any `--`. The sweep
/// takes its words unparsed, so clap never sees these.
fn help_asked(args: &[String]) -> Option<bool> {
    args.iter()
        .take_while(|a| *a != "--")
        .find_map(|a| match a.as_str() {
            "-h" => Some(false),
            "--help" => Some(true),
            _ => None,
        })
}

/// Runs the sweep; returns the process exit code.
pub async fn sweep(a: SweepArgs) -> anyhow::Result<i32> {
    if let Some(long) = help_asked(&a.args) {
        let mut cmd = crate::cli::sweep_command().bin_name("llmbench sweep");
        let help = if long {
            cmd.render_long_help()
        } else {
            cmd.render_help()
        };
        let text = if crate::report::colour::enabled(crate::report::colour::Stream::Stdout) {
            help.ansi().to_string()
        } else {
            help.to_string()
        };
        super::say(text.trim_end())?;
        return Ok(0);
    }
    let sp = match split(&a.args) {
        Ok(sp) => sp,
        Err(e) => {
            // A misspelt flag (`--concurency 1,2`) explains "nothing to sweep" better: name it.
            let argv = std::iter::once("llmbench sweep".to_string()).chain(a.args.iter().cloned());
            parse_run_args("llmbench sweep", argv)?;
            return Err(e);
        }
    };
    super::run::execute(plan(&sp)?).await
}

/// The plan of a sweep: one scenario (or one suite) per value, each step validated as `run`
/// validates its flags, all in one result.
pub fn plan(sp: &Split) -> anyhow::Result<crate::settings::RunSettings> {
    let key = sp.flag.trim_start_matches("--");
    let mut merged = None;
    for (i, v) in sp.values.iter().enumerate() {
        let argv = std::iter::once("llmbench sweep".to_string())
            .chain(sp.rest.iter().cloned())
            .chain([sp.flag.to_string(), v.clone()]);
        let mut args = parse_run_args("llmbench sweep", argv)?;
        // A fresh seed per step, so synthetic prompts of one step never hit the server's
        // prefix cache warmed by an earlier step.
        args.seed = args.seed.wrapping_add(i as u64);
        let mut plan = run_settings(&args).with_context(|| format!("{} {v}", sp.flag))?;
        let single = plan.scenarios.len() == 1;
        for sc in &mut plan.scenarios {
            let label = format!("{key}={v}");
            sc.name = if single && args.workload.suite.is_none() {
                if args.name == "default" {
                    label
                } else {
                    format!("{} {label}", args.name)
                }
            } else {
                format!("{} {label}", sc.name)
            };
            sc.params.sweep = Some(SweepPoint {
                name: key.to_string(),
                value: SweepValue::parse(v),
            });
            sc.params.seed = Some(args.seed);
        }
        match &mut merged {
            None => {
                plan.recorded.sweep = Some(SweepConfig {
                    name: key.to_string(),
                    values: sp.values.iter().map(|v| SweepValue::parse(v)).collect(),
                });
                merged = Some(plan);
            }
            Some(m) => m.scenarios.extend(plan.scenarios),
        }
    }
    merged.context("no values")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn finds_the_swept_flag_in_every_form() {
        let sp = split(&s(&["http://h", "-c", "1,2,4", "-n", "5"])).unwrap();
        assert_eq!(sp.flag, "--concurrency");
        assert_eq!(sp.values, s(&["1", "2", "4"]));
        assert_eq!(sp.rest, s(&["http://h", "-n", "5"]));
        let sp = split(&s(&["--rate=1,2", "--max-tokens", "9"])).unwrap();
        assert_eq!((sp.flag, sp.values.len()), ("--rate", 2));
        assert_eq!(sp.rest, s(&["--max-tokens", "9"]));
        let sp = split(&s(&["--temperature", "0,0.7"])).unwrap();
        assert_eq!(sp.flag, "--temperature");
        assert!(split(&s(&["-c", "1,2", "--rate", "1,2"])).is_err());
        assert!(split(&s(&["-c", "4"])).is_err());
        assert!(split(&s(&["-c", "1,,2"])).is_err());
    }

    #[test]
    fn help_is_asked_before_a_double_dash_only() {
        assert_eq!(help_asked(&s(&["-c", "1,2", "-h"])), Some(false));
        assert_eq!(help_asked(&s(&["--help"])), Some(true));
        assert_eq!(help_asked(&s(&["-c", "1,2", "--", "--help"])), None);
        assert_eq!(help_asked(&s(&["-c", "1,2"])), None);
    }
}
