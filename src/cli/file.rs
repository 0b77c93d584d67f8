//! `-f FILE` on `run`, `sweep` and `capacity`: found among the words before clap parses them,
//! because the file's keys and the command line's flags are merged as words (the command line
//! wins), see `settings::file`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;

use super::{CapacityFlags, RunArgs};

/// The commands that take a scenario file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileCommand {
    /// `llmbench run -f`.
    Run,
    /// `llmbench sweep -f`.
    Sweep,
    /// `llmbench capacity -f`.
    Capacity,
}

impl FileCommand {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FileCommand::Run => "run",
            FileCommand::Sweep => "sweep",
            FileCommand::Capacity => "capacity",
        }
    }

    /// The flags its file may hold, as clap knows them (`run`'s; `capacity` adds its own).
    pub fn flags(self) -> clap::Command {
        let run = RunArgs::augment_args(clap::Command::new(self.name()));
        match self {
            FileCommand::Capacity => CapacityFlags::augment_args(run),
            _ => run,
        }
    }
}

/// A command given a scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileCall {
    /// `--json` before the command.
    pub json: bool,
    /// Which command.
    pub command: FileCommand,
    /// The file.
    pub path: PathBuf,
    /// The command's other words, as typed.
    pub words: Vec<String>,
}

/// The scenario-file call `argv` (program name first) makes, if any: `run`, `sweep` or
/// `capacity` with `-f FILE` (`--file FILE`, `--file=FILE`, `-fFILE`) before any `--`, and no
/// `-h`/`--help` (clap shows help).
pub fn file_call(argv: &[OsString]) -> Option<FileCall> {
    let words: Vec<&str> = argv
        .iter()
        .skip(1)
        .map(|a| a.to_str())
        .collect::<Option<_>>()?;
    let sub = words.iter().position(|w| !w.starts_with('-'))?;
    let json = words[..sub].contains(&"--json");
    let command = match words[sub] {
        "run" => FileCommand::Run,
        "sweep" => FileCommand::Sweep,
        "capacity" => FileCommand::Capacity,
        _ => return None,
    };
    let rest = &words[sub + 1..];
    let end = rest.iter().position(|w| *w == "--").unwrap_or(rest.len());
    if rest[..end].iter().any(|w| *w == "-h" || *w == "--help") {
        return None;
    }
    let mut path = None;
    let mut out = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let w = rest[i];
        if i < end && path.is_none() {
            if w == "-f" || w == "--file" {
                path = Some(rest.get(i + 1).copied().unwrap_or_default().to_string());
                i += 2;
                continue;
            }
            if let Some(p) = w.strip_prefix("--file=") {
                path = Some(p.to_string());
                i += 1;
                continue;
            }
            if let Some(p) = w.strip_prefix("-f").filter(|p| !p.is_empty()) {
                path = Some(p.trim_start_matches('=').to_string());
                i += 1;
                continue;
            }
        }
        out.push(w.to_string());
        i += 1;
    }
    Some(FileCall {
        json,
        command,
        path: PathBuf::from(path?),
        words: out,
    })
}

/// `llmbench init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the example scenario file (`-`: standard output).
    #[arg(default_value = "bench.toml")]
    pub path: PathBuf,

    /// Replace the file if it exists.
    #[arg(long)]
    pub force: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(v: &[&str]) -> Option<FileCall> {
        file_call(&v.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn finds_the_file_in_every_spelling_and_keeps_the_other_words() {
        for form in [
            &["llmbench", "run", "-f", "b.toml", "-n", "5"][..],
            &["llmbench", "run", "--file", "b.toml", "-n", "5"],
            &["llmbench", "run", "--file=b.toml", "-n", "5"],
            &["llmbench", "run", "-fb.toml", "-n", "5"],
        ] {
            let c = call(form).unwrap();
            assert_eq!(c.command, FileCommand::Run);
            assert_eq!(c.path, PathBuf::from("b.toml"));
            assert_eq!(c.words, ["-n", "5"]);
            assert!(!c.json);
        }
        let c = call(&["llmbench", "--json", "sweep", "-c", "1,2", "-f", "s.toml"]).unwrap();
        assert_eq!((c.command, c.json), (FileCommand::Sweep, true));
        assert_eq!(c.words, ["-c", "1,2"]);
        assert_eq!(
            call(&["llmbench", "capacity", "-f", "c.toml"])
                .unwrap()
                .command,
            FileCommand::Capacity
        );
    }

    #[test]
    fn leaves_other_commands_help_and_words_after_a_double_dash_to_clap() {
        assert!(call(&["llmbench", "run", "-n", "5"]).is_none());
        assert!(call(&["llmbench", "compare", "-f", "x"]).is_none());
        assert!(call(&["llmbench", "run", "-f", "b.toml", "--help"]).is_none());
        assert!(call(&["llmbench", "run", "--", "-f", "b.toml"]).is_none());
        // No path after -f: an empty one, which reading the file then names.
        assert_eq!(
            call(&["llmbench", "run", "-f"]).unwrap().path,
            PathBuf::new()
        );
    }
}
