"""Legacy-ProgramDesc export shims for Paddle 3.3.

Paddle 3.3 binds ~57 Python APIs (paddle.matmul, paddle.multiply, paddle.roll, F.gelu, ...)
straight to C++ functions that accept dygraph Tensors or PIR Values only; with
FLAGS_enable_pir_api=0 (legacy ProgramDesc mode) they raise "argument must be Value, but got
Variable", so `paddle.jit.save` cannot write a .pdmodel of any model that calls them. When
handed a legacy static Variable, each shim here appends the legacy op Paddle 2.x emitted for
the call (the op and attribute names of Paddle's legacy op definitions); dygraph and PIR calls
pass through untouched. `install()` patches every module that exposes the API.
"""
import importlib

import paddle

UNARY = ["abs", "acos", "acosh", "asin", "atanh", "ceil", "cos", "cosh", "exp", "expm1", "floor",
         "log", "log10", "log1p", "log2", "round", "rsqrt", "sigmoid", "sign", "sin", "sinh",
         "sqrt", "tanh"]
MODULES = ("paddle", "paddle.tensor", "paddle.tensor.linalg", "paddle.tensor.math",
           "paddle.tensor.ops", "paddle.tensor.logic", "paddle.tensor.manipulation",
           "paddle.tensor.search", "paddle.tensor.creation", "paddle.nn.functional",
           "paddle.nn.functional.activation", "paddle.nn.functional.vision")


def _axes(axis):
    if axis is None:
        return [], True
    if isinstance(axis, int):
        return [axis], False
    return list(axis), False


def install():
    from paddle.base.framework import Variable
    from paddle.base.layer_helper import LayerHelper

    def op(op_type, inputs, attrs, dtype, out="Out"):
        helper = LayerHelper(op_type)
        o = helper.create_variable_for_type_inference(dtype)
        helper.append_op(type=op_type, inputs=inputs, outputs={out: [o]}, attrs=attrs)
        return o

    def unary(op_type):
        return lambda x, name=None: op(op_type, {"X": [x]}, {}, x.dtype)

    def binary(op_type, dtype=None):
        def f(x, y, name=None):
            return op(op_type, {"X": [x], "Y": [y]}, {"axis": -1}, dtype or x.dtype)
        return f

    def reduce(op_type, dtype=None):
        def f(x, axis=None, keepdim=False, name=None, **_):
            dims, all_ = _axes(axis)
            return op(op_type, {"X": [x]}, {"dim": dims, "keep_dim": bool(keepdim),
                                            "reduce_all": all_}, dtype or x.dtype)
        return f

    def arg(op_type):
        def f(x, axis=None, keepdim=False, dtype="int64", name=None):
            return op(op_type, {"X": [x]}, {"axis": 0 if axis is None else int(axis),
                                            "keepdims": bool(keepdim), "flatten": axis is None,
                                            "dtype": paddle.base.framework.convert_np_dtype_to_dtype_(dtype)},
                      dtype)
        return f

    def tril_triu(lower):
        def f(x, diagonal=0, name=None):
            return op("tril_triu", {"X": [x]}, {"diagonal": int(diagonal), "lower": lower}, x.dtype)
        return f

    def roll(x, shifts, axis=None, name=None):
        shifts = [shifts] if isinstance(shifts, int) else list(shifts)
        axis = [] if axis is None else ([axis] if isinstance(axis, int) else list(axis))
        return op("roll", {"X": [x]}, {"shifts": shifts, "axis": axis}, x.dtype)

    def logsumexp(x, axis=None, keepdim=False, name=None):
        dims, all_ = _axes(axis)
        return op("logsumexp", {"X": [x]}, {"axis": dims, "keepdim": bool(keepdim),
                                            "reduce_all": all_}, x.dtype)

    def expand_as(x, y, name=None):
        return op("expand_as_v2", {"X": [x], "Y": [y]}, {"target_shape": list(y.shape)}, x.dtype)

    shims = {u: unary(u) for u in UNARY}
    shims.update({
        "matmul": lambda x, y, transpose_x=False, transpose_y=False, name=None: op(
            "matmul_v2", {"X": [x], "Y": [y]},
            {"trans_x": bool(transpose_x), "trans_y": bool(transpose_y)}, x.dtype),
        "bmm": lambda x, y, name=None: op("bmm", {"X": [x], "Y": [y]}, {}, x.dtype),
        "multiply": binary("elementwise_mul"),
        "maximum": binary("elementwise_max"),
        "minimum": binary("elementwise_min"),
        "greater_than": binary("greater_than", "bool"),
        "logical_and": binary("logical_and", "bool"),
        "logical_or": binary("logical_or", "bool"),
        "logical_xor": binary("logical_xor", "bool"),
        "logical_not": lambda x, out=None, name=None: op("logical_not", {"X": [x]}, {}, "bool"),
        "isnan": lambda x, name=None: op("isnan_v2", {"X": [x]}, {}, "bool"),
        "isinf": lambda x, name=None: op("isinf_v2", {"X": [x]}, {}, "bool"),
        "isfinite": lambda x, name=None: op("isfinite_v2", {"X": [x]}, {}, "bool"),
        "gelu": lambda x, approximate=False, name=None: op(
            "gelu", {"X": [x]}, {"approximate": bool(approximate)}, x.dtype),
        "softplus": lambda x, beta=1, threshold=20, name=None: op(
            "softplus", {"X": [x]}, {"beta": float(beta), "threshold": float(threshold)}, x.dtype),
        "sum": reduce("reduce_sum"),
        "amax": reduce("reduce_max"),
        "amin": reduce("reduce_min"),
        "all": reduce("reduce_all", "bool"),
        "any": reduce("reduce_any", "bool"),
        "argmax": arg("arg_max"),
        "argmin": arg("arg_min"),
        "tril": tril_triu(True),
        "triu": tril_triu(False),
        "roll": roll,
        "logsumexp": logsumexp,
        "expand_as": expand_as,
    })

    def wrap(orig, legacy):
        @paddle.jit.not_to_static
        def f(*args, **kwargs):
            first = args[0] if args else next(iter(kwargs.values()))
            if not paddle.in_dynamic_mode() and isinstance(first, Variable):
                return legacy(*args, **kwargs)
            return orig(*args, **kwargs)
        f.__name__ = getattr(orig, "__name__", "shim")
        f.__kayak_shim__ = True
        return f

    for m in MODULES:
        try:
            mod = importlib.import_module(m)
        except ImportError:
            continue
        for name, fn in shims.items():
            cur = vars(mod).get(name)
            if cur is not None and not getattr(cur, "__kayak_shim__", False):
                setattr(mod, name, wrap(cur, fn))
    # Tensor methods (x.matmul(y), x.roll(...)) go through the same functions.
    from paddle.base.framework import Variable as V
    for name in shims:
        cur = getattr(V, name, None)
        if cur is not None and not getattr(cur, "__kayak_shim__", False):
            setattr(V, name, wrap(cur, shims[name]))
