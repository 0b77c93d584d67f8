#!/usr/bin/env python3
"""llmbench's performance harness: how much the client costs, and how far its timing drifts.

Runs the release binary's simulator in one process (pinned to the last CPU) and llmbench's
client in another (pinned to CPU 0), so "one client core" is literal. Standard library only.

    python3 bench/bench.py                 # all sections, default sizes
    python3 bench/bench.py cpu capacity    # some sections
    python3 bench/bench.py --quick         # smaller sizes, for a smoke run
    python3 bench/bench.py peers           # beside vllm-bench, guidellm, aiperf, vllm bench serve
                                           # (bench/peers-setup.sh installs them)
    python3 bench/bench.py overhead        # vllm-bench's bench-overhead matrix, every tool

Prints a Markdown table per section; docs/performance.md keeps the latest figures.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("LLMBENCH_BIN", os.path.join(ROOT, "target", "release", "llmbench"))
NCPU = os.cpu_count() or 1
# GNU time reports its child's true peak RSS (wait4's ru_maxrss of a process forked from a small
# one); without it the harness falls back to polling the client's VmHWM, which can miss a short
# peak (the end of a run, when the result is written, takes 1-2 MiB for a few milliseconds).
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
CLIENT_CPU = "0"
SERVER_CPU = str(NCPU - 1)


# BENCH_RT=1: the client (every tool alike) runs at real-time priority (SCHED_FIFO 1), so that
# nothing of normal priority on its core preempts it. On the 2-vCPU development VM the VM's own
# agent and kdamond need a core about once a second; with the simulator's core busy they take the
# client's for 2-30 ms, and every chunk that arrives meanwhile is read late (performance.md,
# section 11). Needs CAP_SYS_NICE (root); the simulator keeps normal priority.
RT = os.environ.get("BENCH_RT") == "1"


def pinned(cpu, argv):
    if shutil.which("taskset") and NCPU > 1:
        argv = ["taskset", "-c", cpu] + argv
    if RT and cpu == CLIENT_CPU:
        if not shutil.which("chrt"):
            raise SystemExit("BENCH_RT=1 needs chrt (util-linux)")
        argv = ["chrt", "-f", "1"] + argv
    return argv


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`llmbench serve` in its own process, pinned away from the client."""

    def __init__(self, *sim_args):
        self.port = free_port()
        argv = [BIN, "serve", "--port", str(self.port), *map(str, sim_args)]
        self.proc = subprocess.Popen(
            pinned(SERVER_CPU, argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        line = self.proc.stdout.readline().decode()
        if "listening" not in line:
            raise SystemExit(f"simulator did not start: {line!r}")
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        return self

    def cpu_s(self):
        """CPU seconds the simulator has used so far (user + system)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def run_client(url, *args, records=False):
    """Runs `llmbench run` pinned to the client CPU; returns (result, records, cpu_s, rss_kib)."""
    tmp = tempfile.mkdtemp(prefix="llmbench-bench-")
    out = os.path.join(tmp, "r.json")
    rec = os.path.join(tmp, "r.jsonl")
    argv = [BIN, "run", url, "-q", "-o", out, *map(str, args)]
    if records:
        argv += ["--records", rec]
    rss_file = os.path.join(tmp, "maxrss")
    cmd = pinned(CLIENT_CPU, argv)
    if GNU_TIME:
        cmd = [GNU_TIME, "-f", "%M", "-o", rss_file] + cmd
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Peak RSS: GNU time's maxrss of the client when there is GNU time, else VmHWM of the running
    # client, polled. (wait4's ru_maxrss of our own child is no good here: it keeps the pre-exec
    # peak of the forked child, i.e. this Python process's own size.)
    peak = [0]

    def poll():
        while not GNU_TIME and p.poll() is None:
            try:
                with open(f"/proc/{p.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak[0] = max(peak[0], int(line.split()[1]))
            except OSError:
                pass
            time.sleep(0.02)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    err = p.stderr.read().decode()
    _, ru = os.wait4(p.pid, 0)[1:]
    wall = time.monotonic() - t0
    watcher.join()
    if GNU_TIME:
        try:
            with open(rss_file) as f:
                peak[0] = int(f.read().split()[-1])
        except (OSError, ValueError, IndexError):
            pass
    try:
        with open(out) as f:
            result = json.load(f)
    except OSError:
        raise SystemExit(f"llmbench run failed: {' '.join(argv)}\n{err}")
    recs = []
    if records:
        with open(rec) as f:
            # The last line is the run's end line ({"run_end": ...}), not a record.
            recs = [r for r in (json.loads(l) for l in f if l.strip()) if "run_end" not in r]
    shutil.rmtree(tmp, ignore_errors=True)
    return result, recs, ru.ru_utime + ru.ru_stime, peak[0], wall


def pct(xs, q):
    """Linear-interpolation percentile (numpy's default), as llmbench reports."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q / 100
    i = int(k)
    j = min(i + 1, len(xs) - 1)
    return xs[i] + (xs[j] - xs[i]) * (k - i)


def table(title, header, rows):
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    sys.stdout.flush()


def sec_cpu(quick):
    """Client CPU per streamed token and per request against a zero-delay server."""
    rows = []
    n = 500 if quick else 2000
    for itl in (0, 1):
        with Server("--ttft-ms", 0, "--itl-ms", itl, "--tokens", 200) as s:
            runs = []
            for _ in range(3):
                res, _, cpu, _, wall = run_client(
                    s.url, "-n", n, "-c", 32, "--max-tokens", 200, "--warmup", 32
                )
                m = res["scenarios"][0]["metrics"]
                toks = m["output_tokens"]["total"]
                ok = res["scenarios"][0]["outcomes"]["succeeded"]
                runs.append((cpu / toks * 1e6, cpu / ok * 1e6, toks / m["duration_s"]))
            us_tok = statistics.median(r[0] for r in runs)
            us_req = statistics.median(r[1] for r in runs)
            tps = statistics.median(r[2] for r in runs)
            rows.append([f"{itl} ms", str(n), f"{us_tok:.2f}", f"{us_req:.0f}", f"{tps:,.0f}"])
    table(
        "Client CPU per token (200-token streams, c=32, median of 3)",
        ["server ITL", "requests", "µs CPU / token", "µs CPU / request", "tokens/s"],
        rows,
    )


def sec_capacity(quick):
    """Concurrent streams one client core holds, and its timing error at each load.

    Open-loop Poisson arrivals of long streams (TTFT 200 ms, 6 tokens, one ITL per case) keep
    the wanted number of streams open; only requests sent after the ramp (one request lifetime)
    count. Two errors per request: against the server's *send* times (the simulator's
    --send-log, matched by X-Request-Id) = what the client adds (kernel, wake-up, parsing), and
    against the configured truth = client and simulator together (on 2 cores the one-core
    simulator falls behind first, so this column measures the pair).
    """
    rows = []
    ttft, tokens = 200, 6
    cases = [(1000, 100), (10000, 2000)] if quick else [
        (1000, 100), (10000, 2000), (10000, 1000), (10000, 700), (10000, 500)]
    if os.environ.get("BENCH_CASES"):  # e.g. BENCH_CASES=10000:700,10000:800
        cases = [tuple(map(int, c.split(":"))) for c in os.environ["BENCH_CASES"].split(",")]
    for streams, itl in cases:
        life = (ttft + itl * (tokens - 1)) / 1000
        rate = streams / life
        dur = 2.5 * life
        tmp = tempfile.mkdtemp(prefix="llmbench-bench-cap-")
        log = os.path.join(tmp, "sends.jsonl")
        with Server("--ttft-ms", ttft, "--itl-ms", itl, "--tokens", tokens, "--send-log", log) as s:
            res, recs, cpu, rss, wall = run_client(
                s.url, "--backend", "openai-completions", "--rate", f"{rate:.3f}",
                "-d", f"{dur:.1f}s", "--max-tokens", tokens, "--connect-timeout", "30s",
                "--request-id-header", "X-Request-Id", records=True,
            )
            server_cpu = s.cpu_s()
        sends = {}
        with open(log) as f:
            for line in f:
                v = json.loads(line)
                sends[v["request_id"]] = v["sends_ms"]
        shutil.rmtree(tmp, ignore_errors=True)
        sc = res["scenarios"][0]
        ok = [r for r in recs if r["outcome"] == "succeeded"]
        ramp = life * 1000
        meas = [r for r in ok if r["sent_at_ms"] >= ramp]
        ev = sorted([(r["sent_at_ms"], 1) for r in ok] + [(r["done_at_ms"], -1) for r in ok])
        cur = peak = 0
        for _, d in ev:
            cur += d
            peak = max(peak, cur)
        t_send, i_send, t_truth, i_truth = [], [], [], []
        for r in meas:
            ch = r["chunk_times_ms"]
            sv = sends.get(r.get("request_id"))
            t_truth.append(abs(ch[0] - r["sent_at_ms"] - ttft))
            i_truth += [abs(b - a - itl) for a, b in zip(ch, ch[1:])]
            if sv and len(sv) >= len(ch):
                t_send.append(abs(ch[0] - r["sent_at_ms"] - sv[0]))
                i_send += [abs((b - a) - (y - x)) for a, b, x, y in zip(ch, ch[1:], sv, sv[1:])]
        span = (max(r["done_at_ms"] for r in meas) - ramp) / 1000 if meas else 0
        events = sum(len(r["chunk_times_ms"]) for r in meas) / span if span else 0
        rows.append([
            f"{streams:,}", f"{peak:,}", f"{itl}", f"{len(ok):,}/{sc['outcomes']['scheduled']:,}",
            f"{events:,.0f}", f"{cpu / wall * 100:.0f}%", f"{server_cpu / wall * 100:.0f}%",
            f"{pct(t_send, 50):.2f}", f"{pct(t_send, 99):.2f}",
            f"{pct(i_send, 50):.3f}", f"{pct(i_send, 99):.3f}",
            f"{pct(i_truth, 99):.2f}", f"{rss / 1024:.0f}",
            f"{len(i_send):,}",
        ])
    table(
        f"Concurrent streams (open loop, TTFT {ttft} ms, {tokens} tokens; errors after the ramp)",
        ["target streams", "peak streams", "ITL (ms)", "succeeded", "events/s", "client CPU",
         "simulator CPU",
         "TTFT err p50 (ms)", "TTFT err p99 (ms)", "ITL err p50 (ms)", "ITL err p99 (ms)",
         "ITL err p99 vs truth (pair, ms)", "client RSS (MiB)", "gaps"],
        rows,
    )


def sec_simrate(quick):
    """The simulator's own cost: SSE events it sends per second of its CPU time.

    Fixed mode (TTFT 50 ms, ITL 10 ms, 100 tokens: vllm-bench's bench-overhead workload),
    closed loop at each concurrency, send log on (as in `capacity`). Events = chunks the
    simulator handed to its connections (the send log's entries); CPU = the simulator's
    user + system time over the client run (/proc/PID/stat). Ratio of the two = events/s per
    simulator core, whoever else shares the machine.
    """
    rows = []
    conc = [100, 1000] if quick else [100, 500, 1000]
    if os.environ.get("BENCH_CONC"):  # e.g. BENCH_CONC=1000,2000
        conc = [int(c) for c in os.environ["BENCH_CONC"].split(",")]
    dur = 4 if quick else 8
    for c in conc:
        runs = []
        for _ in range(1 if quick else 3):
            tmp = tempfile.mkdtemp(prefix="llmbench-bench-sim-")
            log = os.path.join(tmp, "sends.jsonl")
            with Server("--ttft-ms", 50, "--itl-ms", 10, "--tokens", 100, "--send-log", log) as s:
                cpu0 = s.cpu_s()
                res, _, _, _, wall = run_client(
                    s.url, "--backend", "openai-completions", "-c", c, "-d", f"{dur}s",
                    "--max-tokens", 100, "--connect-timeout", "30s",
                    "--request-id-header", "X-Request-Id",
                )
                sim_cpu = s.cpu_s() - cpu0
            with open(log) as f:
                events = sum(len(json.loads(l)["sends_ms"]) for l in f if l.strip())
            shutil.rmtree(tmp, ignore_errors=True)
            runs.append((events / sim_cpu if sim_cpu else float("inf"), events / wall,
                         sim_cpu / wall))
        rows.append([
            f"{c:,}", f"{statistics.median(r[1] for r in runs):,.0f}",
            f"{statistics.median(r[2] for r in runs) * 100:.0f}%",
            f"{statistics.median(r[0] for r in runs):,.0f}",
            " / ".join(f"{r[0]:,.0f}" for r in runs),
        ])
    table(
        "Simulator events per second of its CPU (fixed mode, TTFT 50 ms, ITL 10 ms, 100 tokens)",
        ["concurrency", "events/s sent", "simulator CPU", "events per simulator CPU-second",
         "each run"],
        rows,
    )


def sec_lateness(quick):
    """Open-loop schedule lateness (sent_at − scheduled_at)."""
    rows = []
    dur = 3 if quick else 10
    for rate in (100, 1000, 5000):
        with Server("--ttft-ms", 0, "--itl-ms", 0, "--tokens", 1) as s:
            res, recs, cpu, _, wall = run_client(
                s.url, "--rate", rate, "--arrival", "constant", "-d", f"{dur}s",
                "--max-tokens", 1, records=True,
            )
        sc = res["scenarios"][0]
        late = [r["sent_at_ms"] - r["scheduled_at_ms"] for r in recs if r.get("sent_at_ms") is not None]
        sent = sc["metrics"].get("sent_requests_per_s") or 0
        rows.append([
            f"{rate:,}", f"{sent:,.0f}", str(len(late)),
            f"{pct(late, 50) * 1000:.0f}", f"{pct(late, 99) * 1000:.0f}", f"{max(late) * 1000:.0f}",
            f"{cpu / wall * 100:.0f}%",
        ])
    table(
        f"Schedule lateness, constant arrivals for {dur} s",
        ["target req/s", "achieved req/s", "requests", "lateness p50 (µs)", "p99 (µs)",
         "max (µs)", "client CPU"],
        rows,
    )


def sec_memory(quick):
    """Peak client memory against the number of requests."""
    rows = []
    sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
    how = "GNU time's maxrss" if GNU_TIME else "VmHWM polled every 20 ms (no /usr/bin/time)"
    with Server("--ttft-ms", 0, "--itl-ms", 0, "--tokens", 2) as s:
        for n in sizes:
            # Three runs where they are cheap: the peak moves by a few hundred KiB between runs
            # (code pages faulted in, the tails the histograms happen to see).
            peaks, walls, ok = [], [], 0
            for _ in range(1 if n >= 1_000_000 else 3):
                res, _, cpu, rss, wall = run_client(s.url, "-n", n, "-c", 64, "--max-tokens", 2)
                ok = res["scenarios"][0]["outcomes"]["succeeded"]
                peaks.append(rss / 1024)
                walls.append(wall)
            rows.append([
                f"{n:,}", f"{ok:,}", f"{statistics.median(peaks):.1f}",
                " / ".join(f"{x:.1f}" for x in peaks), f"{statistics.median(walls):.1f}",
            ])
    table(
        f"Peak client RSS (c=64, 2-token streams; {how}; median of the runs)",
        ["requests", "succeeded", "peak RSS (MiB)", "each run (MiB)", "wall (s)"],
        rows,
    )


def sec_long(quick):
    """2 MiB request bodies and 1 MiB SSE data lines: no error, no collapse."""
    rows = []
    tmp = tempfile.mkdtemp(prefix="llmbench-bench-long-")
    data = os.path.join(tmp, "big.jsonl")
    with open(data, "w") as f:
        f.write(json.dumps({"prompt": "word " * (2 * 1024 * 1024 // 5 + 1)}) + "\n")
    n = 8 if quick else 32
    cases = [
        ("2 MiB prompt, 8 small tokens", [], ["--dataset", data]),
        ("short prompt, 8 tokens of 1 MiB", ["--token-bytes", 1 << 20], []),
        ("2 MiB prompt, 8 tokens of 1 MiB", ["--token-bytes", 1 << 20], ["--dataset", data]),
    ]
    for name, sim, client in cases:
        with Server("--ttft-ms", 10, "--itl-ms", 5, "--tokens", 8, *sim) as s:
            res, _, cpu, rss, wall = run_client(
                s.url, "--backend", "openai-completions", "-n", n, "-c", 4, "--max-tokens", 8, *client
            )
        sc = res["scenarios"][0]
        ok = sc["outcomes"]["succeeded"]
        m = sc["metrics"]
        mib = n * ((2 if client else 0) + (8 if sim else 0))
        rows.append([
            name, f"{ok}/{n}", str(m["output_tokens"]["total"]),
            f"{cpu:.2f}", f"{cpu / mib * 1000:.1f}" if mib else "-", f"{rss / 1024:.0f}",
            f"{m['ttft_ms']['p50']:.0f}" if m.get("ttft_ms") else "-", f"{wall:.1f}",
        ])
    shutil.rmtree(tmp, ignore_errors=True)
    table(
        f"Long context and huge events (c=4, {n} requests; server truth TTFT 10 ms, ITL 5 ms)",
        ["case", "succeeded", "output tokens", "client CPU (s)", "client CPU ms / MiB",
         "client peak RSS (MiB)", "TTFT p50 (ms)", "wall (s)"],
        rows,
    )


PEERS = {"venv": None, "vllm_venv": None, "tokenizer": None, "vllm_bench": None}


def sec_peers(quick):
    """llmbench beside vllm-bench, guidellm, aiperf and vLLM's benchmark on the same simulator."""
    import peers

    tools = peers.tools(BIN, PEERS["venv"], PEERS["vllm_venv"], PEERS["tokenizer"],
                        PEERS["vllm_bench"])
    missing = [t.name for t in tools if not t.available()]
    tools = [t for t in tools if t.available()]
    if missing:
        print(f"\npeers not found (see bench/peers-setup.sh): {', '.join(missing)}")
    c, n_tp = 32, (320 if quick else 1280)
    rate, n_acc = 40, (200 if quick else 600)
    rows = []
    for t in tools:
        with Server("--ttft-ms", 0, "--itl-ms", 0, "--tokens", 200) as s:
            tp, cpu, wall = peers.measure(t, lambda a: pinned(CLIENT_CPU, a), s.url,
                                          n=n_tp, concurrency=c, tokens=200)
        log = os.path.join(tempfile.mkdtemp(prefix="llmbench-bench-peer-"), "sends.jsonl")
        with Server("--ttft-ms", peers.TRUTH_TTFT, "--itl-ms", peers.TRUTH_ITL,
                    "--tokens", peers.TRUTH_TOKENS, "--send-log", log) as s:
            acc, _, _ = peers.measure(t, lambda a: pinned(CLIENT_CPU, a), s.url, n=n_acc, rate=rate)
        # The rate each client achieved, measured alike for all at the server: arrivals of the
        # streamed requests over the span from the first to the last.
        with open(log) as f:
            arrived = sorted(json.loads(l)["arrived_ms"] for l in f if l.strip())
        shutil.rmtree(os.path.dirname(log), ignore_errors=True)
        at_server = (len(arrived) - 1) / (arrived[-1] - arrived[0]) * 1000 if len(arrived) > 1 else 0
        for res in (tp, acc):
            if "error" in res:
                print(f"\n{t.name} failed:\n{res['error']}")
        if "error" in tp or "error" in acc:
            rows.append([t.name] + ["failed"] * 7)
            continue
        us_tok = cpu / tp["tokens"] * 1e6 if tp.get("tokens") else float("nan")
        rows.append([
            t.name, f"{tp['out_tok_s']:,.0f}", f"{us_tok:,.1f}", f"{wall:.0f}",
            f"{abs(acc['ttft_p50'] - peers.TRUTH_TTFT):.2f}",
            f"{abs(acc['itl_p50'] - peers.TRUTH_ITL):.3f}",
            f"{at_server:.2f} / {rate}", f"{acc['req_s']:.2f}",
        ])
    table(
        f"Peers on one client core: throughput against a zero-delay server (c={c}, {n_tp} x 200 tokens; "
        f"CPU includes start-up), accuracy at a constant {rate} req/s against truth TTFT "
        f"{peers.TRUTH_TTFT:.0f} ms / ITL {peers.TRUTH_ITL:.0f} ms ({n_acc} requests)",
        ["client", "tokens/s sustained", "CPU µs / token", "wall (s)", "|TTFT p50 − truth| (ms)",
         "|ITL p50 − truth| (ms, each tool's definition)",
         "arrival rate at the server / target (req/s)", "rate the tool reports"],
        rows,
    )
    if rows and rows[0][0] == "llmbench" and rows[0][1] != "failed":
        ours = rows[0]
        ratios = []
        for r in rows[1:]:
            if r[1] == "failed":
                continue
            f = lambda x: float(x.replace(",", ""))
            ratios.append([
                r[0],
                f"{f(ours[1]) / f(r[1]):.1f}x",
                f"{f(r[2]) / f(ours[2]):.1f}x",
                f"{(f(r[4]) + 1e-3) / (f(ours[4]) + 1e-3):.1f}x",
            ])
        if ratios:
            table(
                "llmbench relative to each peer (above 1x: llmbench ahead)",
                ["peer", "tokens/s (ours / theirs)", "CPU per token (theirs / ours)",
                 "TTFT error (theirs / ours)"],
                ratios,
            )


def sec_overhead(quick):
    """vllm-bench's bench-overhead matrix for every tool (bench/overhead.py)."""
    import overhead

    overhead.sec_overhead(sys.modules[__name__], quick)


def sec_overhead_report(quick):
    """The overhead matrix's medians from $BENCH_OVERHEAD_LOG (several `overhead` runs)."""
    import overhead

    overhead.sec_overhead_report(sys.modules[__name__], quick)


SECTIONS = {
    "cpu": sec_cpu,
    "capacity": sec_capacity,
    "simrate": sec_simrate,
    "lateness": sec_lateness,
    "memory": sec_memory,
    "long": sec_long,
    "peers": sec_peers,
    "overhead": sec_overhead,
}
# Not part of "every section": prints the table of runs `overhead` logged (BENCH_OVERHEAD_LOG).
EXTRA = {"overhead-report": sec_overhead_report}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sections", nargs="*", help="any of: " + ", ".join([*SECTIONS, *EXTRA]))
    ap.add_argument("--quick", action="store_true")
    cache = os.path.expanduser(os.environ.get("LLMBENCH_PEERS", "~/.cache/llmbench-peers"))
    ap.add_argument("--peers-venv", default=os.path.join(cache, "venv"),
                    help="venv with guidellm and aiperf (bench/peers-setup.sh)")
    ap.add_argument("--vllm-venv", default=os.path.join(cache, "vllm-venv"),
                    help="venv with vllm (bench/peers-setup.sh --vllm)")
    ap.add_argument("--vllm-bench", default=os.path.join(cache, "vllm-bench", "target", "release",
                                                         "vllm-bench"),
                    help="vllm-bench binary (bench/peers-setup.sh builds it)")
    ap.add_argument("--tokenizer", default=os.path.join(cache, "tokenizer"),
                    help="Hugging Face tokenizer directory the peers need for synthetic prompts")
    a = ap.parse_args()
    PEERS.update(venv=a.peers_venv, vllm_venv=a.vllm_venv, vllm_bench=a.vllm_bench,
                 tokenizer=a.tokenizer if os.path.isdir(a.tokenizer) else None)
    for name in a.sections:
        if name not in SECTIONS and name not in EXTRA:
            ap.error(f"unknown section {name!r}; choose from {', '.join([*SECTIONS, *EXTRA])}")
    if not os.path.exists(BIN):
        subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
    print(f"llmbench bench: {BIN}, {NCPU} CPUs, client on CPU {CLIENT_CPU}"
          f"{' at real-time priority (SCHED_FIFO 1)' if RT else ''}, server on CPU {SERVER_CPU}")
    # A results store of the harness's own, dropped at the end: the client runs do not land in
    # the user's `llmbench history`, and a store that grew from run to run would change what the
    # end of a run costs.
    store = tempfile.mkdtemp(prefix="llmbench-bench-store-")
    os.environ["LLMBENCH_HOME"] = store
    try:
        for name in a.sections or SECTIONS:
            {**SECTIONS, **EXTRA}[name](a.quick)
    finally:
        shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
