//! `llmbench ui`: a local web dashboard over a results store (SQLite or PostgreSQL).
//!
//! The page, its script and its styles are compiled into the binary (`assets/`) and served by
//! llmbench itself: no CDN, works offline. The script asks a small JSON API:
//!
//! | path | answer |
//! | --- | --- |
//! | `/api/runs?model=&target=&backend=&tag=NAME=VALUE&limit=` | the runs, newest first (`history --json`'s rows) |
//! | `/api/runs/{id}` | a run's result file, as stored |
//! | `/api/compare?base=&new=&max_regression=` | `compare`'s result, as `compare --json` writes it |
//!
//! Reads only: the dashboard never measures and never writes to the store.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::results::compare::{compare, parse_threshold};
use crate::results::store::{Filter, Store};

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const CHARTS: &str = include_str!("assets/charts.js");
const STYLE: &str = include_str!("assets/app.css");

type Shared = Arc<Mutex<Store>>;

/// Serves the dashboard on `addr` until the process is stopped; `ready` gets the bound address.
pub(crate) async fn serve(
    store: Store,
    addr: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let app = router(Arc::new(Mutex::new(store)));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    ready(listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

fn router(store: Shared) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/charts.js",
            get(|| async { asset("text/javascript; charset=utf-8", CHARTS) }),
        )
        .route(
            "/app.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/api/runs", get(runs))
        .route("/api/runs/{id}", get(run))
        .route("/api/compare", get(compare_runs))
        .with_state(store)
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// A store query off the async threads (SQLite and the PostgreSQL client both block).
async fn blocking<T: Send + 'static>(
    store: Shared,
    f: impl FnOnce(&Store) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Response> {
    let joined = tokio::task::spawn_blocking(move || {
        let guard = store.lock().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    })
    .await;
    match joined {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error(StatusCode::NOT_FOUND, format!("{e:#}"))),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

fn json_text(text: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

#[derive(Debug, Default, Deserialize)]
struct RunsQuery {
    model: Option<String>,
    target: Option<String>,
    backend: Option<String>,
    tag: Option<String>,
    limit: Option<usize>,
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

async fn runs(State(store): State<Shared>, Query(q): Query<RunsQuery>) -> Response {
    let tag = match nonempty(q.tag) {
        None => None,
        Some(t) => match t.split_once('=') {
            Some((k, v)) => Some((k.trim().to_string(), v.to_string())),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("tag {t:?}: give NAME=VALUE"),
                );
            }
        },
    };
    let filter = Filter {
        model: nonempty(q.model),
        target: nonempty(q.target),
        backend: nonempty(q.backend),
        tag,
        limit: q.limit.unwrap_or(500).min(10_000),
    };
    match blocking(store, move |s| s.list(&filter)).await {
        Ok(rows) => axum::Json(rows).into_response(),
        Err(r) => r,
    }
}

async fn run(State(store): State<Shared>, Path(id): Path<String>) -> Response {
    match blocking(store, move |s| s.get_text(&id)).await {
        Ok(text) => json_text(text),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
struct CompareQuery {
    base: String,
    new: String,
    max_regression: Option<String>,
}

async fn compare_runs(State(store): State<Shared>, Query(q): Query<CompareQuery>) -> Response {
    let threshold = match parse_threshold(q.max_regression.as_deref().unwrap_or("10%")) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("{e:#}")),
    };
    let pair = blocking(store, move |s| Ok((s.get(&q.base)?, s.get(&q.new)?))).await;
    match pair {
        Ok((base, new)) => {
            // The bootstrap resamples thousands of times: keep it off the async threads too.
            match tokio::task::spawn_blocking(move || compare(&base, &new, threshold)).await {
                Ok(c) => axum::Json(c).into_response(),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        Err(r) => r,
    }
}
