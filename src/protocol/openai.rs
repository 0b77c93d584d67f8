//! OpenAI-compatible `/v1/chat/completions` and `/v1/completions` (vLLM, SGLang, llama.cpp's
//! server, TGI's Messages API, Ollama's `/v1`, and hosted APIs).

use serde::Deserialize;
use serde_json::{Value, json};

use super::one_or_more::OneOrMore;
use super::types::{
    Count, DecodeError, Delta, HttpCall, Protocol, RequestOptions, TokenSource, Usage,
};
use crate::workload::RequestSpec;

/// Chat or text completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `/v1/chat/completions`
    Chat,
    /// `/v1/completions`
    Completions,
}

/// The OpenAI protocol.
#[derive(Debug, Clone)]
pub struct OpenAi {
    flavor: Flavor,
}

impl OpenAi {
    /// Chat completions.
    pub fn chat() -> Self {
        Self {
            flavor: Flavor::Chat,
        }
    }

    /// Text completions.
    pub fn completions() -> Self {
        Self {
            flavor: Flavor::Completions,
        }
    }
}

// Streamed events are parsed into borrowed views of the payload: a token's text is copied once,
// into the response text, not first into a string of its own (profiled: per-token allocations
// were among the client's top costs).
#[derive(Deserialize)]
struct Chunk<'a> {
    // `"choices": null` (some servers' usage-only events) is an empty list.
    #[serde(default, borrow)]
    choices: OneOrMore<Choice<'a>>,
    usage: Option<UsageJson>,
    error: Option<Value>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow)]
    delta: Option<Message<'a>>,
    #[serde(borrow)]
    message: Option<Message<'a>>,
    #[serde(borrow)]
    text: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    content: Option<Text<'a>>,
    #[serde(default, borrow, deserialize_with = "null_as_empty")]
    tool_calls: Vec<ToolCall<'a>>,
    #[serde(borrow)]
    reasoning_content: Option<Text<'a>>,
    #[serde(borrow)]
    reasoning: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    index: Option<u32>,
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(borrow)]
    name: Option<Text<'a>>,
    #[serde(borrow)]
    arguments: Option<Text<'a>>,
}

/// A JSON string, borrowed from the payload when it has no escapes, else unescaped and owned.
struct Text<'a>(std::borrow::Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

#[derive(Deserialize)]
struct UsageJson {
    prompt_tokens: Option<Count>,
    completion_tokens: Option<Count>,
    prompt_tokens_details: Option<Details>,
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    reasoning_tokens: Option<Count>,
}

#[derive(Deserialize)]
struct Details {
    cached_tokens: Option<Count>,
}

impl Protocol for OpenAi {
    fn backend(&self) -> super::Backend {
        match self.flavor {
            Flavor::Chat => super::Backend::OpenAiChat,
            Flavor::Completions => super::Backend::OpenAiCompletions,
        }
    }

    fn build(&self, spec: &RequestSpec, opts: &RequestOptions) -> HttpCall {
        let mut body = match self.flavor {
            Flavor::Chat => json!({"model": opts.model, "messages": chat_messages(spec)}),
            Flavor::Completions => json!({"model": opts.model, "prompt": spec.prompt.text()}),
        };
        let o = body.as_object_mut().expect("object");
        o.insert("stream".into(), Value::Bool(opts.stream));
        if opts.stream {
            o.insert("stream_options".into(), json!({"include_usage": true}));
        }
        if let Some(n) = spec.max_tokens {
            o.insert("max_tokens".into(), json!(n));
            if opts.ignore_eos {
                o.insert("ignore_eos".into(), Value::Bool(true));
                o.insert("min_tokens".into(), json!(n));
            }
        }
        if let Some(t) = spec.temperature {
            o.insert("temperature".into(), json!(t));
        }
        if let (Flavor::Chat, Some(tools)) =
            (self.flavor, spec.tools.as_ref().or(opts.tools.as_ref()))
        {
            o.insert("tools".into(), (**tools).clone());
        }
        HttpCall {
            path: match self.flavor {
                Flavor::Chat => "/v1/chat/completions".into(),
                Flavor::Completions => "/v1/completions".into(),
            },
            body,
        }
    }

    fn decode(&self, payload: &[u8], out: &mut Delta) -> Result<(), DecodeError> {
        let Some(trimmed) = super::types::unless_done(payload, out) else {
            return Ok(());
        };
        if super::openai_scan::scan(trimmed, out).is_some() {
            return Ok(());
        }
        decode_serde(trimmed, out)
    }

    fn server_templates_prompt(&self) -> bool {
        self.flavor == Flavor::Chat
    }

    fn takes_images(&self) -> bool {
        self.flavor == Flavor::Chat
    }

    fn takes_audio(&self) -> bool {
        self.flavor == Flavor::Chat
    }
}

/// The chat messages; a request's images and audio follow the text of its last user message as
/// `image_url` and `input_audio` parts (the text first, so a prefix cache never reaches a new prompt's images).
fn chat_messages(spec: &RequestSpec) -> Value {
    let mut msgs = serde_json::to_value(spec.prompt.messages()).expect("messages");
    if spec.images.is_empty() && spec.audio.is_empty() {
        return msgs;
    }
    let arr = msgs.as_array_mut().expect("array");
    if let Some(m) = arr.iter_mut().rev().find(|m| m["role"] == "user") {
        let mut parts = vec![json!({"type": "text", "text": m["content"].take()})];
        parts.extend(
            spec.images
                .iter()
                .map(|i| json!({"type": "image_url", "image_url": {"url": &*i.url}})),
        );
        parts.extend(spec.audio.iter().map(
            |a| json!({"type": "input_audio", "input_audio": {"data": &*a.data, "format": "wav"}}),
        ));
        m["content"] = Value::Array(parts);
    }
    msgs
}

/// Adds one parsed event to `out`.
/// An event through serde: every shape the protocol allows (the scan takes the common one).
pub(super) fn decode_serde(trimmed: &[u8], out: &mut Delta) -> Result<(), DecodeError> {
    match serde_json::from_slice::<Chunk>(trimmed) {
        Ok(c) => apply(c, out),
        // Invalid UTF-8 inside a string: the event is otherwise whole, so its text is kept
        // with U+FFFD in place of the bad bytes rather than failing a generated response.
        Err(_) if std::str::from_utf8(trimmed).is_err() => {
            let lossy = String::from_utf8_lossy(trimmed);
            let c = serde_json::from_str::<Chunk>(&lossy).map_err(|e| {
                DecodeError(format!(
                    "malformed event ({e}): {}",
                    super::types::snippet(trimmed)
                ))
            })?;
            apply(c, out)
        }
        Err(e) => Err(DecodeError(format!(
            "malformed event ({e}): {}",
            super::types::snippet(trimmed)
        ))),
    }
}

fn apply(chunk: Chunk<'_>, out: &mut Delta) -> Result<(), DecodeError> {
    if let Some(err) = chunk.error {
        out.set_error(&err);
        return Ok(());
    }
    for choice in chunk.choices {
        if let Some(t) = choice.text {
            out.text.push_str(&t.0);
        }
        // A non-streaming body ends itself: it carries `message`.
        if choice.message.is_some() {
            out.done = true;
        }
        if let Some(m) = choice.delta.or(choice.message) {
            // Tool-call deltas are generated output even when no text comes with them.
            // A call's first delta carries its id; later ones only add to its arguments.
            out.tool_calls += m
                .tool_calls
                .iter()
                .filter(|c| c.id.as_ref().is_some_and(|t| !t.0.is_empty()))
                .count() as u32;
            out.tool_output |= m.tool_calls.iter().any(|c| {
                c.function.as_ref().is_some_and(|f| {
                    [&f.name, &f.arguments]
                        .into_iter()
                        .flatten()
                        .any(|t| !t.0.is_empty())
                })
            });
            for (i, c) in m.tool_calls.into_iter().enumerate() {
                let (name, arguments) = match c.function {
                    Some(f) => (f.name.map(|t| t.0.into_owned()), f.arguments),
                    None => (None, None),
                };
                out.tool_parts.push(super::types::ToolCallPart {
                    index: c.index.unwrap_or(i as u32),
                    id: c.id.map(|t| t.0.into_owned()).filter(|t| !t.is_empty()),
                    name,
                    arguments: arguments.map(|t| t.0.into_owned()).unwrap_or_default(),
                });
            }
            for part in [m.reasoning_content, m.reasoning].into_iter().flatten() {
                out.reasoning.push_str(&part.0);
            }
            if let Some(c) = m.content {
                out.text.push_str(&c.0);
            }
        }
    }
    if let Some(u) = chunk.usage {
        let mut usage = Usage::from_counts(
            ("prompt_tokens", u.prompt_tokens),
            ("completion_tokens", u.completion_tokens),
            (
                "cached_tokens",
                u.prompt_tokens_details.and_then(|d| d.cached_tokens),
            ),
            TokenSource::ServerUsage,
        );
        usage.reasoning_tokens = u
            .completion_tokens_details
            .and_then(|d| d.reasoning_tokens?.get());
        out.usage = Some(usage);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Prompt;

    fn decode(p: &OpenAi, s: &str) -> Delta {
        let mut d = Delta::default();
        p.decode(s.as_bytes(), &mut d).unwrap();
        d
    }

    #[test]
    fn builds_streaming_chat_with_usage() {
        let spec = RequestSpec {
            images: Vec::new(),
            tools: None,
            audio: Vec::new(),
            prompt: Prompt::Text("hi".into()),
            max_tokens: Some(5),
            temperature: Some(0.5),
        };
        let opts = RequestOptions {
            model: "m".into(),
            stream: true,
            ignore_eos: true,
            tools: None,
            batch_inputs: 1,
        };
        let call = OpenAi::chat().build(&spec, &opts);
        assert_eq!(call.path, "/v1/chat/completions");
        assert_eq!(call.body["messages"][0]["content"], "hi");
        assert_eq!(call.body["stream_options"]["include_usage"], true);
        assert_eq!(call.body["max_tokens"], 5);
        assert_eq!(call.body["min_tokens"], 5);
        assert_eq!(call.body["temperature"], 0.5);
        let call = OpenAi::completions().build(&spec, &opts);
        assert_eq!(call.body["prompt"], "hi");
    }

    #[test]
    fn decodes_chat_chunks() {
        let p = OpenAi::chat();
        let role = decode(
            &p,
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
        );
        assert!(role.text.is_empty(), "a role-only chunk carries no text");
        let c = decode(&p, r#"{"choices":[{"delta":{"content":" hi"}}]}"#);
        assert_eq!(c.text, " hi");
        // Escaped strings are unescaped (owned), plain ones borrowed: same text either way.
        let e = decode(
            &p,
            r#"{"choices":[{"delta":{"content":"a\nb \u00e9\"q\" \ud83d\ude00"}}]}"#,
        );
        assert_eq!(e.text, "a\nb é\"q\" 😀");
        let t = decode(&OpenAi::completions(), r#"{"choices":[{"text":"x\ty"}]}"#);
        assert_eq!(t.text, "x\ty");
        let r = decode(
            &p,
            r#"{"choices":[{"delta":{"reasoning_content":"think"}}]}"#,
        );
        assert_eq!((r.reasoning.as_str(), r.text.as_str()), ("think", ""));
        let u = decode(
            &p,
            r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":4}}}"#,
        );
        let usage = u.usage.unwrap();
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cached_tokens
            ),
            (Some(7), Some(3), Some(4))
        );
        assert!(decode(&p, "[DONE]").done);
        let e = decode(&p, r#"{"error":{"message":"boom","code":500}}"#);
        assert_eq!(e.error.as_deref(), Some("boom"));
        let mut d = Delta::default();
        assert!(p.decode(b"{not json", &mut d).is_err());
    }

    #[test]
    fn decodes_whole_bodies() {
        let p = OpenAi::chat();
        let d = decode(
            &p,
            r#"{"choices":[{"message":{"role":"assistant","content":"hello"}}],"usage":{"prompt_tokens":2,"completion_tokens":1}}"#,
        );
        assert_eq!(d.text, "hello");
        assert!(d.done);
        let c = decode(
            &OpenAi::completions(),
            r#"{"choices":[{"text":"abc","finish_reason":"length"}]}"#,
        );
        assert_eq!(c.text, "abc");
    }

    /// What a whole streamed body decoded to.
    #[derive(Debug, Default, PartialEq)]
    struct Got {
        text: String,
        content_events: usize,
        usage: Option<Usage>,
        done: bool,
        error: Option<String>,
        decode_error: Option<String>,
    }

    fn run_stream(p: &OpenAi, pieces: &[&[u8]]) -> Got {
        use crate::transport::sse::{Event, Framer};
        let mut f = Framer::new(p.framing(true));
        let mut g = Got::default();
        let mut cb = |e: Event<'_>| -> Result<(), DecodeError> {
            let mut d = Delta::default();
            p.decode(e.data, &mut d)?;
            if !d.text.is_empty() {
                g.content_events += 1;
                g.text.push_str(&d.text);
            }
            if d.usage.is_some() {
                g.usage = d.usage;
            }
            g.done |= d.done;
            if d.error.is_some() {
                g.error = d.error;
            }
            Ok(())
        };
        let mut failed = None;
        for piece in pieces {
            if let Err(e) = f.push(piece, &mut cb) {
                failed = Some(e.0);
                break;
            }
        }
        if failed.is_none()
            && let Err(e) = f.finish(&mut cb)
        {
            failed = Some(e.0);
        }
        g.decode_error = failed;
        g
    }

    /// A stream with every framing oddity at once: CRLF and bare CR, comments, `event:`/`id:`
    /// fields, JSON over several `data:` lines, multi-byte UTF-8, several tokens in one event,
    /// empty `choices`, usage, and a duplicate `[DONE]`.
    const ODD: &[u8] = b": ping\r\n\r\nevent: message\r\nid: 1\r\ndata: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\r\n\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"h\xc3\xa9\"}}]}\r\rdata: {\"choices\":\r\ndata: [{\"delta\":\r\ndata: {\"content\":\" \xe2\x82\xac\xf0\x9f\x98\x80 two words\"}}]}\n\ndata: {\"choices\":[]}\n\n: keep-alive\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":4}}\n\ndata: [DONE]\n\ndata: [DONE]\n\n";

    #[test]
    fn odd_streams_decode_identically_at_every_split() {
        let p = OpenAi::chat();
        let whole = run_stream(&p, &[ODD]);
        assert_eq!(whole.text, "hé €😀 two words");
        assert_eq!(
            whole.content_events, 2,
            "several tokens in one event count once"
        );
        assert_eq!(whole.usage.unwrap().completion_tokens, Some(4));
        assert!(whole.done && whole.error.is_none() && whole.decode_error.is_none());
        for i in 0..=ODD.len() {
            assert_eq!(
                run_stream(&p, &[&ODD[..i], &ODD[i..]]),
                whole,
                "split at {i}"
            );
        }
        let bytes: Vec<&[u8]> = ODD.chunks(1).collect();
        assert_eq!(run_stream(&p, &bytes), whole, "byte by byte");
    }

    #[test]
    fn random_splits_of_valid_streams_decode_identically() {
        let mut rng = crate::transport::sse::tests::Rng(42);
        let p = OpenAi::chat();
        for _ in 0..500 {
            // A valid stream of random length with random tokens, then random cuts.
            let words = ["a", " é", "€", " 😀", " x\\n", "\\\"q\\\""];
            let mut body = Vec::new();
            let n = rng.below(20);
            for _ in 0..n {
                let w = words[rng.below(words.len())];
                let end: &[u8] = [&b"\n\n"[..], b"\r\n\r\n", b"\r\r"][rng.below(3)];
                body.extend_from_slice(
                    format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{w}\"}}}}]}}")
                        .as_bytes(),
                );
                body.extend_from_slice(end);
            }
            body.extend_from_slice(b"data: [DONE]\n\n");
            let whole = run_stream(&p, &[&body]);
            assert_eq!(whole.content_events, n);
            assert!(whole.done && whole.decode_error.is_none());
            for _ in 0..8 {
                let pieces = rng.pieces(&body);
                assert_eq!(run_stream(&p, &pieces), whole);
            }
        }
    }

    #[test]
    fn several_events_per_read_each_count() {
        let mut body = Vec::new();
        for i in 0..5 {
            body.extend_from_slice(
                format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"t{i}\"}}}}]}}\n\n")
                    .as_bytes(),
            );
        }
        body.extend_from_slice(b"data: [DONE]\n\n");
        let g = run_stream(&OpenAi::chat(), &[&body]);
        assert_eq!((g.content_events, g.text.as_str()), (5, "t0t1t2t3t4"));
    }

    #[test]
    fn invalid_utf8_is_kept_lossily() {
        let g = run_stream(
            &OpenAi::chat(),
            &[b"data: {\"choices\":[{\"delta\":{\"content\":\"a\xffb\"}}]}\n\ndata: [DONE]\n\n"],
        );
        assert_eq!(g.text, "a\u{fffd}b");
        assert!(g.decode_error.is_none() && g.done);
        // Invalid UTF-8 in broken JSON is still an error.
        let mut d = Delta::default();
        assert!(OpenAi::chat().decode(b"{\"choices\":\xff", &mut d).is_err());
    }

    #[test]
    fn malformed_and_error_events() {
        let g = run_stream(
            &OpenAi::chat(),
            &[b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\n\ndata: [DONE]\n\n"],
        );
        assert!(g.decode_error.unwrap().starts_with("malformed event"));
        assert_eq!(g.text, "a");
        // OpenAI object form and TGI string form.
        for body in [
            &b"data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n"[..],
            b"data: {\"error\":\"overloaded\",\"error_type\":\"generation\"}\n\n",
        ] {
            let g = run_stream(&OpenAi::chat(), &[body]);
            assert_eq!(g.error.as_deref(), Some("overloaded"));
        }
        // Empty choices, no usage: nothing, and no error; `null` choices likewise.
        let g = run_stream(&OpenAi::chat(), &[b"data: {\"choices\":[]}\n\n"]);
        assert_eq!(g, Got::default());
        let g = run_stream(
            &OpenAi::chat(),
            &[b"data: {\"choices\":null,\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":4}}\n\n"],
        );
        assert_eq!(g.error, None);
        assert_eq!(g.usage.and_then(|u| u.completion_tokens), Some(4));
        // Valid JSON of the wrong shape is malformed, not a panic.
        for bad in [
            &b"[1,2]"[..],
            b"\"s\"",
            b"{\"choices\":{}}",
            b"null",
            b"{\"choices\":[1]}",
        ] {
            let mut d = Delta::default();
            assert!(OpenAi::chat().decode(bad, &mut d).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_one_mib_data_line_decodes() {
        let text = "y".repeat(1 << 20);
        let body = format!(
            "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\ndata: [DONE]\n\n"
        );
        let pieces: Vec<&[u8]> = body.as_bytes().chunks(16 * 1024).collect();
        let g = run_stream(&OpenAi::chat(), &pieces);
        assert_eq!(g.text.len(), 1 << 20);
        assert_eq!(g.content_events, 1);
    }
}
