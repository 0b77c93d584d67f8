//! The format-free shape of report content: tables of typed cells and the blocks a scenario's
//! section is made of. Content is built once (`sections.rs`, `turns.rs`, `telemetry.rs`) and
//! rendered here per format: Markdown, HTML, plain text (comfy-table) and CSV.

use comfy_table::presets::ASCII_MARKDOWN;
use comfy_table::{CellAlignment, Table as Comfy};

/// One cell of a table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    /// Text, the same everywhere.
    Text(String),
    /// Text shown in reports, with another value in CSV (`with docs` → `true`).
    Label(String, String),
    /// A number shown with this many decimals; absent: `-` (empty in CSV).
    Num(Option<f64>, usize),
    /// A share (0–1) shown as a percentage with one decimal; CSV keeps the share.
    Pct(Option<f64>),
    /// `a/b` (succeeded of sent); two CSV columns.
    Ratio(u64, u64),
}

impl Cell {
    /// As reports show it.
    pub(crate) fn shown(&self) -> String {
        match self {
            Cell::Text(s) | Cell::Label(s, _) => s.clone(),
            Cell::Num(v, digits) => v.map_or("-".into(), |v| format!("{v:.digits$}")),
            Cell::Pct(v) => v.map_or("-".into(), |v| format!("{:.1}", v * 100.0)),
            Cell::Ratio(a, b) => format!("{a}/{b}"),
        }
    }

    /// As CSV holds it: full precision, empty when absent; one value per CSV column.
    pub(crate) fn raw(&self) -> Vec<String> {
        let num = |v: &Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
        match self {
            Cell::Text(s) | Cell::Label(_, s) => vec![s.clone()],
            Cell::Num(v, _) | Cell::Pct(v) => vec![num(v)],
            Cell::Ratio(a, b) => vec![a.to_string(), b.to_string()],
        }
    }
}

/// A column: its header in reports and its name(s) in CSV (one per value `Cell::raw` gives).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Column {
    /// Header in reports.
    pub head: &'static str,
    /// Column names in CSV.
    pub csv: &'static [&'static str],
}

/// A titled table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Table {
    /// Title shown above it.
    pub title: String,
    /// Columns.
    pub columns: &'static [Column],
    /// Rows, one cell per column.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// Headers as shown.
    pub(crate) fn heads(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.head).collect()
    }

    /// Rows as shown.
    pub(crate) fn shown_rows(&self) -> Vec<Vec<String>> {
        self.rows
            .iter()
            .map(|r| r.iter().map(Cell::shown).collect())
            .collect()
    }

    /// CSV column names.
    pub(crate) fn csv_head(&self) -> Vec<&'static str> {
        self.columns
            .iter()
            .flat_map(|c| c.csv.iter().copied())
            .collect()
    }
}

/// A piece of a scenario's section.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Block {
    /// A verdict the reader must not miss (not trustworthy, no successful requests).
    Alert(String),
    /// `label: text`.
    Fact(&'static str, String),
    /// Items under a label (errors, warnings).
    List(&'static str, Vec<String>),
    /// A table.
    Table(Table),
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// A Markdown table: the first column left-aligned, the others right-aligned.
pub(crate) fn md_table(head: &[&str], rows: &[Vec<String>]) -> String {
    let cells = |r: &mut dyn Iterator<Item = String>| r.collect::<Vec<_>>().join(" | ");
    let mut s = format!("| {} |\n", cells(&mut head.iter().map(|h| md_cell(h))));
    s.push('|');
    for i in 0..head.len() {
        s.push_str(if i == 0 { " --- |" } else { " ---: |" });
    }
    s.push('\n');
    for r in rows {
        s.push_str(&format!(
            "| {} |\n",
            cells(&mut r.iter().map(|c| md_cell(c)))
        ));
    }
    s
}

/// A plain-text table (Markdown-like ASCII), numbers right-aligned.
pub(crate) fn text_table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut t = Comfy::new();
    t.load_style(ASCII_MARKDOWN);
    t.set_header(head.to_vec());
    for r in rows {
        t.add_row(r.clone());
    }
    for i in 1..head.len() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t.to_string()
}

/// Text escaped for HTML.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An HTML table.
pub(crate) fn html_table(head: &[&str], rows: &[Vec<String>]) -> String {
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

/// A CSV field, quoted when it must be.
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One CSV line (with its newline).
pub(crate) fn csv_line<S: AsRef<str>>(fields: &[S]) -> String {
    let mut s = fields
        .iter()
        .map(|f| csv_field(f.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    s.push('\n');
    s
}

/// A blank line before `s` continues, unless it is empty or already ends in one.
fn blank_line(s: &mut String) {
    if !s.is_empty() && !s.ends_with("\n\n") {
        s.push('\n');
    }
}

/// Blocks as Markdown: facts and lists as one bulleted list, alerts as quotes, tables under
/// their title; a blank line between a list and anything else.
pub(crate) fn markdown(blocks: &[Block]) -> String {
    let mut s = String::new();
    let mut in_list = false;
    for b in blocks {
        let listed = matches!(b, Block::Fact(..) | Block::List(..));
        if !(listed && in_list) {
            blank_line(&mut s);
        }
        in_list = listed;
        match b {
            Block::Alert(t) => s.push_str(&format!("> **{}**\n", md_cell(t))),
            Block::Fact(label, t) => s.push_str(&format!("- **{label}:** {t}\n")),
            Block::List(label, items) => {
                s.push_str(&format!("- **{label}:**\n"));
                for i in items {
                    s.push_str(&format!("  - {}\n", i.replace('\n', " ")));
                }
            }
            Block::Table(t) => {
                s.push_str(&format!("{}:\n\n", t.title));
                s.push_str(&md_table(&t.heads(), &t.shown_rows()));
            }
        }
    }
    s
}

/// Blocks as HTML.
pub(crate) fn html(blocks: &[Block]) -> String {
    let mut s = String::new();
    let mut facts = Vec::new();
    // Consecutive facts share one definition list.
    let flush = |s: &mut String, facts: &mut Vec<(&str, &str)>| {
        if facts.is_empty() {
            return;
        }
        s.push_str("<dl class=\"facts\">");
        for (k, v) in facts.drain(..) {
            s.push_str(&format!("<dt>{}</dt><dd>{}</dd>", esc(k), esc(v)));
        }
        s.push_str("</dl>");
    };
    for b in blocks {
        if let Block::Fact(label, t) = b {
            facts.push((*label, t.as_str()));
            continue;
        }
        flush(&mut s, &mut facts);
        match b {
            Block::Alert(t) => s.push_str(&format!("<p class=\"alert\">{}</p>", esc(t))),
            Block::List(label, items) => {
                s.push_str(&format!("<p class=\"list\">{}:</p><ul>", esc(label)));
                for i in items {
                    s.push_str(&format!("<li>{}</li>", esc(i)));
                }
                s.push_str("</ul>");
            }
            Block::Table(t) => {
                s.push_str(&format!("<h4>{}</h4>", esc(&t.title)));
                s.push_str(&html_table(&t.heads(), &t.shown_rows()));
            }
            Block::Fact(..) => {}
        }
    }
    flush(&mut s, &mut facts);
    s
}

/// Blocks as plain text, a blank line around each table.
pub(crate) fn text(blocks: &[Block]) -> String {
    let mut s = String::new();
    for b in blocks {
        match b {
            Block::Alert(t) => s.push_str(&format!("!! {t}\n")),
            Block::Fact(label, t) => s.push_str(&format!("{label}: {t}\n")),
            Block::List(label, items) => {
                s.push_str(&format!("{label}:\n"));
                for i in items {
                    s.push_str(&format!("  {i}\n"));
                }
            }
            Block::Table(t) => {
                blank_line(&mut s);
                s.push_str(&format!("{}:\n", t.title));
                s.push_str(&text_table(&t.heads(), &t.shown_rows()));
                s.push_str("\n\n");
            }
        }
    }
    s
}

/// A number as reports show it (`-` when absent).
pub(crate) fn f(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: &[Column] = &[
        Column {
            head: "group",
            csv: &["group"],
        },
        Column {
            head: "ok/sent",
            csv: &["succeeded", "requests"],
        },
        Column {
            head: "share %",
            csv: &["share"],
        },
    ];

    fn table() -> Table {
        Table {
            title: "T".into(),
            columns: COLS,
            rows: vec![vec![
                Cell::Label("a|b".into(), "ab".into()),
                Cell::Ratio(3, 4),
                Cell::Pct(Some(0.125)),
            ]],
        }
    }

    #[test]
    fn cells_show_rounded_and_keep_full_precision_for_csv() {
        let t = table();
        assert_eq!(t.shown_rows(), [["a|b", "3/4", "12.5"]]);
        assert_eq!(t.csv_head(), ["group", "succeeded", "requests", "share"]);
        let raw: Vec<String> = t.rows[0].iter().flat_map(Cell::raw).collect();
        assert_eq!(raw, ["ab", "3", "4", "0.125"]);
        assert_eq!(Cell::Num(None, 1).shown(), "-");
        assert_eq!(Cell::Num(None, 1).raw(), [""]);
    }

    #[test]
    fn every_format_renders_every_block() {
        let blocks = vec![
            Block::Alert("NOT TRUSTWORTHY: <x>".into()),
            Block::Fact("Client", "1 CPU s".into()),
            Block::List("Warnings", vec!["w1".into()]),
            Block::Table(table()),
        ];
        let md = markdown(&blocks);
        assert!(md.contains("> **NOT TRUSTWORTHY: <x>**"), "{md}");
        assert!(
            md.contains("- **Client:** 1 CPU s") && md.contains("  - w1"),
            "{md}"
        );
        assert!(md.contains("| a\\|b | 3/4 | 12.5 |"), "{md}");
        let h = html(&blocks);
        assert!(
            h.contains("<p class=\"alert\">NOT TRUSTWORTHY: &lt;x&gt;</p>"),
            "{h}"
        );
        assert!(h.contains("<dt>Client</dt><dd>1 CPU s</dd>") && h.contains("<li>w1</li>"));
        assert!(
            h.contains("<h4>T</h4>") && h.contains("<td>3/4</td>"),
            "{h}"
        );
        let t = text(&blocks);
        assert!(
            t.contains("!! NOT TRUSTWORTHY") && t.contains("Client: 1 CPU s"),
            "{t}"
        );
        assert!(t.contains("| a|b") && t.contains("12.5"), "{t}");
        assert_eq!(csv_line(&["a,b", "c"]), "\"a,b\",c\n");
    }
}
