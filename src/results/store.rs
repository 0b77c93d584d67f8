//! The embedded results store: one SQLite database, `$LLMBENCH_HOME/llmbench.db`.
//!
//! `$LLMBENCH_HOME` defaults to `$XDG_DATA_HOME/llmbench`, else `~/.local/share/llmbench`.
//! Every run is one row: its id, times, target, model, hardware fingerprint, configuration,
//! a per-scenario summary, and the whole result file (so `export` gives it back unchanged).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use crate::results::file::ResultFile;

/// Directory of the store.
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

/// The database file.
pub fn db_path() -> anyhow::Result<PathBuf> {
    Ok(home()?.join("llmbench.db"))
}

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
    /// Model.
    pub model: String,
    /// Hardware fingerprint.
    pub hardware: String,
    /// Scenario count.
    pub scenarios: i64,
    /// Per-scenario key figures (JSON array).
    pub summary: Value,
}

/// An open store.
pub struct Store {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id          TEXT PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL,
    target_url  TEXT NOT NULL,
    backend     TEXT NOT NULL,
    model       TEXT NOT NULL,
    simulated   INTEGER NOT NULL,
    hardware    TEXT NOT NULL,
    scenarios   INTEGER NOT NULL,
    config      TEXT NOT NULL,
    summary     TEXT NOT NULL,
    result      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_started ON runs(started_at);
CREATE INDEX IF NOT EXISTS runs_model ON runs(model);
";

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
    /// Opens (creating if needed) the store at the default place.
    pub fn open_default() -> anyhow::Result<Self> {
        Self::open(&db_path()?)
    }

    /// Opens (creating if needed) a store file.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| {
                format!(
                    "cannot create the results store directory {}",
                    dir.display()
                )
            })?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the results store {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("cannot set up the results store {}", path.display()))?;
        Ok(Self { conn })
    }

    /// Records (or replaces) a run.
    pub fn record(&self, r: &ResultFile) -> anyhow::Result<()> {
        let status = serde_json::to_value(r.status)?;
        self.conn.execute(
            "INSERT OR REPLACE INTO runs (id, started_at, finished_at, status, target_url, backend,
                model, simulated, hardware, scenarios, config, summary, result)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                r.run_id,
                r.started_at,
                r.finished_at,
                status.as_str().unwrap_or("completed"),
                r.target.url,
                r.target.backend,
                r.target.model,
                r.target.simulated,
                r.system
                    .as_ref()
                    .map_or_else(|| "unknown".into(), crate::telemetry::system::fingerprint),
                r.scenarios.len() as i64,
                serde_json::to_string(&r.config)?,
                serde_json::to_string(&summary(r))?,
                // The very text the result file holds, so `export` gives it back byte for byte.
                r.to_text()?,
            ],
        )?;
        Ok(())
    }

    /// Runs, newest first, filtered by model and target URL (substring matches).
    pub fn list(
        &self,
        model: Option<&str>,
        target: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<RunRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, started_at, status, target_url, model, hardware, scenarios, summary
             FROM runs
             WHERE (?1 IS NULL OR instr(model, ?1) > 0)
               AND (?2 IS NULL OR instr(target_url, ?2) > 0)
             ORDER BY started_at DESC, id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![model, target, limit as i64], |row| {
            let summary: String = row.get(7)?;
            Ok(RunRow {
                id: row.get(0)?,
                started_at: row.get(1)?,
                status: row.get(2)?,
                target: row.get(3)?,
                model: row.get(4)?,
                hardware: row.get(5)?,
                scenarios: row.get(6)?,
                summary: serde_json::from_str(&summary).unwrap_or(Value::Null),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The result file of a run: an exact id, a unique id prefix, or `latest`.
    pub fn get(&self, id: &str) -> anyhow::Result<ResultFile> {
        let json = self.get_text(id)?;
        serde_json::from_str(&json).with_context(|| format!("stored run {id} cannot be read"))
    }

    /// The stored text of a run's result file, exactly as recorded.
    pub fn get_text(&self, id: &str) -> anyhow::Result<String> {
        let json: Option<String> = if id == "latest" || id == "last" {
            self.conn
                .query_row(
                    "SELECT result FROM runs ORDER BY started_at DESC, id DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?
        } else {
            let exact: Option<String> = self
                .conn
                .query_row("SELECT result FROM runs WHERE id = ?1", [id], |r| r.get(0))
                .optional()?;
            match exact {
                Some(j) => Some(j),
                None => {
                    let mut stmt = self.conn.prepare(
                        "SELECT id, result FROM runs WHERE substr(id, 1, length(?1)) = ?1 LIMIT 2",
                    )?;
                    let hits: Vec<(String, String)> = stmt
                        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<Result<_, _>>()?;
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
        let json = json.with_context(|| {
            if id == "latest" || id == "last" {
                "the results store has no runs yet".to_string()
            } else {
                format!("no run with id {id:?} in the results store (see `llmbench history`)")
            }
        })?;
        Ok(json)
    }
}

/// A result given on the command line: a file path, or else a run id (or `latest`) in the store.
pub fn resolve(arg: &str) -> anyhow::Result<ResultFile> {
    let p = Path::new(arg);
    if p.exists() {
        return ResultFile::read(p);
    }
    let db = db_path()?;
    if !db.exists() {
        bail!(
            "{arg}: no such file, and no results store at {} to look up a run id",
            db.display()
        );
    }
    Store::open(&db)?
        .get(arg)
        .with_context(|| format!("{arg}: no such file"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_lists_and_returns_runs() {
        let dir = std::env::temp_dir().join(format!("llmbench-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir.join("x.db")).unwrap();
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
        store.record(&a).unwrap();
        let mut b = a.clone();
        b.run_id = "20260102T000000-bbbbbb".into();
        b.started_at = "2026-01-02T00:00:00.000Z".into();
        b.target.model = "m2".into();
        store.record(&b).unwrap();
        let all = store.list(None, None, 100).unwrap();
        assert_eq!(
            all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            [b.run_id.as_str(), a.run_id.as_str()]
        );
        assert_eq!(all[1].hardware, "Test CPU, 4 cores, 8 GiB");
        assert_eq!(store.list(Some("m1"), None, 100).unwrap().len(), 1);
        assert_eq!(store.list(None, Some("http://b"), 100).unwrap().len(), 0);
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
