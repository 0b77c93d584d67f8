//! Multi-turn conversations: histories with the real replies, prefix caching across turns,
//! RAG documents, filters and context sizes, chat templates, warm-up.

use std::sync::Arc;

use crate::common::*;
use crate::workloads::{all_succeeded, bodies, fast_sim, write_json};

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

#[test]
fn warmup_with_conversations_warms_the_server_and_is_left_out() {
    let dir = TempDir::new("conv-warm");
    let file = write_json(
        &dir,
        "c.json",
        &serde_json::json!([
            {"id": "a", "system": "Be brief.", "turns": [{"user": "one"}, {"user": "two"}]},
            {"id": "b", "turns": [{"user": "three"}, {"user": "four"}]}
        ]),
    );
    let srv = ScriptServer::start(Arc::new(|_| openai_stream(1, 1, 3, 5)));
    let r = run(&[
        &srv.url,
        "--conversations",
        &file,
        "--warmup",
        "3",
        "--max-tokens",
        "4",
    ]);
    all_succeeded(&r);
    let b = bodies(&srv);
    assert_eq!(b.len(), 3 + 4, "three warm-up requests, then four turns");
    // Warm-ups come first, each a first user turn alone, marked so that no measured
    // conversation's prefix is cached by them.
    for (i, w) in b[..3].iter().enumerate() {
        let msgs = w["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 1, "{w}");
        assert!(
            msgs[0]["content"]
                .as_str()
                .unwrap()
                .starts_with(&format!("(warm-up {i}) ")),
            "{w}"
        );
    }
    assert_eq!(b[3]["messages"][0]["content"], "Be brief.");
    let warm: Vec<_> = r.records.iter().filter(|x| x.warmup).collect();
    assert_eq!(warm.len(), 3);
    assert!(warm.iter().all(|x| x.conversation.is_none()));
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.scheduled, 4, "warm-up turns are not measured");
    assert_eq!(sc.turns.iter().map(|t| t.stats.requests).sum::<u64>(), 4);
    assert_eq!(sc.params.json()["warmup"], 3);
}

#[test]
fn a_tool_call_reply_goes_back_with_its_result_in_the_next_turn() {
    let dir = TempDir::new("conv-tools");
    let file = write_json(
        &dir,
        "c.json",
        &serde_json::json!([{"id": "agent", "turns": [{"user": "weather?"}, {"user": "thanks"}]}]),
    );
    let tools = write_json(
        &dir,
        "tools.json",
        &serde_json::json!([{"type": "function", "function": {"name": "get_weather"}}]),
    );
    // The first reply is a call streamed in two pieces; the second is text. (`--context-size`
    // spares the context probe, so request 0 is the first turn.)
    let srv = ScriptServer::start(Arc::new(|i| {
        let ev = |v: serde_json::Value| Step::Write(format!("data: {v}\n\n").into_bytes());
        let delta =
            |d: serde_json::Value| serde_json::json!({"choices": [{"index": 0, "delta": d}]});
        let mut s = vec![Step::Head(200, "text/event-stream")];
        if i == 0 {
            s.push(ev(delta(serde_json::json!({"tool_calls": [{"index": 0, "id": "call_7",
                "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\""}}]}))));
            s.push(ev(delta(serde_json::json!({"tool_calls": [{"index": 0,
                "function": {"arguments": ": \"Paris\"}"}}]}))));
        } else {
            s.push(ev(delta(
                serde_json::json!({"content": "You are welcome."}),
            )));
        }
        s.push(Step::Write(b"data: [DONE]\n\n".to_vec()));
        s
    }));
    let r = run(&[
        &srv.url,
        "--backend",
        "openai-chat",
        "--conversations",
        &file,
        "--tools",
        &tools,
        "--context-size",
        "4096",
    ]);
    all_succeeded(&r);
    let calls: Vec<_> = r.records.iter().map(|x| (x.turn, x.tool_calls)).collect();
    assert_eq!(calls, [(Some(0), Some(1)), (Some(1), None)]);
    let b = bodies(&srv);
    let m = b[1]["messages"].as_array().unwrap();
    let roles: Vec<&str> = m.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "tool", "user"]);
    assert_eq!(
        m[1]["tool_calls"],
        serde_json::json!([{"id": "call_7", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}])
    );
    assert_eq!(m[2]["tool_call_id"], "call_7");
    let result: serde_json::Value =
        serde_json::from_str(m[2]["content"].as_str().unwrap()).unwrap();
    assert_eq!(result["function"], "get_weather");
    assert!(b[1]["tools"].is_array(), "every turn offers the tools");
}

#[test]
fn agent_conversations_and_dataset_tools_against_the_simulator() {
    let dir = TempDir::new("sim-tools");
    let sim = ServeChild::start(&[
        "--ttft-ms",
        "2",
        "--itl-ms",
        "0.2",
        "--tokens",
        "6",
        "--tool-calls",
    ]);
    let tools = write_json(
        &dir,
        "tools.json",
        &serde_json::json!([{"type": "function", "function": {"name": "search"}}]),
    );
    // The simulator refuses a tool message that answers no call, or a call whose arguments
    // are not JSON: three turns that all succeed sent every result back well formed.
    let file = write_json(
        &dir,
        "c.json",
        &serde_json::json!([{"id": "a", "turns": [{"user": "one"}, {"user": "two"}, {"user": "three"}]}]),
    );
    let r = run(&[
        &sim.url,
        "--backend",
        "openai-chat",
        "--conversations",
        &file,
        "--tools",
        &tools,
    ]);
    all_succeeded(&r);
    assert!(r.records.iter().all(|x| x.tool_calls == Some(1)));
    let inputs: Vec<u64> = r.records.iter().map(|x| x.input_tokens.unwrap()).collect();
    assert!(inputs.windows(2).all(|w| w[1] > w[0]), "{inputs:?}");
    // Dataset records with their own tools: only they get a call.
    let ds = dir.path("ds.jsonl");
    std::fs::write(
        &ds,
        "{\"prompt\": \"find it\", \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"lookup\"}}]}\n{\"prompt\": \"just talk\"}\n",
    )
    .unwrap();
    let ds = ds.display().to_string();
    let r = run(&[&sim.url, "--backend", "openai-chat", "--dataset", &ds]);
    all_succeeded(&r);
    let calls: Vec<Option<u32>> = r.records.iter().map(|x| x.tool_calls).collect();
    assert_eq!(calls, [Some(1), None]);
    assert_eq!(
        r.result().scenarios[0].params.tools.as_deref(),
        Some("dataset")
    );
    // A bad tools array is named with its line; a backend without tools is refused.
    std::fs::write(
        dir.path("bad.jsonl"),
        "{\"prompt\": \"x\"}\n{\"prompt\": \"y\", \"tools\": [{\"type\": \"web\"}]}\n",
    )
    .unwrap();
    let bad = dir.path("bad.jsonl").display().to_string();
    let r = run(&[&sim.url, "--backend", "openai-chat", "--dataset", &bad]);
    assert_eq!(code(&r.output), 2);
    assert!(
        r.stderr()
            .contains(&format!("{bad}:2: \"tools\": tool 1 is not")),
        "{}",
        r.stderr()
    );
    let r = run(&[
        &sim.url,
        "--backend",
        "openai-completions",
        "--dataset",
        &ds,
    ]);
    assert_eq!(code(&r.output), 2);
    assert!(
        r.stderr()
            .contains("a dataset's \"tools\" works with the openai-chat backend"),
        "{}",
        r.stderr()
    );
}
