#!/usr/bin/env python3
"""Checks and times Kayak's CUDA backend on a GPU machine (see scripts/gpu-bundle.sh).

For every model directory under --models (each with Paddle's manifest.json and reference
outputs): runs `kayak run --device cuda` on the manifest's inputs and compares each output
with the reference (fp32 tolerance |a - b| <= 1e-3 + 1e-2 |b|); then times
`kayak bench --device cuda`. Then times PyTorch on the same architectures on the same GPU:
torchvision's mobilenet_v3_small and a 6-layer encoder with ernie_mini's sizes (d=384,
12 heads, FFN 1536, sequence 128), eager and torch.compile, fp32 without TF32 (as Kayak's
cuBLAS calls), each measured end to end (host input in, host output out, as `kayak bench`
measures) and on the device alone. Writes OUT/gpu_results.json and prints a table.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np


def cuda_library_dirs():
    """Directories holding libnvrtc and libcublas (the toolkit's, or PyTorch's wheels')."""
    dirs = set()
    patterns = [
        "/usr/local/cuda*/lib64/libnvrtc.so*",
        "/usr/local/cuda*/lib64/libcublas.so*",
        "/usr/local/cuda*/targets/*/lib/libnvrtc.so*",
        "/usr/local/cuda*/targets/*/lib/libcublas.so*",
        "/opt/**/nvidia/*/lib/libnvrtc.so*",
        "/opt/**/nvidia/*/lib/libcublas.so*",
        "/usr/lib/x86_64-linux-gnu/libcuda.so*",
        "/usr/local/nvidia/lib64/libcuda.so*",
    ]
    for p in patterns:
        for f in glob.glob(p, recursive=True):
            dirs.add(os.path.dirname(f))
    return sorted(dirs)


def run(cmd, env):
    t0 = time.time()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    return p, time.time() - t0


def worst_ratio(got, want):
    got = got.astype(np.float64).ravel()
    want = want.astype(np.float64).ravel()
    if got.shape != want.shape:
        return float("inf")
    tol = 1e-3 + 1e-2 * np.abs(want)
    return float(np.max(np.abs(got - want) / tol)) if want.size else 0.0


def check_model(kayak, mdir, out, env, device="cuda", iters=300):
    name = os.path.basename(mdir.rstrip("/"))
    man = json.load(open(os.path.join(mdir, "manifest.json")))
    inputs = []
    for i in man["inputs"]:
        inputs += ["--input", f"{i['name']}={os.path.join(mdir, i['file'])}"]
    res = {"model": name}
    cases = [("reference", inputs, [os.path.join(mdir, o["file"]) for o in man["outputs"]])]
    textlike = os.path.join(mdir, "input_x_textlike.npy")
    if os.path.exists(textlike):
        cases.append(("textlike", ["--input", f"x={textlike}"],
                      [os.path.join(mdir, "output_0_textlike.npy")]))
    for label, args, refs in cases:
        odir = os.path.join(out, f"{name}_{label}")
        p, secs = run([kayak, "run", mdir, *args, "--device", device, "--output-dir", odir], env)
        if p.returncode != 0:
            res[label] = {"error": (p.stderr or p.stdout).strip()[-2000:]}
            continue
        ratios = []
        for k, ref in enumerate(refs):
            got = np.load(os.path.join(odir, f"output_{k}.npy"))
            ratios.append(worst_ratio(got, np.load(ref)))
        res[label] = {"worst_ratio": max(ratios), "pass": max(ratios) <= 1.0, "seconds": secs,
                      "log": p.stdout.strip().splitlines()[-3:]}
    p, _ = run([kayak, "bench", mdir, *inputs, "--device", device, "--iters", str(iters),
                "--warmup", str(max(1, iters // 10)), "--json"], env)
    if p.returncode == 0:
        res["bench"] = json.loads(p.stdout.strip().splitlines()[-1])
    else:
        res["bench"] = {"error": (p.stderr or p.stdout).strip()[-2000:]}
    return res


def time_torch(fn, x, iters=300, warmup=30):
    """Median ms per call, end to end (x on the host, result copied back) and device only."""
    import torch
    xd = x.cuda()
    for _ in range(warmup):
        fn(xd)
    torch.cuda.synchronize()
    e2e, dev = [], []
    for _ in range(iters):
        t0 = time.perf_counter()
        y = fn(x.cuda())
        y = y.cpu()
        e2e.append((time.perf_counter() - t0) * 1e3)
    for _ in range(iters):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn(xd)
        e.record()
        torch.cuda.synchronize()
        dev.append(s.elapsed_time(e))
    return float(np.median(e2e)), float(np.median(dev))


def torch_peers():
    import torch
    import torchvision
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    out = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0)}

    mb = torchvision.models.mobilenet_v3_small(weights=None).eval().cuda()
    x = torch.randn(1, 3, 224, 224)

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.word = torch.nn.Embedding(18000, 384)
            self.pos = torch.nn.Embedding(512, 384)
            self.typ = torch.nn.Embedding(4, 384)
            self.ln = torch.nn.LayerNorm(384)
            layer = torch.nn.TransformerEncoderLayer(384, 12, 1536, dropout=0.0,
                                                     activation="gelu", batch_first=True)
            self.enc = torch.nn.TransformerEncoder(layer, 6, enable_nested_tensor=False)
            self.pool = torch.nn.Linear(384, 384)
            self.cls = torch.nn.Linear(384, 2)

        def forward(self, ids):
            pos = torch.arange(ids.shape[1], device=ids.device)[None]
            h = self.ln(self.word(ids) + self.pos(pos) + self.typ(torch.zeros_like(ids)))
            h = self.enc(h)
            return self.cls(torch.tanh(self.pool(h[:, 0])))

    enc = Encoder().eval().cuda()
    ids = torch.randint(0, 18000, (1, 128))
    with torch.inference_mode():
        for name, model, inp in [("mobilenet_v3_small", mb, x), ("ernie_mini", enc, ids)]:
            r = {}
            r["eager_e2e_ms"], r["eager_device_ms"] = time_torch(model, inp)
            try:
                c = torch.compile(model)
                r["compile_e2e_ms"], r["compile_device_ms"] = time_torch(c, inp)
                g = torch.compile(model, mode="reduce-overhead")
                r["compile_graphs_e2e_ms"], r["compile_graphs_device_ms"] = time_torch(g, inp)
            except Exception as e:  # noqa: BLE001 - reported, not hidden
                r["compile_error"] = repr(e)[-1000:]
            out[name] = r
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kayak", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--device", default="cuda", help="cuda, or emulator to try the script anywhere")
    ap.add_argument("--iters", type=int, default=300)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    env = dict(os.environ)
    libs = cuda_library_dirs()
    env["LD_LIBRARY_PATH"] = ":".join(libs + [env.get("LD_LIBRARY_PATH", "")])
    results = {"cuda_library_dirs": libs, "models": []}
    try:
        smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
        results["nvidia_smi"] = smi.stdout.strip()
    except FileNotFoundError:
        results["nvidia_smi"] = "nvidia-smi not found"
    for mdir in sorted(glob.glob(os.path.join(a.models, "*", ""))):
        r = check_model(a.kayak, mdir, a.out, env, a.device, a.iters)
        results["models"].append(r)
        print(json.dumps(r)[:3000], flush=True)
    if not a.no_torch:
        try:
            results["torch"] = torch_peers()
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            results["torch"] = {"error": repr(e)[-2000:]}
    json.dump(results, open(os.path.join(a.out, "gpu_results.json"), "w"), indent=1)
    print("\n| model | matches (worst err/tol) | kayak ms (median, e2e) | torch eager e2e / device ms | torch.compile e2e / device ms |")
    print("|---|---|---|---|---|")
    for r in results["models"]:
        m = r["model"]
        ok = r.get("reference", {})
        ref = f"{ok.get('pass')} ({ok.get('worst_ratio', float('nan')):.3g})" if "worst_ratio" in ok else ok.get("error", "?")[:60]
        b = r.get("bench", {})
        k = b.get("latency_ms", {}).get("median")
        t = results.get("torch", {}).get(m, {})
        print(f"| {m} | {ref} | {k} | {t.get('eager_e2e_ms')} / {t.get('eager_device_ms')} | "
              f"{t.get('compile_e2e_ms')} / {t.get('compile_device_ms')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
