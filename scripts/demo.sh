#!/usr/bin/env bash
# The main job, offline on the embedded defaults: build the sample clip library, search it, make an ad.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/cutpilot demo "$@"
