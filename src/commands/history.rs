//! `llmbench history` and `llmbench export`: read the results store.

use comfy_table::Table;
use comfy_table::presets::UTF8_FULL_CONDENSED;

use crate::cli::{ExportArgs, HistoryArgs};
use crate::results::store::{Filter, Store, StoreLoc};

fn fig(v: &serde_json::Value, digits: usize) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.digits$}"))
}

/// Runs `history`; returns the process exit code.
pub fn history(a: HistoryArgs) -> anyhow::Result<i32> {
    let tag = match &a.tag {
        None => None,
        Some(t) => {
            let tags = crate::settings::store::tags(std::slice::from_ref(t))?;
            tags.into_iter().next()
        }
    };
    let db = StoreLoc::parse(a.store.store.as_deref())?;
    let filter = Filter {
        model: a.model.clone(),
        target: a.target.clone(),
        backend: a.backend.clone(),
        tag,
        limit: a.limit,
    };
    if a.json {
        let rows = if db.exists() {
            Store::open(&db)?.list(&filter)?
        } else {
            Vec::new()
        };
        super::say(serde_json::to_string_pretty(&rows)?)?;
        return Ok(0);
    }
    if !db.exists() {
        super::say(format!("No runs recorded yet (results store: {}).", db))?;
        return Ok(0);
    }
    let rows = Store::open(&db)?.list(&filter)?;
    if rows.is_empty() {
        super::say(format!("No runs match (results store: {}).", db))?;
        return Ok(0);
    }
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "id",
        "started",
        "status",
        "target",
        "model",
        "scenarios",
        "TTFT p50 ms",
        "out tok/s",
        "hardware",
    ]);
    for r in &rows {
        // Key figures of the first scenario (a sweep's first step).
        let first = &r.summary[0];
        let scenarios = if r.scenarios == 1 {
            first["name"].as_str().unwrap_or("1").to_string()
        } else {
            r.scenarios.to_string()
        };
        t.add_row(vec![
            r.id.clone(),
            r.started_at
                .chars()
                .take(19)
                .collect::<String>()
                .replace('T', " "),
            r.status.clone(),
            r.target.clone(),
            r.model.clone(),
            scenarios,
            fig(&first["ttft_p50_ms"], 1),
            fig(&first["output_tokens_per_s"], 1),
            r.hardware.clone(),
        ]);
    }
    super::say(t)?;
    super::say(format!(
        "{} run(s) in {}; figures are the first scenario's. `llmbench export ID`, `llmbench compare ID ID`, `llmbench report ID`.",
        rows.len(),
        db
    ))?;
    Ok(0)
}

/// Runs `export`; returns the process exit code.
pub fn export(a: ExportArgs) -> anyhow::Result<i32> {
    let db = StoreLoc::parse(a.store.store.as_deref())?;
    if !db.exists() {
        anyhow::bail!("no results store at {}: nothing to export", db);
    }
    // The stored text itself, byte for byte: no float or field is re-serialised.
    let text = Store::open(&db)?.get_text(&a.id)?;
    match &a.output {
        Some(p) => {
            crate::results::file::write_text(p, &text)?;
            eprintln!("Run {} written to {}", a.id, p.display());
        }
        None => super::say(text.trim_end())?,
    }
    Ok(0)
}
