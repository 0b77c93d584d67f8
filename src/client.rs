//! Executes one [`RequestSpec`] over HTTP and produces one [`Record`].
//!
//! The client owns the clock readings: `sent_at` just before the request is handed to the
//! connection pool, the arrival time of every read that carried generated text, and `done_at`
//! when the body ended or failed. Decoding is the protocol's job; statistics are not done here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::protocol::{Delta, Protocol, RequestOptions, Usage};
use crate::record::{Outcome, Record, TokenSource};
use crate::sse::{Framer, Framing};
use crate::workload::RequestSpec;

/// Limits and transport settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL without a trailing slash (`http://host:port`), or a full endpoint URL.
    pub base_url: String,
    /// Whether `base_url` is already the endpoint (no path is appended).
    pub url_is_endpoint: bool,
    /// Extra headers, the API key's included. Never written anywhere.
    pub headers: Vec<(String, String)>,
    /// TCP (and TLS) connect timeout.
    pub connect_timeout: Duration,
    /// Total time allowed for one request.
    pub request_timeout: Duration,
    /// Longest silence allowed between two reads of the body.
    pub idle_timeout: Duration,
    /// Skip TLS certificate verification.
    pub insecure: bool,
    /// Extra CA certificate (PEM) to trust.
    pub ca_cert: Option<std::path::PathBuf>,
    /// Honour HTTP(S)_PROXY and friends.
    pub use_env_proxy: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            url_is_endpoint: false,
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(300),
            insecure: false,
            ca_cert: None,
            use_env_proxy: false,
        }
    }
}

/// Sends requests of one protocol to one target.
pub struct Client {
    http: reqwest::Client,
    headers: HeaderMap,
    cfg: ClientConfig,
    proto: Arc<dyn Protocol>,
    opts: RequestOptions,
    epoch: Instant,
    tokenizer: Option<Arc<dyn crate::tokenize::Tokenizer>>,
    tokenizer_explicit: bool,
}

/// Builds the HTTP client all requests share.
pub fn http_client(cfg: &ClientConfig) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(cfg.connect_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .danger_accept_invalid_certs(cfg.insecure);
    if !cfg.use_env_proxy {
        b = b.no_proxy();
    }
    if let Some(path) = &cfg.ca_cert {
        let pem = std::fs::read(path)
            .with_context(|| format!("--ca-cert: cannot read {}", path.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("--ca-cert: {} is not a PEM certificate", path.display()))?;
        b = b.add_root_certificate(cert);
    }
    b.build().context("cannot build the HTTP client")
}

/// The error chain of a transport failure, outermost first, without duplicates.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
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
    timings: Option<crate::protocol::ServerTimings>,
}

impl Stream {
    fn take(&mut self, d: Delta, at_ms: f64) {
        if !d.text.is_empty() {
            self.chunk_times_ms.push(at_ms);
            self.chunk_tokens += d.tokens.unwrap_or(1);
            self.text.push_str(&d.text);
        }
        if let Some(u) = d.usage {
            let cur = &mut self.usage;
            cur.prompt_tokens = u.prompt_tokens.or(cur.prompt_tokens);
            cur.completion_tokens = u.completion_tokens.or(cur.completion_tokens);
            cur.cached_tokens = u.cached_tokens.or(cur.cached_tokens);
            cur.source = u.source.or(cur.source);
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
        Ok(Self {
            http: http_client(&cfg)?,
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
        t: Option<Arc<dyn crate::tokenize::Tokenizer>>,
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

    /// Like [`Client::execute`], and also hands back the generated text (reasoning included;
    /// empty when the request failed before any output). Multi-turn conversations send it back
    /// in the next turn; it is never written to records.
    pub async fn execute_with_reply(
        &self,
        spec: &RequestSpec,
        scheduled_at: Instant,
    ) -> (Record, String) {
        let call = self.proto.build(spec, &self.opts);
        let url = if self.cfg.url_is_endpoint {
            self.cfg.base_url.clone()
        } else {
            format!("{}{}", self.cfg.base_url, call.path)
        };
        let body = serde_json::to_vec(&call.body).expect("JSON body");
        let mut rec = Record {
            scheduled_at_ms: self.ms(scheduled_at),
            requested_output_tokens: spec.max_tokens,
            attempt: 1,
            ..Default::default()
        };
        let sent = Instant::now();
        rec.sent_at_ms = Some(self.ms(sent));
        let deadline = tokio::time::Instant::from_std(sent + self.cfg.request_timeout);
        let send = self
            .http
            .post(&url)
            .headers(self.headers.clone())
            .body(body)
            .send();
        let resp = match tokio::time::timeout_at(deadline, send).await {
            Err(_) => {
                return (
                    self.fail(
                        rec,
                        Outcome::Timeout,
                        "no response before the request timeout",
                    ),
                    String::new(),
                );
            }
            Ok(Err(e)) => {
                let outcome = if e.is_timeout() {
                    Outcome::Timeout
                } else {
                    Outcome::TransportError
                };
                return (self.fail(rec, outcome, &describe(&e)), String::new());
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        rec.http_status = Some(status.as_u16());
        if !status.is_success() {
            return (self.http_error(rec, resp, deadline).await, String::new());
        }
        let (mut rec, text) = self.read_body(rec, resp, deadline).await;
        // Prompt tokens the server did not report: the local tokenizer, on the prompt as sent.
        if rec.input_tokens.is_none()
            && let Some(t) = &self.tokenizer
        {
            rec.input_tokens = Some(count_off_thread(t, spec.prompt.text()).await);
            rec.input_tokens_source = Some(TokenSource::Tokenizer);
        }
        (rec, text)
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
        let msg = format!("HTTP {status}: {}", crate::protocol::snippet(&body));
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
        let mut failure: Option<(Outcome, String)> = None;
        loop {
            let idle = tokio::time::Instant::now() + self.cfg.idle_timeout;
            let next = tokio::time::timeout_at(idle.min(deadline), resp.chunk()).await;
            let now = Instant::now();
            let at_ms = self.ms(now);
            let mut on_event = |ev: crate::sse::Event<'_>| -> Result<(), String> {
                let mut d = Delta::default();
                proto.decode(ev.data, &mut d).map_err(|e| e.0)?;
                if ev.kind == b"error" && d.error.is_none() {
                    d.error = Some(crate::protocol::snippet(ev.data));
                }
                st.take(d, at_ms);
                Ok(())
            };
            match next {
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
                    rec.done_at_ms = at_ms;
                }
                Ok(Ok(Some(bytes))) => {
                    if let Err(e) = framer.push(&bytes, &mut on_event) {
                        failure = Some((Outcome::StreamError, e));
                    } else if st.error.is_none() {
                        continue;
                    }
                }
            }
            rec.done_at_ms = at_ms;
            break;
        }
        rec.first_token_at_ms = st.chunk_times_ms.first().copied();
        rec.cached_tokens = st.usage.cached_tokens;
        rec.cache_hit = st.cache_hit;
        rec.input_tokens = st.usage.prompt_tokens;
        rec.input_tokens_source = rec.input_tokens.and(st.usage.source);
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
                    count_off_thread(t, st.text.clone()).await,
                    Some(TokenSource::Tokenizer),
                ),
                (None, None) => (st.chunk_tokens, Some(TokenSource::Chunks)),
            };
        rec.server_timings = st.timings;
        let (outcome, error) = if let Some(e) = st.error.take() {
            (
                Outcome::StreamError,
                Some(format!("server error event: {e}")),
            )
        } else if let Some((o, e)) = failure {
            (o, Some(e))
        } else if !st.done && proto.needs_end_marker() {
            (
                Outcome::Truncated,
                Some("stream ended without its end marker".into()),
            )
        } else if st.text.is_empty() {
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
async fn count_off_thread(t: &Arc<dyn crate::tokenize::Tokenizer>, text: String) -> u64 {
    let t = t.clone();
    tokio::task::spawn_blocking(move || t.count(&text))
        .await
        .unwrap_or(0)
}
