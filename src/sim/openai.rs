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
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, UnboundedReceiverStream};

use super::arrival::SocketArrival;
use super::fault::Fault;
use super::openai_sse::{Kind, Out, Shape, stream_events, usage, with_reasoning};
use super::{Generation, Sim, ticker};

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
        // An assistant's tool calls are prompt text too: `name(arguments)` each.
        for c in m["tool_calls"].as_array().into_iter().flatten() {
            out.push_str(c["function"]["name"].as_str().unwrap_or_default());
            out.push('(');
            out.push_str(c["function"]["arguments"].as_str().unwrap_or_default());
            out.push(')');
        }
        out.push('\n');
    }
    out
}

/// Checks the tool messages as OpenAI's API does: each answers, by `tool_call_id`, a call of an
/// earlier assistant message, whose calls have an id, a function name and JSON arguments.
fn check_tool_messages(messages: &[Value]) -> Result<(), String> {
    let mut ids = std::collections::HashSet::new();
    for m in messages {
        for c in m["tool_calls"].as_array().into_iter().flatten() {
            let id = c["id"].as_str().filter(|s| !s.is_empty());
            let name = c["function"]["name"].as_str().filter(|s| !s.is_empty());
            let args = c["function"]["arguments"].as_str();
            let (Some(id), Some(_), Some(args)) = (id, name, args) else {
                return Err("a tool call needs an id, a function name and arguments".into());
            };
            if serde_json::from_str::<Value>(args).is_err() {
                return Err(format!("tool call {id}: arguments are not JSON: {args}"));
            }
            ids.insert(id.to_string());
        }
        if m["role"] == "tool" {
            match m["tool_call_id"].as_str() {
                Some(id) if ids.contains(id) => {}
                _ => {
                    return Err(
                        "messages with role 'tool' must answer a preceding message's tool_calls (tool_call_id)"
                            .into(),
                    );
                }
            }
        }
    }
    Ok(())
}

async fn chat(
    State(sim): State<Arc<Sim>>,
    socket: SocketArrival,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrived = Arrived::now(socket);
    let v = match parse(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(messages) = v.get("messages").and_then(Value::as_array) else {
        return error(StatusCode::BAD_REQUEST, "`messages` must be an array");
    };
    if let Err(e) = check_tool_messages(messages) {
        return error(StatusCode::BAD_REQUEST, &e);
    }
    let prompt = render_messages(messages);
    let images = match super::media::openai_tokens(messages) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let resp = respond(&sim, &v, &prompt, images, Kind::Chat).await;
    stamped(&sim, &headers, arrived, resp)
}

async fn completions(
    State(sim): State<Arc<Sim>>,
    socket: SocketArrival,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrived = Arrived::now(socket);
    let v = match parse(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(prompt) = v.get("prompt").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "`prompt` must be a string");
    };
    let prompt = prompt.to_string();
    let resp = respond(&sim, &v, &prompt, 0, Kind::Text).await;
    stamped(&sim, &headers, arrived, resp)
}

type SendLog = Arc<std::sync::Mutex<std::io::LineWriter<std::fs::File>>>;

/// When a request arrived: its handler's start and, with the kernel's receive timestamp, when
/// its bytes reached the socket.
struct Arrived {
    handler: Instant,
    socket: Option<Instant>,
}

impl Arrived {
    /// A handler starting now, on a request that reached the socket at `socket`.
    fn now(socket: SocketArrival) -> Self {
        Self {
            handler: Instant::now(),
            socket: socket.0,
        }
    }
}

/// With `--send-log`, wraps a streamed response's body so each chunk's hand-over to the
/// connection is timed; the line is written when the body ends or is dropped.
fn stamped(sim: &Sim, headers: &HeaderMap, arrived: Arrived, resp: Response) -> Response {
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
        arrived_ms: arrived.handler.duration_since(sim.started).as_secs_f64() * 1000.0,
        // Stamps a little ahead of the handler's clock are the two clocks' rounding.
        waited_ms: arrived
            .socket
            .map(|at| arrived.handler.saturating_duration_since(at).as_secs_f64() * 1000.0),
        arrived: arrived.handler,
        sends_ms: Vec::new(),
        log,
    };
    Response::from_parts(parts, Body::from_stream(stream))
}

struct Stamped {
    inner: axum::body::BodyDataStream,
    id: Option<String>,
    arrived_ms: f64,
    /// From the request's bytes reaching the socket to its handler starting.
    waited_ms: Option<f64>,
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
            "waited_ms": self.waited_ms,
            "sends_ms": self.sends_ms,
        });
        if let Ok(mut w) = self.log.lock() {
            let _ = writeln!(w, "{line}");
        }
    }
}

async fn respond(sim: &Sim, v: &Value, prompt: &str, image_tokens: u64, kind: Kind) -> Response {
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
    let reasoning = if kind == Kind::Chat {
        sim.cfg.reasoning_tokens
    } else {
        0
    };
    // `--tool-calls`: a chat request that offers tools gets a call of the first one.
    let tool = v["tools"][0]["function"]["name"]
        .as_str()
        .filter(|_| sim.cfg.tool_calls && kind == Kind::Chat)
        .map(str::to_string);
    if stream && fault.is_none() && reasoning == 0 && tool.is_none() {
        let (tx, rx) = mpsc::unbounded_channel();
        let req = ticker::Request {
            prompt,
            max_tokens: max_tokens(v),
            image_tokens,
            kind,
            model: &model,
            with_usage: include_usage(v),
        };
        if ticker::start(sim, &req, &tx).is_some() {
            return sse_response(Body::from_stream(UnboundedReceiverStream::new(rx)));
        }
    }
    let generation = if fault == Some(Fault::Empty) {
        // A generation that ends before its first token.
        let (_, rx) = tokio::sync::mpsc::unbounded_channel();
        Generation {
            id: u64::MAX,
            prompt_tokens: super::text::count(prompt) + image_tokens,
            max_tokens: 0,
            rx,
            chunks: Default::default(),
        }
    } else {
        sim.generate_with_images(prompt, max_tokens(v), image_tokens)
    };
    if !stream {
        let id = generation.id;
        let prompt_tokens = generation.prompt_tokens;
        let (thought, text, n, cached) = generation.collect_split(reasoning).await;
        let choice = match kind {
            Kind::Chat if !thought.is_empty() => {
                json!({"index": 0, "message": {"role": "assistant", "reasoning_content": thought, "content": text}, "finish_reason": "length"})
            }
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
            "choices": [choice], "usage": with_reasoning(usage(prompt_tokens, n, cached), reasoning.min(n)),
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
    let shape = Shape { reasoning, tool };
    tokio::spawn(stream_events(
        generation,
        model,
        kind,
        include_usage(v),
        shape,
        out,
    ));
    sse_response(Body::from_stream(ReceiverStream::new(rx)))
}

fn sse_response(body: Body) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .expect("response")
}
