//! `report.html`: one self-contained page (inline CSS and SVG charts, no scripts, no links
//! to fetch), so it opens offline and can be mailed as one file.

use super::tables::{
    Entry, LAT_HEAD, OVERVIEW_HEAD, SLO_HEAD, entries, latency_rows, overview_rows, run_header,
    slo_rows,
};
use crate::measure::record::Outcome;
use crate::results::file::ResultFile;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table><thead><tr>");
    for h in head {
        s.push_str(&format!("<th>{}</th>", esc(h)));
    }
    s.push_str("</tr></thead><tbody>");
    for r in rows {
        s.push_str("<tr>");
        for c in r {
            s.push_str(&format!("<td>{}</td>", esc(c)));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

fn scenario_section(e: &Entry) -> String {
    let sc = e.scenario;
    let m = &sc.metrics;
    let mut s = format!("<h3>{}</h3>", esc(&e.label));
    s.push_str(&format!(
        "<p class=\"params\">{}</p>",
        esc(&serde_json::to_string(&sc.params).unwrap_or_default())
    ));
    s.push_str(&table(&LAT_HEAD, &latency_rows(sc)));
    s.push_str(&format!(
        "<p>Throughput {:.2} req/s, {:.1} output tok/s, {:.1} total tok/s over {:.2} s. \
         Outcomes: {} scheduled, {} succeeded, {} failed.</p>",
        m.requests_per_s,
        m.output_tokens_per_s,
        m.total_tokens_per_s,
        m.duration_s,
        sc.outcomes.scheduled,
        sc.outcomes.get(Outcome::Succeeded),
        sc.outcomes.failed()
    ));
    if let Some(slo) = &sc.slo {
        s.push_str(&table(&SLO_HEAD, &slo_rows(slo, |t| t.to_string())));
        s.push_str(&format!(
            "<p>Goodput {}/{} requests ({:.1}%), {:.2} req/s.</p>",
            slo.goodput.good,
            slo.goodput.scheduled,
            slo.goodput.share * 100.0,
            slo.goodput.requests_per_s
        ));
    }
    s
}

/// The page: run headers, overview table, charts (SVG text, in order), scenario details.
pub fn html(runs: &[ResultFile], charts: &[(String, String)]) -> String {
    let es = entries(runs);
    let mut s = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>llmbench report</title><style>\
         body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;margin:2em;color:#222;max-width:1500px}\
         table{border-collapse:collapse;margin:.6em 0}\
         th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}\
         th:first-child,td:first-child{text-align:left}th{background:#f2f2f2}\
         .chart svg{max-width:100%;height:auto;border:1px solid #eee;margin:.5em 0}\
         .params{font-family:monospace;font-size:.85em;color:#555}\
         dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}\
         </style></head><body><h1>llmbench report</h1>",
    );
    for r in runs {
        s.push_str("<dl>");
        for (k, v) in run_header(r) {
            s.push_str(&format!("<dt>{}</dt><dd>{}</dd>", esc(&k), esc(&v)));
        }
        s.push_str("</dl>");
    }
    s.push_str("<h2>Overview</h2>");
    s.push_str(&table(&OVERVIEW_HEAD, &overview_rows(&es)));
    s.push_str("<h2>Charts</h2>");
    for (name, svg) in charts {
        // The SVG document's XML declaration is dropped so it can sit inside HTML.
        let body = svg.find("<svg").map_or(svg.as_str(), |i| &svg[i..]);
        s.push_str(&format!(
            "<div class=\"chart\" id=\"{}\">{body}</div>",
            esc(name)
        ));
    }
    s.push_str("<h2>Scenarios</h2>");
    for e in &es {
        s.push_str(&scenario_section(e));
    }
    s.push_str("</body></html>\n");
    s
}
