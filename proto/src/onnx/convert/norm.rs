//! Normalizations and pools built from reductions: `InstanceNormalization`,
//! `GroupNormalization`, `MeanVarianceNormalization`, `LRN` and `LpPool`.

use super::index::Emit;
use super::nn::{padding, pair, spatial_2d};
use super::*;

/// `(x − mean) / sqrt(var + eps)` over `axes` (kept as size 1); the normalized name.
fn standardize(e: &mut Emit<'_, '_>, x: String, axes: &[i64], eps: f64, dt: DType) -> String {
    let mean = e.op(
        reduce_over(ReduceKind::Mean, axes.to_vec(), true),
        vec![x.clone()],
    );
    let d = e.op(bin(BinaryOp::Sub), vec![x, mean]);
    let sq = e.op(Op::Unary(UnaryOp::Square), vec![d.clone()]);
    let var = e.op(reduce_over(ReduceKind::Mean, axes.to_vec(), true), vec![sq]);
    let epsc = e.scalar(eps, dt);
    let ve = e.op(bin(BinaryOp::Add), vec![var, epsc]);
    let sd = e.op(Op::Unary(UnaryOp::Sqrt), vec![ve]);
    e.op(bin(BinaryOp::Div), vec![d, sd])
}

/// `y · scale + bias` with `[C]` scale and bias on the channel axis (1).
fn channel_affine(c: &NodeCtx<'_>, mut e: Emit<'_, '_>, y: String) -> Result<Vec<Converted>> {
    let on_channels = |op| Op::Binary(Binary { op, axis: 1 });
    let s = e.op(on_channels(BinaryOp::Mul), vec![y, c.req(1)?]);
    Ok(e.last(on_channels(BinaryOp::Add), vec![s, c.req(2)?], c.output(0)))
}

/// `InstanceNormalization(x [N, C, …], scale [C], B [C])`: each (n, c) over its spatial axes.
pub(super) fn instance_norm(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let rank = c.need_rank(0)?;
    if rank < 3 {
        return Err(c.bad("input", format!("rank {rank}: needs [N, C, spatial…]")));
    }
    let eps = c.float_or("epsilon", 1e-5)? as f64;
    let dt = c.dtype(0)?;
    let mut e = Emit::new(c);
    let axes: Vec<i64> = (2..rank as i64).collect();
    let y = standardize(&mut e, c.req(0)?, &axes, eps, dt);
    channel_affine(c, e, y)
}

/// `GroupNormalization(x, scale, bias)`: channels in `num_groups` groups, each group of
/// each sample standardized; from opset 21 scale and bias are per channel, before it per
/// group.
pub(super) fn group_norm(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let d = c.dims(0)?;
    let g = c
        .int("num_groups")?
        .ok_or_else(|| c.bad("num_groups", "missing"))?;
    if d.len() < 3 || g < 1 || d[1] % g as usize != 0 {
        return Err(c.bad(
            "num_groups",
            format!("{g} groups of the channels of shape {d:?}"),
        ));
    }
    let eps = c.float_or("epsilon", 1e-5)? as f64;
    let dt = c.dtype(0)?;
    let g = g as usize;
    let mut e = Emit::new(c);
    let reshape = |dims: Vec<i64>| {
        Op::Reshape(Reshape {
            shape: dims,
            shape_input: ListInput::Attr,
        })
    };
    let grouped = e.op(reshape(vec![d[0] as i64, g as i64, -1]), vec![c.req(0)?]);
    let y = standardize(&mut e, grouped, &[2], eps, dt);
    if c.opset >= 21 {
        let back = e.op(reshape(d.iter().map(|&x| x as i64).collect()), vec![y]);
        return channel_affine(c, e, back);
    }
    // Per-group scale and bias, on the grouped shape.
    let on_groups = |op| Op::Binary(Binary { op, axis: 1 });
    let s = e.op(on_groups(BinaryOp::Mul), vec![y, c.req(1)?]);
    let b = e.op(on_groups(BinaryOp::Add), vec![s, c.req(2)?]);
    Ok(e.last(
        reshape(d.iter().map(|&x| x as i64).collect()),
        vec![b],
        c.output(0),
    ))
}

/// `MeanVarianceNormalization(x)` over `axes` (default N, H, W), ε = 1e−9.
pub(super) fn mvn(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let axes = c.ints("axes")?.unwrap_or_else(|| vec![0, 2, 3]);
    let dt = c.dtype(0)?;
    let mut e = Emit::new(c);
    let y = standardize(&mut e, c.req(0)?, &axes, 1e-9, dt);
    Ok(e.last(Op::Identity(Identity), vec![y], c.output(0)))
}

/// `LRN(x [N, C, H, W])`: `x / (bias + α/size · Σ x²)^β`, the sum over a window of
/// `size` channels, as an average pool over the channels (zeros past the ends) × size.
pub(super) fn lrn(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let d = c.dims(0)?;
    if d.len() != 4 {
        return Err(c.unsupported(format!("`LRN` on a rank-{} input (rank 4)", d.len())));
    }
    let size = c.int("size")?.ok_or_else(|| c.bad("size", "missing"))?;
    if size < 1 {
        return Err(c.bad("size", format!("{size}")));
    }
    let size = size as usize;
    let alpha = c.float_or("alpha", 1e-4)? as f64;
    let beta = c.float_or("beta", 0.75)? as f64;
    let bias = c.float_or("bias", 1.0)? as f64;
    let dt = c.dtype(0)?;
    let x = c.req(0)?;
    let mut e = Emit::new(c);
    let sq = e.op(Op::Unary(UnaryOp::Square), vec![x.clone()]);
    let flat = e.op(
        Op::Reshape(Reshape {
            shape: vec![d[0] as i64, 1, d[1] as i64, (d[2] * d[3]) as i64],
            shape_input: ListInput::Attr,
        }),
        vec![sq],
    );
    let (before, after) = ((size - 1) / 2, size - 1 - (size - 1) / 2);
    let p = Pool {
        kind: PoolKind::Avg,
        ksize: [size, 1],
        strides: [1, 1],
        padding: Padding::Explicit([before, after, 0, 0]),
        global: false,
        adaptive: false,
        ceil_mode: false,
        exclusive: false,
        layout: Layout::Nchw,
    };
    let avg = e.op(Op::Pool2d(p), vec![flat]);
    let back = e.op(
        Op::Reshape(Reshape {
            shape: d.iter().map(|&v| v as i64).collect(),
            shape_input: ListInput::Attr,
        }),
        vec![avg],
    );
    // bias + α/size · (avg · size) = bias + α · avg.
    let den = e.op(scale(alpha as f32, bias as f32), vec![back]);
    let bc = e.scalar(beta, dt);
    let pw = e.op(bin(BinaryOp::Pow), vec![den, bc]);
    Ok(e.last(bin(BinaryOp::Div), vec![x, pw], c.output(0)))
}

/// `LpPool(x)`: `(Σ |x|^p)^(1/p)` over each window, the sum as an average pool that
/// counts the padding, times the window size.
pub(super) fn lp_pool(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    spatial_2d(c)?;
    if pair(c, "dilations", 1)? != [1, 1] {
        return Err(c.unsupported("pooling with dilations"));
    }
    let ksize = match c.ints("kernel_shape")? {
        Some(k) if k.len() == 2 && k.iter().all(|&x| x > 0) => [k[0] as usize, k[1] as usize],
        Some(k) => return Err(c.unsupported(format!("pooling with kernel_shape {k:?}"))),
        None => return Err(c.bad("kernel_shape", "missing")),
    };
    let p = c.int_or("p", 2)?;
    if p < 1 {
        return Err(c.bad("p", format!("{p}")));
    }
    let dt = c.dtype(0)?;
    let strides = pair(c, "strides", 1)?;
    let pool = Pool {
        kind: PoolKind::Avg,
        ksize,
        strides,
        padding: padding(c, ksize, strides, [1, 1])?,
        global: false,
        adaptive: false,
        ceil_mode: c.int_or("ceil_mode", 0)? != 0,
        exclusive: false,
        layout: Layout::Nchw,
    };
    let mut e = Emit::new(c);
    let a = e.op(Op::Unary(UnaryOp::Abs), vec![c.req(0)?]);
    let pc = e.scalar(p as f64, dt);
    let ap = e.op(bin(BinaryOp::Pow), vec![a, pc]);
    let avg = e.op(Op::Pool2d(pool), vec![ap]);
    let sum = e.op(scale((ksize[0] * ksize[1]) as f32, 0.0), vec![avg]);
    let inv = e.scalar(1.0 / p as f64, dt);
    Ok(e.last(bin(BinaryOp::Pow), vec![sum, inv], c.output(0)))
}
