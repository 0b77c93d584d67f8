//! The results store: the embedded SQLite file `$LLMBENCH_HOME/llmbench.db` (the default), or a
//! shared PostgreSQL database (`--store postgres://…`, `LLMBENCH_STORE`), with the same tables.
//!
//! `$LLMBENCH_HOME` defaults to `$XDG_DATA_HOME/llmbench`, else `~/.local/share/llmbench`.
//! Every run is one row: its id, times, target, model, hardware fingerprint, configuration,
//! a per-scenario summary, its tags, and the whole result file (so `export` gives it back
//! unchanged). The schema is versioned (`schema.rs`); each back end applies the missing
//! migrations when it is opened.

mod location;
mod pg;
mod pg_tls;
mod schema;
mod sqlite;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::results::file::ResultFile;

pub use location::{StoreLoc, redact_url};

/// Directory of the default store.
pub fn home() -> anyhow::Result<PathBuf> {
    if let Some(h) = std::env::var_os("LLMBENCH_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(x).join("llmbench"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("cannot find the results store: set LLMBENCH_HOME (or HOME)")?;
    Ok(PathBuf::from(home).join(".local/share/llmbench"))
}

/// The default database file.
pub fn db_path() -> anyhow::Result<PathBuf> {
    Ok(home()?.join("llmbench.db"))
}

/// Run tags (`--tag NAME=VALUE`), sorted by name.
pub type Tags = BTreeMap<String, String>;

/// One stored run, as `history` lists it (and `history --json` writes it).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunRow {
    /// Run id.
    pub id: String,
    /// Wall-clock start, RFC 3339.
    pub started_at: String,
    /// `completed` or `cancelled`.
    pub status: String,
    /// Target URL.
    pub target: String,
    /// Backend (protocol) name.
    pub backend: String,
    /// Whether the target was the built-in simulator (whose URL differs by its port only).
    pub simulated: bool,
    /// Model.
    pub model: String,
    /// Hardware fingerprint.
    pub hardware: String,
    /// Scenario count.
    pub scenarios: i64,
    /// Per-scenario key figures (JSON array).
    pub summary: Value,
    /// `--tag NAME=VALUE`s.
    pub tags: Tags,
}

impl RunRow {
    #[allow(clippy::too_many_arguments)]
    fn from_columns(
        id: String,
        started_at: String,
        status: String,
        target: String,
        backend: String,
        simulated: bool,
        model: String,
        hardware: String,
        scenarios: i64,
        summary: &str,
        tags: &str,
    ) -> Self {
        Self {
            id,
            started_at,
            status,
            target,
            backend,
            simulated,
            model,
            hardware,
            scenarios,
            summary: serde_json::from_str(summary).unwrap_or(Value::Null),
            tags: serde_json::from_str(tags).unwrap_or_default(),
        }
    }
}

/// A row as stored, every column: what `store copy` moves unchanged.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawRun {
    id: String,
    started_at: String,
    finished_at: Option<String>,
    status: String,
    target_url: String,
    backend: String,
    model: String,
    simulated: bool,
    hardware: String,
    scenarios: i64,
    config: String,
    summary: String,
    result: String,
    tags: String,
}

/// Which runs `list` returns: substring matches on model and target, the exact backend, one tag.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Model contains this.
    pub model: Option<String>,
    /// Target URL contains this.
    pub target: Option<String>,
    /// Backend is this.
    pub backend: Option<String>,
    /// Has this tag with this value.
    pub tag: Option<(String, String)>,
    /// Most rows.
    pub limit: usize,
}

impl Filter {
    /// The limit the query takes: all rows when a tag is filtered afterwards.
    fn sql_limit(&self) -> i64 {
        if self.tag.is_some() {
            i64::MAX
        } else {
            i64::try_from(self.limit).unwrap_or(i64::MAX)
        }
    }
}

/// An open store.
pub struct Store {
    backend: Backend,
    loc: StoreLoc,
}

enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(Box<pg::Pg>),
}

/// Calls the same method on whichever back end is open.
macro_rules! each {
    ($self:ident . $m:ident ( $($a:expr),* )) => {
        match &$self.backend {
            Backend::Sqlite(b) => b.$m($($a),*),
            Backend::Postgres(b) => b.$m($($a),*),
        }
    };
}

/// Key figures per scenario, stored next to the full result for quick listing.
pub fn summary(r: &ResultFile) -> Value {
    Value::Array(
        r.scenarios
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "scheduled": s.outcomes.scheduled,
                    "succeeded": s.outcomes.get(crate::measure::record::Outcome::Succeeded),
                    "ttft_p50_ms": s.metrics.ttft_ms.map(|d| d.p50),
                    "tpot_p50_ms": s.metrics.tpot_ms.map(|d| d.p50),
                    "e2e_p50_ms": s.metrics.e2e_ms.map(|d| d.p50),
                    "output_tokens_per_s": s.metrics.output_tokens_per_s,
                    "requests_per_s": s.metrics.requests_per_s,
                    "slo_passed": s.slo.as_ref().map(|v| v.passed),
                })
            })
            .collect(),
    )
}

impl Store {
    /// Opens (creating if needed, and migrating) the store at `loc`.
    pub fn open(loc: &StoreLoc) -> anyhow::Result<Self> {
        let backend = match loc {
            StoreLoc::Sqlite(p) => Backend::Sqlite(sqlite::Sqlite::open(p)?),
            StoreLoc::Postgres(url) => Backend::Postgres(Box::new(pg::Pg::open(url)?)),
        };
        Ok(Self {
            backend,
            loc: loc.clone(),
        })
    }

    /// Opens a SQLite store file.
    pub fn open_file(path: &Path) -> anyhow::Result<Self> {
        Self::open(&StoreLoc::Sqlite(path.to_path_buf()))
    }

    /// Where it is (`Display` redacts a password).
    pub fn loc(&self) -> &StoreLoc {
        &self.loc
    }

    /// The schema version the store is at.
    pub fn schema_version(&self) -> anyhow::Result<i64> {
        each!(self.version())
    }

    /// Records (or replaces) a run, with its tags.
    pub fn record(&self, r: &ResultFile, tags: &Tags) -> anyhow::Result<()> {
        let status = serde_json::to_value(r.status)?;
        let raw = RawRun {
            id: r.run_id.clone(),
            started_at: r.started_at.clone(),
            finished_at: r.finished_at.clone(),
            status: status.as_str().unwrap_or("completed").to_string(),
            target_url: r.target.url.clone(),
            backend: r.target.backend.clone(),
            model: r.target.model.clone(),
            simulated: r.target.simulated,
            hardware: r
                .system
                .as_ref()
                .map_or_else(|| "unknown".into(), crate::telemetry::system::fingerprint),
            scenarios: r.scenarios.len() as i64,
            config: serde_json::to_string(&r.config)?,
            summary: serde_json::to_string(&summary(r))?,
            // The very text the result file holds, so `export` gives it back byte for byte.
            result: r.to_text()?,
            tags: serde_json::to_string(tags)?,
        };
        each!(self.insert(&raw))
    }

    /// Runs, newest first, as `filter` selects them.
    pub fn list(&self, filter: &Filter) -> anyhow::Result<Vec<RunRow>> {
        let mut rows = each!(self.list(filter))?;
        if let Some((k, v)) = &filter.tag {
            rows.retain(|r| r.tags.get(k) == Some(v));
            rows.truncate(filter.limit);
        }
        Ok(rows)
    }

    /// Every row, oldest first, every column (for `store copy`).
    pub(crate) fn all(&self) -> anyhow::Result<Vec<RawRun>> {
        each!(self.all())
    }

    /// Stores a row as it was read from another store.
    pub(crate) fn insert_raw(&self, r: &RawRun) -> anyhow::Result<()> {
        each!(self.insert(r))
    }

    /// The result file of a run: an exact id, a unique id prefix, or `latest`.
    pub fn get(&self, id: &str) -> anyhow::Result<ResultFile> {
        let json = self.get_text(id)?;
        serde_json::from_str(&json).with_context(|| format!("stored run {id} cannot be read"))
    }

    /// The stored text of a run's result file, exactly as recorded.
    pub fn get_text(&self, id: &str) -> anyhow::Result<String> {
        let json = if id == "latest" || id == "last" {
            each!(self.latest_text())?
        } else {
            match each!(self.exact_text(id))? {
                Some(j) => Some(j),
                None => {
                    let hits = each!(self.prefix_texts(id))?;
                    if hits.len() > 1 {
                        bail!(
                            "run id {id:?} is ambiguous ({} and {} both start with it)",
                            hits[0].0,
                            hits[1].0
                        );
                    }
                    hits.into_iter().next().map(|h| h.1)
                }
            }
        };
        json.with_context(|| {
            if id == "latest" || id == "last" {
                format!("the results store {} has no runs yet", self.loc)
            } else {
                format!(
                    "no run with id {id:?} in the results store {} (see `llmbench history`)",
                    self.loc
                )
            }
        })
    }
}

/// Copies every run of `from` into `to` (a run already there is replaced by the copy); returns
/// how many were copied.
pub fn copy(from: &Store, to: &Store) -> anyhow::Result<usize> {
    let rows = from.all()?;
    for r in &rows {
        to.insert_raw(r)
            .with_context(|| format!("run {} not copied to {}", r.id, to.loc))?;
    }
    Ok(rows.len())
}

/// A result given on the command line: a file path, or else a run id (or `latest`) in the store.
pub fn resolve(arg: &str, loc: &StoreLoc) -> anyhow::Result<ResultFile> {
    let p = Path::new(arg);
    if p.exists() {
        return ResultFile::read(p);
    }
    if !loc.exists() {
        bail!("{arg}: no such file, and no results store at {loc} to look up a run id");
    }
    Store::open(loc)?
        .get(arg)
        .with_context(|| format!("{arg}: no such file"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(model: Option<&str>, target: Option<&str>) -> Filter {
        Filter {
            model: model.map(String::from),
            target: target.map(String::from),
            limit: 100,
            ..Filter::default()
        }
    }

    #[test]
    fn records_lists_and_returns_runs() {
        let dir = std::env::temp_dir().join(format!("llmbench-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open_file(&dir.join("x.db")).unwrap();
        let mut a = ResultFile {
            run_id: "20260101T000000-aaaaaa".into(),
            started_at: "2026-01-01T00:00:00.000Z".into(),
            system: serde_json::from_value(
                json!({"cpu": {"model": "Test CPU", "logical_cores": 4},
                           "memory": {"total_bytes": 8u64 << 30}}),
            )
            .ok(),
            ..Default::default()
        };
        a.target.model = "m1".into();
        a.target.url = "http://a:1".into();
        store.record(&a, &Tags::new()).unwrap();
        let mut b = a.clone();
        b.run_id = "20260102T000000-bbbbbb".into();
        b.started_at = "2026-01-02T00:00:00.000Z".into();
        b.target.model = "m2".into();
        store.record(&b, &Tags::new()).unwrap();
        let all = store.list(&filter(None, None)).unwrap();
        assert_eq!(
            all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            [b.run_id.as_str(), a.run_id.as_str()]
        );
        assert_eq!(all[1].hardware, "Test CPU, 4 cores, 8 GiB");
        assert_eq!(store.list(&filter(Some("m1"), None)).unwrap().len(), 1);
        assert_eq!(
            store.list(&filter(None, Some("http://b"))).unwrap().len(),
            0
        );
        assert_eq!(store.get(&a.run_id).unwrap(), a);
        assert_eq!(store.get("20260102").unwrap(), b);
        assert_eq!(store.get("latest").unwrap(), b);
        assert!(
            store
                .get("2026")
                .unwrap_err()
                .to_string()
                .contains("ambiguous")
        );
        assert!(store.get("nope").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
