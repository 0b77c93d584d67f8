//! `llmbench merge --records SHARD_RECORDS... -o FILE`: one result from the shards' records
//! files alone (when their result files were lost): every shard's records summarized as one
//! run. A shard's times count from the shared `--start-at` instant, so they share one time base.

use std::collections::BTreeMap;

use anyhow::bail;

use crate::cli::MergeArgs;
use crate::results::file::{ResultFile, RunStatus, new_run_id, now_rfc3339};
use crate::results::params::{Config, Rebuilt};
use crate::results::records::read_records_tolerant;
use crate::settings::ReportSettings;

/// Runs the command on records files; returns the exit code.
pub fn merge_records(args: &MergeArgs) -> anyhow::Result<i32> {
    crate::settings::outputs::check_writable(&args.output, "--output")?;
    let mut records = Vec::new();
    let mut notes = Vec::new();
    let mut status = RunStatus::Completed;
    // Which file each (scenario, id, attempt) came from: the same shard given twice, or
    // records of different plans, would count requests twice.
    let mut seen: BTreeMap<(String, u64, u32, bool), String> = BTreeMap::new();
    for p in &args.inputs {
        let read = read_records_tolerant(p)?;
        if let Some(n) = read.note {
            eprintln!("warning: {}: {n}", p.display());
            notes.push(format!("{}: {n}", p.display()));
        }
        match &read.end {
            Some(end) if end.status != RunStatus::Completed => status = end.status,
            Some(_) => {}
            None => {
                eprintln!(
                    "note: {} ends without the run's end line: that shard was interrupted",
                    p.display()
                );
                status = RunStatus::Interrupted;
            }
        }
        for r in &read.records {
            let key = (r.scenario.clone(), r.id, r.attempt, r.warmup);
            if let Some(other) = seen.insert(key, p.display().to_string()) {
                bail!(
                    "request {} of scenario {:?} is in both {other} and {}: give each shard's records once, all of one plan",
                    r.id,
                    r.scenario,
                    p.display()
                );
            }
        }
        records.extend(read.records);
    }
    if records.is_empty() {
        bail!("no records in the files given");
    }
    let scenarios = super::summarize::rebuild(&records);
    super::summarize::print_scenarios(&scenarios);
    let from: Vec<String> = args
        .inputs
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let result = ResultFile {
        schema_version: crate::results::file::SCHEMA_VERSION,
        run_id: new_run_id(),
        started_at: now_rfc3339(),
        finished_at: Some(now_rfc3339()),
        status,
        config: Config::Rebuilt(Rebuilt {
            rebuilt_from_records: from.join(", "),
            records: records.len() as u64,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        }),
        scenarios,
        ..Default::default()
    };
    result.write(&args.output)?;
    eprintln!(
        "Merged the records of {} shards into {}",
        args.inputs.len(),
        args.output.display()
    );
    let report = ReportSettings {
        no_store: args.no_store,
        ..Default::default()
    };
    crate::commands::report::after_run(&report, Some(args.output.as_path()), &result);
    Ok(super::summarize::exit_code(&result))
}
