//! `llmbench detect`: the machine (CPU, memory, OS, GPUs) and the LLM servers on local ports.

use serde_json::json;

use crate::cli::DetectArgs;
use crate::server::detect::{DetectedServer, probe_local};
use crate::telemetry::system::{SystemInfo, detect};

fn gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or("unknown".into(), |v| v.to_string())
}

/// Human-readable description of the machine and servers.
pub fn text(sys: &SystemInfo, servers: &[DetectedServer]) -> String {
    let mut out = String::new();
    let line = |out: &mut String, k: &str, v: String| out.push_str(&format!("{k:<10} {v}\n"));
    line(
        &mut out,
        "Host",
        format!(
            "{} ({} {}, kernel {})",
            opt(&sys.hostname),
            sys.os_name.clone().unwrap_or_else(|| sys.os.clone()),
            sys.arch,
            opt(&sys.kernel)
        ),
    );
    line(
        &mut out,
        "CPU",
        format!(
            "{}: {} physical cores, {} logical ({} usable by this process)",
            opt(&sys.cpu.model),
            opt(&sys.cpu.physical_cores),
            opt(&sys.cpu.logical_cores),
            opt(&sys.cpu.usable_cores)
        ),
    );
    line(
        &mut out,
        "Memory",
        format!(
            "{} total, {} available",
            sys.memory.total_bytes.map_or("unknown".into(), gib),
            sys.memory.available_bytes.map_or("unknown".into(), gib)
        ),
    );
    if sys.gpus.is_empty() {
        line(
            &mut out,
            "GPU",
            format!(
                "none{}",
                sys.gpu_note
                    .as_ref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ),
        );
    }
    for g in &sys.gpus {
        line(
            &mut out,
            &format!("GPU {}", g.index),
            format!(
                "{}, {} memory, driver {}",
                g.name,
                gib(g.memory_total_bytes),
                opt(&g.driver)
            ),
        );
    }
    if servers.is_empty() {
        line(
            &mut out,
            "Servers",
            "none answering on the usual local ports (11434, 8000, 30000, 8080, 3000)".into(),
        );
    }
    for s in servers {
        line(
            &mut out,
            "Server",
            format!(
                "{} at {}, version {}, models: {}{}{}",
                s.kind,
                s.url,
                opt(&s.version),
                if s.models.is_empty() {
                    "none listed".into()
                } else {
                    s.models.join(", ")
                },
                if s.loaded.is_empty() {
                    String::new()
                } else {
                    format!(" (loaded: {})", s.loaded.join(", "))
                },
                if s.metrics { ", /metrics" } else { "" }
            ),
        );
    }
    out
}

/// Runs `detect`; returns the exit code.
pub async fn detect_cmd(args: DetectArgs) -> anyhow::Result<i32> {
    let sys = tokio::task::spawn_blocking(detect).await?;
    let http = crate::transport::http::probe_client(
        &crate::transport::client::ClientConfig::default(),
        args.timeout,
        false,
    )?;
    let servers = probe_local(&http).await;
    if args.json {
        let v = json!({"system": sys, "servers": servers});
        super::say(serde_json::to_string_pretty(&v)?)?;
    } else {
        print!("{}", text(&sys, &servers));
    }
    Ok(0)
}
