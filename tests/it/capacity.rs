//! Issue 17: steady-state windows, capacity under SLO, statistical stopping.

use crate::common::*;

/// A closed loop whose requests have seeded, varying output lengths in the simulator's fixed
/// mode: the last requests finish one by one (a drain), which the whole-run throughput counts
/// and the steady-state window leaves out. Truth: 16 workers, each request
/// `ttft + (tokens − 1) · itl` long, so `16 · mean tokens / (20 + (mean tokens − 1) · 5) ms`.
#[test]
fn closed_loop_steady_state_matches_the_simulator_truth() {
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
