//! One validated settings pass before any I/O (issue 14): what it refuses, what it keeps, and
//! flags honoured on every path that takes them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::common::*;
use crate::telemetry::{free_port, serve_cmd};

fn code(out: &std::process::Output) -> Option<i32> {
    out.status.code()
}

fn err(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_bad_target_leaves_the_files_it_names_untouched() {
    let dir = TempDir::new("keep");
    let rec = dir.path("records.jsonl");
    let out = dir.path("result.json");
    std::fs::write(&rec, "precious records\n").unwrap();
    std::fs::write(&out, "precious result\n").unwrap();
    let closed = format!("http://127.0.0.1:{}", free_port());
    for target in ["ftp://127.0.0.1:9", "http//typo", closed.as_str()] {
        let o = bin()
            .args(["run", target, "-n", "1", "-q", "--records"])
            .arg(&rec)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(code(&o), Some(2), "{target}: {}", err(&o));
        assert_eq!(
            std::fs::read_to_string(&rec).unwrap(),
            "precious records\n",
            "{target}: --records file changed"
        );
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "precious result\n",
            "{target}: -o file changed"
        );
    }
}

#[test]
fn outputs_that_are_not_new_files_are_refused_before_any_request() {
    let srv = ScriptServer::start(Arc::new(|_| openai_stream(1, 1, 2, 3)));
    let dir = TempDir::new("outputs");
    let data = dir.path("prompts.jsonl");
    std::fs::write(&data, "{\"prompt\": \"hello\"}\n").unwrap();
    let d = data.to_str().unwrap();
    let folder = dir.0.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["-o", "/dev/null"],
            "--output /dev/null: is not a regular file",
        ),
        (vec!["-o", folder], "is a directory"),
        (vec!["--records", folder], "is a directory"),
        (vec!["--dataset", d, "--records", d], "--records"),
        (vec!["--dataset", d, "-o", d], "-o"),
    ];
    for (args, want) in cases {
        let o = bin()
            .args(["run", &srv.url, "-n", "1", "-q"])
            .args(&args)
            .output()
            .unwrap();
        let e = err(&o);
        assert_eq!(code(&o), Some(2), "{args:?}: {e}");
        assert!(e.contains(want), "{args:?}: {e}");
    }
    assert_eq!(
        std::fs::read_to_string(&data).unwrap(),
        "{\"prompt\": \"hello\"}\n"
    );
    assert_eq!(srv.requests.load(Ordering::SeqCst), 0, "nothing sent");
}

#[test]
fn shuffle_without_a_dataset_is_refused_by_name() {
    let srv = ScriptServer::start(Arc::new(|_| openai_stream(1, 1, 2, 3)));
    for source in [
        vec!["--suite", "basic"],
        vec!["--prompt-tokens", "8"],
        vec![],
    ] {
        let o = bin()
            .args(["run", &srv.url, "-n", "3", "-q", "--shuffle"])
            .args(&source)
            .output()
            .unwrap();
        let e = err(&o);
        assert_eq!(code(&o), Some(2), "{source:?}: {e}");
        assert!(
            e.contains("--shuffle applies to --dataset"),
            "{source:?}: {e}"
        );
    }
    assert_eq!(srv.requests.load(Ordering::SeqCst), 0);
}

#[test]
fn the_chat_template_renders_every_source_of_prompts() {
    let dir = TempDir::new("template");
    let data = dir.path("prompts.jsonl");
    std::fs::write(&data, "{\"prompt\": \"from the dataset\"}\n").unwrap();
    let d = data.to_str().unwrap();
    for source in [
        vec!["--suite", "basic", "-n", "3"],
        vec!["--prompt-tokens", "8", "-n", "2"],
        vec!["--dataset", d],
        vec!["--prompt", "plain", "-n", "1"],
    ] {
        let srv = ScriptServer::start(Arc::new(|_| openai_stream(1, 1, 2, 3)));
        let r = run(&[
            &[
                srv.url.as_str(),
                "--backend",
                "openai-completions",
                "--chat-template",
                "chatml",
            ][..],
            &source[..],
        ]
        .concat());
        let bodies = srv.bodies.lock().unwrap().clone();
        assert!(!bodies.is_empty(), "{source:?}: {}", r.stderr());
        for b in &bodies {
            let v: serde_json::Value = serde_json::from_str(b).unwrap();
            let prompt = v["prompt"].as_str().unwrap_or_default();
            assert!(
                prompt.starts_with("<|im_start|>user\n")
                    && prompt.ends_with("<|im_start|>assistant\n"),
                "{source:?}: prompt not rendered: {prompt:?}"
            );
        }
        if source[0] == "--dataset" {
            assert!(bodies[0].contains("from the dataset"), "{}", bodies[0]);
        }
        let sc = &r.result().scenarios;
        assert!(
            sc.iter()
                .all(|s| s.params.json()["chat_template"] == "chatml")
        );
    }
}

#[test]
fn the_server_log_is_named_for_the_runs_own_id() {
    let dir = TempDir::new("serverlog");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let o = bin()
        .current_dir(&dir.0)
        .args([
            "run",
            &url,
            "-n",
            "2",
            "-q",
            "--server-cmd",
            &serve_cmd(port, ""),
            "-o",
            "-",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), Some(0), "{}", err(&o));
    let res: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = res["run_id"].as_str().unwrap();
    let log = dir.path(&format!("llmbench-server-{id}.log"));
    assert!(
        log.exists(),
        "no {}: {:?}",
        log.display(),
        std::fs::read_dir(&dir.0).unwrap().collect::<Vec<_>>()
    );
    assert_eq!(
        res["server"]["managed"]["log"],
        format!("llmbench-server-{id}.log")
    );
}

#[test]
fn absurd_numbers_are_refused_by_flag_before_any_request() {
    let srv = ScriptServer::start(Arc::new(|_| openai_stream(1, 1, 2, 3)));
    let max = u64::MAX.to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--rate", "1e-20"], "--rate must be between"),
        (vec!["--rate", "1e300"], "--rate must be between"),
        (
            vec!["--rate", "5", "--arrival", "gamma", "--burstiness", "1e200"],
            "--burstiness",
        ),
        (
            vec![
                "--rate",
                "5",
                "--arrival",
                "gamma",
                "--burstiness",
                "1e-200",
            ],
            "--burstiness",
        ),
        (
            vec!["--rate", "5", "--max-concurrency", &max],
            "--max-concurrency",
        ),
        (vec!["--prompt-tokens", &max], "--prompt-tokens"),
        (vec!["--max-tokens", "0"], "--max-tokens must be at least 1"),
        (
            vec!["--request-timeout", "0s"],
            "--request-timeout must be longer",
        ),
        (
            vec!["--idle-timeout", "0s"],
            "--idle-timeout must be longer",
        ),
        (vec!["-c", "0"], "--concurrency must be between"),
    ];
    for (args, want) in cases {
        let o = bin()
            .args(["run", &srv.url, "-n", "2", "-q"])
            .args(&args)
            .output()
            .unwrap();
        let e = err(&o);
        assert_eq!(code(&o), Some(2), "{args:?}: {e}");
        assert!(e.contains(want), "{args:?}: {e}");
        assert!(!e.contains("panicked"), "{args:?}: {e}");
    }
    assert_eq!(srv.requests.load(Ordering::SeqCst), 0, "nothing sent");
}

#[test]
fn a_huge_concurrency_costs_what_the_requests_need() {
    // One worker per request, not a million idle ones (2.7 GB and 10 s before).
    let r = run(&[
        "--ttft-ms",
        "1",
        "--itl-ms",
        "1",
        "--tokens",
        "2",
        "-c",
        "1000000",
        "-n",
        "4",
    ]);
    assert!(r.output.status.success(), "{}", r.stderr());
    assert_eq!(
        r.result().scenarios[0]
            .outcomes
            .get(llmbench::measure::record::Outcome::Succeeded),
        4
    );
}

#[test]
fn an_endpoint_url_nobody_listens_on_is_bad_input() {
    let port = free_port();
    for url in [
        format!("http://127.0.0.1:{port}/v1/chat/completions"),
        format!("http://127.0.0.1:{port}/generate"),
    ] {
        let o = bin().args(["run", &url, "-n", "2", "-q"]).output().unwrap();
        let e = err(&o);
        assert_eq!(code(&o), Some(2), "{url}: {e}");
        assert!(e.contains("cannot reach"), "{url}: {e}");
    }
}

#[test]
fn a_model_the_server_does_not_list_is_named_before_the_run() {
    let srv = ScriptServer::start_with_gets(
        Arc::new(|_| openai_stream(1, 1, 2, 3)),
        &[(
            "/v1/models",
            r#"{"object":"list","data":[{"id":"qwen-7b"},{"id":"llama-8b"}]}"#,
        )],
    );
    let r = run(&[&srv.url, "-n", "1", "--model", "my-model"]);
    let e = r.stderr();
    assert!(
        e.contains("does not list model \"my-model\"") && e.contains("qwen-7b, llama-8b"),
        "{e}"
    );
    let r = run(&[&srv.url, "-n", "1", "--model", "llama-8b"]);
    assert!(!r.stderr().contains("does not list"), "{}", r.stderr());
}

/// A server that records every request line and answers like a minimal OpenAI chat server.
fn recording_server() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = lines.clone();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = vec![0u8; 65536];
            let mut n = 0;
            // Read the head and, for a POST, its body (small here).
            while n < buf.len() {
                match s.read(&mut buf[n..]) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => n += k,
                }
                let text = String::from_utf8_lossy(&buf[..n]);
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if n >= end + 4 + len {
                        break;
                    }
                }
            }
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let line = text.lines().next().unwrap_or_default().to_string();
            seen.lock().unwrap().push(line.clone());
            let (ctype, body) = if line.starts_with("GET ") {
                (
                    "application/json",
                    r#"{"object":"list","data":[{"id":"m"}]}"#.to_string(),
                )
            } else {
                (
                    "text/event-stream",
                    "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n"
                        .to_string(),
                )
            };
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, lines)
}

#[test]
fn url_queries_go_on_every_request_and_their_secrets_nowhere_else() {
    // An Azure-style endpoint URL: recognised by its path, its query kept on every request.
    let (base, lines) = recording_server();
    let url = format!(
        "{base}/openai/deployments/d/chat/completions?api-version=2024-02-01&api-key=CANARY123"
    );
    let r = run(&[&url, "-n", "2", "--model", "m"]);
    assert!(r.output.status.success(), "{}", r.stderr());
    let seen = lines.lock().unwrap().clone();
    let posts: Vec<&String> = seen.iter().filter(|l| l.starts_with("POST ")).collect();
    assert_eq!(posts.len(), 2, "{seen:?}");
    assert!(
        posts.iter().all(|l| l.starts_with(
            "POST /openai/deployments/d/chat/completions?api-version=2024-02-01&api-key=CANARY123 "
        )),
        "{seen:?}"
    );
    // The key is on the wire, never in the result, the records or the console.
    let res = r.result();
    assert!(
        res.target.url.contains("api-version=2024-02-01"),
        "{}",
        res.target.url
    );
    assert!(
        res.target.url.contains("api-key=<redacted>"),
        "{}",
        res.target.url
    );
    let everything = format!(
        "{}{}{}{}",
        serde_json::to_string(res).unwrap(),
        serde_json::to_string(&r.records).unwrap(),
        r.stdout(),
        r.stderr()
    );
    assert!(!everything.contains("CANARY123"), "{everything}");

    // A base URL with a query: paths go before it.
    let (base, lines) = recording_server();
    let r = run(&[
        &format!("{base}/v1?token=CANARY456"),
        "-n",
        "1",
        "--backend",
        "openai-chat",
    ]);
    assert!(r.output.status.success(), "{}", r.stderr());
    let seen = lines.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|l| l.starts_with("POST /v1/chat/completions?token=CANARY456 ")),
        "{seen:?}"
    );
    assert!(!r.result().target.url.contains("CANARY456"));
    assert!(!r.stderr().contains("CANARY456") && !r.stdout().contains("CANARY456"));
}

#[test]
fn a_url_without_a_scheme_gets_a_suggestion() {
    let o = bin()
        .args(["run", "localhost:8000", "-n", "1"])
        .output()
        .unwrap();
    let e = err(&o);
    assert_eq!(code(&o), Some(2), "{e}");
    assert!(e.contains("did you mean http://localhost:8000"), "{e}");
}

#[test]
fn a_suite_on_ollama_does_not_blame_a_flag_nobody_gave() {
    let sim = ServeChild::start(&["--ttft-ms", "1", "--itl-ms", "1"]);
    let r = run(&[
        &sim.url,
        "--backend",
        "ollama-chat",
        "--suite",
        "basic",
        "-n",
        "3",
    ]);
    assert!(r.output.status.success(), "{}", r.stderr());
    let e = r.stderr();
    assert!(!e.contains("--ignore-eos"), "{e}");
    assert!(e.contains("no way to ignore end-of-sequence"), "{e}");
    let r = run(&[
        &sim.url,
        "--backend",
        "ollama-chat",
        "--ignore-eos",
        "-n",
        "1",
    ]);
    assert!(
        r.stderr().contains("warning: --ignore-eos"),
        "{}",
        r.stderr()
    );
}

/// The result says how chunk arrivals were timed: by the kernel's receive timestamps unless
/// `LLMBENCH_CLOCK=read`, or reqwest (which cannot), reads; any other value is refused before
/// a file is written.
#[test]
fn the_result_says_which_clock_timed_the_chunks() {
    let sim = ServeChild::start(&["--ttft-ms", "1", "--itl-ms", "1", "--tokens", "4"]);
    let clock = |env: &[(&str, &str)]| {
        let r = run_env("run", env, &[&sim.url, "-n", "2"]);
        r.result().config.json()["chunk_clock"].clone()
    };
    assert_eq!(clock(&[]), "kernel");
    assert_eq!(clock(&[("LLMBENCH_CLOCK", "read")]), "read");
    assert_eq!(clock(&[("LLMBENCH_HTTP_CLIENT", "reqwest")]), "read");
    let bad = run_env("run", &[("LLMBENCH_CLOCK", "wall")], &[&sim.url, "-n", "2"]);
    assert_eq!(code(&bad.output), Some(2), "{}", bad.stderr());
    assert!(bad.stderr().contains("LLMBENCH_CLOCK"), "{}", bad.stderr());
    assert!(bad.result.is_none() && bad.records.is_empty());
}
