//! `llmbench merge SHARD_RESULTS... -o FILE`: adds the shard results of one sharded plan
//! (`run --shard K/N`) into one result file, stored and reported like any run; with
//! `--records`, from the shards' records files (`merge_records`).

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::cli::MergeArgs;
use crate::measure::health::ClientLoad;
use crate::measure::stats::Accumulator;
use crate::results::file::{ResultFile, RunStatus, ScenarioResult, new_run_id};
use crate::results::shard::{MAX_CLOCK_ERROR_MS, MergeInfo, ShardHealth, ShardInfo};
use crate::settings::ReportSettings;

/// Runs the command; returns the exit code.
pub fn merge(args: MergeArgs) -> anyhow::Result<i32> {
    if args.records {
        return super::merge_records::merge_records(&args);
    }
    crate::settings::outputs::check_writable(&args.output, "--output")?;
    let mut shards = Vec::new();
    for p in &args.inputs {
        let r = read_shard(p)?;
        let Some(info) = r.shard.clone() else {
            bail!(
                "{} is not a shard result (written by `llmbench run --shard K/N -o FILE`)",
                p.display()
            );
        };
        shards.push((p.clone(), info, r));
    }
    let result = merged(shards)?;
    super::summarize::print_scenarios(&result.scenarios);
    if let Some(m) = &result.merged {
        for r in &m.reasons {
            eprintln!("warning: {r}");
        }
    }
    result.write(&args.output)?;
    eprintln!(
        "Merged {} shards into {}",
        result.merged.as_ref().map_or(0, |m| m.shards.len()),
        args.output.display()
    );
    let report = ReportSettings {
        no_store: args.no_store,
        ..Default::default()
    };
    crate::commands::report::after_run(&report, Some(args.output.as_path()), &result);
    Ok(super::summarize::exit_code(&result))
}

/// A shard result: a result file, or a log holding one (`kubectl logs` of a shard that wrote
/// it to standard output, its console text around it): the lines from the first `{` line to
/// the last `}` line.
fn read_shard(p: &std::path::Path) -> anyhow::Result<ResultFile> {
    let plain = ResultFile::read(p);
    let Ok(text) = std::fs::read_to_string(p) else {
        return plain;
    };
    if plain.is_ok() {
        return plain;
    }
    let lines: Vec<&str> = text.lines().collect();
    let (Some(a), Some(b)) = (
        lines.iter().position(|l| *l == "{"),
        lines.iter().rposition(|l| *l == "}"),
    ) else {
        return plain;
    };
    if b < a {
        return plain;
    }
    let doc = lines[a..=b].join("\n");
    let r: ResultFile = serde_json::from_str(&doc)
        .with_context(|| format!("{}: the result in this log cannot be read", p.display()))?;
    if r.schema_version > crate::results::file::SCHEMA_VERSION {
        bail!(
            "{} has schema_version {}, newer than this llmbench understands ({})",
            p.display(),
            r.schema_version,
            crate::results::file::SCHEMA_VERSION
        );
    }
    Ok(r)
}

/// The merged result of shard results (path, shard, file), checked to be one whole plan.
pub(crate) fn merged(
    mut shards: Vec<(PathBuf, ShardInfo, ResultFile)>,
) -> anyhow::Result<ResultFile> {
    shards.sort_by_key(|(_, s, _)| s.index);
    let (first_path, first, base) = &shards[0];
    let n = first.count;
    for (p, s, r) in &shards {
        if s.count != n {
            bail!(
                "{} is shard {}/{}, but {} is of {n} shards: give the shards of one plan",
                p.display(),
                s.index,
                s.count,
                first_path.display()
            );
        }
        if s.start_at != first.start_at || r.config != base.config {
            bail!(
                "{} is not of the same plan as {} (its start time or settings differ)",
                p.display(),
                first_path.display()
            );
        }
        let names = |f: &ResultFile| {
            f.scenarios
                .iter()
                .map(|s| s.name.clone())
                .collect::<Vec<_>>()
        };
        if names(r) != names(base) {
            bail!(
                "{} ran other scenarios than {}",
                p.display(),
                first_path.display()
            );
        }
    }
    for w in shards.windows(2) {
        if w[0].1.index == w[1].1.index {
            bail!(
                "{} and {} are both shard {}/{n}",
                w[0].0.display(),
                w[1].0.display(),
                w[0].1.index
            );
        }
    }
    let missing: Vec<String> = (0..n)
        .filter(|k| !shards.iter().any(|(_, s, _)| s.index == *k))
        .map(|k| format!("{k}/{n}"))
        .collect();
    if !missing.is_empty() {
        bail!(
            "shard results missing: {} (every shard of the plan is needed for an exact merge)",
            missing.join(", ")
        );
    }
    let anchor = shards
        .iter()
        .map(|(_, s, _)| s.anchor_unix_ms)
        .fold(f64::INFINITY, f64::min);
    let clock_error_ms = shards
        .iter()
        .filter_map(|(_, s, _)| s.clock.map(|c| c.error_ms))
        .reduce(f64::max);
    let mut reasons = Vec::new();
    if let Some(e) = clock_error_ms.filter(|e| *e > MAX_CLOCK_ERROR_MS) {
        reasons.push(format!(
            "the shards' clock offsets are known to ±{e:.2} ms only, more than {MAX_CLOCK_ERROR_MS} ms: their schedules may be misaligned by that much"
        ));
    }
    let mut scenarios = Vec::new();
    for (j, sc0) in base.scenarios.iter().enumerate() {
        let mut acc = Accumulator::default();
        let mut loads = Vec::new();
        for (p, s, r) in &shards {
            let sc = &r.scenarios[j];
            let state = sc.shard_state.as_ref().with_context(|| {
                format!(
                    "{}: scenario {:?} has no mergeable statistics (was it written by `run --shard`?)",
                    p.display(),
                    sc.name
                )
            })?;
            acc.merge(state, s.anchor_unix_ms - anchor);
            if let Some(c) = &sc.client {
                loads.push((s.index, c.clone()));
            }
        }
        let mut res = ScenarioResult::from_summary(&sc0.name, sc0.params.clone(), acc.finish());
        let client = merged_client(&loads, reasons.clone());
        res.warnings.extend(client.reasons.iter().cloned());
        res.client = Some(client);
        scenarios.push(res);
    }
    for sc in &scenarios {
        if let Some(c) = sc.client.as_ref().filter(|c| !c.trustworthy) {
            for r in &c.reasons {
                if !reasons.contains(r) {
                    reasons.push(r.clone());
                }
            }
        }
    }
    let status = shards
        .iter()
        .map(|(_, _, r)| r.status)
        .find(|s| *s != RunStatus::Completed)
        .unwrap_or(RunStatus::Completed);
    let health = shards
        .iter()
        .map(|(_, s, r)| ShardHealth {
            shard: s.clone(),
            run_id: r.run_id.clone(),
            scheduled: r.scenarios.iter().map(|x| x.outcomes.scheduled).sum(),
            client: r.scenarios.first().and_then(|x| x.client.clone()),
        })
        .collect();
    Ok(ResultFile {
        schema_version: crate::results::file::SCHEMA_VERSION,
        run_id: new_run_id(),
        started_at: shards
            .iter()
            .map(|(_, _, r)| r.started_at.clone())
            .min()
            .unwrap_or_default(),
        finished_at: shards
            .iter()
            .filter_map(|(_, _, r)| r.finished_at.clone())
            .max(),
        status,
        target: base.target.clone(),
        system: None,
        config: base.config.clone(),
        scenarios,
        server: base.server.clone(),
        merged: Some(MergeInfo {
            shards: health,
            clock_error_ms,
            trustworthy: reasons.is_empty(),
            reasons,
        }),
        ..Default::default()
    })
}

/// The shards' clients as one: CPU and cores summed, the longest wall time, the latest
/// schedule (the shard whose p99 lateness was worst), drops summed; trustworthy only when
/// every shard's was and `clock` holds no reason against.
fn merged_client(loads: &[(u32, ClientLoad)], clock: Vec<String>) -> ClientLoad {
    let cpu_s = loads
        .iter()
        .map(|(_, c)| c.cpu_s)
        .try_fold(0.0, |a, c| c.map(|c| a + c));
    let wall_s = loads.iter().map(|(_, c)| c.wall_s).fold(0.0, f64::max);
    let cores = loads.iter().map(|(_, c)| c.cores).sum::<usize>();
    let mut reasons = clock;
    for (k, c) in loads {
        reasons.extend(c.reasons.iter().map(|r| format!("shard {k}: {r}")));
        if !c.trustworthy && c.reasons.is_empty() {
            reasons.push(format!("shard {k}: its client was the limit"));
        }
    }
    ClientLoad {
        cpu_s,
        wall_s,
        cores,
        cpu_share: cpu_s
            .filter(|_| wall_s > 0.0 && cores > 0)
            .map(|c| c / (wall_s * cores as f64)),
        schedule_lateness_ms: loads
            .iter()
            .filter_map(|(_, c)| c.schedule_lateness_ms)
            .max_by(|a, b| a.p99.total_cmp(&b.p99)),
        dropped: loads.iter().map(|(_, c)| c.dropped).sum(),
        trustworthy: reasons.is_empty(),
        reasons,
    }
}
