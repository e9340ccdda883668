#!/usr/bin/env bash
# Runs every test. The model tests read $KAYAK_MODELS, else ../shared/models; on a machine
# with neither, the PP-OCR models are fetched (scripts/fetch-models.sh) and the tests that
# need reference files found only in ../shared/models are reported as NOT RUN (never passed).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f target/kayak-skipped.txt
if [ -z "${KAYAK_MODELS:-}" ] && [ ! -d ../shared/models ]; then
  scripts/fetch-models.sh
  export KAYAK_SKIP_MISSING=1
fi
cargo test --workspace --all-targets
cargo test --workspace --doc
if [ -s target/kayak-skipped.txt ]; then
  echo
  echo "These model tests did NOT run (files missing); they are not counted as passed:"
  sed 's/^/  - /' target/kayak-skipped.txt
fi
