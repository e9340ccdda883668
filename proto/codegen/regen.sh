#!/usr/bin/env bash
# Regenerates proto/src/generated/paddle.framework.proto.rs from proto/framework.proto.
set -euo pipefail
cd "$(dirname "$0")"
cargo run --release --quiet
