//! Trace replay (`--trace`): the requests carry the trace's lengths, and Mooncake hash ids
//! become shared prompt blocks the prefix cache sees.

use llmbench::measure::record::Record;

use crate::common::*;
use crate::workloads::all_succeeded;

fn by_id(r: &RunOut) -> Vec<Record> {
    let mut recs = r.records.clone();
    recs.sort_by_key(|x| x.id);
    recs
}

#[test]
fn trace_rows_set_input_and_output_lengths() {
    let sim = ServeChild::start(&["--decode-ms", "1", "--prefill-ms-per-token", "0.001"]);
    let root = env!("CARGO_MANIFEST_DIR");
    let file = format!("{root}/examples/traces/burstgpt_sample.csv");
    let r = run(&[
        &sim.url,
        "--backend",
        "openai-completions",
        "--trace",
        &file,
        "--trace-speedup",
        "4",
        "--requests",
        "12",
    ]);
    all_succeeded(&r);
    assert!(r.stderr().contains("failure rows"), "{}", r.stderr());
    // The first 12 kept rows of the sample (its failure rows are left out).
    let text = std::fs::read_to_string(&file).unwrap();
    let rows: Vec<(u64, u64)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[2].parse().unwrap(), f[3].parse().unwrap())
        })
        .filter(|(_, out)| *out > 0)
        .take(12)
        .collect();
    let recs = by_id(&r);
    assert_eq!(recs.len(), 12);
    for (rec, (input, output)) in recs.iter().zip(&rows) {
        assert_eq!(rec.input_tokens, Some(*input), "request {}", rec.id);
        assert_eq!(rec.requested_output_tokens, Some(*output as u32));
        assert_eq!(rec.output_tokens, *output, "request {}", rec.id);
    }
    let p = serde_json::to_value(&r.result().scenarios[0].params).unwrap();
    assert_eq!(p["trace_format"], "burstgpt");
    assert_eq!(p["trace_requests"], 12);
    assert_eq!(p["trace_speedup"], 4.0);
    assert_eq!(p["trace_skipped"], 3); // failure rows in the whole file
    assert_eq!(p["load"]["arrival"]["kind"], "trace");
}

#[test]
fn mooncake_hash_ids_share_prompt_blocks() {
    // Block size 16 in the simulator: one 512-token Mooncake block is 32 of its blocks.
    let sim = ServeChild::start(&["--decode-ms", "1", "--prefill-ms-per-token", "0.001"]);
    let dir = TempDir::new("trace");
    let file = dir.path("t.jsonl");
    std::fs::write(
        &file,
        "{\"timestamp\": 0, \"input_length\": 700, \"output_length\": 3, \"hash_ids\": [1, 2]}\n\
         {\"timestamp\": 300, \"input_length\": 600, \"output_length\": 4, \"hash_ids\": [1, 3]}\n\
         {\"timestamp\": 600, \"input_length\": 520, \"output_length\": 2, \"hash_ids\": [8, 9]}\n\
         {\"timestamp\": 900, \"input_length\": 300, \"output_length\": 2, \"hash_ids\": [10]}\n",
    )
    .unwrap();
    let r = run(&[
        &sim.url,
        "--backend",
        "openai-completions",
        "--trace",
        file.to_str().unwrap(),
    ]);
    all_succeeded(&r);
    let recs = by_id(&r);
    let inputs: Vec<Option<u64>> = recs.iter().map(|x| x.input_tokens).collect();
    assert_eq!(inputs, [Some(700), Some(600), Some(520), Some(300)]);
    let cached: Vec<Option<u64>> = recs.iter().map(|x| x.cached_tokens).collect();
    // Row 2 shares block 1 (512 tokens) with row 1; rows 3 and 4 share nothing.
    assert_eq!(cached, [Some(0), Some(512), Some(0), Some(0)]);
    let m = &r.result().scenarios[0].metrics;
    assert!(m.cache_hit_rate.is_some_and(|h| h > 0.0), "{m:?}");
    // Warm-up requests have the rows' lengths but words of their own: they put none of the
    // measured blocks in the cache (a fresh server, so nothing is left from the run above).
    let sim = ServeChild::start(&["--decode-ms", "1", "--prefill-ms-per-token", "0.001"]);
    let r = run(&[
        &sim.url,
        "--backend",
        "openai-completions",
        "--trace",
        file.to_str().unwrap(),
        "--warmup",
        "2",
    ]);
    all_succeeded(&r);
    assert_eq!(r.records.iter().filter(|x| x.warmup).count(), 2);
    let cached: Vec<Option<u64>> = by_id(&r)
        .iter()
        .filter(|x| !x.warmup)
        .map(|x| x.cached_tokens)
        .collect();
    assert_eq!(cached, [Some(0), Some(512), Some(0), Some(0)]);
}

#[test]
fn a_bad_trace_row_fails_before_any_request_naming_file_and_line() {
    let dir = TempDir::new("trace-bad");
    let file = dir.path("t.csv");
    std::fs::write(
        &file,
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:47,x,3\n",
    )
    .unwrap();
    let r = run(&["http://127.0.0.1:9", "--trace", file.to_str().unwrap()]);
    assert_eq!(r.output.status.code(), Some(2), "{}", r.stderr());
    let want = format!("{}:3", file.display());
    assert!(r.stderr().contains(&want), "{}", r.stderr());
    assert!(r.records.is_empty());
}
