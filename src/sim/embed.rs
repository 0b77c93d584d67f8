//! Embeddings (`POST /v1/embeddings`) and rerank (`POST /v1/rerank`, `/rerank`): the model
//! reads every input and answers once. Timing: fixed mode answers after `--ttft-ms`; the engine
//! model after its prefill cost for every input token (`--prefill-ms-per-token`), on top of
//! `--decode-ms` for the one forward pass.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::Sim;
use super::engine::Timing;

/// The embeddings and rerank routes.
pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/rerank", post(rerank))
        .route("/rerank", post(rerank))
}

/// The texts of a request field: one string or an array of strings.
fn texts(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

/// Waits as long as reading `tokens` input tokens takes.
async fn read_time(sim: &Sim, tokens: u64) {
    let ms = match sim.cfg.timing {
        Timing::Fixed { ttft_ms, .. } => ttft_ms,
        Timing::Engine(e) => e.decode_ms + e.prefill_ms_per_token * tokens as f64,
    };
    tokio::time::sleep(std::time::Duration::from_secs_f64(ms / 1000.0)).await;
}

fn bad(msg: &str) -> Response {
    super::openai::error(StatusCode::BAD_REQUEST, msg)
}

async fn embeddings(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return bad("body is not JSON");
    };
    let Some(inputs) = texts(&v["input"]) else {
        return bad("\"input\" must be a string or an array of strings");
    };
    let tokens: u64 = inputs.iter().map(|t| super::text::count(t)).sum();
    read_time(&sim, tokens).await;
    let data: Vec<Value> = (0..inputs.len())
        .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.0, 0.5, 1.0, i as f64]}))
        .collect();
    Json(json!({
        "object": "list", "model": sim.cfg.model, "data": data,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response()
}

async fn rerank(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return bad("body is not JSON");
    };
    let (Some(query), Some(docs)) = (v["query"].as_str(), texts(&v["documents"])) else {
        return bad("rerank needs \"query\" and \"documents\"");
    };
    // Every document is read with the query.
    let q = super::text::count(query);
    let tokens: u64 = docs.iter().map(|d| q + super::text::count(d)).sum();
    read_time(&sim, tokens).await;
    let results: Vec<Value> = (0..docs.len())
        .map(|i| json!({"index": i, "relevance_score": 1.0 / (1.0 + i as f64)}))
        .collect();
    Json(json!({
        "id": "rerank", "model": sim.cfg.model, "results": results,
        "usage": {"total_tokens": tokens},
    }))
    .into_response()
}
