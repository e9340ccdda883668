#!/usr/bin/env python3
"""Two Kayak builds against a peer engine, side by side in one run: did a change move Kayak's
latency relative to ONNX Runtime (or Paddle Inference)?

For each shared model and thread count, R rounds; each round runs `kayak bench --json` with
the baseline binary, then with the current one, then `../shared/tools/peers.py bench` for the
peer, on the same .npy inputs. Per round both Kayak medians are divided by the peer's median
of that round (the peer is the yardstick that absorbs this VM's drift); the table gives the
median ratio before and after and after/before - 1.

Usage: benches/before_after.py --baseline /path/to/old/kayak [--current target/release/kayak]
                               [--threads 1,2] [--rounds 5] [--iters 200] [--engine ort]
                               [--models a,b]
Needs the peers' environment (../shared/tools/setup-peers.sh). Build the current binary
first (`cargo build --release --bin kayak`).
"""
import argparse
import os
import statistics
import subprocess
import sys

# The models, their inputs, the peers' tool and the JSON reader are compare.py's.
from compare import INPUTS, MODELS, PEERS, PY, ROOT, last_json


def kayak(binary, model, ins, threads, iters):
    cmd = [binary, "bench", model, "--threads", str(threads), "--iters", str(iters),
           "--warmup", "10", "--json"]
    for i in ins:
        cmd += ["--input", i]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return last_json(out)["latency_ms"]["median"]


def peer(engine, model, ins, threads, iters):
    cmd = [PY, PEERS, "bench", model, "--threads", str(threads), "--runs", str(iters),
           "--warmup", "10", "--engines", engine]
    for i in ins:
        cmd += ["--input", i]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return last_json(out)[engine]["median_ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", required=True)
    ap.add_argument("--current", default=os.path.join(ROOT, "target", "release", "kayak"))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--engine", default="ort")
    ap.add_argument("--models", default=",".join(INPUTS))
    a = ap.parse_args()
    rows = []
    for threads in [int(t) for t in a.threads.split(",")]:
        for m in a.models.split(","):
            d = os.path.join(MODELS, m)
            ins = [f"{n}={os.path.join(d, f'input_{n}.npy')}" for n in INPUTS[m]]
            before, after, peers = [], [], []
            for _ in range(a.rounds):
                b = kayak(a.baseline, d, ins, threads, a.iters)
                c = kayak(a.current, d, ins, threads, a.iters)
                p = peer(a.engine, d, ins, threads, a.iters)
                before.append(b / p)
                after.append(c / p)
                peers.append(p)
            rb, ra = statistics.median(before), statistics.median(after)
            rows.append((m, threads, statistics.median(peers), rb, ra))
            print(f"{m} t{threads}: {a.engine} {statistics.median(peers):.3f} ms, "
                  f"before {rb:.3f}, after {ra:.3f} ({ra / rb - 1:+.1%})", file=sys.stderr)
    print(f"latency ratio kayak / {a.engine} (median of {a.rounds} alternating rounds, "
          f"{a.iters} runs each)")
    print(f"| model | threads | {a.engine} median ms | before | after | change |")
    print("|---|---|---|---|---|---|")
    for m, t, p, rb, ra in rows:
        print(f"| {m} | {t} | {p:.3f} | {rb:.3f} | {ra:.3f} | {ra / rb - 1:+.1%} |")


if __name__ == "__main__":
    sys.exit(main())
