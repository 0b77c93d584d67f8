//! The resource timeline: host CPU and memory, the server process tree's CPU and RSS, and GPU
//! utilisation, memory and power, sampled on a thread of its own while a scenario runs.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::gpu::{GpuSample, Nvml};
use super::procfs;

/// Mean and peak of one sampled quantity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MeanPeak {
    /// Mean over the samples.
    pub mean: f64,
    /// Largest sample.
    pub peak: f64,
}

/// Mean and peak of the values present; `None` when there are none.
pub fn mean_peak(values: impl IntoIterator<Item = f64>) -> Option<MeanPeak> {
    let (mut n, mut sum, mut peak) = (0usize, 0.0, f64::NEG_INFINITY);
    for v in values {
        n += 1;
        sum += v;
        peak = peak.max(v);
    }
    (n > 0).then(|| MeanPeak {
        mean: sum / n as f64,
        peak,
    })
}

/// One sample. CPU percentages cover the time since the previous sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceSample {
    /// Milliseconds since the run's epoch (the records' time axis).
    pub t_ms: f64,
    /// Host CPU busy, percent of all CPUs (0–100).
    pub host_cpu_pct: Option<f64>,
    /// Host memory in use, MemTotal − MemAvailable (bytes).
    pub host_mem_used_bytes: Option<u64>,
    /// Server process and its descendants: CPU, percent of one CPU (may exceed 100).
    pub server_cpu_pct: Option<f64>,
    /// Server process and its descendants: resident memory (bytes).
    pub server_rss_bytes: Option<u64>,
    /// GPUs (empty without NVML).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<GpuSample>,
}

/// Mean/peak of one GPU's samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuSummary {
    /// Index in NVML order.
    pub index: u32,
    /// Utilisation (percent).
    pub util_pct: Option<MeanPeak>,
    /// Memory in use (bytes).
    pub memory_used_bytes: Option<MeanPeak>,
    /// Power draw (watts).
    pub power_w: Option<MeanPeak>,
}

/// Mean/peak of every sampled quantity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceSummary {
    /// Number of samples.
    pub samples: usize,
    /// Host CPU busy (percent of all CPUs).
    pub host_cpu_pct: Option<MeanPeak>,
    /// Host memory in use (bytes).
    pub host_mem_used_bytes: Option<MeanPeak>,
    /// Server process tree CPU (percent of one CPU).
    pub server_cpu_pct: Option<MeanPeak>,
    /// Server process tree RSS (bytes).
    pub server_rss_bytes: Option<MeanPeak>,
    /// Per GPU.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<GpuSummary>,
}

/// Summarises samples (pure).
pub fn summarize(samples: &[ResourceSample]) -> ResourceSummary {
    let u = |f: fn(&ResourceSample) -> Option<u64>| {
        mean_peak(samples.iter().filter_map(f).map(|x| x as f64))
    };
    let mut indices: Vec<u32> = samples
        .iter()
        .flat_map(|s| s.gpus.iter().map(|g| g.index))
        .collect();
    indices.sort_unstable();
    indices.dedup();
    let gpus = indices
        .into_iter()
        .map(|i| {
            let of = || {
                samples
                    .iter()
                    .flat_map(|s| s.gpus.iter())
                    .filter(move |g| g.index == i)
            };
            GpuSummary {
                index: i,
                util_pct: mean_peak(of().filter_map(|g| g.util_pct)),
                memory_used_bytes: mean_peak(
                    of().filter_map(|g| g.memory_used_bytes).map(|x| x as f64),
                ),
                power_w: mean_peak(of().filter_map(|g| g.power_w)),
            }
        })
        .collect();
    ResourceSummary {
        samples: samples.len(),
        host_cpu_pct: mean_peak(samples.iter().filter_map(|s| s.host_cpu_pct)),
        host_mem_used_bytes: u(|s| s.host_mem_used_bytes),
        server_cpu_pct: mean_peak(samples.iter().filter_map(|s| s.server_cpu_pct)),
        server_rss_bytes: u(|s| s.server_rss_bytes),
        gpus,
    }
}

/// What was sampled during one scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceTimeline {
    /// Sampling interval (ms).
    pub interval_ms: f64,
    /// Pid of the server process whose tree was sampled.
    pub server_pid: Option<u32>,
    /// Mean and peak of each quantity.
    pub summary: ResourceSummary,
    /// The samples, in time order.
    pub samples: Vec<ResourceSample>,
}

struct Reading {
    at: Instant,
    host: Option<(u64, u64)>,
    server_ticks: Option<u64>,
    server_rss: Option<u64>,
}

fn read(pid: Option<u32>, page: u64) -> Reading {
    let at = Instant::now();
    let host = procfs::host_cpu();
    let (server_ticks, server_rss) = match pid {
        Some(pid) if procfs::alive(pid) => {
            let t = procfs::tree(&procfs::all_processes(), pid);
            (
                Some(t.iter().map(|p| p.cpu_ticks).sum()),
                Some(t.iter().map(|p| p.rss_pages).sum::<u64>() * page),
            )
        }
        _ => (None, None),
    };
    Reading {
        at,
        host,
        server_ticks,
        server_rss,
    }
}

fn sample(prev: &Reading, now: &Reading, epoch: Instant, tick: f64) -> ResourceSample {
    let dt = now.at.duration_since(prev.at).as_secs_f64();
    let host_cpu_pct = match (prev.host, now.host) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
            Some(100.0 * b1.saturating_sub(b0) as f64 / (t1 - t0) as f64)
        }
        _ => None,
    };
    let server_cpu_pct = match (prev.server_ticks, now.server_ticks) {
        (Some(a), Some(b)) if dt > 0.0 => Some(100.0 * b.saturating_sub(a) as f64 / tick / dt),
        _ => None,
    };
    ResourceSample {
        t_ms: now.at.saturating_duration_since(epoch).as_secs_f64() * 1000.0,
        host_cpu_pct,
        host_mem_used_bytes: procfs::host_mem_used(),
        server_cpu_pct,
        server_rss_bytes: now.server_rss,
        gpus: Nvml::get().map(|n| n.sample()).unwrap_or_default(),
    }
}

/// A running sampler; `finish` stops it and returns the timeline.
pub struct Sampler {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<Vec<ResourceSample>>,
    interval: Duration,
    pid: Option<u32>,
}

impl Sampler {
    /// Starts sampling every `interval` (times relative to `epoch`), following `server_pid`'s
    /// process tree when given.
    pub fn start(interval: Duration, server_pid: Option<u32>, epoch: Instant) -> Sampler {
        let (stop, rx) = mpsc::channel::<()>();
        let (tick, page) = procfs::tick_and_page();
        let handle = std::thread::Builder::new()
            .name("llmbench-sampler".into())
            .spawn(move || {
                let mut out = Vec::new();
                let mut prev = read(server_pid, page);
                // The reading before `prev`: a last window shorter than 50 ms would give noisy
                // CPU figures, so it is merged with the window before it.
                let mut before_prev: Option<Reading> = None;
                loop {
                    let last = !matches!(
                        rx.recv_timeout(interval),
                        Err(mpsc::RecvTimeoutError::Timeout)
                    );
                    let now = read(server_pid, page);
                    let short = now.at.duration_since(prev.at).as_millis() < 50;
                    match before_prev.as_ref() {
                        Some(bp) if last && short && !out.is_empty() => {
                            out.pop();
                            out.push(sample(bp, &now, epoch, tick));
                        }
                        _ => out.push(sample(&prev, &now, epoch, tick)),
                    }
                    if last {
                        return out;
                    }
                    before_prev = Some(std::mem::replace(&mut prev, now));
                }
            })
            .expect("spawn sampler thread");
        Sampler {
            stop,
            handle,
            interval,
            pid: server_pid,
        }
    }

    /// Stops sampling (one last sample is taken) and summarises.
    pub fn finish(self) -> ResourceTimeline {
        let _ = self.stop.send(());
        let samples = self.handle.join().unwrap_or_default();
        ResourceTimeline {
            interval_ms: self.interval.as_secs_f64() * 1000.0,
            server_pid: self.pid,
            summary: summarize(&samples),
            samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_means_and_peaks() {
        let s = |cpu: f64, rss: Option<u64>| ResourceSample {
            host_cpu_pct: Some(cpu),
            server_rss_bytes: rss,
            ..Default::default()
        };
        let sum = summarize(&[s(10.0, Some(100)), s(30.0, None), s(20.0, Some(300))]);
        assert_eq!(sum.samples, 3);
        assert_eq!(
            sum.host_cpu_pct,
            Some(MeanPeak {
                mean: 20.0,
                peak: 30.0
            })
        );
        assert_eq!(
            sum.server_rss_bytes,
            Some(MeanPeak {
                mean: 200.0,
                peak: 300.0
            })
        );
        assert_eq!(sum.server_cpu_pct, None);
    }

    #[test]
    fn sampler_sees_this_process() {
        let epoch = Instant::now();
        let s = Sampler::start(Duration::from_millis(50), Some(std::process::id()), epoch);
        let t0 = Instant::now();
        let mut x = 0u64;
        while t0.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(31).wrapping_add(1);
        }
        std::hint::black_box(x);
        let tl = s.finish();
        assert!(tl.samples.len() >= 3, "{:?}", tl.samples.len());
        let rss = tl.summary.server_rss_bytes.expect("rss");
        assert!(rss.peak > 1_000_000.0, "{rss:?}");
        let cpu = tl.summary.server_cpu_pct.expect("cpu");
        assert!(cpu.peak > 0.0, "{cpu:?}");
        assert!(tl.summary.host_cpu_pct.is_some() && tl.summary.host_mem_used_bytes.is_some());
        assert!(tl.samples.windows(2).all(|w| w[0].t_ms < w[1].t_ms));
    }
}
