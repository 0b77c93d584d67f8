//! Tool calls against the simulator's truth: `--tools` sends the tools, the simulator answers
//! with a streamed call, and its deltas are output (first token, chunks, counts).

use llmbench::measure::record::Outcome;

use crate::common::*;

#[test]
fn tool_call_replies_are_output_timed_and_counted() {
    let _serial = serial();
    let dir = TempDir::new("tools");
    let tools = dir.path("tools.json");
    std::fs::write(
        &tools,
        r#"[{"type": "function", "function": {"name": "get_weather",
             "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]"#,
    )
    .unwrap();
    let tools_s = tools.to_str().unwrap();
    let sim = ServeChild::start(&[
        "--ttft-ms",
        "40",
        "--itl-ms",
        "10",
        "--tokens",
        "12",
        "--tool-calls",
    ]);
    let r = run(&[
        &sim.url,
        "--backend",
        "openai-chat",
        "--tools",
        tools_s,
        "-n",
        "8",
        "-c",
        "2",
    ]);
    assert!(r.output.status.success(), "{}", r.stderr());
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::Succeeded), 8, "{:?}", sc.errors);
    assert_eq!(sc.metrics.output_tokens.total, 8 * 12);
    for x in &r.records {
        assert_eq!(x.tool_calls, Some(1));
        assert_eq!(x.chunk_times_ms.len(), 12, "one tool-call delta per token");
    }
    timing_within_five_runs(&r, |r| {
        let m = &r.result().scenarios[0].metrics;
        let (ttft, tpot) = (m.ttft_ms.unwrap().p50, m.tpot_ms.unwrap().p50);
        if !(39.5..42.8).contains(&ttft) || (tpot - 10.0).abs() > 0.5 {
            return Err(format!(
                "TTFT {ttft:.3} (truth 40), TPOT {tpot:.3} (truth 10)"
            ));
        }
        Ok(())
    });
    // Without --tools the same server answers with text: no tool calls recorded.
    let r = run(&[&sim.url, "--backend", "openai-chat", "-n", "2"]);
    assert!(r.records.iter().all(|x| x.tool_calls.is_none()));
    // Bad tools files and backends that cannot send tools are named before any request.
    std::fs::write(dir.path("bad.json"), r#"{"name": "x"}"#).unwrap();
    let bad = run(&[
        &sim.url,
        "--tools",
        dir.path("bad.json").to_str().unwrap(),
        "-n",
        "1",
    ]);
    assert_eq!(bad.output.status.code(), Some(2));
    assert!(
        bad.stderr().contains("expected a JSON array of tools"),
        "{}",
        bad.stderr()
    );
    let wrong = run(&[
        &sim.url,
        "--backend",
        "ollama-chat",
        "--tools",
        tools_s,
        "-n",
        "1",
    ]);
    assert_eq!(wrong.output.status.code(), Some(2));
    assert!(
        wrong
            .stderr()
            .contains("--tools works with the openai-chat backend")
    );
}
