"""Peer benchmark clients run on the same simulator, in the same run, as llmbench.

Each peer is driven by its own CLI (no peer code lives in this repository) and its result file is
read back. Peers: vllm-bench (Rust, built from source), guidellm, aiperf and vLLM's own
`vllm bench serve` (Python). A peer is used only when its executable is found (bench/peers-setup.sh installs them
into a cache directory outside the repository); a missing peer is listed as such, never guessed.

Two experiments, same for every client, completions endpoint, 50-token synthetic prompts:
  throughput  zero-delay server (TTFT 0, ITL 0, 200 tokens), closed loop at C streams: tokens/s
              the client pulls through, and its CPU per token (whole process tree, start-up
              included, as a user pays it).
  accuracy    server truth TTFT 100 ms, ITL 20 ms, 50 tokens, open loop at a constant rate:
              |TTFT p50 − 100|, |ITL p50 − 20|, achieved versus target rate.
A third, bench/overhead.py, reads each tool's per-request results (`requests()`: the id it sent,
its TTFT and its chunk gaps) to match them with the simulator's send log.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time

TRUTH_TTFT, TRUTH_ITL, TRUTH_TOKENS = 100.0, 20.0, 50


def _p(d, *path):
    for k in path:
        if d is None:
            return None
        d = d.get(k) if isinstance(d, dict) else None
    return d


class Peer:
    name = ""

    def __init__(self, venv, tokenizer):
        self.venv, self.tokenizer = venv, tokenizer

    def exe(self):
        raise NotImplementedError

    def available(self):
        return self.venv is not None and os.access(self.exe(), os.X_OK) and self.tokenizer

    def warm_args(self, n):
        """Flags that send `n` unmeasured requests first, at the same concurrency, so the
        measured ones reuse open connections (None: not offered here)."""
        return None


class Aiperf(Peer):
    name = "aiperf"

    def exe(self):
        return os.path.join(self.venv, "bin", "aiperf")

    def argv(self, url, out, n, concurrency=None, rate=None, tokens=TRUTH_TOKENS, ids=None):
        # (ids: aiperf always sends its own X-Request-ID and exports it per record.)
        a = [self.exe(), "profile", "--model", "llmbench-sim", "--url", url,
             "--endpoint-type", "completions", "--streaming", "--request-count", str(n),
             "--tokenizer", self.tokenizer, "--synthetic-input-tokens-mean", "50",
             "--output-tokens-mean", str(tokens), "--extra-inputs", "ignore_eos:true",
             "--ui-type", "none", "--no-server-metrics", "--no-gpu-telemetry",
             "--artifact-dir", out]
        if rate:
            a += ["--request-rate", str(rate), "--arrival-pattern", "constant"]
        else:
            a += ["--concurrency", str(concurrency)]
        return a, {}

    def read(self, out):
        j = json.load(open(os.path.join(out, "profile_export_aiperf.json")))
        dur = _p(j, "benchmark_duration", "avg")
        ok = _p(j, "completed_request_count", "avg") or _p(j, "request_count", "avg")
        return {
            "ttft_p50": _p(j, "time_to_first_token", "p50"),
            "itl_p50": _p(j, "inter_token_latency", "p50"),
            "out_tok_s": _p(j, "output_token_throughput", "avg"),
            "req_s": _p(j, "request_throughput", "avg"),
            "ok": ok,
            "tokens": (_p(j, "output_sequence_length", "avg") or 0) * (ok or 0),
            "duration": dur,
        }

    def requests(self, out, ids):
        """Per request: (id sent, ok, TTFT ms, [gaps ms], sent at ms) from profile_export.jsonl
        (its own X-Request-ID, time_to_first_token, inter_chunk_latency: one gap per SSE message,
        request_start_ns)."""
        rows = []
        with open(os.path.join(out, "profile_export.jsonl")) as f:
            for line in f:
                if not line.strip():
                    continue
                r = json.loads(line)
                m = r.get("metrics") or {}
                ttft = _p(m, "time_to_first_token", "value")
                ok = not r.get("error") and ttft is not None
                start = _p(r, "metadata", "request_start_ns")
                rows.append((_p(r, "metadata", "x_request_id"), ok, ttft or 0.0,
                             _p(m, "inter_chunk_latency", "value") or [],
                             start / 1e6 if start is not None else None))
        return rows


class Guidellm(Peer):
    name = "guidellm"

    def exe(self):
        return os.path.join(self.venv, "bin", "guidellm")

    def argv(self, url, out, n, concurrency=None, rate=None, tokens=TRUTH_TOKENS, ids=None):
        # (ids: guidellm 0.8.1 sends no request id header; its requests cannot be matched.)
        profile = f"kind=constant,rate={rate}" if rate else f"kind=concurrent,streams={concurrency}"
        a = [self.exe(), "run",
             "--backend", f"kind=openai_http,target={url},model=llmbench-sim,request_format=/v1/completions",
             "--profile", profile,
             "--data", f"kind=synthetic_text,prompt_tokens=50,output_tokens={tokens}",
             "--constraint", f"kind=max_requests,count={n}",
             "--tokenizer", f"kind=huggingface_auto,model={self.tokenizer}",
             "--output", f"kind=json,path={os.path.join(out, 'benchmarks.json')}",
             "--disable-console"]
        # Two worker processes: with the default ten, most of its CPU is idle workers.
        return a, {"HF_HUB_OFFLINE": "1", "GUIDELLM__MAX_WORKER_PROCESSES": "2"}

    def read(self, out):
        j = json.load(open(os.path.join(out, "benchmarks.json")))
        b = j["benchmarks"][0]
        m = b["metrics"]
        ok = _p(m, "request_totals", "successful")
        return {
            "ttft_p50": _p(m, "time_to_first_token_ms", "successful", "percentiles", "p50"),
            "itl_p50": _p(m, "inter_token_latency_ms", "successful", "percentiles", "p50"),
            "out_tok_s": _p(m, "output_tokens_per_second", "successful", "mean"),
            "req_s": _p(m, "requests_per_second", "successful", "mean"),
            "ok": ok,
            "tokens": _p(m, "output_token_count", "successful", "total_sum"),
            "duration": b.get("duration"),
        }

    def requests(self, out, ids):
        """Per request: (None: no id was sent, ok, TTFT ms, []: per-request stats keep no
        chunk times, only a mean inter-token latency; None: unmatched, no send time needed)."""
        r = json.load(open(os.path.join(out, "benchmarks.json")))["benchmarks"][0]["requests"]
        rows = [(None, s.get("time_to_first_token_ms") is not None,
                 s.get("time_to_first_token_ms") or 0.0, [], None) for s in r.get("successful") or []]
        rows += [(None, False, 0.0, [], None) for k in ("errored", "incomplete")
                 for _ in r.get(k) or []]
        return rows


class VllmBenchServe(Peer):
    """vLLM's own `vllm bench serve` (Python, aiohttp)."""

    name = "vllm bench serve"

    def exe(self):
        return os.path.join(self.venv, "bin", "vllm")

    def prefix(self):
        return [self.exe(), "bench", "serve"]

    def env(self):
        return {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

    def argv(self, url, out, n, concurrency=None, rate=None, tokens=TRUTH_TOKENS, ids=None):
        a = self.prefix() + [
             "--backend", "openai", "--base-url", url,
             "--endpoint", "/v1/completions", "--model", "llmbench-sim",
             "--tokenizer", self.tokenizer, "--dataset-name", "random",
             "--random-input-len", "50", "--random-output-len", str(tokens),
             "--num-prompts", str(n), "--ignore-eos",
             "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,99",
             "--disable-tqdm", "--save-result", "--result-dir", out,
             "--result-filename", "result.json"]
        if rate:
            # Gamma arrivals with a huge shape: constant spacing.
            a += ["--request-rate", str(rate), "--burstiness", "1e9"]
        else:
            a += ["--max-concurrency", str(concurrency)]
        if ids:
            # Request i is sent with `x-request-id: {ids}{i}` (random dataset, no shuffle), and
            # --save-detailed keeps the per-request arrays in that same order (no ids in them).
            a += ["--save-detailed", "--request-id-prefix", ids]
        return a, self.env()

    def read(self, out):
        j = json.load(open(os.path.join(out, "result.json")))
        return {
            "ttft_p50": j.get("p50_ttft_ms"),
            "itl_p50": j.get("p50_itl_ms"),
            "out_tok_s": j.get("output_throughput"),
            "req_s": j.get("request_throughput"),
            "ok": j.get("completed"),
            "tokens": j.get("total_output_tokens"),
            "duration": j.get("duration"),
        }

    def warm_args(self, n):
        return ["--num-warmups", str(n)]

    def requests(self, out, ids):
        """Per request: (id sent, ok, TTFT ms, [gaps ms], sent at ms) from the --save-detailed
        arrays (ttfts, itls, errors, start_times: seconds since the benchmark started)."""
        j = json.load(open(os.path.join(out, "result.json")))
        errors = j.get("errors") or [""] * len(j["ttfts"])
        starts = j.get("start_times") or [None] * len(j["ttfts"])
        return [
            (f"{ids}{i}", not err and ttft > 0, ttft * 1000, [g * 1000 for g in itl],
             st * 1000 if st is not None else None)
            for i, (ttft, itl, err, st) in enumerate(zip(j["ttfts"], j["itls"], errors, starts))
        ]


class VllmBench(VllmBenchServe):
    """vllm-bench (vllm-project/vllm-bench): the Rust drop-in for `vllm bench serve`, same flags
    and result schema; built by bench/peers-setup.sh outside the repository."""

    name = "vllm-bench"

    def __init__(self, binary, tokenizer):
        super().__init__(None, tokenizer)
        self.binary = binary

    def exe(self):
        return self.binary

    def available(self):
        return bool(self.binary) and os.access(self.binary, os.X_OK) and bool(self.tokenizer)

    def prefix(self):
        return [self.binary]

    def env(self):
        return {"HF_HUB_OFFLINE": "1"}


class Llmbench(Peer):
    name = "llmbench"

    def __init__(self, binary):
        super().__init__(None, None)
        self.binary = binary

    def available(self):
        return os.access(self.binary, os.X_OK)

    def argv(self, url, out, n, concurrency=None, rate=None, tokens=TRUTH_TOKENS, ids=None):
        a = [self.binary, "run", url, "--backend", "openai-completions", "-q",
             "--prompt-tokens", "50", "--max-tokens", str(tokens), "-n", str(n),
             "-o", os.path.join(out, "r.json")]
        if rate:
            a += ["--rate", str(rate), "--arrival", "constant"]
        else:
            a += ["-c", str(concurrency)]
        if ids:
            # Its own id per request in X-Request-Id, kept in each record of --records.
            a += ["--request-id-header", "X-Request-Id", "--records", os.path.join(out, "r.jsonl")]
        return a, {}

    def warm_args(self, n):
        return ["--warmup", str(n)]

    def read(self, out):
        j = json.load(open(os.path.join(out, "r.json")))
        m = j["scenarios"][0]["metrics"]
        return {
            "ttft_p50": _p(m, "ttft_ms", "p50"),
            "itl_p50": _p(m, "itl_ms", "p50"),
            "out_tok_s": m.get("output_tokens_per_s"),
            "req_s": m.get("sent_requests_per_s") or m.get("requests_per_s"),
            "ok": j["scenarios"][0]["outcomes"]["succeeded"],
            "tokens": _p(m, "output_tokens", "total"),
            "duration": m.get("duration_s"),
        }

    def requests(self, out, ids):
        """Per request: (id sent, ok, TTFT ms, [gaps ms], sent at ms) from the --records file."""
        rows = []
        with open(os.path.join(out, "r.jsonl")) as f:
            for line in f:
                r = json.loads(line) if line.strip() else {}
                if "run_end" in r or not r or r.get("warmup"):
                    continue
                ch = r.get("chunk_times_ms") or []
                ok = r.get("outcome") == "succeeded" and bool(ch)
                ttft = ch[0] - r["sent_at_ms"] if ok else 0.0
                rows.append((r.get("request_id"), ok, ttft, [b - a for a, b in zip(ch, ch[1:])],
                             r.get("sent_at_ms")))
        return rows


class LlmbenchReadClock(Llmbench):
    """llmbench timing chunks when it reads them (LLMBENCH_CLOCK=read), not by the kernel's
    receive timestamps: the client's own scheduling back in its figures, to compare. Runs only
    when named (BENCH_TOOLS=llmbench-read)."""
    name = "llmbench-read"

    def argv(self, *a, **kw):
        argv, env = super().argv(*a, **kw)
        return argv, {**env, "LLMBENCH_CLOCK": "read"}


def measure(tool, pinned, url, **kw):
    """Runs one tool to completion; returns (metrics, cpu_s of the whole tree, wall_s, log)."""
    out = tempfile.mkdtemp(prefix=f"llmbench-peer-{tool.name.split()[0]}-")
    argv, env = tool.argv(url, out, **kw)
    log = os.path.join(out, "tool.log")
    t0 = time.monotonic()
    with open(log, "w") as f:
        p = subprocess.Popen(pinned(argv), stdout=f, stderr=subprocess.STDOUT,
                             env={**os.environ, **env})
        # wait4's usage of a reaped child includes every descendant it reaped in turn.
        _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    cpu = ru.ru_utime + ru.ru_stime
    try:
        metrics = tool.read(out)
    except (OSError, KeyError, ValueError, IndexError) as e:
        tail = open(log, errors="replace").read()[-1500:]
        metrics = {"error": f"{type(e).__name__}: {e}; exit {status}; log tail:\n{tail}"}
    shutil.rmtree(out, ignore_errors=True)
    return metrics, cpu, wall


def tools(binary, venv, vllm_venv, tokenizer, vllm_bench=None):
    return [Llmbench(binary), VllmBench(vllm_bench, tokenizer), Guidellm(venv, tokenizer),
            Aiperf(venv, tokenizer), VllmBenchServe(vllm_venv, tokenizer)]
