//! Reading one response body into its record: framing, decoding each event, the time of
//! every output chunk, the end marker, token counts by source, and the outcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Client, Response};
use crate::measure::record::{Outcome, Record, TokenSource};
use crate::protocol::{Delta, Usage};
use crate::transport::policy::scrub;
use crate::transport::sse::{Framer, Framing};
use crate::workload::{FunctionCall, Reply, ToolCall};

/// What one response carried, as it streamed in.
#[derive(Default)]
struct Stream {
    text: String,
    chunk_times_ms: Vec<f64>,
    chunk_tokens: u64,
    usage: Usage,
    cache_hit: Option<bool>,
    done: bool,
    error: Option<String>,
    error_status: Option<u16>,
    timings: Option<crate::protocol::ServerTimings>,
    /// Tool calls were generated (output without text).
    tool_output: bool,
    /// Tool calls started.
    tool_calls: u32,
    /// The tool calls, assembled from their pieces (by call index).
    calls: Vec<PartialCall>,
    /// Embeddings or rerank results returned.
    items: Option<u32>,
    /// Reasoning text (never sent back in a conversation).
    reasoning: String,
    /// Tokens of the chunks that carried reasoning (one each unless the protocol says).
    reasoning_chunk_tokens: u64,
    /// When the first answer chunk (text or tool call) was read.
    first_answer_ms: Option<f64>,
    /// Events decoded so far.
    events: usize,
    /// The body's first bytes while no event has been decoded: a server that answers a
    /// streamed request with one whole JSON body (a completion, or an error) is read from it.
    raw: Vec<u8>,
}

/// A tool call being streamed in.
#[derive(Default)]
struct PartialCall {
    index: u32,
    id: String,
    name: String,
    arguments: String,
}

/// How long the body is read after its end marker: what the server sends at once with it.
const AFTER_END_MARKER: Duration = Duration::from_millis(5);

/// Most bytes of an event-less body kept to read it as one JSON document.
const RAW_BODY_LIMIT: usize = 1 << 20;

impl Stream {
    /// Takes what one event carried; `d` is left cleared for the next event (its buffers kept:
    /// no allocation per event).
    fn take(&mut self, d: &mut Delta, at_ms: f64) {
        self.events += 1;
        // Embeddings and rerank results are the reply's output: one whole chunk.
        let answer = !d.text.is_empty() || d.tool_output || d.items.is_some_and(|n| n > 0);
        if d.items.is_some() {
            self.items = d.items;
        }
        let thought = !d.reasoning.is_empty();
        if answer || thought {
            self.chunk_times_ms.push(at_ms);
            self.chunk_tokens += d.tokens.unwrap_or(1);
            self.text.push_str(&d.text);
        }
        if thought {
            self.reasoning.push_str(&d.reasoning);
            self.reasoning_chunk_tokens += d.tokens.unwrap_or(1);
        }
        if answer && self.first_answer_ms.is_none() {
            self.first_answer_ms = Some(at_ms);
        }
        self.tool_output |= d.tool_output;
        self.tool_calls += d.tool_calls;
        for p in d.tool_parts.drain(..) {
            let call = match self.calls.iter_mut().find(|c| c.index == p.index) {
                Some(c) => c,
                None => {
                    self.calls.push(PartialCall {
                        index: p.index,
                        ..Default::default()
                    });
                    self.calls.last_mut().expect("just pushed")
                }
            };
            if let Some(id) = p.id {
                call.id = id;
            }
            if let Some(name) = p.name {
                call.name = name;
            }
            call.arguments.push_str(&p.arguments);
        }
        if let Some(u) = d.usage.take() {
            let cur = &mut self.usage;
            cur.prompt_tokens = u.prompt_tokens.or(cur.prompt_tokens);
            cur.completion_tokens = u.completion_tokens.or(cur.completion_tokens);
            cur.cached_tokens = u.cached_tokens.or(cur.cached_tokens);
            cur.source = u.source.or(cur.source);
            cur.rejected = cur.rejected.or(u.rejected);
            cur.reasoning_tokens = u.reasoning_tokens.or(cur.reasoning_tokens);
        }
        if d.cache_hit.is_some() {
            self.cache_hit = d.cache_hit;
        }
        if d.timings.is_some() {
            self.timings = d.timings.take();
        }
        self.done |= d.done;
        if d.error.is_some() && self.error.is_none() {
            self.error = d.error.take();
            self.error_status = d.error_status;
        }
        d.clear();
    }
}

impl Client {
    pub(super) async fn read_body(
        &self,
        mut rec: Record,
        mut resp: Response,
        deadline: tokio::time::Instant,
    ) -> (Record, Reply) {
        let framing = self.proto.framing(self.opts.stream);
        let mut framer = Framer::new(framing);
        let mut st = Stream::default();
        let proto = &*self.proto;
        let secrets = &self.secrets;
        let mut failure: Option<(Outcome, String)> = None;
        let mut done_at: Option<f64> = None;
        // One cancellation waiter and one idle timer for the whole body, not one of each per
        // chunk (profiled: registering both for every read was ~10 % of the client's cost).
        // The timer is armed at most as late as the body's real limit (the last read plus the
        // idle timeout, or the grace after the end marker, capped by the deadline); when it
        // fires early because reads came since, it is moved on instead of failing the body.
        let cancelled = self.hard.cancelled();
        tokio::pin!(cancelled);
        // One decoded event at a time, its buffers reused.
        let mut scratch = Delta::default();
        let mut last_read = tokio::time::Instant::now();
        let timer = tokio::time::sleep_until((last_read + self.cfg.idle_timeout).min(deadline));
        tokio::pin!(timer);
        loop {
            // After the end marker, only what follows at once is read (a usage event sent just
            // after `[DONE]`); a server that then keeps the connection open is not waited for.
            let due = (last_read
                + match done_at {
                    Some(_) => AFTER_END_MARKER,
                    None => self.cfg.idle_timeout,
                })
            .min(deadline);
            if timer.deadline() > due {
                timer.as_mut().reset(due);
            }
            let next = tokio::select! {
                biased;
                _ = &mut cancelled => None,
                r = resp.chunk() => Some(Ok(r)),
                _ = &mut timer => {
                    if tokio::time::Instant::now() < due {
                        timer.as_mut().reset(due);
                        continue;
                    }
                    Some(Err(()))
                }
            };
            let Some(next) = next else {
                // A hard cancel: what was received is kept (first token, chunk times); a
                // response already whole (after its end marker) is not cancelled.
                if done_at.is_none() {
                    failure = Some((Outcome::Cancelled, "cancelled while in flight".into()));
                }
                rec.done_at_ms = done_at.unwrap_or_else(|| self.ms(Instant::now()));
                break;
            };
            let now = Instant::now();
            last_read = tokio::time::Instant::from_std(now);
            // Bytes are timed by when the kernel received them where the transport knows
            // (the direct client: a busy client does not delay its chunks' times), else now.
            let (next, received) = match next {
                Ok(Ok(Some((bytes, received)))) => (Ok(Ok(Some(bytes))), received),
                Ok(Ok(None)) => (Ok(Ok(None)), None),
                Ok(Err(e)) => (Ok(Err(e)), None),
                Err(()) => (Err(()), None),
            };
            let at_ms = self.ms(received.map_or(now, |at| at.min(now)));
            // Only a body that opens like a JSON document is kept (an event stream opens with
            // `data:`, `event:` or `:`), so streamed replies copy nothing here.
            if let Ok(Ok(Some(bytes))) = &next
                && framing == Framing::Sse
                && st.events == 0
                && st.raw.len() < RAW_BODY_LIMIT
                && (!st.raw.is_empty() || bytes.trim_ascii_start().starts_with(b"{"))
            {
                st.raw.extend_from_slice(bytes);
            }
            let mut on_event = |ev: crate::transport::sse::Event<'_>| -> Result<(), String> {
                let d = &mut scratch;
                // Error texts quote the payload (cut short): scrub secrets from all of it first.
                let quoted = |fallback: String| {
                    let text = String::from_utf8_lossy(ev.data);
                    if secrets.iter().any(|s| text.contains(s.as_str())) {
                        crate::protocol::snippet(scrub(&text, secrets).as_bytes())
                    } else {
                        fallback
                    }
                };
                if let Err(e) = proto.decode(ev.data, d) {
                    d.clear();
                    return Err(quoted(e.0));
                }
                if ev.kind == b"error" && d.error.is_none() {
                    d.error = Some(quoted(crate::protocol::snippet(ev.data)));
                }
                st.take(d, at_ms);
                Ok(())
            };
            match next {
                // Silence or a cut after the end marker: the response was already whole.
                Err(_) | Ok(Err(_)) if done_at.is_some() => {}
                Err(_) => {
                    let what = if tokio::time::Instant::now() >= deadline {
                        "request timeout"
                    } else {
                        "idle timeout"
                    };
                    failure = Some((Outcome::Timeout, format!("{what} while reading the body")));
                }
                Ok(Err(e)) => {
                    let outcome = if st.chunk_times_ms.is_empty() {
                        Outcome::TransportError
                    } else {
                        Outcome::Truncated
                    };
                    failure = Some((outcome, format!("body cut: {e}")));
                }
                Ok(Ok(None)) => {
                    match framer.finish(&mut on_event) {
                        Err(e) => failure = Some((Outcome::StreamError, e)),
                        Ok(_) if framing == Framing::Whole => st.done = true,
                        Ok(_) => {}
                    }
                    // A streamed request answered with one whole JSON body (a server that
                    // ignores `stream: true`, or a 200 carrying an error object): read it as
                    // the non-streamed reply it is.
                    if failure.is_none()
                        && framing == Framing::Sse
                        && st.events == 0
                        && st.raw.trim_ascii_start().starts_with(b"{")
                    {
                        let raw = std::mem::take(&mut st.raw);
                        let mut d = Delta::default();
                        match proto.decode(raw.trim_ascii(), &mut d) {
                            Ok(()) => {
                                d.done = true;
                                st.take(&mut d, at_ms);
                            }
                            Err(e) => failure = Some((Outcome::StreamError, e.0)),
                        }
                    }
                    rec.done_at_ms = at_ms;
                }
                Ok(Ok(Some(bytes))) => {
                    if let Err(e) = framer.push(bytes, &mut on_event) {
                        failure = Some((Outcome::StreamError, e));
                    } else if st.error.is_none() {
                        // `[DONE]` (Ollama's `done: true`, TGI's final event) ends the request
                        // there, even when the server keeps the connection open after it.
                        if st.done && done_at.is_none() {
                            done_at = Some(at_ms);
                        }
                        continue;
                    }
                }
            }
            rec.done_at_ms = done_at.unwrap_or(at_ms);
            break;
        }
        rec.first_token_at_ms = st.chunk_times_ms.first().copied();
        rec.cached_tokens = st.usage.cached_tokens;
        rec.cache_hit = st.cache_hit;
        rec.input_tokens = st.usage.prompt_tokens;
        rec.input_tokens_source = rec.input_tokens.and(st.usage.source);
        rec.rejected_count = st.usage.rejected.map(|r| r.to_string());
        // Token counts, best source first: the server's usage or its own counters; then the
        // tokenizer the user gave; then, for a streamed response, one per content chunk (the
        // server's own tokens, where a built-in BPE is another model's); then the built-in BPE.
        let streamed = framing != Framing::Whole;
        // Embeddings and rerank generate nothing: no output text to count.
        let tokenizer = self
            .tokenizer
            .as_ref()
            .filter(|_| self.proto.generates() && (self.tokenizer_explicit || !streamed));
        (rec.output_tokens, rec.output_tokens_source) =
            match (st.usage.completion_tokens, tokenizer) {
                (Some(n), _) => (n, st.usage.source.or(Some(TokenSource::ServerUsage))),
                (None, Some(t)) => {
                    if streamed {
                        rec.chunk_tokens = Some(st.chunk_tokens);
                    }
                    (
                        count_off_thread(t, format!("{}{}", st.reasoning, st.text)).await,
                        Some(TokenSource::Tokenizer),
                    )
                }
                (None, None) => (st.chunk_tokens, Some(TokenSource::Chunks)),
            };
        // A reasoning reply: when its answer began, and how much of the output was reasoning.
        if !st.reasoning.is_empty() || st.usage.reasoning_tokens.is_some_and(|n| n > 0) {
            rec.first_answer_at_ms = st.first_answer_ms;
            rec.reasoning_tokens = Some(match (st.usage.reasoning_tokens, tokenizer) {
                (Some(n), _) => n,
                (None, Some(t)) => count_off_thread(t, st.reasoning.clone()).await,
                (None, None) => st.reasoning_chunk_tokens,
            });
        }
        rec.server_timings = st.timings;
        rec.tool_calls = (st.tool_calls > 0).then_some(st.tool_calls);
        // Embeddings and rerank: inputs, not output tokens.
        if !self.proto.generates() {
            rec.inputs = self.proto.expected_items(&self.opts);
            rec.output_tokens = 0;
            rec.output_tokens_source = None;
            rec.requested_output_tokens = None;
        }
        let (outcome, error) = if let Some(e) = st.error.take() {
            match st.error_status {
                // An error body in place of the reply, naming its HTTP status: an HTTP error
                // (retried under --retries as that status would be).
                Some(code) if st.chunk_times_ms.is_empty() => {
                    let header = rec.http_status.replace(code).unwrap_or(200);
                    (
                        Outcome::HttpError,
                        Some(format!(
                            "HTTP {code} (in the body of a {header} reply): {e}"
                        )),
                    )
                }
                _ => (
                    Outcome::StreamError,
                    Some(format!("server error event: {e}")),
                ),
            }
        } else if let Some((o, e)) = failure {
            (o, Some(e))
        } else if !st.done && proto.needs_end_marker() {
            (
                Outcome::Truncated,
                Some("stream ended without its end marker".into()),
            )
        } else if let Some(want) = self.proto.expected_items(&self.opts)
            && st.items != Some(want)
        {
            (
                Outcome::StreamError,
                Some(format!(
                    "the reply carried {} results for {want} inputs",
                    st.items.unwrap_or(0)
                )),
            )
        } else if st.text.is_empty()
            && !st.tool_output
            && st.reasoning.is_empty()
            && st.items.is_none()
        {
            (Outcome::Empty, Some("response carried no output".into()))
        } else {
            (Outcome::Succeeded, None)
        };
        rec.outcome = Some(outcome);
        rec.error = error;
        rec.chunk_times_ms = st.chunk_times_ms;
        let tool_calls = st
            .calls
            .into_iter()
            .map(|c| ToolCall {
                id: c.id,
                kind: "function".into(),
                function: FunctionCall {
                    name: c.name,
                    arguments: c.arguments,
                },
            })
            .collect();
        (
            rec,
            Reply {
                text: st.text,
                tool_calls,
            },
        )
    }
}

/// Counts tokens on a blocking thread: encoding is CPU work, and on a runtime worker it would
/// delay reading other requests' chunks (and so their timings).
pub(super) async fn count_off_thread(
    t: &Arc<dyn crate::measure::tokenize::Tokenizer>,
    text: String,
) -> u64 {
    let t = t.clone();
    tokio::task::spawn_blocking(move || t.count(&text))
        .await
        .unwrap_or(0)
}
