//! Scenario files (`llmbench run -f bench.toml`): a TOML file that says what a command line
//! says, turned into the same command-line words, so a file and its command line give the same
//! plan by construction.
//!
//! A key is a flag's long name (`max-tokens`, or `max_tokens`), `url` the server; a value is
//! what the flag takes: a string, number or boolean (a switch: `true` gives it, `false` leaves
//! it out), a list for a flag given several times (`header`, `image`) or, for a flag a sweep
//! varies, a list of its steps. `[scenario.NAME]` tables are scenarios of one run, in file
//! order: each holds load and workload keys over the top-level ones. Flags on the command line
//! override the file's. Errors name the file, the line and the key.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::parser::ValueSource;
use toml::de::{DeTable, DeValue};

/// Flags a scenario table may set: those that make one scenario differ from another (load and
/// workload). Everything else (target, model, outputs, server, simulator) is the whole run's.
const SCENARIO_KEYS: &[&str] = &[
    "requests",
    "duration",
    "concurrency",
    "rate",
    "arrival",
    "burstiness",
    "max-concurrency",
    "warmup",
    "seed",
    "max-tokens",
    "temperature",
    "prompt",
    "repeat-ratio",
    "suite",
    "dataset",
    "dataset-format",
    "shuffle",
    "prompt-tokens",
    "prompt-tokens-stdev",
    "output-tokens",
    "output-tokens-stdev",
    "shared-prefix-tokens",
    "trace",
    "trace-format",
    "trace-speedup",
    "conversations",
    "include-tags",
    "exclude-tags",
    "context-size",
    "max-conversations",
    "image",
    "image-format",
    "audio",
];

/// Flags whose list of values is a sweep's steps (`concurrency = [1, 2, 4]`).
const SWEEP_KEYS: &[&str] = &[
    "concurrency",
    "rate",
    "temperature",
    "max-tokens",
    "prompt-tokens",
];

/// One key of the file, as command-line words.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The flag's clap id (`max_tokens`; `url` for the server).
    pub id: String,
    /// Its long name as the file wrote it, dashed (`max-tokens`).
    pub key: String,
    /// 1-based line of the key.
    pub line: usize,
    /// The words (`--max-tokens=64`, or the URL alone).
    pub words: Vec<String>,
}

/// One run's worth of words: the top-level keys, or a named scenario over them.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// `[scenario.NAME]`'s name; `None`: the file has no scenario tables.
    pub name: Option<String>,
    /// The keys, top-level ones first (those the scenario sets itself left out).
    pub entries: Vec<Entry>,
}

/// A parsed scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its scenarios (one when it has no tables), in file order.
    pub groups: Vec<Group>,
}

impl ScenarioFile {
    /// `file:line: ` for the entry of a flag, when the file set it.
    pub fn place_of(&self, long: &str) -> Option<String> {
        self.groups
            .iter()
            .flat_map(|g| &g.entries)
            .find(|e| e.key == long)
            .map(|e| format!("{}:{}: ", self.path.display(), e.line))
    }
}

/// Reads and checks a scenario file against `cmd` (the command whose flags it may hold).
pub fn read(path: &Path, cmd: &clap::Command) -> anyhow::Result<ScenarioFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("-f {}: cannot read the scenario file", path.display()))?;
    parse(path, &text, cmd)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses scenario-file text (see the module's description).
pub fn parse(path: &Path, text: &str, cmd: &clap::Command) -> anyhow::Result<ScenarioFile> {
    let shown = path.display();
    let doc = DeTable::parse(text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(text, s.start));
        anyhow::anyhow!("{shown}:{line}: {}", e.message().trim_end())
    })?;
    let at = |span: std::ops::Range<usize>| format!("{shown}:{}", line_of(text, span.start));
    let mut base = Vec::new();
    let mut tables = Vec::new();
    for (k, v) in doc.get_ref() {
        let key = k.get_ref().as_ref();
        if key == "scenario" || key == "scenarios" {
            let DeValue::Table(t) = v.get_ref() else {
                bail!(
                    "{}: `{key}` holds named scenarios as tables: [scenario.NAME]",
                    at(k.span())
                );
            };
            for (name, body) in t {
                let DeValue::Table(body) = body.get_ref() else {
                    bail!(
                        "{}: scenario `{}` must be a table: [scenario.{}]",
                        at(name.span()),
                        name.get_ref(),
                        name.get_ref()
                    );
                };
                let mut entries = Vec::new();
                for (k, v) in body {
                    let e = entry(
                        cmd,
                        &at(k.span()),
                        k.get_ref(),
                        v,
                        line_of(text, k.span().start),
                    )?;
                    if !SCENARIO_KEYS.contains(&e.key.as_str()) {
                        bail!(
                            "{}: `{}` is the same for every scenario of a run: set it at the top of the file, not in [scenario.{}] (a scenario sets load and workload keys)",
                            at(k.span()),
                            e.key,
                            name.get_ref()
                        );
                    }
                    entries.push(e);
                }
                tables.push((name.get_ref().to_string(), entries));
            }
            continue;
        }
        base.push(entry(
            cmd,
            &at(k.span()),
            key,
            v,
            line_of(text, k.span().start),
        )?);
    }
    let groups = if tables.is_empty() {
        vec![Group {
            name: None,
            entries: base,
        }]
    } else {
        tables
            .into_iter()
            .map(|(name, own)| {
                let mut entries: Vec<Entry> = base
                    .iter()
                    .filter(|b| !own.iter().any(|o| o.id == b.id))
                    .cloned()
                    .collect();
                entries.extend(own);
                Group {
                    name: Some(name),
                    entries,
                }
            })
            .collect()
    };
    Ok(ScenarioFile {
        path: path.to_path_buf(),
        groups,
    })
}

/// Edit distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The flag a key names, or an error naming it (with the nearest flag when there is one).
fn find_arg<'c>(cmd: &'c clap::Command, at: &str, key: &str) -> anyhow::Result<&'c clap::Arg> {
    let dashed = key.replace('_', "-");
    if let Some(a) = cmd.get_arguments().find(|a| {
        (a.get_long() == Some(dashed.as_str()) || (a.is_positional() && a.get_id() == key))
            && !a.is_hide_set()
    }) {
        return Ok(a);
    }
    let nearest = cmd
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| *l != "help" && *l != "version" && *l != "file")
        .map(|l| (distance(&dashed, l), l))
        .min()
        .filter(|(d, _)| *d <= 2);
    match nearest {
        Some((_, l)) => bail!("{at}: unknown key `{key}` (did you mean `{l}`?)"),
        None => bail!(
            "{at}: unknown key `{key}`: keys are the command's long flag names (see `llmbench {} --help`)",
            cmd.get_name()
        ),
    }
}

/// A scalar value as the command line would write it.
fn scalar(at: &str, key: &str, v: &DeValue) -> anyhow::Result<String> {
    Ok(match v {
        DeValue::String(s) => s.to_string(),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            i128::from_str_radix(&digits, i.radix())
                .with_context(|| format!("{at}: `{key}`: integer {digits} out of range"))?
                .to_string()
        }
        DeValue::Float(f) => {
            let x: f64 = f.as_str().replace('_', "").parse().unwrap_or(f64::NAN);
            if !x.is_finite() {
                bail!("{at}: `{key}`: {} is not a finite number", f.as_str());
            }
            x.to_string()
        }
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(d) => d.to_string(),
        DeValue::Array(_) | DeValue::Table(_) => {
            bail!("{at}: `{key}`: a list or table cannot be an item of a list")
        }
    })
}

fn entry(
    cmd: &clap::Command,
    at: &str,
    key: &str,
    v: &toml::Spanned<DeValue>,
    line: usize,
) -> anyhow::Result<Entry> {
    let arg = find_arg(cmd, at, key)?;
    let id = arg.get_id().to_string();
    let long = arg.get_long().unwrap_or(key).to_string();
    let switch = !arg.get_action().takes_values();
    let repeated = matches!(arg.get_action(), clap::ArgAction::Append);
    let word = |value: String| -> String {
        if arg.is_positional() {
            value
        } else {
            format!("--{long}={value}")
        }
    };
    let words = match v.get_ref() {
        DeValue::Boolean(b) if switch => {
            if *b {
                vec![format!("--{long}")]
            } else {
                Vec::new()
            }
        }
        _ if switch => bail!("{at}: `{key}` is a switch: write `{key} = true` (or false)"),
        DeValue::Table(_) => bail!("{at}: `{key}` takes a value, not a table"),
        DeValue::Array(items) => {
            let values = items
                .iter()
                .map(|i| scalar(at, key, i.get_ref()))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if values.is_empty() {
                bail!("{at}: `{key}`: empty list");
            }
            if repeated {
                values.into_iter().map(word).collect()
            } else if SWEEP_KEYS.contains(&long.as_str()) {
                vec![word(values.join(","))]
            } else {
                bail!(
                    "{at}: `{key}` takes one value (lists are for flags given several times, or for the steps of {})",
                    SWEEP_KEYS.join(", ")
                );
            }
        }
        other => vec![word(scalar(at, key, other)?)],
    };
    Ok(Entry {
        id,
        key: long,
        line,
        words,
    })
}

/// The ids of the flags `words` give on the command line, read by `cmd` with every value
/// taken as text (a sweep's `-c 1,2,4` included) and nothing required.
pub fn given_on_command_line(
    cmd: &clap::Command,
    words: &[String],
) -> anyhow::Result<BTreeSet<String>> {
    let loose = cmd.clone().no_binary_name(true).mut_args(|a| {
        let a = a.required(false);
        if a.get_action().takes_values() {
            a.value_parser(clap::builder::NonEmptyStringValueParser::new())
        } else {
            a
        }
    });
    let m = loose.try_get_matches_from(words).map_err(|e| {
        let t = e.render().to_string();
        let t = t.trim_end();
        anyhow::anyhow!("{}", t.strip_prefix("error: ").unwrap_or(t))
    })?;
    Ok(cmd
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .filter(|id| m.value_source(id) == Some(ValueSource::CommandLine))
        .collect())
}

/// A group's command line: the file's words for the flags the command line leaves alone,
/// then the command line's own words.
pub fn words(group: &Group, given: &BTreeSet<String>, cli: &[String]) -> Vec<String> {
    let mut out: Vec<String> = group
        .entries
        .iter()
        .filter(|e| !given.contains(&e.id))
        .flat_map(|e| e.words.iter().cloned())
        .collect();
    // The server URL first: a positional word after `--flag=value` words.
    out.sort_by_key(|w| w.starts_with('-'));
    out.extend(cli.iter().cloned());
    out
}

#[cfg(test)]
mod tests;
