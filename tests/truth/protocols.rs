//! Every protocol against known truth: the simulator's fixed mode and independent scripted
//! servers (Ollama NDJSON, TGI SSE), backend auto-detection, cache hit rates from what the
//! server says, token-count sources, and the Ollama preflight.

use std::sync::Arc;
use std::time::Duration;

use llmbench::measure::record::{Outcome, TokenSource};

use crate::common::*;

/// Checks outcomes and exact token totals, then TTFT/TPOT medians (see `timing`).
fn truth(r: &RunOut, ttft: f64, tpot: f64, requests: u64, tokens: u64) {
    let case = r.args.join(" ");
    assert!(r.output.status.success(), "{case}: {}", r.stderr());
    let sc = &r.result().scenarios[0];
    assert_eq!(
        sc.outcomes.get(Outcome::Succeeded),
        requests,
        "{case}: {:?}",
        sc.errors
    );
    assert_eq!(sc.metrics.output_tokens.total, requests * tokens, "{case}");
    // A whole reply has no time per token: TPOT and ITL are undefined (null), not 0.
    if sc.metrics.tpot_ms.is_none() {
        assert_eq!(tpot, 0.0, "{case}: no TPOT");
        assert!(sc.metrics.itl_ms.is_none(), "{case}: ITL of a whole reply");
    }
    timing_within_five_runs(r, |r| timing(r, ttft, tpot));
}

/// TTFT and TPOT medians against the truth.
fn timing(r: &RunOut, ttft: f64, tpot: f64) -> Result<(), String> {
    let case = r.args.join(" ");
    let sc = &r.result().scenarios[0];
    let got_ttft = sc.metrics.ttft_ms.unwrap().p50;
    let got_tpot = sc.metrics.tpot_ms.map_or(0.0, |d| d.p50);
    eprintln!("{case}: median TTFT {got_ttft:.3} ms, TPOT {got_tpot:.3} ms");
    // Never below the truth; above it by 2.5 ms one at a time (the simulator alone is ~1 ms
    // late on loopback; seen once in a full run: 62.1 ms against 60), plus 0.1 ms per further
    // request at once: on 2 cores a scripted server in this process answers a burst of 16 a
    // little late itself (seen: 42.0 ms against 40 at c=16).
    let c: f64 = r
        .args
        .iter()
        .position(|a| a == "-c" || a == "--concurrency")
        .and_then(|i| r.args.get(i + 1)?.parse().ok())
        .unwrap_or(1.0);
    let above = 2.5 + 0.1 * (c - 1.0);
    if !(got_ttft >= ttft - 0.5 && got_ttft - ttft <= above) {
        return Err(format!(
            "{case}: median TTFT {got_ttft:.3} ms, truth {ttft} ms (allowed +{above:.1})"
        ));
    }
    if (got_tpot - tpot).abs() > 0.5 {
        return Err(format!(
            "{case}: median TPOT {got_tpot:.3} ms, truth {tpot} ms"
        ));
    }
    Ok(())
}

fn sources(r: &RunOut) -> Vec<Option<TokenSource>> {
    let mut s: Vec<_> = r.records.iter().map(|r| r.output_tokens_source).collect();
    s.dedup();
    s
}

#[test]
fn every_backend_measures_the_simulator_truth_streaming_and_not() {
    let _serial = serial();
    let sim = ServeChild::start(&["--ttft-ms", "50", "--itl-ms", "20", "--tokens", "12"]);
    // Streaming: TTFT 50 ms, TPOT 20 ms.
    for (backend, source) in [
        ("openai-chat", TokenSource::ServerUsage),
        ("openai-completions", TokenSource::ServerUsage),
        ("ollama-chat", TokenSource::ServerCounters),
        ("ollama-generate", TokenSource::ServerCounters),
        ("tgi", TokenSource::ServerCounters),
        ("llamacpp", TokenSource::ServerCounters),
    ] {
        let r = run(&[
            &sim.url,
            "--backend",
            backend,
            "-n",
            "24",
            "-c",
            "4",
            "--warmup",
            "4",
        ]);
        truth(&r, 50.0, 20.0, 24, 12);
        assert_eq!(r.result().target.backend, backend);
        assert_eq!(sources(&r), vec![Some(source)], "{backend}");
        let inputs = r.result().scenarios[0].metrics.input_tokens.total;
        assert!(inputs > 0, "{backend}: prompt tokens reported");
        if backend.starts_with("ollama") || backend == "llamacpp" {
            let t = r.records[0].server_timings.expect("server timings");
            assert!(t.decode_ms.unwrap() > 200.0, "{backend}: {t:?}");
        }
    }
    // Not streamed: the whole answer arrives at 50 + 11 · 20 = 270 ms; one read, so TPOT 0.
    for backend in ["openai-chat", "ollama-chat", "tgi", "llamacpp", "generate"] {
        let r = run(&[
            &sim.url,
            "--backend",
            backend,
            "--no-stream",
            "-n",
            "24",
            "-c",
            "4",
            "--warmup",
            "4",
        ]);
        truth(&r, 270.0, 0.0, 24, 12);
    }
    // The plain API reports no counts: the built-in cl100k counts the simulator's words exactly.
    let r = run(&[&sim.url, "--backend", "generate", "-n", "2"]);
    assert_eq!(sources(&r), vec![Some(TokenSource::Tokenizer)]);
    assert!(r.stderr().contains("does not stream"), "{}", r.stderr());
    assert!(r.records[0].input_tokens_source == Some(TokenSource::Tokenizer));
    let sc = &r.result().scenarios[0];
    assert!(
        sc.warnings.iter().any(|w| w.contains("local tokenizer")),
        "{:?}",
        sc.warnings
    );
}

/// An Ollama NDJSON stream written here: content lines, then the counters.
fn ollama_script(ttft: u64, itl: u64, tokens: u64, prompt_tokens: u64) -> Vec<Step> {
    let mut s = vec![Step::KeepAlive(200, "application/x-ndjson")];
    for i in 0..tokens {
        s.push(Step::At(Duration::from_millis(ttft + i * itl)));
        s.push(Step::Write(
            format!(
                "{{\"model\":\"m\",\"created_at\":\"2024-01-01T00:00:00Z\",\"message\":{{\"role\":\"assistant\",\"content\":\" w{i}\"}},\"done\":false}}\n"
            )
            .into_bytes(),
        ));
    }
    s.push(Step::Write(
        format!(
            "{{\"model\":\"m\",\"message\":{{\"role\":\"assistant\",\"content\":\"\"}},\"done\":true,\"done_reason\":\"length\",\"total_duration\":1,\"load_duration\":3000000,\"prompt_eval_count\":{prompt_tokens},\"prompt_eval_duration\":2000000,\"eval_count\":{tokens},\"eval_duration\":7000000}}\n"
        )
        .into_bytes(),
    ));
    s
}

/// A TGI `/generate_stream` written here: token events, the last with details.
fn tgi_script(ttft: u64, itl: u64, tokens: u64) -> Vec<Step> {
    let mut s = vec![Step::KeepAlive(200, "text/event-stream")];
    for i in 0..tokens {
        s.push(Step::At(Duration::from_millis(ttft + i * itl)));
        let last = i + 1 == tokens;
        let tail = if last {
            format!(
                "\"generated_text\":\"all\",\"details\":{{\"finish_reason\":\"length\",\"generated_tokens\":{tokens},\"seed\":null}}"
            )
        } else {
            "\"generated_text\":null,\"details\":null".to_string()
        };
        s.push(Step::Write(
            format!(
                "data:{{\"index\":{i},\"token\":{{\"id\":1,\"text\":\" w\",\"logprob\":-1.0,\"special\":false}},{tail}}}\n\n"
            )
            .into_bytes(),
        ));
    }
    s
}

#[test]
fn independent_ollama_and_tgi_servers_are_measured_exactly() {
    let _serial = serial();
    // Without /api/tags the Ollama preflight stops before any request, and says why.
    let bare = ScriptServer::start(Arc::new(|_| ollama_script(40, 15, 10, 21)));
    let r = run(&[
        &bare.url,
        "--backend",
        "ollama-chat",
        "--model",
        "m",
        "-n",
        "2",
    ]);
    assert_eq!(r.output.status.code(), Some(2));
    assert!(r.stderr().contains("is this Ollama"), "{}", r.stderr());
    assert_eq!(bare.requests.load(std::sync::atomic::Ordering::SeqCst), 0);
    // With /api/tags, `auto` recognises Ollama.
    let front = ScriptServer::start_with_gets(
        Arc::new(|_| ollama_script(40, 15, 10, 21)),
        &[("/api/tags", r#"{"models":[{"name":"m:latest"}]}"#)],
    );
    for c in ["1", "16"] {
        let r = run(&[
            &front.url,
            "--model",
            "m",
            "-n",
            "32",
            "-c",
            c,
            "--warmup",
            c,
            "--max-tokens",
            "10",
        ]);
        assert!(
            r.stderr().contains("Backend: ollama-chat"),
            "{}",
            r.stderr()
        );
        truth(&r, 40.0, 15.0, 32, 10);
        assert_eq!(r.result().scenarios[0].metrics.input_tokens.total, 32 * 21);
        assert_eq!(sources(&r), vec![Some(TokenSource::ServerCounters)]);
        let t = r.records[0].server_timings.unwrap();
        assert_eq!(
            (t.prompt_ms, t.decode_ms, t.load_ms),
            (Some(2.0), Some(7.0), Some(3.0))
        );
        assert_eq!(r.result().scenarios[0].metrics.cache_hit_rate, None);
    }
    let body: serde_json::Value = serde_json::from_str(&front.bodies.lock().unwrap()[0]).unwrap();
    assert_eq!(body["options"]["num_predict"], 10);
    assert_eq!(body["messages"][0]["role"], "user");

    let tgi = ScriptServer::start(Arc::new(|_| tgi_script(40, 15, 10)));
    for c in ["1", "16"] {
        let r = run(&[
            &tgi.url,
            "--backend",
            "tgi",
            "--model",
            "m",
            "-n",
            "32",
            "-c",
            c,
            "--warmup",
            c,
        ]);
        truth(&r, 40.0, 15.0, 32, 10);
        assert_eq!(sources(&r), vec![Some(TokenSource::ServerCounters)]);
    }
    let body: serde_json::Value = serde_json::from_str(&tgi.bodies.lock().unwrap()[0]).unwrap();
    assert_eq!(body["parameters"]["details"], true);
    assert!(body["inputs"].is_string());
}

#[test]
fn auto_picks_the_backend_from_what_the_server_answers() {
    let _serial = serial();
    let sim = ServeChild::start(&["--ttft-ms", "1", "--itl-ms", "1", "--tokens", "3"]);
    // The simulator speaks everything and names itself: OpenAI chat.
    let r = run(&[&sim.url, "-n", "2"]);
    assert!(
        r.stderr().contains("Backend: openai-chat"),
        "{}",
        r.stderr()
    );
    assert_eq!(r.result().target.backend, "openai-chat");
    assert_eq!(r.result().config.json()["backend"], "openai-chat");
    // A full endpoint names its API; native APIs get their base back.
    for (path, backend) in [
        ("/api/generate", "ollama-generate"),
        ("/completion", "llamacpp"),
        ("/v1/completions", "openai-completions"),
        // The simulator answers /info, so its /generate is TGI's.
        ("/generate", "tgi"),
    ] {
        let r = run(&[&format!("{}{path}", sim.url), "-n", "2"]);
        assert!(r.output.status.success(), "{path}: {}", r.stderr());
        assert_eq!(r.result().target.backend, backend, "{path}");
        assert_eq!(r.result().scenarios[0].outcomes.get(Outcome::Succeeded), 2);
    }
    // Self-descriptions of other servers, written here.
    for (gets, backend) in [
        (("/api/tags", r#"{"models":[]}"#), "ollama-chat"),
        (
            ("/props", r#"{"default_generation_settings":{}}"#),
            "llamacpp",
        ),
        (("/info", r#"{"model_id":"x"}"#), "tgi"),
    ] {
        let srv = ScriptServer::start_with_gets(Arc::new(|_| Vec::new()), &[gets]);
        let r = run(&[&srv.url, "--model", "x", "-n", "1"]);
        assert!(
            r.stderr().contains(&format!("Backend: {backend}")),
            "{backend}: {}",
            r.stderr()
        );
    }
    // A plain /generate endpoint on a server without /info: the plain API.
    let plain = ScriptServer::start(Arc::new(|_| {
        vec![
            Step::KeepAlive(200, "application/json"),
            Step::Write(br#"{"text":" a b c","cached":false}"#.to_vec()),
        ]
    }));
    let r = run(&[&format!("{}/generate", plain.url), "-n", "3"]);
    assert!(r.output.status.success(), "{}", r.stderr());
    assert_eq!(r.result().target.backend, "generate");
    assert_eq!(r.result().scenarios[0].metrics.output_tokens.total, 9);
    assert_eq!(r.result().scenarios[0].metrics.cache_hit_rate, Some(0.0));
    let body: serde_json::Value = serde_json::from_str(&plain.bodies.lock().unwrap()[0]).unwrap();
    assert_eq!(body["max_tokens"], 128);
    assert!(body["prompt"].is_string());
}

#[test]
fn cache_hit_rate_is_the_repeated_share_where_the_server_says() {
    let _serial = serial();
    let sim = ServeChild::start(&["--ttft-ms", "2", "--itl-ms", "1", "--tokens", "4"]);
    // 40 requests, 30 % repeats: ⌊40 · 0.3⌋ = 12 repeat an earlier prompt.
    for backend in ["openai-chat", "generate", "llamacpp", "openai-completions"] {
        let r = run(&[
            &sim.url,
            "--backend",
            backend,
            "--repeat-ratio",
            "0.3",
            "-n",
            "40",
            "--warmup",
            "3",
        ]);
        assert!(r.output.status.success(), "{backend}: {}", r.stderr());
        let m = &r.result().scenarios[0].metrics;
        assert_eq!(m.cache_hit_rate, Some(12.0 / 40.0), "{backend}");
    }
    // Ollama says nothing about its cache: null, never guessed.
    let r = run(&[
        &sim.url,
        "--backend",
        "ollama-chat",
        "--repeat-ratio",
        "0.5",
        "-n",
        "6",
    ]);
    assert!(r.output.status.success(), "{}", r.stderr());
    assert_eq!(r.result().scenarios[0].metrics.cache_hit_rate, None);
    let r = run(&[&sim.url, "--repeat-ratio", "1.5"]);
    assert_eq!(r.output.status.code(), Some(2));
    assert!(r.stderr().contains("--repeat-ratio"), "{}", r.stderr());
}

#[test]
fn token_counts_name_their_source_and_short_outputs_are_warned_about() {
    let _serial = serial();
    // An OpenAI server that reports no usage: " t0 t1 ... t9" in 10 chunks.
    let script: Script = Arc::new(|_| {
        let mut s = openai_stream(1, 1, 10, 0);
        s.pop();
        s.push(Step::Write(b"data: [DONE]\n\n".to_vec()));
        s
    });
    let srv = ScriptServer::start(script);
    // Streamed: one token per chunk (the server's own tokens).
    let r = run(&[&srv.url, "-n", "2", "--max-tokens", "10"]);
    assert_eq!(sources(&r), vec![Some(TokenSource::Chunks)]);
    assert_eq!(r.result().scenarios[0].metrics.output_tokens.total, 20);
    // Its prompt tokens are counted locally from the messages' text, which misses the chat
    // template the server wraps them in: labelled, and warned about.
    assert_eq!(
        r.records[0].input_tokens_source,
        Some(TokenSource::TokenizerTextOnly)
    );
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.metrics.input_tokens_text_only, Some(2));
    assert!(
        sc.warnings
            .iter()
            .any(|w| w.contains("from the messages' text alone")),
        "{:?}",
        sc.warnings
    );
    // A completions endpoint gets the prompt as it is: the local count is the whole prompt.
    let r = run(&[&srv.url, "--backend", "openai-completions", "-n", "1"]);
    assert_eq!(
        r.records[0].input_tokens_source,
        Some(TokenSource::Tokenizer)
    );
    assert!(
        r.result().scenarios[0]
            .metrics
            .input_tokens_text_only
            .is_none()
    );
    // A tokenizer the user names beats chunks: cl100k reads " t0 t1 ... t9" as 20 tokens.
    let r = run(&[
        &srv.url,
        "-n",
        "2",
        "--max-tokens",
        "10",
        "--tokenizer",
        "cl100k",
    ]);
    assert_eq!(sources(&r), vec![Some(TokenSource::Tokenizer)]);
    let text: String = (0..10).map(|i| format!(" t{i}")).collect();
    let want = llmbench::measure::tokenize::cl100k().unwrap().count(&text);
    assert_eq!(
        r.result().scenarios[0].metrics.output_tokens.total,
        2 * want
    );
    assert_eq!(r.result().config.json()["tokenizer"], "cl100k_base");
    // The two counts disagree (cl100k: 2 × 20; the stream: 10 chunks each): the summary says
    // which was used and why, and the length check is made in the stream's own units (the
    // server sent the 10 tokens asked for; "received 200 %" would be wrong).
    let sc = &r.result().scenarios[0];
    assert_eq!(r.records[0].chunk_tokens, Some(10));
    let d = sc.metrics.tokenizer_vs_chunks.expect("disagreement noted");
    assert_eq!(
        (d.requests, d.tokenizer_tokens, d.chunk_tokens),
        (2, 2 * want, 20)
    );
    assert!(
        sc.warnings.iter().any(|w| w.contains(&format!(
            "--tokenizer counted {} where the stream had 20 chunks",
            2 * want
        ))),
        "{:?}",
        sc.warnings
    );
    assert_eq!(sc.metrics.output_length_mismatches, Some(0));
    assert!(
        !sc.warnings
            .iter()
            .any(|w| w.contains("different number of output tokens")),
        "{:?}",
        sc.warnings
    );
    let r = run(&[&srv.url, "-n", "1", "--tokenizer", "/nonexistent.json"]);
    assert_eq!(r.output.status.code(), Some(2));
    assert!(r.stderr().contains("--tokenizer"), "{}", r.stderr());
    assert_eq!(srv.requests.load(std::sync::atomic::Ordering::SeqCst), 5);

    // The simulator stops at 12 tokens when 20 are asked for: the summary says so.
    let sim = ServeChild::start(&["--ttft-ms", "1", "--itl-ms", "1", "--tokens", "12"]);
    let r = run(&[&sim.url, "-n", "3", "--max-tokens", "20"]);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.metrics.output_length_mismatches, Some(3));
    assert!(
        sc.warnings
            .iter()
            .any(|w| w.contains("3 succeeded request(s)")),
        "{:?}",
        sc.warnings
    );
    let r = run(&[&sim.url, "-n", "3", "--max-tokens", "12"]);
    assert!(r.result().scenarios[0].warnings.is_empty());
}

#[test]
fn ollama_preflight_checks_the_model_and_pulls_it_on_request() {
    let _serial = serial();
    let sim = ServeChild::start(&["--ttft-ms", "1", "--itl-ms", "1", "--tokens", "3"]);
    let args = |model: &'static str, pull: bool| {
        let mut a = vec![
            sim.url.clone(),
            "--backend".into(),
            "ollama-generate".into(),
            "--model".into(),
            model.into(),
            "-n".into(),
            "2".into(),
        ];
        if pull {
            a.push("--pull".into());
        }
        a
    };
    let go = |a: Vec<String>| run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let r = go(args("tinyllama", false));
    assert_eq!(r.output.status.code(), Some(2));
    assert!(
        r.stderr()
            .contains("\"tinyllama\" is not on the Ollama server")
            && r.stderr().contains("--pull"),
        "{}",
        r.stderr()
    );
    let r = go(args("tinyllama", true));
    assert!(r.output.status.success(), "{}", r.stderr());
    assert!(r.stderr().contains("Pulled tinyllama"), "{}", r.stderr());
    assert_eq!(r.result().scenarios[0].outcomes.get(Outcome::Succeeded), 2);
    // Now the server has it: no pull needed.
    let r = go(args("tinyllama:latest", false));
    assert!(r.output.status.success(), "{}", r.stderr());
    let r = go(args("missing-model", true));
    assert_eq!(r.output.status.code(), Some(2));
    assert!(
        r.stderr().contains("pulling \"missing-model\" failed"),
        "{}",
        r.stderr()
    );
    // The model defaults to the first one Ollama lists.
    let r = run(&[&sim.url, "--backend", "ollama-chat", "-n", "1"]);
    assert_eq!(r.result().target.model, llmbench::sim::DEFAULT_MODEL);
}

/// A llama.cpp `/completion` stream written here: content events, then `stop: true` with the
/// server's counters and timings.
fn llamacpp_script(ttft: u64, itl: u64, tokens: u64, prompt_tokens: u64) -> Vec<Step> {
    let mut s = vec![Step::KeepAlive(200, "text/event-stream")];
    for i in 0..tokens {
        s.push(Step::At(Duration::from_millis(ttft + i * itl)));
        s.push(Step::Write(
            format!("data: {{\"index\":0,\"content\":\" w{i}\",\"stop\":false}}\n\n").into_bytes(),
        ));
    }
    s.push(Step::Write(
        format!(
            "data: {{\"index\":0,\"content\":\"\",\"stop\":true,\"tokens_predicted\":{tokens},\"tokens_evaluated\":{prompt_tokens},\"timings\":{{\"cache_n\":0,\"prompt_n\":{prompt_tokens},\"prompt_ms\":4.5,\"predicted_n\":{tokens},\"predicted_ms\":120.0}}}}\n\n"
        )
        .into_bytes(),
    ));
    s
}

#[test]
fn independent_llamacpp_server_is_measured_exactly() {
    let _serial = serial();
    let srv = ScriptServer::start(Arc::new(|_| llamacpp_script(40, 15, 10, 17)));
    for c in ["1", "16"] {
        let r = run(&[
            &format!("{}/completion", srv.url),
            "-n",
            "32",
            "-c",
            c,
            "--warmup",
            c,
        ]);
        assert_eq!(r.result().target.backend, "llamacpp");
        truth(&r, 40.0, 15.0, 32, 10);
        assert_eq!(r.result().scenarios[0].metrics.input_tokens.total, 32 * 17);
        assert_eq!(sources(&r), vec![Some(TokenSource::ServerCounters)]);
        let t = r.records[0].server_timings.unwrap();
        assert_eq!((t.prompt_ms, t.decode_ms), (Some(4.5), Some(120.0)));
        // cache_n 0 on every request: the server says nothing hit its cache.
        assert_eq!(r.result().scenarios[0].metrics.cache_hit_rate, Some(0.0));
    }
    let body: serde_json::Value = serde_json::from_str(&srv.bodies.lock().unwrap()[0]).unwrap();
    assert_eq!(body["cache_prompt"], true);
    assert_eq!(body["stream"], true);
    assert!(body["prompt"].is_string() && body["n_predict"].is_u64());
}

#[test]
fn independent_plain_generate_server_is_timed_exactly() {
    let _serial = serial();
    // The whole answer 60 ms after the request; not streamed, so TTFT = E2E = 60 ms, TPOT 0.
    let srv = ScriptServer::start(Arc::new(|_| {
        vec![
            Step::KeepAlive(200, "application/json"),
            Step::At(Duration::from_millis(60)),
            Step::Write(br#"{"text":" a b c d e","cached":true}"#.to_vec()),
        ]
    }));
    for c in ["1", "8"] {
        let r = run(&[
            &format!("{}/generate", srv.url),
            "--backend",
            "generate",
            "-n",
            "24",
            "-c",
            c,
            "--warmup",
            c,
        ]);
        // " a b c d e": five cl100k tokens, counted locally (the server reports none).
        truth(&r, 60.0, 0.0, 24, 5);
        assert_eq!(sources(&r), vec![Some(TokenSource::Tokenizer)]);
        assert_eq!(r.result().scenarios[0].metrics.cache_hit_rate, Some(1.0));
    }
}
