//! Issue 17, against the simulator's timing truth (one at a time): steady-state windows,
//! capacity under SLO against a fine grid, statistical stopping (`--until`).

use crate::common::*;

/// The simulator's engine: each decode step costs 1 ms + 2 ms per running sequence, no
/// prefill cost, 8 tokens per request, so TPOT at concurrency c is about 1 + 2c ms and the
/// target `tpot_p90 < 26ms` holds up to c = 12 (25 ms) and not from 13 (27 ms) on.
const ENGINE: [&str; 10] = [
    "--decode-ms",
    "1",
    "--decode-ms-per-seq",
    "2",
    "--prefill-ms-per-token",
    "0",
    "--max-tokens",
    "8",
    "--ignore-eos",
    "-q",
];
const SLO: &str = "tpot_p90<26ms";

/// A closed loop whose requests have seeded, varying output lengths in the simulator's fixed
/// mode: the last requests finish one by one (a drain), which the whole-run throughput counts
/// and the steady-state window leaves out. Truth: 16 workers, each request
/// `ttft + (tokens − 1) · itl` long, so `16 · mean tokens / (20 + (mean tokens − 1) · 5) ms`.
#[test]
fn closed_loop_steady_state_matches_the_simulator_truth() {
    let _serial = serial();
    let dir = TempDir::new("steady");
    let out = dir.path("r.json");
    let o = bin()
        .args(["run", "--ttft-ms", "20", "--itl-ms", "5"])
        .args(["--output-tokens", "30", "--output-tokens-stdev", "15"])
        .args(["-c", "16", "-n", "400", "-q", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("Steady state: "), "{stdout}");
    let r = llmbench::results::file::ResultFile::read(&out).unwrap();
    let sc = &r.scenarios[0];
    let s = sc.steady_state.as_ref().expect("a drain was detected");
    let mean_tokens = sc.metrics.output_tokens.mean;
    let truth = 16.0 * mean_tokens / ((20.0 + (mean_tokens - 1.0) * 5.0) / 1000.0);
    let got = s.output_tokens_per_s;
    assert!(
        (got - truth).abs() < 0.05 * truth,
        "steady {got:.1} tok/s vs truth {truth:.1} (whole run {:.1})",
        sc.metrics.output_tokens_per_s
    );
    // The window leaves the drain out: it ends before the last request, and the whole run,
    // which counts the drain's idle workers, is slower.
    assert_eq!(s.plateau_in_flight, 16.0);
    assert!(s.drain_s > 0.05, "{s:?}");
    assert!(got > sc.metrics.output_tokens_per_s);
    let req_truth = truth / mean_tokens;
    assert!((s.requests_per_s - req_truth).abs() < 0.05 * req_truth);
    let tpot = s.tpot_ms.unwrap();
    assert!((tpot.p50 - 5.0).abs() < 0.5, "{tpot:?}");
}

/// The true capacity from a fixed fine grid of plain runs (concurrency 1 to 20, 60 requests
/// each, the target judged on each run's own p90), against `capacity`'s answer and cost.
#[test]
fn capacity_finds_the_grid_truth_with_a_third_of_its_requests() {
    let _serial = serial();
    let dir = TempDir::new("capacity");
    let grid = dir.path("grid.json");
    let list: Vec<String> = (1..=20).map(|c| c.to_string()).collect();
    let o = bin()
        .args(["sweep", "-c", &list.join(","), "-n", "60", "--slo", SLO])
        .args(ENGINE)
        .arg("-o")
        .arg(&grid)
        .output()
        .unwrap();
    // Some grid points fail the target: exit 3.
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let g = llmbench::results::file::ResultFile::read(&grid).unwrap();
    let grid_requests: u64 = g.scenarios.iter().map(|s| s.outcomes.scheduled).sum();
    let passed: Vec<bool> = g
        .scenarios
        .iter()
        .map(|s| s.slo.as_ref().unwrap().passed)
        .collect();
    let truth = passed.iter().take_while(|p| **p).count() as f64;
    assert!(truth >= 4.0, "grid: {passed:?}");

    let out = dir.path("cap.json");
    let o = bin()
        .args(["capacity", "--slo", SLO, "--by", "concurrency", "-n", "300"])
        .args(ENGINE)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("Capacity: "), "{stdout}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(crate::schema_check::errors(&v), Vec::<String>::new());
    let r = llmbench::results::file::ResultFile::read(&out).unwrap();
    let c = r.capacity.as_ref().unwrap();
    let found = c.capacity.unwrap();
    eprintln!(
        "capacity {found} (first fail {:?}) vs grid truth {truth}; requests {} vs grid {grid_requests}",
        c.first_fail, c.requests
    );
    assert!(
        (found - truth).abs() <= 0.05 * truth,
        "found {found}, grid truth {truth}: {stdout}"
    );
    assert!(
        c.requests * 3 <= grid_requests,
        "capacity used {} requests, the grid {grid_requests}",
        c.requests
    );
    // The steps are scenarios of the result, and the first (far below capacity) stopped
    // early, on a fraction of its 300-request budget.
    assert_eq!(r.scenarios.len(), c.steps.len());
    let first = &c.steps[0];
    assert_eq!(first.load, 1.0);
    assert!(first.stopped_early, "{first:?}");
    assert!(first.requests * 4 <= 300, "{first:?}");
    let t = &first.targets[0];
    assert!(t.upper.unwrap() < 26.0 && t.lower.unwrap() <= t.value.unwrap());
}

/// `--until`: the simulator's engine with prompts of seeded, varying lengths (prefill 0.2 ms a
/// token), so TTFT spreads; the run stops once the median's 95 % interval lies within ±5 %,
/// long before its bound, and a bound too small for that says so.
#[test]
fn until_stops_when_the_interval_is_narrow_enough() {
    let _serial = serial();
    let dir = TempDir::new("until");
    let out = dir.path("r.json");
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
        "-c",
        "16",
        "-q",
    ];
    let o = bin()
        .args(["run", "--until", "ttft_p50±5%", "-n", "3000"])
        .args(sim)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("stopped"), "{stdout}");
    let r = llmbench::results::file::ResultFile::read(&out).unwrap();
    let sc = &r.scenarios[0];
    let u = sc.until.as_ref().unwrap();
    assert!(u.stopped, "{u:?}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(crate::schema_check::errors(&v), Vec::<String>::new());
    // The figures are those the stop was decided on: within ±5 %, of fewer values than
    // were scheduled (the 16 in flight then finished after it).
    let (v, lo, hi) = (u.value.unwrap(), u.lower.unwrap(), u.upper.unwrap());
    assert!(u.reached && lo >= 0.95 * v && hi <= 1.05 * v, "{u:?}");
    assert!(u.n < sc.outcomes.scheduled, "{u:?}");
    // It stopped: far fewer than the bound, and the TTFT really spreads (the interval is
    // not narrow for free).
    assert!(sc.outcomes.scheduled < 1500, "{}", sc.outcomes.scheduled);
    let t = sc.metrics.ttft_ms.as_ref().unwrap();
    assert!(t.p99 > 1.5 * t.min, "{t:?}");

    // A p99 needs 368 values for an upper end: 50 requests end at the bound, not reached.
    let o = bin()
        .args(["run", "--until", "ttft_p99+-5%", "-n", "50"])
        .args(sim)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = llmbench::results::file::ResultFile::read(&out).unwrap();
    let u = r.scenarios[0].until.as_ref().unwrap();
    assert!(!u.reached && !u.stopped && u.upper.is_none(), "{u:?}");
    assert_eq!(r.scenarios[0].outcomes.scheduled, 50);
    // Bad specs and a missing bound exit 2 before anything is sent.
    for (args, says) in [
        (vec!["--until", "ttft_p99"], "--until"),
        (vec!["--until", "ttft_mean±5%", "-n", "5"], "--until"),
        (vec!["--until", "ttft_p99±150%", "-n", "5"], "--until"),
        (vec!["--until", "ttft_p99±5%"], "--requests or --duration"),
    ] {
        let o = bin().arg("run").args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
