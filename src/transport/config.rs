//! What the transport needs to know: the target, its headers, limits, TLS and keep-alive.

use std::time::Duration;

/// Limits and transport settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL without a trailing slash (`http://host:port`), or a full endpoint URL.
    pub base_url: String,
    /// Whether `base_url` is already the endpoint (no path is appended).
    pub url_is_endpoint: bool,
    /// The URL's query (`api-version=…`, keys included), sent on every request after the path;
    /// never shown (see `settings::redact_query`).
    pub query: Option<String>,
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
    /// Plain `http://` targets go through the direct HTTP/1.1 client (`transport::h1`), not
    /// reqwest (`LLMBENCH_HTTP_CLIENT=reqwest` turns it off, to compare the two).
    pub direct_http1: bool,
    /// The direct client times response bytes by when the kernel received them
    /// (`SO_TIMESTAMPNS`), not by when its task got to read them (`LLMBENCH_CLOCK=read` turns
    /// it off, to compare the two).
    pub recv_stamps: bool,
}

impl ClientConfig {
    /// `url` with the target's query appended (after `&` when `url` already has one).
    pub fn with_query(&self, url: &str) -> String {
        match &self.query {
            None => url.to_string(),
            Some(q) if url.contains('?') => format!("{url}&{q}"),
            Some(q) => format!("{url}?{q}"),
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            url_is_endpoint: false,
            query: None,
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
            direct_http1: true,
            recv_stamps: true,
        }
    }
}
