//! Pooling windows and reductions over axes, one thread per output element.

use super::template::fill;
use super::{kernel, shape, DevOp, Operand};
use kayak_gpu::Param;
use kayak_ir::ops::{Layout, Pool, PoolKind, Reduce, ReduceKind};
use kayak_ir::Graph;

/// A pooling kernel: its window (`y0..y1`, `x0..x1`, `count`), then its reduction.
const POOL: &str = include_str!("../cu/pool.cu");
/// An adaptive (or global) pooling window.
const POOL_WINDOW_ADAPTIVE: &str = include_str!("../cu/pool_window_adaptive.cu");
/// A strided pooling window, clipped to the input.
const POOL_WINDOW: &str = include_str!("../cu/pool_window.cu");
/// The maximum over the window.
const POOL_MAX: &str = include_str!("../cu/pool_max.cu");
/// The average over the window, by `count`.
const POOL_AVG: &str = include_str!("../cu/pool_avg.cu");
/// A reduction: the kept axes' offset (`base`), then a loop over the reduced positions.
const REDUCE: &str = include_str!("../cu/reduce.cu");

/// Max or average pooling, one thread per output element, windows as the reference ops
/// places them (clipped to the input; a non-exclusive average divides by the full window).
pub(super) fn pool(g: &Graph, k: usize, p: &Pool) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    if p.layout != Layout::Nchw {
        return None;
    }
    let (xs, os) = (shape(g, node.inputs[0])?, shape(g, node.outputs[0])?);
    if xs.len() != 4 || os.len() != 4 {
        return None;
    }
    let (h, w) = (xs[2], xs[3]);
    let (o, pad) = p.out_size([h, w]).ok()?;
    if o != [os[2], os[3]] {
        return None;
    }
    let (kk, s) = if p.global {
        ([h, w], [1, 1])
    } else {
        (p.ksize, p.strides)
    };
    let n: usize = os.iter().product();
    let window = if p.adaptive || p.global {
        fill(
            POOL_WINDOW_ADAPTIVE,
            &[
                ("h", h.into()),
                ("w", w.into()),
                ("oh", o[0].into()),
                ("ow", o[1].into()),
            ],
        )?
    } else {
        let count = if p.exclusive {
            "(y1 - y0) * (x1 - x0)".to_string()
        } else {
            format!("{}", kk[0] * kk[1])
        };
        fill(
            POOL_WINDOW,
            &[
                ("sh", s[0].into()),
                ("sw", s[1].into()),
                ("pt", pad[0].into()),
                ("pl", pad[2].into()),
                ("kh", kk[0].into()),
                ("kw", kk[1].into()),
                ("h", h.into()),
                ("w", w.into()),
                ("count", count.into()),
            ],
        )?
    };
    let reduce = match p.kind {
        PoolKind::Max => fill(POOL_MAX, &[])?,
        PoolKind::Avg => fill(POOL_AVG, &[])?,
    };
    let body = fill(
        POOL,
        &[
            ("n", n.into()),
            ("w", w.into()),
            ("ow", o[1].into()),
            ("oh", o[0].into()),
            ("hw", (h * w).into()),
            ("window", window.into()),
            ("reduce", reduce.into()),
        ],
    )?;
    Some(vec![kernel(
        vec![Param::Out, Param::In],
        body,
        n,
        vec![
            Operand::Value(node.outputs[0]),
            Operand::Value(node.inputs[0]),
        ],
    )])
}

/// Sum, mean, max, min or product over a set of axes: one thread per output element,
/// looping over the reduced positions.
pub(super) fn reduce(g: &Graph, k: usize, r: &Reduce) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let xs = shape(g, node.inputs[0])?;
    let red = r.reduced_axes(xs.len()).ok()?;
    let n: usize = shape(g, node.outputs[0])?.iter().product();
    let mut strides = vec![1usize; xs.len()];
    for a in (0..xs.len().saturating_sub(1)).rev() {
        strides[a] = strides[a + 1] * xs[a + 1];
    }
    let kept: Vec<usize> = (0..xs.len()).filter(|&a| !red[a]).collect();
    let gone: Vec<usize> = (0..xs.len()).filter(|&a| red[a]).collect();
    if kept.iter().map(|&a| xs[a]).product::<usize>() != n {
        return None;
    }
    let count: usize = gone.iter().map(|&a| xs[a]).product();
    let mut base = String::from("int rem = i; long long base = 0;\n");
    for &a in kept.iter().rev() {
        base.push_str(&format!(
            "base += (long long)(rem % {d}) * {st}; rem /= {d};\n",
            d = xs[a],
            st = strides[a]
        ));
    }
    let mut offset = String::from("int rr = r; long long off = base;\n");
    for &a in gone.iter().rev() {
        offset.push_str(&format!(
            "off += (long long)(rr % {d}) * {st}; rr /= {d};\n",
            d = xs[a],
            st = strides[a]
        ));
    }
    let (init, step, fin) = match r.kind {
        ReduceKind::Sum => ("0.0f", "acc += v;", "acc".to_string()),
        ReduceKind::Mean => ("0.0f", "acc += v;", format!("acc / {count}.0f")),
        ReduceKind::Max => ("-(1.0f/0.0f)", "acc = fmaxf(acc, v);", "acc".to_string()),
        ReduceKind::Min => ("(1.0f/0.0f)", "acc = fminf(acc, v);", "acc".to_string()),
        ReduceKind::Prod => ("1.0f", "acc *= v;", "acc".to_string()),
    };
    Some(vec![kernel(
        vec![Param::Out, Param::In],
        fill(
            REDUCE,
            &[
                ("n", n.into()),
                ("base", base.into()),
                ("init", init.into()),
                ("count", count.into()),
                ("offset", offset.into()),
                ("step", step.into()),
                ("fin", fin.into()),
            ],
        )?,
        n,
        vec![
            Operand::Value(node.outputs[0]),
            Operand::Value(node.inputs[0]),
        ],
    )])
}
