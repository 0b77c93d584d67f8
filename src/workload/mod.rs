//! What to send: producers of [`RequestSpec`]s.

pub mod repeat;

use serde::{Deserialize, Serialize};

/// The prompt used when the user gives none.
pub const DEFAULT_PROMPT: &str = "Explain how a transformer language model turns a prompt into \
text, step by step, for an engineer who knows programming but not machine learning.";

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The message text.
    pub content: String,
    /// An assistant message's tool calls (sent back in a conversation's next turn).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// A `tool` message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A message of `role` with `content` only.
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// A tool call a model made, in OpenAI's message shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call's id, which the `tool` message answering it names.
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The function called.
    pub function: FunctionCall,
}

/// The function of a [`ToolCall`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// Its name.
    pub name: String,
    /// Its arguments: JSON text, as the model wrote it.
    pub arguments: String,
}

/// What a model answered: the answer text and its tool calls (reasoning left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// The answer text.
    pub text: String,
    /// Tool calls, in the order the reply started them.
    pub tool_calls: Vec<ToolCall>,
}

/// The input of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// A plain prompt (completion endpoints; sent as one user message to chat endpoints).
    Text(String),
    /// A conversation (chat endpoints; rendered to text for completion endpoints).
    Messages(Vec<Message>),
}

impl Prompt {
    /// As chat messages.
    pub fn messages(&self) -> Vec<Message> {
        match self {
            Prompt::Text(t) => vec![Message::new("user", t.clone())],
            Prompt::Messages(m) => m.clone(),
        }
    }

    /// As plain text (messages joined with their roles when no template is given).
    pub fn text(&self) -> String {
        match self {
            Prompt::Text(t) => t.clone(),
            Prompt::Messages(m) => m
                .iter()
                .map(|m| format!("{}: {}", m.role, m.content))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// Everything needed to send one request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSpec {
    /// The input.
    pub prompt: Prompt,
    /// Output token limit to ask for.
    pub max_tokens: Option<u32>,
    /// Sampling temperature to ask for.
    pub temperature: Option<f64>,
    /// Images sent with the prompt (chat backends; after its text).
    pub images: Vec<std::sync::Arc<media::Image>>,
    /// An OpenAI `tools` array of this request (a dataset's `"tools"`; `--tools` applies to
    /// requests without one).
    pub tools: Option<std::sync::Arc<serde_json::Value>>,
    /// Audio clips sent with the prompt (`openai-chat` `input_audio` parts, after the images).
    pub audio: Vec<std::sync::Arc<media::Audio>>,
}

/// Checks an OpenAI `tools` array: a non-empty list of `{"type": "function", "function":
/// {"name": ...}}`. The error says what is wrong, for the caller to place.
pub fn check_tools(v: &serde_json::Value) -> Result<(), String> {
    let Some(tools) = v.as_array().filter(|a| !a.is_empty()) else {
        return Err(
            "expected a JSON array of tools ([{\"type\": \"function\", \"function\": {\"name\": ...}}])"
                .into(),
        );
    };
    for (i, t) in tools.iter().enumerate() {
        if t["type"] != "function" || !t["function"]["name"].is_string() {
            return Err(format!(
                "tool {} is not {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}",
                i + 1
            ));
        }
    }
    Ok(())
}

/// A source of requests, addressed by index so any worker can take the next one.
pub trait Workload: Send + Sync {
    /// The request at `index` (indices start at 0 and may exceed `len`: workloads cycle).
    fn get(&self, index: u64) -> RequestSpec;
    /// Number of distinct requests, if finite.
    fn len(&self) -> Option<u64> {
        None
    }
    /// Whether the workload has no requests at all.
    fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
    /// The warm-up request at `index` (the same as `get` unless warm-up must not touch the
    /// measured prompts, as in a cache mix).
    fn get_warmup(&self, index: u64) -> RequestSpec {
        self.get(index)
    }
    /// Context (tokens: prompt and output) the server must have for this workload; a
    /// scenario whose need exceeds the server's context is skipped with a message.
    fn context_needed(&self) -> Option<u64> {
        None
    }
    /// Multi-turn conversations, run turn by turn instead of as independent requests.
    fn conversations(&self) -> Option<&conversation::ConversationSet> {
        None
    }
}

/// The same prompt every time.
#[derive(Debug, Clone)]
pub struct FixedPrompt {
    /// The request sent each time.
    pub spec: RequestSpec,
}

impl Workload for FixedPrompt {
    fn get(&self, _index: u64) -> RequestSpec {
        self.spec.clone()
    }
}

pub mod chat_template;
pub mod conversation;
pub mod dataset;
pub mod media;
pub mod suites;
pub mod synthetic;
pub mod trace;

/// Requests from a list, in order, cycling when more are asked for.
#[derive(Debug, Clone)]
pub struct PromptList {
    /// The requests (never empty).
    pub specs: Vec<RequestSpec>,
}

impl Workload for PromptList {
    fn get(&self, index: u64) -> RequestSpec {
        self.specs[(index % self.specs.len() as u64) as usize].clone()
    }
    fn len(&self) -> Option<u64> {
        Some(self.specs.len() as u64)
    }
}

/// Estimated tokens of `text` where the server cannot say (listing sizes, ShareGPT reply
/// lengths): llmbench's simple tokenizer (pieces of at most four letters), which lands within
/// a few tens of percent of BPE tokenizers on English text.
pub fn estimate_tokens(text: &str) -> u64 {
    crate::sim::text::count(text)
}
