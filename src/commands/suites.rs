//! `llmbench suites`: list the built-in suites.

use crate::workload::suites::SUITES;

/// Prints every suite with what it runs.
pub fn suites() -> anyhow::Result<i32> {
    let width = SUITES.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in SUITES {
        super::say(format!("{:width$}  {}", s.name, s.about))?;
    }
    super::say("\nRun one with: llmbench run [URL] --suite NAME")?;
    Ok(0)
}
