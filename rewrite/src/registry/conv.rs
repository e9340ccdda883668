//! Convolutions: biases and residuals per output channel, batch norms and scales folded into weights, epilogues (activation, post affine), SE blocks, transposed convolutions.

use super::*;

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
pub(super) fn scale_out_channels(
    w: &Tensor,
    k: &[f64],
    axis: usize,
    groups: usize,
) -> Option<Tensor> {
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

pub(super) fn bn_factors(eg: &KGraph, s: Id, v: Id, bn: Id) -> Option<Vec<f64>> {
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

fn with_act(eg: &mut KGraph, f: Id, act: UnaryOp) -> Option<Id> {
    let mut f = fused(eg, f)?.clone();
    f.act = Some(act);
    Some(attr_leaf(eg, Op::FusedConv(f)))
}

/// Registers this family's conditions and appliers.
pub(super) fn register(r: &mut Registry) {
    r.condition("channel_bias", 4, channel_bias);
    r.condition("bn_matches_conv", 2, |eg, a| {
            // The batch norm normalizes the conv's channel axis (same layout).
            matches!((op(eg, a[0]), fused(eg, a[1])), (Some(Op::BatchNorm(bn)), Some(f)) if bn.layout == f.conv.layout)
        });
    r.condition("plain_conv", 1, |eg, a| {
        fused(eg, a[0]).is_some_and(|f| !f.residual && f.act.is_none() && f.post.is_none())
    });
    r.condition("no_epilogue", 1, |eg, a| {
        fused(eg, a[0]).is_some_and(|f| f.act.is_none() && f.post.is_none())
    });
    r.condition("act_no_post", 1, |eg, a| {
        fused(eg, a[0]).is_some_and(|f| f.act.is_some() && f.post.is_none())
    });
    r.condition("no_post", 1, |eg, a| {
        fused(eg, a[0]).is_some_and(|f| f.post.is_none())
    });
    r.condition("global_avg_pool", 1, |eg, a| match op(eg, a[0]) {
        Some(Op::Pool2d(p)) => {
            p.kind == PoolKind::Avg
                && p.layout == Layout::Nchw
                && (p.global || (p.adaptive && p.ksize == [1, 1]))
        }
        _ => false,
    });
    r.condition("pointwise_conv_act", 2, |eg, a| {
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
                    kayak_ir::ops::Padding::Explicit([0, 0, 0, 0]) | kayak_ir::ops::Padding::Valid
                )
        }) && shape(eg, a[1]).is_some_and(|s| s.dims()[2..].iter().all(|d| d.known() == Some(1)))
    });
    r.condition("conv_output_type", 4, |eg, a| {
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
    r.condition("channel_bias_t", 4, |eg, a| {
        out_channels_t(eg, a[2], a[3]).is_some_and(|oc| per_channel(eg, a[0], a[1], oc, 1))
    });
    r.condition("no_bias_t", 1, |eg, a| matches!(op(eg, a[0]), Some(Op::Conv2dTranspose(c)) if !c.has_bias && c.layout == Layout::Nchw));
    r.condition("bias_t", 1, |eg, a| matches!(op(eg, a[0]), Some(Op::Conv2dTranspose(c)) if c.has_bias && c.layout == Layout::Nchw));
    r.applier("conv_as_fused", 1, |eg, a| {
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
    r.applier("zero_bias", 1, |eg, a| {
        let oc = out_channels(eg, a[0])?;
        Some(const_leaf(eg, Tensor::zeros(DType::F32, &[oc])))
    });
    r.applier("bias_sum", 2, |eg, a| {
        let (b, c) = (f32s(&*val(eg, a[0])?)?, f32s(&*val(eg, a[1])?)?);
        (b.len() == c.len()).then_some(())?;
        let s: Vec<f32> = b.iter().zip(&c).map(|(x, y)| x + y).collect();
        Some(const_leaf(eg, Tensor::from_f32s(&[s.len()], s).ok()?))
    });
    r.applier("bn_fold_weight", 4, |eg, a| {
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
    r.applier("bn_fold_bias", 6, |eg, a| {
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
    r.applier("scale_weight", 2, |eg, a| {
        let (w, (s, _)) = (val(eg, a[0])?, scale_of(eg, a[1])?);
        let out: Vec<f32> = f32s(&w)?.iter().map(|&x| x * s).collect();
        Some(const_leaf(eg, Tensor::from_f32s(w.shape(), out).ok()?))
    });
    r.applier("scale_bias", 2, |eg, a| {
        let (b, (s, t)) = (f32s(&*val(eg, a[0])?)?, scale_of(eg, a[1])?);
        let out: Vec<f32> = b
            .iter()
            .map(|&x| ((x as f64) * s as f64 + t as f64) as f32)
            .collect();
        Some(const_leaf(eg, Tensor::from_f32s(&[out.len()], out).ok()?))
    });
    r.applier("with_act", 2, |eg, a| {
        let act = act_of(eg, a[1])?;
        with_act(eg, a[0], act)
    });
    r.applier("with_relu", 1, |eg, a| with_act(eg, a[0], UnaryOp::Relu));
    r.applier("with_sigmoid", 1, |eg, a| {
        with_act(eg, a[0], UnaryOp::Sigmoid)
    });
    r.applier("with_tanh", 1, |eg, a| with_act(eg, a[0], UnaryOp::Tanh));
    r.applier("with_post", 2, |eg, a| {
        let mut f = fused(eg, a[0])?.clone();
        f.post = Some(scale_of(eg, a[1])?);
        Some(attr_leaf(eg, Op::FusedConv(f)))
    });
    r.applier("with_residual", 1, |eg, a| {
        let mut f = fused(eg, a[0])?.clone();
        f.residual = true;
        Some(attr_leaf(eg, Op::FusedConv(f)))
    });
    r.applier("se_attrs", 2, |eg, a| {
        let (f1, f2) = (fused(eg, a[0])?, fused(eg, a[1])?);
        Some(attr_leaf(
            eg,
            Op::SeBlock(SeBlock {
                act1: f1.act?,
                act2: f2.act?,
            }),
        ))
    });
    r.applier("with_bias_t", 1, |eg, a| {
        let Some(Op::Conv2dTranspose(c)) = op(eg, a[0]) else {
            return None;
        };
        let mut c = c.clone();
        c.has_bias = true;
        Some(attr_leaf(eg, Op::Conv2dTranspose(c)))
    });
    r.applier("bn_fold_weight_t", 5, |eg, a| {
        // a = [w, scale, var, bn, conv_transpose attrs]
        let k = bn_factors(eg, a[1], a[2], a[3])?;
        let Some(Op::Conv2dTranspose(c)) = op(eg, a[4]) else {
            return None;
        };
        // The batch norm must normalize the NCHW channel axis.
        matches!(op(eg, a[3]), Some(Op::BatchNorm(b)) if b.layout == Layout::Nchw).then_some(())?;
        let groups = c.groups;
        let w = val(eg, a[0])?;
        let t = scale_out_channels(&w, &k, 1, groups)?;
        Some(const_leaf(eg, t))
    });
}
