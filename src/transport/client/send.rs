//! The two ways a request goes out, behind one response type: the direct HTTP/1.1 client
//! (`transport::h1`) for plain `http://` targets, reqwest for TLS, proxies, and when
//! `LLMBENCH_HTTP_CLIENT=reqwest` asks for it.

use std::time::Instant;

use reqwest::header::HeaderMap;

use crate::transport::config::ClientConfig;
use crate::transport::h1::{self, Direct, Target};
use crate::transport::http::{Reuse, build_http_client, describe, http_client, send_noting_reuse};

/// A failed send: what to say, and whether it was a timeout.
pub(super) struct Failed {
    pub(super) message: String,
    pub(super) timeout: bool,
}

pub(super) enum Http {
    Direct(Direct),
    Reqwest {
        pooled: reqwest::Client,
        /// Never reuses a connection: resends after a stale kept-alive connection.
        fresh: reqwest::Client,
    },
}

/// Proxy variables reqwest honours for `http://` under `--use-env-proxy`.
const PROXY_VARS: [&str; 4] = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];

impl Http {
    pub(super) fn new(cfg: &ClientConfig) -> anyhow::Result<Self> {
        let proxied = cfg.use_env_proxy
            && PROXY_VARS
                .iter()
                .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
        if cfg.direct_http1 && !proxied && Target::of(&cfg.base_url).is_some() {
            return Ok(Http::Direct(Direct::new(
                cfg.keepalive,
                cfg.connect_timeout,
                cfg.recv_stamps,
            )));
        }
        Ok(Http::Reqwest {
            pooled: http_client(cfg)?,
            fresh: build_http_client(cfg, false)?,
        })
    }

    /// Whether response bytes are timed by the kernel's receive timestamps.
    pub(super) fn kernel_clock(&self) -> bool {
        matches!(self, Http::Direct(d) if d.stamps())
    }

    /// Sends one POST of `body` to `url`. `fresh`: on a new connection (the resend after a
    /// stale one).
    pub(super) async fn send(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &bytes::Bytes,
        fresh: bool,
    ) -> Result<Response, (Failed, Reuse)> {
        match self {
            Http::Direct(d) => {
                let Some(to) = Target::of(url) else {
                    let message = "not a plain http:// URL".to_string();
                    return Err((
                        Failed {
                            message,
                            timeout: false,
                        },
                        Reuse::Fresh,
                    ));
                };
                let hs = headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes()));
                d.send(&to, hs, body, fresh)
                    .await
                    .map(Response::Direct)
                    .map_err(|(e, reuse)| {
                        (
                            Failed {
                                message: e.message,
                                timeout: e.timeout,
                            },
                            reuse,
                        )
                    })
            }
            Http::Reqwest { pooled, fresh: new } => {
                let client = if fresh { new } else { pooled };
                let req = client.post(url).headers(headers.clone()).body(body.clone());
                let sent = if fresh {
                    req.send().await.map_err(|e| (e, Reuse::Fresh))
                } else {
                    send_noting_reuse(req).await
                };
                sent.map(|r| Response::Reqwest(r, bytes::Bytes::new()))
                    .map_err(|(e, reuse)| {
                        (
                            Failed {
                                message: describe(&e),
                                timeout: e.is_timeout(),
                            },
                            reuse,
                        )
                    })
            }
        }
    }
}

/// A response whose head has been read.
pub(super) enum Response {
    Direct(h1::Response),
    /// The response and its last piece of body.
    Reqwest(reqwest::Response, bytes::Bytes),
}

impl Response {
    pub(super) fn status(&self) -> reqwest::StatusCode {
        match self {
            Response::Direct(r) => reqwest::StatusCode::from_u16(r.status)
                .unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR),
            Response::Reqwest(r, _) => r.status(),
        }
    }

    /// A header's value, `name` lower-case.
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        match self {
            Response::Direct(r) => r.header(name),
            Response::Reqwest(r, _) => r.headers().get(name).and_then(|v| v.to_str().ok()),
        }
    }

    /// The next piece of the body, `None` at its end, with when the kernel received it where
    /// the direct client has that (reqwest does not); an error says why the body was cut.
    /// Cancel-safe.
    pub(super) async fn chunk(&mut self) -> Result<Option<(&[u8], Option<Instant>)>, String> {
        match self {
            Response::Direct(r) => r.chunk().await,
            Response::Reqwest(r, last) => match r.chunk().await {
                Ok(Some(b)) => {
                    *last = b;
                    Ok(Some((&last[..], None)))
                }
                Ok(None) => Ok(None),
                Err(e) => Err(describe(&e)),
            },
        }
    }
}
