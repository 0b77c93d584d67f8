//! llama.cpp server's native `/completion`: SSE events `{"content": ..., "stop": false}`,
//! the last with `stop: true`, the server's counters and its `timings` (`prompt_n`,
//! `prompt_ms`, `predicted_n`, `predicted_ms`, `cache_n`); or one object when not streaming.
//!
//! `cache_prompt: true` is sent so the server reuses its KV cache; the cached prompt tokens it
//! reports (`timings.cache_n`, or `tokens_cached` in older servers) feed the cache hit rate.
//! `--ignore-eos` sends llama.cpp's own `ignore_eos`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::types::{
    Count, DecodeError, Delta, HttpCall, Protocol, RequestOptions, ServerTimings, TokenSource,
    Usage,
};
use crate::workload::RequestSpec;

/// The llama.cpp `/completion` protocol.
#[derive(Debug, Clone, Copy)]
pub struct LlamaCpp;

#[derive(Deserialize)]
struct Event {
    content: Option<String>,
    #[serde(default)]
    stop: bool,
    error: Option<Value>,
    tokens_predicted: Option<Count>,
    tokens_evaluated: Option<Count>,
    tokens_cached: Option<Count>,
    timings: Option<Timings>,
}

#[derive(Deserialize)]
struct Timings {
    prompt_n: Option<Count>,
    prompt_ms: Option<f64>,
    predicted_n: Option<Count>,
    predicted_ms: Option<f64>,
    cache_n: Option<Count>,
}

impl Protocol for LlamaCpp {
    fn backend(&self) -> super::Backend {
        super::Backend::LlamaCpp
    }

    fn build(&self, spec: &RequestSpec, opts: &RequestOptions) -> HttpCall {
        let mut body = json!({
            "prompt": spec.prompt.text(),
            "stream": opts.stream,
            "cache_prompt": true,
        });
        let o = body.as_object_mut().expect("object");
        if !opts.model.is_empty() {
            o.insert("model".into(), json!(opts.model));
        }
        if let Some(n) = spec.max_tokens {
            o.insert("n_predict".into(), json!(n));
            if opts.ignore_eos {
                o.insert("ignore_eos".into(), Value::Bool(true));
            }
        }
        if let Some(t) = spec.temperature {
            o.insert("temperature".into(), json!(t));
        }
        HttpCall {
            path: "/completion".into(),
            body,
        }
    }

    fn decode(&self, payload: &[u8], out: &mut Delta) -> Result<(), DecodeError> {
        let Some(trimmed) = super::types::unless_done(payload, out) else {
            return Ok(());
        };
        let ev: Event = serde_json::from_slice(trimmed).map_err(|e| {
            DecodeError(format!(
                "malformed event ({e}): {}",
                super::types::snippet(trimmed)
            ))
        })?;
        if let Some(err) = ev.error {
            out.set_error(&err);
            return Ok(());
        }
        if let Some(c) = ev.content {
            out.text.push_str(&c);
        }
        if !ev.stop {
            return Ok(());
        }
        out.done = true;
        let t = ev.timings.as_ref();
        let completion = match t.and_then(|t| t.predicted_n) {
            Some(n) => ("timings.predicted_n", Some(n)),
            None => ("tokens_predicted", ev.tokens_predicted),
        };
        let cached = match t.and_then(|t| t.cache_n) {
            Some(n) => ("timings.cache_n", Some(n)),
            None => ("tokens_cached", ev.tokens_cached),
        };
        // The prompt is what was evaluated plus what came from the cache.
        let from_timings = || {
            let n = t?.prompt_n?.get()?;
            let cache = t?.cache_n.map_or(Some(0), Count::get)?;
            Some(Count::Tokens(n.saturating_add(cache)))
        };
        let prompt = match ev.tokens_evaluated {
            Some(n) => ("tokens_evaluated", Some(n)),
            None => ("timings.prompt_n", from_timings()),
        };
        if completion.1.is_some() || prompt.1.is_some() {
            out.usage = Some(Usage::from_counts(
                prompt,
                completion,
                cached,
                TokenSource::ServerCounters,
            ));
        }
        if let Some(t) = t {
            out.timings = Some(ServerTimings {
                prompt_ms: t.prompt_ms,
                decode_ms: t.predicted_ms,
                load_ms: None,
            });
        }
        Ok(())
    }

    fn needs_end_marker(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Prompt;

    fn decode(s: &str) -> Delta {
        let mut d = Delta::default();
        LlamaCpp.decode(s.as_bytes(), &mut d).unwrap();
        d
    }

    #[test]
    fn builds_completion_with_cache_and_ignore_eos() {
        let spec = RequestSpec {
            images: Vec::new(),
            tools: None,
            audio: Vec::new(),
            prompt: Prompt::Text("hi".into()),
            max_tokens: Some(4),
            temperature: Some(0.0),
        };
        let opts = RequestOptions {
            stream: true,
            ignore_eos: true,
            ..Default::default()
        };
        let c = LlamaCpp.build(&spec, &opts);
        assert_eq!(c.path, "/completion");
        assert_eq!(c.body["prompt"], "hi");
        assert_eq!(c.body["n_predict"], 4);
        assert_eq!(c.body["cache_prompt"], true);
        assert_eq!(c.body["ignore_eos"], true);
        assert!(c.body.get("model").is_none());
    }

    #[test]
    fn decodes_content_and_final_timings() {
        let d = decode(r#"{"index":0,"content":" hi","stop":false,"id_slot":0}"#);
        assert_eq!((d.text.as_str(), d.done), (" hi", false));
        assert!(d.usage.is_none());
        let last = decode(
            r#"{"content":"","stop":true,"tokens_predicted":5,"tokens_evaluated":20,"timings":{"cache_n":16,"prompt_n":4,"prompt_ms":3.5,"predicted_n":5,"predicted_ms":40.0}}"#,
        );
        assert!(last.done);
        let u = last.usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.cached_tokens),
            (Some(20), Some(5), Some(16))
        );
        let t = last.timings.unwrap();
        assert_eq!((t.prompt_ms, t.decode_ms), (Some(3.5), Some(40.0)));
        let old = decode(r#"{"content":"x","stop":true,"tokens_predicted":1,"tokens_cached":7}"#);
        assert_eq!(old.usage.unwrap().cached_tokens, Some(7));
        let e = decode(r#"{"error":{"code":400,"message":"bad","type":"invalid_request_error"}}"#);
        assert_eq!(e.error.as_deref(), Some("bad"));
    }
}
