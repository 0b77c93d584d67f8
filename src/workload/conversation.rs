//! Multi-turn conversations: the file format, filters, size estimates, and the history each
//! turn sends (earlier user turns, the model's actual replies, and documents for RAG).
//!
//! File format (a JSON array, or an object with a `conversations` array):
//!
//! ```json
//! [{"id": "c1", "tags": ["rag"], "system": "optional system prompt",
//!   "description": "optional",
//!   "turns": [
//!     {"user": "first question", "max_tokens": 200,
//!      "documents": [{"id": "d1", "title": "optional", "text": "..."}]},
//!     {"user": "follow-up", "remove_documents": ["d1"]},
//!     {"user": "last one", "remove_documents": true}
//!   ]}]
//! ```
//!
//! Documents injected at a turn are placed in that turn's user message, before the question,
//! and stay in the history (at that place) until a later turn removes them (`true`: all).
//! Removing them rewrites that earlier message, so a server's prefix cache misses from there on.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::{Message, Prompt, Reply, RequestSpec, ToolCall, estimate_tokens};

/// A document a turn injects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// Name used by `remove_documents`.
    pub id: String,
    /// Optional title shown with it.
    #[serde(default)]
    pub title: Option<String>,
    /// The text.
    pub text: String,
}

/// Which documents a turn removes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Remove {
    /// `true`: every document in the context; `false`: none.
    All(bool),
    /// These document ids.
    Ids(Vec<String>),
}

impl Default for Remove {
    fn default() -> Self {
        Remove::All(false)
    }
}

/// One user turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// What the user says.
    pub user: String,
    /// Output limit of this turn's reply (default: `--max-tokens`).
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Documents added to the context at this turn.
    #[serde(default)]
    pub documents: Vec<Document>,
    /// Documents taken out of the context before this turn is sent.
    #[serde(default)]
    pub remove_documents: Remove,
}

/// One conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// Unique id.
    pub id: String,
    /// Tags for `--include-tags` / `--exclude-tags`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Optional one-line description.
    #[serde(default)]
    pub description: Option<String>,
    /// Optional system prompt.
    #[serde(default)]
    pub system: Option<String>,
    /// The user turns, in order.
    pub turns: Vec<Turn>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FileShape {
    List(Vec<Conversation>),
    Object { conversations: Vec<Conversation> },
}

/// Reads and checks a conversations file, or every `*.json` file of a directory (by name).
pub fn load(path: &Path) -> anyhow::Result<Vec<Conversation>> {
    if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .with_context(|| format!("--conversations {}: cannot read", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        let mut all: Vec<Conversation> = Vec::new();
        for f in files {
            for c in load_file(&f)? {
                if all.iter().any(|x| x.id == c.id) {
                    bail!(
                        "{}: conversation {:?}: the id is used twice",
                        f.display(),
                        c.id
                    );
                }
                all.push(c);
            }
        }
        if all.is_empty() {
            bail!(
                "--conversations {}: no conversations in its *.json files",
                path.display()
            );
        }
        return Ok(all);
    }
    load_file(path)
}

fn load_file(path: &Path) -> anyhow::Result<Vec<Conversation>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--conversations {file}: cannot read"))?;
    // Parse as a value first so syntax errors carry a line; then the shape.
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{file}:{}:{}: not JSON: {e}", e.line(), e.column()))?;
    let convs = match serde_json::from_value::<FileShape>(v.clone()) {
        Ok(FileShape::List(c)) | Ok(FileShape::Object { conversations: c }) => c,
        Err(_) => {
            // Find the first entry that does not fit, to name it.
            let arr = v
                .as_array()
                .or_else(|| v["conversations"].as_array())
                .with_context(|| format!("{file}: expected a JSON array of conversations"))?;
            for (i, c) in arr.iter().enumerate() {
                if let Err(e) = serde_json::from_value::<Conversation>(c.clone()) {
                    let id = c["id"].as_str().unwrap_or("?");
                    bail!("{file}: conversation {i} (id {id:?}): {e}");
                }
            }
            bail!("{file}: not a conversations file");
        }
    };
    let mut ids = HashSet::new();
    for c in &convs {
        let at = format!("{file}: conversation {:?}", c.id);
        if !ids.insert(c.id.clone()) {
            bail!("{at}: the id is used twice");
        }
        if c.turns.is_empty() {
            bail!("{at}: no turns");
        }
        let mut live: HashSet<&str> = HashSet::new();
        for (t, turn) in c.turns.iter().enumerate() {
            if turn.user.trim().is_empty() {
                bail!("{at}, turn {t}: empty \"user\" text");
            }
            if let Remove::Ids(rm) = &turn.remove_documents {
                for id in rm {
                    if !live.remove(id.as_str()) {
                        bail!(
                            "{at}, turn {t}: removes document {id:?}, which is not in the context"
                        );
                    }
                }
            } else if turn.remove_documents == Remove::All(true) {
                live.clear();
            }
            for d in &turn.documents {
                if !live.insert(d.id.as_str()) {
                    bail!(
                        "{at}, turn {t}: document {:?} is already in the context",
                        d.id
                    );
                }
            }
        }
    }
    Ok(convs)
}

/// Keeps conversations with one of `include` (if any given) and none of `exclude`.
pub fn filter_tags(
    convs: Vec<Conversation>,
    include: &[String],
    exclude: &[String],
) -> Vec<Conversation> {
    convs
        .into_iter()
        .filter(|c| include.is_empty() || c.tags.iter().any(|t| include.contains(t)))
        .filter(|c| !c.tags.iter().any(|t| exclude.contains(t)))
        .collect()
}

/// Per-message overhead of a chat template, in tokens (role markers, separators).
pub const MESSAGE_OVERHEAD: u64 = 4;

/// Estimated sizes of a conversation (llmbench's simple tokenizer; replies at their limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Size {
    /// Largest context of any turn: its prompt plus its reply budget.
    pub peak_tokens: u64,
    /// Tokens of all user text, system prompt and documents.
    pub input_tokens: u64,
    /// Documents across all turns.
    pub documents: usize,
}

/// Estimates `c`'s size with `default_max_tokens` for turns that set no limit.
pub fn size(c: &Conversation, default_max_tokens: u32) -> Size {
    let mut d = Dialogue::new(c);
    let mut peak = 0;
    let mut input = c.system.as_deref().map_or(0, estimate_tokens);
    for t in 0..c.turns.len() {
        let turn = &c.turns[t];
        input += estimate_tokens(&turn.user)
            + turn
                .documents
                .iter()
                .map(|x| estimate_tokens(&x.text))
                .sum::<u64>();
        let budget = turn.max_tokens.unwrap_or(default_max_tokens) as u64;
        let msgs = d.messages();
        let prompt: u64 = msgs
            .iter()
            .map(|m| estimate_tokens(&m.content) + MESSAGE_OVERHEAD)
            .sum();
        peak = peak.max(prompt + budget);
        // Assume a reply at its limit (budget tokens).
        d.reply(&" x".repeat(budget as usize));
    }
    Size {
        peak_tokens: peak,
        input_tokens: input,
        documents: c.turns.iter().map(|t| t.documents.len()).sum(),
    }
}

/// The state of one conversation being run: which turn is next and what was said so far.
pub struct Dialogue<'a> {
    conv: &'a Conversation,
    next: usize,
    /// (turn index, reply) of finished turns.
    done: Vec<(usize, Reply)>,
    /// Documents in the context: (turn that added it, document).
    live: Vec<(usize, &'a Document)>,
    pending_removal_applied: bool,
}

/// What a turn's request carried, besides its prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct TurnShape {
    /// Turn index (0-based).
    pub turn: u32,
    /// Messages sent (system included).
    pub messages: u32,
    /// Documents in the context.
    pub documents: u32,
    /// Estimated tokens of those documents.
    pub document_tokens: u64,
}

impl<'a> Dialogue<'a> {
    /// A conversation before its first turn.
    pub fn new(conv: &'a Conversation) -> Self {
        Self {
            conv,
            next: 0,
            done: Vec::new(),
            live: Vec::new(),
            pending_removal_applied: false,
        }
    }

    /// The conversation.
    pub fn conversation(&self) -> &'a Conversation {
        self.conv
    }

    /// Index of the next turn, `None` when all were sent.
    pub fn next_turn(&self) -> Option<usize> {
        (self.next < self.conv.turns.len()).then_some(self.next)
    }

    fn apply_turn_documents(&mut self) {
        if self.pending_removal_applied {
            return;
        }
        let t = self.next;
        let turn = &self.conv.turns[t];
        match &turn.remove_documents {
            Remove::All(true) => self.live.clear(),
            Remove::All(false) => {}
            Remove::Ids(ids) => self.live.retain(|(_, d)| !ids.contains(&d.id)),
        }
        for d in &turn.documents {
            self.live.push((t, d));
        }
        self.pending_removal_applied = true;
    }

    fn user_message(&self, t: usize) -> Message {
        let docs: Vec<&Document> = self
            .live
            .iter()
            .filter(|(at, _)| *at == t)
            .map(|(_, d)| *d)
            .collect();
        let user = &self.conv.turns[t].user;
        let content = if docs.is_empty() {
            user.clone()
        } else {
            let mut s = String::from("Use the following documents to answer.\n\n");
            for d in docs {
                match &d.title {
                    Some(title) => s.push_str(&format!("[Document {}: {}]\n", d.id, title)),
                    None => s.push_str(&format!("[Document {}]\n", d.id)),
                }
                s.push_str(&d.text);
                s.push_str("\n\n");
            }
            s.push_str("Question: ");
            s.push_str(user);
            s
        };
        Message::new("user", content)
    }

    /// The messages of the next turn: system prompt, every earlier turn with its reply, and
    /// the new user message (documents placed where they were injected).
    pub fn messages(&mut self) -> Vec<Message> {
        self.apply_turn_documents();
        let mut out = Vec::new();
        if let Some(s) = &self.conv.system {
            out.push(Message::new("system", s.clone()));
        }
        for (t, reply) in &self.done {
            out.push(self.user_message(*t));
            out.push(Message {
                tool_calls: reply.tool_calls.clone(),
                ..Message::new("assistant", reply.text.clone())
            });
            // Each tool call is answered before the next user message, as an agent would.
            for call in &reply.tool_calls {
                out.push(Message {
                    tool_call_id: Some(call.id.clone()),
                    ..Message::new("tool", tool_result(call))
                });
            }
        }
        out.push(self.user_message(self.next));
        out
    }

    /// The next turn's request and its shape.
    pub fn request(
        &mut self,
        default_max_tokens: u32,
        temperature: Option<f64>,
    ) -> (RequestSpec, TurnShape) {
        let messages = self.messages();
        let shape = TurnShape {
            turn: self.next as u32,
            messages: messages.len() as u32,
            documents: self.live.len() as u32,
            document_tokens: self
                .live
                .iter()
                .map(|(_, d)| estimate_tokens(&d.text))
                .sum(),
        };
        let spec = RequestSpec {
            images: Vec::new(),
            tools: None,
            audio: Vec::new(),
            prompt: Prompt::Messages(messages),
            max_tokens: Some(
                self.conv.turns[self.next]
                    .max_tokens
                    .unwrap_or(default_max_tokens),
            ),
            temperature,
        };
        (spec, shape)
    }

    /// Records the model's reply (text only) to the current turn and moves to the next.
    pub fn reply(&mut self, text: &str) {
        self.reply_with(Reply {
            text: text.into(),
            tool_calls: Vec::new(),
        });
    }

    /// Records the model's reply, its tool calls included, and moves to the next turn.
    pub fn reply_with(&mut self, reply: Reply) {
        self.apply_turn_documents();
        self.done.push((self.next, reply));
        self.next += 1;
        self.pending_removal_applied = false;
    }
}

/// What a conversation sends back for a tool call: a small JSON result naming the function
/// (no tool is run; the model sees a result of realistic shape and size).
pub fn tool_result(call: &ToolCall) -> String {
    serde_json::json!({"status": "ok", "function": call.function.name, "result": "done"})
        .to_string()
}

/// Turns text-prompt requests into templated text (completion endpoints).
pub trait Render: Send + Sync {
    /// The prompt text for these messages, ending where the model's reply begins.
    fn render(&self, messages: &[Message]) -> anyhow::Result<String>;
}

/// A conversations workload: what `--conversations` selected, and how to send it.
pub struct ConversationSet {
    /// The conversations to run, in order (after tag filters and `--max-conversations`).
    pub conversations: Vec<Conversation>,
    /// `max_tokens` of turns that set none.
    pub default_max_tokens: u32,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// `--context-size`: conversations larger than this are skipped; `None`: ask the server.
    pub context_size: Option<u64>,
    /// Renders messages into one text prompt (`--chat-template`), if set.
    pub template: Option<std::sync::Arc<dyn Render>>,
}

impl ConversationSet {
    /// The request for `dialogue`'s next turn, templated when a template is set.
    pub fn request(&self, dialogue: &mut Dialogue<'_>) -> anyhow::Result<(RequestSpec, TurnShape)> {
        let (mut spec, shape) = dialogue.request(self.default_max_tokens, self.temperature);
        if let Some(t) = &self.template {
            spec.prompt = Prompt::Text(t.render(&spec.prompt.messages())?);
        }
        Ok((spec, shape))
    }
}

impl super::Workload for ConversationSet {
    fn get(&self, index: u64) -> RequestSpec {
        let c = &self.conversations[(index % self.conversations.len() as u64) as usize];
        Dialogue::new(c)
            .request(self.default_max_tokens, self.temperature)
            .0
    }
    fn len(&self) -> Option<u64> {
        Some(self.conversations.len() as u64)
    }
    /// A warm-up request (`--warmup`): the first user turn of a conversation, alone and
    /// marked as warm-up at its start, so it warms the server and the connections without
    /// putting a measured conversation's prefix in the server's cache.
    fn get_warmup(&self, index: u64) -> RequestSpec {
        let c = &self.conversations[(index % self.conversations.len() as u64) as usize];
        let first = &c.turns[0];
        let text = format!("(warm-up {index}) {}", first.user);
        let prompt = match &self.template {
            Some(t) => {
                let msgs = Prompt::Text(text.clone()).messages();
                Prompt::Text(t.render(&msgs).unwrap_or(text))
            }
            None => Prompt::Text(text),
        };
        RequestSpec {
            images: Vec::new(),
            tools: None,
            audio: Vec::new(),
            prompt,
            max_tokens: Some(first.max_tokens.unwrap_or(self.default_max_tokens)),
            temperature: self.temperature,
        }
    }
    fn conversations(&self) -> Option<&ConversationSet> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv() -> Conversation {
        serde_json::from_str(
            r#"{"id": "c", "system": "sys", "turns": [
                {"user": "q0", "documents": [{"id": "d1", "text": "alpha"}]},
                {"user": "q1"},
                {"user": "q2", "remove_documents": ["d1"]}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn history_grows_with_actual_replies_and_documents_come_and_go() {
        let c = conv();
        let mut d = Dialogue::new(&c);
        let (s0, sh0) = d.request(10, None);
        let m0 = s0.prompt.messages();
        assert_eq!(m0.len(), 2);
        assert!(m0[1].content.contains("alpha") && m0[1].content.ends_with("Question: q0"));
        assert_eq!((sh0.documents, sh0.turn), (1, 0));
        d.reply("r0");
        let (s1, sh1) = d.request(10, None);
        let m1 = s1.prompt.messages();
        assert_eq!(m1.len(), 4);
        assert_eq!(m1[2].content, "r0");
        assert!(
            m1[1].content.contains("alpha"),
            "documents stay where injected"
        );
        assert_eq!(sh1.documents, 1);
        d.reply("r1");
        let (s2, sh2) = d.request(10, None);
        let m2 = s2.prompt.messages();
        assert_eq!(m2.len(), 6);
        assert_eq!(m2[1].content, "q0", "removed documents leave the history");
        assert_eq!(
            (m2[3].content.as_str(), m2[5].content.as_str()),
            ("q1", "q2")
        );
        assert_eq!(sh2.documents, 0);
        d.reply("r2");
        assert_eq!(d.next_turn(), None);
    }

    #[test]
    fn sizes_and_filters() {
        let c = conv();
        let s = size(&c, 100);
        assert_eq!(s.documents, 1);
        assert!(s.peak_tokens > 300, "{s:?}");
        let mut tagged = c.clone();
        tagged.id = "t".into();
        tagged.tags = vec!["rag".into()];
        let all = vec![c, tagged];
        let inc = filter_tags(all.clone(), &["rag".into()], &[]);
        assert_eq!(inc.len(), 1);
        let exc = filter_tags(all, &[], &["rag".into()]);
        assert_eq!(exc[0].id, "c");
    }
}
