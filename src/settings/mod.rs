//! Flags as typed become one validated, typed [`RunSettings`], in one pass, before any file
//! is opened or created and before any request or probe is sent. Commands take settings,
//! never the raw flags.

pub mod capacity;
pub mod cost;
pub mod file;
pub mod k8s;
mod media;
pub mod outputs;
pub mod shard;
pub mod sim;
mod slo;
pub(crate) mod store;
pub mod url;
pub mod workload;

pub use slo::{check_step_targets, targets_for};

pub use sim::sim_config;
pub use url::{TargetUrl, parse_url, shown_url};

use std::sync::Arc;

use anyhow::{Context, bail};

use crate::cli::{ArrivalArg, RunArgs};
use crate::load::Scenario;
use crate::load::schedule::{Arrival, Load, Stop};
use crate::protocol::{self, Protocol, RequestOptions};
use crate::report::Format;
use crate::results::params::{RunConfig, ScenarioParams};
use crate::sim::SimConfig;
use crate::transport::client::ClientConfig;
use crate::workload::{DEFAULT_PROMPT, FixedPrompt, Prompt, RequestSpec};

/// Parses `Name: value` header flags.
pub fn parse_headers(raw: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    raw.iter()
        .map(|h| {
            let (k, v) = h
                .split_once(':')
                .with_context(|| format!("--header {:?}: expected \"Name: value\"", redact(h)))?;
            Ok((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// A header flag with its value hidden.
pub fn redact(header: &str) -> String {
    match header.split_once(':') {
        Some((k, _)) => format!("{}: <redacted>", k.trim()),
        None => "<redacted>".into(),
    }
}

/// Where requests go.
pub enum TargetSetting {
    /// A server at this URL.
    Url(TargetUrl),
    /// The built-in simulator, started for the run.
    Simulator(SimConfig),
}

/// What happens with a finished run besides the result file: the store, `--format` files,
/// the `--report` directory.
#[derive(Debug, Clone, Default)]
pub struct ReportSettings {
    /// `--format`: extra files beside the result (json, csv, md, html).
    pub formats: Vec<crate::report::Format>,
    /// `--report DIR`.
    pub dir: Option<std::path::PathBuf>,
    /// `--no-store`.
    pub no_store: bool,
    /// The results store the run goes into (`--store`; `None` with `--no-store`), already
    /// reached once when it is a server.
    pub store: Option<crate::results::store::StoreLoc>,
    /// `--tag NAME=VALUE`s, stored with the run.
    pub tags: crate::results::store::Tags,
}

/// Everything `run` needs, validated.
pub struct RunSettings {
    /// The protocol.
    pub protocol: Arc<dyn Protocol>,
    /// Transport settings (URL filled in once the target is known).
    pub client: ClientConfig,
    /// Request options (model filled in once known).
    pub options: RequestOptions,
    /// Scenarios, in order.
    pub scenarios: Vec<Scenario>,
    /// The configuration as recorded in the result file (no secrets).
    pub recorded: RunConfig,
    /// What `--backend auto` found at the target (kept for the run's server record).
    pub detected: Option<crate::server::detect::DetectedServer>,
    /// `--backend auto`: `protocol` is a placeholder until the target is probed.
    pub auto_backend: bool,
    /// Local tokenizer for counts the server does not report (`None`: count chunks).
    pub tokenizer: Option<Arc<dyn crate::measure::tokenize::Tokenizer>>,
    /// The user chose the tokenizer (`--tokenizer`).
    pub tokenizer_explicit: bool,
    /// The user gave `--ignore-eos` (suites and `--output-tokens` ask for it on their own).
    pub ignore_eos_flag: bool,
    /// This run's id: the result file, the managed server's log and request ids share it.
    pub run_id: String,
    /// Where requests go.
    pub target: TargetSetting,
    /// `-o`: the result file, or standard output.
    pub output: Option<outputs::OutputTarget>,
    /// `--records`: one JSON line per finished request.
    pub records: Option<std::path::PathBuf>,
    /// `--slo` targets.
    pub slo: Vec<crate::measure::slo::Target>,
    /// The store, `--format`, `--report`.
    pub report: ReportSettings,
    /// `--server-cmd`: the server llmbench starts and stops.
    pub server_cmd: Option<crate::server::managed::ServerCmd>,
    /// Resource sampling and server metrics.
    pub telemetry: crate::telemetry::monitor::TelemetrySettings,
    /// `-q`: no progress bar.
    pub quiet: bool,
    /// `--tui`: the full-screen live view on a terminal.
    pub tui: bool,
    /// `--pull`: Ollama pulls a model it does not have.
    pub pull: bool,
    /// `--grace`: how long Ctrl-C waits for requests in flight.
    pub grace: std::time::Duration,
    /// `--gpu-cost-per-hour`, `--gpus`.
    pub cost: cost::CostSettings,
    /// Scenarios chosen as the run goes (`capacity`); `None`: `scenarios` in order.
    pub steps: Option<Box<dyn crate::load::Steps>>,
    /// `--until`: each scenario stops once this interval is narrow enough.
    pub until: Option<capacity::Until>,
    /// `--shard K/N` and `--start-at` (see `shard`).
    pub shard: Option<shard::ShardSettings>,
}

/// Fewest requests per second `--rate` takes (one per 1000 s).
const MIN_RATE: f64 = 0.001;
/// Most requests per second `--rate` takes.
const MAX_RATE: f64 = 1_000_000.0;
/// Most requests at once `--concurrency` and `--max-concurrency` take.
const MAX_CONCURRENCY: usize = 1_000_000;

/// Validates `run` flags: the one pass from flags to settings. Nothing is opened for writing,
/// created or sent here; output paths are checked (see [`outputs`]).
pub fn run_settings(a: &RunArgs) -> anyhow::Result<RunSettings> {
    let auto_backend = a.backend == "auto";
    let lookup = if auto_backend {
        "openai-chat"
    } else {
        &a.backend
    };
    let protocol = protocol::by_name(lookup).with_context(|| {
        format!(
            "--backend {:?} is not known; choose one of {}",
            a.backend,
            protocol::backend_names().join(", ")
        )
    })?;
    if a.concurrency.is_some() && a.rate.is_some() {
        bail!(
            "--concurrency (closed loop) and --rate (open loop) exclude each other; for a cap on in-flight requests with --rate use --max-concurrency"
        );
    }
    if a.max_concurrency.is_some() && a.rate.is_none() && a.workload.trace.is_none() {
        bail!("--max-concurrency applies to open loop only: give --rate (or --trace) too");
    }
    let load = match a.rate {
        Some(rate) => {
            if !(MIN_RATE..=MAX_RATE).contains(&rate) {
                bail!(
                    "--rate must be between {MIN_RATE} and {MAX_RATE} requests per second (got {rate})"
                );
            }
            let arrival = match a.arrival {
                ArrivalArg::Constant => Arrival::Constant,
                ArrivalArg::Poisson => Arrival::Poisson,
                ArrivalArg::Gamma => {
                    if !(0.01..=100.0).contains(&a.burstiness) {
                        bail!(
                            "--burstiness (the gaps' coefficient of variation) must be between 0.01 and 100 (got {})",
                            a.burstiness
                        );
                    }
                    Arrival::Gamma { cv: a.burstiness }
                }
            };
            if let Some(n) = a.max_concurrency
                && !(1..=MAX_CONCURRENCY).contains(&n)
            {
                bail!("--max-concurrency must be between 1 and {MAX_CONCURRENCY} (got {n})");
            }
            Load::Open {
                rate,
                arrival,
                max_concurrency: a.max_concurrency,
            }
        }
        None => {
            let concurrency = a.concurrency.unwrap_or(1);
            if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
                bail!("--concurrency must be between 1 and {MAX_CONCURRENCY} (got {concurrency})");
            }
            Load::Closed { concurrency }
        }
    };
    if a.requests == Some(0) {
        bail!("--requests must be at least 1");
    }
    if a.duration.is_some_and(|d| d.is_zero()) {
        bail!("--duration must be longer than zero");
    }
    let stop = Stop {
        requests: a.requests.or(if a.duration.is_none() {
            Some(100)
        } else {
            None
        }),
        duration: a.duration,
    };
    if let Some(t) = a.temperature
        && !(t >= 0.0 && t.is_finite())
    {
        bail!("--temperature must be zero or more (got {t})");
    }
    if a.max_tokens == 0 {
        bail!("--max-tokens must be at least 1: a request for no tokens cannot be timed");
    }
    for (flag, d) in [
        ("--request-timeout", a.request_timeout),
        ("--idle-timeout", a.idle_timeout),
        ("--connect-timeout", a.connect_timeout),
    ] {
        if d.is_zero() {
            bail!("{flag} must be longer than zero: every request would time out");
        }
    }
    let spec = RequestSpec {
        images: Vec::new(),
        tools: None,
        audio: Vec::new(),
        prompt: Prompt::Text(a.prompt.clone().unwrap_or_else(|| DEFAULT_PROMPT.into())),
        max_tokens: Some(a.max_tokens),
        temperature: a.temperature,
    };
    if let Some(r) = a.repeat_ratio
        && !(0.0..1.0).contains(&r)
    {
        bail!("--repeat-ratio must be at least 0 and below 1 (got {r})");
    }
    if a.repeat_ratio.is_some()
        && (a.workload.suite.is_some()
            || a.workload.dataset.is_some()
            || a.workload.prompt_tokens.is_some()
            || a.workload.conversations.is_some())
    {
        bail!(
            "--repeat-ratio repeats the --prompt (or default prompt) only: it does not combine with --suite, --dataset, --prompt-tokens or --conversations"
        );
    }
    let tokenizer = crate::measure::tokenize::load(a.tokenizer.as_deref())?;
    let mut headers = parse_headers(&a.headers)?;
    let has_auth = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
    if let Some(path) = &a.api_key_file {
        let key = std::fs::read_to_string(path)
            .with_context(|| format!("--api-key-file: cannot read {}", path.display()))?;
        let key = key.trim();
        if key.is_empty() || key.contains(['\n', '\r']) {
            bail!(
                "--api-key-file {}: expected one line holding the key",
                path.display()
            );
        }
        if has_auth {
            bail!("--api-key-file and --header \"Authorization: ...\" exclude each other");
        }
        headers.push(("Authorization".into(), format!("Bearer {key}")));
    } else if let Ok(key) = std::env::var(&a.api_key_env)
        && !key.trim().is_empty()
        && !has_auth
    {
        headers.push(("Authorization".into(), format!("Bearer {}", key.trim())));
    }
    let client = ClientConfig {
        headers,
        connect_timeout: a.connect_timeout,
        request_timeout: a.request_timeout,
        idle_timeout: a.idle_timeout,
        insecure: a.insecure,
        ca_cert: a.ca_cert.clone(),
        use_env_proxy: a.use_env_proxy,
        retries: a.retries,
        retry_max_wait: a.retry_max_wait,
        keepalive: !a.no_keepalive,
        direct_http1: std::env::var("LLMBENCH_HTTP_CLIENT").map_or(true, |v| v != "reqwest"),
        recv_stamps: kernel_clock(std::env::var("LLMBENCH_CLOCK").ok().as_deref())?,
        request_id: match &a.request_id_header {
            Some(h) => {
                reqwest::header::HeaderName::from_bytes(h.as_bytes())
                    .with_context(|| format!("--request-id-header {h:?}: not a header name"))?;
                Some((h.clone(), String::new()))
            }
            None => None,
        },
        ..ClientConfig::default()
    };
    let params = ScenarioParams {
        load: Some(load),
        requests: stop.requests,
        duration_s: stop.duration.map(|d| d.as_secs_f64()),
        max_tokens: Some(a.max_tokens),
        temperature: a.temperature,
        warmup: Some(a.warmup),
        repeat_ratio: a.repeat_ratio,
        ..Default::default()
    };
    let recorded = RunConfig {
        backend: protocol.name().to_string(),
        stream: !a.no_stream,
        ignore_eos: a.ignore_eos,
        seed: a.seed,
        prompt_chars: spec.prompt.text().len(),
        header_names: client.headers.iter().map(|(k, _)| k.clone()).collect(),
        connect_timeout_s: a.connect_timeout.as_secs_f64(),
        request_timeout_s: a.request_timeout.as_secs_f64(),
        idle_timeout_s: a.idle_timeout.as_secs_f64(),
        repeat_ratio: a.repeat_ratio,
        tokenizer: tokenizer
            .as_ref()
            .map_or("chunks".to_string(), |t| t.name()),
        retries: a.retries,
        ..Default::default()
    };
    let scenario = Scenario {
        name: a.name.clone(),
        params,
        workload: match a.repeat_ratio {
            Some(ratio) => Arc::new(crate::workload::repeat::RepeatMix {
                base: spec,
                ratio,
                seed: a.seed,
                nonce: rand::random::<u32>() as u64,
            }),
            None => Arc::new(FixedPrompt { spec }),
        },
        load,
        stop,
        warmup: a.warmup,
        seed: a.seed,
        trace_offsets: None,
        shard: None,
        start: None,
    };
    let target = match &a.url {
        Some(raw) => TargetSetting::Url(parse_url(raw)?),
        None => TargetSetting::Simulator(sim_config(&a.sim)?),
    };
    let run_id = crate::results::file::new_run_id();
    let output = match a.output.as_deref() {
        Some(p) if p.as_os_str() == "-" => Some(outputs::OutputTarget::Stdout),
        Some(p) => Some(outputs::OutputTarget::File(p.to_path_buf())),
        None => None,
    };
    let o = &a.outputs;
    let formats = o
        .format
        .iter()
        .map(|f| {
            Format::parse(f).with_context(|| {
                format!(
                    "--format {f:?}: unknown format (choose from {})",
                    Format::ALL.map(Format::name).join(", ")
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if !o.format.is_empty() && output == Some(outputs::OutputTarget::Stdout) {
        bail!("--format names files after -o: give -o a file path, not `-`");
    }
    if let Some(dir) = &o.report {
        outputs::check_report_dir(dir)?;
    }
    let slo = match &o.slo {
        Some(spec) => crate::measure::slo::parse(spec)?,
        None => Vec::new(),
    };
    let server_cmd = server_cmd(a, output.as_ref().and_then(|o| o.path()), &run_id)?;
    let mut settings = RunSettings {
        protocol,
        client,
        options: RequestOptions {
            model: a.model.clone().unwrap_or_default(),
            stream: !a.no_stream,
            ignore_eos: a.ignore_eos,
            batch_inputs: match a.workload.batch_inputs {
                n @ 1..=4096 => n,
                n => bail!("--batch-inputs must be from 1 to 4096 (got {n})"),
            },
            tools: match &a.workload.tools {
                Some(p) => Some(Arc::new(workload::load_tools(p)?)),
                None => None,
            },
        },
        scenarios: vec![scenario],
        recorded,
        detected: None,
        auto_backend,
        tokenizer,
        tokenizer_explicit: a.tokenizer.is_some(),
        ignore_eos_flag: a.ignore_eos,
        run_id,
        target,
        output,
        records: a.records.clone(),
        slo,
        report: ReportSettings {
            formats,
            dir: o.report.clone(),
            no_store: o.no_store,
            store: store::store(o)?,
            tags: store::tags(&o.tag)?,
        },
        server_cmd,
        telemetry: crate::telemetry::monitor::TelemetrySettings {
            sample_interval: a.telemetry.sample_interval,
            server_pid: a.telemetry.server_pid,
            metrics_url: a.telemetry.metrics_url.clone(),
            no_metrics: a.telemetry.no_metrics,
            isolate: a.telemetry.isolate,
        },
        quiet: a.quiet,
        tui: a.tui,
        pull: a.pull,
        grace: a.grace,
        cost: cost::cost_settings(&a.telemetry)?,
        steps: None,
        until: capacity::until(a)?,
        shard: shard::shard_settings(a, chrono::Utc::now())?,
    };
    crate::settings::workload::apply_workload(a, &mut settings)?;
    shard::apply(&mut settings);
    media::apply_media(a, &mut settings)?;
    check_paths(a, &settings)?;
    Ok(settings)
}

/// Where a `--format` file goes: beside `-o` with the format's extension, or named after the
/// run when there is no `-o`.
pub fn format_path(
    output: Option<&std::path::Path>,
    run_id: &str,
    f: Format,
) -> std::path::PathBuf {
    output
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| std::path::PathBuf::from(format!("llmbench-{run_id}.json")))
        .with_extension(f.name())
}

/// A file written beside a `--format` file (`result.csv` → `result.turns.csv`).
pub fn companion_path(path: &std::path::Path, name: &str) -> std::path::PathBuf {
    let ext = path.extension().map(|e| e.to_string_lossy().into_owned());
    path.with_extension(match ext {
        Some(ext) => format!("{name}.{ext}"),
        None => name.to_string(),
    })
}

/// Output paths: each writable as a regular file, none the same as another or as an input.
fn check_paths(a: &RunArgs, s: &RunSettings) -> anyhow::Result<()> {
    let mut c = outputs::PathCheck::default();
    if let Some(p) = s.output.as_ref().and_then(|o| o.path()) {
        c.output("--output", p);
    }
    if let Some(p) = &s.records {
        c.output("--records", p);
    }
    if let Some(cmd) = &s.server_cmd {
        c.output("--server-log", &cmd.log);
    }
    if let TargetSetting::Simulator(sim) = &s.target
        && let Some(p) = &sim.send_log
    {
        c.output("--send-log", p);
    }
    // `--format` files sit beside the result (or are named after the run without -o).
    let output = s.output.as_ref().and_then(|o| o.path());
    for f in &s.report.formats {
        let path = format_path(output, &s.run_id, *f);
        if Some(path.as_path()) != output {
            c.output("--format", &path);
        }
        // Conversations add per-turn and RAG tables beside the CSV.
        if *f == Format::Csv && a.workload.conversations.is_some() {
            for name in ["turns", "rag"] {
                c.output("--format", &companion_path(&path, name));
            }
        }
    }
    let w = &a.workload;
    for (flag, p) in [
        ("--dataset", w.dataset.as_deref()),
        ("--conversations", w.conversations.as_deref()),
        ("--api-key-file", a.api_key_file.as_deref()),
        ("--ca-cert", a.ca_cert.as_deref()),
    ] {
        if let Some(p) = p {
            c.input(flag, p);
        }
    }
    if let Some(t) = &a.tokenizer {
        c.input("--tokenizer", std::path::Path::new(t));
    }
    if let Some(t) = &w.chat_template {
        c.input("--chat-template", std::path::Path::new(t));
    }
    c.check()
}

/// Validates the telemetry flags and, with `--server-cmd`, says how to run the server (its
/// log is named after the run's id unless `--server-log` says otherwise).
fn server_cmd(
    args: &RunArgs,
    output: Option<&std::path::Path>,
    run_id: &str,
) -> anyhow::Result<Option<crate::server::managed::ServerCmd>> {
    let t = &args.telemetry;
    if t.sample_interval < std::time::Duration::from_millis(10) {
        bail!(
            "--sample-interval {:?}: must be at least 10ms",
            t.sample_interval
        );
    }
    if let Some(u) = &t.metrics_url
        && reqwest::Url::parse(u).is_err()
    {
        bail!("--metrics-url {u:?} is not a URL");
    }
    let Some(cmd) = &t.server_cmd else {
        return Ok(None);
    };
    let Some(url) = &args.url else {
        bail!(
            "--server-cmd needs the URL the server will answer on, e.g. `llmbench run http://127.0.0.1:8000 --server-cmd \"...\"`"
        );
    };
    crate::server::managed::command(cmd)?;
    Ok(Some(crate::server::managed::ServerCmd {
        command: cmd.clone(),
        url: crate::telemetry::monitor::origin(url),
        ready_timeout: t.server_ready_timeout,
        stop_grace: t.server_stop_grace,
        log: crate::server::managed::log_path(t.server_log.as_deref(), output, run_id),
    }))
}

/// `LLMBENCH_CLOCK`: `kernel` (the default) times response bytes by when the kernel received
/// them, `read` by when the client read them.
fn kernel_clock(v: Option<&str>) -> anyhow::Result<bool> {
    match v {
        None | Some("" | "kernel") => Ok(true),
        Some("read") => Ok(false),
        Some(other) => anyhow::bail!("LLMBENCH_CLOCK={other:?}: expected \"kernel\" or \"read\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_parsed_and_redacted() {
        let h = parse_headers(&["X-Key: abc".into()]).unwrap();
        assert_eq!(h, vec![("X-Key".into(), "abc".into())]);
        let e = parse_headers(&["Authorization Bearer sk-123".into()]).unwrap_err();
        assert!(!e.to_string().contains("sk-123"));
    }

    #[test]
    fn the_clock_is_the_kernels_unless_read_is_asked_for() {
        assert!(kernel_clock(None).unwrap());
        assert!(kernel_clock(Some("kernel")).unwrap());
        assert!(!kernel_clock(Some("read")).unwrap());
        let e = kernel_clock(Some("wall")).unwrap_err().to_string();
        assert!(
            e.contains("LLMBENCH_CLOCK") && e.contains("\"read\""),
            "{e}"
        );
    }
}
