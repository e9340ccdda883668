//! The registry of ONNX op types (`ai.onnx`, opsets 7–21): each converter reads one node
//! into IR ops, by name. ONNX op-type strings live here and nowhere else. Semantics that
//! changed between opsets (attributes that became inputs: Clip, Pad, Slice, Split, Squeeze,
//! Unsqueeze, Reduce*, Resize; Softmax's axis) follow `ctx.opset`.

use super::ctx::NodeCtx;
use crate::build::Converted;
use crate::Result;
use kayak_ir::ops::*;
use kayak_ir::{DType, Op};
use std::collections::HashMap;

/// Reads one node into IR ops (in order; intermediate names from [`NodeCtx::tmp`]).
pub(crate) type Converter = fn(&NodeCtx<'_>) -> Result<Vec<Converted>>;

fn one(op: Op, inputs: Vec<String>, out: String) -> Result<Vec<Converted>> {
    Ok(vec![Converted {
        op,
        inputs,
        outputs: vec![out],
    }])
}

fn conv_op(op: Op, inputs: Vec<String>, out: String) -> Converted {
    Converted {
        op,
        inputs,
        outputs: vec![out],
    }
}

fn unary(c: &NodeCtx<'_>, u: UnaryOp) -> Result<Vec<Converted>> {
    one(Op::Unary(u), vec![c.req(0)?], c.output(0))
}

fn binary(c: &NodeCtx<'_>, op: BinaryOp) -> Result<Vec<Converted>> {
    one(
        Op::Binary(Binary { op, axis: -1 }),
        vec![c.req(0)?, c.req(1)?],
        c.output(0),
    )
}

fn compare(c: &NodeCtx<'_>, op: CmpOp) -> Result<Vec<Converted>> {
    one(
        Op::Compare(Compare { op, axis: -1 }),
        vec![c.req(0)?, c.req(1)?],
        c.output(0),
    )
}

fn logical(c: &NodeCtx<'_>, op: LogicalOp) -> Result<Vec<Converted>> {
    one(Op::Logical(op), vec![c.req(0)?, c.req(1)?], c.output(0))
}

/// A variadic elementwise op (`Sum`, `Max`, ...) as a chain of binary ops.
fn variadic(c: &NodeCtx<'_>, op: BinaryOp) -> Result<Vec<Converted>> {
    let ins: Vec<String> = (0..c.node.input.len()).filter_map(|k| c.input(k)).collect();
    if ins.is_empty() {
        return Err(c.bad("inputs", "no inputs"));
    }
    if ins.len() == 1 {
        return one(Op::Identity(Identity), ins, c.output(0));
    }
    let mut v = Vec::new();
    let mut acc = ins[0].clone();
    for (k, x) in ins.iter().enumerate().skip(1) {
        let out = if k + 1 == ins.len() {
            c.output(0)
        } else {
            c.tmp()
        };
        v.push(conv_op(
            Op::Binary(Binary { op, axis: -1 }),
            vec![acc, x.clone()],
            out.clone(),
        ));
        acc = out;
    }
    Ok(v)
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
        binary(c, BinaryOp::Pow)
    });
    r.insert("Mod", |c| {
        if c.int_or("fmod", 0)? != 0 {
            return Err(c.unsupported("`Mod` with fmod=1 (C remainder)"));
        }
        binary(c, BinaryOp::Mod)
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
        c.only_outputs(1)?;
        // Opset 12 on: input 2 is training_mode (absent or false: inference, the identity).
        if c.opset >= 12 && c.input(2).is_some() {
            match c.known(2) {
                Some(t) if t.to_f64_vec().iter().all(|&v| v == 0.0) => {}
                _ => return Err(c.unsupported("`Dropout` in training mode")),
            }
        }
        one(Op::Identity(Identity), vec![c.req(0)?], c.output(0))
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
    r.insert("ArgMin", |c| {
        // argmin x = argmax -x (the first of equal minima, as ONNX wants).
        if c.int_or("select_last_index", 0)? != 0 {
            return Err(c.unsupported("`ArgMin` with select_last_index=1"));
        }
        let neg = c.tmp();
        let a = ArgMax {
            axis: c.int_or("axis", 0)?,
            keepdims: c.int_or("keepdims", 1)? != 0,
            flatten: false,
            dtype: DType::I64,
        };
        Ok(vec![
            conv_op(
                Op::Unary(UnaryOp::Scale {
                    scale: -1.0,
                    bias: 0.0,
                    bias_after_scale: true,
                }),
                vec![c.req(0)?],
                neg.clone(),
            ),
            conv_op(Op::ArgMax(a), vec![neg], c.output(0)),
        ])
    });
    r.insert("LogSoftmax", log_softmax);
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
        let axes = axes_of(c, "axes", 13)?.ok_or_else(|| c.bad("axes", "missing"))?;
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
    r.insert("ArgMax", |c| {
        if c.int_or("select_last_index", 0)? != 0 {
            return Err(c.unsupported("`ArgMax` with select_last_index=1"));
        }
        let a = ArgMax {
            axis: c.int_or("axis", 0)?,
            keepdims: c.int_or("keepdims", 1)? != 0,
            flatten: false,
            dtype: DType::I64,
        };
        one(Op::ArgMax(a), vec![c.req(0)?], c.output(0))
    });
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

fn gather(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let (x, idx) = (c.req(0)?, c.req(1)?);
    let rank = c.need_rank(0)?;
    let axis = c.axis("axis", c.int_or("axis", 0)?, rank)?;
    let idx_rank = c.need_rank(1)?;
    if idx_rank <= 1 {
        let g = Gather { axis: axis as i64 };
        return one(Op::Gather(g), vec![x, idx], c.output(0));
    }
    if rank == 2 && axis == 0 {
        // Rows of a table by an index tensor of any rank: an embedding lookup.
        let e = Embedding { padding_idx: None };
        return one(Op::Embedding(e), vec![idx, x], c.output(0));
    }
    // Otherwise through a 1-D index, when the shapes are static.
    let known = |n: &str| c.scope.type_of(n).and_then(|t| t.shape.to_known());
    let (Some(xd), Some(id)) = (known(&x), known(&idx)) else {
        return Err(c.unsupported(format!(
            "`Gather` of a rank-{rank} input on axis {axis} by a rank-{idx_rank} index of dynamic shape"
        )));
    };
    let mut shape: Vec<i64> = xd[..axis].iter().map(|&d| d as i64).collect();
    shape.extend(id.iter().map(|&d| d as i64));
    shape.extend(xd[axis + 1..].iter().map(|&d| d as i64));
    let (flat, g) = (c.tmp(), c.tmp());
    let reshape = |shape: Vec<i64>| {
        Op::Reshape(Reshape {
            shape,
            shape_input: ListInput::Attr,
        })
    };
    Ok(vec![
        conv_op(reshape(vec![-1]), vec![idx], flat.clone()),
        conv_op(
            Op::Gather(Gather { axis: axis as i64 }),
            vec![x, flat],
            g.clone(),
        ),
        conv_op(reshape(shape), vec![g], c.output(0)),
    ])
}

fn reduce_fn(kind: ReduceKind) -> Converter {
    match kind {
        ReduceKind::Sum => |c| reduce(c, ReduceKind::Sum, 13),
        ReduceKind::Mean => |c| reduce(c, ReduceKind::Mean, 18),
        ReduceKind::Max => |c| reduce(c, ReduceKind::Max, 18),
        ReduceKind::Min => |c| reduce(c, ReduceKind::Min, 18),
        ReduceKind::Prod => |c| reduce(c, ReduceKind::Prod, 18),
    }
}

/// Axes from the attribute (before `input_since`) or input 1 (from it on).
fn axes_of(c: &NodeCtx<'_>, what: &str, input_since: i64) -> Result<Option<Vec<i64>>> {
    if c.opset >= input_since {
        c.const_ints(1, what)
    } else {
        c.ints(what)
    }
}

fn reduce(c: &NodeCtx<'_>, kind: ReduceKind, input_since: i64) -> Result<Vec<Converted>> {
    let axes = axes_of(c, "axes", input_since)?.unwrap_or_default();
    if axes.is_empty() && c.int_or("noop_with_empty_axes", 0)? != 0 {
        return one(Op::Identity(Identity), vec![c.req(0)?], c.output(0));
    }
    let r = Reduce {
        kind,
        reduce_all: axes.is_empty(),
        axes,
        keep_dim: c.int_or("keepdims", 1)? != 0,
    };
    one(Op::Reduce(r), vec![c.req(0)?], c.output(0))
}

/// `post(reduce(pre(x)))` for the composite reductions (L1, L2, log-sum-exp, ...), their
/// axes as ReduceSum's (an input from opset 18).
fn reduce_of(
    c: &NodeCtx<'_>,
    pre: Option<UnaryOp>,
    kind: ReduceKind,
    post: Option<UnaryOp>,
) -> Result<Vec<Converted>> {
    let mut v = reduce(c, kind, 18)?;
    let mut x = c.req(0)?;
    let mut out = Vec::new();
    if let Some(u) = pre {
        let t = c.tmp();
        out.push(conv_op(Op::Unary(u), vec![x], t.clone()));
        x = t;
    }
    v[0].inputs[0] = x;
    if let Some(u) = post {
        let t = c.tmp();
        v[0].outputs = vec![t.clone()];
        out.append(&mut v);
        out.push(conv_op(Op::Unary(u), vec![t], c.output(0)));
    } else {
        out.append(&mut v);
    }
    Ok(out)
}

fn clip(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let (min, max) = if c.opset < 11 {
        (c.float_or("min", f32::MIN)?, c.float_or("max", f32::MAX)?)
    } else {
        (
            c.const_scalar(1, "min")?.map_or(f32::MIN, |v| v as f32),
            c.const_scalar(2, "max")?.map_or(f32::MAX, |v| v as f32),
        )
    };
    if min > max {
        return Err(c.bad("min", format!("min {min} > max {max}")));
    }
    let u = if min == 0.0 && max == 6.0 {
        UnaryOp::Relu6 { threshold: 6.0 }
    } else if min == 0.0 && max == f32::MAX {
        UnaryOp::Relu
    } else {
        UnaryOp::Clip { min, max }
    };
    unary(c, u)
}

fn prelu(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let x_rank = c.need_rank(0)?;
    let slope = c.req(1)?;
    let st = c
        .scope
        .type_of(&slope)
        .ok_or_else(|| c.unsupported("`PRelu` slope of unknown shape"))?;
    let dims = st
        .shape
        .to_known()
        .ok_or_else(|| c.unsupported("`PRelu` with a dynamic slope shape"))?;
    let n: usize = dims.iter().product();
    let mode = if n == 1 {
        PreluMode::All
    } else if x_rank >= 2 && dims.len() + 1 == x_rank && dims.iter().skip(1).all(|&d| d == 1) {
        PreluMode::Channel
    } else {
        // Any other broadcast: where(x < 0, x · slope, x).
        let x = c.req(0)?;
        let dtype = st.dtype;
        let (zero, neg, prod) = (c.tmp(), c.tmp(), c.tmp());
        let f = FillConstant {
            shape: vec![],
            value: 0.0,
            dtype,
            shape_input: ListInput::Attr,
            value_input: false,
        };
        return Ok(vec![
            conv_op(Op::FillConstant(f), vec![], zero.clone()),
            conv_op(
                Op::Compare(Compare {
                    op: CmpOp::Lt,
                    axis: -1,
                }),
                vec![x.clone(), zero],
                neg.clone(),
            ),
            conv_op(
                Op::Binary(Binary {
                    op: BinaryOp::Mul,
                    axis: -1,
                }),
                vec![x.clone(), slope],
                prod.clone(),
            ),
            conv_op(Op::Where(Where), vec![neg, prod, x], c.output(0)),
        ]);
    };
    let p = Prelu {
        mode,
        layout: Layout::Nchw,
    };
    one(Op::Prelu(p), vec![c.req(0)?, slope], c.output(0))
}

fn softmax(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let x = c.req(0)?;
    if c.opset >= 13 {
        let axis = c.int_or("axis", -1)?;
        return one(Op::Softmax(Softmax { axis }), vec![x], c.output(0));
    }
    // Before opset 13: the input coerced to 2-D at `axis`, softmax over the second dim.
    let rank = c.need_rank(0)?;
    let axis = c.axis("axis", c.int_or("axis", 1)?, rank)?;
    if axis + 1 == rank {
        return one(Op::Softmax(Softmax { axis: -1 }), vec![x], c.output(0));
    }
    let (flat, sm, shape) = (c.tmp(), c.tmp(), c.tmp());
    Ok(vec![
        conv_op(
            Op::Flatten(Flatten::To2d { axis }),
            vec![x.clone()],
            flat.clone(),
        ),
        conv_op(Op::Softmax(Softmax { axis: -1 }), vec![flat], sm.clone()),
        conv_op(Op::Shape(ShapeOf { i64: true }), vec![x], shape.clone()),
        conv_op(
            Op::Reshape(Reshape {
                shape: vec![],
                shape_input: ListInput::Tensor,
            }),
            vec![sm, shape],
            c.output(0),
        ),
    ])
}

/// `x − max − log Σ exp(x − max)` over one axis (before opset 13: over the dims from `axis`
/// on, the input coerced to 2-D).
fn log_softmax(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let x = c.req(0)?;
    let rank = c.need_rank(0)?;
    let default = if c.opset >= 13 { -1 } else { 1 };
    let axis = c.axis("axis", c.int_or("axis", default)?, rank)?;
    let axes: Vec<i64> = if c.opset >= 13 {
        vec![axis as i64]
    } else {
        (axis as i64..rank as i64).collect()
    };
    let red = |kind| {
        Op::Reduce(Reduce {
            kind,
            axes: axes.clone(),
            keep_dim: true,
            reduce_all: false,
        })
    };
    let sub = |a: String, b: String, out: String| {
        conv_op(
            Op::Binary(Binary {
                op: BinaryOp::Sub,
                axis: -1,
            }),
            vec![a, b],
            out,
        )
    };
    let (m, d, e, s, l) = (c.tmp(), c.tmp(), c.tmp(), c.tmp(), c.tmp());
    Ok(vec![
        conv_op(red(ReduceKind::Max), vec![x.clone()], m.clone()),
        sub(x, m, d.clone()),
        conv_op(Op::Unary(UnaryOp::Exp), vec![d.clone()], e.clone()),
        conv_op(red(ReduceKind::Sum), vec![e], s.clone()),
        conv_op(Op::Unary(UnaryOp::Log), vec![s], l.clone()),
        sub(d, l, c.output(0)),
    ])
}

fn gemm(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let alpha = c.float_or("alpha", 1.0)?;
    let beta = c.float_or("beta", 1.0)?;
    let m = MatMul {
        trans_x: c.int_or("transA", 0)? != 0,
        trans_y: c.int_or("transB", 0)? != 0,
        alpha,
    };
    let Some(bias) = c.input(2).filter(|_| beta != 0.0) else {
        return one(Op::MatMul(m), vec![c.req(0)?, c.req(1)?], c.output(0));
    };
    let mut v = Vec::new();
    let prod = c.tmp();
    v.push(conv_op(
        Op::MatMul(m),
        vec![c.req(0)?, c.req(1)?],
        prod.clone(),
    ));
    let bias = if beta == 1.0 {
        bias
    } else {
        let b = c.tmp();
        v.push(conv_op(
            Op::Unary(UnaryOp::Scale {
                scale: beta,
                bias: 0.0,
                bias_after_scale: true,
            }),
            vec![bias],
            b.clone(),
        ));
        b
    };
    v.push(conv_op(
        Op::Binary(Binary {
            op: BinaryOp::Add,
            axis: -1,
        }),
        vec![prod, bias],
        c.output(0),
    ));
    Ok(v)
}

/// 2-D spatial attributes: `name` with two values (default `d`).
fn pair(c: &NodeCtx<'_>, name: &str, d: usize) -> Result<[usize; 2]> {
    match c.ints(name)? {
        None => Ok([d, d]),
        Some(v) if v.len() == 2 && v.iter().all(|&x| x >= 0) => Ok([v[0] as usize, v[1] as usize]),
        Some(v) => Err(c.unsupported(format!(
            "`{}` with {name} {v:?} (Kayak runs 2-D spatial ops)",
            c.node.op_type
        ))),
    }
}

/// `auto_pad` and `pads` ([top, left, bottom, right] in ONNX) as the IR's padding.
fn padding(c: &NodeCtx<'_>) -> Result<Padding> {
    match c.str_or("auto_pad", "NOTSET")?.as_str() {
        "NOTSET" | "" => {}
        "SAME_UPPER" => return Ok(Padding::Same),
        "VALID" => return Ok(Padding::Valid),
        other => return Err(c.unsupported(format!("auto_pad {other}"))),
    }
    match c.ints("pads")? {
        None => Ok(Padding::Explicit([0; 4])),
        Some(p) if p.len() == 4 && p.iter().all(|&x| x >= 0) => Ok(Padding::Explicit([
            p[0] as usize,
            p[2] as usize,
            p[1] as usize,
            p[3] as usize,
        ])),
        Some(p) => Err(c.unsupported(format!(
            "`{}` with pads {p:?} (2-D, non-negative)",
            c.node.op_type
        ))),
    }
}

fn spatial_2d(c: &NodeCtx<'_>) -> Result<()> {
    match c.rank(0) {
        Some(4) | None => Ok(()),
        Some(r) => Err(c.unsupported(format!(
            "`{}` on a rank-{r} input (Kayak runs 2-D spatial ops, rank 4)",
            c.node.op_type
        ))),
    }
}

/// A conv and its bias as the bias add on the channel axis, the form every conv fusion
/// starts from (Paddle writes it that way).
fn with_bias(c: &NodeCtx<'_>, op: Op) -> Result<Vec<Converted>> {
    let ins = vec![c.req(0)?, c.req(1)?];
    let Some(bias) = c.input(2) else {
        return one(op, ins, c.output(0));
    };
    let t = c.tmp();
    Ok(vec![
        conv_op(op, ins, t.clone()),
        conv_op(
            Op::Binary(Binary {
                op: BinaryOp::Add,
                axis: 1,
            }),
            vec![t, bias],
            c.output(0),
        ),
    ])
}

fn conv(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    spatial_2d(c)?;
    let cv = Conv {
        strides: pair(c, "strides", 1)?,
        padding: padding(c)?,
        dilations: pair(c, "dilations", 1)?,
        groups: c.int_or("group", 1)?.max(1) as usize,
        layout: Layout::Nchw,
        has_bias: false,
    };
    with_bias(c, Op::Conv2d(cv))
}

fn conv_transpose(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    spatial_2d(c)?;
    let auto_pad = c.str_or("auto_pad", "NOTSET")?;
    if !matches!(auto_pad.as_str(), "NOTSET" | "" | "VALID") {
        return Err(c.unsupported(format!("`ConvTranspose` with auto_pad {auto_pad}")));
    }
    let output_size = match c.ints("output_shape")? {
        None => None,
        Some(v) if v.len() == 2 && v.iter().all(|&x| x > 0) => Some([v[0] as usize, v[1] as usize]),
        Some(v) => return Err(c.bad("output_shape", format!("{v:?}"))),
    };
    let ct = ConvTranspose {
        strides: pair(c, "strides", 1)?,
        padding: padding(c)?,
        dilations: pair(c, "dilations", 1)?,
        groups: c.int_or("group", 1)?.max(1) as usize,
        output_padding: pair(c, "output_padding", 0)?,
        output_size,
        layout: Layout::Nchw,
        has_bias: false,
    };
    with_bias(c, Op::Conv2dTranspose(ct))
}

fn batch_norm(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    if c.int_or("training_mode", 0)? != 0 {
        return Err(c.unsupported("`BatchNormalization` in training mode"));
    }
    c.only_outputs(1)?;
    let b = BatchNorm {
        epsilon: c.float_or("epsilon", 1e-5)?,
        layout: Layout::Nchw,
    };
    // ONNX: X, scale, B, mean, var; the IR: x, scale, bias, mean, variance.
    let ins = (0..5).map(|k| c.req(k)).collect::<Result<Vec<_>>>()?;
    one(Op::BatchNorm(b), ins, c.output(0))
}

fn layer_norm(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    c.only_outputs(3)?;
    let rank = c.need_rank(0)?;
    let axis = c.axis("axis", c.int_or("axis", -1)?, rank)?;
    let epsilon = c.float_or("epsilon", 1e-5)?;
    let mut v = Vec::new();
    // Mean and InvStdDev, when the graph reads them: over the normalized axes, kept.
    let (mean, inv) = (c.output(1), c.output(2));
    if [&mean, &inv]
        .iter()
        .any(|o| !o.is_empty() && c.used.contains(*o))
    {
        let x = c.req(0)?;
        let axes: Vec<i64> = (axis as i64..rank as i64).collect();
        let red = |x: String, out: String| {
            conv_op(
                Op::Reduce(Reduce {
                    kind: ReduceKind::Mean,
                    axes: axes.clone(),
                    keep_dim: true,
                    reduce_all: false,
                }),
                vec![x],
                out,
            )
        };
        let m = if mean.is_empty() { c.tmp() } else { mean };
        let (d, sq, var, ve) = (c.tmp(), c.tmp(), c.tmp(), c.tmp());
        let inv = if inv.is_empty() { c.tmp() } else { inv };
        v.push(red(x.clone(), m.clone()));
        v.push(conv_op(
            Op::Binary(Binary {
                op: BinaryOp::Sub,
                axis: -1,
            }),
            vec![x, m],
            d.clone(),
        ));
        v.push(conv_op(Op::Unary(UnaryOp::Square), vec![d], sq.clone()));
        v.push(red(sq, var.clone()));
        v.push(conv_op(
            Op::Unary(UnaryOp::Scale {
                scale: 1.0,
                bias: epsilon,
                bias_after_scale: true,
            }),
            vec![var],
            ve.clone(),
        ));
        v.push(conv_op(Op::Unary(UnaryOp::Rsqrt), vec![ve], inv));
    }
    let mut ins = vec![c.req(0)?];
    // The IR's scale and bias are 1-D over the normalized elements.
    let mut flat = |name: String| {
        if axis + 1 == rank {
            return name;
        }
        let t = c.tmp();
        v.push(conv_op(
            Op::Reshape(Reshape {
                shape: vec![-1],
                shape_input: ListInput::Attr,
            }),
            vec![name],
            t.clone(),
        ));
        t
    };
    let scale = c.input(1).map(&mut flat);
    let bias = c.input(2).map(&mut flat);
    let l = LayerNorm {
        begin_norm_axis: axis,
        epsilon,
        has_scale: scale.is_some(),
        has_bias: bias.is_some(),
    };
    ins.extend(scale);
    ins.extend(bias);
    v.push(conv_op(Op::LayerNorm(l), ins, c.output(0)));
    Ok(v)
}

fn pool(c: &NodeCtx<'_>, kind: PoolKind) -> Result<Vec<Converted>> {
    spatial_2d(c)?;
    c.only_outputs(1)?;
    if pair(c, "dilations", 1)? != [1, 1] {
        return Err(c.unsupported("pooling with dilations"));
    }
    if c.int_or("storage_order", 0)? != 0 {
        return Err(c.unsupported("`MaxPool` with storage_order=1"));
    }
    let ksize = match c.ints("kernel_shape")? {
        Some(k) if k.len() == 2 && k.iter().all(|&x| x > 0) => [k[0] as usize, k[1] as usize],
        Some(k) => return Err(c.unsupported(format!("pooling with kernel_shape {k:?}"))),
        None => return Err(c.bad("kernel_shape", "missing")),
    };
    let strides = pair(c, "strides", 1)?;
    let padding = padding(c)?;
    let ceil_mode = c.int_or("ceil_mode", 0)? != 0;
    if ceil_mode {
        ceil_guard(c, ksize, strides, &padding)?;
    }
    let p = Pool {
        kind,
        ksize,
        strides,
        padding,
        global: false,
        adaptive: false,
        ceil_mode,
        exclusive: c.int_or("count_include_pad", 0)? == 0,
        layout: Layout::Nchw,
    };
    one(Op::Pool2d(p), vec![c.req(0)?], c.output(0))
}

/// ONNX drops a ceil-mode window that would start inside the end padding; Kayak's pooling
/// (Paddle's) keeps it. That can only happen when the end pad is at least `k − s + 1`;
/// then the input size decides, and an unknown size is refused rather than risked.
fn ceil_guard(c: &NodeCtx<'_>, k: [usize; 2], s: [usize; 2], padding: &Padding) -> Result<()> {
    let Padding::Explicit([pt, pb, pl, pr]) = *padding else {
        return Ok(());
    };
    let dims = c
        .input(0)
        .and_then(|x| c.scope.type_of(&x))
        .and_then(|t| t.shape.to_known());
    for (i, (begin, end)) in [(pt, pb), (pl, pr)].into_iter().enumerate() {
        if end + s[i] < k[i] + 1 {
            continue;
        }
        let Some(d) = dims.as_ref().map(|d| d[2 + i]) else {
            return Err(c.unsupported(
                "ceil-mode pooling whose last window may start in the padding, on a dynamic size",
            ));
        };
        let span = d + begin + end;
        if span < k[i] {
            continue;
        }
        let out = (span - k[i]).div_ceil(s[i]) + 1;
        if (out - 1) * s[i] >= d + begin {
            return Err(c.unsupported(
                "ceil-mode pooling whose last window starts in the padding (ONNX drops it)",
            ));
        }
    }
    Ok(())
}

fn global_pool(c: &NodeCtx<'_>, kind: PoolKind) -> Result<Vec<Converted>> {
    spatial_2d(c)?;
    let p = Pool {
        global: true,
        ..Pool::window(kind, [1, 1], [1, 1])
    };
    one(Op::Pool2d(p), vec![c.req(0)?], c.output(0))
}

fn reshape(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let x = c.req(0)?;
    if c.opset < 5 {
        return Err(c.unsupported("`Reshape` before opset 5"));
    }
    let allowzero = c.int_or("allowzero", 0)? != 0;
    match c.const_ints(1, "shape") {
        Ok(Some(shape)) => {
            if allowzero && shape.contains(&0) {
                return Err(c.unsupported("`Reshape` with allowzero=1 and a 0 in the shape"));
            }
            let r = Reshape {
                shape,
                shape_input: ListInput::Attr,
            };
            one(Op::Reshape(r), vec![x], c.output(0))
        }
        _ => {
            let shape = c.req(1)?;
            if allowzero {
                return Err(
                    c.unsupported("`Reshape` with allowzero=1 and a shape computed at run time")
                );
            }
            // A target computed from shapes and constants: static, with copied dims as 0.
            if let Some(target) = c.scope.reshape_target(&shape, &x).filter(|_| !allowzero) {
                let r = Reshape {
                    shape: target,
                    shape_input: ListInput::Attr,
                };
                return one(Op::Reshape(r), vec![x], c.output(0));
            }
            let r = Reshape {
                shape: vec![],
                shape_input: ListInput::Tensor,
            };
            one(Op::Reshape(r), vec![x, shape], c.output(0))
        }
    }
}

fn split(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let axis = c.int_or("axis", 0)?;
    let outs: Vec<String> = c.node.output.clone();
    if outs.iter().any(String::is_empty) {
        return Err(c.unsupported("`Split` with an unnamed output"));
    }
    let sections = if c.opset >= 13 {
        c.const_ints(1, "split")?
    } else {
        c.ints("split")?
    };
    let s = match sections {
        Some(sec) => Split {
            axis,
            sections: sec,
            num: 0,
        },
        None => Split {
            axis,
            sections: vec![],
            num: outs.len(),
        },
    };
    if s.num_outputs() != outs.len() {
        return Err(c.bad(
            "split",
            format!("{} parts for {} outputs", s.num_outputs(), outs.len()),
        ));
    }
    Ok(vec![Converted {
        op: Op::Split(s),
        inputs: vec![c.req(0)?],
        outputs: outs,
    }])
}

fn slice(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let x = c.req(0)?;
    let (starts, ends, axes, steps) = if c.opset < 10 {
        (c.ints("starts")?, c.ints("ends")?, c.ints("axes")?, None)
    } else {
        (
            c.const_ints(1, "starts").ok().flatten(),
            c.const_ints(2, "ends").ok().flatten(),
            c.const_ints(3, "axes")?,
            c.const_ints(4, "steps")?,
        )
    };
    let n = match (&starts, &ends) {
        (Some(s), _) => s.len(),
        (_, Some(e)) => e.len(),
        _ => {
            let rank = c.rank(1).filter(|&r| r == 1);
            let t = rank.and_then(|_| c.scope.type_of(&c.input(1)?)?.shape.to_known());
            t.map(|d| d[0]).ok_or_else(|| {
                c.unsupported("`Slice` with run-time starts and ends of unknown length")
            })?
        }
    };
    let axes = axes.unwrap_or_else(|| (0..n as i64).collect());
    if axes.len() != n {
        return Err(c.bad("axes", format!("{} axes for {n} starts", axes.len())));
    }
    let steps = steps.unwrap_or_else(|| vec![1; n]);
    if steps.len() != n || steps.contains(&0) {
        return Err(c.bad("steps", format!("{steps:?}")));
    }
    if steps.iter().any(|&s| s != 1) {
        let (Some(starts), Some(ends)) = (starts, ends) else {
            return Err(c.unsupported("`Slice` with steps and run-time starts or ends"));
        };
        let s = StridedSlice {
            axes,
            starts,
            ends,
            strides: steps,
            decrease_axis: vec![],
        };
        return one(Op::StridedSlice(s), vec![x], c.output(0));
    }
    let mut ins = vec![x];
    let (starts, starts_input) = match starts {
        Some(s) => (s, ListInput::Attr),
        None => {
            ins.push(c.req(1)?);
            (vec![], ListInput::Tensor)
        }
    };
    let (ends, ends_input) = match ends {
        Some(e) => (e, ListInput::Attr),
        None => {
            ins.push(c.req(2)?);
            (vec![], ListInput::Tensor)
        }
    };
    let s = Slice {
        axes,
        starts,
        ends,
        decrease_axis: vec![],
        starts_input,
        ends_input,
    };
    one(Op::Slice(s), ins, c.output(0))
}

fn pad(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let rank = c.need_rank(0)?;
    let (pads, value) = if c.opset < 11 {
        (
            c.ints("pads")?.ok_or_else(|| c.bad("pads", "missing"))?,
            c.float_or("value", 0.0)? as f64,
        )
    } else {
        (
            c.const_ints(1, "pads")?
                .ok_or_else(|| c.bad("pads", "missing"))?,
            c.const_scalar(2, "constant_value")?.unwrap_or(0.0),
        )
    };
    let axes: Vec<usize> = match c.const_ints(3, "axes")? {
        Some(a) => a
            .iter()
            .map(|&x| c.axis("axes", x, rank))
            .collect::<Result<_>>()?,
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() || pads.iter().any(|&p| p < 0) {
        return Err(c.unsupported(format!(
            "`Pad` with pads {pads:?} for {} axes (negative pads crop)",
            axes.len()
        )));
    }
    let mut per = vec![(0usize, 0usize); rank];
    for (k, &a) in axes.iter().enumerate() {
        per[a] = (pads[k] as usize, pads[k + axes.len()] as usize);
    }
    let mode = match c.str_or("mode", "constant")?.as_str() {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Replicate,
        "wrap" => PadMode::Circular,
        other => return Err(c.bad("mode", format!("unknown `{other}`"))),
    };
    one(
        Op::Pad(Pad {
            pads: per,
            mode,
            value,
        }),
        vec![c.req(0)?],
        c.output(0),
    )
}

fn resize(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    spatial_2d(c)?;
    let mode = match c.str_or("mode", "nearest")?.as_str() {
        "nearest" => InterpMode::Nearest,
        "linear" => InterpMode::Bilinear,
        other => return Err(c.unsupported(format!("`Resize` mode `{other}`"))),
    };
    let ctm = c.str_or("coordinate_transformation_mode", "half_pixel")?;
    let (align_corners, align_mode) = match (mode, ctm.as_str()) {
        (InterpMode::Nearest, "asymmetric") => {
            let nm = c.str_or("nearest_mode", "round_prefer_floor")?;
            if nm != "floor" {
                return Err(c.unsupported(format!(
                    "`Resize` nearest with nearest_mode `{nm}` (Kayak's nearest is asymmetric + floor)"
                )));
            }
            (false, 1)
        }
        (InterpMode::Bilinear, "half_pixel") => (false, 0),
        (InterpMode::Bilinear, "asymmetric") => (false, 1),
        (InterpMode::Bilinear, "align_corners") => (true, 1),
        (_, other) => {
            return Err(c.unsupported(format!(
                "`Resize` {} with coordinate_transformation_mode `{other}`",
                c.str_or("mode", "nearest")?
            )))
        }
    };
    if c.int_or("antialias", 0)? != 0 {
        return Err(c.unsupported("`Resize` with antialias"));
    }
    // Opset 10: X, scales. From 11: X, roi, scales, sizes.
    let (scales_k, sizes_k) = if c.opset < 11 {
        (1, None)
    } else {
        (2, Some(3))
    };
    let scales = c.const_ints_f(scales_k)?;
    let sizes = match sizes_k {
        Some(k) => c.const_ints(k, "sizes")?,
        None => None,
    };
    let (mut out_h, mut out_w, mut scale) = (-1, -1, vec![]);
    match (sizes, scales) {
        (Some(s), _) if s.len() == 4 => {
            out_h = s[2];
            out_w = s[3];
        }
        (_, Some(s)) if s.len() == 4 && s[0] == 1.0 && s[1] == 1.0 => scale = vec![s[2], s[3]],
        (sz, sc) => {
            return Err(c.unsupported(format!(
                "`Resize` with sizes {sz:?} / scales {sc:?} (constant, 4-D, N and C unscaled)"
            )))
        }
    }
    let i = Interp {
        mode,
        out_h,
        out_w,
        scale,
        align_corners,
        align_mode,
        layout: Layout::Nchw,
        out_size_input: ListInput::Attr,
        scale_input: false,
    };
    one(Op::Interp(i), vec![c.req(0)?], c.output(0))
}

impl NodeCtx<'_> {
    /// Input `k` as constant floats, `None` when absent or empty.
    fn const_ints_f(&self, k: usize) -> Result<Option<Vec<f32>>> {
        let Some(name) = self.input(k) else {
            return Ok(None);
        };
        let t = self.scope.known(&name).ok_or_else(|| {
            self.unsupported(format!(
                "`{}` whose input {k} is computed at run time",
                self.node.op_type
            ))
        })?;
        if t.is_empty() {
            return Ok(None);
        }
        Ok(Some(t.to_f64_vec().iter().map(|&v| v as f32).collect()))
    }
}
