//! `--format`: one exporter per file format, behind one trait. Each renders finished results
//! to bytes; writing them is the caller's (commands) business.

use crate::results::file::ResultFile;

/// A file format `--format` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Markdown,
    Html,
}

impl Format {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [Format; 4] = [Format::Json, Format::Csv, Format::Markdown, Format::Html];

    /// The name `--format` takes, which is also the file's extension.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Markdown => "md",
            Format::Html => "html",
        }
    }

    /// A format by the name `--format` takes.
    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The exporter that renders it.
    pub fn exporter(self) -> &'static dyn Exporter {
        match self {
            Format::Json => &Json,
            Format::Csv => &Csv,
            Format::Markdown => &Markdown,
            Format::Html => &Html,
        }
    }
}

/// Renders finished runs as one file's bytes.
pub trait Exporter {
    fn render(&self, runs: &[ResultFile]) -> anyhow::Result<Vec<u8>>;

    /// Files that go beside the main one, by the suffix their name gets before the extension
    /// (`result.turns.csv`), each only when the runs have its content.
    fn companions(&self, _runs: &[ResultFile]) -> Vec<(&'static str, Vec<u8>)> {
        Vec::new()
    }
}

/// The result file itself (one run: the first).
struct Json;
impl Exporter for Json {
    fn render(&self, runs: &[ResultFile]) -> anyhow::Result<Vec<u8>> {
        let run = runs
            .first()
            .ok_or_else(|| anyhow::anyhow!("no run to export"))?;
        let mut bytes = serde_json::to_vec_pretty(run)?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

/// `results.csv`: one row per scenario, stable append-only columns; conversations add
/// `turns` and `rag` files beside it.
struct Csv;
impl Exporter for Csv {
    fn render(&self, runs: &[ResultFile]) -> anyhow::Result<Vec<u8>> {
        Ok(super::tables::csv(runs).into_bytes())
    }

    fn companions(&self, runs: &[ResultFile]) -> Vec<(&'static str, Vec<u8>)> {
        super::tables::companion_csvs(runs)
            .into_iter()
            .map(|(name, csv)| (name, csv.into_bytes()))
            .collect()
    }
}

/// `summary.md`.
struct Markdown;
impl Exporter for Markdown {
    fn render(&self, runs: &[ResultFile]) -> anyhow::Result<Vec<u8>> {
        Ok(super::tables::markdown(runs).into_bytes())
    }
}

/// The self-contained `report.html`, its charts inline as SVG.
struct Html;
impl Exporter for Html {
    fn render(&self, runs: &[ResultFile]) -> anyhow::Result<Vec<u8>> {
        let entries = super::tables::entries(runs);
        let svgs = super::charts::charts(&entries)
            .iter()
            .map(|c| Ok((c.name.clone(), super::charts::svg(c)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(super::html::html(runs, &svgs, &super::charts::not_charted(&entries)).into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_round_trips_by_name() {
        for f in Format::ALL {
            assert_eq!(Format::parse(f.name()), Some(f));
        }
        assert_eq!(Format::parse("markdown"), None);
    }
}
