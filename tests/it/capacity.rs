//! Issue 17: capacity's flags (its timing tests are in the truth binary).

use crate::common::*;

#[test]
fn capacity_flags_are_checked_before_anything_is_sent() {
    for (args, says) in [
        (vec!["capacity"], "--slo"),
        (
            vec!["capacity", "--slo", "tpot_p90<26ms", "-c", "4"],
            "--by",
        ),
        (vec!["capacity", "--slo", "requests_per_s>4"], "percentiles"),
        (vec!["capacity", "--slo", "ttft_mean<4ms"], "percentiles"),
        (
            vec!["capacity", "--slo", "ttft_p99<4ms", "--start", "0"],
            "--start",
        ),
        (
            vec!["capacity", "--slo", "ttft_p99<4ms", "--precision", "2"],
            "--precision",
        ),
    ] {
        let o = bin().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn isolate_restarts_the_managed_server_before_every_step() {
    use crate::telemetry::{free_port, serve_cmd};
    // Without --server-cmd there is nothing to restart: refused before anything is sent.
    let o = bin()
        .args(["capacity", "--slo", "ttft_p99<4s", "--isolate"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--server-cmd"), "{err}");
    // A target every load meets: the search doubles the load until --max-time ends it, each
    // step on a server started afresh.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = TempDir::new("capacity-isolate");
    let out = dir.path("cap.json");
    let o = bin()
        .args(["capacity", &url, "--slo", "ttft_p50<10s", "-n", "10"])
        .args(["--max-time", "3s", "-q", "--isolate"])
        .args(["--server-cmd", &serve_cmd(port, ""), "-o"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let res = llmbench::results::file::ResultFile::read(&out).unwrap();
    let steps = res.scenarios.len();
    assert!(steps >= 2, "{steps} steps: {err}");
    let managed = res.server.as_ref().unwrap().managed.as_ref().unwrap();
    assert_eq!(managed.starts as usize, steps, "{err}");
    assert_eq!(managed.ready_s.len(), steps);
    // A fresh server counts from zero: every step's "before" is 0.
    for sc in &res.scenarios {
        let p = &sc.server_metrics.as_ref().unwrap().series["requests_finished"];
        assert_eq!(p.before, Some(0.0), "{}: {err}", sc.name);
    }
}
