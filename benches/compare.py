#!/usr/bin/env python3
"""Kayak against ONNX Runtime and Paddle Inference, side by side, same inputs, same threads.

For each shared model: `kayak bench --json` and `../shared/tools/peers.py bench` run on the
same .npy inputs with the same thread count, one after the other. Prints two tables:

- startup: Kayak's load + optimize + plan + first run against ORT's session creation +
  first run (peers.py's `create_s` and `first_run_ms`), and Paddle's;
- latency: medians, and the ratio kayak / peer (below 1: Kayak is faster). Latency is
  inputs copied in + run + outputs copied out for every engine.

With `--rounds R` each model's (kayak, peers) pair runs R times, alternating, and the
latency table gives the median of each engine's medians and the median of the per-round
ratios: on a shared VM whose speed drifts by 10-20% over minutes, a ratio taken within one
round is steadier than one taken across them.

Models: the shared ones by name, or `extra/NAME` for those of scripts/make-extra-models.sh.

Usage: benches/compare.py [--threads N] [--iters N] [--rounds R] [--models a,b]
                          [--engines ort,paddle]
Needs the peers' environment (../shared/tools/setup-peers.sh; default
~/.cache/kayak-peers) and builds `kayak` (release) first.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.environ.get("KAYAK_MODELS", os.path.join(ROOT, "..", "shared", "models"))
CACHE = os.environ.get("KAYAK_MODEL_CACHE", os.path.expanduser("~/.cache/kayak/models"))
PEERS = os.path.join(ROOT, "..", "shared", "tools", "peers.py")
PY = os.environ.get("KAYAK_PEERS_PYTHON", os.path.expanduser("~/.cache/kayak-peers/bin/python"))
KAYAK = os.path.join(ROOT, "target", "release", "kayak")

INPUTS = {
    "ppocr_det": ["x"],
    "ppocr_rec": ["x"],
    "ppocr_cls": ["x"],
    "mobilenet_v3_small": ["x"],
    "ernie_mini": ["input_ids", "token_type_ids"],
}


def last_json(out):
    for line in reversed(out.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("no JSON line in:\n" + out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--models", default=",".join(INPUTS))
    ap.add_argument("--engines", default="ort,paddle")
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    # Always build (a no-op when up to date): a stale binary would measure old code.
    subprocess.run(["cargo", "build", "--release", "--bin", "kayak"], cwd=ROOT, check=True)
    rows = []
    for m in a.models.split(","):
        d = os.path.join(MODELS, m)
        if m.startswith("extra/"):  # a model of scripts/make-extra-models.sh
            d = os.path.join(CACHE, m)
        names = INPUTS.get(m) or [i["name"] for i in
                                  json.load(open(os.path.join(d, "manifest.json")))["inputs"]]
        ins = [f"{n}={os.path.join(d, f'input_{n}.npy')}" for n in names]
        k_cmd = [KAYAK, "bench", d, "--threads", str(a.threads), "--iters", str(a.iters),
                 "--warmup", str(a.warmup), "--json"]
        for i in ins:
            k_cmd += ["--input", i]
        p_cmd = [PY, PEERS, "bench", d, "--threads", str(a.threads), "--runs", str(a.iters),
                 "--warmup", str(a.warmup), "--engines", a.engines]
        for i in ins:
            p_cmd += ["--input", i]
        rounds = []
        for _ in range(a.rounds):
            k = last_json(subprocess.run(k_cmd, capture_output=True, text=True,
                                         check=True).stdout)
            p = last_json(subprocess.run(p_cmd, capture_output=True, text=True,
                                         check=True).stdout)
            rounds.append((k, p))
        rows.append((m, rounds[0][0], rounds[0][1], rounds))

    engines = a.engines.split(",")
    print(f"startup, {a.threads} thread(s) (ms): kayak load + optimize + plan + first run; "
          "peer session creation + first run")
    print("| model | kayak load | optimize | plan | first run | kayak total | "
          + " | ".join(f"{e} total | ratio" for e in engines) + " |")
    print("|---|---|---|---|---|---|" + "---|---|" * len(engines))
    for m, k, p, _ in rows:
        total = k["load_ms"] + k["optimize_ms"] + k["plan_ms"] + k["first_run_ms"]
        cells = []
        for e in engines:
            if e in p:
                pt = p[e]["create_s"] * 1e3 + p[e]["first_run_ms"]
                cells.append(f"{pt:.1f} | {total / pt:.2f}")
            else:
                cells.append("— | —")
        print(f"| {m} | {k['load_ms']:.1f} | {k['optimize_ms']:.1f} | {k['plan_ms']:.2f} | "
              f"{k['first_run_ms']:.1f} | {total:.1f} | " + " | ".join(cells) + " |")
    print()
    print(f"latency, {a.threads} thread(s), median ms (ratio = kayak / peer)"
          + (f"; medians over {a.rounds} alternating rounds" if a.rounds > 1 else ""))
    print("| model | kayak | " + " | ".join(f"{e} | ratio" for e in engines) + " |")
    print("|---|---|" + "---|---|" * len(engines))
    for m, _, _, rounds in rows:
        km = statistics.median(k["latency_ms"]["median"] for k, _ in rounds)
        cells = []
        for e in engines:
            if all(e in p for _, p in rounds):
                pm = statistics.median(p[e]["median_ms"] for _, p in rounds)
                ratio = statistics.median(k["latency_ms"]["median"] / p[e]["median_ms"]
                                          for k, p in rounds)
                cells.append(f"{pm:.3f} | {ratio:.2f}")
            else:
                cells.append("— | —")
        print(f"| {m} | {km:.3f} | " + " | ".join(cells) + " |")
    print()
    print("memory (bytes): arena vs liveness lower bound, weights, peak RSS")
    print("| model | arena | lower bound | ratio | naive | weights | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for m, k, _, _ in rows:
        lb = max(k["arena_lower_bound_bytes"], 1)
        print(f"| {m} | {k['arena_bytes'] + k['workspace_bytes']} | {lb} | "
              f"{(k['arena_bytes'] + k['workspace_bytes']) / lb:.3f} | "
              f"{k['intermediate_bytes_naive']} | {k['weights_bytes']} | {k['peak_rss_bytes']} |")


if __name__ == "__main__":
    sys.exit(main())
