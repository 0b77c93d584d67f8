//! Targets and goodput, compare, the results store, reports.

use llmbench::results::file::ResultFile;

use crate::common::*;

const FIXED: [&str; 6] = ["--ttft-ms", "50", "--itl-ms", "5", "--tokens", "10"];

#[test]
fn slo_targets_pass_fail_goodput_and_exit_code() {
    let mut args = vec!["-n", "10", "-c", "2", "--slo", "ttft_p95<200ms,e2e_p50<2s"];
    args.extend(FIXED);
    let ok = run(&args);
    assert_eq!(code(&ok.output), 0, "{}", ok.stderr());
    let slo = ok.result().scenarios[0].slo.clone().expect("slo in result");
    assert!(slo.passed);
    assert_eq!(slo.targets.len(), 2);
    assert!(slo.targets.iter().all(|t| t.passed && t.value.is_some()));
    assert_eq!((slo.goodput.good, slo.goodput.scheduled), (10, 10));
    assert_eq!(slo.goodput.share, 1.0);
    assert!(slo.goodput.requests_per_s > 0.0);
    assert!(
        ok.stdout().contains("PASS ttft_p95<200ms"),
        "{}",
        ok.stdout()
    );
    assert!(ok.stdout().contains("Goodput: 10/10"), "{}", ok.stdout());

    // TTFT is 50 ms: a 30 ms target fails every request and the run exits 3.
    let mut args = vec!["-n", "6", "--slo", "ttft_p95<30ms,tpot_p99<50ms"];
    args.extend(FIXED);
    let bad = run(&args);
    assert_eq!(code(&bad.output), 3, "{}", bad.stderr());
    let slo = bad.result().scenarios[0].slo.clone().unwrap();
    assert!(!slo.passed && !slo.targets[0].passed && slo.targets[1].passed);
    assert!(slo.targets[0].value.unwrap() >= 50.0);
    assert_eq!(slo.goodput.good, 0);
    assert!(
        bad.stdout().contains("FAIL ttft_p95<30ms"),
        "{}",
        bad.stdout()
    );
    assert!(bad.stderr().contains("--slo"), "{}", bad.stderr());
}

#[test]
fn bad_slo_spec_names_the_flag_before_any_request() {
    let server = ScriptServer::start(std::sync::Arc::new(|_| openai_stream(1, 1, 2, 3)));
    let out = bin()
        .args([
            "run",
            &server.url,
            "-n",
            "2",
            "-q",
            "--slo",
            "ttft_p95<200ms,tpot<5",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--slo") && err.contains("tpot<5"), "{err}");
    assert_eq!(
        server.requests.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no request may be sent"
    );
}

#[test]
fn store_records_runs_lists_history_exports_and_resolves_ids() {
    let fast = ServeChild::start(&["--ttft-ms", "20", "--itl-ms", "2", "--tokens", "5"]);
    let home = TempDir::new("home");
    let dir = TempDir::new("store");
    let a = run_to(&dir, "a.json", &fast.url, Some(&home));
    let b = run_to(&dir, "b.json", &fast.url, Some(&home));
    assert!(home.path("llmbench.db").exists());
    let (ra, rb) = (ResultFile::read(&a).unwrap(), ResultFile::read(&b).unwrap());

    let h = with_home(&home.0).arg("history").output().unwrap();
    assert_eq!(code(&h), 0, "{}", text(&h));
    let out = String::from_utf8_lossy(&h.stdout);
    assert!(
        out.contains(&ra.run_id) && out.contains(&rb.run_id),
        "{out}"
    );
    assert!(out.contains("2 run(s)"), "{out}");
    let h = with_home(&home.0)
        .args(["history", "--model", "no-such-model"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&h.stdout).contains("No runs match"));
    let h = with_home(&home.0)
        .args(["history", "--target", &fast.url])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&h.stdout).contains("2 run(s)"));

    // export gives the result file back exactly.
    let back = dir.path("back.json");
    let e = with_home(&home.0)
        .args(["export", &ra.run_id, "-o"])
        .arg(&back)
        .output()
        .unwrap();
    assert_eq!(code(&e), 0, "{}", text(&e));
    assert_eq!(ResultFile::read(&back).unwrap(), ra);

    // compare and report accept run ids; report with no argument takes the latest run.
    let c = with_home(&home.0)
        .args([
            "compare",
            &ra.run_id,
            &rb.run_id,
            "--max-regression",
            "1000%",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&c), 0, "{}", text(&c));
    let rep = dir.path("rep");
    let r = with_home(&home.0)
        .args(["report", "--out"])
        .arg(&rep)
        .output()
        .unwrap();
    assert_eq!(code(&r), 0, "{}", text(&r));
    let csv = std::fs::read_to_string(rep.join("results.csv")).unwrap();
    assert!(csv.contains(&rb.run_id), "latest run is b: {csv}");

    // --no-store: nothing recorded.
    let o = with_home(&home.0)
        .args(["run", &fast.url, "-n", "2", "-q", "--no-store"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0);
    let h = with_home(&home.0).arg("history").output().unwrap();
    assert!(String::from_utf8_lossy(&h.stdout).contains("2 run(s)"));
    let missing = with_home(&home.0)
        .args(["export", "nope"])
        .output()
        .unwrap();
    assert_eq!(code(&missing), 2);
    assert!(text(&missing).contains("no run with id"));
}

#[test]
fn sweep_report_writes_every_file_with_one_csv_row_per_scenario() {
    let dir = TempDir::new("report");
    let rep = dir.path("rep");
    let out = dir.path("sweep.json");
    let mut args = vec![
        "sweep",
        "--concurrency",
        "1,2,4",
        "-n",
        "8",
        "-q",
        "--report",
    ];
    let rep_s = rep.to_string_lossy().into_owned();
    let out_s = out.to_string_lossy().into_owned();
    args.push(&rep_s);
    args.extend(["-o", &out_s, "--format", "json,csv,md,html"]);
    args.extend(["--sample-interval", "20ms"]);
    args.extend(FIXED);
    let o = bin().args(&args).output().unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o));
    for f in [
        "summary.md",
        "summary.txt",
        "results.csv",
        "report.html",
        "charts/overview.png",
        "charts/overview.svg",
        "charts/latency_distribution.png",
        "charts/ttft_percentiles.png",
        "charts/tpot_percentiles.png",
        "charts/e2e_percentiles.png",
        "charts/throughput.png",
        "charts/concurrency_scaling.png",
        "charts/throughput_vs_batch_size.png",
        "charts/resources.png",
    ] {
        let p = rep.join(f);
        let bytes = std::fs::read(&p).unwrap_or_else(|_| panic!("{} missing", p.display()));
        assert!(bytes.len() > 100, "{f} is {} bytes", bytes.len());
        if f.ends_with(".png") {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{f}");
        }
    }
    // The machine, as vLLM's framework's `*_system.json` gives it: the result's `system`.
    let sys: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(rep.join("system.json")).unwrap()).unwrap();
    let res: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(sys, res["system"]);
    assert!(
        sys.is_object() && !sys.as_object().unwrap().is_empty(),
        "{sys}"
    );
    let csv = std::fs::read_to_string(rep.join("results.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    let head: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(
        head[..6],
        [
            "run_id",
            "started_at",
            "target_url",
            "backend",
            "model",
            "scenario"
        ]
    );
    let conc = head.iter().position(|h| *h == "concurrency").unwrap();
    let vals: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(conc).unwrap())
        .collect();
    assert_eq!(vals, ["1", "2", "4"]);
    let html = std::fs::read_to_string(rep.join("report.html")).unwrap();
    assert!(html.matches("<svg").count() >= 8, "charts inline");
    // The resource timeline is charted: host CPU for each of the three scenarios.
    let svg = std::fs::read_to_string(rep.join("charts/resources.svg")).unwrap();
    for t in ["Host CPU", "time (s)", "concurrency=1", "concurrency=4"] {
        assert!(svg.contains(t), "{t} missing from resources.svg");
    }
    assert!(!html.contains("<script") && !html.contains("src=\"http"));
    let md = std::fs::read_to_string(rep.join("summary.md")).unwrap();
    assert!(
        md.contains("## concurrency=4") && md.contains("| TTFT (ms) |"),
        "{md}"
    );
    // --format writes next to -o.
    for ext in ["csv", "md", "html"] {
        assert!(out.with_extension(ext).exists(), "{ext}");
    }
    assert_eq!(
        std::fs::read_to_string(out.with_extension("csv")).unwrap(),
        csv
    );
    let bad = bin()
        .args(["run", "-n", "1", "--format", "pdf"])
        .output()
        .unwrap();
    assert_eq!(code(&bad), 2);
    assert!(text(&bad).contains("--format"));
}

#[test]
fn history_and_export_into_a_closed_pipe_end_quietly() {
    let sim = ServeChild::start(&["--ttft-ms", "1", "--itl-ms", "1", "--tokens", "3"]);
    let home = TempDir::new("pipehome");
    let dir = TempDir::new("pipe");
    let out = run_to(&dir, "a.json", &sim.url, Some(&home));
    let id = ResultFile::read(&out).unwrap().run_id;
    for args in [vec!["history"], vec!["export", id.as_str()]] {
        let mut child = with_home(&home.0)
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before reading anything, as `| head -0` does.
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {e}");
        assert!(
            !e.contains("panicked") && !e.contains("Broken pipe"),
            "{args:?}: {e}"
        );
    }
}

#[test]
fn export_gives_back_the_result_file_byte_for_byte() {
    let sim = ServeChild::start(&["--ttft-ms", "1", "--itl-ms", "1", "--tokens", "3"]);
    let home = TempDir::new("exporthome");
    let dir = TempDir::new("export");
    let a = run_to(&dir, "a.json", &sim.url, Some(&home));
    let id = ResultFile::read(&a).unwrap().run_id;
    let b = dir.path("b.json");
    let o = with_home(&home.0)
        .args(["export", &id, "-o"])
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o));
    let original = std::fs::read(&a).unwrap();
    assert_eq!(std::fs::read(&b).unwrap(), original, "file export");
    let o = with_home(&home.0).args(["export", &id]).output().unwrap();
    assert_eq!(o.stdout, original, "export to standard output");
}

/// Fast fixed timing for report tests.
const QUICK: [&str; 6] = ["--ttft-ms", "5", "--itl-ms", "1", "--tokens", "4"];

/// `llmbench SUB ARGS -q -o DIR/NAME`, with `QUICK` timing unless `ARGS` set a TTFT; the exit
/// code must be `want`.
fn result_to(dir: &TempDir, name: &str, sub: &str, args: &[&str], want: i32) -> String {
    let out = dir.path(name);
    let quick: &[&str] = if args.contains(&"--ttft-ms") {
        &QUICK[2..]
    } else {
        &QUICK
    };
    let o = bin()
        .arg(sub)
        .args(args)
        .args(quick)
        .args(["-q", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(code(&o), want, "{sub} {args:?}: {}", text(&o));
    out.to_string_lossy().into_owned()
}

/// `llmbench report FILES --out DIR/rep` → (report dir, stderr).
fn report_of(dir: &TempDir, rep: &str, files: &[&str]) -> (std::path::PathBuf, String) {
    let rep = dir.path(rep);
    let o = bin()
        .arg("report")
        .args(files)
        .arg("--out")
        .arg(&rep)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o));
    (rep, String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The charts a report drew, by file stem (PNG and SVG both written), sorted; the resource
/// timeline is left out (whether a short run got two samples depends on the machine).
fn charts_in(rep: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(rep.join("charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".png").map(str::to_string))
        .filter(|n| n != "resources")
        .collect();
    names.sort();
    for n in &names {
        assert!(rep.join(format!("charts/{n}.svg")).exists(), "{n}.svg");
    }
    names
}

fn read(p: std::path::PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn runs_of_different_kinds_get_their_own_charts_and_failed_runs_none() {
    let dir = TempDir::new("mixedreport");
    let conc = result_to(&dir, "conc.json", "sweep", &["-c", "1,2,4", "-n", "3"], 0);
    let prompt = result_to(
        &dir,
        "prompt.json",
        "run",
        &["--suite", "prompt-lengths", "-n", "2"],
        0,
    );
    let temp = result_to(
        &dir,
        "temp.json",
        "sweep",
        &["--temperature", "0,0.7,1.5", "-n", "2"],
        0,
    );
    let failed = result_to(
        &dir,
        "fail.json",
        "run",
        &["-n", "3", "--fault", "http-500"],
        1,
    );

    let (rep, _) = report_of(&dir, "mixed", &[&conc, &prompt, &temp]);
    // One experiment chart per run, each over its own scenarios; before, the eleven scenarios
    // were one concurrency series (eight of them at c=1) and the other two charts were missing.
    assert_eq!(
        charts_in(&rep),
        [
            "concurrency_scaling",
            "e2e_percentiles",
            "latency_distribution",
            "overview",
            "prompt_length_impact",
            "temperature_impact",
            "throughput",
            "throughput_vs_batch_size",
            "tpot_percentiles",
            "ttft_percentiles",
        ]
    );
    for (chart, title, x) in [
        (
            "concurrency_scaling",
            "Concurrency scaling (3 scenarios)",
            "concurrency (requests in flight)",
        ),
        (
            "prompt_length_impact",
            "Prompt-length impact (5 scenarios)",
            "prompt length (tokens)",
        ),
        (
            "temperature_impact",
            "Temperature impact (3 scenarios)",
            "sampling temperature",
        ),
    ] {
        let svg = read(rep.join(format!("charts/{chart}.svg")));
        assert!(svg.contains(title), "{chart}: no {title:?}");
        assert!(svg.contains(x), "{chart}: no {x:?}");
    }

    // A run where nothing succeeded: no chart with empty axes, the words instead.
    let (rep, stderr) = report_of(&dir, "failed", &[&failed]);
    assert_eq!(charts_in(&rep), Vec::<String>::new());
    assert!(stderr.contains("no successful requests"), "{stderr}");
    let html = read(rep.join("report.html"));
    assert!(
        html.contains("No latency or throughput charts: no successful requests"),
        "{html}"
    );
    assert!(!html.contains("<svg") || rep.join("charts/resources.svg").exists());
    let md = read(rep.join("summary.md"));
    assert!(
        md.contains("> **No successful requests: 3 scheduled"),
        "{md}"
    );
    assert!(
        !md.contains("| TTFT (ms) |"),
        "no empty latency table: {md}"
    );

    // Beside a run that succeeded: charted without it, and the page says which one is missing.
    let (rep, _) = report_of(&dir, "both", &[&conc, &failed]);
    let fail_id = ResultFile::read(std::path::Path::new(&failed))
        .unwrap()
        .run_id;
    let short = fail_id.rsplit('-').next().unwrap();
    let overview = read(rep.join("charts/overview.svg"));
    assert!(overview.contains("concurrency=4"));
    assert!(
        !overview.contains(&format!("{short} default")),
        "{short} charted"
    );
    let html = read(rep.join("report.html"));
    assert!(
        html.contains(&format!(
            "Not charted, no successful requests: {short} default."
        )),
        "{html}"
    );
}

#[test]
fn html_and_markdown_show_the_verdict_client_server_metrics_and_turn_tables() {
    let dir = TempDir::new("contentreport");
    // One slot, a 300 ms server, 40 arrivals a second for a second: most are dropped, so the
    // client was the limit and the scenario is not trustworthy.
    let untrusted = result_to(
        &dir,
        "untrusted.json",
        "run",
        &[
            "--rate",
            "40",
            "--arrival",
            "constant",
            "--duration",
            "1s",
            "--max-concurrency",
            "1",
            "--ttft-ms",
            "300",
        ],
        0,
    );
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/conversations");
    let conv = result_to(
        &dir,
        "conv.json",
        "run",
        &["--conversations", examples, "-c", "4", "--format", "csv"],
        0,
    );
    let conv_result = ResultFile::read(std::path::Path::new(&conv)).unwrap();
    let sc = &conv_result.scenarios[0];
    let (turns, rag) = (sc.turns.len(), sc.rag.as_ref().expect("rag stats"));
    assert!(turns > 3);
    assert!(sc.server_metrics.is_some(), "the simulator serves /metrics");

    let (rep, _) = report_of(&dir, "rep", &[&untrusted, &conv]);
    let md = read(rep.join("summary.md"));
    for want in [
        "(NOT TRUSTWORTHY) |",
        "> **NOT TRUSTWORTHY: the client was the limit (",
        "request(s) dropped",
        "- **Client:** ",
        "Server metrics (http://127.0.0.1:",
        "| requests finished | +",
        "Per turn:",
        "| turn | ok/sent | messages | context tok |",
        "With and without documents (RAG):",
        &format!(
            "| with docs | {}/{} |",
            rag.with_documents.succeeded, rag.with_documents.requests
        ),
        "Resources (",
        "- **Warnings:**",
    ] {
        assert!(md.contains(want), "summary.md lacks {want:?}:\n{md}");
    }
    // The per-turn table: its header, the alignment row, then one row per turn.
    let turn_rows = md
        .split("Per turn:\n\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with('|'))
        .count()
        - 2;
    assert_eq!(turn_rows, turns, "one Markdown row per turn");
    let html = read(rep.join("report.html"));
    for want in [
        "<p class=\"alert\">NOT TRUSTWORTHY: the client was the limit (",
        "<dt>Client</dt>",
        "<h4>Server metrics (http://127.0.0.1:",
        "<h4>Per turn</h4>",
        "<h4>With and without documents (RAG)</h4>",
        "<td>with docs</td>",
        "<td>without docs</td>",
    ] {
        assert!(html.contains(want), "report.html lacks {want:?}");
    }
    assert!(!html.contains("<script"));
    let txt = read(rep.join("summary.txt"));
    assert!(txt.contains("!! NOT TRUSTWORTHY") && txt.contains("Per turn:"));

    // CSV: results.csv stays one row per scenario (with the verdict appended); the turn and
    // RAG tables are files of their own, in the report and beside --format csv.
    let csv = read(rep.join("results.csv"));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    let head: Vec<&str> = lines[0].split(',').collect();
    let at = head
        .iter()
        .position(|h| *h == "client_trustworthy")
        .unwrap();
    assert_eq!(
        head[at + 1..],
        ["input_tokens_total", "output_tokens_total"]
    );
    assert_eq!(lines[1].split(',').nth(at), Some("false"), "{}", lines[1]);
    let turns_csv = read(rep.join("turns.csv"));
    assert!(
        turns_csv.starts_with(
            "run_id,scenario,turn,succeeded,requests,messages_mean,context_tokens_mean,"
        )
    );
    assert_eq!(turns_csv.lines().count(), turns + 1, "{turns_csv}");
    let rag_csv = read(rep.join("rag.csv"));
    let rows: Vec<&str> = rag_csv.lines().collect();
    assert_eq!(rows.len(), 3, "{rag_csv}");
    assert!(rows[0].starts_with("run_id,scenario,documents,succeeded,requests,"));
    assert!(rows[1].contains(",default,with,") && rows[2].contains(",default,without,"));
    // Beside the run's --format csv: the same rows (written from the run's own numbers, which
    // may differ in the last digit from the file read back).
    let beside = std::path::Path::new(&conv);
    let keys = |csv: &str| -> Vec<String> {
        csv.lines()
            .map(|l| l.split(',').take(5).collect::<Vec<_>>().join(","))
            .collect()
    };
    assert_eq!(
        keys(&read(beside.with_extension("turns.csv"))),
        keys(&turns_csv)
    );
    assert_eq!(
        keys(&read(beside.with_extension("rag.csv"))),
        keys(&rag_csv)
    );
}
