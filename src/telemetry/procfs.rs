//! Readings from /proc for the resource sampler: host CPU time, memory in use, and the CPU time
//! and resident memory of a process with all its descendants. Linux only; elsewhere `None`.

use std::collections::HashMap;

/// Host CPU jiffies: (busy, total) summed over all CPUs, from the first line of /proc/stat.
pub fn parse_stat_cpu(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 4 {
        return None;
    }
    let total: u64 = v.iter().sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Host CPU jiffies now.
pub fn host_cpu() -> Option<(u64, u64)> {
    parse_stat_cpu(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Memory in use (MemTotal − MemAvailable), bytes.
pub fn host_mem_used() -> Option<u64> {
    let mi = std::fs::read_to_string("/proc/meminfo").ok()?;
    let total = super::system::meminfo_bytes(&mi, "MemTotal")?;
    let avail = super::system::meminfo_bytes(&mi, "MemAvailable")?;
    Some(total.saturating_sub(avail))
}

/// One process from /proc/PID/stat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Process group id.
    pub pgrp: u32,
    /// User + system CPU time (clock ticks).
    pub cpu_ticks: u64,
    /// Resident set (pages).
    pub rss_pages: u64,
}

/// Parses a /proc/PID/stat line (the command name may hold spaces and parentheses).
pub fn parse_proc_stat(s: &str) -> Option<ProcStat> {
    let pid = s.split_whitespace().next()?.parse().ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state): field n is f[n - 3].
    let num = |n: usize| f.get(n - 3).and_then(|x| x.parse::<u64>().ok());
    Some(ProcStat {
        pid,
        ppid: num(4)? as u32,
        pgrp: num(5)? as u32,
        cpu_ticks: num(14)? + num(15)?,
        rss_pages: num(24)?,
    })
}

/// Every process now.
pub fn all_processes() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|s| parse_proc_stat(&s))
        .collect()
}

/// `root` and all its descendants among `procs`.
pub fn tree(procs: &[ProcStat], root: u32) -> Vec<ProcStat> {
    let mut children: HashMap<u32, Vec<&ProcStat>> = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut out: Vec<ProcStat> = procs.iter().filter(|p| p.pid == root).copied().collect();
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i].pid) {
            out.extend(c.iter().map(|p| **p));
        }
        i += 1;
    }
    out
}

/// True while a process with this pid exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rfind(')')
            .and_then(|i| s[i + 1..].split_whitespace().next())
            .is_some_and(|st| st != "Z" && st != "X"),
        Err(_) => false,
    }
}

/// Clock ticks per second and page size of this system.
pub fn tick_and_page() -> (f64, u64) {
    // SAFETY: sysconf has no preconditions.
    let (t, p) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (
        if t > 0 { t as f64 } else { 100.0 },
        if p > 0 { p as u64 } else { 4096 },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines() {
        assert_eq!(
            parse_stat_cpu("cpu  10 0 5 80 5 0 0 0 0 0\ncpu0 1 2 3 4\n"),
            Some((15, 100))
        );
        let s = "42 (a b) c)) S 7 42 42 0 -1 4194560 100 0 0 0 30 12 0 0 20 0 3 0 100 1000000 250 1844 0";
        let p = parse_proc_stat(s).unwrap();
        assert_eq!(
            (p.pid, p.ppid, p.pgrp, p.cpu_ticks, p.rss_pages),
            (42, 7, 42, 42, 250)
        );
    }

    #[test]
    fn tree_follows_parents() {
        let mk = |pid, ppid| ProcStat {
            pid,
            ppid,
            pgrp: 0,
            cpu_ticks: 1,
            rss_pages: 1,
        };
        let procs = [mk(1, 0), mk(10, 1), mk(11, 10), mk(12, 11), mk(20, 1)];
        let mut t: Vec<u32> = tree(&procs, 10).iter().map(|p| p.pid).collect();
        t.sort();
        assert_eq!(t, vec![10, 11, 12]);
        assert!(tree(&procs, 99).is_empty());
        assert!(alive(std::process::id()));
    }
}
