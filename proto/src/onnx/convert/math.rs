//! Elementwise and reduction converters: variadic ops, reductions (their axes by opset), clip, prelu, softmax and log-softmax, gemm.

use super::*;

/// A variadic elementwise op (`Sum`, `Max`, ...) as a chain of binary ops.
pub(super) fn variadic(c: &NodeCtx<'_>, op: BinaryOp) -> Result<Vec<Converted>> {
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
        v.push(conv_op(bin(op), vec![acc, x.clone()], out.clone()));
        acc = out;
    }
    Ok(v)
}

pub(super) fn reduce_fn(kind: ReduceKind) -> Converter {
    match kind {
        ReduceKind::Sum => |c| reduce(c, ReduceKind::Sum, 13),
        ReduceKind::Mean => |c| reduce(c, ReduceKind::Mean, 18),
        ReduceKind::Max => |c| reduce(c, ReduceKind::Max, 18),
        ReduceKind::Min => |c| reduce(c, ReduceKind::Min, 18),
        ReduceKind::Prod => |c| reduce(c, ReduceKind::Prod, 18),
    }
}

/// Axes from the attribute (before `input_since`) or input 1 (from it on).
pub(super) fn axes_of(c: &NodeCtx<'_>, what: &str, input_since: i64) -> Result<Option<Vec<i64>>> {
    if c.opset >= input_since {
        c.const_ints(1, what)
    } else {
        c.ints(what)
    }
}

pub(super) fn reduce(
    c: &NodeCtx<'_>,
    kind: ReduceKind,
    input_since: i64,
) -> Result<Vec<Converted>> {
    let axes = axes_of(c, "axes", input_since)?.unwrap_or_default();
    if axes.is_empty() && c.int_or("noop_with_empty_axes", 0)? != 0 {
        return one(Op::Identity(Identity), vec![c.req(0)?], c.output(0));
    }
    let r = reduce_over(kind, axes, c.int_or("keepdims", 1)? != 0);
    // A max or min of booleans: an any or all, through integers.
    if matches!(kind, ReduceKind::Max | ReduceKind::Min) && c.dtype(0)? == DType::Bool {
        let mut e = index::Emit::new(c);
        let i = e.op(Op::Cast(Cast { to: DType::I32 }), vec![c.req(0)?]);
        let m = e.op(r, vec![i]);
        return Ok(e.last(Op::Cast(Cast { to: DType::Bool }), vec![m], c.output(0)));
    }
    one(r, vec![c.req(0)?], c.output(0))
}

/// `post(reduce(pre(x)))` for the composite reductions (L1, L2, log-sum-exp, ...), their
/// axes as ReduceSum's (an input from opset 18).
pub(super) fn reduce_of(
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

pub(super) fn clip(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
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

pub(super) fn prelu(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
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

pub(super) fn softmax(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
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
pub(super) fn log_softmax(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let x = c.req(0)?;
    let rank = c.need_rank(0)?;
    let default = if c.opset >= 13 { -1 } else { 1 };
    let axis = c.axis("axis", c.int_or("axis", default)?, rank)?;
    let axes: Vec<i64> = if c.opset >= 13 {
        vec![axis as i64]
    } else {
        (axis as i64..rank as i64).collect()
    };
    Ok(log_softmax_over(c, x, &axes, c.output(0)))
}

/// `out = log_softmax(x)` over `axes`, as max, subtract, exp, sum, log, subtract.
pub(super) fn log_softmax_over(
    c: &NodeCtx<'_>,
    x: String,
    axes: &[i64],
    out: String,
) -> Vec<Converted> {
    let red = |kind| reduce_over(kind, axes.to_vec(), true);
    let (m, d, e, s, l) = (c.tmp(), c.tmp(), c.tmp(), c.tmp(), c.tmp());
    vec![
        conv_op(red(ReduceKind::Max), vec![x.clone()], m.clone()),
        conv_op(bin(BinaryOp::Sub), vec![x, m], d.clone()),
        conv_op(Op::Unary(UnaryOp::Exp), vec![d.clone()], e.clone()),
        conv_op(red(ReduceKind::Sum), vec![e], s.clone()),
        conv_op(Op::Unary(UnaryOp::Log), vec![s], l.clone()),
        conv_op(bin(BinaryOp::Sub), vec![d, l], out),
    ]
}

pub(super) fn gemm(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
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
        v.push(conv_op(scale(beta, 0.0), vec![bias], b.clone()));
        b
    };
    v.push(conv_op(bin(BinaryOp::Add), vec![prod, bias], c.output(0)));
    Ok(v)
}

/// `IsNaN`: `x ≠ x`.
pub(super) fn is_nan(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let x = c.req(0)?;
    one(index::cmp(CmpOp::Ne), vec![x.clone(), x], c.output(0))
}

/// `IsInf`: `x = +∞` and/or `x = −∞` (`detect_positive`, `detect_negative`).
pub(super) fn is_inf(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let x = c.req(0)?;
    let dt = c.dtype(0)?;
    let mut e = index::Emit::new(c);
    let mut hits = Vec::new();
    for (attr, v) in [
        ("detect_positive", f64::INFINITY),
        ("detect_negative", f64::NEG_INFINITY),
    ] {
        if c.int_or(attr, 1)? != 0 {
            let inf = e.scalar(v, dt);
            hits.push(e.op(index::cmp(CmpOp::Eq), vec![x.clone(), inf]));
        }
    }
    Ok(match hits.len() {
        0 => e.last(
            Op::FillAnyLike(FillAnyLike {
                value: 0.0,
                dtype: Some(DType::Bool),
            }),
            vec![x],
            c.output(0),
        ),
        1 => e.last(Op::Identity(Identity), hits, c.output(0)),
        _ => e.last(Op::Logical(LogicalOp::Or), hits, c.output(0)),
    })
}

/// `Shrink`: `x + bias` below `−lambd`, `x − bias` above `lambd`, 0 between.
pub(super) fn shrink(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let x = c.req(0)?;
    let dt = c.dtype(0)?;
    let lambd = c.float_or("lambd", 0.5)? as f64;
    let bias = c.float_or("bias", 0.0)? as f64;
    let mut e = index::Emit::new(c);
    let (lo, hi) = (e.scalar(-lambd, dt), e.scalar(lambd, dt));
    let (bc, zero) = (e.scalar(bias, dt), e.scalar(0.0, dt));
    let below = e.op(index::cmp(CmpOp::Lt), vec![x.clone(), lo]);
    let above = e.op(index::cmp(CmpOp::Gt), vec![x.clone(), hi]);
    let up = e.op(bin(BinaryOp::Add), vec![x.clone(), bc.clone()]);
    let down = e.op(bin(BinaryOp::Sub), vec![x, bc]);
    let mid = e.op(Op::Where(Where), vec![above, down, zero]);
    Ok(e.last(Op::Where(Where), vec![below, up, mid], c.output(0)))
}
