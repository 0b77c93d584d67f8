//! `llmbench ui` (issue 19): the JSON API over a store of real simulator runs, and the page in a
//! real browser (`tests/browser/dashboard.mjs`: Debian's Chromium driven by playwright-core).
//!
//! The browser part needs node, Chromium and playwright-core (`PLAYWRIGHT_DIR`, default
//! `target/browser-test/node_modules`, where `.ci/run` installs it); without them it is skipped
//! with a loud message, unless `LLMBENCH_REQUIRE_BROWSER=1` (set by `.ci/run`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::common::{TempDir, with_home};

struct Ui {
    child: Child,
    url: String,
}

impl Ui {
    fn start(home: &Path, store: &str) -> Self {
        let mut child = with_home(home)
            .args(["ui", "--port", "0", "--store", store])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().trim_end_matches('/').to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{line:?}");
        Self { child, url }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let r = reqwest::get(format!("{}{path}", self.url)).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three simulator runs (the second slower and tagged release=2), oldest first; their ids.
fn three_runs(home: &TempDir, store: &str) -> Vec<String> {
    [
        ["--tag", "release=1"],
        ["--tag", "release=2"],
        ["--tag", "release=3"],
    ]
    .iter()
    .enumerate()
    .map(|(i, tag)| {
        let out = home.path(&format!("r{i}.json"));
        let ttft = if i == 1 { "40" } else { "20" };
        let o = with_home(&home.0)
            .args(["run", "-n", "20", "-c", "4", "-q", "--store", store])
            .args(tag)
            // About 2 s each (20 requests of 170 ms, 4 at a time): several timeline bins.
            .args(["--ttft-ms", ttft, "--itl-ms", "10", "--tokens", "16", "-o"])
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{o:?}");
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        r["run_id"].as_str().unwrap().to_string()
    })
    .collect()
}

#[test]
fn the_dashboard_api_serves_the_store() {
    let home = TempDir::new("ui-api");
    let store = home.path("ui.db").to_str().unwrap().to_string();
    let ids = three_runs(&home, &store);
    let ui = Ui::start(&home.0, &store);
    let (s, page) = ui.get("/");
    assert_eq!(s, 200);
    assert!(page.contains("/app.js") && !page.contains("http://") && !page.contains("https://"));
    for asset in ["/app.js", "/charts.js", "/app.css"] {
        let (s, body) = ui.get(asset);
        assert_eq!(s, 200, "{asset}");
        assert!(
            !body.contains("https://"),
            "{asset} loads nothing from elsewhere"
        );
    }
    let (s, body) = ui.get("/api/runs");
    assert_eq!(s, 200);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(rows.len(), 3);
    let (_, body) = ui.get("/api/runs?tag=release%3D2");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], ids[1].as_str());
    let (s, body) = ui.get(&format!("/api/runs/{}", ids[0]));
    assert_eq!(s, 200);
    assert_eq!(
        body.trim_end(),
        std::fs::read_to_string(home.path("r0.json"))
            .unwrap()
            .trim_end()
    );
    let (s, body) = ui.get(&format!("/api/compare?base={}&new={}", ids[0], ids[1]));
    assert_eq!(s, 200, "{body}");
    let c: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ttft = c["scenarios"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "TTFT p50")
        .expect("a TTFT p50 row");
    assert_eq!(ttft["worse"], true, "TTFT 20 ms → 40 ms is worse: {ttft}");
    let (s, _) = ui.get("/api/runs/nope");
    assert_eq!(s, 404);
}

fn playwright_dir() -> PathBuf {
    std::env::var_os("PLAYWRIGHT_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-test/node_modules"),
        PathBuf::from,
    )
}

/// The browser's tools, or `None` (skipped, loudly) when the machine lacks them.
fn browser_tools() -> Option<(String, PathBuf)> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let pw = playwright_dir();
    let node = Command::new("node").arg("--version").output().is_ok();
    let missing: Vec<&str> = [
        (!node).then_some("node"),
        (!Path::new(&chromium).exists()).then_some("chromium"),
        (!pw.join("playwright-core").is_dir()).then_some("playwright-core"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        if std::env::var("LLMBENCH_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
            panic!("LLMBENCH_REQUIRE_BROWSER=1 but missing: {missing:?}");
        }
        eprintln!(
            "\n*** SKIPPED: the dashboard's browser test needs {missing:?} (see .ci/run) ***\n"
        );
        return None;
    }
    Some((chromium, pw))
}

/// Three runs stored in `store`, the dashboard served over it, and `tests/browser/dashboard.mjs`
/// driving Chromium through every view; screenshots in `target/dashboard-screenshots/KIND`.
fn browse(home: &TempDir, store: &str, kind: &str) {
    let Some((chromium, pw)) = browser_tools() else {
        return;
    };
    let ids = three_runs(home, store);
    let ui = Ui::start(&home.0, store);
    // Screenshots go under target/ (not committed) and stay after the test, to be looked at.
    let shots = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/dashboard-screenshots")
        .join(kind);
    std::fs::create_dir_all(&shots).unwrap();
    let o = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.mjs"))
        .arg(format!("{}/", ui.url))
        .arg(&shots)
        .args(&ids)
        .env("PLAYWRIGHT_DIR", &pw)
        .env("CHROMIUM", &chromium)
        .output()
        .unwrap();
    let out = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{kind}: {out}");
    for want in [
        "ok: hovering a point shows its values",
        "ok: the latency-over-time chart has",
        "ok: the in-flight chart shows the run's concurrency",
    ] {
        assert!(out.contains(want), "{kind}: {want:?} missing in {out}");
    }
    assert!(shots.join("run.png").is_file());
}

#[test]
fn the_dashboard_works_in_a_real_browser() {
    let home = TempDir::new("ui-browser");
    let store = home.path("ui.db").to_str().unwrap().to_string();
    browse(&home, &store, "sqlite");
}

#[test]
fn the_dashboard_works_in_a_real_browser_over_postgres() {
    // Both are required in CI; here either may be missing (each says so).
    if browser_tools().is_none() {
        return;
    }
    let Some(pg) = super::pg::PgServer::start() else {
        return;
    };
    let home = TempDir::new("ui-browser-pg");
    browse(&home, &pg.create_db("dashboard"), "postgres");
}
