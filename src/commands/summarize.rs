//! `llmbench summarize RECORDS.jsonl`: rebuilds the summary from a records file alone (a run
//! that was killed, or whose result file was lost), prints it, and can write a result file.

use crate::cli::SummarizeArgs;
use crate::measure::record::{Outcome, Record};
use crate::report::console;
use crate::results::file::{
    ResultFile, RunStatus, ScenarioResult, Target, new_run_id, now_rfc3339,
};
use crate::results::params::{Config, Rebuilt};
use crate::results::records::read_records_tolerant;

/// Scenario results from records, scenarios in the order they first appear.
pub fn rebuild(records: &[Record]) -> Vec<ScenarioResult> {
    let mut names: Vec<&str> = Vec::new();
    for r in records {
        if !names.contains(&r.scenario.as_str()) {
            names.push(&r.scenario);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let s = crate::measure::stats::summarize(records.iter().filter(|r| r.scenario == name));
            ScenarioResult::from_summary(name, Default::default(), s)
        })
        .collect()
}

/// Prints each scenario's summary on standard output, as a run prints it.
pub(crate) fn print_scenarios(scenarios: &[ScenarioResult]) {
    for sc in scenarios {
        let text = console::scenario_text(sc);
        println!(
            "{}",
            crate::report::colour::for_stream(&text, crate::report::colour::Stream::Stdout)
        );
    }
}

/// The exit code of a result put together after the fact (`summarize`, `merge`): all failed
/// when requests were scheduled and none succeeded, else 0.
pub(crate) fn exit_code(result: &ResultFile) -> i32 {
    let (scheduled, ok) = result.scenarios.iter().fold((0, 0), |(a, b), s| {
        (
            a + s.outcomes.scheduled,
            b + s.outcomes.get(Outcome::Succeeded),
        )
    });
    if scheduled > 0 && ok == 0 {
        crate::commands::run::EXIT_ALL_FAILED
    } else {
        0
    }
}

/// Runs the command; returns the exit code.
pub fn summarize(args: SummarizeArgs) -> anyhow::Result<i32> {
    if let Some(p) = &args.output {
        crate::settings::outputs::check_writable(p, "--output")?;
    }
    let read = read_records_tolerant(&args.records)?;
    let (records, note) = (read.records, read.note);
    if let Some(n) = &note {
        eprintln!("warning: {n}");
    }
    // How the run ended, from its end line; without one it never finished.
    let status = match &read.end {
        Some(end) => end.status,
        None => {
            eprintln!(
                "note: {} ends without the run's end line: the run was interrupted (killed or crashed) before it finished",
                args.records.display()
            );
            RunStatus::Interrupted
        }
    };
    if records.is_empty() {
        anyhow::bail!("{}: no records", args.records.display());
    }
    let scenarios = rebuild(&records);
    print_scenarios(&scenarios);
    let result = ResultFile {
        schema_version: crate::results::file::SCHEMA_VERSION,
        run_id: new_run_id(),
        started_at: now_rfc3339(),
        finished_at: Some(now_rfc3339()),
        status,
        target: Target::default(),
        system: None,
        config: Config::Rebuilt(Rebuilt {
            rebuilt_from_records: args.records.display().to_string(),
            records: records.len() as u64,
            note,
        }),
        scenarios,
        ..Default::default()
    };
    if let Some(p) = &args.output {
        result.write(p)?;
        eprintln!("Result written to {}", p.display());
    }
    Ok(exit_code(&result))
}
