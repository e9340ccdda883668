#!/usr/bin/env python3
"""Generates tests/data/ops: one tiny Paddle inference model per op case, with inputs and the
outputs Paddle itself computes (legacy ProgramDesc, CPU). Kayak's op-conformance test runs
each and compares. Needs the peers environment: ../shared/tools/setup-peers.sh, then
    ~/.cache/kayak-peers/bin/python scripts/gen_op_cases.py
"""
import json
import os
import shutil
import sys

os.environ["FLAGS_enable_pir_api"] = "0"  # legacy .pdmodel export; must precede import paddle
os.environ.setdefault("GLOG_minloglevel", "2")
import numpy as np  # noqa: E402
import paddle  # noqa: E402
import paddle.nn.functional as F  # noqa: E402

paddle.enable_static()
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "ops")
rng = np.random.default_rng(7)
CASES = []


def case(name):
    def deco(fn):
        CASES.append((name, fn))
        return fn
    return deco


def data(name, shape, dtype="float32", lo=-2.0, hi=2.0, feed_shape=None):
    """A feed variable and the value fed to it."""
    v = paddle.static.data(name, feed_shape or shape, dtype)
    if dtype.startswith("float"):
        a = rng.uniform(lo, hi, size=shape).astype(dtype)
    elif dtype == "bool":
        a = rng.integers(0, 2, size=shape).astype("bool")
    else:
        a = rng.integers(int(lo), int(hi), size=shape).astype(dtype)
    return v, a


def param(name, shape, lo=-1.0, hi=1.0):
    p = paddle.static.create_parameter(shape, "float32", name=name, default_initializer=paddle.nn.initializer.Assign(rng.uniform(lo, hi, size=shape).astype("float32")))
    return p


def raw_op(op_type, inputs, attrs, out_dtype="float32", outputs=("Out",), n_out=1):
    """Appends a legacy op directly (for attributes the Python API does not expose)."""
    block = paddle.static.default_main_program().current_block()
    outs = {}
    res = []
    for o in outputs:
        vs = [block.create_var(name=paddle.utils.unique_name.generate(op_type + "_out"), dtype=out_dtype) for _ in range(n_out if o == outputs[0] else 1)]
        outs[o] = vs
        res.append(vs)
    block.append_op(type=op_type, inputs=inputs, outputs=outs, attrs=attrs)
    return res[0] if n_out > 1 else res[0][0]


def ew(kind, x, y, axis=-1, dtype="float32"):
    return raw_op("elementwise_" + kind, {"X": [x], "Y": [y]}, {"axis": axis}, out_dtype=dtype)


# ---- convolution -------------------------------------------------------------------------
@case("conv2d_groups_dilation_asym_pad")
def _():
    x, a = data("x", [2, 4, 9, 8])
    w = param("w", [6, 2, 3, 3])
    return [x], [a], [F.conv2d(x, w, stride=2, padding=[1, 0, 2, 1], dilation=2, groups=2)]


@case("conv2d_same_and_valid")
def _():
    x, a = data("x", [1, 3, 7, 6])
    w = param("w", [4, 3, 3, 3])
    return [x], [a], [F.conv2d(x, w, stride=2, padding="SAME"), F.conv2d(x, w, stride=1, padding="VALID")]


@case("conv2d_nhwc_with_bias")
def _():
    x, a = data("x", [1, 6, 5, 3])
    w = param("w", [4, 3, 2, 2])
    b = param("b", [4])
    return [x], [a], [F.conv2d(x, w, bias=b, padding=1, data_format="NHWC")]


@case("depthwise_conv2d")
def _():
    x, a = data("x", [1, 8, 10, 10])
    w = param("w", [8, 1, 3, 3])
    return [x], [a], [F.conv2d(x, w, stride=2, padding=1, groups=8)]


@case("conv2d_transpose_groups_outpad")
def _():
    x, a = data("x", [1, 4, 5, 4])
    w = param("w", [4, 3, 3, 3])
    return [x], [a], [F.conv2d_transpose(x, w, stride=2, padding=1, output_padding=1, groups=2, dilation=1)]


@case("conv2d_transpose_output_size_dilation")
def _():
    x, a = data("x", [2, 3, 4, 5])
    w = param("w", [3, 2, 3, 2])
    return [x], [a], [F.conv2d_transpose(x, w, stride=[2, 3], padding=[1, 0], dilation=[2, 1], output_size=[10, 15])]


# ---- pooling -------------------------------------------------------------------------------
@case("pool2d_variants")
def _():
    x, a = data("x", [1, 3, 7, 9])
    return [x], [a], [
        F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
        F.avg_pool2d(x, 3, stride=2, padding=1, exclusive=False),
        F.avg_pool2d(x, [2, 3], stride=[2, 2], padding=0, ceil_mode=True),
        F.adaptive_avg_pool2d(x, [3, 4]),
        F.adaptive_max_pool2d(x, [2, 2]),
        paddle.max(x, axis=[2, 3], keepdim=True),
    ]


# ---- normalization --------------------------------------------------------------------------
@case("batch_norm_and_layer_norm")
def _():
    x, a = data("x", [2, 3, 4, 5])
    m, v = param("m", [3]), param("v", [3], 0.5, 2.0)
    s, b = param("s", [3]), param("b", [3])
    ls, lb = param("ls", [20]), param("lb", [20])
    bn = F.batch_norm(x, m, v, s, b, training=False, epsilon=1e-3)
    ln = raw_op("layer_norm", {"X": [x], "Scale": [ls], "Bias": [lb]}, {"begin_norm_axis": 2, "epsilon": 1e-5}, outputs=("Y", "Mean", "Variance"))
    return [x], [a], [bn, ln]


# ---- elementwise -------------------------------------------------------------------------------
@case("elementwise_axis_broadcast")
def _():
    x, a = data("x", [2, 3, 4, 5])
    y, b = data("y", [3, 4])
    z, c = data("z", [3])
    return [x, y, z], [a, b, c], [
        raw_op("elementwise_add", {"X": [x], "Y": [y]}, {"axis": 1}),
        raw_op("elementwise_mul", {"X": [x], "Y": [z]}, {"axis": 1}),
        raw_op("elementwise_sub", {"X": [x], "Y": [z]}, {"axis": 1}),
    ]


@case("elementwise_float_ops")
def _():
    x, a = data("x", [3, 4], lo=0.5, hi=3.0)
    y, b = data("y", [4], lo=0.5, hi=2.0)
    return [x, y], [a, b], [ew(t, x, y) for t in ("div", "pow", "max", "min", "mod", "floordiv")]


@case("elementwise_int_ops")
def _():
    x, a = data("x", [6], "int64", lo=-9, hi=9)
    y = paddle.static.data("y", [6], "int64")
    b = np.array([2, -3, 4, -5, 7, 3], dtype="int64")
    return [x, y], [a, b], [ew(t, x, y, dtype="int64") for t in ("mod", "floordiv", "mul", "sub", "max", "div")]


# ---- activations -------------------------------------------------------------------------------
def un(op_type, x, dtype="float32", **attrs):
    return raw_op(op_type, {"X": [x]}, attrs, out_dtype=dtype)


@case("activations")
def _():
    x, a = data("x", [2, 3, 4], lo=-6.0, hi=6.0)
    return [x], [a], [
        un("relu6", x, threshold=6.0), un("leaky_relu", x, alpha=0.1), un("hard_swish", x, threshold=6.0, scale=6.0, offset=3.0),
        un("hard_sigmoid", x, slope=0.25, offset=0.4), un("sigmoid", x), un("swish", x, beta=1.5), un("silu", x),
        un("gelu", x, approximate=False), un("gelu", x, approximate=True), un("tanh", x), un("exp", x),
        un("abs", x), un("clip", x, min=-1.5, max=2.5), un("scale", x, scale=2.0, bias=0.5, bias_after_scale=False),
        un("square", x), un("floor", x), un("ceil", x), un("relu", x),
    ]


@case("activations_positive_domain")
def _():
    x, a = data("x", [2, 5], lo=0.1, hi=5.0)
    return [x], [a], [un("log", x), un("sqrt", x), un("rsqrt", x), un("reciprocal", x)]


@case("prelu_modes")
def _():
    x, a = data("x", [2, 3, 2, 2])
    w1, w3, we = param("w1", [1]), param("w3", [3]), param("we", [1, 3, 2, 2])
    return [x], [a], [
        raw_op("prelu", {"X": [x], "Alpha": [w1]}, {"mode": "all"}),
        raw_op("prelu", {"X": [x], "Alpha": [w3]}, {"mode": "channel"}),
        raw_op("prelu", {"X": [x], "Alpha": [we]}, {"mode": "element"}),
    ]


@case("dropout_inference")
def _():
    x, a = data("x", [3, 4])
    attrs = {"dropout_prob": 0.3, "is_test": True}
    return [x], [a], [
        raw_op("dropout", {"X": [x]}, dict(attrs, dropout_implementation="downgrade_in_infer"), outputs=("Out", "Mask")),
        raw_op("dropout", {"X": [x]}, dict(attrs, dropout_implementation="upscale_in_train"), outputs=("Out", "Mask")),
    ]


# ---- matmul ---------------------------------------------------------------------------------------
@case("matmul_variants")
def _():
    x, a = data("x", [2, 1, 3, 4])
    y, b = data("y", [5, 3, 6])
    v, c = data("v", [6])
    w2 = param("w2", [3, 4])
    return [x, y, v], [a, b, c], [
        raw_op("matmul_v2", {"X": [x], "Y": [y]}, {"trans_x": True, "trans_y": False}),
        raw_op("matmul_v2", {"X": [y], "Y": [v]}, {"trans_x": False, "trans_y": False}),
        raw_op("matmul", {"X": [x], "Y": [w2]}, {"transpose_X": False, "transpose_Y": True, "alpha": 0.5}),
    ]


@case("mul_and_fc")
def _():
    x, a = data("x", [2, 3, 4])
    w = param("w", [12, 5])
    w4 = param("w4", [4, 5])
    b = param("b", [5])
    return [x], [a], [
        raw_op("mul", {"X": [x], "Y": [w]}, {"x_num_col_dims": 1, "y_num_col_dims": 1}),
        raw_op("fc", {"Input": [x], "W": [w4], "Bias": [b]}, {"in_num_col_dims": 2, "activation_type": "relu"}),
    ]


# ---- reductions --------------------------------------------------------------------------------------
@case("softmax_reduce_argmax")
def _():
    x, a = data("x", [2, 3, 4])
    red = lambda t, dim, keep=False, all_=False: un("reduce_" + t, x, dim=dim, keep_dim=keep, reduce_all=all_)  # noqa: E731
    return [x], [a], [
        un("softmax", x, axis=1), red("sum", [0, 2]), red("mean", [-1], True), red("max", [1]), red("min", [0, 1, 2], False, True),
        un("arg_max", x, dtype="int64", axis=1, keepdims=False, flatten=False),
        un("arg_max", x, dtype="int64", axis=-1, keepdims=True, flatten=False),
    ]


# ---- layout and selection -------------------------------------------------------------------------------
def shaped(op_type, x, **attrs):
    return raw_op(op_type, {"X": [x]}, attrs, outputs=("Out", "XShape"))


@case("layout_ops")
def _():
    x, a = data("x", [2, 3, 1, 4])
    return [x], [a], [
        shaped("reshape2", x, shape=[0, -1, 2]), shaped("transpose2", x, axis=[3, 0, 2, 1]), shaped("squeeze2", x, axes=[2]),
        shaped("unsqueeze2", x, axes=[0, 3]), shaped("flatten_contiguous_range", x, start_axis=1, stop_axis=2),
        shaped("flatten2", x, axis=2),
    ]


@case("concat_split_stack")
def _():
    x, a = data("x", [2, 6, 3])
    y, b = data("y", [2, 2, 3])
    s = raw_op("split", {"X": [x]}, {"axis": 1, "sections": [1, -1, 2], "num": 0}, n_out=3)
    t = raw_op("split", {"X": [x]}, {"axis": 1, "sections": [], "num": 3}, n_out=3)
    y2 = un("scale", y, scale=2.0, bias=0.0, bias_after_scale=True)
    st = raw_op("stack", {"X": [y, y2]}, {"axis": 1}, outputs=("Y",))
    return [x, y], [a, b], [raw_op("concat", {"X": [x, y]}, {"axis": 1}), s[0], s[1], s[2], t[2], st]


@case("slices")
def _():
    x, a = data("x", [4, 5, 6])
    sl = lambda axes, st, en, dec=(): raw_op("slice", {"Input": [x]}, {"axes": axes, "starts": st, "ends": en, "decrease_axis": list(dec), "infer_flags": [1] * len(axes)})  # noqa: E731
    return [x], [a], [
        sl([0, 1], [1, -3], [3, 100]), sl([1], [2], [3], [1]), sl([0, 2], [-3, 1], [100, -1]),
        raw_op("strided_slice", {"Input": [x]}, {"axes": [0, 1, 2], "starts": [3, 4, -1], "ends": [0, 0, 0], "strides": [-1, -2, -2], "decrease_axis": [], "infer_flags": [1, 1, 1]}),
        raw_op("strided_slice", {"Input": [x]}, {"axes": [2], "starts": [0], "ends": [6], "strides": [2], "decrease_axis": [], "infer_flags": [1]}),
    ]


@case("gather_embedding")
def _():
    x, a = data("x", [4, 5])
    ids = paddle.static.data("ids", [2, 3], "int64")
    i = np.array([[1, 0, 3], [3, 2, 2]], dtype="int64")
    idx = paddle.static.data("idx", [3], "int32")
    j = np.array([4, 0, 2], dtype="int32")
    table = param("table", [4, 3])
    return [x, ids, idx], [a, i, j], [
        raw_op("gather", {"X": [x], "Index": [idx]}, {"axis": 1}),
        raw_op("lookup_table_v2", {"Ids": [ids], "W": [table]}, {"padding_idx": 2}),
        raw_op("lookup_table_v2", {"Ids": [ids], "W": [table]}, {"padding_idx": -1}),
    ]


@case("index_select")
def _():
    x, a = data("x", [3, 5, 4])
    idx = paddle.static.data("idx", [4], "int64")
    i = np.array([2, 0, 4, 2], dtype="int64")
    idx32 = paddle.static.data("idx32", [2], "int32")
    j = np.array([1, 2], dtype="int32")
    return [x, idx, idx32], [a, i, j], [
        raw_op("index_select", {"X": [x], "Index": [idx]}, {"dim": 1}),
        raw_op("index_select", {"X": [x], "Index": [idx32]}, {"dim": -1}),
        raw_op("index_select", {"X": [x], "Index": [idx32]}, {"dim": 0}),
    ]


@case("expand_v2_and_expand_as_v2")
def _():
    x, a = data("x", [3, 1, 4])
    y, b = data("y", [2, 3, 5, 4])
    i = paddle.static.data("i", [1, 2], "int64")
    ia = rng.integers(-5, 5, size=(1, 2)).astype("int64")
    n = paddle.shape(y)[0]  # a tensor-valued dim: expand_shapes_tensor
    return [x, y, i], [a, b, ia], [
        raw_op("expand_v2", {"X": [x]}, {"shape": [2, 3, 5, 4]}),
        raw_op("expand_v2", {"X": [x]}, {"shape": [-1, 6, -1]}),
        paddle.expand(x, [n, -1, 5, -1]),
        raw_op("expand_as_v2", {"X": [x], "Y": [y]}, {"target_shape": [2, 3, 5, 4]}),
        raw_op("expand_v2", {"X": [i]}, {"shape": [3, 2]}, out_dtype="int64"),
    ]


@case("pad3d_modes")
def _():
    x, a = data("x", [1, 2, 3, 4, 5])
    p = [1, 2, 0, 1, 2, 1]
    return [x], [a], [un("pad3d", x, paddings=p, mode=m, value=0.5, data_format="NCDHW") for m in ("constant", "reflect", "replicate", "circular")]


# ---- creation, compare, logical, where, cast -----------------------------------------------------------------------
@case("create_compare_where_cast")
def _():
    x, a = data("x", [3, 4])
    y, b = data("y", [4])
    n, c = data("n", [1], "int64", lo=3, hi=8)
    shp = raw_op("shape", {"Input": [x]}, {}, out_dtype="int32")
    full = raw_op("fill_constant", {}, {"shape": [2, 3], "value": 1.5, "dtype": 5, "str_value": "1.5"})
    like = un("fill_any_like", x, dtype="int32", value=7.0)
    zero = raw_op("fill_constant", {}, {"shape": [1], "value": 0.0, "dtype": 3, "str_value": "0"}, out_dtype="int64")
    two = raw_op("fill_constant", {}, {"shape": [1], "value": 2.0, "dtype": 3, "str_value": "2"}, out_dtype="int64")
    ar = raw_op("range", {"Start": [zero], "End": [n], "Step": [two]}, {}, out_dtype="int64")
    cmp = lambda t, p, q: raw_op(t, {"X": [p], "Y": [q]}, {"axis": -1}, out_dtype="bool")  # noqa: E731
    gt, le, eq, ne, ge = cmp("greater_than", x, y), cmp("less_equal", x, y), cmp("equal", x, y), cmp("not_equal", x, y), cmp("greater_equal", x, y)
    neg = cmp("less_than", x, raw_op("fill_constant", {}, {"shape": [1], "value": 0.0, "dtype": 5, "str_value": "0"}))
    lg = lambda t, p, q: raw_op(t, {"X": [p], "Y": [q]}, {}, out_dtype="bool")  # noqa: E731
    both = lg("logical_and", gt, un("logical_not", eq, dtype="bool"))
    either, xo = lg("logical_or", gt, le), lg("logical_xor", gt, neg)
    y2 = un("scale", y, scale=2.0, bias=0.0, bias_after_scale=True)
    w = raw_op("where", {"Condition": [gt], "X": [x], "Y": [raw_op("elementwise_add", {"X": [x], "Y": [y2]}, {"axis": -1})]}, {})
    c1 = un("cast", un("scale", x, scale=3.0, bias=0.0, bias_after_scale=True), dtype="int32", in_dtype=5, out_dtype=2)
    c2 = un("cast", gt, in_dtype=0, out_dtype=5)
    return [x, y, n], [a, b, c], [shp, full, like, ar, both, either, xo, w, c1, c2, ne, ge]


# ---- interpolation -----------------------------------------------------------------------------------------
@case("interp_variants")
def _():
    x, a = data("x", [1, 2, 4, 5])

    def it(kind, size=None, scale=(), ac=False, am=1):
        oh, ow = size if size else (-1, -1)
        return raw_op(kind + "_interp_v2", {"X": [x]}, {"out_h": oh, "out_w": ow, "out_d": -1, "scale": list(scale), "interp_method": kind, "align_corners": ac, "align_mode": am, "data_layout": "NCHW"})
    return [x], [a], [
        it("nearest", scale=(2.0, 2.0)), it("nearest", size=(7, 3)), it("nearest", size=(7, 9), ac=True),
        it("bilinear", size=(6, 9), am=0), it("bilinear", size=(6, 9), am=1), it("bilinear", size=(7, 8), ac=True),
        it("bilinear", scale=(1.5, 0.6), am=0),
    ]


@case("dynamic_batch_reshape_chain")
def _():
    # A dynamic batch with a shape → slice → reshape chain, fed at two batch sizes by the test.
    x, a = data("x", [3, 4, 6], feed_shape=[-1, 4, 6])
    shp = raw_op("shape", {"Input": [x]}, {}, out_dtype="int32")
    b = raw_op("slice", {"Input": [shp]}, {"axes": [0], "starts": [0], "ends": [1], "decrease_axis": [0], "infer_flags": [1]}, out_dtype="int32")
    m1 = raw_op("fill_constant", {}, {"shape": [1], "value": -1.0, "dtype": 2, "str_value": "-1"}, out_dtype="int32")
    k = raw_op("fill_constant", {}, {"shape": [1], "value": 2.0, "dtype": 2, "str_value": "2"}, out_dtype="int32")
    r = raw_op("reshape2", {"X": [x], "ShapeTensor": [b, m1, k]}, {"shape": [-1, -1, 2]}, outputs=("Out", "XShape"))
    return [x], [a], [r, un("reduce_sum", r, dim=[1], keep_dim=False, reduce_all=False)]


@case("cumsum_variants")
def _():
    x, a = data("x", [2, 3, 4])
    ids, b = data("ids", [2, 5], dtype="int64", lo=0, hi=9)

    def c(v, dtype="float32", **attrs):
        return raw_op("cumsum", {"X": [v]}, attrs, out_dtype=dtype)
    # ERNIE 3.0's position ids: the running count of ones, minus one.
    pos = paddle.cumsum(paddle.ones_like(ids), axis=-1) - 1
    return [x, ids], [a, b], [
        c(x, axis=-1), c(x, axis=0, exclusive=True), c(x, axis=1, reverse=True),
        c(x, axis=-2, exclusive=True, reverse=True), c(x, axis=-1, flatten=True),
        pos, c(ids, "int64", axis=1, reverse=True),
    ]


def main():
    only = set(sys.argv[1:])
    os.makedirs(OUT, exist_ok=True)
    exe = paddle.static.Executor(paddle.CPUPlace())
    index = []
    for name, fn in CASES:
        if only and name not in only:
            continue
        main_p, start_p = paddle.static.Program(), paddle.static.Program()
        with paddle.static.program_guard(main_p, start_p), paddle.utils.unique_name.guard():
            feeds, values, fetches = fn()
        exe.run(start_p)
        d = os.path.join(OUT, name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        prefix = os.path.join(d, "model")
        paddle.static.save_inference_model(prefix, feeds, fetches, exe, program=main_p)
        prog, feed_names, fetch_targets = paddle.static.load_inference_model(prefix, exe)
        outs = exe.run(prog, feed=dict(zip(feed_names, values)), fetch_list=fetch_targets)
        for n, v in zip(feed_names, values):
            np.save(os.path.join(d, f"input_{n}.npy"), v)
        for i, o in enumerate(outs):
            np.save(os.path.join(d, f"output_{i}.npy"), np.asarray(o))
        index.append({"name": name, "inputs": feed_names, "outputs": len(outs)})
        print(f"{name}: {len(outs)} outputs")
    if only:
        # Regenerated cases replace their entries; the others stay as they are.
        with open(os.path.join(OUT, "cases.json")) as f:
            old = json.load(f)["cases"]
        index = [c for c in old if c["name"] not in only] + index
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"generated_by": "scripts/gen_op_cases.py with paddlepaddle " + paddle.__version__, "cases": index}, f, indent=1)


if __name__ == "__main__":
    main()
