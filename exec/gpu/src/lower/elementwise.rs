//! Elementwise kernels: copies, unary ops (the activations), binary ops with Paddle's
//! broadcast and a fused activation, and prelu; and the C expressions of the activations
//! and binary ops that other kernels' epilogues reuse.

use super::template::{fill, lit};
use super::{channel_axis, kernel, shape, DevOp, Operand};
use kayak_gpu::Param;
use kayak_ir::ops::{Binary, BinaryOp, Layout, PreluMode, UnaryOp};
use kayak_ir::{DType, Graph, Op, Tensor};

/// `p0[i] = e` for `i < n`.
const ELEMENTWISE: &str = include_str!("../cu/elementwise.cu");
/// `p0[i] = p1[i] > 0 ? p1[i] : p2[alpha] · p1[i]`.
const PRELU: &str = include_str!("../cu/prelu.cu");

/// The activation as a C expression of `v`; `None` for ops no kernel computes.
pub fn act_expr(u: &UnaryOp, v: &str) -> Option<String> {
    Some(match *u {
        UnaryOp::Relu => format!("fmaxf({v}, 0.0f)"),
        UnaryOp::Relu6 { threshold } => format!("fminf(fmaxf({v}, 0.0f), {})", lit(threshold)),
        UnaryOp::LeakyRelu { alpha } => format!("({v} > 0.0f ? {v} : {} * {v})", lit(alpha)),
        UnaryOp::HardSwish {
            threshold,
            scale,
            offset,
        } => format!(
            "({v} * fminf(fmaxf({v} + {}, 0.0f), {}) / {})",
            lit(offset),
            lit(threshold),
            lit(scale)
        ),
        UnaryOp::HardSigmoid { slope, offset } => format!(
            "fminf(fmaxf({} * {v} + {}, 0.0f), 1.0f)",
            lit(slope),
            lit(offset)
        ),
        UnaryOp::Sigmoid => format!("kayak_sigmoid({v})"),
        UnaryOp::Swish { beta } => format!("({v} * kayak_sigmoid({} * {v}))", lit(beta)),
        UnaryOp::Gelu { approximate: false } => {
            format!("(0.5f * {v} * (1.0f + erff({v} * 0.70710678118654752f)))")
        }
        UnaryOp::Gelu { approximate: true } => format!(
            "(0.5f * {v} * (1.0f + tanhf(0.79788456080286536f * ({v} + 0.044715f * {v} * {v} * {v}))))"
        ),
        UnaryOp::Tanh => format!("tanhf({v})"),
        UnaryOp::Exp => format!("expf({v})"),
        UnaryOp::Log => format!("logf({v})"),
        UnaryOp::Sqrt => format!("sqrtf({v})"),
        UnaryOp::Rsqrt => format!("rsqrtf({v})"),
        UnaryOp::Abs => format!("fabsf({v})"),
        UnaryOp::Square => format!("({v} * {v})"),
        UnaryOp::Reciprocal => format!("(1.0f / {v})"),
        UnaryOp::Floor => format!("floorf({v})"),
        UnaryOp::Ceil => format!("ceilf({v})"),
        UnaryOp::Erf => format!("erff({v})"),
        UnaryOp::Sin => format!("sinf({v})"),
        UnaryOp::Cos => format!("cosf({v})"),
        UnaryOp::Tan => format!("tanf({v})"),
        UnaryOp::Asin => format!("asinf({v})"),
        UnaryOp::Acos => format!("acosf({v})"),
        UnaryOp::Atan => format!("atanf({v})"),
        UnaryOp::Sinh => format!("sinhf({v})"),
        UnaryOp::Cosh => format!("coshf({v})"),
        UnaryOp::Asinh => format!("asinhf({v})"),
        UnaryOp::Acosh => format!("acoshf({v})"),
        UnaryOp::Atanh => format!("atanhf({v})"),
        UnaryOp::Sign => format!("(({v} > 0.0f) ? 1.0f : (({v} < 0.0f) ? -1.0f : {v}))"),
        UnaryOp::Round => format!("rintf({v})"),
        UnaryOp::Softplus => format!("(({v} > 20.0f) ? {v} : log1pf(expf({v})))"),
        UnaryOp::Softsign => format!("({v} / (1.0f + fabsf({v})))"),
        UnaryOp::Mish => format!("({v} * tanhf(({v} > 20.0f) ? {v} : log1pf(expf({v}))))"),
        UnaryOp::Elu { alpha } => format!("({v} > 0.0f ? {v} : {} * expm1f({v}))", lit(alpha)),
        UnaryOp::Selu { alpha, gamma } => format!(
            "({} * ({v} > 0.0f ? {v} : {} * expm1f({v})))",
            lit(gamma),
            lit(alpha)
        ),
        UnaryOp::Celu { alpha } => format!(
            "(fmaxf({v}, 0.0f) + fminf(0.0f, {} * expm1f({v} / {})))",
            lit(alpha),
            lit(alpha)
        ),
        UnaryOp::ThresholdedRelu { alpha } => format!("({v} > {} ? {v} : 0.0f)", lit(alpha)),

        UnaryOp::PowScalar { factor } => format!("powf({v}, {})", lit(factor)),
        UnaryOp::Clip { min, max } => format!("fminf(fmaxf({v}, {}), {})", lit(min), lit(max)),
        UnaryOp::Scale {
            scale,
            bias,
            bias_after_scale,
        } => {
            if bias_after_scale {
                format!("({} * {v} + {})", lit(scale), lit(bias))
            } else {
                format!("({} * ({v} + {}))", lit(scale), lit(bias))
            }
        }
    })
}

fn bin_expr(op: BinaryOp, a: &str, b: &str) -> Option<String> {
    Some(match op {
        BinaryOp::Add => format!("({a} + {b})"),
        BinaryOp::Sub => format!("({a} - {b})"),
        BinaryOp::Mul => format!("({a} * {b})"),
        BinaryOp::Div => format!("({a} / {b})"),
        BinaryOp::Max => format!("fmaxf({a}, {b})"),
        BinaryOp::Min => format!("fminf({a}, {b})"),
        BinaryOp::Pow => format!("powf({a}, {b})"),
        BinaryOp::Mod | BinaryOp::FloorDiv => return None,
    })
}

/// `out = e` over the node's `n` outputs, `e` a C expression of its first input `p1`.
fn map(g: &Graph, k: usize, e: &str, n: usize) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    Some(vec![kernel(
        vec![Param::Out, Param::In],
        fill(ELEMENTWISE, &[("n", n.into()), ("e", e.into())])?,
        n,
        vec![
            Operand::Value(node.outputs[0]),
            Operand::Value(node.inputs[0]),
        ],
    )])
}

/// A copy of the node's first input into its `n`-element output (a view of a weight).
pub(super) fn copy(g: &Graph, k: usize, n: usize) -> Option<Vec<DevOp>> {
    map(g, k, "p1[i]", n)
}

/// The activation `u` over the node's `n`-element input.
pub(super) fn unary(g: &Graph, k: usize, u: &UnaryOp, n: usize) -> Option<Vec<DevOp>> {
    map(g, k, &act_expr(u, "p1[i]")?, n)
}

/// `out = act(x op y)` with Paddle's broadcast: same shapes index directly, a one-element
/// operand is read at 0, anything else through an index table per operand derived by
/// running the reference broadcast on index tensors.
pub(super) fn binary(
    g: &Graph,
    k: usize,
    op: BinaryOp,
    axis: i64,
    act: Option<&UnaryOp>,
) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let (x, y, out) = (node.inputs[0], node.inputs[1], node.outputs[0]);
    let (xs, ys, os) = (shape(g, x)?, shape(g, y)?, shape(g, out)?);
    let n: usize = os.iter().product();
    let mut params = vec![Param::Out, Param::In, Param::In];
    let mut args = vec![Operand::Value(out), Operand::Value(x), Operand::Value(y)];
    let mut index = |s: &[usize], which: usize, p: usize| -> Option<String> {
        let len: usize = s.iter().product();
        if s == os.as_slice() {
            return Some("i".into());
        }
        if len == 1 {
            return Some("0".into());
        }
        // The table: run the broadcast on (iota, zeros) or (zeros, iota).
        let iota = Tensor::from_i64s(&(0..len as i64).collect::<Vec<_>>())
            .reshape(s)
            .ok()?;
        let other_shape = if which == 0 { &ys } else { &xs };
        let zeros = Tensor::zeros(DType::I64, other_shape);
        let ins = if which == 0 {
            [&iota, &zeros]
        } else {
            [&zeros, &iota]
        };
        let r = Op::Binary(Binary {
            op: BinaryOp::Add,
            axis,
        })
        .eval(&ins)
        .ok()?;
        if r.first()?.shape() != os.as_slice() {
            return None;
        }
        let t: Vec<i32> = r[0].to_i64_vec().iter().map(|&v| v as i32).collect();
        params.push(Param::Idx);
        args.push(Operand::Table(t));
        Some(format!("p{p}[i]"))
    };
    let xi = index(&xs, 0, 3)?;
    let yi = index(&ys, 1, if params_len_after_x(&xs, &os) { 4 } else { 3 })?;
    let mut e = bin_expr(op, &format!("p1[{xi}]"), &format!("p2[{yi}]"))?;
    if let Some(a) = act {
        e = act_expr(a, &format!("({e})"))?;
    }
    Some(vec![kernel(
        params,
        fill(ELEMENTWISE, &[("n", n.into()), ("e", e.into())])?,
        n,
        args,
    )])
}

/// Whether `x` of shape `xs` needs a table (and so takes parameter 3).
fn params_len_after_x(xs: &[usize], os: &[usize]) -> bool {
    xs != os && xs.iter().product::<usize>() != 1
}

/// `x > 0 ? x : α·x`, α one for all, per channel, or per element (batch axis excluded).
pub(super) fn prelu(g: &Graph, k: usize, mode: PreluMode, layout: Layout) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let xs = shape(g, node.inputs[0])?;
    let alphas: usize = shape(g, node.inputs[1])?.iter().product();
    let n: usize = xs.iter().product();
    let a = match mode {
        PreluMode::All => "0".to_string(),
        PreluMode::Channel => {
            if xs.is_empty() {
                return None;
            }
            let (ca, inner) = channel_axis(layout, &xs);
            if alphas != xs[ca] {
                return None;
            }
            format!("(i / {inner}) % {}", xs[ca])
        }
        PreluMode::Element => {
            let per: usize = xs.iter().skip(1).product();
            if alphas != per {
                return None;
            }
            format!("i % {per}")
        }
    };
    Some(vec![kernel(
        vec![Param::Out, Param::In, Param::In],
        fill(PRELU, &[("n", n.into()), ("alpha", a.into())])?,
        n,
        vec![
            Operand::Value(node.outputs[0]),
            Operand::Value(node.inputs[0]),
            Operand::Value(node.inputs[1]),
        ],
    )])
}
