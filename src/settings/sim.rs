//! The built-in simulator's flags become its configuration.

use anyhow::{Context, bail};

use crate::cli::SimArgs;
use crate::sim::SimConfig;
use crate::sim::engine::{EngineConfig, Timing};

/// Simulator settings from flags.
pub fn sim_config(a: &SimArgs) -> anyhow::Result<SimConfig> {
    if !(a.prefill_ms_per_token >= 0.0 && a.prefill_ms_per_token.is_finite()) {
        bail!(
            "--prefill-ms-per-token must be a finite number, zero or more (got {})",
            a.prefill_ms_per_token
        );
    }
    let timing = match (a.ttft_ms, a.itl_ms) {
        (Some(ttft_ms), Some(itl_ms)) => {
            if !(ttft_ms >= 0.0 && itl_ms >= 0.0) {
                bail!("--ttft-ms and --itl-ms must be zero or more");
            }
            Timing::Fixed {
                ttft_ms,
                itl_ms,
                tokens: a.tokens,
            }
        }
        _ => {
            if a.max_batch == 0 {
                bail!("--max-batch must be at least 1");
            }
            for (flag, v) in [
                ("--decode-ms", a.decode_ms),
                ("--decode-ms-per-seq", a.decode_ms_per_seq),
            ] {
                if !(v >= 0.0 && v.is_finite()) {
                    bail!("{flag} must be a finite number, zero or more (got {v})");
                }
            }
            Timing::Engine(EngineConfig {
                prefill_ms_per_token: a.prefill_ms_per_token,
                decode_ms: a.decode_ms,
                decode_ms_per_seq: a.decode_ms_per_seq,
                max_batch: a.max_batch,
            })
        }
    };
    Ok(SimConfig {
        model: a.sim_model.clone(),
        timing,
        context_length: a.context_length,
        cache_blocks: a.cache_blocks,
        seed: a.sim_seed,
        token_bytes: match a.token_bytes {
            Some(0) => bail!("--token-bytes must be at least 1"),
            n => n,
        },
        faults: fault_config(a)?,
        reasoning_tokens: a.reasoning_tokens,
        tool_calls: a.tool_calls,
        image_ms_per_token: a.prefill_ms_per_token,
        tokens_per_chunk: match a.tokens_per_chunk.as_str() {
            "mix" => 0,
            k => match k.parse::<u32>() {
                Ok(n @ 1..=1024) => n,
                _ => bail!(
                    "--tokens-per-chunk must be a whole number from 1 to 1024, or mix (got {k:?})"
                ),
            },
        },
        send_log: match &a.send_log {
            Some(p) => {
                super::outputs::check_writable(p, "--send-log")?;
                Some(p.clone())
            }
            None => None,
        },
        ..SimConfig::default()
    })
}

/// Fault-injection settings from flags.
fn fault_config(a: &SimArgs) -> anyhow::Result<crate::sim::fault::FaultConfig> {
    use crate::sim::fault::{Fault, FaultConfig};
    let kinds = a
        .fault
        .iter()
        .map(|k| {
            Fault::parse(k).with_context(|| {
                let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "--fault {k:?} is not known; choose from {}",
                    names.join(", ")
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if !(0.0..=1.0).contains(&a.fault_rate) {
        bail!(
            "--fault-rate must be between 0 and 1 (got {})",
            a.fault_rate
        );
    }
    if !(a.fault_trickle_ms >= 0.0 && a.fault_trickle_ms.is_finite()) {
        bail!(
            "--fault-trickle-ms must be zero or more (got {})",
            a.fault_trickle_ms
        );
    }
    Ok(FaultConfig {
        kinds,
        rate: a.fault_rate,
        seed: a.sim_seed,
        after_tokens: a.fault_after_tokens,
        stall: a.fault_stall,
        trickle_ms: a.fault_trickle_ms,
    })
}
