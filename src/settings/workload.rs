//! Workload flags (suites, datasets, synthetic lengths, conversations) become scenarios.
//!
//! `settings::run_settings` validates the load and transport flags and builds one scenario; this
//! module replaces that scenario by the ones the workload flags ask for.

use std::sync::Arc;

use crate::results::params::ScenarioParams;
use anyhow::{Context, bail};

use crate::cli::RunArgs;
use crate::load::Scenario;
use crate::load::schedule::{Arrival, Load, Stop};
use crate::settings::RunSettings;
use crate::workload::conversation::{self, ConversationSet, Dialogue};
use crate::workload::suites::{self, SuiteBase};
use crate::workload::synthetic::{Length, OutputLengths, Synthetic};
use crate::workload::trace::{self, TraceFormat, TraceWorkload};
use crate::workload::{PromptList, chat_template, dataset};

/// Sets `dst[k] = v` for every key of `src` (both objects).
fn check_len(flag: &str, stdev: f64) -> anyhow::Result<()> {
    if !(stdev >= 0.0 && stdev.is_finite()) {
        bail!("{flag} must be a finite number, zero or more (got {stdev})");
    }
    Ok(())
}

/// Most tokens a synthetic prompt or output may ask for (the longest contexts served today are
/// a few million tokens).
const MAX_TOKENS: u64 = 4_000_000;

/// Replaces the single scenario of `plan` with the scenarios the workload flags ask for.
pub fn apply_workload(a: &RunArgs, plan: &mut RunSettings) -> anyhow::Result<()> {
    let w = &a.workload;
    let sources: Vec<&str> = [
        (a.prompt.is_some(), "--prompt"),
        (w.suite.is_some(), "--suite"),
        (w.dataset.is_some(), "--dataset"),
        (w.prompt_tokens.is_some(), "--prompt-tokens"),
        (w.conversations.is_some(), "--conversations"),
        (w.trace.is_some(), "--trace"),
    ]
    .into_iter()
    .filter_map(|(on, f)| on.then_some(f))
    .collect();
    if sources.len() > 1 {
        bail!(
            "{} exclude each other: give one source of prompts",
            sources.join(" and ")
        );
    }
    check_len("--prompt-tokens-stdev", w.prompt_tokens_stdev)?;
    check_len("--output-tokens-stdev", w.output_tokens_stdev)?;
    if w.prompt_tokens_stdev > 0.0 && w.prompt_tokens.is_none() {
        bail!("--prompt-tokens-stdev needs --prompt-tokens");
    }
    if w.output_tokens_stdev > 0.0 && w.output_tokens.is_none() {
        bail!("--output-tokens-stdev needs --output-tokens");
    }
    if w.shared_prefix_tokens > 0 && w.prompt_tokens.is_none() {
        bail!("--shared-prefix-tokens needs --prompt-tokens");
    }
    if w.output_tokens == Some(0) {
        bail!("--output-tokens must be at least 1");
    }
    for (flag, n) in [
        ("--prompt-tokens", w.prompt_tokens),
        ("--output-tokens", w.output_tokens),
        ("--shared-prefix-tokens", Some(w.shared_prefix_tokens)),
    ] {
        if let Some(n) = n
            && n > MAX_TOKENS
        {
            bail!("{flag} {n} is more than any model's context: at most {MAX_TOKENS}");
        }
    }
    if w.shuffle && w.dataset.is_none() {
        bail!("--shuffle applies to --dataset: other prompt sources have no order to shuffle");
    }
    let output = w.output_tokens.map(|mean| Length {
        mean,
        stdev: w.output_tokens_stdev,
    });
    if output.is_some() {
        // Exact output lengths where the server allows it.
        plan.options.ignore_eos = true;
    }
    if w.suite.is_some() && w.output_tokens.is_some() {
        bail!(
            "--output-tokens does not combine with --suite: steps set their own lengths (use --max-tokens)"
        );
    }
    let template = plan.scenarios.first().cloned().context("no scenario")?;
    if w.trace.is_none() && (w.trace_format.is_some() || w.trace_speedup != 1.0) {
        bail!("--trace-format and --trace-speedup need --trace FILE");
    }
    if let Some(path) = &w.trace {
        apply_trace(a, path, plan)?;
    } else if let Some(name) = &w.suite {
        let base = SuiteBase {
            requests: a.requests,
            max_tokens: a.max_tokens,
            temperature: a.temperature,
            seed: a.seed,
        };
        let steps = suites::steps(name, &base).with_context(|| {
            format!(
                "--suite {name:?} is not known; choose one of {} (see `llmbench suites`)",
                suites::SUITES
                    .iter()
                    .map(|s| s.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        // Suites ask for fixed output lengths where the server allows it.
        plan.options.ignore_eos = true;
        plan.scenarios = steps
            .into_iter()
            .map(|st| {
                let params = ScenarioParams {
                    suite: Some(name.to_string()),
                    step: Some(st.name.clone()),
                    prompt: st.params.prompt,
                    prompt_tokens: st.params.prompt_tokens,
                    context_tokens: st.params.context_tokens,
                    max_tokens: Some(st.params.max_tokens),
                    requests: Some(st.requests),
                    ..template.params.clone()
                };
                Scenario {
                    name: st.name,
                    params,
                    workload: st.workload,
                    stop: Stop {
                        requests: Some(st.requests),
                        duration: template.stop.duration,
                    },
                    ..template.clone()
                }
            })
            .collect();
        plan.recorded.suite = Some(name.to_string());
    } else if let Some(n) = w.prompt_tokens {
        if n == 0 {
            bail!("--prompt-tokens must be at least 1");
        }
        if w.shared_prefix_tokens > n {
            bail!(
                "--shared-prefix-tokens ({}) is longer than --prompt-tokens ({n})",
                w.shared_prefix_tokens
            );
        }
        let syn = Synthetic {
            prompt: Length {
                mean: n,
                stdev: w.prompt_tokens_stdev,
            },
            output,
            default_max_tokens: Some(a.max_tokens),
            shared_prefix: w.shared_prefix_tokens,
            temperature: a.temperature,
            seed: a.seed,
            needs_context: None,
        };
        let sc = &mut plan.scenarios[0];
        sc.params.prompt_tokens = Some(n);
        sc.params.prompt_tokens_stdev = Some(w.prompt_tokens_stdev);
        sc.params.shared_prefix_tokens = Some(w.shared_prefix_tokens);
        if let Some(o) = output {
            sc.params.output_tokens = Some(o.mean);
            sc.params.output_tokens_stdev = Some(o.stdev);
        }
        sc.workload = Arc::new(syn);
        plan.recorded.workload = Some("synthetic".into());
    } else if let Some(path) = &w.conversations {
        if a.rate.is_some() {
            bail!(
                "--conversations runs closed-loop: use --concurrency (conversations at once), not --rate"
            );
        }
        if a.requests.is_some() {
            bail!(
                "--conversations runs each selected conversation once: use --max-conversations, not --requests"
            );
        }
        if w.output_tokens.is_some() {
            bail!(
                "--output-tokens does not apply to --conversations: turns take \"max_tokens\" or --max-tokens"
            );
        }
        let convs = select_conversations(a)?;
        let template = match &w.chat_template {
            Some(t) => Some(chat_template::load(t)?),
            None => None,
        };
        if let Some(t) = &template {
            // Render every conversation's longest history once now, so a template that
            // rejects these messages fails before any request.
            for c in &convs {
                let mut d = Dialogue::new(c);
                while d.next_turn().is_some() {
                    let msgs = d.messages();
                    t.render(&msgs).with_context(|| {
                        format!("--chat-template cannot render conversation {:?}", c.id)
                    })?;
                    d.reply("reply");
                }
            }
        }
        let sc = &mut plan.scenarios[0];
        sc.params.requests = None;
        sc.params.conversations_file = Some(path.display().to_string());
        sc.params.conversations = Some(convs.len() as u64);
        sc.params.include_tags = Some(w.include_tags.clone());
        sc.params.exclude_tags = Some(w.exclude_tags.clone());
        sc.params.context_size = w.context_size;
        sc.params.chat_template = w.chat_template.clone();
        sc.workload = Arc::new(ConversationSet {
            conversations: convs,
            default_max_tokens: a.max_tokens,
            temperature: a.temperature,
            context_size: w.context_size,
            template,
        });
        plan.recorded.workload = Some("conversations".into());
        // The conversations render their own histories (above).
        return Ok(());
    } else if let Some(path) = &w.dataset {
        let mut ds = dataset::load(path, &w.dataset_format, a.max_tokens, a.temperature)?;
        if w.shuffle {
            dataset::shuffle(&mut ds.specs, a.seed);
        }
        if ds.skipped > 0 {
            eprintln!(
                "--dataset {}: {} entries without a human turn left out",
                path.display(),
                ds.skipped
            );
        }
        let n = ds.specs.len() as u64;
        let sc = &mut plan.scenarios[0];
        if a.requests.is_none() && a.duration.is_none() {
            // Each prompt once unless told otherwise.
            sc.stop.requests = Some(n);
            sc.params.requests = Some(n);
        }
        sc.params.dataset = Some(path.display().to_string());
        sc.params.dataset_format = Some(ds.format.name().to_string());
        sc.params.dataset_prompts = Some(n);
        if ds.specs.iter().any(|s| !s.images.is_empty()) {
            sc.params.images = Some("dataset".into());
        }
        if ds.specs.iter().any(|s| s.tools.is_some()) {
            sc.params.tools = Some("dataset".into());
        }
        sc.params.shuffle = Some(w.shuffle);
        sc.workload = Arc::new(PromptList { specs: ds.specs });
        plan.recorded.workload = Some("dataset".into());
    }
    // Output lengths for --prompt and --dataset (synthetic prompts carry their own; suites and
    // conversations refuse them above).
    if let Some(o) = output
        && w.prompt_tokens.is_none()
    {
        let sc = &mut plan.scenarios[0];
        sc.params.output_tokens = Some(o.mean);
        sc.params.output_tokens_stdev = Some(o.stdev);
        sc.workload = Arc::new(OutputLengths {
            inner: sc.workload.clone(),
            output: o,
            seed: a.seed,
        });
    }
    // The chat template renders every scenario's prompts, whatever their source.
    if let Some(t) = &w.chat_template {
        let render = chat_template::load(t)?;
        for sc in &mut plan.scenarios {
            sc.params.chat_template = Some(t.clone());
            // Check the template on each scenario's first request before sending anything.
            render
                .render(&sc.workload.get(0).prompt.messages())
                .with_context(|| format!("--chat-template {t}"))?;
            sc.workload = Arc::new(chat_template::Templated {
                inner: sc.workload.clone(),
                template: render.clone(),
            });
        }
    }
    Ok(())
}

/// `--trace FILE`: the open loop sends request i at the trace's offset i / `--trace-speedup`.
fn apply_trace(a: &RunArgs, path: &std::path::Path, plan: &mut RunSettings) -> anyhow::Result<()> {
    let w = &a.workload;
    if a.rate.is_some() || a.concurrency.is_some() {
        bail!(
            "--trace sends each request at its trace timestamp: --rate and --concurrency do not apply (--trace-speedup scales the pace; --max-concurrency caps requests in flight)"
        );
    }
    if w.output_tokens.is_some() {
        bail!("--output-tokens does not apply to --trace: each row gives its output length");
    }
    let speedup = w.trace_speedup;
    if !(speedup > 0.0 && speedup.is_finite() && speedup <= 1e6) {
        bail!("--trace-speedup must be a number above 0 and at most 1000000 (got {speedup})");
    }
    if let Some(n) = a.max_concurrency
        && !(1..=super::MAX_CONCURRENCY).contains(&n)
    {
        bail!(
            "--max-concurrency must be between 1 and {} (got {n})",
            super::MAX_CONCURRENCY
        );
    }
    let format = match &w.trace_format {
        None => None,
        Some(f) => Some(TraceFormat::parse(f).with_context(|| {
            format!("--trace-format {f:?} is not known; choose mooncake, azure or burstgpt")
        })?),
    };
    let mut t = trace::load(path, format)?;
    if t.skipped > 0 {
        eprintln!(
            "--trace {}: {} failure rows (0 response tokens) left out",
            path.display(),
            t.skipped
        );
    }
    if let Some(r) = t
        .rows
        .iter()
        .find(|r| r.input > MAX_TOKENS || r.output > MAX_TOKENS)
    {
        bail!(
            "--trace {}:{}: a length over {MAX_TOKENS} tokens is more than any model's context",
            path.display(),
            r.line
        );
    }
    if let Some(n) = a.requests {
        if n == 0 {
            bail!("--requests must be at least 1");
        }
        t.rows.truncate(n.min(usize::MAX as u64) as usize);
    }
    let n = t.rows.len() as u64;
    let workload = TraceWorkload {
        rows: t.rows,
        temperature: a.temperature,
        seed: a.seed,
    };
    let offsets: Arc<[std::time::Duration]> = workload.offsets(speedup).into();
    let span = offsets.last().map_or(0.0, |d| d.as_secs_f64());
    // The mean rate over the replay (requests per second), for reports that show a rate.
    let rate = if n > 1 && span > 0.0 {
        (n - 1) as f64 / span
    } else {
        n as f64
    };
    // Exact output lengths where the server allows it.
    plan.options.ignore_eos = true;
    let sc = &mut plan.scenarios[0];
    sc.load = Load::Open {
        rate,
        arrival: Arrival::Trace,
        max_concurrency: a.max_concurrency,
    };
    sc.trace_offsets = Some(offsets);
    sc.stop.requests = Some(n);
    sc.params.load = Some(sc.load);
    sc.params.requests = Some(n);
    sc.params.trace = Some(path.display().to_string());
    sc.params.trace_format = Some(t.format.name().to_string());
    sc.params.trace_requests = Some(n);
    sc.params.trace_skipped = (t.skipped > 0).then_some(t.skipped);
    sc.params.trace_speedup = Some(speedup);
    sc.params.max_tokens = None;
    sc.workload = Arc::new(workload);
    plan.recorded.workload = Some("trace".into());
    Ok(())
}

/// The server's context length, asked only when a scenario needs it.
pub async fn server_context(
    plan: &RunSettings,
    model: &str,
) -> Option<crate::server::info::ContextLength> {
    let needed = plan
        .scenarios
        .iter()
        .any(|s| s.workload.context_needed().is_some());
    if !needed {
        return None;
    }
    let c = crate::server::info::context_length(&plan.client, model).await;
    match &c {
        Some(c) => eprintln!(
            "Server context length: {} tokens (from {}).",
            c.tokens, c.source
        ),
        None => eprintln!(
            "The server does not report its context length: every step is run; those larger than its context may fail."
        ),
    }
    c
}

/// Why `sc` must be skipped, if it must: it needs more context than the server has.
pub fn skip(
    sc: &Scenario,
    context: Option<&crate::server::info::ContextLength>,
) -> Option<crate::results::file::Skipped> {
    let need = sc.workload.context_needed()?;
    let have = context?;
    (need > have.tokens).then(|| crate::results::file::Skipped {
        name: sc.name.clone(),
        params: sc.params.clone(),
        reason: format!(
            "needs a context of {need} tokens; the server has {} (from {})",
            have.tokens, have.source
        ),
    })
}

/// The conversations `--conversations` with tag filters and `--max-conversations` select.
pub fn select_conversations(a: &RunArgs) -> anyhow::Result<Vec<conversation::Conversation>> {
    let w = &a.workload;
    let path = w
        .conversations
        .as_ref()
        .context("--list-conversations needs --conversations FILE")?;
    let all = conversation::load(path)?;
    let total = all.len();
    let mut convs = conversation::filter_tags(all, &w.include_tags, &w.exclude_tags);
    if let Some(n) = w.max_conversations {
        if n == 0 {
            bail!("--max-conversations must be at least 1");
        }
        convs.truncate(n);
    }
    if convs.is_empty() {
        bail!(
            "--conversations {}: none of its {total} conversations is left after the tag filters",
            path.display()
        );
    }
    Ok(convs)
}

/// `--list-conversations`: prints the selected conversations with their estimated sizes.
pub fn list_conversations(a: &RunArgs) -> anyhow::Result<i32> {
    let convs = select_conversations(a)?;
    println!(
        "{:<28} {:>5} {:>5} {:>12} {:>12}  tags / description",
        "id", "turns", "docs", "input tok", "context tok"
    );
    for c in &convs {
        let s = conversation::size(c, a.max_tokens);
        let fits = match a.workload.context_size {
            Some(n) if s.peak_tokens > n => "  (over --context-size: skipped)",
            _ => "",
        };
        println!(
            "{:<28} {:>5} {:>5} {:>12} {:>12}  [{}] {}{fits}",
            c.id,
            c.turns.len(),
            s.documents,
            s.input_tokens,
            s.peak_tokens,
            c.tags.join(","),
            c.description.as_deref().unwrap_or("")
        );
    }
    println!(
        "\nTokens are estimates (llmbench's simple tokenizer); \"context tok\" is the largest turn's prompt plus its reply limit, replies assumed at their limit (--max-tokens {} unless a turn sets max_tokens).",
        a.max_tokens
    );
    Ok(0)
}

/// `--tools FILE`: an OpenAI `tools` array; each entry a function with a name.
pub(crate) fn load_tools(path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--tools {}: cannot read", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("--tools {}: not JSON", path.display()))?;
    crate::workload::check_tools(&v)
        .map_err(|e| anyhow::anyhow!("--tools {}: {e}", path.display()))?;
    Ok(v)
}
