//! The console summary printed after each scenario.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

use crate::measure::health::ClientLoad;
use crate::measure::record::Outcome;
use crate::measure::stats::{Dist, Metrics, Outcomes};
use crate::results::file::ScenarioResult;

fn fmt(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// The latency table of one scenario.
pub fn latency_table(sc: &ScenarioResult) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "metric (ms)",
        "min",
        "mean",
        "median",
        "p90",
        "p95",
        "p99",
        "max",
        "n",
    ]);
    let m = &sc.metrics;
    let rows = latency_dists(m);
    for (name, d) in rows {
        let mut row = vec![name.to_string()];
        match d {
            Some(d) => {
                row.extend(
                    [d.min, d.mean, d.p50, d.p90, d.p95, d.p99, d.max]
                        .into_iter()
                        .map(fmt),
                );
                row.push(d.count.to_string());
            }
            None => row.extend(std::iter::repeat_n("-".to_string(), 8)),
        }
        t.add_row(row);
    }
    for i in 1..9 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// A sweep's comparison: one row per step with its load, throughput, the key latencies and the
/// requests that did not succeed.
pub fn sweep_table(scenarios: &[ScenarioResult]) -> Table {
    use crate::results::params::Load;
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "step",
        "load",
        "req/s",
        "out tok/s",
        "TTFT p50 ms",
        "TTFT p99 ms",
        "TPOT p50 ms",
        "E2E p99 ms",
        "errors",
    ]);
    let q = |d: &Option<Dist>, p: fn(&Dist) -> f64| d.as_ref().map_or("-".into(), |d| fmt(p(d)));
    for sc in scenarios {
        let m = &sc.metrics;
        let load = match &sc.params.load {
            Some(Load::Closed { concurrency }) => format!("c={concurrency}"),
            Some(Load::Open { rate, .. }) => format!("{rate} req/s"),
            None => "-".into(),
        };
        t.add_row(vec![
            sc.name.clone(),
            load,
            format!("{:.2}", m.requests_per_s),
            format!("{:.1}", m.output_tokens_per_s),
            q(&m.ttft_ms, |d| d.p50),
            q(&m.ttft_ms, |d| d.p99),
            q(&m.tpot_ms, |d| d.p50),
            q(&m.e2e_ms, |d| d.p99),
            (sc.outcomes.scheduled
                - sc.outcomes
                    .get(Outcome::Succeeded)
                    .min(sc.outcomes.scheduled))
            .to_string(),
        ]);
    }
    for i in 2..9 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// The latency rows a scenario shows, in order: TTFT, then for reasoning replies the first
/// answer token and the reasoning time, TPOT, ITL, then for several tokens per chunk the gap
/// per token and the tokens per chunk, E2E and queue. Console and reports share it.
pub(crate) fn latency_dists(m: &Metrics) -> Vec<(&'static str, &Option<Dist>)> {
    let mut rows: Vec<(&str, &Option<Dist>)> = vec![("TTFT", &m.ttft_ms)];
    if m.ttft_answer_ms.is_some() {
        rows.push(("TTFT answer", &m.ttft_answer_ms));
        rows.push(("reasoning", &m.reasoning_ms));
    }
    rows.push(("TPOT", &m.tpot_ms));
    rows.push(("ITL", &m.itl_ms));
    if m.itl_per_token_ms.is_some() {
        rows.push(("ITL per token", &m.itl_per_token_ms));
        rows.push(("tokens/chunk (n)", &m.tokens_per_chunk));
    }
    rows.extend([("E2E", &m.e2e_ms), ("queue", &m.queue_ms)]);
    rows
}

/// "12 embedded or ranked (mean 4.0 per request), 8.0 inputs/s, 96.0 input tok/s".
pub(crate) fn inputs_text(m: &Metrics) -> Option<String> {
    let (i, rate) = (m.inputs.as_ref()?, m.inputs_per_s?);
    Some(format!(
        "{} embedded or ranked (mean {:.1} per request), {:.1} inputs/s, {:.1} input tok/s",
        i.total, i.mean, rate, m.total_tokens_per_s
    ))
}

/// "240 reasoning tokens (mean 20.0), 120 answer tokens (mean 10.0)".
pub(crate) fn reasoning_text(m: &Metrics) -> Option<String> {
    let (r, a) = (m.reasoning_tokens.as_ref()?, m.answer_tokens.as_ref()?);
    Some(format!(
        "{} reasoning tokens (mean {:.1}), {} answer tokens (mean {:.1})",
        r.total, r.mean, a.total, a.mean
    ))
}

/// Error messages shown under the outcomes at most.
const ERRORS_SHOWN: usize = 5;

/// "2.00 req/s, 100.0 output tok/s, 150.0 total tok/s (sent at 2.00 req/s)".
pub(crate) fn throughput_text(m: &Metrics) -> String {
    let mut s = format!(
        "{:.2} req/s, {:.1} output tok/s, {:.1} total tok/s",
        m.requests_per_s, m.output_tokens_per_s, m.total_tokens_per_s
    );
    if let Some(r) = m.sent_requests_per_s {
        s.push_str(&format!(" (sent at {r:.2} req/s)"));
    }
    s
}

/// "100 in (mean 10.0), 200 out (mean 20.0), cache hit rate 5.0%".
pub(crate) fn tokens_text(m: &Metrics) -> String {
    let mut s = format!(
        "{} in (mean {:.1}), {} out (mean {:.1})",
        m.input_tokens.total, m.input_tokens.mean, m.output_tokens.total, m.output_tokens.mean
    );
    if let Some(c) = m.cache_hit_rate {
        s.push_str(&format!(", cache hit rate {:.1}%", c * 100.0));
    }
    s
}

/// "$2.00 per million output tokens, $4.00 per million input tokens (2 GPUs at $3.60/h)".
pub(crate) fn cost_text(sc: &ScenarioResult) -> Option<String> {
    let c = sc.cost.as_ref()?;
    let per = |x: Option<f64>| x.map_or("unknown".to_string(), |x| format!("${x:.4}"));
    Some(format!(
        "{} per million output tokens, {} per million input tokens ({} GPU{} at ${:.2}/h each)",
        per(c.usd_per_million_output_tokens),
        per(c.usd_per_million_input_tokens),
        c.gpus,
        if c.gpus == 1 { "" } else { "s" },
        c.usd_per_hour
    ))
}

/// "1.500 J per output token (300.0 J over the measured window)".
pub(crate) fn energy_text(sc: &ScenarioResult) -> Option<String> {
    let e = sc.energy_j?;
    Some(match sc.energy_j_per_output_token {
        Some(j) => format!("{j:.3} J per output token ({e:.1} J over the measured window)"),
        None => format!("{e:.1} J over the measured window (no output tokens)"),
    })
}

/// "ttft_p99±5%: 123.4 ms [118.2, 128.9] over 400 requests: reached".
pub(crate) fn until_text(u: &crate::measure::capacity::UntilResult) -> String {
    let o = |x: Option<f64>| x.map_or("?".to_string(), fmt);
    format!(
        "{}: {} ms [{}, {}] (95 % interval) over {} values: {}",
        u.until,
        o(u.value),
        o(u.lower),
        o(u.upper),
        u.n,
        match (u.stopped, u.reached) {
            (true, true) => "narrow enough, stopped",
            (true, false) => {
                "stopped when narrow enough, but the requests then in flight widened it again"
            }
            (false, true) => "narrow enough at the bound (--requests/--duration)",
            (false, false) => "not narrow enough before --requests/--duration",
        }
    )
}

/// The steady-state figures beside the whole run's, when a ramp-up or drain was detected.
pub(crate) fn steady_text(sc: &ScenarioResult) -> Option<String> {
    let s = sc.steady_state.as_ref()?;
    let m = &sc.metrics;
    let p = |x: Option<crate::measure::steady::Pcts>| {
        x.map_or("-".to_string(), |x| {
            format!("p50 {} p99 {}", fmt(x.p50), fmt(x.p99))
        })
    };
    Some(format!(
        "{:.1} output tok/s, {:.2} req/s (whole run {:.1} tok/s, {:.2} req/s); TTFT {} ms, TPOT {} ms; window {:.0}–{:.0} ms ({} requests, {:.0} in flight): ramp-up {:.2} s and drain {:.2} s left out",
        s.output_tokens_per_s,
        s.requests_per_s,
        m.output_tokens_per_s,
        m.requests_per_s,
        p(s.ttft_ms),
        p(s.tpot_ms),
        s.start_ms,
        s.end_ms,
        s.requests,
        s.plateau_in_flight,
        s.ramp_up_s,
        s.drain_s
    ))
}

/// "10 scheduled: 9 succeeded, 1 timeout".
pub(crate) fn outcomes_text(o: &Outcomes) -> String {
    let mut parts = vec![format!("{} succeeded", o.get(Outcome::Succeeded))];
    for oc in Outcome::ALL.iter().skip(1) {
        let n = o.get(*oc);
        if n > 0 {
            parts.push(format!("{n} {}", oc.as_str()));
        }
    }
    format!("{} scheduled: {}", o.scheduled, parts.join(", "))
}

/// What the client cost, and the verdict when it was the limit.
pub(crate) fn client_text(c: &ClientLoad) -> String {
    let mut parts = Vec::new();
    if let (Some(cpu), Some(share)) = (c.cpu_s, c.cpu_share) {
        parts.push(format!(
            "{cpu:.2} CPU s ({:.0}% of {} core(s))",
            share * 100.0,
            c.cores
        ));
    }
    if let Some(l) = &c.schedule_lateness_ms {
        parts.push(format!(
            "schedule lateness p50 {:.3} ms p99 {:.3} ms",
            l.p50, l.p99
        ));
    }
    let mut s = parts.join(", ");
    if !c.trustworthy {
        s.push_str(" — NOT TRUSTWORTHY: the client was the limit (see warnings)");
    }
    s.trim_start().to_string()
}

/// The verdict on a client that was the limit, with its reasons; `None` when it kept up.
pub(crate) fn verdict(sc: &ScenarioResult) -> Option<String> {
    let c = sc.client.as_ref().filter(|c| !c.trustworthy)?;
    let mut s = String::from("NOT TRUSTWORTHY: the client was the limit");
    if !c.reasons.is_empty() {
        s.push_str(&format!(" ({})", c.reasons.join("; ")));
    }
    Some(s)
}

/// Retried attempts, when there were any.
pub(crate) fn retried_text(o: &Outcomes) -> Option<String> {
    (o.retried_attempts > 0).then(|| {
        format!(
            "{} (in the records, not in the outcomes above)",
            o.retried_attempts
        )
    })
}

/// Requests resent on a new connection, when there were any.
pub(crate) fn resent_text(o: &Outcomes) -> Option<String> {
    (o.stale_connection_resends > 0).then(|| {
        format!(
            "{} (the server closed kept-alive connections after its responses; --no-keepalive avoids reuse)",
            o.stale_connection_resends
        )
    })
}

/// The error-adjusted view, when something failed.
pub(crate) fn error_adjusted_text(m: &Metrics) -> Option<String> {
    let ea = m
        .error_adjusted
        .as_ref()
        .filter(|ea| ea.success_rate < 1.0)?;
    let q = |x: Option<f64>| x.map_or("failed".to_string(), fmt);
    Some(format!(
        "{:.1}% succeeded; failures as worst case: TTFT p50 {} p99 {}, E2E p50 {} p99 {} ms; goodput {:.1} tok/s",
        ea.success_rate * 100.0,
        q(ea.ttft_ms.p50),
        q(ea.ttft_ms.p99),
        q(ea.e2e_ms.p50),
        q(ea.e2e_ms.p99),
        ea.goodput_tokens_per_s
    ))
}

/// The console text of one scenario: latency table, throughput, outcomes and why requests
/// failed, the client's own load, warnings.
pub fn scenario_text(sc: &ScenarioResult) -> String {
    let m = &sc.metrics;
    let o = &sc.outcomes;
    let mut s = format!(
        "Scenario {} — {} requests in {:.2} s\n",
        sc.name, o.scheduled, m.duration_s
    );
    s.push_str(&latency_table(sc).to_string());
    s.push('\n');
    s.push_str(&format!("Throughput: {}\n", throughput_text(m)));
    if let Some(t) = steady_text(sc) {
        s.push_str(&format!("Steady state: {t}\n"));
    }
    s.push_str(&format!("Tokens: {}\n", tokens_text(m)));
    if let Some(t) = inputs_text(m) {
        s.push_str(&format!("Inputs: {t}\n"));
    }
    if let Some(t) = reasoning_text(m) {
        s.push_str(&format!("Reasoning replies: {t}\n"));
    }
    if let Some(u) = &sc.until {
        s.push_str(&format!("Until: {}\n", until_text(u)));
    }
    if let Some(t) = cost_text(sc) {
        s.push_str(&format!("Cost: {t}\n"));
    }
    if let Some(t) = energy_text(sc) {
        s.push_str(&format!("Energy: {t}\n"));
    }
    s.push_str(&format!("Outcomes: {}\n", outcomes_text(o)));
    // Why they failed, most frequent first (as oha does): the server's own words.
    for e in sc.errors.iter().take(ERRORS_SHOWN) {
        s.push_str(&format!("  {} × {}\n", e.count, e.message));
    }
    if sc.errors.len() > ERRORS_SHOWN {
        s.push_str(&format!(
            "  … {} other error messages (all in the result file's \"errors\")\n",
            sc.errors.len() - ERRORS_SHOWN
        ));
    }
    if let Some(c) = &sc.client {
        s.push_str(&format!("Client: {}\n", client_text(c)));
    }
    if let Some(t) = retried_text(o) {
        s.push_str(&format!("Retried attempts: {t}\n"));
    }
    if let Some(t) = resent_text(o) {
        s.push_str(&format!("Resent on a new connection: {t}\n"));
    }
    if let Some(t) = error_adjusted_text(m) {
        s.push_str(&format!("Error-adjusted: {t}\n"));
    }
    for w in &sc.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    s
}
