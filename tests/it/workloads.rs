//! Workloads and experiments end to end: suites, sweeps, datasets, synthetic lengths,
//! conversations, RAG and chat templates, against the simulator and a scripted server.

use std::sync::Arc;

use llmbench::measure::record::Outcome;
use llmbench::results::file::ScenarioResult;
use serde_json::Value;

use crate::common::*;

/// A fast fixed-mode simulator: output length = max_tokens.
fn fast_sim() -> ServeChild {
    ServeChild::start(&["--ttft-ms", "2", "--itl-ms", "0.2"])
}

fn all_succeeded(r: &RunOut) {
    assert!(r.output.status.success(), "{}", r.stderr());
    for s in &r.result().scenarios {
        assert_eq!(
            s.outcomes.get(Outcome::Succeeded),
            s.outcomes.scheduled,
            "{}: {:?}",
            s.name,
            s.errors
        );
        assert!(s.outcomes.scheduled > 0, "{}", s.name);
    }
}

fn names(r: &RunOut) -> Vec<String> {
    r.result()
        .scenarios
        .iter()
        .map(|s| s.name.clone())
        .collect()
}

fn input_mean(s: &ScenarioResult) -> f64 {
    s.metrics.input_tokens.mean
}

#[test]
fn suites_are_listed() {
    let out = bin().arg("suites").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["standard", "prompt-lengths", "basic", "long-context"] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{text}"
        );
    }
}

#[test]
fn standard_suite_runs_its_three_steps() {
    let sim = fast_sim();
    let r = run(&[&sim.url, "--suite", "standard"]);
    all_succeeded(&r);
    assert_eq!(
        names(&r),
        ["short_completion", "medium_completion", "code_generation"]
    );
    let expect = [
        (5, 50, "hello world"),
        (3, 150, "backpropagation"),
        (3, 200, "Fibonacci"),
    ];
    for (s, (n, tokens, word)) in r.result().scenarios.iter().zip(expect) {
        assert_eq!(s.outcomes.scheduled, n, "{}", s.name);
        assert_eq!(s.metrics.output_tokens.total, n * tokens, "{}", s.name);
        assert_eq!(s.params.json()["suite"], "standard");
        assert_eq!(s.params.json()["max_tokens"], tokens);
        assert!(s.params.json()["prompt"].as_str().unwrap().contains(word));
    }
    // Each step's prompt is what the server saw (records carry the scenario name).
    let steps: Vec<&str> = r.records.iter().map(|x| x.scenario.as_str()).collect();
    assert_eq!(
        steps.iter().filter(|s| **s == "short_completion").count(),
        5
    );
}

#[test]
fn prompt_lengths_suite_sends_exact_prompt_lengths() {
    let sim = fast_sim();
    // Completions endpoint: the server counts exactly the prompt text, no chat template.
    let r = run(&[
        &sim.url,
        "--suite",
        "prompt-lengths",
        "--backend",
        "openai-completions",
        "-n",
        "2",
        "--max-tokens",
        "4",
    ]);
    all_succeeded(&r);
    assert_eq!(names(&r), ["tiny", "short", "medium", "long", "very_long"]);
    let lens: Vec<f64> = r.result().scenarios.iter().map(input_mean).collect();
    assert_eq!(lens, [16.0, 128.0, 512.0, 2048.0, 8192.0]);
    for s in &r.result().scenarios {
        assert_eq!(s.outcomes.scheduled, 2);
        assert_eq!(s.metrics.output_tokens.total, 8);
        assert_eq!(
            input_mean(s),
            s.params.json()["prompt_tokens"].as_f64().unwrap()
        );
    }
    // Distinct prompts per request: no request of a step hits the cache of another.
    assert!(r.records.iter().all(|x| x.cached_tokens == Some(0)));
}

#[test]
fn basic_suite_splits_its_requests_over_three_lengths() {
    let sim = fast_sim();
    let r = run(&[
        &sim.url,
        "--suite",
        "basic",
        "-n",
        "10",
        "--max-tokens",
        "3",
    ]);
    all_succeeded(&r);
    assert_eq!(names(&r), ["basic_short", "basic_medium", "basic_long"]);
    let n: Vec<u64> = r
        .result()
        .scenarios
        .iter()
        .map(|s| s.outcomes.scheduled)
        .collect();
    assert_eq!(n, [4, 3, 3]);
    // Chat endpoint: the simulator's template adds "user", ":" and "\n" to the content.
    let lens: Vec<f64> = r.result().scenarios.iter().map(input_mean).collect();
    assert_eq!(lens, [131.0, 515.0, 2051.0]);
}

#[test]
fn long_context_suite_skips_steps_beyond_the_servers_context() {
    let sim = ServeChild::start(&[
        "--ttft-ms",
        "2",
        "--itl-ms",
        "0.2",
        "--context-length",
        "40000",
    ]);
    let r = run(&[
        &sim.url,
        "--suite",
        "long-context",
        "-n",
        "1",
        "--max-tokens",
        "8",
        "--backend",
        "openai-completions",
    ]);
    all_succeeded(&r);
    let res = r.result();
    assert_eq!(names(&r), ["context_8k", "context_32k"]);
    assert_eq!(input_mean(&res.scenarios[0]), (8192 - 8 - 64) as f64);
    assert_eq!(input_mean(&res.scenarios[1]), (32768 - 8 - 64) as f64);
    let skipped: Vec<&str> = res.skipped.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(skipped, ["context_64k", "context_128k"]);
    assert!(res.skipped[0].reason.contains("40000"), "{:?}", res.skipped);
    assert!(
        r.stderr().contains("Skipping context_64k"),
        "{}",
        r.stderr()
    );
}

#[test]
fn unknown_suite_is_named() {
    let out = bin().args(["run", "--suite", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("--suite \"nope\"") && e.contains("prompt-lengths"),
        "{e}"
    );
}

#[test]
fn sweep_concurrency_gives_one_scenario_per_value() {
    let sim = fast_sim();
    let r = run_sub(
        "sweep",
        &[
            &sim.url,
            "--concurrency",
            "1,2,4,8",
            "-n",
            "8",
            "--max-tokens",
            "5",
        ],
    );
    all_succeeded(&r);
    assert_eq!(
        names(&r),
        [
            "concurrency=1",
            "concurrency=2",
            "concurrency=4",
            "concurrency=8"
        ]
    );
    for (s, c) in r.result().scenarios.iter().zip([1, 2, 4, 8]) {
        assert_eq!(s.params.json()["load"]["concurrency"], c);
        assert_eq!(s.params.json()["sweep"]["name"], "concurrency");
        assert_eq!(s.params.json()["sweep"]["value"], c);
        assert_eq!(s.outcomes.scheduled, 8);
        assert_eq!(s.metrics.output_tokens.total, 40);
    }
    assert_eq!(
        r.result().config.json()["sweep"]["values"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn sweep_rate_and_max_tokens_and_prompt_tokens() {
    let sim = fast_sim();
    let r = run_sub(
        "sweep",
        &[&sim.url, "--rate", "20,40", "-n", "6", "--max-tokens", "2"],
    );
    all_succeeded(&r);
    assert_eq!(names(&r), ["rate=20", "rate=40"]);
    for (s, rate) in r.result().scenarios.iter().zip([20.0, 40.0]) {
        assert_eq!(s.params.json()["load"]["rate"], rate);
        assert_eq!(s.params.json()["load"]["mode"], "open");
    }
    let r = run_sub("sweep", &[&sim.url, "--max-tokens", "3,7", "-n", "2"]);
    all_succeeded(&r);
    let totals: Vec<u64> = r
        .result()
        .scenarios
        .iter()
        .map(|s| s.metrics.output_tokens.total)
        .collect();
    assert_eq!(totals, [6, 14]);
    let r = run_sub(
        "sweep",
        &[
            &sim.url,
            "--prompt-tokens",
            "32,256",
            "-n",
            "2",
            "--max-tokens",
            "2",
            "--backend",
            "openai-completions",
        ],
    );
    all_succeeded(&r);
    let lens: Vec<f64> = r.result().scenarios.iter().map(input_mean).collect();
    assert_eq!(lens, [32.0, 256.0]);
    assert_eq!(names(&r), ["prompt-tokens=32", "prompt-tokens=256"]);
}

#[test]
fn sweep_temperature_sends_each_value() {
    let srv = ScriptServer::start(Arc::new(|_| openai_stream(1, 1, 2, 5)));
    let r = run_sub(
        "sweep",
        &[&srv.url, "--temperature", "0,0.7,1.5", "-n", "2"],
    );
    all_succeeded(&r);
    let sent: Vec<f64> = srv
        .bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| {
            serde_json::from_str::<Value>(b).unwrap()["temperature"]
                .as_f64()
                .unwrap()
        })
        .collect();
    // Temperatures go out and are recorded as typed (0.7, not 0.699999988 or
    // 0.30000001192092896).
    let want = [0.0, 0.0, 0.7, 0.7, 1.5, 1.5];
    assert_eq!(sent, want);
    let temps: Vec<f64> = r
        .result()
        .scenarios
        .iter()
        .map(|s| s.params.json()["temperature"].as_f64().unwrap())
        .collect();
    assert_eq!(temps, [0.0, 0.7, 1.5]);
    let one = run(&[&srv.url, "--temperature", "0.3", "-n", "1"]);
    assert_eq!(
        one.result().scenarios[0].params.json()["temperature"].as_f64(),
        Some(0.3)
    );
}

#[test]
fn sweep_without_a_list_is_refused_before_sending() {
    let out = bin()
        .args(["sweep", "http://127.0.0.1:9", "--concurrency", "4"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("nothing to sweep"), "{e}");
    // A misspelt flag is named, once prefixed with "error:".
    let out = bin()
        .args(["sweep", "http://127.0.0.1:9", "--concurency", "1,2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("--concurency"), "{e}");
    assert!(!e.contains("nothing to sweep"), "{e}");
    assert_eq!(e.matches("error:").count(), 1, "{e}");
}

/// Generation request bodies the server received (context-length probes such as GET /props
/// or POST /api/show left out).
fn bodies(srv: &ScriptServer) -> Vec<Value> {
    srv.bodies
        .lock()
        .unwrap()
        .iter()
        .filter(|b| !b.is_empty())
        .map(|b| serde_json::from_str::<Value>(b).unwrap())
        .filter(|v| v.get("messages").is_some() || v.get("prompt").is_some())
        .collect()
}

#[test]
fn jsonl_dataset_sends_each_prompt_once_in_order() {
    let dir = TempDir::new("ds");
    let path = dir.path("prompts.jsonl");
    std::fs::write(
        &path,
        "{\"prompt\": \"first prompt\"}\n\n{\"messages\": [{\"role\": \"system\", \"content\": \"be brief\"}, {\"role\": \"user\", \"content\": \"second\"}], \"max_tokens\": 7}\n{\"prompt\": \"third\", \"max_tokens\": 3}\n",
    )
    .unwrap();
    let srv = ScriptServer::start(Arc::new(|_| openai_stream(1, 1, 2, 5)));
    let r = run(&[
        &srv.url,
        "--dataset",
        path.to_str().unwrap(),
        "--max-tokens",
        "11",
    ]);
    all_succeeded(&r);
    let b = bodies(&srv);
    assert_eq!(b.len(), 3, "each prompt once by default");
    assert_eq!(b[0]["messages"][0]["content"], "first prompt");
    assert_eq!(b[0]["max_tokens"], 11);
    assert_eq!(b[1]["messages"][0]["role"], "system");
    assert_eq!(b[1]["messages"][1]["content"], "second");
    assert_eq!(b[1]["max_tokens"], 7);
    assert_eq!(b[2]["max_tokens"], 3);
    let p = &r.result().scenarios[0].params.json();
    assert_eq!(
        (p["dataset_format"].as_str(), p["dataset_prompts"].as_u64()),
        (Some("jsonl"), Some(3))
    );
}

#[test]
fn bad_dataset_line_is_named_and_nothing_is_sent() {
    let dir = TempDir::new("ds");
    let path = dir.path("bad.jsonl");
    std::fs::write(&path, "{\"prompt\": \"ok\"}\n{\"prompt\": 5}\n").unwrap();
    let srv = ScriptServer::start(Arc::new(|_| openai_stream(1, 1, 2, 5)));
    let out = bin()
        .args(["run", &srv.url, "--dataset", path.to_str().unwrap(), "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains(&format!("{}:2:", path.display())), "{e}");
    assert_eq!(srv.requests.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn sharegpt_dataset_uses_reply_lengths_and_text_shuffles_reproducibly() {
    let dir = TempDir::new("ds");
    let sg = dir.path("sg.json");
    std::fs::write(
        &sg,
        r#"[{"id": "a", "conversations": [{"from": "human", "value": "Say hi"}, {"from": "gpt", "value": "hi you my pal"}]},
            {"id": "b", "conversations": [{"from": "human", "value": "Count"}, {"from": "gpt", "value": "one two six ten big red"}]},
            {"id": "c", "conversations": [{"from": "gpt", "value": "orphan"}]}]"#,
    )
    .unwrap();
    let sim = fast_sim();
    let r = run(&[&sim.url, "--dataset", sg.to_str().unwrap()]);
    all_succeeded(&r);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.scheduled, 2);
    // Replies of 4 and 6 one-token words become max_tokens; the simulator honours them.
    assert_eq!(sc.metrics.output_tokens.total, 10);
    assert!(
        r.stderr().contains("1 entries without a human turn"),
        "{}",
        r.stderr()
    );

    let txt = dir.path("p.txt");
    let lines: Vec<String> = (0..12).map(|i| format!("prompt number {i}")).collect();
    std::fs::write(&txt, lines.join("\n") + "\n\n").unwrap();
    let order = |seed: &str| {
        let srv = ScriptServer::start(Arc::new(|_| openai_stream(1, 1, 1, 5)));
        let r = run(&[
            &srv.url,
            "--dataset",
            txt.to_str().unwrap(),
            "--shuffle",
            "--seed",
            seed,
        ]);
        all_succeeded(&r);
        bodies(&srv)
            .iter()
            .map(|b| b["messages"][0]["content"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let (a, b, c) = (order("3"), order("3"), order("4"));
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_ne!(a, lines);
    let mut sorted = a.clone();
    sorted.sort();
    let mut want = lines.clone();
    want.sort();
    assert_eq!(sorted, want);
}

#[test]
fn synthetic_lengths_follow_their_distributions_exactly() {
    use llmbench::workload::synthetic::Length;
    let sim = fast_sim();
    let r = run(&[
        &sim.url,
        "--backend",
        "openai-completions",
        "--prompt-tokens",
        "200",
        "--prompt-tokens-stdev",
        "30",
        "--output-tokens",
        "20",
        "--output-tokens-stdev",
        "5",
        "-n",
        "40",
        "--seed",
        "9",
    ]);
    all_succeeded(&r);
    let (p, o) = (
        Length {
            mean: 200,
            stdev: 30.0,
        },
        Length {
            mean: 20,
            stdev: 5.0,
        },
    );
    let mut distinct = std::collections::BTreeSet::new();
    for rec in &r.records {
        assert_eq!(
            rec.input_tokens,
            Some(p.sample(9, rec.id)),
            "request {}",
            rec.id
        );
        assert_eq!(
            rec.output_tokens,
            o.sample(9 ^ 0x07, rec.id),
            "request {}",
            rec.id
        );
        distinct.insert(rec.input_tokens);
    }
    assert!(distinct.len() > 10, "{distinct:?}");
    let params = &r.result().scenarios[0].params.json();
    assert_eq!(params["prompt_tokens"], 200);
    assert_eq!(params["output_tokens_stdev"], 5.0);
}

#[test]
fn shared_prefix_hits_the_prefix_cache() {
    // Engine mode with a block size of 16: a 64-token shared prefix is 4 cached blocks.
    let sim = ServeChild::start(&["--decode-ms", "1", "--prefill-ms-per-token", "0.01"]);
    let r = run(&[
        &sim.url,
        "--backend",
        "openai-completions",
        "--prompt-tokens",
        "160",
        "--shared-prefix-tokens",
        "64",
        "--max-tokens",
        "2",
        "-n",
        "6",
    ]);
    all_succeeded(&r);
    let mut recs = r.records.clone();
    recs.sort_by_key(|x| x.id);
    let cached: Vec<Option<u64>> = recs.iter().map(|x| x.cached_tokens).collect();
    assert_eq!(cached[0], Some(0));
    assert!(cached[1..].iter().all(|c| *c == Some(64)), "{cached:?}");
    assert!(recs.iter().all(|x| x.input_tokens == Some(160)));
}

fn write_json(dir: &TempDir, name: &str, v: &Value) -> String {
    let p = dir.path(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p.to_str().unwrap().to_string()
}

/// `n` one-token words (the simulator counts them exactly).
fn words(n: usize, seed: u64) -> String {
    llmbench::workload::synthetic::text(n, seed)
}

#[test]
fn a_three_turn_conversation_sends_1_3_and_5_messages_with_the_real_replies() {
    let dir = TempDir::new("conv");
    let file = write_json(
        &dir,
        "c.json",
        &serde_json::json!([
            {"id": "plain", "turns": [{"user": "one"}, {"user": "two"}, {"user": "three"}]},
            {"id": "sys", "system": "You are terse.", "turns": [{"user": "a"}, {"user": "b", "max_tokens": 9}]}
        ]),
    );
    // Each reply streams " t0 t1 t2" (three tokens).
    let srv = ScriptServer::start(Arc::new(|_| openai_stream(1, 1, 3, 5)));
    let r = run(&[&srv.url, "--conversations", &file, "--max-tokens", "4"]);
    all_succeeded(&r);
    let b = bodies(&srv);
    let counts: Vec<usize> = b
        .iter()
        .map(|x| x["messages"].as_array().unwrap().len())
        .collect();
    assert_eq!(
        counts,
        [1, 3, 5, 2, 4],
        "plain: 1, 3, 5; with a system prompt: 2, 4"
    );
    let last = b[2]["messages"].as_array().unwrap();
    let roles: Vec<&str> = last.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant", "user"]);
    assert_eq!(
        last[1]["content"], " t0 t1 t2",
        "the model's actual reply goes back"
    );
    assert_eq!(last[4]["content"], "three");
    assert_eq!(b[3]["messages"][0]["role"], "system");
    assert_eq!(
        (b[3]["max_tokens"].as_u64(), b[4]["max_tokens"].as_u64()),
        (Some(4), Some(9))
    );
    // Records say which conversation and turn each request was; the result has per-turn rows.
    let mut seen: Vec<(String, u32)> = r
        .records
        .iter()
        .map(|x| (x.conversation.clone().unwrap(), x.turn.unwrap()))
        .collect();
    seen.sort();
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[0], ("plain".to_string(), 0));
    let sc = &r.result().scenarios[0];
    let turns: Vec<(u32, u64)> = sc
        .turns
        .iter()
        .map(|t| (t.turn, t.stats.requests))
        .collect();
    assert_eq!(turns, [(0, 2), (1, 2), (2, 1)]);
    assert_eq!(sc.turns[2].stats.messages, 5.0);
    assert_eq!(sc.params.json()["conversations_run"], 2);
    assert!(sc.rag.is_none());
}

fn cache_conversations(dir: &TempDir) -> String {
    // A long opening message, then short follow-ups: with a prefix cache only the new tail
    // of each later turn needs prefill.
    let conv = |id: &str, seed: u64| {
        serde_json::json!({"id": id, "turns": [
            {"user": words(600, seed)}, {"user": words(12, seed + 1)},
            {"user": words(12, seed + 2)}, {"user": words(12, seed + 3)}]})
    };
    write_json(
        dir,
        "cache.json",
        &serde_json::json!([conv("a", 10), conv("b", 20)]),
    )
}

#[test]
fn prefix_cache_makes_later_turns_ttft_fall_and_the_result_shows_it() {
    let dir = TempDir::new("conv");
    let file = cache_conversations(&dir);
    let engine = [
        "--prefill-ms-per-token",
        "0.25",
        "--decode-ms",
        "1",
        "--decode-ms-per-seq",
        "0",
    ];
    let sim = ServeChild::start(&engine);
    let r = run(&[&sim.url, "--conversations", &file, "--max-tokens", "8"]);
    all_succeeded(&r);
    let t = &r.result().scenarios[0].turns;
    assert_eq!(t.len(), 4);
    let ttft: Vec<f64> = t.iter().map(|x| x.stats.ttft_ms.unwrap().mean).collect();
    let ctx: Vec<f64> = t.iter().map(|x| x.stats.context_tokens.unwrap()).collect();
    let cached: Vec<f64> = t.iter().map(|x| x.stats.cached_tokens.unwrap()).collect();
    eprintln!("with cache: ttft {ttft:?} context {ctx:?} cached {cached:?}");
    assert!(
        ctx.windows(2).all(|w| w[1] > w[0]),
        "context grows: {ctx:?}"
    );
    assert_eq!(cached[0], 0.0);
    for i in 1..4 {
        assert!(
            cached[i] >= 592.0,
            "turn {i} reuses the earlier prompt: {cached:?}"
        );
        assert!(ttft[i] < ttft[0] / 3.0, "turn {i} TTFT falls: {ttft:?}");
        assert_eq!(t[i].stats.cache_hit_rate, Some(1.0));
    }
    // The same conversations without a prefix cache: later turns get slower, not faster.
    let nocache = ServeChild::start(&[&engine[..], &["--cache-blocks", "0"]].concat());
    let r = run(&[&nocache.url, "--conversations", &file, "--max-tokens", "8"]);
    all_succeeded(&r);
    let t = &r.result().scenarios[0].turns;
    let ttft2: Vec<f64> = t.iter().map(|x| x.stats.ttft_ms.unwrap().mean).collect();
    eprintln!("without cache: ttft {ttft2:?}");
    assert!(ttft2[3] > ttft2[0], "{ttft2:?}");
    assert!(ttft2[3] > 3.0 * ttft[3], "{ttft2:?} vs {ttft:?}");
}

#[test]
fn rag_documents_come_and_go_and_the_result_compares_them() {
    let dir = TempDir::new("conv");
    let doc = words(480, 77);
    let file = write_json(
        &dir,
        "rag.json",
        &serde_json::json!([{"id": "r", "tags": ["rag"], "system": "Answer from the documents.", "turns": [
            {"user": "what is in the doc", "documents": [{"id": "d1", "title": "Manual", "text": doc}]},
            {"user": "and more"},
            {"user": "now without it", "remove_documents": ["d1"]},
            {"user": "last one"}]}]),
    );
    let sim = ServeChild::start(&[
        "--prefill-ms-per-token",
        "0.25",
        "--decode-ms",
        "1",
        "--decode-ms-per-seq",
        "0",
    ]);
    let r = run(&[&sim.url, "--conversations", &file, "--max-tokens", "8"]);
    all_succeeded(&r);
    let sc = &r.result().scenarios[0];
    let docs: Vec<f64> = sc.turns.iter().map(|t| t.stats.document_tokens).collect();
    assert_eq!(docs, [480.0, 480.0, 0.0, 0.0]);
    let ctx: Vec<f64> = sc
        .turns
        .iter()
        .map(|t| t.stats.context_tokens.unwrap())
        .collect();
    assert!(
        ctx[2] < ctx[1] - 400.0,
        "removing the document shrinks the context: {ctx:?}"
    );
    let share: Vec<f64> = sc
        .turns
        .iter()
        .map(|t| t.stats.cached_share.unwrap())
        .collect();
    eprintln!("rag: context {ctx:?} cached share {share:?}");
    // Removing the document rewrites the first user message: the cache misses from there on.
    assert!(
        share[1] > 0.8 && share[2] < 0.5 && share[3] > 0.5,
        "{share:?}"
    );
    let rag = sc.rag.as_ref().expect("rag section");
    assert_eq!(
        (rag.with_documents.requests, rag.without_documents.requests),
        (2, 2)
    );
    assert!(rag.with_documents.ttft_ms.is_some() && rag.without_documents.ttft_ms.is_some());
    assert!(
        rag.with_documents.context_tokens.unwrap() > rag.without_documents.context_tokens.unwrap()
    );
}

#[test]
fn conversation_filters_context_size_and_listing() {
    let dir = TempDir::new("conv");
    let file = write_json(
        &dir,
        "f.json",
        &serde_json::json!([
            {"id": "small", "tags": ["qa"], "turns": [{"user": "hi"}, {"user": "again"}]},
            {"id": "big", "tags": ["qa", "long"], "turns": [{"user": words(3000, 1)}]},
            {"id": "rag1", "tags": ["rag"], "turns": [{"user": "x", "documents": [{"id": "d", "text": "doc"}]}]}
        ]),
    );
    let sim = fast_sim();
    let ids = |r: &RunOut| {
        let mut v: Vec<String> = r
            .records
            .iter()
            .map(|x| x.conversation.clone().unwrap())
            .collect();
        v.dedup();
        v
    };
    let r = run(&[
        &sim.url,
        "--conversations",
        &file,
        "--include-tags",
        "qa",
        "--exclude-tags",
        "long",
        "--max-tokens",
        "3",
    ]);
    all_succeeded(&r);
    assert_eq!(ids(&r), ["small"]);
    let r = run(&[
        &sim.url,
        "--conversations",
        &file,
        "--context-size",
        "1000",
        "--max-tokens",
        "3",
    ]);
    all_succeeded(&r);
    assert_eq!(ids(&r), ["small", "rag1"]);
    let sc = &r.result().scenarios[0];
    assert_eq!(
        sc.params.json()["conversations_skipped"],
        serde_json::json!(["big"])
    );
    assert!(
        sc.warnings.iter().any(|w| w.contains("\"big\" skipped")),
        "{:?}",
        sc.warnings
    );
    // Without --context-size the server is asked (the simulator says 2048 here).
    let small_ctx = ServeChild::start(&[
        "--ttft-ms",
        "1",
        "--itl-ms",
        "0",
        "--context-length",
        "2048",
    ]);
    let r = run(&[
        &small_ctx.url,
        "--conversations",
        &file,
        "--max-conversations",
        "2",
        "--max-tokens",
        "3",
    ]);
    all_succeeded(&r);
    assert_eq!(ids(&r), ["small"]);
    assert_eq!(
        r.result().scenarios[0].params.json()["context_limit"]["tokens"],
        2048
    );
    // Every conversation too big: nothing measured is an error, and each skip is said once.
    let r = run(&[
        &sim.url,
        "--conversations",
        &file,
        "--context-size",
        "10",
        "--max-tokens",
        "3",
    ]);
    assert_eq!(r.output.status.code(), Some(2), "{}", r.stderr());
    assert!(
        r.stderr().contains("nothing was measured"),
        "{}",
        r.stderr()
    );
    let all = text(&r.output);
    assert_eq!(all.matches("\"big\" skipped").count(), 1, "{all}");
    // Listing needs no server.
    let out = bin()
        .args([
            "run",
            "--conversations",
            &file,
            "--list-conversations",
            "--exclude-tags",
            "rag",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("small") && text.contains("big") && !text.contains("rag1"),
        "{text}"
    );
    // A bad file is named before anything is sent.
    let bad = write_json(
        &dir,
        "bad.json",
        &serde_json::json!([{"id": "x", "turns": [{"user": "a", "remove_documents": ["nope"]}]}]),
    );
    let out = bin()
        .args(["run", &sim.url, "--conversations", &bad])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("bad.json") && e.contains("\"nope\""), "{e}");
}

#[test]
fn chat_template_renders_conversations_for_completion_endpoints() {
    let dir = TempDir::new("conv");
    let file = write_json(
        &dir,
        "c.json",
        &serde_json::json!([{"id": "t", "system": "Be brief.", "turns": [{"user": "Hi"}, {"user": "Bye"}]}]),
    );
    let srv = ScriptServer::start(Arc::new(|_| openai_stream(1, 1, 2, 5)));
    let r = run(&[
        &srv.url,
        "--backend",
        "openai-completions",
        "--conversations",
        &file,
        "--chat-template",
        "phi-3",
    ]);
    all_succeeded(&r);
    let b = bodies(&srv);
    assert_eq!(
        b[0]["prompt"],
        "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n"
    );
    assert_eq!(
        b[1]["prompt"],
        "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n t0 t1<|end|>\n<|user|>\nBye<|end|>\n<|assistant|>\n"
    );
    // A template file (tokenizer_config.json style) on a plain prompt.
    let tpl = dir.path("tokenizer_config.json");
    std::fs::write(
        &tpl,
        serde_json::json!({"chat_template": "{% for m in messages %}<{{ m.role }}>{{ m.content.strip() }}</{{ m.role }}>{% endfor %}<assistant>"}).to_string(),
    )
    .unwrap();
    let srv = ScriptServer::start(Arc::new(|_| openai_stream(1, 1, 2, 5)));
    let r = run(&[
        &srv.url,
        "--backend",
        "openai-completions",
        "--prompt",
        " hello ",
        "-n",
        "1",
        "--chat-template",
        tpl.to_str().unwrap(),
    ]);
    all_succeeded(&r);
    assert_eq!(bodies(&srv)[0]["prompt"], "<user>hello</user><assistant>");
}

#[test]
fn shipped_example_conversations_have_their_sizes_and_run() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/conversations");
    let out = bin()
        .args(["run", "--conversations", dir, "--list-conversations"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let size = |id: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id}:\n{text}"));
        line.split_whitespace().nth(4).unwrap().parse().unwrap()
    };
    for (id, want) in [
        ("simple-qa", 800.0),
        ("code-review-lru", 2500.0),
        ("raft-deep-dive", 7000.0),
        ("ultra-long-incident-review", 15000.0),
    ] {
        let got = size(id);
        assert!(
            (got / want - 1.0).abs() < 0.15,
            "{id}: {got} tokens, want about {want}"
        );
    }
    // All of them end to end on the simulator; every turn of every conversation is sent.
    let sim = ServeChild::start(&["--ttft-ms", "1", "--itl-ms", "0"]);
    let r = run(&[&sim.url, "--conversations", dir, "--concurrency", "4"]);
    all_succeeded(&r);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.scheduled, 4 + 6 + 10 + 16);
    assert_eq!(sc.turns.len(), 16);
    let rag = sc
        .rag
        .as_ref()
        .expect("the ultra-long example injects documents");
    assert_eq!(rag.with_documents.requests, 9);
}
