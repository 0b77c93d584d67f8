//! The OpenAI-compatible simulator's streamed replies: the SSE event writer (with the wire
//! faults: CRLF, packing, splits, resets) and the events of one generation, tokens grouped per
//! chunk and the first `--reasoning-tokens` sent as reasoning.

use std::time::Duration;

use axum::body::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Generation;
use super::engine::Ev;
use super::fault::{Fault, FaultConfig};

/// Which OpenAI endpoint a request came to.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Kind {
    /// `/v1/chat/completions`.
    Chat,
    /// `/v1/completions`.
    Text,
}

/// `usage` with `completion_tokens_details.reasoning_tokens` when the reply reasoned.
pub(super) fn with_reasoning(mut usage: Value, reasoning: u64) -> Value {
    if reasoning > 0 {
        usage["completion_tokens_details"] = json!({"reasoning_tokens": reasoning});
    }
    usage
}

pub(super) fn usage(prompt: u64, completion: u64, cached: u64) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    })
}

/// Writes SSE events, misbehaving as the request's fault says.
pub(super) struct Out {
    pub(super) tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    pub(super) fault: Option<Fault>,
    pub(super) cfg: FaultConfig,
    pub(super) events: u64,
    pub(super) packed: Vec<u8>,
    pub(super) packed_events: u32,
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

/// How a reply's tokens go out besides their chunking (`Generation::chunks`).
pub(super) struct Shape {
    /// The first this many tokens are reasoning (chat replies).
    pub reasoning: u64,
    /// The answer is a call of this tool: its tokens stream as the call's JSON arguments
    /// (`{"q":"` before the first, `"}` after the last), one tool-call delta per chunk.
    pub tool: Option<String>,
}

pub(super) async fn stream_events(
    mut g: Generation,
    model: String,
    kind: Kind,
    with_usage: bool,
    shape: Shape,
    mut out: Out,
) {
    let id = format!("sim-{}", g.id);
    let (object, choice_of) = match kind {
        Kind::Chat => ("chat.completion.chunk", "delta"),
        Kind::Text => ("text_completion", "text"),
    };
    let chunk =
        |choice: Value| json!({"id": id, "object": object, "model": model, "choices": [choice]});
    let call_id = format!("call_{}", g.id);
    let content = |text: &str, reasoning: bool, first: bool| {
        if let (Some(name), false) = (&shape.tool, reasoning) {
            let call = if first {
                json!({"index": 0, "id": call_id, "type": "function",
                       "function": {"name": name, "arguments": text}})
            } else {
                json!({"index": 0, "function": {"arguments": text}})
            };
            json!({"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": null})
        } else if reasoning {
            json!({"index": 0, "delta": {"reasoning_content": text}, "finish_reason": null})
        } else if choice_of == "delta" {
            json!({"index": 0, "delta": {"content": text}, "finish_reason": null})
        } else {
            json!({"index": 0, "text": text, "finish_reason": null})
        }
    };
    // Tokens per chunk: the generation's shape (`--tokens-per-chunk`), or 3 for the
    // `multi-token` fault; a chunk never mixes reasoning and answer.
    let chunks = g.chunks;
    let fault_is_multi = out.fault == Some(Fault::MultiToken);
    let size = |i: u64| {
        if fault_is_multi { 3 } else { chunks.size(i) }
    };
    let (mut chunk_no, mut in_chunk) = (0u64, 0u64);
    let mut answered = false;
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
        let reasoning = n <= shape.reasoning;
        pending.push_str(&text);
        in_chunk += 1;
        let full = in_chunk >= size(chunk_no);
        // The last reasoning token ends its event early; the rest of that chunk's tokens (sent
        // at the same step) follow as an answer event.
        if !full && n != shape.reasoning {
            continue;
        }
        if full {
            chunk_no += 1;
            in_chunk = 0;
        }
        let mut text = std::mem::take(&mut pending);
        let first_answer = !reasoning && !answered;
        answered |= !reasoning;
        if shape.tool.is_some() && !reasoning {
            if first_answer {
                text.insert_str(0, "{\"q\":\"");
            }
            if n == g.max_tokens {
                text.push_str("\"}");
            }
        }
        if role_pending {
            role_pending = false;
            let role = chunk(json!({"index": 0, "delta": {"role": "assistant", "content": ""}}));
            if !out.event(&role).await {
                return;
            }
        }
        let mut v = chunk(content(&text, reasoning, first_answer));
        if fault == Some(Fault::BigLine) && n == 1 {
            v["padding"] = Value::String("x".repeat(1 << 20));
        }
        if !out.event(&v).await {
            return;
        }
    }
    if !pending.is_empty()
        && !out
            .event(&chunk(content(&pending, n <= shape.reasoning, !answered)))
            .await
    {
        return;
    }
    if !mid_done && let Mid::Stop = mid_fault(&mut out).await {
        return;
    }
    let last = if choice_of == "delta" {
        let why = if shape.tool.is_some() {
            "tool_calls"
        } else {
            "length"
        };
        json!({"index": 0, "delta": {}, "finish_reason": why})
    } else {
        json!({"index": 0, "text": "", "finish_reason": "length"})
    };
    out.event(&chunk(last)).await;
    let usage_event = (with_usage && fault != Some(Fault::NoUsage)).then(|| {
        json!({"id": id, "object": object, "model": model, "choices": [],
               "usage": with_reasoning(usage(g.prompt_tokens, n, cached), shape.reasoning.min(n))})
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
