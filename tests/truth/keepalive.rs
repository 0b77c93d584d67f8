//! Kept-alive connections that the server closes after each response while advertising
//! keep-alive, as llama.cpp's `llama-server` does: no request is lost, and none is hidden.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use llmbench::measure::record::Outcome;

use crate::common::*;

/// A streaming chat server whose every connection closes after one response (`close`: see
/// [`Step::CloseAfter`]).
fn closing_server(close: Option<Duration>) -> ScriptServer {
    ScriptServer::start(Arc::new(move |_| {
        let mut s = openai_stream(2, 1, 4, 5);
        s.push(Step::CloseAfter(close));
        s
    }))
}

/// Concurrencies, each with the direct HTTP/1.1 client (the default for http://) and reqwest.
const CASES: [(&str, &[(&str, &str)]); 4] = [
    ("1", &[]),
    ("4", &[]),
    ("1", &[("LLMBENCH_HTTP_CLIENT", "reqwest")]),
    ("4", &[("LLMBENCH_HTTP_CLIENT", "reqwest")]),
];

#[test]
fn requests_on_a_closed_kept_alive_connection_are_resent_at_once_on_a_fresh_one() {
    let _serial = serial();
    for (c, env) in CASES {
        // Each connection dies with the next request on it unanswered: every request that
        // reuses a connection goes into one the server is closing.
        let srv = closing_server(None);
        let r = run_env("run", env, &[&srv.url, "-n", "24", "-c", c]);
        check_accounting(&r);
        let sc = &r.result().scenarios[0];
        assert_eq!(
            sc.outcomes.get(Outcome::Succeeded),
            24,
            "c={c} {env:?}: {:?}",
            sc.errors
        );
        assert_eq!(sc.outcomes.retried_attempts, 0, "not a --retries retry");
        let resent: Vec<_> = r
            .records
            .iter()
            .filter(|x| x.stale_connection_resent)
            .collect();
        // At c=1 every other request reuses the connection the previous one opened.
        assert!(resent.len() >= 6, "c={c} {env:?}: {} resent", resent.len());
        // The server answered each request once: the resends are the only extra sends.
        assert_eq!(srv.requests.load(std::sync::atomic::Ordering::SeqCst), 24);
        for x in &resent {
            assert_eq!(x.attempt, 1);
            assert!(x.ttft_ms().unwrap() >= 1.5, "TTFT measured from the resend");
        }
    }
}

#[test]
fn a_server_closing_just_after_each_response_loses_no_request() {
    let _serial = serial();
    // llama-server closes 20-90 µs after each streamed response.
    for (c, env) in CASES {
        let srv = closing_server(Some(Duration::from_micros(50)));
        let r = run_env("run", env, &[&srv.url, "-n", "40", "-c", c]);
        check_accounting(&r);
        let sc = &r.result().scenarios[0];
        assert_eq!(
            sc.outcomes.get(Outcome::Succeeded),
            40,
            "c={c} {env:?}: {:?}",
            sc.errors
        );
    }
}

#[test]
fn no_keepalive_opens_a_connection_per_request() {
    let _serial = serial();
    let srv = closing_server(None);
    let r = run(&[&srv.url, "-n", "12", "-c", "2", "--no-keepalive"]);
    check_accounting(&r);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::Succeeded), 12, "{:?}", sc.errors);
    assert!(r.records.iter().all(|x| !x.stale_connection_resent));
}

#[test]
fn a_fresh_connection_closed_before_any_response_stays_a_transport_error() {
    let _serial = serial();
    // Reads each request and closes without a word, on every connection: nothing is resent.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 65536];
            let _ = s.read(&mut buf);
            if buf.starts_with(b"GET ") {
                let body = r#"{"object":"list","data":[{"id":"scripted"}]}"#;
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        }
    });
    let r = run(&[&url, "-n", "3", "-c", "1"]);
    check_accounting(&r);
    let sc = &r.result().scenarios[0];
    assert_eq!(
        sc.outcomes.get(Outcome::TransportError),
        3,
        "{:?}",
        sc.errors
    );
    assert!(r.records.iter().all(|x| !x.stale_connection_resent));
}
