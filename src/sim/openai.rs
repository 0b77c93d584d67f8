//! The simulator's OpenAI-compatible routes: `/v1/chat/completions`, `/v1/completions`,
//! `/v1/models`, streaming (SSE, with `stream_options.include_usage`) and not.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::engine::Ev;
use super::{Generation, Sim};

/// The OpenAI routes.
pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
}

async fn models(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{
            "id": sim.cfg.model,
            "object": "model",
            "owned_by": "llmbench",
            "max_model_len": sim.cfg.context_length,
        }]
    }))
}

/// An OpenAI-style error response.
pub fn error(status: StatusCode, msg: &str) -> Response {
    let body = json!({"error": {"message": msg, "type": "invalid_request_error", "code": status.as_u16()}});
    (status, Json(body)).into_response()
}

fn parse(body: &Bytes) -> Result<Value, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            &format!("invalid JSON body: {e}"),
        ))
    })
}

fn max_tokens(v: &Value) -> Option<u64> {
    v.get("max_completion_tokens")
        .or_else(|| v.get("max_tokens"))
        .and_then(Value::as_u64)
}

fn include_usage(v: &Value) -> bool {
    v.pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Renders chat messages the way the simulator's "template" does: `role: content` lines.
pub fn render_messages(messages: &[Value]) -> String {
    let mut out = String::new();
    for m in messages {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
        let content = match m.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
            _ => String::new(),
        };
        out.push_str(role);
        out.push_str(": ");
        out.push_str(&content);
        out.push('\n');
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Chat,
    Text,
}

async fn chat(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let v = match parse(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(messages) = v.get("messages").and_then(Value::as_array) else {
        return error(StatusCode::BAD_REQUEST, "`messages` must be an array");
    };
    let prompt = render_messages(messages);
    respond(&sim, &v, &prompt, Kind::Chat).await
}

async fn completions(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let v = match parse(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(prompt) = v.get("prompt").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "`prompt` must be a string");
    };
    let prompt = prompt.to_string();
    respond(&sim, &v, &prompt, Kind::Text).await
}

fn usage(prompt: u64, completion: u64, cached: u64) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    })
}

async fn respond(sim: &Sim, v: &Value, prompt: &str, kind: Kind) -> Response {
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(&sim.cfg.model)
        .to_string();
    let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let generation = sim.generate(prompt, max_tokens(v));
    if !stream {
        let id = generation.id;
        let prompt_tokens = generation.prompt_tokens;
        let (text, n, cached) = generation.collect().await;
        let choice = match kind {
            Kind::Chat => {
                json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"})
            }
            Kind::Text => json!({"index": 0, "text": text, "finish_reason": "length"}),
        };
        let object = match kind {
            Kind::Chat => "chat.completion",
            Kind::Text => "text_completion",
        };
        return Json(json!({
            "id": format!("sim-{id}"), "object": object, "model": model,
            "choices": [choice], "usage": usage(prompt_tokens, n, cached),
        }))
        .into_response();
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    tokio::spawn(stream_events(generation, model, kind, include_usage(v), tx));
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .expect("response")
}

fn sse(v: &Value) -> Result<Bytes, Infallible> {
    Ok(Bytes::from(format!("data: {v}\n\n")))
}

async fn stream_events(
    mut g: Generation,
    model: String,
    kind: Kind,
    with_usage: bool,
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
) {
    let id = format!("sim-{}", g.id);
    let (object, choice_of) = match kind {
        Kind::Chat => ("chat.completion.chunk", "delta"),
        Kind::Text => ("text_completion", "text"),
    };
    let chunk =
        |choice: Value| json!({"id": id, "object": object, "model": model, "choices": [choice]});
    if kind == Kind::Chat {
        let first = chunk(json!({"index": 0, "delta": {"role": "assistant", "content": ""}}));
        if tx.send(sse(&first)).await.is_err() {
            return;
        }
    }
    let (mut n, mut cached) = (0u64, 0u64);
    while let Some(ev) = g.rx.recv().await {
        let word = match ev {
            Ev::Admitted { cached_tokens } => {
                cached = cached_tokens;
                continue;
            }
            Ev::Token(w) => w,
        };
        n += 1;
        let choice = if choice_of == "delta" {
            json!({"index": 0, "delta": {"content": word}, "finish_reason": null})
        } else {
            json!({"index": 0, "text": word, "finish_reason": null})
        };
        if tx.send(sse(&chunk(choice))).await.is_err() {
            return;
        }
    }
    let last = if choice_of == "delta" {
        json!({"index": 0, "delta": {}, "finish_reason": "length"})
    } else {
        json!({"index": 0, "text": "", "finish_reason": "length"})
    };
    let _ = tx.send(sse(&chunk(last))).await;
    if with_usage {
        let u = json!({"id": id, "object": object, "model": model, "choices": [],
                       "usage": usage(g.prompt_tokens, n, cached)});
        let _ = tx.send(sse(&u)).await;
    }
    let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
}
