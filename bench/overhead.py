"""vllm-bench's bench-overhead matrix, for every available tool, errors against the send log.

vllm-bench (vllm-project/vllm-bench, bench-overhead/README.md) measures client overhead against
a mock server with TTFT 50 ms, ITL 10 ms, 100 tokens, closed loop at concurrency 1, 10, 100,
500, 1000 with 50, 100, 200, 500, 1000 requests, and reports each client's TTFT and ITL against
that configured truth. Here the same workload runs on llmbench's simulator in fixed mode
(`serve --ttft-ms 50 --itl-ms 10 --tokens 100 --send-log FILE`, a fresh simulator per run,
pinned to the last CPU; the tool pinned to CPU 0), for every tool, and the matrix goes on beyond
1,000 streams with 1 request per stream.

Errors are per request, against what the simulator really did (its send log: per streamed
response the request's `x-request-id`, when it arrived and when each chunk was handed to the
connection, in ms after arrival):

  TTFT error = client TTFT − the server's first send after the request arrived
  ITL error  = |client gap − server gap|, per chunk

The TTFT error includes the time from the tool's send to the request's arrival at the simulator
(connecting: a closed loop opens all its connections at once); the column "send → arrival p99"
shows that part, the two clocks aligned on the fastest request of the run, and "TTFT err after
arrival p99" what is left, the receiving side.

"TTFT err p99 from socket arrival" takes the server's truth from when the request's bytes
reached the simulator's socket (the kernel's receive timestamp, `waited_ms` in the send log)
instead of from its handler starting: the time a request waited inside the simulator (accept,
read, parse, its one busy core), "simulator read wait p99", is server time a user's TTFT truly
holds, not the client's error. What is left is the client's own: from its TTFT stamp to the
bytes reaching the socket, and from the first chunk's send to the client's stamp of it.

"listen queue overflows" counts the connections
the kernel dropped because the simulator's accept queue was full (TcpExt ListenOverflows, the
whole machine's count over the run): each costs its client a SYN retransmit, 1 s.

A tool that cannot send a request id of ours cannot be matched to the log: its errors are taken
against the configured truth instead (TTFT − 50 ms, |gap − 10 ms|) and the table says so. The
column "|TTFT − 50| mean" is vllm-bench's own figure (mean absolute error against the truth) for
every tool.

    python3 bench/bench.py overhead                      # all tools, all concurrencies, 3 trials
    python3 bench/bench.py overhead --quick              # 1 trial
    BENCH_TOOLS=llmbench,vllm-bench BENCH_CONC=1000,2000 BENCH_TRIALS=3 \\
      BENCH_OVERHEAD_LOG=/tmp/ovh.jsonl python3 bench/bench.py overhead   # one slice
    BENCH_OVERHEAD_LOG=/tmp/ovh.jsonl python3 bench/bench.py overhead-report  # medians of all
    BENCH_RT=1 ... overhead      # every tool at real-time priority (chrt -f 1)
    BENCH_TOOLS=llmbench,llmbench-read,... # llmbench also with LLMBENCH_CLOCK=read (chunks timed
                                 # when read, not by the kernel's receive timestamps)
    BENCH_WARM=1 ... overhead    # connections opened by unmeasured requests first

Each run appends its raw figures to $BENCH_OVERHEAD_LOG (JSON lines) when set, so the matrix can
be measured in several short invocations and reported once (median over the trials per cell).
"""

import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time

TRUTH_TTFT, TRUTH_ITL, TOKENS = 50.0, 10.0, 100
# (concurrency, requests): vllm-bench's matrix, then 1 request per stream beyond 1,000.
MATRIX = [(1, 50), (10, 100), (100, 200), (500, 500), (1000, 1000), (2000, 2000), (4000, 4000)]
DEFAULT_CONC = [1, 10, 100, 500, 1000, 2000]


def _requests_for(c):
    for cc, n in MATRIX:
        if cc == c:
            return n
    return c if c > 1000 else max(50, 2 * c)


def _busy_s():
    """CPU seconds all processes on the machine have used (/proc/stat, every core)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal: all but idle and iowait
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def _listen_overflows():
    """The kernel's count of connections dropped because a listen queue was full (TcpExt
    ListenOverflows): each costs the client a SYN retransmit, 1 s on Linux."""
    try:
        with open("/proc/net/netstat") as f:
            lines = [l.split() for l in f if l.startswith("TcpExt:")]
        return int(lines[1][lines[0].index("ListenOverflows")])
    except (OSError, ValueError, IndexError):
        return None


# BENCH_WARM=1: each tool first sends `concurrency` unmeasured requests (llmbench --warmup,
# vllm-bench --num-warmups), so the measured ones go out on open connections and their TTFT
# holds no connection set-up. Tools without such a flag here are skipped.
WARM = os.environ.get("BENCH_WARM") == "1"


def run_once(b, tool, c, n):
    """One tool, one concurrency, fresh simulator; returns a dict of figures."""
    tmp = tempfile.mkdtemp(prefix="llmbench-bench-ovh-")
    log = os.path.join(tmp, "sends.jsonl")
    out = os.path.join(tmp, "out")
    os.mkdir(out)
    ids = "ovh-"
    rss_file = os.path.join(tmp, "maxrss")
    with b.Server("--ttft-ms", TRUTH_TTFT, "--itl-ms", TRUTH_ITL, "--tokens", TOKENS,
                  "--send-log", log) as s:
        argv, env = tool.argv(s.url, out, n, concurrency=c, tokens=TOKENS, ids=ids)
        if WARM:
            argv = argv + tool.warm_args(c)
        cmd = b.pinned(b.CLIENT_CPU, argv)
        if b.GNU_TIME:
            # GNU time's maxrss: the tool's largest process (its own, or a reaped descendant's).
            cmd = [b.GNU_TIME, "-f", "%M", "-o", rss_file] + cmd
        sim0 = s.cpu_s()
        busy0 = _busy_s()
        over0 = _listen_overflows()
        t0 = time.monotonic()
        limit = float(os.environ.get("BENCH_TOOL_TIMEOUT", "300"))
        with open(os.path.join(tmp, "tool.log"), "w") as f:
            p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT,
                                 env={**os.environ, **env}, start_new_session=True)
            # A tool that hangs is killed with its own process group after the limit.
            killer = threading.Timer(limit, os.killpg, (p.pid, signal.SIGKILL))
            killer.start()
            # wait4's usage of a reaped child includes every descendant it reaped in turn.
            _, status, ru = os.wait4(p.pid, 0)
            killer.cancel()
            if time.monotonic() - t0 >= limit:
                print(f"\n{tool.name} c={c}: killed after {limit:.0f} s")
        wall = time.monotonic() - t0
        sim_cpu = s.cpu_s() - sim0
        busy = _busy_s() - busy0
        over1 = _listen_overflows()
    client_cpu = ru.ru_utime + ru.ru_stime
    # What else ran meanwhile (anything but the tool and the simulator: the harness itself,
    # and whoever shares the machine): a run on a quiet machine shows ~0.
    fig = {"tool": tool.name, "rt": b.RT, "warm": WARM, "c": c, "n": n, "wall_s": wall, "client_cpu_s": client_cpu,
           "sim_cpu_s": sim_cpu, "other_cpu_s": max(0.0, busy - client_cpu - sim_cpu),
           "listen_overflows": over1 - over0 if over0 is not None and over1 is not None else None}
    try:
        with open(rss_file) as f:
            fig["rss_mib"] = int(f.read().split()[-1]) / 1024
    except (OSError, ValueError, IndexError):
        fig["rss_mib"] = None
    try:
        reqs = tool.requests(out, ids)
    except (OSError, KeyError, ValueError, IndexError, TypeError) as e:
        tail = open(os.path.join(tmp, "tool.log"), errors="replace").read()[-1500:]
        print(f"\n{tool.name} c={c} failed: {type(e).__name__}: {e}; exit {status}\n{tail}")
        shutil.rmtree(tmp, ignore_errors=True)
        fig["error"] = f"{type(e).__name__}: {e}"
        return fig
    sends, dup, every = {}, 0, []
    with open(log) as f:
        for line in f:
            if not line.strip():
                continue
            v = json.loads(line)
            every.append((v["arrived_ms"], v["sends_ms"]))
            if v["request_id"] in sends:
                dup += 1  # a retried request: keep the last response the server sent
            # waited_ms: from the request reaching the simulator's socket (the kernel's
            # receive timestamp) to its handler starting; absent in logs of older simulators.
            sends[v["request_id"]] = (v["arrived_ms"], v["sends_ms"], v.get("waited_ms"))
    shutil.rmtree(tmp, ignore_errors=True)
    # Streams open at once at the server (arrival to last send): what the closed loop reached.
    # (Every logged response, with or without an id.)
    ev = sorted([(a, 1) for a, sv in every] + [(a + (sv[-1] if sv else 0.0), -1) for a, sv in every])
    cur = peak = 0
    for _, d in ev:
        cur += d
        peak = max(peak, cur)
    fig["peak_streams"], fig["peak_from_all"] = peak, True
    fig.update(errors(reqs, sends))
    fig["logged"], fig["dup_ids"] = len(sends), dup
    return fig


def errors(reqs, sends):
    """Per-request errors against the send log (or the truth for a tool that sends no id)."""
    ok = [r for r in reqs if r[1]]
    has_ids = any(r[0] is not None for r in reqs)
    t_err, i_err, truth_abs, matched, short, lag, recv = [], [], [], 0, 0, [], []
    t_err_socket, waits, unstamped = [], [], 0
    sends_at, arrivals = [], []
    for rid, _, ttft, gaps, sent in ok:
        truth_abs.append(abs(ttft - TRUTH_TTFT))
        if not has_ids:
            t_err.append(ttft - TRUTH_TTFT)
            i_err += [abs(g - TRUTH_ITL) for g in gaps]
            continue
        arrived, sv, waited = sends.get(rid, (None, None, None))
        if sv is None:
            continue
        if len(sv) < len(gaps) + 1:
            short += 1  # the client saw more chunks than the server logged: no chunk match
            continue
        matched += 1
        t_err.append(ttft - sv[0])
        if waited is not None:
            # The server's truth from when the request reached its socket: its read queue
            # (a one-core simulator reading a burst) is server time, not the client's error.
            t_err_socket.append(ttft - (waited + sv[0]))
            waits.append(waited)
        else:
            unstamped += 1  # no kernel timestamp: left out of the figures from socket arrival
        if sent is not None:
            lag.append(arrived - sent)
            recv.append((ttft, arrived - sent, sv[0]))
            sends_at.append(sent)
            arrivals.append(arrived)
        i_err += [abs(g - (y - x)) for g, x, y in zip(gaps, sv, sv[1:])]
    # Send -> arrival: the tool's send time and the simulator's arrival are on two clocks; align
    # them on the fastest request (its delivery taken as 0). Part of the TTFT error above: the
    # time to connect and hand the request over (a burst of new connections at high
    # concurrency), before the server could start its TTFT.
    lag0 = min(lag) if lag else 0.0
    lag = [x - lag0 for x in lag]
    # What is left of the TTFT error once the request had arrived: the receiving side.
    after = [ttft - (d - lag0) - s0 for ttft, d, s0 in recv]
    return {
        "ttft_err_after_arrival_p99": _pct(after, 99),
        "against": "send log" if has_ids else "truth (no id)",
        "send_to_arrival_p50": _pct(lag, 50), "send_to_arrival_p99": _pct(lag, 99),
        # How spread out the tool sent its requests, and the server read them (p99 after the
        # first): a tool that writes a burst faster than the server reads it sees the server's
        # queue in send -> arrival.
        "send_spread_p99": _pct([x - min(sends_at) for x in sends_at], 99),
        "arrival_spread_p99": _pct([x - min(arrivals) for x in arrivals], 99),
        "requests": len(reqs), "ok": len(ok), "matched": matched if has_ids else None,
        "short": short,
        "ttft_mean": statistics.fmean(r[2] for r in ok) if ok else None,
        "ttft_err_mean": statistics.fmean(t_err) if t_err else None,
        "ttft_err_p99": _pct(t_err, 99),
        "ttft_err_socket_p99": _pct(t_err_socket, 99),
        "sim_wait_p99": _pct(waits, 99),
        "unstamped": unstamped,
        "itl_err_p50": _pct(i_err, 50), "itl_err_p99": _pct(i_err, 99),
        "gaps": len(i_err),
        "ttft_truth_mae": statistics.fmean(truth_abs) if truth_abs else None,
    }


def _pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    k = (len(xs) - 1) * q / 100
    i = int(k)
    j = min(i + 1, len(xs) - 1)
    return xs[i] + (xs[j] - xs[i]) * (k - i)


def sec_overhead(b, quick):
    import peers

    tools = peers.tools(b.BIN, b.PEERS["venv"], b.PEERS["vllm_venv"], b.PEERS["tokenizer"],
                        b.PEERS.get("vllm_bench"))
    want = os.environ.get("BENCH_TOOLS")
    if want:
        names = [w.strip() for w in want.split(",")]
        tools = [t for t in tools if t.name in names or t.name.split()[0] in names]
        if "llmbench-read" in names:
            tools.insert(1, peers.LlmbenchReadClock(b.BIN))
    missing = [t.name for t in tools if not t.available()]
    tools = [t for t in tools if t.available()]
    if WARM:
        tools = [t for t in tools if t.warm_args(1) is not None]
    if missing:
        print(f"\nnot installed (see bench/peers-setup.sh): {', '.join(missing)}")
    conc = [int(c) for c in os.environ["BENCH_CONC"].split(",")] if os.environ.get(
        "BENCH_CONC") else DEFAULT_CONC
    trials = int(os.environ.get("BENCH_TRIALS") or (1 if quick else 3))
    sink = os.environ.get("BENCH_OVERHEAD_LOG")
    figs = []
    for trial in range(trials):
        for c in conc:
            for t in tools:
                fig = run_once(b, t, c, _requests_for(c))
                fig["trial"] = trial
                fig["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                figs.append(fig)
                print(f"  {t.name} c={c} trial {trial + 1}: ok {fig.get('ok')}/{fig['n']}, "
                      f"TTFT err p99 {_f(fig.get('ttft_err_p99'))} (from socket "
                      f"{_f(fig.get('ttft_err_socket_p99'))}), ITL err p99 "
                      f"{_f(fig.get('itl_err_p99'), 3)}, sends spread {_f(fig.get('send_spread_p99'))}, "
                      f"arrivals spread {_f(fig.get('arrival_spread_p99'))}, wall {fig['wall_s']:.1f} s, "
                      f"other CPU {fig['other_cpu_s']:.2f} s"
                      + (f", {fig['unstamped']} without a socket timestamp" if fig.get("unstamped") else ""),
                      flush=True)
                if sink:
                    with open(sink, "a") as f:
                        f.write(json.dumps(fig) + "\n")
    report(b, figs, [t.name for t in tools])


def sec_overhead_report(b, quick):
    sink = os.environ.get("BENCH_OVERHEAD_LOG")
    if not sink or not os.path.exists(sink):
        raise SystemExit("overhead-report reads $BENCH_OVERHEAD_LOG (JSON lines of `overhead`)")
    with open(sink) as f:
        figs = [json.loads(l) for l in f if l.strip()]
    report(b, figs, ["llmbench", "llmbench-read", "vllm-bench", "guidellm", "aiperf",
                     "vllm bench serve"])


def _f(x, nd=2):
    return "-" if x is None else f"{x:,.{nd}f}"


def report(b, figs, order):
    cells = {}
    for f in figs:
        # Runs at real-time priority (BENCH_RT=1) or warmed (BENCH_WARM=1) are their own rows.
        tags = [t for t, on in (("real-time", f.get("rt")), ("warm", f.get("warm"))) if on]
        tool = f["tool"] + (f" ({', '.join(tags)})" if tags else "")
        cells.setdefault((f["c"], tool), []).append(f)
    rank = {name: i for i, name in enumerate(order)}
    rows = []
    for (c, tool), fs in sorted(cells.items(), key=lambda kv: (
            kv[0][0], kv[0][1].partition(" (")[2], rank.get(kv[0][1].split(" (")[0], 99))):
        good = [f for f in fs if "error" not in f]
        if not good:
            rows.append([f"{c:,}", tool, "failed"] + ["-"] * 20)
            continue

        def med(k):
            # (peak_streams before peak_from_all counted one stream per distinct id: wrong for
            # a tool that sends none.)
            xs = [f[k] for f in good if f.get(k) is not None and (
                k != "peak_streams" or f.get("peak_from_all") or f.get("matched") is not None)]
            return statistics.median(xs) if xs else None

        n = good[0]["n"]
        ok = med("ok")
        matched = med("matched")
        rows.append([
            f"{c:,}", tool, f"{ok:,.0f}/{n:,}", _f(med("peak_streams"), 0),
            good[0]["against"] if matched is None else f"{matched:,.0f}",
            _f(med("ttft_mean")), _f(med("ttft_err_mean")), _f(med("ttft_err_p99")),
            _f(med("ttft_err_socket_p99")), _f(med("sim_wait_p99")),
            _f(med("itl_err_p50"), 3), _f(med("itl_err_p99"), 3), _f(med("ttft_truth_mae")),
            _f(med("send_to_arrival_p99")), _f(med("send_spread_p99")),
            _f(med("arrival_spread_p99")), _f(med("ttft_err_after_arrival_p99")),
            _f(med("listen_overflows"), 0),
            _f(med("client_cpu_s")), _f(med("rss_mib"), 1), _f(med("sim_cpu_s")),
            _f(max(f.get("other_cpu_s") or 0.0 for f in good)), f"{len(good)}",
        ])
    b.table(
        f"bench-overhead matrix (TTFT {TRUTH_TTFT:.0f} ms, ITL {TRUTH_ITL:.0f} ms, {TOKENS} tokens, "
        "closed loop; errors in ms against the simulator's send log; median over trials)",
        ["concurrency", "client", "requests ok", "peak streams at the server",
         "matched to send log", "mean TTFT",
         "TTFT err mean", "TTFT err p99", "TTFT err p99 from socket arrival",
         "simulator read wait p99", "ITL err p50", "ITL err p99", "|TTFT − 50| mean",
         "send → arrival p99 (in TTFT err)", "sends spread p99", "arrivals spread p99",
         "TTFT err after arrival p99",
         "listen queue overflows", "client CPU (s)", "client peak RSS (MiB)", "simulator CPU (s)",
         "other CPU (s, worst trial)", "trials"],
        rows,
    )
