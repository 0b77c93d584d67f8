//! What a server says about itself that workloads need: its context length.
//!
//! Asked in order, first answer wins: OpenAI-style `/v1/models` (vLLM and SGLang `max_model_len`,
//! llama.cpp `meta.n_ctx_train`, others `context_length`), llama.cpp `/props` (`n_ctx`), TGI
//! `/info` (`max_total_tokens`), Ollama `/api/show` (`num_ctx` when set, else the model's
//! `*.context_length`).

use std::time::Duration;

use serde_json::{Value, json};

use crate::transport::client::{ClientConfig, http_client};

/// A context length and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextLength {
    /// Tokens.
    pub tokens: u64,
    /// The endpoint and field that said so.
    pub source: String,
}

fn from_models(v: &Value, model: &str) -> Option<u64> {
    let data = v["data"].as_array()?;
    let m = data
        .iter()
        .find(|m| m["id"].as_str() == Some(model))
        .or(data.first())?;
    [
        "/max_model_len",
        "/context_length",
        "/context_window",
        "/meta/n_ctx_train",
    ]
    .iter()
    .find_map(|p| m.pointer(p).and_then(Value::as_u64))
}

fn from_props(v: &Value) -> Option<u64> {
    v.pointer("/default_generation_settings/n_ctx")
        .or_else(|| v.get("n_ctx"))
        .and_then(Value::as_u64)
}

fn from_ollama(v: &Value) -> Option<u64> {
    let params = v["parameters"].as_str().unwrap_or("");
    let num_ctx = params.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some("num_ctx")).then(|| it.next()?.parse().ok())?
    });
    num_ctx.or_else(|| {
        v["model_info"]
            .as_object()?
            .iter()
            .find_map(|(k, v)| k.ends_with(".context_length").then(|| v.as_u64()).flatten())
    })
}

/// Asks the server for its context length; `None` when it does not say.
pub async fn context_length(cfg: &ClientConfig, model: &str) -> Option<ContextLength> {
    if cfg.url_is_endpoint {
        return None;
    }
    let http = http_client(cfg).ok()?;
    let timeout = Duration::from_secs(5).min(cfg.connect_timeout * 3);
    let ask = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut req = http
            .request(method, cfg.with_query(&format!("{}{path}", cfg.base_url)))
            .timeout(timeout);
        for (k, v) in &cfg.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let resp = req.send().await.ok()?;
            if !resp.status().is_success() {
                return None;
            }
            resp.json::<Value>().await.ok()
        }
    };
    use reqwest::Method;
    if let Some(n) = ask(Method::GET, "/v1/models", None)
        .await
        .and_then(|v| from_models(&v, model))
    {
        return Some(ContextLength {
            tokens: n,
            source: "/v1/models".into(),
        });
    }
    if let Some(n) = ask(Method::GET, "/props", None)
        .await
        .and_then(|v| from_props(&v))
    {
        return Some(ContextLength {
            tokens: n,
            source: "/props n_ctx".into(),
        });
    }
    if let Some(n) = ask(Method::GET, "/info", None)
        .await
        .and_then(|v| v["max_total_tokens"].as_u64())
    {
        return Some(ContextLength {
            tokens: n,
            source: "/info max_total_tokens".into(),
        });
    }
    let show = ask(Method::POST, "/api/show", Some(json!({"model": model}))).await?;
    from_ollama(&show).map(|n| ContextLength {
        tokens: n,
        source: "/api/show".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_servers_field() {
        let vllm = json!({"data": [{"id": "a", "max_model_len": 4096}, {"id": "b", "max_model_len": 8192}]});
        assert_eq!(from_models(&vllm, "b"), Some(8192));
        assert_eq!(from_models(&vllm, "zzz"), Some(4096));
        let lcpp = json!({"data": [{"id": "m", "meta": {"n_ctx_train": 32768}}]});
        assert_eq!(from_models(&lcpp, "m"), Some(32768));
        assert_eq!(
            from_props(&json!({"default_generation_settings": {"n_ctx": 2048}})),
            Some(2048)
        );
        let ollama = json!({"parameters": "stop \"<|eot|>\"\nnum_ctx 8192",
                            "model_info": {"llama.context_length": 131072}});
        assert_eq!(from_ollama(&ollama), Some(8192));
        let ollama = json!({"model_info": {"qwen2.context_length": 32768}});
        assert_eq!(from_ollama(&ollama), Some(32768));
    }
}
