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

use crate::measure::record::{ChunkClock, Outcome, Record, TokenSource};
use crate::protocol::{Protocol, RequestOptions};
pub use crate::transport::config::ClientConfig;
use crate::transport::http::Reuse;
pub use crate::transport::http::{describe, http_client};
pub use crate::transport::policy::is_sensitive_header;
use crate::transport::policy::{backoff, retry_after, retryable, scrub, secrets_of};
use crate::workload::{Reply, RequestSpec};
use tokio_util::sync::CancellationToken;

mod body;
mod send;
use body::count_off_thread;
use send::{Http, Response};

/// Sends requests of one protocol to one target.
pub struct Client {
    http: Http,
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
    /// The hard cancel (a second Ctrl-C): ends requests in flight as `cancelled`, keeping
    /// what they had received.
    hard: CancellationToken,
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
            http: Http::new(&cfg)?,
            secrets: secrets_of(&cfg.headers),
            headers,
            cfg,
            proto,
            opts,
            epoch,
            tokenizer: None,
            tokenizer_explicit: false,
            hard: CancellationToken::new(),
        })
    }

    /// Requests in flight end as `cancelled` when `hard` is cancelled, with the first token
    /// and chunk times they had received.
    pub fn with_cancel(mut self, hard: CancellationToken) -> Self {
        self.hard = hard;
        self
    }

    /// `f`'s output, or `None` when the hard cancel comes first.
    async fn unless_cancelled<F: std::future::Future>(&self, f: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            _ = self.hard.cancelled() => None,
            out = f => Some(out),
        }
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

    /// How chunk arrivals are timed.
    pub fn chunk_clock(&self) -> ChunkClock {
        if self.http.kernel_clock() {
            ChunkClock::Kernel
        } else {
            ChunkClock::Read
        }
    }

    /// Milliseconds since the run's time zero.
    pub fn ms(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.epoch).as_nanos() as f64 / 1e6
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

    /// Like [`Client::execute`], and also hands back the answer: its text (without reasoning,
    /// as OpenAI's and vLLM's docs tell clients) and its tool calls (empty when the request
    /// failed before any output).
    /// Multi-turn conversations send it back in the next turn; it is never written to records.
    pub async fn execute_with_reply(
        &self,
        spec: &RequestSpec,
        scheduled_at: Instant,
    ) -> (Record, Reply) {
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
            let sent = rec.sent_at_ms;
            on_retried(rec);
            attempt += 1;
            if self
                .unless_cancelled(tokio::time::sleep(wait))
                .await
                .is_none()
            {
                // Cancelled while waiting to retry: the request ends here, not sent again.
                let mut rec = self.fail(
                    Record {
                        scheduled_at_ms: self.ms(scheduled_at),
                        requested_output_tokens: spec.max_tokens,
                        ..Default::default()
                    },
                    Outcome::Cancelled,
                    "cancelled while waiting to retry",
                );
                rec.attempt = attempt;
                rec.first_sent_at_ms = first_sent.or(sent);
                return rec;
            }
        }
    }

    /// One attempt: the record, the reply text and the server's Retry-After, if any.
    async fn attempt(
        &self,
        spec: &RequestSpec,
        scheduled_at: Instant,
    ) -> (Record, Reply, Option<Duration>) {
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
    ) -> (Record, Reply, Option<Duration>) {
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
        let cancelled = |c: &Self, rec| {
            (
                c.fail(rec, Outcome::Cancelled, "cancelled while in flight"),
                Reply::default(),
                None,
            )
        };
        let Some(mut first) = self
            .unless_cancelled(tokio::time::timeout_at(
                deadline,
                self.http.send(&url, &headers, &body, false),
            ))
            .await
        else {
            return cancelled(self, rec);
        };
        // A kept-alive connection the server had already closed (llama.cpp's server closes
        // each one just after its response, while advertising keep-alive): the request failed
        // on a reused connection before any byte of a response came back, so the server never
        // saw it. Send it again at once on a connection of its own; any other failure stays one.
        if let Ok(Err((_, Reuse::Stale))) = &first {
            let sent = Instant::now();
            rec.sent_at_ms = Some(self.ms(sent));
            rec.stale_connection_resent = true;
            let send = self.http.send(&url, &headers, &body, true);
            let Some(again) = self
                .unless_cancelled(tokio::time::timeout_at(deadline, send))
                .await
            else {
                return cancelled(self, rec);
            };
            first = again.map(|r| r.map_err(|(e, _)| (e, Reuse::Fresh)));
        }
        let resp = match first {
            Err(_) => {
                return (
                    self.fail(
                        rec,
                        Outcome::Timeout,
                        "no response before the request timeout",
                    ),
                    Reply::default(),
                    None,
                );
            }
            Ok(Err((e, _))) => {
                let outcome = if e.timeout {
                    Outcome::Timeout
                } else {
                    Outcome::TransportError
                };
                return (self.fail(rec, outcome, &e.message), Reply::default(), None);
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        rec.http_status = Some(status.as_u16());
        if !status.is_success() {
            let retry_after = resp
                .header("retry-after")
                .and_then(|v| retry_after(v, chrono::Utc::now()));
            return (
                self.http_error(rec, resp, deadline).await,
                Reply::default(),
                retry_after,
            );
        }
        // llmbench asks for no encoding; a compressed body would read as garbage and end as
        // "no end marker". Say what happened instead.
        if let Some(enc) = resp
            .header("content-encoding")
            .filter(|v| !v.trim().eq_ignore_ascii_case("identity"))
        {
            let msg = format!(
                "the server sent a {enc}-encoded body, which was not requested (no Accept-Encoding was sent)"
            );
            return (
                self.fail(rec, Outcome::StreamError, &msg),
                Reply::default(),
                None,
            );
        }
        let (mut rec, text) = self.read_body(rec, resp, deadline).await;
        // Prompt tokens the server did not report: the local tokenizer, on the prompt as sent.
        if rec.input_tokens.is_none()
            && let Some(t) = &self.tokenizer
        {
            rec.input_tokens = Some(count_off_thread(t, spec.prompt.text()).await);
            // A chat server adds its template's tokens (system prompt, role markers) that
            // the messages' text does not carry: say the count is of the text only.
            rec.input_tokens_source = Some(if self.proto.server_templates_prompt() {
                TokenSource::TokenizerTextOnly
            } else {
                TokenSource::Tokenizer
            });
        }
        (rec, text, None)
    }

    async fn http_error(
        &self,
        rec: Record,
        mut resp: Response,
        deadline: tokio::time::Instant,
    ) -> Record {
        let status = resp.status();
        let mut body = Vec::new();
        while body.len() < 4096 {
            match tokio::time::timeout_at(deadline, resp.chunk()).await {
                Ok(Ok(Some((b, _)))) => body.extend_from_slice(b),
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

    fn fail(&self, mut rec: Record, outcome: Outcome, msg: &str) -> Record {
        rec.done_at_ms = self.ms(Instant::now());
        rec.outcome = Some(outcome);
        rec.error = Some(msg.to_string());
        rec.output_tokens_source = Some(TokenSource::Chunks);
        rec
    }
}
