//! Runs scenarios: drives the schedule, hands requests to the client, and collects records.
//!
//! Workers send finished records over a channel to one collector (this task), which writes
//! the records file, updates the progress bar and feeds the statistics. A soft cancel stops
//! new sends; a hard cancel ends in-flight requests as `cancelled`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::health::ClientLoad;
use crate::record::{Outcome, Record, RecordWriter};
use crate::result::ScenarioResult;
use crate::schedule::{Load, Offsets, Stop};
use crate::stats::{Accumulator, Samples};
use crate::workload::Workload;

/// One scenario to run.
#[derive(Clone)]
pub struct Scenario {
    /// Name in reports.
    pub name: String,
    /// What the scenario varies, as written to the result file.
    pub params: Value,
    /// What to send.
    pub workload: Arc<dyn Workload>,
    /// How to apply load.
    pub load: Load,
    /// When the measured phase ends.
    pub stop: Stop,
    /// Requests run first and left out of statistics.
    pub warmup: u64,
    /// Seed of random schedules.
    pub seed: u64,
}

/// Soft (stop sending) and hard (abort in-flight) cancellation.
#[derive(Clone, Default)]
pub struct Cancel {
    /// Stop scheduling new requests.
    pub soft: CancellationToken,
    /// End in-flight requests now, as `cancelled`.
    pub hard: CancellationToken,
}

/// Where finished records go besides the statistics.
#[derive(Default)]
pub struct Sinks {
    /// The `--records` JSONL file.
    pub records: Option<RecordWriter>,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

struct Phase {
    client: Arc<Client>,
    workload: Arc<dyn Workload>,
    scenario: String,
    warmup: bool,
    cancel: Cancel,
    tx: mpsc::UnboundedSender<Record>,
}

impl Phase {
    /// Runs request `id` scheduled at `scheduled`, unless a hard cancel comes first.
    async fn one(&self, id: u64, scheduled: Instant) -> Record {
        let spec = if self.warmup {
            self.workload.get_warmup(id)
        } else {
            self.workload.get(id)
        };
        let client = &self.client;
        let mut on_retried = |mut r: Record| {
            r.scenario = self.scenario.clone();
            r.id = id;
            r.warmup = self.warmup;
            let _ = self.tx.send(r);
        };
        let mut rec = tokio::select! {
            r = client.execute_retrying(&spec, scheduled, &mut on_retried) => r,
            _ = self.cancel.hard.cancelled() => {
                let now = client.ms(Instant::now());
                Record {
                    outcome: Some(Outcome::Cancelled),
                    scheduled_at_ms: client.ms(scheduled),
                    sent_at_ms: Some(client.ms(scheduled)),
                    done_at_ms: now,
                    requested_output_tokens: spec.max_tokens,
                    error: Some("cancelled while in flight".into()),
                    attempt: 1,
                    ..Default::default()
                }
            }
        };
        rec.scenario = self.scenario.clone();
        rec.id = id;
        rec.warmup = self.warmup;
        rec
    }

    fn unsent(&self, id: u64, scheduled: Instant, outcome: Outcome, why: &str) -> Record {
        let c = &self.client;
        Record {
            scenario: self.scenario.clone(),
            id,
            warmup: self.warmup,
            outcome: Some(outcome),
            scheduled_at_ms: c.ms(scheduled),
            done_at_ms: c.ms(Instant::now()),
            error: Some(why.into()),
            attempt: 1,
            ..Default::default()
        }
    }
}

async fn closed(phase: Arc<Phase>, concurrency: usize, stop: Stop) -> Option<Samples> {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (phase, next) = (phase.clone(), next.clone());
        workers.spawn(async move {
            loop {
                if phase.cancel.soft.is_cancelled() {
                    break;
                }
                if stop.duration.is_some_and(|d| start.elapsed() >= d) {
                    break;
                }
                let id = next.fetch_add(1, Ordering::Relaxed);
                if stop.requests.is_some_and(|n| id >= n) {
                    break;
                }
                let rec = phase.one(id, Instant::now()).await;
                let _ = phase.tx.send(rec);
            }
        });
    }
    while workers.join_next().await.is_some() {}
    None
}

/// Returns the dispatcher's lateness (fired − scheduled, ms) for every request it issued.
async fn open(
    phase: Arc<Phase>,
    offsets: Offsets,
    max_concurrency: Option<usize>,
    stop: Stop,
) -> Option<Samples> {
    let mut lateness = Samples::default();
    let slots = max_concurrency.map(|n| Arc::new(Semaphore::new(n)));
    let start = Instant::now();
    let deadline = stop.duration.map(|d| start + d);
    let mut tasks = tokio::task::JoinSet::new();
    for (id, offset) in (0u64..).zip(offsets) {
        if stop.requests.is_some_and(|n| id >= n) || stop.duration.is_some_and(|d| offset >= d) {
            break;
        }
        let at = start + offset;
        tokio::select! {
            _ = crate::timer::sleep_until(at) => {}
            _ = phase.cancel.soft.cancelled() => break,
        }
        lateness.push(Instant::now().saturating_duration_since(at).as_secs_f64() * 1e3);
        let (phase, slots) = (phase.clone(), slots.clone());
        tasks.spawn(async move {
            let _permit = match slots {
                None => None,
                Some(s) => {
                    let wait = async {
                        match deadline {
                            Some(d) => tokio::time::timeout_at(d.into(), s.acquire_owned())
                                .await
                                .ok(),
                            None => Some(s.acquire_owned().await),
                        }
                    };
                    let got = tokio::select! {
                        p = wait => p,
                        _ = phase.cancel.soft.cancelled() => {
                            let r = phase.unsent(id, at, Outcome::Cancelled, "cancelled before it could be sent");
                            let _ = phase.tx.send(r);
                            return;
                        }
                    };
                    match got {
                        Some(Ok(p)) => Some(p),
                        _ => {
                            let r = phase.unsent(
                                id,
                                at,
                                Outcome::Dropped,
                                "no free slot (--max-concurrency) before the end of the run",
                            );
                            let _ = phase.tx.send(r);
                            return;
                        }
                    }
                }
            };
            let rec = phase.one(id, at).await;
            let _ = phase.tx.send(rec);
        });
        // Reap finished tasks so the set stays small on long runs.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    Some(lateness)
}

fn progress_message(pb: &ProgressBar, errors: u64, tokens: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    pb.set_message(format!(
        "errors {errors} | {:.1} tok/s",
        tokens as f64 / secs
    ));
}

fn progress_bar(show: bool, total: Option<u64>, name: &str) -> ProgressBar {
    let target = if show {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let pb = match total {
        Some(n) => ProgressBar::with_draw_target(Some(n), target).with_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed_precise} {msg}")
                .expect("template")
                .progress_chars("=> "),
        ),
        None => ProgressBar::with_draw_target(None, target).with_style(
            ProgressStyle::with_template("{prefix} {spinner} {pos} done {elapsed_precise} {msg}")
                .expect("template"),
        ),
    };
    pb.set_prefix(name.to_string());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// Runs warmup then the measured phase of one scenario.
pub async fn run_scenario(
    client: Arc<Client>,
    sc: &Scenario,
    sinks: &mut Sinks,
    cancel: &Cancel,
) -> anyhow::Result<ScenarioResult> {
    if let Some(set) = sc.workload.conversations() {
        return crate::converse::run(client, sc, set, sinks, cancel).await;
    }
    let mut write_error: Option<anyhow::Error> = None;
    if sc.warmup > 0 && !cancel.soft.is_cancelled() {
        let concurrency = match sc.load {
            Load::Closed { concurrency } => concurrency,
            Load::Open {
                max_concurrency, ..
            } => max_concurrency.unwrap_or(1),
        };
        let warm_load = Load::Closed {
            concurrency: concurrency.min(sc.warmup as usize).max(1),
        };
        let stop = Stop {
            requests: Some(sc.warmup),
            duration: None,
        };
        let pb = progress_bar(
            sinks.progress,
            Some(sc.warmup),
            &format!("{} warmup", sc.name),
        );
        let mut acc = Accumulator::default();
        run_phase(
            client.clone(),
            sc,
            warm_load,
            stop,
            true,
            cancel,
            sinks,
            &pb,
            &mut acc,
            &mut write_error,
        )
        .await;
        pb.finish_and_clear();
    }
    let pb = progress_bar(sinks.progress, sc.stop.requests, &sc.name);
    let mut acc = Accumulator::default();
    let client_load = run_phase(
        client,
        sc,
        sc.load,
        sc.stop,
        false,
        cancel,
        sinks,
        &pb,
        &mut acc,
        &mut write_error,
    )
    .await;
    pb.finish_and_clear();
    if let Some(e) = write_error {
        return Err(e);
    }
    let summary = acc.finish();
    let warnings = crate::stats::warnings(&summary.metrics);
    Ok(ScenarioResult {
        name: sc.name.clone(),
        params: sc.params.clone(),
        outcomes: summary.outcomes,
        metrics: summary.metrics,
        errors: summary.errors,
        warnings: warnings
            .into_iter()
            .chain(client_load.reasons.iter().cloned())
            .collect(),
        client: Some(client_load),
        samples: Some(summary.samples),
        ..Default::default()
    })
}

#[allow(clippy::too_many_arguments)]
async fn run_phase(
    client: Arc<Client>,
    sc: &Scenario,
    load: Load,
    stop: Stop,
    warmup: bool,
    cancel: &Cancel,
    sinks: &mut Sinks,
    pb: &ProgressBar,
    acc: &mut Accumulator,
    write_error: &mut Option<anyhow::Error>,
) -> ClientLoad {
    let cpu_at_start = crate::health::process_cpu_s();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let phase = Arc::new(Phase {
        client,
        workload: sc.workload.clone(),
        scenario: sc.name.clone(),
        warmup,
        cancel: cancel.clone(),
        tx,
    });
    let driver = match load {
        Load::Closed { concurrency } => tokio::spawn(closed(phase, concurrency, stop)),
        Load::Open {
            rate,
            arrival,
            max_concurrency,
        } => tokio::spawn(open(
            phase,
            Offsets::new(rate, arrival, sc.seed),
            max_concurrency,
            stop,
        )),
    };
    let started = Instant::now();
    let (mut errors, mut tokens, mut dropped) = (0u64, 0u64, 0u64);
    let hidden = pb.is_hidden();
    let mut last_message = started;
    while let Some(rec) = rx.recv().await {
        dropped += (rec.outcome() == Outcome::Dropped) as u64;
        if let Some(w) = sinks.records.as_mut()
            && write_error.is_none()
            && let Err(e) = w.write(&rec)
        {
            *write_error = Some(e);
        }
        if rec.retried {
            // A retried attempt: written and counted apart; its request is still running.
        } else if rec.outcome() == Outcome::Succeeded {
            tokens += rec.output_tokens;
            pb.inc(1);
        } else {
            errors += 1;
            pb.inc(1);
        }
        // The message is formatted at most every 100 ms, and never for a hidden bar (`-q`):
        // at thousands of records per second a string per record is measurable client CPU.
        if !hidden && last_message.elapsed() >= Duration::from_millis(100) {
            last_message = Instant::now();
            progress_message(pb, errors, tokens, started);
        }
        if !warmup {
            acc.add(&rec);
        }
    }
    if !hidden {
        progress_message(pb, errors, tokens, started);
    }
    let lateness = driver.await.ok().flatten().and_then(|mut l| l.dist());
    let cpu_s = cpu_at_start
        .zip(crate::health::process_cpu_s())
        .map(|(a, b)| b - a);
    ClientLoad::judge(
        cpu_s,
        started.elapsed().as_secs_f64(),
        crate::health::cores(),
        lateness,
        dropped,
    )
}
