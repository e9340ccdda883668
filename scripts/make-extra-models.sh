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
# The toolkits of the family models (model_families.py): PaddleClas and PaddleNLP from the
# package index, without their dependency trees (which would replace Paddle's numpy); PaddleNLP's
# import-time dependencies pinned to versions its 2.8.1 release works with.
if ! "$py" -c "import paddlenlp.transformers.ernie.modeling" >/dev/null 2>&1 \
   || ! "$py" -c "import importlib.util as u, sys; sys.exit(u.find_spec('paddleclas') is None)" >/dev/null 2>&1; then
  echo "extra models: installing paddleclas 2.6.0 and paddlenlp 2.8.1"
  np="$("$py" -c 'import numpy; print(numpy.__version__)')"
  cons="$(mktemp)"; echo "numpy==$np" > "$cons"
  "$py" -m pip install -q --no-deps paddleclas==2.6.0 paddlenlp==2.8.1 \
    && "$py" -m pip install -q -c "$cons" colorlog colorama jieba seqeval dill multiprocess regex rich \
         safetensors sentencepiece tqdm typer jinja2 fastapi uvicorn Flask-Babel tool-helpers \
         "huggingface_hub==0.23.4" "datasets==2.20.0" "aistudio-sdk==0.2.6" \
    || echo "extra models: toolkit install failed; the family models will fail to build"
  rm -f "$cons"
fi
exec "$py" "$here/make-extra-models.py" "$@"
