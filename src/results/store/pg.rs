//! The shared back end: a PostgreSQL server (the sync `postgres` crate; TLS as libpq does it,
//! `pg_tls`).
//!
//! The sync client runs a Tokio runtime of its own, which may be neither started nor dropped on a
//! thread inside another runtime (llmbench's commands are async): every call, the connection and
//! its end run on a short-lived thread of their own (`off_runtime`).

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, anyhow};
use postgres::Client;

use super::location::{redact_url, scrub};
use super::schema::{MIGRATIONS, check_not_newer};
use super::{Filter, RawRun, RunRow};

/// Any constant: the advisory lock that serialises migrations across processes.
const MIGRATION_LOCK: i64 = 0x6c6c_6d62_656e_6368;

pub(super) struct Pg {
    client: Mutex<Option<Client>>,
    url: String,
}

fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join()).unwrap_or_else(|p| std::panic::resume_unwind(p))
}

impl Pg {
    /// Connects (5 s timeout unless the URL sets one) and applies the missing migrations.
    pub(super) fn open(url: &str) -> anyhow::Result<Self> {
        let shown = redact_url(url);
        let super::pg_tls::PgTarget {
            config: mut cfg,
            check,
        } = super::pg_tls::parse(url).map_err(|e| anyhow!("{shown}: {e:#}"))?;
        let tls = super::pg_tls::connector(&check)?;
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(Duration::from_secs(5));
        }
        cfg.application_name("llmbench");
        let client = off_runtime(|| -> anyhow::Result<Client> {
            let mut client = cfg.connect(tls).map_err(|e| {
                let why = chain(&e);
                let hint = if why.contains("invalid peer certificate") {
                    " (the server's certificate failed the check its sslmode asks for: \
                         give the root that signed it with sslrootcert=FILE or PGSSLROOTCERT, \
                         or sslmode=require to encrypt without checking)"
                } else {
                    ""
                };
                anyhow!("cannot reach the results store {shown}: {why}{hint}")
            })?;
            migrate(&mut client, &shown)
                .map_err(|e| anyhow!("cannot set up the results store {shown}: {e:#}"))?;
            Ok(client)
        })
        .map_err(|e| anyhow!(scrub(&format!("{e:#}"), url)))?;
        Ok(Self {
            client: Mutex::new(Some(client)),
            url: url.to_string(),
        })
    }

    fn with<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send,
    ) -> anyhow::Result<T> {
        let mut guard = self.client.lock().unwrap_or_else(|p| p.into_inner());
        let client = guard
            .as_mut()
            .context("the results store connection is closed")?;
        off_runtime(|| f(client)).map_err(|e| {
            anyhow!(scrub(
                &format!("results store {}: {}", redact_url(&self.url), chain(&e)),
                &self.url
            ))
        })
    }

    pub(super) fn version(&self) -> anyhow::Result<i64> {
        self.with(|c| {
            c.query_one(
                "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_version",
                &[],
            )
            .map(|r| r.get(0))
        })
    }

    pub(super) fn insert(&self, r: &RawRun) -> anyhow::Result<()> {
        let simulated = i32::from(r.simulated);
        self.with(|c| {
            c.execute(
                "INSERT INTO runs (id, started_at, finished_at, status, target_url, backend,
                    model, simulated, hardware, scenarios, config, summary, result, tags)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                 ON CONFLICT (id) DO UPDATE SET started_at = EXCLUDED.started_at,
                    finished_at = EXCLUDED.finished_at, status = EXCLUDED.status,
                    target_url = EXCLUDED.target_url, backend = EXCLUDED.backend,
                    model = EXCLUDED.model, simulated = EXCLUDED.simulated,
                    hardware = EXCLUDED.hardware, scenarios = EXCLUDED.scenarios,
                    config = EXCLUDED.config, summary = EXCLUDED.summary,
                    result = EXCLUDED.result, tags = EXCLUDED.tags",
                &[
                    &r.id,
                    &r.started_at,
                    &r.finished_at,
                    &r.status,
                    &r.target_url,
                    &r.backend,
                    &r.model,
                    &simulated,
                    &r.hardware,
                    &r.scenarios,
                    &r.config,
                    &r.summary,
                    &r.result,
                    &r.tags,
                ],
            )
            .map(drop)
        })
    }

    pub(super) fn list(&self, f: &Filter) -> anyhow::Result<Vec<RunRow>> {
        let limit = f.sql_limit();
        self.with(|c| {
            let rows = c.query(
                "SELECT id, started_at, status, target_url, backend, simulated, model, hardware,
                        scenarios, summary, tags
                 FROM runs
                 WHERE ($1::TEXT IS NULL OR strpos(model, $1) > 0)
                   AND ($2::TEXT IS NULL OR strpos(target_url, $2) > 0)
                   AND ($3::TEXT IS NULL OR backend = $3)
                 ORDER BY started_at DESC, id DESC LIMIT $4",
                &[&f.model, &f.target, &f.backend, &limit],
            )?;
            Ok(rows
                .iter()
                .map(|r| {
                    RunRow::from_columns(
                        r.get(0),
                        r.get(1),
                        r.get(2),
                        r.get(3),
                        r.get(4),
                        r.get::<_, i32>(5) != 0,
                        r.get(6),
                        r.get(7),
                        r.get(8),
                        r.get(9),
                        r.get(10),
                    )
                })
                .collect())
        })
    }

    pub(super) fn latest_text(&self) -> anyhow::Result<Option<String>> {
        self.with(|c| {
            c.query_opt(
                "SELECT result FROM runs ORDER BY started_at DESC, id DESC LIMIT 1",
                &[],
            )
            .map(|r| r.map(|r| r.get(0)))
        })
    }

    pub(super) fn exact_text(&self, id: &str) -> anyhow::Result<Option<String>> {
        self.with(|c| {
            c.query_opt("SELECT result FROM runs WHERE id = $1", &[&id])
                .map(|r| r.map(|r| r.get(0)))
        })
    }

    pub(super) fn prefix_texts(&self, id: &str) -> anyhow::Result<Vec<(String, String)>> {
        self.with(|c| {
            c.query(
                "SELECT id, result FROM runs WHERE starts_with(id, $1) ORDER BY id LIMIT 2",
                &[&id],
            )
            .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    pub(super) fn all(&self) -> anyhow::Result<Vec<RawRun>> {
        self.with(|c| {
            let rows = c.query(
                "SELECT id, started_at, finished_at, status, target_url, backend, model,
                        simulated, hardware, scenarios, config, summary, result, tags
                 FROM runs ORDER BY started_at, id",
                &[],
            )?;
            Ok(rows
                .iter()
                .map(|r| RawRun {
                    id: r.get(0),
                    started_at: r.get(1),
                    finished_at: r.get(2),
                    status: r.get(3),
                    target_url: r.get(4),
                    backend: r.get(5),
                    model: r.get(6),
                    simulated: r.get::<_, i32>(7) != 0,
                    hardware: r.get(8),
                    scenarios: r.get(9),
                    config: r.get(10),
                    summary: r.get(11),
                    result: r.get(12),
                    tags: r.get(13),
                })
                .collect())
        })
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let client = self
            .client
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        off_runtime(move || drop(client));
    }
}

/// An error with its causes ("db error: ERROR: …: …").
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        let t = c.to_string();
        if !s.contains(&t) {
            s = format!("{s}: {t}");
        }
        source = c.source();
    }
    s
}

/// Applies the missing migrations in one transaction holding an advisory lock, so processes that
/// open a new store at once apply each step exactly once.
fn migrate(client: &mut Client, shown: &str) -> anyhow::Result<()> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
    let found: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_version",
            &[],
        )?
        .get(0);
    check_not_newer(found, shown)?;
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        tx.batch_execute(m.postgres)
            .with_context(|| format!("schema migration {}", m.version))?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&m.version],
        )?;
    }
    tx.commit()?;
    Ok(())
}
