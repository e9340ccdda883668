//! Each PIR op and its legacy counterpart: operand order to legacy parameter names, result
//! order to legacy output names, renamed attributes and attributes the legacy op needs set.
//! PIR passes many legacy attributes as operands made by `pd_op.full_int_array` or
//! `pd_op.full`; those fold back into the attribute when constant, as Paddle's own
//! translator does in reverse. This table is the only place PIR op names live.

/// How one operand of a PIR op reaches its legacy counterpart.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg {
    /// A tensor input of this legacy parameter.
    In(&'static str),
    /// An optional tensor input (the null value: absent).
    Opt(&'static str),
    /// A `builtin.combine` list (or one value) to this parameter; null: absent.
    List(&'static str),
    /// A constant int array folded into this list attribute, else (not constant) the
    /// tensor input named second; `None`: the operand must be constant.
    Ints(&'static str, Option<&'static str>),
    /// A constant scalar folded into this integer attribute, else the tensor input.
    Int(&'static str, Option<&'static str>),
    /// A constant scalar folded into this float attribute, else the tensor input.
    Float(&'static str, Option<&'static str>),
    /// Not used by inference (dropout's seed tensor).
    Skip,
}

/// An attribute value the legacy op needs that PIR does not carry.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fixed {
    Int(i64),
}

/// One PIR op.
pub(crate) struct Entry {
    /// The PIR op (in the `pd_op` dialect), without a trailing `_` of in-place variants.
    pub pir: &'static str,
    /// The legacy op type.
    pub legacy: &'static str,
    /// Operands in PIR order.
    pub args: &'static [Arg],
    /// Legacy output parameter per PIR result, in order (extra results are unnamed).
    pub outs: &'static [&'static str],
    /// PIR attribute name → legacy name.
    pub rename: &'static [(&'static str, &'static str)],
    /// Attributes set on the legacy op.
    pub set: &'static [(&'static str, Fixed)],
}

use Arg::*;

const X: &[Arg] = &[In("X")];
const XY: &[Arg] = &[In("X"), In("Y")];
const OUT: &[&str] = &["Out"];
const OUT_XSHAPE: &[&str] = &["Out", "XShape"];
const AXIS_LAST: &[(&str, Fixed)] = &[("axis", Fixed::Int(-1))];

const fn e(pir: &'static str, legacy: &'static str, args: &'static [Arg]) -> Entry {
    Entry {
        pir,
        legacy,
        args,
        outs: OUT,
        rename: &[],
        set: &[],
    }
}

const fn bin(pir: &'static str, legacy: &'static str) -> Entry {
    Entry {
        pir,
        legacy,
        args: XY,
        outs: OUT,
        rename: &[],
        set: AXIS_LAST,
    }
}

const CONV: &[Arg] = &[In("Input"), In("Filter")];
const CONV_T: &[Arg] = &[In("Input"), In("Filter"), Ints("output_size", None)];
const REDUCE: &[Arg] = &[In("X"), Ints("dim", None)];
const KEEPDIM: &[(&str, &str)] = &[("keepdim", "keep_dim")];
const INTERP: &[Arg] = &[In("X"), Opt("OutSize"), List("SizeTensor"), Opt("Scale")];

/// The table.
pub(crate) const TABLE: &[Entry] = &[
    Entry {
        outs: &["Output"],
        ..e("conv2d", "conv2d", CONV)
    },
    Entry {
        outs: &["Output"],
        ..e("depthwise_conv2d", "depthwise_conv2d", CONV)
    },
    Entry {
        outs: &["Output"],
        ..e("conv2d_transpose", "conv2d_transpose", CONV_T)
    },
    Entry {
        outs: &["Output"],
        ..e(
            "depthwise_conv2d_transpose",
            "depthwise_conv2d_transpose",
            CONV_T,
        )
    },
    e("pool2d", "pool2d", &[In("X"), Ints("ksize", None)]),
    Entry {
        outs: &["Out", "Mask"],
        rename: &[("kernel_size", "ksize")],
        ..e("max_pool2d_with_index", "max_pool2d_with_index", X)
    },
    Entry {
        outs: &[
            "Y",
            "MeanOut",
            "VarianceOut",
            "SavedMean",
            "SavedVariance",
            "ReserveSpace",
        ],
        rename: &[("data_format", "data_layout")],
        ..e(
            "batch_norm",
            "batch_norm",
            &[
                In("X"),
                In("Mean"),
                In("Variance"),
                Opt("Scale"),
                Opt("Bias"),
            ],
        )
    },
    Entry {
        outs: &["Y", "Mean", "Variance"],
        ..e(
            "layer_norm",
            "layer_norm",
            &[In("X"), Opt("Scale"), Opt("Bias")],
        )
    },
    bin("add", "elementwise_add"),
    bin("subtract", "elementwise_sub"),
    bin("multiply", "elementwise_mul"),
    bin("divide", "elementwise_div"),
    bin("elementwise_pow", "elementwise_pow"),
    bin("maximum", "elementwise_max"),
    bin("minimum", "elementwise_min"),
    bin("remainder", "elementwise_mod"),
    bin("floor_divide", "elementwise_floordiv"),
    bin("equal", "equal"),
    bin("not_equal", "not_equal"),
    bin("less_than", "less_than"),
    bin("less_equal", "less_equal"),
    bin("greater_than", "greater_than"),
    bin("greater_equal", "greater_equal"),
    e("logical_and", "logical_and", XY),
    e("logical_or", "logical_or", XY),
    e("logical_xor", "logical_xor", XY),
    e("logical_not", "logical_not", X),
    e("where", "where", &[In("Condition"), In("X"), In("Y")]),
    e("relu", "relu", X),
    e("relu6", "relu6", X),
    Entry {
        rename: &[("negative_slope", "alpha")],
        ..e("leaky_relu", "leaky_relu", X)
    },
    e("hardswish", "hard_swish", X),
    e("hardsigmoid", "hard_sigmoid", X),
    e("sigmoid", "sigmoid", X),
    e("swish", "swish", X),
    e("silu", "silu", X),
    e("gelu", "gelu", X),
    e("tanh", "tanh", X),
    e("exp", "exp", X),
    e("log", "log", X),
    e("sqrt", "sqrt", X),
    e("rsqrt", "rsqrt", X),
    e("abs", "abs", X),
    e("square", "square", X),
    e("reciprocal", "reciprocal", X),
    e("floor", "floor", X),
    e("ceil", "ceil", X),
    e("erf", "erf", X),
    e("sin", "sin", X),
    e("cos", "cos", X),
    e("tan", "tan", X),
    e("asin", "asin", X),
    e("acos", "acos", X),
    e("atan", "atan", X),
    e("sinh", "sinh", X),
    e("cosh", "cosh", X),
    e("asinh", "asinh", X),
    e("acosh", "acosh", X),
    e("atanh", "atanh", X),
    e("sign", "sign", X),
    e("softsign", "softsign", X),
    e("elu", "elu", X),
    e("selu", "selu", X),
    e("celu", "celu", X),
    e("thresholded_relu", "thresholded_relu", X),
    Entry {
        rename: &[("y", "factor")],
        ..e("pow", "pow", X)
    },
    e(
        "clip",
        "clip",
        &[
            In("X"),
            Float("min", Some("Min")),
            Float("max", Some("Max")),
        ],
    ),
    e(
        "scale",
        "scale",
        &[In("X"), Float("scale", Some("ScaleTensor"))],
    ),
    e("prelu", "prelu", &[In("X"), In("Alpha")]),
    Entry {
        outs: &["Out", "Mask"],
        rename: &[("mode", "dropout_implementation")],
        ..e(
            "dropout",
            "dropout",
            &[In("X"), Skip, Float("dropout_prob", None)],
        )
    },
    e("assign", "assign", X),
    Entry {
        rename: &[("transpose_x", "trans_x"), ("transpose_y", "trans_y")],
        ..e("matmul", "matmul_v2", XY)
    },
    e("fc", "fc", &[In("Input"), In("W"), Opt("Bias")]),
    e("softmax", "softmax", X),
    Entry {
        rename: KEEPDIM,
        ..e("sum", "reduce_sum", REDUCE)
    },
    Entry {
        rename: KEEPDIM,
        ..e("mean", "reduce_mean", REDUCE)
    },
    Entry {
        rename: KEEPDIM,
        ..e("max", "reduce_max", REDUCE)
    },
    Entry {
        rename: KEEPDIM,
        ..e("min", "reduce_min", REDUCE)
    },
    e("prod", "reduce_prod", REDUCE),
    e("argmax", "arg_max", &[In("X"), Int("axis", None)]),
    e("cumsum", "cumsum", &[In("X"), Int("axis", None)]),
    Entry {
        outs: OUT_XSHAPE,
        ..e(
            "reshape",
            "reshape2",
            &[In("X"), Ints("shape", Some("Shape"))],
        )
    },
    Entry {
        outs: OUT_XSHAPE,
        rename: &[("perm", "axis")],
        ..e("transpose", "transpose2", X)
    },
    Entry {
        outs: OUT_XSHAPE,
        ..e("squeeze", "squeeze2", &[In("X"), Ints("axes", None)])
    },
    Entry {
        outs: OUT_XSHAPE,
        ..e("unsqueeze", "unsqueeze2", &[In("X"), Ints("axes", None)])
    },
    Entry {
        outs: OUT_XSHAPE,
        ..e("flatten", "flatten_contiguous_range", X)
    },
    e(
        "concat",
        "concat",
        &[List("X"), Int("axis", Some("AxisTensor"))],
    ),
    e(
        "split",
        "split",
        &[In("X"), Ints("sections", None), Int("axis", None)],
    ),
    e("split_with_num", "split", &[In("X"), Int("axis", None)]),
    Entry {
        outs: &["Y"],
        ..e("stack", "stack", &[List("X")])
    },
    e(
        "slice",
        "slice",
        &[
            In("Input"),
            Ints("starts", Some("StartsTensor")),
            Ints("ends", Some("EndsTensor")),
        ],
    ),
    e(
        "strided_slice",
        "strided_slice",
        &[
            In("Input"),
            Ints("starts", None),
            Ints("ends", None),
            Ints("strides", None),
        ],
    ),
    e(
        "gather",
        "gather",
        &[In("X"), In("Index"), Int("axis", None)],
    ),
    Entry {
        rename: &[("axis", "dim")],
        ..e("index_select", "index_select", &[In("X"), In("Index")])
    },
    e("embedding", "lookup_table_v2", &[In("Ids"), In("W")]),
    Entry {
        outs: &["Result"],
        rename: &[("axis", "Axis")],
        ..e(
            "take_along_axis",
            "take_along_axis",
            &[In("Input"), In("Index")],
        )
    },
    Entry {
        rename: &[("pad_value", "value")],
        ..e("pad3d", "pad3d", &[In("X"), Ints("paddings", None)])
    },
    Entry {
        rename: &[("data_format", "data_layout")],
        ..e("nearest_interp", "nearest_interp_v2", INTERP)
    },
    Entry {
        rename: &[("data_format", "data_layout")],
        ..e("bilinear_interp", "bilinear_interp_v2", INTERP)
    },
    e("shape", "shape", &[In("Input")]),
    e("shape64", "shape64", &[In("Input")]),
    e("full", "fill_constant", &[]),
    e(
        "expand",
        "expand_v2",
        &[In("X"), Ints("shape", Some("Shape"))],
    ),
    e("expand_as", "expand_as_v2", &[In("X"), Opt("Y")]),
    e(
        "full_with_tensor",
        "fill_constant",
        &[
            Float("value", Some("ValueTensor")),
            Ints("shape", Some("ShapeTensor")),
        ],
    ),
    e(
        "full_like",
        "fill_any_like",
        &[In("X"), Float("value", None)],
    ),
    e("arange", "range", &[In("Start"), In("End"), In("Step")]),
    Entry {
        rename: &[("dtype", "out_dtype")],
        ..e("cast", "cast", X)
    },
];

/// The entry of a `pd_op` op (its in-place variant `relu_` is `relu`).
pub(crate) fn entry(short: &str) -> Option<&'static Entry> {
    let find = |n: &str| TABLE.iter().find(|e| e.pir == n);
    find(short).or_else(|| short.strip_suffix('_').and_then(find))
}
