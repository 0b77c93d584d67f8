//! Getting bytes to and from a server: the HTTP client factory (TLS, keep-alive and stale
//! connections), one request's execution with retries and secret scrubbing, and the framing of
//! streamed bodies (SSE, NDJSON).

pub mod client;
pub mod config;
pub(crate) mod h1;
pub mod http;
pub(crate) mod policy;
pub mod sse;
