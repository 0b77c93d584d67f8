//! `llmbench capacity`: its flags checked before any request, and the `run` flags each step
//! gets.

use anyhow::bail;

use crate::cli::{ByArg, CapacityFlags, RunArgs};
use crate::measure::capacity::By;
use crate::measure::slo::Target;

/// A step's budget when neither --requests nor --duration is given.
pub const DEFAULT_STEP_REQUESTS: u64 = 1000;
/// A step's time budget when neither is given.
pub const DEFAULT_STEP_DURATION: std::time::Duration = std::time::Duration::from_secs(60);
/// Highest load the search tries.
pub const MAX_LOAD: f64 = 100_000.0;

/// The search, validated.
#[derive(Debug, Clone)]
pub struct CapacitySettings {
    /// What is varied.
    pub by: By,
    /// Time for the whole search.
    pub max_time: std::time::Duration,
    /// First load.
    pub start: f64,
    /// Rate searches: relative width at which to stop.
    pub precision: f64,
    /// Finished requests between looks (`None`: the load, at least 5).
    pub check_every: Option<u64>,
    /// The targets (each a latency percentile).
    pub targets: Vec<Target>,
}

/// Checks the capacity flags and the `run` flags they come with; sets each step's default
/// budget into `run`.
pub fn capacity_settings(run: &mut RunArgs, f: &CapacityFlags) -> anyhow::Result<CapacitySettings> {
    if run.concurrency.is_some() || run.rate.is_some() {
        bail!(
            "--concurrency and --rate are chosen by the search: use --by concurrency|rate and --start"
        );
    }
    let Some(spec) = &run.outputs.slo else {
        bail!("capacity needs --slo, e.g. --slo \"ttft_p99<500ms,tpot_p99<50ms\"");
    };
    let targets = crate::measure::slo::parse(spec)?;
    for t in &targets {
        if t.step.is_some() {
            bail!(
                "--slo {:?}: capacity chooses the steps itself; give targets without @",
                t.spec
            );
        }
        if crate::measure::capacity::judgeable(t).is_none() {
            bail!(
                "--slo {:?}: capacity judges percentiles (p50, p90, p95, p99) of ttft, tpot, e2e or queue",
                t.spec
            );
        }
    }
    let by = match f.by {
        ByArg::Concurrency => By::Concurrency,
        ByArg::Rate => By::Rate,
    };
    let start_ok = match by {
        By::Concurrency => f.start >= 1.0 && f.start.fract() == 0.0 && f.start <= MAX_LOAD,
        By::Rate => f.start.is_finite() && f.start >= 0.01 && f.start <= MAX_LOAD,
    };
    if !start_ok {
        bail!(
            "--start {}: {}",
            f.start,
            match by {
                By::Concurrency => "a whole number of requests in flight, 1 or more",
                By::Rate => "requests per second, from 0.01",
            }
        );
    }
    if f.max_time.is_zero() {
        bail!("--max-time must be longer than 0");
    }
    let p = f.precision.trim();
    let precision = match p.strip_suffix('%') {
        Some(v) => v.trim().parse::<f64>().map(|x| x / 100.0),
        None => p.parse::<f64>(),
    };
    let precision = match precision {
        Ok(x) if x > 0.0 && x < 1.0 => x,
        _ => bail!(
            "--precision {:?}: a share between 0 and 1, e.g. 5% or 0.05",
            f.precision
        ),
    };
    if f.check_every == Some(0) {
        bail!("--check-every must be at least 1");
    }
    if run.requests.is_none() && run.duration.is_none() {
        run.requests = Some(DEFAULT_STEP_REQUESTS);
        run.duration = Some(DEFAULT_STEP_DURATION);
    }
    if run.workload.conversations.is_some() || run.workload.suite.is_some() {
        bail!("capacity runs one scenario per load: --conversations and --suite are not supported");
    }
    if run.workload.trace.is_some() {
        bail!("capacity sets the load itself: --trace is not supported");
    }
    Ok(CapacitySettings {
        by,
        max_time: f.max_time,
        start: f.start,
        precision,
        check_every: f.check_every,
        targets,
    })
}

/// Sets one step's load into its `run` flags.
pub fn set_load(run: &mut RunArgs, by: By, load: f64) {
    match by {
        By::Concurrency => run.concurrency = Some(load as usize),
        By::Rate => run.rate = Some(load),
    }
}

/// `--until METRIC_pQ±X%`: stop once the statistic's 95 % interval is that narrow.
#[derive(Debug, Clone)]
pub struct Until {
    /// As typed.
    pub spec: String,
    /// The statistic, as a target the capacity checks read (`<` 0: only its values matter).
    pub target: Target,
    /// Half-width allowed, as a share of the value.
    pub rel: f64,
}

/// Parses and checks `--until` (`None` when not given); it needs --requests or --duration.
pub fn until(run: &RunArgs) -> anyhow::Result<Option<Until>> {
    let Some(spec) = &run.until else {
        return Ok(None);
    };
    let bad = |why: &str| {
        anyhow::anyhow!(
            "--until {spec:?}: {why} (expected e.g. \"ttft_p99±5%\": a percentile of ttft, tpot, e2e or queue, ± a share)"
        )
    };
    let (stat, width) = spec
        .split_once('±')
        .or_else(|| spec.split_once("+-"))
        .ok_or_else(|| bad("no ±"))?;
    let target = crate::measure::slo::parse(&format!("{}<0", stat.trim()))
        .map_err(|_| bad("not a percentile"))?
        .pop()
        .ok_or_else(|| bad("not a percentile"))?;
    let _ = crate::measure::capacity::judgeable(&target).ok_or_else(|| bad("not a percentile"))?;
    let w = width.trim();
    let rel = match w.strip_suffix('%') {
        Some(v) => v.trim().parse::<f64>().map(|x| x / 100.0),
        None => w.parse::<f64>(),
    };
    let rel = match rel {
        Ok(x) if x > 0.0 && x < 1.0 => x,
        _ => {
            return Err(bad(
                "the width must be a share between 0 and 1, e.g. 5% or 0.05",
            ));
        }
    };
    if run.requests.is_none() && run.duration.is_none() {
        bail!("--until needs a bound: give --requests or --duration too");
    }
    Ok(Some(Until {
        spec: spec.clone(),
        target,
        rel,
    }))
}
