//! The registry of ONNX op types (`ai.onnx`, opsets 7–22): each converter reads one node
//! into IR ops, by name. ONNX op-type strings live here and nowhere else. Semantics that
//! changed between opsets (attributes that became inputs: Clip, Pad, Slice, Split, Squeeze,
//! Unsqueeze, Reduce*, Resize; Softmax's axis) follow `ctx.opset`.

mod index;
mod layout;
mod loss;
mod math;
mod nn;
mod norm;
mod quant;
mod signal;

use super::ctx::NodeCtx;
use crate::build::Converted;
use crate::Result;
use kayak_ir::ops::*;
use kayak_ir::{DType, Op};
use layout::*;
use math::*;
use nn::*;
use std::collections::HashMap;

/// Reads one node into IR ops (in order; intermediate names from [`NodeCtx::tmp`]).
pub(crate) type Converter = fn(&NodeCtx<'_>) -> Result<Vec<Converted>>;

pub(super) fn one(op: Op, inputs: Vec<String>, out: String) -> Result<Vec<Converted>> {
    Ok(vec![Converted {
        op,
        inputs,
        outputs: vec![out],
    }])
}

pub(super) fn conv_op(op: Op, inputs: Vec<String>, out: String) -> Converted {
    Converted {
        op,
        inputs,
        outputs: vec![out],
    }
}

/// A broadcasting binary op (ONNX's numpy-style broadcast).
pub(super) fn bin(op: BinaryOp) -> Op {
    Op::Binary(Binary { op, axis: -1 })
}

/// `scale · x + bias`.
pub(super) fn scale(scale: f32, bias: f32) -> Op {
    Op::Unary(UnaryOp::Scale {
        scale,
        bias,
        bias_after_scale: true,
    })
}

/// A reduction over `axes` (empty: every axis).
pub(super) fn reduce_over(kind: ReduceKind, axes: Vec<i64>, keep_dim: bool) -> Op {
    Op::Reduce(Reduce {
        kind,
        reduce_all: axes.is_empty(),
        axes,
        keep_dim,
    })
}

/// A scalar constant.
pub(super) fn scalar(value: f64, dtype: DType) -> Op {
    Op::FillConstant(FillConstant {
        shape: vec![],
        value,
        dtype,
        shape_input: ListInput::Attr,
        value_input: false,
    })
}

pub(super) fn unary(c: &NodeCtx<'_>, u: UnaryOp) -> Result<Vec<Converted>> {
    one(Op::Unary(u), vec![c.req(0)?], c.output(0))
}

pub(super) fn binary(c: &NodeCtx<'_>, op: BinaryOp) -> Result<Vec<Converted>> {
    one(
        Op::Binary(Binary { op, axis: -1 }),
        vec![c.req(0)?, c.req(1)?],
        c.output(0),
    )
}

/// `Pow`: the base and exponent may have different types (the result has the base's):
/// a float base takes the exponent cast to its type; an integer base is raised in the
/// exponent's float type and cast back (ONNX's `pow(x, y).astype(x.dtype)`).
fn pow(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let (x, y) = (c.req(0)?, c.req(1)?);
    let ty = |n: &str| c.scope.type_of(n).map(|t| t.dtype);
    let (Some(tx), Some(ty)) = (ty(&x), ty(&y)) else {
        return binary(c, BinaryOp::Pow);
    };
    if tx == ty {
        return binary(c, BinaryOp::Pow);
    }
    let pow = |a: String, b: String, out: String| {
        conv_op(
            Op::Binary(Binary {
                op: BinaryOp::Pow,
                axis: -1,
            }),
            vec![a, b],
            out,
        )
    };
    let cast = |to, a: String, out: String| conv_op(Op::Cast(Cast { to }), vec![a], out);
    let (ca, cb) = (c.tmp(), c.tmp());
    if tx.is_float() || !ty.is_float() {
        return Ok(vec![cast(tx, y, cb.clone()), pow(x, cb, c.output(0))]);
    }
    Ok(vec![
        cast(ty, x, ca.clone()),
        pow(ca, y, cb.clone()),
        cast(tx, cb, c.output(0)),
    ])
}

pub(super) fn compare(c: &NodeCtx<'_>, op: CmpOp) -> Result<Vec<Converted>> {
    one(
        Op::Compare(Compare { op, axis: -1 }),
        vec![c.req(0)?, c.req(1)?],
        c.output(0),
    )
}

pub(super) fn logical(c: &NodeCtx<'_>, op: LogicalOp) -> Result<Vec<Converted>> {
    one(Op::Logical(op), vec![c.req(0)?, c.req(1)?], c.output(0))
}

/// The converters by op type.
pub(crate) fn registry() -> HashMap<&'static str, Converter> {
    let mut r: HashMap<&'static str, Converter> = HashMap::new();
    r.insert("Add", |c| binary(c, BinaryOp::Add));
    r.insert("Sub", |c| binary(c, BinaryOp::Sub));
    r.insert("Mul", |c| binary(c, BinaryOp::Mul));
    r.insert("Div", |c| binary(c, BinaryOp::Div));
    r.insert("Pow", |c| {
        // x ** 2 (exporters' variance in layer norms) is a square.
        if c.known(1)
            .is_some_and(|t| t.len() == 1 && t.to_f64_vec()[0] == 2.0)
        {
            return unary(c, UnaryOp::Square);
        }
        pow(c)
    });
    r.insert("Mod", |c| {
        if c.int_or("fmod", 0)? == 0 {
            return binary(c, BinaryOp::Mod);
        }
        // C's remainder takes the sign of x; the IR's (Python's) the sign of y: where they
        // differ and the remainder is not 0, subtract y.
        let (x, y) = (c.req(0)?, c.req(1)?);
        let dt = c.dtype(0)?;
        let mut e = index::Emit::new(c);
        let m = e.op(bin(BinaryOp::Mod), vec![x.clone(), y.clone()]);
        let zero = e.scalar(0.0, dt);
        let xneg = e.op(index::cmp(CmpOp::Lt), vec![x, zero.clone()]);
        let mneg = e.op(index::cmp(CmpOp::Lt), vec![m.clone(), zero.clone()]);
        let differ = e.op(Op::Logical(LogicalOp::Xor), vec![xneg, mneg]);
        let nonzero = e.op(index::cmp(CmpOp::Ne), vec![m.clone(), zero]);
        let fix = e.op(Op::Logical(LogicalOp::And), vec![differ, nonzero]);
        let adj = e.op(bin(BinaryOp::Sub), vec![m.clone(), y]);
        Ok(e.last(Op::Where(Where), vec![fix, adj, m], c.output(0)))
    });
    r.insert("Max", |c| variadic(c, BinaryOp::Max));
    r.insert("Min", |c| variadic(c, BinaryOp::Min));
    r.insert("Sum", |c| variadic(c, BinaryOp::Add));
    r.insert("Mean", |c| {
        let n = c.node.input.iter().filter(|i| !i.is_empty()).count();
        let mut v = variadic(c, BinaryOp::Add)?;
        let sum = c.tmp();
        v.last_mut().unwrap().outputs = vec![sum.clone()];
        v.push(conv_op(
            Op::Unary(UnaryOp::Scale {
                scale: 1.0 / n as f32,
                bias: 0.0,
                bias_after_scale: true,
            }),
            vec![sum],
            c.output(0),
        ));
        Ok(v)
    });
    r.insert("Equal", |c| compare(c, CmpOp::Eq));
    r.insert("Less", |c| compare(c, CmpOp::Lt));
    r.insert("LessOrEqual", |c| compare(c, CmpOp::Le));
    r.insert("Greater", |c| compare(c, CmpOp::Gt));
    r.insert("GreaterOrEqual", |c| compare(c, CmpOp::Ge));
    r.insert("And", |c| logical(c, LogicalOp::And));
    r.insert("Or", |c| logical(c, LogicalOp::Or));
    r.insert("Xor", |c| logical(c, LogicalOp::Xor));
    r.insert("Not", |c| {
        one(Op::LogicalNot(LogicalNot), vec![c.req(0)?], c.output(0))
    });
    r.insert("Where", |c| {
        one(
            Op::Where(Where),
            vec![c.req(0)?, c.req(1)?, c.req(2)?],
            c.output(0),
        )
    });
    r.insert("Relu", |c| unary(c, UnaryOp::Relu));
    r.insert("Sigmoid", |c| unary(c, UnaryOp::Sigmoid));
    r.insert("Tanh", |c| unary(c, UnaryOp::Tanh));
    r.insert("Exp", |c| unary(c, UnaryOp::Exp));
    r.insert("Log", |c| unary(c, UnaryOp::Log));
    r.insert("Sqrt", |c| unary(c, UnaryOp::Sqrt));
    r.insert("Abs", |c| unary(c, UnaryOp::Abs));
    r.insert("Floor", |c| unary(c, UnaryOp::Floor));
    r.insert("Ceil", |c| unary(c, UnaryOp::Ceil));
    r.insert("Erf", |c| unary(c, UnaryOp::Erf));
    r.insert("Reciprocal", |c| unary(c, UnaryOp::Reciprocal));
    r.insert("Sin", |c| unary(c, UnaryOp::Sin));
    r.insert("Cos", |c| unary(c, UnaryOp::Cos));
    r.insert("Tan", |c| unary(c, UnaryOp::Tan));
    r.insert("Asin", |c| unary(c, UnaryOp::Asin));
    r.insert("Acos", |c| unary(c, UnaryOp::Acos));
    r.insert("Atan", |c| unary(c, UnaryOp::Atan));
    r.insert("Sinh", |c| unary(c, UnaryOp::Sinh));
    r.insert("Cosh", |c| unary(c, UnaryOp::Cosh));
    r.insert("Asinh", |c| unary(c, UnaryOp::Asinh));
    r.insert("Acosh", |c| unary(c, UnaryOp::Acosh));
    r.insert("Atanh", |c| unary(c, UnaryOp::Atanh));
    r.insert("Sign", |c| unary(c, UnaryOp::Sign));
    r.insert("Round", |c| unary(c, UnaryOp::Round));
    r.insert("Softplus", |c| unary(c, UnaryOp::Softplus));
    r.insert("Softsign", |c| unary(c, UnaryOp::Softsign));
    r.insert("Mish", |c| unary(c, UnaryOp::Mish));
    r.insert("Elu", |c| {
        let alpha = c.float_or("alpha", 1.0)?;
        unary(c, UnaryOp::Elu { alpha })
    });
    r.insert("Selu", |c| {
        let u = UnaryOp::Selu {
            alpha: c.float_or("alpha", 1.673_263_2)?,
            gamma: c.float_or("gamma", 1.050_701)?,
        };
        unary(c, u)
    });
    r.insert("Celu", |c| {
        let alpha = c.float_or("alpha", 1.0)?;
        if alpha == 0.0 {
            return Err(c.bad("alpha", "must not be 0"));
        }
        unary(c, UnaryOp::Celu { alpha })
    });
    r.insert("ThresholdedRelu", |c| {
        let alpha = c.float_or("alpha", 1.0)?;
        unary(c, UnaryOp::ThresholdedRelu { alpha })
    });

    r.insert("Neg", |c| {
        unary(
            c,
            UnaryOp::Scale {
                scale: -1.0,
                bias: 0.0,
                bias_after_scale: true,
            },
        )
    });
    r.insert("LeakyRelu", |c| {
        let alpha = c.float_or("alpha", 0.01)?;
        unary(c, UnaryOp::LeakyRelu { alpha })
    });
    r.insert("HardSigmoid", |c| {
        let u = UnaryOp::HardSigmoid {
            slope: c.float_or("alpha", 0.2)?,
            offset: c.float_or("beta", 0.5)?,
        };
        unary(c, u)
    });
    r.insert("HardSwish", |c| {
        unary(
            c,
            UnaryOp::HardSwish {
                threshold: 6.0,
                scale: 6.0,
                offset: 3.0,
            },
        )
    });
    r.insert("Gelu", |c| {
        let approximate = match c.str_or("approximate", "none")?.as_str() {
            "none" => false,
            "tanh" => true,
            other => return Err(c.bad("approximate", format!("unknown `{other}`"))),
        };
        unary(c, UnaryOp::Gelu { approximate })
    });
    r.insert("Clip", clip);
    r.insert("PRelu", prelu);
    r.insert("Identity", |c| {
        one(Op::Identity(Identity), vec![c.req(0)?], c.output(0))
    });
    r.insert("Dropout", |c| {
        c.only_outputs(2)?;
        // Opset 12 on: input 2 is training_mode (absent or false: inference, the identity).
        if c.opset >= 12 {
            if let Some(t) = c.const_ints(2, "training_mode")? {
                // Training with ratio 0 drops nothing: the identity still.
                let ratio = c.const_scalar(1, "ratio")?.unwrap_or(0.5);
                if t.iter().any(|&v| v != 0) && ratio != 0.0 {
                    return Err(c.unsupported("`Dropout` in training mode"));
                }
            }
        }
        let x = c.req(0)?;
        let mut v = vec![conv_op(
            Op::Identity(Identity),
            vec![x.clone()],
            c.output(0),
        )];
        // The mask, when read: every element kept.
        if !c.output(1).is_empty() && c.used.contains(&c.output(1)) {
            let keep = FillAnyLike {
                value: 1.0,
                dtype: Some(DType::Bool),
            };
            v.push(conv_op(Op::FillAnyLike(keep), vec![x], c.output(1)));
        }
        Ok(v)
    });
    r.insert("Cast", |c| {
        let to = super::tensor::dtype(c.int_or("to", 1)? as i32)
            .map_err(|t| c.unsupported(format!("`Cast` to {t}")))?;
        one(Op::Cast(Cast { to }), vec![c.req(0)?], c.output(0))
    });
    r.insert("CastLike", |c| {
        let to = c
            .scope
            .type_of(&c.req(1)?)
            .map(|t| t.dtype)
            .ok_or_else(|| c.unsupported("`CastLike` to a value of unknown type"))?;
        one(Op::Cast(Cast { to }), vec![c.req(0)?], c.output(0))
    });
    r.insert("Size", |c| {
        let s = c.tmp();
        let r = Reduce {
            kind: ReduceKind::Prod,
            axes: vec![],
            keep_dim: false,
            reduce_all: true,
        };
        Ok(vec![
            conv_op(Op::Shape(ShapeOf { i64: true }), vec![c.req(0)?], s.clone()),
            conv_op(Op::Reduce(r), vec![s], c.output(0)),
        ])
    });
    r.insert("ArgMin", |c| index::arg_reduce(c, true));
    r.insert("LogSoftmax", log_softmax);
    r.insert("NegativeLogLikelihoodLoss", loss::nll_loss);
    r.insert("SoftmaxCrossEntropyLoss", loss::softmax_cross_entropy);
    r.insert("Softmax", softmax);
    r.insert("MatMul", |c| {
        let m = MatMul {
            trans_x: false,
            trans_y: false,
            alpha: 1.0,
        };
        one(Op::MatMul(m), vec![c.req(0)?, c.req(1)?], c.output(0))
    });
    r.insert("Gemm", gemm);
    r.insert("Conv", conv);
    r.insert("ConvTranspose", conv_transpose);
    r.insert("BatchNormalization", batch_norm);
    r.insert("LayerNormalization", layer_norm);
    r.insert("MaxPool", |c| pool(c, PoolKind::Max));
    r.insert("AveragePool", |c| pool(c, PoolKind::Avg));
    r.insert("GlobalAveragePool", |c| global_pool(c, PoolKind::Avg));
    r.insert("GlobalMaxPool", |c| global_pool(c, PoolKind::Max));
    r.insert("Flatten", |c| {
        let a = c.int_or("axis", 1)?;
        let axis = if a < 0 {
            c.axis("axis", a, c.need_rank(0)?)?
        } else {
            a as usize
        };
        one(
            Op::Flatten(Flatten::To2d { axis }),
            vec![c.req(0)?],
            c.output(0),
        )
    });
    r.insert("Reshape", reshape);
    r.insert("Transpose", |c| {
        let perm = match c.ints("perm")? {
            Some(p) => p
                .iter()
                .map(|&a| usize::try_from(a).map_err(|_| c.bad("perm", format!("{p:?}"))))
                .collect::<Result<Vec<_>>>()?,
            None => (0..c.need_rank(0)?).rev().collect(),
        };
        one(
            Op::Transpose(Transpose { perm }),
            vec![c.req(0)?],
            c.output(0),
        )
    });
    r.insert("Squeeze", |c| {
        let axes = axes_of(c, "axes", 13)?.unwrap_or_default();
        one(Op::Squeeze(Squeeze { axes }), vec![c.req(0)?], c.output(0))
    });
    r.insert("Unsqueeze", |c| {
        let mut axes = axes_of(c, "axes", 13)?.ok_or_else(|| c.bad("axes", "missing"))?;
        // ONNX's axes are positions in the output, in any order; the IR inserts one
        // after another: made non-negative against the output rank, in ascending order.
        if axes.iter().any(|&a| a < 0) || !axes.is_sorted() {
            let out_rank = c.need_rank(0)? + axes.len();
            for a in &mut axes {
                *a = c.axis("axes", *a, out_rank)? as i64;
            }
            axes.sort_unstable();
        }
        one(
            Op::Unsqueeze(Unsqueeze { axes }),
            vec![c.req(0)?],
            c.output(0),
        )
    });
    r.insert("Concat", |c| {
        let axis = c.int("axis")?.ok_or_else(|| c.bad("axis", "missing"))?;
        let ins = (0..c.node.input.len()).filter_map(|k| c.input(k)).collect();
        one(Op::Concat(Concat { axis }), ins, c.output(0))
    });
    r.insert("Split", split);
    r.insert("Slice", slice);
    r.insert("Gather", gather);
    r.insert("GatherElements", |c| {
        let g = GatherElements {
            axis: c.int_or("axis", 0)?,
        };
        one(
            Op::GatherElements(g),
            vec![c.req(0)?, c.req(1)?],
            c.output(0),
        )
    });
    r.insert("Shape", |c| {
        let start = c.int_or("start", 0)?;
        let end = c.int("end")?;
        let shape = Op::Shape(ShapeOf { i64: true });
        if start == 0 && end.is_none() {
            return one(shape, vec![c.req(0)?], c.output(0));
        }
        let t = c.tmp();
        let s = Slice {
            axes: vec![0],
            starts: vec![start],
            ends: vec![end.unwrap_or(i64::MAX)],
            decrease_axis: vec![],
            starts_input: ListInput::Attr,
            ends_input: ListInput::Attr,
        };
        Ok(vec![
            conv_op(shape, vec![c.req(0)?], t.clone()),
            conv_op(Op::Slice(s), vec![t], c.output(0)),
        ])
    });
    r.insert("ConstantOfShape", |c| {
        let (value, dtype) = match c.raw("value").and_then(|a| a.t.as_ref()) {
            Some(t) => {
                let v = super::tensor::read(t, None).map_err(|e| c.bad("value", e))?;
                let x = v.to_f64_vec().first().copied().unwrap_or(0.0);
                (x, v.dtype())
            }
            None => (0.0, DType::F32),
        };
        let (shape, shape_input, ins) = match c.const_ints(0, "shape") {
            Ok(Some(s)) => (s, ListInput::Attr, vec![]),
            _ => (vec![], ListInput::Tensor, vec![c.req(0)?]),
        };
        let f = FillConstant {
            shape,
            value,
            dtype,
            shape_input,
            value_input: false,
        };
        one(Op::FillConstant(f), ins, c.output(0))
    });
    r.insert("Range", |c| {
        one(
            Op::Range(Range {}),
            vec![c.req(0)?, c.req(1)?, c.req(2)?],
            c.output(0),
        )
    });
    r.insert("Expand", |c| {
        // x + zeros(shape): the broadcast of x to the shape.
        let x = c.req(0)?;
        let dtype = c
            .scope
            .type_of(&x)
            .map(|t| t.dtype)
            .ok_or_else(|| c.unsupported("`Expand` of an input of unknown type"))?;
        let (shape, shape_input, ins) = match c.const_ints(1, "shape") {
            Ok(Some(s)) => (s, ListInput::Attr, vec![]),
            _ => (vec![], ListInput::Tensor, vec![c.req(1)?]),
        };
        let z = c.tmp();
        let f = FillConstant {
            shape,
            value: 0.0,
            dtype,
            shape_input,
            value_input: false,
        };
        Ok(vec![
            conv_op(Op::FillConstant(f), ins, z.clone()),
            conv_op(
                Op::Binary(Binary {
                    op: BinaryOp::Add,
                    axis: -1,
                }),
                vec![x, z],
                c.output(0),
            ),
        ])
    });
    for (name, kind) in [
        ("ReduceSum", ReduceKind::Sum),
        ("ReduceMean", ReduceKind::Mean),
        ("ReduceMax", ReduceKind::Max),
        ("ReduceMin", ReduceKind::Min),
        ("ReduceProd", ReduceKind::Prod),
    ] {
        r.insert(name, reduce_fn(kind));
    }
    r.insert("ReduceL1", |c| {
        reduce_of(c, Some(UnaryOp::Abs), ReduceKind::Sum, None)
    });
    r.insert("ReduceL2", |c| {
        reduce_of(
            c,
            Some(UnaryOp::Square),
            ReduceKind::Sum,
            Some(UnaryOp::Sqrt),
        )
    });
    r.insert("ReduceSumSquare", |c| {
        reduce_of(c, Some(UnaryOp::Square), ReduceKind::Sum, None)
    });
    r.insert("ReduceLogSum", |c| {
        reduce_of(c, None, ReduceKind::Sum, Some(UnaryOp::Log))
    });
    r.insert("ReduceLogSumExp", |c| {
        reduce_of(c, Some(UnaryOp::Exp), ReduceKind::Sum, Some(UnaryOp::Log))
    });
    r.insert("ArgMax", |c| index::arg_reduce(c, false));
    r.insert("Hardmax", index::hardmax);
    r.insert("HannWindow", |c| signal::window(c, [0.5, 0.5, 0.0]));
    r.insert("HammingWindow", |c| {
        signal::window(c, [25.0 / 46.0, 21.0 / 46.0, 0.0])
    });
    r.insert("BlackmanWindow", |c| signal::window(c, [0.42, 0.5, 0.08]));
    r.insert("CenterCropPad", center_crop_pad);
    r.insert("GridSample", grid_sample);
    r.insert("DequantizeLinear", quant::dequantize_linear);
    r.insert("QuantizeLinear", quant::quantize_linear);
    r.insert("DynamicQuantizeLinear", quant::dynamic_quantize_linear);
    r.insert("QLinearMatMul", quant::qlinear_matmul);
    r.insert("QLinearConv", quant::qlinear_conv);
    r.insert("MatMulInteger", quant::matmul_integer);
    r.insert("ConvInteger", quant::conv_integer);
    r.insert("ScatterElements", index::scatter_elements);
    r.insert("Scatter", index::scatter_elements);
    r.insert("ScatterND", index::scatter_nd);
    r.insert("GatherND", index::gather_nd);
    r.insert("TopK", index::top_k);
    r.insert("Tile", tile);
    r.insert("InstanceNormalization", norm::instance_norm);
    r.insert("GroupNormalization", norm::group_norm);
    r.insert("MeanVarianceNormalization", norm::mvn);
    r.insert("LRN", norm::lrn);
    r.insert("LpPool", norm::lp_pool);
    r.insert("IsNaN", is_nan);
    r.insert("IsInf", is_inf);
    r.insert("Shrink", shrink);
    r.insert("DepthToSpace", |c| depth_space(c, true));
    r.insert("SpaceToDepth", |c| depth_space(c, false));
    r.insert("OneHot", index::one_hot);
    r.insert("Trilu", index::trilu);
    r.insert("EyeLike", index::eye_like);
    r.insert("CumSum", |c| {
        let axis = c
            .const_scalar(1, "axis")?
            .ok_or_else(|| c.bad("axis", "missing"))?;
        let op = Cumsum {
            axis: axis as i64,
            flatten: false,
            exclusive: c.int_or("exclusive", 0)? != 0,
            reverse: c.int_or("reverse", 0)? != 0,
        };
        one(Op::Cumsum(op), vec![c.req(0)?], c.output(0))
    });
    r.insert("Pad", pad);
    r.insert("Resize", resize);
    r
}

impl NodeCtx<'_> {
    /// Input `k` as constant floats, `None` when absent or empty.
    fn const_ints_f(&self, k: usize) -> Result<Option<Vec<f32>>> {
        let Some(name) = self.input(k) else {
            return Ok(None);
        };
        let t = self
            .scope
            .known(&name)
            .ok_or_else(|| self.needs_value(k, &format!("input {k}")))?;
        if t.is_empty() {
            return Ok(None);
        }
        Ok(Some(t.to_f64_vec().iter().map(|&v| v as f32).collect()))
    }
}
