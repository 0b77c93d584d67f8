//! Hugging Face Text Generation Inference's native API: `/generate_stream` (SSE, one token
//! object per event, the last carrying `generated_text` and `details`) and `/generate`.
//!
//! `details: true` is always asked for, so the server reports `generated_tokens` (and, in
//! recent versions, `input_length`): the token source is the server's counters. TGI rejects a
//! temperature of 0, so 0 is sent as greedy decoding (no temperature, `do_sample: false`).
//! TGI cannot ignore end-of-sequence.

use serde::Deserialize;
use serde_json::{Value, json};

use super::types::{
    Count, DecodeError, Delta, HttpCall, Protocol, RequestOptions, TokenSource, Usage,
};
use crate::workload::RequestSpec;

/// The TGI protocol.
#[derive(Debug, Clone, Copy)]
pub struct Tgi;

#[derive(Deserialize)]
struct Event {
    token: Option<Token>,
    generated_text: Option<String>,
    details: Option<Details>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Token {
    #[serde(default)]
    text: String,
    #[serde(default)]
    special: bool,
}

#[derive(Deserialize)]
struct Details {
    generated_tokens: Option<Count>,
    input_length: Option<Count>,
}

impl Protocol for Tgi {
    fn backend(&self) -> super::Backend {
        super::Backend::Tgi
    }

    fn build(&self, spec: &RequestSpec, opts: &RequestOptions) -> HttpCall {
        let mut params = serde_json::Map::new();
        params.insert("details".into(), Value::Bool(true));
        if let Some(n) = spec.max_tokens {
            params.insert("max_new_tokens".into(), json!(n));
        }
        match spec.temperature {
            Some(t) if t > 0.0 => {
                params.insert("temperature".into(), json!(t));
                params.insert("do_sample".into(), Value::Bool(true));
            }
            Some(_) => {
                params.insert("do_sample".into(), Value::Bool(false));
            }
            None => {}
        }
        HttpCall {
            path: if opts.stream {
                "/generate_stream".into()
            } else {
                "/generate".into()
            },
            body: json!({"inputs": spec.prompt.text(), "parameters": params}),
        }
    }

    fn decode(&self, payload: &[u8], out: &mut Delta) -> Result<(), DecodeError> {
        let trimmed = payload.trim_ascii();
        let malformed = |e: serde_json::Error| {
            DecodeError(format!(
                "malformed event ({e}): {}",
                super::types::snippet(trimmed)
            ))
        };
        // Some versions answer `/generate` with a one-element array.
        let ev: Event = if trimmed.first() == Some(&b'[') {
            let mut v: Vec<Event> = serde_json::from_slice(trimmed).map_err(malformed)?;
            if v.is_empty() {
                return Err(DecodeError("empty response array".into()));
            }
            v.swap_remove(0)
        } else {
            serde_json::from_slice(trimmed).map_err(malformed)?
        };
        if let Some(err) = ev.error {
            out.set_error(&err);
            return Ok(());
        }
        match ev.token {
            // A streamed token; special tokens (end-of-sequence) carry no text.
            Some(tok) => {
                if !tok.special {
                    out.text.push_str(&tok.text);
                }
                out.tokens = Some(1);
            }
            // A whole `/generate` body.
            None => {
                if let Some(t) = &ev.generated_text {
                    out.text.push_str(t);
                }
            }
        }
        if ev.generated_text.is_some() {
            out.done = true;
        }
        if let Some(d) = ev.details {
            out.usage = Some(Usage::from_counts(
                ("input_length", d.input_length),
                ("generated_tokens", d.generated_tokens),
                ("", None),
                TokenSource::ServerCounters,
            ));
        }
        Ok(())
    }

    fn supports_ignore_eos(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Prompt;

    fn decode(s: &str) -> Delta {
        let mut d = Delta::default();
        Tgi.decode(s.as_bytes(), &mut d).unwrap();
        d
    }

    #[test]
    fn builds_stream_and_whole_requests() {
        let spec = RequestSpec {
            images: Vec::new(),
            tools: None,
            audio: Vec::new(),
            prompt: Prompt::Text("hi".into()),
            max_tokens: Some(9),
            temperature: Some(0.0),
        };
        let mut opts = RequestOptions {
            stream: true,
            ..Default::default()
        };
        let c = Tgi.build(&spec, &opts);
        assert_eq!(c.path, "/generate_stream");
        assert_eq!(c.body["inputs"], "hi");
        assert_eq!(c.body["parameters"]["max_new_tokens"], 9);
        assert_eq!(c.body["parameters"]["details"], true);
        assert_eq!(c.body["parameters"]["do_sample"], false);
        assert!(c.body["parameters"].get("temperature").is_none());
        opts.stream = false;
        assert_eq!(Tgi.build(&spec, &opts).path, "/generate");
    }

    #[test]
    fn decodes_tokens_final_event_and_bodies() {
        let d = decode(
            r#"{"index":1,"token":{"id":5,"text":" hi","logprob":-0.1,"special":false},"generated_text":null,"details":null}"#,
        );
        assert_eq!((d.text.as_str(), d.done, d.tokens), (" hi", false, Some(1)));
        let last = decode(
            r#"{"index":3,"token":{"id":2,"text":"</s>","logprob":0,"special":true},"generated_text":" hi yo","details":{"finish_reason":"eos_token","generated_tokens":3,"seed":null,"input_length":4}}"#,
        );
        assert!(last.done && last.text.is_empty());
        let u = last.usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (Some(4), Some(3)));
        let w = decode(
            r#"{"generated_text":"abc","details":{"finish_reason":"length","generated_tokens":2,"seed":null,"prefill":[],"tokens":[]}}"#,
        );
        assert_eq!((w.text.as_str(), w.done), ("abc", true));
        assert_eq!(w.usage.unwrap().completion_tokens, Some(2));
        let a = decode(r#"[{"generated_text":"x"}]"#);
        assert_eq!(a.text, "x");
        let e = decode(r#"{"error":"Input validation error","error_type":"validation"}"#);
        assert_eq!(e.error.as_deref(), Some("Input validation error"));
    }
}
