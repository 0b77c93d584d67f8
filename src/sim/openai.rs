//! The simulator's OpenAI-compatible routes: `/v1/chat/completions`, `/v1/completions`,
//! `/v1/models`, streaming (SSE, with `stream_options.include_usage`) and not.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::engine::Ev;
use super::fault::{Fault, FaultConfig};
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

async fn chat(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let arrived = Instant::now();
    let v = match parse(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(messages) = v.get("messages").and_then(Value::as_array) else {
        return error(StatusCode::BAD_REQUEST, "`messages` must be an array");
    };
    let prompt = render_messages(messages);
    let resp = respond(&sim, &v, &prompt, Kind::Chat).await;
    stamped(&sim, &headers, arrived, resp)
}

async fn completions(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let arrived = Instant::now();
    let v = match parse(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(prompt) = v.get("prompt").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "`prompt` must be a string");
    };
    let prompt = prompt.to_string();
    let resp = respond(&sim, &v, &prompt, Kind::Text).await;
    stamped(&sim, &headers, arrived, resp)
}

type SendLog = Arc<std::sync::Mutex<std::io::LineWriter<std::fs::File>>>;

/// With `--send-log`, wraps a streamed response's body so each chunk's hand-over to the
/// connection is timed; the line is written when the body ends or is dropped.
fn stamped(sim: &Sim, headers: &HeaderMap, arrived: Instant, resp: Response) -> Response {
    let Some(log) = sim.send_log.clone() else {
        return resp;
    };
    if resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.as_bytes())
        != Some(b"text/event-stream")
    {
        return resp;
    }
    let id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (parts, body) = resp.into_parts();
    let stream = Stamped {
        inner: body.into_data_stream(),
        id,
        arrived_ms: arrived.duration_since(sim.started).as_secs_f64() * 1000.0,
        arrived,
        sends_ms: Vec::new(),
        log,
    };
    Response::from_parts(parts, Body::from_stream(stream))
}

struct Stamped {
    inner: axum::body::BodyDataStream,
    id: Option<String>,
    arrived_ms: f64,
    arrived: Instant,
    sends_ms: Vec<f64>,
    log: SendLog,
}

impl futures_util::Stream for Stamped {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let p = std::pin::Pin::new(&mut self.inner).poll_next(cx);
        if let std::task::Poll::Ready(Some(Ok(_))) = &p {
            let ms = self.arrived.elapsed().as_secs_f64() * 1000.0;
            self.sends_ms.push(ms);
        }
        p
    }
}

impl Drop for Stamped {
    fn drop(&mut self) {
        use std::io::Write;
        let line = json!({
            "request_id": self.id,
            "arrived_ms": self.arrived_ms,
            "sends_ms": self.sends_ms,
        });
        if let Ok(mut w) = self.log.lock() {
            let _ = writeln!(w, "{line}");
        }
    }
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
    let fault = sim.faults.next(stream);
    if let Some(f) = fault {
        if let Some(code) = f.status() {
            let status = StatusCode::from_u16(code).expect("status");
            let mut r = error(status, &format!("simulated fault: {}", f.name()));
            if matches!(f, Fault::Http429RetryAfter | Fault::Http503) {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            return r;
        }
        if f == Fault::StallHeaders {
            tokio::time::sleep(sim.faults.cfg.stall).await;
        }
    }
    let generation = if fault == Some(Fault::Empty) {
        // A generation that ends before its first token.
        let (_, rx) = tokio::sync::mpsc::unbounded_channel();
        Generation {
            id: u64::MAX,
            prompt_tokens: super::text::count(prompt),
            max_tokens: 0,
            rx,
        }
    } else {
        sim.generate(prompt, max_tokens(v))
    };
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
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let out = Out {
        tx,
        fault,
        cfg: sim.faults.cfg.clone(),
        events: 0,
        packed: Vec::new(),
        packed_events: 0,
    };
    tokio::spawn(stream_events(
        generation,
        model,
        kind,
        include_usage(v),
        out,
    ));
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .expect("response")
}

/// Writes SSE events, misbehaving as the request's fault says.
struct Out {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    fault: Option<Fault>,
    cfg: FaultConfig,
    events: u64,
    packed: Vec<u8>,
    packed_events: u32,
}

/// Marker replaced by an invalid UTF-8 byte (`invalid-utf8`).
const BAD_BYTE_MARK: &str = "@@INVALID-UTF8@@";

impl Out {
    /// One event as bytes on the wire.
    fn frame(&self, data: &[u8]) -> Vec<u8> {
        let mut b = Vec::with_capacity(data.len() + 64);
        match self.fault {
            Some(Fault::Crlf) => {
                b.extend_from_slice(b"data: ");
                b.extend_from_slice(data);
                b.extend_from_slice(b"\r\n\r\n");
            }
            Some(Fault::Cr) => {
                b.extend_from_slice(b"data: ");
                b.extend_from_slice(data);
                b.extend_from_slice(b"\r\r");
            }
            Some(Fault::Pings) => {
                b.extend_from_slice(
                    format!(
                        ": ping\n\nevent: message\nid: {}\nretry: 3000\n",
                        self.events
                    )
                    .as_bytes(),
                );
                b.extend_from_slice(b"data:");
                b.extend_from_slice(data);
                b.extend_from_slice(b"\n: keep-alive\n\n");
            }
            Some(Fault::Multiline) => {
                let pretty = serde_json::from_slice::<Value>(data)
                    .ok()
                    .and_then(|v| serde_json::to_string_pretty(&v).ok())
                    .unwrap_or_else(|| String::from_utf8_lossy(data).into_owned());
                for line in pretty.lines() {
                    b.extend_from_slice(b"data: ");
                    b.extend_from_slice(line.as_bytes());
                    b.push(b'\n');
                }
                b.push(b'\n');
            }
            _ => {
                b.extend_from_slice(b"data: ");
                b.extend_from_slice(data);
                b.extend_from_slice(b"\n\n");
            }
        }
        b
    }

    async fn send(&self, bytes: Vec<u8>) -> bool {
        self.tx.send(Ok(Bytes::from(bytes))).await.is_ok()
    }

    async fn pause(&self) {
        tokio::time::sleep(Duration::from_secs_f64(
            self.cfg.trickle_ms.max(0.0) / 1000.0,
        ))
        .await;
    }

    /// Writes one event's bytes.
    async fn write(&mut self, bytes: Vec<u8>) -> bool {
        self.events += 1;
        match self.fault {
            Some(Fault::Trickle) => {
                for b in bytes {
                    if !self.send(vec![b]).await {
                        return false;
                    }
                    self.pause().await;
                }
                true
            }
            Some(Fault::Split) => {
                // Three pieces, cut at offsets that move with every event.
                let n = bytes.len();
                let a = (self.events as usize * 7) % n.max(1);
                let b = (a + 1 + (self.events as usize * 3) % 5).min(n);
                for piece in [&bytes[..a], &bytes[a..b], &bytes[b..]] {
                    if piece.is_empty() {
                        continue;
                    }
                    if !self.send(piece.to_vec()).await {
                        return false;
                    }
                    self.pause().await;
                }
                true
            }
            Some(Fault::Packed) => {
                self.packed.extend_from_slice(&bytes);
                self.packed_events += 1;
                if self.packed_events >= 4 {
                    return self.flush().await;
                }
                true
            }
            _ => self.send(bytes).await,
        }
    }

    async fn flush(&mut self) -> bool {
        self.packed_events = 0;
        if self.packed.is_empty() {
            return true;
        }
        let b = std::mem::take(&mut self.packed);
        self.send(b).await
    }

    async fn event(&mut self, v: &Value) -> bool {
        let data = v.to_string();
        let mut bytes = self.frame(data.as_bytes());
        if self.fault == Some(Fault::InvalidUtf8)
            && let Some(i) = find(&bytes, BAD_BYTE_MARK.as_bytes())
        {
            bytes.splice(i..i + BAD_BYTE_MARK.len(), [0xff]);
        }
        self.write(bytes).await
    }

    async fn raw_event(&mut self, data: &[u8]) -> bool {
        let bytes = self.frame(data);
        self.write(bytes).await
    }

    async fn done(&mut self) -> bool {
        self.raw_event(b"[DONE]").await
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What a mid-stream fault does to the rest of the stream.
enum Mid {
    Continue,
    Stop,
}

async fn mid_fault(out: &mut Out) -> Mid {
    match out.fault {
        Some(Fault::ErrorEvent) => {
            let e = json!({"error": {"message": "simulated server error", "type": "server_error", "code": 500}});
            out.event(&e).await;
            out.done().await;
            out.flush().await;
            Mid::Stop
        }
        Some(Fault::ErrorString) => {
            let e = json!({"error": "simulated generation error", "error_type": "generation"});
            out.event(&e).await;
            out.flush().await;
            Mid::Stop
        }
        Some(Fault::Malformed) => {
            out.raw_event(br#"{"choices":[{"delta":{"content":"#).await;
            Mid::Continue
        }
        Some(Fault::Reset) => {
            out.flush().await;
            // Let the tokens already written reach the socket: the cut comes after them.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = out
                .tx
                .send(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "simulated connection reset",
                )))
                .await;
            Mid::Stop
        }
        Some(Fault::StallMid) => {
            out.flush().await;
            tokio::time::sleep(out.cfg.stall).await;
            Mid::Continue
        }
        _ => Mid::Continue,
    }
}

async fn stream_events(
    mut g: Generation,
    model: String,
    kind: Kind,
    with_usage: bool,
    mut out: Out,
) {
    let id = format!("sim-{}", g.id);
    let (object, choice_of) = match kind {
        Kind::Chat => ("chat.completion.chunk", "delta"),
        Kind::Text => ("text_completion", "text"),
    };
    let chunk =
        |choice: Value| json!({"id": id, "object": object, "model": model, "choices": [choice]});
    let content = |text: &str| {
        if choice_of == "delta" {
            json!({"index": 0, "delta": {"content": text}, "finish_reason": null})
        } else {
            json!({"index": 0, "text": text, "finish_reason": null})
        }
    };
    let fault = out.fault;
    // Like vLLM, the chat role chunk goes out with the first generated token, not when the
    // request arrives: a client that starts TTFT at the first chunk with `choices` (vLLM's
    // benchmark does) then measures the truth too.
    let mut role_pending = kind == Kind::Chat;
    let after = out.cfg.after_tokens;
    let mut mid_done = false;
    let (mut n, mut cached) = (0u64, 0u64);
    let mut pending = String::new();
    while let Some(ev) = g.rx.recv().await {
        let word = match ev {
            Ev::Admitted { cached_tokens } => {
                cached = cached_tokens;
                continue;
            }
            Ev::Token(w) => w,
        };
        if n == after && !mid_done {
            mid_done = true;
            if let Mid::Stop = mid_fault(&mut out).await {
                return;
            }
        }
        n += 1;
        if fault == Some(Fault::EmptyChoices) && n > 1 {
            let e = json!({"id": id, "object": object, "model": model, "choices": []});
            if !out.event(&e).await {
                return;
            }
        }
        let text = match fault {
            Some(Fault::Split) => format!("{word}é€😀"),
            Some(Fault::InvalidUtf8) if n == 1 => format!("{word}{BAD_BYTE_MARK}"),
            _ => word.to_string(),
        };
        if fault == Some(Fault::MultiToken) {
            pending.push_str(&text);
            if n % 3 != 0 {
                continue;
            }
        }
        let text = if fault == Some(Fault::MultiToken) {
            std::mem::take(&mut pending)
        } else {
            text
        };
        if role_pending {
            role_pending = false;
            let role = chunk(json!({"index": 0, "delta": {"role": "assistant", "content": ""}}));
            if !out.event(&role).await {
                return;
            }
        }
        let mut v = chunk(content(&text));
        if fault == Some(Fault::BigLine) && n == 1 {
            v["padding"] = Value::String("x".repeat(1 << 20));
        }
        if !out.event(&v).await {
            return;
        }
    }
    if !pending.is_empty() && !out.event(&chunk(content(&pending))).await {
        return;
    }
    if !mid_done && let Mid::Stop = mid_fault(&mut out).await {
        return;
    }
    let last = if choice_of == "delta" {
        json!({"index": 0, "delta": {}, "finish_reason": "length"})
    } else {
        json!({"index": 0, "text": "", "finish_reason": "length"})
    };
    out.event(&chunk(last)).await;
    let usage_event = (with_usage && fault != Some(Fault::NoUsage)).then(|| {
        json!({"id": id, "object": object, "model": model, "choices": [],
               "usage": usage(g.prompt_tokens, n, cached)})
    });
    if fault != Some(Fault::LateUsage)
        && let Some(u) = &usage_event
    {
        out.event(u).await;
    }
    if fault != Some(Fault::NoDone) {
        out.done().await;
    }
    if fault == Some(Fault::DoubleDone) {
        out.done().await;
    }
    if fault == Some(Fault::LateUsage)
        && let Some(u) = &usage_event
    {
        out.event(u).await;
    }
    out.flush().await;
}
