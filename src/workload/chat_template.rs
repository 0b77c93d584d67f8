//! Chat templates for completion-style endpoints: messages rendered to one prompt text with the
//! model's Jinja template (minijinja, with Python string methods such as `.strip()`), as
//! Hugging Face's `apply_chat_template(..., add_generation_prompt=True)` does.
//!
//! `--chat-template` takes a built-in name, a Jinja file, or a `tokenizer_config.json` (its
//! `chat_template` and `eos_token` are used). `bos_token` renders as an empty string: servers
//! add BOS themselves when they tokenize a completion prompt, and a second one would change
//! what is measured.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use minijinja::{Environment, Error, ErrorKind};
use serde_json::Value;

use super::conversation::Render;
use super::{Message, Prompt, RequestSpec, Workload};

/// Built-in templates: name, template, end-of-sequence token.
pub const BUILTIN: &[(&str, &str, &str)] = &[
    (
        "chatml",
        r#"{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"#,
        "<|im_end|>",
    ),
    (
        "llama-3",
        r#"{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"#,
        "<|eot_id|>",
    ),
    (
        "phi-3",
        r#"{% for message in messages %}{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '<|end|>\n' }}{% elif message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '<|end|>\n' }}{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\n' + message['content'] + '<|end|>\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"#,
        "<|endoftext|>",
    ),
];

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    eos: String,
}

fn raise_exception(msg: String) -> Result<String, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg))
}

impl ChatTemplate {
    /// Compiles `source`.
    pub fn new(source: String, eos: String) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_template_owned("chat", source)
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        Ok(Self { env, eos })
    }
}

impl Render for ChatTemplate {
    fn render(&self, messages: &[Message]) -> anyhow::Result<String> {
        let t = self.env.get_template("chat").expect("added");
        t.render(minijinja::context! {
            messages => minijinja::Value::from(minijinja::value::Serde(messages)),
            add_generation_prompt => true,
            bos_token => "",
            eos_token => self.eos.as_str(),
        })
        .map_err(|e| anyhow::anyhow!("{e:#}"))
    }
}

/// A built-in template by name, a Jinja file, or a tokenizer_config.json.
pub fn load(spec: &str) -> anyhow::Result<Arc<dyn Render>> {
    if let Some((_, src, eos)) = BUILTIN.iter().find(|(n, _, _)| *n == spec) {
        return Ok(Arc::new(ChatTemplate::new(
            src.to_string(),
            eos.to_string(),
        )?));
    }
    let path = Path::new(spec);
    if !path.exists() {
        bail!(
            "--chat-template {spec}: no such file, and not a built-in template ({})",
            BUILTIN.iter().map(|b| b.0).collect::<Vec<_>>().join(", ")
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--chat-template {spec}: cannot read"))?;
    let (source, eos) = match serde_json::from_str::<Value>(&text) {
        Ok(v) if v.get("chat_template").is_some() => {
            let src = match &v["chat_template"] {
                Value::String(s) => s.clone(),
                // A list of named templates: take "default".
                Value::Array(list) => list
                    .iter()
                    .find(|t| t["name"] == "default")
                    .or(list.first())
                    .and_then(|t| t["template"].as_str())
                    .with_context(|| format!("{spec}: chat_template list has no template"))?
                    .to_string(),
                _ => bail!("{spec}: chat_template must be a string or a list"),
            };
            let eos = match &v["eos_token"] {
                Value::String(s) => s.clone(),
                Value::Object(o) => o
                    .get("content")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .into(),
                _ => String::new(),
            };
            (src, eos)
        }
        _ => (text, String::new()),
    };
    Ok(Arc::new(
        ChatTemplate::new(source, eos).with_context(|| format!("--chat-template {spec}"))?,
    ))
}

/// Another workload with every prompt rendered through a chat template to plain text.
pub struct Templated {
    /// The workload whose prompts are rendered.
    pub inner: Arc<dyn Workload>,
    /// The template.
    pub template: Arc<dyn Render>,
}

impl Workload for Templated {
    fn get(&self, index: u64) -> RequestSpec {
        let mut spec = self.inner.get(index);
        let messages = spec.prompt.messages();
        // Checked on the first request before the run; a later failure keeps the plain text.
        if let Ok(text) = self.template.render(&messages) {
            spec.prompt = Prompt::Text(text);
        }
        spec
    }
    fn len(&self) -> Option<u64> {
        self.inner.len()
    }
    fn context_needed(&self) -> Option<u64> {
        self.inner.context_needed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs() -> Vec<Message> {
        [
            ("system", "Be brief."),
            ("user", "Hi"),
            ("assistant", "Hello"),
            ("user", "Bye"),
        ]
        .iter()
        .map(|(r, c)| Message::new(r, *c))
        .collect()
    }

    #[test]
    fn builtins_render_as_their_models_expect() {
        let phi = load("phi-3").unwrap().render(&msgs()).unwrap();
        assert_eq!(
            phi,
            "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello<|end|>\n<|user|>\nBye<|end|>\n<|assistant|>\n"
        );
        let chatml = load("chatml").unwrap().render(&msgs()[1..2]).unwrap();
        assert_eq!(
            chatml,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let llama = load("llama-3").unwrap().render(&msgs()[1..2]).unwrap();
        assert_eq!(
            llama,
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }

    #[test]
    fn tokenizer_config_templates_with_python_methods_and_exceptions() {
        let dir = std::env::temp_dir().join(format!("llmbench-tpl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("tokenizer_config.json");
        let tpl = "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}[{{ m['role'].upper() }}] {{ m['content'].strip() }}\n{% endfor %}{% if add_generation_prompt %}[ASSISTANT]{% endif %}";
        std::fs::write(
            &cfg,
            serde_json::json!({"chat_template": tpl, "eos_token": {"content": "</s>"}}).to_string(),
        )
        .unwrap();
        let t = load(cfg.to_str().unwrap()).unwrap();
        let out = t.render(&msgs()[1..3]).unwrap();
        assert_eq!(out, "[USER] Hi\n[ASSISTANT] Hello\n[ASSISTANT]");
        let e = t.render(&msgs()).unwrap_err().to_string();
        assert!(e.contains("System role not supported"), "{e}");
        assert!(load("no-such-template").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
