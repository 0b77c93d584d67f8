//! `llmbench store copy FROM TO`: move history between results stores.

use crate::cli::StoreCommand;
use crate::results::store::{Store, StoreLoc, copy};

/// Runs `store …`; returns the process exit code.
pub fn store(c: StoreCommand) -> anyhow::Result<i32> {
    match c {
        StoreCommand::Copy { from, to } => {
            let from = StoreLoc::parse(Some(&from))?;
            let to = StoreLoc::parse(Some(&to))?;
            if !from.exists() {
                anyhow::bail!("store copy: no results store at {from}");
            }
            if from == to {
                anyhow::bail!("store copy: {from} is both the source and the destination");
            }
            let (src, dst) = (Store::open(&from)?, Store::open(&to)?);
            let n = copy(&src, &dst)?;
            eprintln!("Copied {n} run(s) from {from} to {to}.");
            Ok(0)
        }
    }
}
