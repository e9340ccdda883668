//! Transformer blocks: multi-head attention, layer norm from its primitives and after a residual add, summed embedding lookups feeding a layer norm.

use super::*;

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

/// Registers this family's conditions and appliers.
pub(super) fn register(r: &mut Registry) {
    r.condition("attention_ok", 11, attention_ok);
    r.condition("softmax_last_axis", 1, |eg, a| {
        // Over the keys: the last axis of the [B, H, S, T] logits.
        matches!(
            op(eg, a[0]),
            Some(Op::Softmax(kayak_ir::ops::Softmax { axis: -1 | 3 }))
        )
    });
    r.condition("mean_last_axis", 2, |eg, a| {
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
    r.applier("skip_ln", 1, |eg, a| {
        let Some(Op::LayerNorm(l)) = op(eg, a[0]) else {
            return None;
        };
        Some(attr_leaf(
            eg,
            Op::SkipLayerNorm(SkipLayerNorm { ln: l.clone() }),
        ))
    });
    r.applier("attention_attrs", 2, |eg, a| {
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
    r.applier("packed_attention", 1, |eg, a| {
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
    r.applier("layer_norm_of", 2, |eg, a| {
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
    r.applier("embedding_ln3", 2, |eg, a| {
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
}
