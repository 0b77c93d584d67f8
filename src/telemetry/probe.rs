//! Which LLM server answers at a URL: kind, version, models. Used by `llmbench detect` on the
//! usual local ports, and by `run` to record the target's version.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Ports LLM servers listen on by default, with who usually listens there.
pub const KNOWN_PORTS: [(u16, &str); 5] = [
    (11434, "Ollama"),
    (8000, "vLLM / SGLang (openai server)"),
    (30000, "SGLang"),
    (8080, "llama.cpp / TGI (docker)"),
    (3000, "TGI"),
];

/// A server that answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectedServer {
    /// Base URL probed.
    pub url: String,
    /// `ollama`, `vllm`, `sglang`, `tgi`, `llama.cpp`, `llmbench-sim` or `openai-compatible`.
    pub kind: String,
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

async fn get_json(http: &reqwest::Client, url: String) -> Option<Value> {
    let resp = http.get(url).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json().await.ok()
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

/// Asks `base` (e.g. `http://127.0.0.1:8000`) what it is; `None` when nothing LLM-like answers.
pub async fn probe(http: &reqwest::Client, base: &str) -> Option<DetectedServer> {
    let base = base.trim_end_matches('/').to_string();
    let mut found = DetectedServer {
        url: base.clone(),
        ..Default::default()
    };
    // Ollama has its own API.
    if let Some(v) = get_json(http, format!("{base}/api/version")).await
        && let Some(ver) = text(&v, "version")
    {
        found.kind = "ollama".into();
        found.version = Some(ver);
        if let Some(tags) = get_json(http, format!("{base}/api/tags")).await {
            found.models = strings(&tags, "models", "name");
        }
        if let Some(ps) = get_json(http, format!("{base}/api/ps")).await {
            found.loaded = strings(&ps, "models", "name");
        }
    } else {
        let models = get_json(http, format!("{base}/v1/models")).await;
        let owner = models
            .as_ref()
            .and_then(|m| m["data"][0]["owned_by"].as_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if let Some(m) = &models {
            found.models = strings(m, "data", "id");
        }
        if owner == "llmbench" {
            // The built-in simulator speaks every protocol (TGI's /info and llama.cpp's
            // /props included): its own model owner identifies it first.
            found.kind = "llmbench-sim".into();
            found.version = get_json(http, format!("{base}/version"))
                .await
                .and_then(|v| text(&v, "version"));
        } else if let Some(info) = get_json(http, format!("{base}/info")).await
            && info.get("model_id").is_some()
        {
            // TGI: /info carries model_id and version.
            found.kind = "tgi".into();
            found.version = text(&info, "version");
            if found.models.is_empty() {
                found.models = text(&info, "model_id").into_iter().collect();
            }
        } else if let Some(props) = get_json(http, format!("{base}/props")).await
            && (props.get("default_generation_settings").is_some()
                || props.get("build_info").is_some())
        {
            found.kind = "llama.cpp".into();
            found.version = text(&props, "build_info");
            if found.models.is_empty() {
                found.models = text(&props, "model_path").into_iter().collect();
            }
        } else if let Some(info) = get_json(http, format!("{base}/get_server_info")).await {
            found.kind = "sglang".into();
            found.version = text(&info, "version");
        } else {
            let version = get_json(http, format!("{base}/version")).await;
            found.version = version.as_ref().and_then(|v| text(v, "version"));
            found.kind = match owner.as_str() {
                "llmbench" => "llmbench-sim",
                "vllm" => "vllm",
                "sglang" => "sglang",
                _ if version.is_some() && models.is_some() => "vllm",
                _ if models.is_some() => "openai-compatible",
                _ => return None,
            }
            .into();
        }
    }
    found.metrics = match http.get(format!("{base}/metrics")).send().await {
        Ok(r) if r.status().is_success() => r
            .text()
            .await
            .map(|t| super::prom::looks_like_prometheus(&t))
            .unwrap_or(false),
        _ => false,
    };
    Some(found)
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
