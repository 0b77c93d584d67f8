//! What the target is: which API it speaks (`--backend auto`), which model to ask for, and,
//! for Ollama, whether the model is there (pulled on request with `--pull`).
//!
//! This is the only place that talks to a server outside a measured request; it runs before
//! the first one.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::protocol::Backend;
use crate::server::detect::{Asker, DetectedServer, identify};
use crate::transport::client::{ClientConfig, describe, http_client};

/// Endpoint paths and the backend each one means.
const ENDPOINTS: &[(&str, Backend)] = &[
    ("/v1/chat/completions", Backend::OpenAiChat),
    ("/chat/completions", Backend::OpenAiChat),
    ("/v1/completions", Backend::OpenAiCompletions),
    ("/completions", Backend::OpenAiCompletions),
    ("/v1/embeddings", Backend::OpenAiEmbeddings),
    ("/v1/rerank", Backend::Rerank),
    ("/rerank", Backend::Rerank),
    ("/api/chat", Backend::OllamaChat),
    ("/api/generate", Backend::OllamaGenerate),
    ("/completion", Backend::LlamaCpp),
    ("/generate_stream", Backend::Tgi),
    ("/generate", Backend::Generate),
];

/// The backend a full endpoint URL names by its path, and the base URL before that path.
pub fn backend_of_endpoint(url: &str) -> Option<(Backend, String)> {
    let trimmed = url.trim_end_matches('/');
    ENDPOINTS.iter().find_map(|(suffix, backend)| {
        trimmed
            .strip_suffix(suffix)
            .map(|base| (*backend, base.to_string()))
    })
}

/// Fails, naming the URL, when no TCP connection can be opened to its host and port.
async fn reachable(cfg: &ClientConfig) -> anyhow::Result<()> {
    let url = reqwest::Url::parse(&cfg.base_url)
        .with_context(|| format!("URL {:?} is not a valid URL", cfg.base_url))?;
    let host = url.host_str().context("the URL has no host")?.to_string();
    let port = url.port_or_known_default().context("the URL has no port")?;
    let connect = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port));
    match tokio::time::timeout(cfg.connect_timeout, connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => bail!("cannot reach {}: {e}", cfg.base_url),
        Err(_) => bail!(
            "cannot reach {}: no connection within {:?} (--connect-timeout)",
            cfg.base_url,
            cfg.connect_timeout
        ),
    }
}

/// The error of a request that got no answer, naming `url` (given without its query, so no
/// key in it is repeated).
fn unreachable(url: &str, e: &reqwest::Error) -> anyhow::Error {
    let why = describe(e);
    // rustls meeting a plain-HTTP answer to its hello.
    let plain = url.starts_with("https://")
        && (why.contains("corrupt message") || why.contains("InvalidContentType"));
    let hint = if plain {
        "; the server speaks plain HTTP there: use http://"
    } else {
        ""
    };
    anyhow::anyhow!("cannot reach {url}: {why}{hint}")
}

/// A small GET of a JSON document; `Ok(None)` for a non-2xx answer or a body that is not JSON.
pub async fn get_json(
    http: &reqwest::Client,
    cfg: &ClientConfig,
    url: &str,
) -> anyhow::Result<Option<Value>> {
    let mut req = http
        .get(cfg.with_query(url))
        .timeout(cfg.connect_timeout * 3);
    for (k, v) in &cfg.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = req.send().await.map_err(|e| unreachable(url, &e))?;
    if !resp.status().is_success() {
        return Ok(None);
    }
    Ok(resp.json::<Value>().await.ok())
}

/// What probing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// The backend picked.
    pub backend: Backend,
    /// Why (shown to the user).
    pub reason: String,
}

/// Probes a base URL (see `detect::identify`) and picks the backend its kind speaks; the
/// probe's findings are kept for the run's server record.
pub async fn detect(cfg: &ClientConfig) -> anyhow::Result<(Detected, DetectedServer)> {
    let http = crate::transport::http::probe_client(cfg, cfg.connect_timeout * 3, true)?;
    let base = &cfg.base_url;
    let ask = Asker {
        http: &http,
        query: cfg.query.as_deref(),
    };
    let found = identify(&ask, base, false)
        .await
        .map_err(|e| unreachable(&format!("{base}/v1/models"), &e))?;
    let Some(found) = found else {
        bail!(
            "cannot tell which API {base} speaks: none of /v1/models, /api/tags, /props, /info answered; give --backend"
        )
    };
    let detected = Detected {
        backend: found.kind.backend(),
        reason: found.kind.evidence().into(),
    };
    Ok((detected, found))
}

/// Picks the backend for a full endpoint URL: by its path, asking `/info` to tell TGI's
/// `/generate` from the plain API's.
pub async fn detect_endpoint(cfg: &ClientConfig) -> anyhow::Result<Detected> {
    let url = &cfg.base_url;
    let Some((backend, base)) = backend_of_endpoint(url) else {
        bail!("cannot tell which API {url} speaks from its path; give --backend");
    };
    if backend == Backend::Generate {
        let http = http_client(cfg)?;
        let info = get_json(&http, cfg, &format!("{base}/info")).await?;
        if info.as_ref().is_some_and(|i| i.get("model_id").is_some()) {
            return Ok(Detected {
                backend: Backend::Tgi,
                reason: "Text Generation Inference (/info answered)".into(),
            });
        }
    }
    Ok(Detected {
        backend,
        reason: format!(
            "the endpoint path {}",
            &url[base.len()..].trim_end_matches('/')
        ),
    })
}

/// The model to ask for when none was given, from what the server lists.
pub async fn default_model(cfg: &ClientConfig, backend: Backend) -> anyhow::Result<Option<String>> {
    let http = http_client(cfg)?;
    let base = &cfg.base_url;
    Ok(match backend {
        Backend::OllamaChat | Backend::OllamaGenerate => {
            ollama_models(cfg).await?.into_iter().next()
        }
        Backend::Tgi => get_json(&http, cfg, &format!("{base}/info"))
            .await?
            .and_then(|i| i["model_id"].as_str().map(str::to_string)),
        Backend::Generate => None,
        _ => get_json(&http, cfg, &format!("{base}/v1/models"))
            .await?
            .and_then(|m| m.pointer("/data/0/id")?.as_str().map(str::to_string)),
    })
}

/// The models an OpenAI-compatible server lists at `/v1/models`; `None` when it lists none.
async fn listed_models(cfg: &ClientConfig) -> Option<Vec<String>> {
    let http = http_client(cfg).ok()?;
    let m = get_json(&http, cfg, &format!("{}/v1/models", cfg.base_url))
        .await
        .ok()??;
    let ids: Vec<String> = m["data"]
        .as_array()?
        .iter()
        .filter_map(|x| x["id"].as_str().map(str::to_string))
        .collect();
    (!ids.is_empty()).then_some(ids)
}

/// The models an Ollama server has (`/api/tags`); an error when it does not answer.
pub async fn ollama_models(cfg: &ClientConfig) -> anyhow::Result<Vec<String>> {
    let http = http_client(cfg)?;
    let url = format!("{}/api/tags", cfg.base_url);
    let tags = get_json(&http, cfg, &url)
        .await?
        .with_context(|| format!("{url} did not answer with a model list: is this Ollama?"))?;
    Ok(tags["models"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["name"].as_str().or(m["model"].as_str()))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default())
}

/// Whether `want` is among Ollama's `have` (a name without a tag means `:latest`).
pub fn ollama_has(have: &[String], want: &str) -> bool {
    let canon = |s: &str| {
        if s.contains(':') {
            s.to_string()
        } else {
            format!("{s}:latest")
        }
    };
    have.iter().any(|h| canon(h) == canon(want))
}

/// Ollama preflight: the server answers and has `model`; with `pull`, a missing model is
/// pulled through `/api/pull` with a progress bar.
pub async fn ollama_preflight(
    cfg: &ClientConfig,
    model: &str,
    pull: bool,
    progress: bool,
) -> anyhow::Result<()> {
    let have = ollama_models(cfg).await?;
    if ollama_has(&have, model) {
        return Ok(());
    }
    if !pull {
        bail!(
            "model {model:?} is not on the Ollama server at {} (it has: {}); pull it with `ollama pull {model}` or give --pull",
            cfg.base_url,
            if have.is_empty() {
                "none".to_string()
            } else {
                have.join(", ")
            }
        );
    }
    ollama_pull(cfg, model, progress).await?;
    let have = ollama_models(cfg).await?;
    if !ollama_has(&have, model) {
        bail!("pulled {model:?} but the server still does not list it");
    }
    Ok(())
}

/// Pulls a model through `/api/pull`, showing the download as a progress bar.
pub async fn ollama_pull(cfg: &ClientConfig, model: &str, progress: bool) -> anyhow::Result<()> {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    let http = http_client(cfg)?;
    let url = &format!("{}/api/pull", cfg.base_url);
    let mut req = http
        .post(cfg.with_query(url))
        .json(&serde_json::json!({"model": model, "stream": true}));
    for (k, v) in &cfg.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let mut resp = req.send().await.map_err(|e| unreachable(url, &e))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        bail!(
            "pulling {model:?} failed: HTTP {status}: {}",
            crate::protocol::snippet(body.as_bytes())
        );
    }
    let target = if progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let pb = ProgressBar::with_draw_target(Some(0), target).with_style(
        ProgressStyle::with_template(
            "pulling {prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    pb.set_prefix(model.to_string());
    let mut framer = crate::transport::sse::Framer::new(crate::transport::sse::Framing::Ndjson);
    let mut outcome: Option<Result<(), String>> = None;
    let mut on_line = |ev: crate::transport::sse::Event<'_>| -> Result<(), String> {
        let v: Value = serde_json::from_slice(ev.data)
            .map_err(|e| format!("malformed progress line ({e})"))?;
        if let Some(err) = v.get("error") {
            outcome = Some(Err(crate::protocol::error_text(err)));
            return Ok(());
        }
        let status = v["status"].as_str().unwrap_or_default();
        if let (Some(total), Some(done)) = (v["total"].as_u64(), v["completed"].as_u64()) {
            pb.set_length(total);
            pb.set_position(done);
        }
        pb.set_message(status.to_string());
        if status == "success" {
            outcome = Some(Ok(()));
        }
        Ok(())
    };
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(300), resp.chunk())
            .await
            .map_err(|_| anyhow::anyhow!("pulling {model:?}: no progress for 300 s"))?
            .map_err(|e| anyhow::anyhow!("pulling {model:?}: {}", describe(&e)))?;
        match chunk {
            Some(b) => framer.push(&b, &mut on_line).map_err(anyhow::Error::msg)?,
            None => {
                framer.finish(&mut on_line).map_err(anyhow::Error::msg)?;
                break;
            }
        }
    }
    pb.finish_and_clear();
    match outcome {
        Some(Ok(())) => {
            eprintln!("Pulled {model}.");
            Ok(())
        }
        Some(Err(e)) => bail!("pulling {model:?} failed: {e}"),
        None => bail!("pulling {model:?}: the server ended without reporting success"),
    }
}

/// Settles the target before the first request: the backend (probed with `--backend auto`,
/// printed and recorded), the URL each backend needs, the model, the Ollama preflight, and
/// what the protocol cannot do (`--ignore-eos`, streaming).
pub async fn resolve(plan: &mut crate::settings::RunSettings) -> anyhow::Result<()> {
    // Paths `settings::parse_url` does not know as endpoints (`/completion`, `/api/chat`, ...).
    if !plan.client.url_is_endpoint && backend_of_endpoint(&plan.client.base_url).is_some() {
        plan.client.url_is_endpoint = true;
    }
    if plan.auto_backend {
        let found = if plan.client.url_is_endpoint {
            detect_endpoint(&plan.client).await?
        } else {
            let (found, server) = detect(&plan.client).await?;
            plan.detected = Some(server);
            found
        };
        plan.protocol = found.backend.protocol();
        eprintln!(
            "Backend: {} (auto: {}; --backend overrides)",
            found.backend, found.reason
        );
    }
    let backend = plan.protocol.backend();
    plan.recorded.backend = backend.name().to_string();
    if plan.options.batch_inputs > 1 && plan.protocol.expected_items(&plan.options).is_none() {
        bail!(
            "--batch-inputs works with the openai-embeddings and rerank backends (the backend is {backend})"
        );
    }
    let dataset_tools = plan.scenarios.iter().any(|s| s.params.tools.is_some());
    if (plan.options.tools.is_some() || dataset_tools) && backend != Backend::OpenAiChat {
        let what = if dataset_tools {
            "a dataset's \"tools\""
        } else {
            "--tools"
        };
        bail!("{what} works with the openai-chat backend (the backend is {backend})");
    }
    if plan.scenarios.iter().any(|s| s.params.audio.is_some()) && !plan.protocol.takes_audio() {
        bail!("--audio goes with the openai-chat backend (the backend is {backend})");
    }
    if plan.scenarios.iter().any(|s| s.params.images.is_some()) && !plan.protocol.takes_images() {
        bail!(
            "images (--image, a dataset's \"images\") go with the openai-chat, ollama-chat and ollama-generate backends (the backend is {backend})"
        );
    }
    // Native APIs build their own paths: a full endpoint URL becomes its base.
    if plan.client.url_is_endpoint
        && backend.uses_native_paths()
        && let Some((_, base)) = backend_of_endpoint(&plan.client.base_url)
    {
        plan.client.base_url = base;
        plan.client.url_is_endpoint = false;
    }
    // The plain API's endpoint can have any path: a URL with one is the endpoint itself.
    if backend == Backend::Generate
        && !plan.client.url_is_endpoint
        && reqwest::Url::parse(&plan.client.base_url).is_ok_and(|u| u.path() != "/")
    {
        plan.client.url_is_endpoint = true;
    }
    // An endpoint URL is not probed for models: at least say now, not as N transport errors,
    // when nothing listens there.
    if plan.client.url_is_endpoint && !plan.client.use_env_proxy {
        reachable(&plan.client).await?;
    }
    let model_given = !plan.options.model.is_empty();
    if plan.options.model.is_empty() {
        let found = if plan.client.url_is_endpoint {
            None
        } else {
            default_model(&plan.client, backend).await?
        };
        plan.options.model = match (found, backend) {
            (Some(m), _) => m,
            (None, Backend::Generate | Backend::LlamaCpp) => "default".into(),
            (None, _) if plan.client.url_is_endpoint => "default".into(),
            (None, _) => bail!(
                "the server at {} lists no models: give --model",
                plan.client.base_url
            ),
        };
    }
    // A model the server does not list usually fails every request: say so now, with what
    // the server offers (some servers accept aliases, so it is a warning, not an error).
    // (A model taken from the list is on it: no second request then.)
    if model_given
        && matches!(backend, Backend::OpenAiChat | Backend::OpenAiCompletions)
        && !plan.client.url_is_endpoint
        && let Some(listed) = listed_models(&plan.client).await
        && !listed.contains(&plan.options.model)
    {
        eprintln!(
            "warning: the server does not list model {:?}; it lists: {}",
            plan.options.model,
            listed.join(", ")
        );
    }
    if matches!(backend, Backend::OllamaChat | Backend::OllamaGenerate) {
        ollama_preflight(&plan.client, &plan.options.model, plan.pull, !plan.quiet).await?;
    } else if plan.pull {
        bail!("--pull works with Ollama only (backend is {backend})");
    }
    if plan.options.ignore_eos && !plan.protocol.supports_ignore_eos() {
        if plan.ignore_eos_flag {
            eprintln!(
                "warning: --ignore-eos: the {backend} API has no way to ignore end-of-sequence; output may be shorter than --max-tokens"
            );
        } else {
            // Asked for by a suite or --output-tokens, not by the user: no flag to blame.
            eprintln!(
                "note: the {backend} API has no way to ignore end-of-sequence: outputs may end before the requested lengths"
            );
        }
    }
    // The plain API never reports counts: build the local tokenizer's tables now, not
    // during the first measured request.
    if backend == Backend::Generate
        && let Some(t) = &plan.tokenizer
    {
        t.count("");
    }
    if plan.options.stream && !plan.protocol.can_stream() {
        plan.options.stream = false;
        plan.recorded.stream = false;
        eprintln!("note: the {backend} API does not stream: TTFT equals end-to-end latency");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_name_their_backend() {
        let b = backend_of_endpoint;
        assert_eq!(
            b("http://h:1/v1/chat/completions"),
            Some((Backend::OpenAiChat, "http://h:1".into()))
        );
        assert_eq!(
            b("http://h:1/api/generate").unwrap().0,
            Backend::OllamaGenerate
        );
        assert_eq!(b("http://h:1/completion").unwrap().0, Backend::LlamaCpp);
        assert_eq!(
            b("http://h:1/v1/completions").unwrap().0,
            Backend::OpenAiCompletions
        );
        assert_eq!(
            b("http://h:1/x/generate"),
            Some((Backend::Generate, "http://h:1/x".into()))
        );
        assert_eq!(b("http://h:1/generate_stream").unwrap().0, Backend::Tgi);
        assert_eq!(b("http://h:1/other"), None);
    }

    #[test]
    fn ollama_names_default_to_latest() {
        let have = vec!["llama3:latest".to_string(), "qwen:7b".to_string()];
        assert!(ollama_has(&have, "llama3"));
        assert!(ollama_has(&have, "qwen:7b"));
        assert!(!ollama_has(&have, "qwen"));
    }
}
