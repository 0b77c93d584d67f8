//! A burst of new connections: each request is timed from its own send, against the
//! simulator's send log from when the request reached its socket (the kernel's timestamp).

use llmbench::measure::record::Outcome;

use crate::common::*;

/// Per measured record: client TTFT − what the simulator took from the request reaching its
/// socket to its first send. Sorted.
fn errors_from_socket(r: &RunOut, log: &std::path::Path) -> Result<Vec<f64>, String> {
    let mut server = std::collections::HashMap::new();
    for (id, sent) in read_send_log(log) {
        // Every request carries the kernel's receive timestamp.
        let waited = sent
            .waited_ms
            .ok_or_else(|| format!("no waited_ms for {id}"))?;
        server.insert(id, waited + sent.sends_ms[0]);
    }
    let mut errs: Vec<f64> = r
        .records
        .iter()
        .map(|x| x.ttft_ms().unwrap() - server[x.request_id.as_ref().unwrap()])
        .collect();
    errs.sort_by(f64::total_cmp);
    Ok(errs)
}

/// A closed loop's first turn opens all its connections at once. A request's TTFT must hold
/// neither the client's time opening the other connections (a connect that waits for the
/// reactor lets every other request connect first: 300 connects are ~20 ms on one core) nor
/// its own first token read late while the others are still starting (the first tokens come
/// back 5 ms after each send, while the burst goes on).
#[test]
fn a_burst_of_new_connections_times_each_request_from_its_own_send() {
    let _serial = serial();
    let dir = TempDir::new("burst");
    let log = dir.path("sends.jsonl");
    let log_s = log.to_string_lossy().into_owned();
    let sim = ServeChild::start(&[
        "--ttft-ms",
        "5",
        "--itl-ms",
        "5",
        "--tokens",
        "4",
        "--send-log",
        &log_s,
    ]);
    let r = run(&[
        &sim.url,
        "--backend",
        "openai-completions",
        "-n",
        "300",
        "-c",
        "300",
        "--request-id-header",
        "X-Request-Id",
    ]);
    assert!(r.output.status.success(), "{}", r.stderr());
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::Succeeded), 300, "{:?}", sc.errors);
    timing_within_five_runs(&r, |r| {
        let e = errors_from_socket(r, &log)?;
        let (p50, p90, max) = (e[e.len() / 2], e[e.len() * 9 / 10], e[e.len() - 1]);
        eprintln!(
            "TTFT error from socket arrival: p50 {p50:.3} p75 {:.3} p90 {p90:.3} max {max:.3} ms",
            e[e.len() * 3 / 4]
        );
        // Never below what the server took (two clocks of one machine, rounding aside).
        if e[0] < -0.5 {
            return Err(format!("TTFT {:.3} ms below the server's", e[0]));
        }
        if p50 > 1.0 || p90 > 5.0 {
            return Err(format!(
                "TTFT error from socket arrival p50 {p50:.3} ms, p90 {p90:.3} ms"
            ));
        }
        Ok(())
    });
}
