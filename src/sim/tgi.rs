//! The simulator's TGI routes: `/info`, `/generate_stream` (SSE token events, the last with
//! `generated_text` and `details`) and TGI-style bodies (`{"inputs": ...}`) on `/generate`.

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
use super::wire;

/// The TGI routes (`/generate` is shared with the plain API, see `sim::generate`).
pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/info", get(info))
        .route("/generate_stream", post(generate_stream))
}

fn error(status: StatusCode, msg: &str) -> Response {
    (
        status,
        Json(json!({"error": msg, "error_type": "validation"})),
    )
        .into_response()
}

async fn info(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(json!({
        "model_id": sim.cfg.model,
        "max_input_tokens": sim.cfg.context_length.saturating_sub(1),
        "max_total_tokens": sim.cfg.context_length,
        "version": concat!("llmbench-sim ", env!("CARGO_PKG_VERSION")),
    }))
}

struct Req {
    prompt: String,
    max: Option<u64>,
    details: bool,
}

fn request(v: &Value) -> Result<Req, Box<Response>> {
    let Some(prompt) = v.get("inputs").and_then(Value::as_str) else {
        return Err(Box::new(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "`inputs` must be a string",
        )));
    };
    if let Some(t) = v.pointer("/parameters/temperature").and_then(Value::as_f64)
        && t <= 0.0
    {
        return Err(Box::new(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Input validation error: `temperature` must be strictly positive",
        )));
    }
    Ok(Req {
        prompt: prompt.to_string(),
        max: v
            .pointer("/parameters/max_new_tokens")
            .and_then(Value::as_u64),
        details: v
            .pointer("/parameters/details")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

fn details(generated: u64, input: u64) -> Value {
    json!({"finish_reason": "length", "generated_tokens": generated, "seed": null, "input_length": input})
}

/// A TGI `/generate` call (body already parsed).
pub async fn generate(sim: Arc<Sim>, v: Value) -> Response {
    let started = Instant::now();
    let r = match request(&v) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let mut g = sim.generate(&r.prompt, r.max);
    let input = g.prompt_tokens;
    let d = wire::drain(&mut g, started, |_| async { true }).await;
    let mut body = json!({"generated_text": d.text});
    if r.details {
        let mut det = details(d.tokens, input);
        det["prefill"] = json!([]);
        det["tokens"] = json!([]);
        body["details"] = det;
    }
    Json(body).into_response()
}

async fn generate_stream(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let started = Instant::now();
    let v = match wire::parse(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, &e),
    };
    let r = match request(&v) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let mut g = sim.generate(&r.prompt, r.max);
    let (input, total) = (g.prompt_tokens, g.max_tokens);
    let (tx, resp) = wire::streaming("text/event-stream");
    tokio::spawn(async move {
        let mut text = String::new();
        let mut i = 0u64;
        wire::drain(&mut g, started, |w| {
            i += 1;
            text.push_str(w);
            let last = i == total;
            let ev = json!({
                "index": i,
                "token": {"id": i, "text": w, "logprob": -0.5, "special": false},
                "generated_text": if last { json!(text) } else { Value::Null },
                "details": if last && r.details { details(i, input) } else { Value::Null },
            });
            let tx = tx.clone();
            async move { wire::send(&tx, wire::sse(&ev)).await }
        })
        .await;
    });
    resp
}
