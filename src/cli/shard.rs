//! Flags of sharded runs (`run --shard`) and of `llmbench merge`.

use std::path::PathBuf;

use clap::Args;

/// Help heading of the sharding flags of `run`.
pub(crate) const H_SHARD: &str = "Sharded runs (several load hosts)";

/// `run`'s sharding flags.
#[derive(Debug, Clone, Default, Args)]
pub struct ShardArgs {
    /// Run shard K of N of the plan (K from 0); needs --start-at and -o.
    ///
    /// Open loop: this shard sends the plan's requests whose id i has i mod N = K, at the send
    /// offsets the unsharded schedule gives them. Closed loop: --concurrency is split as
    /// evenly as possible. The result file is a shard result; `llmbench merge` adds the
    /// shards' results into one.
    #[arg(long, value_name = "K/N", help_heading = H_SHARD, hide_short_help = true)]
    pub shard: Option<String>,

    /// Begin the measured phase at this wall-clock instant (RFC 3339, e.g. 2026-01-01T12:00:00Z).
    ///
    /// Every shard of a plan is given the same instant, so they start together; the run
    /// waits for it. The records' times count from it.
    #[arg(long, value_name = "TIME", help_heading = H_SHARD, hide_short_help = true)]
    pub start_at: Option<String>,

    /// Measure this host's clock offset against a `llmbench clock` endpoint (http://HOST:PORT).
    ///
    /// Cristian's method: the exchange with the smallest round trip of several gives the
    /// offset, known to within half that round trip. The start time and the shard result's
    /// time base are corrected by it.
    #[arg(long, value_name = "URL", help_heading = H_SHARD, hide_short_help = true)]
    pub clock: Option<String>,

    /// Test hook: this process's wall clock reads this many ms ahead (negative: behind).
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 0.0,
        allow_negative_numbers = true,
        hide = true
    )]
    pub clock_offset: f64,
}

/// `llmbench clock`.
#[derive(Debug, Clone, Args)]
pub struct ClockArgs {
    /// Port to listen on.
    #[arg(short, long, default_value_t = 7777)]
    pub port: u16,

    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub host: std::net::IpAddr,
}

/// `llmbench k8s`.
#[derive(Debug, Clone, Args)]
pub struct K8sArgs {
    /// Shards (pods) to run the plan on.
    #[arg(long, value_name = "N")]
    pub shards: u32,

    /// Container image whose entry point is llmbench.
    #[arg(long, value_name = "IMAGE")]
    pub image: String,

    /// Name of the Job (the clock Service is NAME-clock).
    #[arg(long, default_value = "llmbench", value_name = "NAME")]
    pub name: String,

    /// Start the shards this long after the manifest is written (apply it before then).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2m", value_name = "DUR")]
    pub start_in: std::time::Duration,

    /// CPU of each shard (request and limit), as Kubernetes writes it (2, 500m).
    #[arg(long, default_value = "2", value_name = "CPU")]
    pub cpu: String,

    /// Memory of each shard (request and limit), as Kubernetes writes it (1Gi, 512Mi).
    #[arg(long, default_value = "1Gi", value_name = "MEM")]
    pub memory: String,

    /// Give each shard the API key from this Kubernetes Secret (SECRET or SECRET:KEY, key
    /// default api-key), in the variable --api-key-env names.
    #[arg(long, value_name = "SECRET[:KEY]")]
    pub api_key_secret: Option<String>,

    /// Write each shard's result to this PersistentVolumeClaim (at /results/shard-K.json)
    /// instead of standard output (read then with kubectl logs).
    #[arg(long, value_name = "CLAIM")]
    pub results_claim: Option<String>,

    /// `run`'s URL and flags, after `--` (e.g. -- http://vllm:8000 -r 50 -n 5000).
    #[arg(last = true, required = true, value_name = "RUN_ARGS")]
    pub run: Vec<String>,
}

/// `llmbench merge`.
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// The shard results (`run --shard K/N -o FILE`), one per shard of one plan (with
    /// --records: the shards' records files).
    #[arg(required = true, value_name = "SHARD_RESULT")]
    pub inputs: Vec<PathBuf>,

    /// The inputs are the shards' --records files (their result files lost): every record
    /// summarized as one run.
    #[arg(long)]
    pub records: bool,

    /// Write the merged result file here.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: PathBuf,

    /// Do not record the merged run in the results store ($LLMBENCH_HOME/llmbench.db).
    #[arg(long, env = "LLMBENCH_NO_STORE", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_store: bool,
}
