//! The simulator's `/metrics` (Prometheus text, vLLM's names) and `/version`, from the counters
//! the engine really keeps.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::Sim;

/// `/metrics` and `/version`.
pub fn routes() -> Router<Arc<Sim>> {
    Router::new().route("/metrics", get(metrics)).route(
        "/version",
        get(|| async { axum::Json(serde_json::json!({"version": env!("CARGO_PKG_VERSION")})) }),
    )
}

/// The exposition text.
pub fn render(sim: &Sim) -> String {
    let c = &sim.engine.counters;
    let model = sim.cfg.model.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = String::new();
    let mut series = |name: &str, kind: &str, help: &str, extra: &str, v: f64| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name}{{model_name=\"{model}\"{extra}}} {v}");
    };
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    series(
        "vllm:num_requests_running",
        "gauge",
        "Requests in the running batch.",
        "",
        get(&c.running),
    );
    series(
        "vllm:num_requests_waiting",
        "gauge",
        "Requests waiting for a batch slot.",
        "",
        get(&c.waiting),
    );
    series(
        "vllm:kv_cache_usage_perc",
        "gauge",
        "Fraction of prefix-cache blocks in use (1 = full).",
        "",
        sim.engine.cache_usage(),
    );
    let counters = [
        (
            "vllm:prompt_tokens_total",
            "Prompt tokens received.",
            "",
            &c.prompt_tokens,
        ),
        (
            "vllm:generation_tokens_total",
            "Tokens generated.",
            "",
            &c.generation_tokens,
        ),
        (
            "vllm:request_success_total",
            "Requests that generated all their tokens.",
            ",finished_reason=\"length\"",
            &c.finished,
        ),
        (
            "vllm:prefix_cache_queries_total",
            "Prompt tokens looked up in the prefix cache.",
            "",
            &c.cache_queries,
        ),
        (
            "vllm:prefix_cache_hits_total",
            "Prompt tokens found in the prefix cache.",
            "",
            &c.cache_hits,
        ),
        (
            "llmbench_sim:requests_received_total",
            "Requests received.",
            "",
            &c.requests,
        ),
    ];
    for (name, help, extra, a) in counters {
        series(name, "counter", help, extra, get(a));
    }
    out
}

async fn metrics(State(sim): State<Arc<Sim>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(&sim),
    )
}
