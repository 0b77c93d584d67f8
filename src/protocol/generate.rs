//! A plain JSON generation API, as many home-made services expose:
//! `POST /generate {"prompt", "max_tokens", "temperature"}` → `{"text", "cached"}`.
//!
//! Not streamed: TTFT equals end-to-end latency. The `cached` flag (when present) says whether
//! the server answered from its cache and feeds the cache hit rate. The server reports no
//! token counts, so they come from a local tokenizer. The URL may be the endpoint itself
//! (`http://host:8000/generate`) or the server's base.

use serde::Deserialize;
use serde_json::{Value, json};

use super::types::{DecodeError, Delta, Framing, HttpCall, Protocol, RequestOptions};
use crate::workload::RequestSpec;

/// The plain `generate` protocol.
#[derive(Debug, Clone, Copy)]
pub struct Generate;

#[derive(Deserialize)]
struct Body {
    text: Option<String>,
    cached: Option<bool>,
    error: Option<Value>,
}

impl Protocol for Generate {
    fn backend(&self) -> super::Backend {
        super::Backend::Generate
    }

    fn build(&self, spec: &RequestSpec, _opts: &RequestOptions) -> HttpCall {
        let mut body = json!({"prompt": spec.prompt.text()});
        let o = body.as_object_mut().expect("object");
        if let Some(n) = spec.max_tokens {
            o.insert("max_tokens".into(), json!(n));
        }
        if let Some(t) = spec.temperature {
            o.insert("temperature".into(), json!(t));
        }
        HttpCall {
            path: "/generate".into(),
            body,
        }
    }

    fn framing(&self, _stream: bool) -> Framing {
        Framing::Whole
    }

    fn decode(&self, payload: &[u8], out: &mut Delta) -> Result<(), DecodeError> {
        let trimmed = payload.trim_ascii();
        let b: Body = serde_json::from_slice(trimmed).map_err(|e| {
            DecodeError(format!(
                "malformed response ({e}): {}",
                super::types::snippet(trimmed)
            ))
        })?;
        if let Some(err) = b.error {
            out.set_error(&err);
            return Ok(());
        }
        let Some(text) = b.text else {
            return Err(DecodeError(format!(
                "response has no \"text\": {}",
                super::types::snippet(trimmed)
            )));
        };
        out.text = text;
        out.cache_hit = b.cached;
        out.done = true;
        Ok(())
    }

    fn can_stream(&self) -> bool {
        false
    }

    fn supports_ignore_eos(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Prompt;

    #[test]
    fn builds_and_decodes() {
        let spec = RequestSpec {
            images: Vec::new(),
            tools: None,
            audio: Vec::new(),
            prompt: Prompt::Text("hi".into()),
            max_tokens: Some(3),
            temperature: Some(0.7),
        };
        let c = Generate.build(&spec, &RequestOptions::default());
        assert_eq!(c.path, "/generate");
        assert_eq!(
            c.body,
            json!({"prompt": "hi", "max_tokens": 3, "temperature": 0.7})
        );
        let mut d = Delta::default();
        Generate
            .decode(br#"{"text":" a b","cached":true}"#, &mut d)
            .unwrap();
        assert_eq!(
            (d.text.as_str(), d.cache_hit, d.done),
            (" a b", Some(true), true)
        );
        let mut d = Delta::default();
        Generate.decode(br#"{"text":"x"}"#, &mut d).unwrap();
        assert_eq!(d.cache_hit, None);
        assert!(
            Generate
                .decode(br#"{"output":"x"}"#, &mut Delta::default())
                .is_err()
        );
    }
}
