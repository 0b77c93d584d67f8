//! The HTTP client factory (TLS, proxies, keep-alive) and the one transport failure the
//! client repairs itself: a request sent into a kept-alive connection the server had closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use hyper_util::client::legacy::connect::Connection as _;

use super::config::ClientConfig;

tokio::task_local! {
    /// The connections opened for the request in scope.
    static OPENED: Arc<Opened>;
}

/// The connections a request's own task opened: their local addresses, and a count for those
/// whose address is unknown.
#[derive(Default)]
struct Opened {
    addrs: std::sync::Mutex<Vec<std::net::SocketAddr>>,
    any: AtomicBool,
}

impl Opened {
    /// Whether a failed send went out on a connection the pool had kept. The pool races a
    /// checkout against a new connect and may hand the request an idle connection even after
    /// the connect finished in its task, so the connection the error names (its local address)
    /// decides where it is known; otherwise, whether the request opened any connection.
    fn reused(&self, e: &reqwest::Error) -> bool {
        match failed_on(e) {
            Some(local) => !self.addrs.lock().unwrap().contains(&local),
            None => !self.any.load(Ordering::Relaxed),
        }
    }
}

/// The local address of the connection a send failed on, where the HTTP client says.
fn failed_on(e: &reqwest::Error) -> Option<std::net::SocketAddr> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<hyper_util::client::legacy::Error>() {
            let mut ext = http::Extensions::new();
            h.connect_info()?.get_extras(&mut ext);
            return ext
                .get::<hyper_util::client::legacy::connect::HttpInfo>()
                .map(|i| i.local_addr());
        }
        cur = err.source();
    }
    None
}

/// A connector layer that notes, in the calling request's [`OPENED`], each connection opened
/// while that request waited for one (the note is made when the connect completes, inside the
/// request's task).
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

type Connecting<T, E> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;

impl<S, R> tower_service::Service<R> for MarkConnect<S>
where
    S: tower_service::Service<R>,
    S::Future: Send + 'static,
    S::Response: hyper_util::client::legacy::connect::Connection + 'static,
    S::Error: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Connecting<S::Response, S::Error>;
    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }
    fn call(&mut self, req: R) -> Self::Future {
        let connecting = self.0.call(req);
        Box::pin(async move {
            let conn = connecting.await;
            if let Ok(c) = &conn {
                let mut ext = http::Extensions::new();
                c.connected().get_extras(&mut ext);
                let local = ext
                    .get::<hyper_util::client::legacy::connect::HttpInfo>()
                    .map(|i| i.local_addr());
                let _ = OPENED.try_with(|o| {
                    o.any.store(true, Ordering::Relaxed);
                    if let Some(a) = local {
                        o.addrs.lock().unwrap().push(a);
                    }
                });
            }
            conn
        })
    }
}

/// Builds the HTTP client all requests share (`pooled: false`: one that never keeps a
/// connection for a later request).
pub fn http_client(cfg: &ClientConfig) -> anyhow::Result<reqwest::Client> {
    build_http_client(cfg, cfg.keepalive)
}

pub(crate) fn build_http_client(
    cfg: &ClientConfig,
    pooled: bool,
) -> anyhow::Result<reqwest::Client> {
    let b = builder(cfg)?
        .connect_timeout(cfg.connect_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .connector_layer(MarkConnects);
    let b = if pooled {
        b
    } else {
        b.pool_max_idle_per_host(0)
    };
    b.build().context("cannot build the HTTP client")
}

/// A client for short probes of the target and its neighbours (`/metrics`, `/props`, a managed
/// server's readiness): the run's TLS and proxy settings, with `timeout` to connect and three
/// times that per request. `with_headers`: send the run's `--header`s and key too (only to the
/// target's own origin: a `--metrics-url` elsewhere never sees the credentials).
pub fn probe_client(
    cfg: &ClientConfig,
    timeout: Duration,
    with_headers: bool,
) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    for (k, v) in cfg.headers.iter().filter(|_| with_headers) {
        if let (Ok(k), Ok(mut v)) = (
            reqwest::header::HeaderName::from_bytes(k.as_bytes()),
            reqwest::header::HeaderValue::from_str(v),
        ) {
            v.set_sensitive(true);
            headers.insert(k, v);
        }
    }
    builder(cfg)?
        .connect_timeout(timeout)
        .timeout(timeout * 3)
        .default_headers(headers)
        .build()
        .context("cannot build the HTTP client")
}

/// The settings every client shares: TLS (`--insecure`, `--ca-cert`) and proxies.
fn builder(cfg: &ClientConfig) -> anyhow::Result<reqwest::ClientBuilder> {
    let mut b = reqwest::Client::builder().danger_accept_invalid_certs(cfg.insecure);
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
    Ok(b)
}

/// Whether a failed send went out on a connection the pool had kept (`reused`: see [`Opened`])
/// and failed before any response arrived without being a timeout: the failure of a stale
/// kept-alive connection, which the server closed before reading the request.
fn stale_connection(e: &reqwest::Error, reused: bool) -> bool {
    reused && !e.is_timeout() && !e.is_connect() && !e.is_status() && !e.is_builder()
}

/// The error chain of a transport failure, outermost first, without duplicates. A URL the
/// HTTP client quotes loses its query: a key in it is sent, never shown.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let mut s = err.to_string();
        if let Some(u) = err
            .downcast_ref::<reqwest::Error>()
            .and_then(reqwest::Error::url)
            && u.query().is_some()
        {
            let mut bare = u.clone();
            bare.set_query(None);
            s = s.replace(u.as_str(), bare.as_str());
        }
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// Where a failed send went out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Reuse {
    /// On a kept-alive connection the server had closed: never seen by the server.
    Stale,
    /// Anything else: a real failure.
    Fresh,
}

/// Sends a request, noting the connections opened for it, and on failure says whether the
/// send went into a stale kept-alive connection (see [`Opened`]).
pub(crate) async fn send_noting_reuse(
    req: reqwest::RequestBuilder,
) -> Result<reqwest::Response, (reqwest::Error, Reuse)> {
    let opened = Arc::new(Opened::default());
    OPENED.scope(opened.clone(), req.send()).await.map_err(|e| {
        let stale = stale_connection(&e, opened.reused(&e));
        (e, if stale { Reuse::Stale } else { Reuse::Fresh })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_quoted_url_loses_its_query() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/v1/models?api-key=CANARY9"))
            .send()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("CANARY9"), "reqwest quotes it: {e}");
        let d = describe(&e);
        assert!(!d.contains("CANARY9") && d.contains("/v1/models"), "{d}");
    }
}
