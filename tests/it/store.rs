//! The results store on both back ends (issue 19): SQLite files and a real PostgreSQL server
//! started for the test (`pg.rs`). Runs are real runs of the built-in simulator.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use super::common::{ScriptServer, TempDir, with_home};
use super::pg::PgServer;

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(c: &mut Command) -> Output {
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    o
}

/// `llmbench ARGS` with the store on, its default home in `home`.
fn llmbench(home: &Path, args: &[&str]) -> Command {
    let mut c = with_home(home);
    c.args(args);
    c
}

/// One simulator run of 20 requests stored in `store` with `tags`; returns its result file text.
fn stored_run(home: &TempDir, store: &str, out: &str, tags: &[&str]) -> String {
    let out = home.path(out);
    let mut c = llmbench(
        &home.0,
        &["run", "-n", "20", "-c", "4", "-q", "--store", store],
    );
    for t in tags {
        c.args(["--tag", t]);
    }
    let o = ok(c.arg("-o").arg(&out));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Recorded as run"), "{err}");
    assert!(!err.contains("hunter2secret"), "password printed: {err}");
    std::fs::read_to_string(&out).unwrap()
}

fn history(home: &TempDir, store: &str) -> Vec<serde_json::Value> {
    let o = ok(&mut llmbench(
        &home.0,
        &["history", "--json", "--store", store],
    ));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Every command on one store: run with tags, history, export byte for byte, compare and report
/// by run id.
fn commands_work_on(store: &str) {
    let home = TempDir::new("store-cmds");
    let a = stored_run(&home, store, "a.json", &["release=1.0"]);
    let b = stored_run(&home, store, "b.json", &["release=1.1", "gpu=none"]);
    let rows = history(&home, store);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let id_a = serde_json::from_str::<serde_json::Value>(&a).unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let id_b = rows[0]["id"].as_str().unwrap().to_string();
    assert_eq!(rows[1]["id"], id_a.as_str(), "newest first");
    assert_eq!(rows[0]["tags"]["release"], "1.1");
    assert_eq!(rows[0]["tags"]["gpu"], "none");
    assert_eq!(rows[1]["tags"]["release"], "1.0");
    assert_eq!(rows[0]["backend"], "openai-chat");
    // history's filters: by tag (only run b has gpu=none; both have a release), by backend.
    let filtered = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["history", "--json", "--store", store];
        args.extend_from_slice(extra);
        let o = ok(&mut llmbench(&home.0, &args));
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
        rows.iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(filtered(&["--tag", "gpu=none"]), vec![id_b.clone()]);
    assert_eq!(filtered(&["--tag", "release=1.0"]), vec![id_a.clone()]);
    assert!(filtered(&["--tag", "release=2.0"]).is_empty());
    assert_eq!(filtered(&["--backend", "openai-chat"]).len(), 2);
    assert!(filtered(&["--backend", "ollama"]).is_empty());
    let o = llmbench(&home.0, &["history", "--store", store, "--tag", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("NAME=VALUE"), "{}", text(&o));
    // Every stored result carries its timeline, bins summing to the requests sent.
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    let bins = v["scenarios"][0]["timeline"]["bins"].as_array().unwrap();
    let sent: u64 = bins.iter().map(|b| b["sent"].as_u64().unwrap()).sum();
    assert_eq!(sent, 20);
    let o = ok(&mut llmbench(&home.0, &["export", &id_a, "--store", store]));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim_end(), a.trim_end());
    let o = ok(&mut llmbench(
        &home.0,
        &["export", "latest", "--store", store],
    ));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim_end(), b.trim_end());
    // compare by id: exit 0 (or 4 on a regression between two simulator runs: still a compare).
    let o = llmbench(&home.0, &["compare", &id_a, &id_b, "--store", store])
        .output()
        .unwrap();
    assert!(matches!(o.status.code(), Some(0 | 4)), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("TTFT"),
        "{}",
        text(&o)
    );
    let dir = home.path("report");
    ok(llmbench(&home.0, &["report", &id_b, "--store", store, "--out"]).arg(&dir));
    assert!(dir.join("report.html").is_file());
    // The default store was never touched.
    assert!(!home.path("llmbench.db").exists());
}

#[test]
fn every_store_command_works_on_sqlite() {
    let home = TempDir::new("store-sqlite");
    commands_work_on(home.path("team.db").to_str().unwrap());
}

#[test]
fn every_store_command_works_on_postgres() {
    let Some(pg) = PgServer::start() else { return };
    commands_work_on(&pg.create_db("cmds"));
    let v: i64 = pg
        .client("cmds")
        .query_one("SELECT MAX(version)::BIGINT FROM schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(v, 2);
}

/// The version-1 table as llmbench made it before the schema was versioned, with one run.
const OLD_TABLE: &str = "CREATE TABLE runs (id TEXT PRIMARY KEY, started_at TEXT NOT NULL,
    finished_at TEXT, status TEXT NOT NULL, target_url TEXT NOT NULL, backend TEXT NOT NULL,
    model TEXT NOT NULL, simulated INTEGER NOT NULL, hardware TEXT NOT NULL, scenarios BIGINT NOT NULL,
    config TEXT NOT NULL, summary TEXT NOT NULL, result TEXT NOT NULL);
    INSERT INTO runs VALUES ('20250101T000000-old', '2025-01-01T00:00:00Z', NULL, 'completed',
    'http://old:1', 'openai', 'old-model', 0, 'unknown', 1, '{}', '[]', '{}');";

fn migrated_keeps_the_old_run(home: &TempDir, store: &str) {
    let rows = history(home, store);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["id"], "20250101T000000-old");
    assert_eq!(rows[0]["tags"], serde_json::json!({}));
    // And a new run lands beside it, tagged.
    stored_run(home, store, "new.json", &["k=v"]);
    assert_eq!(history(home, store).len(), 2);
}

#[test]
fn an_unversioned_store_is_migrated_on_first_use_on_both_back_ends() {
    let home = TempDir::new("store-migrate");
    let file = home.path("old.db");
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute_batch(OLD_TABLE)
        .unwrap();
    migrated_keeps_the_old_run(&home, file.to_str().unwrap());
    let v: i64 = rusqlite::Connection::open(&file)
        .unwrap()
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 2);

    let Some(pg) = PgServer::start() else { return };
    let url = pg.create_db("old");
    pg.client("old").batch_execute(OLD_TABLE).unwrap();
    migrated_keeps_the_old_run(&home, &url);
    let versions: Vec<i64> = pg
        .client("old")
        .query("SELECT version FROM schema_version ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2], "each migration applied once");
}

/// Two processes store at once into one store that neither has set up yet: both migrate, both
/// runs are kept, each migration is recorded once. Then two `store copy`s into it at once.
fn concurrent_writers_lose_nothing(store: &str) {
    let home = TempDir::new("store-concurrent");
    let spawn = |out: &str| {
        llmbench(
            &home.0,
            &["run", "-n", "20", "-c", "4", "-q", "--store", store, "-o"],
        )
        .arg(home.path(out))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
    };
    let (mut a, mut b) = (spawn("a.json"), spawn("b.json"));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    assert_eq!(history(&home, store).len(), 2);
    // Two sources of three runs each, copied in at the same time.
    let sources: Vec<String> = ["s1.db", "s2.db"]
        .iter()
        .map(|f| {
            let s = home.path(f).to_str().unwrap().to_string();
            for i in 0..3 {
                stored_run(&home, &s, &format!("{f}.{i}.json"), &[]);
            }
            s
        })
        .collect();
    let copies: Vec<_> = sources
        .iter()
        .map(|s| {
            llmbench(&home.0, &["store", "copy", s, store])
                .output()
                .unwrap()
        })
        .collect();
    for o in &copies {
        assert_eq!(o.status.code(), Some(0), "{}", text(o));
        assert!(String::from_utf8_lossy(&o.stderr).contains("Copied 3 run(s)"));
        assert!(!String::from_utf8_lossy(&o.stderr).contains("hunter2secret"));
    }
    assert_eq!(history(&home, store).len(), 8);
}

#[test]
fn concurrent_writers_lose_nothing_on_sqlite() {
    let home = TempDir::new("store-conc-sqlite");
    concurrent_writers_lose_nothing(home.path("shared.db").to_str().unwrap());
}

#[test]
fn concurrent_writers_lose_nothing_on_postgres() {
    let Some(pg) = PgServer::start() else { return };
    let url = pg.create_db("conc");
    concurrent_writers_lose_nothing(&url);
    let n: i64 = pg
        .client("conc")
        .query_one("SELECT COUNT(*) FROM schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 2, "each migration recorded once");
}

#[test]
fn store_copy_moves_history_unchanged_between_back_ends() {
    let Some(pg) = PgServer::start() else { return };
    let home = TempDir::new("store-copy");
    let src = home.path("src.db").to_str().unwrap().to_string();
    let back = home.path("back.db").to_str().unwrap().to_string();
    let a = stored_run(&home, &src, "a.json", &["team=x"]);
    let url = pg.create_db("copy");
    ok(&mut llmbench(&home.0, &["store", "copy", &src, &url]));
    ok(&mut llmbench(&home.0, &["store", "copy", &url, &back]));
    let rows = history(&home, &back);
    assert_eq!(rows, history(&home, &src));
    assert_eq!(rows[0]["tags"]["team"], "x");
    let id = rows[0]["id"].as_str().unwrap();
    let o = ok(&mut llmbench(&home.0, &["export", id, "--store", &back]));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim_end(), a.trim_end());
}

#[test]
fn an_unreachable_store_fails_the_run_before_any_request() {
    let home = TempDir::new("store-unreachable");
    let server = ScriptServer::start(Arc::new(|_| Vec::new()));
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = format!("postgres://bench:hunter2secret@127.0.0.1:{port}/runs");
    let out = home.path("r.json");
    let o = llmbench(
        &home.0,
        &["run", &server.url, "--model", "x", "-n", "5", "-q"],
    )
    .args(["--store", &store, "-o"])
    .arg(&out)
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        err.contains(&format!(
            "cannot reach the results store postgres://bench:***@127.0.0.1:{port}/runs"
        )),
        "{err}"
    );
    assert!(!err.contains("hunter2secret"), "password printed: {err}");
    assert_eq!(
        server.requests.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no request sent"
    );
    assert!(!out.exists(), "no result file written");
    // The same through LLMBENCH_STORE.
    let o = llmbench(
        &home.0,
        &["run", &server.url, "--model", "x", "-n", "5", "-q"],
    )
    .env("LLMBENCH_STORE", &store)
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("hunter2secret"));
    // `history` says it too, and --help never shows the variable's value.
    let o = llmbench(&home.0, &["history", "--store", &store])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = llmbench(&home.0, &["run", "--help"])
        .env("LLMBENCH_STORE", &store)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&o.stdout).contains("hunter2secret"));
}

#[test]
fn a_postgres_store_over_tls_checks_the_certificate_as_libpq_does() {
    let Some(pg) = PgServer::start_tls() else {
        return;
    };
    let home = TempDir::new("store-tls");
    let crt = pg.dir().join("server.crt");
    let base = pg.url("postgres");
    let with = |q: &str| format!("{base}?{q}");
    let root = format!("sslrootcert={}", crt.display());
    // The server takes TLS only (pg_hba.conf): the default sslmode (prefer) encrypts without
    // checking the certificate, as psql does; the run is stored and listed.
    stored_run(&home, &base, "a.json", &[]);
    assert_eq!(history(&home, &base).len(), 1);
    // With the certificate as root, require, verify-ca and the variable PGSSLROOTCERT pass.
    for url in [
        with(&format!("sslmode=require&{root}")),
        with(&format!("sslmode=verify-ca&{root}")),
    ] {
        assert_eq!(history(&home, &url).len(), 1, "{url}");
    }
    let o = ok(llmbench(
        &home.0,
        &["history", "--json", "--store", &with("sslmode=verify-ca")],
    )
    .env("PGSSLROOTCERT", &crt));
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"id\""));
    // Refused, exit 2, the password never shown: the certificate names db.example, not
    // 127.0.0.1 (verify-full); no public root vouches for it (verify-ca without a root); a plain
    // connection (disable) is refused by the server.
    for (q, want) in [
        (format!("sslmode=verify-full&{root}"), "NotValidForName"),
        ("sslmode=verify-ca".to_string(), "invalid peer certificate"),
        ("sslmode=disable".to_string(), "pg_hba.conf"),
    ] {
        let o = llmbench(&home.0, &["history", "--store", &with(&q)])
            .env_remove("PGSSLROOTCERT")
            .output()
            .unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{q}: {t}");
        assert!(t.contains("cannot reach the results store"), "{q}: {t}");
        if q != "sslmode=disable" {
            assert!(t.contains("sslrootcert=FILE or PGSSLROOTCERT"), "{q}: {t}");
        }
        assert!(
            t.to_lowercase().contains(&want.to_lowercase()),
            "{q}: want {want:?}: {t}"
        );
        assert!(!t.contains("hunter2secret"), "password printed: {t}");
    }
    // A root file that is not there: exit 2 naming it, before any request or file.
    let server = ScriptServer::start(Arc::new(|_| Vec::new()));
    let out = home.path("never.json");
    let o = llmbench(
        &home.0,
        &["run", &server.url, "--model", "x", "-n", "3", "-q"],
    )
    .args([
        "--store",
        &with("sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"),
    ])
    .arg("-o")
    .arg(&out)
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("/nonexistent/ca.pem"), "{}", text(&o));
    assert_eq!(
        server.requests.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no request sent"
    );
    assert!(!out.exists(), "no result file written");
}
