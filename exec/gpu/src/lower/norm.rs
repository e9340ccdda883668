//! Normalizations: softmax along an axis, layer norms (with a residual add first for the
//! skip form), inference batch norms.

use super::template::fill;
use super::{channel_axis, kernel, shape, DevOp, Operand};
use kayak_gpu::Param;
use kayak_ir::ops::{BatchNorm, LayerNorm};
use kayak_ir::Graph;

/// Softmax, one thread per (outer, inner) position.
const SOFTMAX: &str = include_str!("../cu/softmax.cu");
/// Layer norm, one thread per row; `load` reads element `j` of the row.
const LAYER_NORM: &str = include_str!("../cu/layer_norm.cu");
/// Batch norm, one thread per element.
const BATCH_NORM: &str = include_str!("../cu/batch_norm.cu");

/// Softmax along `axis`: one thread per (outer, inner) position.
pub(super) fn softmax(g: &Graph, k: usize, axis: i64) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let xs = shape(g, node.inputs[0])?;
    let r = xs.len() as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if !(0..r).contains(&a) {
        return None;
    }
    let a = a as usize;
    let outer: usize = xs[..a].iter().product();
    let len = xs[a];
    let inner: usize = xs[a + 1..].iter().product();
    let rows = outer * inner;
    let body = fill(
        SOFTMAX,
        &[
            ("rows", rows.into()),
            ("inner", inner.into()),
            ("len", len.into()),
        ],
    )?;
    Some(vec![kernel(
        vec![Param::Out, Param::In],
        body,
        rows,
        vec![
            Operand::Value(node.outputs[0]),
            Operand::Value(node.inputs[0]),
        ],
    )])
}

/// Layer normalization over the trailing axes (with a residual add first when `skip`):
/// one thread per row, two passes for the variance.
pub(super) fn layer_norm(g: &Graph, k: usize, l: &LayerNorm, skip: bool) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let xs = shape(g, node.inputs[0])?;
    if l.begin_norm_axis >= xs.len() {
        return None;
    }
    let inner: usize = xs[l.begin_norm_axis..].iter().product();
    let outer: usize = xs[..l.begin_norm_axis].iter().product();
    let mut params = vec![Param::Out, Param::In];
    let mut args = vec![
        Operand::Value(node.outputs[0]),
        Operand::Value(node.inputs[0]),
    ];
    let mut next = 1;
    let load = if skip {
        if shape(g, node.inputs[1])? != xs {
            return None;
        }
        params.push(Param::In);
        args.push(Operand::Value(node.inputs[1]));
        next = 2;
        "(x[j] + r[j])"
    } else {
        "x[j]"
    };
    let mut affine = String::new();
    for (on, op) in [(l.has_scale, "*"), (l.has_bias, "+")] {
        if on {
            params.push(Param::In);
            args.push(Operand::Value(node.inputs[next]));
            if shape(g, node.inputs[next])?.iter().product::<usize>() != inner {
                return None;
            }
            affine.push_str(&format!(" v = v {op} p{}[j];", params.len() - 1));
            next += 1;
        }
    }
    let rdef = if skip {
        format!("const float* r = p2 + (long long)i * {inner};")
    } else {
        String::new()
    };
    let body = fill(
        LAYER_NORM,
        &[
            ("outer", outer.into()),
            ("inner", inner.into()),
            ("rdef", rdef.into()),
            ("load", load.into()),
            ("eps", l.epsilon.into()),
            ("affine", affine.into()),
        ],
    )?;
    Some(vec![kernel(params, body, outer, args)])
}

/// Inference batch normalization: `(x − mean) / sqrt(var + ε) · scale + bias` per channel.
pub(super) fn batch_norm(g: &Graph, k: usize, b: &BatchNorm) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let xs = shape(g, node.inputs[0])?;
    if xs.is_empty() {
        return None;
    }
    let (ca, inner) = channel_axis(b.layout, &xs);
    let c = xs[ca];
    for i in 1..5 {
        if shape(g, *node.inputs.get(i)?)?.iter().product::<usize>() != c {
            return None;
        }
    }
    let n: usize = xs.iter().product();
    let args = std::iter::once(node.outputs[0])
        .chain(node.inputs[..5].iter().copied())
        .map(Operand::Value)
        .collect();
    Some(vec![kernel(
        vec![
            Param::Out,
            Param::In,
            Param::In,
            Param::In,
            Param::In,
            Param::In,
        ],
        fill(
            BATCH_NORM,
            &[
                ("n", n.into()),
                ("inner", inner.into()),
                ("c", c.into()),
                ("eps", b.epsilon.into()),
            ],
        )?,
        n,
        args,
    )])
}
