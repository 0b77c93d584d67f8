//! `compare` over real runs: the warnings when two runs differ in load shape, status, target
//! or scenario names.

use llmbench::results::file::ResultFile;

use crate::common::*;

const FIXED: [&str; 6] = ["--ttft-ms", "50", "--itl-ms", "5", "--tokens", "10"];

/// Runs the built-in simulator (TTFT 50 ms, ITL 5 ms, 10 tokens) or `url` with `args`, into
/// `dir/name`.
fn run_into(dir: &TempDir, name: &str, url: Option<&str>, args: &[&str]) -> std::path::PathBuf {
    let out = dir.path(name);
    let o = bin()
        .arg("run")
        .args(url)
        .args(["-n", "10", "-q", "-o"])
        .arg(&out)
        .args(args)
        .args(FIXED)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o));
    out
}

fn compare_json(
    dir: &TempDir,
    base: &std::path::Path,
    new: &std::path::Path,
) -> (String, serde_json::Value) {
    let json = dir.path("cmp.json");
    let o = bin()
        .arg("compare")
        .arg(base)
        .arg(new)
        .args(["--max-regression", "1000%", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o));
    let v = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    (text(&o), v)
}

#[test]
fn compare_warns_when_runs_differ_in_load_status_target_or_scenario_name() {
    let dir = TempDir::new("compare-warn");
    let closed = run_into(&dir, "closed.json", None, &["-c", "2", "--name", "chat"]);
    let open = run_into(&dir, "open.json", None, &["--rate", "20", "--name", "chat"]);

    // The same run twice: nothing to warn about, and every row names its unit.
    let (t, v) = compare_json(&dir, &closed, &closed);
    assert!(!t.contains("warning:"), "{t}");
    assert_eq!(v["warnings"], serde_json::json!([]));
    let units: Vec<(&str, &str)> = v["scenarios"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["metric"].as_str().unwrap(), r["unit"].as_str().unwrap()))
        .collect();
    assert!(units.contains(&("output tok/s", "tok/s")), "{units:?}");
    assert!(units.contains(&("requests/s", "req/s")), "{units:?}");
    assert!(units.contains(&("TTFT p50", "ms")), "{units:?}");

    // Closed loop against open loop: the scenario's warning names both loads, and the open
    // loop's throughput rows say why they have no interval.
    let (t, v) = compare_json(&dir, &closed, &open);
    assert!(
        t.contains(
            "warning: load shape differs: base closed loop, concurrency 2; new open loop, 20 req/s"
        ),
        "{t}"
    );
    let sc = &v["scenarios"][0];
    assert!(
        sc["warnings"][0]
            .as_str()
            .unwrap()
            .contains("load shape differs"),
        "{sc}"
    );
    let tok = &sc["rows"][9];
    assert_eq!(
        (tok["metric"].as_str(), tok["ci"].is_null()),
        (Some("output tok/s"), true)
    );
    assert!(
        tok["no_interval"].as_str().unwrap().contains("open loop"),
        "{tok}"
    );

    // A cancelled run (the status as a Ctrl-C writes it) is named in a warning.
    let mut r = ResultFile::read(&closed).unwrap();
    r.status = llmbench::results::file::RunStatus::Cancelled;
    let cancelled = dir.path("cancelled.json");
    r.write(&cancelled).unwrap();
    let (t, v) = compare_json(&dir, &closed, &cancelled);
    assert!(t.contains("warning: the new run was cancelled"), "{t}");
    assert!(
        v["warnings"][0].as_str().unwrap().contains("cancelled"),
        "{v}"
    );

    // Another server: the targets differ.
    let server = ServeChild::start(&FIXED);
    let elsewhere = run_into(
        &dir,
        "elsewhere.json",
        Some(&server.url),
        &["-c", "2", "--name", "chat"],
    );
    let (t, _) = compare_json(&dir, &closed, &elsewhere);
    assert!(
        t.contains("warning: the runs measured different targets (the built-in simulator → http://127.0.0.1:"),
        "{t}"
    );

    // One scenario each, named differently: never paired; compare says which names it has.
    let other = run_into(&dir, "other.json", None, &["-c", "2", "--name", "other"]);
    let o = bin()
        .arg("compare")
        .arg(&closed)
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(code(&o), 2, "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("no scenario of the same name") && t.contains("base has chat, new has other"),
        "{t}"
    );
    assert!(!t.contains("chat → other"), "{t}");
}
