//! Per-scenario telemetry: the resource sampler and the metrics scraper started together before
//! a scenario and finished after it; plus what the run needs to set them up.

use std::time::{Duration, Instant};

use super::probe::probe_client;
use super::resources::{ResourceTimeline, Sampler};
use super::scrape::{Scraper, ServerMetrics};

/// Validated telemetry settings of a run.
#[derive(Debug, Clone, Default)]
pub struct TelemetryConfig {
    /// Sampling and scraping interval.
    pub interval: Duration,
    /// Server process to follow (its tree).
    pub server_pid: Option<u32>,
    /// Prometheus endpoint to scrape.
    pub metrics_url: Option<String>,
}

/// Scheme, host and port of a URL (`http://h:p`), or the input when it does not parse.
pub fn origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("localhost");
            match u.port() {
                Some(p) => format!("{}://{host}:{p}", u.scheme()),
                None => format!("{}://{host}", u.scheme()),
            }
        }
        Err(_) => url.trim_end_matches('/').to_string(),
    }
}

/// The metrics endpoint to use: `explicit` must answer in Prometheus format (else an error
/// naming the flag); otherwise the target's `/metrics` when it answers, else none.
pub async fn resolve_metrics_url(
    explicit: Option<&str>,
    target: &str,
    disabled: bool,
) -> anyhow::Result<Option<String>> {
    if disabled {
        return Ok(None);
    }
    let http = probe_client(Duration::from_millis(700));
    match explicit {
        Some(u) => match super::scrape::scrape_once(&http, u).await {
            Ok(_) => Ok(Some(u.to_string())),
            Err(e) => anyhow::bail!("--metrics-url {u}: no Prometheus metrics there ({e})"),
        },
        None => {
            let u = format!("{}/metrics", origin(target));
            Ok(super::scrape::scrape_once(&http, &u).await.ok().map(|_| u))
        }
    }
}

/// Sampler and scraper of one scenario.
pub struct Monitor {
    sampler: Sampler,
    scraper: Option<Scraper>,
}

impl Monitor {
    /// Takes the "before" readings and starts sampling.
    pub async fn start(cfg: &TelemetryConfig, epoch: Instant) -> Monitor {
        let scraper = match &cfg.metrics_url {
            Some(u) => Some(Scraper::start(u, cfg.interval, epoch).await),
            None => None,
        };
        Monitor {
            sampler: Sampler::start(cfg.interval, cfg.server_pid, epoch),
            scraper,
        }
    }

    /// Stops both and returns what they saw (the "after" readings included).
    pub async fn finish(self) -> (ResourceTimeline, Option<ServerMetrics>) {
        let sampler = self.sampler;
        let resources = tokio::task::spawn_blocking(move || sampler.finish())
            .await
            .unwrap_or_default();
        let metrics = match self.scraper {
            Some(s) => Some(s.finish().await),
            None => None,
        };
        (resources, metrics)
    }
}

/// Validates the telemetry flags and, with `--server-cmd`, says how to run the server.
pub fn server_cmd(args: &crate::cli::RunArgs) -> anyhow::Result<Option<crate::managed::ServerCmd>> {
    let t = &args.telemetry;
    if t.sample_interval < Duration::from_millis(10) {
        anyhow::bail!(
            "--sample-interval {:?}: must be at least 10ms",
            t.sample_interval
        );
    }
    if let Some(u) = &t.metrics_url
        && reqwest::Url::parse(u).is_err()
    {
        anyhow::bail!("--metrics-url {u:?} is not a URL");
    }
    let Some(cmd) = &t.server_cmd else {
        return Ok(None);
    };
    let Some(url) = &args.url else {
        anyhow::bail!(
            "--server-cmd needs the URL the server will answer on, e.g. `llmbench run http://127.0.0.1:8000 --server-cmd \"...\"`"
        );
    };
    crate::managed::command(cmd)?;
    let log = crate::managed::log_path(
        t.server_log.as_deref(),
        args.output.as_deref(),
        &crate::result::new_run_id(),
    );
    if let Some(p) = &t.server_log {
        crate::commands::run::check_writable(p, "--server-log")?;
    }
    Ok(Some(crate::managed::ServerCmd {
        command: cmd.clone(),
        url: origin(url),
        ready_timeout: t.server_ready_timeout,
        stop_grace: t.server_stop_grace,
        log,
    }))
}

/// Settles the run's telemetry: the pid to follow, the metrics endpoint, and what the server
/// says it is (probed with short timeouts; nothing found is not an error).
pub async fn prepare(
    args: &crate::cli::RunArgs,
    target: &str,
    server: Option<&crate::managed::ManagedServer>,
) -> anyhow::Result<(TelemetryConfig, crate::managed::ServerRecord)> {
    let t = &args.telemetry;
    let metrics_url = resolve_metrics_url(t.metrics_url.as_deref(), target, t.no_metrics).await?;
    let mut record = crate::managed::ServerRecord {
        metrics_url: metrics_url.clone(),
        pid: t.server_pid.or(server.and_then(|s| s.pid())),
        managed: server.map(|s| s.info.clone()),
        ..Default::default()
    };
    let detected = match server.and_then(|s| s.detected.clone()) {
        Some(d) => Some(d),
        None => {
            let http = probe_client(Duration::from_millis(500));
            tokio::time::timeout(
                Duration::from_secs(3),
                super::probe::probe(&http, &origin(target)),
            )
            .await
            .ok()
            .flatten()
        }
    };
    if let Some(d) = &detected {
        record.fill(d);
    }
    if let Some(pid) = t.server_pid
        && !super::procfs::alive(pid)
    {
        anyhow::bail!("--server-pid {pid}: no such process");
    }
    Ok((
        TelemetryConfig {
            interval: t.sample_interval,
            server_pid: record.pid,
            metrics_url,
        },
        record,
    ))
}
