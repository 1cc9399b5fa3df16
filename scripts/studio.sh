#!/usr/bin/env bash
# The studio: set up (idempotent), make sure the sample library is in the home, then serve the web app + REST API
# on http://127.0.0.1:8765 (pass --host/--port; a non-loopback host needs CUTPILOT_API_TOKEN).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/cutpilot products import samples/products.yaml >/dev/null
.venv/bin/cutpilot ingest samples --annotations samples/annotations.jsonl >/dev/null
exec .venv/bin/cutpilot serve "$@"
