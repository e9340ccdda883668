//! Normalization and softmax: softmax over an axis or a row, layer norm (with a skip
//! connection), inference batch norm.

use super::{par_ranges, reduce_lanes, Src};
use crate::consts::LANES;
use crate::pool::{SharedMut, ThreadPool};

/// Softmax over the middle axis of `[outer, len, inner]`, in place or from `x`.
pub fn softmax(
    pool: &ThreadPool,
    outer: usize,
    len: usize,
    inner: usize,
    x: Src<'_>,
    out: &mut [f32],
) {
    x.load_into(out);
    let op = SharedMut::new(out);
    if inner == 1 {
        par_ranges(pool, outer, len * 4, &|r| {
            // SAFETY: disjoint row ranges.
            #[allow(unsafe_code)]
            let o = unsafe { op.slice(r.start * len, r.len() * len) };
            for row in o.chunks_exact_mut(len) {
                softmax_row(row);
            }
        });
    } else {
        par_ranges(pool, outer, len * inner * 4, &|r| {
            for b in r {
                // SAFETY: disjoint outer blocks.
                #[allow(unsafe_code)]
                let o = unsafe { op.slice(b * len * inner, len * inner) };
                for i in 0..inner {
                    let mut m = f32::NEG_INFINITY;
                    for l in 0..len {
                        m = m.max(o[l * inner + i]);
                    }
                    let mut s = 0.0f32;
                    for l in 0..len {
                        let e = (o[l * inner + i] - m).exp();
                        o[l * inner + i] = e;
                        s += e;
                    }
                    let inv = 1.0 / s;
                    for l in 0..len {
                        o[l * inner + i] *= inv;
                    }
                }
            }
        });
    }
}

/// Softmax of one contiguous row, in place.
pub fn softmax_row(row: &mut [f32]) {
    let m = reduce_lanes(row, true);
    let s = crate::act::exp_sum(row, m);
    let inv = 1.0 / s;
    row.iter_mut().for_each(|v| *v *= inv);
}

/// Layer normalization of each `cols`-long row, in place.
pub fn layer_norm_row(row: &mut [f32], scale: Option<&[f32]>, bias: Option<&[f32]>, eps: f32) {
    crate::simd!(layer_norm_row_body(
        row: &mut [f32],
        scale: Option<&[f32]>,
        bias: Option<&[f32]>,
        eps: f32
    ))
}

/// `Σ f(x)` in 16 independent lanes (so it vectorizes; a plain `sum` is one chain of
/// dependent adds).
#[inline(always)]
fn sum_lanes(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    const L: usize = LANES;
    let full = x.len() / L * L;
    let mut acc = [0f32; L];
    for c in x[..full].chunks_exact(L) {
        for l in 0..L {
            acc[l] += f(c[l]);
        }
    }
    acc.iter().sum::<f32>() + x[full..].iter().map(|&v| f(v)).sum::<f32>()
}

#[inline(always)]
fn layer_norm_row_body(row: &mut [f32], scale: Option<&[f32]>, bias: Option<&[f32]>, eps: f32) {
    let n = row.len() as f32;
    let mean = sum_lanes(row, |v| v) / n;
    let var = sum_lanes(row, |v| (v - mean) * (v - mean)) / n;
    let inv = 1.0 / (var + eps).sqrt();
    match (scale, bias) {
        (Some(s), Some(b)) => {
            for ((v, s), b) in row.iter_mut().zip(s).zip(b) {
                *v = (*v - mean) * inv * s + b;
            }
        }
        (Some(s), None) => {
            for (v, s) in row.iter_mut().zip(s) {
                *v = (*v - mean) * inv * s;
            }
        }
        (None, Some(b)) => {
            for (v, b) in row.iter_mut().zip(b) {
                *v = (*v - mean) * inv + b;
            }
        }
        (None, None) => row.iter_mut().for_each(|v| *v = (*v - mean) * inv),
    }
}

/// `out = layer_norm(a + b)` over rows of `cols` (`b` absent: plain layer norm). Either
/// input may be [`Src::Out`].
#[allow(clippy::too_many_arguments)]
pub fn skip_layer_norm(
    pool: &ThreadPool,
    cols: usize,
    a: Src<'_>,
    b: Option<Src<'_>>,
    scale: Option<&[f32]>,
    bias: Option<&[f32]>,
    eps: f32,
    out: &mut [f32],
) {
    if cols == 0 {
        return;
    }
    let rows = out.len() / cols;
    let op = SharedMut::new(out);
    par_ranges(pool, rows, cols * 6, &|r| {
        for row in r {
            // SAFETY: disjoint rows.
            #[allow(unsafe_code)]
            let o = unsafe { op.slice(row * cols, cols) };
            let rr = row * cols..(row + 1) * cols;
            match (a, b) {
                (Src::Slice(a), None) => o.copy_from_slice(&a[rr]),
                (Src::Out, None) | (Src::Out, Some(Src::Out)) => {}
                (Src::Out, Some(Src::Slice(b))) | (Src::Slice(b), Some(Src::Out)) => {
                    o.iter_mut().zip(&b[rr]).for_each(|(v, y)| *v += y)
                }
                (Src::Slice(a), Some(Src::Slice(b))) => {
                    for ((v, x), y) in o.iter_mut().zip(&a[rr.clone()]).zip(&b[rr]) {
                        *v = x + y;
                    }
                }
            }
            if matches!((a, b), (Src::Out, Some(Src::Out))) {
                o.iter_mut().for_each(|v| *v += *v);
            }
            layer_norm_row(o, scale, bias, eps);
        }
    });
}

/// Inference batch norm over `[outer, c, inner]` (channel axis in the middle): per channel
/// `y = (x − mean)·scale/√(var + eps) + bias`, in place or from `x`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm(
    pool: &ThreadPool,
    (outer, c, inner): (usize, usize, usize),
    x: Src<'_>,
    (scale, bias, mean, var): (&[f32], &[f32], &[f32], &[f32]),
    eps: f32,
    out: &mut [f32],
) {
    let op = SharedMut::new(out);
    par_ranges(pool, outer * c, inner, &|r| {
        for plane in r {
            let ch = plane % c;
            let a = scale[ch] / (var[ch] + eps).sqrt();
            let b = bias[ch] - mean[ch] * a;
            // SAFETY: disjoint planes of the output.
            #[allow(unsafe_code)]
            let o = unsafe { op.slice(plane * inner, inner) };
            match x {
                Src::Slice(x) => o
                    .iter_mut()
                    .zip(&x[plane * inner..(plane + 1) * inner])
                    .for_each(|(v, x)| *v = x * a + b),
                Src::Out => o.iter_mut().for_each(|v| *v = *v * a + b),
            }
        }
    });
}
