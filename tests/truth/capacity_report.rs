//! Issue 17: what a capacity result shows (its charts, goodput at the capacity), `compare` of
//! two capacity results, and a step at the boundary (one at a time, against the simulator).

use crate::common::*;

/// The simulator's engine as in `capacity.rs`: TPOT at concurrency c is about
/// `1 + per_seq · c` ms, 8 tokens per request.
fn engine(per_seq: &str) -> Vec<String> {
    [
        "--decode-ms",
        "1",
        "--decode-ms-per-seq",
        per_seq,
        "--prefill-ms-per-token",
        "0",
        "--max-tokens",
        "8",
        "--ignore-eos",
        "-q",
    ]
    .map(String::from)
    .to_vec()
}
const SLO: &str = "tpot_p90<26ms";

fn capacity(per_seq: &str, out: &std::path::Path) -> String {
    let o = bin()
        .args(["capacity", "--slo", SLO, "--by", "concurrency", "-n", "300"])
        .args(engine(per_seq))
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

#[test]
fn capacity_charts_goodput_and_compare() {
    let _serial = serial();
    let dir = TempDir::new("capreport");
    let fast = dir.path("fast.json");
    let stdout = capacity("2", &fast);
    assert!(stdout.contains("Goodput at the capacity ("), "{stdout}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&fast).unwrap()).unwrap();
    assert_eq!(crate::schema_check::errors(&v), Vec::<String>::new());
    let r = llmbench::results::file::ResultFile::read(&fast).unwrap();
    let c = r.capacity.as_ref().unwrap();
    let cap = c.capacity.unwrap();
    // Goodput is the capacity step's: its scenario, its requests, 8 tokens per good request.
    let g = c.goodput.as_ref().expect("goodput at the capacity");
    assert_eq!(g.load, cap);
    let step = c.steps.iter().find(|s| s.load == cap).unwrap();
    assert_eq!(g.scenario, step.scenario);
    let sc = r.scenarios.iter().find(|s| s.name == g.scenario).unwrap();
    assert_eq!(g.requests, sc.outcomes.scheduled);
    // A p90 target passed: at least 90 % of the requests met it, most of them did.
    assert!(
        g.good <= g.requests && g.good * 10 >= g.requests * 8,
        "{g:?}"
    );
    let d = sc.metrics.duration_s;
    assert!((g.requests_per_s - g.good as f64 / d).abs() < 1e-9 * g.requests_per_s.max(1.0));
    assert!((g.output_tokens_per_s - 8.0 * g.requests_per_s).abs() < 1e-6 * g.output_tokens_per_s);

    // The report: both capacity charts as PNG and SVG, and in the HTML page, with the
    // threshold and the capacity drawn.
    let rep = dir.path("report");
    let o = bin()
        .arg("report")
        .arg(&fast)
        .arg("--out")
        .arg(&rep)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cap_name = format!("capacity {cap}");
    for chart in ["capacity", "capacity_pareto"] {
        let png = std::fs::metadata(rep.join("charts").join(format!("{chart}.png"))).unwrap();
        assert!(png.len() > 10_000, "{chart}.png: {} bytes", png.len());
        let svg = std::fs::read_to_string(rep.join("charts").join(format!("{chart}.svg"))).unwrap();
        assert!(svg.contains("SLO tpot_p90&lt;26ms"), "{chart}.svg");
        assert!(svg.contains(&cap_name), "{chart}.svg lacks {cap_name}");
    }
    let html = std::fs::read_to_string(rep.join("report.html")).unwrap();
    assert!(html.contains("id=\"capacity\"") && html.contains("id=\"capacity_pareto\""));
    assert!(
        html.contains("Goodput") && html.contains("at the capacity ("),
        "no goodput in the report"
    );

    // A slower engine (4 ms per running sequence: about half the capacity): compare says
    // worse, exit 4; the other way round, better, exit 0.
    let slow = dir.path("slow.json");
    capacity("4", &slow);
    let rs = llmbench::results::file::ResultFile::read(&slow).unwrap();
    let cs = rs.capacity.as_ref().unwrap();
    assert!(
        cs.first_fail.unwrap() <= cap,
        "{:?} vs {cap}",
        cs.first_fail
    );
    let o = bin().arg("compare").arg(&fast).arg(&slow).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(4), "{out}");
    let want = format!("{} → {}", cap, cs.capacity.unwrap());
    assert!(
        out.contains(&want) && out.contains("do not overlap: worse"),
        "{out}"
    );
    let o = bin().arg("compare").arg(&slow).arg(&fast).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("do not overlap: better"), "{out}");
}

/// A step whose threshold is the true median at its load cannot exclude it: it runs to its
/// budget and is reported undecided. Prompts of seeded, varying lengths (prefill 0.2 ms a
/// token) spread TTFT; a plain run at concurrency 1 with the same seed sends the same prompts
/// as the search's first step, and its median TTFT is the threshold.
#[test]
fn a_step_at_the_boundary_runs_to_its_budget_undecided() {
    let _serial = serial();
    let dir = TempDir::new("capboundary");
    let sim = [
        "--prefill-ms-per-token",
        "0.2",
        "--decode-ms",
        "2",
        "--prompt-tokens",
        "100",
        "--prompt-tokens-stdev",
        "60",
        "--max-tokens",
        "2",
        "--ignore-eos",
        "--seed",
        "7",
        "-n",
        "120",
        "-q",
    ];
    let plain = dir.path("plain.json");
    let o = bin()
        .args(["run", "-c", "1"])
        .args(sim)
        .arg("-o")
        .arg(&plain)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = llmbench::results::file::ResultFile::read(&plain).unwrap();
    let median = r.scenarios[0].metrics.ttft_ms.unwrap().p50;
    let slo = format!("ttft_p50<{median:.3}ms");
    let out = dir.path("cap.json");
    let o = bin()
        .args(["capacity", "--slo", &slo, "--by", "concurrency"])
        .args(sim)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    // Undecided counts as not passing: no load passed, exit 3.
    assert_eq!(o.status.code(), Some(3), "{stdout}");
    let r = llmbench::results::file::ResultFile::read(&out).unwrap();
    let c = r.capacity.as_ref().unwrap();
    let first = &c.steps[0];
    assert_eq!(first.load, 1.0);
    assert_eq!(
        first.verdict,
        llmbench::measure::capacity::Verdict::Undecided
    );
    assert!(!first.stopped_early, "{first:?}");
    assert_eq!(first.requests, 120, "{first:?}");
    let t = &first.targets[0];
    assert!(
        t.lower.unwrap() <= median && median <= t.upper.unwrap(),
        "{t:?} vs {median}"
    );
    assert!(stdout.contains("undecided"), "{stdout}");
    assert_eq!(c.goodput, None);
}
