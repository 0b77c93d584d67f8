//! Long contexts and huge events: 2 MiB request bodies and 1 MiB SSE data lines go through
//! without error, with exact token counts.

use llmbench::measure::record::Outcome;

use crate::common::*;

#[test]
fn two_mib_prompts_and_one_mib_events_are_measured_whole() {
    let dir = TempDir::new("large");
    let data = dir.path("big.jsonl");
    let prompt = "word ".repeat(2 * 1024 * 1024 / 5 + 1);
    assert!(prompt.len() >= 2 * 1024 * 1024);
    std::fs::write(
        &data,
        format!("{}\n", serde_json::json!({ "prompt": prompt })),
    )
    .unwrap();
    let sim = ServeChild::start(&[
        "--ttft-ms",
        "5",
        "--itl-ms",
        "5",
        "--tokens",
        "3",
        "--token-bytes",
        "1048576",
    ]);
    let r = run(&[
        &sim.url,
        "--backend",
        "openai-completions",
        "--dataset",
        data.to_str().unwrap(),
        "--requests",
        "4",
        "--concurrency",
        "2",
        "--max-tokens",
        "3",
    ]);
    assert!(r.output.status.success(), "{}", r.stderr());
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.outcomes.get(Outcome::Succeeded), 4, "{:?}", sc.errors);
    assert_eq!(sc.metrics.output_tokens.total, 12);
    // The server's usage came back whole: its tokenizer's count of the 2 MiB prompt.
    assert_eq!(
        sc.metrics.input_tokens.total,
        4 * llmbench::sim::text::count(&prompt)
    );
    for rec in r.records.iter().filter(|r| !r.warmup) {
        assert_eq!(rec.chunk_times_ms.len(), 3, "one 1 MiB event per token");
    }
}
