//! Applying load: the schedule says when, the runner and the conversation driver send each
//! request through the transport and hand every finished record to one collector.

pub(crate) mod collect;
pub mod converse;
pub(crate) mod live;
pub mod runner;
pub mod schedule;
pub mod shard;
pub mod timer;
pub mod tui;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::results::file::ScenarioResult;
use crate::results::records::RecordWriter;
use crate::transport::client::Client;
use crate::workload::Workload;
use schedule::{Load, Stop};

/// Finished records waiting for the collector at most: a collector that falls behind holds
/// the senders back instead of filling memory.
pub(crate) const COLLECT_QUEUE: usize = 1024;

/// One scenario to run.
#[derive(Clone)]
pub struct Scenario {
    /// Name in reports.
    pub name: String,
    /// What the scenario varies, as written to the result file.
    pub params: crate::results::params::ScenarioParams,
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
    /// Send offsets of a trace replay (`Arrival::Trace`), one per request.
    pub trace_offsets: Option<Arc<[std::time::Duration]>>,
    /// `--shard K/N`: only this shard's part of the plan is sent (see `shard`).
    pub shard: Option<shard::Shard>,
    /// When the measured phase starts (`--start-at`, the same instant on every shard); `None`:
    /// at once.
    pub start: Option<std::time::Instant>,
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
    /// What a phase shows on stderr: nothing, the progress bar, or the full screen.
    pub view: tui::View,
    /// Cancelled when writing the records file fails: no new request is sent after that (the
    /// run's soft cancel).
    pub stop: CancellationToken,
    /// The first write failure (the records file), set by the collector.
    pub failure: Option<String>,
    /// Reads the GPUs' cumulative energy counters (J), at the start and end of each measured
    /// phase; `None` (or a reading of `None`): no energy figure.
    pub energy: Option<fn() -> Option<f64>>,
    /// Sees every measured record of the scenario running; when it returns true, `stop` is
    /// cancelled (no new request; those in flight finish).
    pub watch: Option<Watch>,
}

/// Watches a scenario's measured records as they finish; true: enough, stop sending.
pub type Watch = Box<dyn FnMut(&crate::measure::record::Record) -> bool + Send>;

/// Scenarios chosen one at a time from the results so far (`capacity`), instead of a fixed
/// list.
pub trait Steps: Send {
    /// The next scenario and the watcher of its records; `None` ends the run.
    fn next(&mut self, done: &[ScenarioResult]) -> Option<(Scenario, Option<Watch>)>;
    /// Adds what the steps found to the result file (`cancelled`: the run was stopped).
    fn finish(&mut self, result: &mut crate::results::file::ResultFile, cancelled: bool);
}

/// Runs one scenario (warm-up, then the measured phase): conversations turn by turn, other
/// workloads request by request.
pub async fn run_scenario(
    client: Arc<Client>,
    sc: &Scenario,
    sinks: &mut Sinks,
    cancel: &Cancel,
) -> anyhow::Result<ScenarioResult> {
    match sc.workload.conversations() {
        Some(set) => converse::run(client, sc, set, sinks, cancel).await,
        None => runner::run(client, sc, sinks, cancel).await,
    }
}
