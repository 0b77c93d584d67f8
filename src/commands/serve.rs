//! `llmbench serve`: the built-in simulator in the foreground.

use std::net::SocketAddr;

use anyhow::Context;

use crate::cli::ServeArgs;
use crate::settings::sim_config;

/// Serves until Ctrl-C or SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<i32> {
    let cfg = sim_config(&args.sim)?;
    let addr = SocketAddr::new(args.host, args.port);
    let desc = crate::sim::describe_timing(&cfg);
    let running = crate::sim::spawn(cfg, addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    // The first line is machine-readable on purpose: tests and scripts read the port from it.
    println!("llmbench simulator listening on {}", running.url());
    eprintln!("model {} — {desc}", running.sim.cfg.model);
    let f = &running.sim.cfg.faults;
    if !f.kinds.is_empty() {
        let names: Vec<&str> = f.kinds.iter().map(|k| k.name()).collect();
        eprintln!(
            "fault injection: {} on {:.0}% of requests (counts at GET /sim/faults)",
            names.join(", "),
            f.rate * 100.0
        );
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    eprintln!("stopping");
    running.stop().await;
    Ok(0)
}
