#!/usr/bin/env bash
# Generates the extra test models (resnet50, mobilenet_v2, PIR PP-OCR, ernie_tiny_pir) with
# Paddle 3.3.1 into ${KAYAK_MODEL_CACHE:-~/.cache/kayak/models}/extra; see make-extra-models.py.
# Needs the peers environment (../shared/tools/setup-peers.sh); without it, says so and exits 0.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
peers="${KAYAK_PEERS:-$HOME/.cache/kayak-peers}"
py="$peers/bin/python"
setup="$here/../../shared/tools/setup-peers.sh"
if [ ! -x "$py" ]; then
  if [ -f "$setup" ]; then
    echo "extra models: no peers python at $py; running $setup"
    KAYAK_PEERS="$peers" bash "$setup" || { echo "extra models: setup-peers.sh failed; skipping"; exit 0; }
  else
    echo "extra models: skipped (no peers python at $py and no ../shared/tools/setup-peers.sh)"
    exit 0
  fi
fi
if [ ! -x "$py" ]; then
  echo "extra models: skipped (peers python still missing at $py)"
  exit 0
fi
exec "$py" "$here/make-extra-models.py" "$@"
