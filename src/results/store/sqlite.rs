//! The embedded back end: one SQLite file (`rusqlite`, bundled SQLite).

use std::path::Path;

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::schema::{MIGRATIONS, check_not_newer};
use super::{Filter, RawRun, RunRow};

pub(super) struct Sqlite {
    conn: Connection,
}

impl Sqlite {
    pub(super) fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| {
                format!(
                    "cannot create the results store directory {}",
                    dir.display()
                )
            })?;
        }
        let mut conn = Connection::open(path)
            .with_context(|| format!("cannot open the results store {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        migrate(&mut conn, &path.display().to_string())
            .with_context(|| format!("cannot set up the results store {}", path.display()))?;
        Ok(Self { conn })
    }

    pub(super) fn version(&self) -> anyhow::Result<i64> {
        Ok(self.conn.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )?)
    }

    pub(super) fn insert(&self, r: &RawRun) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO runs (id, started_at, finished_at, status, target_url, backend,
                model, simulated, hardware, scenarios, config, summary, result, tags)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                r.id,
                r.started_at,
                r.finished_at,
                r.status,
                r.target_url,
                r.backend,
                r.model,
                r.simulated,
                r.hardware,
                r.scenarios,
                r.config,
                r.summary,
                r.result,
                r.tags,
            ],
        )?;
        Ok(())
    }

    pub(super) fn list(&self, f: &Filter) -> anyhow::Result<Vec<RunRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, started_at, status, target_url, backend, simulated, model, hardware,
                    scenarios, summary, tags
             FROM runs
             WHERE (?1 IS NULL OR instr(model, ?1) > 0)
               AND (?2 IS NULL OR instr(target_url, ?2) > 0)
               AND (?3 IS NULL OR backend = ?3)
             ORDER BY started_at DESC, id DESC LIMIT ?4",
        )?;
        let rows = stmt.query_map(
            params![f.model, f.target, f.backend, f.sql_limit()],
            |row| {
                Ok(RunRow::from_columns(
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                    row.get(7)?,
                    row.get(8)?,
                    &row.get::<_, String>(9)?,
                    &row.get::<_, String>(10)?,
                ))
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(super) fn latest_text(&self) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT result FROM runs ORDER BY started_at DESC, id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub(super) fn exact_text(&self, id: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT result FROM runs WHERE id = ?1", [id], |r| r.get(0))
            .optional()?)
    }

    pub(super) fn prefix_texts(&self, id: &str) -> anyhow::Result<Vec<(String, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, result FROM runs WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id LIMIT 2",
        )?;
        let hits = stmt
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(hits)
    }

    pub(super) fn all(&self) -> anyhow::Result<Vec<RawRun>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, started_at, finished_at, status, target_url, backend, model, simulated,
                    hardware, scenarios, config, summary, result, tags
             FROM runs ORDER BY started_at, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(RawRun {
                id: r.get(0)?,
                started_at: r.get(1)?,
                finished_at: r.get(2)?,
                status: r.get(3)?,
                target_url: r.get(4)?,
                backend: r.get(5)?,
                model: r.get(6)?,
                simulated: r.get(7)?,
                hardware: r.get(8)?,
                scenarios: r.get(9)?,
                config: r.get(10)?,
                summary: r.get(11)?,
                result: r.get(12)?,
                tags: r.get(13)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Applies the missing migrations in one write transaction (`BEGIN IMMEDIATE`: a second process
/// opening the same file waits for the first one's, then finds nothing left to do).
fn migrate(conn: &mut Connection, name: &str) -> anyhow::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let found: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )?;
    check_not_newer(found, name)?;
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        tx.execute_batch(m.sqlite)
            .with_context(|| format!("schema migration {}", m.version))?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [m.version],
        )?;
    }
    tx.commit()?;
    Ok(())
}
