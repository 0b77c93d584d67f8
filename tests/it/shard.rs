//! Issue 18: one seeded plan run whole and as three shards (`run --shard K/3 --start-at T`),
//! merged by `llmbench merge`, against one simulator in fixed mode.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;

use llmbench::measure::record::{Outcome, Record};
use llmbench::results::file::ResultFile;

use crate::common::*;

/// An RFC 3339 instant `secs` from now.
fn start_in(secs: f64) -> String {
    let t = chrono::Utc::now() + chrono::Duration::milliseconds((secs * 1000.0) as i64);
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The plan: 600 Poisson arrivals at 300 req/s, seeded, with seeded output lengths: about
/// 11,000 inter-token gaps, so the ITL distribution is past the exact store (8,192 values)
/// and merged through the histogram.
fn plan(url: &str) -> Vec<String> {
    [
        url,
        "--rate",
        "300",
        "--seed",
        "7",
        "-n",
        "600",
        "--prompt-tokens",
        "32",
        "--output-tokens",
        "20",
        "--output-tokens-stdev",
        "5",
        "--ignore-eos",
        "-q",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Runs `llmbench run ARGS` as shards 0..n of n, all started at `at`, together; waits for all
/// of them and returns each shard's result and records file.
fn run_shards(dir: &TempDir, n: usize, at: &str, args: &[String]) -> Vec<(PathBuf, PathBuf)> {
    let shards: Vec<_> = (0..n)
        .map(|k| {
            let (out, rec) = (
                dir.path(&format!("s{k}.json")),
                dir.path(&format!("s{k}.jsonl")),
            );
            let child = bin()
                .arg("run")
                .args(args)
                .args(["--shard", &format!("{k}/{n}"), "--start-at", at, "-o"])
                .arg(&out)
                .arg("--records")
                .arg(&rec)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (out, rec, child)
        })
        .collect();
    shards
        .into_iter()
        .map(|(out, rec, child)| {
            let o = child.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            (out, rec)
        })
        .collect()
}

fn measured(records: &[Record]) -> Vec<&Record> {
    records.iter().filter(|r| !r.warmup && !r.retried).collect()
}

#[test]
fn three_shards_send_the_unsharded_schedule_and_merge_exactly() {
    let sim = ServeChild::start(&["--ttft-ms", "20", "--itl-ms", "2"]);
    let dir = TempDir::new("shard");
    // The whole plan, from an agreed instant too (its records then count from it).
    let (whole, whole_rec) = (dir.path("whole.json"), dir.path("whole.jsonl"));
    let o = bin()
        .args(["run"])
        .args(plan(&sim.url))
        .args(["--start-at", &start_in(1.5), "-o"])
        .arg(&whole)
        .arg("--records")
        .arg(&whole_rec)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Three shards, started together.
    let at = start_in(3.0);
    let mut outs = Vec::new();
    let mut shard_records = Vec::new();
    for (out, rec) in run_shards(&dir, 3, &at, &plan(&sim.url)) {
        shard_records.extend(read_records(&rec));
        outs.push(out);
    }
    // Merge (the order of the inputs does not matter).
    let merged_path = dir.path("merged.json");
    let o = bin()
        .arg("merge")
        .args([&outs[2], &outs[0], &outs[1]])
        .arg("-o")
        .arg(&merged_path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // The same scheduled requests: the same ids at the same send offsets, to the nanosecond.
    let whole_records = read_records(&whole_rec);
    let schedule = |rs: &[&Record]| -> BTreeMap<u64, f64> {
        rs.iter().map(|r| (r.id, r.scheduled_at_ms)).collect()
    };
    let (a, b) = (measured(&whole_records), measured(&shard_records));
    assert_eq!(a.len(), 600);
    assert_eq!(b.len(), 600, "each id once over the shards");
    assert_eq!(schedule(&a), schedule(&b));
    // Each shard sent its own ids.
    for k in 0..3u64 {
        let f = ResultFile::read(&outs[k as usize]).unwrap();
        assert_eq!(f.shard.as_ref().unwrap().index, k as u32);
        assert!(f.scenarios[0].shard_state.is_some());
    }

    let w = ResultFile::read(&whole).unwrap();
    let m = ResultFile::read(&merged_path).unwrap();
    let (ws, ms) = (&w.scenarios[0], &m.scenarios[0]);
    // Outcomes and token totals: equal.
    assert_eq!(ws.outcomes.counts, ms.outcomes.counts);
    assert_eq!(ms.outcomes.get(Outcome::Succeeded), 600);
    assert_eq!(
        ws.metrics.output_tokens.total,
        ms.metrics.output_tokens.total
    );
    assert_eq!(ws.metrics.input_tokens.total, ms.metrics.input_tokens.total);
    // The merge is exact: the merged distributions are those of all the shards' records
    // summed up as one run (ITL through the histogram: bit for bit the same buckets).
    let union = llmbench::measure::stats::summarize(b.iter().copied());
    let (um, mm) = (&union.metrics, &ms.metrics);
    let itl = mm.itl_ms.unwrap();
    assert!(itl.count > 8192, "ITL past the exact store: {}", itl.count);
    for (name, x, y) in [
        ("ttft", um.ttft_ms, mm.ttft_ms),
        ("tpot", um.tpot_ms, mm.tpot_ms),
        ("itl", um.itl_ms, mm.itl_ms),
        ("e2e", um.e2e_ms, mm.e2e_ms),
    ] {
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!(x.count, y.count, "{name}");
        assert_eq!((x.min, x.max), (y.min, y.max), "{name}");
        for (p, q) in [
            (x.p50, y.p50),
            (x.p90, y.p90),
            (x.p95, y.p95),
            (x.p99, y.p99),
        ] {
            // The histogram's stated resolution: 0.006 % of the value.
            assert!((p - q).abs() <= 6e-5 * p.abs(), "{name}: {x:?} vs {y:?}");
        }
        assert!((x.mean - y.mean).abs() <= 1e-9 * x.mean, "{name}");
    }
    assert!((um.duration_s - mm.duration_s).abs() < 1e-9);
    // And it measures what the whole run measured: the simulator's fixed truth (TTFT 20 ms,
    // ITL 2 ms), within the noise of two live runs.
    for (name, x, y) in [
        ("ttft", ws.metrics.ttft_ms, mm.ttft_ms),
        ("itl", ws.metrics.itl_ms, mm.itl_ms),
    ] {
        let (x, y) = (x.unwrap().p50, y.unwrap().p50);
        assert!(
            (x - y).abs() < 0.1 * x,
            "{name} p50: whole {x} vs merged {y}"
        );
    }
    let info = m.merged.as_ref().unwrap();
    assert_eq!(info.shards.len(), 3);
    assert_eq!(info.shards.iter().map(|s| s.scheduled).sum::<u64>(), 600);
    assert!(m.shard.is_none());
}

#[test]
fn bad_shard_flags_exit_2_before_any_file() {
    let dir = TempDir::new("shard-bad");
    let out = dir.path("r.json");
    let later = start_in(60.0);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--shard", "3/3", "--start-at", &later], "below N"),
        (vec!["--shard", "1-3", "--start-at", &later], "is not K/N"),
        (vec!["--shard", "0/3"], "needs --start-at"),
        (
            vec!["--shard", "0/3", "--start-at", "2020-01-01T00:00:00Z"],
            "has passed",
        ),
        (
            vec!["--shard", "0/3", "--start-at", "tomorrow"],
            "not an RFC 3339 time",
        ),
        (
            vec!["--shard", "0/3", "--start-at", &later, "-c", "2"],
            "cannot be split over 3 shards",
        ),
        (
            vec!["--shard", "0/3", "--start-at", &later, "--warmup", "5"],
            "--warmup",
        ),
    ];
    for (flags, want) in cases {
        let o = bin()
            .args(["run", "http://127.0.0.1:9", "-q", "-o"])
            .arg(&out)
            .args(&flags)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(want), "{flags:?}: {err}");
        assert!(!out.exists(), "{flags:?}");
    }
    // A shard result needs -o.
    let o = bin()
        .args([
            "run",
            "http://127.0.0.1:9",
            "-q",
            "--shard",
            "0/2",
            "--start-at",
            &later,
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("give -o FILE"));
}

#[test]
fn merge_refuses_an_incomplete_plan_and_files_that_are_not_shards() {
    let dir = TempDir::new("shard-merge");
    let sim = ServeChild::start(&["--ttft-ms", "5", "--itl-ms", "1"]);
    let at = start_in(1.5);
    let shard0 = dir.path("s0.json");
    let o = bin()
        .args([
            "run",
            &sim.url,
            "-n",
            "6",
            "-c",
            "2",
            "--max-tokens",
            "4",
            "-q",
        ])
        .args(["--shard", "0/2", "--start-at", &at, "-o"])
        .arg(&shard0)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = ResultFile::read(&shard0).unwrap();
    // A closed loop of 2 over 2 shards: one worker each, shard 0's ids 0, 2, 4.
    assert_eq!(r.scenarios[0].outcomes.scheduled, 3);
    let merged = dir.path("m.json");
    let o = bin()
        .arg("merge")
        .arg(&shard0)
        .arg("-o")
        .arg(&merged)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("shard results missing: 1/2"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!merged.exists());
    // A plain result is not a shard result.
    let plain = dir.path("plain.json");
    let o = bin()
        .args(["run", &sim.url, "-n", "2", "--max-tokens", "4", "-q", "-o"])
        .arg(&plain)
        .output()
        .unwrap();
    assert!(o.status.success());
    let o = bin()
        .arg("merge")
        .arg(&plain)
        .arg("-o")
        .arg(&merged)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a shard result"));
}

/// Conversations are split whole: seven conversations of three turns over two shards; each
/// conversation runs on exactly one shard, every turn once, and the merge adds up.
#[test]
fn two_shards_split_conversations_whole() {
    let sim = ServeChild::start(&[]);
    let dir = TempDir::new("shard-conv");
    let convs: Vec<serde_json::Value> = (0..7)
        .map(|i| {
            serde_json::json!({"id": format!("c{i}"), "turns": [
                {"user": "hello there"}, {"user": "and then?"}, {"user": "thanks"}]})
        })
        .collect();
    let file = dir.path("convs.json");
    std::fs::write(&file, serde_json::to_vec(&convs).unwrap()).unwrap();
    let at = start_in(2.0);
    let args: Vec<String> = [
        &sim.url,
        "--conversations",
        file.to_str().unwrap(),
        "-c",
        "3",
        "--max-tokens",
        "4",
        "-q",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut outs = Vec::new();
    let mut per_shard: Vec<Vec<Record>> = Vec::new();
    for (out, rec) in run_shards(&dir, 2, &at, &args) {
        per_shard.push(measured(&read_records(&rec)).into_iter().cloned().collect());
        outs.push(out);
    }
    // Shard K ran the conversations whose index is K mod 2, each with all its turns.
    for (k, recs) in per_shard.iter().enumerate() {
        let mut turns: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for r in recs {
            assert_eq!(r.outcome(), Outcome::Succeeded);
            assert_eq!(r.id % 2, k as u64, "shard {k} wrote id {}", r.id);
            turns
                .entry(r.conversation.clone().unwrap())
                .or_default()
                .push(r.turn.unwrap());
        }
        let want: Vec<String> = (0..7)
            .filter(|i| i % 2 == k)
            .map(|i| format!("c{i}"))
            .collect();
        assert_eq!(turns.keys().cloned().collect::<Vec<_>>(), want, "shard {k}");
        for (c, mut t) in turns {
            t.sort();
            assert_eq!(t, [0, 1, 2], "{c}");
        }
    }
    let merged = dir.path("merged.json");
    let o = bin()
        .arg("merge")
        .args(&outs)
        .arg("-o")
        .arg(&merged)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = ResultFile::read(&merged).unwrap();
    let sc = &m.scenarios[0];
    assert_eq!(sc.outcomes.scheduled, 21);
    assert_eq!(sc.outcomes.get(Outcome::Succeeded), 21);

    // From the records files alone: the same outcomes and the same distributions (21 values
    // are kept exactly: the order statistics equal to the last digit, sums to rounding).
    let recs: Vec<_> = (0..2).map(|k| dir.path(&format!("s{k}.jsonl"))).collect();
    let from_records = dir.path("from-records.json");
    let o = bin()
        .args(["merge", "--records"])
        .args(&recs)
        .arg("-o")
        .arg(&from_records)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = ResultFile::read(&from_records).unwrap();
    let rs = &r.scenarios[0];
    assert_eq!(rs.outcomes, sc.outcomes);
    for (a, b) in [
        (rs.metrics.ttft_ms, sc.metrics.ttft_ms),
        (rs.metrics.e2e_ms, sc.metrics.e2e_ms),
    ] {
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(
            (a.count, a.min, a.p50, a.p90, a.p99, a.max),
            (b.count, b.min, b.p50, b.p90, b.p99, b.max)
        );
        assert!(
            (a.mean - b.mean).abs() <= 1e-9 * b.mean.abs(),
            "{a:?} {b:?}"
        );
    }
    assert_eq!(
        rs.metrics.output_tokens.total,
        sc.metrics.output_tokens.total
    );
    // The same shard twice is refused: it would count its requests twice.
    let o = bin()
        .args(["merge", "--records"])
        .args([&recs[0], &recs[0]])
        .arg("-o")
        .arg(dir.path("twice.json"))
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("give each shard's records once"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
