//! Fault injection: every way a server can fail is counted as exactly one outcome, outcomes sum
//! to scheduled, and failures never enter the success percentiles.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use llmbench::measure::record::{Outcome, TokenSource};

use crate::common::*;

/// GET a JSON document from a server with a raw TCP request.
pub fn get_json(base: &str, path: &str) -> serde_json::Value {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let body = buf.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

const N: u64 = 6;

/// Runs N requests at concurrency 3 against the built-in simulator (fixed timing, 8 tokens)
/// with one fault kind on every request; checks the accounting and that every request ended
/// with `want`.
fn all_faulty(kind: &str, want: Outcome, extra: &[&str]) -> RunOut {
    let mut args = vec![
        "--ttft-ms",
        "5",
        "--itl-ms",
        "2",
        "--tokens",
        "8",
        "-n",
        "6",
        "-c",
        "3",
        "--fault",
        kind,
    ];
    args.extend_from_slice(extra);
    let r = run(&args);
    check_accounting(&r);
    let o = &r.result().scenarios[0].outcomes;
    assert_eq!(o.scheduled, N, "{kind}");
    assert_eq!(
        o.get(want),
        N,
        "{kind}: {o:?} {:?}",
        r.result().scenarios[0].errors
    );
    let code = r.output.status.code();
    if want == Outcome::Succeeded {
        assert_eq!(code, Some(0), "{kind}: {}", r.stderr());
        assert_eq!(r.result().scenarios[0].metrics.output_tokens.total, N * 8);
    } else {
        assert_eq!(
            code,
            Some(1),
            "{kind}: every request failed: {}",
            r.stderr()
        );
    }
    r
}

#[test]
fn http_faults_are_http_errors() {
    for (kind, status) in [
        ("http-429", 429),
        ("http-429-retry-after", 429),
        ("http-500", 500),
        ("http-503", 503),
        ("http-401", 401),
    ] {
        let r = all_faulty(kind, Outcome::HttpError, &[]);
        assert!(r.records.iter().all(|x| x.http_status == Some(status)));
        let err = &r.result().scenarios[0].errors[0].message;
        assert!(
            err.contains(&status.to_string()) && err.contains("simulated fault"),
            "{err}"
        );
        let ea = r.result().scenarios[0].metrics.error_adjusted.unwrap();
        assert_eq!((ea.success_rate, ea.e2e_ms.p50), (0.0, None));
    }
}

#[test]
fn in_band_errors_are_stream_errors() {
    for (kind, text) in [
        ("error-event", "simulated server error"),
        ("error-string", "simulated generation error"),
        ("malformed", "malformed event"),
    ] {
        let r = all_faulty(kind, Outcome::StreamError, &[]);
        let err = &r.result().scenarios[0].errors[0].message;
        assert!(err.contains(text), "{kind}: {err}");
        // The error came after 3 tokens: they were read, yet count for nothing.
        assert!(r.records.iter().all(|x| x.chunk_times_ms.len() == 3));
    }
}

#[test]
fn broken_endings_are_counted() {
    all_faulty("empty", Outcome::Empty, &[]);
    let r = all_faulty("no-done", Outcome::Truncated, &[]);
    assert!(
        r.records[0]
            .error
            .as_deref()
            .unwrap()
            .contains("end marker")
    );
    let r = all_faulty("reset", Outcome::Truncated, &["--fault-after-tokens", "3"]);
    assert!(r.records.iter().all(|x| x.chunk_times_ms.len() == 3));
    // A reset before any output is a transport error.
    all_faulty(
        "reset",
        Outcome::TransportError,
        &["--fault-after-tokens", "0"],
    );
}

#[test]
fn odd_but_valid_streams_succeed_with_exact_tokens() {
    for kind in [
        "double-done",
        "late-usage",
        "crlf",
        "cr",
        "pings",
        "multiline",
        "split",
        "packed",
        "invalid-utf8",
        "big-line",
        "empty-choices",
        "multi-token",
    ] {
        let r = all_faulty(kind, Outcome::Succeeded, &[]);
        for x in &r.records {
            assert_eq!(x.output_tokens, 8, "{kind}");
            assert_eq!(
                x.output_tokens_source,
                Some(TokenSource::ServerUsage),
                "{kind}"
            );
            let chunks = if kind == "multi-token" { 3 } else { 8 };
            assert_eq!(x.chunk_times_ms.len(), chunks, "{kind}: content events");
        }
    }
    // Without a usage chunk, tokens are counted from content chunks.
    let r = all_faulty("no-usage", Outcome::Succeeded, &[]);
    assert!(
        r.records
            .iter()
            .all(|x| x.output_tokens_source == Some(TokenSource::Chunks))
    );
}

#[test]
fn stalls_end_as_timeouts_without_hanging_the_run() {
    let t = Instant::now();
    let r = all_faulty(
        "stall-headers",
        Outcome::Timeout,
        &["--fault-stall", "5s", "--request-timeout", "300ms"],
    );
    assert!(
        r.records[0]
            .error
            .as_deref()
            .unwrap()
            .contains("request timeout")
    );
    let r = all_faulty(
        "stall-mid",
        Outcome::Timeout,
        &["--fault-stall", "5s", "--idle-timeout", "300ms"],
    );
    assert!(
        r.records[0]
            .error
            .as_deref()
            .unwrap()
            .contains("idle timeout")
    );
    assert!(r.records.iter().all(|x| x.chunk_times_ms.len() == 3));
    // Each timed-out request took about 300 ms, not the 5 s stall.
    for x in &r.records {
        let e2e = x.e2e_ms().unwrap();
        assert!((290.0..2000.0).contains(&e2e), "e2e {e2e}");
    }
    // A trickle keeps the idle timer happy but not the total one.
    let r = all_faulty(
        "trickle",
        Outcome::Timeout,
        &[
            "--fault-trickle-ms",
            "1",
            "--request-timeout",
            "250ms",
            "--idle-timeout",
            "200ms",
        ],
    );
    assert!(
        r.records[0]
            .error
            .as_deref()
            .unwrap()
            .contains("request timeout")
    );
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
}

#[test]
fn a_connect_that_hangs_ends_as_a_timeout() {
    // A listener with a zero backlog that never accepts: once its queue is full the kernel
    // drops further SYNs, so a new connection hangs in connect() (the offline stand-in for an
    // unreachable host).
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(async { sock.listen(0) }).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    loop {
        let s = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200));
        match s {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
        assert!(held.len() < 16, "the listener's queue never filled");
    }
    let url = format!("http://{addr}");
    // Without a model name the first contact is the model list: a clear error, fast.
    let t = Instant::now();
    let r = run(&[&url, "-n", "3", "--connect-timeout", "300ms"]);
    assert_eq!(r.output.status.code(), Some(2), "{}", r.stderr());
    assert!(r.stderr().contains("cannot reach"), "{}", r.stderr());
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    // With backend and model given nothing is asked first: each request times out on its own.
    let t = Instant::now();
    let r = run(&[
        &url,
        "--backend",
        "openai-completions",
        "--model",
        "m",
        "-n",
        "3",
        "-c",
        "3",
        "--connect-timeout",
        "300ms",
    ]);
    let elapsed = t.elapsed();
    assert_eq!(r.records.len(), 3, "{}", r.stderr());
    for x in &r.records {
        assert_eq!(x.outcome(), Outcome::Timeout, "{:?}", x.error);
        let e = x.error.as_deref().unwrap();
        assert!(e.to_lowercase().contains("connect"), "{e}");
        let e2e = x.e2e_ms().unwrap();
        assert!((290.0..3000.0).contains(&e2e), "e2e {e2e}");
    }
    assert_eq!(r.output.status.code(), Some(1), "every request failed");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    drop(listener);
}

#[test]
fn a_slow_trickle_within_the_limits_succeeds() {
    let r = run(&[
        "--ttft-ms",
        "1",
        "--itl-ms",
        "1",
        "--tokens",
        "2",
        "-n",
        "2",
        "-c",
        "2",
        "--backend",
        "openai-completions",
        "--fault",
        "trickle",
        "--fault-trickle-ms",
        "0.5",
        "--idle-timeout",
        "2s",
    ]);
    check_accounting(&r);
    assert_eq!(r.result().scenarios[0].outcomes.get(Outcome::Succeeded), 2);
}

#[test]
fn mixed_faults_match_what_the_server_injected() {
    // Plain http:// goes through the direct HTTP/1.1 client; reqwest (TLS, proxies) must file
    // every fault the same way.
    for env in [&[][..], &[("LLMBENCH_HTTP_CLIENT", "reqwest")][..]] {
        mixed_faults(env);
    }
}

fn mixed_faults(env: &[(&str, &str)]) {
    let sim = ServeChild::start(&[
        "--ttft-ms",
        "3",
        "--itl-ms",
        "1",
        "--tokens",
        "6",
        "--fault",
        "http-500,reset,no-done,error-event,empty,crlf",
        "--fault-rate",
        "0.5",
        "--sim-seed",
        "11",
    ]);
    let r = run_env("run", env, &[&sim.url, "-n", "200", "-c", "8"]);
    check_accounting(&r);
    let rep = get_json(&sim.url, "/sim/faults");
    assert_eq!(rep["requests"], 200);
    let inj = |k: &str| rep["injected"][k].as_u64().unwrap_or(0);
    let o = &r.result().scenarios[0].outcomes;
    assert_eq!(o.get(Outcome::HttpError), inj("http-500"));
    assert_eq!(o.get(Outcome::Truncated), inj("reset") + inj("no-done"));
    assert_eq!(o.get(Outcome::StreamError), inj("error-event"));
    assert_eq!(o.get(Outcome::Empty), inj("empty"));
    let failed: u64 = ["http-500", "reset", "no-done", "error-event", "empty"]
        .iter()
        .map(|k| inj(k))
        .sum();
    assert_eq!(o.get(Outcome::Succeeded), 200 - failed);
    // About half the requests got a fault (seeded: the same every run).
    let all = failed + inj("crlf");
    assert!((60..140).contains(&all), "{env:?}: {rep}");
    assert!(failed > 0 && inj("crlf") > 0);
    assert_eq!(r.output.status.code(), Some(0));
}

#[test]
fn scripted_framing_oddities_succeed() {
    // The same oddities from an independent raw-TCP server: CRLF, bare CR, comments, event/id
    // fields, multi-line JSON, UTF-8 split across writes, several events in one write.
    let script: Script = Arc::new(|_| {
        let mut s = vec![Step::KeepAlive(200, "text/event-stream")];
        let body: &[u8] = b": ping\r\n\r\nevent: message\r\nid: 1\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"h\xc3\xa9\"}}]}\r\rdata: {\"choices\":\r\ndata: [{\"delta\":{\"content\":\" \xe2\x82\xac\"}}]}\n\ndata: {\"choices\":[]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\ndata: [DONE]\n\n";
        // Cut inside the é (after its first byte), inside the €, and nowhere else.
        let cut1 = body.windows(2).position(|w| w == b"\xc3\xa9").unwrap() + 1;
        let cut2 = body.windows(3).position(|w| w == b"\xe2\x82\xac").unwrap() + 2;
        s.push(Step::Write(body[..cut1].to_vec()));
        s.push(Step::At(Duration::from_millis(5)));
        s.push(Step::Write(body[cut1..cut2].to_vec()));
        s.push(Step::At(Duration::from_millis(10)));
        s.push(Step::Write(body[cut2..].to_vec()));
        s
    });
    let srv = ScriptServer::start(script);
    let r = run(&[&srv.url, "-n", "4", "-c", "2"]);
    check_accounting(&r);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::Succeeded), 4, "{:?}", sc.errors);
    assert_eq!(sc.metrics.output_tokens.total, 16);
    // Content events: "hé", " €", and "a" + "b" (which arrived in one read) — 4 chunks.
    assert!(r.records.iter().all(|x| x.chunk_times_ms.len() == 4));
}

#[test]
fn retries_are_off_by_default_and_recorded_when_on() {
    let sim = ServeChild::start(&[
        "--ttft-ms",
        "2",
        "--itl-ms",
        "1",
        "--tokens",
        "4",
        "--fault",
        "http-503",
    ]);
    let r = run(&[&sim.url, "-n", "5", "-c", "1"]);
    check_accounting(&r);
    assert_eq!(
        get_json(&sim.url, "/sim/faults")["requests"],
        5,
        "no hidden retry"
    );
    assert_eq!(r.result().scenarios[0].outcomes.retried_attempts, 0);

    // --retries 2: three attempts per request, every one in the records, the last one counted.
    let t = Instant::now();
    let r = run(&[
        &sim.url,
        "-n",
        "5",
        "-c",
        "1",
        "--retries",
        "2",
        "--retry-max-wait",
        "20ms",
    ]);
    check_accounting(&r);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "Retry-After: 1 capped"
    );
    assert_eq!(get_json(&sim.url, "/sim/faults")["requests"], 5 + 15);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::HttpError), 5);
    assert_eq!(sc.outcomes.retried_attempts, 10);
    assert_eq!(r.records.len(), 15);
    for id in 0..5 {
        let mut attempts: Vec<(u32, bool)> = r
            .records
            .iter()
            .filter(|x| x.id == id)
            .map(|x| (x.attempt, x.retried))
            .collect();
        attempts.sort();
        assert_eq!(attempts, vec![(1, true), (2, true), (3, false)]);
        let last = r.records.iter().find(|x| x.id == id && !x.retried).unwrap();
        let first = r
            .records
            .iter()
            .find(|x| x.id == id && x.attempt == 1)
            .unwrap();
        assert_eq!(last.first_sent_at_ms, first.sent_at_ms);
        assert!(
            last.queue_ms().unwrap() < 5.0,
            "queue time excludes retries"
        );
    }
}

#[test]
fn retried_requests_can_succeed() {
    let sim = ServeChild::start(&[
        "--ttft-ms",
        "2",
        "--itl-ms",
        "1",
        "--tokens",
        "4",
        "--fault",
        "http-429,reset",
        "--fault-after-tokens",
        "0",
        "--fault-rate",
        "0.5",
        "--sim-seed",
        "3",
    ]);
    let r = run(&[
        &sim.url,
        "-n",
        "40",
        "-c",
        "4",
        "--retries",
        "5",
        "--retry-max-wait",
        "5ms",
    ]);
    check_accounting(&r);
    let sc = &r.result().scenarios[0];
    let rep = get_json(&sim.url, "/sim/faults");
    let injected = rep["injected"]["http-429"].as_u64().unwrap_or(0)
        + rep["injected"]["reset"].as_u64().unwrap_or(0);
    // Every injected fault was an attempt that failed and was retried (or was a last attempt).
    let failed_final = sc.outcomes.failed();
    assert_eq!(
        sc.outcomes.retried_attempts + failed_final,
        injected,
        "{rep}"
    );
    assert_eq!(
        rep["requests"].as_u64().unwrap(),
        40 + sc.outcomes.retried_attempts
    );
    assert!(sc.outcomes.retried_attempts > 0);
    assert_eq!(r.records.len() as u64, rep["requests"].as_u64().unwrap());
}

#[test]
fn the_console_says_why_requests_failed() {
    // Every other request: the server's own message; the rest a second message.
    let srv = ScriptServer::start(Arc::new(|i| {
        let body = if i % 3 == 0 {
            r#"{"error":{"message":"The model `my-model` does not exist","type":"NotFoundError"}}"#
        } else {
            r#"{"error":"overloaded"}"#
        };
        vec![
            Step::Head(if i % 3 == 0 { 404 } else { 503 }, "application/json"),
            Step::Write(body.as_bytes().to_vec()),
        ]
    }));
    let r = run(&[
        &srv.url,
        "-n",
        "9",
        "--backend",
        "openai-chat",
        "--model",
        "my-model",
    ]);
    assert_eq!(r.output.status.code(), Some(1), "{}", r.stderr());
    let out = r.stdout();
    assert!(
        out.contains("6 × HTTP 503") && out.contains("overloaded"),
        "{out}"
    );
    assert!(
        out.contains("3 × HTTP 404") && out.contains("The model `my-model` does not exist"),
        "{out}"
    );
    let err = r.stderr();
    assert!(
        err.contains("every request failed; the first reason: HTTP 503"),
        "{err}"
    );
}
