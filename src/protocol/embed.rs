//! Models that read and do not generate: OpenAI-compatible embeddings (`POST /v1/embeddings`,
//! `{"model", "input": [texts]}` → `{"data": [{"embedding"}...], "usage"}`) and rerank (`POST
//! /v1/rerank`, the vLLM / Cohere / Jina shape: `{"model", "query", "documents": [texts]}` →
//! `{"results": [{"index", "relevance_score"}...], "usage"}`).
//!
//! Each request carries `--batch-inputs N` texts: the prompt, then copies numbered ` (2)`,
//! ` (3)`, ... so no two are equal. A reply succeeds when it returns one item per input. Not
//! streamed: TTFT equals end-to-end latency; there are no output tokens.

use serde::Deserialize;
use serde_json::{Value, json};

use super::types::{
    Count, DecodeError, Delta, Framing, HttpCall, Protocol, RequestOptions, TokenSource, Usage,
};
use crate::workload::RequestSpec;

/// Which of the two APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embed {
    /// `/v1/embeddings`.
    Embeddings,
    /// `/v1/rerank`.
    Rerank,
}

#[derive(Deserialize)]
struct Reply {
    data: Option<Vec<serde::de::IgnoredAny>>,
    results: Option<Vec<serde::de::IgnoredAny>>,
    usage: Option<UsageJson>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct UsageJson {
    prompt_tokens: Option<Count>,
    total_tokens: Option<Count>,
}

/// The texts one request carries.
pub fn inputs(spec: &RequestSpec, n: u32) -> Vec<String> {
    let text = spec.prompt.text();
    (1..=n.max(1))
        .map(|i| {
            if i == 1 {
                text.clone()
            } else {
                format!("{text} ({i})")
            }
        })
        .collect()
}

impl Protocol for Embed {
    fn backend(&self) -> super::Backend {
        match self {
            Embed::Embeddings => super::Backend::OpenAiEmbeddings,
            Embed::Rerank => super::Backend::Rerank,
        }
    }

    fn build(&self, spec: &RequestSpec, opts: &RequestOptions) -> HttpCall {
        let texts = inputs(spec, opts.batch_inputs);
        match self {
            Embed::Embeddings => HttpCall {
                path: "/v1/embeddings".into(),
                body: json!({"model": opts.model, "input": texts}),
            },
            Embed::Rerank => HttpCall {
                path: "/v1/rerank".into(),
                body: json!({"model": opts.model, "query": spec.prompt.text(), "documents": texts}),
            },
        }
    }

    fn framing(&self, _stream: bool) -> Framing {
        Framing::Whole
    }

    fn decode(&self, payload: &[u8], out: &mut Delta) -> Result<(), DecodeError> {
        let trimmed = payload.trim_ascii();
        let r: Reply = serde_json::from_slice(trimmed).map_err(|e| {
            DecodeError(format!(
                "malformed response ({e}): {}",
                super::types::snippet(trimmed)
            ))
        })?;
        if let Some(err) = r.error {
            out.set_error(&err);
            return Ok(());
        }
        let items = match self {
            Embed::Embeddings => r.data,
            Embed::Rerank => r.results,
        };
        let Some(items) = items else {
            let field = match self {
                Embed::Embeddings => "data",
                Embed::Rerank => "results",
            };
            return Err(DecodeError(format!(
                "response has no \"{field}\": {}",
                super::types::snippet(trimmed)
            )));
        };
        out.items = Some(items.len() as u32);
        if let Some(u) = r.usage {
            // Rerank servers report only a total: all of it is input.
            let (field, n) = match u.prompt_tokens {
                Some(n) => ("prompt_tokens", Some(n)),
                None => ("total_tokens", u.total_tokens),
            };
            out.usage = Some(Usage::from_counts(
                (field, n),
                ("", None),
                ("", None),
                TokenSource::ServerUsage,
            ));
        }
        out.done = true;
        Ok(())
    }

    fn can_stream(&self) -> bool {
        false
    }

    fn supports_ignore_eos(&self) -> bool {
        false
    }

    fn generates(&self) -> bool {
        false
    }

    fn expected_items(&self, opts: &RequestOptions) -> Option<u32> {
        Some(opts.batch_inputs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Prompt;

    fn spec() -> RequestSpec {
        RequestSpec {
            images: Vec::new(),
            tools: None,
            audio: Vec::new(),
            prompt: Prompt::Text("find me".into()),
            max_tokens: Some(9),
            temperature: None,
        }
    }

    #[test]
    fn builds_batches_and_counts_what_comes_back() {
        let opts = RequestOptions {
            model: "m".into(),
            batch_inputs: 3,
            ..Default::default()
        };
        let c = Embed::Embeddings.build(&spec(), &opts);
        assert_eq!(c.path, "/v1/embeddings");
        assert_eq!(
            c.body["input"],
            json!(["find me", "find me (2)", "find me (3)"])
        );
        let r = Embed::Rerank.build(&spec(), &opts);
        assert_eq!(
            (r.path.as_str(), &r.body["query"]),
            ("/v1/rerank", &json!("find me"))
        );
        assert_eq!(r.body["documents"].as_array().unwrap().len(), 3);
        let mut d = Delta::default();
        Embed::Embeddings
            .decode(
                br#"{"data":[{"embedding":[0.1]},{"embedding":[0.2]}],"usage":{"prompt_tokens":7,"total_tokens":7}}"#,
                &mut d,
            )
            .unwrap();
        assert_eq!((d.items, d.done), (Some(2), true));
        assert_eq!(d.usage.unwrap().prompt_tokens, Some(7));
        let mut d = Delta::default();
        Embed::Rerank
            .decode(
                br#"{"results":[{"index":0,"relevance_score":0.9}],"usage":{"total_tokens":5}}"#,
                &mut d,
            )
            .unwrap();
        assert_eq!(
            (d.items, d.usage.unwrap().prompt_tokens),
            (Some(1), Some(5))
        );
        assert!(
            Embed::Rerank
                .decode(br#"{"data":[]}"#, &mut Delta::default())
                .is_err()
        );
    }
}
