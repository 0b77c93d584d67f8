//! `report.html`: one self-contained page (inline CSS and SVG charts, no scripts, no links
//! to fetch), so it opens offline and can be mailed as one file.

use super::model::{self, esc, html_table};
use super::tables::{Entry, OVERVIEW_HEAD, entries, overview_rows, run_header};
use crate::results::file::ResultFile;

fn scenario_section(e: &Entry) -> String {
    let mut s = format!("<h3>{}</h3>", esc(&e.label));
    s.push_str(&format!(
        "<p class=\"params\">{}</p>",
        esc(&serde_json::to_string(&e.scenario.params).unwrap_or_default())
    ));
    s.push_str(&model::html(&super::sections::scenario(e.scenario)));
    s
}

/// The page: run headers, overview table, charts (SVG text, in order; `not_charted` names
/// the scenarios left out of them, with why), scenario details.
pub fn html(runs: &[ResultFile], charts: &[(String, String)], not_charted: &[String]) -> String {
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
         .alert{font-weight:bold;color:#a40000;border-left:4px solid #a40000;padding:.3em .6em;background:#fff3f3}\
         .list{margin-bottom:0}ul{margin-top:.2em}\
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
    s.push_str(&html_table(&OVERVIEW_HEAD, &overview_rows(&es)));
    s.push_str("<h2>Charts</h2>");
    for note in not_charted {
        s.push_str(&format!("<p class=\"alert\">{}</p>", esc(note)));
    }
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
