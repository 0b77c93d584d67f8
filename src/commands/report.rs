//! `llmbench report`, and what `run`/`sweep` do with their result at the end: record it in the
//! results store, write `--format` files and the `--report` directory.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::ReportArgs;
use crate::report::{Format, charts, html, tables};
use crate::results::file::ResultFile;
use crate::results::store::{Store, StoreLoc, resolve};
use crate::settings::ReportSettings;

fn write(path: &Path, bytes: &[u8], written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    written.push(path.to_path_buf());
    Ok(())
}

/// Renders every chart: PNG files under `dir` and the SVG text (also written under `dir`).
fn render_charts(
    runs: &[ResultFile],
    dir: Option<&Path>,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<Vec<(String, String)>> {
    let entries = tables::entries(runs);
    let mut svgs = Vec::new();
    for chart in charts::charts(&entries) {
        let svg = charts::svg(&chart)?;
        if let Some(dir) = dir {
            let png = dir.join(format!("{}.png", chart.name));
            charts::write_png(&chart, &png)
                .with_context(|| format!("cannot write {}", png.display()))?;
            written.push(png);
            write(
                &dir.join(format!("{}.svg", chart.name)),
                svg.as_bytes(),
                written,
            )?;
        }
        svgs.push((chart.name.clone(), svg));
    }
    Ok(svgs)
}

/// Writes the whole report into `dir`; returns the files written.
pub fn write_report(runs: &[ResultFile], dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create report directory {}", dir.display()))?;
    let mut written = Vec::new();
    write(
        &dir.join("summary.md"),
        tables::markdown(runs).as_bytes(),
        &mut written,
    )?;
    write(
        &dir.join("summary.txt"),
        tables::text(runs).as_bytes(),
        &mut written,
    )?;
    write(
        &dir.join("results.csv"),
        tables::csv(runs).as_bytes(),
        &mut written,
    )?;
    for (name, csv) in tables::companion_csvs(runs) {
        write(
            &dir.join(format!("{name}.csv")),
            csv.as_bytes(),
            &mut written,
        )?;
    }
    // The machine each run measured on (vLLM's benchmark framework writes `*_system.json`):
    // one file for one run, an object by run id for several.
    let systems: Vec<(&str, serde_json::Value)> = runs
        .iter()
        .filter_map(|r| {
            let sys = r.system.as_ref()?;
            Some((r.run_id.as_str(), serde_json::to_value(sys).ok()?))
        })
        .collect();
    if !systems.is_empty() {
        let v = match &systems[..] {
            [(_, one)] if runs.len() == 1 => one.clone(),
            _ => serde_json::Value::Object(
                systems
                    .into_iter()
                    .map(|(id, v)| (id.to_string(), v))
                    .collect(),
            ),
        };
        write(
            &dir.join("system.json"),
            serde_json::to_string_pretty(&v)?.as_bytes(),
            &mut written,
        )?;
    }
    let chart_dir = dir.join("charts");
    std::fs::create_dir_all(&chart_dir)
        .with_context(|| format!("cannot create {}", chart_dir.display()))?;
    let svgs = render_charts(runs, Some(&chart_dir), &mut written)?;
    let not_charted = charts::not_charted(&tables::entries(runs));
    for note in &not_charted {
        eprintln!("{note}");
    }
    write(
        &dir.join("report.html"),
        html::html(runs, &svgs, &not_charted).as_bytes(),
        &mut written,
    )?;
    Ok(written)
}

/// Runs `report`; returns the process exit code.
pub fn report(a: ReportArgs) -> anyhow::Result<i32> {
    let store = StoreLoc::parse(a.store.store.as_deref())?;
    let runs: Vec<ResultFile> = if a.results.is_empty() {
        vec![
            resolve("latest", &store)
                .context("no result given and no run recorded to report on")?,
        ]
    } else {
        a.results
            .iter()
            .map(|r| resolve(r, &store))
            .collect::<anyhow::Result<_>>()?
    };
    let written = write_report(&runs, &a.out)?;
    eprintln!(
        "Report for {} written to {} ({} files):",
        runs.iter()
            .map(|r| r.run_id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        a.out.display(),
        written.len()
    );
    for p in written {
        super::say(p.display())?;
    }
    Ok(0)
}

/// After a run: record it in the store, write `--format` files and the `--report` directory.
/// Failures here are reported but never lose the run's exit code.
pub fn after_run(o: &ReportSettings, output: Option<&Path>, result: &ResultFile) {
    if !o.no_store && o.store.is_none() {
        eprintln!(
            "warning: run not recorded in the results store: cannot find it (set LLMBENCH_HOME or HOME, or give --store)"
        );
    }
    if let Some(loc) = o.store.as_ref().filter(|_| !o.no_store) {
        match Store::open(loc).and_then(|s| s.record(result, &o.tags)) {
            Ok(()) => eprintln!(
                "Recorded as run {} in the results store {loc} (llmbench history).",
                result.run_id
            ),
            Err(e) => eprintln!("warning: run not recorded in the results store: {e:#}"),
        }
    }
    if !o.formats.is_empty() {
        let runs = std::slice::from_ref(result);
        for f in &o.formats {
            let path = crate::settings::format_path(output, &result.run_id, *f);
            let res = if *f == Format::Json && Some(path.as_path()) == output {
                Ok(())
            } else if *f == Format::Json {
                result.write(&path)
            } else {
                f.exporter()
                    .render(runs)
                    .and_then(|b| Ok(std::fs::write(&path, b)?))
            };
            match res {
                Ok(()) => eprintln!("Wrote {}", path.display()),
                Err(e) => eprintln!("warning: cannot write {}: {e:#}", path.display()),
            }
            for (name, bytes) in f.exporter().companions(runs) {
                let p = crate::settings::companion_path(&path, name);
                match std::fs::write(&p, bytes) {
                    Ok(()) => eprintln!("Wrote {}", p.display()),
                    Err(e) => eprintln!("warning: cannot write {}: {e:#}", p.display()),
                }
            }
        }
    }
    if let Some(dir) = &o.dir {
        match write_report(std::slice::from_ref(result), dir) {
            Ok(files) => eprintln!(
                "Report written to {} ({} files)",
                dir.display(),
                files.len()
            ),
            Err(e) => eprintln!("warning: report not written: {e:#}"),
        }
    }
}
