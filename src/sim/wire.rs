//! Helpers the simulator's protocol files share: streamed bodies, JSON parsing, and one loop
//! that drains a generation while keeping the times the native APIs report.

use std::convert::Infallible;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::Generation;
use super::engine::Ev;

/// Sender side of a streamed response body.
pub type BodyTx = mpsc::Sender<Result<Bytes, Infallible>>;

/// A streamed response with `content_type`, fed through the returned sender.
pub fn streaming(content_type: &'static str) -> (BodyTx, Response) {
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let resp = Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .expect("response");
    (tx, resp)
}

/// Sends one piece of a streamed body; false when the client went away.
pub async fn send(tx: &BodyTx, bytes: impl Into<Bytes>) -> bool {
    tx.send(Ok(bytes.into())).await.is_ok()
}

/// An SSE `data:` event.
pub fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

/// An NDJSON line.
pub fn ndjson(v: &Value) -> Bytes {
    Bytes::from(format!("{v}\n"))
}

/// Parses a JSON body.
pub fn parse(body: &Bytes) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))
}

/// What a finished generation reports about itself.
#[derive(Debug, Clone, Default)]
pub struct Done {
    /// Generated text.
    pub text: String,
    /// Tokens generated.
    pub tokens: u64,
    /// Prompt tokens served from the prefix cache.
    pub cached: u64,
    /// From the request's arrival to the first token (ms).
    pub prompt_ms: f64,
    /// From the first token to the last (ms).
    pub decode_ms: f64,
}

/// Drains a generation; `on_token` sees each token as it is due and returns false to stop
/// (the client went away).
pub async fn drain<F, Fut>(g: &mut Generation, started: Instant, mut on_token: F) -> Done
where
    F: FnMut(&'static str) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut d = Done::default();
    let mut first: Option<Instant> = None;
    let mut last = started;
    while let Some(ev) = g.rx.recv().await {
        match ev {
            Ev::Admitted { cached_tokens } => d.cached = cached_tokens,
            Ev::Token(w) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                d.tokens += 1;
                d.text.push_str(w);
                if !on_token(w).await {
                    return d;
                }
            }
        }
    }
    let first = first.unwrap_or(last);
    d.prompt_ms = first.duration_since(started).as_secs_f64() * 1e3;
    d.decode_ms = last.duration_since(first).as_secs_f64() * 1e3;
    d
}
