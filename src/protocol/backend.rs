//! The backends `--backend` names: one enum, one canonical spelling each (the spelling the
//! result file records), and the aliases users type.

use std::sync::Arc;

use super::{Protocol, embed, generate, llamacpp, ollama, openai, tgi};

/// One wire API llmbench speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    OpenAiChat,
    OpenAiCompletions,
    OllamaChat,
    OllamaGenerate,
    Tgi,
    LlamaCpp,
    Generate,
    OpenAiEmbeddings,
    Rerank,
}

impl Backend {
    /// Every backend, in the order `--help` lists them.
    pub const ALL: [Backend; 9] = [
        Backend::OpenAiChat,
        Backend::OpenAiCompletions,
        Backend::OllamaChat,
        Backend::OllamaGenerate,
        Backend::Tgi,
        Backend::LlamaCpp,
        Backend::Generate,
        Backend::OpenAiEmbeddings,
        Backend::Rerank,
    ];

    /// The canonical name (as `--backend` takes it and the result file records it).
    pub fn name(self) -> &'static str {
        match self {
            Backend::OpenAiChat => "openai-chat",
            Backend::OpenAiCompletions => "openai-completions",
            Backend::OllamaChat => "ollama-chat",
            Backend::OllamaGenerate => "ollama-generate",
            Backend::Tgi => "tgi",
            Backend::LlamaCpp => "llamacpp",
            Backend::Generate => "generate",
            Backend::OpenAiEmbeddings => "openai-embeddings",
            Backend::Rerank => "rerank",
        }
    }

    /// A backend by its name or an alias users type.
    pub fn parse(name: &str) -> Option<Backend> {
        Some(match name {
            "openai-chat" | "openai" | "chat" => Backend::OpenAiChat,
            "openai-completions" | "completions" => Backend::OpenAiCompletions,
            "ollama-chat" | "ollama" => Backend::OllamaChat,
            "ollama-generate" => Backend::OllamaGenerate,
            "tgi" => Backend::Tgi,
            "llamacpp" | "llama.cpp" | "llama-cpp" => Backend::LlamaCpp,
            "generate" => Backend::Generate,
            "openai-embeddings" | "embeddings" => Backend::OpenAiEmbeddings,
            "rerank" => Backend::Rerank,
            _ => return None,
        })
    }

    /// The protocol that speaks it.
    pub fn protocol(self) -> Arc<dyn Protocol> {
        match self {
            Backend::OpenAiChat => Arc::new(openai::OpenAi::chat()),
            Backend::OpenAiCompletions => Arc::new(openai::OpenAi::completions()),
            Backend::OllamaChat => Arc::new(ollama::Ollama::chat()),
            Backend::OllamaGenerate => Arc::new(ollama::Ollama::generate()),
            Backend::Tgi => Arc::new(tgi::Tgi),
            Backend::LlamaCpp => Arc::new(llamacpp::LlamaCpp),
            Backend::Generate => Arc::new(generate::Generate),
            Backend::OpenAiEmbeddings => Arc::new(embed::Embed::Embeddings),
            Backend::Rerank => Arc::new(embed::Embed::Rerank),
        }
    }

    /// Whether its requests carry their own path (native APIs) rather than going to the URL as
    /// given (OpenAI and the plain `generate` API accept a full endpoint).
    pub fn uses_native_paths(self) -> bool {
        matches!(
            self,
            Backend::OllamaChat | Backend::OllamaGenerate | Backend::Tgi | Backend::LlamaCpp
        )
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_round_trips_and_its_protocol_says_so() {
        for b in Backend::ALL {
            assert_eq!(Backend::parse(b.name()), Some(b));
            assert_eq!(b.protocol().backend(), b);
        }
        assert_eq!(Backend::parse("llama.cpp"), Some(Backend::LlamaCpp));
        assert_eq!(Backend::parse("auto"), None);
    }
}
