//! Workloads and experiments end to end: suites, sweeps, datasets, synthetic lengths,
//! conversations, RAG and chat templates, against the simulator and a scripted server.

use std::sync::Arc;

use llmbench::measure::record::Outcome;
use llmbench::results::file::ScenarioResult;
use serde_json::Value;

use crate::common::*;

/// A fast fixed-mode simulator: output length = max_tokens.
pub(crate) fn fast_sim() -> ServeChild {
    ServeChild::start(&["--ttft-ms", "2", "--itl-ms", "0.2"])
}

pub(crate) fn all_succeeded(r: &RunOut) {
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
pub(crate) fn bodies(srv: &ScriptServer) -> Vec<Value> {
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

pub(crate) fn write_json(dir: &TempDir, name: &str, v: &Value) -> String {
    let p = dir.path(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p.to_str().unwrap().to_string()
}
