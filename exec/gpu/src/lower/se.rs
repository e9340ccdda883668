//! Squeeze-and-excitation blocks: channel means, two projections, the gate.

use super::template::fill;
use super::{act_expr, kernel, shape, DevOp, Operand};
use kayak_gpu::Param;
use kayak_ir::ops::UnaryOp;
use kayak_ir::Graph;

/// Per (batch, channel), the mean over the plane.
const SE_MEAN: &str = include_str!("../cu/se_mean.cu");
/// A projection with its bias and activation.
const SE_PROJECTION: &str = include_str!("../cu/se_projection.cu");
/// The input scaled by its channel's gate.
const SE_GATE: &str = include_str!("../cu/se_gate.cu");

/// Squeeze-and-excitation: per-channel means, the two projections with their activations,
/// then the gate applied — four kernels sharing three scratch vectors.
pub(super) fn se_block(g: &Graph, k: usize, act1: &UnaryOp, act2: &UnaryOp) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let xs = shape(g, node.inputs[0])?;
    let w1 = shape(g, node.inputs[1])?;
    if xs.len() != 4 || w1.len() != 4 {
        return None;
    }
    let (nb, c, hw) = (xs[0], xs[1], xs[2] * xs[3]);
    let c1 = w1[0];
    let (a1, a2) = (act_expr(act1, "v")?, act_expr(act2, "v")?);
    let (mean, hid, gate) = (
        Operand::ScratchOf(0, nb * c),
        Operand::ScratchOf(1, nb * c1),
        Operand::ScratchOf(2, nb * c),
    );
    let out = Operand::Value(node.outputs[0]);
    let x = Operand::Value(node.inputs[0]);
    let inp = |i: usize| Operand::Value(node.inputs[i]);
    let total = nb * c * hw;
    Some(vec![
        kernel(
            vec![Param::Out, Param::In],
            fill(SE_MEAN, &[("nc", (nb * c).into()), ("hw", hw.into())])?,
            nb * c,
            vec![mean.clone(), x.clone()],
        ),
        projection([hid.clone(), mean, inp(1), inp(2)], (nb, c1, c), &a1)?,
        projection([gate.clone(), hid, inp(3), inp(4)], (nb, c, c1), &a2)?,
        kernel(
            vec![Param::Out, Param::In, Param::In],
            fill(SE_GATE, &[("total", total.into()), ("hw", hw.into())])?,
            total,
            vec![out, x, gate],
        ),
    ])
}

/// `out[b, j] = act(bias[j] + Σ_q w[j, q] · x[b, q])` for `b < rows`, `j < n`, `q < k`
/// (operands: out, x, w, bias): an
/// SE block's projections, one thread per output.
fn projection(
    operands: [Operand; 4],
    (rows, n, k): (usize, usize, usize),
    act: &str,
) -> Option<DevOp> {
    Some(kernel(
        vec![Param::Out, Param::In, Param::In, Param::In],
        fill(
            SE_PROJECTION,
            &[
                ("total", (rows * n).into()),
                ("n", n.into()),
                ("k", k.into()),
                ("act", act.into()),
            ],
        )?,
        rows * n,
        operands.to_vec(),
    ))
}
