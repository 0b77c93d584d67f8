//! The simulator's llama.cpp routes: `/props` and `/completion` (SSE content events, then a
//! final `stop: true` event with counters, `timings` and the cached prompt tokens; or one
//! object when not streaming).

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

/// The llama.cpp routes.
pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/props", get(props))
        .route("/completion", post(completion))
}

fn error(status: StatusCode, msg: &str) -> Response {
    let body = json!({"error": {"code": status.as_u16(), "message": msg, "type": "invalid_request_error"}});
    (status, Json(body)).into_response()
}

async fn props(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(json!({
        "default_generation_settings": {"n_ctx": sim.cfg.context_length, "model": sim.cfg.model},
        "total_slots": 1,
        "model_path": format!("/models/{}.gguf", sim.cfg.model),
        "build_info": concat!("llmbench-sim ", env!("CARGO_PKG_VERSION")),
    }))
}

fn final_event(model: &str, content: &str, prompt_tokens: u64, d: &Done) -> Value {
    let per = |ms: f64, n: u64| if n > 0 { ms / n as f64 } else { 0.0 };
    let prompt_n = prompt_tokens - d.cached.min(prompt_tokens);
    json!({
        "content": content, "stop": true, "model": model,
        "tokens_predicted": d.tokens, "tokens_evaluated": prompt_tokens, "tokens_cached": d.cached,
        "stop_type": "limit", "truncated": false,
        "timings": {
            "cache_n": d.cached,
            "prompt_n": prompt_n, "prompt_ms": d.prompt_ms,
            "prompt_per_token_ms": per(d.prompt_ms, prompt_n),
            "predicted_n": d.tokens, "predicted_ms": d.decode_ms,
            "predicted_per_token_ms": per(d.decode_ms, d.tokens),
        },
    })
}

async fn completion(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let started = Instant::now();
    let v = match wire::parse(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let Some(prompt) = v.get("prompt").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "`prompt` must be a string");
    };
    let model = sim.cfg.model.clone();
    // n_predict -1 means "until end of sequence", which the simulator never emits.
    let max = v.get("n_predict").and_then(Value::as_u64);
    let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let mut g = sim.generate(prompt, max);
    let prompt_tokens = g.prompt_tokens;
    if !stream {
        let d = wire::drain(&mut g, started, |_| async { true }).await;
        return Json(final_event(&model, &d.text, prompt_tokens, &d)).into_response();
    }
    let (tx, resp) = wire::streaming("text/event-stream");
    tokio::spawn(async move {
        let d = wire::drain(&mut g, started, |w| {
            let ev = json!({"index": 0, "content": w, "stop": false, "id_slot": 0});
            let tx = tx.clone();
            async move { wire::send(&tx, wire::sse(&ev)).await }
        })
        .await;
        let _ = wire::send(&tx, wire::sse(&final_event(&model, "", prompt_tokens, &d))).await;
    });
    resp
}
