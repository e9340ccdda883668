//! Named conditions and appliers that rule files refer to.
//!
//! A **condition** reads analysis data of its argument classes (shapes, dtypes, constant
//! values, attributes) and says whether a rule may fire. An **applier** computes something a
//! right-hand side needs — new attributes (an attribute leaf) or a folded constant (a
//! constant leaf) — or declines (`None`), which cancels the rewrite.

use crate::analysis::KGraph;
use crate::language::{Attrs, Node};
use egg::Id;
use kayak_ir::ops::{Binary, Embedding};
use kayak_ir::ops::{
    BinaryOp, Conv, FusedConv, FusedMatMul, Layout, MatMul, PoolKind, SeBlock, SkipLayerNorm,
    UnaryOp,
};
use kayak_ir::{DType, Dim, Op, Shape, Tensor};
use std::collections::HashMap;
use std::sync::Arc;

/// A named condition.
pub type Condition = fn(&KGraph, &[Id]) -> bool;
/// A named applier.
pub type ApplierFn = fn(&mut KGraph, &[Id]) -> Option<Id>;

/// The registry of conditions and appliers.
#[derive(Clone)]
pub struct Registry {
    /// Conditions by name.
    pub conditions: HashMap<&'static str, Condition>,
    /// Appliers by name.
    pub appliers: HashMap<&'static str, ApplierFn>,
    /// How many arguments each condition reads (at least).
    pub cond_arity: HashMap<&'static str, usize>,
    /// How many arguments each applier reads (at least).
    pub applier_arity: HashMap<&'static str, usize>,
}

fn op(eg: &KGraph, id: Id) -> Option<&Op> {
    eg[id].data.op()
}
fn val(eg: &KGraph, id: Id) -> Option<Arc<Tensor>> {
    eg[id].data.value().cloned()
}
fn shape(eg: &KGraph, id: Id) -> Option<&Shape> {
    eg[id].data.ty().map(|t| &t.shape)
}
fn f32s(t: &Tensor) -> Option<Vec<f32>> {
    (t.dtype() == DType::F32)
        .then(|| {
            t.as_f32().map(|a| match a.as_slice() {
                Some(s) => s.to_vec(),
                None => a.iter().copied().collect(),
            })
        })
        .flatten()
}
/// Adds an attribute leaf.
pub fn attr_leaf(eg: &mut KGraph, op: Op) -> Id {
    eg.add(Node::Attr(Attrs::new(op)))
}
/// Adds a constant leaf.
pub fn const_leaf(eg: &mut KGraph, t: Tensor) -> Id {
    let k = eg.analysis.intern(Arc::new(t));
    eg.add(Node::Const(k))
}
fn fused(eg: &KGraph, id: Id) -> Option<&FusedConv> {
    match op(eg, id)? {
        Op::FusedConv(f) => Some(f),
        _ => None,
    }
}
fn scalar(eg: &KGraph, id: Id) -> Option<f32> {
    let v = val(eg, id)?;
    (v.len() == 1 && v.dtype() == DType::F32)
        .then(|| f32s(&v).map(|x| x[0]))
        .flatten()
}
fn scale_of(eg: &KGraph, id: Id) -> Option<(f32, f32)> {
    match op(eg, id)? {
        Op::Unary(UnaryOp::Scale {
            scale,
            bias,
            bias_after_scale,
        }) => Some(if *bias_after_scale {
            (*scale, *bias)
        } else {
            (*scale, scale * bias)
        }),
        _ => None,
    }
}
/// The activation an attribute leaf (or a param-free kind) stands for.
fn act_of(eg: &KGraph, id: Id) -> Option<UnaryOp> {
    match op(eg, id)? {
        Op::Unary(u) if is_activation(u) => Some(*u),
        _ => None,
    }
}
fn is_activation(u: &UnaryOp) -> bool {
    matches!(
        u,
        UnaryOp::Relu
            | UnaryOp::Relu6 { .. }
            | UnaryOp::LeakyRelu { .. }
            | UnaryOp::HardSwish { .. }
            | UnaryOp::HardSigmoid { .. }
            | UnaryOp::Sigmoid
            | UnaryOp::Swish { .. }
            | UnaryOp::Gelu { .. }
            | UnaryOp::Tanh
    )
}
fn out_channels(eg: &KGraph, w: Id) -> Option<usize> {
    shape(eg, w)?.dims().first()?.known()
}

/// Does `c`, added to the output of conv `f` (`[N, C, H, W]`, or `[N, H, W, C]` for NHWC)
/// with this `add`'s axis, act as a per-channel bias of `C` values? a = [add, c, w, f]
fn channel_bias(eg: &KGraph, a: &[Id]) -> bool {
    let (add, c, w) = (a[0], a[1], a[2]);
    let Some(f) = fused(eg, a[3]) else {
        return false;
    };
    let axis = if f.conv.layout == Layout::Nhwc { 3 } else { 1 };
    out_channels(eg, w).is_some_and(|oc| per_channel(eg, add, c, oc, axis))
}

/// `(H, D)` of a `reshape [0, 0, H, D]` that splits packed heads.
fn heads_of(eg: &KGraph, r: Id) -> Option<(usize, usize)> {
    match op(eg, r)? {
        Op::Reshape(kayak_ir::ops::Reshape {
            shape,
            shape_input: kayak_ir::ops::ListInput::Attr,
        }) if shape.len() == 4
            && shape[0] == 0
            && shape[1] == 0
            && shape[2] > 0
            && shape[3] > 0 =>
        {
            Some((shape[2] as usize, shape[3] as usize))
        }
        _ => None,
    }
}

fn is_perm(eg: &KGraph, t: Id, p: &[usize]) -> bool {
    matches!(op(eg, t), Some(Op::Transpose(kayak_ir::ops::Transpose { perm })) if perm == p)
}

/// The attention pattern's pieces are what the fused op computes:
/// a = [rq, rk, rv, tq, tk, tv, m1, am, m2, t3, r2] (the softmax's axis is the separate
/// condition `softmax_last_axis`).
fn attention_ok(eg: &KGraph, a: &[Id]) -> bool {
    let (Some(hq), Some(hk), Some(hv)) =
        (heads_of(eg, a[0]), heads_of(eg, a[1]), heads_of(eg, a[2]))
    else {
        return false;
    };
    let heads_t = [0, 2, 1, 3];
    let plain_mm = |id: Id, ty: bool| matches!(op(eg, id), Some(Op::MatMul(m)) if !m.trans_x && m.trans_y == ty && m.alpha == 1.0);
    hq == hk
        && hk == hv
        && is_perm(eg, a[3], &heads_t)
        && is_perm(eg, a[4], &heads_t)
        && is_perm(eg, a[5], &heads_t)
        && plain_mm(a[6], true)
        && matches!(
            op(eg, a[7]),
            Some(Op::Binary(Binary {
                op: BinaryOp::Add,
                axis: -1
            }))
        )
        && plain_mm(a[8], false)
        && is_perm(eg, a[9], &heads_t)
        && matches!(op(eg, a[10]), Some(Op::Reshape(kayak_ir::ops::Reshape { shape, shape_input: kayak_ir::ops::ListInput::Attr })) if shape.len() == 3 && shape[0] == 0 && shape[1] == 0 && shape[2] == (hq.0 * hq.1) as i64)
}

/// Output channels of a transposed conv's weight `[IC, OC/groups, KH, KW]`.
fn out_channels_t(eg: &KGraph, ct: Id, w: Id) -> Option<usize> {
    let Some(Op::Conv2dTranspose(c)) = op(eg, ct) else {
        return None;
    };
    Some(shape(eg, w)?.dims().get(1)?.known()? * c.groups)
}

/// Is `c` a per-output-channel constant for a rank-4 output with `oc` channels on axis
/// `channel` (1 for NCHW, 3 for NHWC), under the add's axis rule?
fn per_channel(eg: &KGraph, add: Id, c: Id, oc: usize, channel: usize) -> bool {
    let Some(Op::Binary(Binary {
        op: BinaryOp::Add,
        axis,
    })) = op(eg, add)
    else {
        return false;
    };
    let Some(cv) = val(eg, c) else { return false };
    if cv.len() != oc || cv.dtype() != DType::F32 {
        return false;
    }
    let mut out = Shape(vec![Dim::Unknown; 4]);
    out.0[channel] = Dim::Known(oc);
    match kayak_ir::ops::paddle_broadcast("add", &out, &Shape::known(cv.shape()), *axis) {
        Ok((_, ys, _)) => ys.dims().iter().enumerate().all(|(i, d)| {
            if i == channel {
                d.known() == Some(oc)
            } else {
                d.known() == Some(1)
            }
        }),
        Err(_) => false,
    }
}

/// `w'[.., o, ..] = w[.., o, ..] · k[o]` along output-channel axis `axis` of a weight whose
/// output channels are `groups` blocks (transposed conv: axis 1 within each group).
fn scale_out_channels(w: &Tensor, k: &[f64], axis: usize, groups: usize) -> Option<Tensor> {
    let shape = w.shape().to_vec();
    let wv = f32s(w)?;
    let inner: usize = shape.get(axis + 1..)?.iter().product();
    let per_axis = *shape.get(axis)?;
    let blocks = if axis == 0 { 1 } else { groups };
    // One factor per output channel, or no fold.
    (groups > 0 && k.len() == per_axis * blocks && shape[0].is_multiple_of(groups)).then_some(())?;
    let out: Vec<f32> = wv
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let j = (i / inner) % per_axis;
            let o = if axis == 0 {
                j
            } else {
                (i / (inner * per_axis * (shape[0] / groups))) * per_axis + j
            };
            (x as f64 * k[o]) as f32
        })
        .collect();
    Tensor::from_f32s(&shape, out).ok()
}

fn bn_factors(eg: &KGraph, s: Id, v: Id, bn: Id) -> Option<Vec<f64>> {
    let (s, v) = (f32s(&*val(eg, s)?)?, f32s(&*val(eg, v)?)?);
    let Some(Op::BatchNorm(b)) = op(eg, bn) else {
        return None;
    };
    (s.len() == v.len()).then_some(())?;
    Some(
        s.iter()
            .zip(&v)
            .map(|(&a, &b2)| a as f64 / (b2 as f64 + b.epsilon as f64).sqrt())
            .collect(),
    )
}

fn perm_of(eg: &KGraph, t: Id) -> Option<&[usize]> {
    match op(eg, t)? {
        Op::Transpose(kayak_ir::ops::Transpose { perm }) => Some(perm),
        _ => None,
    }
}

impl Default for Registry {
    fn default() -> Registry {
        let mut c: HashMap<&'static str, Condition> = HashMap::new();
        let mut a: HashMap<&'static str, ApplierFn> = HashMap::new();

        // ---- conditions ---------------------------------------------------------------
        c.insert("is_const", |eg, a| val(eg, a[0]).is_some());
        c.insert("not_const", |eg, a| val(eg, a[0]).is_none());
        c.insert("scalar_const", |eg, a| scalar(eg, a[0]).is_some());
        c.insert("channel_bias", channel_bias);
        c.insert("bn_matches_conv", |eg, a| {
            // The batch norm normalizes the conv's channel axis (same layout).
            matches!((op(eg, a[0]), fused(eg, a[1])), (Some(Op::BatchNorm(bn)), Some(f)) if bn.layout == f.conv.layout)
        });
        c.insert("plain_conv", |eg, a| {
            fused(eg, a[0]).is_some_and(|f| !f.residual && f.act.is_none() && f.post.is_none())
        });
        c.insert("no_epilogue", |eg, a| {
            fused(eg, a[0]).is_some_and(|f| f.act.is_none() && f.post.is_none())
        });
        c.insert("act_no_post", |eg, a| {
            fused(eg, a[0]).is_some_and(|f| f.act.is_some() && f.post.is_none())
        });
        c.insert("no_post", |eg, a| {
            fused(eg, a[0]).is_some_and(|f| f.post.is_none())
        });
        c.insert("is_activation", |eg, a| act_of(eg, a[0]).is_some());
        c.insert(
            "same_shape",
            |eg, a| matches!((shape(eg, a[0]), shape(eg, a[1])), (Some(x), Some(y)) if x == y),
        );
        c.insert("elementwise_axis_ok", |eg, a| {
            matches!(op(eg, a[0]), Some(Op::Binary(Binary { op: _, axis: -1 })))
        });
        c.insert("identity_scale", |eg, a| {
            scale_of(eg, a[0]) == Some((1.0, 0.0))
        });
        c.insert("global_avg_pool", |eg, a| match op(eg, a[0]) {
            Some(Op::Pool2d(p)) => {
                p.kind == PoolKind::Avg
                    && p.layout == Layout::Nchw
                    && (p.global || (p.adaptive && p.ksize == [1, 1]))
            }
            _ => false,
        });
        c.insert("pointwise_conv_act", |eg, a| {
            fused(eg, a[0]).is_some_and(|f| {
                let k = &f.conv;
                !f.residual
                    && f.post.is_none()
                    && f.act.is_some()
                    && k.groups == 1
                    && k.strides == [1, 1]
                    && k.layout == Layout::Nchw
                    && k.has_bias
                    && matches!(
                        k.padding,
                        kayak_ir::ops::Padding::Explicit([0, 0, 0, 0])
                            | kayak_ir::ops::Padding::Valid
                    )
            }) && shape(eg, a[1])
                .is_some_and(|s| s.dims()[2..].iter().all(|d| d.known() == Some(1)))
        });
        c.insert("hard_sigmoid_positive", |eg, a| matches!(op(eg, a[0]), Some(Op::Unary(UnaryOp::HardSigmoid { slope, .. })) if *slope > 0.0));
        c.insert("matmul_bias_ok", |eg, a| {
            // a = [matmul attrs, add attrs, matmul input x, weight, bias]
            let (
                Some(Op::MatMul(m)),
                Some(Op::Binary(Binary {
                    op: BinaryOp::Add,
                    axis,
                })),
            ) = (op(eg, a[0]), op(eg, a[1]))
            else {
                return false;
            };
            let (Some(x), Some(w), Some(b)) = (shape(eg, a[2]), val(eg, a[3]), val(eg, a[4]))
            else {
                return false;
            };
            if w.shape().len() != 2
                || b.shape().len() != 1
                || b.dtype() != DType::F32
                || x.rank() < 2
            {
                return false;
            }
            let n = if m.trans_y {
                w.shape()[0]
            } else {
                w.shape()[1]
            };
            b.len() == n && (*axis == -1 || *axis == x.rank() as i64 - 1)
        });
        c.insert(
            "plain_matmul",
            |eg, a| matches!(op(eg, a[0]), Some(Op::FusedMatMul(f)) if f.act.is_none()),
        );
        c.insert("weight_2d", |eg, a| {
            val(eg, a[0]).is_some_and(|v| v.shape().len() == 2)
        });
        c.insert("conv_output_type", |eg, a| {
            // The conv (attributes a[0]) of x (a[1]) by w (a[2]) has exactly r's (a[3]) type:
            // an add of r is then elementwise, with no broadcast.
            let (Some(Op::FusedConv(f)), Some(x), Some(w), Some(r)) = (
                op(eg, a[0]),
                eg[a[1]].data.ty(),
                eg[a[2]].data.ty(),
                eg[a[3]].data.ty(),
            ) else {
                return false;
            };
            let conv = Op::Conv2d(Conv {
                has_bias: false,
                ..f.conv.clone()
            });
            let ins = [
                kayak_ir::InferInput { ty: x, value: None },
                kayak_ir::InferInput { ty: w, value: None },
            ];
            conv.infer(&ins).is_ok_and(|t| t.len() == 1 && t[0] == *r)
        });
        c.insert("same_type_tensors", |eg, a| {
            match (eg[a[0]].data.ty(), eg[a[1]].data.ty()) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            }
        });

        c.insert("attention_ok", attention_ok);
        c.insert("softmax_last_axis", |eg, a| {
            // Over the keys: the last axis of the [B, H, S, T] logits.
            matches!(
                op(eg, a[0]),
                Some(Op::Softmax(kayak_ir::ops::Softmax { axis: -1 | 3 }))
            )
        });
        c.insert("no_bias_scale", |eg, a| {
            scale_of(eg, a[0]).is_some_and(|(_, t)| t == 0.0)
        });

        c.insert("channel_bias_t", |eg, a| {
            out_channels_t(eg, a[2], a[3]).is_some_and(|oc| per_channel(eg, a[0], a[1], oc, 1))
        });
        c.insert("no_bias_t", |eg, a| matches!(op(eg, a[0]), Some(Op::Conv2dTranspose(c)) if !c.has_bias && c.layout == Layout::Nchw));
        c.insert("bias_t", |eg, a| matches!(op(eg, a[0]), Some(Op::Conv2dTranspose(c)) if c.has_bias && c.layout == Layout::Nchw));
        c.insert("rank2_plain_matmul", |eg, a| {
            matches!(op(eg, a[0]), Some(Op::FusedMatMul(f)) if f.act.is_none() && !f.mm.trans_y)
                && shape(eg, a[1]).is_some_and(|s| s.rank() == 2)
        });
        c.insert("identity_perm", |eg, a| {
            perm_of(eg, a[0]).is_some_and(|p| p.iter().enumerate().all(|(i, &x)| i == x))
        });
        c.insert("squeeze_undoes_unsqueeze", |eg, a| {
            match (op(eg, a[0]), op(eg, a[1])) {
                (Some(Op::Squeeze(s)), Some(Op::Unsqueeze(u))) => {
                    !s.axes.is_empty()
                        && s.axes == u.axes
                        && u.axes.iter().all(|&x| x >= 0)
                        && u.axes.len() == 1
                }
                _ => false,
            }
        });
        c.insert("reshape_static", |eg, a| matches!(op(eg, a[0]), Some(Op::Reshape(kayak_ir::ops::Reshape { shape, shape_input: kayak_ir::ops::ListInput::Attr })) if shape.iter().all(|&d| d != 0)));
        c.insert("act_kind", |eg, a| act_of(eg, a[0]).is_some());

        c.insert("mean_last_axis", |eg, a| {
            // a = [reduce attrs, the reduced tensor]
            let (Some(Op::Reduce(r)), Some(s)) = (op(eg, a[0]), shape(eg, a[1])) else {
                return false;
            };
            let rank = s.rank() as i64;
            r.kind == kayak_ir::ops::ReduceKind::Mean
                && r.keep_dim
                && !r.reduce_all
                && r.axes.len() == 1
                && (r.axes[0] == -1 || r.axes[0] == rank - 1)
        });
        c.insert("numpy_axis", |eg, a| {
            matches!(op(eg, a[0]), Some(Op::Binary(Binary { op: _, axis: -1 })))
        });
        c.insert("eps_scale", |eg, a| {
            scale_of(eg, a[0]).is_some_and(|(s, t)| s == 1.0 && t >= 0.0)
        });
        c.insert("last_dim_vector", |eg, a| {
            // a = [vector, x]
            let (Some(v), Some(s)) = (val(eg, a[0]), shape(eg, a[1])) else {
                return false;
            };
            v.shape().len() == 1
                && v.dtype() == DType::F32
                && s.dims().last().and_then(|d| d.known()) == Some(v.len())
        });

        fn near(a: f32, b: f64) -> bool {
            (a as f64 - b).abs() <= 1e-6 * b.abs().max(1.0)
        }
        c.insert("plus_one", |eg, a| {
            scale_of(eg, a[0]).is_some_and(|(s, t)| s == 1.0 && t == 1.0)
        });
        c.insert("inv_sqrt2_scale", |eg, a| {
            scale_of(eg, a[0])
                .is_some_and(|(s, t)| t == 0.0 && near(s, std::f64::consts::FRAC_1_SQRT_2))
        });
        c.insert("gelu_tanh_scales", |eg, a| {
            // a = [√(2/π) scale, 0.044715 scale, pow attrs]
            let c1 = scale_of(eg, a[0]).is_some_and(|(s, t)| t == 0.0 && near(s, (2.0 / std::f64::consts::PI).sqrt()));
            let c2 = scale_of(eg, a[1]).is_some_and(|(s, t)| t == 0.0 && near(s, 0.044715));
            c1 && c2 && matches!(op(eg, a[2]), Some(Op::Unary(UnaryOp::PowScalar { factor })) if *factor == 3.0)
        });

        c.insert("ordered3", |eg, a| {
            let (p, q, r) = (eg.find(a[0]), eg.find(a[1]), eg.find(a[2]));
            p < q && q < r
        });
        c.insert("same_fc3", |eg, a| {
            let fc = |id: Id| match op(eg, id) {
                Some(Op::FusedMatMul(f)) if f.has_bias && f.act.is_none() && !f.mm.trans_x && !f.mm.trans_y && f.mm.alpha == 1.0 => Some(f.clone()),
                _ => None,
            };
            matches!((fc(a[0]), fc(a[1]), fc(a[2])), (Some(x), Some(y), Some(z)) if x == y && y == z)
        });
        c.insert("view_noop", |eg, a| {
            // The view op (attributes a[0]) leaves x (a[1]) exactly as it is.
            let (Some(o), Some(ty)) = (op(eg, a[0]), eg[a[1]].data.ty()) else {
                return false;
            };
            o.is_view()
                && ty.shape.is_known()
                && o.infer(&[kayak_ir::InferInput { ty, value: None }])
                    .is_ok_and(|t| t.len() == 1 && t[0] == *ty)
        });
        c.insert("mul_is_matmul", |eg, a| {
            // Paddle's mul with x flattened at rank-1 and a 2-D weight is a plain matmul.
            let (Some(Op::Mul(m)), Some(x), Some(w)) =
                (op(eg, a[0]), shape(eg, a[1]), val(eg, a[2]))
            else {
                return false;
            };
            x.rank() >= 2
                && m.x_num_col_dims == x.rank() - 1
                && m.y_num_col_dims == 1
                && w.shape().len() == 2
        });
        c.insert("not_split_yet", |eg, a| {
            !eg[a[0]].nodes.iter().any(|n| matches!(n, Node::Get(..)))
        });
        c.insert("same_shape3", |eg, a| {
            let s: Vec<Option<Vec<usize>>> = a
                .iter()
                .map(|&i| val(eg, i).map(|t| t.shape().to_vec()))
                .collect();
            s[0].is_some() && s.iter().all(|x| *x == s[0])
        });
        c.insert("equal_thirds", |eg, a| match (op(eg, a[0]), op(eg, a[1])) {
            (Some(Op::Split(s)), Some(Op::Attention(at))) => {
                !at.packed && s.axis == -1 && s.sections == vec![(at.heads * at.head_dim) as i64; 3]
            }
            _ => false,
        });

        // ---- appliers -----------------------------------------------------------------
        a.insert("conv_as_fused", |eg, a| {
            let Some(Op::Conv2d(cv)) = op(eg, a[0]) else {
                return None;
            };
            let conv = Conv {
                has_bias: true,
                ..cv.clone()
            };
            Some(attr_leaf(
                eg,
                Op::FusedConv(FusedConv {
                    conv,
                    residual: false,
                    act: None,
                    post: None,
                }),
            ))
        });
        a.insert("zero_bias", |eg, a| {
            let oc = out_channels(eg, a[0])?;
            Some(const_leaf(eg, Tensor::zeros(DType::F32, &[oc])))
        });
        a.insert("bias_sum", |eg, a| {
            let (b, c) = (f32s(&*val(eg, a[0])?)?, f32s(&*val(eg, a[1])?)?);
            (b.len() == c.len()).then_some(())?;
            let s: Vec<f32> = b.iter().zip(&c).map(|(x, y)| x + y).collect();
            Some(const_leaf(eg, Tensor::from_f32s(&[s.len()], s).ok()?))
        });
        a.insert("bn_fold_weight", |eg, a| {
            // w' = w * scale / sqrt(var + eps), per output channel.
            let (w, s, v) = (
                val(eg, a[0])?,
                f32s(&*val(eg, a[1])?)?,
                f32s(&*val(eg, a[2])?)?,
            );
            let Some(Op::BatchNorm(bn)) = op(eg, a[3]) else {
                return None;
            };
            if bn.layout != Layout::Nchw || w.dtype() != DType::F32 {
                return None;
            }
            let oc = w.shape()[0];
            (s.len() == oc && v.len() == oc).then_some(())?;
            let per = w.len() / oc;
            let wv = f32s(&w)?;
            let out: Vec<f32> = wv
                .iter()
                .enumerate()
                .map(|(i, &x)| {
                    (x as f64 * s[i / per] as f64 / (v[i / per] as f64 + bn.epsilon as f64).sqrt())
                        as f32
                })
                .collect();
            Some(const_leaf(eg, Tensor::from_f32s(w.shape(), out).ok()?))
        });
        a.insert("bn_fold_bias", |eg, a| {
            // b' = (b - mean) * scale / sqrt(var + eps) + shift.
            let (b, s, t, m, v) = (
                f32s(&*val(eg, a[0])?)?,
                f32s(&*val(eg, a[1])?)?,
                f32s(&*val(eg, a[2])?)?,
                f32s(&*val(eg, a[3])?)?,
                f32s(&*val(eg, a[4])?)?,
            );
            let Some(Op::BatchNorm(bn)) = op(eg, a[5]) else {
                return None;
            };
            let n = b.len();
            (s.len() == n && t.len() == n && m.len() == n && v.len() == n).then_some(())?;
            let out: Vec<f32> = (0..n)
                .map(|i| {
                    ((b[i] as f64 - m[i] as f64) * s[i] as f64
                        / (v[i] as f64 + bn.epsilon as f64).sqrt()
                        + t[i] as f64) as f32
                })
                .collect();
            Some(const_leaf(eg, Tensor::from_f32s(&[n], out).ok()?))
        });
        a.insert("scale_weight", |eg, a| {
            let (w, (s, _)) = (val(eg, a[0])?, scale_of(eg, a[1])?);
            let out: Vec<f32> = f32s(&w)?.iter().map(|&x| x * s).collect();
            Some(const_leaf(eg, Tensor::from_f32s(w.shape(), out).ok()?))
        });
        a.insert("scale_bias", |eg, a| {
            let (b, (s, t)) = (f32s(&*val(eg, a[0])?)?, scale_of(eg, a[1])?);
            let out: Vec<f32> = b
                .iter()
                .map(|&x| ((x as f64) * s as f64 + t as f64) as f32)
                .collect();
            Some(const_leaf(eg, Tensor::from_f32s(&[out.len()], out).ok()?))
        });
        a.insert("scale_of_mul", |eg, a| {
            let s = scalar(eg, a[0])?;
            Some(attr_leaf(
                eg,
                Op::Unary(UnaryOp::Scale {
                    scale: s,
                    bias: 0.0,
                    bias_after_scale: true,
                }),
            ))
        });
        a.insert("scale_of_add", |eg, a| {
            let t = scalar(eg, a[0])?;
            Some(attr_leaf(
                eg,
                Op::Unary(UnaryOp::Scale {
                    scale: 1.0,
                    bias: t,
                    bias_after_scale: true,
                }),
            ))
        });
        a.insert("compose_scale", |eg, a| {
            // outer(inner(x)) = so * (si * x + ti) + to
            let ((so, to), (si, ti)) = (scale_of(eg, a[0])?, scale_of(eg, a[1])?);
            Some(attr_leaf(
                eg,
                Op::Unary(UnaryOp::Scale {
                    scale: so * si,
                    bias: (so as f64 * ti as f64 + to as f64) as f32,
                    bias_after_scale: true,
                }),
            ))
        });
        fn with_act(eg: &mut KGraph, f: Id, act: UnaryOp) -> Option<Id> {
            let mut f = fused(eg, f)?.clone();
            f.act = Some(act);
            Some(attr_leaf(eg, Op::FusedConv(f)))
        }
        a.insert("with_act", |eg, a| {
            let act = act_of(eg, a[1])?;
            with_act(eg, a[0], act)
        });
        a.insert("with_relu", |eg, a| with_act(eg, a[0], UnaryOp::Relu));
        a.insert("with_sigmoid", |eg, a| with_act(eg, a[0], UnaryOp::Sigmoid));
        a.insert("with_tanh", |eg, a| with_act(eg, a[0], UnaryOp::Tanh));
        a.insert("with_post", |eg, a| {
            let mut f = fused(eg, a[0])?.clone();
            f.post = Some(scale_of(eg, a[1])?);
            Some(attr_leaf(eg, Op::FusedConv(f)))
        });
        a.insert("with_residual", |eg, a| {
            let mut f = fused(eg, a[0])?.clone();
            f.residual = true;
            Some(attr_leaf(eg, Op::FusedConv(f)))
        });
        a.insert("se_attrs", |eg, a| {
            let (f1, f2) = (fused(eg, a[0])?, fused(eg, a[1])?);
            Some(attr_leaf(
                eg,
                Op::SeBlock(SeBlock {
                    act1: f1.act?,
                    act2: f2.act?,
                }),
            ))
        });
        a.insert("hard_swish_of", |eg, a| {
            let Some(Op::Unary(UnaryOp::HardSigmoid { slope, offset })) = op(eg, a[0]) else {
                return None;
            };
            let (slope, offset) = (*slope, *offset);
            (slope > 0.0).then_some(())?;
            let inv = (1.0f64 / slope as f64) as f32;
            Some(attr_leaf(
                eg,
                Op::Unary(UnaryOp::HardSwish {
                    threshold: inv,
                    scale: inv,
                    offset: (offset as f64 / slope as f64) as f32,
                }),
            ))
        });
        a.insert("matmul_with_bias", |eg, a| {
            let Some(Op::MatMul(m)) = op(eg, a[0]) else {
                return None;
            };
            let mm: MatMul = m.clone();
            Some(attr_leaf(
                eg,
                Op::FusedMatMul(FusedMatMul {
                    mm,
                    has_bias: true,
                    act: None,
                    packed: None,
                }),
            ))
        });
        a.insert("matmul_with_act", |eg, a| {
            let Some(Op::FusedMatMul(f)) = op(eg, a[0]) else {
                return None;
            };
            let mut f = f.clone();
            f.act = Some(act_of(eg, a[1])?);
            Some(attr_leaf(eg, Op::FusedMatMul(f)))
        });
        a.insert("matmul_with_relu", |eg, a| {
            let Some(Op::FusedMatMul(f)) = op(eg, a[0]) else {
                return None;
            };
            let mut f = f.clone();
            f.act = Some(UnaryOp::Relu);
            Some(attr_leaf(eg, Op::FusedMatMul(f)))
        });
        a.insert("skip_ln", |eg, a| {
            let Some(Op::LayerNorm(l)) = op(eg, a[0]) else {
                return None;
            };
            Some(attr_leaf(
                eg,
                Op::SkipLayerNorm(SkipLayerNorm { ln: l.clone() }),
            ))
        });
        a.insert("attention_attrs", |eg, a| {
            // a = [q reshape attrs, scale attrs]
            let (h, d) = heads_of(eg, a[0])?;
            let (s, _) = scale_of(eg, a[1])?;
            Some(attr_leaf(
                eg,
                Op::Attention(kayak_ir::ops::Attention {
                    heads: h,
                    head_dim: d,
                    scale: s,
                    has_mask: true,
                    packed: false,
                }),
            ))
        });
        a.insert("plain_matmul_attrs", |eg, _| {
            Some(attr_leaf(
                eg,
                Op::MatMul(MatMul {
                    trans_x: false,
                    trans_y: false,
                    alpha: 1.0,
                }),
            ))
        });
        a.insert("concat_cols3", |eg, a| {
            let ws: Vec<Arc<Tensor>> = a.iter().map(|&i| val(eg, i)).collect::<Option<_>>()?;
            let k = ws[0].shape().first().copied()?;
            if ws
                .iter()
                .any(|w| w.shape().len() != 2 || w.shape()[0] != k || w.dtype() != DType::F32)
            {
                return None;
            }
            let n: usize = ws.iter().map(|w| w.shape()[1]).sum();
            let cols: Vec<Vec<f32>> = ws.iter().map(|w| f32s(w)).collect::<Option<_>>()?;
            let mut out = Vec::with_capacity(k * n);
            for row in 0..k {
                for (w, c) in ws.iter().zip(&cols) {
                    let m = w.shape()[1];
                    out.extend_from_slice(&c[row * m..(row + 1) * m]);
                }
            }
            Some(const_leaf(eg, Tensor::from_f32s(&[k, n], out).ok()?))
        });
        a.insert("concat_vec3", |eg, a| {
            let mut out = Vec::new();
            for &i in a {
                let v = val(eg, i)?;
                (v.shape().len() == 1).then_some(())?;
                out.extend(f32s(&v)?);
            }
            Some(const_leaf(eg, Tensor::from_f32s(&[out.len()], out).ok()?))
        });
        a.insert("split3", |eg, a| {
            let sections: Vec<i64> = a
                .iter()
                .map(|&i| val(eg, i).and_then(|w| w.shape().get(1).map(|&n| n as i64)))
                .collect::<Option<_>>()?;
            Some(attr_leaf(
                eg,
                Op::Split(kayak_ir::ops::Split {
                    axis: -1,
                    sections,
                    num: 0,
                }),
            ))
        });
        a.insert("packed_attention", |eg, a| {
            let Some(Op::Attention(at)) = op(eg, a[0]) else {
                return None;
            };
            Some(attr_leaf(
                eg,
                Op::Attention(kayak_ir::ops::Attention {
                    packed: true,
                    ..at.clone()
                }),
            ))
        });
        a.insert("with_bias_t", |eg, a| {
            let Some(Op::Conv2dTranspose(c)) = op(eg, a[0]) else {
                return None;
            };
            let mut c = c.clone();
            c.has_bias = true;
            Some(attr_leaf(eg, Op::Conv2dTranspose(c)))
        });
        a.insert("bn_fold_weight_t", |eg, a| {
            // a = [w, scale, var, bn, conv_transpose attrs]
            let k = bn_factors(eg, a[1], a[2], a[3])?;
            let Some(Op::Conv2dTranspose(c)) = op(eg, a[4]) else {
                return None;
            };
            // The batch norm must normalize the NCHW channel axis.
            matches!(op(eg, a[3]), Some(Op::BatchNorm(b)) if b.layout == Layout::Nchw)
                .then_some(())?;
            let groups = c.groups;
            let w = val(eg, a[0])?;
            let t = scale_out_channels(&w, &k, 1, groups)?;
            Some(const_leaf(eg, t))
        });
        a.insert("bn_fold_weight_fc", |eg, a| {
            // a = [w [K, N], scale, var, bn]: scale columns.
            let k = bn_factors(eg, a[1], a[2], a[3])?;
            let w = val(eg, a[0])?;
            (w.shape().len() == 2 && w.shape()[1] == k.len()).then_some(())?;
            let n = w.shape()[1];
            let out: Vec<f32> = f32s(&w)?
                .iter()
                .enumerate()
                .map(|(i, &x)| (x as f64 * k[i % n]) as f32)
                .collect();
            Some(const_leaf(eg, Tensor::from_f32s(w.shape(), out).ok()?))
        });
        a.insert("compose_perm", |eg, a| {
            // outer(inner(x)): out axis i = inner axis outer[i] = x axis inner[outer[i]]
            let (o, i) = (perm_of(eg, a[0])?.to_vec(), perm_of(eg, a[1])?.to_vec());
            (o.len() == i.len()).then_some(())?;
            let perm: Vec<usize> = o.iter().map(|&k| i[k]).collect();
            Some(attr_leaf(
                eg,
                Op::Transpose(kayak_ir::ops::Transpose { perm }),
            ))
        });
        a.insert("fused_binary_act", |eg, a| {
            let Some(Op::Binary(Binary { op: bop, axis })) = op(eg, a[0]) else {
                return None;
            };
            let (bop, axis) = (*bop, *axis);
            let act = act_of(eg, a[1])?;
            Some(attr_leaf(
                eg,
                Op::FusedBinary(kayak_ir::ops::FusedBinary { op: bop, axis, act }),
            ))
        });
        a.insert("fused_binary_relu", |eg, a| {
            let Some(Op::Binary(Binary { op: bop, axis })) = op(eg, a[0]) else {
                return None;
            };
            Some(attr_leaf(
                eg,
                Op::FusedBinary(kayak_ir::ops::FusedBinary {
                    op: *bop,
                    axis: *axis,
                    act: UnaryOp::Relu,
                }),
            ))
        });
        a.insert("layer_norm_of", |eg, a| {
            // a = [x, eps scale]
            let rank = shape(eg, a[0])?.rank();
            let (_, eps) = scale_of(eg, a[1])?;
            (rank >= 1).then_some(())?;
            Some(attr_leaf(
                eg,
                Op::LayerNorm(kayak_ir::ops::LayerNorm {
                    begin_norm_axis: rank - 1,
                    epsilon: eps,
                    has_scale: true,
                    has_bias: true,
                }),
            ))
        });
        a.insert("embedding_ln3", |eg, a| {
            // a = [layer_norm attrs, embedding attrs × 3]
            let Some(Op::LayerNorm(l)) = op(eg, a[0]) else {
                return None;
            };
            let l = l.clone();
            let mut pads = Vec::new();
            for &e in &a[1..] {
                let Some(Op::Embedding(Embedding { padding_idx })) = op(eg, e) else {
                    return None;
                };
                pads.push(*padding_idx);
            }
            (l.has_scale && l.has_bias).then_some(())?;
            Some(attr_leaf(
                eg,
                Op::EmbeddingLayerNorm(kayak_ir::ops::EmbeddingLayerNorm {
                    padding_idx: pads,
                    ln: l,
                }),
            ))
        });
        a.insert("gelu_erf", |eg, _| {
            Some(attr_leaf(
                eg,
                Op::Unary(UnaryOp::Gelu { approximate: false }),
            ))
        });
        a.insert("gelu_tanh", |eg, _| {
            Some(attr_leaf(
                eg,
                Op::Unary(UnaryOp::Gelu { approximate: true }),
            ))
        });
        a.insert("times_two", |eg, _| {
            Some(attr_leaf(
                eg,
                Op::Unary(UnaryOp::Scale {
                    scale: 2.0,
                    bias: 0.0,
                    bias_after_scale: true,
                }),
            ))
        });
        a.insert("matmul_scale_alpha", |eg, a| {
            // A pure scale on a matmul output or on either operand: alpha times s.
            let (Some(Op::MatMul(m)), Some((s, t))) = (op(eg, a[0]), scale_of(eg, a[1])) else {
                return None;
            };
            (t == 0.0).then_some(())?;
            let mut m = m.clone();
            m.alpha *= s;
            Some(attr_leaf(eg, Op::MatMul(m)))
        });
        let mut cond_arity = HashMap::new();
        let mut applier_arity = HashMap::new();
        applier_arity.insert("attention_attrs", 2);
        applier_arity.insert("bias_sum", 2);
        applier_arity.insert("bn_fold_bias", 6);
        applier_arity.insert("bn_fold_weight", 4);
        applier_arity.insert("bn_fold_weight_fc", 4);
        applier_arity.insert("bn_fold_weight_t", 5);
        applier_arity.insert("compose_perm", 2);
        applier_arity.insert("compose_scale", 2);
        applier_arity.insert("concat_cols3", 1);
        applier_arity.insert("concat_vec3", 0);
        applier_arity.insert("conv_as_fused", 1);
        applier_arity.insert("embedding_ln3", 2);
        applier_arity.insert("fused_binary_act", 2);
        applier_arity.insert("fused_binary_relu", 1);
        applier_arity.insert("gelu_erf", 0);
        applier_arity.insert("gelu_tanh", 0);
        applier_arity.insert("hard_swish_of", 1);
        applier_arity.insert("layer_norm_of", 2);
        applier_arity.insert("matmul_scale_alpha", 2);
        applier_arity.insert("matmul_with_act", 2);
        applier_arity.insert("matmul_with_bias", 1);
        applier_arity.insert("matmul_with_relu", 1);
        applier_arity.insert("packed_attention", 1);
        applier_arity.insert("plain_matmul_attrs", 0);
        applier_arity.insert("scale_bias", 2);
        applier_arity.insert("scale_of_add", 1);
        applier_arity.insert("scale_of_mul", 1);
        applier_arity.insert("scale_weight", 2);
        applier_arity.insert("se_attrs", 2);
        applier_arity.insert("skip_ln", 1);
        applier_arity.insert("split3", 0);
        applier_arity.insert("times_two", 0);
        applier_arity.insert("with_act", 2);
        applier_arity.insert("with_bias_t", 1);
        applier_arity.insert("with_post", 2);
        applier_arity.insert("with_relu", 1);
        applier_arity.insert("with_residual", 1);
        applier_arity.insert("with_sigmoid", 1);
        applier_arity.insert("with_tanh", 1);
        applier_arity.insert("zero_bias", 1);
        cond_arity.insert("act_kind", 1);
        cond_arity.insert("act_no_post", 1);
        cond_arity.insert("attention_ok", 11);
        cond_arity.insert("softmax_last_axis", 1);
        cond_arity.insert("bias_t", 1);
        cond_arity.insert("channel_bias", 4);
        cond_arity.insert("bn_matches_conv", 2);
        cond_arity.insert("channel_bias_t", 4);
        cond_arity.insert("elementwise_axis_ok", 1);
        cond_arity.insert("eps_scale", 1);
        cond_arity.insert("equal_thirds", 2);
        cond_arity.insert("gelu_tanh_scales", 3);
        cond_arity.insert("global_avg_pool", 1);
        cond_arity.insert("hard_sigmoid_positive", 1);
        cond_arity.insert("identity_perm", 1);
        cond_arity.insert("identity_scale", 1);
        cond_arity.insert("inv_sqrt2_scale", 1);
        cond_arity.insert("is_activation", 1);
        cond_arity.insert("is_const", 1);
        cond_arity.insert("last_dim_vector", 2);
        cond_arity.insert("matmul_bias_ok", 5);
        cond_arity.insert("mean_last_axis", 2);
        cond_arity.insert("mul_is_matmul", 3);
        cond_arity.insert("no_bias_scale", 1);
        cond_arity.insert("no_bias_t", 1);
        cond_arity.insert("no_epilogue", 1);
        cond_arity.insert("no_post", 1);
        cond_arity.insert("not_const", 1);
        cond_arity.insert("not_split_yet", 1);
        cond_arity.insert("numpy_axis", 1);
        cond_arity.insert("ordered3", 3);
        cond_arity.insert("plain_conv", 1);
        cond_arity.insert("plain_matmul", 1);
        cond_arity.insert("plus_one", 1);
        cond_arity.insert("pointwise_conv_act", 2);
        cond_arity.insert("rank2_plain_matmul", 2);
        cond_arity.insert("reshape_static", 1);
        cond_arity.insert("same_fc3", 3);
        cond_arity.insert("same_shape", 2);
        cond_arity.insert("same_shape3", 0);
        cond_arity.insert("same_type_tensors", 2);
        cond_arity.insert("conv_output_type", 4);
        cond_arity.insert("scalar_const", 1);
        cond_arity.insert("squeeze_undoes_unsqueeze", 2);
        cond_arity.insert("view_noop", 2);
        cond_arity.insert("weight_2d", 1);
        Registry {
            conditions: c,
            appliers: a,
            cond_arity,
            applier_arity,
        }
    }
}
