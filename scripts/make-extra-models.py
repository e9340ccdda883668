#!/usr/bin/env python3
"""Generate extra test models (seeded random weights) with Paddle 3.3.1, with references.

Writes $KAYAK_MODEL_CACHE/extra/<name>/ (default ~/.cache/kayak/models/extra/), one directory per
model; a directory whose manifest.json exists (written last, after an atomic rename of the
finished directory) is skipped, so the script is idempotent.

    resnet50, mobilenet_v2      paddle.vision, seeded weights and BN statistics; PIR
                                (model.json + model.pdiparams), legacy (model.pdmodel, sharing
                                model.pdiparams when the bytes agree, else legacy/), model.onnx
                                (paddle2onnx from the legacy program, opset 13)
    ppocr_{det,rec,cls}_pir     the legacy PP-OCR models translated to PIR JSON by Paddle
    ernie_tiny_pir              make_encoder.py's encoder, 2 layers, d=128, 2 heads; PIR,
                                legacy, ONNX
    pplcnet_x1_0, pphgnetv2_b0, resnet50_vd, ernie3_tokcls, ernie3_uie (and, with --only,
    deit_tiny, swin_tiny)       toolkit architectures of model_families.py (PaddleClas 2.6.0,
                                PaddleNLP 2.8.1); PIR, legacy (exported through
                                legacy_shims.py), ONNX

Each directory: input_<name>.npy (seeded), output_<i>.npy (Paddle Inference on the PIR program:
CPU, IR optim off, oneDNN off, 1 thread) and manifest.json (inputs, outputs, forms, PIR op
histogram, legacy op histogram, ort_optimized_nodes at ORT_ENABLE_EXTENDED, cross-checks of
legacy Paddle and ONNX Runtime against the reference, the .pdiparams record order).

Run with the peers environment (../shared/tools/setup-peers.sh): scripts/make-extra-models.sh.
Options: --only NAME[,NAME] to build a subset; --force to rebuild.
"""
import argparse
import collections
import glob
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("GLOG_v", "0")
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.environ.get("KAYAK_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
CACHE = os.environ.get("KAYAK_MODEL_CACHE", os.path.expanduser("~/.cache/kayak/models"))
EXTRA = os.path.join(CACHE, "extra")
OPSET = 13
SEED = 2024
ERNIE = dict(layers=2, hidden=128, heads=2, ffn=512, vocab=30522, seed=11)
OCR = {  # name -> (source dir name, input shape)
    "ppocr_det_pir": ("ppocr_det", [1, 3, 320, 320]),
    "ppocr_rec_pir": ("ppocr_rec", [1, 3, 48, 320]),
    "ppocr_cls_pir": ("ppocr_cls", [1, 3, 48, 192]),
}
sys.path.insert(0, HERE)
import model_families  # noqa: E402

ALL = ["resnet50", "mobilenet_v2", "ppocr_det_pir", "ppocr_rec_pir", "ppocr_cls_pir", "ernie_tiny_pir"] \
    + [n for n in model_families.FAMILIES if n not in model_families.PENDING]
KNOWN = ALL + model_families.PENDING
REF_RUN = ("paddle.inference (paddle {v}), PIR model.json, switch_ir_optim(False), "
           "oneDNN disabled, 1 thread, CPU")


def log(*a):
    print("[extra]", *a, flush=True)


# ---------------------------------------------------------------------------------------------
# Models built from paddle.vision (used by the PIR main process and the legacy subprocess alike)
# ---------------------------------------------------------------------------------------------
def build_vision(arch, seed):
    import paddle
    paddle.seed(seed)
    if arch == "resnet50":
        model = paddle.vision.models.resnet50()
    elif arch == "mobilenet_v2":
        model = paddle.vision.models.mobilenet_v2(scale=1.0)
    else:
        raise ValueError(arch)
    # Deterministic numpy init over the structured state_dict (same in both IR modes), with
    # non-trivial BatchNorm statistics so BN folding is actually exercised.
    rs = np.random.RandomState(seed)
    for key, t in model.state_dict().items():
        shape = list(t.shape)
        if key.endswith("_mean"):
            v = 0.1 * rs.standard_normal(shape)
        elif key.endswith("_variance"):
            v = rs.uniform(0.5, 1.5, shape)
        elif len(shape) == 4:  # conv weight [out, in/groups, kh, kw]: He normal
            v = rs.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
        elif len(shape) == 2:  # linear weight [in, out]
            v = rs.standard_normal(shape) * np.sqrt(1.0 / shape[0])
        elif key.endswith("weight"):  # BatchNorm scale
            v = 1.0 + 0.1 * rs.standard_normal(shape)
            if key.endswith("bn3.weight"):  # last BN of a ResNet bottleneck: keep the residual
                v *= 0.2                    # stream from growing (outputs stay O(10))
        else:  # BatchNorm shift, linear bias
            v = 0.05 * rs.standard_normal(shape)
        t.set_value(v.astype("float32"))
    model.eval()
    return model


def legacy_export_main(arch, prefix, seed):
    """Runs in a subprocess with FLAGS_enable_pir_api=0: legacy ProgramDesc export."""
    import paddle
    from paddle.static import InputSpec
    model = build_vision(arch, seed)
    paddle.jit.save(model, prefix, input_spec=[InputSpec([1, 3, 224, 224], "float32", "x")])
    assert os.path.exists(prefix + ".pdmodel"), "legacy export wrote no .pdmodel"


# ---------------------------------------------------------------------------------------------
# Inspection helpers
# ---------------------------------------------------------------------------------------------
PIR_PREFIX = {"0": "builtin", "1": "pd_op", "2": "cf", "3": "pd_dist", "4": "custom_op"}


def pir_json_ops(path):
    """All ops of a PIR .json in program order (nested regions included): list of op dicts."""
    d = json.load(open(path))
    out = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "ops" and isinstance(v, list):
                    for op in v:
                        out.append(op)
                        walk(op)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(d["program"])
    return d, out


def pir_name(tag):
    if tag == "p":
        return "builtin.parameter"
    pre, _, rest = tag.partition(".")
    return f"{PIR_PREFIX.get(pre, pre)}.{rest}" if rest else tag


def pir_histogram(path):
    d, ops = pir_json_ops(path)
    raw = collections.Counter(op["#"] for op in ops)
    named = collections.Counter(pir_name(op["#"]) for op in ops)
    return {
        "json_tags": dict(sorted(raw.items())),
        "total": dict(sorted(named.items())),
        "num_op_types": len(named),
        "num_ops": len(ops),
        "base_code": d.get("base_code"),
    }


def pir_param_ops(path):
    """[(name, dims)] of the builtin.parameter ops ("#":"p") in JSON order."""
    _, ops = pir_json_ops(path)
    out = []
    for op in ops:
        if op["#"] != "p":
            continue
        name = op["A"][-1]
        o = op["O"]
        o = o[0] if isinstance(o, list) else o
        dims = o["TT"]["D"][1]
        out.append((name, list(dims)))
    return out


def legacy_histogram(path):
    from paddle.base.proto import framework_pb2
    prog = framework_pb2.ProgramDesc()
    prog.ParseFromString(open(path, "rb").read())
    total = collections.Counter()
    for b in prog.blocks:
        total.update(op.type for op in b.ops)
    return {"total": dict(sorted(total.items())), "num_op_types": len(total),
            "num_ops": sum(total.values()), "num_blocks": len(prog.blocks)}


def _varint(buf, i):
    v = s = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << s
        s += 7
        if not b & 0x80:
            return v, i


def _tensor_desc(buf):
    """TensorDesc protobuf: field 1 data_type (varint), field 2 dims (int64, packed or not)."""
    i, dtype, dims = 0, None, []
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
            if field == 1:
                dtype = v
            elif field == 2:
                dims.append(v - (1 << 64) if v >= 1 << 63 else v)
        elif wt == 2:
            n, i = _varint(buf, i)
            sub, i = buf[i:i + n], i + n
            if field == 2:
                j = 0
                while j < len(sub):
                    v, j = _varint(sub, j)
                    dims.append(v - (1 << 64) if v >= 1 << 63 else v)
        else:
            raise ValueError(f"unexpected wire type {wt}")
    return dtype, dims


DT_SIZE = {0: 1, 1: 2, 2: 4, 3: 8, 4: 2, 5: 4, 6: 8, 20: 1, 21: 1, 22: 2, 23: 8, 24: 16}


def pdiparams_records(path):
    """[(dims, dtype, offset_of_data, nbytes)] of a combined .pdiparams (save_combine)."""
    buf = open(path, "rb").read()
    i, out = 0, []
    while i < len(buf):
        (ver,) = struct.unpack_from("<I", buf, i)
        i += 4
        (lod_n,) = struct.unpack_from("<Q", buf, i)
        i += 8
        for _ in range(lod_n):
            (sz,) = struct.unpack_from("<Q", buf, i)
            i += 8 + sz
        (tver,) = struct.unpack_from("<I", buf, i)
        i += 4
        (dsz,) = struct.unpack_from("<i", buf, i)
        i += 4
        dtype, dims = _tensor_desc(buf[i:i + dsz])
        i += dsz
        n = int(np.prod(dims)) * DT_SIZE[dtype] if dims else DT_SIZE[dtype]
        out.append((dims, dtype, i, n))
        i += n
    return out, buf


def pdiparams_order(params_path, json_path, named_arrays=None):
    """Is the .pdiparams record order the name-sorted order, or the JSON parameter-op order?

    named_arrays: optional {param name: float32 ndarray}; then every record is identified by its
    bytes, which settles the order even where dims sequences are ambiguous."""
    recs, buf = pdiparams_records(params_path)
    pops = pir_param_ops(json_path)
    rec_dims = [r[0] for r in recs]
    json_dims = [d for _, d in pops]
    sorted_names = sorted(n for n, _ in pops)
    by_name = dict(pops)
    sorted_dims = [by_name[n] for n in sorted_names]
    res = {
        "num_records": len(recs),
        "num_param_ops": len(pops),
        "dims_match_name_sorted": rec_dims == sorted_dims,
        "dims_match_json_param_op_order": rec_dims == json_dims,
        "dims_match_reversed_json_order": rec_dims == json_dims[::-1],
        "first_records": [
            {"dims": r[0], "name_sorted": sorted_names[k] if k < len(sorted_names) else None,
             "json_order": pops[k][0] if k < len(pops) else None}
            for k, r in enumerate(recs[:8])],
    }
    if named_arrays:
        index = {}
        for n, a in named_arrays.items():
            index.setdefault(hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest(), []).append(n)
        names = []
        for dims, dtype, off, nb in recs:
            cands = index.get(hashlib.sha1(buf[off:off + nb]).hexdigest(), [])
            names.append(cands[0] if len(cands) == 1 else (cands or None))
        res["record_names_by_content"] = names[:12] + (["..."] if len(names) > 12 else [])
        ok = all(isinstance(n, str) for n in names)
        res["all_records_identified_by_content"] = ok
        if ok:
            res["names_match_name_sorted"] = names == sorted_names
            res["names_match_json_param_op_order"] = names == [n for n, _ in pops]
    if res["dims_match_name_sorted"] and not res["dims_match_json_param_op_order"]:
        res["finding"] = "sorted by parameter name (string order), like legacy save_combine"
    elif res["dims_match_json_param_op_order"] and not res["dims_match_name_sorted"]:
        res["finding"] = "order of the builtin.parameter ops in model.json"
    elif res["dims_match_json_param_op_order"] and res["dims_match_name_sorted"]:
        res["finding"] = "ambiguous by dims (json order == sorted order)"
    else:
        res["finding"] = "neither name-sorted nor json parameter-op order"
    if "names_match_name_sorted" in res:
        res["finding"] += " [by content: name_sorted=%s json_order=%s]" % (
            res["names_match_name_sorted"], res["names_match_json_param_op_order"])
    return res


# ---------------------------------------------------------------------------------------------
# Engines
# ---------------------------------------------------------------------------------------------
def paddle_run(model, params, feeds):
    import paddle.inference as pi
    cfg = pi.Config(model, params)
    cfg.disable_gpu()
    cfg.switch_ir_optim(False)
    cfg.set_cpu_math_library_num_threads(1)
    cfg.disable_mkldnn()
    cfg.disable_glog_info()
    pred = pi.create_predictor(cfg)
    for n in pred.get_input_names():
        h = pred.get_input_handle(n)
        h.reshape(list(feeds[n].shape))
        h.copy_from_cpu(feeds[n])
    pred.run()
    names = pred.get_output_names()
    return names, [pred.get_output_handle(n).copy_to_cpu() for n in names], pred.get_input_names()


def ort_check(onnx_path, feeds, refs, tmpdir):
    """ORT at EXTENDED (dumping the optimized graph) and at ALL: node counts + diffs."""
    import onnx
    import onnxruntime as ort
    res = {}
    dump = os.path.join(tmpdir, "ort_extended.onnx")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = dump
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    outs = sess.run(None, {n: feeds[n] for n in names})
    res["max_abs_diff_ort_extended_vs_reference"] = [float(np.abs(o - r).max()) for o, r in zip(outs, refs)]
    m = onnx.load(dump, load_external_data=False)
    res["ort_optimized_nodes"] = len(m.graph.node)
    res["ort_optimized_histogram"] = dict(sorted(collections.Counter(n.op_type for n in m.graph.node).items()))
    for f in glob.glob(os.path.join(tmpdir, "ort_extended*")):
        os.remove(f)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    outs = sess.run(None, {n: feeds[n] for n in names})
    res["max_abs_diff_onnxruntime_vs_paddle"] = [float(np.abs(o - r).max()) for o, r in zip(outs, refs)]
    src = onnx.load(onnx_path, load_external_data=False)
    res["onnx_nodes"] = len(src.graph.node)
    res["onnx_opset"] = [{"domain": o.domain, "version": o.version} for o in src.opset_import]
    res["onnx_inputs"] = [i.name for i in sess.get_inputs()]
    return res


def paddle2onnx(model_dir, model_file, params_file, save_file):
    exe = os.path.join(os.path.dirname(sys.executable), "paddle2onnx")
    cmd = [exe, "--model_dir", model_dir, "--model_filename", model_file,
           "--params_filename", params_file, "--save_file", save_file,
           "--opset_version", str(OPSET)]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0 or not os.path.exists(save_file):
        raise RuntimeError(f"paddle2onnx failed (rc {r.returncode}): " + r.stdout[-2000:])
    return {"tool": "paddle2onnx " + _version("paddle2onnx"), "requested_opset": OPSET,
            "optimize_tool": "polygraphy (paddle2onnx default)", "from": model_file}


def _version(mod):
    try:
        return __import__(mod).__version__
    except Exception:
        return "?"


# ---------------------------------------------------------------------------------------------
# Per-model builders: each fills `tmp` and returns (manifest, feeds, extra_inputs)
# ---------------------------------------------------------------------------------------------
def stats(a):
    a = a.astype(np.float64)
    return dict(abs_max=float(np.abs(a).max()) if a.size else 0.0, mean=float(a.mean()), std=float(a.std()))


def legacy_subprocess(args, env_extra=None):
    env = dict(os.environ, FLAGS_enable_pir_api="0")
    r = subprocess.run([sys.executable] + args, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError("legacy export failed: " + r.stdout[-3000:])


def place_legacy(tmp, leg_dir, man):
    """Put the legacy program beside the PIR one when the .pdiparams bytes agree, else legacy/."""
    leg_model, leg_params = os.path.join(leg_dir, "model.pdmodel"), os.path.join(leg_dir, "model.pdiparams")
    same = open(leg_params, "rb").read() == open(os.path.join(tmp, "model.pdiparams"), "rb").read()
    if same:
        shutil.move(leg_model, os.path.join(tmp, "model.pdmodel"))
        man["files"]["legacy"] = {"model": "model.pdmodel", "params": "model.pdiparams"}
    else:
        os.makedirs(os.path.join(tmp, "legacy"), exist_ok=True)
        shutil.move(leg_model, os.path.join(tmp, "legacy", "model.pdmodel"))
        shutil.move(leg_params, os.path.join(tmp, "legacy", "model.pdiparams"))
        man["files"]["legacy"] = {"model": "legacy/model.pdmodel", "params": "legacy/model.pdiparams"}
    man["legacy_params_identical_to_pir"] = same
    shutil.rmtree(leg_dir, ignore_errors=True)


def make_vision(name, tmp, man):
    import paddle
    from paddle.static import InputSpec
    # Fresh unique-name counters (conv2d_0, batch_norm2d_0, ...) per model, as in the legacy
    # subprocess: otherwise names continue from the previous model and the name-sorted
    # .pdiparams of the two saves differ.
    with paddle.utils.unique_name.guard():
        model = build_vision(name, SEED)
        paddle.jit.save(model, os.path.join(tmp, "model"), input_spec=[InputSpec([1, 3, 224, 224], "float32", "x")])
    named = {p.name: p.numpy() for p in model.parameters()}
    named.update({b.name: b.numpy() for b in model.buffers()})
    man["weights"] = f"paddle.vision.models.{name}, numpy-seeded init (seed {SEED}), random BN statistics, eval mode"
    leg_dir = os.path.join(tmp, ".legacy_tmp")
    legacy_subprocess([os.path.abspath(__file__), "--_legacy-export", name, os.path.join(leg_dir, "model")])
    place_legacy(tmp, leg_dir, man)
    rs = np.random.RandomState(SEED)
    feeds = {"x": rs.rand(1, 3, 224, 224).astype("float32")}
    return feeds, named


def make_ernie(name, tmp, man):
    import importlib.util
    import paddle
    from paddle.static import InputSpec
    me = os.path.join(SHARED, "tools", "make_encoder.py")
    if not os.path.exists(me):
        raise FileNotFoundError(f"{me} not found (needs ../shared/tools/make_encoder.py)")
    saved = os.environ.get("FLAGS_enable_pir_api")
    spec = importlib.util.spec_from_file_location("make_encoder", me)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # sets FLAGS_enable_pir_api=0 in os.environ; paddle is already up
    if saved is None:
        os.environ.pop("FLAGS_enable_pir_api", None)
    else:
        os.environ["FLAGS_enable_pir_api"] = saved
    e = ERNIE
    with paddle.utils.unique_name.guard():  # fresh names, as in make_encoder's own process
        paddle.seed(e["seed"])
        model = mod.ErnieLike(e["vocab"], e["hidden"], e["layers"], e["heads"], e["ffn"])
        mod._init_ernie(model, e["seed"])
        model.eval()
        ispec = [InputSpec([None, None], "int64", "input_ids"), InputSpec([None, None], "int64", "token_type_ids")]
        paddle.jit.save(model, os.path.join(tmp, "model"), input_spec=ispec)
    if not os.path.exists(os.path.join(tmp, "model.json")):
        raise RuntimeError("PIR jit.save wrote no model.json (is PIR off in this process?)")
    named = {p.name: p.numpy() for p in model.parameters()}
    man["weights"] = ("make_encoder.py ErnieLike layers={layers} hidden={hidden} heads={heads} ffn={ffn} "
                      "vocab={vocab} seed={seed} (BERT-style init, seeded)").format(**e)
    man["declared_inputs"] = "input_ids, token_type_ids int64 [-1,-1]"
    leg_dir = os.path.join(tmp, ".legacy_tmp")
    legacy_subprocess([me, "--layers", str(e["layers"]), "--hidden", str(e["hidden"]), "--heads", str(e["heads"]),
                       "--ffn", str(e["ffn"]), "--vocab", str(e["vocab"]), "--seed", str(e["seed"]),
                       "--out", leg_dir])
    for f in glob.glob(os.path.join(leg_dir, "*.info")):
        os.remove(f)
    place_legacy(tmp, leg_dir, man)
    rs = np.random.RandomState(SEED)
    feeds = {"input_ids": rs.randint(0, e["vocab"], size=(1, 32)).astype("int64"),
             "token_type_ids": np.zeros((1, 32), "int64")}
    return feeds, named


def make_family(name, tmp, man):
    """A toolkit architecture of model_families.py: PIR here, legacy in a subprocess."""
    import paddle
    family, builder, _, feeds = model_families.FAMILIES[name]
    with paddle.utils.unique_name.guard():
        model = builder(SEED)
        paddle.jit.save(model, os.path.join(tmp, "model"), input_spec=model_families.specs(name))
    named = {p.name: p.numpy() for p in model.parameters()}
    named.update({b.name: b.numpy() for b in model.buffers() if "float32" in str(b.dtype)})
    man["family"] = family
    man["weights"] = f"{family}: numpy-seeded init (seed {SEED}), random BN statistics, eval mode"
    man["declared_inputs"] = ", ".join(f"{n} {d} {s}" for n, s, d in model_families.FAMILIES[name][2])
    leg_dir = os.path.join(tmp, ".legacy_tmp")
    legacy_subprocess([os.path.abspath(__file__), "--_legacy-export", name, os.path.join(leg_dir, "model")])
    place_legacy(tmp, leg_dir, man)
    return feeds(), named


def ocr_source(src_name):
    for d in (os.path.join(SHARED, "models", src_name), os.path.join(CACHE, src_name)):
        if os.path.exists(os.path.join(d, "inference.pdmodel")) and os.path.exists(os.path.join(d, "inference.pdiparams")):
            return d
    raise FileNotFoundError(f"no {src_name}/inference.pdmodel in {SHARED}/models or {CACHE} "
                            "(scripts/fetch-models.sh fills the cache)")


def make_ocr(name, tmp, man):
    import paddle
    from paddle.base.executor import global_scope
    src_name, shape = OCR[name]
    src = ocr_source(src_name)
    man["source"] = {"legacy_model": os.path.join(src, "inference.pdmodel"),
                     "legacy_params": os.path.join(src, "inference.pdiparams")}
    if os.path.exists(os.path.join(src, "model.onnx")):
        man["source"]["onnx"] = os.path.join(src, "model.onnx")
    paddle.enable_static()
    try:
        exe = paddle.static.Executor(paddle.CPUPlace())
        scope = paddle.static.Scope()
        with paddle.static.scope_guard(scope):
            with paddle.pir_utils.OldIrGuard():
                prog, _, _ = paddle.static.load_inference_model(os.path.join(src, "inference"), exe)
            pir = paddle.pir.translate_to_pir(prog.desc)
            params = [v for v in pir.list_vars()
                      if v.persistable and (v.is_parameter or v.get_defining_op().name() == "builtin.parameter")]
            paddle.base.libpaddle.pir.create_loaded_parameter(params, global_scope(), exe._default_executor)
            feed, fetch = [], []
            for op in pir.global_block().ops:
                if op.name() in ("pd_op.feed", "pd_op.data"):
                    feed.extend(op.results())
                if op.name() in ("pd_op.fetch", "builtin.shadow_output"):
                    fetch.extend(op.operands_source())
            with paddle.pir_utils.IrGuard():
                paddle.static.save_inference_model(os.path.join(tmp, "model"), feed, fetch, exe, program=pir)
    finally:
        paddle.disable_static()
    if not os.path.exists(os.path.join(tmp, "model.json")):
        raise RuntimeError("save_inference_model wrote no model.json")
    man["conversion"] = ("paddle.static.load_inference_model under OldIrGuard -> paddle.pir.translate_to_pir "
                         "-> create_loaded_parameter -> save_inference_model (PIR) ; paddle " + paddle.__version__)
    man["params_identical_to_source"] = (open(os.path.join(tmp, "model.pdiparams"), "rb").read()
                                         == open(os.path.join(src, "inference.pdiparams"), "rb").read())
    man["declared_inputs"] = "x f32, see source manifest"
    rs = np.random.RandomState(SEED)
    feeds = {"x": rs.rand(*shape).astype("float32")}
    return feeds, None


# ---------------------------------------------------------------------------------------------
def build(name, force=False):
    out = os.path.join(EXTRA, name)
    if not force and os.path.exists(os.path.join(out, "manifest.json")):
        man = json.load(open(os.path.join(out, "manifest.json")))
        files = [i["file"] for i in man.get("inputs", [])] + [o["file"] for o in man.get("outputs", [])]
        files += [v for f in man.get("files", {}).values() for v in f.values()]
        if all(os.path.exists(os.path.join(out, f)) for f in files):
            log(f"{name}: complete, skipped ({out})")
            return {"name": name, "status": "skipped"}
    import paddle
    t0 = time.time()
    os.makedirs(EXTRA, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{name}.", dir=EXTRA)
    tick = [time.time()]
    timings = {}

    def lap(what):
        now = time.time()
        timings[what] = round(now - tick[0], 1)
        tick[0] = now
    man = {"model": name, "group": "extra", "generator": "kayak scripts/make-extra-models.py",
           "paddle_version": paddle.__version__, "files": {}, "errors": []}
    try:
        if name in ("resnet50", "mobilenet_v2"):
            feeds, named = make_vision(name, tmp, man)
        elif name in OCR:
            feeds, named = make_ocr(name, tmp, man)
        elif name == "ernie_tiny_pir":
            feeds, named = make_ernie(name, tmp, man)
        elif name in model_families.FAMILIES:
            feeds, named = make_family(name, tmp, man)
        else:
            raise ValueError(name)
        lap("export_pir_and_legacy")
        man["files"]["pir"] = {"model": "model.json", "params": "model.pdiparams"}
        files = man["files"]
        # ONNX from the legacy program
        if "legacy" in files and name not in OCR:
            try:
                leg = files["legacy"]
                man["onnx_export"] = paddle2onnx(tmp, leg["model"], leg["params"], os.path.join(tmp, "model.onnx"))
                files["onnx"] = {"model": "model.onnx"}
            except Exception as e:  # noqa: BLE001
                man["errors"].append(f"onnx: {e}")
                log(f"{name}: ONNX export failed: {e}")
        lap("paddle2onnx")
        # Inputs + reference (Paddle Inference on the PIR program)
        for n, v in feeds.items():
            np.save(os.path.join(tmp, f"input_{n}.npy"), v)
        onames, refs, inames = paddle_run(os.path.join(tmp, "model.json"), os.path.join(tmp, "model.pdiparams"), feeds)
        man["inputs"] = [{"name": n, "shape": list(feeds[n].shape), "dtype": str(feeds[n].dtype),
                          "file": f"input_{n}.npy"} for n in inames]
        man["outputs"] = []
        for i, (n, r) in enumerate(zip(onames, refs)):
            np.save(os.path.join(tmp, f"output_{i}.npy"), r)
            man["outputs"].append(dict(name=n, shape=list(r.shape), dtype=str(r.dtype), file=f"output_{i}.npy", **stats(r)))
        man["reference_run"] = REF_RUN.format(v=paddle.__version__)
        # Extra reference: text-like det input (noise gives ~0 everywhere)
        if name == "ppocr_det_pir":
            tl = os.path.join(man["source"]["legacy_model"].rsplit("/", 1)[0], "input_x_textlike.npy")
            if os.path.exists(tl):
                x = np.ascontiguousarray(np.load(tl)[:, :, ::2, ::2]).astype("float32")
                _, o, _ = paddle_run(os.path.join(tmp, "model.json"), os.path.join(tmp, "model.pdiparams"), {"x": x})
                np.save(os.path.join(tmp, "input_x_textlike.npy"), x)
                np.save(os.path.join(tmp, "output_0_textlike.npy"), o[0])
                man["extra_references"] = [{"inputs": {"x": "input_x_textlike.npy"},
                                            "outputs": ["output_0_textlike.npy"],
                                            "what": "source ppocr_det/input_x_textlike.npy subsampled [::2, ::2]",
                                            **stats(o[0])}]
        lap("reference")
        # Cross-checks: legacy Paddle (same config) and ONNX Runtime
        diffs = {}
        leg_model = (os.path.join(tmp, files["legacy"]["model"]), os.path.join(tmp, files["legacy"]["params"])) \
            if "legacy" in files else ((man["source"]["legacy_model"], man["source"]["legacy_params"]) if name in OCR else None)
        if leg_model:
            _, lo, _ = paddle_run(leg_model[0], leg_model[1], feeds)
            diffs["paddle_legacy_iroff"] = [float(np.abs(a - b).max()) for a, b in zip(lo, refs)]
        lap("paddle_legacy_check")
        onnx_file = os.path.join(tmp, "model.onnx") if "onnx" in files else (man.get("source", {}).get("onnx"))
        if onnx_file:
            try:
                o = ort_check(onnx_file, feeds, refs, tmp)
                diffs["onnxruntime_extended"] = o.pop("max_abs_diff_ort_extended_vs_reference")
                diffs["onnxruntime"] = o["max_abs_diff_onnxruntime_vs_paddle"]
                if "onnx" in files:
                    man.update(o)
                else:  # source model's ONNX (not copied here): checks only
                    man["source_onnx_check"] = o
            except Exception as e:  # noqa: BLE001
                man["errors"].append(f"onnxruntime: {e}")
                log(f"{name}: ONNX Runtime check failed: {e}")
        lap("onnxruntime_checks")
        man["max_abs_diff_vs_reference"] = diffs
        if "onnx" in files:
            man["ort_matches_reference"] = bool(all(
                d <= 1e-4 + 1e-3 * float(np.abs(r).max()) for d, r in zip(diffs.get("onnxruntime", [np.inf]), refs)))
        # Histograms + .pdiparams order
        man["op_histogram"] = {"pir": pir_histogram(os.path.join(tmp, "model.json"))}
        if "legacy" in files:
            man["op_histogram"]["legacy"] = legacy_histogram(os.path.join(tmp, files["legacy"]["model"]))
        man["pdiparams_order"] = pdiparams_order(os.path.join(tmp, "model.pdiparams"),
                                                 os.path.join(tmp, "model.json"), named)
        lap("histograms_and_pdiparams_order")
        man["timings_s"] = timings
        man["build_seconds"] = round(time.time() - t0, 1)
        if not man["errors"]:
            man["errors"] = None
        with open(os.path.join(tmp, "manifest.json"), "w") as f:
            json.dump(man, f, indent=1)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.rename(tmp, out)
        log(f"{name}: wrote {out} in {man['build_seconds']} s; outputs {[o['shape'] for o in man['outputs']]}; "
            f"diffs {diffs}; ort_optimized_nodes {man.get('ort_optimized_nodes')}; "
            f"pdiparams order: {man['pdiparams_order']['finding']}")
        return {"name": name, "status": "built", "errors": man["errors"]}
    except Exception as e:  # noqa: BLE001
        import traceback
        err = f"{type(e).__name__}: {e}"
        log(f"{name}: FAILED: {err}")
        traceback.print_exc()
        # Record the failure in a manifest (no reference files) so that the reason is kept.
        fail_dir = out + ".failed"
        shutil.rmtree(fail_dir, ignore_errors=True)
        os.makedirs(fail_dir, exist_ok=True)
        man["errors"].append(err)
        man["status"] = "failed"
        with open(os.path.join(fail_dir, "manifest.json"), "w") as f:
            json.dump(man, f, indent=1, default=str)
        shutil.rmtree(tmp, ignore_errors=True)
        return {"name": name, "status": "failed", "error": err}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--_legacy-export":
        if sys.argv[2] in model_families.FAMILIES:
            model_families.legacy_export(sys.argv[2], sys.argv[3], SEED)
        else:
            legacy_export_main(sys.argv[2], sys.argv[3], SEED)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma list of " + ",".join(KNOWN))
    ap.add_argument("--force", action="store_true", help="rebuild complete directories")
    a = ap.parse_args()
    names = a.only.split(",") if a.only else ALL
    for n in names:
        if n not in KNOWN:
            sys.exit(f"unknown model {n}; known: {', '.join(KNOWN)}")
    os.environ.pop("FLAGS_enable_pir_api", None)
    import paddle
    if not paddle.get_flags("FLAGS_enable_pir_api")["FLAGS_enable_pir_api"]:
        sys.exit("make-extra-models: PIR is off in this process (FLAGS_enable_pir_api=0?)")
    t0 = time.time()
    log(f"paddle {paddle.__version__}; writing to {EXTRA}")
    results = [build(n, a.force) for n in names]
    log(f"done in {time.time() - t0:.1f} s")
    for r in results:
        log(json.dumps(r))
    return 1 if any(r["status"] == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
