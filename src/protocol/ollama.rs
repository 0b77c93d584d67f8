//! Ollama's native API: `/api/chat` and `/api/generate`, NDJSON streaming (one JSON object per
//! line, the last with `done: true` and the server's counters), or one object with
//! `"stream": false`.
//!
//! Token counts come from the server's counters: `eval_count` (output) and
//! `prompt_eval_count` (prompt); durations (`prompt_eval_duration`, `eval_duration`,
//! `load_duration`, nanoseconds) are kept as the server's own timings. Ollama has no way to
//! ignore end-of-sequence; `num_predict` caps the output.

use serde::Deserialize;
use serde_json::{Value, json};

use super::types::{
    Count, DecodeError, Delta, Framing, HttpCall, Protocol, RequestOptions, ServerTimings,
    TokenSource, Usage,
};
use crate::workload::RequestSpec;

/// Which Ollama endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/api/chat`: messages in, `message.content` out.
    Chat,
    /// `/api/generate`: a prompt in, `response` out.
    Generate,
}

/// The Ollama protocol.
#[derive(Debug, Clone)]
pub struct Ollama {
    endpoint: Endpoint,
}

impl Ollama {
    /// `/api/chat`.
    pub fn chat() -> Self {
        Self {
            endpoint: Endpoint::Chat,
        }
    }

    /// `/api/generate`.
    pub fn generate() -> Self {
        Self {
            endpoint: Endpoint::Generate,
        }
    }
}

#[derive(Deserialize)]
struct Line {
    response: Option<String>,
    thinking: Option<String>,
    message: Option<Msg>,
    #[serde(default)]
    done: bool,
    error: Option<Value>,
    prompt_eval_count: Option<Count>,
    eval_count: Option<Count>,
    prompt_eval_duration: Option<u64>,
    eval_duration: Option<u64>,
    load_duration: Option<u64>,
}

#[derive(Deserialize)]
struct Msg {
    content: Option<String>,
    thinking: Option<String>,
}

fn ns_to_ms(ns: Option<u64>) -> Option<f64> {
    ns.map(|n| n as f64 / 1e6)
}

impl Protocol for Ollama {
    fn backend(&self) -> super::Backend {
        match self.endpoint {
            Endpoint::Chat => super::Backend::OllamaChat,
            Endpoint::Generate => super::Backend::OllamaGenerate,
        }
    }

    fn takes_images(&self) -> bool {
        true
    }

    fn build(&self, spec: &RequestSpec, opts: &RequestOptions) -> HttpCall {
        let mut options = serde_json::Map::new();
        if let Some(n) = spec.max_tokens {
            options.insert("num_predict".into(), json!(n));
        }
        if let Some(t) = spec.temperature {
            options.insert("temperature".into(), json!(t));
        }
        let (path, mut body) = match self.endpoint {
            Endpoint::Chat => (
                "/api/chat",
                json!({"model": opts.model, "messages": spec.prompt.messages()}),
            ),
            Endpoint::Generate => (
                "/api/generate",
                json!({"model": opts.model, "prompt": spec.prompt.text()}),
            ),
        };
        let o = body.as_object_mut().expect("object");
        o.insert("stream".into(), Value::Bool(opts.stream));
        o.insert("options".into(), Value::Object(options));
        // Images: base64 without a URL prefix, on the last user message (chat) or the request.
        if !spec.images.is_empty() {
            let images: Vec<&str> = spec.images.iter().map(|i| i.base64()).collect();
            match self.endpoint {
                Endpoint::Chat => {
                    if let Some(m) = o["messages"]
                        .as_array_mut()
                        .and_then(|a| a.iter_mut().rev().find(|m| m["role"] == "user"))
                    {
                        m["images"] = json!(images);
                    }
                }
                Endpoint::Generate => {
                    o.insert("images".into(), json!(images));
                }
            }
        }
        HttpCall {
            path: path.into(),
            body,
        }
    }

    fn framing(&self, stream: bool) -> Framing {
        if stream {
            Framing::Ndjson
        } else {
            Framing::Whole
        }
    }

    fn decode(&self, payload: &[u8], out: &mut Delta) -> Result<(), DecodeError> {
        let trimmed = payload.trim_ascii();
        let line: Line = serde_json::from_slice(trimmed).map_err(|e| {
            DecodeError(format!(
                "malformed line ({e}): {}",
                super::types::snippet(trimmed)
            ))
        })?;
        if let Some(err) = line.error {
            out.set_error(&err);
            return Ok(());
        }
        if let Some(t) = line.thinking {
            out.reasoning.push_str(&t);
        }
        if let Some(r) = line.response {
            out.text.push_str(&r);
        }
        if let Some(m) = line.message {
            if let Some(t) = m.thinking {
                out.reasoning.push_str(&t);
            }
            if let Some(c) = m.content {
                out.text.push_str(&c);
            }
        }
        if line.done {
            out.done = true;
            if line.eval_count.is_some() || line.prompt_eval_count.is_some() {
                out.usage = Some(Usage::from_counts(
                    ("prompt_eval_count", line.prompt_eval_count),
                    ("eval_count", line.eval_count),
                    ("", None),
                    TokenSource::ServerCounters,
                ));
            }
            let t = ServerTimings {
                prompt_ms: ns_to_ms(line.prompt_eval_duration),
                decode_ms: ns_to_ms(line.eval_duration),
                load_ms: ns_to_ms(line.load_duration),
            };
            if t != ServerTimings::default() {
                out.timings = Some(t);
            }
        }
        Ok(())
    }

    fn supports_ignore_eos(&self) -> bool {
        false
    }

    fn server_templates_prompt(&self) -> bool {
        self.endpoint == Endpoint::Chat
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Prompt;

    fn decode(p: &Ollama, s: &str) -> Delta {
        let mut d = Delta::default();
        p.decode(s.as_bytes(), &mut d).unwrap();
        d
    }

    #[test]
    fn builds_chat_and_generate() {
        let spec = RequestSpec {
            images: Vec::new(),
            tools: None,
            audio: Vec::new(),
            prompt: Prompt::Text("hi".into()),
            max_tokens: Some(7),
            temperature: Some(0.0),
        };
        let opts = RequestOptions {
            model: "llama3".into(),
            stream: true,
            ignore_eos: false,
            tools: None,
            batch_inputs: 1,
        };
        let c = Ollama::chat().build(&spec, &opts);
        assert_eq!(c.path, "/api/chat");
        assert_eq!(c.body["messages"][0]["content"], "hi");
        assert_eq!(c.body["options"]["num_predict"], 7);
        assert_eq!(c.body["options"]["temperature"], 0.0);
        assert_eq!(c.body["stream"], true);
        let g = Ollama::generate().build(&spec, &opts);
        assert_eq!(
            (g.path.as_str(), &g.body["prompt"]),
            ("/api/generate", &json!("hi"))
        );
    }

    #[test]
    fn thinking_is_reasoning_not_answer() {
        let d = decode(
            &Ollama::chat(),
            r#"{"message":{"role":"assistant","content":"","thinking":"hmm"},"done":false}"#,
        );
        assert_eq!((d.reasoning.as_str(), d.text.as_str()), ("hmm", ""));
        let g = decode(
            &Ollama::generate(),
            r#"{"response":"","thinking":"so","done":false}"#,
        );
        assert_eq!((g.reasoning.as_str(), g.text.as_str()), ("so", ""));
    }

    #[test]
    fn decodes_lines_and_final_counters() {
        let p = Ollama::generate();
        let d = decode(&p, r#"{"model":"m","response":" hi","done":false}"#);
        assert_eq!((d.text.as_str(), d.done), (" hi", false));
        let last = decode(
            &p,
            r#"{"model":"m","response":"","done":true,"done_reason":"length","total_duration":9000000,"load_duration":1000000,"prompt_eval_count":26,"prompt_eval_duration":2500000,"eval_count":12,"eval_duration":5000000}"#,
        );
        assert!(last.done && last.text.is_empty());
        let u = last.usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (Some(26), Some(12)));
        assert_eq!(u.source, Some(TokenSource::ServerCounters));
        let t = last.timings.unwrap();
        assert_eq!(
            (t.prompt_ms, t.decode_ms, t.load_ms),
            (Some(2.5), Some(5.0), Some(1.0))
        );
        let c = decode(
            &Ollama::chat(),
            r#"{"message":{"role":"assistant","content":"yo"},"done":false}"#,
        );
        assert_eq!(c.text, "yo");
        let e = decode(&p, r#"{"error":"model 'x' not found"}"#);
        assert_eq!(e.error.as_deref(), Some("model 'x' not found"));
        assert!(p.decode(b"{oops", &mut Delta::default()).is_err());
    }
}
