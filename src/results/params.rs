//! What a scenario was asked to do (`scenarios[].params`) and how the run was configured
//! (`config`), as typed structs. Fields are declared in alphabetical order, so the result file
//! keeps the key order it had when these were JSON maps. The first group of scenario fields is
//! written on every scenario (as `null` when unset); every other field only where it applies.

use serde::{Deserialize, Serialize};

/// Inter-arrival distribution of an open-loop schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Arrival {
    /// Exactly 1/rate apart.
    Constant,
    /// Exponential gaps (a Poisson process).
    Poisson,
    /// Gamma gaps with the given coefficient of variation (CV = 1 is Poisson; above 1 is
    /// burstier, below 1 more regular).
    Gamma {
        /// Coefficient of variation of the gaps.
        cv: f64,
    },
    /// At a trace's timestamps (`--trace`), divided by `--trace-speedup`; the rate is the
    /// trace's mean.
    Trace,
}

/// How load is applied.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Load {
    /// `concurrency` requests always in flight; the next is sent when one finishes.
    Closed {
        /// Requests in flight.
        concurrency: usize,
    },
    /// Requests are sent on schedule whether or not earlier ones finished.
    Open {
        /// Mean requests per second.
        rate: f64,
        /// Gap distribution.
        arrival: Arrival,
        /// Cap on requests in flight; a request waiting for a slot accrues queue time.
        max_concurrency: Option<usize>,
    },
}

/// A sweep's value: whole numbers stay whole in the file (`4`, not `4.0`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SweepValue {
    /// A whole number (concurrency, max tokens).
    Int(u64),
    /// Any other number (rate, temperature).
    Float(f64),
    /// A value that is not a number.
    Text(String),
}

impl SweepValue {
    /// Parsed from a sweep's command-line value.
    pub(crate) fn parse(v: &str) -> Self {
        if let Ok(n) = v.parse::<u64>() {
            Self::Int(n)
        } else if let Ok(x) = v.parse::<f64>() {
            Self::Float(x)
        } else {
            Self::Text(v.to_string())
        }
    }

    /// The value as a number, where it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Int(n) => Some(*n as f64),
            Self::Float(x) => Some(*x),
            Self::Text(_) => None,
        }
    }
}

impl std::fmt::Display for SweepValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Int(n) => write!(f, "{n}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Text(s) => f.write_str(s),
        }
    }
}

/// The point of a sweep one scenario ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// The swept flag, without dashes (`concurrency`).
    pub name: String,
    /// Its value in this scenario.
    pub value: SweepValue,
}

/// The server context length a conversation run fitted its histories into.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextLimit {
    /// Where the length came from (`--context-size`, `/props`, …).
    pub source: String,
    /// Tokens.
    pub tokens: u64,
}

/// What one scenario was asked to do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioParams {
    /// Audio clips sent with each request: the `--audio` lengths (`2.5s:1 wav`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<String>,
    /// `--chat-template` the prompts were rendered with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_template: Option<String>,
    /// Conversations: the context the histories were fitted into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_limit: Option<ContextLimit>,
    /// Conversations: `--context-size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_size: Option<u64>,
    /// Long-context suite step: the context length it fills (tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_tokens: Option<u64>,
    /// Conversations selected from the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversations: Option<u64>,
    /// `--conversations` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversations_file: Option<String>,
    /// Conversations run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversations_run: Option<u64>,
    /// Ids of the conversations left out (longer than the context allows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversations_skipped: Option<Vec<String>>,
    /// `--dataset` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// The dataset's format as read (`jsonl`, `sharegpt`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_format: Option<String>,
    /// Prompts in the dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_prompts: Option<u64>,
    /// `--duration` in seconds (always written).
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// Conversations: `--exclude-tag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_tags: Option<Vec<String>>,
    /// Images sent with each request: the `--image` sizes and encoding (`1024x768:2 jpeg`), or
    /// `dataset` when the dataset names them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<String>,
    /// Conversations: `--include-tag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_tags: Option<Vec<String>>,
    /// How load was applied (always written).
    #[serde(default)]
    pub load: Option<Load>,
    /// Output tokens asked per request (always written).
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// `--output-tokens`: mean output length asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// `--output-tokens-stdev`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_stdev: Option<f64>,
    /// Standard suite step: its fixed prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Synthetic prompts: mean length (tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    /// `--prompt-tokens-stdev`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_stdev: Option<f64>,
    /// `--repeat-ratio` (always written).
    #[serde(default)]
    pub repeat_ratio: Option<f64>,
    /// Requests asked (always written; `null` for a duration or conversations).
    #[serde(default)]
    pub requests: Option<u64>,
    /// Sweeps: the run's seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// `--shared-prefix-tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_prefix_tokens: Option<u64>,
    /// `--shuffle` of a dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shuffle: Option<bool>,
    /// Suite step name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Suite name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// Sweeps: the point this scenario ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepPoint>,
    /// Sampling temperature (always written; `null` when none was sent).
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Tools sent with requests: `dataset` when dataset records carry their own `"tools"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<String>,
    /// `--trace` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// The trace's format (`mooncake`, `azure`, `burstgpt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_format: Option<String>,
    /// Requests of the trace sent (after `--requests`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_requests: Option<u64>,
    /// Failure rows of the trace left out (BurstGPT rows with 0 response tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_skipped: Option<u64>,
    /// `--trace-speedup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_speedup: Option<f64>,
    /// Warm-up requests (always written).
    #[serde(default)]
    pub warmup: Option<u64>,
}

impl ScenarioParams {
    /// Concurrency of a closed-loop scenario.
    pub fn concurrency(&self) -> Option<usize> {
        match self.load? {
            Load::Closed { concurrency } => Some(concurrency),
            Load::Open { .. } => None,
        }
    }

    /// Rate of an open-loop scenario.
    pub fn rate(&self) -> Option<f64> {
        match self.load? {
            Load::Open { rate, .. } => Some(rate),
            Load::Closed { .. } => None,
        }
    }

    /// Its value of one of the flags a sweep varies (`concurrency`, `rate`, `temperature`,
    /// `max-tokens`, `prompt-tokens`), where it has one.
    pub fn flag_value(&self, flag: &str) -> Option<f64> {
        match flag {
            "concurrency" => self.concurrency().map(|c| c as f64),
            "rate" => self.rate(),
            "temperature" => self.temperature,
            "max-tokens" => self.max_tokens.map(f64::from),
            "prompt-tokens" => self.prompt_tokens.or(self.context_tokens).map(|n| n as f64),
            _ => None,
        }
    }

    /// `closed` or `open`.
    pub fn load_mode(&self) -> Option<&'static str> {
        self.load.map(|l| match l {
            Load::Closed { .. } => "closed",
            Load::Open { .. } => "open",
        })
    }
}

/// A sweep as the run recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepConfig {
    /// The swept flag, without dashes.
    pub name: String,
    /// Its values, in order.
    pub values: Vec<SweepValue>,
}

/// `config` in the result file: how a run was configured, or where `summarize` rebuilt a
/// result from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Config {
    /// A result `summarize` rebuilt from a records file.
    Rebuilt(Rebuilt),
    /// A run's settings.
    Run(RunConfig),
}

impl Default for Config {
    fn default() -> Self {
        Self::Run(RunConfig::default())
    }
}

impl Config {
    /// A run's settings; `None` for a rebuilt result.
    pub fn run(&self) -> Option<&RunConfig> {
        match self {
            Self::Run(c) => Some(c),
            Self::Rebuilt(_) => None,
        }
    }
}

/// Where `summarize` rebuilt a result from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rebuilt {
    /// What was wrong with the records file, if anything (a cut last line).
    pub note: Option<String>,
    /// Records read.
    pub records: u64,
    /// The records file.
    pub rebuilt_from_records: String,
}

/// How a run was configured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The API spoken (one spelling per backend).
    #[serde(default)]
    pub backend: String,
    /// How chunk arrivals were timed; absent in results written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_clock: Option<crate::measure::record::ChunkClock>,
    /// `--connect-timeout` in seconds.
    #[serde(default)]
    pub connect_timeout_s: f64,
    /// Names of the `--header`s sent (never their values).
    #[serde(default)]
    pub header_names: Vec<String>,
    /// `--idle-timeout` in seconds.
    #[serde(default)]
    pub idle_timeout_s: f64,
    /// `--ignore-eos`.
    #[serde(default)]
    pub ignore_eos: bool,
    /// Characters of the `--prompt` text.
    #[serde(default)]
    pub prompt_chars: usize,
    /// `--repeat-ratio`.
    #[serde(default)]
    pub repeat_ratio: Option<f64>,
    /// `--request-timeout` in seconds.
    #[serde(default)]
    pub request_timeout_s: f64,
    /// `--retries`.
    #[serde(default)]
    pub retries: u32,
    /// `--seed`.
    #[serde(default)]
    pub seed: u64,
    /// Whether replies were streamed.
    #[serde(default)]
    pub stream: bool,
    /// `--suite`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// `sweep`: the flag and its values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepConfig>,
    /// `-f FILE`: the scenario file the run was read from, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario_file: Option<String>,
    /// How tokens were counted where the server gave no count.
    #[serde(default)]
    pub tokenizer: String,
    /// Where the prompts came from (`synthetic`, `dataset`, `conversations`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
}
