//! Hardware detection, resource timeline, server metrics and the managed server, against real
//! processes: /proc of this machine, `llmbench serve` children, and llmbench runs.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use llmbench::measure::record::Outcome;
use llmbench::server::detect::probe;
use llmbench::transport::client::ClientConfig;
use llmbench::transport::http::probe_client;

use crate::common::{ServeChild, TempDir, bin, run};

fn proc_alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; it counts as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s[s.rfind(')').unwrap() + 1..].split_whitespace().next();
            !matches!(state, Some("Z") | Some("X"))
        }
        Err(_) => false,
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn detect_json_agrees_with_proc() {
    let out = bin().args(["detect", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sys = &v["system"];
    // Independent reading of /proc.
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let logical = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    assert_eq!(sys["cpu"]["logical_cores"], logical as u64, "{sys}");
    let mut cores = BTreeSet::new();
    let mut phys = String::new();
    for l in cpuinfo.lines() {
        if let Some((k, val)) = l.split_once(':') {
            match k.trim() {
                "physical id" => phys = val.trim().into(),
                "core id" => {
                    cores.insert((phys.clone(), val.trim().to_string()));
                }
                _ => {}
            }
        }
    }
    if !cores.is_empty() {
        assert_eq!(sys["cpu"]["physical_cores"], cores.len() as u64, "{sys}");
    }
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .map(|l| l.split_once(':').unwrap().1.trim().to_string());
    if let Some(m) = model {
        assert_eq!(sys["cpu"]["model"], m.as_str());
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(sys["memory"]["total_bytes"], kib * 1024);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(sys["kernel"], kernel.trim());
    // GPUs: a list either way; without NVML a note says why.
    assert!(sys["gpus"].is_array());
    if sys["gpus"].as_array().unwrap().is_empty() {
        assert!(sys["gpu_note"].is_string(), "{sys}");
    }
    assert!(v["servers"].is_array());
    // The text form says the same.
    let text = bin().arg("detect").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("{logical} logical")), "{text}");
}

#[tokio::test]
async fn probe_finds_the_simulator_and_nothing_on_a_closed_port() {
    let sim = ServeChild::start(&["--sim-model", "probe-model"]);
    let http = probe_client(&ClientConfig::default(), Duration::from_millis(500), false).unwrap();
    let found = probe(&http, &sim.url).await.expect("simulator found");
    assert_eq!(found.kind.name(), "llmbench-sim");
    assert_eq!(found.version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(found.models, vec!["probe-model".to_string()]);
    assert!(found.metrics);
    let closed = format!("http://127.0.0.1:{}", free_port());
    assert!(probe(&http, &closed).await.is_none());
}

#[test]
fn result_carries_system_and_resource_timeline_of_the_server_process() {
    let sim = ServeChild::start(&["--decode-ms", "4"]);
    let pid = sim.child.id().to_string();
    let r = run(&[
        &sim.url,
        "-n",
        "60",
        "-c",
        "8",
        "--max-tokens",
        "64",
        "--server-pid",
        &pid,
        "--sample-interval",
        "100ms",
    ]);
    assert!(r.output.status.success(), "{}", r.stderr());
    let res = r.result();
    assert_eq!(
        res.system.as_ref().unwrap().memory.total_bytes,
        llmbench::telemetry::system::memory_total_bytes()
    );
    assert!(res.system.as_ref().unwrap().cpu.logical_cores.unwrap() >= 1);
    let server = res.server.as_ref().expect("server record");
    assert_eq!(server.pid, Some(sim.child.id()));
    assert_eq!(server.kind.map(|k| k.name()), Some("llmbench-sim"));
    let tl = res.scenarios[0].resources.as_ref().expect("resources");
    assert_eq!(tl.interval_ms, 100.0);
    assert!(tl.samples.len() >= 3, "{} samples", tl.samples.len());
    assert!(
        tl.samples
            .iter()
            .all(|s| s.server_rss_bytes.unwrap_or(0) > 0)
    );
    let cpu = tl.summary.server_cpu_pct.expect("server cpu");
    assert!(cpu.peak > 0.0 && cpu.mean > 0.0, "{cpu:?}");
    let host = tl.summary.host_cpu_pct.expect("host cpu");
    assert!(host.peak > 0.0 && host.peak <= 100.0, "{host:?}");
    assert!(tl.summary.host_mem_used_bytes.unwrap().peak > 0.0);
    // Samples lie on the records' time axis, inside or around the measured window.
    let first_sent = r
        .records
        .iter()
        .filter_map(|x| x.sent_at_ms)
        .fold(f64::INFINITY, f64::min);
    let last_done = r.records.iter().map(|x| x.done_at_ms).fold(0.0, f64::max);
    let last = tl.samples.last().unwrap().t_ms;
    assert!(last >= last_done && tl.samples[0].t_ms >= first_sent - 1000.0);
    assert!(r.stdout().contains("Resources ("), "{}", r.stdout());
    assert!(r.stdout().contains("server CPU mean"), "{}", r.stdout());
}

#[test]
fn scraped_metrics_match_what_the_run_sent_and_received() {
    let sim = ServeChild::start(&["--decode-ms", "3"]);
    let r = run(&[
        &sim.url,
        "-n",
        "30",
        "-c",
        "6",
        "--prompt-tokens",
        "100",
        "--shared-prefix-tokens",
        "64",
        "--max-tokens",
        "40",
        "--sample-interval",
        "100ms",
    ]);
    assert!(r.output.status.success(), "{}", r.stderr());
    let sc = &r.result().scenarios[0];
    let m = sc.server_metrics.as_ref().expect("server metrics scraped");
    assert_eq!(m.url, format!("{}/metrics", sim.url));
    assert!(m.scrapes >= 3, "{} scrapes", m.scrapes);
    let delta = |k: &str| m.series[k].delta.unwrap();
    let ok: Vec<_> = r
        .records
        .iter()
        .filter(|x| x.outcome() == Outcome::Succeeded)
        .collect();
    assert_eq!(ok.len(), 30);
    let prompt: u64 = ok.iter().map(|x| x.input_tokens.unwrap()).sum();
    let chunks: usize = ok.iter().map(|x| x.chunk_times_ms.len()).sum();
    let cached: u64 = ok.iter().map(|x| x.cached_tokens.unwrap_or(0)).sum();
    assert_eq!(delta("prompt_tokens"), prompt as f64);
    assert_eq!(delta("generation_tokens"), chunks as f64);
    assert_eq!(delta("requests_finished"), 30.0);
    assert_eq!(m.series["prompt_tokens"].source, "vllm:prompt_tokens_total");
    // Prefix cache: hits over queries, as the requests themselves reported cached tokens.
    assert_eq!(delta("prefix_cache_hits"), cached as f64);
    assert!(cached > 0);
    let rate = m.prefix_cache_hit_rate.unwrap();
    assert!(
        (rate - cached as f64 / prompt as f64).abs() < 1e-9,
        "{rate}"
    );
    // Gauges: six requests were in flight at times; none before or after.
    let running = &m.series["requests_running"];
    assert_eq!((running.before, running.after), (Some(0.0), Some(0.0)));
    assert!(running.peak.unwrap() >= 1.0, "{running:?}");
    assert!(running.peak.unwrap() <= 6.0, "{running:?}");
    assert!(m.series["kv_cache_usage"].peak.unwrap() > 0.0);
    assert!(
        r.stdout().contains("prefix-cache hit rate"),
        "{}",
        r.stdout()
    );
}

#[test]
fn no_metrics_and_bad_metrics_url() {
    let sim = ServeChild::start(&[]);
    let r = run(&[&sim.url, "-n", "2", "--no-metrics"]);
    assert!(r.output.status.success(), "{}", r.stderr());
    assert!(r.result().scenarios[0].server_metrics.is_none());
    let bad = format!("{}/nothing-here", sim.url);
    let r = run(&[&sim.url, "-n", "2", "--metrics-url", &bad]);
    assert_eq!(r.output.status.code(), Some(2), "{}", r.stderr());
    assert!(r.stderr().contains("--metrics-url"), "{}", r.stderr());
    assert!(r.records.is_empty());
}

pub(crate) fn serve_cmd(port: u16, extra: &str) -> String {
    format!(
        "{} serve --port {port} --decode-ms 2 {extra}",
        env!("CARGO_BIN_EXE_llmbench")
    )
    .trim_end()
    .to_string()
}

#[test]
fn managed_server_is_started_measured_and_stopped() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let cmd = serve_cmd(port, "");
    let r = run(&[
        &url,
        "-n",
        "20",
        "-c",
        "4",
        "--server-cmd",
        &cmd,
        "--sample-interval",
        "100ms",
    ]);
    assert!(r.output.status.success(), "{}", r.stderr());
    let res = r.result();
    let server = res.server.as_ref().expect("server record");
    let managed = server.managed.as_ref().expect("managed");
    assert_eq!(managed.starts, 1);
    assert_eq!(managed.command, cmd);
    assert_eq!(server.version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    let pid = server.pid.expect("pid");
    assert!(!proc_alive(pid), "server {pid} still running");
    // The log sits next to the result file and holds the server's own output.
    let log = std::fs::read_to_string(&managed.log).expect("server log");
    assert!(log.contains("llmbench simulator listening on"), "{log}");
    assert!(
        managed.log.ends_with("result.server.log"),
        "{}",
        managed.log
    );
    let tl = res.scenarios[0].resources.as_ref().unwrap();
    assert!(tl.summary.server_rss_bytes.unwrap().peak > 0.0);
    assert_eq!(
        res.scenarios[0].server_metrics.as_ref().unwrap().series["requests_finished"].delta,
        Some(20.0)
    );
    assert!(r.stderr().contains("Stopped server"), "{}", r.stderr());
}

#[test]
fn isolate_restarts_the_server_between_scenarios() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let cmd = serve_cmd(port, "");
    let dir = TempDir::new("isolate");
    let out = dir.path("sweep.json");
    let o = bin()
        .args([
            "sweep",
            &url,
            "-n",
            "5",
            "--concurrency",
            "1,2",
            "-q",
            "--isolate",
        ])
        .args(["--server-cmd", &cmd, "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let res = llmbench::results::file::ResultFile::read(&out).unwrap();
    let managed = res.server.as_ref().unwrap().managed.as_ref().unwrap();
    assert_eq!(managed.starts, 2);
    assert_eq!(managed.ready_s.len(), 2);
    // A fresh server counts from zero: the second scenario's "before" is 0 again.
    for sc in &res.scenarios {
        let p = &sc.server_metrics.as_ref().unwrap().series["requests_finished"];
        assert_eq!((p.before, p.delta), (Some(0.0), Some(5.0)), "{}", sc.name);
    }
    assert!(!proc_alive(res.server.as_ref().unwrap().pid.unwrap()));
}

#[test]
fn ctrl_c_stops_the_managed_server_and_marks_the_run_cancelled() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let cmd = serve_cmd(port, "");
    let dir = TempDir::new("sigint");
    let out = dir.path("r.json");
    let rec = dir.path("r.jsonl");
    let mut child = bin()
        .args([
            "run",
            &url,
            "--duration",
            "60s",
            "-c",
            "2",
            "-q",
            "--grace",
            "2s",
        ])
        .args(["--server-cmd", &cmd, "--records"])
        .arg(&rec)
        .arg("-o")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until requests are flowing: records written (a readiness wait, not a guess).
    let t0 = Instant::now();
    while std::fs::read(&rec).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count()) < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no requests within 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The server's pid: the process listening is the child of llmbench (its only child).
    let children =
        std::fs::read_to_string(format!("/proc/{}/task/{}/children", child.id(), child.id()))
            .unwrap_or_default();
    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    let res = llmbench::results::file::ResultFile::read(&out).unwrap();
    assert_eq!(res.status, llmbench::results::file::RunStatus::Cancelled);
    let pid = res.server.as_ref().unwrap().pid.unwrap();
    if !children.trim().is_empty() {
        assert!(children.split_whitespace().any(|c| c == pid.to_string()));
    }
    assert!(!proc_alive(pid), "server {pid} survived Ctrl-C");
    assert!(res.scenarios[0].outcomes.scheduled > 0);
    assert!(err.contains("Stopped server"), "{err}");
}

#[test]
fn server_cmd_needs_a_url_and_a_failing_server_is_reported() {
    let r = run(&["--server-cmd", "true", "-n", "1"]);
    assert_eq!(r.output.status.code(), Some(2));
    assert!(
        r.stderr().contains("--server-cmd needs the URL"),
        "{}",
        r.stderr()
    );
    let url = format!("http://127.0.0.1:{}", free_port());
    let r = run(&[&url, "--server-cmd", "sh -c 'echo boom; exit 3'", "-n", "1"]);
    assert_eq!(r.output.status.code(), Some(2));
    assert!(r.stderr().contains("exited"), "{}", r.stderr());
    assert!(r.stderr().contains("boom"), "{}", r.stderr());
}

#[test]
fn optimize_writes_settings_for_this_machine() {
    let dir = TempDir::new("optimize");
    let sh = dir.path("settings.sh");
    let o = bin()
        .args(["optimize", "--backend", "ollama", "--model-gb", "2", "-o"])
        .arg(&sh)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The script is valid shell and sets what it says.
    let env = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            ". '{}' && echo $OLLAMA_KEEP_ALIVE $OLLAMA_NUM_PARALLEL",
            sh.display()
        ))
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&env.stdout);
    let mut it = line.split_whitespace();
    assert_eq!(it.next(), Some("-1"), "{line}");
    assert!(it.next().unwrap().parse::<u32>().unwrap() >= 1);
    // Threads follow the physical cores detect reports.
    let d: serde_json::Value =
        serde_json::from_slice(&bin().args(["detect", "--json"]).output().unwrap().stdout).unwrap();
    let o = bin()
        .args(["optimize", "--backend", "llamacpp", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = v["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "-t")
        .unwrap();
    assert_eq!(
        t["value"],
        d["system"]["cpu"]["physical_cores"]
            .as_u64()
            .unwrap()
            .to_string()
    );
    assert!(
        v["settings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["reason"].as_str().unwrap().len() > 10)
    );
    let bad = bin()
        .args(["optimize", "--backend", "tgi"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn optimize_checks_its_advice_by_benchmarking_before_and_after() {
    // The server's batch size follows OLLAMA_NUM_PARALLEL (8 when unset), and each running
    // sequence costs 4 ms per decode step: the truth is TPOT = 1 + 4 × batch ms.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let cmd = serve_cmd(
        port,
        "--decode-ms-per-seq 4 --max-batch ${OLLAMA_NUM_PARALLEL:-8}",
    )
    .replace("--decode-ms 2", "--decode-ms 1");
    let dir = TempDir::new("optimize-check");
    let o = bin()
        .args(["optimize", "--backend", "ollama", "--model-gb", "1"])
        .args(["--server-cmd", &cmd, "--url", &url, "--out-dir"])
        .arg(&dir.0)
        .args(["--", "--max-tokens", "16", "-c", "8", "-n", "16", "-q"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path("optimize.json")).unwrap()).unwrap();
    let parallel: f64 = v["after"]["applied"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a[0] == "OLLAMA_NUM_PARALLEL")
        .expect("OLLAMA_NUM_PARALLEL applied")[1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(parallel < 8.0, "this test needs advice other than 8");
    // Each server really ran with its setting (its own log says so)...
    let log = |n: &str| std::fs::read_to_string(dir.path(n)).unwrap();
    assert!(log("before.server.log").contains("batch ≤ 8"));
    assert!(log("after.server.log").contains(&format!("batch ≤ {parallel}")));
    // ...and the measured TPOT is the simulator's truth on each side.
    let tpot = |n: &str| {
        let r = llmbench::results::file::ResultFile::read(&dir.path(n)).unwrap();
        r.scenarios[0].metrics.tpot_ms.as_ref().unwrap().p50
    };
    let (before, after) = (tpot("before.json"), tpot("after.json"));
    assert!((before - 33.0).abs() < 2.0, "before TPOT {before}");
    let truth = 1.0 + 4.0 * parallel;
    assert!((after - truth).abs() < 2.0, "after TPOT {after} vs {truth}");
    let row = &v["comparison"]["scenarios"][0]["rows"][3];
    assert_eq!(row["metric"], "TPOT p50");
    assert_eq!(row["significant"], true);
    assert!(
        stdout.contains("Advice measured: better TPOT p50"),
        "{stdout}"
    );
    // Both servers are gone.
    for n in ["before.json", "after.json"] {
        let r = llmbench::results::file::ResultFile::read(&dir.path(n)).unwrap();
        assert!(!proc_alive(r.server.unwrap().pid.unwrap()));
    }
}

/// A stand-in for NVIDIA's libnvidia-ml.so.1 with known answers, built with the system C
/// compiler: two GPUs (80 GiB each; 1 and 2 GiB used; 37 % and 74 % busy; the first draws
/// 250.5 W, the second cannot say). It runs llmbench's real dlopen/FFI path, struct layouts and
/// units (nvml.h: memory in bytes, power in milliwatts) where no GPU is lent; it says nothing
/// about a real driver.
const FAKE_NVML: &str = r#"
#include <stdio.h>
typedef void *dev;
typedef struct { unsigned long long total, free, used; } mem;
typedef struct { unsigned int gpu, memory; } util;
int nvmlInit_v2(void) { return 0; }
int nvmlDeviceGetCount_v2(unsigned int *n) { *n = 2; return 0; }
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, dev *d) { *d = (dev)(long)(i + 1); return 0; }
int nvmlDeviceGetName(dev d, char *b, unsigned int n) { snprintf(b, n, "Fake GPU %ld", (long)d); return 0; }
int nvmlDeviceGetMemoryInfo(dev d, mem *m) {
    m->total = 80ULL << 30; m->used = (unsigned long long)(long)d << 30; m->free = m->total - m->used;
    return 0;
}
int nvmlDeviceGetUtilizationRates(dev d, util *u) { u->gpu = 37 * (long)d; u->memory = 5; return 0; }
int nvmlDeviceGetPowerUsage(dev d, unsigned int *mw) {
    if ((long)d == 2) return 3; /* NVML_ERROR_NOT_SUPPORTED */
    *mw = 250500; return 0;
}
int nvmlSystemGetDriverVersion(char *b, unsigned int n) { snprintf(b, n, "555.42"); return 0; }
"#;

#[test]
fn gpu_telemetry_reads_nvml_through_the_real_ffi_path() {
    let dir = TempDir::new("fake-nvml");
    std::fs::write(dir.path("nvml.c"), FAKE_NVML).unwrap();
    let cc = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(dir.path("libnvidia-ml.so.1"))
        .arg(dir.path("nvml.c"))
        .output()
        .expect("a C compiler (cc) is needed for this test; .ci/run installs build-essential");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let with_nvml = |c: &mut std::process::Command| {
        c.env("LD_LIBRARY_PATH", &dir.0)
            .env_remove("LLMBENCH_NO_NVML");
    };
    let mut c = bin();
    with_nvml(&mut c);
    let o = c.args(["detect", "--json"]).output().unwrap();
    assert!(o.status.success());
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let gpus = d["system"]["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 2, "{}", d["system"]);
    assert_eq!(gpus[0]["name"], "Fake GPU 1");
    assert_eq!(gpus[1]["memory_total_bytes"], 80u64 << 30);
    assert_eq!(gpus[0]["driver"], "555.42");
    // A run samples them into its resource timeline, with mean and peak.
    let out = dir.path("r.json");
    let mut c = bin();
    with_nvml(&mut c);
    let o = c
        .args([
            "run",
            "--ttft-ms",
            "5",
            "--itl-ms",
            "5",
            "-n",
            "20",
            "-c",
            "2",
        ])
        .args(["--sample-interval", "50ms", "-q", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = llmbench::results::file::ResultFile::read(&out).unwrap();
    assert_eq!(r.system.as_ref().unwrap().gpus.len(), 2);
    let tl = r.scenarios[0].resources.as_ref().unwrap();
    assert!(!tl.samples.is_empty());
    for s in &tl.samples {
        assert_eq!(s.gpus.len(), 2);
        assert_eq!(s.gpus[0].util_pct, Some(37.0));
        assert_eq!(s.gpus[1].util_pct, Some(74.0));
        assert_eq!(s.gpus[1].memory_used_bytes, Some(2 << 30));
        assert_eq!(s.gpus[0].power_w, Some(250.5));
        assert_eq!(s.gpus[1].power_w, None);
    }
    let g = &tl.summary.gpus;
    assert_eq!(g.len(), 2);
    assert_eq!(g[1].util_pct.unwrap().peak, 74.0);
    assert_eq!(g[0].power_w.unwrap().mean, 250.5);
    assert!(g[1].power_w.is_none());
    // The report charts them, and optimize plans for the two GPUs.
    let rep = dir.path("rep");
    let o = bin()
        .arg("report")
        .arg(&out)
        .arg("--out")
        .arg(&rep)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(rep.join("charts/resources.svg")).unwrap();
    for t in [
        "GPU utilisation",
        "GPU memory used",
        "GPU power",
        "default gpu1",
    ] {
        assert!(svg.contains(t), "{t} missing from resources.svg");
    }
    let mut c = bin();
    with_nvml(&mut c);
    let o = c
        .args([
            "optimize",
            "--backend",
            "vllm",
            "--model-gb",
            "16",
            "--json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["inputs"]["gpus"], 2);
    let tp = v["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "--tensor-parallel-size")
        .unwrap();
    assert_eq!(tp["value"], "2");
}

/// The NVML stand-in above plus energy counters: each reading of GPU d adds d × 100 J
/// (counters in mJ, as nvml.h says), so one measured window (one reading at its start, one
/// at its end) costs exactly 100 J + 200 J = 300 J.
const FAKE_NVML_ENERGY: &str = r#"
static unsigned long long counters[3] = {0, 5000000ULL, 9000000ULL};
int nvmlDeviceGetTotalEnergyConsumption(dev d, unsigned long long *mj) {
    long i = (long)d;
    counters[i] += 100000ULL * i;
    *mj = counters[i];
    return 0;
}
"#;

fn fake_nvml(dir: &TempDir, energy: bool) {
    let mut src = FAKE_NVML.to_string();
    if energy {
        src.push_str(FAKE_NVML_ENERGY);
    }
    std::fs::write(dir.path("nvml.c"), src).unwrap();
    let cc = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(dir.path("libnvidia-ml.so.1"))
        .arg(dir.path("nvml.c"))
        .output()
        .expect("a C compiler (cc) is needed for this test");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
}

/// Cost per million tokens from the detected GPU count and the measured throughput, and
/// joules per output token from the GPUs' energy counters over the measured window.
#[test]
fn cost_and_energy_per_token_from_the_gpus() {
    let dir = TempDir::new("fake-nvml-energy");
    fake_nvml(&dir, true);
    let out = dir.path("r.json");
    let o = bin()
        .env("LD_LIBRARY_PATH", &dir.0)
        .env_remove("LLMBENCH_NO_NVML")
        .args(["run", "--ttft-ms", "5", "--itl-ms", "2", "--tokens", "10"])
        .args(["-n", "20", "-c", "4", "--warmup", "4", "--max-tokens", "10"])
        .args(["--gpu-cost-per-hour", "3.6", "-q", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let r = llmbench::results::file::ResultFile::read(&out).unwrap();
    let sc = &r.scenarios[0];
    assert_eq!(sc.metrics.output_tokens.total, 200);
    // Two readings of the window (not of the warm-up): 300 J for 200 tokens.
    assert_eq!(sc.energy_j, Some(300.0));
    assert_eq!(sc.energy_j_per_output_token, Some(1.5));
    let c = sc.cost.unwrap();
    assert_eq!((c.usd_per_hour, c.gpus), (3.6, 2));
    let truth = 3.6 * 2.0 / 3600.0 / sc.metrics.output_tokens_per_s * 1e6;
    let got = c.usd_per_million_output_tokens.unwrap();
    assert!((got - truth).abs() < 1e-9 * truth, "{got} vs {truth}");
    let input_per_s = sc.metrics.total_tokens_per_s - sc.metrics.output_tokens_per_s;
    let truth_in = 3.6 * 2.0 / 3600.0 / input_per_s * 1e6;
    let got_in = c.usd_per_million_input_tokens.unwrap();
    assert!((got_in - truth_in).abs() < 1e-9 * truth_in);
    assert!(stdout.contains("Cost: $"), "{stdout}");
    assert!(stdout.contains("1.500 J per output token"), "{stdout}");

    // --gpus overrides the count; a driver without the counter gives null energy, not 0.
    let dir = TempDir::new("fake-nvml-no-energy");
    fake_nvml(&dir, false);
    let out = dir.path("r.json");
    let o = bin()
        .env("LD_LIBRARY_PATH", &dir.0)
        .env_remove("LLMBENCH_NO_NVML")
        .args(["run", "--ttft-ms", "5", "--itl-ms", "2", "--tokens", "10"])
        .args(["-n", "8", "-c", "2", "--max-tokens", "10"])
        .args(["--gpu-cost-per-hour", "2", "--gpus", "8", "-q", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let sc = &v["scenarios"][0];
    assert_eq!(sc["cost"]["gpus"], 8);
    assert!(sc["energy_j"].is_null() && sc["energy_j_per_output_token"].is_null());

    // No GPU and no --gpus: cost is null, and the console says why.
    let out = dir.path("none.json");
    let o = bin()
        .args(["run", "--ttft-ms", "5", "--itl-ms", "2", "--tokens", "4"])
        .args(["-n", "4", "--gpu-cost-per-hour", "2", "-q", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert!(v["scenarios"][0]["cost"].is_null());
    assert!(String::from_utf8_lossy(&o.stdout).contains("no GPU detected"));
}

#[test]
fn bad_cost_flags_exit_2_naming_the_flag() {
    for (args, flag) in [
        (vec!["--gpu-cost-per-hour", "-1"], "--gpu-cost-per-hour"),
        (vec!["--gpu-cost-per-hour", "NaN"], "--gpu-cost-per-hour"),
        (vec!["--gpu-cost-per-hour", "1", "--gpus", "0"], "--gpus"),
        (vec!["--gpu-cost-per-hour", "1", "--gpus", "-2"], "--gpus"),
    ] {
        for cmd in ["run", "sweep"] {
            let mut c = bin();
            c.args([cmd, "http://127.0.0.1:9", "-n", "1"]).args(&args);
            if cmd == "sweep" {
                c.args(["-c", "1,2"]);
            }
            let o = c.output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(flag), "{args:?}: {err}");
        }
    }
}
