//! The registry of Paddle op types: each converter reads one `OpDesc` into a typed
//! [`Op`] with its input and output variable names. Op-type strings of the format live
//! here and nowhere else.

use super::ctx::OpCtx;
use crate::params::dtype_from_paddle;
use crate::Result;
use kayak_ir::ops::*;
use kayak_ir::{DType, Op};
use std::collections::HashMap;

pub use crate::build::Converted;

/// Reads one op into one or more IR nodes (in order; intermediate names from
/// [`OpCtx::tmp`]).
pub type Converter = fn(&OpCtx<'_>) -> Result<Vec<Converted>>;

fn done(op: Op, inputs: Vec<String>, out: String) -> Result<Vec<Converted>> {
    Ok(vec![node(op, inputs, out)])
}

/// One IR node with one output.
fn node(op: Op, inputs: Vec<String>, out: String) -> Converted {
    Converted {
        op,
        inputs,
        outputs: vec![out],
    }
}

/// The converters by Paddle op type.
pub fn registry() -> HashMap<&'static str, Converter> {
    let mut r: HashMap<&'static str, Converter> = HashMap::new();
    r.insert("conv2d", conv2d);
    r.insert("depthwise_conv2d", conv2d);
    r.insert("conv2d_transpose", conv2d_transpose);
    r.insert("depthwise_conv2d_transpose", conv2d_transpose);
    r.insert("pool2d", pool2d);
    r.insert("max_pool2d_with_index", max_pool2d_with_index);
    r.insert("batch_norm", batch_norm);
    r.insert("layer_norm", layer_norm);
    r.insert("elementwise_add", |c| binary(c, BinaryOp::Add));
    r.insert("elementwise_sub", |c| binary(c, BinaryOp::Sub));
    r.insert("elementwise_mul", |c| binary(c, BinaryOp::Mul));
    r.insert("elementwise_div", |c| binary(c, BinaryOp::Div));
    r.insert("elementwise_pow", |c| binary(c, BinaryOp::Pow));
    r.insert("elementwise_max", |c| binary(c, BinaryOp::Max));
    r.insert("elementwise_min", |c| binary(c, BinaryOp::Min));
    r.insert("elementwise_mod", |c| binary(c, BinaryOp::Mod));
    r.insert("elementwise_floordiv", |c| binary(c, BinaryOp::FloorDiv));
    r.insert("equal", |c| compare(c, CmpOp::Eq));
    r.insert("not_equal", |c| compare(c, CmpOp::Ne));
    r.insert("less_than", |c| compare(c, CmpOp::Lt));
    r.insert("less_equal", |c| compare(c, CmpOp::Le));
    r.insert("greater_than", |c| compare(c, CmpOp::Gt));
    r.insert("greater_equal", |c| compare(c, CmpOp::Ge));
    r.insert("logical_and", |c| logical(c, LogicalOp::And));
    r.insert("logical_or", |c| logical(c, LogicalOp::Or));
    r.insert("logical_xor", |c| logical(c, LogicalOp::Xor));
    r.insert("logical_not", |c| x(c, Op::LogicalNot(LogicalNot)));
    r.insert("where", |c| {
        done(
            Op::Where(Where),
            vec![c.input("Condition")?, c.input("X")?, c.input("Y")?],
            c.output("Out")?,
        )
    });
    r.insert("relu", |c| unary(c, UnaryOp::Relu));
    r.insert("relu6", |c| {
        let threshold = c.f32_or("threshold", 6.0)?;
        unary(c, UnaryOp::Relu6 { threshold })
    });
    r.insert("leaky_relu", |c| {
        let alpha = c.f32_or("alpha", 0.02)?;
        unary(c, UnaryOp::LeakyRelu { alpha })
    });
    r.insert("hard_swish", |c| {
        let u = UnaryOp::HardSwish {
            threshold: c.f32_or("threshold", 6.0)?,
            scale: c.f32_or("scale", 6.0)?,
            offset: c.f32_or("offset", 3.0)?,
        };
        if let UnaryOp::HardSwish { scale, .. } = u {
            if scale == 0.0 {
                return Err(c.bad("scale", "must not be 0"));
            }
        }
        unary(c, u)
    });
    r.insert("hard_sigmoid", |c| {
        let u = UnaryOp::HardSigmoid {
            slope: c.f32_or("slope", 0.2)?,
            offset: c.f32_or("offset", 0.5)?,
        };
        unary(c, u)
    });
    r.insert("sigmoid", |c| unary(c, UnaryOp::Sigmoid));
    r.insert("swish", |c| {
        let beta = c.f32_or("beta", 1.0)?;
        unary(c, UnaryOp::Swish { beta })
    });
    r.insert("silu", |c| unary(c, UnaryOp::Swish { beta: 1.0 }));
    r.insert("gelu", |c| {
        let approximate = c.bool_or("approximate", false)?;
        unary(c, UnaryOp::Gelu { approximate })
    });
    r.insert("tanh", |c| unary(c, UnaryOp::Tanh));
    r.insert("exp", |c| unary(c, UnaryOp::Exp));
    r.insert("log", |c| unary(c, UnaryOp::Log));
    r.insert("sqrt", |c| unary(c, UnaryOp::Sqrt));
    r.insert("rsqrt", |c| unary(c, UnaryOp::Rsqrt));
    r.insert("abs", |c| unary(c, UnaryOp::Abs));
    r.insert("square", |c| unary(c, UnaryOp::Square));
    r.insert("reciprocal", |c| unary(c, UnaryOp::Reciprocal));
    r.insert("floor", |c| unary(c, UnaryOp::Floor));
    r.insert("ceil", |c| unary(c, UnaryOp::Ceil));
    r.insert("erf", |c| unary(c, UnaryOp::Erf));
    r.insert("sin", |c| unary(c, UnaryOp::Sin));
    r.insert("cos", |c| unary(c, UnaryOp::Cos));
    r.insert("tan", |c| unary(c, UnaryOp::Tan));
    r.insert("asin", |c| unary(c, UnaryOp::Asin));
    r.insert("acos", |c| unary(c, UnaryOp::Acos));
    r.insert("atan", |c| unary(c, UnaryOp::Atan));
    r.insert("sinh", |c| unary(c, UnaryOp::Sinh));
    r.insert("cosh", |c| unary(c, UnaryOp::Cosh));
    r.insert("asinh", |c| unary(c, UnaryOp::Asinh));
    r.insert("acosh", |c| unary(c, UnaryOp::Acosh));
    r.insert("atanh", |c| unary(c, UnaryOp::Atanh));
    r.insert("sign", |c| unary(c, UnaryOp::Sign));
    r.insert("softsign", |c| unary(c, UnaryOp::Softsign));
    r.insert("elu", |c| {
        let alpha = c.f32_or("alpha", 1.0)?;
        unary(c, UnaryOp::Elu { alpha })
    });
    r.insert("selu", |c| {
        let u = UnaryOp::Selu {
            alpha: c.f32_or("alpha", 1.673_263_2)?,
            gamma: c.f32_or("scale", 1.050_701)?,
        };
        unary(c, u)
    });
    r.insert("celu", |c| {
        let alpha = c.f32_or("alpha", 1.0)?;
        if alpha == 0.0 {
            return Err(c.bad("alpha", "must not be 0"));
        }
        unary(c, UnaryOp::Celu { alpha })
    });
    r.insert("thresholded_relu", |c| {
        let alpha = c.f32_or("threshold", 1.0)?;
        unary(c, UnaryOp::ThresholdedRelu { alpha })
    });

    r.insert("pow", |c| {
        c.reject_inputs(&["FactorTensor"])?;
        let factor = c.f32_or("factor", 1.0)?;
        unary(c, UnaryOp::PowScalar { factor })
    });
    r.insert("clip", |c| {
        c.reject_inputs(&["Min", "Max"])?;
        let (min, max) = (c.f32_or("min", f32::MIN)?, c.f32_or("max", f32::MAX)?);
        if min > max {
            return Err(c.bad("min", format!("min {min} > max {max}")));
        }
        unary(c, UnaryOp::Clip { min, max })
    });
    r.insert("scale", |c| {
        c.reject_inputs(&["ScaleTensor", "BiasTensor"])?;
        let u = UnaryOp::Scale {
            scale: c.f32_or("scale", 1.0)?,
            bias: c.f32_or("bias", 0.0)?,
            bias_after_scale: c.bool_or("bias_after_scale", true)?,
        };
        unary(c, u)
    });
    r.insert("prelu", prelu);
    r.insert("dropout", dropout);
    r.insert("assign", |c| x(c, Op::Identity(Identity)));
    r.insert("matmul", |c| {
        let m = MatMul {
            trans_x: c.bool_or("transpose_X", false)?,
            trans_y: c.bool_or("transpose_Y", false)?,
            alpha: c.f32_or("alpha", 1.0)?,
        };
        xy(c, Op::MatMul(m))
    });
    r.insert("matmul_v2", |c| {
        let m = MatMul {
            trans_x: c.bool_or("trans_x", false)?,
            trans_y: c.bool_or("trans_y", false)?,
            alpha: 1.0,
        };
        xy(c, Op::MatMul(m))
    });
    r.insert("mul", |c| {
        let m = Mul {
            x_num_col_dims: pos(c, "x_num_col_dims", 1)?,
            y_num_col_dims: pos(c, "y_num_col_dims", 1)?,
        };
        xy(c, Op::Mul(m))
    });
    r.insert("fc", fc);
    r.insert("softmax", |c| {
        let axis = c.i64_or("axis", -1)?;
        x(c, Op::Softmax(Softmax { axis }))
    });
    r.insert("reduce_sum", |c| reduce(c, ReduceKind::Sum));
    r.insert("reduce_mean", |c| reduce(c, ReduceKind::Mean));
    r.insert("reduce_max", |c| reduce(c, ReduceKind::Max));
    r.insert("reduce_min", |c| reduce(c, ReduceKind::Min));
    r.insert("reduce_prod", |c| reduce(c, ReduceKind::Prod));
    r.insert("arg_max", arg_max);
    r.insert("cumsum", cumsum);
    r.insert("reshape2", reshape);
    r.insert("reshape", reshape);
    r.insert("transpose2", transpose);
    r.insert("transpose", transpose);
    r.insert("squeeze2", |c| {
        let s = Squeeze {
            axes: c.ints("axes")?,
        };
        x(c, Op::Squeeze(s))
    });
    r.insert("squeeze", |c| {
        let s = Squeeze {
            axes: c.ints("axes")?,
        };
        x(c, Op::Squeeze(s))
    });
    r.insert("unsqueeze2", unsqueeze);
    r.insert("unsqueeze", unsqueeze);
    r.insert("flatten2", |c| {
        let axis = pos(c, "axis", 1).or_else(|_| c.i64_or("axis", 1).map(|a| a.max(0) as usize))?;
        x(c, Op::Flatten(Flatten::To2d { axis }))
    });
    r.insert("flatten", |c| {
        let axis = c.i64_or("axis", 1)?;
        if axis < 0 {
            return Err(c.bad("axis", format!("{axis} is negative")));
        }
        x(
            c,
            Op::Flatten(Flatten::To2d {
                axis: axis as usize,
            }),
        )
    });
    r.insert("flatten_contiguous_range", |c| {
        let f = Flatten::Range {
            start: c.i64_or("start_axis", 1)?,
            stop: c.i64_or("stop_axis", -1)?,
        };
        x(c, Op::Flatten(f))
    });
    r.insert("concat", |c| {
        c.reject_inputs(&["AxisTensor"])?;
        let axis = c.i64_or("axis", 0)?;
        done(
            Op::Concat(Concat { axis }),
            c.inputs("X").to_vec(),
            c.output("Out")?,
        )
    });
    r.insert("split", split);
    r.insert("stack", |c| {
        let axis = c.i64_or("axis", 0)?;
        done(
            Op::Stack(Stack { axis }),
            c.inputs("X").to_vec(),
            c.output("Y")?,
        )
    });
    r.insert("slice", slice);
    r.insert("strided_slice", strided_slice);
    r.insert("gather", |c| {
        c.reject_inputs(&["Axis"])?;
        let axis = c.i64_or("axis", 0)?;
        done(
            Op::Gather(Gather { axis }),
            vec![c.input("X")?, c.input("Index")?],
            c.output("Out")?,
        )
    });
    r.insert("expand_v2", expand);
    r.insert("expand_as_v2", expand_as);
    r.insert("index_select", |c| {
        // out = x gathered by a 1-D index along `dim`: a gather on that axis.
        let axis = c.i64_or("dim", 0)?;
        done(
            Op::Gather(Gather { axis }),
            vec![c.input("X")?, c.input("Index")?],
            c.output("Out")?,
        )
    });
    r.insert("take_along_axis", |c| {
        let g = GatherElements {
            axis: c.i64_or("Axis", 0)?,
        };
        done(
            Op::GatherElements(g),
            vec![c.input("Input")?, c.input("Index")?],
            c.output("Result")?,
        )
    });
    r.insert("lookup_table_v2", |c| {
        let p = c.i64_or("padding_idx", -1)?;
        let padding_idx = if p == -1 { None } else { Some(p) };
        done(
            Op::Embedding(Embedding { padding_idx }),
            vec![c.input("Ids")?, c.input("W")?],
            c.output("Out")?,
        )
    });
    r.insert("pad3d", pad3d);
    r.insert("nearest_interp_v2", |c| interp(c, InterpMode::Nearest));
    r.insert("bilinear_interp_v2", |c| interp(c, InterpMode::Bilinear));
    r.insert("shape", |c| {
        done(
            Op::Shape(ShapeOf {
                i64: c.op_type() == "shape64",
            }),
            vec![c.input("Input")?],
            c.output("Out")?,
        )
    });
    r.insert("shape64", r["shape"]);
    r.insert("fill_constant", fill_constant);
    r.insert("fill_any_like", |c| {
        let value = c.f64("value")?.unwrap_or(0.0);
        let d = c.i64_or("dtype", -1)?;
        let dtype = if d < 0 {
            None
        } else {
            Some(dtype_attr(c, "dtype", d)?)
        };
        x(c, Op::FillAnyLike(FillAnyLike { value, dtype }))
    });
    r.insert("range", |c| {
        done(
            Op::Range(Range {}),
            vec![c.input("Start")?, c.input("End")?, c.input("Step")?],
            c.output("Out")?,
        )
    });
    r.insert("cast", |c| {
        let to = dtype_attr(c, "out_dtype", c.i64_or("out_dtype", -1)?)?;
        x(c, Op::Cast(Cast { to }))
    });
    r
}

fn dtype_attr(c: &OpCtx<'_>, name: &str, v: i64) -> Result<DType> {
    dtype_from_paddle(v as i32).ok_or_else(|| c.bad(name, format!("unsupported data type {v}")))
}

fn pos(c: &OpCtx<'_>, name: &str, default: i64) -> Result<usize> {
    let v = c.i64_or(name, default)?;
    usize::try_from(v).map_err(|_| c.bad(name, format!("{v} is negative")))
}

fn layout(c: &OpCtx<'_>, name: &str) -> Result<Layout> {
    match c.str_or(name, "NCHW")?.as_str() {
        "NCHW" | "AnyLayout" | "NCDHW" => Ok(Layout::Nchw),
        "NHWC" | "NDHWC" => Ok(Layout::Nhwc),
        other => Err(c.bad(name, format!("unknown layout `{other}`"))),
    }
}

/// Paddle's `paddings` + `padding_algorithm` for 2-D ops: `[h, w]` or `[top, bottom, left, right]`.
fn padding(c: &OpCtx<'_>) -> Result<Padding> {
    match c.str_or("padding_algorithm", "EXPLICIT")?.as_str() {
        "SAME" => return Ok(Padding::Same),
        "VALID" => return Ok(Padding::Valid),
        "EXPLICIT" | "" => {}
        other => return Err(c.bad("padding_algorithm", format!("unknown `{other}`"))),
    }
    let p = c.ints("paddings")?;
    if p.iter().any(|&v| v < 0) {
        return Err(c.bad("paddings", format!("negative padding in {p:?}")));
    }
    let p: Vec<usize> = p.iter().map(|&v| v as usize).collect();
    match p.len() {
        0 => Ok(Padding::Explicit([0; 4])),
        2 => Ok(Padding::Explicit([p[0], p[0], p[1], p[1]])),
        4 => Ok(Padding::Explicit([p[0], p[1], p[2], p[3]])),
        n => Err(c.bad("paddings", format!("expected 2 or 4 values, got {n}"))),
    }
}

fn pair(c: &OpCtx<'_>, name: &str, default: usize) -> Result<[usize; 2]> {
    let v = c.usizes(name, 2, &[default, default])?;
    Ok([v[0], v[1]])
}

/// The attributes conv2d and conv2d_transpose share: strides, padding, dilations, groups,
/// layout.
type ConvAttrs = ([usize; 2], Padding, [usize; 2], usize, Layout);

fn conv_attrs(c: &OpCtx<'_>) -> Result<ConvAttrs> {
    Ok((
        pair(c, "strides", 1)?,
        padding(c)?,
        pair(c, "dilations", 1)?,
        pos(c, "groups", 1)?,
        layout(c, "data_format")?,
    ))
}

fn conv2d(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    c.reject_inputs(&["ResidualData"])?;
    let bias = c.opt_input("Bias")?;
    let (strides, padding, dilations, groups, layout) = conv_attrs(c)?;
    let conv = Conv {
        strides,
        padding,
        dilations,
        groups,
        layout,
        has_bias: bias.is_some(),
    };
    let mut ins = vec![c.input("Input")?, c.input("Filter")?];
    ins.extend(bias);
    done(Op::Conv2d(conv), ins, c.output("Output")?)
}

fn conv2d_transpose(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    let bias = c.opt_input("Bias")?;
    let op_pad = c.ints("output_padding")?;
    let output_padding = match op_pad.len() {
        0 => [0, 0],
        2 if op_pad.iter().all(|&v| v >= 0) => [op_pad[0] as usize, op_pad[1] as usize],
        _ => return Err(c.bad("output_padding", format!("{op_pad:?}"))),
    };
    let os = c.ints("output_size")?;
    let output_size = match os.len() {
        0 => None,
        2 if os.iter().all(|&v| v > 0) => Some([os[0] as usize, os[1] as usize]),
        _ => return Err(c.bad("output_size", format!("{os:?}"))),
    };
    c.reject_inputs(&["OutputSize"])?;
    let (strides, padding, dilations, groups, layout) = conv_attrs(c)?;
    let ct = ConvTranspose {
        strides,
        padding,
        dilations,
        groups,
        output_padding,
        output_size,
        layout,
        has_bias: bias.is_some(),
    };
    let mut ins = vec![c.input("Input")?, c.input("Filter")?];
    ins.extend(bias);
    done(Op::Conv2dTranspose(ct), ins, c.output("Output")?)
}

fn pool2d(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    let kind = match c.str_or("pooling_type", "max")?.as_str() {
        "max" => PoolKind::Max,
        "avg" => PoolKind::Avg,
        other => return Err(c.bad("pooling_type", format!("unknown `{other}`"))),
    };
    let p = Pool {
        kind,
        ksize: pair(c, "ksize", 1)?,
        strides: pair(c, "strides", 1)?,
        padding: padding(c)?,
        global: c.bool_or("global_pooling", false)?,
        adaptive: c.bool_or("adaptive", false)?,
        ceil_mode: c.bool_or("ceil_mode", false)?,
        exclusive: c.bool_or("exclusive", true)?,
        layout: layout(c, "data_format")?,
    };
    x(c, Op::Pool2d(p))
}

/// Max pooling that also returns argmax indices (`Mask`); only `Out` is produced, a reader
/// of `Mask` gets an undefined-variable error.
fn max_pool2d_with_index(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    let p = Pool {
        kind: PoolKind::Max,
        ksize: pair(c, "ksize", 1)?,
        strides: pair(c, "strides", 1)?,
        padding: padding(c)?,
        global: c.bool_or("global_pooling", false)?,
        adaptive: c.bool_or("adaptive", false)?,
        ceil_mode: c.bool_or("ceil_mode", false)?,
        exclusive: true,
        layout: Layout::Nchw,
    };
    x(c, Op::Pool2d(p))
}

fn batch_norm(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    let b = BatchNorm {
        epsilon: c.f32_or("epsilon", 1e-5)?,
        layout: layout(c, "data_layout")?,
    };
    if b.epsilon < 0.0 {
        return Err(c.bad("epsilon", format!("{} is negative", b.epsilon)));
    }
    let ins = vec![
        c.input("X")?,
        c.input("Scale")?,
        c.input("Bias")?,
        c.input("Mean")?,
        c.input("Variance")?,
    ];
    done(Op::BatchNorm(b), ins, c.output("Y")?)
}

fn layer_norm(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    let scale = c.opt_input("Scale")?;
    let bias = c.opt_input("Bias")?;
    let l = LayerNorm {
        begin_norm_axis: pos(c, "begin_norm_axis", 1)?,
        epsilon: c.f32_or("epsilon", 1e-5)?,
        has_scale: scale.is_some(),
        has_bias: bias.is_some(),
    };
    if l.epsilon < 0.0 {
        return Err(c.bad("epsilon", format!("{} is negative", l.epsilon)));
    }
    let mut ins = vec![c.input("X")?];
    ins.extend(scale);
    ins.extend(bias);
    done(Op::LayerNorm(l), ins, c.output("Y")?)
}

/// An op on inputs `X`, `Y` with output `Out`.
fn xy(c: &OpCtx<'_>, op: Op) -> Result<Vec<Converted>> {
    done(op, vec![c.input("X")?, c.input("Y")?], c.output("Out")?)
}

/// An op on input `X` with output `Out`.
fn x(c: &OpCtx<'_>, op: Op) -> Result<Vec<Converted>> {
    done(op, vec![c.input("X")?], c.output("Out")?)
}

fn binary(c: &OpCtx<'_>, op: BinaryOp) -> Result<Vec<Converted>> {
    xy(
        c,
        Op::Binary(Binary {
            op,
            axis: c.i64_or("axis", -1)?,
        }),
    )
}

fn compare(c: &OpCtx<'_>, op: CmpOp) -> Result<Vec<Converted>> {
    xy(
        c,
        Op::Compare(Compare {
            op,
            axis: c.i64_or("axis", -1)?,
        }),
    )
}

fn logical(c: &OpCtx<'_>, op: LogicalOp) -> Result<Vec<Converted>> {
    xy(c, Op::Logical(op))
}

fn unary(c: &OpCtx<'_>, u: UnaryOp) -> Result<Vec<Converted>> {
    x(c, Op::Unary(u))
}

fn prelu(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    let mode = match c.str_or("mode", "all")?.as_str() {
        "all" => PreluMode::All,
        "channel" => PreluMode::Channel,
        "element" => PreluMode::Element,
        other => return Err(c.bad("mode", format!("unknown `{other}`"))),
    };
    done(
        Op::Prelu(Prelu {
            mode,
            layout: layout(c, "data_format")?,
        }),
        vec![c.input("X")?, c.input("Alpha")?],
        c.output("Out")?,
    )
}

fn dropout(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    let p = c.f32_or("dropout_prob", 0.5)?;
    if !(0.0..=1.0).contains(&p) {
        return Err(c.bad("dropout_prob", format!("{p} is not in [0, 1]")));
    }
    let op = match c
        .str_or("dropout_implementation", "downgrade_in_infer")?
        .as_str()
    {
        // Inference: identity when training already scaled up; otherwise scale by 1 - p.
        "upscale_in_train" => Op::Identity(Identity),
        "downgrade_in_infer" => Op::Unary(UnaryOp::Scale {
            scale: 1.0 - p,
            bias: 0.0,
            bias_after_scale: true,
        }),
        other => return Err(c.bad("dropout_implementation", format!("unknown `{other}`"))),
    };
    x(c, op)
}

fn fc(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    let bias = c.opt_input("Bias")?;
    let relu = match c.str_or("activation_type", "")?.as_str() {
        "" => false,
        "relu" => true,
        other => return Err(c.unsupported(format!("fc with activation `{other}`"))),
    };
    let f = Fc {
        in_num_col_dims: pos(c, "in_num_col_dims", 1)?,
        relu,
        has_bias: bias.is_some(),
    };
    let mut ins = vec![c.input("Input")?, c.input("W")?];
    ins.extend(bias);
    done(Op::Fc(f), ins, c.output("Out")?)
}

fn reduce(c: &OpCtx<'_>, kind: ReduceKind) -> Result<Vec<Converted>> {
    let r = Reduce {
        kind,
        axes: c.ints("dim")?,
        keep_dim: c.bool_or("keep_dim", false)?,
        reduce_all: c.bool_or("reduce_all", false)?,
    };
    x(c, Op::Reduce(r))
}

fn arg_max(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    let d = c.i64_or("dtype", 3)?;
    let dtype = if d == -1 {
        DType::I64
    } else {
        dtype_attr(c, "dtype", d)?
    };
    let a = ArgMax {
        axis: c.i64_or("axis", -1)?,
        keepdims: c.bool_or("keepdims", false)?,
        flatten: c.bool_or("flatten", false)?,
        dtype,
    };
    x(c, Op::ArgMax(a))
}

/// A list operand that Paddle lets come from `<list param>` (scalars), `<tensor param>`
/// (one 1-D tensor) or the attribute, in that priority.
fn list_source(
    c: &OpCtx<'_>,
    list_param: &str,
    tensor_param: &str,
) -> Result<(ListInput, Vec<String>)> {
    let list = c.inputs(list_param);
    if !list.is_empty() {
        return Ok((ListInput::Scalars(list.len()), list.to_vec()));
    }
    match c.opt_input(tensor_param)? {
        Some(t) => Ok((ListInput::Tensor, vec![t])),
        None => Ok((ListInput::Attr, vec![])),
    }
}

fn reshape(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    let (src, extra) = list_source(c, "ShapeTensor", "Shape")?;
    let r = Reshape {
        shape: c.ints("shape")?,
        shape_input: src,
    };
    let mut ins = vec![c.input("X")?];
    ins.extend(extra);
    done(Op::Reshape(r), ins, c.output("Out")?)
}

fn transpose(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    let perm = c.ints("axis")?;
    let perm: Vec<usize> = perm
        .iter()
        .map(|&a| usize::try_from(a).map_err(|_| c.bad("axis", format!("{perm:?}"))))
        .collect::<Result<_>>()?;
    x(c, Op::Transpose(Transpose { perm }))
}

fn unsqueeze(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    c.reject_inputs(&["AxesTensor", "AxesTensorList"])?;
    let u = Unsqueeze {
        axes: c.ints("axes")?,
    };
    x(c, Op::Unsqueeze(u))
}

fn split(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    c.reject_inputs(&["AxisTensor", "SectionsTensorList"])?;
    let s = Split {
        axis: c.i64_or("axis", 0)?,
        sections: c.ints("sections")?,
        num: pos(c, "num", 0)?,
    };
    let outs = c.outputs("Out").to_vec();
    if outs.len() != s.num_outputs() {
        return Err(c.bad(
            "num/sections",
            format!("{} outputs named, {} parts", outs.len(), s.num_outputs()),
        ));
    }
    Ok(vec![Converted {
        op: Op::Split(s),
        inputs: vec![c.input("X")?],
        outputs: outs,
    }])
}

fn slice(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    let (starts_input, starts_extra) = list_source(c, "StartsTensorList", "StartsTensor")?;
    let (ends_input, ends_extra) = list_source(c, "EndsTensorList", "EndsTensor")?;
    let s = Slice {
        axes: c.ints("axes")?,
        starts: c.ints("starts")?,
        ends: c.ints("ends")?,
        decrease_axis: c.ints("decrease_axis")?,
        starts_input,
        ends_input,
    };
    if starts_input == ListInput::Attr && s.starts.len() != s.axes.len() {
        return Err(c.bad(
            "starts",
            format!("{} starts for {} axes", s.starts.len(), s.axes.len()),
        ));
    }
    if ends_input == ListInput::Attr && s.ends.len() != s.axes.len() {
        return Err(c.bad(
            "ends",
            format!("{} ends for {} axes", s.ends.len(), s.axes.len()),
        ));
    }
    let mut ins = vec![c.input("Input")?];
    ins.extend(starts_extra);
    ins.extend(ends_extra);
    done(Op::Slice(s), ins, c.output("Out")?)
}

fn strided_slice(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    c.reject_inputs(&[
        "StartsTensor",
        "EndsTensor",
        "StridesTensor",
        "StartsTensorList",
        "EndsTensorList",
        "StridesTensorList",
    ])?;
    let s = StridedSlice {
        axes: c.ints("axes")?,
        starts: c.ints("starts")?,
        ends: c.ints("ends")?,
        strides: c.ints("strides")?,
        decrease_axis: c.ints("decrease_axis")?,
    };
    done(
        Op::StridedSlice(s),
        vec![c.input("Input")?],
        c.output("Out")?,
    )
}

fn pad3d(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    c.reject_inputs(&["Paddings"])?;
    let p = c.ints("paddings")?;
    if p.len() != 6 || p.iter().any(|&v| v < 0) {
        return Err(c.bad(
            "paddings",
            format!("expected 6 non-negative values, got {p:?}"),
        ));
    }
    let p: Vec<usize> = p.iter().map(|&v| v as usize).collect();
    let mode = match c.str_or("mode", "constant")?.as_str() {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "replicate" => PadMode::Replicate,
        "circular" => PadMode::Circular,
        other => return Err(c.bad("mode", format!("unknown `{other}`"))),
    };
    // paddings: [left, right, top, bottom, front, back] for (W, H, D).
    let (w, h, d) = ((p[0], p[1]), (p[2], p[3]), (p[4], p[5]));
    let pads = match layout(c, "data_format")? {
        Layout::Nchw => vec![(0, 0), (0, 0), d, h, w],
        Layout::Nhwc => vec![(0, 0), d, h, w, (0, 0)],
    };
    let value = c.f64("value")?.unwrap_or(0.0);
    x(c, Op::Pad(Pad { pads, mode, value }))
}

fn interp(c: &OpCtx<'_>, mode: InterpMode) -> Result<Vec<Converted>> {
    let (out_size_input, mut extra) = list_source(c, "SizeTensor", "OutSize")?;
    let scale_t = c.opt_input("Scale")?;
    let i = Interp {
        mode,
        out_h: c.i64_or("out_h", -1)?,
        out_w: c.i64_or("out_w", -1)?,
        scale: c.floats("scale")?,
        align_corners: c.bool_or("align_corners", true)?,
        align_mode: c.i64_or("align_mode", 1)? as i32,
        layout: layout(c, "data_layout")?,
        out_size_input,
        scale_input: scale_t.is_some(),
        onnx: None,
    };
    let method = c.str_or("interp_method", "")?;
    let want = match mode {
        InterpMode::Nearest => "nearest",
        InterpMode::Bilinear => "bilinear",
        InterpMode::Bicubic => "bicubic",
    };
    if !method.is_empty() && method != want {
        return Err(c.bad("interp_method", format!("`{method}` in a {want} op")));
    }
    let mut ins = vec![c.input("X")?];
    ins.append(&mut extra);
    ins.extend(scale_t);
    done(Op::Interp(i), ins, c.output("Out")?)
}

fn fill_constant(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    let (shape_input, extra) = list_source(c, "ShapeTensorList", "ShapeTensor")?;
    let value_t = c.opt_input("ValueTensor")?;
    let dtype = dtype_attr(c, "dtype", c.i64_or("dtype", 5)?)?;
    let s = c.str_or("str_value", "")?;
    let value = if s.is_empty() {
        c.f64("value")?.unwrap_or(0.0)
    } else {
        match s.as_str() {
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            "nan" => f64::NAN,
            s => s
                .parse::<f64>()
                .map_err(|_| c.bad("str_value", format!("`{s}` is not a number")))?,
        }
    };
    let f = FillConstant {
        shape: c.ints("shape")?,
        value,
        dtype,
        shape_input,
        value_input: value_t.is_some(),
    };
    let mut ins = extra;
    ins.extend(value_t);
    done(Op::FillConstant(f), ins, c.output("Out")?)
}

fn cumsum(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    c.reject_inputs(&["AxisTensor"])?;
    let op = Cumsum {
        axis: c.i64_or("axis", -1)?,
        flatten: c.bool_or("flatten", false)?,
        exclusive: c.bool_or("exclusive", false)?,
        reverse: c.bool_or("reverse", false)?,
    };
    x(c, Op::Cumsum(op))
}

fn add(a: String, b: String, out: String) -> Converted {
    let op = Op::Binary(Binary {
        op: BinaryOp::Add,
        axis: -1,
    });
    node(op, vec![a, b], out)
}

/// `max(s, 1)` of a shape tensor `s`, into `nodes`: `expand`'s `-1` (keep the dim) as the
/// 1 that broadcasting keeps.
fn at_least_one(c: &OpCtx<'_>, s: &str, nodes: &mut Vec<Converted>) -> String {
    let (one, m) = (c.tmp(), c.tmp());
    let ones = FillAnyLike {
        value: 1.0,
        dtype: None,
    };
    nodes.push(node(
        Op::FillAnyLike(ones),
        vec![s.to_string()],
        one.clone(),
    ));
    let max = Op::Binary(Binary {
        op: BinaryOp::Max,
        axis: -1,
    });
    nodes.push(node(max, vec![s.to_string(), one], m.clone()));
    m
}

/// `expand_v2`: `x + zeros(shape)`, the broadcast of `x` to `shape`, where a `-1` keeps
/// `x`'s dim (a zeros dim of 1). The shape comes from the `Shape` tensor, else the
/// `expand_shapes_tensor` scalars (`ShapeTensor` when translated from PIR), else the attribute.
fn expand(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    let x = c.input("X")?;
    let dtype = c.dtype("X")?;
    let attr = c.ints("shape")?;
    let mut nodes = Vec::new();
    let list = match c.inputs("expand_shapes_tensor") {
        [] => c.inputs("ShapeTensor"),
        l => l,
    };
    // With shape tensors the attribute holds placeholders (-2 for a tensor-valued dim).
    let from_tensors = !list.is_empty() || !c.inputs("Shape").is_empty();
    if let Some(d) = attr.iter().find(|&&d| d < -1 || d == 0) {
        if !from_tensors {
            return Err(c.bad("shape", format!("dim {d} in {attr:?}")));
        }
    }
    let (shape_input, ins) = if let Some(t) = c.opt_input("Shape")? {
        (ListInput::Tensor, vec![at_least_one(c, &t, &mut nodes)])
    } else if !list.is_empty() {
        let ins: Vec<String> = list
            .iter()
            .map(|s| at_least_one(c, s, &mut nodes))
            .collect();
        (ListInput::Scalars(ins.len()), ins)
    } else {
        (ListInput::Attr, vec![])
    };
    let zeros = FillConstant {
        shape: attr.iter().map(|&d| d.max(1)).collect(),
        value: 0.0,
        dtype,
        shape_input,
        value_input: false,
    };
    let z = c.tmp();
    nodes.push(node(Op::FillConstant(zeros), ins, z.clone()));
    nodes.push(add(x, z, c.output("Out")?));
    Ok(nodes)
}

/// `expand_as_v2`: `x + zeros_like(y)` (in `x`'s type), or zeros of `target_shape`.
fn expand_as(c: &OpCtx<'_>) -> Result<Vec<Converted>> {
    let x = c.input("X")?;
    let dtype = c.dtype("X")?;
    let z = c.tmp();
    let zeros = match c.opt_input("Y")? {
        Some(y) => {
            let f = FillAnyLike {
                value: 0.0,
                dtype: Some(dtype),
            };
            node(Op::FillAnyLike(f), vec![y], z.clone())
        }
        None => {
            let shape = c.ints("target_shape")?;
            if shape.is_empty() || shape.iter().any(|&d| d < 1) {
                return Err(c.bad("target_shape", format!("{shape:?}")));
            }
            let f = FillConstant {
                shape,
                value: 0.0,
                dtype,
                shape_input: ListInput::Attr,
                value_input: false,
            };
            node(Op::FillConstant(f), vec![], z.clone())
        }
    };
    Ok(vec![zeros, add(x, z, c.output("Out")?)])
}
