//! OpenAI-compatible `/v1/chat/completions` and `/v1/completions` (vLLM, SGLang, llama.cpp's
//! server, TGI's Messages API, Ollama's `/v1`, and hosted APIs).

use serde::Deserialize;
use serde_json::{Value, json};

use super::{DecodeError, Delta, HttpCall, Protocol, RequestOptions, Usage};
use crate::record::TokenSource;
use crate::sse::Framing;
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

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<UsageJson>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    delta: Option<Message>,
    message: Option<Message>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
    reasoning_content: Option<String>,
    reasoning: Option<String>,
}

#[derive(Deserialize)]
struct UsageJson {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<Details>,
}

#[derive(Deserialize)]
struct Details {
    cached_tokens: Option<u64>,
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

impl Protocol for OpenAi {
    fn name(&self) -> &'static str {
        match self.flavor {
            Flavor::Chat => "openai-chat",
            Flavor::Completions => "openai-completions",
        }
    }

    fn build(&self, spec: &RequestSpec, opts: &RequestOptions) -> HttpCall {
        let mut body = match self.flavor {
            Flavor::Chat => json!({"model": opts.model, "messages": spec.prompt.messages()}),
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
        HttpCall {
            path: match self.flavor {
                Flavor::Chat => "/v1/chat/completions".into(),
                Flavor::Completions => "/v1/completions".into(),
            },
            body,
        }
    }

    fn framing(&self, stream: bool) -> Framing {
        if stream { Framing::Sse } else { Framing::Whole }
    }

    fn decode(&self, payload: &[u8], out: &mut Delta) -> Result<(), DecodeError> {
        let trimmed = payload.trim_ascii();
        if trimmed == b"[DONE]" {
            out.done = true;
            return Ok(());
        }
        let chunk: Chunk = serde_json::from_slice(trimmed).map_err(|e| {
            DecodeError(format!(
                "malformed event ({e}): {}",
                super::snippet(trimmed)
            ))
        })?;
        if let Some(err) = chunk.error {
            out.error = Some(error_text(&err));
            return Ok(());
        }
        for choice in chunk.choices {
            if let Some(t) = choice.text {
                out.text.push_str(&t);
            }
            // A non-streaming body ends itself: it carries `message`.
            if choice.message.is_some() {
                out.done = true;
            }
            if let Some(m) = choice.delta.or(choice.message) {
                for part in [m.reasoning_content, m.reasoning, m.content]
                    .into_iter()
                    .flatten()
                {
                    out.text.push_str(&part);
                }
            }
        }
        if let Some(u) = chunk.usage {
            out.usage = Some(Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                cached_tokens: u.prompt_tokens_details.and_then(|d| d.cached_tokens),
                source: Some(TokenSource::ServerUsage),
            });
        }
        Ok(())
    }
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
            prompt: Prompt::Text("hi".into()),
            max_tokens: Some(5),
            temperature: Some(0.5),
        };
        let opts = RequestOptions {
            model: "m".into(),
            stream: true,
            ignore_eos: true,
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
        let r = decode(
            &p,
            r#"{"choices":[{"delta":{"reasoning_content":"think"}}]}"#,
        );
        assert_eq!(r.text, "think");
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
}
