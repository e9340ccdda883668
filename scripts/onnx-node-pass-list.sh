#!/usr/bin/env bash
# Rewrites tests/data/onnx_node_pass.txt from the last node-test report
# (target/onnx-node-report.txt, written by `cargo test -p kayak-tests --test onnx_node`):
# the listed cases plus every case that passes now. Listed cases are never dropped here —
# the test itself fails when one stops passing.
set -euo pipefail
cd "$(dirname "$0")/.."
list=tests/data/onnx_node_pass.txt
report=target/onnx-node-report.txt
[ -f "$report" ] || { echo "no $report: run the node test first" >&2; exit 1; }
{
  head -2 "$list"
  { grep -v '^#' "$list"; sed -n 's/^pass  //p' "$report"; } | sed '/^$/d' | sort -u
} > "$list.new"
mv "$list.new" "$list"
echo "$(grep -vc '^#' "$list") cases listed"
