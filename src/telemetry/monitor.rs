//! Per-scenario telemetry: the resource sampler and the metrics scraper started together before
//! a scenario and finished after it; plus what the run needs to set them up.

use std::time::{Duration, Instant};

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
    /// The client that scrapes it.
    pub http: reqwest::Client,
}

/// The clients telemetry probes with, built by the caller from the run's transport settings:
/// `target` for the target's own origin (headers and key included), `other` for anywhere else.
#[derive(Clone)]
pub struct ProbeClients {
    pub target: reqwest::Client,
    pub other: reqwest::Client,
}

/// Resource sampling and server metrics, as the run's settings give them.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// `--sample-interval`.
    pub sample_interval: std::time::Duration,
    /// `--server-pid`.
    pub server_pid: Option<u32>,
    /// `--metrics-url`.
    pub metrics_url: Option<String>,
    /// `--no-metrics`.
    pub no_metrics: bool,
    /// `--isolate`: restart the managed server between scenarios.
    pub isolate: bool,
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
    http: &ProbeClients,
    explicit: Option<&str>,
    target: &str,
    disabled: bool,
) -> anyhow::Result<Option<String>> {
    if disabled {
        return Ok(None);
    }
    match explicit {
        Some(u) => match super::scrape::scrape_once(http.for_url(u, target), u).await {
            Ok(_) => Ok(Some(u.to_string())),
            Err(e) => anyhow::bail!("--metrics-url {u}: no Prometheus metrics there ({e})"),
        },
        None => {
            let u = format!("{}/metrics", origin(target));
            Ok(super::scrape::scrape_once(&http.target, &u)
                .await
                .ok()
                .map(|_| u))
        }
    }
}

impl ProbeClients {
    /// The client for `url`: the target's (with credentials) on the target's origin only.
    pub fn for_url(&self, url: &str, target: &str) -> &reqwest::Client {
        if origin(url) == origin(target) {
            &self.target
        } else {
            &self.other
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
            Some(u) => Some(Scraper::start(cfg.http.clone(), u, cfg.interval, epoch).await),
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

/// Settles the run's telemetry: the pid to follow, the metrics endpoint, and what the server
/// says it is (probed with short timeouts; nothing found is not an error).
pub async fn prepare(
    t: &TelemetrySettings,
    target: &str,
    http: &ProbeClients,
    server: Option<&crate::server::managed::ManagedServer>,
    detected: Option<crate::server::detect::DetectedServer>,
) -> anyhow::Result<(TelemetryConfig, crate::server::managed::ServerRecord)> {
    let metrics_url =
        resolve_metrics_url(http, t.metrics_url.as_deref(), target, t.no_metrics).await?;
    let mut record = crate::server::managed::ServerRecord {
        metrics_url: metrics_url.clone(),
        pid: t.server_pid.or(server.and_then(|s| s.pid())),
        managed: server.map(|s| s.info.clone()),
        ..Default::default()
    };
    let detected = match server.and_then(|s| s.detected.clone()).or(detected) {
        Some(d) => Some(d),
        None => tokio::time::timeout(
            Duration::from_secs(3),
            crate::server::detect::probe(&http.target, &origin(target)),
        )
        .await
        .ok()
        .flatten(),
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
            http: match &metrics_url {
                Some(u) => http.for_url(u, target).clone(),
                None => http.other.clone(),
            },
            metrics_url,
        },
        record,
    ))
}
