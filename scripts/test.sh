#!/usr/bin/env bash
# Runs every test. The model tests read $KAYAK_MODELS, else ../shared/models; on a machine
# with neither, the PP-OCR models are fetched (scripts/fetch-models.sh) and the tests that
# need reference files found only in ../shared/models are reported as NOT RUN (never passed).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f target/kayak-skipped.txt target/onnx-node-report.txt
if [ -z "${KAYAK_MODELS:-}" ] && [ ! -d ../shared/models ]; then
  scripts/fetch-models.sh
  export KAYAK_SKIP_MISSING=1
fi
# With ../shared (the peers' tools) beside the repo: the extra PIR/ONNX test models
# (tests/tests/formats.rs), generated once into the model cache.
if [ -z "${KAYAK_SKIP_MISSING:-}" ] && [ -f ../shared/tools/setup-peers.sh ]; then
  scripts/make-extra-models.sh
fi
mkdir -p target
log=target/test-output.log
: > "$log"
status=0
# --no-fail-fast: every test binary runs, so one failure does not hide another.
cargo test --workspace --all-targets --no-fail-fast 2>&1 | tee -a "$log" || status=1
cargo test --workspace --doc --no-fail-fast 2>&1 | tee -a "$log" || status=1
# The kernels' own tests again on each lower instruction-set path (the run above takes the
# best one this CPU has; `KAYAK_ISA` never raises it past what the CPU supports).
for isa in avx2 generic; do
  echo "kernels with KAYAK_ISA=$isa" | tee -a "$log"
  KAYAK_ISA=$isa cargo test -p kayak-kernels --lib 2>&1 | tee -a "$log" || status=1
done
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
skipped=0
if [ -s target/kayak-skipped.txt ]; then
  # A test that skipped any of its models counts as skipped, never as passed.
  skipped=$(cut -d: -f1 target/kayak-skipped.txt | sort -u | wc -l)
  echo
  echo "These model tests did NOT run, in whole or for some models (files missing); they are not counted as passed:"
  sort target/kayak-skipped.txt | sed 's/^/  - /'
fi
# Tests marked #[ignore] (the real-GPU ones: they need an NVIDIA GPU) are reported, not passed.
ignored=$(grep -Eo '[0-9]+ ignored;' "$log" | awk '{s+=$1} END {print s+0}')
if [ "$ignored" -gt 0 ]; then
  echo
  echo "Ignored (not run, not counted as passed):"
  grep -E '^test .* \.\.\. ignored' "$log" | sed 's/^/  - /' | sort -u
fi
if [ -f target/onnx-node-report.txt ]; then
  echo
  head -1 target/onnx-node-report.txt
fi
echo
skipped=$((skipped + ignored))
if [ "$skipped" -gt 0 ]; then
  echo "tests: $((passed - skipped + ignored)) passed, $failed failed, $skipped skipped"
else
  echo "tests: $passed passed, $failed failed"
fi
if [ "$status" -ne 0 ] || [ "$failed" -gt 0 ]; then
  echo "tests: FAILED (see above)"
  exit 1
fi
