//! Modern workloads against the simulator's truth: reasoning replies (time to first answer
//! token) and several tokens per chunk (per-chunk and per-token ITL).

use llmbench::measure::record::Outcome;

use crate::common::*;

pub(crate) fn ok(r: &RunOut, requests: u64) {
    assert!(r.output.status.success(), "{}", r.stderr());
    let sc = &r.result().scenarios[0];
    assert_eq!(
        sc.outcomes.get(Outcome::Succeeded),
        requests,
        "{:?}",
        sc.errors
    );
}

fn near(what: &str, got: f64, truth: f64, above: f64) -> Result<(), String> {
    if got >= truth - 0.5 && got - truth <= above {
        Ok(())
    } else {
        Err(format!("{what}: median {got:.3} ms, truth {truth} ms"))
    }
}

#[test]
fn reasoning_replies_time_the_first_answer_token_against_truth() {
    let _serial = serial();
    // 20 reasoning tokens 10 ms apart after a 50 ms first token: the answer starts at 250 ms.
    let sim = ServeChild::start(&[
        "--ttft-ms",
        "50",
        "--itl-ms",
        "10",
        "--tokens",
        "30",
        "--reasoning-tokens",
        "20",
    ]);
    let r = run(&[&sim.url, "--backend", "openai-chat", "-n", "12", "-c", "4"]);
    ok(&r, 12);
    let m = &r.result().scenarios[0].metrics;
    // Counts from the server's usage: exact.
    assert_eq!(m.reasoning_tokens.unwrap().total, 12 * 20);
    assert_eq!(m.answer_tokens.unwrap().total, 12 * 10);
    assert_eq!(m.output_tokens.total, 12 * 30);
    timing_within_five_runs(&r, |r| {
        let m = &r.result().scenarios[0].metrics;
        near("TTFT", m.ttft_ms.unwrap().p50, 50.0, 2.8)?;
        near("TTFT answer", m.ttft_answer_ms.unwrap().p50, 250.0, 2.8)?;
        near("reasoning", m.reasoning_ms.unwrap().p50, 200.0, 1.0)?;
        near("TPOT", m.tpot_ms.unwrap().p50, 10.0, 0.5)
    });
    // Not streamed: the whole reply at once, reasoning and answer still counted apart.
    let r = run(&[
        &sim.url,
        "--backend",
        "openai-chat",
        "--no-stream",
        "-n",
        "2",
    ]);
    ok(&r, 2);
    assert_eq!(r.records[0].reasoning_tokens, Some(20));
}

#[test]
fn several_tokens_per_chunk_give_per_chunk_and_per_token_itl() {
    let _serial = serial();
    // Four tokens every 20 ms: chunk ITL 20 ms, 5 ms per token; 32 tokens in 8 chunks, the
    // last at 50 + 7 · 20 = 190 ms, so TPOT = 140 / 31 ms.
    let sim = ServeChild::start(&[
        "--ttft-ms",
        "50",
        "--itl-ms",
        "20",
        "--tokens",
        "32",
        "--tokens-per-chunk",
        "4",
    ]);
    let r = run(&[&sim.url, "--backend", "openai-chat", "-n", "12", "-c", "4"]);
    ok(&r, 12);
    let m = &r.result().scenarios[0].metrics;
    assert_eq!(m.output_tokens.total, 12 * 32);
    assert!(r.records.iter().all(|x| x.chunk_times_ms.len() == 8));
    let tpc = m.tokens_per_chunk.unwrap();
    assert_eq!((tpc.min, tpc.max), (4.0, 4.0));
    timing_within_five_runs(&r, |r| {
        let m = &r.result().scenarios[0].metrics;
        near("TTFT", m.ttft_ms.unwrap().p50, 50.0, 2.8)?;
        near("ITL", m.itl_ms.unwrap().p50, 20.0, 0.5)?;
        near("ITL per token", m.itl_per_token_ms.unwrap().p50, 5.0, 0.2)?;
        near("TPOT", m.tpot_ms.unwrap().p50, 140.0 / 31.0, 0.5)
    });
    // One token per chunk (the default): no per-token rows.
    let one = ServeChild::start(&["--ttft-ms", "5", "--itl-ms", "2", "--tokens", "8"]);
    let r = run(&[&one.url, "-n", "2"]);
    let m = &r.result().scenarios[0].metrics;
    assert!(m.itl_per_token_ms.is_none() && m.tokens_per_chunk.is_none());
    // A random mix of 1 to 4 per chunk: every token still counted, chunks fewer than tokens.
    let mix = ServeChild::start(&[
        "--ttft-ms",
        "5",
        "--itl-ms",
        "2",
        "--tokens",
        "40",
        "--tokens-per-chunk",
        "mix",
    ]);
    let r = run(&[&mix.url, "-n", "4"]);
    ok(&r, 4);
    assert_eq!(r.result().scenarios[0].metrics.output_tokens.total, 160);
    for x in &r.records {
        assert!(x.chunk_times_ms.len() >= 10 && x.chunk_times_ms.len() < 40);
    }
}

#[test]
fn embeddings_and_rerank_count_every_input_and_time_the_reply() {
    let _serial = serial();
    let sim = ServeChild::start(&["--ttft-ms", "30", "--itl-ms", "1"]);
    for backend in ["openai-embeddings", "rerank"] {
        let r = run(&[
            &sim.url,
            "--backend",
            backend,
            "--batch-inputs",
            "4",
            "-n",
            "10",
            "-c",
            "2",
        ]);
        ok(&r, 10);
        let m = &r.result().scenarios[0].metrics;
        assert_eq!(m.inputs.unwrap().total, 40, "{backend}");
        assert_eq!(m.output_tokens.total, 0, "{backend}: nothing generated");
        assert!(m.input_tokens.total > 0, "{backend}: the server's count");
        assert!(m.inputs_per_s.unwrap() > 0.0);
        assert!(r.records.iter().all(|x| x.inputs == Some(4)));
        assert!(
            r.stdout().contains("Inputs: 40 embedded or ranked"),
            "{}",
            r.stdout()
        );
        timing_within_five_runs(&r, |r| {
            let e2e = r.result().scenarios[0].metrics.e2e_ms.unwrap().p50;
            near(&format!("{backend} latency"), e2e, 30.0, 2.8)
        });
    }
    // --batch-inputs is for these backends only, said before any request.
    let r = run(&[
        &sim.url,
        "--backend",
        "openai-chat",
        "--batch-inputs",
        "2",
        "-n",
        "1",
    ]);
    assert_eq!(r.output.status.code(), Some(2));
    assert!(
        r.stderr().contains("--batch-inputs works with"),
        "{}",
        r.stderr()
    );
    // A reply with fewer results than inputs is not a success.
    let short = ScriptServer::start(std::sync::Arc::new(|_| {
        vec![
            Step::Head(200, "application/json"),
            Step::Write(br#"{"data":[{"embedding":[0.1]}],"usage":{"prompt_tokens":3}}"#.to_vec()),
        ]
    }));
    let r = run(&[
        &short.url,
        "--backend",
        "openai-embeddings",
        "--batch-inputs",
        "2",
        "-n",
        "2",
    ]);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::StreamError), 2, "{:?}", sc.errors);
    assert!(
        sc.errors[0]
            .message
            .contains("carried 1 results for 2 inputs")
    );
}
