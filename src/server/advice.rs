//! The rules behind `llmbench optimize`: server settings recommended for the hardware and
//! model size, each with its reason. Plain arithmetic on memory and cores, no I/O.

use std::fmt::Write;

use serde::Serialize;

use super::detect::ServerKind;

/// One recommended setting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting {
    /// Environment variable or flag.
    pub name: String,
    /// Recommended value.
    pub value: String,
    /// Why.
    pub reason: String,
    /// `env` (environment variable), `flag` (command-line flag) or `option` (per-request option).
    pub kind: &'static str,
}

/// What the rules work from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inputs {
    /// Server the settings are for.
    pub backend: ServerKind,
    /// Model weights (GB) as given, or the assumed default.
    pub model_gb: f64,
    /// True when `model_gb` was not given.
    pub model_gb_assumed: bool,
    /// Context wanted per request (tokens).
    pub context: u64,
    /// GPUs found.
    pub gpus: usize,
    /// Total GPU memory (GB).
    pub gpu_gb: f64,
    /// Host memory available (GB).
    pub mem_available_gb: f64,
    /// Physical cores.
    pub physical_cores: usize,
}

pub(crate) const GB: f64 = 1e9;

/// KV-cache bytes per token, estimated from the weights' size: 8 KiB per GB of weights (a
/// Llama-3-8B at fp16, 16 GB, has 128 KiB per token with GQA). Quantised weights underestimate it.
pub fn kv_bytes_per_token(model_gb: f64) -> f64 {
    8192.0 * model_gb.max(0.5)
}

fn s(name: &str, value: impl ToString, reason: String, kind: &'static str) -> Setting {
    Setting {
        name: name.into(),
        value: value.to_string(),
        reason,
        kind,
    }
}

/// The recommendations (pure).
pub fn recommend(i: &Inputs) -> Vec<Setting> {
    let gpu = i.gpus > 0;
    let weights = i.model_gb * GB;
    // Memory that will hold the KV cache: GPU memory (90%) or 80% of available host memory.
    let pool = if gpu {
        i.gpu_gb * GB * 0.9
    } else {
        i.mem_available_gb * GB * 0.8
    };
    let fits = weights < pool;
    let kv_seq = kv_bytes_per_token(i.model_gb) * i.context as f64;
    let free = (pool - weights).max(0.0);
    let by_memory = (free / kv_seq).floor().max(1.0) as usize;
    // CPU decoding shares the cores: more than a few parallel sequences only slows each one.
    let parallel = if gpu {
        by_memory.min(16)
    } else {
        by_memory.min((i.physical_cores / 4).clamp(1, 4))
    };
    let mem_reason = format!(
        "{:.1} GB for KV cache after {:.1} GB of weights, ~{:.2} GB per {}-token sequence",
        free / GB,
        weights / GB,
        kv_seq / GB,
        i.context
    );
    let par_reason = if gpu {
        format!("{mem_reason}: {by_memory} fit (capped at 16)")
    } else {
        format!(
            "CPU only ({} physical cores): parallel sequences share the cores; {mem_reason}",
            i.physical_cores
        )
    };
    let layers_reason = if !gpu {
        "no GPU: all layers on the CPU".to_string()
    } else if fits {
        format!(
            "the weights ({:.1} GB) fit in {:.1} GB of GPU memory: offload every layer",
            weights / GB,
            i.gpu_gb
        )
    } else {
        format!(
            "the weights ({:.1} GB) exceed GPU memory ({:.1} GB): offload about {:.0}% of the layers",
            weights / GB,
            i.gpu_gb,
            100.0 * pool / weights
        )
    };
    let layers = if !gpu {
        "0".to_string()
    } else if fits {
        "999".to_string()
    } else {
        format!("{:.0}% of layers", 100.0 * pool / weights)
    };
    let threads = i.physical_cores.max(1);
    let fa = if gpu { "1" } else { "0" };
    let fa_reason = if gpu {
        "flash attention cuts KV memory and speeds long prompts on GPUs".to_string()
    } else {
        "no GPU: flash attention brings little on the CPU".to_string()
    };
    match i.backend {
        ServerKind::Vllm => {
            let mut v = vec![];
            if !gpu {
                v.push(s("note", "vLLM needs a GPU", "no NVIDIA GPU detected: prefer llama.cpp or Ollama on this machine".into(), "flag"));
            }
            v.extend([
                s("--tensor-parallel-size", i.gpus.max(1), format!("{} GPU(s) detected: shard the model across all", i.gpus), "flag"),
                s("--gpu-memory-utilization", "0.90", "leave 10% for activations and other processes".into(), "flag"),
                s("--max-model-len", i.context, "the context you asked for; smaller frees KV cache for more sequences".into(), "flag"),
                s("--max-num-seqs", parallel, par_reason, "flag"),
                s("--enable-prefix-caching", "", "repeated system prompts and conversation history skip prefill".into(), "flag"),
            ]);
            v
        }
        ServerKind::LlamaCpp => vec![
            s("-ngl", &layers, layers_reason, "flag"),
            s("-t", threads, format!("{threads} physical cores: hyper-threads do not add decode speed"), "flag"),
            s("-np", parallel, par_reason, "flag"),
            s("-c", i.context * parallel as u64, format!("llama.cpp splits -c across the {parallel} slots: {} tokens each", i.context), "flag"),
            s("-fa", if gpu { "on" } else { "off" }, fa_reason, "flag"),
        ],
        _ => vec![
            s("OLLAMA_NUM_PARALLEL", parallel, par_reason, "env"),
            s("OLLAMA_CONTEXT_LENGTH", i.context, "context per request (the num_ctx default); each parallel slot gets this much".into(), "env"),
            s("OLLAMA_KEEP_ALIVE", "-1", "keep the model loaded: unloads between runs turn the next request into a cold start".into(), "env"),
            s("OLLAMA_FLASH_ATTENTION", fa, fa_reason, "env"),
            s("num_gpu", &layers, format!("{layers_reason} (request option or Modelfile PARAMETER)"), "option"),
            s("num_thread", threads, format!("{threads} physical cores (request option or Modelfile PARAMETER)"), "option"),
        ],
    }
}

/// settings.sh: `export` lines for environment variables, a `SERVER_ARGS=` line for flags,
/// comments for per-request options; every line with its reason.
pub fn script(inputs: &Inputs, settings: &[Setting]) -> String {
    let mut out = format!(
        "# llmbench optimize --backend {} (model {:.1} GB{}, context {})\n",
        inputs.backend,
        inputs.model_gb,
        if inputs.model_gb_assumed {
            " assumed"
        } else {
            ""
        },
        inputs.context
    );
    let mut flags = Vec::new();
    for st in settings {
        match st.kind {
            "env" => {
                let _ = writeln!(out, "# {}\nexport {}={}", st.reason, st.name, st.value);
            }
            "option" => {
                let _ = writeln!(
                    out,
                    "# per-request option {}={}: {}",
                    st.name, st.value, st.reason
                );
            }
            _ if st.name == "note" => {
                let _ = writeln!(out, "# NOTE: {}: {}", st.value, st.reason);
            }
            _ => {
                let _ = writeln!(out, "# {} {}: {}", st.name, st.value, st.reason);
                flags.push(format!("{} {}", st.name, st.value).trim().to_string());
            }
        }
    }
    if !flags.is_empty() {
        let _ = writeln!(out, "SERVER_ARGS=\"{}\"", flags.join(" "));
    }
    out
}

/// The recommended number of parallel sequences (1 when none is recommended).
pub fn parallelism(settings: &[Setting]) -> usize {
    settings
        .iter()
        .find(|s| ["OLLAMA_NUM_PARALLEL", "-np", "--max-num-seqs"].contains(&s.name.as_str()))
        .and_then(|s| s.value.parse().ok())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inp(backend: ServerKind, gpus: usize, gpu_gb: f64) -> Inputs {
        Inputs {
            backend,
            model_gb: 16.0,
            model_gb_assumed: false,
            context: 8192,
            gpus,
            gpu_gb,
            mem_available_gb: 20.0,
            physical_cores: 8,
        }
    }

    fn get<'a>(v: &'a [Setting], n: &str) -> &'a str {
        &v.iter().find(|s| s.name == n).unwrap().value
    }

    #[test]
    fn gpu_memory_decides_parallelism_and_offload() {
        // 80 GB GPU: 72 GB pool − 16 GB weights = 56 GB; 8192 × 128 KiB-ish ≈ 1.07 GB per sequence.
        let v = recommend(&inp(ServerKind::Ollama, 1, 80.0));
        assert_eq!(get(&v, "OLLAMA_NUM_PARALLEL"), "16");
        assert_eq!(get(&v, "num_gpu"), "999");
        assert_eq!(get(&v, "OLLAMA_FLASH_ATTENTION"), "1");
        // 12 GB GPU: the weights do not fit; part of the layers.
        let v = recommend(&inp(ServerKind::LlamaCpp, 1, 12.0));
        assert_eq!(get(&v, "-ngl"), "68% of layers");
        assert_eq!(get(&v, "-np"), "1");
        assert_eq!(get(&v, "-c"), "8192");
        // CPU only: a couple of parallel sequences at most, threads = physical cores.
        let v = recommend(&inp(ServerKind::LlamaCpp, 0, 0.0));
        assert_eq!(
            get(&v, "-np"),
            "1",
            "16 GB of weights leave no room in 16 GB"
        );
        let mut small = inp(ServerKind::LlamaCpp, 0, 0.0);
        small.model_gb = 4.7;
        let v = recommend(&small);
        assert_eq!(
            (get(&v, "-np"), get(&v, "-t"), get(&v, "-ngl")),
            ("2", "8", "0")
        );
        let v = recommend(&inp(ServerKind::Vllm, 2, 160.0));
        assert_eq!(get(&v, "--tensor-parallel-size"), "2");
        assert!(v.iter().all(|s| !s.reason.is_empty()));
        let sh = script(&inp(ServerKind::Vllm, 2, 160.0), &v);
        assert!(
            sh.contains("SERVER_ARGS=\"--tensor-parallel-size 2 "),
            "{sh}"
        );
    }
}
