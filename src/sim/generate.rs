//! The simulator's plain JSON API: `POST /generate {"prompt", "max_tokens", "temperature"}`
//! → `{"text", "cached"}`, where `cached` says the prompt's prefix was in the prefix cache.
//! TGI uses the same path with `{"inputs": ...}` bodies; those go to `sim::tgi`.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::Sim;
use super::wire;

/// The `/generate` route.
pub fn routes() -> Router<Arc<Sim>> {
    Router::new().route("/generate", post(generate))
}

fn error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({"error": msg}))).into_response()
}

async fn generate(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let started = Instant::now();
    let v = match wire::parse(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    if v.get("inputs").is_some() {
        return super::tgi::generate(sim, v).await;
    }
    let Some(prompt) = v.get("prompt").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "`prompt` must be a string");
    };
    let max = v.get("max_tokens").and_then(Value::as_u64);
    let mut g = sim.generate(prompt, max);
    let d = wire::drain(&mut g, started, |_| async { true }).await;
    Json(json!({"text": d.text, "cached": d.cached > 0})).into_response()
}
