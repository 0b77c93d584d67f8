//! A client that is not running when a token comes (a busy machine, a descheduled thread)
//! still times the token when it came: the direct client takes chunk times from the kernel's
//! receive timestamps. Checked against the simulator's send log, with the client stopped
//! (SIGSTOP) for 25 ms at a time while it streams.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use llmbench::measure::record::{Outcome, Record};
use llmbench::results::file::ResultFile;

use crate::common::*;

/// The worst errors of a run against the send log, in ms: (TTFT from the request reaching the
/// simulator's socket, the gap between two chunks).
struct Worst {
    ttft: f64,
    lowest_ttft: f64,
    gap: f64,
}

/// `llmbench run` against `url` with `clock` as `LLMBENCH_CLOCK`, stopped for 25 ms every
/// 60 ms until it ends; its records.
fn stalled_run(url: &str, clock: &str) -> Vec<Record> {
    let dir = TempDir::new("stalls");
    let (out, rec) = (dir.path("result.json"), dir.path("records.jsonl"));
    let mut child = bin()
        .env("LLMBENCH_CLOCK", clock)
        .args([
            "run",
            url,
            "--backend",
            "openai-completions",
            "-n",
            "6",
            "-c",
            "3",
            "--request-id-header",
            "X-Request-Id",
            "-q",
            "-o",
        ])
        .arg(&out)
        .arg("--records")
        .arg(&rec)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn llmbench run");
    let pid = child.id() as libc::pid_t;
    let done = Arc::new(AtomicBool::new(false));
    let stopper = {
        let done = done.clone();
        std::thread::spawn(move || {
            // Started: its first requests go out before the first stop.
            std::thread::sleep(Duration::from_millis(100));
            while !done.load(Ordering::SeqCst) {
                // SAFETY: signals to our own child, which is reaped only after this loop ends.
                unsafe { libc::kill(pid, libc::SIGSTOP) };
                std::thread::sleep(Duration::from_millis(25));
                unsafe { libc::kill(pid, libc::SIGCONT) };
                std::thread::sleep(Duration::from_millis(35));
            }
        })
    };
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    done.store(true, Ordering::SeqCst);
    stopper.join().unwrap();
    assert!(status.success(), "llmbench run failed: {status:?}");
    let res = ResultFile::read(&out).expect("a result file");
    assert_eq!(res.scenarios[0].outcomes.get(Outcome::Succeeded), 6);
    read_records(&rec)
}

/// Each record against its line in the send log.
fn worst(records: &[Record], log: &std::path::Path) -> Worst {
    let server: std::collections::HashMap<_, _> = read_send_log(log)
        .into_iter()
        .map(|(id, s)| (id, (s.waited_ms.expect("the socket arrival"), s.sends_ms)))
        .collect();
    let mut w = Worst {
        ttft: 0.0,
        lowest_ttft: f64::MAX,
        gap: 0.0,
    };
    for r in records.iter().filter(|r| !r.warmup) {
        let (waited, sends) = &server[r.request_id.as_ref().unwrap()];
        let ttft = r.ttft_ms().unwrap() - (waited + sends[0]);
        w.ttft = w.ttft.max(ttft);
        w.lowest_ttft = w.lowest_ttft.min(ttft);
        let ch = &r.chunk_times_ms;
        for k in 1..ch.len() {
            let gap = ((ch[k] - ch[k - 1]) - (sends[k] - sends[k - 1])).abs();
            w.gap = w.gap.max(gap);
        }
    }
    w
}

/// Stalls shorter than the gap between two tokens: a token that comes while the client is
/// stopped is the only one waiting when it runs again, and the kernel's timestamp says when
/// it came. Read when the client runs again (`LLMBENCH_CLOCK=read`), the same stalls show as
/// gaps up to 25 ms wrong, which proves the stalls hit the stream.
#[test]
fn a_client_stopped_while_tokens_come_times_them_when_they_came() {
    let _serial = serial();
    let dir = TempDir::new("stalls-log");
    let log = dir.path("sends.jsonl");
    let log_s = log.to_string_lossy().into_owned();
    let sim = ServeChild::start(&[
        "--ttft-ms",
        "40",
        "--itl-ms",
        "40",
        "--tokens",
        "8",
        "--send-log",
        &log_s,
    ]);
    let read = worst(&stalled_run(&sim.url, "read"), &log);
    eprintln!(
        "read clock: worst TTFT error {:.3} ms, worst gap error {:.3} ms",
        read.ttft, read.gap
    );
    assert!(
        read.gap >= 10.0,
        "the stalls did not hit the stream: worst gap error {:.3} ms",
        read.gap
    );
    // A busy machine can make the simulator itself late between its stamp and its write;
    // that is the same for any client, so a miss gets two more runs.
    let mut misses = Vec::new();
    for _ in 0..3 {
        let k = worst(&stalled_run(&sim.url, "kernel"), &log);
        eprintln!(
            "kernel clock: TTFT error {:.3}..{:.3} ms, worst gap error {:.3} ms",
            k.lowest_ttft, k.ttft, k.gap
        );
        // Never before the server sent it (two clocks of one machine, rounding aside).
        assert!(k.lowest_ttft >= -0.5, "TTFT {:.3} ms early", k.lowest_ttft);
        if k.ttft <= 3.0 && k.gap <= 3.0 {
            return;
        }
        misses.push(format!(
            "TTFT error {:.3} ms, gap error {:.3} ms",
            k.ttft, k.gap
        ));
    }
    panic!("three stalled runs missed the truth: {misses:#?}");
}
