//! `llmbench clock --port P`: answers time requests (`GET /time`: this host's wall clock, in
//! Unix nanoseconds), the reference the shards of a sharded run measure their offsets against
//! (`run --clock URL`, see `commands::shard`).

use std::net::SocketAddr;

use anyhow::Context;
use axum::{Json, Router, routing::get};

use crate::cli::ClockArgs;

/// The reply of `GET /time`.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct TimeReply {
    /// Wall-clock time when the request was answered, Unix nanoseconds.
    pub unix_ns: i64,
}

async fn time() -> Json<TimeReply> {
    Json(TimeReply {
        unix_ns: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
    })
}

/// Serves until Ctrl-C or SIGTERM.
pub async fn clock(args: ClockArgs) -> anyhow::Result<i32> {
    let addr = SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    // The first line is machine-readable on purpose: tests and scripts read the port from it.
    println!("llmbench clock listening on http://{local}");
    let app = Router::new().route("/time", get(time));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stop = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
        .context("the clock endpoint failed")?;
    Ok(0)
}
