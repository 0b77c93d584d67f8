//! Prompt datasets: JSONL, ShareGPT JSON and plain text. Errors name the file and line.
//!
//! - JSONL: one object per line, `{"prompt": "..."}` or `{"messages": [{"role", "content"}]}`,
//!   optional `"max_tokens"`, `"tools"` (an OpenAI `tools` array) and `"images"` (image files, relative to the dataset's folder,
//!   sent with a chat request after its text). Blank lines are ignored.
//! - ShareGPT: a JSON array of `{"conversations": [{"from": "human", "value": "..."},
//!   {"from": "gpt", "value": "..."}]}`; the first human turn is the prompt and the reply that
//!   follows it sets `max_tokens` (its estimated token count). Entries without a human turn are
//!   skipped and counted.
//! - Text: one prompt per non-blank line.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::Value;

use super::media::Image;
use super::{Message, Prompt, RequestSpec, estimate_tokens};

/// Dataset formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// ShareGPT JSON array.
    ShareGpt,
    /// One prompt per line.
    Text,
}

impl Format {
    /// Name as given to `--dataset-format`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::ShareGpt => "sharegpt",
            Format::Text => "text",
        }
    }
}

/// A loaded dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The format it was read as.
    pub format: Format,
    /// One request per prompt, in file order (or shuffled).
    pub specs: Vec<RequestSpec>,
    /// Entries left out (ShareGPT entries without a human turn).
    pub skipped: usize,
}

/// Picks the format: by name, or (`auto`) by extension, then by the first non-blank character.
pub fn detect(path: &Path, name: &str, text: &str) -> anyhow::Result<Format> {
    Ok(match name {
        "jsonl" => Format::Jsonl,
        "sharegpt" | "json" => Format::ShareGpt,
        "text" | "txt" => Format::Text,
        "auto" => match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl") => Format::Jsonl,
            Some("json") => Format::ShareGpt,
            Some("txt") => Format::Text,
            _ => match text.trim_start().chars().next() {
                Some('[') => Format::ShareGpt,
                Some('{') => Format::Jsonl,
                _ => Format::Text,
            },
        },
        other => bail!("--dataset-format {other:?}: choose auto, jsonl, sharegpt or text"),
    })
}

fn message(v: &Value, at: &str) -> anyhow::Result<Message> {
    let role = v["role"]
        .as_str()
        .with_context(|| format!("{at}: a message needs a string \"role\""))?;
    let content = v["content"]
        .as_str()
        .with_context(|| format!("{at}: a message needs a string \"content\""))?;
    Ok(Message::new(role, content))
}

/// A record's `"tools"`: an OpenAI `tools` array sent with it.
fn tools(v: &Value, at: &str) -> anyhow::Result<Option<Arc<Value>>> {
    match v.get("tools") {
        None | Some(Value::Null) => Ok(None),
        Some(t) => {
            super::check_tools(t).map_err(|e| anyhow::anyhow!("{at}: \"tools\": {e}"))?;
            Ok(Some(Arc::new(t.clone())))
        }
    }
}

/// A record's `"images"`: file paths, relative to the dataset's folder, each read once.
fn images(
    v: &Value,
    at: &str,
    dir: &Path,
    seen: &mut HashMap<String, Arc<Image>>,
) -> anyhow::Result<Vec<Arc<Image>>> {
    let Some(list) = v.get("images") else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .with_context(|| format!("{at}: \"images\" must be an array of file paths"))?;
    list.iter()
        .map(|p| {
            let p = p
                .as_str()
                .with_context(|| format!("{at}: \"images\" must be an array of file paths"))?;
            if let Some(img) = seen.get(p) {
                return Ok(img.clone());
            }
            let path = dir.join(p);
            let bytes = std::fs::read(&path)
                .with_context(|| format!("{at}: image {}: cannot read", path.display()))?;
            let img = Arc::new(
                Image::from_bytes(&bytes)
                    .with_context(|| format!("{at}: image {}", path.display()))?,
            );
            seen.insert(p.to_string(), img.clone());
            Ok(img)
        })
        .collect()
}

fn jsonl(
    file: &str,
    dir: &Path,
    text: &str,
    max_tokens: u32,
    temp: Option<f64>,
) -> anyhow::Result<Vec<RequestSpec>> {
    let mut out = Vec::new();
    let mut seen = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let at = format!("{file}:{}", i + 1);
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).with_context(|| format!("{at}: not JSON"))?;
        let prompt = if let Some(p) = v.get("prompt") {
            Prompt::Text(
                p.as_str()
                    .with_context(|| format!("{at}: \"prompt\" must be a string"))?
                    .into(),
            )
        } else if let Some(m) = v.get("messages") {
            let arr = m
                .as_array()
                .with_context(|| format!("{at}: \"messages\" must be an array"))?;
            if arr.is_empty() {
                bail!("{at}: \"messages\" is empty");
            }
            Prompt::Messages(
                arr.iter()
                    .map(|m| message(m, &at))
                    .collect::<Result<_, _>>()?,
            )
        } else {
            bail!("{at}: expected an object with \"prompt\" or \"messages\"");
        };
        let max = match v.get("max_tokens") {
            None | Some(Value::Null) => max_tokens,
            Some(n) => n
                .as_u64()
                .filter(|n| *n >= 1 && *n <= u32::MAX as u64)
                .with_context(|| format!("{at}: \"max_tokens\" must be a positive integer"))?
                as u32,
        };
        out.push(RequestSpec {
            images: images(&v, &at, dir, &mut seen)?,
            tools: tools(&v, &at)?,
            audio: Vec::new(),
            prompt,
            max_tokens: Some(max),
            temperature: temp,
        });
    }
    Ok(out)
}

fn sharegpt(
    file: &str,
    text: &str,
    max_tokens: u32,
    temp: Option<f64>,
) -> anyhow::Result<(Vec<RequestSpec>, usize)> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!("{file}:{}:{}: not ShareGPT JSON: {e}", e.line(), e.column())
    })?;
    let arr = v
        .as_array()
        .with_context(|| format!("{file}: ShareGPT data must be a JSON array"))?;
    let (mut out, mut skipped) = (Vec::new(), 0);
    for (i, entry) in arr.iter().enumerate() {
        let turns = entry["conversations"]
            .as_array()
            .or_else(|| entry["conversation"].as_array())
            .with_context(|| format!("{file}: entry {i}: no \"conversations\" array"))?;
        let is = |t: &Value, who: &[&str]| {
            t["from"]
                .as_str()
                .or(t["role"].as_str())
                .is_some_and(|f| who.contains(&f))
        };
        let value = |t: &Value| {
            t["value"]
                .as_str()
                .or(t["content"].as_str())
                .map(str::to_string)
        };
        let Some(h) = turns.iter().position(|t| is(t, &["human", "user"])) else {
            skipped += 1;
            continue;
        };
        let Some(prompt) = value(&turns[h]).filter(|p| !p.trim().is_empty()) else {
            skipped += 1;
            continue;
        };
        let reply = turns
            .get(h + 1)
            .filter(|t| is(t, &["gpt", "assistant", "bard", "chatgpt", "model"]))
            .and_then(value)
            .map(|r| estimate_tokens(&r).max(1) as u32);
        out.push(RequestSpec {
            images: Vec::new(),
            tools: None,
            audio: Vec::new(),
            prompt: Prompt::Text(prompt),
            max_tokens: Some(reply.unwrap_or(max_tokens)),
            temperature: temp,
        });
    }
    Ok((out, skipped))
}

/// Reads a dataset file.
pub fn load(
    path: &Path,
    format: &str,
    max_tokens: u32,
    temperature: Option<f64>,
) -> anyhow::Result<Dataset> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| format!("--dataset {file}: cannot read"))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        anyhow::anyhow!("{file}:{line}: not UTF-8 text")
    })?;
    let format = detect(path, format, &text)?;
    let (specs, skipped) = match format {
        Format::Jsonl => (
            jsonl(
                &file,
                path.parent().unwrap_or(Path::new(".")),
                &text,
                max_tokens,
                temperature,
            )?,
            0,
        ),
        Format::ShareGpt => sharegpt(&file, &text, max_tokens, temperature)?,
        Format::Text => (
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| RequestSpec {
                    images: Vec::new(),
                    tools: None,
                    audio: Vec::new(),
                    prompt: Prompt::Text(l.to_string()),
                    max_tokens: Some(max_tokens),
                    temperature,
                })
                .collect(),
            0,
        ),
    };
    if specs.is_empty() {
        bail!(
            "--dataset {file}: no prompts found (read as {})",
            format.name()
        );
    }
    Ok(Dataset {
        format,
        specs,
        skipped,
    })
}

/// Shuffles `items` reproducibly (Fisher–Yates with a seeded generator).
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    use rand::RngExt;
    let mut rng = crate::rng::seeded(seed);
    for i in (1..items.len()).rev() {
        let j = rng.random_range(0..=i);
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_reads_prompts_and_messages_and_names_bad_lines() {
        let t = "{\"prompt\": \"a\"}\n\n{\"messages\": [{\"role\": \"user\", \"content\": \"b\"}], \"max_tokens\": 7}\n";
        let s = jsonl("f.jsonl", Path::new("."), t, 5, None).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].max_tokens, Some(5));
        assert_eq!(s[1].max_tokens, Some(7));
        assert!(matches!(&s[1].prompt, Prompt::Messages(m) if m[0].content == "b"));
        let e = jsonl(
            "f.jsonl",
            Path::new("."),
            "{\"prompt\": \"a\"}\n{\"x\": 1}\n",
            5,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("f.jsonl:2:"), "{e}");
        let e = jsonl("f.jsonl", Path::new("."), "\n\n{oops\n", 5, None).unwrap_err();
        assert!(e.to_string().starts_with("f.jsonl:3:"), "{e}");
    }

    #[test]
    fn sharegpt_uses_first_human_turn_and_reply_length() {
        let t = r#"[{"conversations": [{"from": "human", "value": "hi there"}, {"from": "gpt", "value": "one two six"}]},
                   {"conversations": [{"from": "gpt", "value": "x"}]}]"#;
        let (s, skipped) = sharegpt("s.json", t, 9, None).unwrap();
        assert_eq!((s.len(), skipped), (1, 1));
        assert_eq!(s[0].prompt, Prompt::Text("hi there".into()));
        assert_eq!(s[0].max_tokens, Some(3));
        let e = sharegpt("s.json", "[\n{\"conversations\": [}\n]", 9, None).unwrap_err();
        assert!(e.to_string().starts_with("s.json:2:"), "{e}");
    }

    #[test]
    fn shuffle_is_a_seeded_permutation() {
        let mut a: Vec<u32> = (0..50).collect();
        let mut b = a.clone();
        shuffle(&mut a, 4);
        shuffle(&mut b, 4);
        assert_eq!(a, b);
        assert_ne!(a, (0..50).collect::<Vec<_>>());
        a.sort();
        assert_eq!(a, (0..50).collect::<Vec<_>>());
    }
}
