//! Server metrics: a Prometheus `/metrics` endpoint scraped before, during (every sampling
//! interval) and after a scenario. Known series (see [`super::prom::KNOWN`]) are kept: counters
//! as before/after/delta, gauges as a timeline with mean and peak.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::prom::{self, Kind};
use super::resources::mean_peak;

/// One known series over a scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesSummary {
    /// The server's own name for it (e.g. `vllm:prompt_tokens_total`).
    pub source: String,
    /// `counter` or `gauge`.
    pub kind: String,
    /// Value scraped before the scenario.
    pub before: Option<f64>,
    /// Value scraped after it.
    pub after: Option<f64>,
    /// Counters: after − before (the scenario's share, warm-up included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
    /// Gauges: mean over all scrapes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Gauges: largest scraped value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak: Option<f64>,
}

/// One scrape: known series by canonical name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsPoint {
    /// Milliseconds since the run's epoch.
    pub t_ms: f64,
    /// Canonical name → value.
    pub values: BTreeMap<String, f64>,
}

/// What the server's metrics said about one scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerMetrics {
    /// Where they were scraped.
    pub url: String,
    /// Successful scrapes.
    pub scrapes: usize,
    /// Failed scrapes.
    pub failed_scrapes: usize,
    /// Known series by canonical name (`prompt_tokens`, `requests_running`, ...).
    pub series: BTreeMap<String, SeriesSummary>,
    /// Prefix-cache hits / queries over the scenario (from the counters), or the server's own
    /// hit-rate gauge; `null` when the server exposes neither.
    pub prefix_cache_hit_rate: Option<f64>,
    /// Every scrape in time order (before, during, after).
    pub timeline: Vec<MetricsPoint>,
}

/// Known series of one scrape: canonical name → (source name, value).
pub type Known = BTreeMap<&'static str, (&'static str, f64)>;

/// Scrapes once: known series, or an error text.
pub async fn scrape_once(http: &reqwest::Client, url: &str) -> Result<Known, String> {
    let resp = http.get(url).send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let text = resp.text().await.map_err(|e| e.to_string())?;
    if !prom::looks_like_prometheus(&text) {
        return Err("not Prometheus text".into());
    }
    Ok(prom::known(&prom::totals(&prom::parse(&text))))
}

/// Builds the summary from timed scrapes (pure). The first scrape is "before", the last "after".
pub fn summarize(url: &str, scrapes: &[(f64, Known)], failed: usize) -> ServerMetrics {
    let mut series: BTreeMap<String, SeriesSummary> = BTreeMap::new();
    for (canon, kind, _) in prom::KNOWN {
        let seen: Vec<(&str, f64)> = scrapes
            .iter()
            .filter_map(|(_, k)| k.get(canon).copied())
            .collect();
        let Some((source, _)) = seen.first() else {
            continue;
        };
        let before = scrapes.first().and_then(|(_, k)| k.get(canon)).map(|v| v.1);
        let after = scrapes.last().and_then(|(_, k)| k.get(canon)).map(|v| v.1);
        let mut s = SeriesSummary {
            source: source.to_string(),
            before,
            after,
            ..Default::default()
        };
        match kind {
            Kind::Counter => {
                s.kind = "counter".into();
                s.delta = before.zip(after).map(|(b, a)| a - b);
            }
            Kind::Gauge => {
                s.kind = "gauge".into();
                let mp = mean_peak(seen.iter().map(|v| v.1));
                s.mean = mp.map(|m| m.mean);
                s.peak = mp.map(|m| m.peak);
            }
        }
        series.insert(canon.to_string(), s);
    }
    let delta = |k: &str| series.get(k).and_then(|s| s.delta);
    let prefix_cache_hit_rate = match (delta("prefix_cache_hits"), delta("prefix_cache_queries")) {
        (Some(h), Some(q)) if q > 0.0 => Some(h / q),
        _ => series
            .get("prefix_cache_hit_rate_reported")
            .and_then(|s| s.after),
    };
    ServerMetrics {
        url: url.to_string(),
        scrapes: scrapes.len(),
        failed_scrapes: failed,
        series,
        prefix_cache_hit_rate,
        timeline: scrapes
            .iter()
            .map(|(t, k)| MetricsPoint {
                t_ms: *t,
                values: k.iter().map(|(c, (_, v))| (c.to_string(), *v)).collect(),
            })
            .collect(),
    }
}

type Scrapes = Vec<(f64, Known)>;

/// A running scraper: the "before" scrape is taken by `start`, the "after" one by `finish`.
pub struct Scraper {
    url: String,
    http: reqwest::Client,
    epoch: Instant,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<(Scrapes, usize)>,
}

fn ms_since(epoch: Instant) -> f64 {
    epoch.elapsed().as_secs_f64() * 1000.0
}

impl Scraper {
    /// Scrapes `url` now, then every `interval` until `finish`.
    pub async fn start(
        http: reqwest::Client,
        url: &str,
        interval: Duration,
        epoch: Instant,
    ) -> Scraper {
        let mut scrapes = Vec::new();
        let mut failed = 0;
        match scrape_once(&http, url).await {
            Ok(k) => scrapes.push((ms_since(epoch), k)),
            Err(_) => failed += 1,
        }
        let stop = CancellationToken::new();
        let task = {
            let (http, url, stop) = (http.clone(), url.to_string(), stop.clone());
            tokio::spawn(async move {
                let mut next = tokio::time::Instant::now() + interval;
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return (scrapes, failed),
                        _ = tokio::time::sleep_until(next) => {}
                    }
                    next += interval;
                    match scrape_once(&http, &url).await {
                        Ok(k) => scrapes.push((ms_since(epoch), k)),
                        Err(_) => failed += 1,
                    }
                }
            })
        };
        Scraper {
            url: url.to_string(),
            http,
            epoch,
            stop,
            task,
        }
    }

    /// Stops the periodic scrapes, scrapes once more, and summarises.
    pub async fn finish(self) -> ServerMetrics {
        self.stop.cancel();
        let (mut scrapes, mut failed) = self.task.await.unwrap_or_default();
        match scrape_once(&self.http, &self.url).await {
            Ok(k) => scrapes.push((ms_since(self.epoch), k)),
            Err(_) => failed += 1,
        }
        summarize(&self.url, &scrapes, failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_gauges_and_hit_rate() {
        let k = |p: f64, run: f64, hits: f64, q: f64| {
            let mut m = BTreeMap::new();
            m.insert("prompt_tokens", ("vllm:prompt_tokens_total", p));
            m.insert("requests_running", ("vllm:num_requests_running", run));
            m.insert("prefix_cache_hits", ("vllm:prefix_cache_hits_total", hits));
            m.insert(
                "prefix_cache_queries",
                ("vllm:prefix_cache_queries_total", q),
            );
            m
        };
        let s = summarize(
            "u",
            &[
                (0.0, k(100.0, 0.0, 10.0, 100.0)),
                (1.0, k(150.0, 4.0, 20.0, 150.0)),
                (2.0, k(300.0, 2.0, 60.0, 300.0)),
            ],
            1,
        );
        assert_eq!(s.series["prompt_tokens"].delta, Some(200.0));
        assert_eq!(s.series["requests_running"].peak, Some(4.0));
        assert_eq!(s.series["requests_running"].mean, Some(2.0));
        assert_eq!(s.prefix_cache_hit_rate, Some(0.25));
        assert_eq!((s.scrapes, s.failed_scrapes, s.timeline.len()), (3, 1, 3));
    }
}
