//! The host description written into every result file and printed by `llmbench detect`.
//!
//! On Linux everything comes from /proc and /sys; elsewhere a few `sysctl` calls (macOS) and the
//! standard library fill what they can. Anything unknown is `null`, never an error.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::gpu::GpuInfo;

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The processor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuInfo {
    /// Model name.
    pub model: Option<String>,
    /// Physical cores (distinct physical id + core id pairs).
    pub physical_cores: Option<usize>,
    /// Logical processors (hardware threads) the OS lists.
    pub logical_cores: Option<usize>,
    /// Processors this process may use (affinity and cgroup limits applied).
    pub usable_cores: Option<usize>,
}

/// Memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryInfo {
    /// Total memory (bytes).
    pub total_bytes: Option<u64>,
    /// Memory available to new work when detected (bytes, MemAvailable).
    pub available_bytes: Option<u64>,
}

/// The machine: host, OS, CPU, memory, GPUs. Every field defaults, so result files of older
/// versions (or written without it) still read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SystemInfo {
    /// Host name.
    pub hostname: Option<String>,
    /// OS family (`linux`, `macos`, ...).
    pub os: String,
    /// Distribution or product name (`Debian GNU/Linux 12 (bookworm)`).
    pub os_name: Option<String>,
    /// CPU architecture.
    pub arch: String,
    /// Kernel release.
    pub kernel: Option<String>,
    /// Processor.
    pub cpu: CpuInfo,
    /// Memory.
    pub memory: MemoryInfo,
    /// GPUs found through NVML (empty: none, or no driver).
    pub gpus: Vec<GpuInfo>,
    /// Why GPUs could not be listed (e.g. NVML not installed); `null` when listed.
    pub gpu_note: Option<String>,
}

/// Value of `key:` in /proc/meminfo, in bytes.
pub fn meminfo_bytes(info: &str, key: &str) -> Option<u64> {
    let line = info.lines().find(|l| l.split(':').next() == Some(key))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Total memory in bytes, from /proc/meminfo.
pub fn memory_total_bytes() -> Option<u64> {
    meminfo_bytes(&read("/proc/meminfo")?, "MemTotal")
}

/// The model name in a /proc/cpuinfo text (x86 `model name`, some ARM `Hardware`/`Model`).
pub fn cpuinfo_model(info: &str) -> Option<String> {
    ["model name", "Hardware", "Model", "cpu model"]
        .iter()
        .find_map(|key| {
            info.lines()
                .find(|l| l.split(':').next().map(str::trim) == Some(key))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
}

/// Logical and physical core counts from a /proc/cpuinfo text. Physical cores are distinct
/// (physical id, core id) pairs; `None` when the file does not say (then /sys is asked).
pub fn cpuinfo_cores(info: &str) -> (usize, Option<usize>) {
    let mut logical = 0;
    let mut pairs = BTreeSet::new();
    let mut complete = true;
    for block in info.split("\n\n") {
        if !block.lines().any(|l| l.starts_with("processor")) {
            continue;
        }
        logical += 1;
        let (mut phys, mut core) = (None, None);
        for l in block.lines() {
            if let Some((k, v)) = l.split_once(':') {
                match k.trim() {
                    "physical id" => phys = Some(v.trim().to_string()),
                    "core id" => core = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
        match (&phys, &core) {
            (Some(p), Some(c)) => {
                pairs.insert((p.clone(), c.clone()));
            }
            _ => complete = false,
        }
    }
    (
        logical,
        (complete && !pairs.is_empty()).then_some(pairs.len()),
    )
}

/// Physical cores from /sys topology: distinct `core_cpus_list` (or `thread_siblings_list`).
fn sys_physical_cores() -> Option<usize> {
    let mut sets = BTreeSet::new();
    let dir = std::fs::read_dir("/sys/devices/system/cpu").ok()?;
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(n) = name.strip_prefix("cpu") else {
            continue;
        };
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let topo = e.path().join("topology");
        let s = std::fs::read_to_string(topo.join("core_cpus_list"))
            .or_else(|_| std::fs::read_to_string(topo.join("thread_siblings_list")))
            .ok()?;
        sets.insert(s.trim().to_string());
    }
    (!sets.is_empty()).then_some(sets.len())
}

/// `PRETTY_NAME` of an os-release text.
pub fn os_release_name(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').to_string())
}

fn sysctl(name: &str) -> Option<String> {
    let out = std::process::Command::new("sysctl")
        .args(["-n", name])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Host, OS, CPU, memory and GPUs (no network).
pub fn detect() -> SystemInfo {
    let usable = std::thread::available_parallelism().map(|n| n.get()).ok();
    let mut info = SystemInfo {
        hostname: read("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .or_else(|| std::env::var("HOSTNAME").ok()),
        os: std::env::consts::OS.into(),
        os_name: read("/etc/os-release").and_then(|t| os_release_name(&t)),
        arch: std::env::consts::ARCH.into(),
        kernel: read("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()),
        cpu: CpuInfo {
            usable_cores: usable,
            ..Default::default()
        },
        ..Default::default()
    };
    if let Some(ci) = read("/proc/cpuinfo") {
        let (logical, physical) = cpuinfo_cores(&ci);
        info.cpu.model = cpuinfo_model(&ci);
        info.cpu.logical_cores = (logical > 0).then_some(logical);
        info.cpu.physical_cores = physical.or_else(sys_physical_cores);
    }
    if let Some(mi) = read("/proc/meminfo") {
        info.memory.total_bytes = meminfo_bytes(&mi, "MemTotal");
        info.memory.available_bytes = meminfo_bytes(&mi, "MemAvailable");
    }
    if info.os == "macos" {
        info.cpu.model = info
            .cpu
            .model
            .or_else(|| sysctl("machdep.cpu.brand_string"));
        info.cpu.physical_cores = sysctl("hw.physicalcpu").and_then(|s| s.parse().ok());
        info.cpu.logical_cores = sysctl("hw.logicalcpu").and_then(|s| s.parse().ok());
        info.memory.total_bytes = sysctl("hw.memsize").and_then(|s| s.parse().ok());
        info.kernel = sysctl("kern.osrelease");
        info.os_name = sysctl("kern.osproductversion").map(|v| format!("macOS {v}"));
    }
    if info.cpu.logical_cores.is_none() {
        info.cpu.logical_cores = usable;
    }
    match super::gpu::Nvml::get() {
        Ok(nvml) => {
            info.gpus = nvml.gpus();
            info.gpu_note = None;
        }
        Err(why) => info.gpu_note = Some(why),
    }
    info
}

/// A short description of the machine (CPU, cores, memory, GPUs), for listings and headers.
pub fn fingerprint(system: &SystemInfo) -> String {
    let mut parts = Vec::new();
    if let Some(m) = &system.cpu.model {
        parts.push(m.clone());
    }
    if let Some(n) = system.cpu.logical_cores {
        parts.push(format!("{n} cores"));
    }
    if let Some(b) = system.memory.total_bytes {
        parts.push(format!("{:.0} GiB", b as f64 / (1u64 << 30) as f64));
    }
    parts.extend(system.gpus.iter().map(|g| g.name.clone()));
    if parts.is_empty() {
        "unknown".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_from_cpuinfo() {
        let ci = "processor\t: 0\nmodel name\t: X\nphysical id\t: 0\ncore id\t: 0\n\n\
                  processor\t: 1\nmodel name\t: X\nphysical id\t: 0\ncore id\t: 0\n\n\
                  processor\t: 2\nmodel name\t: X\nphysical id\t: 0\ncore id\t: 1\n\n";
        assert_eq!(cpuinfo_cores(ci), (3, Some(2)));
        assert_eq!(cpuinfo_model(ci).as_deref(), Some("X"));
        let arm = "processor\t: 0\nBogoMIPS\t: 50\n\nprocessor\t: 1\nBogoMIPS\t: 50\n\n";
        assert_eq!(cpuinfo_cores(arm), (2, None));
    }

    #[test]
    fn meminfo_and_os_release() {
        let mi = "MemTotal:       16000 kB\nMemFree:  10 kB\nMemAvailable:   8000 kB\n";
        assert_eq!(meminfo_bytes(mi, "MemTotal"), Some(16000 * 1024));
        assert_eq!(meminfo_bytes(mi, "MemAvailable"), Some(8000 * 1024));
        assert_eq!(meminfo_bytes(mi, "Mem"), None);
        let osr = "NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(
            os_release_name(osr).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
    }
}
