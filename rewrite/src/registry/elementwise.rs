//! Scales and activations: scale algebra, activation recognition (hard_swish, gelu in primitives), an elementwise op with its activation.

use super::*;

fn near(a: f32, b: f64) -> bool {
    (a as f64 - b).abs() <= 1e-6 * b.abs().max(1.0)
}

/// Registers this family's conditions and appliers.
pub(super) fn register(r: &mut Registry) {
    r.condition("identity_scale", 1, |eg, a| {
        scale_of(eg, a[0]) == Some((1.0, 0.0))
    });
    r.condition("no_bias_scale", 1, |eg, a| {
        scale_of(eg, a[0]).is_some_and(|(_, t)| t == 0.0)
    });
    r.condition("eps_scale", 1, |eg, a| {
        scale_of(eg, a[0]).is_some_and(|(s, t)| s == 1.0 && t >= 0.0)
    });
    r.condition("plus_one", 1, |eg, a| {
        scale_of(eg, a[0]).is_some_and(|(s, t)| s == 1.0 && t == 1.0)
    });
    r.condition("inv_sqrt2_scale", 1, |eg, a| {
        scale_of(eg, a[0])
            .is_some_and(|(s, t)| t == 0.0 && near(s, std::f64::consts::FRAC_1_SQRT_2))
    });
    r.condition("gelu_tanh_scales", 3, |eg, a| {
            // a = [√(2/π) scale, 0.044715 scale, pow attrs]
            let c1 = scale_of(eg, a[0]).is_some_and(|(s, t)| t == 0.0 && near(s, (2.0 / std::f64::consts::PI).sqrt()));
            let c2 = scale_of(eg, a[1]).is_some_and(|(s, t)| t == 0.0 && near(s, 0.044715));
            c1 && c2 && matches!(op(eg, a[2]), Some(Op::Unary(UnaryOp::PowScalar { factor })) if *factor == 3.0)
        });
    r.condition("is_activation", 1, |eg, a| act_of(eg, a[0]).is_some());
    r.condition("act_kind", 1, |eg, a| act_of(eg, a[0]).is_some());
    r.condition("hard_sigmoid_positive", 1, |eg, a| matches!(op(eg, a[0]), Some(Op::Unary(UnaryOp::HardSigmoid { slope, .. })) if *slope > 0.0));
    r.condition("unit_scale", 1, |eg, a| {
        scale_of(eg, a[0]).is_some_and(|(s, _)| s == 1.0)
    });
    r.applier("scale_of_div", 1, |eg, a| {
        let s = scalar(eg, a[0])?;
        let inv = 1.0 / s;
        inv.is_finite().then_some(())?;
        Some(attr_leaf(
            eg,
            Op::Unary(UnaryOp::Scale {
                scale: inv,
                bias: 0.0,
                bias_after_scale: true,
            }),
        ))
    });
    r.applier("hard_swish_of_parts", 3, |eg, a| {
        let (k, _) = scale_of(eg, a[0])?;
        let Some(Op::Unary(UnaryOp::Relu6 { threshold })) = op(eg, a[1]) else {
            return None;
        };
        let threshold = *threshold;
        let (_, offset) = scale_of(eg, a[2])?;
        (k > 0.0).then_some(())?;
        Some(attr_leaf(
            eg,
            Op::Unary(UnaryOp::HardSwish {
                threshold,
                scale: (1.0f64 / k as f64) as f32,
                offset,
            }),
        ))
    });
    r.applier("scale_of_mul", 1, |eg, a| {
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
    r.applier("scale_of_add", 1, |eg, a| {
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
    r.applier("compose_scale", 2, |eg, a| {
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
    r.applier("times_two", 0, |eg, _| {
        Some(attr_leaf(
            eg,
            Op::Unary(UnaryOp::Scale {
                scale: 2.0,
                bias: 0.0,
                bias_after_scale: true,
            }),
        ))
    });
    r.applier("hard_swish_of", 1, |eg, a| {
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
    r.applier("swish_one", 0, |eg, _| {
        Some(attr_leaf(eg, Op::Unary(UnaryOp::Swish { beta: 1.0 })))
    });
    r.applier("gelu_erf", 0, |eg, _| {
        Some(attr_leaf(
            eg,
            Op::Unary(UnaryOp::Gelu { approximate: false }),
        ))
    });
    r.applier("gelu_tanh", 0, |eg, _| {
        Some(attr_leaf(
            eg,
            Op::Unary(UnaryOp::Gelu { approximate: true }),
        ))
    });
    r.applier("fused_binary_act", 2, |eg, a| {
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
    r.applier("fused_binary_relu", 1, |eg, a| {
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
}
