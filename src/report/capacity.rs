//! The console text of `llmbench capacity`: one line per step as it ends, and the answer with
//! its table of steps.

use comfy_table::Table;
use comfy_table::presets::UTF8_FULL_CONDENSED;

use crate::measure::capacity::{By, CapacityResult, CapacityStep, TargetCheck, Verdict};

fn num(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn verdict(v: Verdict, early: bool) -> String {
    let w = match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Undecided => "undecided",
    };
    if early {
        format!("{w} (decided early)")
    } else {
        w.to_string()
    }
}

/// "ttft_p99<500ms: 312.4 [298.1, 330.2] pass".
fn check(c: &TargetCheck) -> String {
    let o = |x: Option<f64>| x.map_or("?".to_string(), num);
    format!(
        "{}: {} [{}, {}] n={} {}",
        c.target,
        c.value.map_or("failed".to_string(), num),
        o(c.lower),
        o(c.upper),
        c.n,
        verdict(c.verdict, false)
    )
}

/// One step as it ends.
pub fn step_line(s: &CapacityStep) -> String {
    format!(
        "Step {}: {} after {} requests in {:.2} s; {}",
        s.scenario,
        verdict(s.verdict, s.stopped_early),
        s.requests,
        s.duration_s,
        s.targets.iter().map(check).collect::<Vec<_>>().join("; ")
    )
}

fn unit(by: By) -> &'static str {
    match by {
        By::Concurrency => "concurrent requests",
        By::Rate => "req/s",
    }
}

/// "Goodput at the capacity (12 concurrent requests): 410.2 req/s, 3281.6 output tok/s (300 of
/// 300 requests met every target)"; `None` when there is none.
pub fn goodput_line(c: &CapacityResult) -> Option<String> {
    let g = c.goodput.as_ref()?;
    Some(format!(
        "Goodput at the capacity ({} {}): {:.2} req/s, {:.1} output tok/s ({} of {} requests met every target)",
        num(g.load),
        unit(c.by),
        g.requests_per_s,
        g.output_tokens_per_s,
        g.good,
        g.requests
    ))
}

/// The answer in one line, for report headers.
pub fn answer(c: &CapacityResult) -> String {
    let u = unit(c.by);
    match (c.capacity, c.first_fail) {
        (Some(p), Some(f)) => format!(
            "{} {u} (first failing load {}), under {}",
            num(p),
            num(f),
            c.slo.join(", ")
        ),
        (Some(p), None) => format!("at least {} {u}, under {}", num(p), c.slo.join(", ")),
        (None, _) => format!("no load tried met {}", c.slo.join(", ")),
    }
}

/// The answer and the table of steps.
pub fn text(c: &CapacityResult) -> String {
    let unit = unit(c.by);
    let mut s = match (c.capacity, c.first_fail) {
        (Some(p), Some(f)) => format!(
            "Capacity: {} {unit} (between {} and {}: the last load that passed and the first that did not; intervals at {:.0} %)\n",
            num(p),
            num(p),
            num(f),
            c.confidence * 100.0
        ),
        (Some(p), None) => format!(
            "Capacity: at least {} {unit} (no load tried failed; search ended: {})\n",
            num(p),
            c.ended
        ),
        (None, _) => format!("Capacity: no load tried met every target ({unit})\n"),
    };
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    let mut head = vec!["load".to_string(), "requests".into(), "verdict".into()];
    head.extend(c.slo.iter().map(|x| format!("{x} [95% interval]")));
    head.push("duration s".into());
    t.set_header(head);
    for st in &c.steps {
        let mut row = vec![
            num(st.load),
            st.requests.to_string(),
            verdict(st.verdict, st.stopped_early),
        ];
        for spec in &c.slo {
            let o = |x: Option<f64>| x.map_or("?".to_string(), num);
            row.push(
                st.targets
                    .iter()
                    .find(|x| &x.target == spec)
                    .map_or("-".into(), |x| {
                        format!(
                            "{} [{}, {}]",
                            x.value.map_or("failed".to_string(), num),
                            o(x.lower),
                            o(x.upper)
                        )
                    }),
            );
        }
        row.push(format!("{:.2}", st.duration_s));
        t.add_row(row);
    }
    s.push_str(&t.to_string());
    if let Some(g) = goodput_line(c) {
        s.push('\n');
        s.push_str(&g);
    }
    s.push_str(&format!(
        "\n{} requests over {} steps in {:.1} s; search ended: {}",
        c.requests,
        c.steps.len(),
        c.duration_s,
        c.ended
    ));
    s
}
