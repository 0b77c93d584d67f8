//! The store's versioned schema: one list of migrations, each in both back ends' SQL, applied in
//! order on first use and recorded in `schema_version` (one row per applied version).
//!
//! A store made before versioning (a `runs` table and no `schema_version`) is at version 0:
//! migration 1 creates what is missing (`IF NOT EXISTS`), so its runs stay.

/// One step of the schema.
pub(super) struct Migration {
    /// The version the store is at after it.
    pub version: i64,
    /// SQLite statements.
    pub sqlite: &'static str,
    /// PostgreSQL statements.
    pub postgres: &'static str,
}

/// Every migration, in order. Append only: a released step is never changed.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: "
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
",
        postgres: "
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
    scenarios   BIGINT NOT NULL,
    config      TEXT NOT NULL,
    summary     TEXT NOT NULL,
    result      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_started ON runs(started_at);
CREATE INDEX IF NOT EXISTS runs_model ON runs(model);
",
    },
    Migration {
        version: 2,
        // `--tag NAME=VALUE`: a JSON object of the run's tags; the trend view's lookup.
        sqlite: "
ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS runs_target_model ON runs(target_url, model);
",
        postgres: "
ALTER TABLE runs ADD COLUMN IF NOT EXISTS tags TEXT NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS runs_target_model ON runs(target_url, model);
",
    },
];

/// The version this llmbench writes.
pub(super) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Refuses a store made by a newer llmbench (its tables may mean something else).
pub(super) fn check_not_newer(found: i64, store: &str) -> anyhow::Result<()> {
    if found > latest() {
        anyhow::bail!(
            "the results store {store} is at schema version {found}, newer than this llmbench \
             knows ({}): upgrade llmbench",
            latest()
        );
    }
    Ok(())
}
