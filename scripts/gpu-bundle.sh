#!/usr/bin/env bash
# Builds what a GPU machine needs to check and time Kayak's CUDA backend, into .gpu/ (ignored
# by .gitignore): the `kayak` binary built with `--features cuda` (stripped), and the shared
# CNN models with their references (no ONNX copies). The GPU machine has no Rust
# toolchain; it runs this binary and `benches/gpu_check.py` (PyTorch is there).
#
# Then, with the device tool, one call (the tree travels; .gpu is carried):
#   run(command="python3 benches/gpu_check.py --kayak .gpu/kayak --models .gpu/models --out $OUT",
#       carry=[".gpu"], timeout_s=600)
# It checks every model's outputs on the GPU against Paddle's references, times Kayak
# (`kayak bench --device cuda`) and PyTorch (eager and torch.compile) on the same
# architectures, and writes $OUT/gpu_results.json.
#
# ernie_mini is not bundled: its weights alone are 71.6 MB, over the 64 MiB a call carries
# (two calls to one warm machine, its params split across /tmp, would be the way).
set -euo pipefail
cd "$(dirname "$0")/.."
models="${KAYAK_MODELS:-../shared/models}"
cargo build --release --features cuda -p kayak-cli
bundle() {
  local dir=$1; shift
  rm -rf "$dir"
  mkdir -p "$dir/models"
  strip -o "$dir/kayak" target/release/kayak
  for m in "$@"; do
    mkdir -p "$dir/models/$m"
    for f in "$models/$m"/*; do
      case "$f" in
        *.onnx|*/model.json) ;;
        *) cp "$f" "$dir/models/$m/" ;;
      esac
    done
  done
  du -sh "$dir"
}
bundle .gpu mobilenet_v3_small ppocr_cls ppocr_rec ppocr_det
