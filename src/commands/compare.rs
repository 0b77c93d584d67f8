//! `llmbench compare BASE NEW`: side-by-side table per scenario; exit 4 on a regression.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

use crate::cli::CompareArgs;
use crate::results::compare::{
    CONFIDENCE, Comparison, Row, compare as compare_results, parse_threshold,
};
use crate::results::store::resolve;

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

fn verdict(r: &Row) -> &'static str {
    if r.regression {
        "REGRESSION"
    } else if r.significant == Some(true) && r.change.is_some_and(|c| c != 0.0) {
        if r.worse { "worse" } else { "better" }
    } else if r.significant.is_none() {
        "untested"
    } else {
        "no change"
    }
}

/// The comparison as console text.
pub fn text(c: &Comparison, base: &str, new: &str) -> String {
    let mut s = if c.max_regression.is_finite() {
        format!(
            "Comparing {base} (base) with {new} (new); regression: worse by more than {:.1}% and the {:.0}% bootstrap interval of the change excludes 0\n",
            c.max_regression * 100.0,
            CONFIDENCE * 100.0
        )
    } else {
        format!(
            "Comparing {base} (base) with {new} (new); better/worse: the {:.0}% bootstrap interval of the change excludes 0\n",
            CONFIDENCE * 100.0
        )
    };
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
                r.change.map_or("-".into(), |c| format!("{c:+.2}")),
                r.relative
                    .map_or("-".into(), |x| format!("{:+.1}%", x * 100.0)),
                r.ci.map_or("-".into(), |(lo, hi)| {
                    format!("[{}, {}]", signed(lo), signed(hi))
                }),
                verdict(r).into(),
            ]);
        }
        for i in 2..7 {
            if let Some(col) = t.column_mut(i) {
                col.set_cell_alignment(CellAlignment::Right);
            }
        }
        s.push_str(&format!(
            "\nScenario {} ({} vs {} requests)\n{t}\n",
            sc.name, sc.samples.0, sc.samples.1
        ));
    }
    s.push_str(
        "Throughput rows: the interval is that of the mean per-request output rate (tok/s per request).\n",
    );
    if !c.only_base.is_empty() {
        s.push_str(&format!("\nOnly in base: {}\n", c.only_base.join(", ")));
    }
    if !c.only_new.is_empty() {
        s.push_str(&format!("\nOnly in new: {}\n", c.only_new.join(", ")));
    }
    s
}

/// Runs `compare`; returns the process exit code.
pub fn compare(a: CompareArgs) -> anyhow::Result<i32> {
    let threshold = parse_threshold(&a.max_regression)?;
    let base = resolve(&a.base)?;
    let new = resolve(&a.new)?;
    let c = compare_results(&base, &new, threshold);
    if c.scenarios.is_empty() {
        anyhow::bail!(
            "{} and {} have no scenario in common to compare",
            a.base,
            a.new
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
            "  {sc}: {} {} → {} {} ({:+.1}%)",
            r.metric,
            num(r.base),
            num(r.new),
            r.unit,
            r.relative.unwrap_or(0.0) * 100.0
        );
    }
    Ok(EXIT_REGRESSION)
}
