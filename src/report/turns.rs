//! Console table of per-turn (and RAG) statistics of a conversations scenario.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

use crate::measure::turns::Group;
use crate::results::file::ScenarioResult;

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn row(label: String, g: &Group) -> Vec<String> {
    vec![
        label,
        format!("{}/{}", g.succeeded, g.requests),
        format!("{:.1}", g.messages),
        opt(g.context_tokens, 0),
        format!("{:.0}", g.document_tokens),
        opt(g.ttft_ms.map(|d| d.mean), 1),
        opt(g.ttft_ms.map(|d| d.p50), 1),
        opt(g.cached_tokens, 0),
        opt(g.cached_share.map(|s| s * 100.0), 1),
    ]
}

/// The per-turn table (and the with/without-documents rows), or `None` when the scenario
/// was not a conversations scenario.
pub fn text(sc: &ScenarioResult) -> Option<String> {
    if sc.turns.is_empty() {
        return None;
    }
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "turn",
        "ok/sent",
        "messages",
        "context tok",
        "doc tok",
        "TTFT mean ms",
        "TTFT p50 ms",
        "cached tok",
        "cached %",
    ]);
    for turn in &sc.turns {
        t.add_row(row(turn.turn.to_string(), &turn.stats));
    }
    if let Some(rag) = &sc.rag {
        t.add_row(row("with docs".into(), &rag.with_documents));
        t.add_row(row("without docs".into(), &rag.without_documents));
    }
    for c in 1..9 {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    Some(format!("Per turn:\n{t}"))
}
