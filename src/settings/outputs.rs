//! Output paths, checked before anything is opened, created or sent: each must be a place a
//! regular file can be written (or `-`, standard output, where allowed), no two outputs may be
//! the same file, and no output may be one of the run's inputs.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Where a run writes its result file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    /// `-o -`: the result JSON goes to standard output (the tables then go to stderr).
    Stdout,
    /// A regular file, written whole through a temporary file beside it.
    File(PathBuf),
}

impl OutputTarget {
    /// The file, if the result goes to one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            OutputTarget::Stdout => None,
            OutputTarget::File(p) => Some(p),
        }
    }
}

/// Outputs and inputs of one run, as named on the command line (`flag`, path).
#[derive(Debug, Default)]
pub struct PathCheck {
    outputs: Vec<(&'static str, PathBuf)>,
    inputs: Vec<(&'static str, PathBuf)>,
}

impl PathCheck {
    /// An output file under `flag`.
    pub fn output(&mut self, flag: &'static str, path: &Path) -> &mut Self {
        self.outputs.push((flag, path.to_path_buf()));
        self
    }

    /// An input file under `flag` (never to be overwritten).
    pub fn input(&mut self, flag: &'static str, path: &Path) -> &mut Self {
        self.inputs.push((flag, path.to_path_buf()));
        self
    }

    /// Checks every output on its own, then each pair. Touches nothing but a probe file,
    /// created and removed, in each output's directory.
    pub fn check(&self) -> anyhow::Result<()> {
        for (flag, p) in &self.outputs {
            check_writable(p, flag)?;
        }
        let outs: Vec<(&str, &Path, PathBuf)> = self
            .outputs
            .iter()
            .map(|(f, p)| (*f, p.as_path(), identity(p)))
            .collect();
        for (i, (fa, pa, ia)) in outs.iter().enumerate() {
            for (fb, pb, ib) in &outs[i + 1..] {
                if ia == ib {
                    bail!(
                        "{fa} {} and {fb} {} are the same file: each output needs its own",
                        pa.display(),
                        pb.display()
                    );
                }
            }
            for (fi, pi) in &self.inputs {
                if *ia == identity(pi) {
                    bail!(
                        "{fa} {} is the {fi} input: writing it would destroy it",
                        pa.display()
                    );
                }
            }
        }
        Ok(())
    }
}

/// A path's identity for comparison: the canonical path where it (or its directory) exists.
fn identity(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match (dir.canonicalize(), p.file_name()) {
        (Ok(d), Some(name)) => d.join(name),
        _ => p.to_path_buf(),
    }
}

/// Fails, naming `flag`, unless `path` can be written as a regular file: its directory exists
/// and is writable, and the path is not a directory, device, pipe or socket.
pub fn check_writable(path: &Path, flag: &str) -> anyhow::Result<()> {
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.is_dir() {
            bail!("{flag} {}: is a directory, not a file", path.display());
        }
        if !meta.is_file() {
            bail!(
                "{flag} {}: is not a regular file (a device, pipe or socket); llmbench writes a new file in its place, so give a file path{}",
                path.display(),
                if flag == "--output" {
                    " (or `-` for standard output)"
                } else {
                    ""
                }
            );
        }
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!(
            "{flag} {}: directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    let probe = dir.join(format!(".llmbench-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"x").with_context(|| {
        format!(
            "{flag} {}: cannot write in {}",
            path.display(),
            dir.display()
        )
    })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Fails unless `dir` is a directory or can become one (`--report`): nothing is created here.
pub fn check_report_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("--report {}: exists and is not a directory", dir.display());
    }
    let mut up = dir.parent();
    while let Some(p) = up {
        if p.as_os_str().is_empty() || p.is_dir() {
            return Ok(());
        }
        if p.exists() {
            bail!(
                "--report {}: {} is not a directory",
                dir.display(),
                p.display()
            );
        }
        up = p.parent();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_must_be_regular_files_apart_from_inputs_and_each_other() {
        let dir = std::env::temp_dir().join(format!("llmbench-outputs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("data.jsonl");
        std::fs::write(&data, "{}\n").unwrap();
        let e = check_writable(&dir, "--output").unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        let e = check_writable(Path::new("/dev/null"), "--output")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file") && e.contains('-'), "{e}");
        let e = PathCheck::default()
            .output("--records", &data)
            .input("--dataset", &dir.join(".").join("data.jsonl"))
            .check()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--records") && e.contains("--dataset input"),
            "{e}"
        );
        let e = PathCheck::default()
            .output("--output", &dir.join("r.json"))
            .output("--records", &dir.join("r.json"))
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("same file"), "{e}");
        PathCheck::default()
            .output("--output", &dir.join("r.json"))
            .output("--records", &dir.join("r.jsonl"))
            .input("--dataset", &data)
            .check()
            .unwrap();
        assert!(check_report_dir(&data.join("sub")).is_err());
        assert!(check_report_dir(&dir.join("new/deeper")).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
