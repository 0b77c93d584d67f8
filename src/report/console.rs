//! The console summary printed after each scenario.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

use crate::measure::record::Outcome;
use crate::measure::stats::Dist;
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
    let mut rows: Vec<(&str, &Option<Dist>)> = vec![("TTFT", &m.ttft_ms)];
    // Reasoning replies: the first answer token, after the reasoning.
    if m.ttft_answer_ms.is_some() {
        rows.push(("TTFT answer", &m.ttft_answer_ms));
        rows.push(("reasoning", &m.reasoning_ms));
    }
    rows.push(("TPOT", &m.tpot_ms));
    rows.push(("ITL", &m.itl_ms));
    // Several tokens per chunk: the gap per token too, and how many a chunk carried.
    if m.itl_per_token_ms.is_some() {
        rows.push(("ITL per token", &m.itl_per_token_ms));
        rows.push(("tokens/chunk (n)", &m.tokens_per_chunk));
    }
    rows.extend([("E2E", &m.e2e_ms), ("queue", &m.queue_ms)]);
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

/// Error messages shown under the outcomes at most.
const ERRORS_SHOWN: usize = 5;

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
    s.push_str(&format!(
        "Throughput: {:.2} req/s, {:.1} output tok/s, {:.1} total tok/s",
        m.requests_per_s, m.output_tokens_per_s, m.total_tokens_per_s
    ));
    if let Some(r) = m.sent_requests_per_s {
        s.push_str(&format!(" (sent at {r:.2} req/s)"));
    }
    s.push('\n');
    s.push_str(&format!(
        "Tokens: {} in (mean {:.1}), {} out (mean {:.1})",
        m.input_tokens.total, m.input_tokens.mean, m.output_tokens.total, m.output_tokens.mean
    ));
    if let Some(c) = m.cache_hit_rate {
        s.push_str(&format!(", cache hit rate {:.1}%", c * 100.0));
    }
    s.push('\n');
    if let (Some(i), Some(rate)) = (&m.inputs, m.inputs_per_s) {
        s.push_str(&format!(
            "Inputs: {} embedded or ranked (mean {:.1} per request), {:.1} inputs/s, {:.1} input tok/s\n",
            i.total, i.mean, rate, m.total_tokens_per_s
        ));
    }
    if let (Some(r), Some(a)) = (&m.reasoning_tokens, &m.answer_tokens) {
        s.push_str(&format!(
            "Reasoning replies: {} reasoning tokens (mean {:.1}), {} answer tokens (mean {:.1})\n",
            r.total, r.mean, a.total, a.mean
        ));
    }
    let mut parts = vec![format!("{} succeeded", o.get(Outcome::Succeeded))];
    for oc in Outcome::ALL.iter().skip(1) {
        let n = o.get(*oc);
        if n > 0 {
            parts.push(format!("{n} {}", oc.as_str()));
        }
    }
    s.push_str(&format!(
        "Outcomes: {} scheduled: {}\n",
        o.scheduled,
        parts.join(", ")
    ));
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
        let mut line = String::from("Client:");
        if let (Some(cpu), Some(share)) = (c.cpu_s, c.cpu_share) {
            line.push_str(&format!(
                " {cpu:.2} CPU s ({:.0}% of {} core(s))",
                share * 100.0,
                c.cores
            ));
        }
        if let Some(l) = &c.schedule_lateness_ms {
            line.push_str(&format!(
                ", schedule lateness p50 {:.3} ms p99 {:.3} ms",
                l.p50, l.p99
            ));
        }
        if !c.trustworthy {
            line.push_str(" — NOT TRUSTWORTHY: the client was the limit (see warnings)");
        }
        s.push_str(&line);
        s.push('\n');
    }
    if o.retried_attempts > 0 {
        s.push_str(&format!(
            "Retried attempts: {} (in the records, not in the outcomes above)\n",
            o.retried_attempts
        ));
    }
    if o.stale_connection_resends > 0 {
        s.push_str(&format!(
            "Resent on a new connection: {} (the server closed kept-alive connections after its responses; --no-keepalive avoids reuse)\n",
            o.stale_connection_resends
        ));
    }
    if let Some(ea) = &m.error_adjusted
        && ea.success_rate < 1.0
    {
        let q = |x: Option<f64>| x.map_or("failed".to_string(), fmt);
        s.push_str(&format!(
            "Error-adjusted: {:.1}% succeeded; failures as worst case: TTFT p50 {} p99 {}, E2E p50 {} p99 {} ms; goodput {:.1} tok/s\n",
            ea.success_rate * 100.0,
            q(ea.ttft_ms.p50),
            q(ea.ttft_ms.p99),
            q(ea.e2e_ms.p50),
            q(ea.e2e_ms.p99),
            ea.goodput_tokens_per_s
        ));
    }
    for w in &sc.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    s
}
