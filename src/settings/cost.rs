//! `--gpu-cost-per-hour` and `--gpus`: checked here, before any request.

use anyhow::bail;

use crate::cli::TelemetryArgs;

/// What the GPUs cost, as given.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CostSettings {
    /// Dollars per GPU per hour; `None`: no cost figures.
    pub usd_per_hour: Option<f64>,
    /// GPUs paid for; `None`: the detected count.
    pub gpus: Option<u32>,
}

/// Validates the cost flags: a price must be a finite number ≥ 0, a GPU count at least 1.
pub fn cost_settings(t: &TelemetryArgs) -> anyhow::Result<CostSettings> {
    if let Some(u) = t.gpu_cost_per_hour
        && (!u.is_finite() || u < 0.0)
    {
        bail!("--gpu-cost-per-hour {u}: must be a finite number of dollars ≥ 0");
    }
    let gpus = match t.gpus {
        None => None,
        Some(n) if (1..=i64::from(u32::MAX)).contains(&n) => Some(n as u32),
        Some(n) => bail!("--gpus {n}: must be at least 1"),
    };
    if gpus.is_some() && t.gpu_cost_per_hour.is_none() {
        bail!("--gpus counts the GPUs --gpu-cost-per-hour prices: give --gpu-cost-per-hour too");
    }
    Ok(CostSettings {
        usd_per_hour: t.gpu_cost_per_hour,
        gpus,
    })
}

impl CostSettings {
    /// GPUs to charge: the flag, else the `detected` count when it is above zero.
    pub fn gpus_or(&self, detected: usize) -> Option<u32> {
        self.gpus
            .or_else(|| u32::try_from(detected).ok().filter(|&n| n > 0))
    }
}
