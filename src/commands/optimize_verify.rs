//! `llmbench optimize --server-cmd CMD`: checks the advice by measuring. The server is started
//! with CMD as given and benchmarked ("before"), then started with the recommended settings put
//! into CMD and benchmarked again with the same load ("after"); the two results are compared
//! like `llmbench compare` does (bootstrap intervals of each change).
//!
//! Settings go into the command as follows (`apply`, pure): environment variables become
//! leading `NAME=value` words (replacing the command's own for the same name), or an `export`
//! line when the command runs through a shell so that `$NAME` in it sees the new value; flags
//! replace the value already in the command (llama.cpp's long and short spellings are the same
//! flag) or are appended. What cannot be applied (per-request options, advice that is not a flag
//! value, flags of a command with pipes or redirections) is listed with the reason.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use super::sweep::parse_run_args;
use crate::results::compare::{Comparison, Verdict, compare};
use crate::results::file::ResultFile;
use crate::server::advice::Setting;
use crate::server::detect::ServerKind;
use crate::server::managed::needs_shell;

/// The command with the settings put in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Applied {
    /// The "after" command.
    pub command: String,
    /// Settings put into it: name, value.
    pub applied: Vec<(String, String)>,
    /// Settings left out: name, why.
    pub skipped: Vec<(String, String)>,
}

/// llama.cpp's flags with their other spellings.
const ALIASES: &[&[&str]] = &[
    &["-ngl", "--n-gpu-layers", "--gpu-layers"],
    &["-t", "--threads"],
    &["-np", "--parallel"],
    &["-c", "--ctx-size"],
    &["-fa", "--flash-attn"],
];

fn spellings(name: &str) -> Vec<&str> {
    ALIASES
        .iter()
        .find(|a| a.contains(&name))
        .map(|a| a.to_vec())
        .unwrap_or_else(|| vec![name])
}

fn is_name(k: &str) -> bool {
    !k.is_empty()
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !k.starts_with(|c: char| c.is_ascii_digit())
}

/// Splits leading `NAME=value` words (plain values only) off the command.
fn leading_assignments(cmd: &str) -> (Vec<(String, String)>, &str) {
    let mut rest = cmd.trim_start();
    let mut out = Vec::new();
    loop {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..end];
        match word.split_once('=') {
            Some((k, v))
                if is_name(k)
                    && end < rest.len()
                    && !v.contains(['\'', '"', '$', '`', '\\', ';', '|', '&']) =>
            {
                out.push((k.to_string(), v.to_string()));
                rest = rest[end..].trim_start();
            }
            _ => return (out, rest),
        }
    }
}

/// A value a flag or variable can take as one word.
fn concrete(v: &str) -> bool {
    !v.contains(|c: char| c.is_whitespace() || c == '%')
}

/// Puts the settings into the command (pure).
pub fn apply(cmd: &str, settings: &[Setting]) -> anyhow::Result<Applied> {
    let (assigned, rest) = leading_assignments(cmd);
    let shell = needs_shell(rest);
    let mut env: Vec<(String, String)> = assigned;
    let mut applied = Vec::new();
    let mut skipped = Vec::new();
    let mut words = if shell {
        None
    } else {
        Some(
            shlex::split(rest)
                .with_context(|| format!("--server-cmd {cmd:?}: unbalanced quotes"))?,
        )
    };
    for st in settings {
        if st.name == "note" {
            skipped.push((st.name.clone(), st.value.clone()));
            continue;
        }
        if !concrete(&st.value) {
            skipped.push((
                st.name.clone(),
                format!("{:?} is advice, not a value the server takes", st.value),
            ));
            continue;
        }
        match st.kind {
            "env" => {
                env.retain(|(k, _)| k != &st.name);
                env.push((st.name.clone(), st.value.clone()));
                applied.push((st.name.clone(), st.value.clone()));
            }
            "flag" => {
                let Some(w) = words.as_mut() else {
                    skipped.push((
                        st.name.clone(),
                        "the command runs through a shell (pipes, redirections or $): add the flag yourself".into(),
                    ));
                    continue;
                };
                set_flag(w, &st.name, &st.value);
                applied.push((st.name.clone(), st.value.clone()));
            }
            _ => skipped.push((
                st.name.clone(),
                "a per-request option: set it in the model (Modelfile PARAMETER) or the request"
                    .into(),
            )),
        }
    }
    let body = match words {
        Some(w) => shlex::try_join(w.iter().map(String::as_str))
            .map_err(|e| anyhow::anyhow!("--server-cmd {cmd:?}: {e}"))?,
        None => rest.to_string(),
    };
    let quoted: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("{k}={}", shlex::try_quote(v).unwrap_or_default()))
        .collect();
    let command = if env.is_empty() {
        body
    } else if shell {
        // `NAME=value cmd $NAME` expands $NAME before the assignment: export first.
        format!("export {}; {body}", quoted.join(" "))
    } else {
        format!("{} {body}", quoted.join(" "))
    };
    Ok(Applied {
        command,
        applied,
        skipped,
    })
}

fn set_flag(words: &mut Vec<String>, name: &str, value: &str) {
    let names = spellings(name);
    for i in 0..words.len() {
        if names.contains(&words[i].as_str()) {
            if value.is_empty() {
                return;
            }
            match words.get(i + 1) {
                Some(next) if !next.starts_with('-') || next.parse::<f64>().is_ok() => {
                    words[i + 1] = value.to_string();
                }
                _ => words.insert(i + 1, value.to_string()),
            }
            return;
        }
        if let Some(n) = names
            .iter()
            .find(|n| n.starts_with("--") && words[i].starts_with(&format!("{n}=")))
        {
            words[i] = if value.is_empty() {
                n.to_string()
            } else {
                format!("{n}={value}")
            };
            return;
        }
    }
    words.push(name.to_string());
    if !value.is_empty() {
        words.push(value.to_string());
    }
}

/// What usage and error texts call the check's `run` flags.
const RUN_NAME: &str = "llmbench optimize --";

/// Default base URL of each backend's server.
pub fn default_url(backend: ServerKind) -> &'static str {
    match backend {
        ServerKind::Vllm => "http://127.0.0.1:8000",
        ServerKind::LlamaCpp => "http://127.0.0.1:8080",
        _ => "http://127.0.0.1:11434",
    }
}

fn has_flag(args: &[String], names: &[&str]) -> bool {
    args.iter().any(|a| {
        names
            .iter()
            .any(|n| a == n || a.starts_with(&format!("{n}=")))
    })
}

/// The `run` arguments of one side of the check.
fn run_argv(url: &str, extra: &[String], concurrency: usize) -> Vec<String> {
    let mut v = vec![RUN_NAME.to_string(), url.to_string()];
    if !has_flag(extra, &["-n", "--requests", "-d", "--duration"]) {
        v.extend(["--requests".into(), (concurrency * 4).to_string()]);
    }
    if !has_flag(extra, &["-c", "--concurrency", "-r", "--rate"]) {
        v.extend(["--concurrency".into(), concurrency.to_string()]);
    }
    if !has_flag(extra, &["--warmup"]) {
        v.extend(["--warmup".into(), concurrency.to_string()]);
    }
    v.extend(extra.iter().cloned());
    v
}

/// What `optimize --server-cmd` writes to `optimize.json`.
#[derive(Debug, Serialize)]
pub struct Verification {
    /// The command as given.
    pub before_command: String,
    /// The settings put in.
    pub after: Applied,
    /// Result files.
    pub before_result: PathBuf,
    /// Result files.
    pub after_result: PathBuf,
    /// The comparison (null when the advice changed nothing in the command).
    pub comparison: Option<Comparison>,
}

async fn bench(
    argv: &[String],
    cmd: &str,
    dir: &Path,
    tag: &str,
    ready: std::time::Duration,
) -> anyhow::Result<Result<ResultFile, i32>> {
    let out = dir.join(format!("{tag}.json"));
    let mut argv = argv.to_vec();
    argv.extend([
        "--server-cmd".into(),
        cmd.into(),
        "--server-ready-timeout".into(),
        format!("{}ms", ready.as_millis()),
        "--server-log".into(),
        dir.join(format!("{tag}.server.log")).display().to_string(),
        "-o".into(),
        out.display().to_string(),
    ]);
    let args = parse_run_args(RUN_NAME, argv)?;
    eprintln!("\n== {tag}: {}", crate::server::managed::redact(cmd));
    let code = super::run::execute(crate::settings::run_settings(&args)?).await?;
    if code != 0 && code != super::run::EXIT_SLO_FAILED {
        return Ok(Err(code));
    }
    Ok(Ok(ResultFile::read(&out)?))
}

/// Runs the check; returns the exit code.
pub async fn verify(
    cmd: &str,
    settings: &[Setting],
    url: &str,
    dir: &Path,
    extra: &[String],
    concurrency: usize,
    ready: std::time::Duration,
) -> anyhow::Result<i32> {
    let after = apply(cmd, settings)?;
    let argv = run_argv(url, extra, concurrency);
    // Bad run flags are bad input: refuse them before any server starts.
    parse_run_args(RUN_NAME, argv.iter().cloned())?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--out-dir {}: cannot create", dir.display()))?;
    crate::settings::outputs::check_writable(&dir.join("optimize.json"), "--out-dir")?;
    println!("\nChecking the advice on {url}:");
    for (k, v) in &after.applied {
        println!("  apply {k} {v}");
    }
    for (k, why) in &after.skipped {
        println!("  not applied {k}: {why}");
    }
    let mut v = Verification {
        before_command: crate::server::managed::redact(cmd),
        after: after.clone(),
        before_result: dir.join("before.json"),
        after_result: dir.join("after.json"),
        comparison: None,
    };
    v.after.command = crate::server::managed::redact(&after.command);
    if after.command.trim() == cmd.trim() {
        println!("The command already has every applicable setting: nothing to compare.");
        std::fs::write(dir.join("optimize.json"), serde_json::to_vec_pretty(&v)?)?;
        return Ok(0);
    }
    let base = match bench(&argv, cmd, dir, "before", ready).await? {
        Ok(r) => r,
        Err(code) => {
            crate::report::colour::eprint_error!(
                "the benchmark of the server as given failed (exit {code})"
            );
            return Ok(code);
        }
    };
    let new = match bench(&argv, &after.command, dir, "after", ready).await? {
        Ok(r) => r,
        Err(code) => {
            crate::report::colour::eprint_error!(
                "the benchmark with the recommended settings failed (exit {code}); its server log: {}",
                dir.join("after.server.log").display()
            );
            return Ok(code);
        }
    };
    // No threshold: every significant change is reported as better or worse.
    let c = compare(&base, &new, f64::INFINITY);
    println!(
        "\n{}",
        super::compare::text(&c, "before (as given)", "after (recommended)")
    );
    println!("{}", verdict(&c));
    v.comparison = Some(c);
    std::fs::write(dir.join("optimize.json"), serde_json::to_vec_pretty(&v)?)?;
    eprintln!(
        "Results in {} (before.json, after.json, server logs, optimize.json)",
        dir.display()
    );
    Ok(0)
}

/// One line: which significant changes the advice made.
pub fn verdict(c: &Comparison) -> String {
    let mut better = Vec::new();
    let mut worse = Vec::new();
    for sc in &c.scenarios {
        for r in &sc.rows {
            let s = format!("{} {:+.1}%", r.metric, r.relative.unwrap_or(0.0) * 100.0);
            match r.verdict {
                Verdict::Regression | Verdict::Worse => worse.push(s),
                Verdict::Better => better.push(s),
                Verdict::NoChange | Verdict::Unclear | Verdict::Untested => {}
            }
        }
    }
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    format!(
        "Advice measured: better {}; worse {}.",
        list(&better),
        list(&worse)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(name: &str, value: &str, kind: &'static str) -> Setting {
        Setting {
            name: name.into(),
            value: value.into(),
            reason: "r".into(),
            kind,
        }
    }

    #[test]
    fn env_settings_replace_the_commands_own_and_reach_shell_expansions() {
        let s = [
            st("OLLAMA_NUM_PARALLEL", "2", "env"),
            st("num_gpu", "0", "option"),
        ];
        let a = apply("OLLAMA_NUM_PARALLEL=8 OTHER=x ollama serve", &s).unwrap();
        assert_eq!(a.command, "OTHER=x OLLAMA_NUM_PARALLEL=2 ollama serve");
        assert_eq!(a.applied, vec![("OLLAMA_NUM_PARALLEL".into(), "2".into())]);
        assert_eq!(a.skipped.len(), 1);
        let a = apply("srv --batch ${OLLAMA_NUM_PARALLEL:-8} | tee log", &s).unwrap();
        assert_eq!(
            a.command,
            "export OLLAMA_NUM_PARALLEL=2; srv --batch ${OLLAMA_NUM_PARALLEL:-8} | tee log"
        );
        // Really what a shell then runs.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(apply("echo ${OLLAMA_NUM_PARALLEL:-8}", &s).unwrap().command)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");
    }

    #[test]
    fn flags_replace_any_spelling_or_are_appended() {
        let s = [
            st("-np", "2", "flag"),
            st("-t", "4", "flag"),
            st("-c", "16384", "flag"),
            st("-ngl", "68% of layers", "flag"),
            st("--enable-prefix-caching", "", "flag"),
        ];
        let a = apply(
            "llama-server -m 'my model.gguf' --parallel 8 --ctx-size=4096",
            &s,
        )
        .unwrap();
        assert_eq!(
            a.command,
            "llama-server -m 'my model.gguf' --parallel 2 '--ctx-size=16384' -t 4 --enable-prefix-caching"
        );
        assert_eq!(a.skipped[0].0, "-ngl");
        let a = apply("vllm serve m --enable-prefix-caching -t", &s[1..2]).unwrap();
        assert_eq!(a.command, "vllm serve m --enable-prefix-caching -t 4");
        let a = apply("srv > log", &s[..1]).unwrap();
        assert_eq!(a.command, "srv > log");
        assert!(a.skipped[0].1.contains("shell"));
        assert!(apply("srv 'x", &s).is_err());
    }

    #[test]
    fn run_arguments_get_a_default_load_only_where_none_is_given() {
        let v = run_argv("http://h", &[], 4);
        assert_eq!(
            &v[1..],
            [
                "http://h",
                "--requests",
                "16",
                "--concurrency",
                "4",
                "--warmup",
                "4"
            ]
        );
        let extra: Vec<String> = ["-d", "10s", "--rate=3", "--warmup", "0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(&run_argv("http://h", &extra, 4)[2..], &extra[..]);
    }
}
