//! Matrix products: a bias and an activation fused into a matmul, scales folded into its alpha, `mul` as a matmul, batch norm folded into an fc, three products of one input merged into one.

use super::*;

/// Registers this family's conditions and appliers.
pub(super) fn register(r: &mut Registry) {
    r.condition("swaps_last_two", 1, |eg, a| {
        perm_of(eg, a[0]).is_some_and(|p| {
            let n = p.len();
            n >= 2
                && p[n - 1] == n - 2
                && p[n - 2] == n - 1
                && p[..n - 2].iter().enumerate().all(|(i, &x)| i == x)
        })
    });
    r.condition(
        "not_trans_y",
        1,
        |eg, a| matches!(op(eg, a[0]), Some(Op::MatMul(m)) if !m.trans_y),
    );
    r.applier("with_trans_y", 1, |eg, a| {
        let Some(Op::MatMul(m)) = op(eg, a[0]) else {
            return None;
        };
        let m = kayak_ir::ops::MatMul {
            trans_y: true,
            ..m.clone()
        };
        Some(attr_leaf(eg, Op::MatMul(m)))
    });
    r.condition("matmul_bias_ok", 5, |eg, a| {
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
        let (Some(x), Some(w), Some(b)) = (shape(eg, a[2]), val(eg, a[3]), val(eg, a[4])) else {
            return false;
        };
        if w.shape().len() != 2 || b.shape().len() != 1 || b.dtype() != DType::F32 || x.rank() < 2 {
            return false;
        }
        let n = if m.trans_y {
            w.shape()[0]
        } else {
            w.shape()[1]
        };
        b.len() == n && (*axis == -1 || *axis == x.rank() as i64 - 1)
    });
    r.condition("weight_2d", 1, |eg, a| {
        val(eg, a[0]).is_some_and(|v| v.shape().len() == 2)
    });
    r.condition("rank2_plain_matmul", 2, |eg, a| {
        matches!(op(eg, a[0]), Some(Op::FusedMatMul(f)) if f.act.is_none() && !f.mm.trans_y)
            && shape(eg, a[1]).is_some_and(|s| s.rank() == 2)
    });
    r.condition(
        "plain_matmul",
        1,
        |eg, a| matches!(op(eg, a[0]), Some(Op::FusedMatMul(f)) if f.act.is_none()),
    );
    r.condition("mul_is_matmul", 3, |eg, a| {
        // Paddle's mul with x flattened at rank-1 and a 2-D weight is a plain matmul.
        let (Some(Op::Mul(m)), Some(x), Some(w)) = (op(eg, a[0]), shape(eg, a[1]), val(eg, a[2]))
        else {
            return false;
        };
        x.rank() >= 2
            && m.x_num_col_dims == x.rank() - 1
            && m.y_num_col_dims == 1
            && w.shape().len() == 2
    });
    r.condition("same_fc3", 3, |eg, a| {
        let fc = |id: Id| match op(eg, id) {
            Some(Op::FusedMatMul(f))
                if f.has_bias
                    && f.act.is_none()
                    && !f.mm.trans_x
                    && !f.mm.trans_y
                    && f.mm.alpha == 1.0 =>
            {
                Some(f.clone())
            }
            _ => None,
        };
        matches!((fc(a[0]), fc(a[1]), fc(a[2])), (Some(x), Some(y), Some(z)) if x == y && y == z)
    });
    r.condition("not_split_yet", 1, |eg, a| {
        !eg[a[0]].nodes.iter().any(|n| matches!(n, Node::Get(..)))
    });
    r.condition("same_shape3", 0, |eg, a| {
        let s: Vec<Option<Vec<usize>>> = a
            .iter()
            .map(|&i| val(eg, i).map(|t| t.shape().to_vec()))
            .collect();
        s[0].is_some() && s.iter().all(|x| *x == s[0])
    });
    r.condition("equal_thirds", 2, |eg, a| {
        match (op(eg, a[0]), op(eg, a[1])) {
            (Some(Op::Split(s)), Some(Op::Attention(at))) => {
                !at.packed && s.axis == -1 && s.sections == vec![(at.heads * at.head_dim) as i64; 3]
            }
            _ => false,
        }
    });
    r.applier("matmul_with_bias", 1, |eg, a| {
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
    r.applier("matmul_with_act", 2, |eg, a| {
        let Some(Op::FusedMatMul(f)) = op(eg, a[0]) else {
            return None;
        };
        let mut f = f.clone();
        f.act = Some(act_of(eg, a[1])?);
        Some(attr_leaf(eg, Op::FusedMatMul(f)))
    });
    r.applier("matmul_with_relu", 1, |eg, a| {
        let Some(Op::FusedMatMul(f)) = op(eg, a[0]) else {
            return None;
        };
        let mut f = f.clone();
        f.act = Some(UnaryOp::Relu);
        Some(attr_leaf(eg, Op::FusedMatMul(f)))
    });
    r.applier("plain_matmul_attrs", 0, |eg, _| {
        Some(attr_leaf(
            eg,
            Op::MatMul(MatMul {
                trans_x: false,
                trans_y: false,
                alpha: 1.0,
            }),
        ))
    });
    r.applier("matmul_scale_alpha", 2, |eg, a| {
        // A pure scale on a matmul output or on either operand: alpha times s.
        let (Some(Op::MatMul(m)), Some((s, t))) = (op(eg, a[0]), scale_of(eg, a[1])) else {
            return None;
        };
        (t == 0.0).then_some(())?;
        let mut m = m.clone();
        m.alpha *= s;
        Some(attr_leaf(eg, Op::MatMul(m)))
    });
    r.applier("bn_fold_weight_fc", 4, |eg, a| {
        // a = [w [K, N], scale, var, bn]: scale columns.
        let k = conv::bn_factors(eg, a[1], a[2], a[3])?;
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
    r.applier("concat_cols3", 1, |eg, a| {
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
    r.applier("concat_vec3", 0, |eg, a| {
        let mut out = Vec::new();
        for &i in a {
            let v = val(eg, i)?;
            (v.shape().len() == 1).then_some(())?;
            out.extend(f32s(&v)?);
        }
        Some(const_leaf(eg, Tensor::from_f32s(&[out.len()], out).ok()?))
    });
    r.applier("split3", 0, |eg, a| {
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
}
