//! Which LLM server answers at a URL: its kind, version and models. The one detection used by
//! `run --backend auto` (which API to speak), by the run's server record, by a managed server
//! once it is ready, and by `llmbench detect` on the usual local ports.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::protocol::Backend;

/// Ports LLM servers listen on by default, with who usually listens there.
pub const KNOWN_PORTS: [(u16, &str); 5] = [
    (11434, "Ollama"),
    (8000, "vLLM / SGLang (openai server)"),
    (30000, "SGLang"),
    (8080, "llama.cpp / TGI (docker)"),
    (3000, "TGI"),
];

/// Server software, one spelling each (as written in result files and `detect --json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerKind {
    /// Ollama (its own API, plus OpenAI's).
    #[serde(rename = "ollama")]
    Ollama,
    /// vLLM's OpenAI server.
    #[serde(rename = "vllm")]
    Vllm,
    /// SGLang.
    #[serde(rename = "sglang")]
    Sglang,
    /// Text Generation Inference.
    #[serde(rename = "tgi")]
    Tgi,
    /// llama.cpp's `llama-server`.
    #[serde(rename = "llama.cpp")]
    LlamaCpp,
    /// llmbench's own simulator.
    #[serde(rename = "llmbench-sim")]
    LlmbenchSim,
    /// Anything else that answers `/v1/models`.
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
}

impl ServerKind {
    /// The spelling in files and on the console.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ollama => "ollama",
            Self::Vllm => "vllm",
            Self::Sglang => "sglang",
            Self::Tgi => "tgi",
            Self::LlamaCpp => "llama.cpp",
            Self::LlmbenchSim => "llmbench-sim",
            Self::OpenAiCompatible => "openai-compatible",
        }
    }

    /// The API `--backend auto` speaks to it: its native one where llmbench has it.
    pub(crate) fn backend(self) -> Backend {
        match self {
            Self::Ollama => Backend::OllamaChat,
            Self::Tgi => Backend::Tgi,
            Self::LlamaCpp => Backend::LlamaCpp,
            // The simulator speaks every API; OpenAI chat is what most servers are run with.
            _ => Backend::OpenAiChat,
        }
    }

    /// What gave it away, for the console.
    pub(crate) fn evidence(self) -> &'static str {
        match self {
            Self::Ollama => "Ollama (/api/version, /api/tags)",
            Self::Tgi => "Text Generation Inference (/info answered)",
            Self::LlamaCpp => "llama.cpp server (/props answered)",
            Self::LlmbenchSim => "llmbench's simulator (/v1/models)",
            Self::Vllm => "vLLM (/v1/models)",
            Self::Sglang => "SGLang (/get_server_info)",
            Self::OpenAiCompatible => "OpenAI-compatible (/v1/models answered)",
        }
    }
}

impl std::fmt::Display for ServerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A server that answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectedServer {
    /// Base URL probed.
    pub url: String,
    /// What it is.
    pub kind: ServerKind,
    /// Version the server reports.
    pub version: Option<String>,
    /// Models it serves (Ollama: installed models).
    pub models: Vec<String>,
    /// Models loaded in memory now, where the server says (Ollama `/api/ps`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loaded: Vec<String>,
    /// True when `/metrics` answers in Prometheus text format.
    pub metrics: bool,
}

/// How to ask: a client (with the run's TLS settings and, for the target, its headers) and
/// the query every request to the target carries (`?api-version=…`).
pub(crate) struct Asker<'a> {
    pub http: &'a reqwest::Client,
    pub query: Option<&'a str>,
}

impl Asker<'_> {
    async fn json(&self, url: String) -> Result<Option<Value>, reqwest::Error> {
        let url = match self.query {
            Some(q) if url.contains('?') => format!("{url}&{q}"),
            Some(q) => format!("{url}?{q}"),
            None => url,
        };
        let resp = self.http.get(url).send().await?;
        if !resp.status().is_success() {
            return Ok(None);
        }
        Ok(resp.json().await.ok())
    }

    /// A JSON document, or `None` for any failure.
    async fn get(&self, url: String) -> Option<Value> {
        self.json(url).await.ok().flatten()
    }
}

fn strings(v: &Value, list: &str, key: &str) -> Vec<String> {
    v[list]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m[key].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(|x| match x {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .filter(|s| !s.is_empty())
}

/// Asks `base` (e.g. `http://127.0.0.1:8000`) what it is. `Ok(None)` when nothing LLM-like
/// answers; `Err` when the first request gets no answer at all (nothing listens there).
/// `metrics`: also check whether `/metrics` answers in Prometheus format.
pub(crate) async fn identify(
    ask: &Asker<'_>,
    base: &str,
    metrics: bool,
) -> Result<Option<DetectedServer>, reqwest::Error> {
    let base = base.trim_end_matches('/').to_string();
    // The simulator speaks every API (Ollama's, TGI's /info and llama.cpp's /props too): its
    // model owner in /v1/models identifies it first.
    let models = ask.json(format!("{base}/v1/models")).await?;
    let owner = models
        .as_ref()
        .and_then(|m| m["data"][0]["owned_by"].as_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let listed = models
        .as_ref()
        .map(|m| strings(m, "data", "id"))
        .unwrap_or_default();
    let mut found = DetectedServer {
        url: base.clone(),
        kind: ServerKind::OpenAiCompatible,
        version: None,
        models: listed,
        loaded: Vec::new(),
        metrics: false,
    };
    if owner == "llmbench" {
        found.kind = ServerKind::LlmbenchSim;
        found.version = ask
            .get(format!("{base}/version"))
            .await
            .and_then(|v| text(&v, "version"));
    } else if let Some(ollama) = ollama(ask, &base).await {
        found.kind = ServerKind::Ollama;
        found.version = ollama.0;
        found.models = ollama.1;
        if let Some(ps) = ask.get(format!("{base}/api/ps")).await {
            found.loaded = strings(&ps, "models", "name");
        }
    } else if let Some(info) = ask.get(format!("{base}/info")).await
        && info.get("model_id").is_some()
    {
        found.kind = ServerKind::Tgi;
        found.version = text(&info, "version");
        if found.models.is_empty() {
            found.models = text(&info, "model_id").into_iter().collect();
        }
    } else if let Some(props) = ask.get(format!("{base}/props")).await
        && (props.get("default_generation_settings").is_some() || props.get("build_info").is_some())
    {
        found.kind = ServerKind::LlamaCpp;
        found.version = text(&props, "build_info");
        if found.models.is_empty() {
            found.models = text(&props, "model_path").into_iter().collect();
        }
    } else if let Some(info) = ask.get(format!("{base}/get_server_info")).await {
        found.kind = ServerKind::Sglang;
        found.version = text(&info, "version");
    } else {
        let version = ask.get(format!("{base}/version")).await;
        found.version = version.as_ref().and_then(|v| text(v, "version"));
        found.kind = match owner.as_str() {
            "vllm" => ServerKind::Vllm,
            "sglang" => ServerKind::Sglang,
            _ if version.is_some() && models.is_some() => ServerKind::Vllm,
            _ if models.as_ref().is_some_and(|m| m["data"].is_array()) => {
                ServerKind::OpenAiCompatible
            }
            _ => return Ok(None),
        };
    }
    if metrics {
        found.metrics = match ask.http.get(format!("{base}/metrics")).send().await {
            Ok(r) if r.status().is_success() => r
                .text()
                .await
                .map(|t| crate::telemetry::prom::looks_like_prometheus(&t))
                .unwrap_or(false),
            _ => false,
        };
    }
    Ok(Some(found))
}

/// Ollama's version and installed models, when `base` is Ollama.
async fn ollama(ask: &Asker<'_>, base: &str) -> Option<(Option<String>, Vec<String>)> {
    let version = ask
        .get(format!("{base}/api/version"))
        .await
        .and_then(|v| text(&v, "version"));
    let tags = ask.get(format!("{base}/api/tags")).await;
    let models = tags.as_ref().filter(|t| t["models"].is_array());
    if version.is_none() && models.is_none() {
        return None;
    }
    Some((
        version,
        models
            .map(|t| strings(t, "models", "name"))
            .unwrap_or_default(),
    ))
}

/// What answers at `base`, metrics included; `None` when nothing LLM-like does.
pub async fn probe(http: &reqwest::Client, base: &str) -> Option<DetectedServer> {
    identify(&Asker { http, query: None }, base, true)
        .await
        .ok()
        .flatten()
}

/// Probes every known local port at once, with `http` (short timeouts).
pub async fn probe_local(http: &reqwest::Client) -> Vec<DetectedServer> {
    let tasks = KNOWN_PORTS.iter().map(|(port, _)| {
        let http = http.clone();
        async move { probe(&http, &format!("http://127.0.0.1:{port}")).await }
    });
    futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .flatten()
        .collect()
}
