//! Executes one [`RequestSpec`] over HTTP and produces one [`Record`].
//!
//! The client owns the clock readings: `sent_at` just before the request is handed to the
//! connection pool, the arrival time of every read that carried generated text, and `done_at`
//! when the body ended or failed. Decoding is the protocol's job; statistics are not done here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::header::{CONNECTION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

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
    /// Retries after a retryable failure (0: none, the default).
    pub retries: u32,
    /// Longest wait before a retry (a server's Retry-After is capped to it).
    pub retry_max_wait: Duration,
    /// Header carrying each attempt's id, and the id's prefix (the run id).
    pub request_id: Option<(String, String)>,
    /// Reuse connections between requests (`--no-keepalive` turns it off).
    pub keepalive: bool,
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
            retries: 0,
            retry_max_wait: Duration::from_secs(30),
            request_id: None,
            keepalive: true,
        }
    }
}

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
    tokenizer: Option<Arc<dyn crate::tokenize::Tokenizer>>,
    tokenizer_explicit: bool,
    /// Values of sensitive headers, removed from every error text the client records.
    secrets: Vec<String>,
    /// `--request-id-header`: its name and the next attempt's number.
    request_id: Option<(HeaderName, std::sync::atomic::AtomicU64)>,
}

/// Whether a header's value is a credential (never shown, and scrubbed from error texts).
pub fn is_sensitive_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
    ) || [
        "key",
        "token",
        "secret",
        "auth",
        "password",
        "session",
        "signature",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// The secret strings in headers: sensitive header values, and the credential after an
/// authorization scheme (`Bearer sk-...` gives both the whole value and `sk-...`).
pub fn secrets_of(headers: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in headers {
        if !is_sensitive_header(k) {
            continue;
        }
        let v = v.trim();
        if v.len() >= 4 {
            out.push(v.to_string());
        }
        if let Some((_, cred)) = v.split_once(' ')
            && cred.trim().len() >= 4
        {
            out.push(cred.trim().to_string());
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// Replaces every secret in `text` by `<redacted>`.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut t = text.to_string();
    for s in secrets {
        if t.contains(s.as_str()) {
            t = t.replace(s.as_str(), "<redacted>");
        }
    }
    t
}

/// Whether a failed attempt may be sent again under `--retries`: HTTP 408, 429, 500, 502, 503,
/// 504, and transport errors (nothing was received). Timeouts, in-band errors and cut streams
/// are not retried: the server may have done (or still be doing) the work.
pub fn retryable(rec: &Record) -> bool {
    match rec.outcome {
        Some(Outcome::HttpError) => {
            matches!(rec.http_status, Some(408 | 429 | 500 | 502 | 503 | 504))
        }
        Some(Outcome::TransportError) => true,
        _ => false,
    }
}

/// Wait before retry number `attempt` (1-based) when the server gave no Retry-After:
/// 100 ms doubled per attempt.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.saturating_sub(1).min(16)))
}

tokio::task_local! {
    /// Set when the request in scope made the connector open a new connection.
    static OPENED: Arc<AtomicBool>;
}

/// A connector layer that marks, in the calling request's [`OPENED`] flag, that a connection
/// was opened for it. The pool hands out an idle connection without calling the connector, so
/// an unmarked request went out on a reused connection.
#[derive(Clone)]
struct MarkConnects;

impl<S> tower_layer::Layer<S> for MarkConnects {
    type Service = MarkConnect<S>;
    fn layer(&self, inner: S) -> MarkConnect<S> {
        MarkConnect(inner)
    }
}

#[derive(Clone)]
struct MarkConnect<S>(S);

impl<S: tower_service::Service<R>, R> tower_service::Service<R> for MarkConnect<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;
    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }
    fn call(&mut self, req: R) -> S::Future {
        let _ = OPENED.try_with(|f| f.store(true, Ordering::Relaxed));
        self.0.call(req)
    }
}

/// Builds the HTTP client all requests share (`pooled: false`: one that never keeps a
/// connection for a later request).
pub fn http_client(cfg: &ClientConfig) -> anyhow::Result<reqwest::Client> {
    build_http_client(cfg, cfg.keepalive)
}

fn build_http_client(cfg: &ClientConfig, pooled: bool) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(cfg.connect_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .connector_layer(MarkConnects)
        .danger_accept_invalid_certs(cfg.insecure);
    if !pooled {
        b = b.pool_max_idle_per_host(0);
    }
    if !cfg.use_env_proxy {
        b = b.no_proxy();
    }
    if let Some(path) = &cfg.ca_cert {
        let pem = std::fs::read(path)
            .with_context(|| format!("--ca-cert: cannot read {}", path.display()))?;
        let not_pem = || format!("--ca-cert: {} holds no PEM certificate", path.display());
        // A file without a certificate block would otherwise be accepted and trust nothing.
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            anyhow::bail!(not_pem());
        }
        let certs = reqwest::Certificate::from_pem_bundle(&pem).with_context(not_pem)?;
        if certs.is_empty() {
            anyhow::bail!(not_pem());
        }
        for cert in certs {
            b = b.add_root_certificate(cert);
        }
    }
    b.build().context("cannot build the HTTP client")
}

/// Whether a failed send went out on a connection the pool had kept (`opened`: the connector
/// was called for it) and failed before any response arrived without being a timeout: the
/// failure of a stale kept-alive connection, which the server closed before reading the request.
fn stale_connection(e: &reqwest::Error, opened: bool) -> bool {
    !opened && !e.is_timeout() && !e.is_connect() && !e.is_status() && !e.is_builder()
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
        let opened = Arc::new(AtomicBool::new(false));
        let send = self
            .http
            .post(&url)
            .headers(headers.clone())
            .body(body.clone())
            .send();
        let mut first = tokio::time::timeout_at(deadline, OPENED.scope(opened.clone(), send)).await;
        // A kept-alive connection the server had already closed (llama.cpp's server closes
        // each one just after its response, while advertising keep-alive): the request failed
        // on a reused connection before any byte of a response came back, so the server never
        // saw it. Send it again at once on a connection of its own; any other failure stays one.
        if let Ok(Err(e)) = &first
            && stale_connection(e, opened.load(Ordering::Relaxed))
        {
            let sent = Instant::now();
            rec.sent_at_ms = Some(self.ms(sent));
            rec.stale_connection_resent = true;
            let send = self.fresh.post(&url).headers(headers).body(body).send();
            first = tokio::time::timeout_at(deadline, send).await;
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
            Ok(Err(e)) => {
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
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| Duration::from_secs_f64(s.min(3600.0)));
            return (
                self.http_error(rec, resp, deadline).await,
                String::new(),
                retry_after,
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
        loop {
            let idle = tokio::time::Instant::now() + self.cfg.idle_timeout;
            let next = tokio::time::timeout_at(idle.min(deadline), resp.chunk()).await;
            let now = Instant::now();
            let at_ms = self.ms(now);
            let mut on_event = |ev: crate::sse::Event<'_>| -> Result<(), String> {
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
