#!/usr/bin/env python3
"""1024³ f32 GEMM on one thread: Kayak's sgemm against numpy's `a @ b` (OpenBLAS), in the
same run, alternating, best of each. Prints both and the ratio kayak / numpy (GFLOP/s).

Usage: benches/gemm_vs_numpy.py [--rounds N]
Needs the peers' environment (../shared/tools/setup-peers.sh) for numpy; builds the
`gemm_speed` example (release) first.
"""
import argparse
import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.environ.get("KAYAK_PEERS_PYTHON", os.path.expanduser("~/.cache/kayak-peers/bin/python"))
NUMPY = """
import numpy as np, time
a = np.random.rand(1024, 1024).astype(np.float32)
b = np.random.rand(1024, 1024).astype(np.float32)
a @ b
best = 1e9
for _ in range(10):
    t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)
print(2 * 1024**3 / best / 1e9)
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "kayak-kernels",
                    "--example", "gemm_speed"], cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target", "release", "examples", "gemm_speed")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    ours, theirs = [], []
    for _ in range(args.rounds):
        out = subprocess.run([exe, "1"], capture_output=True, text=True, check=True).stdout
        m = re.search(r"1024x1024x1024: [\d.]+ GFLOP/s mean, ([\d.]+) best", out)
        ours.append(float(m.group(1)))
        theirs.append(float(subprocess.run([PY, "-c", NUMPY], env=env, capture_output=True,
                                           text=True, check=True).stdout))
    k, n = max(ours), max(theirs)
    print(f"kayak sgemm 1024^3, 1 thread: {k:.1f} GFLOP/s (rounds: {ours})")
    print(f"numpy/OpenBLAS 1024^3, 1 thread: {n:.1f} GFLOP/s (rounds: {theirs})")
    print(f"ratio kayak / numpy: {k / n:.2f}")


if __name__ == "__main__":
    main()
