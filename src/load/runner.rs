//! Runs scenarios: drives the schedule, hands requests to the client, and collects records.
//!
//! Workers send finished records over a channel to the phase's collector (`super::collect`),
//! in this task. A soft cancel stops
//! new sends; a hard cancel ends in-flight requests as `cancelled`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::{Semaphore, mpsc};

use super::collect::{Collected, Collector, Unit};
use super::schedule::{Arrival, Load, Offsets, Stop};
use super::shard::Shard;
use super::{Cancel, Scenario, Sinks};
use crate::measure::health::ClientLoad;
use crate::measure::record::{Outcome, Record};
use crate::measure::stats::Samples;
use crate::results::file::ScenarioResult;
use crate::transport::client::Client;
use crate::workload::Workload;

struct Phase {
    client: Arc<Client>,
    workload: Arc<dyn Workload>,
    scenario: String,
    warmup: bool,
    cancel: Cancel,
    tx: mpsc::Sender<Record>,
    in_flight: super::live::InFlight,
}

impl Phase {
    /// Runs request `id` scheduled at `scheduled` (a hard cancel ends it as `cancelled`).
    async fn one(&self, id: u64, scheduled: Instant) -> Record {
        let spec = if self.warmup {
            self.workload.get_warmup(id)
        } else {
            self.workload.get(id)
        };
        let client = &self.client;
        let _in_flight = self.in_flight.start();
        // Retried attempts reach the collector before the request's final record.
        let mut retried = Vec::new();
        let mut on_retried = |mut r: Record| {
            r.scenario = self.scenario.clone();
            r.id = id;
            r.warmup = self.warmup;
            retried.push(r);
        };
        // A hard cancel ends it inside the client, keeping what it had received.
        let mut rec = client
            .execute_retrying(&spec, scheduled, &mut on_retried)
            .await;
        for r in retried {
            let _ = self.tx.send(r).await;
        }
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

/// A shard (`--shard`) runs its part of the workers and draws its own ids of the plan, from
/// the shared start instant.
async fn closed(
    phase: Arc<Phase>,
    concurrency: usize,
    stop: Stop,
    shard: Option<Shard>,
    start: Option<Instant>,
) -> Option<Samples> {
    let next = Arc::new(AtomicU64::new(0));
    if let Some(at) = start {
        tokio::select! {
            _ = crate::load::timer::sleep_until(at) => {}
            _ = phase.cancel.soft.cancelled() => return None,
        }
    }
    let start = Instant::now();
    let concurrency = shard.map_or(concurrency, |s| s.concurrency(concurrency));
    let mut workers = tokio::task::JoinSet::new();
    // Never more workers than requests: the cost follows the work, not the flag.
    let most = stop
        .requests
        .map_or(usize::MAX, |n| n.min(usize::MAX as u64) as usize);
    for _ in 0..concurrency.min(most).max(1) {
        let (phase, next) = (phase.clone(), next.clone());
        workers.spawn(async move {
            loop {
                if phase.cancel.soft.is_cancelled() {
                    break;
                }
                if stop.duration.is_some_and(|d| start.elapsed() >= d) {
                    break;
                }
                let k = next.fetch_add(1, Ordering::Relaxed);
                let id = shard.map_or(k, |s| s.id(k));
                if stop.requests.is_some_and(|n| id >= n) {
                    break;
                }
                let rec = phase.one(id, Instant::now()).await;
                let _ = phase.tx.send(rec).await;
            }
        });
        // One worker starts at a time, and the client polls its sockets between two: the
        // responses of the requests already sent are read on time instead of waiting behind
        // every other worker's first send (a thousand connects and writes, ~90 ms on one
        // core). Each request is stamped when it goes, so starting a little later costs no
        // accuracy; reading late would.
        tokio::task::yield_now().await;
    }
    while workers.join_next().await.is_some() {}
    None
}

/// Returns the dispatcher's lateness (fired − scheduled, ms) for every request it issued. A
/// shard (`--shard`) walks the whole schedule from the shared start instant and sends its own
/// ids at their offsets.
async fn open(
    phase: Arc<Phase>,
    offsets: Offsets,
    max_concurrency: Option<usize>,
    stop: Stop,
    shard: Option<Shard>,
    start: Option<Instant>,
) -> Option<Samples> {
    let mut lateness = Samples::default();
    let slots = max_concurrency.map(|n| Arc::new(Semaphore::new(n)));
    let start = start.unwrap_or_else(Instant::now);
    let deadline = stop.duration.map(|d| start + d);
    let mut tasks = tokio::task::JoinSet::new();
    for (id, offset) in (0u64..).zip(offsets) {
        if stop.requests.is_some_and(|n| id >= n) || stop.duration.is_some_and(|d| offset >= d) {
            break;
        }
        if shard.is_some_and(|s| !s.owns(id)) {
            continue;
        }
        let at = start + offset;
        tokio::select! {
            _ = crate::load::timer::sleep_until(at) => {}
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
                            let _ = phase.tx.send(r).await;
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
                            let _ = phase.tx.send(r).await;
                            return;
                        }
                    }
                }
            };
            let rec = phase.one(id, at).await;
            let _ = phase.tx.send(rec).await;
        });
        // Reap finished tasks so the set stays small on long runs.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    Some(lateness)
}

/// The warm-up phase (`--warmup N`): N requests from the workload's warm-up prompts, at the
/// scenario's concurrency (at most N), written to the records as warm-up and left out of the
/// statistics. Plain runs and conversations both start with it.
pub(crate) async fn warm_up(
    client: &Arc<Client>,
    sc: &Scenario,
    sinks: &mut Sinks,
    cancel: &Cancel,
) {
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
        let name = format!("{} warmup", sc.name);
        let col = Collector::new(
            sinks.view,
            Some(sc.warmup),
            None,
            &name,
            Unit::Requests,
            false,
        );
        let _ = run_phase(
            client.clone(),
            sc,
            warm_load,
            stop,
            true,
            cancel,
            sinks,
            col,
        )
        .await;
    }
}

/// Runs warmup then the measured phase of one scenario of single requests.
pub(crate) async fn run(
    client: Arc<Client>,
    sc: &Scenario,
    sinks: &mut Sinks,
    cancel: &Cancel,
) -> anyhow::Result<ScenarioResult> {
    warm_up(&client, sc, sinks, cancel).await;
    let col = Collector::new(
        sinks.view,
        sc.stop.requests,
        sc.stop.duration,
        &sc.name,
        Unit::Requests,
        true,
    );
    let col = col.keep_state(sc.shard.is_some());
    let energy_at_start = sinks.energy.and_then(|f| f());
    let (client_load, got) =
        run_phase(client, sc, sc.load, sc.stop, false, cancel, sinks, col).await;
    let energy_at_end = sinks.energy.and_then(|f| f());
    let mut res = ScenarioResult::from_summary(&sc.name, sc.params.clone(), got.summary);
    res.energy_j = energy_at_start
        .zip(energy_at_end)
        .map(|(a, b)| b - a)
        .filter(|e| *e >= 0.0);
    res.warnings.extend(client_load.reasons.iter().cloned());
    res.client = Some(client_load);
    res.shard_state = got.state.map(Box::new);
    Ok(res)
}

/// Sends one phase's requests and collects them; judges whether the client kept up.
#[allow(clippy::too_many_arguments)]
async fn run_phase(
    client: Arc<Client>,
    sc: &Scenario,
    load: Load,
    stop: Stop,
    warmup: bool,
    cancel: &Cancel,
    sinks: &mut Sinks,
    mut col: Collector,
) -> (ClientLoad, Collected) {
    let cpu_at_start = crate::measure::health::process_cpu_s();
    // Warm-up is never sharded (settings refuse `--warmup` with `--shard`).
    let (shard, start) = if warmup {
        (None, None)
    } else {
        (sc.shard, sc.start)
    };
    let (tx, mut rx) = mpsc::channel(super::COLLECT_QUEUE);
    let phase = Arc::new(Phase {
        client,
        workload: sc.workload.clone(),
        scenario: sc.name.clone(),
        warmup,
        cancel: cancel.clone(),
        tx,
        in_flight: col.in_flight(),
    });
    let driver = match load {
        Load::Closed { concurrency } => {
            tokio::spawn(closed(phase, concurrency, stop, shard, start))
        }
        Load::Open {
            rate,
            arrival,
            max_concurrency,
        } => tokio::spawn(open(
            phase,
            match &sc.trace_offsets {
                Some(t) if arrival == Arrival::Trace => Offsets::trace(t.clone()),
                _ => Offsets::new(rate, arrival, sc.seed),
            },
            max_concurrency,
            stop,
            shard,
            start,
        )),
    };
    while let Some(rec) = rx.recv().await {
        col.take(&rec, sinks).await;
    }
    let lateness = driver.await.ok().flatten().and_then(|mut l| l.dist());
    let cpu_s = cpu_at_start
        .zip(crate::measure::health::process_cpu_s())
        .map(|(a, b)| b - a);
    let elapsed = col.elapsed_s();
    let got = col.finish();
    let load = ClientLoad::judge(
        cpu_s,
        elapsed,
        crate::measure::health::cores(),
        lateness,
        got.dropped,
    );
    (load, got)
}
