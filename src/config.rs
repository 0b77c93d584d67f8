//! Flags as typed become a validated configuration, in one place.

use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::json;

use crate::cli::{ArrivalArg, RunArgs, SimArgs};
use crate::client::ClientConfig;
use crate::protocol::{self, Protocol, RequestOptions};
use crate::runner::Scenario;
use crate::schedule::{Arrival, Load, Stop};
use crate::sim::SimConfig;
use crate::sim::engine::{EngineConfig, Timing};
use crate::workload::{DEFAULT_PROMPT, FixedPrompt, Prompt, RequestSpec};

/// Simulator settings from flags.
pub fn sim_config(a: &SimArgs) -> anyhow::Result<SimConfig> {
    let timing = match (a.ttft_ms, a.itl_ms) {
        (Some(ttft_ms), Some(itl_ms)) => {
            if !(ttft_ms >= 0.0 && itl_ms >= 0.0) {
                bail!("--ttft-ms and --itl-ms must be zero or more");
            }
            Timing::Fixed {
                ttft_ms,
                itl_ms,
                tokens: a.tokens,
            }
        }
        _ => {
            if a.max_batch == 0 {
                bail!("--max-batch must be at least 1");
            }
            for (flag, v) in [
                ("--prefill-ms-per-token", a.prefill_ms_per_token),
                ("--decode-ms", a.decode_ms),
                ("--decode-ms-per-seq", a.decode_ms_per_seq),
            ] {
                if !(v >= 0.0 && v.is_finite()) {
                    bail!("{flag} must be a finite number, zero or more (got {v})");
                }
            }
            Timing::Engine(EngineConfig {
                prefill_ms_per_token: a.prefill_ms_per_token,
                decode_ms: a.decode_ms,
                decode_ms_per_seq: a.decode_ms_per_seq,
                max_batch: a.max_batch,
            })
        }
    };
    Ok(SimConfig {
        model: a.sim_model.clone(),
        timing,
        context_length: a.context_length,
        cache_blocks: a.cache_blocks,
        seed: a.sim_seed,
        token_bytes: match a.token_bytes {
            Some(0) => bail!("--token-bytes must be at least 1"),
            n => n,
        },
        faults: fault_config(a)?,
        send_log: match &a.send_log {
            Some(p) => {
                crate::commands::run::check_writable(p, "--send-log")?;
                Some(p.clone())
            }
            None => None,
        },
        ..SimConfig::default()
    })
}

/// Fault-injection settings from flags.
fn fault_config(a: &SimArgs) -> anyhow::Result<crate::sim::fault::FaultConfig> {
    use crate::sim::fault::{Fault, FaultConfig};
    let kinds = a
        .fault
        .iter()
        .map(|k| {
            Fault::parse(k).with_context(|| {
                let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "--fault {k:?} is not known; choose from {}",
                    names.join(", ")
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if !(0.0..=1.0).contains(&a.fault_rate) {
        bail!(
            "--fault-rate must be between 0 and 1 (got {})",
            a.fault_rate
        );
    }
    if !(a.fault_trickle_ms >= 0.0 && a.fault_trickle_ms.is_finite()) {
        bail!(
            "--fault-trickle-ms must be zero or more (got {})",
            a.fault_trickle_ms
        );
    }
    Ok(FaultConfig {
        kinds,
        rate: a.fault_rate,
        seed: a.sim_seed,
        after_tokens: a.fault_after_tokens,
        stall: a.fault_stall,
        trickle_ms: a.fault_trickle_ms,
    })
}

/// A target URL split into base and endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl {
    /// What requests are sent to: a base (`http://h:p`) or a full endpoint.
    pub url: String,
    /// Whether `url` is a full endpoint.
    pub is_endpoint: bool,
}

/// Parses a user's URL: `http://h:p`, `http://h:p/v1` (base) or a full endpoint path.
pub fn parse_url(raw: &str) -> anyhow::Result<TargetUrl> {
    let u = reqwest::Url::parse(raw)
        .with_context(|| format!("URL {raw:?} is not a valid URL (expected http://host:port)"))?;
    if !u.username().is_empty() || u.password().is_some() {
        bail!("the URL carries credentials: put them in --api-key-env or --header instead");
    }
    if !matches!(u.scheme(), "http" | "https") {
        bail!("URL {raw:?}: only http and https are supported");
    }
    let path = u.path().trim_end_matches('/');
    let endpoint = ["/chat/completions", "/completions", "/generate"]
        .iter()
        .any(|e| path.ends_with(e));
    let mut base = u.clone();
    if !endpoint {
        base.set_path(path.strip_suffix("/v1").unwrap_or(path));
    }
    Ok(TargetUrl {
        url: base.as_str().trim_end_matches('/').to_string(),
        is_endpoint: endpoint,
    })
}

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

/// Everything `run` needs, validated.
pub struct RunPlan {
    /// The protocol.
    pub protocol: Arc<dyn Protocol>,
    /// Transport settings (URL filled in once the target is known).
    pub client: ClientConfig,
    /// Request options (model filled in once known).
    pub options: RequestOptions,
    /// Scenarios, in order.
    pub scenarios: Vec<Scenario>,
    /// The configuration as recorded in the result file (no secrets).
    pub recorded: serde_json::Value,
    /// `--backend auto`: `protocol` is a placeholder until the target is probed.
    pub auto_backend: bool,
    /// Local tokenizer for counts the server does not report (`None`: count chunks).
    pub tokenizer: Option<Arc<dyn crate::tokenize::Tokenizer>>,
}

/// Validates `run` flags.
pub fn run_plan(a: &RunArgs) -> anyhow::Result<RunPlan> {
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
            protocol::BACKENDS.join(", ")
        )
    })?;
    if a.concurrency.is_some() && a.rate.is_some() {
        bail!(
            "--concurrency (closed loop) and --rate (open loop) exclude each other; for a cap on in-flight requests with --rate use --max-concurrency"
        );
    }
    if a.max_concurrency.is_some() && a.rate.is_none() {
        bail!("--max-concurrency applies to open loop only: give --rate too");
    }
    let load = match a.rate {
        Some(rate) => {
            if !(rate > 0.0 && rate.is_finite()) {
                bail!("--rate must be a positive number of requests per second (got {rate})");
            }
            let arrival = match a.arrival {
                ArrivalArg::Constant => Arrival::Constant,
                ArrivalArg::Poisson => Arrival::Poisson,
                ArrivalArg::Gamma => {
                    if !(a.burstiness > 0.0 && a.burstiness.is_finite()) {
                        bail!("--burstiness must be positive (got {})", a.burstiness);
                    }
                    Arrival::Gamma { cv: a.burstiness }
                }
            };
            if a.max_concurrency == Some(0) {
                bail!("--max-concurrency must be at least 1");
            }
            Load::Open {
                rate,
                arrival,
                max_concurrency: a.max_concurrency,
            }
        }
        None => {
            let concurrency = a.concurrency.unwrap_or(1);
            if concurrency == 0 {
                bail!("--concurrency must be at least 1");
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
    let spec = RequestSpec {
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
    let tokenizer = crate::tokenize::load(a.tokenizer.as_deref())?;
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
    let params = json!({
        "load": load,
        "requests": stop.requests,
        "duration_s": stop.duration.map(|d| d.as_secs_f64()),
        "max_tokens": a.max_tokens,
        "temperature": a.temperature,
        "warmup": a.warmup,
        "repeat_ratio": a.repeat_ratio,
    });
    let recorded = json!({
        "backend": protocol.name(),
        "stream": !a.no_stream,
        "ignore_eos": a.ignore_eos,
        "seed": a.seed,
        "prompt_chars": spec.prompt.text().len(),
        "header_names": client.headers.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        "connect_timeout_s": a.connect_timeout.as_secs_f64(),
        "request_timeout_s": a.request_timeout.as_secs_f64(),
        "idle_timeout_s": a.idle_timeout.as_secs_f64(),
        "repeat_ratio": a.repeat_ratio,
        "tokenizer": tokenizer.as_ref().map_or("chunks".to_string(), |t| t.name()),
        "retries": a.retries,
    });
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
    };
    let mut plan = RunPlan {
        protocol,
        client,
        options: RequestOptions {
            model: a.model.clone().unwrap_or_default(),
            stream: !a.no_stream,
            ignore_eos: a.ignore_eos,
        },
        scenarios: vec![scenario],
        recorded,
        auto_backend,
        tokenizer,
    };
    crate::plan::apply_workload(a, &mut plan)?;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_bases_or_endpoints() {
        let t = parse_url("http://localhost:8000/v1/").unwrap();
        assert_eq!(t.url, "http://localhost:8000");
        assert!(!t.is_endpoint);
        let t = parse_url("http://h:1/generate").unwrap();
        assert_eq!(
            (t.url.as_str(), t.is_endpoint),
            ("http://h:1/generate", true)
        );
        let t = parse_url("https://api.example.com/v1/chat/completions").unwrap();
        assert!(t.is_endpoint);
        assert!(parse_url("localhost:8000").is_err());
        assert!(parse_url("ftp://x").is_err());
        let e = parse_url("http://user:secret@h:1").unwrap_err().to_string();
        assert!(!e.contains("secret") && e.contains("credentials"), "{e}");
    }

    #[test]
    fn headers_are_parsed_and_redacted() {
        let h = parse_headers(&["X-Key: abc".into()]).unwrap();
        assert_eq!(h, vec![("X-Key".into(), "abc".into())]);
        let e = parse_headers(&["Authorization Bearer sk-123".into()]).unwrap_err();
        assert!(!e.to_string().contains("sk-123"));
    }
}
