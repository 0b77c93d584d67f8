//! What every protocol shares: request options, the decoded event, usage and timings, and
//! how a body is framed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::workload::RequestSpec;

/// Request options that apply to every protocol.
#[derive(Debug, Clone, Default)]
pub struct RequestOptions {
    /// Model name sent in the body.
    pub model: String,
    /// Ask for a streamed response.
    pub stream: bool,
    /// Ask the server to ignore end-of-sequence so exactly `max_tokens` come back.
    pub ignore_eos: bool,
    /// `--tools`: an OpenAI `tools` array sent with every chat request.
    pub tools: Option<std::sync::Arc<serde_json::Value>>,
    /// `--batch-inputs`: texts per embeddings or rerank request (0 means 1).
    pub batch_inputs: u32,
}

/// An HTTP request to send, relative to the target's base URL.
#[derive(Debug, Clone)]
pub struct HttpCall {
    /// Path appended to the base URL (starts with `/`), or empty when the base URL is the
    /// endpoint itself.
    pub path: String,
    /// JSON body.
    pub body: serde_json::Value,
}

/// Token counts a server reported.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: Option<u64>,
    /// Generated tokens.
    pub completion_tokens: Option<u64>,
    /// Prompt tokens served from the server's cache.
    pub cached_tokens: Option<u64>,
    /// What kind of report this was.
    pub source: Option<TokenSource>,
    /// A count the server sent that is not a token count, left out (the first one).
    pub rejected: Option<RejectedCount>,
    /// Generated tokens that were reasoning (`completion_tokens_details.reasoning_tokens`).
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    /// Counts as a server wrote them; a value that is not a count is left out and noted.
    pub(crate) fn from_counts(
        prompt: (&'static str, Option<Count>),
        completion: (&'static str, Option<Count>),
        cached: (&'static str, Option<Count>),
        source: TokenSource,
    ) -> Self {
        let mut rejected = None;
        let mut take = |(field, c): (&'static str, Option<Count>)| match c? {
            Count::Tokens(n) => Some(n),
            Count::Not(value) => {
                rejected.get_or_insert(RejectedCount { field, value });
                None
            }
        };
        Self {
            prompt_tokens: take(prompt),
            completion_tokens: take(completion),
            cached_tokens: take(cached),
            source: Some(source),
            rejected,
            reasoning_tokens: None,
        }
    }
}

/// Most tokens one request may report: above this a "count" is not one (the longest contexts
/// served are about 10 million tokens), and summing such values could overflow.
pub const MAX_TOKEN_COUNT: u64 = 100_000_000;

/// A token count as a server wrote it: a whole number from 0 to [`MAX_TOKEN_COUNT`], as an
/// integer or an integral float (`5.0`). Anything else still decodes (the reply is not lost
/// over a bad count) and is kept as what it was.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Count {
    /// A usable count.
    Tokens(u64),
    /// Not a token count.
    Not(RawValue),
}

impl Count {
    /// The count, when it is one.
    pub fn get(self) -> Option<u64> {
        match self {
            Count::Tokens(n) => Some(n),
            Count::Not(_) => None,
        }
    }
}

/// What a server sent where a count belonged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawValue {
    /// A whole number too large to be a count.
    Unsigned(u64),
    /// A negative number.
    Signed(i64),
    /// A fractional, huge or non-finite number.
    Float(f64),
    /// A string, boolean, array or object.
    NotANumber,
}

impl std::fmt::Display for RawValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RawValue::Unsigned(n) => write!(f, "{n}"),
            RawValue::Signed(n) => write!(f, "{n}"),
            RawValue::Float(x) => write!(f, "{x}"),
            RawValue::NotANumber => f.write_str("a value that is not a number"),
        }
    }
}

/// The first value a reply carried that was not a token count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RejectedCount {
    /// The field as the server names it (`completion_tokens`, `eval_count`, ...).
    pub field: &'static str,
    /// What it held.
    pub value: RawValue,
}

impl std::fmt::Display for RejectedCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.field, self.value)
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'v> serde::de::Visitor<'v> for V {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a token count")
            }
            fn visit_u64<E>(self, n: u64) -> Result<Count, E> {
                Ok(if n <= MAX_TOKEN_COUNT {
                    Count::Tokens(n)
                } else {
                    Count::Not(RawValue::Unsigned(n))
                })
            }
            fn visit_i64<E>(self, n: i64) -> Result<Count, E> {
                Ok(match u64::try_from(n) {
                    Ok(n) if n <= MAX_TOKEN_COUNT => Count::Tokens(n),
                    Ok(n) => Count::Not(RawValue::Unsigned(n)),
                    Err(_) => Count::Not(RawValue::Signed(n)),
                })
            }
            fn visit_f64<E>(self, x: f64) -> Result<Count, E> {
                Ok(
                    if x.fract() == 0.0 && (0.0..=MAX_TOKEN_COUNT as f64).contains(&x) {
                        Count::Tokens(x as u64)
                    } else {
                        Count::Not(RawValue::Float(x))
                    },
                )
            }
            fn visit_str<E>(self, _: &str) -> Result<Count, E> {
                Ok(Count::Not(RawValue::NotANumber))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Count, E> {
                Ok(Count::Not(RawValue::NotANumber))
            }
            fn visit_seq<A: serde::de::SeqAccess<'v>>(self, mut a: A) -> Result<Count, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Count::Not(RawValue::NotANumber))
            }
            fn visit_map<A: serde::de::MapAccess<'v>>(self, mut a: A) -> Result<Count, A::Error> {
                while a
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Count::Not(RawValue::NotANumber))
            }
        }
        d.deserialize_any(V)
    }
}

/// Timings a server reported about its own work (Ollama durations, llama.cpp `timings`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerTimings {
    /// Time the server spent evaluating the prompt (ms).
    pub prompt_ms: Option<f64>,
    /// Time the server spent generating output (ms).
    pub decode_ms: Option<f64>,
    /// Time the server spent loading the model for this request (ms; Ollama).
    pub load_ms: Option<f64>,
}

/// What one event carried. Fields are additive: one event may carry text and usage.
#[derive(Debug, Default, PartialEq)]
pub struct Delta {
    /// Generated answer text; empty when the event carried none.
    pub text: String,
    /// Generated reasoning text (`reasoning_content`, `reasoning`, Ollama's `thinking`).
    pub reasoning: String,
    /// The event carried generated tool calls (a function's name or arguments) and perhaps no
    /// text: output all the same (it sets the first-token time and counts as a chunk).
    pub tool_output: bool,
    /// Tool calls this event started (a tool-call delta carrying an `id`).
    pub tool_calls: u32,
    /// The tool-call pieces this event carried (id, name and arguments text by call index),
    /// assembled by the client into the reply a conversation sends back.
    pub tool_parts: Vec<ToolCallPart>,
    /// Embeddings or rerank results the reply carried.
    pub items: Option<u32>,
    /// Tokens in this event when the protocol says (else one per content event).
    pub tokens: Option<u64>,
    /// Token counts, usually in the last event.
    pub usage: Option<Usage>,
    /// The server says the prompt was a cache hit (plain JSON `cached` flag).
    pub cache_hit: Option<bool>,
    /// The event ends the response properly (`[DONE]`, `done: true`, a final object).
    pub done: bool,
    /// An in-band error reported by the server.
    pub error: Option<String>,
    /// The HTTP status the error object names (`"code": 404` or `"status": 429`, 400-599).
    pub error_status: Option<u16>,
    /// The server's own timings of this request, usually in the last event.
    pub timings: Option<ServerTimings>,
}

impl Delta {
    /// Back to empty, keeping the text buffers' capacity for the next event.
    pub(crate) fn clear(&mut self) {
        let (mut text, mut reasoning) = (
            std::mem::take(&mut self.text),
            std::mem::take(&mut self.reasoning),
        );
        text.clear();
        reasoning.clear();
        *self = Delta {
            text,
            reasoning,
            ..Delta::default()
        };
    }
}

/// One streamed piece of a tool call: the first carries its id and name, later ones more of
/// its arguments.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ToolCallPart {
    /// Which call of the reply (OpenAI's `index`; its position when absent).
    pub index: u32,
    /// The call's id, on its first piece.
    pub id: Option<String>,
    /// The function's name, on its first piece.
    pub name: Option<String>,
    /// More of the arguments' text.
    pub arguments: String,
}

/// A decoding failure: the event was not what the protocol allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// One wire protocol.
pub trait Protocol: Send + Sync {
    /// The backend it speaks.
    fn backend(&self) -> super::Backend;
    /// Name as given to `--backend` and recorded in the result file.
    fn name(&self) -> &'static str {
        self.backend().name()
    }
    /// The request for one spec.
    fn build(&self, spec: &RequestSpec, opts: &RequestOptions) -> HttpCall;
    /// How the response body is framed (default: SSE when streaming, one JSON body when not).
    fn framing(&self, stream: bool) -> Framing {
        if stream { Framing::Sse } else { Framing::Whole }
    }
    /// Decodes one event payload (a whole body when not streaming) into `out`.
    fn decode(&self, payload: &[u8], out: &mut Delta) -> Result<(), DecodeError>;
    /// Whether a streamed response must end with an explicit end marker to count as complete.
    fn needs_end_marker(&self) -> bool {
        true
    }
    /// Whether the protocol can stream at all (the plain `generate` API cannot).
    fn can_stream(&self) -> bool {
        true
    }
    /// Whether `--ignore-eos` can be honoured (the request asks for exactly `max_tokens`).
    fn supports_ignore_eos(&self) -> bool {
        true
    }
    /// Whether the server wraps the prompt in its chat template (chat endpoints): a local
    /// count of the messages' text then misses the template's tokens.
    fn server_templates_prompt(&self) -> bool {
        false
    }
    /// Whether requests can carry images (`--image`, dataset `"images"`).
    fn takes_images(&self) -> bool {
        false
    }
    /// Whether requests can carry audio (`--audio`).
    fn takes_audio(&self) -> bool {
        false
    }
    /// Whether the model generates text (embeddings and rerank do not: no output tokens, no
    /// requested length).
    fn generates(&self) -> bool {
        true
    }
    /// Items a reply must carry (one per input of an embeddings or rerank request).
    fn expected_items(&self, _opts: &RequestOptions) -> Option<u32> {
        None
    }
}

/// Text of a payload for error messages: lossy, and cut to a readable length.
pub fn snippet(bytes: &[u8]) -> String {
    const MAX: usize = 300;
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]);
    if bytes.len() > MAX {
        format!("{s}…")
    } else {
        s.into_owned()
    }
}

/// The payload without surrounding whitespace, or `None` (and `out.done` set) when it is the
/// OpenAI-style `[DONE]` end marker.
pub(crate) fn unless_done<'a>(payload: &'a [u8], out: &mut Delta) -> Option<&'a [u8]> {
    let trimmed = payload.trim_ascii();
    if trimmed == b"[DONE]" {
        out.done = true;
        return None;
    }
    Some(trimmed)
}

/// Where a token count came from, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// The server's `usage` object (or equivalent in the final event).
    ServerUsage,
    /// The server's own counters (Ollama eval_count, llama.cpp timings, TGI details).
    ServerCounters,
    /// A local tokenizer applied to the received text.
    Tokenizer,
    /// A local tokenizer applied to the messages' text alone (prompts to chat endpoints whose
    /// server gave no count): the server's chat template adds tokens this count misses.
    TokenizerTextOnly,
    /// One token per received content chunk.
    Chunks,
}

/// How a response body is cut into events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `text/event-stream`.
    Sse,
    /// One JSON document per line.
    Ndjson,
    /// The whole body is one document (non-streaming responses).
    Whole,
}

impl Delta {
    /// Takes a server's error value: its text and the HTTP status it names, if any.
    pub fn set_error(&mut self, err: &Value) {
        self.error = Some(error_text(err));
        self.error_status = error_status(err);
    }
}

/// The HTTP status an error object names (`{"code": 404}`, `{"status": "429"}`); OpenAI's own
/// string codes (`"model_not_found"`) are not statuses.
pub fn error_status(v: &Value) -> Option<u16> {
    ["code", "status"].iter().find_map(|k| {
        let c = v.get(k)?;
        let n = c
            .as_u64()
            .or_else(|| c.as_str().and_then(|s| s.trim().parse().ok()))?;
        u16::try_from(n).ok().filter(|n| (400..600).contains(n))
    })
}

/// Text of an OpenAI-style error value (`{"message": ...}` or a plain string).
pub fn error_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string()),
        other => other.to_string(),
    }
}
