//! `llmbench benchmark`: VeloLLM's `velollm benchmark` as a short alias of `run --suite
//! standard`: one line per iteration as it finishes, an overall average, and `-o FILE` in
//! VeloLLM's JSON shape (`prompt_eval_count`/`eval_count` where the server counted them).

use std::sync::{Arc, Mutex};

use anyhow::Context;
use serde::Serialize;

use super::sweep::parse_run_args;
use crate::cli::BenchmarkArgs;
use crate::load::{Scenario, Steps, Watch};
use crate::measure::record::{Outcome, Record};
use crate::protocol::TokenSource;
use crate::results::file::{ResultFile, ScenarioResult};
use crate::settings::run_settings;

/// One finished iteration.
#[derive(Debug, Clone)]
struct Iteration {
    ok: bool,
    e2e_ms: f64,
    ttft_ms: Option<f64>,
    output_tokens: u64,
    /// Server-counted prompt and output tokens (Ollama's prompt_eval_count, eval_count).
    prompt_eval_count: Option<u64>,
    eval_count: Option<u64>,
}

fn iteration(r: &Record) -> Iteration {
    let sent = r.sent_at_ms.unwrap_or(r.scheduled_at_ms);
    let counted = |s: Option<TokenSource>| {
        matches!(
            s,
            Some(TokenSource::ServerUsage | TokenSource::ServerCounters)
        )
    };
    Iteration {
        ok: r.outcome == Some(Outcome::Succeeded),
        e2e_ms: r.done_at_ms - sent,
        ttft_ms: r.first_token_at_ms.map(|t| t - sent),
        output_tokens: r.output_tokens,
        prompt_eval_count: r.input_tokens.filter(|_| counted(r.input_tokens_source)),
        eval_count: counted(r.output_tokens_source).then_some(r.output_tokens),
    }
}

/// "Iteration 2/5... 85.1 tok/s (593ms)".
fn line(i: u64, n: u64, it: &Iteration) -> String {
    if !it.ok {
        return format!("  Iteration {i}/{n}... failed ({:.0}ms)", it.e2e_ms);
    }
    let rate = if it.e2e_ms > 0.0 {
        it.output_tokens as f64 / (it.e2e_ms / 1000.0)
    } else {
        0.0
    };
    format!(
        "  Iteration {i}/{n}... {rate:.1} tok/s ({:.0}ms)",
        it.e2e_ms
    )
}

/// One benchmark in VeloLLM's JSON shape.
#[derive(Debug, Serialize)]
struct BenchConfig {
    name: String,
    model: String,
    prompt: String,
    max_tokens: u32,
    iterations: u64,
}

#[derive(Debug, Serialize)]
struct BenchResult {
    config: BenchConfig,
    tokens_per_second: f64,
    time_to_first_token_ms: Option<f64>,
    total_time_ms: f64,
    total_tokens: u64,
    prompt_eval_count: Option<u64>,
    eval_count: Option<u64>,
    failed: u64,
}

fn summarize(
    (name, prompt, max_tokens): (String, Option<String>, u32),
    model: &str,
    its: &[Iteration],
) -> BenchResult {
    let ok: Vec<&Iteration> = its.iter().filter(|i| i.ok).collect();
    let total_time_ms: f64 = ok.iter().map(|i| i.e2e_ms).sum();
    let total_tokens: u64 = ok.iter().map(|i| i.output_tokens).sum();
    let ttfts: Vec<f64> = ok.iter().filter_map(|i| i.ttft_ms).collect();
    BenchResult {
        config: BenchConfig {
            name,
            model: model.to_string(),
            prompt: prompt.unwrap_or_default(),
            max_tokens,
            iterations: its.len() as u64,
        },
        tokens_per_second: if total_time_ms > 0.0 {
            total_tokens as f64 / (total_time_ms / 1000.0)
        } else {
            0.0
        },
        time_to_first_token_ms: (!ttfts.is_empty())
            .then(|| ttfts.iter().sum::<f64>() / ttfts.len() as f64),
        total_time_ms,
        total_tokens,
        prompt_eval_count: ok.last().and_then(|i| i.prompt_eval_count),
        eval_count: ok.last().and_then(|i| i.eval_count),
        failed: (its.len() - ok.len()) as u64,
    }
}

type Seen = Arc<Mutex<Vec<Vec<Iteration>>>>;

/// The suite's scenarios one at a time, each watched so its iterations print as they end.
struct Iterations {
    queue: std::collections::VecDeque<Scenario>,
    seen: Seen,
    quiet: bool,
}

impl Steps for Iterations {
    fn next(&mut self, _done: &[ScenarioResult]) -> Option<(Scenario, Option<Watch>)> {
        let sc = self.queue.pop_front()?;
        let n = sc.params.requests.unwrap_or(0);
        if !self.quiet {
            eprintln!("{} ({n} iterations)", sc.name);
        }
        let seen = self.seen.clone();
        seen.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Vec::new());
        let quiet = self.quiet;
        let watch: Watch = Box::new(move |r: &Record| {
            let it = iteration(r);
            let mut all = seen.lock().unwrap_or_else(|e| e.into_inner());
            let mine = all.last_mut().expect("pushed above");
            mine.push(it.clone());
            if !quiet {
                eprintln!("{}", line(mine.len() as u64, n, &it));
            }
            false
        });
        Some((sc, Some(watch)))
    }

    fn finish(&mut self, _result: &mut ResultFile, _cancelled: bool) {}
}

/// Runs the alias; returns the exit code.
pub async fn benchmark(a: BenchmarkArgs) -> anyhow::Result<i32> {
    let (url, backend) = match a.backend.as_str() {
        "ollama" => ("http://localhost:11434", "ollama-generate"),
        "llamacpp" | "llama.cpp" => ("http://localhost:8080", "llamacpp"),
        "vllm" | "openai" => ("http://localhost:8000", "openai-completions"),
        other => anyhow::bail!("-b {other:?}: choose ollama, llamacpp or vllm"),
    };
    let url = a.url.clone().unwrap_or_else(|| url.to_string());
    if let Some(o) = &a.output {
        crate::settings::outputs::check_writable(o, "--output")?;
    }
    let mut argv = vec![
        "llmbench benchmark".to_string(),
        url,
        "--suite=standard".into(),
        format!("--backend={backend}"),
        format!("--model={}", a.model),
        "-q".into(),
    ];
    if let Some(n) = a.iterations {
        argv.push(format!("--requests={n}"));
    }
    let args = parse_run_args("llmbench benchmark", argv)?;
    let mut plan = run_settings(&args)?;
    let seen: Seen = Arc::default();
    let scenarios: Vec<Scenario> = std::mem::take(&mut plan.scenarios);
    let names: Vec<(String, Option<String>, u32)> = scenarios
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.params.prompt.clone(),
                s.params.max_tokens.unwrap_or_default(),
            )
        })
        .collect();
    plan.steps = Some(Box::new(Iterations {
        queue: scenarios.into(),
        seen: seen.clone(),
        quiet: false,
    }));
    let code = super::run::execute(plan).await?;
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut results = Vec::new();
    for (step, its) in names.into_iter().zip(&seen) {
        results.push(summarize(step, &a.model, its));
    }
    let all: Vec<&Iteration> = seen.iter().flatten().filter(|i| i.ok).collect();
    let time: f64 = all.iter().map(|i| i.e2e_ms).sum();
    let tokens: u64 = all.iter().map(|i| i.output_tokens).sum();
    let ttfts: Vec<f64> = all.iter().filter_map(|i| i.ttft_ms).collect();
    if time > 0.0 {
        eprintln!(
            "Overall average: {:.1} tok/s, TTFT {:.1} ms ({} iterations)",
            tokens as f64 / (time / 1000.0),
            ttfts.iter().sum::<f64>() / ttfts.len().max(1) as f64,
            all.len()
        );
    }
    if let Some(o) = &a.output {
        let text = serde_json::to_string_pretty(&results)?;
        std::fs::write(o, text + "\n").with_context(|| format!("cannot write {}", o.display()))?;
        eprintln!("Results written to {}", o.display());
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_iteration_line_is_tokens_over_its_time() {
        let it = Iteration {
            ok: true,
            e2e_ms: 593.0,
            ttft_ms: Some(20.0),
            output_tokens: 50,
            prompt_eval_count: Some(32),
            eval_count: Some(50),
        };
        assert_eq!(line(2, 5, &it), "  Iteration 2/5... 84.3 tok/s (593ms)");
        let b = summarize(
            ("short_completion".into(), None, 50),
            "m",
            &[it.clone(), it],
        );
        assert_eq!(b.total_tokens, 100);
        assert_eq!(b.total_time_ms, 1186.0);
        assert!((b.tokens_per_second - 100.0 / 1.186).abs() < 1e-9);
        assert_eq!((b.prompt_eval_count, b.eval_count), (Some(32), Some(50)));
        assert_eq!(b.time_to_first_token_ms, Some(20.0));
    }
}
