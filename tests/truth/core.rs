//! The measurement core against known truth: the simulator's fixed mode and an independent
//! scripted server, closed and open loop, and one outcome per request.

use std::sync::Arc;
use std::time::Duration;

use llmbench::measure::record::Outcome;
use llmbench::results::file::RunStatus;

use crate::common::*;

fn medians(r: &RunOut) -> (f64, f64) {
    let m = &r.result().scenarios[0].metrics;
    (m.ttft_ms.unwrap().p50, m.tpot_ms.unwrap().p50)
}

fn check_truth(r: &RunOut, ttft: f64, tpot: f64, requests: u64, tokens: u64) {
    let res = r.result();
    assert!(r.output.status.success(), "{}", r.stderr());
    let sc = &res.scenarios[0];
    assert_eq!(sc.outcomes.scheduled, requests);
    assert_eq!(
        sc.outcomes.get(Outcome::Succeeded),
        requests,
        "{:?}",
        sc.errors
    );
    assert_eq!(sc.metrics.output_tokens.total, requests * tokens);
    timing_within_five_runs(r, |r| truth_timing(r, ttft, tpot));
    assert_eq!(
        r.records.iter().filter(|r| !r.warmup).count() as u64,
        requests
    );
}

/// TTFT and TPOT medians against the configured truth.
fn truth_timing(r: &RunOut, ttft: f64, tpot: f64) -> Result<(), String> {
    let case = r.args.join(" ");
    let (got_ttft, got_tpot) = medians(r);
    eprintln!("{case}: median TTFT {got_ttft:.3} TPOT {got_tpot:.3}");
    // A token cannot be seen before it is sent: never below the truth. Above it, 2.5 ms one
    // at a time (the simulator alone is ~1 ms late on loopback); with 64 requests at once on a
    // 2-core machine the server itself reads a burst of 64 requests late, by 3-4 ms (seen in
    // CI: 53.5 ms against 50), which the client rightly counts, so the bound there is 6 ms.
    // TPOT, paced by the server's own timer, keeps 0.5 ms.
    let above = if r.args.iter().any(|a| a == "64") {
        6.0
    } else {
        2.5
    };
    if !(got_ttft >= ttft - 0.5 && got_ttft - ttft <= above) {
        return Err(format!(
            "{case}: median TTFT {got_ttft:.3} ms, truth {ttft} ms (allowed +{above})"
        ));
    }
    if (got_tpot - tpot).abs() > 0.5 {
        return Err(format!(
            "{case}: median TPOT {got_tpot:.3} ms, truth {tpot} ms"
        ));
    }
    Ok(())
}

/// The median TTFT the simulator itself delivered to this run's measured requests, from its
/// send log: from the request's arrival to the hand-over of the first token's chunk.
fn delivered_ttft(log: &std::path::Path, r: &RunOut, chat: bool) -> f64 {
    // Chat's role chunk goes out just before the first token, as its own write.
    let first = if chat { 1 } else { 0 };
    let sends: std::collections::HashMap<String, f64> = read_send_log(log)
        .into_iter()
        .filter_map(|(id, sent)| Some((id, *sent.sends_ms.get(first)?)))
        .collect();
    let mut d: Vec<f64> = r
        .records
        .iter()
        .filter(|x| !x.warmup)
        .map(|x| {
            let id = x.request_id.as_ref().expect("request id");
            *sends
                .get(id)
                .unwrap_or_else(|| panic!("{id} not in the send log"))
        })
        .collect();
    d.sort_by(f64::total_cmp);
    d[d.len() / 2]
}

/// At 64 requests at once on a 2-core machine the simulator itself falls behind its own
/// schedule (its timers wake late; seen: 53-57 ms for a 50 ms TTFT), and the client is right
/// to count that. So the truth the client is held to is what the server delivered, from its
/// send log: the median TTFT within 4 ms above it (never below), the TPOT within 0.5 ms of
/// the configured truth, and the delivered TTFT itself within 10 ms of the configuration.
fn check_delivered(r: &RunOut, log: &std::path::Path, chat: bool, requests: u64) {
    let case = r.args.join(" ");
    assert!(r.output.status.success(), "{}", r.stderr());
    let sc = &r.result().scenarios[0];
    assert_eq!(
        sc.outcomes.get(Outcome::Succeeded),
        requests,
        "{:?}",
        sc.errors
    );
    assert_eq!(sc.metrics.output_tokens.total, requests * 12);
    timing_within_five_runs(r, |r| {
        let (got_ttft, got_tpot) = medians(r);
        let delivered = delivered_ttft(log, r, chat);
        eprintln!(
            "{case}: median TTFT {got_ttft:.3} (server delivered {delivered:.3}) TPOT {got_tpot:.3}"
        );
        // 64 first tokens arrive at once: on 2 shared cores the client reads the last of the
        // burst a little later (seen: +2.6 to +3.1 ms at the median on a busy machine); the c=1
        // cases hold the client to 2.5 ms.
        if !(got_ttft >= delivered - 0.5 && got_ttft - delivered <= 4.0) {
            return Err(format!(
                "{case}: median TTFT {got_ttft:.3} ms, the server delivered {delivered:.3} ms"
            ));
        }
        if !(50.0..60.0).contains(&delivered) {
            return Err(format!(
                "{case}: the simulator delivered {delivered:.3} ms for 50 ms"
            ));
        }
        if (got_tpot - 20.0).abs() > 0.5 {
            return Err(format!("{case}: median TPOT {got_tpot:.3} ms, truth 20 ms"));
        }
        Ok(())
    });
}

#[test]
fn simulator_fixed_mode_truth_at_concurrency_1_and_64() {
    let _serial = serial();
    let dir = TempDir::new("truth");
    let log = dir.path("sends.jsonl");
    let log_s = log.to_string_lossy().into_owned();
    let sim = ServeChild::start(&[
        "--ttft-ms",
        "50",
        "--itl-ms",
        "20",
        "--tokens",
        "12",
        "--send-log",
        &log_s,
    ]);
    let r = run(&[&sim.url, "--requests", "12", "--concurrency", "1"]);
    check_truth(&r, 50.0, 20.0, 12, 12);
    let id = ["--request-id-header", "X-Request-Id"];
    let r = run(&[
        &[
            sim.url.as_str(),
            "--requests",
            "192",
            "--concurrency",
            "64",
            // The first round's 64 new connections are the client's, not the server's.
            "--warmup",
            "64",
        ][..],
        &id,
    ]
    .concat());
    check_delivered(&r, &log, true, 192);
    // Completions protocol, same truth.
    let r = run(&[
        &[
            sim.url.as_str(),
            "--backend",
            "openai-completions",
            "--requests",
            "64",
            "--concurrency",
            "64",
            // Without a warm-up, the simulator reads a burst of 64 new connections over a few
            // milliseconds, and the delivered TTFT here counts from its handler, not its socket
            // (docs/architecture.md; tests/truth/connections.rs holds the burst itself).
            "--warmup",
            "64",
        ][..],
        &id,
    ]
    .concat());
    check_delivered(&r, &log, false, 64);
}

#[test]
fn independent_server_truth_at_concurrency_1_and_64() {
    let _serial = serial();
    let srv = ScriptServer::start(Arc::new(|_| openai_stream(40, 15, 10, 21)));
    let r = run(&[&srv.url, "--requests", "10", "--concurrency", "1"]);
    check_truth(&r, 40.0, 15.0, 10, 10);
    assert_eq!(r.result().scenarios[0].metrics.input_tokens.total, 210);
    let r = run(&[&srv.url, "--requests", "256", "--concurrency", "64"]);
    check_truth(&r, 40.0, 15.0, 256, 10);
    let body = srv.bodies.lock().unwrap()[0].clone();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["model"], "scripted", "model taken from /v1/models");
    assert_eq!(v["stream"], true);
    assert_eq!(v["stream_options"]["include_usage"], true);
}

#[test]
fn open_loop_keeps_its_rate_when_requests_are_slow() {
    let _serial = serial();
    // Each request takes 2 s (100 + 19 × 100 ms); 20 requests/s must still go out on time.
    let sim = ServeChild::start(&["--ttft-ms", "100", "--itl-ms", "100", "--tokens", "20"]);
    let r = run(&[
        &sim.url,
        "--rate",
        "20",
        "--arrival",
        "constant",
        "--requests",
        "60",
    ]);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::Succeeded), 60, "{:?}", sc.errors);
    // About 40 requests are in flight at once. A loop that waited for answers would send at
    // half the rate or less and run seconds late, so the margins below leave room for a busy
    // machine (seen on CI: lateness p99 5.3 ms) while still catching that.
    timing_within_five_runs(&r, |r| {
        let m = &r.result().scenarios[0].metrics;
        let rate = m.sent_requests_per_s.unwrap();
        if (rate - 20.0).abs() / 20.0 >= 0.05 {
            return Err(format!("achieved {rate:.2}/s"));
        }
        let e2e = m.e2e_ms.unwrap().p50;
        if (e2e - 2000.0).abs() >= 20.0 {
            return Err(format!("e2e p50 {e2e:.2} ms"));
        }
        let q = m.queue_ms.unwrap();
        if q.p99 >= 15.0 {
            return Err(format!("schedule lateness p99 {:.2} ms", q.p99));
        }
        Ok(())
    });
}

#[test]
fn poisson_schedule_with_a_seed_is_reproducible() {
    let _serial = serial();
    let sim = ServeChild::start(&["--ttft-ms", "1", "--itl-ms", "1", "--tokens", "2"]);
    let offsets = |seed: &str| -> Vec<f64> {
        let r = run(&[
            &sim.url,
            "--rate",
            "100",
            "--arrival",
            "poisson",
            "--seed",
            seed,
            "--requests",
            "40",
        ]);
        let mut recs = r.records.clone();
        recs.sort_by_key(|r| r.id);
        let t0 = recs[0].scheduled_at_ms;
        recs.iter().map(|r| r.scheduled_at_ms - t0).collect()
    };
    let (a, b, c) = (offsets("7"), offsets("7"), offsets("8"));
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-6, "{x} vs {y}");
    }
    assert!(a.iter().zip(&c).any(|(x, y)| (x - y).abs() > 1.0));
}

#[test]
fn every_request_gets_exactly_one_outcome() {
    let _serial = serial();
    // 0: fine; 1: HTTP 500; 2: cut mid-stream; 3: in-band error; 4: no output; 5: stall.
    let script: Script = Arc::new(|i| match i % 6 {
        0 => openai_stream(5, 1, 3, 4),
        1 => vec![
            Step::Head(500, "application/json"),
            Step::Write(br#"{"error":{"message":"overloaded"}}"#.to_vec()),
        ],
        2 => {
            let mut s = openai_stream(5, 1, 3, 4);
            s.truncate(5);
            s
        }
        3 => vec![
            Step::Head(200, "text/event-stream"),
            Step::Write(b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n".to_vec()),
            Step::Write(b"data: {\"error\":{\"message\":\"model crashed\"}}\n\n".to_vec()),
        ],
        4 => vec![
            Step::Head(200, "text/event-stream"),
            Step::Write(
                b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\ndata: [DONE]\n\n"
                    .to_vec(),
            ),
        ],
        _ => vec![
            Step::Head(200, "text/event-stream"),
            Step::At(Duration::from_secs(5)),
        ],
    });
    let srv = ScriptServer::start(script);
    let r = run(&[
        &srv.url,
        "--requests",
        "12",
        "--concurrency",
        "6",
        "--idle-timeout",
        "500ms",
    ]);
    let sc = &r.result().scenarios[0];
    let o = &sc.outcomes;
    assert_eq!(o.scheduled, 12);
    let want = [
        (Outcome::Succeeded, 2),
        (Outcome::HttpError, 2),
        (Outcome::Truncated, 2),
        (Outcome::StreamError, 2),
        (Outcome::Empty, 2),
        (Outcome::Timeout, 2),
    ];
    for (oc, n) in want {
        assert_eq!(o.get(oc), n, "{oc:?}: {:?}", sc.errors);
    }
    assert_eq!(
        sc.metrics.ttft_ms.unwrap().count,
        2,
        "only successes are timed"
    );
    let e = r
        .records
        .iter()
        .find(|r| r.outcome == Some(Outcome::HttpError))
        .unwrap();
    assert_eq!(e.http_status, Some(500));
    assert!(e.error.as_deref().unwrap().contains("overloaded"));
}

#[test]
fn unreachable_server_fails_fast_with_a_clear_message() {
    let _serial = serial();
    // Bind then drop to get a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = std::time::Instant::now();
    let r = run(&[&format!("http://127.0.0.1:{port}"), "--requests", "5"]);
    assert!(!r.output.status.success());
    assert!(r.stderr().contains("cannot reach"), "{}", r.stderr());
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(r.result.is_none());
}

#[test]
fn no_url_benchmarks_the_builtin_simulator() {
    let _serial = serial();
    let r = run(&[
        "--requests",
        "8",
        "--concurrency",
        "4",
        "--max-tokens",
        "16",
    ]);
    assert!(r.output.status.success(), "{}", r.stderr());
    assert!(r.stderr().contains("built-in simulator"), "{}", r.stderr());
    let res = r.result();
    assert!(res.target.simulated);
    assert_eq!(res.status, RunStatus::Completed);
    assert_eq!(res.schema_version, 1);
    let sc = &res.scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::Succeeded), 8);
    assert_eq!(sc.metrics.output_tokens.total, 8 * 16);
    assert!(r.stdout().contains("TTFT"), "summary table printed");
}

#[test]
fn warmup_requests_are_recorded_but_not_measured() {
    let _serial = serial();
    let r = run(&["--requests", "4", "--warmup", "2", "--max-tokens", "4"]);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.scheduled, 4);
    assert_eq!(r.records.iter().filter(|r| r.warmup).count(), 2);
    assert_eq!(r.records.len(), 6);
}

#[test]
fn bad_flags_are_named_before_any_request() {
    let _serial = serial();
    for (args, needle) in [
        (vec!["--concurrency", "0"], "--concurrency"),
        (vec!["--rate=-1"], "--rate"),
        (vec!["--backend", "nope"], "--backend"),
        (vec!["--rate", "5", "--concurrency", "2"], "exclude"),
        (vec!["not a url"], "URL"),
    ] {
        let r = run(&args);
        assert!(!r.output.status.success(), "{args:?}");
        assert!(r.stderr().contains(needle), "{args:?}: {}", r.stderr());
    }
    let dir = TempDir::new("unwritable");
    let out = bin()
        .args(["run", "-q", "-o"])
        .arg(dir.path("missing/dir/r.json"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn a_schedule_the_client_could_not_keep_is_marked_not_trustworthy() {
    let _serial = serial();
    // One slot, a 300 ms server and 40 arrivals a second: nearly every arrival finds the slot
    // taken until the end of the run and is dropped, so the result must say the numbers do not
    // describe the offered load.
    let sim = ServeChild::start(&["--ttft-ms", "300", "--itl-ms", "1", "--tokens", "2"]);
    let r = run(&[
        &sim.url,
        "--rate",
        "40",
        "--arrival",
        "constant",
        "--duration",
        "1s",
        "--max-concurrency",
        "1",
    ]);
    let res = r.result();
    let sc = &res.scenarios[0];
    let client = sc.client.as_ref().expect("client load recorded");
    assert!(client.dropped >= 30, "{client:?}");
    assert_eq!(client.dropped, sc.outcomes.get(Outcome::Dropped));
    assert!(!client.trustworthy);
    assert!(
        sc.warnings.iter().any(|w| w.contains("dropped")),
        "{:?}",
        sc.warnings
    );
    assert!(client.cpu_s.unwrap() > 0.0);
    assert_eq!(client.schedule_lateness_ms.unwrap().count, 40);

    // Closed loop: CPU is recorded, there is no schedule to be late for.
    let r = run(&[&sim.url, "--requests", "4", "--concurrency", "2"]);
    let client = r.result().scenarios[0].client.clone().expect("client load");
    assert!(client.cpu_s.unwrap() > 0.0 && client.cores >= 1);
    assert!(client.schedule_lateness_ms.is_none() && client.dropped == 0);
}

#[test]
fn request_ids_tie_each_record_to_the_servers_send_log() {
    let _serial = serial();
    let dir = TempDir::new("sendlog");
    let log = dir.path("sends.jsonl");
    let log_s = log.to_string_lossy().into_owned();
    let sim = ServeChild::start(&[
        "--ttft-ms",
        "30",
        "--itl-ms",
        "20",
        "--tokens",
        "5",
        "--send-log",
        &log_s,
    ]);
    for backend in ["openai-completions", "openai-chat"] {
        let r = run(&[
            &sim.url,
            "--backend",
            backend,
            "-n",
            "6",
            "-c",
            "3",
            "--request-id-header",
            "X-Request-Id",
        ]);
        assert!(r.output.status.success(), "{}", r.stderr());
        let run_id = &r.result().run_id;
        let mut ids: Vec<String> = r
            .records
            .iter()
            .map(|x| x.request_id.clone().expect("request_id recorded"))
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 6, "one id per attempt");
        assert!(ids.iter().all(|i| i.starts_with(&format!("{run_id}-"))));
        // Timing against the send log: a record matched to the wrong line, or a chunk to the
        // wrong send, is off by a whole 20 ms gap. A busy machine can make the simulator
        // itself late (seen on CI: first send at 38.4 ms for 30), so a miss gets more runs.
        timing_within_five_runs(&r, |r| matches_send_log(r, &log, backend == "openai-chat"));
    }
    let bad = run(&[&sim.url, "-n", "1", "--request-id-header", "bad header"]);
    assert_eq!(bad.output.status.code(), Some(2), "{}", bad.stderr());
    assert!(
        bad.stderr().contains("--request-id-header"),
        "{}",
        bad.stderr()
    );
}

/// Each record against its line in the simulator's send log: the first token went out near
/// the configured 30 ms, and the client saw each gap close to the gap the server sent.
fn matches_send_log(r: &RunOut, log: &std::path::Path, chat: bool) -> Result<(), String> {
    let sends = read_send_log(log);
    for rec in &r.records {
        let s = &sends[rec.request_id.as_ref().unwrap()].sends_ms;
        // Five tokens, then the closing events.
        assert!(s.len() > rec.chunk_times_ms.len(), "{s:?}");
        if (s[0] - 30.0).abs() >= 8.0 {
            return Err(format!("first send not near 30 ms: {s:?}"));
        }
        let ch = &rec.chunk_times_ms;
        // Chat's role chunk goes out just before the first token, as its own write.
        let s = if chat { &s[1..] } else { &s[..] };
        for k in 1..ch.len() {
            let client = ch[k] - ch[k - 1];
            let server = s[k] - s[k - 1];
            if (client - server).abs() >= 8.0 {
                return Err(format!("client gap {client:.2} vs server gap {server:.2}"));
            }
        }
    }
    Ok(())
}
