//! Executes one [`RequestSpec`] over HTTP and produces one [`Record`].
//!
//! The client owns the clock readings: `sent_at` just before the request is handed to the
//! connection pool, the arrival time of every read that carried generated text, and `done_at`
//! when the body ended or failed. Decoding is the protocol's job; statistics are not done here.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;

use reqwest::header::{CONNECTION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::measure::record::{Outcome, Record, TokenSource};
use crate::protocol::{Delta, Protocol, RequestOptions, Usage};
pub use crate::transport::config::ClientConfig;
use crate::transport::http::{Reuse, build_http_client, send_noting_reuse};
pub use crate::transport::http::{describe, http_client};
pub use crate::transport::policy::is_sensitive_header;
use crate::transport::policy::{backoff, retry_after, retryable, scrub, secrets_of};
use crate::transport::sse::{Framer, Framing};
use crate::workload::RequestSpec;

/// Sends requests of one protocol to one target.
pub struct Client {
    http: reqwest::Client,
    /// A client that never reuses a connection: resends after a stale kept-alive connection.
    fresh: reqwest::Client,
    headers: HeaderMap,
    cfg: ClientConfig,
    proto: Arc<dyn Protocol>,
    opts: RequestOptions,
    epoch: Instant,
    tokenizer: Option<Arc<dyn crate::measure::tokenize::Tokenizer>>,
    tokenizer_explicit: bool,
    /// Values of sensitive headers, removed from every error text the client records.
    secrets: Vec<String>,
    /// `--request-id-header`: its name and the next attempt's number.
    request_id: Option<(HeaderName, std::sync::atomic::AtomicU64)>,
}

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

/// How long the body is read after its end marker: what the server sends at once with it.
const AFTER_END_MARKER: Duration = Duration::from_millis(5);

/// Most bytes of an event-less body kept to read it as one JSON document.
const RAW_BODY_LIMIT: usize = 1 << 20;

impl Stream {
    fn take(&mut self, d: Delta, at_ms: f64) {
        self.events += 1;
        let answer = !d.text.is_empty() || d.tool_output;
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
        if let Some(u) = d.usage {
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
            self.timings = d.timings;
        }
        self.done |= d.done;
        if d.error.is_some() && self.error.is_none() {
            self.error = d.error;
            self.error_status = d.error_status;
        }
    }
}

impl Client {
    /// A client for one target; `epoch` is the run's time zero.
    pub fn new(
        cfg: ClientConfig,
        proto: Arc<dyn Protocol>,
        opts: RequestOptions,
        epoch: Instant,
    ) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .with_context(|| format!("--header: invalid header name {k:?}"))?;
            let mut value = HeaderValue::from_str(v)
                .with_context(|| format!("--header: invalid value for {k}"))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if !cfg.keepalive {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        let request_id = match &cfg.request_id {
            Some((name, _)) => Some((
                HeaderName::from_bytes(name.as_bytes()).with_context(|| {
                    format!("--request-id-header: invalid header name {name:?}")
                })?,
                std::sync::atomic::AtomicU64::new(0),
            )),
            None => None,
        };
        Ok(Self {
            request_id,
            http: http_client(&cfg)?,
            fresh: build_http_client(&cfg, false)?,
            secrets: secrets_of(&cfg.headers),
            headers,
            cfg,
            proto,
            opts,
            epoch,
            tokenizer: None,
            tokenizer_explicit: false,
        })
    }

    /// Counts tokens the server does not report with this tokenizer. `explicit`: the user
    /// chose it, so it also beats chunk counting on streamed responses; the built-in default
    /// is used only where chunks cannot count (a response that was not streamed).
    pub fn with_tokenizer(
        mut self,
        t: Option<Arc<dyn crate::measure::tokenize::Tokenizer>>,
        explicit: bool,
    ) -> Self {
        self.tokenizer = t;
        self.tokenizer_explicit = explicit;
        self
    }

    /// Milliseconds since the run's time zero.
    pub fn ms(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.epoch).as_nanos() as f64 / 1e6
    }

    /// The record of a request a hard cancel ended while it was in flight.
    pub fn cancelled_in_flight(&self, spec: &RequestSpec, scheduled: Instant) -> Record {
        Record {
            outcome: Some(Outcome::Cancelled),
            scheduled_at_ms: self.ms(scheduled),
            sent_at_ms: Some(self.ms(scheduled)),
            done_at_ms: self.ms(Instant::now()),
            requested_output_tokens: spec.max_tokens,
            error: Some("cancelled while in flight".into()),
            attempt: 1,
            ..Default::default()
        }
    }

    /// The protocol in use.
    pub fn protocol(&self) -> &dyn Protocol {
        &*self.proto
    }

    /// The run's time zero.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// The transport settings.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// The request options (model, streaming).
    pub fn options(&self) -> &RequestOptions {
        &self.opts
    }

    /// Sends one request and measures it. Never fails: every failure is an outcome.
    pub async fn execute(&self, spec: &RequestSpec, scheduled_at: Instant) -> Record {
        self.execute_with_reply(spec, scheduled_at).await.0
    }

    /// Like [`Client::execute`], and also hands back the answer text (without reasoning, as
    /// OpenAI's and vLLM's docs tell clients; empty when the request failed before any output).
    /// Multi-turn conversations send it back in the next turn; it is never written to records.
    pub async fn execute_with_reply(
        &self,
        spec: &RequestSpec,
        scheduled_at: Instant,
    ) -> (Record, String) {
        let (rec, reply, _) = self.attempt(spec, scheduled_at).await;
        (rec, reply)
    }

    /// Sends one request, retrying retryable failures up to `--retries` times. Each attempt
    /// that is retried goes to `on_retried` (marked `retried`, with its attempt number) the
    /// moment it fails, so no attempt is hidden; the returned record is the last attempt and
    /// carries the request's outcome, its `attempt` number and the first attempt's send time.
    pub async fn execute_retrying(
        &self,
        spec: &RequestSpec,
        scheduled_at: Instant,
        on_retried: &mut (dyn FnMut(Record) + Send),
    ) -> Record {
        let mut first_sent = None;
        let mut attempt = 1;
        loop {
            let (mut rec, _, retry_after) = self.attempt(spec, scheduled_at).await;
            rec.attempt = attempt;
            if attempt > 1 {
                rec.first_sent_at_ms = first_sent;
            } else {
                first_sent = rec.sent_at_ms;
            }
            if attempt > self.cfg.retries || !retryable(&rec) {
                return rec;
            }
            let wait = retry_after
                .unwrap_or_else(|| backoff(attempt))
                .min(self.cfg.retry_max_wait);
            rec.retried = true;
            on_retried(rec);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One attempt: the record, the reply text and the server's Retry-After, if any.
    async fn attempt(
        &self,
        spec: &RequestSpec,
        scheduled_at: Instant,
    ) -> (Record, String, Option<Duration>) {
        let (mut rec, reply, retry_after) = self.attempt_raw(spec, scheduled_at).await;
        if let Some(e) = rec.error.take() {
            rec.error = Some(scrub(&e, &self.secrets));
        }
        (rec, reply, retry_after)
    }

    async fn attempt_raw(
        &self,
        spec: &RequestSpec,
        scheduled_at: Instant,
    ) -> (Record, String, Option<Duration>) {
        let call = self.proto.build(spec, &self.opts);
        let url = if self.cfg.url_is_endpoint {
            self.cfg.with_query(&self.cfg.base_url)
        } else {
            self.cfg
                .with_query(&format!("{}{}", self.cfg.base_url, call.path))
        };
        let body = serde_json::to_vec(&call.body).expect("JSON body");
        let mut rec = Record {
            scheduled_at_ms: self.ms(scheduled_at),
            requested_output_tokens: spec.max_tokens,
            attempt: 1,
            ..Default::default()
        };
        let mut headers = self.headers.clone();
        if let (Some((name, n)), Some((_, prefix))) = (&self.request_id, &self.cfg.request_id) {
            let id = format!("{prefix}-{}", n.fetch_add(1, Ordering::Relaxed));
            if let Ok(v) = HeaderValue::from_str(&id) {
                headers.insert(name.clone(), v);
            }
            rec.request_id = Some(id);
        }
        let body = bytes::Bytes::from(body);
        let sent = Instant::now();
        rec.sent_at_ms = Some(self.ms(sent));
        let deadline = tokio::time::Instant::from_std(sent + self.cfg.request_timeout);
        let send = self
            .http
            .post(&url)
            .headers(headers.clone())
            .body(body.clone());
        let mut first = tokio::time::timeout_at(deadline, send_noting_reuse(send)).await;
        // A kept-alive connection the server had already closed (llama.cpp's server closes
        // each one just after its response, while advertising keep-alive): the request failed
        // on a reused connection before any byte of a response came back, so the server never
        // saw it. Send it again at once on a connection of its own; any other failure stays one.
        if let Ok(Err((_, Reuse::Stale))) = &first {
            let sent = Instant::now();
            rec.sent_at_ms = Some(self.ms(sent));
            rec.stale_connection_resent = true;
            let send = self.fresh.post(&url).headers(headers).body(body).send();
            first = tokio::time::timeout_at(deadline, send)
                .await
                .map(|r| r.map_err(|e| (e, Reuse::Fresh)));
        }
        let resp = match first {
            Err(_) => {
                return (
                    self.fail(
                        rec,
                        Outcome::Timeout,
                        "no response before the request timeout",
                    ),
                    String::new(),
                    None,
                );
            }
            Ok(Err((e, _))) => {
                let outcome = if e.is_timeout() {
                    Outcome::Timeout
                } else {
                    Outcome::TransportError
                };
                return (self.fail(rec, outcome, &describe(&e)), String::new(), None);
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        rec.http_status = Some(status.as_u16());
        if !status.is_success() {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after(v, chrono::Utc::now()));
            return (
                self.http_error(rec, resp, deadline).await,
                String::new(),
                retry_after,
            );
        }
        // llmbench asks for no encoding; a compressed body would read as garbage and end as
        // "no end marker". Say what happened instead.
        if let Some(enc) = resp
            .headers()
            .get(reqwest::header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.trim().eq_ignore_ascii_case("identity"))
        {
            let msg = format!(
                "the server sent a {enc}-encoded body, which was not requested (no Accept-Encoding was sent)"
            );
            return (
                self.fail(rec, Outcome::StreamError, &msg),
                String::new(),
                None,
            );
        }
        let (mut rec, text) = self.read_body(rec, resp, deadline).await;
        // Prompt tokens the server did not report: the local tokenizer, on the prompt as sent.
        if rec.input_tokens.is_none()
            && let Some(t) = &self.tokenizer
        {
            rec.input_tokens = Some(count_off_thread(t, spec.prompt.text()).await);
            rec.input_tokens_source = Some(TokenSource::Tokenizer);
        }
        (rec, text, None)
    }

    async fn http_error(
        &self,
        rec: Record,
        mut resp: reqwest::Response,
        deadline: tokio::time::Instant,
    ) -> Record {
        let status = resp.status();
        let mut body = Vec::new();
        while body.len() < 4096 {
            match tokio::time::timeout_at(deadline, resp.chunk()).await {
                Ok(Ok(Some(b))) => body.extend_from_slice(&b),
                _ => break,
            }
        }
        // Secrets are scrubbed from the whole body before it is cut, so a cut never leaves
        // part of one behind.
        let body = scrub(&String::from_utf8_lossy(&body), &self.secrets);
        let msg = format!(
            "HTTP {status}: {}",
            crate::protocol::snippet(body.as_bytes())
        );
        self.fail(rec, Outcome::HttpError, msg.trim_end_matches(": "))
    }

    async fn read_body(
        &self,
        mut rec: Record,
        mut resp: reqwest::Response,
        deadline: tokio::time::Instant,
    ) -> (Record, String) {
        let framing = self.proto.framing(self.opts.stream);
        let mut framer = Framer::new(framing);
        let mut st = Stream::default();
        let proto = &*self.proto;
        let secrets = &self.secrets;
        let mut failure: Option<(Outcome, String)> = None;
        let mut done_at: Option<f64> = None;
        loop {
            // After the end marker, only what follows at once is read (a usage event sent just
            // after `[DONE]`); a server that then keeps the connection open is not waited for.
            let idle = tokio::time::Instant::now()
                + match done_at {
                    Some(_) => AFTER_END_MARKER,
                    None => self.cfg.idle_timeout,
                };
            let next = tokio::time::timeout_at(idle.min(deadline), resp.chunk()).await;
            let now = Instant::now();
            let at_ms = self.ms(now);
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
                let mut d = Delta::default();
                // Error texts quote the payload (cut short): scrub secrets from all of it first.
                let quoted = |fallback: String| {
                    let text = String::from_utf8_lossy(ev.data);
                    if secrets.iter().any(|s| text.contains(s.as_str())) {
                        crate::protocol::snippet(scrub(&text, secrets).as_bytes())
                    } else {
                        fallback
                    }
                };
                proto
                    .decode(ev.data, &mut d)
                    .map_err(|e| quoted(e.0.clone()))?;
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
                    failure = Some((outcome, format!("body cut: {}", describe(&e))));
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
                                st.take(d, at_ms);
                            }
                            Err(e) => failure = Some((Outcome::StreamError, e.0)),
                        }
                    }
                    rec.done_at_ms = at_ms;
                }
                Ok(Ok(Some(bytes))) => {
                    if let Err(e) = framer.push(&bytes, &mut on_event) {
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
        let tokenizer = self
            .tokenizer
            .as_ref()
            .filter(|_| self.tokenizer_explicit || !streamed);
        (rec.output_tokens, rec.output_tokens_source) =
            match (st.usage.completion_tokens, tokenizer) {
                (Some(n), _) => (n, st.usage.source.or(Some(TokenSource::ServerUsage))),
                (None, Some(t)) => (
                    count_off_thread(t, format!("{}{}", st.reasoning, st.text)).await,
                    Some(TokenSource::Tokenizer),
                ),
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
        } else if st.text.is_empty() && !st.tool_output && st.reasoning.is_empty() {
            (Outcome::Empty, Some("response carried no output".into()))
        } else {
            (Outcome::Succeeded, None)
        };
        rec.outcome = Some(outcome);
        rec.error = error;
        rec.chunk_times_ms = st.chunk_times_ms;
        (rec, st.text)
    }

    fn fail(&self, mut rec: Record, outcome: Outcome, msg: &str) -> Record {
        rec.done_at_ms = self.ms(Instant::now());
        rec.outcome = Some(outcome);
        rec.error = Some(msg.to_string());
        rec.output_tokens_source = Some(TokenSource::Chunks);
        rec
    }
}

/// Counts tokens on a blocking thread: encoding is CPU work, and on a runtime worker it would
/// delay reading other requests' chunks (and so their timings).
async fn count_off_thread(t: &Arc<dyn crate::measure::tokenize::Tokenizer>, text: String) -> u64 {
    let t = t.clone();
    tokio::task::spawn_blocking(move || t.count(&text))
        .await
        .unwrap_or(0)
}
