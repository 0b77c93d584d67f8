//! The common streamed OpenAI event read by a field scan instead of serde (profiled: parsing
//! every event into typed structs was the client's largest cost per token, ~40 % of its
//! instructions at a zero-delay server).
//!
//! The scan accepts a strict subset of what the serde path accepts: an object whose `choices`
//! hold `text` or a `delta` with `content` / `reasoning_content` / `reasoning` (strings without
//! escapes, or null), `usage` and `error` null or absent, and any other member skipped after
//! checking it is well-formed JSON. Anything else (an escape in a kept string, tool calls, a
//! `message`, a usage object, an error, a repeated member, malformed input) returns `None` and
//! the event goes through serde as before, so both paths give the same `Delta` for every event
//! the scan takes (tested against serde on generated and mutated events).

use super::types::Delta;

/// Appends what a common streamed event carries to `out`; `None` (and `out` as it was) when
/// the event is not of that shape.
pub(super) fn scan(payload: &[u8], out: &mut Delta) -> Option<()> {
    let (text_len, reasoning_len) = (out.text.len(), out.reasoning.len());
    let r = scan_into(payload, out);
    if r.is_none() {
        out.text.truncate(text_len);
        out.reasoning.truncate(reasoning_len);
    }
    r
}

fn scan_into(payload: &[u8], out: &mut Delta) -> Option<()> {
    let mut s = Scan { b: payload, i: 0 };
    let (mut seen_choices, mut seen_usage, mut seen_error) = (false, false, false);
    s.eat(b'{')?;
    s.members(|s, key| match key {
        b"choices" => {
            once(&mut seen_choices)?;
            if s.null() {
                return Some(());
            }
            s.eat(b'[')?;
            s.elements(|s| {
                choice(s)?.apply(out);
                Some(())
            })
        }
        b"usage" => {
            once(&mut seen_usage)?;
            s.null().then_some(())
        }
        b"error" => {
            once(&mut seen_error)?;
            s.null().then_some(())
        }
        _ => s.skip(0),
    })?;
    s.ws();
    (s.i == s.b.len()).then_some(())
}

/// The text pieces of one choice, in the order the serde path appends them.
#[derive(Default)]
struct Parts<'a> {
    text: Option<&'a str>,
    reasoning_content: Option<&'a str>,
    reasoning: Option<&'a str>,
    content: Option<&'a str>,
}

impl Parts<'_> {
    fn apply(&self, out: &mut Delta) {
        if let Some(t) = self.text {
            out.text.push_str(t);
        }
        for r in [self.reasoning_content, self.reasoning]
            .into_iter()
            .flatten()
        {
            out.reasoning.push_str(r);
        }
        if let Some(c) = self.content {
            out.text.push_str(c);
        }
    }
}

fn once(seen: &mut bool) -> Option<()> {
    if std::mem::replace(seen, true) {
        None
    } else {
        Some(())
    }
}

/// One element of `choices`.
fn choice<'a>(s: &mut Scan<'a>) -> Option<Parts<'a>> {
    let mut p = Parts::default();
    let (mut seen_text, mut seen_delta) = (false, false);
    s.eat(b'{')?;
    s.members(|s, key| match key {
        b"text" => {
            once(&mut seen_text)?;
            p.text = s.text()?;
            Some(())
        }
        b"delta" => {
            once(&mut seen_delta)?;
            if s.null() {
                return Some(());
            }
            s.eat(b'{')?;
            let (mut c, mut rc, mut r, mut tc) = (false, false, false, false);
            s.members(|s, key| match key {
                b"content" => {
                    once(&mut c)?;
                    p.content = s.text()?;
                    Some(())
                }
                b"reasoning_content" => {
                    once(&mut rc)?;
                    p.reasoning_content = s.text()?;
                    Some(())
                }
                b"reasoning" => {
                    once(&mut r)?;
                    p.reasoning = s.text()?;
                    Some(())
                }
                // Tool calls go through serde; `null` and `[]` carry none.
                b"tool_calls" => {
                    once(&mut tc)?;
                    if s.null() {
                        return Some(());
                    }
                    s.eat(b'[')?;
                    s.ws();
                    s.eat(b']')
                }
                _ => s.skip(1),
            })
        }
        // A whole (non-streamed) reply: serde's business.
        b"message" => None,
        _ => s.skip(1),
    })?;
    Some(p)
}

/// Deepest nesting skipped (serde_json's own limit is 128).
const MAX_DEPTH: usize = 64;

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// Skips whitespace, then takes `c`.
    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    /// Skips whitespace, then takes `null` if it is next.
    fn null(&mut self) -> bool {
        self.ws();
        if self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            true
        } else {
            false
        }
    }

    /// The members of an object whose `{` was taken, through its `}`; `f` reads each value.
    fn members(&mut self, mut f: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            let key = self.string()?;
            // A key with an escape could name a member once unescaped: serde decides.
            if key.contains(&b'\\') {
                return None;
            }
            self.eat(b':')?;
            f(self, key)?;
            self.ws();
            match self.b.get(self.i)? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// The elements of an array whose `[` was taken, through its `]`.
    fn elements(&mut self, mut f: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Some(());
        }
        loop {
            f(self)?;
            self.ws();
            match self.b.get(self.i)? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A string's raw bytes between its quotes (escapes checked, not decoded). The strings of
    /// an event are short, where a vectorised search costs more to start than it saves.
    fn string(&mut self) -> Option<&'a [u8]> {
        let b = self.b;
        if b.get(self.i) != Some(&b'"') {
            return None;
        }
        let start = self.i + 1;
        let mut i = start;
        loop {
            // Eight bytes at a time up to the first quote, backslash or control byte.
            while let Some(w) = b.get(i..i + 8) {
                let m = special(u64::from_le_bytes(w.try_into().expect("8 bytes")));
                if m != 0 {
                    i += (m.trailing_zeros() / 8) as usize;
                    break;
                }
                i += 8;
            }
            match *b.get(i)? {
                b'"' => {
                    self.i = i + 1;
                    return Some(&b[start..i]);
                }
                b'\\' => i += 1 + escape_len(&b[i + 1..])?,
                c if c < 0x20 => return None,
                _ => i += 1,
            }
        }
    }

    /// A kept string (borrowed: no escapes, valid UTF-8) or null.
    fn text(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            return Some(None);
        }
        let raw = self.string()?;
        if raw.contains(&b'\\') {
            return None;
        }
        std::str::from_utf8(raw).ok().map(Some)
    }

    /// Skips one well-formed value.
    fn skip(&mut self, depth: usize) -> Option<()> {
        self.ws();
        match *self.b.get(self.i)? {
            b'"' => self.string().map(drop),
            b'{' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.members(|s, _| s.skip(depth + 1))
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.elements(|s| s.skip(depth + 1))
            }
            b't' => self.word(b"true"),
            b'f' => self.word(b"false"),
            b'n' => self.word(b"null"),
            _ => self.number(),
        }
    }

    fn word(&mut self, w: &[u8]) -> Option<()> {
        self.b[self.i..].starts_with(w).then(|| self.i += w.len())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match *self.b.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let from = self.i;
        self.digits();
        (self.i > from).then_some(())
    }
}

/// The high bit of each byte of `w` (little-endian) that is `"`, `\\` or below 0x20, exact
/// for the lowest such byte (higher flags may be false: only the lowest is used).
fn special(w: u64) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let quote = w ^ (LO * b'"' as u64);
    let slash = w ^ (LO * b'\\' as u64);
    ((quote.wrapping_sub(LO) & !quote)
        | (slash.wrapping_sub(LO) & !slash)
        | (w.wrapping_sub(LO * 0x20) & !w))
        & HI
}

/// Length of a valid escape's body after its backslash (`n`, `u00e9`, ...).
fn escape_len(rest: &[u8]) -> Option<usize> {
    match *rest.first()? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(1),
        b'u' if rest.len() >= 5 && rest[1..5].iter().all(u8::is_ascii_hexdigit) => Some(5),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::openai::decode_serde;
    use super::*;
    use crate::transport::sse::tests::Rng;

    /// Events as servers send them: the scan must take every one of these.
    const COMMON: &[&str] = &[
        // llmbench's simulator and vLLM, completions and chat
        r#"{"id":"cmpl-1","object":"text_completion","created":1700000000,"model":"m","choices":[{"index":0,"text":" tok","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"content":" héllo 😀"},"logprobs":null,"finish_reason":"length","stop_reason":null}]}"#,
        // llama.cpp's server
        r#"{"choices":[{"finish_reason":null,"index":0,"delta":{"content":"x"}}],"created":1,"id":"c","model":"gpt-3.5-turbo","system_fingerprint":"b1-abc","object":"chat.completion.chunk","timings":{"prompt_n":3,"predicted_ms":1.5e1}}"#,
        // SGLang, reasoning models, logprobs objects, spaces and newlines between tokens
        r#"{ "id" : "1", "choices" : [ { "index" : 0, "delta" : { "content" : null, "reasoning_content" : "think", "tool_calls" : null }, "matched_stop" : null } ], "usage" : null }"#,
        "{\"choices\":[{\"delta\":{\"reasoning\":\"r\",\"content\":\"c\",\"tool_calls\":[]}}],\n\"error\":null}",
        r#"{"choices":[{"text":"a","logprobs":{"tokens":["a"],"token_logprobs":[-0.25],"top_logprobs":[{"a":-0.25,"b":-1E+2}]}}]}"#,
        r#"{"choices":[{"text":"a"},{"text":"b","delta":{"content":"c"}}]}"#,
        r#"{"choices":null,"x":[true,false,null,0,-0.5,"\u00e9\n"]}"#,
        r#"{"choices":[],"usage":null}"#,
        r#"{}"#,
    ];

    /// Events the scan leaves to serde (it must say `None` and leave `out` alone).
    const OTHERS: &[&str] = &[
        r#"{"choices":[{"delta":{"content":"a\nb"}}]}"#,
        r#"{"choices":[{"text":"caf\u00e9"}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"f","arguments":""}}]}}]}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#,
        r#"{"error":{"message":"boom","code":500}}"#,
        r#"{"choices":[{"message":{"content":"whole"}}]}"#,
        r#"{"choices":[{"text":"a"}],"choices":[{"text":"b"}]}"#,
        r#"{"choices":[{"text":"a","text":"b"}]}"#,
        r#"{"ch\u006fices":[{"text":"a"}]}"#,
        r#"{"choices":[{"text":"a"}]} x"#,
        r#"{"choices":[{"text":1}]}"#,
        r#"[{"text":"a"}]"#,
        r#"{not json"#,
    ];

    fn both(event: &[u8]) -> (Option<Delta>, Result<Delta, super::super::DecodeError>) {
        let mut fast = Delta {
            text: "kept ".into(),
            ..Default::default()
        };
        let fast = scan(event, &mut fast).map(|()| fast);
        let mut slow = Delta {
            text: "kept ".into(),
            ..Default::default()
        };
        let slow = decode_serde(event, &mut slow).map(|()| slow);
        (fast, slow)
    }

    #[test]
    fn the_scan_takes_common_events_and_agrees_with_serde() {
        for e in COMMON {
            let (fast, slow) = both(e.as_bytes());
            let fast = fast.unwrap_or_else(|| panic!("the scan refused {e}"));
            assert_eq!(Ok(fast), slow, "{e}");
        }
        let (d, _) = both(COMMON[2].as_bytes());
        assert_eq!(d.unwrap().text, "kept  héllo 😀");
        let (d, _) = both(COMMON[4].as_bytes());
        assert_eq!(d.unwrap().reasoning, "think");
        let (d, _) = both(COMMON[7].as_bytes());
        assert_eq!(d.unwrap().text, "kept abc");
    }

    #[test]
    fn the_scan_leaves_other_events_to_serde_untouched() {
        for e in OTHERS {
            let mut d = Delta {
                text: "kept".into(),
                ..Default::default()
            };
            assert!(scan(e.as_bytes(), &mut d).is_none(), "the scan took {e}");
            assert_eq!(
                d,
                Delta {
                    text: "kept".into(),
                    ..Default::default()
                },
                "{e}"
            );
        }
    }

    #[test]
    fn the_word_test_finds_the_first_special_byte() {
        let mut rng = Rng(0x8);
        let bytes: &[u8] = b"\"\\\x00\x1f\x20\x21\x7f\x80\xffa";
        for _ in 0..200_000 {
            let w: [u8; 8] = std::array::from_fn(|_| bytes[rng.below(bytes.len())]);
            let first = w.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
            let m = special(u64::from_le_bytes(w));
            let got = (m != 0).then(|| (m.trailing_zeros() / 8) as usize);
            assert_eq!(got, first, "{w:?}");
        }
    }

    /// Every cut, every one-byte deletion and random byte changes of real events: whenever the
    /// scan takes one, serde reads the same.
    #[test]
    fn mutated_events_read_the_same_whenever_the_scan_takes_them() {
        let alphabet: &[u8] = b"{}[]\",:\\ \t\n0123456789.-+eEtrufalsnx\x00\x1f\xff\xc3";
        let mut rng = Rng(0x0a1);
        let mut taken = 0;
        let check = |ev: &[u8], taken: &mut usize| {
            let (fast, slow) = both(ev);
            if let Some(fast) = fast {
                *taken += 1;
                assert_eq!(
                    Ok(fast),
                    slow,
                    "scan and serde differ on {:?}",
                    String::from_utf8_lossy(ev)
                );
            }
        };
        for e in COMMON.iter().chain(OTHERS) {
            let e = e.as_bytes();
            for cut in 0..e.len() {
                check(&e[..cut], &mut taken);
                let mut del = e.to_vec();
                del.remove(cut);
                check(&del, &mut taken);
            }
            for _ in 0..3000 {
                let mut m = e.to_vec();
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(m.len());
                    m[at] = alphabet[rng.below(alphabet.len())];
                }
                check(&m, &mut taken);
            }
        }
        assert!(taken > 1000, "the scan took only {taken} mutated events");
    }
}
