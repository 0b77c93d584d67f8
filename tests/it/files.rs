//! Scenario files (issue 20): `run -f`, `sweep -f`, `capacity -f`, `llmbench init`, targets
//! limited to steps, and the example files, against the simulator.

use std::process::Output;

use crate::common::*;

fn out_text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn examples() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios")
}

#[test]
fn a_file_and_its_command_line_give_the_same_plan() {
    let sim = ServeChild::start(&[]);
    let dir = TempDir::new("file-same");
    let file = dir.path("b.toml");
    std::fs::write(
        &file,
        format!(
            "url = \"{}\"\nbackend = \"openai-chat\"\nrequests = 6\nconcurrency = 2\nmax_tokens = 8\n\
             temperature = 0.5\nprompt-tokens = 40\nseed = 3\nwarmup = 1\nheader = [\"X-Team: a\"]\n",
            sim.url
        ),
    )
    .unwrap();
    let by_file = run(&["-f", file.to_str().unwrap()]);
    let by_flags = run(&[
        &sim.url,
        "--backend",
        "openai-chat",
        "-n",
        "6",
        "-c",
        "2",
        "--max-tokens",
        "8",
        "--temperature",
        "0.5",
        "--prompt-tokens",
        "40",
        "--seed",
        "3",
        "--warmup",
        "1",
        "--header",
        "X-Team: a",
    ]);
    let (a, b) = (by_file.result(), by_flags.result());
    let mut ca = a.config.run().unwrap().clone();
    assert_eq!(ca.scenario_file.as_deref(), file.to_str());
    ca.scenario_file = None;
    assert_eq!(&ca, b.config.run().unwrap());
    assert_eq!(a.scenarios.len(), 1);
    assert_eq!(a.scenarios[0].name, b.scenarios[0].name);
    assert_eq!(a.scenarios[0].params, b.scenarios[0].params);
    assert_eq!(a.target.url, b.target.url);
    // Same seed, same synthetic prompts: the same prompt tokens per request.
    let tokens = |r: &RunOut| {
        let mut v: Vec<_> = r.records.iter().map(|x| x.input_tokens).collect();
        v.sort();
        v
    };
    assert_eq!(tokens(&by_file), tokens(&by_flags));
}

#[test]
fn flags_after_the_file_override_its_keys() {
    let dir = TempDir::new("file-override");
    let file = dir.path("b.toml");
    std::fs::write(&file, "requests = 50\nconcurrency = 5\nmax-tokens = 8\n").unwrap();
    let r = run(&["-f", file.to_str().unwrap(), "-n", "3", "--concurrency=1"]);
    let sc = &r.result().scenarios[0];
    assert_eq!(sc.params.requests, Some(3));
    assert_eq!(sc.params.concurrency(), Some(1));
    assert_eq!(sc.params.max_tokens, Some(8));
}

#[test]
fn a_bad_file_fails_with_its_line_before_anything_is_written() {
    let dir = TempDir::new("file-bad");
    let out = dir.path("result.json");
    for (body, want) in [
        (
            "requests = 5\nconcurency = 4\n",
            "b.toml:2: unknown key `concurency` (did you mean `concurrency`?)",
        ),
        ("requests = 5\n\nrate = -3\n", "b.toml:3: "),
        ("requests = 5\nmax-tokens = \"many\"\n", "b.toml:2: "),
        (
            "requests = [5, 6]\n",
            "b.toml:1: `requests` takes one value",
        ),
    ] {
        let file = dir.path("b.toml");
        std::fs::write(&file, body).unwrap();
        let o = bin()
            .args(["run", "-f", file.to_str().unwrap(), "-o"])
            .arg(&out)
            .output()
            .unwrap();
        let t = out_text(&o);
        assert_eq!(code(&o), 2, "{body}: {t}");
        assert!(t.contains(want), "{body}: want {want:?} in {t}");
        assert!(!out.exists(), "{body}: the result file was created");
    }
    let o = bin()
        .args(["run", "-f", dir.path("missing.toml").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(out_text(&o).contains("missing.toml: cannot read the scenario file"));
    // As JSON when asked.
    let o = bin()
        .args([
            "--json",
            "run",
            "-f",
            dir.path("missing.toml").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(v["exit_code"], 2);
}

#[test]
fn per_step_targets_hold_for_their_steps_only() {
    // The Mini-Infer example: targets at concurrency 8 and 16 only. Overridden here with
    // thresholds the simulator surely meets (8) and surely misses (16).
    let sim = ServeChild::start(&[]);
    let r = run_sub(
        "sweep",
        &[
            "-f",
            examples().join("mini-infer-batch.toml").to_str().unwrap(),
            &sim.url,
            "-n",
            "8",
            "--warmup",
            "0",
            "--max-tokens",
            "8",
            "--slo",
            "output_tokens_per_s>=1@concurrency=8,output_tokens_per_s>=1e9@concurrency=16",
        ],
    );
    assert_eq!(code(&r.output), 3, "{}", r.stderr());
    let res = r.result();
    let steps: Vec<_> = res
        .scenarios
        .iter()
        .map(|s| s.params.concurrency().unwrap())
        .collect();
    assert_eq!(steps, [1, 4, 8, 16]);
    let verdict = |i: usize| {
        res.scenarios[i]
            .slo
            .as_ref()
            .map(|v| (v.targets.len(), v.passed))
    };
    assert_eq!(verdict(0), None);
    assert_eq!(verdict(1), None);
    assert_eq!(verdict(2), Some((1, true)));
    assert_eq!(verdict(3), Some((1, false)));
    let sw = res.config.run().unwrap().sweep.as_ref().unwrap();
    assert_eq!(sw.name, "concurrency");

    // A target for a step the run does not have is a mistake, said up front.
    let o = bin()
        .args(["sweep", "-c", "1,2", "--slo", "ttft_p50<1s@concurrency=3"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(
        out_text(&o).contains("no step has concurrency=3 (the run's steps have concurrency 1, 2)"),
        "{}",
        out_text(&o)
    );
}

#[test]
fn the_ollama_example_runs_its_three_experiments_into_one_result_and_report() {
    let sim = ServeChild::start(&[]);
    let dir = TempDir::new("file-ollama");
    let report = dir.path("report");
    let r = run(&[
        "-f",
        examples().join("ollama-advanced.toml").to_str().unwrap(),
        &sim.url,
        "--model",
        "llmbench-sim",
        "-n",
        "2",
        "--max-tokens",
        "4",
        "--warmup",
        "0",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code(&r.output), 0, "{}", r.stderr());
    let res = r.result();
    let names: Vec<&str> = res.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.len(), 13, "{names:?}");
    assert_eq!(names[0], "prompt-lengths prompt-tokens=16");
    assert_eq!(names[5], "temperatures temperature=0");
    assert_eq!(names[12], "workers concurrency=4");
    assert!(res.scenarios.iter().all(|s| {
        s.outcomes
            .get(llmbench::measure::record::Outcome::Succeeded)
            == 2
    }));
    assert!(res.config.run().unwrap().sweep.is_none());
    // One chart per experiment.
    for chart in [
        "prompt_length_impact.png",
        "temperature_impact.png",
        "concurrency_scaling.png",
    ] {
        assert!(report.join("charts").join(chart).exists(), "no {chart}");
    }
}

#[test]
fn init_writes_an_example_that_runs_and_never_overwrites() {
    let dir = TempDir::new("file-init");
    let file = dir.path("bench.toml");
    let o = bin().args(["init"]).arg(&file).output().unwrap();
    assert_eq!(code(&o), 0, "{}", out_text(&o));
    let o = bin().args(["init"]).arg(&file).output().unwrap();
    assert_eq!(code(&o), 2);
    assert!(out_text(&o).contains("exists: give --force"));
    let o = bin().args(["init", "-"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        std::fs::read_to_string(&file).unwrap()
    );
    // It runs on the built-in simulator as written (with fewer requests).
    let r = run(&["-f", file.to_str().unwrap(), "-n", "4", "--max-tokens", "4"]);
    assert!(matches!(code(&r.output), 0 | 3), "{}", r.stderr());
    let names: Vec<&str> = r
        .result()
        .scenarios
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "short-prompts",
            "concurrency concurrency=1",
            "concurrency concurrency=4",
            "concurrency concurrency=8"
        ]
    );
    // Its target at concurrency 4 holds for those steps only.
    let with_rate_target = r
        .result()
        .scenarios
        .iter()
        .filter(|s| {
            s.slo
                .as_ref()
                .is_some_and(|v| v.targets.iter().any(|t| t.metric == "output_tokens_per_s"))
        })
        .count();
    assert_eq!(with_rate_target, 2);
}

#[test]
fn capacity_reads_a_file_and_refuses_named_scenarios() {
    let dir = TempDir::new("file-cap");
    let file = dir.path("c.toml");
    std::fs::write(&file, "slo = \"ttft_p99<1s\"\n[scenario.a]\nrequests = 3\n").unwrap();
    let o = bin()
        .args(["capacity", "-f", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(
        out_text(&o).contains("capacity runs one search"),
        "{}",
        out_text(&o)
    );
    std::fs::write(&file, "slo = \"ttft_p99<1s\"\nby = \"sideways\"\n").unwrap();
    let o = bin()
        .args(["capacity", "-f", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(out_text(&o).contains("c.toml:2: "), "{}", out_text(&o));
}

#[test]
fn the_velollm_benchmark_alias_prints_each_iteration_and_writes_its_json() {
    let sim = ServeChild::start(&[]);
    let dir = TempDir::new("benchmark");
    let out = dir.path("results.json");
    let o = bin()
        .args([
            "benchmark",
            "-m",
            "llmbench-sim",
            "-n",
            "2",
            "--url",
            &sim.url,
            "-o",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let t = out_text(&o);
    assert_eq!(code(&o), 0, "{t}");
    for want in [
        "short_completion (2 iterations)",
        "code_generation (2 iterations)",
        "Iteration 1/2... ",
        "Iteration 2/2... ",
        "Overall average: ",
    ] {
        assert!(t.contains(want), "no {want:?} in {t}");
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["config"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["short_completion", "medium_completion", "code_generation"]
    );
    let first = &v[0];
    assert_eq!(first["config"]["max_tokens"], 50);
    assert_eq!(first["config"]["iterations"], 2);
    // Ollama's own counts (the simulator's /api/generate gives them), under Ollama's names.
    assert!(first["eval_count"].as_u64().unwrap() > 0, "{first}");
    assert!(first["prompt_eval_count"].as_u64().unwrap() > 0, "{first}");
    let total = first["total_tokens"].as_f64().unwrap();
    let ms = first["total_time_ms"].as_f64().unwrap();
    assert!((first["tokens_per_second"].as_f64().unwrap() - total / (ms / 1000.0)).abs() < 1e-6);
}
