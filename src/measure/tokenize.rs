//! Local token counting, used when the server reports no counts: a Hugging Face
//! `tokenizer.json` (`--tokenizer PATH`, which then beats chunk counting), or the built-in
//! `cl100k_base` BPE when none is given (for responses that were not streamed; a streamed one
//! is counted by its chunks, the server's own tokens). `--tokenizer chunks` turns local
//! counting off.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::Context;

/// Counts tokens of text.
pub trait Tokenizer: Send + Sync {
    /// Name recorded in the result file.
    fn name(&self) -> String;
    /// Tokens in `text` (no special tokens added).
    fn count(&self, text: &str) -> u64;
}

/// OpenAI's `cl100k_base`, built in. Its tables are built on first use (a noticeable
/// fraction of a second), so runs against servers that report their counts never pay for it.
#[derive(Default)]
pub struct Cl100k(OnceLock<Option<tiktoken_rs::CoreBPE>>);

impl Cl100k {
    fn bpe(&self) -> Option<&tiktoken_rs::CoreBPE> {
        self.0
            .get_or_init(|| tiktoken_rs::cl100k_base().ok())
            .as_ref()
    }
}

impl Tokenizer for Cl100k {
    fn name(&self) -> String {
        "cl100k_base".into()
    }
    fn count(&self, text: &str) -> u64 {
        self.bpe()
            .map_or(0, |b| b.encode_ordinary(text).len() as u64)
    }
}

/// A Hugging Face `tokenizer.json`.
pub struct HfTokenizer {
    name: String,
    inner: tokenizers::Tokenizer,
}

impl Tokenizer for HfTokenizer {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn count(&self, text: &str) -> u64 {
        self.inner
            .encode(text, false)
            .map(|e| e.len() as u64)
            .unwrap_or(0)
    }
}

/// The built-in BPE (loaded on first use).
pub fn cl100k() -> anyhow::Result<Arc<dyn Tokenizer>> {
    Ok(Arc::new(Cl100k::default()))
}

/// The tokenizer `--tokenizer` names: a `tokenizer.json` path, `cl100k` (the default), or
/// `chunks` (none: count streamed chunks).
pub fn load(arg: Option<&str>) -> anyhow::Result<Option<Arc<dyn Tokenizer>>> {
    match arg {
        None | Some("cl100k") | Some("cl100k_base") => cl100k().map(Some),
        Some("chunks") | Some("none") => Ok(None),
        Some(path) => {
            let p = Path::new(path);
            let inner = tokenizers::Tokenizer::from_file(p)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("--tokenizer {path}: not a readable tokenizer.json"))?;
            Ok(Some(Arc::new(HfTokenizer {
                name: p.display().to_string(),
                inner,
            })))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cl100k_counts_known_text_and_simulator_words_one_each() {
        let t = cl100k().unwrap();
        assert_eq!(t.count("hello world"), 2);
        assert_eq!(t.count(""), 0);
        // Every word the simulator generates is one cl100k token too, so local counts of its
        // output are exact.
        let text: String = (0..300).map(|i| crate::sim::text::word(7, i)).collect();
        assert_eq!(t.count(&text), 300);
    }

    #[test]
    fn bad_tokenizer_paths_name_the_flag() {
        let e = format!(
            "{:#}",
            load(Some("/nonexistent/tokenizer.json")).err().unwrap()
        );
        assert!(e.contains("--tokenizer /nonexistent/tokenizer.json"), "{e}");
        assert!(load(Some("chunks")).unwrap().is_none());
    }

    #[test]
    fn hf_tokenizer_json_is_loaded() {
        // A tiny word-level tokenizer.json written here.
        let dir = std::env::temp_dir().join(format!("llmbench-tok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokenizer.json");
        std::fs::write(
            &path,
            r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
               "normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,
               "decoder":null,"model":{"type":"WordLevel","vocab":{"a":0,"b":1,"[UNK]":2},
               "unk_token":"[UNK]"}}"#,
        )
        .unwrap();
        let t = load(Some(path.to_str().unwrap())).unwrap().unwrap();
        assert_eq!(t.count("a b a zz"), 4);
        let _ = std::fs::remove_dir_all(dir);
    }
}
