//! Cost and energy per token at the measured throughput: pure arithmetic, no I/O.
//!
//! - `usd_per_million_output_tokens` = `usd_per_hour · gpus / 3600 / output_tokens_per_s · 10⁶`:
//!   what the GPUs cost while they produce a million output tokens at the rate measured.
//! - `usd_per_million_input_tokens` = the same hourly cost over the input (prompt) token rate,
//!   `total_tokens_per_s − output_tokens_per_s`. Each figure charges the whole cost to its own
//!   kind of token (as price lists quote them), so the two are not shares of one bill.
//! - `energy_j_per_output_token` = the GPUs' energy counters' increase over the measured
//!   window (J) / output tokens of succeeded requests.
//!
//! A figure that cannot be known (no GPU count, no tokens, no counter) is `None`, never 0.

use serde::{Deserialize, Serialize};

use crate::measure::metrics::Metrics;

/// Cost per million tokens at one scenario's measured throughput.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// `--gpu-cost-per-hour`: US dollars per GPU per hour.
    pub usd_per_hour: f64,
    /// GPUs paid for (`--gpus`, else the detected count).
    pub gpus: u32,
    /// Dollars per million output tokens; null when no output token was measured.
    pub usd_per_million_output_tokens: Option<f64>,
    /// Dollars per million input tokens; null when no input token was measured.
    pub usd_per_million_input_tokens: Option<f64>,
}

/// Dollars per million tokens flowing at `tokens_per_s` while `usd_per_s` is spent.
fn per_million(usd_per_s: f64, tokens_per_s: f64) -> Option<f64> {
    (tokens_per_s > 0.0 && tokens_per_s.is_finite()).then(|| usd_per_s / tokens_per_s * 1e6)
}

/// The cost of a scenario: `None` without a GPU count (nothing to multiply).
pub fn cost(usd_per_hour: f64, gpus: Option<u32>, m: &Metrics) -> Option<Cost> {
    let gpus = gpus.filter(|&g| g > 0)?;
    let usd_per_s = usd_per_hour * gpus as f64 / 3600.0;
    let input_per_s = (m.total_tokens_per_s - m.output_tokens_per_s).max(0.0);
    Some(Cost {
        usd_per_hour,
        gpus,
        usd_per_million_output_tokens: per_million(usd_per_s, m.output_tokens_per_s),
        usd_per_million_input_tokens: per_million(usd_per_s, input_per_s),
    })
}

/// Joules per output token: `energy_j` over the measured window / output tokens.
pub fn joules_per_token(energy_j: Option<f64>, output_tokens: u64) -> Option<f64> {
    let e = energy_j.filter(|e| e.is_finite() && *e >= 0.0)?;
    (output_tokens > 0).then(|| e / output_tokens as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(out: f64, total: f64) -> Metrics {
        Metrics {
            output_tokens_per_s: out,
            total_tokens_per_s: total,
            ..Default::default()
        }
    }

    #[test]
    fn cost_per_million_tokens_is_exact_arithmetic() {
        // 2 GPUs at $3.60/h spend $0.002/s; at 1000 output tok/s a million take 1000 s: $2.
        let c = cost(3.6, Some(2), &metrics(1000.0, 1500.0)).unwrap();
        assert_eq!(c.gpus, 2);
        assert_eq!(c.usd_per_hour, 3.6);
        assert!((c.usd_per_million_output_tokens.unwrap() - 2.0).abs() < 1e-12);
        // 500 input tok/s: a million take 2000 s, $4.
        assert!((c.usd_per_million_input_tokens.unwrap() - 4.0).abs() < 1e-12);
        // One GPU at $1/h, 100 tok/s: 10^6/100 s = 10^4 s = 2.777… h.
        let c = cost(1.0, Some(1), &metrics(100.0, 100.0)).unwrap();
        assert!((c.usd_per_million_output_tokens.unwrap() - 1e4 / 3600.0).abs() < 1e-12);
        // No input tokens: null, not 0 or infinity.
        assert_eq!(c.usd_per_million_input_tokens, None);
    }

    #[test]
    fn unknown_figures_are_none() {
        assert_eq!(cost(2.0, None, &metrics(100.0, 200.0)), None);
        assert_eq!(cost(2.0, Some(0), &metrics(100.0, 200.0)), None);
        let c = cost(2.0, Some(1), &metrics(0.0, 0.0)).unwrap();
        assert_eq!(c.usd_per_million_output_tokens, None);
        assert_eq!(joules_per_token(None, 10), None);
        assert_eq!(joules_per_token(Some(5.0), 0), None);
        assert_eq!(joules_per_token(Some(f64::NAN), 10), None);
        assert_eq!(joules_per_token(Some(300.0), 200), Some(1.5));
    }
}
