//! `llmbench compare BASE NEW`: side-by-side table per scenario; exit 4 on a regression.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

use crate::cli::CompareArgs;
use crate::results::compare::{
    CONFIDENCE, Comparison, Row, compare as compare_results, parse_threshold,
};
use crate::results::store::{StoreLoc, resolve};

/// Exit code when compare finds a significant regression beyond the threshold.
pub const EXIT_REGRESSION: i32 = 4;

fn num(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

fn signed(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:+.1}")
    } else {
        format!("{x:+.2}")
    }
}

/// Notes under a scenario's table: each reason a row has no interval, with the rows it applies to.
fn notes(rows: &[Row]) -> String {
    let mut notes: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in rows {
        if let Some(why) = r.no_interval.as_deref() {
            match notes.iter_mut().find(|(w, _)| *w == why) {
                Some((_, metrics)) => metrics.push(&r.metric),
                None => notes.push((why, vec![&r.metric])),
            }
        }
    }
    notes
        .iter()
        .map(|(why, metrics)| format!("{}: {why}\n", metrics.join(", ")))
        .collect()
}

/// The comparison as console text.
pub fn text(c: &Comparison, base: &str, new: &str) -> String {
    let mut s = if c.max_regression.is_finite() {
        format!(
            "Comparing {base} (base) with {new} (new); regression: worse by more than {:.1}% and the {:.0}% bootstrap interval of the change wholly on the worse side (without an interval, the threshold alone)\n",
            c.max_regression * 100.0,
            CONFIDENCE * 100.0
        )
    } else {
        format!(
            "Comparing {base} (base) with {new} (new); better/worse: the {:.0}% bootstrap interval of the change wholly on one side of 0\n",
            CONFIDENCE * 100.0
        )
    };
    for w in &c.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    for sc in &c.scenarios {
        let mut t = Table::new();
        t.load_style(UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "metric",
            "unit",
            "base",
            "new",
            "change",
            "change %",
            "95% CI of change",
            "verdict",
        ]);
        for r in &sc.rows {
            if r.base.is_none() && r.new.is_none() {
                continue;
            }
            t.add_row(vec![
                r.metric.clone(),
                r.unit.clone(),
                num(r.base),
                num(r.new),
                r.change.map_or("-".into(), signed),
                r.relative
                    .map_or("-".into(), |x| format!("{:+.1}%", x * 100.0)),
                r.ci.map_or("-".into(), |(lo, hi)| {
                    format!("[{}, {}]", signed(lo), signed(hi))
                }),
                r.verdict.label().into(),
            ]);
        }
        for i in 2..7 {
            if let Some(col) = t.column_mut(i) {
                col.set_cell_alignment(CellAlignment::Right);
            }
        }
        s.push_str(&format!(
            "\nScenario {} ({} vs {} requests)\n",
            sc.name, sc.samples.0, sc.samples.1
        ));
        for w in &sc.warnings {
            s.push_str(&format!("warning: {w}\n"));
        }
        s.push_str(&format!("{t}\n{}", notes(&sc.rows)));
    }
    if !c.scenarios.is_empty() {
        s.push_str(
            "Each interval is of its row's change (new − base), in the row's unit: latency rows resample the requests and recompute the percentile; throughput rows resample the requests and recompute the scenario's figure at the run's mean number of requests in flight (closed loop).\n",
        );
    }
    if !c.only_base.is_empty() {
        s.push_str(&format!(
            "\nOnly in base (not compared): {}\n",
            c.only_base.join(", ")
        ));
    }
    if !c.only_new.is_empty() {
        s.push_str(&format!(
            "\nOnly in new (not compared): {}\n",
            c.only_new.join(", ")
        ));
    }
    s
}

/// Runs `compare`; returns the process exit code.
pub fn compare(a: CompareArgs) -> anyhow::Result<i32> {
    let threshold = parse_threshold(&a.max_regression)?;
    let store = StoreLoc::parse(a.store.store.as_deref())?;
    let base = resolve(&a.base, &store)?;
    let new = resolve(&a.new, &store)?;
    if let (Some(b), Some(n)) = (&base.capacity, &new.capacity) {
        return capacity(b, n, threshold, &a);
    }
    let c = compare_results(&base, &new, threshold);
    if c.scenarios.is_empty() {
        let names = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        anyhow::bail!(
            "{} and {} have no scenario of the same name to compare (scenarios are paired by name; base has {}, new has {})",
            a.base,
            a.new,
            names(&c.only_base),
            names(&c.only_new)
        );
    }
    print!("{}", text(&c, &a.base, &a.new));
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_vec_pretty(&c)?)
            .map_err(|e| anyhow::anyhow!("--json {}: {e}", p.display()))?;
    }
    let regressions = c.regressions();
    if regressions.is_empty() {
        println!(
            "\nNo significant regression beyond {:.1}%.",
            threshold * 100.0
        );
        return Ok(0);
    }
    eprintln!(
        "\nerror: {} significant regression(s) beyond {:.1}%:",
        regressions.len(),
        threshold * 100.0
    );
    for (sc, r) in regressions {
        eprintln!(
            "  {sc}: {} {} → {} {} ({:+.1}%{})",
            r.metric,
            num(r.base),
            num(r.new),
            r.unit,
            r.relative.unwrap_or(0.0) * 100.0,
            r.ci.map_or(
                ", no interval: by the threshold alone".into(),
                |(lo, hi)| {
                    format!(
                        ", 95% CI of change [{}, {}] {}",
                        signed(lo),
                        signed(hi),
                        r.unit
                    )
                }
            )
        );
    }
    Ok(EXIT_REGRESSION)
}

/// Two capacity results: the capacities with their intervals; exit 4 when new is worse.
fn capacity(
    b: &crate::measure::capacity::CapacityResult,
    n: &crate::measure::capacity::CapacityResult,
    threshold: f64,
    a: &CompareArgs,
) -> anyhow::Result<i32> {
    use crate::results::compare_capacity::{Change, Side, compare};
    let c = compare(b, n, threshold)?;
    let unit = if c.by == "rate" { " req/s" } else { "" };
    let cap = |s: &Side| s.capacity.map_or("none".into(), |x| format!("{x}"));
    let iv = |s: &Side| {
        format!(
            "[{}, {}]",
            s.lower,
            s.upper.map_or("∞".into(), |u| u.to_string())
        )
    };
    let verdict = match c.change {
        Change::Worse => "do not overlap: worse",
        Change::Better => "do not overlap: better",
        Change::Unclear => "overlap: no clear change",
    };
    println!(
        "Capacity ({} under {}): {} → {}{unit}{}, intervals {} vs {} {verdict}",
        c.by,
        c.slo.join(", "),
        cap(&c.base),
        cap(&c.new),
        c.relative
            .map_or(String::new(), |r| format!(" ({:+.1}%)", r * 100.0)),
        iv(&c.base),
        iv(&c.new),
    );
    let gp = |s: &Side| match (s.goodput_requests_per_s, s.goodput_output_tokens_per_s) {
        (Some(r), Some(t)) => format!("{r:.2} req/s, {t:.1} output tok/s"),
        _ => "none".into(),
    };
    println!("Goodput at the capacity: {} → {}", gp(&c.base), gp(&c.new));
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_vec_pretty(&c)?)
            .map_err(|e| anyhow::anyhow!("--json {}: {e}", p.display()))?;
    }
    if c.change == Change::Worse {
        eprintln!(
            "\nerror: capacity regression: {} → {}{unit}, intervals {} vs {} do not overlap",
            cap(&c.base),
            cap(&c.new),
            iv(&c.base),
            iv(&c.new)
        );
        return Ok(EXIT_REGRESSION);
    }
    Ok(0)
}
