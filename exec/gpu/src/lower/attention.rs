//! Multi-head attention (packed QKV or separate Q, K, V; an optional broadcast mask).

use super::template::fill;
use super::{kernel, shape, DevOp, Operand};
use kayak_gpu::Param;
use kayak_ir::ops::Attention;
use kayak_ir::Graph;

/// Attention for one (batch, head, query position), an online softmax over the keys.
const ATTENTION: &str = include_str!("../cu/attention.cu");

/// Multi-head attention, one thread per (batch, head, query position): one pass over the
/// keys with an online softmax (running maximum and denominator, the value accumulator
/// rescaled as the maximum grows), the mask broadcast from its own shape.
pub(super) fn attention(g: &Graph, k: usize, a: &Attention) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let (h, d) = (a.heads, a.head_dim);
    let hd = h * d;
    if d == 0 || d > 256 {
        return None;
    }
    let qs = shape(g, node.inputs[0])?;
    if qs.len() != 3 {
        return None;
    }
    let (b, s) = (qs[0], qs[1]);
    let (t, row_q, row_kv, koff, voff, nin) = if a.packed {
        if qs[2] != 3 * hd {
            return None;
        }
        (s, 3 * hd, 3 * hd, hd, 2 * hd, 1)
    } else {
        let ks = shape(g, node.inputs[1])?;
        if qs[2] != hd || ks.len() != 3 || ks[2] != hd || shape(g, node.inputs[2])? != ks {
            return None;
        }
        (ks[1], hd, hd, 0, 0, 3)
    };
    let mut params = vec![Param::Out, Param::In];
    let mut args = vec![
        Operand::Value(node.outputs[0]),
        Operand::Value(node.inputs[0]),
    ];
    let (kp, vp) = if a.packed {
        ("p1", "p1")
    } else {
        params.extend([Param::In, Param::In]);
        args.extend([
            Operand::Value(node.inputs[1]),
            Operand::Value(node.inputs[2]),
        ]);
        ("p2", "p3")
    };
    let mask = if a.has_mask {
        let m = *node.inputs.get(nin)?;
        let ms = shape(g, m)?;
        if ms.len() > 4 {
            return None;
        }
        let mut padded = vec![1usize; 4 - ms.len()];
        padded.extend_from_slice(&ms);
        let full = [b, h, s, t];
        let mut strides = [0usize; 4];
        let mut run = 1;
        for ax in (0..4).rev() {
            if padded[ax] != 1 && padded[ax] != full[ax] {
                return None;
            }
            strides[ax] = if padded[ax] == 1 { 0 } else { run };
            run *= padded[ax];
        }
        params.push(Param::In);
        args.push(Operand::Value(m));
        format!(
            " + p{}[bi * {} + hi * {} + si * {} + ti * {}]",
            params.len() - 1,
            strides[0],
            strides[1],
            strides[2],
            strides[3]
        )
    } else {
        String::new()
    };
    let rows = b * h * s;
    let body = fill(
        ATTENTION,
        &[
            ("rows", rows.into()),
            ("s", s.into()),
            ("h", h.into()),
            ("d", d.into()),
            ("hd", hd.into()),
            ("t", t.into()),
            ("row_q", row_q.into()),
            ("row_kv", row_kv.into()),
            ("koff", koff.into()),
            ("voff", voff.into()),
            ("kp", kp.into()),
            ("vp", vp.into()),
            ("scale", a.scale.into()),
            ("mask", mask.into()),
        ],
    )?;
    Some(vec![kernel(params, body, rows, args)])
}
