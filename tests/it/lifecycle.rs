//! Nothing lost: Ctrl-C/SIGTERM keep what was measured, kill -9 leaves whole record lines, a
//! bad output path fails before any request, and records alone rebuild the summary.

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use llmbench::measure::record::{Outcome, Record};
use llmbench::results::file::{ResultFile, RunStatus};

use crate::common::*;

fn spawn_run(dir: &TempDir, args: &[&str]) -> Child {
    bin()
        .arg("run")
        .args(args)
        .arg("-q")
        .arg("-o")
        .arg(dir.path("result.json"))
        .arg("--records")
        .arg(dir.path("records.jsonl"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn llmbench run")
}

/// Waits until the records file holds `n` whole lines (`0`: until it exists, which the run
/// creates just before its first request), instead of guessing with a sleep.
fn wait_for_records(dir: &TempDir, n: usize) {
    let path = dir.path("records.jsonl");
    let t = Instant::now();
    loop {
        if let Ok(b) = std::fs::read(&path)
            && b.iter().filter(|&&c| c == b'\n').count() >= n
        {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the run wrote fewer than {n} records in 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// Waits for the child, at most `limit`; returns its exit code and how long it took.
fn wait(child: &mut Child, limit: Duration) -> (Option<i32>, Duration) {
    let t = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (st.code(), t.elapsed());
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            panic!("llmbench did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every line of a records file is a whole record and the file ends with a newline.
fn whole_lines(path: &Path) -> Vec<Record> {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.is_empty() || bytes.ends_with(b"\n"),
        "last line is cut"
    );
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty() && !l.starts_with(b"{\"run_end\""))
        .map(|l| serde_json::from_slice(l).expect("a whole record"))
        .collect()
}

/// The simulator with 20 ms per token: `tokens` tokens take tokens·20 ms.
fn slow(tokens: &'static str) -> Vec<&'static str> {
    vec![
        "--ttft-ms",
        "20",
        "--itl-ms",
        "20",
        "--tokens",
        tokens,
        "-c",
        "3",
        "-n",
        "100000",
        "--max-tokens",
        "2000",
    ]
}

fn check_cancelled(dir: &TempDir, want_cancelled_in_flight: bool) {
    let res = ResultFile::read(&dir.path("result.json")).unwrap();
    assert_eq!(res.status, RunStatus::Cancelled);
    let sc = &res.scenarios[0];
    let records = whole_lines(&dir.path("records.jsonl"));
    assert_eq!(records.len() as u64, sc.outcomes.scheduled);
    let sum: u64 = Outcome::ALL.iter().map(|o| sc.outcomes.get(*o)).sum();
    assert_eq!(sum, sc.outcomes.scheduled);
    let cancelled = sc.outcomes.get(Outcome::Cancelled);
    if want_cancelled_in_flight {
        assert_eq!(cancelled, 3, "the three in flight: {:?}", sc.outcomes);
    } else {
        assert_eq!(
            cancelled, 0,
            "in-flight requests finished: {:?}",
            sc.outcomes
        );
        assert!(sc.outcomes.get(Outcome::Succeeded) >= 3);
    }
}

#[test]
fn first_signal_finishes_in_flight_requests_and_marks_the_result_cancelled() {
    for sig in ["-INT", "-TERM"] {
        let dir = TempDir::new("sig");
        // 40 tokens: 0.8 s per request.
        let mut child = spawn_run(&dir, &slow("40"));
        // The first three requests done: the next three are in flight.
        wait_for_records(&dir, 3);
        signal(&child, sig);
        let (code, took) = wait(&mut child, Duration::from_secs(15));
        assert_eq!(code, Some(130), "{sig}");
        assert!(took < Duration::from_secs(4), "{sig}: {took:?}");
        check_cancelled(&dir, false);
    }
}

#[test]
fn a_second_signal_stops_at_once() {
    for (first, second) in [("-INT", "-INT"), ("-TERM", "-TERM"), ("-TERM", "-INT")] {
        let dir = TempDir::new("sig2");
        // 1000 tokens: 20 s per request; the grace period would wait 60 s.
        let mut args = slow("1000");
        args.extend(["--grace", "60s"]);
        let mut child = spawn_run(&dir, &args);
        // The records file exists once the first requests are about to go out.
        wait_for_records(&dir, 0);
        std::thread::sleep(Duration::from_millis(300));
        signal(&child, first);
        std::thread::sleep(Duration::from_millis(500));
        signal(&child, second);
        let (code, took) = wait(&mut child, Duration::from_secs(15));
        assert_eq!(code, Some(130), "{first} {second}");
        assert!(took < Duration::from_secs(3), "{first} {second}: {took:?}");
        check_cancelled(&dir, true);
        // The cancelled requests keep what they had received: their first token and the
        // time of every chunk (they were 0.8 s into 20 ms tokens).
        for r in whole_lines(&dir.path("records.jsonl"))
            .iter()
            .filter(|r| r.outcome() == Outcome::Cancelled)
        {
            assert!(r.first_token_at_ms.is_some(), "{r:?}");
            assert!(r.chunk_times_ms.len() >= 10, "{:?}", r.chunk_times_ms);
            assert!(r.done_at_ms >= *r.chunk_times_ms.last().unwrap());
            assert_eq!(r.error.as_deref(), Some("cancelled while in flight"));
        }
    }
}

#[test]
fn ctrl_c_while_the_first_checks_wait_on_a_silent_server_exits_at_once() {
    // Accepts connections (the kernel does) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let dir = TempDir::new("silent");
    let mut child = spawn_run(&dir, &[url.as_str(), "-n", "1"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "still waiting on the server"
    );
    signal(&child, "-INT");
    let (code, took) = wait(&mut child, Duration::from_secs(10));
    assert_eq!(code, Some(130));
    assert!(took < Duration::from_secs(2), "{took:?}");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("Run cancelled before the first request."),
        "{err}"
    );
    assert!(!dir.path("result.json").exists());
}

#[test]
fn kill_9_leaves_only_whole_records_and_summarize_rebuilds_them() {
    let dir = TempDir::new("kill9");
    let mut child = spawn_run(
        &dir,
        &[
            "--ttft-ms",
            "1",
            "--itl-ms",
            "1",
            "--tokens",
            "40",
            "-c",
            "8",
            "-n",
            "1000000",
        ],
    );
    wait_for_records(&dir, 40);
    signal(&child, "-KILL");
    let _ = wait(&mut child, Duration::from_secs(5));
    let records = whole_lines(&dir.path("records.jsonl"));
    assert!(records.len() > 20, "{}", records.len());
    let out = bin()
        .arg("summarize")
        .arg(dir.path("records.jsonl"))
        .arg("-o")
        .arg(dir.path("rebuilt.json"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Outcomes:"), "{stdout}");
    // Killed: the records end without the run's end line, and summarize says so.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the run was interrupted (killed or crashed) before it finished"),
        "{stderr}"
    );
    let res = ResultFile::read(&dir.path("rebuilt.json")).unwrap();
    assert_eq!(res.status, RunStatus::Interrupted);
    assert_eq!(res.scenarios[0].outcomes.scheduled, records.len() as u64);
    assert_eq!(
        res.scenarios[0].outcomes.get(Outcome::Succeeded),
        records.len() as u64
    );
}

#[test]
fn summarize_matches_the_run_and_tolerates_a_cut_last_line() {
    let r = run(&[
        "--ttft-ms",
        "2",
        "--itl-ms",
        "1",
        "--tokens",
        "5",
        "-n",
        "60",
        "-c",
        "4",
        "--fault",
        "http-500,no-done",
        "--fault-rate",
        "0.3",
    ]);
    let dir = TempDir::new("summ");
    let rec = dir.path("records.jsonl");
    let mut text: Vec<u8> = r
        .records
        .iter()
        .flat_map(|x| {
            let mut l = serde_json::to_vec(x).unwrap();
            l.push(b'\n');
            l
        })
        .collect();
    std::fs::write(&rec, &text).unwrap();
    let out = bin()
        .arg("summarize")
        .arg(&rec)
        .arg("-o")
        .arg(dir.path("r.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let back = ResultFile::read(&dir.path("r.json")).unwrap();
    let (a, b) = (&r.result().scenarios[0], &back.scenarios[0]);
    assert_eq!(a.outcomes, b.outcomes);
    assert_eq!(a.metrics, b.metrics);
    assert_eq!(a.errors, b.errors);
    // The per-request samples (goodput, `compare`'s significance tests) come back too.
    assert!(a.samples.is_some());
    assert_eq!(a.samples, b.samples);
    // A last line cut by a kill is left out with a warning.
    text.extend_from_slice(b"{\"scenario\":\"default\",\"id\":99,\"outc");
    std::fs::write(&rec, &text).unwrap();
    let out = bin().arg("summarize").arg(&rec).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("records.jsonl:61: last line is incomplete"),
        "{err}"
    );
    // A broken line elsewhere is an error naming the line.
    std::fs::write(&rec, b"{\"bad\n{}\n").unwrap();
    let out = bin().arg("summarize").arg(&rec).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("records.jsonl:1"));
}

#[test]
fn unwritable_outputs_fail_before_any_request() {
    let srv = ScriptServer::start(Arc::new(|_| openai_stream(1, 1, 2, 1)));
    let dir = TempDir::new("unwritable");
    let records = dir.path("r.jsonl");
    let result = dir.path("r.json");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["-o".into(), "/nonexistent-llmbench-dir/r.json".into()],
            "--output /nonexistent-llmbench-dir/r.json: directory /nonexistent-llmbench-dir does not exist",
        ),
        (
            vec![
                "--records".into(),
                "/nonexistent-llmbench-dir/r.jsonl".into(),
            ],
            "--records /nonexistent-llmbench-dir/r.jsonl",
        ),
        // /proc takes no new files, even for root.
        (
            vec!["-o".into(), "/proc/llmbench-r.json".into()],
            "--output /proc/llmbench-r.json: cannot write in /proc",
        ),
        // A device, not a file (outputs are written whole and renamed into place).
        (
            vec!["--records".into(), "/dev/full".into()],
            "--records /dev/full: is not a regular file",
        ),
    ];
    for (args, want) in cases {
        let out = bin()
            .arg("run")
            .arg(&srv.url)
            .args(["-n", "1", "-q"])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert_eq!(srv.requests.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert!(!records.exists() && !result.exists());
}

#[test]
fn a_finished_runs_records_end_with_its_end_line_and_summarize_reads_it() {
    let dir = TempDir::new("endline");
    let mut child = spawn_run(
        &dir,
        &[
            "--ttft-ms",
            "1",
            "--itl-ms",
            "1",
            "--tokens",
            "3",
            "-n",
            "5",
        ],
    );
    let (code, _) = wait(&mut child, Duration::from_secs(30));
    assert_eq!(code, Some(0));
    let text = std::fs::read_to_string(dir.path("records.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let run = ResultFile::read(&dir.path("result.json")).unwrap();
    assert_eq!(last["run_end"]["run_id"], run.run_id.as_str());
    assert_eq!(last["run_end"]["status"], "completed");
    let records = llmbench::results::records::read_records(&dir.path("records.jsonl")).unwrap();
    assert_eq!(records.len(), 5, "the end line is not a record");
    let out = bin()
        .arg("summarize")
        .arg(dir.path("records.jsonl"))
        .arg("-o")
        .arg(dir.path("rebuilt.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let back = ResultFile::read(&dir.path("rebuilt.json")).unwrap();
    assert_eq!(back.status, RunStatus::Completed);
    assert_eq!(back.scenarios[0].outcomes, run.scenarios[0].outcomes);
}
