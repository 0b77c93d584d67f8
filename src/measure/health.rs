//! Was the client the limit? A benchmark client that runs out of CPU or falls behind its
//! schedule measures itself, not the server. Each scenario's measured phase records what the
//! client cost and how late it sent, and is marked not trustworthy when:
//!
//! - the llmbench process used more than [`CPU_LIMIT`] of the CPU time its cores could give
//!   (with the built-in simulator, the simulator's share counts too: same process);
//! - open loop: the dispatcher fired more than [`LATENESS_LIMIT_MS`] after the scheduled send
//!   time at the 99th percentile;
//! - open loop: requests were dropped because no slot came free (`--max-concurrency`).

use serde::{Deserialize, Serialize};

use crate::measure::stats::Dist;

/// Process CPU share (of all cores available to it) above which the client is the limit.
pub const CPU_LIMIT: f64 = 0.8;
/// Schedule lateness p99 (ms) above which an open-loop schedule was not kept.
pub const LATENESS_LIMIT_MS: f64 = 5.0;

/// What the client cost during one scenario's measured phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientLoad {
    /// CPU seconds (user + system) of the llmbench process.
    pub cpu_s: Option<f64>,
    /// Wall seconds of the measured phase.
    pub wall_s: f64,
    /// Cores the process could use.
    pub cores: usize,
    /// `cpu_s / (wall_s · cores)`: 1.0 means every core was busy all the time.
    pub cpu_share: Option<f64>,
    /// Open loop: dispatch time minus scheduled time (ms), every request.
    pub schedule_lateness_ms: Option<Dist>,
    /// Open loop: requests dropped for want of a slot.
    pub dropped: u64,
    /// False when any limit above was crossed: the numbers describe the client as much as
    /// the server.
    pub trustworthy: bool,
    /// Why not, in words (also copied to the scenario's warnings).
    #[serde(default)]
    pub reasons: Vec<String>,
}

impl ClientLoad {
    /// Judges the measurements.
    pub fn judge(
        cpu_s: Option<f64>,
        wall_s: f64,
        cores: usize,
        lateness: Option<Dist>,
        dropped: u64,
    ) -> Self {
        let cores = cores.max(1);
        let cpu_share = cpu_s
            .filter(|_| wall_s > 0.0)
            .map(|c| c / (wall_s * cores as f64));
        let mut reasons = Vec::new();
        // Short phases are dominated by start-up cost; judge CPU only over a second or more.
        if let Some(share) = cpu_share.filter(|_| wall_s >= 1.0)
            && share > CPU_LIMIT
        {
            reasons.push(format!(
                "client CPU {:.0}% of {cores} core(s) (limit {:.0}%): the client may be the bottleneck",
                share * 100.0,
                CPU_LIMIT * 100.0
            ));
        }
        if let Some(d) = lateness
            && d.p99 > LATENESS_LIMIT_MS
        {
            reasons.push(format!(
                "schedule lateness p99 {:.2} ms (limit {LATENESS_LIMIT_MS} ms): the client did not keep the arrival schedule",
                d.p99
            ));
        }
        if dropped > 0 {
            reasons.push(format!(
                "{dropped} request(s) dropped: no free slot when they were due"
            ));
        }
        ClientLoad {
            cpu_s,
            wall_s,
            cores,
            cpu_share,
            schedule_lateness_ms: lateness,
            dropped,
            trustworthy: reasons.is_empty(),
            reasons,
        }
    }
}

/// CPU seconds (user + system, all threads) this process has used so far.
pub fn process_cpu_s() -> Option<f64> {
    #[cfg(unix)]
    {
        // SAFETY: getrusage writes into the zeroed struct we own.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
            return None;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Some(tv(ru.ru_utime) + tv(ru.ru_stime))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Turns off glibc's fastbins, so freed small blocks never pile up to be merged all at once.
/// With thousands of streams, `malloc_consolidate` ran 6–7 ms every ~500 ms on the client's
/// thread, and every chunk that arrived meanwhile was read late (docs/performance.md, section
/// 11). Small blocks still come from glibc's per-thread cache. Call before any thread starts.
pub fn no_fastbins() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's settings, and no other thread runs yet.
    unsafe {
        libc::mallopt(libc::M_MXFAST, 0);
    }
}

/// Raises the soft limit on open files to the hard limit, as load generators do: every
/// concurrent stream is a socket, and a soft limit of 1024 (common) would cap `--concurrency`
/// far below what the machine can hold. Returns the limit now in force.
pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        // SAFETY: getrlimit/setrlimit read and write the struct we own.
        let mut rl: libc::rlimit = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
            return None;
        }
        if rl.rlim_cur < rl.rlim_max {
            let want = libc::rlimit {
                rlim_cur: rl.rlim_max,
                rlim_max: rl.rlim_max,
            };
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
                rl = want;
            }
        }
        Some(rl.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(p99: f64) -> Dist {
        Dist {
            count: 100,
            mean: p99 / 2.0,
            std: 0.0,
            min: 0.0,
            p50: p99 / 2.0,
            p90: p99,
            p95: p99,
            p99,
            max: p99,
        }
    }

    #[test]
    fn judges_each_limit() {
        let ok = ClientLoad::judge(Some(1.0), 10.0, 2, Some(dist(0.2)), 0);
        assert!(ok.trustworthy && ok.reasons.is_empty());
        assert_eq!(ok.cpu_share, Some(0.05));
        let cpu = ClientLoad::judge(Some(17.0), 10.0, 2, None, 0);
        assert!(
            !cpu.trustworthy && cpu.reasons[0].contains("85%"),
            "{:?}",
            cpu.reasons
        );
        let late = ClientLoad::judge(Some(1.0), 10.0, 2, Some(dist(7.5)), 0);
        assert!(!late.trustworthy && late.reasons[0].contains("7.50 ms"));
        let dropped = ClientLoad::judge(None, 10.0, 2, None, 3);
        assert!(!dropped.trustworthy && dropped.reasons[0].contains("3 request"));
        // A phase shorter than a second is not judged on CPU.
        assert!(ClientLoad::judge(Some(0.9), 0.5, 1, None, 0).trustworthy);
    }

    #[cfg(unix)]
    #[test]
    fn process_cpu_time_grows_with_work() {
        // Spin until 20 ms of CPU show up (the machine may be busy, so no wall-time bound
        // except a generous cap); CPU time can never outrun wall time on one thread.
        let a = process_cpu_s().expect("getrusage");
        let t = std::time::Instant::now();
        let mut x = 0u64;
        let mut b = a;
        while b - a < 0.02 && t.elapsed().as_secs() < 20 {
            for _ in 0..100_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            b = process_cpu_s().unwrap();
        }
        std::hint::black_box(x);
        assert!(b - a >= 0.02, "{a} -> {b}");
        // Other test threads may run too: allow for the cores there are.
        assert!(b - a <= t.elapsed().as_secs_f64() * cores() as f64 + 0.01);
    }
}
