//! The result file: the public, versioned contract (see docs/architecture.md).

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::measure::stats::{ErrorCount, Metrics, Outcomes};

/// Bumped whenever a documented field is renamed or dropped.
pub const SCHEMA_VERSION: u32 = 1;

/// The tool that wrote the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Always `llmbench`.
    pub name: String,
    /// Version of llmbench.
    pub version: String,
}

impl Default for Tool {
    fn default() -> Self {
        Self {
            name: "llmbench".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// What was measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Base URL or endpoint (no credentials).
    pub url: String,
    /// Protocol used (`openai-chat`, ...).
    pub backend: String,
    /// Model name sent.
    pub model: String,
    /// True when the target was llmbench's built-in simulator.
    #[serde(default)]
    pub simulated: bool,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every scenario ran to its end.
    #[default]
    Completed,
    /// Stopped by the user; what was measured is kept.
    Cancelled,
    /// Still running (the file is rewritten after each scenario).
    Running,
    /// llmbench itself failed during the run (a panic): what was measured is kept in the file,
    /// but the run is not stored and the exit code is not 0.
    Failed,
    /// Writing the records file failed (a full disk): no new request was sent after that,
    /// those in flight finished, and what was measured is kept; `failure` says what failed.
    WriteFailed,
    /// Rebuilt by `summarize` from records that end without the run's end line: the run was
    /// killed (or crashed) before it finished.
    Interrupted,
}

/// One scenario: one load setting over one workload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// What this scenario varied (concurrency, rate, prompt, ...).
    pub params: crate::results::params::ScenarioParams,
    /// Requests by outcome; they sum to `scheduled`.
    pub outcomes: Outcomes,
    /// Measured metrics.
    pub metrics: Metrics,
    /// Most frequent error messages of failed requests.
    #[serde(default)]
    pub errors: Vec<ErrorCount>,
    /// Things the reader should know (length mismatches, client limits, ...).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Multi-turn conversations: statistics per turn index (across conversations).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub turns: Vec<crate::measure::turns::TurnStats>,
    /// Conversations with documents: requests with documents in context against those without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rag: Option<crate::measure::turns::RagStats>,
    /// What the client cost and whether it kept up (see docs/architecture.md, "Was the
    /// client the limit?").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<crate::measure::health::ClientLoad>,
    /// Host, server-process and GPU samples taken during the scenario, with mean/peak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<crate::telemetry::resources::ResourceTimeline>,
    /// The server's own metrics (Prometheus) scraped before, during and after the scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_metrics: Option<crate::telemetry::scrape::ServerMetrics>,
    /// Per-request latencies of succeeded requests (goodput, significance tests in `compare`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<crate::measure::stats::RequestSamples>,
    /// Performance targets (`--slo`): each target's value and verdict, and goodput.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<crate::measure::slo::SloResult>,
    /// Cost per million tokens at the measured throughput (`--gpu-cost-per-hour`); null
    /// without it or without a GPU count.
    #[serde(default)]
    pub cost: Option<crate::measure::cost::Cost>,
    /// Energy the GPUs used over the measured window (J, from NVML's energy counters); null
    /// when they cannot be read.
    #[serde(default)]
    pub energy_j: Option<f64>,
    /// `energy_j` / output tokens of succeeded requests; null when either is unknown.
    #[serde(default)]
    pub energy_j_per_output_token: Option<f64>,
    /// Throughput and latency over the steady-state window, when a ramp-up or drain was
    /// detected (see docs/architecture.md, "Steady state"); null otherwise.
    #[serde(default)]
    pub steady_state: Option<crate::measure::steady::SteadyState>,
    /// `--until`: the statistic's interval when the scenario ended, and whether it was narrow
    /// enough (the scenario stopped for it) or the bound came first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<crate::measure::capacity::UntilResult>,
    /// A shard's statistics before they were summed up (`run --shard`), which `merge` adds
    /// exactly; absent from every other result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_state: Option<Box<crate::measure::stats::Accumulator>>,
    /// The scenario over time: per bin, requests sent and ended, in flight, throughput, TTFT
    /// and ITL percentiles (`measure::timeline`); absent when no request was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<crate::measure::timeline::TimelineResult>,
}

impl ScenarioResult {
    /// A scenario's result from its statistics: outcomes, metrics, errors, samples, and the
    /// warnings the metrics call for. The one constructor the runner, the conversation driver
    /// and `summarize` share.
    pub fn from_summary(
        name: &str,
        params: crate::results::params::ScenarioParams,
        s: crate::measure::stats::Summary,
    ) -> Self {
        let open_loop = matches!(params.load, Some(crate::results::params::Load::Open { .. }));
        Self {
            steady_state: crate::measure::steady::analyze(&s.timings, open_loop),
            timeline: s.timeline,
            name: name.to_string(),
            params,
            warnings: crate::measure::stats::warnings(&s.metrics),
            outcomes: s.outcomes,
            metrics: s.metrics,
            errors: s.errors,
            samples: Some(s.samples),
            ..Default::default()
        }
    }

    /// What the scenario measured, as `--slo` targets see it.
    pub fn measured(&self) -> crate::measure::slo::Measured<'_> {
        crate::measure::slo::Measured {
            outcomes: &self.outcomes,
            metrics: &self.metrics,
            samples: self.samples.as_ref(),
        }
    }
}

/// Writes a result file's text whole: into a temporary file beside `path`, then renamed.
pub fn write_text(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let written = std::fs::write(&tmp, text)
        .with_context(|| format!("cannot write result file {}", tmp.display()))
        .and_then(|_| {
            std::fs::rename(&tmp, path)
                .with_context(|| format!("cannot write result file {}", path.display()))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResultFile {
    /// Version of this format.
    pub schema_version: u32,
    /// The writer.
    pub tool: Tool,
    /// Unique id of the run.
    pub run_id: String,
    /// Wall-clock start, RFC 3339.
    pub started_at: String,
    /// Wall-clock end, RFC 3339.
    pub finished_at: Option<String>,
    /// How the run ended.
    pub status: RunStatus,
    /// What failed, when `status` is `write_failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// What was measured.
    pub target: Target,
    /// Host, CPU, memory, GPU; `null` when unknown (a result rebuilt by `summarize`).
    #[serde(default)]
    pub system: Option<crate::telemetry::system::SystemInfo>,
    /// The run configuration, secrets removed.
    pub config: crate::results::params::Config,
    /// One entry per scenario, in run order.
    pub scenarios: Vec<ScenarioResult>,
    /// Scenarios not run, with the reason (e.g. larger than the server's context).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// The server measured: kind and version as probed, metrics endpoint, process followed,
    /// and how llmbench ran it when it did (`--server-cmd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<crate::server::managed::ServerRecord>,
    /// `llmbench capacity`: the load found under the targets, its interval and the steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<crate::measure::capacity::CapacityResult>,
    /// A shard result (`run --shard K/N`): the shard and its time base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::results::shard::ShardInfo>,
    /// A merged result (`llmbench merge`): its shards and their health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<crate::results::shard::MergeInfo>,
}

/// A scenario that was not run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// Scenario name.
    pub name: String,
    /// Its parameters, as a run would have recorded them.
    pub params: crate::results::params::ScenarioParams,
    /// Why it was not run.
    pub reason: String,
}

impl ResultFile {
    /// Writes the file atomically (temporary file, then rename).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        write_text(path, &self.to_text()?)
    }

    /// The file's text (pretty JSON and a final newline), as written and as stored.
    pub fn to_text(&self) -> anyhow::Result<String> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        Ok(text)
    }

    /// Reads a result file, checking its schema version.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read result file {}", path.display()))?;
        let v: ResultFile = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not an llmbench result file", path.display()))?;
        if v.schema_version > SCHEMA_VERSION {
            anyhow::bail!(
                "{} has schema_version {}, newer than this llmbench understands ({})",
                path.display(),
                v.schema_version,
                SCHEMA_VERSION
            );
        }
        Ok(v)
    }
}

/// A new run id: UTC time plus a random suffix.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let suffix: u32 = rand::random();
    format!("{}-{:06x}", now.format("%Y%m%dT%H%M%S"), suffix & 0xff_ffff)
}

/// Current wall-clock time, RFC 3339.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
