//! The simulator's Ollama routes: `/api/chat`, `/api/generate` (NDJSON streaming or one
//! object), `/api/tags` (the models it has) and `/api/pull` (streams progress, then has the
//! model). Requests for a model it does not have get Ollama's 404.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::Sim;
use super::wire::{self, Done};

/// The Ollama routes.
pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/api/tags", get(tags))
        .route("/api/pull", post(pull))
        .route("/api/chat", post(chat))
        .route("/api/generate", post(generate))
}

fn error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({"error": msg}))).into_response()
}

/// Ollama names without a tag mean `:latest`.
fn canonical(name: &str) -> String {
    if name.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

fn models(sim: &Sim) -> Vec<String> {
    let mut m = vec![sim.cfg.model.clone()];
    m.extend(sim.pulled.lock().expect("pulled").iter().cloned());
    m
}

fn has_model(sim: &Sim, name: &str) -> bool {
    models(sim)
        .iter()
        .any(|m| m == name || canonical(m) == canonical(name))
}

async fn tags(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let list: Vec<Value> = models(&sim)
        .into_iter()
        .map(|m| {
            json!({
                "name": m, "model": m, "modified_at": "2026-01-01T00:00:00Z", "size": 1_000_000,
                "digest": "0".repeat(64),
                "details": {"format": "gguf", "family": "llmbench", "parameter_size": "0B"},
            })
        })
        .collect();
    Json(json!({"models": list}))
}

/// Size the simulated download pretends to have, in bytes.
const PULL_BYTES: u64 = 4_000_000;

async fn pull(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let v = match wire::parse(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let Some(name) = v
        .get("model")
        .or_else(|| v.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return error(StatusCode::BAD_REQUEST, "`model` is required");
    };
    if name.starts_with("missing") {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "pull model manifest: file does not exist",
        );
    }
    let (tx, resp) = wire::streaming("application/x-ndjson");
    tokio::spawn(async move {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let mut lines = vec![json!({"status": "pulling manifest"})];
        for i in 0..=10u64 {
            lines.push(
                json!({"status": format!("pulling {}", &digest[7..19]), "digest": digest,
                              "total": PULL_BYTES, "completed": PULL_BYTES * i / 10}),
            );
        }
        lines.push(json!({"status": "verifying sha256 digest"}));
        lines.push(json!({"status": "writing manifest"}));
        for l in lines {
            if !wire::send(&tx, wire::ndjson(&l)).await {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        sim.pulled.lock().expect("pulled").push(name);
        let _ = wire::send(&tx, wire::ndjson(&json!({"status": "success"}))).await;
    });
    resp
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Chat,
    Generate,
}

async fn chat(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let v = match wire::parse(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let Some(messages) = v.get("messages").and_then(Value::as_array) else {
        return error(StatusCode::BAD_REQUEST, "`messages` must be an array");
    };
    let prompt = super::openai::render_messages(messages);
    respond(sim, v, prompt, Kind::Chat).await
}

async fn generate(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let v = match wire::parse(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let Some(prompt) = v.get("prompt").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "`prompt` must be a string");
    };
    let prompt = prompt.to_string();
    respond(sim, v, prompt, Kind::Generate).await
}

fn piece(kind: Kind, model: &str, text: &str, done: bool) -> Value {
    let mut v =
        json!({"model": model, "created_at": crate::results::file::now_rfc3339(), "done": done});
    let o = v.as_object_mut().expect("object");
    match kind {
        Kind::Chat => {
            o.insert(
                "message".into(),
                json!({"role": "assistant", "content": text}),
            );
        }
        Kind::Generate => {
            o.insert("response".into(), json!(text));
        }
    }
    v
}

fn final_line(kind: Kind, model: &str, text: &str, prompt_tokens: u64, d: &Done) -> Value {
    let mut v = piece(kind, model, text, true);
    let ns = |ms: f64| (ms * 1e6).round() as u64;
    let o = v.as_object_mut().expect("object");
    for (k, val) in [
        ("done_reason", json!("length")),
        ("total_duration", json!(ns(d.prompt_ms + d.decode_ms))),
        ("load_duration", json!(0)),
        ("prompt_eval_count", json!(prompt_tokens)),
        ("prompt_eval_duration", json!(ns(d.prompt_ms))),
        ("eval_count", json!(d.tokens)),
        ("eval_duration", json!(ns(d.decode_ms))),
    ] {
        o.insert(k.into(), val);
    }
    v
}

async fn respond(sim: Arc<Sim>, v: Value, prompt: String, kind: Kind) -> Response {
    let started = Instant::now();
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !has_model(&sim, &model) {
        return error(
            StatusCode::NOT_FOUND,
            &format!("model '{model}' not found, try pulling it first"),
        );
    }
    let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(true);
    let max = v.pointer("/options/num_predict").and_then(Value::as_u64);
    // Images: on the request (generate) or on messages (chat).
    let images = std::iter::once(&v)
        .chain(v["messages"].as_array().into_iter().flatten())
        .map(super::media::ollama_tokens)
        .sum::<Result<u64, String>>();
    let images = match images {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let mut g = sim.generate_with_images(&prompt, max, images);
    let prompt_tokens = g.prompt_tokens;
    if !stream {
        let d = wire::drain(&mut g, started, |_| async { true }).await;
        return Json(final_line(kind, &model, &d.text, prompt_tokens, &d)).into_response();
    }
    let (tx, resp) = wire::streaming("application/x-ndjson");
    tokio::spawn(async move {
        let d = wire::drain(&mut g, started, |w| {
            let line = wire::ndjson(&piece(kind, &model, w, false));
            let tx = tx.clone();
            async move { wire::send(&tx, line).await }
        })
        .await;
        let last = final_line(kind, &model, "", prompt_tokens, &d);
        let _ = wire::send(&tx, wire::ndjson(&last)).await;
    });
    resp
}
