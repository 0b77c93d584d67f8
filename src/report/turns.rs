//! Per-turn (and RAG) statistics of a conversations scenario, as tables: the console prints
//! them, and the Markdown, HTML, text and CSV reports render the same tables.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table as Comfy};

use super::model::{Cell, Column, Table};
use crate::measure::turns::Group;
use crate::results::file::ScenarioResult;

/// The statistics columns after the first (the turn, or with/without documents).
const STATS: [Column; 8] = [
    Column {
        head: "ok/sent",
        csv: &["succeeded", "requests"],
    },
    Column {
        head: "messages",
        csv: &["messages_mean"],
    },
    Column {
        head: "context tok",
        csv: &["context_tokens_mean"],
    },
    Column {
        head: "doc tok",
        csv: &["document_tokens_mean"],
    },
    Column {
        head: "TTFT mean ms",
        csv: &["ttft_ms_mean"],
    },
    Column {
        head: "TTFT p50 ms",
        csv: &["ttft_ms_p50"],
    },
    Column {
        head: "cached tok",
        csv: &["cached_tokens_mean"],
    },
    Column {
        head: "cached %",
        csv: &["cached_share"],
    },
];

const fn with_first<const N: usize>(first: Column) -> [Column; N] {
    let mut out = [first; N];
    let mut i = 1;
    while i < N {
        out[i] = STATS[i - 1];
        i += 1;
    }
    out
}

const TURN_COLUMNS: [Column; 9] = with_first(Column {
    head: "turn",
    csv: &["turn"],
});

const RAG_COLUMNS: [Column; 9] = with_first(Column {
    head: "documents",
    csv: &["documents"],
});

fn row(first: Cell, g: &Group) -> Vec<Cell> {
    vec![
        first,
        Cell::Ratio(g.succeeded, g.requests),
        Cell::Num(Some(g.messages), 1),
        Cell::Num(g.context_tokens, 0),
        Cell::Num(Some(g.document_tokens), 0),
        Cell::Num(g.ttft_ms.map(|d| d.mean), 1),
        Cell::Num(g.ttft_ms.map(|d| d.p50), 1),
        Cell::Num(g.cached_tokens, 0),
        Cell::Pct(g.cached_share),
    ]
}

/// One row per turn index, or `None` when the scenario was not a conversations scenario.
pub(crate) fn per_turn(sc: &ScenarioResult) -> Option<Table> {
    (!sc.turns.is_empty()).then(|| Table {
        title: "Per turn".into(),
        columns: &TURN_COLUMNS,
        rows: sc
            .turns
            .iter()
            .map(|t| row(Cell::Text(t.turn.to_string()), &t.stats))
            .collect(),
    })
}

/// Requests with documents in their context against those without, or `None` when no
/// request carried documents.
pub(crate) fn rag(sc: &ScenarioResult) -> Option<Table> {
    let rag = sc.rag.as_ref()?;
    Some(Table {
        title: "With and without documents (RAG)".into(),
        columns: &RAG_COLUMNS,
        rows: vec![
            row(
                Cell::Label("with docs".into(), "with".into()),
                &rag.with_documents,
            ),
            row(
                Cell::Label("without docs".into(), "without".into()),
                &rag.without_documents,
            ),
        ],
    })
}

/// The console's per-turn table (the with/without-documents rows under the turns), or `None`
/// when the scenario was not a conversations scenario.
pub fn text(sc: &ScenarioResult) -> Option<String> {
    let turns = per_turn(sc)?;
    let mut t = Comfy::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(turns.heads());
    for r in turns.shown_rows() {
        t.add_row(r);
    }
    if let Some(rag) = rag(sc) {
        for r in rag.shown_rows() {
            t.add_row(r);
        }
    }
    for c in 1..TURN_COLUMNS.len() {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    Some(format!("Per turn:\n{t}"))
}
