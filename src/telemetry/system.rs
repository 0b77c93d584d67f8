//! The host description written into every result file.

use serde_json::{Value, json};

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Total memory in bytes, from /proc/meminfo.
pub fn memory_total_bytes() -> Option<u64> {
    let info = read("/proc/meminfo")?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU model name, from /proc/cpuinfo.
pub fn cpu_model() -> Option<String> {
    let info = read("/proc/cpuinfo")?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// Host, OS, CPU and memory (GPUs are added by the GPU probe when present).
pub fn describe() -> Value {
    let hostname = read("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|| std::env::var("HOSTNAME").ok());
    let kernel = read("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string());
    json!({
        "hostname": hostname,
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "kernel": kernel,
        "cpu": {
            "model": cpu_model(),
            "logical_cores": std::thread::available_parallelism().map(|n| n.get()).ok(),
        },
        "memory": {"total_bytes": memory_total_bytes()},
    })
}
