//! `llmbench optimize`: detects the machine, prints and writes the settings `crate::advice`
//! recommends, and with `--verify` benchmarks before and after.

use crate::cli::OptimizeArgs;
use crate::server::advice::{GB, Inputs, parallelism, recommend, script};
use crate::telemetry::system::{SystemInfo, detect};

fn inputs(a: &OptimizeArgs, sys: &SystemInfo) -> Inputs {
    Inputs {
        backend: a.backend,
        model_gb: a.model_gb.unwrap_or(4.7),
        model_gb_assumed: a.model_gb.is_none(),
        context: a.context,
        gpus: sys.gpus.len(),
        gpu_gb: sys.gpus.iter().map(|g| g.memory_total_bytes).sum::<u64>() as f64 / GB,
        mem_available_gb: sys
            .memory
            .available_bytes
            .or(sys.memory.total_bytes)
            .unwrap_or(0) as f64
            / GB,
        physical_cores: sys
            .cpu
            .physical_cores
            .or(sys.cpu.logical_cores)
            .unwrap_or(1),
    }
}

/// Runs `optimize`; returns the exit code.
pub async fn optimize(a: OptimizeArgs) -> anyhow::Result<i32> {
    if let Some(p) = &a.output {
        crate::settings::outputs::check_writable(p, "--output")?;
    }
    let sys = tokio::task::spawn_blocking(detect).await?;
    let i = inputs(&a, &sys);
    let settings = recommend(&i);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"inputs": i, "settings": settings}))?
        );
    } else {
        println!(
            "Settings for {} on {} GPU(s) ({:.1} GB), {:.1} GB RAM available, {} physical cores; model {:.1} GB{}, context {}:",
            i.backend,
            i.gpus,
            i.gpu_gb,
            i.mem_available_gb,
            i.physical_cores,
            i.model_gb,
            if i.model_gb_assumed {
                " (assumed: give --model-gb)"
            } else {
                ""
            },
            i.context
        );
        for st in &settings {
            println!("  {} = {}\n      {}", st.name, st.value, st.reason);
        }
    }
    if let Some(p) = &a.output {
        std::fs::write(p, script(&i, &settings))?;
        eprintln!("Settings written to {}", p.display());
    }
    let Some(cmd) = &a.server_cmd else {
        return Ok(0);
    };
    let url = a
        .url
        .clone()
        .unwrap_or_else(|| super::optimize_verify::default_url(a.backend).to_string());
    super::optimize_verify::verify(
        cmd,
        &settings,
        &url,
        &a.out_dir,
        &a.run_args,
        (2 * parallelism(&settings)).max(4),
        a.server_ready_timeout,
    )
    .await
}
